#!/usr/bin/env bash
# vm-tests/run.sh: system tests of the hostfw .deb on a systemd-nspawn
# machine (tier 1 of /work/shared/TOOLCHAIN.md: shares this kernel).
#
# As root:  vm-tests/run.sh
#
# 1. A Debian bookworm rootfs (debootstrap minbase), built once and cached
#    under vm-tests/.cache/ keyed by a hash of suite, mirror and packages.
# 2. The .deb from scripts/package.sh.
# 3. Network namespaces owned by the test: hfwvm-node (the machine's network:
#    eth0 10.231.0.1/24) and hfwvm-client (10.231.0.2/24), joined by a veth.
# 4. An ephemeral nspawn machine booted from the rootfs in hfwvm-node, with
#    its own bpffs instance on /sys/fs/bpf (pins do not touch the host's).
# 5. Scenarios: "install" (dpkg -i, unit active, attached, status in audit
#    mode on eth0) and "audit" (a flow the policy denies passes and is shown
#    by `hostfw observe --verdict audit`).
# Everything is removed on exit (trap), by PID and by the names above.
# Needs: debootstrap systemd-container iproute2 netcat-openbsd python3
# (scripts/install-deps.sh). Traffic only between the two namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

NAME=hfwvm
NS_NODE=hfwvm-node
NS_CLIENT=hfwvm-client
NODE_IP=10.231.0.1
CLIENT_IP=10.231.0.2
AUDIT_PORT=8080
SUITE=bookworm
PACKAGES=systemd,systemd-sysv,dbus,openssh-server,iproute2,iputils-ping,procps,netcat-openbsd
BOOT_TIMEOUT=30

cache=$root/vm-tests/.cache
run_dir=$cache/run
log_dir=$cache/logs

say() { echo "vm-tests: $*"; }
die() { echo "vm-tests: FAIL: $*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "run as root"
for tool in debootstrap systemd-nspawn ip nc nsenter python3 sha256sum timeout; do
  command -v "$tool" >/dev/null || die "missing $tool; run scripts/install-deps.sh"
done

# The mirror of this machine's apt sources (deb822 first, then one-line).
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)[[:space:]]*$/\1/p' \
  /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1 || true)
