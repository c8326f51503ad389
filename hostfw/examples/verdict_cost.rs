//! Benchmark: ns per packet of the XDP and TC programs (BPF_PROG_TEST_RUN,
//! repeated) with 10 to 100,000 rules of three kinds, and the time to
//! compile and atomically apply those rule sets.
//!
//! Kinds of rules (`n` rules, ingress, default deny):
//! - `cidr`: rule `i` allows one CIDR (prefix lengths /32, /30, /28, /26 in
//!   turn, disjoint, in 10.0.0.0/8) on TCP 443 and ICMP timestamp;
//! - `port`: rule `i` allows every peer on one port of TCP, UDP or SCTP in
//!   turn (three in four an exact port, one in four a range of two ports);
//! - `mixed`: rule `i` allows the CIDR of `cidr` rule `i` on the port of
//!   `port` rule `i`.
//!
//! Packets: `denied` (cidr: a source no rule names; port: a port no rule
//! names; mixed: a source a rule names, on a port it does not allow),
//! `allowed, new flow` (ICMP timestamp, untracked, so that every run is a
//! full policy decision; port and mixed: the last TCP rule also allows it)
//! and `allowed, tracked` (a TCP ACK of an established connection of the
//! last TCP rule: before measuring, its SYN goes in on ingress and the
//! SYN-ACK out on egress; then every run is a connection-tracking hit).
//! The rule a packet matches is the last one, where a linear rule list
//! would look last.
//!
//! Run as root: `scripts/bench.sh` (or `cargo run --release --example
//! verdict_cost -- [REPEAT] [--runs N] [--apply-runs N] [--kinds cidr,port,mixed]
//! [--sizes 10,1000,...] [--out DIR]`). With `--out`, writes
//! `DIR/verdict_cost.csv` and `DIR/apply.csv`.

use std::{
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    time::Instant,
};

use anyhow::{Context as _, bail};
use hostfw::{
    craft::Frame,
    datapath::{
        Datapath, LoadOptions, MapSizes,
        testrun::{Prog, run_raw, verified_insns},
        writer::Switch,
    },
    mapstate,
    ruleset::{Action, Direction, L4, Mode, Peers, Rule, RuleSet},
};
use hostfw_common::proto;

#[path = "common/rawbpf.rs"]
mod rawbpf;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

const RULE_COUNTS: [u32; 4] = [10, 1_000, 10_000, 100_000];
/// A TCP port no `port` rule uses.
const CLOSED_PORT: u16 = 60_000;
/// ICMP timestamp request: not tracked.
const ICMP_TIMESTAMP: u8 = 13;

/// The `i`-th CIDR: disjoint /26 blocks of 10.0.0.0/8, with prefix lengths
/// /32, /30, /28 and /26 in turn (host hash and LPM trie both used).
fn cidr(i: u32) -> Ipv4Net {
    let len = [32u8, 30, 28, 26][(i % 4) as usize];
    Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i * 64), len).unwrap_or_default()
}

/// The `i`-th IPv6 CIDR: disjoint /64 blocks of fd77::/16, with prefix
/// lengths /128, /126, /124 and /122 in turn.
fn cidr6(i: u32) -> Ipv6Net {
    let len = [128u8, 126, 124, 122][(i % 4) as usize];
    let addr = (0xfd77u128 << 112) | (u128::from(i) << 64);
    Ipv6Net::new(Ipv6Addr::from(addr), len).unwrap_or_default()
}

/// The `i`-th port rule: TCP, UDP, SCTP in turn; per protocol, groups of
/// three exact ports and one aligned two-port range.
fn port_l4(i: u32) -> L4 {
    let p = [proto::TCP, proto::UDP, proto::SCTP][(i % 3) as usize];
    let k = i / 3;
    let base = u16::try_from(1024 + (k / 4) * 6).unwrap_or(u16::MAX - 6);
    match k % 4 {
        3 => L4::Ports {
            proto: p,
            first: base + 4,
            last: base + 5,
        },
        r => L4::port(p, base + u16::try_from(r).unwrap_or(0)),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Cidr,
    Port,
    Mixed,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Cidr => "cidr",
            Self::Port => "port",
            Self::Mixed => "mixed",
        }
    }

    fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "cidr" => Self::Cidr,
            "port" => Self::Port,
            "mixed" => Self::Mixed,
            other => bail!("unknown kind {other}: cidr, port or mixed"),
        })
    }
}

