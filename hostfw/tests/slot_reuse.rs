//! The writer reuses the slot left behind by the last switch: it writes only
//! the difference, nothing for an unchanged policy, and a stale slot is never
//! in force, not even as a trial's fallback. Needs root.

mod common;

use std::{net::IpAddr, time::Duration};

use common::TestDatapath;
use hostfw::{
    craft::Frame,
    datapath::testrun::{Prog, passes},
    datapath::writer::{SlotState, Switch},
    mapstate,
    ruleset::{Action, Direction, L4, Mode, Peers, Rule, RuleSet},
};
use hostfw_common::proto;

const NODE: &str = "192.0.2.1";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Ingress default-deny; rule i allows TCP port 1000+i from 10.(i/256).(i%256).0/24.
fn rules(ids: impl IntoIterator<Item = u32>) -> RuleSet {
    RuleSet {
        mode: Mode::Enforce,
        default_deny_ingress: true,
        default_deny_egress: false,
        rules: ids
            .into_iter()
            .map(|i| {
                let net = format!("10.{}.{}.0/24", i / 256, i % 256);
                Rule::new(
                    i,
                    Direction::Ingress,
                    Action::Allow,
                    Peers::nets([net.parse().expect("net")]),
                    vec![L4::port(proto::TCP, u16::try_from(1000 + i).expect("port"))],
                )
            })
            .collect(),
    }
}

fn allows(t: &TestDatapath, i: u32, sport: u16) -> bool {
    let from = ip(&format!("10.{}.{}.7", i / 256, i % 256));
    let port = u16::try_from(1000 + i).expect("port");
    passes(
        &t.dp,
        Prog::Xdp,
        &Frame::tcp(from, ip(NODE), sport, port).build(),
    )
}

/// Compiles `r` as the daemon does (after the policy in force) and applies it.
fn apply(t: &mut TestDatapath, r: &RuleSet, switch: Switch) -> hostfw::datapath::writer::Applied {
    apply_state(t, r, switch).0
}

fn apply_state(
    t: &mut TestDatapath,
    r: &RuleSet,
    switch: Switch,
) -> (hostfw::datapath::writer::Applied, mapstate::MapState) {
    let previous = t.dp.enforced_state().expect("read the slots");
    let state = mapstate::compile_after(r, previous).expect("compiles");
    let applied =
        t.dp.apply(state.clone(), switch)
            .unwrap_or_else(|e| panic!("apply: {e}"));
    (applied, state)
}

#[test]
fn an_unchanged_policy_writes_nothing_and_keeps_its_revision() {
    let mut t = TestDatapath::load();
    let first = apply(&mut t, &rules(1..=200), Switch::Confirmed);
    assert!(first.changes >= 400, "first apply writes: {first:?}");
    let again = apply(&mut t, &rules(1..=200), Switch::Confirmed);
    assert_eq!(again.changes, 0, "{again:?}");
    assert!(again.unchanged && !first.unchanged);
    assert_eq!(again.revision, first.revision);
    assert_eq!(again.generation, first.generation);
    assert!(allows(&t, 5, 40000));
    // A different mode is a change, though the entries are the same.
    let mut audit = rules(1..=200);
    audit.mode = Mode::Audit;
    let switched = apply(&mut t, &audit, Switch::Confirmed);
    assert_ne!(switched.revision, first.revision);
    assert!(
        passes(
            &t.dp,
            Prog::Xdp,
            &Frame::tcp(ip("203.0.113.9"), ip(NODE), 40001, 1).build()
        ),
        "audit mode passes what it would drop"
    );
}

