//! A model of the datapath's policy decision over [`MapState`]s.
//!
//! The maps are modelled as LPM tries over the keys' bytes exactly as the
//! kernel stores them (`#[repr(C)]` layout, prefix lengths from
//! [`PolicyEntry::prefix_len`] and [`super::ident_key_v4`]), and the
//! lookups are those of `hostfw-ebpf/src/decide.rs`: one identity lookup,
//! the policy lookups for the identity and for `IDENTITY_ANY` (full key, or
//! up to the protocol when the port is unknown), `PolicyValue::combine`, the
//! direction's default. The ICMPv6 classes of `hostfw-ebpf/src/parse.rs`
//! and the audit mode of `verdict.rs` complete the verdict. Connection
//! tracking is not modelled: every packet is the first of its flow.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
};

use hostfw_common::{
    event::Reason,
    policy::{
        ACTION_ALLOW, ACTION_DENY, ACTION_FAILSAFE, IDENT_PREFIX_GEN, IDENTITY_ANY, IDENTITY_NONE,
        IdentKeyV4, IdentKeyV6, POLICY_PREFIX_FULL, POLICY_PREFIX_PORT_ANY, PolicyKey, PolicyValue,
    },
    proto,
};

use super::{MapState, Meta, ident_key_v4, ident_key_v6};
use crate::refeval::{Outcome, Packet, Verdict};

/// An LPM trie as the kernel's `BPF_MAP_TYPE_LPM_TRIE` behaves: entries are
/// (prefix length, key bytes); bits beyond the prefix are ignored; a lookup
/// with prefix length `n` finds the longest entry of length `<= n` whose
/// prefix matches.
#[derive(Clone, Debug)]
pub struct Lpm<V> {
    entries: HashMap<(u32, [u8; KEY_MAX]), V>,
    lengths: BTreeSet<u32>,
}

impl<V> Default for Lpm<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            lengths: BTreeSet::new(),
        }
    }
}

/// Longest key the model handles (an [`IdentKeyV6`]).
const KEY_MAX: usize = 20;

/// `data` (at most [`KEY_MAX`] bytes, zero-padded) with every bit from
/// `prefix_len` on cleared.
fn masked(data: &[u8], prefix_len: u32) -> [u8; KEY_MAX] {
    let mut out = [0u8; KEY_MAX];
    let mut left = prefix_len;
    for (o, &b) in out.iter_mut().zip(data) {
        *o = match left {
            0 => break,
            1..=7 => b & (0xffu8 << (8 - left)),
            _ => b,
        };
        left = left.saturating_sub(8);
    }
    out
}

impl<V: Clone> Lpm<V> {
    /// An empty trie.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts or replaces the entry of `prefix_len` bits of `data` (at
    /// most 20 bytes).
    pub fn insert(&mut self, prefix_len: u32, data: &[u8], value: V) {
        self.lengths.insert(prefix_len);
        self.entries
            .insert((prefix_len, masked(data, prefix_len)), value);
    }