/// The last rule on TCP (the allowed packets match it).
fn last_tcp_rule(n: u32) -> u32 {
    let last = n - 1;
    last - last % 3
}

fn first_port(l4: L4) -> u16 {
    match l4 {
        L4::Ports { first, .. } => first,
        _ => 0,
    }
}

/// `n` rules of `kind`.
fn rules(kind: Kind, n: u32) -> RuleSet {
    let member_rule = last_tcp_rule(n);
    RuleSet {
        mode: Mode::Enforce,
        default_deny_ingress: true,
        default_deny_egress: false,
        rules: (0..n)
            .map(|i| {
                let (peers, mut l4) = match kind {
                    Kind::Cidr => (
                        Peers::nets([IpNet::V4(cidr(i)), IpNet::V6(cidr6(i))]),
                        vec![
                            L4::port(proto::TCP, 443),
                            L4::icmp(proto::ICMP, ICMP_TIMESTAMP),
                        ],
                    ),
                    Kind::Port => (Peers::Any, vec![port_l4(i)]),
                    Kind::Mixed => (
                        Peers::nets([IpNet::V4(cidr(i)), IpNet::V6(cidr6(i))]),
                        vec![port_l4(i)],
                    ),
                };
                if kind != Kind::Cidr && i == member_rule {
                    l4.push(L4::icmp(proto::ICMP, ICMP_TIMESTAMP));
                }
                Rule::new(i + 1, Direction::Ingress, Action::Allow, peers, l4)
            })
            .collect(),
    }
}

/// A packet of the benchmark: which, of which family, and the frame.
struct Packet {
    /// The name in the CSV file: `denied`, `allowed_new`, `allowed_tracked`.
    key: &'static str,
    family: &'static str,
    /// Whether the programs must pass it.
    pass: bool,
    frame: Frame,
}

/// The packets for `kind` at `n` rules: denied, allowed new (IPv4 only:
/// every ICMPv6 type is tracked or always decided the same way) and
/// allowed tracked, in both families.
fn packets(kind: Kind, n: u32) -> Vec<Packet> {
    let node4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let node6 = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
    let stranger4 = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
    let stranger6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9));
    let j = last_tcp_rule(n);
    let member4 = |i: u32| IpAddr::V4(cidr(i).network());
    let member6 = |i: u32| IpAddr::V6(cidr6(i).network());
    let p = |key, family, pass, frame| Packet {
        key,
        family,
        pass,
        frame,
    };
    match kind {
        Kind::Cidr => vec![
            p(
                "denied",
                "ipv4",
                false,
                Frame::tcp(stranger4, node4, 40000, 443),
            ),
            p(
                "allowed_new",
                "ipv4",
                true,
                Frame::icmp(member4(n - 1), node4, ICMP_TIMESTAMP, 0, 1),
            ),
            p(
                "allowed_tracked",
                "ipv4",
                true,
                Frame::tcp(member4(n - 1), node4, 40001, 443),
            ),
            p(
                "denied",
                "ipv6",
                false,
                Frame::tcp(stranger6, node6, 40000, 443),
            ),
            p(
                "allowed_tracked",
                "ipv6",
                true,
                Frame::tcp(member6(n - 1), node6, 40001, 443),
            ),
        ],
        Kind::Port => {
            let open = first_port(port_l4(j));
            vec![
                p(
                    "denied",
                    "ipv4",
                    false,
                    Frame::tcp(stranger4, node4, 40000, CLOSED_PORT),
                ),
                p(
                    "allowed_new",
                    "ipv4",
                    true,
                    Frame::icmp(stranger4, node4, ICMP_TIMESTAMP, 0, 1),
                ),
                p(
                    "allowed_tracked",
                    "ipv4",
                    true,
                    Frame::tcp(stranger4, node4, 40001, open),
                ),
                p(
                    "denied",
                    "ipv6",
                    false,
                    Frame::tcp(stranger6, node6, 40000, CLOSED_PORT),
                ),
                p(
                    "allowed_tracked",
                    "ipv6",
                    true,
                    Frame::tcp(stranger6, node6, 40001, open),
                ),
            ]
        }
        Kind::Mixed => {
            let open = first_port(port_l4(j));
            vec![
                p(
                    "denied",
                    "ipv4",
                    false,
                    Frame::tcp(member4(j), node4, 40000, CLOSED_PORT),
                ),
                p(
                    "allowed_new",
                    "ipv4",
                    true,
                    Frame::icmp(member4(j), node4, ICMP_TIMESTAMP, 0, 1),
                ),
                p(
                    "allowed_tracked",
                    "ipv4",
                    true,
                    Frame::tcp(member4(j), node4, 40001, open),
                ),
                p(
                    "denied",
                    "ipv6",
                    false,
                    Frame::tcp(member6(j), node6, 40000, CLOSED_PORT),
                ),
                p(
                    "allowed_tracked",
                    "ipv6",
                    true,
                    Frame::tcp(member6(j), node6, 40001, open),
                ),
            ]
        }
    }
}

