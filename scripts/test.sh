#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and the privileged
# tests (eBPF programs loaded into this kernel, network namespaces, real
# traffic), then the system tiers. Run as root. Installs what is missing
# first. Prints each tier's time at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
times=()
t0=$SECONDS
tier() { times+=("$(printf '%-28s %4d s' "$1" "$((SECONDS - t0))")"); t0=$SECONDS; }
./scripts/install-deps.sh
if [ "$(id -u)" -ne 0 ]; then
  echo "test.sh: the privileged tests need root" >&2
  exit 1
fi
tier "install-deps"
cargo fmt --all -- --check
# aya-build relays the eBPF sub-build's progress as cargo warnings: hide them.
quiet() { grep -v '^warning: hostfw@' || true; }
cargo clippy -q --all-targets -- -D warnings 2>&1 | quiet
tier "fmt + clippy (and build)"
log=$(mktemp)
rc=0
# Release, like the packages: tests/package.rs and the system tiers then
# reuse this build instead of compiling everything a second time.
cargo test --release --all-targets -- --test-threads=2 2>&1 | quiet | tee "$log" || rc=1
tier "cargo test (unit, privileged)"
# The system tiers: the .deb on systemd-nspawn machines, then QEMU VMs.
./vm-tests/nspawn.sh 2>&1 | tee -a "$log" || rc=1
tier "vm-tests nspawn (tier 1)"
./vm-tests/qemu.sh 2>&1 | tee -a "$log" || rc=1
tier "vm-tests qemu (tier 2)"
echo "time per tier:"
printf '  %s\n' "${times[@]}"
# One closing line for the whole suite.
awk '/^test result:/ { p += $4; f += $6 }
     /^vm-tests: [0-9]+ passed, [0-9]+ failed/ { p += $2; f += $4 }
     END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$rc"