    /// The longest entry of at most `prefix_len` bits that matches `data`.
    #[must_use]
    pub fn lookup(&self, prefix_len: u32, data: &[u8]) -> Option<V> {
        self.lengths
            .range(..=prefix_len)
            .rev()
            .find_map(|&len| self.entries.get(&(len, masked(data, len))).cloned())
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The in-memory bytes of an [`IdentKeyV4`].
#[must_use]
pub fn ident_v4_bytes(k: &IdentKeyV4) -> Vec<u8> {
    let mut v = k.generation.to_ne_bytes().to_vec();
    v.extend_from_slice(&k.addr);
    v
}

/// The in-memory bytes of an [`IdentKeyV6`].
#[must_use]
pub fn ident_v6_bytes(k: &IdentKeyV6) -> Vec<u8> {
    let mut v = k.generation.to_ne_bytes().to_vec();
    v.extend_from_slice(&k.addr);
    v
}

/// The in-memory bytes of a [`PolicyKey`].
#[must_use]
pub fn policy_key_bytes(k: &PolicyKey) -> Vec<u8> {
    let mut v = k.generation.to_ne_bytes().to_vec();
    v.extend_from_slice(&k.identity.to_ne_bytes());
    v.push(k.direction);
    v.push(k.proto);
    v.extend_from_slice(&k.port_be.to_ne_bytes());
    v
}

/// The three policy tries and the settings of every loaded generation.
#[derive(Clone, Debug, Default)]
pub struct Simulator {
    meta: BTreeMap<u32, Meta>,
    ident_v4: Lpm<u32>,
    ident_v6: Lpm<u32>,
    policy: Lpm<PolicyValue>,
}

impl Simulator {
    /// Maps holding `state` as generation 0.
    #[must_use]
    pub fn of(state: &MapState) -> Self {
        let mut s = Self::default();
        s.load(0, state);
        s
    }

    /// Writes `state` into the maps as `generation` (which must not have
    /// been loaded before: stale entries are not removed).
    pub fn load(&mut self, generation: u32, state: &MapState) {
        self.meta.insert(generation, state.meta);
        for (net, &id) in &state.ident_v4 {
            let (len, key) = ident_key_v4(generation, net);
            self.ident_v4.insert(len, &ident_v4_bytes(&key), id);
        }
        for (net, &id) in &state.ident_v6 {
            let (len, key) = ident_key_v6(generation, net);
            self.ident_v6.insert(len, &ident_v6_bytes(&key), id);
        }
        for (entry, &value) in &state.policy {
            self.policy.insert(
                entry.prefix_len(),
                &policy_key_bytes(&entry.key(generation)),
                value,
            );
        }
    }

    /// Entries of the policy trie, over all generations.
    #[must_use]
    pub fn policy_len(&self) -> usize {
        self.policy.len()
    }

    /// The identity of `remote` in `generation`.
    #[must_use]
    pub fn identity(&self, generation: u32, remote: IpAddr) -> u32 {
        match remote {
            IpAddr::V4(a) => {
                let key = IdentKeyV4 {
                    generation,
                    addr: a.octets(),
                };
                self.ident_v4
                    .lookup(IDENT_PREFIX_GEN + 32, &ident_v4_bytes(&key))
            }
            IpAddr::V6(a) => {
                let key = IdentKeyV6 {
                    generation,
                    addr: a.octets(),
                };
                self.ident_v6
                    .lookup(IDENT_PREFIX_GEN + 128, &ident_v6_bytes(&key))
            }
        }
        .unwrap_or(IDENTITY_NONE)
    }

    fn lookup(
        &self,
        generation: u32,
        identity: u32,
        pkt: &Packet,
        port: Option<u16>,
    ) -> Option<PolicyValue> {
        let (prefix, port) = match port {
            Some(p) => (POLICY_PREFIX_FULL, p),
            None => (POLICY_PREFIX_PORT_ANY, 0),
        };
        let key = PolicyKey::new(generation, identity, pkt.direction.as_u8(), pkt.proto, port);
        self.policy.lookup(prefix, &policy_key_bytes(&key))
    }

    /// The datapath's verdict on `pkt` as the first packet of a flow in
    /// `generation`. A generation that was never loaded passes everything
    /// (reported here as `NoPolicy`).
    #[must_use]
    pub fn evaluate(&self, generation: u32, pkt: &Packet) -> Outcome {
        let Some(meta) = self.meta.get(&generation).copied() else {
            return Outcome {
                verdict: Verdict::Allowed,
                rule_id: 0,
                reason: Reason::NoPolicy,
            };
        };
        let deny = |rule_id, reason| Outcome {
            verdict: if meta.enforces() {
                Verdict::Denied
            } else {
                Verdict::Audit
            },
            rule_id,
            reason,
        };
        let allow = |rule_id, reason| Outcome {
            verdict: Verdict::Allowed,
            rule_id,
            reason,
        };
        let port = pkt.policy_port();

        // parse.rs: icmp6_kind (only when the header was seen).
        if pkt.proto == proto::ICMPV6
            && let Some(p) = port
        {
            match p >> 8 {
                // Errors: pass when related to a flow, and pass anyway.
                1..=4 => return allow(0, Reason::Icmp6Always),
                128 | 129 => {}
                130..=136 | 141..=143 | 148 | 149 | 151..=153 => {
                    return allow(0, Reason::Icmp6Always);
                }
                _ => return deny(0, Reason::Icmp6Forbidden),
            }
        }

        // decide.rs
        let identity = self.identity(generation, pkt.remote);
        let any = self.lookup(generation, IDENTITY_ANY, pkt, port);
        let specific = if identity == IDENTITY_NONE {
            None
        } else {
            self.lookup(generation, identity, pkt, port)
        };
        let best = match (specific, any) {
            (Some(a), Some(b)) => Some(a.combine(b)),
            (a, b) => a.or(b),
        };
        match best {
            Some(v) if v.action == ACTION_FAILSAFE => allow(v.rule_id, Reason::Failsafe),
            Some(v) if v.action == ACTION_DENY => deny(v.rule_id, Reason::RuleDeny),
            Some(v) if v.action == ACTION_ALLOW => allow(v.rule_id, Reason::RuleAllow),
            _ if meta.denies_by_default(pkt.direction.as_u8()) => deny(0, Reason::DefaultDeny),
            _ => allow(0, Reason::NoPolicy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lpm_semantics() {
        let mut t = Lpm::new();
        t.insert(8, &[10, 0, 0, 0], 1);
        t.insert(16, &[10, 1, 99, 99], 2);
        t.insert(0, &[0, 0, 0, 0], 3);
        assert_eq!(t.lookup(32, &[10, 1, 2, 3]), Some(2));
        assert_eq!(t.lookup(32, &[10, 2, 2, 3]), Some(1));
        assert_eq!(t.lookup(32, &[11, 2, 2, 3]), Some(3));
        // A shorter lookup prefix only sees shorter entries.
        assert_eq!(t.lookup(12, &[10, 1, 2, 3]), Some(1));
        // Bits beyond the prefix are ignored: same entry, replaced.
        t.insert(16, &[10, 1, 0, 0], 4);
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(32, &[10, 1, 2, 3]), Some(4));
        t.insert(3, &[0b1110_0000, 0, 0, 0], 5);
        assert_eq!(t.lookup(32, &[0b1111_1111, 0, 0, 0]), Some(5));
        assert_eq!(t.lookup(32, &[0b1100_0000, 0, 0, 0]), Some(3));
    }

    #[test]
    fn key_bytes_match_the_repr_c_layout() {
        let k = PolicyKey::new(1, 0x0102_0304, 1, 6, 0x1f90);
        let b = policy_key_bytes(&k);
        assert_eq!(b.len(), core::mem::size_of::<PolicyKey>());
        // Port in network order at the end: a port prefix is a bit prefix.
        assert_eq!(&b[10..], &[0x1f, 0x90]);
        assert_eq!(b[8], 1);
        assert_eq!(b[9], 6);
        let v4 = IdentKeyV4 {
            generation: 1,
            addr: [10, 0, 0, 1],
        };
        assert_eq!(
            ident_v4_bytes(&v4).len(),
            core::mem::size_of::<IdentKeyV4>()
        );
        let v6 = IdentKeyV6::default();
        assert_eq!(
            ident_v6_bytes(&v6).len(),
            core::mem::size_of::<IdentKeyV6>()
        );
    }
}
