//! `hostfw trace`: what the policy does to one flow, and why.
//!
//! The verdict is always the reference evaluator's ([`refeval::evaluate`]),
//! which has exactly the datapath's semantics; this module only explains
//! it with the lowering [`Report`](crate::policy::Report): which policy and
//! rule decided, which policies made the direction default-deny, which
//! failsafe entry matched, and which CIDR rules overlap cluster addresses.
//!
//! A query without a port (TCP, UDP, SCTP) or ICMP type is a flow whose
//! port or type is unknown, as the datapath sees a non-first fragment whose
//! first fragment it missed: only rules on every port of the protocol, or
//! on every protocol, can match it. The explanation says so.

use std::net::IpAddr;

use hostfw_common::{event::Reason, proto};
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::{
    policy::{IcmpFamily, Lowered, RuleOrigin, Selection, icmp},
    refeval::{self, Outcome, Packet, Verdict},
    ruleset::{Action, Direction, RuleSet},
};

/// One flow to trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceQuery {
    /// Ingress (the peer is the source) or egress (the peer is the
    /// destination).
    pub direction: Direction,
    /// The remote address.
    pub peer: IpAddr,
    /// IP protocol number.
    pub proto: u8,
    /// Destination port (TCP, UDP, SCTP); `None` = unknown.
    pub port: Option<u16>,
    /// ICMP or ICMPv6 type; `None` = unknown.
    pub icmp_type: Option<u8>,
}

/// A query that does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// `--port` with a protocol without ports.
    #[error("--port applies to tcp, udp and sctp only, not {proto}")]
    PortNotApplicable {
        /// The protocol's name.
        proto: String,
    },
    /// `--icmp-type` with a protocol other than ICMP.
    #[error("--icmp-type applies to icmp and icmpv6 only, not {proto}")]
    IcmpTypeNotApplicable {
        /// The protocol's name.
        proto: String,
    },
    /// An ICMP type that is neither a number nor a name of the family.
    #[error("--icmp-type {value:?}: expected a number 0-255 or an {family} type name: {names}")]
    IcmpType {
        /// As written.
        value: String,
        /// `ICMP` or `ICMPv6`.
        family: &'static str,
        /// The names of the family.
        names: String,
    },
    /// ICMP with an IPv6 peer, or ICMPv6 with an IPv4 one.
    #[error("--proto {proto} needs an {needs} peer, not {peer}; use --proto {instead}")]
    Family {
        /// The protocol's name.
        proto: String,
        /// `IPv4` or `IPv6`.
        needs: &'static str,
        /// The peer.
        peer: IpAddr,
        /// The protocol of the peer's family.
        instead: &'static str,
    },
}

impl TraceQuery {
    /// A query from command-line values: `port` only for TCP, UDP and
    /// SCTP; `icmp_type` (a number, or a name of the protocol's family as
    /// in policies: `EchoRequest`, `NeighborSolicitation`, …) only for ICMP
    /// and ICMPv6, whose family must be the peer's.
    pub fn new(
        direction: Direction,
        peer: IpAddr,
        proto: u8,
        port: Option<u16>,
        icmp_type: Option<&str>,
    ) -> Result<Self, QueryError> {
        if port.is_some() && !has_ports(proto) {
            return Err(QueryError::PortNotApplicable {
                proto: proto_name(proto),
            });
        }
        let family = match proto {
            proto::ICMP => Some(IcmpFamily::V4),
            proto::ICMPV6 => Some(IcmpFamily::V6),
            _ => None,
        };
        let icmp_type = match (icmp_type, family) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(QueryError::IcmpTypeNotApplicable {
                    proto: proto_name(proto),
                });
            }
            (Some(value), Some(family)) => Some(
                value
                    .parse::<u8>()
                    .ok()
                    .or_else(|| icmp::type_by_name(family, value))
                    .ok_or_else(|| QueryError::IcmpType {
                        value: value.to_string(),
                        family: family_label(family),
                        names: icmp::names(family),
                    })?,
            ),
        };
        match (family, peer) {
            (Some(IcmpFamily::V4), IpAddr::V6(_)) => Err(QueryError::Family {
                proto: proto_name(proto),
                needs: "IPv4",
                peer,
                instead: "icmpv6",
            }),
            (Some(IcmpFamily::V6), IpAddr::V4(_)) => Err(QueryError::Family {
                proto: proto_name(proto),
                needs: "IPv6",
                peer,
                instead: "icmp",
            }),
            _ => Ok(Self {
                direction,
                peer,
                proto,
                port,
                icmp_type,
            }),
        }
    }

    /// The flow in words: `ingress tcp/22 from 192.0.2.7`.
    #[must_use]
    pub fn describe(&self) -> String {
        let name = proto_name(self.proto);
        let what = if has_ports(self.proto) {
            match self.port {
                Some(port) => format!("{name}/{port}"),
                None => format!("{name} (port unknown)"),
            }
        } else if let Some(family) = icmp_family(self.proto) {
            match self.icmp_type {
                Some(t) => format!("{name} type {}", icmp_type_text(family, t)),
                None => format!("{name} (type unknown)"),
            }
        } else {
            name
        };
        let (dir, way) = match self.direction {
            Direction::Ingress => ("ingress", "from"),
            Direction::Egress => ("egress", "to"),
        };
        format!("{dir} {what} {way} {}", self.peer)
    }

    /// The packet the datapath would decide on.
    fn packet(&self) -> Packet {
        Packet {
            direction: self.direction,
            remote: self.peer,
            proto: self.proto,
            port: self.port,
            icmp: self.icmp_type.map(|t| (t, 0)),
        }
    }
}