const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;

/// Opens the connection of a tracked packet: its SYN in, the SYN-ACK out.
fn handshake(dp: &Datapath, syn: &Frame) {
    let mut f = syn.clone();
    f.tcp_flags = TCP_SYN;
    let _ = run_raw(dp, Prog::Xdp, &f.build(), 1);
    let mut reply = syn.clone();
    (reply.src, reply.dst) = (syn.dst, syn.src);
    (reply.sport, reply.dport) = (syn.dport, syn.sport);
    reply.tcp_flags = TCP_SYN | TCP_ACK;
    let _ = run_raw(dp, Prog::TcOut, &reply.build(), 1);
}

/// Median, minimum and maximum.
fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let med = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        f64::midpoint(v[v.len() / 2 - 1], v[v.len() / 2])
    };
    (med, v[0], v[v.len() - 1])
}

struct Opts {
    repeat: u32,
    runs: usize,
    apply_runs: usize,
    kinds: Vec<Kind>,
    sizes: Vec<u32>,
    out: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Opts> {
    let mut o = Opts {
        repeat: 1_000_000,
        runs: 3,
        apply_runs: 3,
        kinds: vec![Kind::Cidr, Kind::Port, Kind::Mixed],
        sizes: RULE_COUNTS.to_vec(),
        out: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--runs" => o.runs = val()?.parse()?,
            "--apply-runs" => o.apply_runs = val()?.parse()?,
            "--repeat" => o.repeat = val()?.parse()?,
            "--out" => o.out = Some(PathBuf::from(val()?)),
            "--kinds" => {
                o.kinds = val()?
                    .split(',')
                    .map(Kind::parse)
                    .collect::<anyhow::Result<_>>()?;
            }
            "--sizes" => {
                o.sizes = val()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
            }
            n if !n.starts_with("--") => o.repeat = n.parse()?,
            other => bail!("unknown option {other}"),
        }
    }
    if o.runs == 0 || o.apply_runs == 0 || o.sizes.iter().any(|&n| n < 4) {
        bail!("--runs and --apply-runs must be at least 1, sizes at least 4");
    }
    Ok(o)
}

fn main() -> anyhow::Result<()> {
    let o = parse_args()?;
    let pin_root = PathBuf::from(format!("/sys/fs/bpf/hostfw-bench-{}", std::process::id()));
    let result = run(&o, &pin_root);
    let _ = Datapath::remove_all(&pin_root);
    result
}

