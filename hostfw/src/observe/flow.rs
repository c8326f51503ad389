//! One verdict, enriched for people and scripts: `hostfw observe`.

use std::{fmt, net::IpAddr};

use hostfw_common::proto;
use serde::{Deserialize, Serialize};

use super::{IfNames, WallTime, clock};
use crate::{
    datapath::events::VerdictEvent,
    policy::{IcmpFamily, Lowered, icmp},
    ruleset::Direction,
};

/// ICMP type and code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Icmp {
    /// Type.
    #[serde(rename = "type")]
    pub icmp_type: u8,
    /// Code.
    pub code: u8,
}

/// A verdict with its time, interface, policy and rule. JSON (`-o json`):
/// one object per flow with these fields; absent values are `null`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// Wall-clock time (RFC 3339, UTC).
    pub time: WallTime,
    /// Interface name; `null` if the interface is gone.
    pub interface: Option<String>,
    /// Interface index.
    pub ifindex: u32,
    /// `ingress` or `egress`.
    pub direction: String,
    /// `allowed`, `denied` or `audit`.
    pub verdict: String,
    /// Why: `rule`, `deny-rule`, `failsafe`, `default-deny`, `no-policy`, …
    pub reason: String,
    /// Deciding rule id; 0 = none.
    pub rule_id: u32,
    /// The deciding rule's policy; `null` for none or a failsafe entry.
    pub policy: Option<String>,
    /// The deciding rule, `ingress[1]` style or `failsafe inbound TCP/22`;
    /// `null` for none.
    pub rule: Option<String>,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (TCP, UDP, SCTP).
    pub sport: Option<u16>,
    /// Destination port (TCP, UDP, SCTP).
    pub dport: Option<u16>,
    /// `TCP`, `UDP`, `SCTP`, `ICMP`, `ICMPv6` or `proto-N`.
    pub proto: String,
    /// TCP flags, `SYN|ACK` style.
    pub tcp_flags: Option<String>,
    /// ICMP type and code.
    pub icmp: Option<Icmp>,
    /// Policy revision in force.
    pub revision: u32,
}

/// Enriches `ev`. `lowered` is the policy of the event's revision (its
/// report names the rule); `None` when unknown, and then `policy` and
/// `rule` are `null`.
#[must_use]
pub fn enrich(ev: &VerdictEvent, lowered: Option<&Lowered>, names: &mut IfNames) -> Flow {
    enrich_at(ev, lowered, names, WallTime(clock::boot_to_wall(ev.ts_ns)))
}

/// [`enrich`] with the wall-clock time given.
#[must_use]
pub fn enrich_at(
    ev: &VerdictEvent,
    lowered: Option<&Lowered>,
    names: &mut IfNames,
    time: WallTime,
) -> Flow {
    let origin = lowered
        .filter(|_| ev.rule_id != 0)
        .and_then(|l| l.report.origin(ev.rule_id));
    Flow {
        time,
        interface: names.name(ev.ifindex),
        ifindex: ev.ifindex,
        direction: ev.direction.to_string(),
        verdict: ev.verdict.to_string(),
        reason: ev.reason.to_string(),
        rule_id: ev.rule_id,
        policy: origin.and_then(|o| o.policy.as_deref().map(str::to_owned)),
        rule: origin.map(|o| o.rule.clone()),
        src: ev.src,
        dst: ev.dst,
        sport: ev.sport,
        dport: ev.dport,
        proto: ev.proto.clone(),
        tcp_flags: ev.tcp_flags.clone(),
        icmp: ev.icmp.map(|(icmp_type, code)| Icmp { icmp_type, code }),
        revision: ev.revision,
    }
}

impl Flow {
    /// Ingress or egress; `None` for a direction this build does not know.
    #[must_use]
    pub fn direction(&self) -> Option<Direction> {
        match self.direction.as_str() {
            "ingress" => Some(Direction::Ingress),
            "egress" => Some(Direction::Egress),
            _ => None,
        }
    }

    /// The IP protocol number; `None` for a name this build does not know.
    #[must_use]
    pub fn proto_number(&self) -> Option<u8> {
        match self.proto.as_str() {
            "TCP" => Some(proto::TCP),
            "UDP" => Some(proto::UDP),
            "SCTP" => Some(proto::SCTP),
            "ICMP" => Some(proto::ICMP),
            "ICMPv6" => Some(proto::ICMPV6),
            other => other.strip_prefix("proto-")?.parse().ok(),
        }
    }