#[test]
fn a_small_change_writes_only_the_difference() {
    let mut t = TestDatapath::load();
    apply(&mut t, &rules(1..=300), Switch::Confirmed);
    // Into the other, empty slot: everything.
    let (full, before) = apply_state(&mut t, &rules(2..=300), Switch::Confirmed);
    assert!(full.changes >= 2 * 299, "{full:?}");
    std::thread::sleep(hostfw::datapath::writer::GRACE);
    // Into the first slot again, which holds rules 1..=300: one rule fewer
    // and one more, whatever numbering the compiler chose.
    let (small, now) = apply_state(&mut t, &rules((3..=300).chain([301])), Switch::Confirmed);
    assert!(
        small.changes <= 12,
        "a two-rule difference rewrote {} entries",
        small.changes
    );
    assert!(!allows(&t, 1, 40000), "rule 1 is gone");
    assert!(!allows(&t, 2, 40001), "rule 2 is gone");
    assert!(allows(&t, 3, 40002), "rule 3 stays");
    assert!(allows(&t, 301, 40003), "rule 301 is new");
    // What the kernel holds is what was compiled, in both slots.
    let SlotState::Confirmed { generation } = t.dp.slot_state().expect("state") else {
        panic!("not confirmed");
    };
    assert!(
        t.dp.read_generation(generation)
            .expect("read")
            .same_entries(&now)
    );
    assert!(
        t.dp.read_generation(1 - generation)
            .expect("read")
            .same_entries(&before)
    );
}

#[test]
fn a_trial_from_nothing_falls_back_to_nothing_though_a_slot_is_stale() {
    let mut t = TestDatapath::load();
    let trial = Switch::Trial {
        duration: Duration::from_millis(300),
    };
    apply(&mut t, &rules(1..=10), trial);
    assert!(t.dp.rollback().expect("rollback"));
    assert_eq!(t.dp.slot_state().expect("state"), SlotState::Empty);
    // The rolled-back trial's slot still holds its entries; the next trial
    // must be written there, not take it as its fallback.
    apply(&mut t, &rules(20..=30), trial);
    assert!(allows(&t, 20, 40000), "the trial is in force");
    let stranger = Frame::tcp(ip("203.0.113.9"), ip(NODE), 40001, 1).build();
    assert!(!passes(&t.dp, Prog::Xdp, &stranger), "the trial denies");
    std::thread::sleep(Duration::from_millis(400));
    assert!(matches!(
        t.dp.slot_state().expect("state"),
        SlotState::Expired { .. }
    ));
    assert!(
        passes(&t.dp, Prog::Xdp, &stranger),
        "past the deadline nothing filters: the fallback is the empty slot"
    );
    assert!(allows(&t, 1, 40002), "the stale trial is not in force");
}

#[test]
fn replacing_a_pending_trial_reuses_its_slot() {
    let mut t = TestDatapath::load();
    apply(&mut t, &rules(1..=50), Switch::Confirmed);
    let trial = Switch::Trial {
        duration: Duration::from_secs(60),
    };
    apply(&mut t, &rules(1..=49), trial);
    assert!(!allows(&t, 50, 40000), "the first trial cut rule 50");
    // A new trial replaces the pending one in the same slot; the confirmed
    // policy stays the fallback.
    let second = apply(&mut t, &rules(2..=50), trial);
    assert!(second.changes <= 12, "{second:?}");
    assert!(allows(&t, 50, 40001) && !allows(&t, 1, 40002));
    assert!(t.dp.rollback().expect("rollback"));
    assert!(
        allows(&t, 1, 40003) && allows(&t, 50, 40004),
        "the confirmed policy"
    );
}

/// Per-rule counters are read in chunks of thousands (one call each): rules
/// past the first chunk are counted like the first ones.
#[test]
fn per_rule_counts_across_chunks() {
    let mut t = TestDatapath::load_with(hostfw::datapath::MapSizes {
        ident_v4: 8192,
        rule_ids: 8192,
        ..TestDatapath::SIZES
    });
    let applied = apply(&mut t, &rules(1..=5000), Switch::Confirmed);
    for (i, sport) in [(2, 41000), (4500, 41001), (4500, 41002), (4999, 41003)] {
        assert!(allows(&t, i, sport), "rule {i}");
    }
    let counts =
        t.dp.rule_counts(applied.generation, 5000)
            .expect("rule counts");
    assert_eq!(counts, vec![(2, 1), (4500, 2), (4999, 1)]);
}
