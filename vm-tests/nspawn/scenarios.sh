# vm-tests/nspawn/scenarios.sh: what an operator does with the .deb (and the
# .rpm) on a node, each scenario building on the state the previous left.
# Sourced by vm-tests/nspawn.sh, which provides in_vm, the machine and
# network functions, and the addresses.

AUDIT_PORT=8080  # denied by every policy here (audit mode passes it)
OPEN_PORT=8081   # allowed by the "good" policy only
TRIAL=30         # the lockout trials, as the issue asks: --trial 30s

# listen PORT: a TCP listener in the machine (a transient unit).
listen() {
  in_vm systemctl is-active --quiet "hfwvm-listen-$1" \
    || in_vm systemd-run --quiet --unit="hfwvm-listen-$1" nc -lk "$1" \
    || fail "could not start a listener on :$1"
  wait_for 10 "listener on :$1" in_vm_sh "ss -Htln 'sport = :$1' | grep -q LISTEN"
}
# connects PORT: a new TCP connection from the client to the node.
connects() { ip netns exec "$NS_CLIENT" timeout 4 nc -z -w 2 "$NODE_IP" "$1"; }
status_json() { in_vm hostfw status -o json; }
# journal_has TEXT: hostfw's journal of this boot, since mark_journal if
# that was called in this scenario, has a line with TEXT.
journal_since=
mark_journal() { journal_since=$(in_vm date +%s); }
journal_has() {
  in_vm_sh "journalctl -b -u hostfw ${journal_since:+--since=@$journal_since} --no-pager -o cat | grep -q -- '$1'"
}

scenario_install() {
  set -e
  in_vm env DEBIAN_FRONTEND=noninteractive dpkg -i /root/hostfw.deb >"$log_dir/dpkg.log" 2>&1 \
    || { cat "$log_dir/dpkg.log" >&2; fail "dpkg -i failed"; }
  # The postinst enables and starts it (README "Install on a node").
  in_vm systemctl is-enabled --quiet hostfw || fail "hostfw.service not enabled by dpkg -i"
  in_vm systemctl is-active --quiet hostfw && echo "  enabled and started by the postinst"
  in_vm systemctl start hostfw || fail "systemctl start hostfw failed"
  wait_for 15 "hostfw active" in_vm systemctl is-active --quiet hostfw
  wait_for 15 "'attached' in the journal" journal_has attached
  in_vm systemctl status hostfw --no-pager >"$log_dir/systemctl-status.txt" 2>&1 || true
  grep -q 'active (running)' "$log_dir/systemctl-status.txt" \
    || fail "systemctl status does not say active (running): $(cat "$log_dir/systemctl-status.txt")"
  wait_for 10 "hostfw status" in_vm hostfw status -o json
  local st
  st=$(status_json)
  echo "$st" >"$log_dir/status-install.json"
  json_check 'd.get("mode") == "audit"' <<<"$st" || fail "status: mode is not audit: $st"
  grep -q '"eth0"' <<<"$st" || fail "status: eth0 not listed: $st"
  echo "  active (running), attached, mode audit, eth0 listed"
}

scenario_audit() {
  set -e
  # The baseline (ssh and ping in, nothing else) denies :$AUDIT_PORT.
  policy_ccnp vm-baseline 22 | in_vm sh -c 'cat > /etc/hostfw/policies.d/vm-baseline.yaml'
  wait_for 15 "policy vm-baseline loaded" in_vm_sh "hostfw status -o json | grep -q vm-baseline"
  listen "$AUDIT_PORT"
  connects "$AUDIT_PORT" || fail "client could not connect to :$AUDIT_PORT (audit mode must pass it)"
  local match='any(f.get("verdict") == "audit" and f.get("dport") == '"$AUDIT_PORT"' and f.get("src") == "'"$CLIENT_IP"'" for f in d)'
  audited() {
    in_vm hostfw observe --verdict audit -o json >"$log_dir/observe-audit.json" || return 1
    python3 -c '
import json,sys
t=open(sys.argv[1]).read().strip()
try:
    d=json.loads(t); d=d if isinstance(d,list) else [d]
except ValueError:
    d=[json.loads(l) for l in t.splitlines() if l.strip()]
sys.exit(0 if ('"$match"') else 1)' "$log_dir/observe-audit.json"
  }
  wait_for 10 "an audit verdict for $CLIENT_IP -> :$AUDIT_PORT in hostfw observe" audited \
    || { tail -n 10 "$log_dir/observe-audit.json" >&2; return 1; }
  echo "  connection passed; hostfw observe shows it as audit"
}

