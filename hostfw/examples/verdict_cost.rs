//! Benchmark: ns per packet of the XDP and TC programs (BPF_PROG_TEST_RUN,
//! repeated) with 10 to 100,000 CIDR rules, for a denied packet, an allowed
//! packet of a new (untracked) flow and an allowed packet of a tracked flow.
//!
//! Run as root: `scripts/bench.sh` (or `cargo run --release --example
//! verdict_cost -- [REPEAT]`).

use std::{
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    time::Instant,
};

use hostfw::{
    craft::Frame,
    datapath::{
        Datapath, LoadOptions, MapSizes,
        testrun::{Prog, run_raw},
        writer::Switch,
    },
    mapstate,
    ruleset::{Action, Direction, L4, Mode, Peers, Rule, RuleSet},
};
use hostfw_common::proto;

const RULE_COUNTS: [u32; 4] = [10, 1_000, 10_000, 100_000];

/// `n` allow rules, each one /32 in 10.0.0.0/8 on TCP 443 and ICMP
/// timestamp (untracked, so every run is a full policy decision).
fn rules(n: u32) -> RuleSet {
    RuleSet {
        mode: Mode::Enforce,
        default_deny_ingress: true,
        default_deny_egress: false,
        rules: (0..n)
            .map(|i| {
                let peer = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i * 7)));
                Rule::new(
                    i + 1,
                    Direction::Ingress,
                    Action::Allow,
                    Peers::nets([peer.into()]),
                    vec![L4::port(proto::TCP, 443), L4::icmp(proto::ICMP, 13)],
                )
            })
            .collect(),
    }
}

fn main() -> anyhow::Result<()> {
    let repeat: u32 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let pin_root = PathBuf::from(format!("/sys/fs/bpf/hostfw-bench-{}", std::process::id()));
    let mut dp = Datapath::load(&LoadOptions {
        pin_root: pin_root.clone(),
        sizes: MapSizes::default(),
    })?;
    let node = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let member = IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32 | (7 * 5)));
    let stranger = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
    let cases = [
        ("denied (no rule)", Frame::tcp(stranger, node, 40000, 443)),
        ("allowed, new flow", Frame::icmp(member, node, 13, 0, 1)),
        ("allowed, tracked", Frame::tcp(member, node, 40001, 443)),
    ];
    println!("ns per packet, BPF_PROG_TEST_RUN x {repeat} (median of 3 runs)");
    println!(
        "{:>8} {:>9} | {:<18} {:>8} {:>8}",
        "rules", "apply ms", "packet", "XDP", "TC in"
    );
    let mut first: Vec<f64> = Vec::new();
    let mut last: Vec<f64> = Vec::new();
    for n in RULE_COUNTS {
        let rs = rules(n);
        let state = mapstate::compile(&rs)?;
        let start = Instant::now();
        dp.apply(&state, Switch::Confirmed)?;
        let apply_ms = start.elapsed().as_secs_f64() * 1000.0;
        let mut row = Vec::new();
        for (i, (what, frame)) in cases.iter().enumerate() {
            let bytes = frame.build();
            let mut cols = Vec::new();
            for prog in [Prog::Xdp, Prog::TcIn] {
                let mut runs: Vec<f64> = (0..3)
                    .map(|_| {
                        let (pass, total_ns) = run_raw(&dp, prog, &bytes, repeat);
                        assert_eq!(pass, i != 0, "{what}: unexpected verdict");
                        total_ns
                    })
                    .collect();
                runs.sort_by(f64::total_cmp);
                cols.push(runs[1]);
            }
            let label = if i == 0 {
                format!("{n:>8} {apply_ms:>9.1}")
            } else {
                format!("{:>8} {:>9}", "", "")
            };
            println!("{label} | {what:<18} {:>8.1} {:>8.1}", cols[0], cols[1]);
            row.extend(cols);
        }
        if first.is_empty() {
            first.clone_from(&row);
        }
        last = row;
    }
    println!("\ncost at 100,000 rules / cost at 10 rules (goal <= 1.3):");
    for (i, (what, _)) in cases.iter().enumerate() {
        println!(
            "  {what:<18} XDP {:.2}  TC {:.2}",
            last[2 * i] / first[2 * i],
            last[2 * i + 1] / first[2 * i + 1]
        );
    }
    drop(dp);
    let _ = Datapath::remove_all(&pin_root);
    Ok(())
}
