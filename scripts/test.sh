#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and the privileged
# tests (eBPF programs loaded into this kernel, network namespaces, real
# traffic). Run as root. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
./scripts/install-deps.sh
if [ "$(id -u)" -ne 0 ]; then
  echo "test.sh: the privileged tests need root" >&2
  exit 1
fi
cargo fmt --all -- --check
# aya-build relays the eBPF sub-build's progress as cargo warnings: hide them.
quiet() { grep -v '^warning: hostfw@' || true; }
cargo clippy -q --all-targets -- -D warnings 2>&1 | quiet
log=$(mktemp)
cargo test --all-targets -- --test-threads=2 2>&1 | quiet | tee "$log"
# The system tier: the .deb installed in a systemd-nspawn machine.
./vm-tests/run.sh 2>&1 | tee -a "$log"
# One closing line for the whole suite.
awk '/^test result:/ { p += $4; f += $6 }
     /^vm-tests: [0-9]+ passed, [0-9]+ failed/ { p += $2; f += $4 }
     END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