scenario_reload() {
  set -e
  # A broken policy file and `systemctl reload`: the running policy stays,
  # the service stays active, and status names the file and line.
  in_vm sh -c "printf 'apiVersion: cilium.io/v2\nkind: Nope\n' > /etc/hostfw/policies.d/broken.yaml"
  in_vm systemctl reload hostfw
  wait_for 10 "status shows the broken file" in_vm_sh "hostfw status -o json | grep -q 'broken.yaml:2:'"
  in_vm systemctl is-active --quiet hostfw || fail "hostfw is not active after a broken reload"
  status_json | grep -q vm-baseline || fail "the running policy was dropped"
  in_vm hostfw status >"$log_dir/status-broken.txt" 2>&1 || true
  grep -q 'broken.yaml' "$log_dir/status-broken.txt" \
    || fail "hostfw status (text) does not name the broken file: $(cat "$log_dir/status-broken.txt")"
  in_vm rm /etc/hostfw/policies.d/broken.yaml
  in_vm systemctl reload hostfw
  wait_for 10 "the error clears" in_vm_sh "hostfw status -o json | grep -q '\"last_error\": null'"
  echo "  broken file refused with its position; fixed file reloaded"
}

# Enforcing, with the ssh failsafe turned off (the only way a policy can
# cut ssh), and a policy that blocks ssh ready at /root/block-ssh.yaml.
scenario_enforce() {
  set -e
  in_vm sed -i 's/^\[failsafe\]$/[failsafe]\ninbound = []/' /etc/hostfw/hostfw.toml
  in_vm grep -q '^inbound = \[\]' /etc/hostfw/hostfw.toml || fail "could not turn the failsafe off"
  in_vm systemctl reload hostfw
  in_vm hostfw mode enforce --force >/dev/null
  in_vm hostfw confirm >/dev/null
  status_json | json_check 'd["mode"] == "enforce" and d.get("trial") is None' \
    || fail "not enforcing a confirmed policy: $(status_json)"
  connects "$AUDIT_PORT" && fail ":$AUDIT_PORT still answers when enforcing"
  policy_ccnp vm-block-ssh | in_vm sh -c 'cat > /root/block-ssh.yaml'
  wait_for 20 "ssh login" can_login "$NODE_IP"
  echo "  enforcing vm-baseline (confirmed); :$AUDIT_PORT dropped; ssh login works"
}

# lockout HOW: from an ssh session, `hostfw apply --trial 30s --force` of a
# policy that blocks ssh; HOW the daemon is treated during the trial (none,
# sigkill, restart). The session must die; new logins fail until the
# deadline and work after it, with the confirmed policy back.
lockout() {
  set -e
  local how=$1 out t0 sess died pid_before pid_after at
  # Without --force the preflight refuses, naming the session.
  if out=$(client_ssh "$NODE_IP" -- hostfw apply --trial "${TRIAL}s" /root/block-ssh.yaml 2>&1); then
    fail "a policy cutting this ssh session was applied without --force: $out"
  fi
  grep -qi 'ssh' <<<"$out" || fail "the refusal does not mention the ssh session: $out"
  echo "  without --force: $(head -n 1 <<<"$out")"
  pid_before=$(in_vm systemctl show -p MainPID --value hostfw)
  mark_journal
  t0=$SECONDS
  client_ssh "$NODE_IP" -- "echo session-up; hostfw apply --trial ${TRIAL}s --force /root/block-ssh.yaml; while :; do echo tick; sleep 1; done" \
    </dev/null >"$log_dir/lockout-$how.session" 2>&1 &
  sess=$!
  while kill -0 "$sess" 2>/dev/null && ((SECONDS - t0 < TRIAL)); do sleep 0.2; done
  kill -0 "$sess" 2>/dev/null && { kill "$sess"; fail "the ssh session survived ${TRIAL} s of a policy blocking ssh"; }
  died=$((SECONDS - t0))
  wait "$sess" && fail "the ssh session ended with status 0, not cut"
  grep -q session-up "$log_dir/lockout-$how.session" \
    || fail "the ssh session never ran: $(cat "$log_dir/lockout-$how.session")"
  echo "  the session was cut after ${died} s ($(grep -c tick "$log_dir/lockout-$how.session") ticks seen)"
  status_json | json_check 'd.get("trial") is not None' || fail "no trial pending: $(status_json)"
  case $how in
    sigkill)
      in_vm systemctl kill -s SIGKILL hostfw
      echo "  systemctl kill -s SIGKILL hostfw (pid $pid_before)"
      ;;
    restart)
      in_vm systemctl restart hostfw
      echo "  systemctl restart hostfw (pid $pid_before)"
      ;;
  esac
  if [[ $how != none ]]; then
    wait_for 15 "hostfw active again" \
      in_vm_sh "systemctl is-active --quiet hostfw && [ \$(systemctl show -p MainPID --value hostfw) != $pid_before ]"
    pid_after=$(in_vm systemctl show -p MainPID --value hostfw)
    echo "  hostfw running again as pid $pid_after"
    wait_for 10 "the new daemon resumes the trial" journal_has "resuming the trial"
  fi
  can_login "$NODE_IP" && fail "a new ssh login worked during the trial ($((SECONDS - t0)) s)"
  echo "  a new login is refused at $((SECONDS - t0)) s"
  wait_for $((TRIAL + 20 - (SECONDS - t0))) "a new ssh login after the deadline" can_login "$NODE_IP"
  at=$((SECONDS - t0))
  ((at >= TRIAL - 1)) || fail "a new login worked at ${at} s, before the ${TRIAL} s deadline"
  echo "  a new login works at ${at} s (deadline ${TRIAL} s)"
  wait_for 10 "the revert in the journal" journal_has "reverted"
  status_json | json_check 'd.get("trial") is None and d["mode"] == "enforce"' \
    || fail "after the deadline: $(status_json)"
  status_json | grep -q vm-baseline || fail "the confirmed policy is not back: $(status_json)"
  connects "$AUDIT_PORT" && fail ":$AUDIT_PORT answers after the revert"
  echo "  confirmed policy vm-baseline back, enforcing"
}
scenario_lockout() { lockout none; }
scenario_lockout_sigkill() { lockout sigkill; }
scenario_lockout_restart() { lockout restart; }