    /// The peer: the source of an ingress flow, the destination of an
    /// egress one.
    #[must_use]
    pub fn peer(&self) -> IpAddr {
        if self.direction() == Some(Direction::Egress) {
            self.dst
        } else {
            self.src
        }
    }

    /// Denied, or audit (denied by the policy, passed because of the mode).
    #[must_use]
    pub fn is_drop_or_audit(&self) -> bool {
        matches!(self.verdict.as_str(), "denied" | "audit")
    }

    fn icmp_text(&self, i: Icmp) -> String {
        let family = if self.proto == "ICMPv6" {
            IcmpFamily::V6
        } else {
            IcmpFamily::V4
        };
        let name = match icmp::name_of(family, i.icmp_type) {
            Some(n) => n.to_string(),
            None => format!("type {}", i.icmp_type),
        };
        if i.code == 0 {
            name
        } else {
            format!("{name} code {}", i.code)
        }
    }
}

fn endpoint(a: IpAddr, p: Option<u16>) -> String {
    match (a, p) {
        (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, Some(p)) => format!("{a}:{p}"),
        (a, None) => a.to_string(),
    }
}

/// One line, as `hubble observe` prints: time, interface, direction,
/// endpoints, protocol (with TCP flags or ICMP type), verdict, policy and
/// rule when known, reason:
/// `Nov 25 02:53:48.123 eth0 ingress 10.0.0.5:51234 -> 10.0.0.1:22 TCP SYN AUDIT (default-deny)`.
impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let iface = match &self.interface {
            Some(name) => name.clone(),
            None => format!("if{}", self.ifindex),
        };
        write!(
            f,
            "{} {iface} {} {} -> {} {}",
            self.time.short(),
            self.direction,
            endpoint(self.src, self.sport),
            endpoint(self.dst, self.dport),
            self.proto
        )?;
        if let Some(flags) = self.tcp_flags.as_deref().filter(|s| !s.is_empty()) {
            write!(f, " {flags}")?;
        }
        if let Some(i) = self.icmp {
            write!(f, " {}", self.icmp_text(i))?;
        }
        write!(f, " {}", self.verdict.to_uppercase())?;
        if let Some(policy) = &self.policy {
            write!(f, " policy {policy}")?;
        }
        if let Some(rule) = &self.rule {
            write!(f, " {rule}")?;
        } else if self.rule_id != 0 {
            write!(f, " rule {}", self.rule_id)?;
        }
        write!(f, " ({})", self.reason)
    }
}

#[cfg(test)]
mod tests {
    use std::{
        collections::BTreeMap,
        time::{Duration, SystemTime},
    };

    use super::*;
    use crate::{
        policy::{Report, RuleOrigin},
        ruleset::RuleSet,
    };

    fn time() -> WallTime {
        WallTime(SystemTime::UNIX_EPOCH + Duration::new(1_732_503_228, 123_456_789))
    }

    fn names() -> IfNames {
        IfNames::with_lookup(|i| (i == 2).then(|| "eth0".to_string()))
    }

    fn lowered() -> Lowered {
        let mut origins = BTreeMap::new();
        origins.insert(
            1,
            RuleOrigin {
                policy: None,
                rule: "failsafe inbound TCP/22".into(),
                file: None,
                pos: None,
            },
        );
        origins.insert(
            7,
            RuleOrigin {
                policy: Some("host-fw".into()),
                rule: "ingress[1]".into(),
                file: Some(std::path::Path::new("/etc/hostfw/policies.d/host-fw.yaml").into()),
                pos: None,
            },
        );
        Lowered {
            rules: RuleSet::default(),
            report: Report {
                origins,
                ..Report::default()
            },
        }
    }

    fn event() -> VerdictEvent {
        VerdictEvent {
            ts_ns: 42,
            ifindex: 2,
            direction: "ingress",
            verdict: "audit",
            reason: "deny-rule",
            rule_id: 7,
            src: "10.0.0.5".parse().expect("ip"),
            dst: "10.0.0.1".parse().expect("ip"),
            proto: "TCP".into(),
            sport: Some(51234),
            dport: Some(22),
            icmp: None,
            tcp_flags: Some("SYN".into()),
            revision: 3,
        }
    }

