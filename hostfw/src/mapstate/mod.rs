//! The desired contents of the policy maps for one generation.
//!
//! [`compile`] turns a [`crate::ruleset::RuleSet`] into a [`MapState`]: the
//! identity tries (`HFW_IDENT_V4`/`_V6`), the policy trie (`HFW_POLICY`) and
//! the generation's settings, as plain values that do not depend on the
//! generation slot they will be written to. [`diff`] compares two states
//! entry by entry, so that a writer only touches what changed, and
//! [`MapState::check_fits`] checks the result against the map sizes before
//! anything is written.
//!
//! [`simulate`] is a model of the kernel's lookup over a `MapState`; tests
//! check it against the reference evaluator [`crate::refeval`].

mod compile;
mod diff;
mod identities;
mod ports;
pub mod simulate;

#[cfg(test)]
mod differential;

use std::collections::BTreeMap;

use hostfw_common::{
    DIR_INGRESS,
    config::{DEFAULT_DENY_EGRESS, DEFAULT_DENY_INGRESS, GenMeta, MODE_ENFORCE},
    names,
    policy::{
        IDENT_PREFIX_GEN, IdentKeyV4, IdentKeyV6, POLICY_PREFIX_PORT_ANY, POLICY_PREFIX_PROTO_ANY,
        PolicyKey, PolicyValue,
    },
    stats::DEFAULT_MAX_RULE_IDS,
};
use ipnet::{Ipv4Net, Ipv6Net};

pub use compile::{CompileError, compile, compile_after};
pub use diff::{MapChanges, MapDiff, diff};
pub use ports::port_prefixes;

/// The settings of a generation that follow from the policy: a
/// [`GenMeta`] without the revision and the rule-statistics base, which the
/// writer assigns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// [`hostfw_common::config::MODE_AUDIT`] or [`MODE_ENFORCE`].
    pub mode: u32,
    /// [`DEFAULT_DENY_INGRESS`] | [`DEFAULT_DENY_EGRESS`].
    pub default_deny: u32,
    /// The `SKIP_*` bits of the tables this generation leaves empty
    /// ([`MapState::skips`]).
    pub skip: u32,
}

impl Meta {
    /// The map value of this generation.
    #[must_use]
    pub const fn gen_meta(self, revision: u32, rule_stats_base: u32) -> GenMeta {
        GenMeta {
            revision,
            mode: self.mode,
            flags: self.default_deny | self.skip,
            rule_stats_base,
        }
    }

    /// Whether the mode is enforce.
    #[must_use]
    pub const fn enforces(self) -> bool {
        self.mode == MODE_ENFORCE
    }

    /// Whether `direction` (a `DIR_*` byte) is default-deny.
    #[must_use]
    pub const fn denies_by_default(self, direction: u8) -> bool {
        let bit = if direction == DIR_INGRESS {
            DEFAULT_DENY_INGRESS
        } else {
            DEFAULT_DENY_EGRESS
        };
        self.default_deny & bit != 0
    }
}

/// One entry of the policy trie, without the generation.
///
/// The entry covers, for `identity` and `direction`: every protocol
/// (`proto == None`; `port` and `port_prefix` are then 0), or the ports of
/// `proto` whose first `port_prefix` bits equal those of `port`
/// (`port_prefix == 0`: every port; 16: exactly `port`). For ICMP and
/// ICMPv6 the "port" is `type << 8 | code`, so a type is `port_prefix` 8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyEntry {
    /// Identity of the peer, or [`hostfw_common::policy::IDENTITY_ANY`].
    pub identity: u32,
    /// [`hostfw_common::DIR_INGRESS`] or [`hostfw_common::DIR_EGRESS`].
    pub direction: u8,
    /// IP protocol; `None` = every protocol.
    pub proto: Option<u8>,
    /// Port (host order), bits beyond `port_prefix` zero.
    pub port: u16,
    /// Significant bits of `port`, `0..=16`.
    pub port_prefix: u8,
}

impl PolicyEntry {
    /// The entry for every protocol and port.
    #[must_use]
    pub const fn any_proto(identity: u32, direction: u8) -> Self {
        Self {
            identity,
            direction,
            proto: None,
            port: 0,
            port_prefix: 0,
        }
    }

