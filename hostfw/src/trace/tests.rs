//! Trace: every kind of reason, the JSON shape, query checks.

use std::{net::IpAddr, path::Path};

use super::*;
use crate::{
    config::Config,
    policy::{Format, LowerContext, lower, parse_str},
    ruleset::Mode,
};

/// CCNP documents, one per `(name, spec body)`, selecting every node.
fn yaml(policies: &[(&str, &str)]) -> String {
    policies
        .iter()
        .map(|(name, body)| {
            format!(
                "---\napiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\n\
                 metadata: {{name: {name}}}\nspec:\n  nodeSelector: {{}}\n{body}"
            )
        })
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

/// Node 10.0.0.1, another node 10.0.0.2, pods 10.244.0.0/16, no failsafe.
fn ctx(mode: Mode) -> LowerContext {
    LowerContext {
        host_addresses: vec![ip("10.0.0.1")],
        cluster_nodes: vec![ip("10.0.0.1"), ip("10.0.0.2")],
        pod_cidrs: vec!["10.244.0.0/16".parse().expect("cidr")],
        mode,
        ..LowerContext::default()
    }
}

fn lowered_with(policies: &[(&str, &str)], ctx: &LowerContext) -> Lowered {
    let parsed =
        parse_str(&yaml(policies), Path::new("t.yaml"), Format::Yaml).expect("valid test policies");
    lower(&parsed, ctx)
}

fn lowered(policies: &[(&str, &str)]) -> Lowered {
    lowered_with(policies, &ctx(Mode::Enforce))
}

fn tcp_in(peer: &str, port: u16) -> TraceQuery {
    TraceQuery::new(Direction::Ingress, ip(peer), proto::TCP, Some(port), None).expect("query")
}

const SSH_AND_DENY: &str = "  ingress:\n  - toPorts: [{ports: [{port: \"22\", protocol: TCP}]}]\n  \
                            - fromCIDR: [192.0.2.0/24]\n  \
                            ingressDeny:\n  - fromCIDR: [198.51.100.0/24]\n";

#[test]
fn an_allow_rule_is_named_with_its_policy_and_position() {
    let l = lowered(&[("base", SSH_AND_DENY)]);
    let t = trace(&l, &tcp_in("203.0.113.9", 22));
    assert_eq!(t.verdict, Verdict::Allowed);
    assert_eq!(t.policy.as_deref(), Some("base"));
    assert_eq!(t.rule.as_deref(), Some("ingress[0]"));
    assert!(
        t.reason
            .starts_with("allowed by policy base, ingress[0] (t.yaml:"),
        "{}",
        t.reason
    );
    assert!(t.notes.is_empty(), "{:?}", t.notes);
}

#[test]
fn a_deny_rule_wins_and_says_which_allow_it_overrides() {
    let l = lowered(&[("base", SSH_AND_DENY)]);
    let t = trace(&l, &tcp_in("198.51.100.7", 22));
    assert_eq!(t.verdict, Verdict::Denied);
    assert_eq!(t.policy.as_deref(), Some("base"));
    assert_eq!(t.rule.as_deref(), Some("ingressDeny[0]"));
    assert!(
        t.reason
            .starts_with("denied by policy base, ingressDeny[0]"),
        "{}",
        t.reason
    );
    assert_eq!(t.notes.len(), 1, "{:?}", t.notes);
    assert!(
        t.notes[0].starts_with("also allowed by policy base, ingress[0]")
            && t.notes[0].ends_with("but deny rules take precedence"),
        "{:?}",
        t.notes
    );
}

#[test]
fn default_deny_names_the_policies_that_made_it() {
    let l = lowered(&[
        (
            "a-web",
            "  ingress:\n  - toPorts: [{ports: [{port: \"443\"}]}]\n",
        ),
        ("b-empty", "  ingress:\n  - {}\n"),
        ("c-egress", "  egress:\n  - toEntities: [world]\n"),
    ]);
    let t = trace(&l, &tcp_in("203.0.113.9", 80));
    assert_eq!(t.verdict, Verdict::Denied);
    assert_eq!((t.policy, t.rule), (None, None));
    assert_eq!(
        t.reason,
        "denied by default: no rule allows it, and policies a-web, b-empty make ingress \
         default-deny"
    );
    let one = lowered(&[("only", "  ingress:\n  - {}\n")]);
    assert_eq!(
        trace(&one, &tcp_in("203.0.113.9", 80)).reason,
        "denied by default: no rule allows it, and policy only makes ingress default-deny"
    );
}

#[test]
fn no_policy_for_the_direction() {
    let l = lowered(&[("base", SSH_AND_DENY)]);
    let q = TraceQuery::new(
        Direction::Egress,
        ip("203.0.113.9"),
        proto::UDP,
        Some(53),
        None,
    )
    .expect("query");
    let t = trace(&l, &q);
    assert_eq!(t.verdict, Verdict::Allowed);
    assert_eq!((t.policy.as_deref(), t.rule.as_deref()), (None, None));
    assert_eq!(
        t.reason,
        "no policy for egress: no selected policy has egress rules, so egress is not \
         default-deny"
    );

    let open = lowered(&[(
        "open",
        "  enableDefaultDeny: {ingress: false}\n  ingressDeny:\n  - fromCIDR: [198.51.100.0/24]\n",
    )]);
    let t = trace(&open, &tcp_in("203.0.113.9", 80));
    assert_eq!(t.verdict, Verdict::Allowed);
    assert_eq!(
        t.reason,
        "no rule matches, and ingress is not default-deny: policy open sets \
         enableDefaultDeny.ingress: false"
    );
}

#[test]
fn failsafe_names_its_entry_and_what_the_policy_alone_would_do() {
    let cfg = Config::parse("mode = \"enforce\"\n", Path::new("h.toml")).expect("config");
    let ctx = LowerContext::from_config(&cfg, &[ip("10.0.0.1")]).expect("context");
    let l = lowered_with(
        &[(
            "web",
            "  ingress:\n  - toPorts: [{ports: [{port: \"443\"}]}]\n",
        )],
        &ctx,
    );
    let t = trace(&l, &tcp_in("203.0.113.9", 22));
    assert_eq!(t.verdict, Verdict::Allowed);
    assert_eq!((t.policy.as_deref(), t.rule.as_deref()), (None, None));
    assert_eq!(
        t.reason,
        "allowed by failsafe inbound TCP/22 of the configuration: always allowed, whatever the \
         policy"
    );
    assert_eq!(
        t.notes,
        vec![
            "without the failsafe entry: denied by default: no rule allows it, and policy web \
             makes ingress default-deny"
                .to_string()
        ]
    );
}

#[test]
fn loopback_and_ipv6_essentials_are_never_filtered() {
    let l = lowered(&[("deny-all", "  ingressDeny:\n  - fromEntities: [all]\n")]);
    for peer in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
        let t = trace(&l, &tcp_in(peer, 80));
        assert_eq!(t.verdict, Verdict::Allowed, "{peer}");
        assert_eq!((t.policy.as_deref(), t.rule.as_deref()), (None, None));
        assert!(t.reason.starts_with("never filtered: "), "{}", t.reason);
        assert!(t.reason.contains("loopback"), "{}", t.reason);
    }
    let nd = TraceQuery::new(
        Direction::Ingress,
        ip("fe80::1"),
        proto::ICMPV6,
        None,
        Some("NeighborSolicitation"),
    )
    .expect("query");
    let t = trace(&l, &nd);
    assert_eq!(t.verdict, Verdict::Allowed);
    assert_eq!(
        t.reason,
        "never filtered: ICMPv6 type 135 (NeighborSolicitation) always passes on the host \
         (IPv6 needs it)"
    );
}

