//! `suggest` round trips: its output parses, lowers with the node's
//! context, and the reference evaluator allows every recorded flow.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
    time::{Duration, SystemTime},
};

use hostfw_common::{event::Reason, proto};
use rand::{
    Rng, SeedableRng,
    rngs::StdRng,
    seq::{IndexedRandom, SliceRandom},
};

use super::{Seen, SuggestContext, suggest, suggest::POLICY_NAME};
use crate::{
    config::Config,
    policy::{Format, LowerContext, Lowered, Policy, lower, parse_str},
    refeval::{Packet, Verdict, evaluate, icmp6_always, icmp6_by_policy},
    ruleset::{Direction, Mode},
};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn lower_context(cidr_match_nodes: bool) -> LowerContext {
    let cfg = Config::parse(
        "mode = \"audit\"\n\
         [node]\nname = \"node-1\"\n\
         labels = { \"node-role.kubernetes.io/control-plane\" = \"\", \"kubernetes.io/hostname\" = \"node-1\" }\n\
         addresses = [\"10.0.0.1\", \"fd00::1\"]\n\
         [cluster]\nnodes = [\"10.0.0.1\", \"10.0.0.2\", \"10.0.0.3\", \"fd00::2\"]\n\
         pod_cidrs = [\"10.244.0.0/16\", \"fd00:244::/48\"]\n\
         apiservers = [\"10.0.0.3\", \"10.96.0.1\"]\n",
        Path::new("hostfw.toml"),
    )
    .expect("config");
    let mut ctx = LowerContext::from_config(&cfg, &[ip("192.168.1.5")]).expect("context");
    ctx.cidr_match_nodes = cidr_match_nodes;
    ctx
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_732_500_000 + secs)
}

fn random_peer(rng: &mut StdRng, v6: bool) -> IpAddr {
    if v6 {
        let pool: [fn(&mut StdRng) -> IpAddr; 5] = [
            |_| ip("fd00::1"),
            |_| ip("fd00::2"),
            |r| {
                IpAddr::V6(Ipv6Addr::new(
                    0xfd00,
                    0x244,
                    0,
                    r.random(),
                    0,
                    0,
                    0,
                    r.random(),
                ))
            },
            |r| {
                IpAddr::V6(Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    0,
                    0,
                    0,
                    0,
                    0,
                    r.random_range(1..6),
                ))
            },
            |r| IpAddr::V6(Ipv6Addr::from(r.random::<u128>())),
        ];
        let f = pool.choose(rng).expect("non-empty");
        f(rng)
    } else {
        let pool: [fn(&mut StdRng) -> IpAddr; 9] = [
            |_| ip("10.0.0.1"),
            |_| ip("192.168.1.5"),
            |r| [ip("10.0.0.2"), ip("10.0.0.3")][r.random_range(0..2)],
            |_| ip("10.96.0.1"),
            |r| IpAddr::V4(Ipv4Addr::new(10, 244, r.random(), r.random())),
            // Dense: grouped by /24.
            |r| IpAddr::V4(Ipv4Addr::new(192, 0, 2, r.random_range(1..40))),
            // Next to the nodes: never grouped.
            |r| IpAddr::V4(Ipv4Addr::new(10, 0, 0, r.random_range(4..20))),
            |r| IpAddr::V4(Ipv4Addr::new(198, 51, 100, r.random_range(1..3))),
            |r| IpAddr::V4(Ipv4Addr::from(r.random::<u32>())),
        ];
        let f = pool.choose(rng).expect("non-empty");
        f(rng)
    }
}