/// What the policy does to a flow, and why.
///
/// Serializes (`-o json`) to exactly `{"verdict", "policy", "rule",
/// "reason"}`; the notes are appended to `reason` there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Traced {
    /// Allowed, denied, or audit (denied but passed: audit mode).
    pub verdict: Verdict,
    /// The policy of the deciding rule; `None` when no policy rule decided
    /// (default deny, no policy, failsafe, never filtered).
    pub policy: Option<String>,
    /// The deciding rule, `ingress[1]` style; `None` as for `policy`.
    pub rule: Option<String>,
    /// Why, in one sentence.
    pub reason: String,
    /// Things worth knowing about this flow (unknown port, CIDR rules
    /// overlapping cluster addresses, allow rules overridden, …).
    pub notes: Vec<String>,
}

impl Traced {
    /// `reason` with the notes: the `reason` of the JSON object.
    #[must_use]
    pub fn full_reason(&self) -> String {
        let mut s = self.reason.clone();
        for n in &self.notes {
            s.push_str("; note: ");
            s.push_str(n);
        }
        s
    }

    /// The human output: the flow and verdict, the reason, the notes.
    #[must_use]
    pub fn render(&self, q: &TraceQuery) -> String {
        let mut s = format!(
            "{}: {}\nreason: {}\n",
            q.describe(),
            self.verdict.name(),
            self.reason
        );
        for n in &self.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        s
    }
}

impl Serialize for Traced {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut st = serializer.serialize_struct("Traced", 4)?;
        st.serialize_field("verdict", &self.verdict)?;
        st.serialize_field("policy", &self.policy)?;
        st.serialize_field("rule", &self.rule)?;
        st.serialize_field("reason", &self.full_reason())?;
        st.end()
    }
}

/// Traces `q` through the lowered policies.
#[must_use]
pub fn trace(lowered: &Lowered, q: &TraceQuery) -> Traced {
    if q.peer.to_canonical().is_loopback() {
        return Traced {
            verdict: Verdict::Allowed,
            policy: None,
            rule: None,
            reason: format!(
                "never filtered: {} is a loopback address, and loopback is never managed",
                q.peer
            ),
            notes: Vec::new(),
        };
    }
    let pkt = q.packet();
    let out = refeval::evaluate(&lowered.rules, &pkt);
    let mut traced = explain(lowered, &pkt, out);
    if out.reason == Reason::Failsafe {
        let policy_only = RuleSet {
            rules: lowered
                .rules
                .rules
                .iter()
                .filter(|r| r.action != Action::Failsafe)
                .cloned()
                .collect(),
            ..lowered.rules.clone()
        };
        let alone = refeval::evaluate(&policy_only, &pkt);
        if alone.verdict != Verdict::Allowed {
            let inner = explain(lowered, &pkt, alone);
            traced
                .notes
                .push(format!("without the failsafe entry: {}", inner.reason));
        }
    }
    if has_ports(q.proto) && q.port.is_none() {
        traced.notes.push(format!(
            "no --port: the port is unknown, so only rules on every {} port (or on every \
             protocol) can match",
            proto_name(q.proto)
        ));
    }
    if icmp_family(q.proto).is_some() && q.icmp_type.is_none() {
        traced.notes.push(
            "no --icmp-type: the type is unknown, so only rules without toPorts or icmps can \
             match"
                .to_string(),
        );
    }
    traced.notes.extend(cidr_notes(lowered, q));
    traced
}