#[test]
fn icmpv6_types_outside_echo_and_the_essentials_are_always_dropped() {
    let l = lowered(&[("allow-all", "  ingress:\n  - fromEntities: [all]\n")]);
    let q = TraceQuery::new(
        Direction::Ingress,
        ip("fe80::1"),
        proto::ICMPV6,
        None,
        Some("137"),
    )
    .expect("query");
    let t = trace(&l, &q);
    assert_eq!(t.verdict, Verdict::Denied);
    assert_eq!((t.policy.as_deref(), t.rule.as_deref()), (None, None));
    assert!(
        t.reason
            .starts_with("ICMPv6 type 137 (RedirectMessage) is always dropped on the host"),
        "{}",
        t.reason
    );
    let echo = TraceQuery::new(
        Direction::Ingress,
        ip("fe80::1"),
        proto::ICMPV6,
        None,
        Some("EchoRequest"),
    )
    .expect("query");
    assert_eq!(trace(&l, &echo).rule.as_deref(), Some("ingress[0]"));
}

#[test]
fn audit_mode_reports_denials_as_audit() {
    let l = lowered_with(&[("base", SSH_AND_DENY)], &ctx(Mode::Audit));
    let t = trace(&l, &tcp_in("198.51.100.7", 80));
    assert_eq!(t.verdict, Verdict::Audit);
    assert_eq!(t.policy.as_deref(), Some("base"));
    assert_eq!(t.rule.as_deref(), Some("ingressDeny[0]"));
    assert!(
        t.reason
            .ends_with("; passed because the mode is audit (enforce mode drops it)"),
        "{}",
        t.reason
    );
    let t = trace(&l, &tcp_in("203.0.113.9", 80));
    assert_eq!(t.verdict, Verdict::Audit);
    assert!(t.reason.starts_with("denied by default"), "{}", t.reason);
    // Allowed stays allowed.
    assert_eq!(
        trace(&l, &tcp_in("203.0.113.9", 22)).verdict,
        Verdict::Allowed
    );
}