fn random_seen(rng: &mut StdRng) -> Seen {
    let v6 = rng.random_bool(0.3);
    let peer = random_peer(rng, v6);
    let port = |rng: &mut StdRng| -> Option<u16> {
        Some(if rng.random_bool(0.2) {
            rng.random_range(1..=u16::MAX)
        } else {
            *[22, 53, 80, 443, 6443, 8000, 8001, 8002, 8005, 9100]
                .choose(rng)
                .expect("non-empty")
        })
    };
    let (proto, port) = match rng.random_range(0..20) {
        0..=5 => (proto::TCP, port(rng)),
        6..=8 => (proto::UDP, port(rng)),
        9 => (proto::SCTP, port(rng)),
        // Unknown port (a fragment), or port 0.
        10 => (proto::UDP, None),
        11 => (proto::TCP, Some(0)),
        12..=15 if v6 => (proto::ICMPV6, Some(rng.random_range(128..=129))),
        12..=15 => (proto::ICMP, Some(rng.random_range(0..=255))),
        // Unknown type (a fragment).
        16 if v6 => (proto::ICMPV6, None),
        16 => (proto::ICMP, None),
        17 => (*[47, 50].choose(rng).expect("non-empty"), None),
        // Never decided by policy: left out.
        18 if v6 => (
            proto::ICMPV6,
            Some(*[1, 135, 137, 200].choose(rng).expect("non-empty")),
        ),
        _ => (proto::TCP, port(rng)),
    };
    let first = rng.random_range(0..10_000);
    Seen {
        direction: if rng.random_bool(0.5) {
            Direction::Ingress
        } else {
            Direction::Egress
        },
        peer,
        proto,
        port,
        count: rng.random_range(1..100),
        first: at(first),
        last: at(first + rng.random_range(0..10_000)),
    }
}

fn packet(s: &Seen, code: u8) -> Packet {
    let icmp = matches!(s.proto, proto::ICMP | proto::ICMPV6);
    Packet {
        direction: s.direction,
        remote: s.peer,
        proto: s.proto,
        port: if icmp { None } else { s.port },
        icmp: if icmp {
            s.port.and_then(|t| u8::try_from(t).ok()).map(|t| (t, code))
        } else {
            None
        },
    }
}

/// Whether the policy decides `s`: every flow but ICMPv6 other than echo.
fn by_policy(s: &Seen) -> bool {
    s.proto != proto::ICMPV6
        || s.port
            .and_then(|t| u8::try_from(t).ok())
            .is_none_or(icmp6_by_policy)
}

fn parse(text: &str) -> Vec<Policy> {
    match parse_str(text, Path::new("suggested.yaml"), Format::Yaml) {
        Ok(p) => p,
        Err(errors) => {
            let e: Vec<String> = errors.iter().map(ToString::to_string).collect();
            panic!(
                "the suggestion does not parse:\n{}\n---\n{text}",
                e.join("\n")
            )
        }
    }
}

fn origin_policy(l: &Lowered, id: u32) -> Option<&str> {
    l.report.origin(id).and_then(|o| o.policy.as_deref())
}

/// Deny-all companion: ingress and egress default-deny, no allow.
const DENY_ALL: &str = "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\n\
                        metadata: {name: deny-all}\nspec:\n  nodeSelector: {}\n  \
                        ingress: [{}]\n  egress: [{}]\n";