fn run(o: &Opts, pin_root: &std::path::Path) -> anyhow::Result<()> {
    let mut dp = Datapath::load(&LoadOptions {
        pin_root: pin_root.to_path_buf(),
        sizes: MapSizes::default(),
    })?;
    // The verifier's work per program: watched when the programs change.
    let insns: Vec<String> = [Prog::Xdp, Prog::TcIn, Prog::TcOut]
        .iter()
        .map(|&p| {
            let n = verified_insns(&dp, p).map_or_else(|| "unknown".into(), |n| n.to_string());
            format!("{} {n}", p.name())
        })
        .collect();
    println!("verified_insns: {}", insns.join(", "));
    let mut cost_csv = String::from(
        "kind,rules,family,packet,prog,median_ns,min_ns,max_ns,trivial_ns,x_trivial,runs,repeat\n",
    );
    // The reference: one hash lookup and a verdict, loaded by raw bpf(2).
    let trivial_xdp = rawbpf::one_lookup(rawbpf::BPF_PROG_TYPE_XDP, 2)?;
    let trivial_tc = rawbpf::one_lookup(rawbpf::BPF_PROG_TYPE_SCHED_CLS, -1)?;
    // (kind family packet prog, rules, ns, x trivial), for the summary.
    let mut points: Vec<(String, u32, f64, f64)> = Vec::new();
    let mut apply_goals: Vec<ApplyPoint> = Vec::new();
    let mut apply_csv = String::from(
        "kind,rules,compile_ms,compile_min,compile_max,apply_ms,apply_min,apply_max,\
         total_ms,total_min,total_max,map_entries,runs,same_ms,same_max,same_entries,\
         change_ms,change_max,change_total_ms,change_entries\n",
    );
    println!(
        "ns per packet, BPF_PROG_TEST_RUN x {}, median (min-max) of {} runs; \
         compile and apply: median of {}",
        o.repeat, o.runs, o.apply_runs
    );
    for &kind in &o.kinds {
        println!("\n{} rules", kind.name());
        println!(
            "{:>8} {:>9} {:>9} | {:<21} {:>26} {:>26}",
            "rules", "compile", "apply ms", "packet", "XDP (x trivial)", "TC ingress (x trivial)"
        );
        for &n in &o.sizes {
            let rs = rules(kind, n);
            let (mut compile_ms, mut apply_ms, mut total_ms) = (Vec::new(), Vec::new(), Vec::new());
            let (mut same_ms, mut change_ms, mut change_total_ms) =
                (Vec::new(), Vec::new(), Vec::new());
            let (mut entries, mut same_changes, mut change_changes) = (0, 0, 0);
            // Empty policies of both modes: both slots then hold no entry,
            // and the full apply below writes every entry.
            let empty = |mode| {
                mapstate::compile(&RuleSet {
                    mode,
                    rules: Vec::new(),
                    ..rs.clone()
                })
            };
            let (empty_audit, empty_enforce) = (empty(Mode::Audit)?, empty(Mode::Enforce)?);
            // One rule fewer, two ways: neither is one the packets need.
            let without = |index: usize| {
                let mut r = rs.clone();
                r.rules.remove(index);
                r
            };
            let (minus1, minus2) = (without(1), without(2));
            for _ in 0..o.apply_runs {
                dp.apply(empty_audit.clone(), Switch::Confirmed)?;
                dp.apply(empty_enforce.clone(), Switch::Confirmed)?;
                let start = Instant::now();
                let state = mapstate::compile(&rs)?;
                let compiled = start.elapsed();
                // Copies for the re-apply below, made outside the timing.
                let again = state.clone();
                let c = state.counts();
                entries = c.ident_v4 + c.ident_v6 + c.policy;
                let start = Instant::now();
                dp.apply(state, Switch::Confirmed)?;
                let applied = start.elapsed();
                compile_ms.push(compiled.as_secs_f64() * 1e3);
                apply_ms.push(applied.as_secs_f64() * 1e3);
                total_ms.push((compiled + applied).as_secs_f64() * 1e3);
                // The same policy again.
                let start = Instant::now();
                same_changes = dp.apply(again, Switch::Confirmed)?.changes;
                same_ms.push(start.elapsed().as_secs_f64() * 1e3);
                // A one-rule change, once both slots hold a recent policy.
                // Compiled as the daemon does: after the policy in force.
                let first = mapstate::compile_after(&minus1, dp.enforced_state()?)?;
                dp.apply(first, Switch::Confirmed)?;
                // A slot is written again only GRACE after packets stopped
                // reading it; people do not change policies faster.
                std::thread::sleep(hostfw::datapath::writer::GRACE);
                let start = Instant::now();
                let changed = mapstate::compile_after(&minus2, dp.enforced_state()?)?;
                let compiled = start.elapsed();
                change_changes = dp.apply(changed, Switch::Confirmed)?.changes;
                let total = start.elapsed();
                change_ms.push((total - compiled).as_secs_f64() * 1e3);
                change_total_ms.push(total.as_secs_f64() * 1e3);
                // Back to the measured policy for the packets.
                let back = mapstate::compile_after(&rs, dp.enforced_state()?)?;
                dp.apply(back, Switch::Confirmed)?;
            }
            let (same, _, same_max) = stats(same_ms);
            let (change, _, change_max) = stats(change_ms);
            let (change_total, _, _) = stats(change_total_ms);
            apply_goals.push(ApplyPoint {
                kind: kind.name(),
                rules: n,
                total_ms: 0.0,
                change_ms: change,
                change_total_ms: change_total,
                change_entries: change_changes,
                same_entries: same_changes,
            });
            let (c, cmin, cmax) = stats(compile_ms);
            let (a, amin, amax) = stats(apply_ms);
            let (t, tmin, tmax) = stats(total_ms);
            if let Some(p) = apply_goals.last_mut() {
                p.total_ms = t;
            }
            writeln!(
                apply_csv,
                "{},{n},{c:.2},{cmin:.2},{cmax:.2},{a:.2},{amin:.2},{amax:.2},\
                 {t:.2},{tmin:.2},{tmax:.2},{entries},{},{same:.2},{same_max:.2},{same_changes},\
                 {change:.2},{change_max:.2},{change_total:.2},{change_changes}",
                kind.name(),
                o.apply_runs
            )?;
            for (i, pk) in packets(kind, n).iter().enumerate() {
                let mut frame = pk.frame.clone();
                if pk.key == "allowed_tracked" {
                    handshake(&dp, &pk.frame);
                    frame.tcp_flags = TCP_ACK;
                }
                let bytes = frame.build();
                let mut cols = Vec::new();
                for prog in [Prog::Xdp, Prog::TcIn] {
                    let trivial = if prog == Prog::Xdp {
                        &trivial_xdp
                    } else {
                        &trivial_tc
                    };
                    // Warm-up, not measured: caches, the conntrack entry.
                    let _ = run_raw(&dp, prog, &bytes, o.repeat.clamp(1, 10_000));
                    let _ = rawbpf::test_run(&trivial.0, &bytes, o.repeat.clamp(1, 10_000))?;
                    // Each run: the trivial program, then hostfw, on the same
                    // frame: side by side, so that load affects both alike.
                    let mut ours = Vec::new();
                    let mut base = Vec::new();
                    for _ in 0..o.runs {
                        base.push(rawbpf::test_run(&trivial.0, &bytes, o.repeat)?.1);
                        let (pass, ns) = run_raw(&dp, prog, &bytes, o.repeat);
                        if pass != pk.pass {
                            bail!(
                                "{} rules, {n}: {} {} packet {} by {prog:?}: wrong verdict",
                                kind.name(),
                                pk.family,
                                pk.key,
                                if pass { "passed" } else { "dropped" }
                            );
                        }
                        ours.push(ns);
                    }
                    let (med, min, max) = stats(ours);
                    let (tmed, _, _) = stats(base);
                    let prog_name = if prog == Prog::Xdp { "xdp" } else { "tc" };
                    writeln!(
                        cost_csv,
                        "{},{n},{},{},{prog_name},{med:.1},{min:.1},{max:.1},{tmed:.1},{:.2},{},{}",
                        kind.name(),
                        pk.family,
                        pk.key,
                        med / tmed,
                        o.runs,
                        o.repeat
                    )?;
                    cols.push(format!(
                        "{med:>6.1} ({min:.0}-{max:.0}) {:>4.1}x",
                        med / tmed
                    ));
                    let point = format!("{} {} {} {prog_name}", kind.name(), pk.family, pk.key);
                    points.push((point, n, med, med / tmed));
                }
                let label = if i == 0 {
                    format!("{n:>8} {c:>9.1} {a:>9.1}")
                } else {
                    format!("{:>8} {:>9} {:>9}", "", "", "")
                };
                println!(
                    "{label} | {:<4} {:<16} {:>26} {:>26}",
                    pk.family, pk.key, cols[0], cols[1]
                );
            }
        }
    }
    if let (Some(&lo), Some(&hi)) = (o.sizes.iter().min(), o.sizes.iter().max()) {
        println!("\ncost at {hi} rules / cost at {lo} rules (goal <= 1.3):");
        for (what, _, at_lo, _) in points.iter().filter(|p| p.1 == lo) {
            if let Some((_, _, at_hi, _)) = points.iter().find(|p| p.1 == hi && &p.0 == what) {
                println!("  {what:<36} {:.2}", at_hi / at_lo);
            }
        }
    }
    let ends = [o.sizes.iter().min(), o.sizes.iter().max()];
    for (tracked, want) in [(false, 4.0), (true, 3.0)] {
        let worst = points
            .iter()
            .filter(|p| ends.contains(&Some(&p.1)) && p.0.contains("allowed_tracked") == tracked)
            .max_by(|a, b| a.3.total_cmp(&b.3));
        if let Some((what, n, _, x)) = worst {
            println!(
                "goal: {} packet <= {want}x the trivial program: worst {x:.2}x ({what}, {n} rules): {}",
                if tracked {
                    "a tracked"
                } else {
                    "a denied or new"
                },
                if *x <= want { "MET" } else { "NOT MET" }
            );
        }
    }
    print_apply_goals(&apply_goals);
    if let Some(dir) = &o.out {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("verdict_cost.csv"), cost_csv)?;
        std::fs::write(dir.join("apply.csv"), apply_csv)?;
    }
    Ok(())
}

