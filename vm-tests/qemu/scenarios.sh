# vm-tests/qemu/scenarios.sh: what an operator does with the .deb on real
# VMs: VM a runs Debian's 6.1 cloud kernel (no TCX: the clsact path), VM b
# the 6.12 one from bookworm-backports (TCX). Sourced by vm-tests/qemu.sh,
# which provides in_vm, the VMs and the network.
#
# "install" sets both VMs up; every scenario after it sets up the policy,
# mode and configuration it needs itself, so one failing does not stop the
# others.

TRIAL=30 # the lockout trials: --trial 30s

status_json() { in_vm "$1" hostfw status -o json; }
# journal_has VM TEXT [SINCE]: hostfw's journal of this boot (since the
# epoch SINCE) has a line containing TEXT.
journal_has() {
  in_vm "$1" "journalctl -b -u hostfw ${3:+--since=@$3} --no-pager -o cat | grep -qF -- '$2'"
}
vm_now() { in_vm "$1" date +%s; }
# tcp_ok SRC DST PORT: a new TCP connection from the client (source SRC).
tcp_ok() { in_client timeout 6 nc -z -w 3 -s "$1" "$2" "$3" >/dev/null 2>&1; }
# vm_tcp_ok VM DST PORT: a new TCP connection from VM to DST.
vm_tcp_ok() { in_vm "$1" "timeout 6 nc -z -w 3 $2 $3" >/dev/null 2>&1; }
# bastion_ssh VM COMMAND: ssh from the bastion address (.3), a fresh login.
bastion_ssh() { client_ssh "$(vm_ip "$1")" -b "$NET4.3" -- "$2"; }

# listen [--udp] VM PORT...: TCP listeners (or UDP receivers) in the VM
# (hfwq-tcp@PORT / hfwq-udp@PORT, enabled: they come back at boot, before
# the network is up).
listen() {
  local kind=tcp flag=t what=listener
  if [[ $1 == --udp ]]; then kind=udp flag=u what="UDP receiver"; shift; fi
  local vm=$1 p units=()
  shift
  for p in "$@"; do units+=("hfwq-$kind@$p.service"); done
  in_vm "$vm" systemctl enable --now --quiet "${units[@]}" || fail "could not start ${what}s on $vm"
  for p in "$@"; do
    wait_for 20 "$what on $vm:$p" in_vm "$vm" "ss -H${flag}ln 'sport = :$p' | grep -q ." || return 1
  done
}

# set_policy VM NAME < YAML: the policy as /etc/hostfw/policies.d/NAME.yaml,
# the other test policies there removed; waits until the daemon runs it.
set_policy() {
  local vm=$1 name=$2
  in_vm "$vm" "cat > /etc/hostfw/policies.d/$name.yaml && cd /etc/hostfw/policies.d && for f in vm-*.yaml; do [ \"\$f\" = $name.yaml ] || rm -f \"\$f\"; done" \
    || fail "could not write policy $name on $vm"
  policy_loaded() {
    status_json "$vm" | json_check '[p["name"] for p in d["policies"]] == ["'"$2"'"] and d["policies"][0]["selection"] == "selected" and d["last_error"] is None'
  }
  wait_for 30 "policy $name in force on $vm (alone)" policy_loaded "$vm" "$name" \
    || { status_json "$vm" >&2; return 1; }
}

# enforce_confirmed VM: enforcing, as a confirmed policy (an operator's
# `hostfw mode enforce` and `hostfw confirm`), unless it already is.
enforce_confirmed() {
  local vm=$1
  if ! status_json "$vm" | json_check 'd["mode"] == "enforce" and d["trial"] is None'; then
    in_vm "$vm" hostfw mode enforce --force >/dev/null || fail "hostfw mode enforce failed on $vm"
    in_vm "$vm" hostfw confirm >/dev/null || fail "hostfw confirm failed on $vm"
  fi
  status_json "$vm" | json_check 'd["mode"] == "enforce" and d["trial"] is None' \
    || fail "$vm is not enforcing a confirmed policy: $(status_json "$vm")"
}