#[test]
fn json_has_exactly_the_four_keys_of_the_contract() {
    let l = lowered_with(&[("base", SSH_AND_DENY)], &ctx(Mode::Audit));
    let by_rule = trace(&l, &tcp_in("203.0.113.9", 22));
    let v = serde_json::to_value(&by_rule).expect("serializes");
    let obj = v.as_object().expect("an object");
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 4, "{v}");
    for k in ["verdict", "policy", "rule", "reason"] {
        assert!(obj.contains_key(k), "{k} in {v}");
    }
    assert_eq!(v["verdict"], "allowed");
    assert_eq!(v["policy"], "base");
    assert_eq!(v["rule"], "ingress[0]");

    let by_default = trace(&l, &tcp_in("203.0.113.9", 80));
    let v = serde_json::to_value(&by_default).expect("serializes");
    assert_eq!(v.as_object().map(serde_json::Map::len), Some(4), "{v}");
    assert_eq!(v["verdict"], "audit");
    assert!(v["policy"].is_null() && v["rule"].is_null(), "{v}");
    assert!(
        v["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("denied by default")),
        "{v}"
    );

    // The order is the contract's, and notes are part of the reason.
    let unknown_port = TraceQuery::new(
        Direction::Ingress,
        ip("203.0.113.9"),
        proto::TCP,
        None,
        None,
    )
    .expect("query");
    let text = serde_json::to_string(&trace(&l, &unknown_port)).expect("serializes");
    assert!(text.starts_with("{\"verdict\":\"audit\",\"policy\":null,\"rule\":null,\"reason\":"));
    assert!(
        text.contains("; note: no --port: the port is unknown"),
        "{text}"
    );
    assert_eq!(
        serde_json::to_value(Verdict::Denied).expect("verdict"),
        "denied"
    );
}

#[test]
fn an_unknown_port_matches_only_rules_on_every_port() {
    let l = lowered(&[(
        "p",
        "  ingress:\n  - toPorts: [{ports: [{port: \"22\", protocol: TCP}]}]\n  \
         - fromCIDR: [192.0.2.0/24]\n    toPorts: [{ports: [{port: \"0\", protocol: TCP}]}]\n",
    )]);
    let q = |peer| TraceQuery::new(Direction::Ingress, ip(peer), proto::TCP, None, None);
    let t = trace(&l, &q("192.0.2.5").expect("query"));
    assert_eq!(t.rule.as_deref(), Some("ingress[1]"));
    assert!(
        t.notes
            .iter()
            .any(|n| n.starts_with("no --port: the port is unknown")),
        "{:?}",
        t.notes
    );
    assert_eq!(
        trace(&l, &q("203.0.113.9").expect("query")).verdict,
        Verdict::Denied
    );
}