if [[ -z $mirror ]]; then
  mirror=$(awk '$1 == "deb" && $2 !~ /^\[/ && $2 ~ /\/debian\/?$/ {print $2; exit}' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
fi
[[ -n $mirror ]] || die "no Debian mirror found in /etc/apt/sources.list{,.d}"

# ---------------------------------------------------------------- cleanup
nspawn_pid=
bpffs_dir=
stop_nspawn() { # stop_nspawn PID: a systemd-nspawn process and its machine
  local pid=$1 i
  # The first SIGTERM asks the container's systemd to halt; a second one
  # terminates it at once (nspawn kills the machine and removes the
  # ephemeral copy); SIGKILL last.
  for sig in TERM TERM KILL; do
    kill -0 "$pid" 2>/dev/null || return 0
    kill "-$sig" "$pid" 2>/dev/null
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    say "nspawn $pid still running 10 s after SIG$sig"
  done
  sleep 0.5
}
cleanup() {
  local rc=$?
  set +e
  [[ -n $nspawn_pid ]] && stop_nspawn "$nspawn_pid"
  # Left from an earlier run killed hard: only our own namespaces and mounts.
  ip netns del "$NS_CLIENT" 2>/dev/null
  ip netns del "$NS_NODE" 2>/dev/null
  if [[ -n $bpffs_dir ]] && mountpoint -q "$bpffs_dir"; then
    umount "$bpffs_dir"
  fi
  # Ephemeral copies nspawn leaves beside the image when it was SIGKILLed.
  # (tempfn_random: DIR/.#machine.IMAGE<random>.)
  find "$cache" -maxdepth 1 -name ".#*machine.rootfs-*" -exec rm -rf --one-file-system {} + 2>/dev/null
  rm -f "$run_dir/nspawn.pid"
  exit "$rc"
}

# One run at a time (fixed names), and what a run killed hard left behind.
mkdir -p "$cache" "$run_dir" "$log_dir"
exec 9>"$cache/lock"
flock -n 9 || die "another vm-tests/run.sh is running (lock $cache/lock)"
# From here on this run owns the names, the cache and what is left in them.
trap cleanup EXIT
trap 'exit 130' INT TERM
if [[ -s $run_dir/nspawn.pid ]]; then
  old=$(<"$run_dir/nspawn.pid")
  if [[ $(tr '\0' ' ' <"/proc/$old/cmdline" 2>/dev/null) == *systemd-nspawn*"-M $NAME "* ]]; then
    say "stopping the machine a previous run left (nspawn $old)"
    stop_nspawn "$old"
  fi
  rm -f "$run_dir/nspawn.pid"
fi
if mountpoint -q "$run_dir/bpffs"; then umount "$run_dir/bpffs"; fi
find "$cache" -maxdepth 1 -name ".#*machine.rootfs-*" -exec rm -rf --one-file-system {} +

# ---------------------------------------------------------------- 1. rootfs
key=$(printf '%s\n' "$SUITE" minbase "$mirror" "$PACKAGES" | sha256sum | cut -c1-16)
rootfs=$cache/rootfs-$key
if [[ ! -e $rootfs/.hfwvm-complete ]]; then
  say "building rootfs $rootfs ($SUITE from $mirror; about a minute)"
  rm -rf --one-file-system "$rootfs.tmp"
  t0=$SECONDS
  if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs.tmp" "$mirror" \
      >"$log_dir/debootstrap.log" 2>&1; then
    tail -n 20 "$log_dir/debootstrap.log" >&2
    die "debootstrap failed (log: $log_dir/debootstrap.log)"
  fi
  # A machine for tests: no root password prompt, quiet consoles, a name.
  echo "$NAME" >"$rootfs.tmp/etc/hostname"
  chroot "$rootfs.tmp" passwd -d root >/dev/null
  chroot "$rootfs.tmp" systemctl mask getty@tty1.service console-getty.service \
    systemd-networkd-wait-online.service >/dev/null 2>&1 || true
  apt-get clean -o Dir="$rootfs.tmp" 2>/dev/null || true
  rm -rf "$rootfs.tmp"/var/cache/apt/archives/*.deb
  touch "$rootfs.tmp/.hfwvm-complete"
  # Old images of other keys go; this one takes their place.
  find "$cache" -maxdepth 1 -name 'rootfs-*' ! -name "rootfs-$key.tmp" \
    -exec rm -rf --one-file-system {} +
  mv "$rootfs.tmp" "$rootfs"
  say "rootfs built in $((SECONDS - t0)) s"
else
  say "rootfs cached: $rootfs"
fi

# ---------------------------------------------------------------- 2. .deb
t0=$SECONDS
pkg_out=$(./scripts/package.sh 2>"$log_dir/package.stderr") \
  || { tail -n 20 "$log_dir/package.stderr" >&2; die "scripts/package.sh failed"; }
deb=$(sed -n 's/^deb: //p' <<<"$pkg_out")
[[ -f $deb ]] || die "scripts/package.sh printed no deb: line"
say "package: $deb ($((SECONDS - t0)) s)"

# ---------------------------------------------------------------- 3. network
ip netns del "$NS_CLIENT" 2>/dev/null || true
ip netns del "$NS_NODE" 2>/dev/null || true
ip netns add "$NS_NODE"
ip netns add "$NS_CLIENT"
ip -n "$NS_NODE" link add eth0 type veth peer name eth0 netns "$NS_CLIENT"
ip -n "$NS_NODE" addr add "$NODE_IP/24" dev eth0
ip -n "$NS_CLIENT" addr add "$CLIENT_IP/24" dev eth0
for ns in "$NS_NODE" "$NS_CLIENT"; do
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
done

# A bpffs instance of its own (each mount is a new one), seen as /sys/fs/bpf
# inside: the daemon's pins never meet the host's.
bpffs_dir=$run_dir/bpffs
mkdir -p "$bpffs_dir"
mountpoint -q "$bpffs_dir" && umount "$bpffs_dir"
mount -t bpf bpf "$bpffs_dir"

# ---------------------------------------------------------------- 4. boot
boot_log=$log_dir/nspawn.log
t0=$SECONDS
systemd-nspawn -q -D "$rootfs" --ephemeral -M "$NAME" --boot \
  --register=no --keep-unit --capability=all \
  --system-call-filter='bpf perf_event_open' \
  --bind="$bpffs_dir:/sys/fs/bpf" \
  --network-namespace-path="/run/netns/$NS_NODE" \
  --bind-ro="$deb:/root/hostfw.deb" \
  </dev/null >"$boot_log" 2>&1 9>&- &
nspawn_pid=$!
echo "$nspawn_pid" >"$run_dir/nspawn.pid"

# The container's init: a descendant of nspawn that is PID 1 in its own
# PID namespace.
leader=
find_leader() {
  local status pid ppid
  for status in /proc/[0-9]*/status; do
    pid=${status#/proc/}; pid=${pid%/status}
    grep -qE '^NSpid:[[:space:]]+[0-9]+[[:space:]]+1$' "$status" 2>/dev/null || continue
    ppid=$pid
    while [[ -n $ppid && $ppid -gt 1 ]]; do
      [[ $ppid == "$nspawn_pid" ]] && { leader=$pid; return 0; }
      ppid=$(awk '/^PPid:/ {print $2}' "/proc/$ppid/status" 2>/dev/null)
    done
  done
  return 1
}
in_vm() {
  # A clean environment: the container's systemctl/journalctl find PID 1 via
  # /run/systemd, which the mount namespace provides.
  nsenter -t "$leader" -m -u -i -n -p -C -r -w \
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}
deadline=$((SECONDS + BOOT_TIMEOUT))
until find_leader; do
  kill -0 "$nspawn_pid" 2>/dev/null || { cat "$boot_log" >&2; die "boot: systemd-nspawn exited"; }
  ((SECONDS < deadline)) || die "boot: no container init after ${BOOT_TIMEOUT} s"
  sleep 0.2
done
state=
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
say "boot: $state in $((SECONDS - t0)) s (nspawn $nspawn_pid, init $leader)"
if [[ $state == degraded ]]; then
  say "boot: failed units: $(in_vm systemctl --failed --no-legend --plain | awk '{print $1}' | xargs)"
fi

# ---------------------------------------------------------------- scenarios
passed=0
failed=()
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds
  local limit=$1 what=$2 end
  shift 2
  end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || { echo "  timed out after ${limit} s waiting for: $what" >&2; return 1; }
    sleep 0.5
  done
}
run_scenario() { # run_scenario NAME FUNCTION
  local name=$1 start=$SECONDS
  say "scenario $name: start"
  local rc
  set +e
  ("$2")
  rc=$?
  set -e
  if ((rc == 0)); then
    passed=$((passed + 1))
    say "scenario $name: PASS in $((SECONDS - start)) s"
  else
    failed+=("$name")
    say "scenario $name: FAIL in $((SECONDS - start)) s"
    in_vm journalctl -u hostfw --no-pager -n 30 >&2 2>/dev/null || true
  fi
}
json_check() { # json_check PYTHON-EXPRESSION (on `d`, stdin JSON): exit 0 if true
  python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if ('"$1"') else 1)'
}

