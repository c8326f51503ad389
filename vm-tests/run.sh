#!/usr/bin/env bash
# vm-tests/run.sh: the system tests, run by scripts/test.sh after cargo test.
# As root. Each tier prints `vm-tests: N passed, M failed` last; this script
# fails if a tier does.
#
#   tier 1, vm-tests/nspawn.sh: the packages on a systemd-nspawn machine
#           (real systemd and sshd, this kernel)
#   tier 2, vm-tests/qemu.sh: the .deb on QEMU VMs (their own kernels 6.1
#           and 6.12, virtio-net's XDP, real reboots, two nodes)
#
# scripts/test.sh runs the tiers one by one (to time each); this script runs
# both. Run one tier (or scenarios of it) alone: vm-tests/nspawn.sh [SCENARIO...],
# vm-tests/qemu.sh [SCENARIO...].
set -euo pipefail
cd "$(dirname "$0")"
rc=0
./nspawn.sh || rc=1
./qemu.sh || rc=1
exit "$rc"
