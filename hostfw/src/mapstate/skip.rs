//! Which lookups a generation lets the datapath leave out
//! ([`hostfw_common::config::skip`]): a bit is set only when the maps hold
//! no entry the lookup could find, so skipping never changes a verdict.

use hostfw_common::{
    config::skip::{
        ANY_EGRESS, ANY_INGRESS, HOSTS_V4, HOSTS_V6, IDENT_EGRESS, IDENT_INGRESS, PREFIXES_V4,
        PREFIXES_V6, TRIE_EGRESS, TRIE_INGRESS, of,
    },
    policy::IDENTITY_ANY,
};

use super::MapState;

/// The skip bits of `state`.
#[must_use]
pub fn bits(state: &MapState) -> u16 {
    let mut skip = HOSTS_V4
        | PREFIXES_V4
        | HOSTS_V6
        | PREFIXES_V6
        | ANY_INGRESS
        | ANY_EGRESS
        | IDENT_INGRESS
        | IDENT_EGRESS
        | TRIE_INGRESS
        | TRIE_EGRESS;
    for net in state.ident_v4.keys() {
        skip &= !if net.prefix_len() == 32 {
            HOSTS_V4
        } else {
            PREFIXES_V4
        };
    }
    for net in state.ident_v6.keys() {
        skip &= !if net.prefix_len() == 128 {
            HOSTS_V6
        } else {
            PREFIXES_V6
        };
    }
    for e in state.policy.keys() {
        let dir = e.direction;
        let mut clear = if e.identity == IDENTITY_ANY {
            of(dir, ANY_INGRESS, ANY_EGRESS)
        } else {
            of(dir, IDENT_INGRESS, IDENT_EGRESS)
        };
        if !e.is_exact() {
            clear |= of(dir, TRIE_INGRESS, TRIE_EGRESS);
        }
        skip &= !clear;
    }
    skip
}

#[cfg(test)]
mod tests {
    use hostfw_common::{DIR_EGRESS, DIR_INGRESS, policy::PolicyValue, proto};
    use ipnet::{Ipv4Net, Ipv6Net};

    use super::*;
    use crate::mapstate::PolicyEntry;

    fn allow() -> PolicyValue {
        PolicyValue::new(hostfw_common::policy::ACTION_ALLOW, 1)
    }

    #[test]
    fn an_empty_state_skips_everything() {
        let s = MapState::default();
        assert_eq!(bits(&s), 0x3ff);
    }

    #[test]
    fn each_kind_of_entry_clears_its_own_bit() {
        let mut s = MapState::default();
        s.ident_v4
            .insert("10.0.0.1/32".parse::<Ipv4Net>().expect("net"), 7);
        s.ident_v6
            .insert("fd77::/64".parse::<Ipv6Net>().expect("net"), 7);
        // Identity 7, ingress, TCP 443 exactly: the exact hash.
        s.policy.insert(
            PolicyEntry::ports(7, DIR_INGRESS, proto::TCP, 443, 16),
            allow(),
        );
        // Any peer, egress, a range: the trie.
        s.policy.insert(
            PolicyEntry::ports(IDENTITY_ANY, DIR_EGRESS, proto::UDP, 1024, 6),
            allow(),
        );
        let b = bits(&s);
        for (bit, want) in [
            (HOSTS_V4, false),
            (PREFIXES_V4, true),
            (HOSTS_V6, true),
            (PREFIXES_V6, false),
            (ANY_INGRESS, true),
            (ANY_EGRESS, false),
            (IDENT_INGRESS, false),
            (IDENT_EGRESS, true),
            (TRIE_INGRESS, true),
            (TRIE_EGRESS, false),
        ] {
            assert_eq!(b & bit != 0, want, "bit {bit:#x} of {b:#x}");
        }
    }

    #[test]
    fn an_entry_for_every_protocol_is_in_the_trie() {
        let mut s = MapState::default();
        s.policy
            .insert(PolicyEntry::any_proto(7, DIR_INGRESS), allow());
        assert_eq!(bits(&s) & TRIE_INGRESS, 0);
    }
}
