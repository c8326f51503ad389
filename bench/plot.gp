# The benchmark's plot (scripts/bench.sh): four panels from the series
# fw_compare writes under target/bench/plot/.
#   gnuplot -e "datadir='target/bench/plot'; out='target/bench/bench.png'" bench/plot.gp
if (!exists("datadir")) datadir = 'target/bench/plot'
if (!exists("out")) out = 'target/bench/bench.png'
f(name) = sprintf('%s/%s', datadir, name)

set terminal pngcairo size 1600,1100 font 'sans,10'
set output out
set multiplot layout 2,2 title 'hostfw benchmarks (medians; error bars: min-max)'
set grid
set key top left

# 1. Verdict cost.
set title 'Verdict cost, XDP program, BPF\_PROG\_TEST\_RUN'
set logscale x
set xlabel 'rules'
set ylabel 'ns per packet'
set yrange [0:*]
plot f('verdict.dat') u 1:2 w lp lw 2 t 'cidr, denied', \
     ''               u 1:3 w lp lw 2 t 'cidr, allowed new flow', \
     ''               u 1:4 w lp lw 2 t 'port, denied', \
     ''               u 1:5 w lp lw 2 t 'port, allowed new flow', \
     ''               u 1:6 w lp lw 2 t 'mixed, denied', \
     ''               u 1:7 w lp lw 2 t 'mixed, allowed new flow'

# 2. Flood drop rate.
set title 'UDP flood from a denied source: packets dropped per second'
set ylabel 'Mpps (log)'
set logscale y
set yrange [*:*]
set key bottom left
plot f('flood_af_packet.dat')  u 1:2:3:4   w yerrorlines lw 2 lc 1 t 'hostfw XDP (AF\_PACKET sender)', \
     ''                        u 1:5:6:7   w yerrorlines lw 2 lc 2 t 'nftables set', \
     ''                        u 1:8:9:10  w yerrorlines lw 2 lc 3 t 'iptables linear', \
     ''                        u 1:11:12:13 w yerrorlines lw 2 lc 4 t 'iptables + ipset', \
     f('flood_xdp_frames.dat') u 1:2:3:4   w yerrorlines lw 2 lc 1 dt 2 t 'hostfw XDP (XDP-frame sender)', \
     ''                        u 1:5:6:7   w yerrorlines lw 2 lc 2 dt 2 t 'nftables set', \
     ''                        u 1:8:9:10  w yerrorlines lw 2 lc 3 dt 2 t 'iptables linear', \
     ''                        u 1:11:12:13 w yerrorlines lw 2 lc 4 dt 2 t 'iptables + ipset'

# 3. Allowed traffic.
unset logscale x
unset logscale y
set title 'Allowed traffic through the rules, relative to no firewall'
set xlabel ''
set ylabel '% of no firewall'
set yrange [0:*]
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -20
set key top right
plot f('overhead.dat') u 2:xtic(1) t 'TCP throughput (iperf3)', \
     ''                u 3 t 'TCP request/response'

# 4. Control plane.
set style data linespoints
set xtics norotate
set title 'Control plane (hostfw)'
set logscale x
set logscale y
set xlabel 'rules'
set ylabel 'ms'
set y2label 'daemon RSS, MiB'
set y2tics
set yrange [*:*]
set y2range [0:*]
set key top left
plot f('control.dat') u 1:2 w lp lw 2 t 'compile + apply (ms)', \
     ''               u 1:3 w lp lw 2 t 'file change to deny (ms)', \
     ''               u 1:4 w lp lw 2 t 'file change to allow (ms)', \
     ''               u 1:5 axes x1y2 w lp lw 2 dt 2 t 'daemon RSS (MiB, right)'

unset multiplot