    /// The entry for the ports of `proto` that share the first `port_prefix`
    /// bits (at most 16) with `port`. Bits beyond the prefix are cleared.
    #[must_use]
    pub const fn ports(
        identity: u32,
        direction: u8,
        proto: u8,
        port: u16,
        port_prefix: u8,
    ) -> Self {
        let port_prefix = if port_prefix > 16 { 16 } else { port_prefix };
        Self {
            identity,
            direction,
            proto: Some(proto),
            port: port & port_mask(port_prefix),
            port_prefix,
        }
    }

    /// The prefix length of the entry's key in the trie.
    #[must_use]
    pub const fn prefix_len(&self) -> u32 {
        match self.proto {
            None => POLICY_PREFIX_PROTO_ANY,
            Some(_) => POLICY_PREFIX_PORT_ANY + self.port_prefix as u32,
        }
    }

    /// Whether the entry lives in the exact-match hash (`HFW_POLICY_EX`):
    /// it has the longest prefix any entry of its protocol can have.
    /// Otherwise it is in the trie.
    #[must_use]
    pub const fn is_exact(&self) -> bool {
        match self.proto {
            Some(p) => self.prefix_len() == hostfw_common::policy::exact_prefix_len(p),
            None => false,
        }
    }

    /// The entry's key in `generation`. Bits beyond the prefix are zero.
    #[must_use]
    pub const fn key(&self, generation: u32) -> PolicyKey {
        match self.proto {
            None => PolicyKey::new(generation, self.identity, self.direction, 0, 0),
            Some(proto) => PolicyKey::new(
                generation,
                self.identity,
                self.direction,
                proto,
                self.port & port_mask(self.port_prefix),
            ),
        }
    }

    /// Whether the entry covers `proto` and `port` (for its identity and
    /// direction).
    #[must_use]
    pub const fn covers(&self, proto: u8, port: u16) -> bool {
        match self.proto {
            None => true,
            Some(p) => {
                let mask = port_mask(self.port_prefix);
                p == proto && port & mask == self.port & mask
            }
        }
    }
}

/// The mask of the first `prefix` bits of a port (`prefix` above 16 counts
/// as 16).
#[must_use]
pub const fn port_mask(prefix: u8) -> u16 {
    if prefix == 0 {
        0
    } else if prefix >= 16 {
        u16::MAX
    } else {
        u16::MAX << (16 - prefix)
    }
}

/// The trie key and prefix length of an IPv4 identity entry.
#[must_use]
pub fn ident_key_v4(generation: u32, net: &Ipv4Net) -> (u32, IdentKeyV4) {
    (
        IDENT_PREFIX_GEN + u32::from(net.prefix_len()),
        IdentKeyV4 {
            generation,
            addr: net.network().octets(),
        },
    )
}

/// The trie key and prefix length of an IPv6 identity entry.
#[must_use]
pub fn ident_key_v6(generation: u32, net: &Ipv6Net) -> (u32, IdentKeyV6) {
    (
        IDENT_PREFIX_GEN + u32::from(net.prefix_len()),
        IdentKeyV6 {
            generation,
            addr: net.network().octets(),
        },
    )
}

/// The desired map contents of one generation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapState {
    /// Mode and default-deny bits.
    pub meta: Meta,
    /// `HFW_IDENT_V4`: prefix -> identity (`IDENTITY_NONE` included where a
    /// shorter prefix must not match).
    pub ident_v4: BTreeMap<Ipv4Net, u32>,
    /// `HFW_IDENT_V6`: prefix -> identity.
    pub ident_v6: BTreeMap<Ipv6Net, u32>,
    /// `HFW_POLICY`: entry -> decision.
    pub policy: BTreeMap<PolicyEntry, PolicyValue>,
    /// Largest rule id of the compiled rule set (also of rules that produce
    /// no entry).
    max_rule_id: u32,
}