# A good policy applied as a trial over ssh and confirmed stays after the
# deadline and across a reboot of the machine.
scenario_confirm_reboot() {
  set -e
  local confirm_trial=10 st
  listen "$OPEN_PORT"
  connects "$OPEN_PORT" && fail ":$OPEN_PORT answers before the good policy"
  policy_ccnp vm-good 22 "$OPEN_PORT" | in_vm sh -c 'cat > /root/good.yaml'
  client_ssh "$NODE_IP" -- "hostfw apply --trial ${confirm_trial}s /root/good.yaml && hostfw confirm" \
    </dev/null >"$log_dir/confirm.session" 2>&1 \
    || fail "apply + confirm over ssh failed: $(cat "$log_dir/confirm.session")"
  echo "  over ssh: $(tr '\n' ' ' <"$log_dir/confirm.session")"
  sleep $((confirm_trial + 2))
  good_in_force() {
    st=$(status_json) || fail "hostfw status failed"
    json_check 'd["mode"] == "enforce" and d.get("trial") is None' <<<"$st" \
      || fail "not a confirmed enforcing policy: $st"
    grep -q vm-good <<<"$st" || fail "vm-good is not the policy in force: $st"
    connects "$OPEN_PORT" || fail ":$OPEN_PORT (allowed by vm-good) does not answer"
    connects "$AUDIT_PORT" && fail ":$AUDIT_PORT (denied) answers"
    can_login "$NODE_IP" || fail "ssh login fails"
  }
  good_in_force
  echo "  after the deadline: vm-good enforcing; :$OPEN_PORT answers, :$AUDIT_PORT does not, ssh works"
  local t0=$SECONDS
  machine_reboot
  echo "  rebooted in $((SECONDS - t0)) s (new network namespace and bpffs: no programs, no pins)"
  wait_for 15 "hostfw active after the boot" in_vm systemctl is-active --quiet hostfw
  wait_for 15 "'attached' in this boot's journal" journal_has attached
  listen "$OPEN_PORT"
  listen "$AUDIT_PORT"
  wait_for 20 "ssh login after the boot" can_login "$NODE_IP"
  good_in_force
  echo "  after the reboot: vm-good enforcing; :$OPEN_PORT answers, :$AUDIT_PORT does not, ssh works"
}

# A typo'd policy file (`ingres:`) in /etc/hostfw/policies.d, then a
# reboot (no programs, no pins): a reload refuses the file and keeps the
# policy; at boot the daemon enforces the stored confirmed policy instead
# of exiting, and says why (journal, status, the unit's status text). A
# prober tries the denied port every 200 ms throughout, the boot included:
# it must never connect.
TYPO=/etc/hostfw/policies.d/typo.yaml