scenario_install() {
  set -e
  in_vm env DEBIAN_FRONTEND=noninteractive dpkg -i /root/hostfw.deb >"$log_dir/dpkg.log" 2>&1 \
    || { cat "$log_dir/dpkg.log" >&2; echo "  dpkg -i failed" >&2; return 1; }
  # The postinst enables and starts it (README "Install on a node").
  in_vm systemctl is-enabled --quiet hostfw || { echo "  hostfw.service not enabled by dpkg -i" >&2; return 1; }
  if in_vm systemctl is-active --quiet hostfw; then
    echo "  enabled and started by the postinst"
  else
    echo "  enabled, not active after dpkg -i: systemctl start hostfw"
  fi
  in_vm systemctl start hostfw || { echo "  systemctl start hostfw failed" >&2; return 1; }
  wait_for 15 "hostfw active" in_vm systemctl is-active --quiet hostfw
  wait_for 15 "'attached' in the journal" \
    bash -c "$(declare -f in_vm); leader=$leader; in_vm journalctl -u hostfw --no-pager -o cat | grep -q attached"
  local st
  wait_for 10 "hostfw status" in_vm hostfw status -o json
  st=$(in_vm hostfw status -o json)
  echo "$st" >"$log_dir/status-install.json"
  json_check 'd.get("mode") == "audit"' <<<"$st" \
    || { echo "  status: mode is not audit: $st" >&2; return 1; }
  grep -q '"eth0"' <<<"$st" \
    || { echo "  status: eth0 not listed: $st" >&2; return 1; }
  echo "  active, attached, mode audit, eth0 listed"
}

