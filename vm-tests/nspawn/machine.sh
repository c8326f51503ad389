# vm-tests/nspawn/machine.sh: one systemd-nspawn machine as a node, and its
# network, built and torn down by the test. Sourced by vm-tests/nspawn.sh.
#
# - A Debian rootfs (debootstrap minbase), built once and cached under
#   vm-tests/.cache/ keyed by a hash of suite, mirror and packages.
# - The machine's disk: an overlayfs over that rootfs with its upper layer
#   in the run directory, so that what the machine writes survives a
#   reboot (poweroff, then boot again) and the cached rootfs stays clean.
# - Network namespaces owned by the test: $NS_NODE (the machine's network:
#   eth0 $NODE_IP/24) and $NS_CLIENT ($CLIENT_IP/24), joined by a veth.
# - A bpffs instance of its own for each boot, seen as /sys/fs/bpf inside.
# A reboot (machine_reboot) tears down the network namespace and the bpffs
# and makes new ones, as a real reboot loses the NIC's programs and the pins.

NAME=hfwvm
NS_NODE=hfwvm-node
NS_CLIENT=hfwvm-client
NODE_IP=10.231.0.1
CLIENT_IP=10.231.0.2
SUITE=bookworm
PACKAGES=systemd,systemd-sysv,dbus,openssh-server,iproute2,iputils-ping,procps,netcat-openbsd,rpm
BOOT_TIMEOUT=40

run_dir=$cache/nspawn
root_dir=$run_dir/root     # the overlay mount: the machine's /
bpffs_dir=$run_dir/bpffs
nspawn_pid=
leader=

# build_rootfs: sets $rootfs, building it if the cache has none for the key.
build_rootfs() {
  local mirror key t0
  mirror=$(debian_mirror)
  key=$(printf '%s\n' "$SUITE" minbase "$mirror" "$PACKAGES" | sha256sum | cut -c1-16)
  rootfs=$cache/rootfs-$key
  if [[ -e $rootfs/.hfwvm-complete ]]; then
    say "rootfs cached: $rootfs"
    return 0
  fi
  say "building rootfs $rootfs ($SUITE from $mirror; about a minute)"
  rm -rf --one-file-system "$rootfs.tmp"
  t0=$SECONDS
  if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs.tmp" "$mirror" \
    >"$log_dir/debootstrap.log" 2>&1; then
    tail -n 20 "$log_dir/debootstrap.log" >&2
    die "debootstrap failed (log: $log_dir/debootstrap.log)"
  fi
  # A machine for tests: no root password, quiet consoles, a name.
  echo "$NAME" >"$rootfs.tmp/etc/hostname"
  chroot "$rootfs.tmp" passwd -d root >/dev/null
  chroot "$rootfs.tmp" systemctl mask getty@tty1.service console-getty.service \
    systemd-networkd-wait-online.service >/dev/null 2>&1 || true
  rm -rf "$rootfs.tmp"/var/cache/apt/archives/*.deb
  touch "$rootfs.tmp/.hfwvm-complete"
  # Images of other keys go; this one takes their place.
  find "$cache" -maxdepth 1 -name 'rootfs-*' ! -name "rootfs-$key.tmp" \
    -exec rm -rf --one-file-system {} +
  mv "$rootfs.tmp" "$rootfs"
  say "rootfs built in $((SECONDS - t0)) s"
}

# disk_create: a fresh overlay over $rootfs at $root_dir, with root's
# authorized_keys for the test's ssh key.
disk_create() {
  disk_remove
  mkdir -p "$run_dir/upper" "$run_dir/work" "$root_dir"
  mount -t overlay overlay \
    -o "lowerdir=$rootfs,upperdir=$run_dir/upper,workdir=$run_dir/work" "$root_dir"
  install -d -m 700 "$root_dir/root/.ssh"
  install -m 600 "$SSH_KEY.pub" "$root_dir/root/.ssh/authorized_keys"
}
disk_remove() {
  if mountpoint -q "$root_dir"; then umount "$root_dir"; fi
  rm -rf --one-file-system "$run_dir/upper" "$run_dir/work"
}

net_up() {
  net_down
  ip netns add "$NS_NODE"
  ip netns add "$NS_CLIENT"
  ip -n "$NS_NODE" link add eth0 type veth peer name eth0 netns "$NS_CLIENT"
  ip -n "$NS_NODE" addr add "$NODE_IP/24" dev eth0
  ip -n "$NS_CLIENT" addr add "$CLIENT_IP/24" dev eth0
  local ns
  for ns in "$NS_NODE" "$NS_CLIENT"; do
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
  done
}
net_down() {
  ip netns del "$NS_CLIENT" 2>/dev/null || true
  ip netns del "$NS_NODE" 2>/dev/null || true
}

# Each mount of bpffs is a new instance: the pins of a boot die with it.
bpffs_up() {
  bpffs_down
  mkdir -p "$bpffs_dir"
  mount -t bpf bpf "$bpffs_dir"
}
bpffs_down() {
  if mountpoint -q "$bpffs_dir"; then umount "$bpffs_dir"; fi
}

# in_vm COMMAND...: runs COMMAND inside the machine (all its namespaces),
# in a clean environment: the machine's systemctl and journalctl find its
# PID 1 through /run/systemd in its mount namespace.
in_vm() {
  nsenter -t "$leader" -m -u -i -n -p -C -r -w \
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}
# in_vm_sh SCRIPT: a shell command line (pipes, tests) inside the machine.
in_vm_sh() { in_vm sh -c "$1"; }

# The machine's init: a descendant of nspawn that is PID 1 in its own PID
# namespace.
find_leader() {
  local status pid ppid
  for status in /proc/[0-9]*/status; do
    pid=${status#/proc/}
    pid=${pid%/status}
    grep -qE '^NSpid:[[:space:]]+[0-9]+[[:space:]]+1$' "$status" 2>/dev/null || continue
    ppid=$pid
    while [[ -n $ppid && $ppid -gt 1 ]]; do
      [[ $ppid == "$nspawn_pid" ]] && { leader=$pid; return 0; }
      ppid=$(awk '/^PPid:/ {print $2}' "/proc/$ppid/status" 2>/dev/null)
    done
  done
  return 1
}

# machine_boot: boots the machine on the disk and network that exist, and
# waits for systemd to report running (or degraded, with the failed units
# named).
machine_boot() {
  local t0=$SECONDS deadline state boot_log=$log_dir/nspawn-$((++boots)).log
  systemd-nspawn -q -D "$root_dir" -M "$NAME" --boot \
    --register=no --keep-unit --capability=all \
    --system-call-filter='bpf perf_event_open' \
    --bind="$bpffs_dir:/sys/fs/bpf" \
    --network-namespace-path="/run/netns/$NS_NODE" \
    --bind-ro="$deb:/root/hostfw.deb" --bind-ro="$rpm:/root/hostfw.rpm" \
    </dev/null >"$boot_log" 2>&1 9>&- &
  nspawn_pid=$!
  echo "$nspawn_pid" >"$run_dir/nspawn.pid"
  deadline=$((SECONDS + BOOT_TIMEOUT))
  leader=
  until find_leader; do
    kill -0 "$nspawn_pid" 2>/dev/null || { cat "$boot_log" >&2; die "boot: systemd-nspawn exited"; }
    ((SECONDS < deadline)) || die "boot: no init in the machine after ${BOOT_TIMEOUT} s"
    sleep 0.2
  done
  while :; do
    state=$(in_vm timeout 5 systemctl is-system-running 2>/dev/null || true)
    case $state in running | degraded) break ;; esac
    kill -0 "$nspawn_pid" 2>/dev/null || { cat "$boot_log" >&2; die "boot: systemd-nspawn exited"; }
    if ((SECONDS >= deadline)); then
      in_vm systemctl --failed --no-legend >&2 || true
      die "boot: system state '$state' after ${BOOT_TIMEOUT} s (log: $boot_log)"
    fi
    sleep 0.5
  done
  say "boot $boots: $state in $((SECONDS - t0)) s (nspawn $nspawn_pid, init $leader)"
  if [[ $state == degraded ]]; then
    say "boot $boots: failed units: $(in_vm systemctl --failed --no-legend --plain | awk '{print $1}' | xargs)"
  fi
}
boots=0

