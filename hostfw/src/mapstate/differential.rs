//! The property that matters: the kernel's lookup over the compiled maps
//! decides every packet as the reference evaluator does.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Instant,
};

use hostfw_common::policy::IDENTITY_NONE;
use rand::{Rng, SeedableRng, rngs::StdRng};

use super::{MapState, compile, compile_after, diff, identities, simulate::Simulator};
use crate::{
    refeval::{self, Packet},
    ruleset::{Action, Cidr, Direction, L4, Mode, Peers, Rule, RuleSet},
    testgen::{self, PacketOptions, RuleSetOptions},
};

fn check(sim: &Simulator, generation: u32, rules: &RuleSet, state: &MapState, pkt: &Packet) {
    let want = refeval::evaluate(rules, pkt);
    let got = sim.evaluate(generation, pkt);
    assert_eq!(
        got,
        want,
        "generation {generation}\npacket {pkt:?}\nrules {rules:#?}\nstate {state:#?}\nidentity {}",
        sim.identity(generation, pkt.remote)
    );
}

#[test]
fn simulated_datapath_agrees_with_reference() {
    let mut rng = StdRng::seed_from_u64(0x4f57_2026);
    let ropts = RuleSetOptions::default();
    let popts = PacketOptions::default();
    let mut pairs = 0usize;
    let mut by_reason = std::collections::BTreeMap::new();
    for _ in 0..6_000 {
        // Two generations side by side: neither may see the other's entries.
        let a = testgen::random_ruleset(&mut rng, &ropts);
        let b = testgen::random_ruleset(&mut rng, &ropts);
        let sa = compile(&a).expect("generated rule sets compile");
        // b as the next policy after a: numbered after a's identities.
        let sb = compile_after(&b, Some(&sa)).expect("generated rule sets compile");
        let mut sim = Simulator::default();
        sim.load(0, &sa);
        sim.load(1, &sb);
        for _ in 0..3 {
            for (generation, rules, state) in [(0, &a, &sa), (1, &b, &sb)] {
                let pkt = testgen::random_packet(&mut rng, rules, &popts);
                check(&sim, generation, rules, state, &pkt);
                let reason = refeval::evaluate(rules, &pkt).reason;
                *by_reason.entry(reason.name()).or_insert(0usize) += 1;
                pairs += 1;
            }
        }
    }
    assert!(pairs >= 20_000);
    // Every kind of outcome was exercised.
    for name in [
        "rule",
        "deny-rule",
        "failsafe",
        "default-deny",
        "no-policy",
        "icmpv6-always-allowed",
        "icmpv6-always-denied",
    ] {
        assert!(
            by_reason.get(name).copied().unwrap_or(0) > 200,
            "{name}: {by_reason:?}"
        );
    }
}

#[test]
fn larger_rule_sets_agree_with_reference() {
    let mut rng = StdRng::seed_from_u64(0x1a29e);
    let ropts = RuleSetOptions {
        max_rules: 60,
        max_cidrs: 5,
        max_excepts: 4,
        max_l4: 5,
        ..Default::default()
    };
    let popts = PacketOptions::default();
    for _ in 0..150 {
        let rules = testgen::random_ruleset(&mut rng, &ropts);
        let state = compile(&rules).expect("generated rule sets compile");
        let sim = Simulator::of(&state);
        for _ in 0..40 {
            let pkt = testgen::random_packet(&mut rng, &rules, &popts);
            check(&sim, 0, &rules, &state, &pkt);
        }
    }
}

/// A policy compiled after the one in force keeps its identity numbers: it
/// still decides as the reference does, and a one-rule change changes only
/// that rule's entries.
#[test]
fn a_next_policy_keeps_identity_numbers_and_decides_the_same() {
    let mut rng = StdRng::seed_from_u64(0x5ab1e);
    let ropts = RuleSetOptions::default();
    let popts = PacketOptions::default();
    for _ in 0..1500 {
        let a = testgen::random_ruleset(&mut rng, &ropts);
        let sa = compile(&a).expect("compiles");
        let mut b = a.clone();
        if !b.rules.is_empty() {
            let i = rng.random_range(0..b.rules.len());
            b.rules.remove(i);
        }
        if rng.random_bool(0.5) {
            let extra = testgen::random_ruleset(&mut rng, &ropts);
            let next = b.rules.iter().map(|r| r.id).max().unwrap_or(0);
            b.rules.extend(
                extra
                    .rules
                    .into_iter()
                    .take(1)
                    .map(|r| Rule { id: next + 1, ..r }),
            );
        }
        let sb = compile_after(&b, Some(&sa)).expect("compiles");
        let sim = Simulator::of(&sb);
        for _ in 0..5 {
            let pkt = testgen::random_packet(&mut rng, &b, &popts);
            check(&sim, 0, &b, &sb, &pkt);
        }
        // Compiled afresh, the same policy decides the same, so only the
        // numbering may differ: the tries then hold the same prefixes.
        let fresh = compile(&b).expect("compiles");
        assert_eq!(
            fresh.ident_v4.keys().collect::<Vec<_>>(),
            sb.ident_v4.keys().collect::<Vec<_>>()
        );
    }
    let rules = cidr_rules(1000);
    let before = compile(&rules).expect("compiles");
    let mut fewer = rules.clone();
    fewer.rules.remove(10);
    let after = compile_after(&fewer, Some(&before)).expect("compiles");
    let d = diff(&before, &after);
    assert_eq!(
        (d.upserts(), d.removals()),
        (0, 2),
        "one rule fewer: its prefix and its policy entry go, nothing else"
    );
    let renumbered = diff(&before, &compile(&fewer).expect("compiles"));
    assert!(
        renumbered.upserts() > 900,
        "without the previous numbers every identity after rule 11 moves: {}",
        renumbered.upserts()
    );
}

