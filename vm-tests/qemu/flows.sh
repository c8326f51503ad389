# vm-tests/qemu/flows.sh: generated flows from the client to a VM, each
# checked against the verdict `hostfw trace` gives for it inside the VM.
# Sourced by vm-tests/qemu.sh.
#
# A flow is (source address of the client, protocol, port): TCP is a
# connect (`nc -z`), UDP a datagram carrying the flow's number, counted by
# the VM's receiver (hfwq-udp@PORT writes what arrives to
# /run/hfwq-udp-PORT.log), ICMP an echo request (`ping`). All flows run at
# once; a denied TCP connect or ping gives up after 5 s.

# The kinds of flow: PROTO:PORT, or icmp (echo request, either family).
FLOW_KINDS=(tcp:22 tcp:8080 tcp:8081 tcp:8082 udp:5300 udp:5301 udp:5302 icmp)

# check_flows VM NAME "KIND..." SOURCE...: every KIND from every SOURCE to
# the VM's address of the source's family; fails on any flow whose outcome
# is not the trace's verdict (allowed or audit: it passes; denied: it does
# not), or when the flows do not include an allowed and a denied one of
# each protocol in each family. Files: $log_dir/flows-NAME.*.
check_flows() {
  local vm=$1 name=$2 kinds=($3) src kind proto port dst i=0 args
  shift 3
  local list=$log_dir/flows-$name.list expected=$log_dir/flows-$name.expected
  local actual=$log_dir/flows-$name.actual arrived=$log_dir/flows-$name.udp
  local tracer=$log_dir/flows-$name.trace.sh sender=$log_dir/flows-$name.send.sh
  : >"$list"
  printf 'set -u\n' >"$tracer"
  printf 'set -u\n' >"$sender"
  for src in "$@"; do
    if [[ $src == *:* ]]; then dst=$(vm_ip6 "$vm"); else dst=$(vm_ip "$vm"); fi
    for kind in "${kinds[@]}"; do
      proto=${kind%%:*}
      port=${kind#*:}
      [[ $proto == icmp ]] && port=-
      echo "$i $src $dst $proto $port" >>"$list"
      case $proto in
        tcp | udp) args="--proto $proto --port $port" ;;
        icmp) args="--proto $([[ $src == *:* ]] && echo icmpv6 || echo icmp) --icmp-type EchoRequest" ;;
      esac
      echo "printf '%s ' $i; hostfw trace --ingress --peer $src $args -o json || echo" >>"$tracer"
      case $proto in
        tcp) echo "(nc -z -w 5 -s $src $dst $port >/dev/null 2>&1 && echo '$i 1' || echo '$i 0') &" ;;
        udp) echo "(for k in 1 2; do printf 'flow-$i\\n' | nc -u -q 0 -s $src $dst $port >/dev/null 2>&1; done; echo '$i sent') &" ;;
        icmp) echo "(ping -n -q -c 2 -i 0.3 -W 5 -I $src $dst >/dev/null 2>&1 && echo '$i 1' || echo '$i 0') &" ;;
      esac >>"$sender"
      i=$((i + 1))
    done
  done
  echo wait >>"$sender"
  # What hostfw says of each flow, asked in the VM (the running daemon).
  in_vm "$vm" sh <"$tracer" >"$expected" 2>&1 || { cat "$expected" >&2; fail "hostfw trace failed in $vm"; return 1; }
  in_vm "$vm" 'for f in /run/hfwq-udp-*.log; do : >"$f"; done'
  # What the traffic does.
  in_client bash "$sender" >"$actual" 2>&1
  sleep 1
  in_vm "$vm" 'cat /run/hfwq-udp-*.log' >"$arrived"
  python3 - "$list" "$expected" "$actual" "$arrived" <<'EOF'
import json, sys
flows = [l.split() for l in open(sys.argv[1]) if l.strip()]
expected = {}
for line in open(sys.argv[2]):
    idx, _, js = line.strip().partition(" ")
    if idx.isdigit():
        expected[int(idx)] = json.loads(js) if js.strip() else None
actual = {}
for line in open(sys.argv[3]):
    p = line.split()
    if len(p) == 2 and p[0].isdigit():
        actual[int(p[0])] = p[1]
arrived = {l.strip() for l in open(sys.argv[4])}
bad, seen = [], {}
counts = {"allowed": 0, "denied": 0}
for i, src, dst, proto, port in flows:
    i = int(i)
    fam = "IPv6" if ":" in src else "IPv4"
    tr = expected.get(i)
    if not tr or tr.get("verdict") not in ("allowed", "denied", "audit"):
        bad.append(f"flow {i} {src} -> {dst} {proto}/{port}: no verdict from hostfw trace: {tr}")
        continue
    want = tr["verdict"] != "denied"
    if proto == "udp":
        got = f"flow-{i}" in arrived
    else:
        got = actual.get(i) == "1"
    seen.setdefault((fam, proto), set()).add(want)
    counts["allowed" if want else "denied"] += 1
    if got != want:
        bad.append(f"flow {i} {src} -> {dst} {proto}/{port}: trace says {tr['verdict']} "
                   f"({tr.get('policy')}, {tr.get('rule')}: {tr.get('reason')}), "
                   f"but it {'passed' if got else 'did not pass'}")
n = len(flows)
print(f"  {n} flows ({sum(1 for f in flows if ':' in f[1])} IPv6): {counts['allowed']} allowed, "
      f"{counts['denied']} denied by hostfw trace; {n - len(bad)} behaved so, {len(bad)} did not")
for b in bad:
    print("  " + b, file=sys.stderr)
missing = [f"{fam} {proto}" for (fam, proto), v in sorted(seen.items()) if v != {True, False}]
if missing:
    print("  no allowed and denied flow for: " + ", ".join(missing), file=sys.stderr)
sys.exit(1 if bad or missing else 0)
EOF
}