# eth0_attachment VM: "xdp X, tc Y, pinned Z" from hostfw status.
eth0_attachment() {
  status_json "$1" | python3 -c '
import json,sys
d=json.load(sys.stdin)
e=[i for i in d["interfaces"] if i["name"] == "eth0"]
print("xdp %s, tc %s, pinned %s" % (e[0]["xdp"], e[0]["tc"], str(e[0]["pinned"]).lower()) if e else "eth0 not attached")'
}

# The test's listeners, installed with the package: systemd units started
# as early as possible at boot (no default dependencies), so that the
# reboot scenario sees them listen before the network is configured.
LISTENER_UNITS='
cat > /etc/systemd/system/hfwq-tcp@.service <<"EOF"
[Unit]
Description=vm-tests: TCP listener on :%i
DefaultDependencies=no
[Service]
ExecStart=/usr/bin/socat TCP6-LISTEN:%i,ipv6only=0,reuseaddr,fork,backlog=128 OPEN:/dev/null
Restart=always
RestartSec=200ms
[Install]
WantedBy=sysinit.target
EOF
cat > /etc/systemd/system/hfwq-udp@.service <<"EOF"
[Unit]
Description=vm-tests: UDP receiver on :%i (writes what arrives to /run/hfwq-udp-%i.log)
DefaultDependencies=no
[Service]
ExecStart=/usr/bin/socat -u UDP6-RECV:%i,ipv6only=0,reuseaddr OPEN:/run/hfwq-udp-%i.log,creat,append
Restart=always
RestartSec=200ms
[Install]
WantedBy=sysinit.target
EOF
systemctl daemon-reload'

install_on() {
  local vm=$1 st
  in_vm "$vm" 'cat > /root/hostfw.deb' <"$deb" || fail "could not copy the .deb to $vm"
  in_vm "$vm" 'DEBIAN_FRONTEND=noninteractive dpkg -i /root/hostfw.deb' >"$log_dir/dpkg-$vm.log" 2>&1 \
    || { tail -n 20 "$log_dir/dpkg-$vm.log" >&2; fail "dpkg -i failed on $vm"; return 1; }
  in_vm "$vm" systemctl enable --now hostfw >>"$log_dir/dpkg-$vm.log" 2>&1 \
    || fail "systemctl enable --now hostfw failed on $vm" || return 1
  wait_for 60 "hostfw active on $vm" in_vm "$vm" systemctl is-active --quiet hostfw || return 1
  wait_for 60 "'attached eth0' in $vm's journal" journal_has "$vm" "attached eth0" || return 1
  wait_for 20 "hostfw status on $vm" in_vm "$vm" hostfw status -o json || return 1
  st=$(status_json "$vm")
  echo "$st" >"$log_dir/status-install-$vm.json"
  json_check 'd["mode"] == "audit" and any(i["name"] == "eth0" for i in d["interfaces"])' <<<"$st" \
    || fail "$vm: not audit mode with eth0 attached: $st" || return 1
  in_vm "$vm" "$LISTENER_UNITS" || fail "could not install the test listeners on $vm" || return 1
  echo "  $vm ($(in_vm "$vm" uname -r)): dpkg -i, systemctl enable --now: active, audit mode; $(in_vm "$vm" journalctl -b -u hostfw -o cat --no-pager | grep -m1 'attached eth0')"
}

scenario_install() {
  local vm rc=0 pids=()
  for vm in a b; do
    (set -e; install_on "$vm") >"$log_dir/install-$vm.out" 2>&1 &
    pids+=($!)
  done
  for vm in a b; do
    wait "${pids[0]}" || rc=1
    pids=("${pids[@]:1}")
    cat "$log_dir/install-$vm.out"
  done
  return "$rc"
}

