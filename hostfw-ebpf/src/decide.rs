//! Policy decision for a new flow: one identity lookup, then at most two
//! policy lookups. Never a loop over rules.

use aya_ebpf::maps::lpm_trie::Key;
use hostfw_common::{
    FAMILY_V4,
    config::{
        GenMeta, SKIP_HOSTS_V4, SKIP_HOSTS_V6, SKIP_IDENT_V4, SKIP_IDENT_V6, SKIP_POLICY_EXACT,
        SKIP_POLICY_TRIE,
    },
    event::Reason,
    policy::{
        ACTION_ALLOW, ACTION_DENY, ACTION_FAILSAFE, IDENT_PREFIX_GEN, IDENTITY_ANY, IDENTITY_NONE,
        IdentKeyV4, IdentKeyV6, POLICY_PREFIX_FULL, POLICY_PREFIX_PORT_ANY, PolicyKey, PolicyValue,
        exact_port_mask,
    },
};

use crate::maps::{HOSTS_V4, HOSTS_V6, IDENT_V4, IDENT_V6, POLICY, POLICY_EXACT};

/// The outcome of asking the policy about a flow. Eight bytes, so that it
/// is returned in a register.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Decision {
    pub rule_id: u32,
    pub allowed: bool,
    pub reason: Reason,
}

/// The question: a flow in `direction` with `remote` as the peer.
pub struct Query<'a> {
    pub generation: u32,
    pub meta: &'a GenMeta,
    pub direction: u8,
    pub family: u8,
    pub remote: &'a [u8; 16],
    pub proto: u8,
    pub port: u16,
    pub port_known: bool,
}

// Not inlined: a call frame of its own keeps the programs within the
// 512-byte BPF stack.
// Tables the generation left empty (`meta.skips`) are not probed.
#[inline(never)]
fn identity(generation: u32, meta: &GenMeta, family: u8, remote: &[u8; 16]) -> u32 {
    // Host addresses (/32, /128) are in a hash: a hit is the longest match.
    if family == FAMILY_V4 {
        let k = IdentKeyV4 {
            generation,
            addr: [remote[0], remote[1], remote[2], remote[3]],
        };
        if !meta.skips(SKIP_HOSTS_V4) {
            // SAFETY: the value is copied out at once.
            if let Some(id) = unsafe { HOSTS_V4.get(&k) } {
                return *id;
            }
        }
        if meta.skips(SKIP_IDENT_V4) {
            return IDENTITY_NONE;
        }
        IDENT_V4
            .get(&Key::new(IDENT_PREFIX_GEN + 32, k))
            .copied()
            .unwrap_or(IDENTITY_NONE)
    } else {
        let k = IdentKeyV6 {
            generation,
            addr: *remote,
        };
        if !meta.skips(SKIP_HOSTS_V6) {
            // SAFETY: as above.
            if let Some(id) = unsafe { HOSTS_V6.get(&k) } {
                return *id;
            }
        }
        if meta.skips(SKIP_IDENT_V6) {
            return IDENTITY_NONE;
        }
        IDENT_V6
            .get(&Key::new(IDENT_PREFIX_GEN + 128, k))
            .copied()
            .unwrap_or(IDENTITY_NONE)
    }
}

/// The longest entry matching the query for `identity`; `action == 0`
/// when none matches. Not inlined, for the stack (see [`identity`]).
#[inline(never)]
fn lookup(q: &Query<'_>, identity: u32) -> PolicyValue {
    lookup_entry(q, identity).unwrap_or_default()
}

#[inline(always)]
fn lookup_entry(q: &Query<'_>, identity: u32) -> Option<PolicyValue> {
    let trie = !q.meta.skips(SKIP_POLICY_TRIE);
    if !q.port_known {
        if !trie {
            return None;
        }
        let key = PolicyKey::new(q.generation, identity, q.direction, q.proto, q.port);
        return POLICY.get(&Key::new(POLICY_PREFIX_PORT_ANY, key)).copied();
    }
    // The longest possible entries are in a hash; the trie holds the rest.
    let exact = PolicyKey::new(
        q.generation,
        identity,
        q.direction,
        q.proto,
        q.port & exact_port_mask(q.proto),
    );
    if !q.meta.skips(SKIP_POLICY_EXACT) {
        // SAFETY: the value is copied out at once.
        if let Some(v) = unsafe { POLICY_EXACT.get(&exact) } {
            return Some(*v);
        }
    }
    if !trie {
        return None;
    }
    let key = PolicyKey::new(q.generation, identity, q.direction, q.proto, q.port);
    POLICY.get(&Key::new(POLICY_PREFIX_FULL, key)).copied()
}

/// Decides a new flow: failsafe beats deny beats allow; with no match the
/// direction's default decides. A call, for the stack (see [`identity`]).
#[inline(never)]
pub fn decide(q: &Query<'_>) -> Decision {
    let id = identity(q.generation, q.meta, q.family, q.remote);
    let any = lookup(q, IDENTITY_ANY);
    // `combine` picks the higher action, so "no entry" (action 0) loses.
    let best = if id == IDENTITY_NONE {
        any
    } else {
        lookup(q, id).combine(any)
    };
    let best = (best.action != 0).then_some(best);
    match best {
        Some(v) if v.action == ACTION_FAILSAFE => Decision {
            allowed: true,
            rule_id: v.rule_id,
            reason: Reason::Failsafe,
        },
        Some(v) if v.action == ACTION_DENY => Decision {
            allowed: false,
            rule_id: v.rule_id,
            reason: Reason::RuleDeny,
        },
        Some(v) if v.action == ACTION_ALLOW => Decision {
            allowed: true,
            rule_id: v.rule_id,
            reason: Reason::RuleAllow,
        },
        _ => by_default(q.meta, q.direction),
    }
}

/// The verdict when no rule matches.
#[inline(always)]
pub fn by_default(meta: &GenMeta, direction: u8) -> Decision {
    if meta.denies_by_default(direction) {
        Decision {
            allowed: false,
            rule_id: 0,
            reason: Reason::DefaultDeny,
        }
    } else {
        Decision {
            allowed: true,
            rule_id: 0,
            reason: Reason::NoPolicy,
        }
    }
}