#[test]
fn cidrs_overlapping_cluster_addresses_are_pointed_out() {
    let l = lowered(&[(
        "nets",
        "  ingress:\n  - fromCIDR: [10.0.0.0/8]\n  - fromCIDR: [10.0.0.2/32]\n",
    )]);
    // 10.0.0.2 is another node: CIDR rules do not select it.
    let t = trace(&l, &tcp_in("10.0.0.2", 80));
    assert_eq!(t.verdict, Verdict::Denied);
    assert_eq!(t.notes.len(), 2, "{:?}", t.notes);
    assert!(
        t.notes[0].starts_with("policy nets, ingress[0]: 10.0.0.0/8 overlaps cluster addresses"),
        "{:?}",
        t.notes
    );
    assert!(
        t.notes[1].starts_with("policy nets, ingress[1]: 10.0.0.2/32 overlaps cluster addresses")
            && t.notes[1].contains("nothing is left"),
        "{:?}",
        t.notes
    );
    // A peer of the CIDR outside the cluster is matched, with the warning.
    let t = trace(&l, &tcp_in("10.9.9.9", 80));
    assert_eq!(t.rule.as_deref(), Some("ingress[0]"));
    assert_eq!(t.notes.len(), 1, "{:?}", t.notes);
    // Other peers and the other direction hear nothing of it.
    assert!(trace(&l, &tcp_in("192.0.2.1", 80)).notes.is_empty());
    let out = TraceQuery::new(
        Direction::Egress,
        ip("10.0.0.2"),
        proto::TCP,
        Some(80),
        None,
    )
    .expect("query");
    assert!(trace(&l, &out).notes.is_empty());
}

#[test]
fn queries_are_checked() {
    let q =
        |p, peer, port, t: Option<&str>| TraceQuery::new(Direction::Ingress, ip(peer), p, port, t);
    let v4 = q(proto::ICMP, "192.0.2.1", None, Some("EchoRequest")).expect("name");
    assert_eq!(v4.icmp_type, Some(8));
    let v6 = q(proto::ICMPV6, "2001:db8::1", None, Some("EchoRequest")).expect("name");
    assert_eq!(v6.icmp_type, Some(128));
    assert_eq!(
        q(proto::ICMP, "192.0.2.1", None, Some("3"))
            .expect("number")
            .icmp_type,
        Some(3)
    );
    let err = |r: Result<TraceQuery, QueryError>| r.expect_err("invalid").to_string();
    assert_eq!(
        err(q(proto::ICMP, "192.0.2.1", Some(22), None)),
        "--port applies to tcp, udp and sctp only, not icmp"
    );
    assert_eq!(
        err(q(proto::UDP, "192.0.2.1", None, Some("8"))),
        "--icmp-type applies to icmp and icmpv6 only, not udp"
    );
    let e = err(q(
        proto::ICMP,
        "192.0.2.1",
        None,
        Some("NeighborSolicitation"),
    ));
    assert!(
        e.starts_with("--icmp-type \"NeighborSolicitation\": expected a number 0-255 or an ICMP type name: EchoReply,"),
        "{e}"
    );
    assert_eq!(
        err(q(proto::ICMP, "2001:db8::1", None, None)),
        "--proto icmp needs an IPv4 peer, not 2001:db8::1; use --proto icmpv6"
    );
    assert_eq!(
        err(q(proto::ICMPV6, "192.0.2.1", None, None)),
        "--proto icmpv6 needs an IPv6 peer, not 192.0.2.1; use --proto icmp"
    );
}

#[test]
fn the_flow_is_described_for_people() {
    assert_eq!(
        tcp_in("192.0.2.7", 22).describe(),
        "ingress tcp/22 from 192.0.2.7"
    );
    let ping = TraceQuery::new(
        Direction::Egress,
        ip("192.0.2.7"),
        proto::ICMP,
        None,
        Some("8"),
    )
    .expect("query");
    assert_eq!(
        ping.describe(),
        "egress icmp type 8 (EchoRequest) to 192.0.2.7"
    );
    let l = lowered(&[("base", SSH_AND_DENY)]);
    let text = trace(&l, &tcp_in("192.0.2.7", 22)).render(&tcp_in("192.0.2.7", 22));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "ingress tcp/22 from 192.0.2.7: allowed");
    assert!(lines[1].starts_with("reason: allowed by policy base, ingress[0]"));
}
