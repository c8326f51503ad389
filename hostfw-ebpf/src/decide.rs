//! Policy decision for a new flow: one identity lookup, then at most two
//! policy lookups. Never a loop over rules.

use aya_ebpf::maps::lpm_trie::Key;
use hostfw_common::{
    FAMILY_V4,
    config::GenMeta,
    event::Reason,
    policy::{
        ACTION_ALLOW, ACTION_DENY, ACTION_FAILSAFE, IDENT_PREFIX_GEN, IDENTITY_ANY, IDENTITY_NONE,
        IdentKeyV4, IdentKeyV6, POLICY_PREFIX_FULL, POLICY_PREFIX_PORT_ANY, PolicyKey, PolicyValue,
    },
};

use crate::maps::{IDENT_V4, IDENT_V6, POLICY};

/// The outcome of asking the policy about a flow.
#[derive(Clone, Copy)]
pub struct Decision {
    pub allowed: bool,
    pub rule_id: u32,
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

#[inline(always)]
fn identity(generation: u32, family: u8, remote: &[u8; 16]) -> u32 {
    if family == FAMILY_V4 {
        let key = Key::new(
            IDENT_PREFIX_GEN + 32,
            IdentKeyV4 {
                generation,
                addr: [remote[0], remote[1], remote[2], remote[3]],
            },
        );
        IDENT_V4.get(&key).copied().unwrap_or(IDENTITY_NONE)
    } else {
        let key = Key::new(
            IDENT_PREFIX_GEN + 128,
            IdentKeyV6 {
                generation,
                addr: *remote,
            },
        );
        IDENT_V6.get(&key).copied().unwrap_or(IDENTITY_NONE)
    }
}

#[inline(always)]
fn lookup(q: &Query<'_>, identity: u32) -> Option<PolicyValue> {
    let prefix = if q.port_known {
        POLICY_PREFIX_FULL
    } else {
        POLICY_PREFIX_PORT_ANY
    };
    let key = Key::new(
        prefix,
        PolicyKey::new(q.generation, identity, q.direction, q.proto, q.port),
    );
    POLICY.get(&key).copied()
}

/// Decides a new flow: failsafe beats deny beats allow; with no match the
/// direction's default decides.
#[inline(always)]
pub fn decide(q: &Query<'_>) -> Decision {
    let id = identity(q.generation, q.family, q.remote);
    let any = lookup(q, IDENTITY_ANY);
    let specific = if id == IDENTITY_NONE {
        None
    } else {
        lookup(q, id)
    };
    let best = match (specific, any) {
        (Some(a), Some(b)) => Some(a.combine(b)),
        (a, b) => a.or(b),
    };
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