# typo_ccnp: a valid CCNP but for `ingres:` in its spec.
typo_ccnp() {
  printf 'apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\n'
  printf 'metadata:\n  name: vm-typo\nspec:\n  nodeSelector: {}\n  ingres: []\n'
}
now() { echo "${EPOCHREALTIME/,/.}"; }
# probe PORT: one TCP connect from the client namespace (1 s at most);
# prints open, closed, or no-netns (between two boots' networks).
probe() {
  [[ -e /run/netns/$NS_CLIENT ]] || { echo no-netns; return 0; }
  if ip netns exec "$NS_CLIENT" timeout 3 nc -z -w 1 "$NODE_IP" "$1" >/dev/null 2>&1; then
    echo open
  else
    echo closed
  fi
}
# prober PORT FILE STOPFILE SECONDS: a probe of PORT started every 200 ms
# (in the background: a dropped SYN takes the whole second), each
# appending "START-TIME RESULT" to FILE, until STOPFILE exists or for
# SECONDS at most; then waits for the probes under way.
prober() {
  set +e
  local port=$1 file=$2 stop=$3 end=$((SECONDS + $4))
  while [[ ! -e $stop ]] && ((SECONDS < end)); do
    (t=$(now); r=$(probe "$port"); echo "$t $r" >>"$file") &
    sleep 0.2
  done
  wait
}
# probes FILE FROM TO [RESULT]: how many probes started in [FROM, TO)
# (epoch seconds), of RESULT if given.
probes() {
  awk -v a="$2" -v b="$3" -v r="${4-}" \
    '$1 >= a && $1 < b && (r == "" || $2 == r) {n++} END {print n + 0}' "$1"
}
# probed FILE FROM N SECONDS: N probes or more started since FROM, and
# SECONDS have passed since FROM.
probed() {
  awk -v a="$2" -v n="$3" -v s="$4" -v t="$(now)" \
    '$1 >= a {c++} END {exit !(c >= n && t - a >= s)}' "$1"
}
typo_in_error() { status_json | json_check '"typo.yaml" in (d.get("last_error") or "")'; }
no_error() { status_json | json_check 'd.get("last_error") is None'; }