fn check_round_trip(seed: u64, cidr_match_nodes: bool) {
    let mut rng = StdRng::seed_from_u64(seed);
    let ctx = lower_context(cidr_match_nodes);
    let sctx = SuggestContext {
        node_name: Some("node-1".into()),
        ..SuggestContext::from_lower_context(&ctx)
    };
    let mut agg: Vec<Seen> = (0..250).map(|_| random_seen(&mut rng)).collect();
    let text = suggest(&agg, &sctx);

    // Deterministic, whatever the order of the input.
    agg.shuffle(&mut rng);
    assert_eq!(suggest(&agg, &sctx), text, "seed {seed}");

    let policies = parse(&text);
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].name, POLICY_NAME);

    // Alone, with the failsafe entries of the configuration.
    let alone = lower(&policies, &ctx);
    let report = &alone.report.policies[0];
    assert!(
        report.warnings.is_empty(),
        "seed {seed}: {:#?}\n{text}",
        report.warnings
    );
    assert!(!alone.rules.default_deny_ingress && !alone.rules.default_deny_egress);
    // Without failsafe: the suggestion's own rules decide.
    let bare_ctx = LowerContext {
        failsafe: Vec::new(),
        ..ctx.clone()
    };
    let bare = lower(&policies, &bare_ctx);
    // With a policy that denies everything.
    let mut both_policies = parse(DENY_ALL);
    both_policies.extend(policies.iter().cloned());
    let both = lower(&both_policies, &bare_ctx);
    let deny_all = lower(&parse(DENY_ALL), &bare_ctx);
    assert!(both.rules.default_deny_ingress && both.rules.default_deny_egress);

    let mut kinds = BTreeMap::new();
    for s in &agg {
        let pkt = packet(s, rng.random());
        if !by_policy(s) {
            continue; // left out of the suggestion
        }
        let what = format!("seed {seed}: {s:?} {pkt:?}\n{text}");
        let out = evaluate(&alone.rules, &pkt);
        assert_eq!(out.verdict, Verdict::Allowed, "{what}");
        let out = evaluate(&bare.rules, &pkt);
        assert_eq!(out.verdict, Verdict::Allowed, "{what}");
        assert_eq!(out.reason, Reason::RuleAllow, "{what}");
        assert_eq!(
            origin_policy(&bare, out.rule_id),
            Some(POLICY_NAME),
            "{what}"
        );
        let out = evaluate(&both.rules, &pkt);
        assert_eq!(out.verdict, Verdict::Allowed, "{what}");
        assert_eq!(
            origin_policy(&both, out.rule_id),
            Some(POLICY_NAME),
            "{what}"
        );
        // Not vacuous: without the suggestion it is denied (audit mode).
        assert_eq!(
            evaluate(&deny_all.rules, &pkt).verdict,
            Verdict::Audit,
            "{what}"
        );
        let peer = match super::peers::entity_of(s.peer, &sctx) {
            Some(e) => e.name().to_string(),
            None => "cidr".into(),
        };
        *kinds
            .entry((
                s.direction,
                peer,
                s.proto == proto::ICMP || s.proto == proto::ICMPV6,
            ))
            .or_insert(0) += 1;
    }
    // Coverage: every entity and CIDRs, both directions.
    for d in [Direction::Ingress, Direction::Egress] {
        for peer in ["host", "remote-node", "kube-apiserver", "cluster", "cidr"] {
            assert!(
                kinds.keys().any(|(kd, kp, _)| *kd == d && kp == peer),
                "seed {seed}: no {d:?} {peer} flow: {kinds:?}"
            );
        }
    }
    assert!(text.contains("fromEntities:") && text.contains("toEntities:"));
    assert!(text.contains("fromCIDR:") && text.contains("toCIDR:"));
    assert!(text.contains("192.0.2.0/24"), "dense /24 grouped:\n{text}");
    assert!(text.contains("icmps:") && text.contains("protocol: UDP"));
    if agg.iter().any(|s| !by_policy(s)) {
        assert!(text.contains("Note: left out:"), "{text}");
    }
}

#[test]
fn random_flows_round_trip() {
    for seed in 0..20 {
        check_round_trip(seed, seed % 2 == 1);
    }
}

#[test]
fn mode_enforce_allows_too() {
    let mut ctx = lower_context(false);
    ctx.mode = Mode::Enforce;
    let mut rng = StdRng::seed_from_u64(99);
    let agg: Vec<Seen> = (0..200).map(|_| random_seen(&mut rng)).collect();
    let text = suggest(&agg, &SuggestContext::from_lower_context(&ctx));
    let mut policies = parse(DENY_ALL);
    policies.extend(parse(&text));
    let l = lower(&policies, &ctx);
    for s in agg.iter().filter(|s| by_policy(s)) {
        let pkt = packet(s, 0);
        assert_eq!(evaluate(&l.rules, &pkt).verdict, Verdict::Allowed, "{s:?}");
    }
}

fn seen(direction: Direction, peer: &str, proto: u8, port: Option<u16>, count: u64) -> Seen {
    Seen {
        direction,
        peer: ip(peer),
        proto,
        port,
        count,
        first: at(0),
        last: at(3600),
    }
}

