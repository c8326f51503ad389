//! The reference evaluator: what a [`RuleSet`] decides about a packet,
//! computed by the plainest possible loop over the rules.
//!
//! No maps, no identities, no prefixes: tests use it as the oracle that the
//! compiled maps (and the kernel that reads them) must agree with.
//!
//! Semantics of a new flow (or an untracked packet):
//! - ICMPv6 types 1-4 (errors), 130-136, 141-143, 148, 149 and 151-153
//!   (neighbour and router discovery, MLD, …) always pass; 128 and 129
//!   (echo) go through the policy; every other ICMPv6 type is denied.
//! - Otherwise a rule matches when its direction is the packet's, its peers
//!   contain the remote address and one of its L4 entries matches. Among the
//!   matching rules the highest action wins (failsafe > deny > allow), then
//!   the lowest id. With no matching rule the direction's default decides.
//! - In audit mode a denied packet passes and is reported as audit.

use std::net::IpAddr;

use hostfw_common::{event::Reason, proto};

use crate::ruleset::{Action, Direction, L4, Mode, Peers, Rule, RuleSet};

/// The fields of a packet the policy decides on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Packet {
    /// Ingress or egress.
    pub direction: Direction,
    /// The peer: source of an ingress packet, destination of an egress one.
    pub remote: IpAddr,
    /// IP protocol.
    pub proto: u8,
    /// Destination port for TCP, UDP and SCTP; `None` when unknown (a
    /// non-first fragment whose first fragment was not seen). Ignored for
    /// other protocols.
    pub port: Option<u16>,
    /// Type and code for ICMP and ICMPv6; `None` when unknown (fragment).
    /// Ignored for other protocols.
    pub icmp: Option<(u8, u8)>,
}

impl Packet {
    /// The "port" the datapath looks up: the destination port, or
    /// `type << 8 | code` for ICMP and ICMPv6, or 0 for protocols without
    /// ports. `None` when unknown.
    #[must_use]
    pub fn policy_port(&self) -> Option<u16> {
        match self.proto {
            proto::TCP | proto::UDP | proto::SCTP => self.port,
            proto::ICMP | proto::ICMPV6 => {
                self.icmp.map(|(t, c)| (u16::from(t) << 8) | u16::from(c))
            }
            _ => Some(0),
        }
    }
}

/// What happens to a packet. Serialized as `"allowed"`, `"denied"`,
/// `"audit"` (the `hostfw trace -o json` contract).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Passes.
    Allowed,
    /// Dropped.
    Denied,
    /// Denied by the policy but passed, because the mode is audit.
    Audit,
}

impl Verdict {
    /// `allowed`, `denied` or `audit`, as in `hostfw trace` output.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::Audit => "audit",
        }
    }

    /// The datapath's `VERDICT_*` byte.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Allowed => hostfw_common::event::VERDICT_ALLOWED,
            Self::Denied => hostfw_common::event::VERDICT_DENIED,
            Self::Audit => hostfw_common::event::VERDICT_AUDIT,
        }
    }
}

/// The decision about a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Passes, dropped or audited.
    pub verdict: Verdict,
    /// The deciding rule, 0 = none.
    pub rule_id: u32,
    /// Why.
    pub reason: Reason,
}

/// The ICMPv6 types that always pass, whatever the policy.
#[must_use]
pub const fn icmp6_always(icmp_type: u8) -> bool {
    matches!(icmp_type, 1..=4 | 130..=136 | 141..=143 | 148 | 149 | 151..=153)
}

/// The ICMPv6 types the policy decides (echo request and reply).
#[must_use]
pub const fn icmp6_by_policy(icmp_type: u8) -> bool {
    matches!(icmp_type, 128 | 129)
}

/// Evaluates `pkt` against `rules`.
#[must_use]
pub fn evaluate(rules: &RuleSet, pkt: &Packet) -> Outcome {
    let denied = |rule_id, reason| Outcome {
        verdict: match rules.mode {
            Mode::Audit => Verdict::Audit,
            Mode::Enforce => Verdict::Denied,
        },
        rule_id,
        reason,
    };
    let allowed = |rule_id, reason| Outcome {
        verdict: Verdict::Allowed,
        rule_id,
        reason,
    };

    if pkt.proto == proto::ICMPV6
        && let Some((icmp_type, _)) = pkt.icmp
    {
        if icmp6_always(icmp_type) {
            return allowed(0, Reason::Icmp6Always);
        }
        if !icmp6_by_policy(icmp_type) {
            return denied(0, Reason::Icmp6Forbidden);
        }
    }

    let mut best: Option<&Rule> = None;
    for rule in &rules.rules {
        if !rule_matches(rule, pkt) {
            continue;
        }
        best = match best {
            Some(b) if b.action > rule.action => Some(b),
            Some(b) if b.action == rule.action && b.id < rule.id => Some(b),
            _ => Some(rule),
        };
    }

    match best {
        Some(rule) => match rule.action {
            Action::Failsafe => allowed(rule.id, Reason::Failsafe),
            Action::Deny => denied(rule.id, Reason::RuleDeny),
            Action::Allow => allowed(rule.id, Reason::RuleAllow),
        },
        None => {
            let default_deny = match pkt.direction {
                Direction::Ingress => rules.default_deny_ingress,
                Direction::Egress => rules.default_deny_egress,
            };
            if default_deny {
                denied(0, Reason::DefaultDeny)
            } else {
                allowed(0, Reason::NoPolicy)
            }
        }
    }
}

