//! Verdict events from the ring buffer, decoded for people and scripts.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use hostfw_common::{
    DIR_INGRESS, FAMILY_V4,
    event::{Event, Reason, VERDICT_ALLOWED, VERDICT_AUDIT, VERDICT_DENIED},
    proto,
};

/// A decoded verdict event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VerdictEvent {
    /// Boot-clock nanoseconds.
    pub ts_ns: u64,
    /// Interface index.
    pub ifindex: u32,
    /// "ingress" or "egress".
    pub direction: &'static str,
    /// "allowed", "denied" or "audit".
    pub verdict: &'static str,
    /// Why.
    pub reason: &'static str,
    /// Deciding rule (0 = none).
    pub rule_id: u32,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Protocol name or number.
    pub proto: String,
    /// Source port (TCP/UDP/SCTP).
    pub sport: Option<u16>,
    /// Destination port (TCP/UDP/SCTP).
    pub dport: Option<u16>,
    /// ICMP type and code.
    pub icmp: Option<(u8, u8)>,
    /// TCP flags, e.g. "SYN".
    pub tcp_flags: Option<String>,
    /// Policy revision in force.
    pub revision: u32,
}

fn addr(family: u8, bytes: [u8; 16]) -> IpAddr {
    if family == FAMILY_V4 {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(bytes))
    }
}

fn proto_name(p: u8) -> String {
    match p {
        proto::TCP => "TCP".into(),
        proto::UDP => "UDP".into(),
        proto::SCTP => "SCTP".into(),
        proto::ICMP => "ICMP".into(),
        proto::ICMPV6 => "ICMPv6".into(),
        n => format!("proto-{n}"),
    }
}

fn tcp_flags(f: u8) -> String {
    const NAMES: [(u8, &str); 6] = [
        (0x02, "SYN"),
        (0x10, "ACK"),
        (0x01, "FIN"),
        (0x04, "RST"),
        (0x08, "PSH"),
        (0x20, "URG"),
    ];
    let parts: Vec<&str> = NAMES
        .iter()
        .filter(|(bit, _)| f & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    parts.join("|")
}

impl VerdictEvent {
    /// Decodes a raw ring-buffer record; `None` if it is too short.
    #[must_use]
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < std::mem::size_of::<Event>() {
            return None;
        }
        // SAFETY: length checked; `Event` is plain old data, read unaligned.
        let e: Event = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        let ports = matches!(e.proto, proto::TCP | proto::UDP | proto::SCTP);
        let icmp = matches!(e.proto, proto::ICMP | proto::ICMPV6);
        Some(Self {
            ts_ns: e.ts_ns,
            ifindex: e.ifindex,
            direction: if e.direction == DIR_INGRESS {
                "ingress"
            } else {
                "egress"
            },
            verdict: match e.verdict {
                VERDICT_ALLOWED => "allowed",
                VERDICT_DENIED => "denied",
                VERDICT_AUDIT => "audit",
                _ => "unknown",
            },
            reason: Reason::from_u8(e.reason).map_or("unknown", Reason::name),
            rule_id: e.rule_id,
            src: addr(e.family, e.src),
            dst: addr(e.family, e.dst),
            proto: proto_name(e.proto),
            sport: ports.then(|| u16::from_be(e.sport_be)),
            dport: ports.then(|| u16::from_be(e.dport_be)),
            icmp: icmp.then_some((e.icmp_type, e.icmp_code)),
            tcp_flags: (e.proto == proto::TCP).then(|| tcp_flags(e.tcp_flags)),
            revision: e.revision,
        })
    }
}

impl fmt::Display for VerdictEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ep = |a: IpAddr, p: Option<u16>| match (a, p) {
            (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
            (a, Some(p)) => format!("{a}:{p}"),
            (a, None) => a.to_string(),
        };
        write!(
            f,
            "{:<7} {:<7} {} -> {} {}",
            self.verdict.to_uppercase(),
            self.direction,
            ep(self.src, self.sport),
            ep(self.dst, self.dport),
            self.proto
        )?;
        if let Some((t, c)) = self.icmp {
            write!(f, " type {t} code {c}")?;
        }
        if let Some(flags) = &self.tcp_flags
            && !flags.is_empty()
        {
            write!(f, " {flags}")?;
        }
        write!(f, " ({}", self.reason)?;
        if self.rule_id != 0 {
            write!(f, ", rule {}", self.rule_id)?;
        }
        write!(f, ")")
    }
}
