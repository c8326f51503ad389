#!/usr/bin/env bash
# vm-tests/nspawn.sh: tier 1 of the system tests. The hostfw .deb (and
# .rpm) on a systemd-nspawn machine: real systemd, real sshd, this
# machine's kernel. As root:
#
#   vm-tests/nspawn.sh               every scenario, in order
#   vm-tests/nspawn.sh lockout ...   the scenarios that set up the state
#                                    they need (install, audit, reload,
#                                    enforce), then those named
#
# The machine and its network: vm-tests/nspawn/machine.sh. The scenarios:
# vm-tests/nspawn/scenarios.sh. Everything is removed on exit (trap), by
# PID and by name. Traffic only between the namespaces it creates.
# Needs: debootstrap systemd-container iproute2 netcat-openbsd openssh-client
# python3 (scripts/install-deps.sh). Last line: `vm-tests: N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=$root/vm-tests/.cache
log_dir=$cache/logs/nspawn
SSH_KEY=$cache/nspawn/id_ed25519

source vm-tests/lib/common.sh
source vm-tests/lib/debian.sh
source vm-tests/lib/ssh.sh
source vm-tests/lib/policies.sh
source vm-tests/nspawn/machine.sh
source vm-tests/nspawn/scenarios.sh

ALL=(install audit reload enforce lockout lockout_sigkill lockout_restart confirm_reboot typo_reboot upgrade purge rpm)
SETUP=(install audit reload enforce)
pick_scenarios ALL SETUP "$@"

[[ $EUID -eq 0 ]] || die "run as root"
for tool in debootstrap systemd-nspawn ip nc nsenter python3 sha256sum timeout ssh ssh-keygen flock; do
  command -v "$tool" >/dev/null || die "missing $tool; run scripts/install-deps.sh"
done

# One run at a time (fixed names); then what a run killed hard left behind.
mkdir -p "$cache" "$run_dir" "$log_dir"
exec 9>"$cache/nspawn.lock"
flock -n 9 || die "another vm-tests/nspawn.sh is running (lock $cache/nspawn.lock)"
cleanup() {
  local rc=$?
  set +e
  machine_cleanup
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
machine_cleanup

build_rootfs
t0=$SECONDS
pkg_out=$(./scripts/package.sh 2>"$log_dir/package.stderr") \
  || { tail -n 20 "$log_dir/package.stderr" >&2; die "scripts/package.sh failed"; }
deb=$(sed -n 's/^deb: //p' <<<"$pkg_out")
rpm=$(sed -n 's/^rpm: //p' <<<"$pkg_out")
[[ -f $deb && -f $rpm ]] || die "scripts/package.sh did not print deb: and rpm: lines"
say "packages: $deb $rpm ($((SECONDS - t0)) s)"

make_ssh_key
disk_create
net_up
bpffs_up
machine_boot

after_scenario() {
  nspawn_pid=$(cat "$run_dir/nspawn.pid" 2>/dev/null || true)
  [[ -n $nspawn_pid ]] && find_leader || die "the machine is gone after a scenario"
}
on_failure() {
  in_vm journalctl -b -u hostfw --no-pager -n 30 >&2 2>/dev/null || true
}
for s in "${wanted[@]}"; do
  run_scenario "${s//_/-}" "scenario_$s"
done
finish nspawn