/// Identities alone: the identity an address resolves to stands for exactly
/// the selectors that match the address.
#[test]
fn identity_labels_match_selectors() {
    let mut rng = StdRng::seed_from_u64(0x1d);
    let opts = RuleSetOptions {
        max_cidrs: 4,
        max_excepts: 3,
        ..Default::default()
    };
    for _ in 0..2000 {
        let n = rng.random_range(0..8);
        let selectors: Vec<Vec<Cidr>> = (0..n)
            .map(|_| match testgen::random_peers(&mut rng, &opts) {
                Peers::Cidrs(c) => c,
                Peers::Any => Vec::new(),
            })
            .collect();
        let ids = identities::assign(&selectors, None).expect("assigns");
        let state = MapState {
            ident_v4: ids.ident_v4.clone(),
            ident_v6: ids.ident_v6.clone(),
            ..Default::default()
        };
        let sim = Simulator::of(&state);
        let rules = RuleSet {
            rules: (1..)
                .zip(&selectors)
                .map(|(id, s)| Rule {
                    id,
                    direction: Direction::Ingress,
                    action: Action::Allow,
                    peers: Peers::Cidrs(s.clone()),
                    l4: vec![L4::Any],
                })
                .collect(),
            ..Default::default()
        };
        for _ in 0..20 {
            let pkt = testgen::random_packet(&mut rng, &rules, &PacketOptions::default());
            let id = sim.identity(0, pkt.remote);
            let label: Vec<u32> = if id == IDENTITY_NONE {
                Vec::new()
            } else {
                ids.labels[id as usize - 1].clone()
            };
            let want: Vec<u32> = (0..)
                .zip(&selectors)
                .filter(|(_, s)| refeval::peers_match(&Peers::Cidrs((*s).clone()), pkt.remote))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(label, want, "{} in {selectors:#?}\n{ids:#?}", pkt.remote);
        }
    }
}

fn cidr_rules(n: u32) -> RuleSet {
    RuleSet {
        mode: Mode::Enforce,
        default_deny_ingress: true,
        default_deny_egress: false,
        rules: (1..=n)
            .map(|id| Rule {
                id,
                direction: Direction::Ingress,
                action: Action::Allow,
                peers: Peers::Cidrs(vec![Cidr {
                    net: ipnet::IpNet::from(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + id))),
                    except: vec![],
                }]),
                l4: vec![L4::Ports {
                    proto: hostfw_common::proto::TCP,
                    first: 443,
                    last: 443,
                }],
            })
            .collect(),
    }
}

/// 100,000 distinct /32 rules. The bound is for release builds; debug
/// builds only report the time.
#[test]
fn compiles_100k_cidr_rules_quickly() {
    let rules = cidr_rules(100_000);
    let start = Instant::now();
    let state = compile(&rules).expect("compiles");
    let elapsed = start.elapsed();
    println!(
        "compiled 100000 /32 rules in {elapsed:?}: {} identities, {} policy entries",
        state.ident_v4.len(),
        state.policy.len()
    );
    assert_eq!(state.ident_v4.len(), 100_000);
    assert_eq!(state.policy.len(), 100_000);
    if !cfg!(debug_assertions) {
        assert!(elapsed.as_millis() < 1000, "{elapsed:?}");
    }
    let sim = Simulator::of(&state);
    let pkt = Packet {
        direction: Direction::Ingress,
        remote: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 77_777)),
        proto: hostfw_common::proto::TCP,
        port: Some(443),
        icmp: None,
    };
    assert_eq!(sim.evaluate(0, &pkt), refeval::evaluate(&rules, &pkt));
    assert_eq!(sim.evaluate(0, &pkt).rule_id, 77_777);
}