/// Whether `rule` applies to `pkt`.
#[must_use]
pub fn rule_matches(rule: &Rule, pkt: &Packet) -> bool {
    rule.direction == pkt.direction
        && peers_match(&rule.peers, pkt.remote)
        && rule.l4.iter().any(|l4| l4_matches(l4, pkt))
}

/// Whether `remote` is one of `peers`.
#[must_use]
pub fn peers_match(peers: &Peers, remote: IpAddr) -> bool {
    match peers {
        Peers::Any => true,
        Peers::Cidrs(cidrs) => cidrs
            .iter()
            .any(|c| c.net.contains(&remote) && !c.except.iter().any(|e| e.contains(&remote))),
    }
}

/// Whether one L4 entry of a rule matches `pkt`.
#[must_use]
pub fn l4_matches(l4: &L4, pkt: &Packet) -> bool {
    match *l4 {
        L4::Any => true,
        L4::Ports { proto, first, last } => {
            proto == pkt.proto
                && match pkt.port {
                    Some(port) => first <= port && port <= last,
                    // Unknown port: only a rule on every port can match.
                    None => first == 0 && last == u16::MAX,
                }
        }
        L4::Icmp { proto, icmp_type } => {
            proto == pkt.proto && pkt.icmp.is_some_and(|(t, _)| t == icmp_type)
        }
    }
}

#[cfg(test)]
mod tests {
    use ipnet::IpNet;

    use super::*;
    use crate::ruleset::Cidr;

    fn net(s: &str) -> IpNet {
        s.parse().expect("valid net")
    }

    fn addr(s: &str) -> IpAddr {
        s.parse().expect("valid address")
    }

    fn tcp(remote: &str, port: Option<u16>) -> Packet {
        Packet {
            direction: Direction::Ingress,
            remote: addr(remote),
            proto: proto::TCP,
            port,
            icmp: None,
        }
    }

    fn icmp6(t: u8) -> Packet {
        Packet {
            direction: Direction::Ingress,
            remote: addr("fd00::1"),
            proto: proto::ICMPV6,
            port: None,
            icmp: Some((t, 0)),
        }
    }

    fn rule(id: u32, action: Action, peers: Peers, l4: Vec<L4>) -> Rule {
        Rule::new(id, Direction::Ingress, action, peers, l4)
    }

    fn cidr(n: &str, except: &[&str]) -> Peers {
        Peers::Cidrs(vec![Cidr {
            net: net(n),
            except: except.iter().map(|e| net(e)).collect(),
        }])
    }

    fn ports(first: u16, last: u16) -> L4 {
        L4::Ports {
            proto: proto::TCP,
            first,
            last,
        }
    }

    fn outcome(verdict: Verdict, rule_id: u32, reason: Reason) -> Outcome {
        Outcome {
            verdict,
            rule_id,
            reason,
        }
    }

    #[test]
    fn precedence() {
        let rs = RuleSet {
            mode: Mode::Enforce,
            default_deny_ingress: true,
            default_deny_egress: false,
            rules: vec![
                rule(4, Action::Allow, Peers::Any, vec![ports(22, 22)]),
                rule(
                    3,
                    Action::Deny,
                    cidr("10.0.0.0/8", &["10.1.0.0/16"]),
                    vec![ports(0, 1023)],
                ),
                rule(
                    9,
                    Action::Failsafe,
                    cidr("10.2.0.0/16", &[]),
                    vec![ports(22, 22)],
                ),
                rule(2, Action::Allow, Peers::Any, vec![ports(20, 30)]),
            ],
        };
        let ev = |remote, port| evaluate(&rs, &tcp(remote, port));
        assert_eq!(
            ev("192.0.2.1", Some(22)),
            outcome(Verdict::Allowed, 2, Reason::RuleAllow)
        );
        assert_eq!(
            ev("10.0.0.1", Some(22)),
            outcome(Verdict::Denied, 3, Reason::RuleDeny)
        );
        assert_eq!(
            ev("10.1.0.1", Some(22)),
            outcome(Verdict::Allowed, 2, Reason::RuleAllow)
        );
        assert_eq!(
            ev("10.2.0.1", Some(22)),
            outcome(Verdict::Allowed, 9, Reason::Failsafe)
        );
        assert_eq!(
            ev("192.0.2.1", Some(80)),
            outcome(Verdict::Denied, 0, Reason::DefaultDeny)
        );
        // Unknown port: no rule covers every port.
        assert_eq!(
            ev("10.0.0.1", None),
            outcome(Verdict::Denied, 0, Reason::DefaultDeny)
        );
        // Wrong family never matches a CIDR.
        assert_eq!(
            ev("::ffff:10.0.0.1", Some(80)),
            outcome(Verdict::Denied, 0, Reason::DefaultDeny)
        );
        let mut egress = tcp("10.0.0.1", Some(22));
        egress.direction = Direction::Egress;
        assert_eq!(
            evaluate(&rs, &egress),
            outcome(Verdict::Allowed, 0, Reason::NoPolicy)
        );
        let audit = RuleSet {
            mode: Mode::Audit,
            ..rs.clone()
        };
        assert_eq!(
            evaluate(&audit, &tcp("10.0.0.1", Some(22))),
            outcome(Verdict::Audit, 3, Reason::RuleDeny)
        );
        assert_eq!(
            evaluate(&audit, &tcp("192.0.2.1", Some(80))),
            outcome(Verdict::Audit, 0, Reason::DefaultDeny)
        );
    }