# A baseline policy (the example's: ssh and ping in, nothing else) makes an
# inbound TCP $AUDIT_PORT from the client a would-be-denied flow.
POLICY='apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: vm-baseline
spec:
  nodeSelector: {}
  ingress:
  - toPorts:
    - ports:
      - port: "22"
        protocol: TCP
  - fromEntities:
    - world
    icmps:
    - fields:
      - type: EchoRequest
        family: IPv4'

scenario_audit() {
  set -e
  in_vm sh -c "cat > /etc/hostfw/policies.d/vm-baseline.yaml" <<<"$POLICY"
  wait_for 15 "policy vm-baseline loaded" \
    bash -c "$(declare -f in_vm); leader=$leader; in_vm hostfw status -o json | grep -q vm-baseline"
  in_vm systemd-run --quiet --unit=hfwvm-listen nc -lk "$AUDIT_PORT" \
    || { echo "  could not start the listener" >&2; return 1; }
  wait_for 10 "listener on :$AUDIT_PORT" \
    bash -c "$(declare -f in_vm); leader=$leader; in_vm ss -Htln 'sport = :$AUDIT_PORT' | grep -q LISTEN"
  # Audit mode: the denied flow still connects.
  ip netns exec "$NS_CLIENT" timeout 5 nc -z -w 3 "$NODE_IP" "$AUDIT_PORT" \
    || { echo "  client could not connect to $NODE_IP:$AUDIT_PORT (audit mode must pass it)" >&2; return 1; }
  local flows
  match='any(f.get("verdict") == "audit" and f.get("dport") == '"$AUDIT_PORT"' and f.get("src") == "'"$CLIENT_IP"'" for f in d)'
  check_flows() {
    flows=$(in_vm hostfw observe --verdict audit -o json) || return 1
    # JSON lines or one array: normalise to a list.
    python3 -c '
import json,sys
t=sys.stdin.read().strip()
try:
    d=json.loads(t); d=d if isinstance(d,list) else [d]
except ValueError:
    d=[json.loads(l) for l in t.splitlines() if l.strip()]
sys.exit(0 if ('"$match"') else 1)' <<<"$flows"
  }
  local end=$((SECONDS + 10))
  until check_flows; do
    if ((SECONDS >= end)); then
      echo "  no audit verdict for $CLIENT_IP -> $NODE_IP:$AUDIT_PORT in hostfw observe:" >&2
      echo "$flows" | tail -n 10 >&2
      return 1
    fi
    sleep 0.5
  done
  echo "$flows" >"$log_dir/observe-audit.json"
  echo "  connection passed; observe shows it as audit"
}

scenario_reload() {
  set -e
  # A broken policy file and `systemctl reload`: the running policy stays,
  # the service stays active, and status names the file and line.
  in_vm sh -c "printf 'apiVersion: cilium.io/v2\nkind: Nope\n' > /etc/hostfw/policies.d/broken.yaml"
  in_vm systemctl reload hostfw
  wait_for 10 "status shows the broken file" \
    bash -c "$(declare -f in_vm); leader=$leader; in_vm hostfw status -o json | grep -q 'broken.yaml:2:'"
  in_vm systemctl is-active --quiet hostfw \
    || { echo "  hostfw is not active after a broken reload" >&2; return 1; }
  in_vm hostfw status -o json | grep -q vm-baseline \
    || { echo "  the running policy was dropped" >&2; return 1; }
  in_vm rm /etc/hostfw/policies.d/broken.yaml
  in_vm systemctl reload hostfw
  wait_for 10 "the error clears" \
    bash -c "$(declare -f in_vm); leader=$leader; in_vm hostfw status -o json | grep -q '\"last_error\": null'"
  echo "  broken file refused with its position; fixed file reloaded"
}