#[test]
fn small_suggestion_reads_well() {
    use Direction::{Egress, Ingress};
    let ctx = SuggestContext {
        node_name: Some("node-1".into()),
        node_labels: BTreeMap::from([("node-access".to_string(), "ssh".to_string())]),
        host_addresses: vec![ip("10.0.0.1")],
        cluster_nodes: vec![ip("10.0.0.1"), ip("10.0.0.2")],
        pod_cidrs: vec!["10.244.0.0/16".parse().expect("net")],
        apiservers: vec![ip("10.0.0.10")],
        group_threshold: 3,
        notes: vec![
            "left out: 2 flows denied by a deny rule (an allow rule cannot override it)".into(),
        ],
    };
    let agg = vec![
        seen(Ingress, "10.0.0.2", proto::TCP, Some(10250), 5),
        seen(Ingress, "10.244.1.7", proto::TCP, Some(10250), 2),
        seen(Ingress, "192.0.2.1", proto::TCP, Some(443), 1),
        seen(Ingress, "192.0.2.2", proto::TCP, Some(443), 1),
        seen(Ingress, "192.0.2.3", proto::TCP, Some(80), 1),
        seen(Ingress, "198.51.100.7", proto::ICMP, Some(8), 4),
        seen(Ingress, "fd00::7", proto::ICMPV6, Some(128), 1),
        seen(Ingress, "fd00::7", proto::ICMPV6, Some(137), 9),
        seen(Egress, "10.0.0.10", proto::TCP, Some(6443), 3),
        seen(Egress, "203.0.113.5", proto::UDP, Some(8000), 1),
        seen(Egress, "203.0.113.5", proto::UDP, Some(8001), 1),
        seen(Egress, "203.0.113.5", proto::UDP, Some(8002), 1),
        seen(Egress, "203.0.113.5", proto::UDP, Some(53), 1),
        seen(Egress, "203.0.113.6", 47, None, 1),
        seen(Egress, "198.18.0.9", proto::TCP, None, 1),
    ];
    let text = suggest(&agg, &ctx);
    let expected = r#"# Suggested by `hostfw suggest` on node node-1: a policy that would allow the
# flows hostfw saw denied, or audited (denied by the policy, passed because
# the mode is audit). It is for review, not applied: read every rule, drop or
# narrow what should stay denied, then `hostfw check` it and `hostfw apply
# --trial` it.
#
# Built from 24 flows (14 distinct direction, peer, protocol and port
# entries), first seen 2024-11-25T02:00:00Z, last seen 2024-11-25T03:00:00Z.
#
# Peers: this node, the API servers, the other nodes and the pod CIDRs became
# the entities host, kube-apiserver, remote-node and cluster; any other
# address is its /32 (IPv6: /128), or its /24 (IPv6: /64) when 3 or more of
# its addresses were seen in one direction and it holds no cluster address.
# Ports are grouped per peer and protocol (consecutive ones as ranges), ICMP
# by type; peers with the same ports share a rule.
#
# enableDefaultDeny is false: this policy only adds allows, it makes no
# direction default-deny.
#
# Note: left out: 2 flows denied by a deny rule (an allow rule cannot override
# it).
#
# Note: left out: 9 flows of ICMPv6 type 137, which a host always drops (only
# echo is decided by policy).
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: hostfw-suggested
spec:
  nodeSelector:
    matchLabels:
      "node-access": "ssh"
  enableDefaultDeny:
    ingress: false
    egress: false
  ingress:
  # 7 flows, 2024-11-25T02:00:00Z to 2024-11-25T03:00:00Z; peers seen:
  # 10.0.0.2, 10.244.1.7.
  - fromEntities:
    - cluster
    toPorts:
    - ports:
      - {port: "10250", protocol: TCP}
  # 3 flows, 2024-11-25T02:00:00Z to 2024-11-25T03:00:00Z; peers seen:
  # 192.0.2.1, 192.0.2.2, 192.0.2.3.
  - fromCIDR:
    - 192.0.2.0/24
    toPorts:
    - ports:
      - {port: "80", protocol: TCP}
      - {port: "443", protocol: TCP}
  # 4 flows, 2024-11-25T02:00:00Z to 2024-11-25T03:00:00Z; peers seen:
  # 198.51.100.7.
  - fromCIDR:
    - 198.51.100.7/32
    icmps:
    - fields:
      - {type: 8, family: IPv4}  # EchoRequest
  # 1 flow, 2024-11-25T02:00:00Z to 2024-11-25T03:00:00Z; peers seen: fd00::7.
  - fromCIDR:
    - fd00::7/128
    icmps:
    - fields:
      - {type: 128, family: IPv6}  # EchoRequest
  egress:
  # 3 flows, 2024-11-25T02:00:00Z to 2024-11-25T03:00:00Z; peers seen:
  # 10.0.0.10.
  - toEntities:
    - kube-apiserver
    toPorts:
    - ports:
      - {port: "6443", protocol: TCP}
  # 1 flow, 2024-11-25T02:00:00Z to 2024-11-25T03:00:00Z; peers seen:
  # 198.18.0.9.
  - toCIDR:
    - 198.18.0.9/32
    toPorts:
    - ports:
      - {port: "0", protocol: TCP}  # every port (was 0 or unknown)
  # 4 flows, 2024-11-25T02:00:00Z to 2024-11-25T03:00:00Z; peers seen:
  # 203.0.113.5.
  - toCIDR:
    - 203.0.113.5/32
    toPorts:
    - ports:
      - {port: "53", protocol: UDP}
      - {port: "8000", endPort: 8002, protocol: UDP}
  # 1 flow, 2024-11-25T02:00:00Z to 2024-11-25T03:00:00Z; peers seen:
  # 203.0.113.6. Every protocol and port: a rule without ports is needed for
  # protocol 47.
  - toCIDR:
    - 203.0.113.6/32
"#;
    assert_eq!(text, expected, "got:\n{text}");
    let policies = parse(&text);
    let lctx = LowerContext {
        node_labels: ctx.node_labels.clone(),
        host_addresses: ctx.host_addresses.clone(),
        cluster_nodes: ctx.cluster_nodes.clone(),
        pod_cidrs: ctx.pod_cidrs.clone(),
        apiservers: ctx.apiservers.clone(),
        ..LowerContext::default()
    };
    let l = lower(&policies, &lctx);
    assert!(
        l.report.policies[0].warnings.is_empty(),
        "{:?}",
        l.report.policies[0].warnings
    );
    for s in &agg {
        let pkt = packet(s, 0);
        let out = evaluate(&l.rules, &pkt);
        if s.port == Some(137) {
            assert_eq!(out.verdict, Verdict::Audit, "no policy allows it");
        } else {
            assert_eq!(out.reason, Reason::RuleAllow, "{s:?}");
        }
    }
}