impl MapState {
    /// The largest rule id the generation may report: of the compiled rule
    /// set, or of any policy entry (0 when there is none).
    #[must_use]
    pub fn max_rule_id(&self) -> u32 {
        self.policy
            .values()
            .map(|v| v.rule_id)
            .fold(self.max_rule_id, u32::max)
    }

    /// The `SKIP_*` bits of the tables these entries leave empty, as the
    /// writer splits them ([`is_host_v4`], [`is_host_v6`],
    /// [`PolicyEntry::is_exact`]: the hashes, the rest in the tries).
    #[must_use]
    pub fn skips(&self) -> u32 {
        use hostfw_common::config::{
            SKIP_HOSTS_V4, SKIP_HOSTS_V6, SKIP_IDENT_V4, SKIP_IDENT_V6, SKIP_POLICY_EXACT,
            SKIP_POLICY_TRIE,
        };
        let skip_if_none = |present: bool, bit: u32| if present { 0 } else { bit };
        let (hosts4, nets4) = tables_used(self.ident_v4.keys().map(is_host_v4));
        let (hosts6, nets6) = tables_used(self.ident_v6.keys().map(is_host_v6));
        let (exact, trie) = tables_used(self.policy.keys().map(PolicyEntry::is_exact));
        skip_if_none(hosts4, SKIP_HOSTS_V4)
            | skip_if_none(nets4, SKIP_IDENT_V4)
            | skip_if_none(hosts6, SKIP_HOSTS_V6)
            | skip_if_none(nets6, SKIP_IDENT_V6)
            | skip_if_none(exact, SKIP_POLICY_EXACT)
            | skip_if_none(trie, SKIP_POLICY_TRIE)
    }

    /// Whether both hold the same map entries (settings aside).
    #[must_use]
    pub fn same_entries(&self, other: &Self) -> bool {
        self.ident_v4 == other.ident_v4
            && self.ident_v6 == other.ident_v6
            && self.policy == other.policy
    }

    /// Number of entries per map.
    #[must_use]
    pub fn counts(&self) -> Counts {
        Counts {
            ident_v4: self.ident_v4.len(),
            ident_v6: self.ident_v6.len(),
            policy: self.policy.len(),
        }
    }

    /// Checks that this state fits next to the other generation's entries
    /// (the maps hold both generations) and that its rule ids fit in the
    /// per-generation range of `HFW_RULE_STATS`.
    ///
    /// # Errors
    /// The first map that is too small, with the numbers.
    pub fn check_fits(
        &self,
        other_generation: &Counts,
        capacity: &Capacity,
    ) -> Result<(), CapacityError> {
        let mine = self.counts();
        let maps = [
            (
                names::MAP_IDENT_V4,
                mine.ident_v4,
                other_generation.ident_v4,
                capacity.ident_v4,
            ),
            (
                names::MAP_IDENT_V6,
                mine.ident_v6,
                other_generation.ident_v6,
                capacity.ident_v6,
            ),
            (
                names::MAP_POLICY,
                mine.policy,
                other_generation.policy,
                capacity.policy,
            ),
        ];
        for (map, needed, used_by_other, cap) in maps {
            let available = usize::try_from(cap)
                .unwrap_or(usize::MAX)
                .saturating_sub(used_by_other);
            if needed > available {
                return Err(CapacityError::Map {
                    map,
                    needed,
                    available,
                    capacity: cap,
                    used_by_other,
                });
            }
        }
        let max_rule_id = self.max_rule_id();
        if max_rule_id >= capacity.rule_ids {
            return Err(CapacityError::RuleIds {
                map: names::MAP_RULE_STATS,
                max_rule_id,
                rule_ids: capacity.rule_ids,
            });
        }
        Ok(())
    }
}

/// Entries per map of one generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// `HFW_IDENT_V4` entries.
    pub ident_v4: usize,
    /// `HFW_IDENT_V6` entries.
    pub ident_v6: usize,
    /// `HFW_POLICY` entries.
    pub policy: usize,
}