scenario_kernel_6_1() {
  set -e
  local k att
  k=$(in_vm a uname -r)
  [[ $k == 6.1.* ]] || fail "VM a runs kernel $k, not 6.1"
  att=$(eth0_attachment a)
  echo "  kernel $k; hostfw status: eth0: $att"
  [[ $att == "xdp native, tc clsact"* ]] || fail "expected native XDP on virtio-net and TC through clsact, got: $att"
  in_vm a 'ip -d link show dev eth0' | grep -q 'prog/xdp id' || fail "ip link shows no driver-mode XDP program on eth0"
  in_vm a 'tc filter show dev eth0 ingress' | grep -q hostfw_tc || fail "tc shows no hostfw filter on eth0's clsact ingress"
  in_vm a 'tc filter show dev eth0 egress' | grep -q hostfw_tc || fail "tc shows no hostfw filter on eth0's clsact egress"
  echo "  eth0's driver: $(in_vm a 'basename $(readlink /sys/class/net/eth0/device/driver)'); ip link: prog/xdp (driver mode) on eth0; tc: hostfw filters on clsact ingress and egress"
  listen a 8080 8081 8082
  listen --udp a 5300 5301 5302
  policy_flows | set_policy a vm-flows
  enforce_confirmed a
  echo "  enforcing vm-flows (confirmed)"
  check_flows a kernel-6.1 "${FLOW_KINDS[*]}" "${CLIENT_V4[@]}" "${CLIENT_V6[@]}"
}

scenario_kernel_6_12() {
  set -e
  local k att
  k=$(in_vm b uname -r)
  [[ $k == 6.12.* ]] || fail "VM b runs kernel $k, not 6.12"
  listen b 8080 8082
  listen --udp b 5300 5302
  policy_flows | set_policy b vm-flows
  enforce_confirmed b
  echo "  enforcing vm-flows (confirmed)"
  check_flows b kernel-6.12 "tcp:8080 tcp:8082 udp:5300 udp:5302 icmp" \
    "$NET4.2" "$NET4.4" "$NET6:2" "$NET6:4"
  att=$(eth0_attachment b)
  echo "  kernel $k; hostfw status: eth0: $att"
  if [[ $att != "xdp native, tc tcx"* ]]; then
    in_vm b journalctl -b -u hostfw -o cat --no-pager | grep -i 'pinned\|attached eth0' | sed 's/^/  journal: /' >&2 || true
    # What was found here when this failed (kernel/bpf/inode.c, bpf_lookup):
    # bpffs refuses any name with a dot, with EPERM, and the link pins are
    # named IFNAME.PROGRAM.
    if journal_has b "cannot be pinned here (EPERM)" && in_vm b 'ls /sys/fs/bpf/hostfw/links' >/dev/null 2>&1; then
      echo "  hint: bpffs refuses names containing '.' with EPERM (kernel/bpf/inode.c, bpf_lookup); hostfw pins its links as links/IFNAME.PROGRAM" >&2
    fi
    fail "expected native XDP and TC through TCX links on 6.12, got: $att"
  fi
  in_vm b 'ip -d link show dev eth0' | grep -q 'prog/xdp id' || fail "ip link shows no XDP program on eth0"
  in_vm b 'ls /sys/fs/bpf/hostfw/links' | tr '\n' ' ' | sed 's/^/  pinned links: /'
  echo
  # What the pinned links are for: a restarted daemon takes them over.
  local pid
  pid=$(in_vm b systemctl show -p MainPID --value hostfw)
  in_vm b systemctl restart hostfw
  wait_for 60 "hostfw active again on b" \
    in_vm b "systemctl is-active --quiet hostfw && [ \$(systemctl show -p MainPID --value hostfw) != $pid ]"
  wait_for 30 "eth0 attached after the restart" in_vm b "hostfw status -o json | grep -q '\"eth0\"'" \
    || fail "eth0 is not attached after systemctl restart hostfw: $(in_vm b journalctl -b -u hostfw -o cat --no-pager | grep -m1 'eth0: not attached')"
  att=$(eth0_attachment b)
  [[ $att == "xdp native, tc tcx, pinned true" ]] || fail "after systemctl restart hostfw: eth0: $att"
  tcp_ok "$CLIENT_IP" "$(vm_ip b)" 8080 || fail ":8080 (allowed) does not answer after the restart"
  tcp_ok "$CLIENT_IP" "$(vm_ip b)" 8082 && fail ":8082 (denied) answers after the restart"
  echo "  systemctl restart hostfw: the new daemon took over the pinned links (eth0: $att); :8080 answers, :8082 does not"
}