#[test]
fn nothing_denied_is_a_valid_file_without_policy() {
    let ctx = SuggestContext::default();
    let text = suggest(&[], &ctx);
    assert!(text.contains("Built from no flow"), "{text}");
    assert!(text.contains("Nothing to suggest"), "{text}");
    assert!(text.lines().all(|l| l.starts_with('#')), "{text}");
    assert!(parse(&text).is_empty());
}

#[test]
fn from_config_takes_the_node_and_cluster() {
    let cfg = Config::parse(
        "[node]\nname = \"n1\"\nlabels = { a = \"b\" }\naddresses = [\"10.0.0.1\"]\n\
         [cluster]\nnodes = [\"10.0.0.2\"]\npod_cidrs = [\"10.244.0.0/16\"]\n\
         apiservers = [\"10.0.0.9\"]\n",
        Path::new("h.toml"),
    )
    .expect("config");
    let ctx = SuggestContext::from_config(&cfg, &[ip("192.168.0.2"), ip("10.0.0.1")]);
    assert_eq!(ctx.node_name.as_deref(), Some("n1"));
    assert_eq!(ctx.host_addresses, vec![ip("10.0.0.1"), ip("192.168.0.2")]);
    assert_eq!(ctx.cluster_nodes, vec![ip("10.0.0.2")]);
    assert_eq!(ctx.apiservers, vec![ip("10.0.0.9")]);
    assert_eq!(ctx.group_threshold, SuggestContext::DEFAULT_GROUP_THRESHOLD);
    let lctx = LowerContext::from_config(&cfg, &[ip("192.168.0.2")]).expect("context");
    let from_lower = SuggestContext::from_lower_context(&lctx);
    assert_eq!(from_lower.host_addresses, ctx.host_addresses);
    assert_eq!(from_lower.node_labels, ctx.node_labels);
}

#[test]
fn icmpv6_outside_policy_is_left_out() {
    assert!(icmp6_always(135) && !icmp6_by_policy(200));
    let agg = vec![
        seen(
            Direction::Ingress,
            "2001:db8::1",
            proto::ICMPV6,
            Some(200),
            3,
        ),
        seen(
            Direction::Ingress,
            "2001:db8::1",
            proto::ICMPV6,
            Some(135),
            1,
        ),
    ];
    let text = suggest(&agg, &SuggestContext::default());
    assert!(
        text.contains("3 flows of ICMPv6 type 200, which a host always drops"),
        "{text}"
    );
    assert!(
        text.contains("1 flow of ICMPv6 type 135, which a host always passes"),
        "{text}"
    );
    assert!(text.contains("Nothing to suggest"), "{text}");
    assert!(parse(&text).is_empty());
}