/// Sizes of the maps (`max_entries`, shared by both generations) and the
/// number of rule ids per generation in `HFW_RULE_STATS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    /// `HFW_IDENT_V4` entries.
    pub ident_v4: u32,
    /// `HFW_IDENT_V6` entries.
    pub ident_v6: u32,
    /// `HFW_POLICY` entries.
    pub policy: u32,
    /// Rule ids per generation: valid ids are `1..rule_ids`.
    pub rule_ids: u32,
}

impl Default for Capacity {
    /// The sizes compiled into the eBPF object.
    fn default() -> Self {
        Self {
            ident_v4: 262_144,
            ident_v6: 262_144,
            policy: 524_288,
            rule_ids: DEFAULT_MAX_RULE_IDS,
        }
    }
}

/// A policy that does not fit in the maps.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CapacityError {
    /// A trie is too small.
    #[error(
        "map {map} is too small: the policy needs {needed} entries, {available} are available \
         (capacity {capacity}, {used_by_other} used by the other generation)"
    )]
    Map {
        /// Map name.
        map: &'static str,
        /// Entries this generation needs.
        needed: usize,
        /// Entries left by the other generation.
        available: usize,
        /// The map's `max_entries`.
        capacity: u32,
        /// Entries of the other generation.
        used_by_other: usize,
    },
    /// A rule id beyond the rule statistics.
    #[error("map {map} is too small: rule id {max_rule_id} needs {} rule ids per generation, it has {rule_ids}", u64::from(*max_rule_id) + 1)]
    RuleIds {
        /// Map name.
        map: &'static str,
        /// The largest rule id.
        max_rule_id: u32,
        /// Rule ids per generation.
        rule_ids: u32,
    },
}

/// Whether an IPv4 identity prefix goes to the host hash (`HFW_HOSTS_V4`):
/// a hit there is the longest match. The others go to `HFW_IDENT_V4`.
#[must_use]
pub fn is_host_v4(net: &Ipv4Net) -> bool {
    net.prefix_len() == 32
}

/// Whether an IPv6 identity prefix goes to `HFW_HOSTS_V6` (see
/// [`is_host_v4`]).
#[must_use]
pub fn is_host_v6(net: &Ipv6Net) -> bool {
    net.prefix_len() == 128
}

/// (some entry goes to the hash, some to the trie), from each entry's "goes
/// to the hash"; stops as soon as both are known.
fn tables_used(in_hash: impl Iterator<Item = bool>) -> (bool, bool) {
    let (mut hash, mut trie) = (false, false);
    for h in in_hash {
        if h {
            hash = true;
        } else {
            trie = true;
        }
        if hash && trie {
            break;
        }
    }
    (hash, trie)
}

#[cfg(test)]
mod tests {
    use hostfw_common::policy::{ACTION_ALLOW, POLICY_PREFIX_FULL};

    use super::*;

    #[test]
    fn policy_entry_prefix_and_key() {
        let any = PolicyEntry::any_proto(7, 1);
        assert_eq!(any.prefix_len(), POLICY_PREFIX_PROTO_ANY);
        assert_eq!(any.key(1), PolicyKey::new(1, 7, 1, 0, 0));
        let all_ports = PolicyEntry::ports(7, 0, 6, 0, 0);
        assert_eq!(all_ports.prefix_len(), POLICY_PREFIX_PORT_ANY);
        let one = PolicyEntry::ports(7, 0, 6, 443, 16);
        assert_eq!(one.prefix_len(), POLICY_PREFIX_FULL);
        assert_eq!(one.key(0).port_be, 443u16.to_be());
        let icmp = PolicyEntry::ports(7, 0, 1, PolicyKey::icmp_port(8, 0), 8);
        assert_eq!(icmp.prefix_len(), POLICY_PREFIX_PORT_ANY + 8);
        assert!(icmp.covers(1, PolicyKey::icmp_port(8, 3)));
        assert!(!icmp.covers(1, PolicyKey::icmp_port(9, 0)));
        // Host bits beyond the prefix are cleared.
        let masked = PolicyEntry::ports(7, 0, 6, 0x1234, 8);
        assert_eq!(masked.port, 0x1200);
        assert_eq!(port_mask(0), 0);
        assert_eq!(port_mask(1), 0x8000);
        assert_eq!(port_mask(16), 0xffff);
    }