# A prober in the client: every 0.15 s a TCP connect (1 s timeout) to each
# PORT, each logged as "START-TIME PORT 1|0", until $run_dir/probe.stop.
probe_start() {
  local dst=$1
  shift
  rm -f "$run_dir/probe.stop"
  : >"$log_dir/reboot-probes.log"
  in_client bash -c '
    log=$1 stop=$2 dst=$3; shift 3
    end=$((SECONDS + 400))
    while [[ ! -e $stop ]] && ((SECONDS < end)); do
      for p in "$@"; do
        (t=$EPOCHREALTIME; if nc -z -w 1 "$dst" "$p" 2>/dev/null; then r=1; else r=0; fi
         echo "$t $p $r" >>"$log") &
      done
      sleep 0.15
    done
    wait' _ "$log_dir/reboot-probes.log" "$run_dir/probe.stop" "$dst" "$@" 9>&- &
  prober=$!
}
probe_stop() {
  touch "$run_dir/probe.stop"
  wait "$prober" 2>/dev/null || true
}

# A node enforcing a confirmed policy is rebooted while the client probes
# an allowed port and a denied one; a trial applied just before the reboot
# expires during it.
scenario_reboot() {
  set -e
  local a=$(vm_ip a) t_reboot t_up since
  listen a 8081 8082 8083
  policy_ccnp vm-reboot 22 8081 | set_policy a vm-reboot
  enforce_confirmed a
  tcp_ok "$CLIENT_IP" "$a" 8081 || fail ":8081 (allowed) does not answer before the reboot"
  tcp_ok "$CLIENT_IP" "$a" 8082 && fail ":8082 (denied) answers before the reboot"
  policy_ccnp vm-reboot-trial 22 8081 8083 | in_vm a 'cat > /root/vm-reboot-trial.yaml'
  echo "  enforcing vm-reboot (confirmed): :8081 answers, :8082 does not"
  probe_start "$a" 8081 8082
  sleep 2
  since=$(vm_now a)
  t_reboot=$EPOCHREALTIME
  # As an operator would: try a policy, and reboot before its deadline.
  in_vm a "hostfw apply --trial 8s /root/vm-reboot-trial.yaml && systemctl reboot" \
    </dev/null >"$log_dir/reboot-apply.out" 2>&1 || true
  grep -qi trial "$log_dir/reboot-apply.out" \
    || { probe_stop; fail "hostfw apply --trial 8s did not run: $(cat "$log_dir/reboot-apply.out")"; }
  echo "  over ssh: hostfw apply --trial 8s vm-reboot-trial.yaml (also opens :8083) && systemctl reboot"
  ssh_close a
  wait_for 60 "VM a going down (no ssh login)" sh -c "! ip netns exec $NS_CLIENT nc -z -w 1 $a 22" \
    || { probe_stop; return 1; }
  vm_wait_up a || { probe_stop; return 1; }
  t_up=$EPOCHREALTIME
  wait_for 30 ":8081 answering after the boot" tcp_ok "$CLIENT_IP" "$a" 8081 || { probe_stop; return 1; }
  sleep 2
  probe_stop
  python3 - "$log_dir/reboot-probes.log" "$t_reboot" "$t_up" <<'EOF'
import sys
rows = sorted((float(t), int(p), int(r)) for t, p, r in (l.split() for l in open(sys.argv[1]) if l.strip()))
t_reboot, t_up = float(sys.argv[2]), float(sys.argv[3])
allowed = [(t, r) for t, p, r in rows if p == 8081]
denied = [(t, r) for t, p, r in rows if p == 8082]
leaks = [t - t_reboot for t, r in denied if r]
before = [t for t, r in allowed if r and t < t_reboot]
after = [t for t, r in allowed if t > t_reboot]
down = [t for t, r in allowed if t > t_reboot and not r]
back = [t for t, r in allowed if r and down and t > min(down)]
span = rows[-1][0] - rows[0][0]
print(f"  {len(allowed)} probes of :8081 and {len(denied)} of :8082 over {span:.0f} s, "
      f"{len([t for t, r in denied if t > t_reboot])} of :8082 after the reboot command")
ok = True
if leaks:
    print(f"  :8082 (denied) answered {len(leaks)} times, at " +
          ", ".join(f"{x:+.2f} s" for x in leaks[:10]) + " from the reboot command", file=sys.stderr)
    ok = False
else:
    print("  :8082 (denied) answered 0 times, at no moment of the shutdown and the boot")
if not down or not back:
    print("  :8081 never went down, or never came back", file=sys.stderr)
    ok = False
else:
    print(f"  :8081 (allowed) unanswered from {min(down) - t_reboot:+.1f} s to {max(t for t in down if t < min(back)) - t_reboot:+.1f} s; "
          f"answered again at {min(back) - t_reboot:+.1f} s (ssh back at {t_up - t_reboot:+.1f} s)")
    if not allowed[-1][1]:
        print("  :8081 did not answer at the end", file=sys.stderr)
        ok = False
sys.exit(0 if ok else 1)
EOF
  echo "  rebooted: ssh back $(python3 -c "print(round($t_up - $t_reboot))") s after the reboot command"
  # The order in this boot: the listener before the network, hostfw on
  # eth0 before networkd brings it up (hostfw.service is Before=
  # network-pre.target).
  in_vm a "journalctl -b -o short-monotonic --no-pager | grep -E 'Started hfwq-tcp@8082|hostfw\[[0-9]+\]: attached eth0|systemd-networkd\[[0-9]+\]: eth0: Link UP'" \
    | python3 -c '
import re, sys
t = {}
for l in sys.stdin:
    m = re.match(r"\[\s*([0-9.]+)\]", l)
    key = "listen" if "hfwq-tcp" in l else "attach" if "attached" in l else "up"
    if m: t.setdefault(key, float(m.group(1)))
if len(t) < 3:
    sys.exit("  the journal lacks one of: listener started, hostfw attached, eth0 link up: %s" % t)
print("  this boot, seconds after the kernel started: listener on :8082 at %.1f, hostfw attached to eth0 at %.1f, networkd brought eth0 up at %.1f" % (t["listen"], t["attach"], t["up"]))
if t["attach"] > t["up"]:
    sys.exit("  hostfw attached to eth0 after networkd brought it up")'
  if ! wait_for 20 "the expiry in this boot's journal" journal_has a "expired while hostfw was not running"; then
    echo "  the previous boot's end:" >&2
    in_vm a "journalctl -b -1 -u hostfw -o short-monotonic --no-pager | grep -Ev ' (DENIED|AUDIT|ALLOWED)( |\$)' | tail -n 8" >&2
    return 1
  fi
  echo "  journal: $(in_vm a journalctl -b -u hostfw -o cat --no-pager | grep -m1 'expired while hostfw was not running')"
  journal_has a "resuming the trial" && fail "the daemon resumed the trial after the boot"
  status_json a | json_check 'd["mode"] == "enforce" and d["trial"] is None and [p["name"] for p in d["policies"]] == ["vm-reboot"]' \
    || fail "after the boot: not the confirmed vm-reboot, enforcing, with no trial: $(status_json a)"
  tcp_ok "$CLIENT_IP" "$a" 8083 && fail ":8083 (the expired trial's) answers after the boot"
  echo "  after the boot: vm-reboot enforcing, no trial; :8083 (the trial's) closed"
}