scenario_upgrade() {
  set -e
  # Enforce (a trial, confirmed), then reinstall the package under
  # continuous traffic: new ssh connections (allowed: failsafe) must all
  # connect, new connections to the audit port (denied) never.
  in_vm hostfw mode enforce --force >/dev/null
  in_vm hostfw confirm >/dev/null
  in_vm hostfw status -o json | grep -q '"mode": "enforce"' \
    || { echo "  not in enforce mode" >&2; return 1; }
  local pid_before pid_after
  pid_before=$(in_vm systemctl show -p MainPID --value hostfw)
  local counts="$log_dir/upgrade-traffic"
  ip netns exec "$NS_CLIENT" bash -c '
    ok=0 lost=0 leaked=0 end=$((SECONDS + $1))
    while ((SECONDS < end)); do
      if nc -z -w 2 '"$NODE_IP"' 22; then ok=$((ok + 1)); else lost=$((lost + 1)); fi
      if nc -z -w 1 '"$NODE_IP"' '"$AUDIT_PORT"'; then leaked=$((leaked + 1)); fi
    done
    echo "$ok $lost $leaked"' _ 8 >"$counts" &
  local sender=$!
  sleep 1
  in_vm dpkg -i /root/hostfw.deb >"$log_dir/upgrade.log" 2>&1 \
    || { echo "  dpkg -i (upgrade) failed" >&2; tail -n 20 "$log_dir/upgrade.log" >&2; return 1; }
  wait "$sender"
  local ok lost leaked
  read -r ok lost leaked <"$counts"
  echo "  during the upgrade: $ok ssh connections, $lost lost; $leaked denied ones let through"
  in_vm systemctl is-active --quiet hostfw || { echo "  hostfw not active after the upgrade" >&2; return 1; }
  pid_after=$(in_vm systemctl show -p MainPID --value hostfw)
  [[ $pid_before != "$pid_after" ]] \
    || { echo "  the upgrade did not restart the daemon (pid $pid_before)" >&2; return 1; }
  echo "  daemon restarted by the upgrade: pid $pid_before -> $pid_after"
  ((ok >= 5)) || { echo "  too little traffic" >&2; return 1; }
  ((lost == 0 && leaked == 0)) || return 1
}

scenario_purge() {
  set -e
  in_vm ip -details link show dev eth0 | grep -q 'name hostfw_xdp' \
    || { echo "  hostfw's XDP program is not attached before the purge" >&2; return 1; }
  in_vm dpkg --purge hostfw >"$log_dir/purge.log" 2>&1 \
    || { echo "  dpkg --purge failed:" >&2; tail -n 20 "$log_dir/purge.log" >&2; return 1; }
  if in_vm ip -details link show dev eth0 | grep -q 'name hostfw_xdp'; then
    echo "  XDP program still attached after the purge" >&2; return 1
  fi
  for dir in ingress egress; do
    if in_vm tc filter show dev eth0 "$dir" | grep -q hostfw_tc_; then
      echo "  TC filter still attached ($dir) after the purge" >&2; return 1
    fi
  done
  # The conffile goes; files the operator added (the scenarios' policy)
  # stay, as dpkg does for any package.
  for path in /sys/fs/bpf/hostfw /var/lib/hostfw /etc/hostfw/hostfw.toml /usr/sbin/hostfw; do
    if in_vm test -e "$path"; then
      echo "  $path still there after the purge" >&2; return 1
    fi
  done
  echo "  programs detached; pins, state, binary and conffile removed"
}

run_scenario install scenario_install
for next in audit reload upgrade purge; do
  if ((${#failed[@]} == 0)); then
    run_scenario "$next" "scenario_$next"
  else
    failed+=("$next (not run: an earlier scenario failed)")
  fi
done

total=$((passed + ${#failed[@]}))
if ((${#failed[@]})); then
  say "$passed passed, ${#failed[@]} failed: ${failed[*]}"
  exit 1
fi
say "$total passed, 0 failed"
