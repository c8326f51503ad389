#!/usr/bin/env bash
# hostfw against nftables and iptables, side by side (root; about 6.5 minutes
# on 2 cores). See bench/README.md. Prints the tables and the goal lines,
# writes target/bench/*.csv and target/bench/bench.png.
#
#   ./scripts/bench.sh           # the full run: 5 runs per verdict-cost point, 3 per network point
#   ./scripts/bench.sh --quick   # a smoke run (1 run per point, short floods): not for quoting
#
# Traffic goes only between the network namespaces it creates (hfwb-rx,
# hfwb-fl, hfwb-ok). Everything it sets up is removed on exit, also after a
# failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
case "${1:-}" in
  --quick) quick=true ;;
  "") ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac
if [[ $EUID -ne 0 ]]; then
  echo "bench: run as root (network namespaces, eBPF, nftables, iptables)" >&2
  exit 1
fi

OUT=target/bench
NAMESPACES=(hfwb-rx hfwb-fl hfwb-ok)

cleanup() {
  local ns pid
  for ns in "${NAMESPACES[@]}"; do
    if [[ -e /run/netns/$ns ]]; then
      # Processes this benchmark started inside its own namespaces.
      for pid in $(ip netns pids "$ns" 2>/dev/null); do
        kill "$pid" 2>/dev/null || true
      done
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
  rm -rf /sys/fs/bpf/hostfw-bench-* 2>/dev/null || true
  rm -rf /tmp/hostfw-bench-* 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
./scripts/install-deps.sh >/dev/null
echo "bench: building (release)" >&2
cargo build -q --release -p hostfw --bins --examples 2> >(grep -v '^warning: hostfw@' >&2)
cleanup
mkdir -p "$OUT"
rm -f "$OUT"/*.csv "$OUT"/bench.png "$OUT"/report.txt "$OUT"/verdict_cost.txt

if $quick; then
  vc_args=(--repeat 20000 --runs 1 --apply-runs 1)
  net_args=(--runs 1 --flood-secs 0.5)
else
  vc_args=(--repeat 200000 --runs 5 --apply-runs 3)
  net_args=(--runs 3 --flood-secs 2)
fi

echo "bench: 1/3 verdict cost and apply (BPF_PROG_TEST_RUN; about 1 minute)" >&2
target/release/examples/verdict_cost "${vc_args[@]}" --out "$OUT" > "$OUT/verdict_cost.txt"

echo "bench: 2/3 flood, allowed traffic, control plane (network namespaces; about 5 minutes)" >&2
status=0
target/release/examples/fw_compare "${net_args[@]}" --out "$OUT" || status=$?

echo "bench: 3/3 plot" >&2
if [[ -s $OUT/plot/verdict.dat && -s $OUT/plot/control.dat ]]; then
  gnuplot -e "datadir='$OUT/plot'; out='$OUT/bench.png'" bench/plot.gp
fi
if [[ ! -s $OUT/bench.png ]]; then
  echo "bench: the plot $OUT/bench.png was not written" >&2
  if (( status == 0 )); then status=1; fi
fi

echo
echo "verdict cost details: $OUT/verdict_cost.txt"
echo "CSV: $(ls "$OUT"/*.csv | tr '\n' ' ')"
echo "plot: $OUT/bench.png"
echo "bench took $(( $(date +%s) - start )) s"
if (( status != 0 )); then
  echo "bench: FAILED (exit $status): see the messages above" >&2
fi
exit "$status"
