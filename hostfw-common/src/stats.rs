//! Per-CPU packet counters: one slot per [`Stat`].

/// Counter slots of `HFW_STATS`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// Packet of a tracked flow passed.
    CtEstablished = 0,
    /// ICMP error related to a tracked flow passed.
    CtRelated,
    /// New flow allowed by a rule, failsafe or an open direction.
    FlowAllowed,
    /// New flow denied and dropped.
    FlowDenied,
    /// New flow denied but passed (audit mode).
    FlowAudit,
    /// Packet dropped (any reason).
    Dropped,
    /// Packet that would have been dropped, passed in audit mode.
    Audited,
    /// Malformed or truncated IP packet.
    Malformed,
    /// Non-first fragment whose first fragment was not seen.
    FragmentUnknown,
    /// Not IPv4/IPv6 (ARP and others): never filtered.
    NotIp,
    /// ICMPv6 type that always passes (neighbour discovery, errors…).
    Icmp6Always,
    /// ICMPv6 type that is always dropped (redirect and others).
    Icmp6Forbidden,
    /// Tracked flow evaluated again after a policy change.
    CtReevaluated,
    /// Event not sent: rate limit or full ring buffer.
    EventsLost,
    /// No generation was ever written: passed unfiltered.
    Unconfigured,
    /// TC ingress found the packet already passed by XDP.
    XdpDecided,
    /// Flow added to the new-flow tracker (a key it did not hold).
    CtNewCreated,
    /// Flow moved from the new-flow tracker to the established one (a key
    /// the established tracker did not hold).
    CtPromoted,
    /// Entry removed from the new-flow tracker by a promotion.
    CtNewRemoved,
    /// Entry added to the established tracker by userspace: seeded from
    /// the kernel's sockets, or carried over from an older release's
    /// tracker. Written by userspace, not by the programs.
    CtUserspaceAdded,
}

/// Number of counter slots.
pub const STAT_COUNT: u32 = Stat::CtUserspaceAdded as u32 + 1;

/// Names for output, in slot order.
pub const STAT_NAMES: [&str; STAT_COUNT as usize] = [
    "ct_established",
    "ct_related",
    "flow_allowed",
    "flow_denied",
    "flow_audit",
    "dropped",
    "audited",
    "malformed",
    "fragment_unknown",
    "not_ip",
    "icmp6_always",
    "icmp6_forbidden",
    "ct_reevaluated",
    "events_lost",
    "unconfigured",
    "xdp_decided",
    "ct_new_created",
    "ct_promoted",
    "ct_new_removed",
    "ct_userspace_added",
];

/// Packets per interface, one slot per interface index below
/// [`MAX_IFINDEX`] (higher indexes share the last slot).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfCounters {
    /// Passed (allowed, tracked, never filtered, audited).
    pub passed: u64,
    /// Dropped.
    pub dropped: u64,
    /// Would have been dropped; passed in audit mode.
    pub audited: u64,
}

/// Slots of `HFW_IF_STATS`.
pub const MAX_IFINDEX: u32 = 4096;

/// Default number of rule ids per generation in `HFW_RULE_STATS`.
pub const DEFAULT_MAX_RULE_IDS: u32 = 1 << 17;

/// Token bucket of the event rate limit (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventBudget {
    /// Tokens left.
    pub tokens: u64,
    /// Boot-clock time of the last refill.
    pub last_ns: u64,
}

/// Events per second per CPU, and the burst size.
pub const EVENT_RATE_PER_SEC: u64 = 1000;

const _: () = assert!(core::mem::size_of::<EventBudget>() == 16);
const _: () = assert!(core::mem::size_of::<IfCounters>() == 24);