    #[test]
    fn meta_bits() {
        let m = Meta {
            mode: MODE_ENFORCE,
            default_deny: DEFAULT_DENY_EGRESS,
            skip: hostfw_common::config::SKIP_POLICY_TRIE,
        };
        assert!(m.enforces());
        assert!(!m.denies_by_default(hostfw_common::DIR_INGRESS));
        assert!(m.denies_by_default(hostfw_common::DIR_EGRESS));
        let g = m.gen_meta(5, 100);
        assert_eq!(g.revision, 5);
        assert_eq!(g.rule_stats_base, 100);
        assert_eq!(
            g.denies_by_default(hostfw_common::DIR_EGRESS),
            m.denies_by_default(hostfw_common::DIR_EGRESS)
        );
    }

    fn state_with(v4: usize, v6: usize, policy: usize, rule: u32) -> MapState {
        let mut s = MapState::default();
        for i in 0..v4 {
            let net = Ipv4Net::new(std::net::Ipv4Addr::from(u32::try_from(i).unwrap_or(0)), 32);
            s.ident_v4.insert(net.expect("valid"), 1);
        }
        for i in 0..v6 {
            let net = Ipv6Net::new(std::net::Ipv6Addr::from(i as u128), 128);
            s.ident_v6.insert(net.expect("valid"), 1);
        }
        for i in 0..policy {
            let e = PolicyEntry::ports(1, 0, 6, u16::try_from(i).unwrap_or(0), 16);
            s.policy.insert(e, PolicyValue::new(ACTION_ALLOW, rule));
        }
        s
    }

    #[test]
    fn capacity_errors_name_the_map() {
        let cap = Capacity {
            ident_v4: 10,
            ident_v6: 10,
            policy: 20,
            rule_ids: 100,
        };
        let other = Counts {
            ident_v4: 4,
            ident_v6: 0,
            policy: 10,
        };
        assert_eq!(state_with(6, 10, 10, 99).check_fits(&other, &cap), Ok(()));
        assert_eq!(
            state_with(7, 0, 0, 1).check_fits(&other, &cap),
            Err(CapacityError::Map {
                map: names::MAP_IDENT_V4,
                needed: 7,
                available: 6,
                capacity: 10,
                used_by_other: 4,
            })
        );
        assert_eq!(
            state_with(0, 11, 0, 1).check_fits(&other, &cap),
            Err(CapacityError::Map {
                map: names::MAP_IDENT_V6,
                needed: 11,
                available: 10,
                capacity: 10,
                used_by_other: 0,
            })
        );
        let err = state_with(0, 0, 11, 1).check_fits(&other, &cap);
        assert_eq!(
            err,
            Err(CapacityError::Map {
                map: names::MAP_POLICY,
                needed: 11,
                available: 10,
                capacity: 20,
                used_by_other: 10,
            })
        );
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("HFW_POLICY") && msg.contains("11") && msg.contains("10"),
            "{msg}"
        );
        assert_eq!(
            state_with(0, 0, 1, 100).check_fits(&other, &cap),
            Err(CapacityError::RuleIds {
                map: names::MAP_RULE_STATS,
                max_rule_id: 100,
                rule_ids: 100,
            })
        );
        // The other generation using more than the capacity leaves nothing.
        let huge = Counts {
            ident_v4: 50,
            ..other
        };
        assert!(matches!(
            state_with(1, 0, 0, 1).check_fits(&huge, &cap),
            Err(CapacityError::Map { available: 0, .. })
        ));
    }

    #[test]
    fn max_rule_id_counts_rules_without_entries() {
        let rules = crate::ruleset::RuleSet {
            rules: vec![crate::ruleset::Rule {
                id: 42,
                direction: crate::ruleset::Direction::Ingress,
                action: crate::ruleset::Action::Allow,
                peers: crate::ruleset::Peers::Cidrs(vec![]),
                l4: vec![crate::ruleset::L4::Any],
            }],
            ..Default::default()
        };
        let state = compile(&rules).expect("compiles");
        assert!(state.policy.is_empty());
        assert_eq!(state.max_rule_id(), 42);
    }
}
