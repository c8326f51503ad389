//! `hostfw suggest`: a CiliumClusterwideNetworkPolicy that would allow what
//! was denied (or audited), for a person to review (observe → codify).
//!
//! How flows become rules:
//! - Peers: see [`super::peers`]: cluster addresses become entities
//!   (`host`, `kube-apiserver`, `remote-node`, pods → `cluster`), others
//!   their /32 (/128), or their /24 (/64) from
//!   [`SuggestContext::group_threshold`] addresses of it in one direction.
//! - L4: TCP, UDP and SCTP destination ports per peer group and protocol,
//!   consecutive ports as `endPort` ranges, an unknown port (a fragment) as
//!   port `"0"` (every port); ICMP and ICMPv6 by type in `icmps`; other
//!   protocols, and ICMP of unknown type, need a rule without L4 (every
//!   protocol and port of those peers). ICMPv6 types other than echo are
//!   never decided by policy, and are left out (noted in the header).
//! - Peer groups of one direction with the same L4 share a rule (entities
//!   and CIDRs apart); `cluster` there makes the other entities redundant.
//! - `enableDefaultDeny` is false both ways: the policy only adds allows.
//!
//! The output is deterministic: the same aggregate gives the same text.

use std::{collections::BTreeMap, net::IpAddr, time::SystemTime};

use hostfw_common::proto;

use super::{
    Seen, SuggestContext, WallTime,
    peers::PeerKey,
    suggest_rules::{Need, Suggested, need, proto_name, runs, suggested_rules},
    yaml::{comment, quote},
};
use crate::{
    policy::{IcmpFamily, icmp},
    ruleset::Direction,
};

/// `metadata.name` of the suggested policy.
pub const POLICY_NAME: &str = "hostfw-suggested";

/// Comment lines are at most this long.
const WIDTH: usize = 78;
fn seconds(t: SystemTime) -> String {
    let s = WallTime(t).rfc3339();
    format!("{}Z", s.get(..19).unwrap_or(&s))
}

fn flows(n: u64) -> String {
    if n == 1 {
        "1 flow".into()
    } else {
        format!("{n} flows")
    }
}

fn write_peers(out: &mut String, r: &Suggested) {
    let from = r.direction == Direction::Ingress;
    let field = match (r.peers.first(), from) {
        (Some(PeerKey::Entity(_)), true) => "fromEntities",
        (Some(PeerKey::Entity(_)), false) => "toEntities",
        (_, true) => "fromCIDR",
        (_, false) => "toCIDR",
    };
    out.push_str(&format!("  - {field}:\n"));
    for p in &r.peers {
        match p {
            PeerKey::Entity(e) => out.push_str(&format!("    - {}\n", e.name())),
            PeerKey::Net(n) => out.push_str(&format!("    - {n}\n")),
        }
    }
}

fn write_rule(out: &mut String, r: &Suggested) {
    let t = &r.tally;
    let mut seen: Vec<String> = t.addrs.iter().take(8).map(IpAddr::to_string).collect();
    if t.addrs.len() > seen.len() {
        seen.push(format!("and {} more", t.addrs.len() - seen.len()));
    }
    let mut text = format!(
        "{}, {} to {}; peers seen: {}.",
        flows(t.count),
        seconds(t.first),
        seconds(t.last),
        seen.join(", ")
    );
    if !r.l4.l3.is_empty() {
        let why: Vec<&str> = r.l4.l3.iter().map(String::as_str).collect();
        text.push_str(&format!(
            " Every protocol and port: a rule without ports is needed for {}.",
            why.join(", ")
        ));
    }
    comment(out, "  ", &text, WIDTH);
    if !r.l4.l3.is_empty() {
        write_peers(out, r);
        return;
    }
    if !r.l4.all_ports.is_empty() || !r.l4.ports.is_empty() {
        write_peers(out, r);
        out.push_str("    toPorts:\n    - ports:\n");
        for &p in &r.l4.all_ports {
            out.push_str(&format!(
                "      - {{port: \"0\", protocol: {}}}  # every port (was 0 or unknown)\n",
                proto_name(p)
            ));
        }
        for p in [proto::TCP, proto::UDP, proto::SCTP] {
            if r.l4.all_ports.contains(&p) {
                continue;
            }
            let ports =
                r.l4.ports
                    .iter()
                    .filter(|(q, _)| *q == p)
                    .map(|&(_, port)| port);
            for (first, last) in runs(ports) {
                let name = proto_name(p);
                if first == last {
                    out.push_str(&format!(
                        "      - {{port: \"{first}\", protocol: {name}}}\n"
                    ));
                } else {
                    out.push_str(&format!(
                        "      - {{port: \"{first}\", endPort: {last}, protocol: {name}}}\n"
                    ));
                }
            }
        }
    }
    if !r.l4.icmps.is_empty() {
        write_peers(out, r);
        out.push_str("    icmps:\n    - fields:\n");
        for &(p, t) in &r.l4.icmps {
            let family = if p == proto::ICMPV6 {
                IcmpFamily::V6
            } else {
                IcmpFamily::V4
            };
            let name = icmp::name_of(family, t)
                .map(|n| format!("  # {n}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "      - {{type: {t}, family: {}}}{name}\n",
                icmp::family_name(family)
            ));
        }
    }
}

