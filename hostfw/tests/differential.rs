//! The loaded XDP and TC programs give the reference evaluator's verdict on
//! random (policy, packet) pairs. Needs root.

mod common;

use common::{TestDatapath, frames::frame};
use hostfw::{
    datapath::testrun::{Prog, passes},
    datapath::writer::Switch,
    mapstate,
    refeval::{self, Verdict},
    ruleset::{Direction, Mode},
    testgen::{PacketOptions, RuleSetOptions, random_packet, random_ruleset},
};
use hostfw_common::stats::Stat;
use rand::{SeedableRng, rngs::StdRng};

const POLICIES: usize = 220;
const PACKETS_PER_POLICY: usize = 50;

fn audited(t: &TestDatapath) -> u64 {
    t.dp.counters().expect("counters").get(Stat::Audited)
}

#[test]
fn kernel_verdicts_equal_the_reference_evaluator() {
    let mut t = TestDatapath::load_with(hostfw::datapath::MapSizes {
        ident_v4: 8192,
        ident_v6: 8192,
        policy: 65536,
        conntrack_established: 65536,
        conntrack_new: 65536,
        frags: 256,
        rule_ids: 1 << 16,
    });
    let mut rng = StdRng::seed_from_u64(0x4f57_2026);
    let mut n = 0u32;
    let mut checked = 0usize;
    let mut by_verdict = [0usize; 3];
    for round in 0..POLICIES {
        let mut rules = random_ruleset(&mut rng, &RuleSetOptions::default());
        // Dense ids keep the per-rule counters small; verdicts do not depend
        // on the numbering.
        for (i, r) in rules.rules.iter_mut().enumerate() {
            r.id = u32::try_from(i + 1).unwrap_or(u32::MAX);
        }
        let state = mapstate::compile(&rules).unwrap_or_else(|e| panic!("round {round}: {e}"));
        t.dp.apply(state, Switch::Confirmed)
            .unwrap_or_else(|e| panic!("round {round}: apply: {e:?}"));
        for _ in 0..PACKETS_PER_POLICY {
            n += 1;
            let pkt = random_packet(&mut rng, &rules, &PacketOptions::default());
            let want = refeval::evaluate(&rules, &pkt);
            let prog = match pkt.direction {
                Direction::Egress => Prog::TcOut,
                Direction::Ingress if n.is_multiple_of(2) => Prog::Xdp,
                Direction::Ingress => Prog::TcIn,
            };
            let before = audited(&t);
            let pass = passes(&t.dp, prog, &frame(&pkt, n));
            let got = match (pass, audited(&t) > before) {
                (true, true) => Verdict::Audit,
                (true, false) => Verdict::Allowed,
                (false, _) => Verdict::Denied,
            };
            assert_eq!(
                got, want.verdict,
                "round {round}, case {n}, {prog:?}: packet {pkt:?}\nexpected {want:?}\nrules: {rules:#?}"
            );
            by_verdict[want.verdict as usize] += 1;
            checked += 1;
        }
        if round % 50 == 0 {
            eprintln!(
                "round {round}: {checked} cases agree so far; mode {:?}",
                rules.mode
            );
        }
    }
    eprintln!("{checked} cases agree (allowed/denied/audit: {by_verdict:?})");
    assert!(checked >= 10_000);
    assert!(
        by_verdict.iter().all(|&c| c > 500),
        "verdict mix too thin: {by_verdict:?}"
    );
    let _ = Mode::Audit;
}
