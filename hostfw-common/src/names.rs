//! Names of the programs and maps in the compiled object, and where they are
//! pinned. A test checks that each one exists in the object.

/// XDP program on ingress.
pub const PROG_XDP: &str = "hostfw_xdp";
/// TC program on ingress.
pub const PROG_TC_INGRESS: &str = "hostfw_tc_in";
/// TC program on egress.
pub const PROG_TC_EGRESS: &str = "hostfw_tc_out";

/// Every program, for checks and pinning.
pub const PROGRAMS: [&str; 3] = [PROG_XDP, PROG_TC_INGRESS, PROG_TC_EGRESS];

/// [`crate::config::Config`] array, one entry.
pub const MAP_CONFIG: &str = "HFW_CONFIG";
/// [`crate::config::GenMeta`] array, one entry per generation.
pub const MAP_GEN_META: &str = "HFW_GEN_META";
/// IPv4 identity LPM trie ([`crate::policy::IdentKeyV4`] -> identity).
pub const MAP_IDENT_V4: &str = "HFW_IDENT_V4";
/// IPv6 identity LPM trie ([`crate::policy::IdentKeyV6`] -> identity).
pub const MAP_IDENT_V6: &str = "HFW_IDENT_V6";
/// IPv4 host identities (/32), hash ([`crate::policy::IdentKeyV4`] ->
/// identity): looked up before the trie, which holds the shorter prefixes.
pub const MAP_HOSTS_V4: &str = "HFW_HOSTS_V4";
/// IPv6 host identities (/128), hash, as [`MAP_HOSTS_V4`].
pub const MAP_HOSTS_V6: &str = "HFW_HOSTS_V6";
/// Exact policy entries, hash ([`crate::policy::PolicyKey`] ->
/// [`crate::policy::PolicyValue`]): the entries of
/// [`crate::policy::exact_prefix_len`], looked up before the trie.
pub const MAP_POLICY_EXACT: &str = "HFW_POLICY_EX";
/// Policy LPM trie ([`crate::policy::PolicyKey`] -> [`crate::policy::PolicyValue`]).
pub const MAP_POLICY: &str = "HFW_POLICY";
/// Connection tracker of established flows, LRU hash
/// ([`crate::conntrack::CtKey`] -> [`crate::conntrack::CtValue`]): flows
/// answered by their peer and confirmed by their originator.
pub const MAP_CONNTRACK: &str = "HFW_CT";
/// Connection tracker of new flows, LRU hash (as [`MAP_CONNTRACK`]): flows
/// not yet established. They are moved to [`MAP_CONNTRACK`] when they are,
/// so a flood of new flows evicts only new flows.
pub const MAP_CONNTRACK_NEW: &str = "HFW_CT_NEW";
/// IP fragment tracker, LRU hash ([`crate::conntrack::FragKey`] -> [`crate::conntrack::FragValue`]).
pub const MAP_FRAGS: &str = "HFW_FRAGS";
/// Per-CPU packet counters indexed by [`crate::stats::Stat`].
pub const MAP_STATS: &str = "HFW_STATS";
/// Per-CPU counters of new-flow decisions per rule, indexed by
/// `generation * max_rule_ids + rule_id`.
pub const MAP_RULE_STATS: &str = "HFW_RULE_STATS";
/// Per-CPU packet counters per interface ([`crate::stats::IfCounters`]).
pub const MAP_IF_STATS: &str = "HFW_IF_STATS";
/// Ring buffer of [`crate::event::Event`]s.
pub const MAP_EVENTS: &str = "HFW_EVENTS";
/// Per-CPU token bucket that rate-limits events.
pub const MAP_EVENT_BUDGET: &str = "HFW_EV_BUDGET";
/// Array indexed by interface index: 1 where XDP is hostfw's own program,
/// the only interfaces where TC ingress trusts XDP's hand-off mark.
pub const MAP_XDP_OWNED: &str = "HFW_XDP_OWNED";

/// `.rodata` global: the metadata marker with which XDP tells TC ingress it
/// passed a packet, drawn at random at every load.
pub const GLOBAL_XDP_MARK: &str = "HFW_XDP_MARK";

/// Every map, for checks and pinning.
pub const MAPS: [&str; 17] = [
    MAP_CONFIG,
    MAP_GEN_META,
    MAP_IDENT_V4,
    MAP_IDENT_V6,
    MAP_POLICY,
    MAP_HOSTS_V4,
    MAP_HOSTS_V6,
    MAP_POLICY_EXACT,
    MAP_CONNTRACK,
    MAP_CONNTRACK_NEW,
    MAP_FRAGS,
    MAP_STATS,
    MAP_RULE_STATS,
    MAP_IF_STATS,
    MAP_EVENTS,
    MAP_EVENT_BUDGET,
    MAP_XDP_OWNED,
];

/// Default bpffs directory of hostfw's pins.
pub const PIN_ROOT: &str = "/sys/fs/bpf/hostfw";