scenario_typo_reboot() {
  set -e
  local st t0 nr text probes_log=$log_dir/typo-reboot.probes stop=$run_dir/typo-prober.stop
  local prober_pid t_start t_reboot t_listen t_end
  local good='d["mode"] == "enforce" and d.get("trial") is None and any(p["name"] == "vm-good" for p in d["policies"])'
  st=$(status_json) || fail "hostfw status failed"
  json_check 'd["mode"] == "enforce" and d.get("trial") is None' <<<"$st" \
    || fail "precondition (after enforce): not a confirmed enforcing policy: $st"
  # A policy applied as files (`hostfw apply FILE`) stays as sent: reloads
  # and starts do not read policies.d. The files an operator edits are the
  # configured ones: vm-good goes into policies.d (beside vm-baseline) and
  # `hostfw apply` of the configured paths confirms them. (Written here, so
  # that the scenario also runs alone: `vm-tests/nspawn.sh typo-reboot`.)
  policy_ccnp vm-good 22 "$OPEN_PORT" | in_vm sh -c 'cat > /etc/hostfw/policies.d/vm-good.yaml'
  in_vm hostfw apply >"$log_dir/typo-apply.txt" 2>&1 \
    || fail "hostfw apply (configured paths) failed: $(cat "$log_dir/typo-apply.txt")"
  st=$(status_json)
  json_check "$good"' and d["source"] == "configured paths" and d.get("last_error") is None' <<<"$st" \
    || fail "vm-good from policies.d is not the confirmed policy: $st"
  listen "$OPEN_PORT"
  listen "$AUDIT_PORT"
  connects "$OPEN_PORT" || fail ":$OPEN_PORT (allowed by vm-good) does not answer"
  [[ $(probe "$OPEN_PORT") == open ]] || fail "the probe does not see :$OPEN_PORT (allowed) open"
  echo "  vm-good confirmed from policies.d, enforcing; the probe sees :$OPEN_PORT open"

  rm -f "$probes_log" "$stop"
  : >"$probes_log"
  trap "touch $(printf %q "$stop")" EXIT
  t_start=$(now)
  prober "$AUDIT_PORT" "$probes_log" "$stop" 300 </dev/null >/dev/null 2>&1 9>&- &
  prober_pid=$!

  mark_journal
  typo_ccnp | in_vm sh -c "cat > $TYPO"
  in_vm systemctl reload hostfw
  wait_for 10 "status last_error names typo.yaml" typo_in_error
  wait_for 5 "the refusal in the journal" journal_has 'reload refused'
  in_vm systemctl is-active --quiet hostfw || fail "hostfw is not active after the typo'd reload"
  st=$(status_json)
  json_check "$good" <<<"$st" || fail "the running policy changed on a refused reload: $st"
  echo "  reload refused, vm-good still enforced: $(python3 -c \
    'import json,sys; print(json.load(sys.stdin)["last_error"].splitlines()[-1])' <<<"$st")"
  wait_for 30 "20 probes of :$AUDIT_PORT before the reboot" probed "$probes_log" "$t_start" 20 0

  t_reboot=$(now)
  t0=$SECONDS
  machine_reboot
  echo "  rebooted in $((SECONDS - t0)) s (new network namespace and bpffs: no programs, no pins)"
  journal_since=
  wait_for 15 "hostfw active after the boot" in_vm systemctl is-active --quiet hostfw
  wait_for 15 "the stored confirmed policy enforced, in the journal" \
    journal_has 'the last confirmed policy (as stored)'
  journal_has typo.yaml || fail "this boot's journal does not name typo.yaml"
  nr=$(in_vm systemctl show -p NRestarts --value hostfw)
  [[ $nr == 0 ]] || fail "hostfw was restarted $nr times during the boot"
  if in_vm_sh "journalctl -b -u hostfw --no-pager -o cat | grep -E 'Main process exited|Failed with result'" \
    >"$log_dir/typo-exits.txt" 2>&1; then
    fail "hostfw exited during the boot: $(cat "$log_dir/typo-exits.txt")"
  fi
  st=$(status_json)
  json_check "$good"' and d["source"] == "configured paths"' <<<"$st" \
    || fail "after the boot: not enforcing the confirmed vm-good: $st"
  typo_in_error || fail "after the boot, status last_error does not name typo.yaml: $st"
  text=$(in_vm systemctl show -p StatusText --value hostfw)
  [[ $text == *ERROR:* ]] || fail "the unit's status text has no ERROR: $text"
  echo "  after the boot: active, 0 restarts; journal: stored confirmed policy enforced, typo.yaml named"
  echo "  status text: ${text:0:160}"
  listen "$OPEN_PORT"
  listen "$AUDIT_PORT"
  t_listen=$(now)
  connects "$OPEN_PORT" || fail ":$OPEN_PORT (allowed by vm-good) does not answer after the boot"
  connects "$AUDIT_PORT" && fail ":$AUDIT_PORT (denied) answers after the boot"
  wait_for 20 "ssh login after the boot" can_login "$NODE_IP"
  echo "  :$OPEN_PORT answers, :$AUDIT_PORT does not, ssh login works"
  wait_for 30 "20 probes of :$AUDIT_PORT over 3 s with its listener up again" \
    probed "$probes_log" "$t_listen" 20 3

  in_vm rm "$TYPO"
  in_vm systemctl reload hostfw
  wait_for 10 "the error clears" no_error
  touch "$stop"
  wait "$prober_pid" || true
  t_end=$(now)
  trap - EXIT
  local before during nonet after opens
  before=$(probes "$probes_log" "$t_start" "$t_reboot")
  during=$(probes "$probes_log" "$t_reboot" "$t_listen")
  nonet=$(probes "$probes_log" "$t_reboot" "$t_listen" no-netns)
  after=$(probes "$probes_log" "$t_listen" "$t_end")
  opens=$(probes "$probes_log" 0 1e11 open)
  echo "  typo.yaml removed, reloaded: last_error null"
  echo "  prober of :$AUDIT_PORT every 200 ms: $before probes before the reboot (listener up)," \
    "$during from the reboot until the listener was back ($nonet with no network yet)," \
    "$after after it; $opens connected"
  ((opens == 0)) || fail ":$AUDIT_PORT answered $opens times: $(grep ' open$' "$probes_log" | head -n 5 | tr '\n' ' ')"
  ((before >= 20 && after >= 20)) || fail "too few probes ($before before the reboot, $after after)"
}