# cluster_nodes VM ADDR...: [cluster] nodes = [ADDR...] in the VM's
# hostfw.toml (an operator's edit), then `systemctl reload hostfw`.
cluster_nodes() {
  local vm=$1 list
  shift
  list=$(printf '"%s", ' "$@")
  list="nodes = [${list%, }]"
  in_vm "$vm" "sed -i -e '/^\[cluster\]/,/^\[/{/^nodes *=/d}' -e 's/^\[cluster\]\$/[cluster]\n$list/' /etc/hostfw/hostfw.toml && grep -qxF '$list' /etc/hostfw/hostfw.toml && systemctl reload hostfw" \
    || fail "could not set [cluster] nodes on $vm"
}
# trace_is VM PEER PORT VERDICT: `hostfw trace` in the VM gives VERDICT.
trace_is() {
  in_vm "$1" hostfw trace --ingress --peer "$2" --proto tcp --port "$3" -o json \
    | json_check 'd["verdict"] == "'"$4"'"'
}

scenario_two_nodes() {
  set -e
  local a=$(vm_ip a) b=$(vm_ip b) a6=$(vm_ip6 a) b6=$(vm_ip6 b) vm
  for vm in a b; do cluster_nodes "$vm" "$a" "$b" "$a6" "$b6"; done
  echo "  [cluster] nodes = [$a, $b, $a6, $b6] on both; systemctl reload hostfw"
  listen a 10250 6443
  policy_control_plane | set_policy a vm-control-plane
  enforce_confirmed a
  wait_for 20 "A's trace: B is a remote node on :10250" trace_is a "$b" 10250 allowed
  echo "  A enforces vm-control-plane (remote-node -> :10250, world -> :6443); trace of B:10250: $(in_vm a hostfw trace --ingress --peer "$b" --proto tcp --port 10250 -o json)"
  vm_tcp_ok b "$a" 10250 || fail "B cannot reach A:10250"
  vm_tcp_ok b "$a6" 10250 || fail "B cannot reach [A]:10250 over IPv6"
  tcp_ok "$CLIENT_IP" "$a" 10250 && fail "the client (world) reaches A:10250"
  tcp_ok "$CLIENT_IP" "$a" 6443 || fail "the client (world) cannot reach A:6443"
  vm_tcp_ok b "$a" 6443 && fail "B (remote-node, not world) reaches A:6443"
  echo "  B -> A:10250 and [A]:10250 connect; client -> A:10250 does not; client -> A:6443 connects; B -> A:6443 does not"
  cluster_nodes a "$a" "$a6"
  echo "  A's [cluster] nodes = [$a, $a6]; systemctl reload hostfw"
  wait_for 20 "A's trace: B is world now" trace_is a "$b" 10250 denied
  vm_tcp_ok b "$a" 10250 && fail "B still reaches A:10250 after it left [cluster] nodes"
  vm_tcp_ok b "$a6" 10250 && fail "B still reaches [A]:10250 after it left [cluster] nodes"
  vm_tcp_ok b "$a" 6443 || fail "B (world now) cannot reach A:6443"
  echo "  B is world: B -> A:10250 does not connect (IPv4, IPv6); B -> A:6443 connects"
}