fn write_header(
    out: &mut String,
    kept: &[(&Seen, Need)],
    skipped: &BTreeMap<String, u64>,
    ctx: &SuggestContext,
) {
    let on = ctx
        .node_name
        .as_ref()
        .map(|n| format!(" on node {n}"))
        .unwrap_or_default();
    let mut paras = vec![format!(
        "Suggested by `hostfw suggest`{on}: a policy that would allow the flows hostfw saw \
         denied, or audited (denied by the policy, passed because the mode is audit). It is \
         for review, not applied: read every rule, drop or narrow what should stay denied, \
         then `hostfw check` it and `hostfw apply --trial` it."
    )];
    let total: u64 = kept.iter().map(|(s, _)| s.count).sum();
    let first = kept.iter().map(|(s, _)| s.first).min();
    let last = kept.iter().map(|(s, _)| s.last).max();
    paras.push(match (first, last) {
        (Some(first), Some(last)) => format!(
            "Built from {} ({} distinct direction, peer, protocol and port entries), first \
             seen {}, last seen {}.",
            flows(total),
            kept.len(),
            seconds(first),
            seconds(last)
        ),
        _ => "Built from no flow: nothing was denied, so there is no rule to suggest.".into(),
    });
    paras.push(format!(
        "Peers: this node, the API servers, the other nodes and the pod CIDRs became the \
         entities host, kube-apiserver, remote-node and cluster; any other address is its /32 \
         (IPv6: /128), or its /24 (IPv6: /64) when {} or more of its addresses were seen in one \
         direction and it holds no cluster address. Ports are grouped per peer and protocol \
         (consecutive ones as ranges), ICMP by type; peers with the same ports share a rule.",
        ctx.group_threshold
    ));
    paras.push(
        "enableDefaultDeny is false: this policy only adds allows, it makes no direction \
         default-deny."
            .into(),
    );
    if ctx.node_labels.is_empty() {
        paras.push(
            "nodeSelector: {} selects every node (this node has no labels in the \
             configuration): narrow it if the policy is for this node only."
                .into(),
        );
    }
    for n in &ctx.notes {
        paras.push(format!("Note: {n}."));
    }
    for (why, n) in skipped {
        paras.push(format!("Note: left out: {} of {why}.", flows(*n)));
    }
    for (i, p) in paras.iter().enumerate() {
        if i > 0 {
            out.push_str("#\n");
        }
        comment(out, "", p, WIDTH);
    }
}

/// A CiliumClusterwideNetworkPolicy (YAML) named `hostfw-suggested` that
/// would allow the flows of `agg`, for review. See the module
/// documentation for how flows become rules.
#[must_use]
pub fn suggest(agg: &[Seen], ctx: &SuggestContext) -> String {
    let mut kept: Vec<(&Seen, Need)> = Vec::new();
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    for s in agg {
        match need(s) {
            Need::Skip(why) => *skipped.entry(why).or_default() += s.count,
            n => kept.push((s, n)),
        }
    }
    let rules = suggested_rules(&kept, ctx);
    let mut out = String::new();
    write_header(&mut out, &kept, &skipped, ctx);
    if rules.is_empty() {
        // No document: a policy without rules does not validate.
        comment(
            &mut out,
            "",
            "Nothing to suggest: no flow needs a rule, so this file holds no policy.",
            WIDTH,
        );
        return out;
    }
    out.push_str("apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\n");
    out.push_str(&format!("metadata:\n  name: {POLICY_NAME}\nspec:\n"));
    if ctx.node_labels.is_empty() {
        out.push_str("  nodeSelector: {}\n");
    } else {
        out.push_str("  nodeSelector:\n    matchLabels:\n");
        for (k, v) in &ctx.node_labels {
            out.push_str(&format!("      {}: {}\n", quote(k), quote(v)));
        }
    }
    out.push_str("  enableDefaultDeny:\n    ingress: false\n    egress: false\n");
    for direction in [Direction::Ingress, Direction::Egress] {
        let mut these = rules.iter().filter(|r| r.direction == direction).peekable();
        if these.peek().is_none() {
            continue;
        }
        out.push_str(&format!("  {}:\n", direction.name()));
        for r in these {
            write_rule(&mut out, r);
        }
    }
    out
}