/// The verdict `out` of `pkt`, explained.
fn explain(lowered: &Lowered, pkt: &Packet, out: Outcome) -> Traced {
    let report = &lowered.report;
    let dir = pkt.direction.name();
    let origin = (out.rule_id != 0)
        .then(|| report.origin(out.rule_id))
        .flatten();
    let mut policy = None;
    let mut rule = None;
    let mut notes = Vec::new();
    let reason = match out.reason {
        Reason::RuleAllow | Reason::RuleDeny => {
            let verb = if out.reason == Reason::RuleAllow {
                "allowed"
            } else {
                "denied"
            };
            if let Some(o) = origin {
                policy = o.policy.as_deref().map(str::to_owned);
                rule = Some(o.rule.clone());
            }
            if out.reason == Reason::RuleDeny {
                let allows: Vec<String> = lowered
                    .rules
                    .rules
                    .iter()
                    .filter(|r| r.action == Action::Allow && refeval::rule_matches(r, pkt))
                    .filter_map(|r| report.origin(r.id).map(rule_text))
                    .collect();
                if !allows.is_empty() {
                    notes.push(format!(
                        "also allowed by {}, but deny rules take precedence",
                        allows.join(" and ")
                    ));
                }
            }
            match origin {
                Some(o) => format!("{verb} by {}", rule_text(o)),
                None => format!("{verb} by rule {}", out.rule_id),
            }
        }
        Reason::Failsafe => match origin {
            Some(o) => format!(
                "allowed by {} of the configuration: always allowed, whatever the policy",
                o.rule
            ),
            None => format!("allowed by failsafe rule {}", out.rule_id),
        },
        Reason::DefaultDeny => {
            let names = report.default_deny(pkt.direction);
            if names.is_empty() {
                format!("denied by default: no rule allows it, and {dir} is default-deny")
            } else {
                format!(
                    "denied by default: no rule allows it, and {} {} {dir} default-deny",
                    policies(names),
                    if names.len() == 1 { "makes" } else { "make" },
                )
            }
        }
        Reason::NoPolicy => {
            let open: Vec<String> = report
                .policies
                .iter()
                .filter(|p| p.has_rules(pkt.direction))
                .map(|p| p.name.clone())
                .collect();
            if open.is_empty() {
                format!(
                    "no policy for {dir}: no selected policy has {dir} rules, so {dir} is not \
                     default-deny"
                )
            } else {
                format!(
                    "no rule matches, and {dir} is not default-deny: {} {} \
                     enableDefaultDeny.{dir}: false",
                    policies(&open),
                    if open.len() == 1 { "sets" } else { "set" },
                )
            }
        }
        Reason::Icmp6Always => format!(
            "never filtered: ICMPv6 type {} always passes on the host (IPv6 needs it)",
            icmp_type_text(IcmpFamily::V6, pkt.icmp.map_or(0, |(t, _)| t))
        ),
        Reason::Icmp6Forbidden => format!(
            "ICMPv6 type {} is always dropped on the host: the policy decides only echo (128, \
             129), and the types IPv6 needs always pass",
            icmp_type_text(IcmpFamily::V6, pkt.icmp.map_or(0, |(t, _)| t))
        ),
        other => other.name().to_string(),
    };
    let reason = if out.verdict == Verdict::Audit {
        format!("{reason}; passed because the mode is audit (enforce mode drops it)")
    } else {
        reason
    };
    Traced {
        verdict: out.verdict,
        policy,
        rule,
        reason,
        notes,
    }
}

/// `policy NAME, ingress[0] (FILE:LINE:COL)`, or the failsafe label.
fn rule_text(o: &RuleOrigin) -> String {
    let mut s = match &o.policy {
        Some(name) => format!("policy {name}, {}", o.rule),
        None => o.rule.clone(),
    };
    if let Some(file) = &o.file {
        match o.pos {
            Some(pos) => s.push_str(&format!(" ({}:{pos})", file.display())),
            None => s.push_str(&format!(" ({})", file.display())),
        }
    }
    s
}

/// `policy a` or `policies a, b`.
fn policies(names: &[String]) -> String {
    match names {
        [one] => format!("policy {one}"),
        _ => format!("policies {}", names.join(", ")),
    }
}

/// The overlap warnings (DESIGN: "check and trace say so when a CIDR
/// overlaps cluster addresses") of selected policies' CIDR rules of the
/// flow's direction whose prefix holds the peer.
fn cidr_notes(lowered: &Lowered, q: &TraceQuery) -> Vec<String> {
    lowered
        .report
        .policies
        .iter()
        .filter(|p| p.selection == Selection::Selected)
        .flat_map(|p| {
            p.overlaps
                .iter()
                .filter(|o| o.direction == q.direction && o.net.contains(&q.peer))
                .map(move |o| format!("policy {}, {}", p.name, o.warning))
        })
        .collect()
}

const fn has_ports(p: u8) -> bool {
    matches!(p, proto::TCP | proto::UDP | proto::SCTP)
}

const fn icmp_family(p: u8) -> Option<IcmpFamily> {
    match p {
        proto::ICMP => Some(IcmpFamily::V4),
        proto::ICMPV6 => Some(IcmpFamily::V6),
        _ => None,
    }
}

const fn family_label(family: IcmpFamily) -> &'static str {
    match family {
        IcmpFamily::V4 => "ICMP",
        IcmpFamily::V6 => "ICMPv6",
    }
}

/// `8 (EchoRequest)`, or just the number for a type without a name.
fn icmp_type_text(family: IcmpFamily, t: u8) -> String {
    match icmp::name_of(family, t) {
        Some(name) => format!("{t} ({name})"),
        None => t.to_string(),
    }
}

/// `tcp`, `udp`, `sctp`, `icmp`, `icmpv6`, or `protocol N`.
#[must_use]
pub fn proto_name(p: u8) -> String {
    match p {
        proto::TCP => "tcp".into(),
        proto::UDP => "udp".into(),
        proto::SCTP => "sctp".into(),
        proto::ICMP => "icmp".into(),
        proto::ICMPV6 => "icmpv6".into(),
        other => format!("protocol {other}"),
    }
}

#[cfg(test)]
mod tests;
