#!/usr/bin/env bash
# vm-tests/qemu.sh: tier 2 of the system tests. The hostfw .deb on real
# VMs under QEMU (TCG): their own kernels (Debian's cloud 6.1, no TCX, and
# 6.12 from bookworm-backports, TCX), virtio-net's native XDP, real reboots,
# two nodes that see each other. As root:
#
#   vm-tests/qemu.sh                 every scenario, in order
#   vm-tests/qemu.sh reboot ...      the set-up scenario (install), then
#                                    those named
#   HOSTFW_DEB=FILE vm-tests/qemu.sh this .deb, not one scripts/package.sh
#                                    builds
#
# The image: vm-tests/qemu/image.sh (built on first use, cached). The VMs:
# qemu/vm.sh; their network: qemu/net.sh; the scenarios: qemu/scenarios.sh
# (with qemu/flows.sh and qemu/policies.sh). Two VMs, booted together; never
# more. Everything is removed on exit (trap), by PID and by name, and what a
# killed run left is removed at the start. Traffic only between the
# namespaces, bridge and VMs it creates (building the image fetches
# packages from this machine's Debian mirror).
# Needs: mmdebstrap qemu-system-x86 (bookworm-backports) qemu-utils
# iproute2 netcat-openbsd iputils-ping openssh-client python3
# (scripts/install-deps.sh). Last line: `vm-tests: N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=$root/vm-tests/.cache
run_dir=$cache/qemu       # the test key, overlays, pid files, ssh sockets
ctl_dir=$run_dir/ssh
log_dir=$cache/logs/qemu
SSH_KEY=$run_dir/id_ed25519 # baked into the image (part of its key)

source vm-tests/lib/common.sh
source vm-tests/lib/debian.sh
source vm-tests/lib/ssh.sh
source vm-tests/lib/policies.sh
source vm-tests/qemu/image.sh
source vm-tests/qemu/net.sh
source vm-tests/qemu/vm.sh
source vm-tests/qemu/policies.sh
source vm-tests/qemu/flows.sh
source vm-tests/qemu/scenarios.sh

ALL=(install kernel-6.1 kernel-6.12 reboot two-nodes lockout lockout-reboot)
SETUP=(install)
pick_scenarios ALL SETUP "$@"

[[ $EUID -eq 0 ]] || die "run as root"
for tool in mmdebstrap qemu-system-x86_64 qemu-img mke2fs ip nc ping nsenter python3 \
  sha256sum timeout ssh ssh-keygen flock; do
  command -v "$tool" >/dev/null || die "missing $tool; run scripts/install-deps.sh"
done

# One run at a time (fixed names); then what a run killed hard left behind.
mkdir -p "$cache" "$run_dir" "$ctl_dir" "$log_dir"
exec 9>"$cache/qemu.lock"
flock -n 9 || die "another vm-tests/qemu.sh is running (lock $cache/qemu.lock)"
prober=
cleanup() {
  local rc=$?
  set +e
  [[ -n $prober ]] && { touch "$run_dir/probe.stop"; kill "$prober" 2>/dev/null; }
  vm_cleanup
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
vm_cleanup leftover
rm -f "$log_dir"/*

t_start=$SECONDS
make_ssh_key
build_image
net_up
vm_start a "$kernel_61"
vm_start b "$kernel_612"
# The packages build while the VMs boot (HOSTFW_DEB=FILE: test that .deb
# instead, e.g. a CI artifact).
t0=$SECONDS
if [[ -n ${HOSTFW_DEB-} ]]; then
  deb=$(realpath "$HOSTFW_DEB")
  [[ -f $deb ]] || die "HOSTFW_DEB=$HOSTFW_DEB: no such file"
else
  pkg_out=$(./scripts/package.sh 2>"$log_dir/package.stderr") \
    || { tail -n 20 "$log_dir/package.stderr" >&2; die "scripts/package.sh failed"; }
  deb=$(sed -n 's/^deb: //p' <<<"$pkg_out")
  [[ -f $deb ]] || die "scripts/package.sh did not print a deb: line"
fi
say "package: $deb ($((SECONDS - t0)) s)"
vm_wait_up a || die "VM a did not come up"
vm_wait_up b || die "VM b did not come up"
say "set-up: $((SECONDS - t_start)) s"

after_scenario() {
  local vm
  for vm in a b; do
    vm_running "$vm" || die "VM $vm (QEMU) is gone after a scenario (console: $log_dir/$vm-console.log)"
  done
}
on_failure() {
  local vm
  for vm in a b; do
    echo "  --- $vm: hostfw's journal of this boot, without the verdict lines (last 15)" >&2
    in_vm "$vm" "journalctl -b -u hostfw --no-pager -o short-monotonic | grep -Ev ' (DENIED|AUDIT|ALLOWED)( |\$)' | tail -n 15" \
      </dev/null >&2 2>/dev/null || echo "  (no ssh to $vm)" >&2
  done
}
for s in "${wanted[@]}"; do
  run_scenario "$s" "scenario_${s//[-.]/_}"
  # Once both VMs are installed, each scenario sets up its own state.
  if [[ $s == install ]] && ((${#failed[@]} == 0)); then keep_going=1; fi
done
say "tier 2 took $((SECONDS - t_start)) s"
finish qemu