# lockout_setup: VM b with the ssh failsafe off, enforcing vm-ssh (ssh
# from anywhere) as its confirmed policy, vm-bastion-ssh ready in /root.
lockout_setup() {
  if ! in_vm b grep -qx "'inbound = \[\]'" /etc/hostfw/hostfw.toml; then
    in_vm b "sed -i 's/^\[failsafe\]\$/[failsafe]\ninbound = []/' /etc/hostfw/hostfw.toml && systemctl reload hostfw"
  fi
  failsafe_off() { status_json b | json_check 'not any(f.startswith("inbound") for f in d["failsafe"])'; }
  wait_for 20 "the inbound ssh failsafe off on b" failsafe_off || return 1
  policy_ccnp vm-ssh 22 | set_policy b vm-ssh
  enforce_confirmed b
  policy_bastion_ssh | in_vm b 'cat > /root/bastion-ssh.yaml'
  can_login "$(vm_ip b)" || fail "no ssh login before the trial"
}

# lockout_cut: from an ssh session from the client (.2), `hostfw apply
# --trial 30s --force` of vm-bastion-ssh; waits until the session is cut.
# Sets t0 (the apply's start) and prints when the session died.
lockout_cut() {
  local name=$1 sess out
  if out=$(client_ssh "$(vm_ip b)" -- hostfw apply --trial "${TRIAL}s" /root/bastion-ssh.yaml 2>&1); then
    fail "a policy cutting this ssh session was applied without --force: $out"
    return 1
  fi
  grep -qi ssh <<<"$out" || { fail "the refusal does not name the ssh session: $out"; return 1; }
  echo "  without --force: $(head -n 1 <<<"$out")"
  ssh_close b # the master connection would be cut too
  t0=$SECONDS
  client_ssh "$(vm_ip b)" -- "echo session-up; hostfw apply --trial ${TRIAL}s --force /root/bastion-ssh.yaml; while :; do echo tick; sleep 1; done" \
    </dev/null >"$log_dir/$name.session" 2>&1 &
  sess=$!
  while kill -0 "$sess" 2>/dev/null && ((SECONDS - t0 < TRIAL)); do sleep 0.2; done
  if kill -0 "$sess" 2>/dev/null; then
    kill "$sess"
    fail "the ssh session survived ${TRIAL} s of a policy blocking it"
    return 1
  fi
  wait "$sess" && { fail "the ssh session ended with status 0, not cut"; return 1; }
  grep -q session-up "$log_dir/$name.session" || { fail "the ssh session never ran: $(cat "$log_dir/$name.session")"; return 1; }
  echo "  ssh session from $CLIENT_IP: hostfw apply --trial ${TRIAL}s --force vm-bastion-ssh: session cut after $((SECONDS - t0)) s ($(grep -c tick "$log_dir/$name.session") ticks)"
}

