//! Verdict events sent through the `HFW_EVENTS` ring buffer.

/// The packet passed because the policy allows it.
pub const VERDICT_ALLOWED: u8 = 1;
/// The packet was dropped.
pub const VERDICT_DENIED: u8 = 2;
/// The policy denies the packet, but the mode is audit: it passed.
pub const VERDICT_AUDIT: u8 = 3;

/// Why the verdict was reached.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// An allow rule matched.
    RuleAllow = 1,
    /// A deny rule matched.
    RuleDeny,
    /// A failsafe rule matched.
    Failsafe,
    /// No rule matched and the direction is default-deny.
    DefaultDeny,
    /// No rule matched and the direction is not default-deny.
    NoPolicy,
    /// ICMPv6 type that always passes.
    Icmp6Always,
    /// ICMPv6 type that is always dropped.
    Icmp6Forbidden,
    /// Malformed or truncated packet.
    Malformed,
    /// A tracked flow that the new policy no longer allows.
    Reevaluated,
}

impl Reason {
    /// Decodes the `reason` byte of an event.
    #[must_use]
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::RuleAllow,
            2 => Self::RuleDeny,
            3 => Self::Failsafe,
            4 => Self::DefaultDeny,
            5 => Self::NoPolicy,
            6 => Self::Icmp6Always,
            7 => Self::Icmp6Forbidden,
            8 => Self::Malformed,
            9 => Self::Reevaluated,
            _ => return None,
        })
    }

    /// Short name for output.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::RuleAllow => "rule",
            Self::RuleDeny => "deny-rule",
            Self::Failsafe => "failsafe",
            Self::DefaultDeny => "default-deny",
            Self::NoPolicy => "no-policy",
            Self::Icmp6Always => "icmpv6-always-allowed",
            Self::Icmp6Forbidden => "icmpv6-always-denied",
            Self::Malformed => "malformed",
            Self::Reevaluated => "policy-changed",
        }
    }
}

/// One verdict event.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// Boot-clock time.
    pub ts_ns: u64,
    /// Interface index.
    pub ifindex: u32,
    /// Deciding rule (`0` = none).
    pub rule_id: u32,
    /// Source address (IPv4 in the first four bytes).
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Source port, network order (ICMP: identifier or zero).
    pub sport_be: u16,
    /// Destination port, network order (ICMP: identifier or zero).
    pub dport_be: u16,
    /// [`crate::FAMILY_V4`] or [`crate::FAMILY_V6`].
    pub family: u8,
    /// IP protocol.
    pub proto: u8,
    /// [`crate::DIR_INGRESS`] or [`crate::DIR_EGRESS`].
    pub direction: u8,
    /// `VERDICT_*`.
    pub verdict: u8,
    /// [`Reason`] as a byte.
    pub reason: u8,
    /// TCP flags byte (0 for other protocols).
    pub tcp_flags: u8,
    /// ICMP type (0 for other protocols).
    pub icmp_type: u8,
    /// ICMP code.
    pub icmp_code: u8,
    /// Policy revision in force.
    pub revision: u32,
}

const _: () = assert!(core::mem::size_of::<Event>() == 64);
