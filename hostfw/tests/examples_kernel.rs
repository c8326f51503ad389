//! Every example configuration and its policies, compiled and loaded into
//! the kernel, give the verdict `hostfw trace` gives, on generated flows.
//! Needs root.

mod common;

use std::path::{Path, PathBuf};

use common::{TestDatapath, frames::frame};
use hostfw::{
    config::Config,
    datapath::{
        testrun::{Prog, passes},
        writer::Switch,
    },
    mapstate,
    policy::{self, LowerContext},
    refeval::{Packet, Verdict},
    ruleset::{Direction, Mode},
    testgen::{PacketOptions, random_packet},
    trace::{TraceQuery, trace},
};
use hostfw_common::{proto, stats::Stat};
use rand::{Rng, SeedableRng, rngs::StdRng};

const FLOWS_PER_RUN: usize = 130;

fn examples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut out = vec![root.join("hostfw.toml")];
    for role in ["control-plane", "worker", "etcd", "bastion"] {
        out.push(root.join(role).join("hostfw.toml"));
    }
    out
}

/// A flow `trace` can be asked about, with the packet the kernel gets.
///
/// Loopback peers are left out: they never reach a managed interface (the
/// kernel drops such martians on other interfaces), and trace says so.
fn query(p: &Packet) -> Option<TraceQuery> {
    if p.remote.is_loopback()
        || !matches!(
            p.proto,
            proto::TCP | proto::UDP | proto::SCTP | proto::ICMP | proto::ICMPV6
        )
    {
        return None;
    }
    let icmp_type = p.icmp.map(|(t, _)| t.to_string());
    TraceQuery::new(p.direction, p.remote, p.proto, p.port, icmp_type.as_deref()).ok()
}

#[test]
fn the_kernel_gives_the_verdicts_of_trace_on_every_example() {
    let mut t = TestDatapath::load();
    let mut rng = StdRng::seed_from_u64(0x7ace_2026);
    let mut n = 0u32;
    let mut compared = 0usize;
    for path in examples() {
        let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let loaded = policy::load(&cfg.policies.paths);
        assert!(
            loaded.errors.is_empty(),
            "{}: {:?}",
            path.display(),
            loaded.errors
        );
        let ctx = LowerContext::from_config(&cfg, &[]).expect("context");
        let mut lowered = policy::lower(&loaded.policies, &ctx);
        assert!(
            !lowered.rules.rules.is_empty(),
            "{}: no rules",
            path.display()
        );
        // Peers worth asking about: the cluster's own addresses too.
        let mut specials = cfg.cluster.nodes.clone();
        specials.extend(&cfg.cluster.apiservers);
        specials.extend(&cfg.node.addresses);
        for mode in [Mode::Audit, Mode::Enforce] {
            lowered.rules.mode = mode;
            let state = mapstate::compile(&lowered.rules).expect("compiles");
            t.dp.apply(state, Switch::Confirmed).expect("apply");
            let mut done = 0;
            while done < FLOWS_PER_RUN {
                let mut p = random_packet(&mut rng, &lowered.rules, &PacketOptions::default());
                if !specials.is_empty() && rng.random_bool(0.25) {
                    p.remote = specials[rng.random_range(0..specials.len())];
                }
                let Some(q) = query(&p) else { continue };
                n += 1;
                let want = trace(&lowered, &q);
                let prog = match (p.direction, n % 2) {
                    (Direction::Egress, _) => Prog::TcOut,
                    (Direction::Ingress, 0) => Prog::Xdp,
                    (Direction::Ingress, _) => Prog::TcIn,
                };
                let before = t.dp.counters().expect("counters").get(Stat::Audited);
                let pass = passes(&t.dp, prog, &frame(&p, n));
                let audited = t.dp.counters().expect("counters").get(Stat::Audited) > before;
                let got = match (pass, audited) {
                    (false, _) => Verdict::Denied,
                    (true, true) => Verdict::Audit,
                    (true, false) => Verdict::Allowed,
                };
                assert_eq!(
                    got,
                    want.verdict,
                    "{}, {mode:?}: {} via {prog:?}: trace says {} ({})",
                    path.display(),
                    q.describe(),
                    want.verdict.name(),
                    want.full_reason()
                );
                done += 1;
                compared += 1;
            }
        }
    }
    eprintln!("{compared} flows: kernel and trace agree");
    assert!(compared >= 1000);
}