    #[test]
    fn unknown_port_and_l3_rules() {
        let rs = RuleSet {
            mode: Mode::Enforce,
            default_deny_ingress: true,
            rules: vec![
                rule(1, Action::Allow, Peers::Any, vec![ports(0, 65535)]),
                rule(
                    2,
                    Action::Allow,
                    Peers::Any,
                    vec![L4::Icmp {
                        proto: proto::ICMP,
                        icmp_type: 8,
                    }],
                ),
            ],
            ..Default::default()
        };
        assert_eq!(
            evaluate(&rs, &tcp("192.0.2.1", None)),
            outcome(Verdict::Allowed, 1, Reason::RuleAllow)
        );
        let mut udp = tcp("192.0.2.1", None);
        udp.proto = proto::UDP;
        assert_eq!(evaluate(&rs, &udp).reason, Reason::DefaultDeny);
        let ping = Packet {
            direction: Direction::Ingress,
            remote: addr("192.0.2.1"),
            proto: proto::ICMP,
            port: None,
            icmp: Some((8, 0)),
        };
        assert_eq!(
            evaluate(&rs, &ping),
            outcome(Verdict::Allowed, 2, Reason::RuleAllow)
        );
        let fragment = Packet { icmp: None, ..ping };
        assert_eq!(evaluate(&rs, &fragment).reason, Reason::DefaultDeny);
        let l3 = RuleSet {
            rules: vec![rule(7, Action::Deny, Peers::Any, vec![L4::Any])],
            ..rs.clone()
        };
        assert_eq!(
            evaluate(&l3, &fragment),
            outcome(Verdict::Denied, 7, Reason::RuleDeny)
        );
        let gre = Packet {
            proto: 47,
            ..fragment
        };
        assert_eq!(
            evaluate(&l3, &gre),
            outcome(Verdict::Denied, 7, Reason::RuleDeny)
        );
    }

    #[test]
    fn icmp6_classes() {
        let rs = RuleSet {
            mode: Mode::Enforce,
            default_deny_ingress: true,
            rules: vec![rule(1, Action::Deny, Peers::Any, vec![L4::Any])],
            ..Default::default()
        };
        for t in [1, 2, 3, 4, 130, 133, 135, 136, 141, 143, 148, 149, 151, 153] {
            assert_eq!(
                evaluate(&rs, &icmp6(t)),
                outcome(Verdict::Allowed, 0, Reason::Icmp6Always),
                "{t}"
            );
        }
        for t in [128, 129] {
            assert_eq!(
                evaluate(&rs, &icmp6(t)),
                outcome(Verdict::Denied, 1, Reason::RuleDeny),
                "{t}"
            );
        }
        for t in [0, 5, 127, 137, 140, 144, 150, 154, 255] {
            assert_eq!(
                evaluate(&rs, &icmp6(t)),
                outcome(Verdict::Denied, 0, Reason::Icmp6Forbidden),
                "{t}"
            );
        }
        let audit = RuleSet {
            mode: Mode::Audit,
            ..rs.clone()
        };
        assert_eq!(
            evaluate(&audit, &icmp6(137)),
            outcome(Verdict::Audit, 0, Reason::Icmp6Forbidden)
        );
        // An ICMPv6 fragment of unknown type goes to the policy.
        let frag = Packet {
            icmp: None,
            ..icmp6(0)
        };
        assert_eq!(
            evaluate(&rs, &frag),
            outcome(Verdict::Denied, 1, Reason::RuleDeny)
        );
    }

    #[test]
    fn policy_port() {
        assert_eq!(tcp("10.0.0.1", Some(80)).policy_port(), Some(80));
        assert_eq!(icmp6(128).policy_port(), Some(128 << 8));
        let mut p = icmp6(1);
        p.icmp = Some((3, 4));
        assert_eq!(p.policy_port(), Some(0x0304));
        p.proto = 47;
        assert_eq!(p.policy_port(), Some(0));
    }
}
