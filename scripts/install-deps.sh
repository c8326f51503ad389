#!/usr/bin/env bash
# Installs everything hostfw needs to build and test on Debian 12 (bookworm),
# as root. Idempotent: a second run only checks.
set -euo pipefail

# nftables, iptables, ipset, iperf3, gnuplot-nox: scripts/bench.sh.
need_apt=()
for pkg in rustc-web cargo-web rust-web-src llvm-22-dev iproute2 iputils-ping \
           bpftool netcat-openbsd ethtool python3 ca-certificates \
           openssh-server openssh-client lintian rpm debootstrap systemd-container \
           nftables iptables ipset iperf3 gnuplot-nox; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  echo "install-deps: apt-get install ${need_apt[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
fi

# System tests, tier 2 (vm-tests/qemu.sh): mmdebstrap builds the VM image;
# QEMU comes from bookworm-backports, added from the same mirror as the
# bookworm suite (these machines have qemu-utils 10.0 from there, which
# bookworm's qemu-system-x86 7.2 cannot be installed beside).
if ! dpkg-query -W -f='${Status}' qemu-system-x86 2>/dev/null | grep -q "install ok installed" \
   || ! dpkg-query -W -f='${Status}' mmdebstrap 2>/dev/null | grep -q "install ok installed"; then
  if ! grep -qs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/*; then
    mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)[[:space:]]*$/\1/p' \
      /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
    mirror=${mirror:-http://deb.debian.org/debian}
    echo "install-deps: adding bookworm-backports ($mirror) to apt's sources"
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
      "$mirror" /usr/share/keyrings/debian-archive-keyring.gpg \
      >/etc/apt/sources.list.d/bookworm-backports.sources
  fi
  echo "install-deps: apt-get install mmdebstrap, qemu-system-x86 (bookworm-backports)"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -t bookworm-backports qemu-system-x86
fi

if ! command -v rustup >/dev/null; then
  echo "install-deps: rustup is required (the machine's Rust toolchain)" >&2
  exit 1
fi
# Debian's rustc-web and its library source build the eBPF crate (-Z build-std).
if ! rustup toolchain list | grep -q '^debweb'; then
  rustup toolchain link debweb /usr
fi
rustup component list --installed 2>/dev/null | grep -q clippy \
  || rustup component add clippy rustfmt

export PATH="$HOME/.cargo/bin:$PATH"
if ! bpf-linker --version 2>/dev/null | grep -q '0.13.0'; then
  echo "install-deps: building bpf-linker 0.13.0 against LLVM 22 (about a minute)"
  LLVM_PREFIX=/usr/lib/llvm-22 cargo install --locked bpf-linker@0.13.0 \
    --no-default-features --features llvm-22
fi

# Packaging (scripts/package.sh): cargo-deb and cargo-generate-rpm.
if ! command -v cargo-deb >/dev/null; then
  echo "install-deps: building cargo-deb (about 75 s)"
  cargo install --locked cargo-deb
fi
if ! command -v cargo-generate-rpm >/dev/null; then
  echo "install-deps: building cargo-generate-rpm (about 4 min)"
  cargo install --locked cargo-generate-rpm
fi

# bpffs: systemd mounts it on real nodes; bare machines may lack it.
if ! mountpoint -q /sys/fs/bpf; then
  mount -t bpf bpf /sys/fs/bpf
fi
echo "install-deps: ok"