scenario_upgrade() {
  set -e
  # Reinstall the package under continuous traffic: new ssh connections
  # (allowed) must all connect, new connections to :$AUDIT_PORT (denied)
  # never.
  status_json | grep -q '"mode": "enforce"' || fail "not in enforce mode"
  local pid_before pid_after counts=$log_dir/upgrade-traffic sender ok lost leaked
  pid_before=$(in_vm systemctl show -p MainPID --value hostfw)
  ip netns exec "$NS_CLIENT" bash -c '
    ok=0 lost=0 leaked=0 end=$((SECONDS + $1))
    while ((SECONDS < end)); do
      if nc -z -w 2 '"$NODE_IP"' 22; then ok=$((ok + 1)); else lost=$((lost + 1)); fi
      if nc -z -w 1 '"$NODE_IP"' '"$AUDIT_PORT"'; then leaked=$((leaked + 1)); fi
    done
    echo "$ok $lost $leaked"' _ 8 >"$counts" &
  sender=$!
  sleep 1
  in_vm env DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold /root/hostfw.deb \
    >"$log_dir/upgrade.log" 2>&1 \
    || { tail -n 20 "$log_dir/upgrade.log" >&2; fail "dpkg -i (upgrade) failed"; }
  wait "$sender"
  read -r ok lost leaked <"$counts"
  echo "  during the upgrade: $ok ssh connections, $lost lost; $leaked denied ones let through"
  in_vm systemctl is-active --quiet hostfw || fail "hostfw not active after the upgrade"
  pid_after=$(in_vm systemctl show -p MainPID --value hostfw)
  [[ $pid_before != "$pid_after" ]] || fail "the upgrade did not restart the daemon (pid $pid_before)"
  echo "  daemon restarted by the upgrade: pid $pid_before -> $pid_after"
  ((ok >= 5)) || fail "too little traffic"
  ((lost == 0 && leaked == 0))
}

# detached_and_clean WHAT: no hostfw program on eth0, no pins, no state, no
# binary.
detached_and_clean() {
  local dir path
  in_vm ip -details link show dev eth0 | grep -q 'name hostfw_xdp' \
    && fail "XDP program still attached after $1"
  for dir in ingress egress; do
    in_vm tc filter show dev eth0 "$dir" | grep -q hostfw_tc_ \
      && fail "TC filter still attached ($dir) after $1"
  done
  for path in /sys/fs/bpf/hostfw /var/lib/hostfw /usr/sbin/hostfw; do
    in_vm test -e "$path" && fail "$path still there after $1"
  done
  return 0
}

scenario_purge() {
  set -e
  in_vm ip -details link show dev eth0 | grep -q 'name hostfw_xdp' \
    || fail "hostfw's XDP program is not attached before the purge"
  in_vm dpkg --purge hostfw >"$log_dir/purge.log" 2>&1 \
    || { tail -n 20 "$log_dir/purge.log" >&2; fail "dpkg --purge failed"; }
  detached_and_clean "dpkg --purge"
  # The conffile goes; files the operator added stay, as dpkg does for any
  # package.
  in_vm test -e /etc/hostfw/hostfw.toml && fail "the conffile is still there after the purge"
  echo "  programs detached; pins, state, binary and conffile removed"
}

# The .rpm's scriptlets on a real systemd (Debian's rpm, so no RPM
# distribution's macros or presets: see packaging/README.md).
scenario_rpm() {
  set -e
  in_vm rpm -i --nodeps --force-debian /root/hostfw.rpm >"$log_dir/rpm-install.log" 2>&1 \
    || { cat "$log_dir/rpm-install.log" >&2; fail "rpm -i failed"; }
  in_vm systemctl is-enabled --quiet hostfw || fail "%post did not enable hostfw.service"
  wait_for 15 "hostfw active after rpm -i" in_vm systemctl is-active --quiet hostfw
  wait_for 15 "XDP attached to eth0" in_vm_sh "ip -details link show dev eth0 | grep -q 'name hostfw_xdp'"
  status_json | json_check 'd.get("mode") == "audit"' || fail "not in audit mode: $(status_json)"
  echo "  rpm -i: enabled, active, attached, audit mode"
  in_vm rpm -e --nodeps hostfw >"$log_dir/rpm-erase.log" 2>&1 \
    || { cat "$log_dir/rpm-erase.log" >&2; fail "rpm -e failed"; }
  in_vm systemctl is-active --quiet hostfw && fail "hostfw still active after rpm -e"
  detached_and_clean "rpm -e"
  echo "  rpm -e: stopped, programs detached; pins, state and binary removed"
}