# machine_poweroff: a clean shutdown from inside (systemd stops the units,
# hostfw's stop leaves the programs attached); waits for nspawn to exit.
machine_poweroff() {
  local i
  in_vm systemctl poweroff --no-block >/dev/null 2>&1 || true
  for i in $(seq 1 300); do
    kill -0 "$nspawn_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$nspawn_pid" 2>/dev/null; then
    say "machine did not power off in 30 s: stopping nspawn $nspawn_pid"
    stop_nspawn "$nspawn_pid"
  fi
  wait "$nspawn_pid" 2>/dev/null || true
  nspawn_pid=
  rm -f "$run_dir/nspawn.pid"
}

# machine_reboot: power off; a new network namespace (the NIC comes back
# without programs) and a new bpffs (no pins); boot the same disk.
machine_reboot() {
  machine_poweroff
  net_up
  bpffs_up
  machine_boot
}

# stop_nspawn PID: the first SIGTERM asks the machine's systemd to halt, a
# second one terminates it at once, SIGKILL last.
stop_nspawn() {
  local pid=$1 sig i
  for sig in TERM TERM KILL; do
    kill -0 "$pid" 2>/dev/null || return 0
    kill "-$sig" "$pid" 2>/dev/null
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || return 0
      sleep 0.1
    done
    say "nspawn $pid still running 10 s after SIG$sig"
  done
  sleep 0.5
}

# machine_cleanup: everything of this tier, by PID and by name; also what a
# run killed hard left behind.
machine_cleanup() {
  local pid
  for pid in "$nspawn_pid" "$(cat "$run_dir/nspawn.pid" 2>/dev/null)" \
    $(pgrep -f -- "^systemd-nspawn .*-M $NAME --boot" || true); do
    [[ -n $pid ]] || continue
    if [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") == *systemd-nspawn*"-M $NAME "* ]]; then
      [[ $pid == "$nspawn_pid" ]] || say "stopping a machine left running (nspawn $pid)"
      stop_nspawn "$pid"
    fi
  done
  nspawn_pid=
  rm -f "$run_dir/nspawn.pid"
  net_down
  bpffs_down
  disk_remove
}