    #[test]
    fn enriches_with_the_report_and_interface() {
        let l = lowered();
        let mut n = names();
        let flow = enrich_at(&event(), Some(&l), &mut n, time());
        assert_eq!(flow.interface.as_deref(), Some("eth0"));
        assert_eq!(flow.policy.as_deref(), Some("host-fw"));
        assert_eq!(flow.rule.as_deref(), Some("ingress[1]"));
        assert_eq!(flow.direction(), Some(Direction::Ingress));
        assert_eq!(flow.proto_number(), Some(proto::TCP));
        assert_eq!(flow.peer(), event().src);
        assert!(flow.is_drop_or_audit());
        assert_eq!(
            flow.to_string(),
            "Nov 25 02:53:48.123 eth0 ingress 10.0.0.5:51234 -> 10.0.0.1:22 TCP SYN AUDIT \
             policy host-fw ingress[1] (deny-rule)"
        );

        let failsafe = VerdictEvent {
            rule_id: 1,
            verdict: "allowed",
            reason: "failsafe",
            ..event()
        };
        let flow = enrich_at(&failsafe, Some(&l), &mut n, time());
        assert_eq!(flow.policy, None);
        assert_eq!(flow.rule.as_deref(), Some("failsafe inbound TCP/22"));

        // No report, or a rule the report does not know: ids only.
        let flow = enrich_at(&event(), None, &mut n, time());
        assert_eq!((flow.policy, flow.rule), (None, None));
        let unknown = VerdictEvent {
            rule_id: 99,
            ..event()
        };
        let flow = enrich_at(&unknown, Some(&l), &mut n, time());
        assert!(
            flow.to_string().ends_with("AUDIT rule 99 (deny-rule)"),
            "{flow}"
        );
    }

    #[test]
    fn displays_icmp_v6_and_unknown_interfaces() {
        let mut n = names();
        let ev = VerdictEvent {
            ifindex: 5,
            direction: "egress",
            verdict: "denied",
            reason: "default-deny",
            rule_id: 0,
            src: "fd00::1".parse().expect("ip"),
            dst: "fd00::2".parse().expect("ip"),
            proto: "ICMPv6".into(),
            sport: None,
            dport: None,
            icmp: Some((128, 0)),
            tcp_flags: None,
            ..event()
        };
        let flow = enrich_at(&ev, Some(&lowered()), &mut n, time());
        assert_eq!(flow.peer(), ev.dst);
        assert_eq!(
            flow.to_string(),
            "Nov 25 02:53:48.123 if5 egress fd00::1 -> fd00::2 ICMPv6 EchoRequest DENIED \
             (default-deny)"
        );
        let udp = VerdictEvent {
            proto: "UDP".into(),
            icmp: None,
            sport: Some(5353),
            dport: Some(53),
            ..ev.clone()
        };
        let flow = enrich_at(&udp, None, &mut n, time());
        assert!(
            flow.to_string()
                .contains("[fd00::1]:5353 -> [fd00::2]:53 UDP DENIED")
        );
        let unreach = VerdictEvent {
            proto: "ICMP".into(),
            icmp: Some((3, 3)),
            src: "10.0.0.1".parse().expect("ip"),
            dst: "10.0.0.9".parse().expect("ip"),
            ..ev
        };
        let flow = enrich_at(&unreach, None, &mut n, time());
        assert!(
            flow.to_string()
                .contains("10.0.0.1 -> 10.0.0.9 ICMP DestinationUnreachable code 3 DENIED"),
            "{flow}"
        );
        let other = Flow {
            proto: "proto-47".into(),
            icmp: Some(Icmp {
                icmp_type: 200,
                code: 0,
            }),
            ..flow
        };
        assert_eq!(other.proto_number(), Some(47));
        assert!(other.to_string().contains("proto-47 type 200 DENIED"));
    }

    #[test]
    fn json_round_trips() {
        let flow = enrich_at(&event(), Some(&lowered()), &mut names(), time());
        let json = serde_json::to_value(&flow).expect("serialize");
        assert_eq!(json["time"], "2024-11-25T02:53:48.123456789Z");
        assert_eq!(json["interface"], "eth0");
        assert_eq!(json["verdict"], "audit");
        assert_eq!(json["policy"], "host-fw");
        assert_eq!(json["rule"], "ingress[1]");
        assert_eq!(json["src"], "10.0.0.5");
        assert_eq!(json["dport"], 22);
        assert_eq!(json["icmp"], serde_json::Value::Null);
        let back: Flow = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, flow);
        let icmp = serde_json::to_value(Icmp {
            icmp_type: 8,
            code: 0,
        })
        .expect("serialize");
        assert_eq!(icmp, serde_json::json!({"type": 8, "code": 0}));
    }
}
