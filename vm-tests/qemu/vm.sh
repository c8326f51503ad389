# vm-tests/qemu/vm.sh: the VMs' lifecycle and the ssh to them. Sourced by
# vm-tests/qemu.sh.
#
# A VM is QEMU under TCG (no KVM here): 1 vCPU, 512 MB, the image through a
# qcow2 overlay of its own ($run_dir/NAME.qcow2, alive for the run, so it
# survives the guest's reboots), NVMe root, virtio-net with $QUEUES queue
# pairs on tap-NAME, the serial console in $log_dir/NAME-console.log.
# QEMU is daemonized with a pid file; a reboot of the guest is a reset
# inside the same QEMU, which loads -kernel again. Everything is stopped by
# that PID, and removed by name, at the end and at the start of a run.
#
# Commands in a VM go over real ssh from the client namespace to its bridge
# address, multiplexed over one master connection per VM (ControlMaster):
# 0.06 s a command instead of 0.9 s.

VM_MEM=512
BOOT_TIMEOUT=240   # QEMU start (or reboot) -> ssh and systemd up; ~25 s idle
declare -A VM_KERNEL=()

# vm_start NAME KERNEL-FILE: a fresh overlay, the tap, QEMU in the
# background. vm_wait_up waits for it.
vm_start() {
  local vm=$1 kernel=$2 num=${VM_NUM[$1]}
  VM_KERNEL[$vm]=$kernel
  rm -f "$run_dir/$vm.qcow2" "$run_dir/$vm.pid"
  qemu-img create -q -f qcow2 -F raw -b "$image" "$run_dir/$vm.qcow2" \
    || die "qemu-img create failed for $vm"
  tap_up "$vm"
  : >"$log_dir/$vm-console.log"
  nsenter --net="/run/netns/$NS_LAN" qemu-system-x86_64 \
    -name "hfwq-$vm,process=hfwq-$vm" -nodefaults -no-user-config \
    -machine q35 -accel tcg,thread=multi,tb-size=64 -cpu max -smp 1 -m "$VM_MEM" \
    -kernel "$kernel" \
    -append "root=/dev/nvme0n1 rw console=ttyS0 net.ifnames=0 ip=$(vm_ip "$vm"):::255.255.255.0:hfwq-$vm:eth0:off ip=[$(vm_ip6 "$vm")]:::64::eth0:off systemd.hostname=hfwq-$vm mitigations=off loglevel=4" \
    -drive "if=none,id=root,file=$run_dir/$vm.qcow2,format=qcow2,cache=unsafe" \
    -device "nvme,serial=hfwq-$vm,drive=root" \
    -netdev "tap,id=net0,ifname=tap-$vm,script=no,downscript=no,queues=$QUEUES" \
    -device "virtio-net-pci,netdev=net0,mac=52:54:00:e8:00:$num,mq=on,vectors=$((2 * QUEUES + 2)),romfile=" \
    -object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-pci,rng=rng0 \
    -display none -monitor none -serial "file:$log_dir/$vm-console.log" \
    -daemonize -pidfile "$run_dir/$vm.pid" 9>&- \
    || die "QEMU did not start for $vm"
  say "VM $vm: QEMU $(cat "$run_dir/$vm.pid") started (kernel ${kernel##*/})"
}

vm_pid() { cat "$run_dir/$1.pid" 2>/dev/null; }
vm_running() {
  local pid
  pid=$(vm_pid "$1") && [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

# vm_wait_up NAME [SECONDS]: waits until a new ssh login works and systemd
# has finished booting (running or degraded, the failed units named).
vm_wait_up() {
  local vm=$1 limit=${2:-$BOOT_TIMEOUT} t0=$SECONDS state
  while ! can_login "$(vm_ip "$vm")"; do
    vm_running "$vm" || { tail -n 30 "$log_dir/$vm-console.log" >&2; fail "VM $vm: QEMU exited"; return 1; }
    if ((SECONDS - t0 >= limit)); then
      tail -n 30 "$log_dir/$vm-console.log" >&2
      fail "VM $vm: no ssh login after $limit s (console: $log_dir/$vm-console.log)"
      return 1
    fi
    sleep 1
  done
  state=$(in_vm "$vm" timeout $((limit - (SECONDS - t0) + 5)) systemctl is-system-running --wait 2>/dev/null || true)
  case $state in
    running) ;;
    degraded) say "VM $vm: degraded; failed units: $(in_vm "$vm" systemctl --failed --no-legend --plain | awk '{print $1}' | xargs)" ;;
    *)
      fail "VM $vm: system state '$state' (console: $log_dir/$vm-console.log)"
      return 1
      ;;
  esac
  say "VM $vm: up in $((SECONDS - t0)) s ($state, kernel $(in_vm "$vm" uname -r))"
}

# in_vm NAME COMMAND...: COMMAND (one shell command line, as ssh joins its
# words) run in the VM as root, over the VM's ssh master connection.
in_vm() {
  local vm=$1
  shift
  # (9>&-: the master stays in the background; it must not hold the lock.)
  client_ssh "$(vm_ip "$vm")" -o ControlMaster=auto -o "ControlPath=$ctl_dir/$vm" \
    -o ControlPersist=300 -o ServerAliveCountMax=6 -- "$@" 9>&-
}
# ssh_close NAME: ends the VM's master connection (before a reboot, or at
# the end).
ssh_close() {
  [[ -S $ctl_dir/$1 ]] || return 0
  ip netns exec "$NS_CLIENT" ssh -o "ControlPath=$ctl_dir/$1" -O exit "root@$(vm_ip "$1")" \
    >/dev/null 2>&1 || true
  rm -f "$ctl_dir/$1"
}

# stop_qemu PID: SIGTERM (QEMU exits at once: the VM is gone as if powered
# off), SIGKILL if it lingers; only a QEMU of this tier (its command line
# names our run directory).
stop_qemu() {
  local pid=$1 i
  [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") == *qemu-system*"$run_dir/"* ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.2
}

# vm_stop NAME [leftover]: the VM, its ssh master, its tap and its overlay.
vm_stop() {
  local vm=$1 pid
  ssh_close "$vm"
  pid=$(vm_pid "$vm" || true)
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    [[ ${2-} == leftover ]] && say "stopping VM $vm, left running (QEMU $pid)"
    stop_qemu "$pid"
  fi
  rm -f "$run_dir/$vm.pid" "$run_dir/$vm.qcow2"
  ip -n "$NS_LAN" link del "tap-$vm" 2>/dev/null || true
}

# vm_cleanup [leftover]: everything of this tier, by PID (the pid files, and QEMUs
# whose command line names our run directory: what a run killed hard left)
# and by name (namespaces, overlays, ssh sockets).
vm_cleanup() {
  local vm pid
  touch "$run_dir/probe.stop" # a reboot scenario's prober ends by itself
  for vm in "${!VM_NUM[@]}"; do vm_stop "$vm" "${1-}"; done
  for pid in $(pgrep -f -- "^qemu-system-x86_64 -name hfwq-" || true); do
    say "stopping a VM left running (QEMU $pid)"
    stop_qemu "$pid"
  done
  net_down
  rm -rf "$ctl_dir" "$run_dir"/*.qcow2 "$run_dir"/*.pid
  mkdir -p "$ctl_dir"
}