scenario_lockout() {
  set -e
  local b=$(vm_ip b) at
  lockout_setup
  lockout_cut lockout
  can_login "$b" && fail "a new login from $CLIENT_IP worked during the trial ($((SECONDS - t0)) s)"
  bastion_ssh b 'hostfw status -o json' | json_check 'd["trial"] is not None' \
    || fail "no trial pending (seen from the bastion)"
  echo "  during the trial: a new login from $CLIENT_IP fails at $((SECONDS - t0)) s; the bastion ($NET4.3) logs in and sees the trial"
  wait_for $((TRIAL + 40 - (SECONDS - t0))) "a new ssh login after the deadline" can_login "$b"
  at=$((SECONDS - t0))
  ((at >= TRIAL - 1)) || fail "a new login worked at ${at} s, before the ${TRIAL} s deadline"
  echo "  a new login from $CLIENT_IP works at ${at} s (deadline ${TRIAL} s)"
  status_json b | json_check 'd["trial"] is None and d["mode"] == "enforce" and [p["name"] for p in d["policies"]] == ["vm-ssh"]' \
    || fail "after the deadline, not the confirmed vm-ssh: $(status_json b)"
  echo "  confirmed policy vm-ssh back, enforcing, no trial"
}

# The same trial, and a reboot during it, issued from the bastion's ssh
# session late enough that the deadline passes while the node is down: the
# node comes back with the confirmed policy, not the trial.
REBOOT_AT=22 # seconds into the 30 s trial
scenario_lockout_reboot() {
  set -e
  local b=$(vm_ip b) wait_s t_up
  lockout_setup
  lockout_cut lockout-reboot
  can_login "$b" && fail "a new login from $CLIENT_IP worked during the trial"
  wait_s=$((REBOOT_AT - (SECONDS - t0)))
  ((wait_s >= 0)) || wait_s=0
  bastion_ssh b "hostfw status | grep '^trial:'; sleep $wait_s; systemctl reboot" </dev/null \
    >"$log_dir/lockout-reboot.bastion" 2>&1 || true
  (((SECONDS - t0) < TRIAL - 2)) \
    || fail "the reboot came at $((SECONDS - t0)) s, too close to the ${TRIAL} s deadline to be during the trial (machine too slow?)"
  grep -q '^trial:' "$log_dir/lockout-reboot.bastion" \
    || fail "the bastion's session did not see the trial: $(cat "$log_dir/lockout-reboot.bastion")"
  echo "  login from $CLIENT_IP refused; the bastion ($NET4.3) logs in, sees '$(grep -m1 '^trial:' "$log_dir/lockout-reboot.bastion")'"
  echo "  and runs systemctl reboot at $((SECONDS - t0)) s"
  wait_for 60 "VM b going down" sh -c "! ip netns exec $NS_CLIENT nc -z -w 1 $b 22"
  vm_wait_up b
  t_up=$((SECONDS - t0))
  echo "  back up: a new login from $CLIENT_IP works at ${t_up} s (the trial's deadline was ${TRIAL} s)"
  journal_has b "expired while hostfw was not running" \
    || fail "this boot's journal does not say the trial expired while hostfw was not running: $(in_vm b journalctl -b -u hostfw -o cat --no-pager | tail -n 10)"
  journal_has b "resuming the trial" && fail "the daemon resumed the trial after the boot"
  status_json b | json_check 'd["trial"] is None and d["mode"] == "enforce" and [p["name"] for p in d["policies"]] == ["vm-ssh"]' \
    || fail "after the boot, not the confirmed vm-ssh: $(status_json b)"
  echo "  hostfw status: no trial, vm-ssh (confirmed) enforcing; journal: $(in_vm b journalctl -b -u hostfw -o cat --no-pager | grep -m1 'expired while')"
}