/// One kind and size's control-plane figures, for the goals.
struct ApplyPoint {
    kind: &'static str,
    rules: u32,
    /// Compile and apply of the whole policy into empty slots (median).
    total_ms: f64,
    /// Apply (no compile) of a one-rule change (median).
    change_ms: f64,
    /// The same with the compile of the whole changed policy.
    change_total_ms: f64,
    /// Map entries the one-rule change wrote or removed.
    change_entries: usize,
    /// Map entries an unchanged re-apply wrote or removed.
    same_entries: usize,
}

fn print_apply_goals(points: &[ApplyPoint]) {
    let mark = |ok: bool| if ok { "MET" } else { "NOT MET" };
    println!("\ncontrol plane, median over the runs, worst kind:");
    for (rules, want) in [(10_000, 20.0), (100_000, 200.0)] {
        let worst = points
            .iter()
            .filter(|p| p.rules == rules)
            .max_by(|a, b| a.total_ms.total_cmp(&b.total_ms));
        if let Some(p) = worst {
            println!(
                "goal: compile + apply of {rules} rules <= {want} ms: {:.1} ms ({}): {}",
                p.total_ms,
                p.kind,
                mark(p.total_ms <= want)
            );
        }
    }
    let big = points.iter().map(|p| p.rules).max().unwrap_or(0);
    if let Some(p) = points
        .iter()
        .filter(|p| p.rules == big)
        .max_by(|a, b| a.change_ms.total_cmp(&b.change_ms))
    {
        println!(
            "goal: a one-rule change at {big} rules <= 5 ms: apply {:.2} ms, {} entries \
             ({}; with the compile of the whole policy {:.1} ms): {}",
            p.change_ms,
            p.change_entries,
            p.kind,
            p.change_total_ms,
            mark(big >= 100_000 && p.change_ms <= 5.0)
        );
    }
    let most = points.iter().map(|p| p.same_entries).max().unwrap_or(0);
    println!(
        "goal: re-applying an unchanged policy writes no map entry: at most {most} entries: {}",
        mark(most == 0)
    );
}
