//! What to write to turn one generation's maps into another's.

use std::collections::BTreeMap;

use hostfw_common::policy::PolicyValue;
use ipnet::{Ipv4Net, Ipv6Net};

use super::{MapState, PolicyEntry};

/// The changes to one map: entries to insert or overwrite, keys to delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapChanges<K, V> {
    /// New or changed entries, in key order.
    pub upserts: Vec<(K, V)>,
    /// Keys that are gone, in key order.
    pub removals: Vec<K>,
}

impl<K, V> Default for MapChanges<K, V> {
    fn default() -> Self {
        Self {
            upserts: Vec::new(),
            removals: Vec::new(),
        }
    }
}

impl<K, V> MapChanges<K, V> {
    /// Nothing to do.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.removals.is_empty()
    }

    /// Number of writes and deletes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.upserts.len() + self.removals.len()
    }
}

impl<K: Ord + Copy, V: PartialEq + Copy> MapChanges<K, V> {
    /// The changes from `old` to `new`, by one ordered walk of both.
    fn between(old: &BTreeMap<K, V>, new: &BTreeMap<K, V>) -> Self {
        let mut out = Self::default();
        let mut o = old.iter().peekable();
        let mut n = new.iter().peekable();
        loop {
            match (o.peek(), n.peek()) {
                (None, None) => break,
                (Some(&(&k, _)), None) => {
                    out.removals.push(k);
                    o.next();
                }
                (None, Some(&(&k, &v))) => {
                    out.upserts.push((k, v));
                    n.next();
                }
                (Some(&(&ko, &vo)), Some(&(&kn, &vn))) => match ko.cmp(&kn) {
                    std::cmp::Ordering::Less => {
                        out.removals.push(ko);
                        o.next();
                    }
                    std::cmp::Ordering::Greater => {
                        out.upserts.push((kn, vn));
                        n.next();
                    }
                    std::cmp::Ordering::Equal => {
                        if vo != vn {
                            out.upserts.push((kn, vn));
                        }
                        o.next();
                        n.next();
                    }
                },
            }
        }
        out
    }

    /// Applies the changes to `map`.
    pub fn apply(&self, map: &mut BTreeMap<K, V>) {
        for k in &self.removals {
            map.remove(k);
        }
        for &(k, v) in &self.upserts {
            map.insert(k, v);
        }
    }
}

/// The changes that turn one generation's maps into another's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapDiff {
    /// Mode or default-deny bits differ (the generation's `GenMeta` must be
    /// written anyway whenever its revision changes).
    pub meta_changed: bool,
    /// `HFW_IDENT_V4`.
    pub ident_v4: MapChanges<Ipv4Net, u32>,
    /// `HFW_IDENT_V6`.
    pub ident_v6: MapChanges<Ipv6Net, u32>,
    /// `HFW_POLICY`.
    pub policy: MapChanges<PolicyEntry, PolicyValue>,
}

impl MapDiff {
    /// No map entry and no setting changes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.meta_changed
            && self.ident_v4.is_empty()
            && self.ident_v6.is_empty()
            && self.policy.is_empty()
    }

    /// Entries to write, over all maps.
    #[must_use]
    pub fn upserts(&self) -> usize {
        self.ident_v4.upserts.len() + self.ident_v6.upserts.len() + self.policy.upserts.len()
    }

    /// Entries to delete, over all maps.
    #[must_use]
    pub fn removals(&self) -> usize {
        self.ident_v4.removals.len() + self.ident_v6.removals.len() + self.policy.removals.len()
    }

    /// Applies the map changes and the settings to `state`.
    pub fn apply(&self, state: &mut MapState, new_meta: super::Meta) {
        if self.meta_changed {
            state.meta = new_meta;
        }
        self.ident_v4.apply(&mut state.ident_v4);
        self.ident_v6.apply(&mut state.ident_v6);
        self.policy.apply(&mut state.policy);
    }
}

/// The changes that turn `old` into `new`.
#[must_use]
pub fn diff(old: &MapState, new: &MapState) -> MapDiff {
    MapDiff {
        meta_changed: old.meta != new.meta,
        ident_v4: MapChanges::between(&old.ident_v4, &new.ident_v4),
        ident_v6: MapChanges::between(&old.ident_v6, &new.ident_v6),
        policy: MapChanges::between(&old.policy, &new.policy),
    }
}

#[cfg(test)]
mod tests {
    use hostfw_common::{
        DIR_INGRESS,
        policy::{ACTION_ALLOW, ACTION_DENY, IDENTITY_ANY},
        proto,
    };
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;
    use crate::{
        mapstate::compile,
        ruleset::{Action, Cidr, Direction, L4, Mode, Peers, Rule, RuleSet},
        testgen,
    };

    fn rules(extra: Option<Rule>) -> RuleSet {
        let mut rules = vec![
            Rule {
                id: 1,
                direction: Direction::Ingress,
                action: Action::Allow,
                peers: Peers::Cidrs(vec![Cidr {
                    net: "10.0.0.0/8".parse().expect("valid"),
                    except: vec![],
                }]),
                l4: vec![L4::Ports {
                    proto: proto::TCP,
                    first: 80,
                    last: 80,
                }],
            },
            Rule {
                id: 2,
                direction: Direction::Ingress,
                action: Action::Allow,
                peers: Peers::Any,
                l4: vec![L4::Ports {
                    proto: proto::TCP,
                    first: 22,
                    last: 22,
                }],
            },
        ];
        rules.extend(extra);
        RuleSet {
            mode: Mode::Enforce,
            rules,
            ..Default::default()
        }
    }

    #[test]
    fn identical_states_have_an_empty_diff() {
        let a = compile(&rules(None)).expect("compiles");
        let d = diff(&a, &a.clone());
        assert!(d.is_empty());
        assert_eq!((d.upserts(), d.removals()), (0, 0));
        assert!(diff(&MapState::default(), &MapState::default()).is_empty());
    }

    #[test]
    fn exact_changes() {
        let old = compile(&rules(None)).expect("compiles");
        // Rule 2 becomes a deny, a v6 rule appears, rule 1 gets a new net.
        let mut new_rules = rules(Some(Rule {
            id: 3,
            direction: Direction::Ingress,
            action: Action::Allow,
            peers: Peers::Cidrs(vec![Cidr {
                net: "fd00::/8".parse().expect("valid"),
                except: vec![],
            }]),
            l4: vec![L4::Any],
        }));
        new_rules.rules[1].action = Action::Deny;
        new_rules.rules[0].peers = Peers::Cidrs(vec![Cidr {
            net: "10.0.0.0/9".parse().expect("valid"),
            except: vec![],
        }]);
        let new = compile(&new_rules).expect("compiles");
        let d = diff(&old, &new);
        // Mode and defaults stay; the first IPv6 prefix and the first
        // any-protocol entry (in the trie) clear their skip bits.
        assert!(d.meta_changed);
        assert_eq!(
            (old.meta.mode, old.meta.default_deny),
            (new.meta.mode, new.meta.default_deny)
        );
        assert_eq!(
            old.meta.skip ^ new.meta.skip,
            hostfw_common::config::SKIP_IDENT_V6 | hostfw_common::config::SKIP_POLICY_TRIE
        );
        assert_eq!(
            d.ident_v4.upserts,
            vec![("10.0.0.0/9".parse().expect("valid"), 1)]
        );
        assert_eq!(
            d.ident_v4.removals,
            vec!["10.0.0.0/8".parse().expect("valid")]
        );
        assert_eq!(
            d.ident_v6.upserts,
            vec![("fd00::/8".parse().expect("valid"), 2)]
        );
        assert!(d.ident_v6.removals.is_empty());
        assert_eq!(
            d.policy.upserts,
            vec![
                (
                    PolicyEntry::any_proto(2, DIR_INGRESS),
                    PolicyValue::new(ACTION_ALLOW, 3)
                ),
                (
                    PolicyEntry::ports(IDENTITY_ANY, DIR_INGRESS, proto::TCP, 22, 16),
                    PolicyValue::new(ACTION_DENY, 2)
                ),
            ]
        );
        assert!(d.policy.removals.is_empty());
        assert_eq!((d.upserts(), d.removals()), (4, 1));
        assert!(!d.is_empty());

        let mut audit = new_rules.clone();
        audit.mode = Mode::Audit;
        let d = diff(&new, &compile(&audit).expect("compiles"));
        assert!(d.meta_changed);
        assert!(!d.is_empty());
        assert_eq!((d.upserts(), d.removals()), (0, 0));

        // The reverse diff removes what was added.
        let back = diff(&new, &old);
        assert_eq!(
            back.ident_v6.removals,
            vec!["fd00::/8".parse().expect("valid")]
        );
        assert_eq!(
            back.policy.removals,
            vec![PolicyEntry::any_proto(2, DIR_INGRESS)]
        );
    }

    #[test]
    fn applying_a_diff_gives_the_new_state() {
        let mut rng = StdRng::seed_from_u64(0xd1ff);
        let opts = testgen::RuleSetOptions::default();
        for _ in 0..500 {
            let a = compile(&testgen::random_ruleset(&mut rng, &opts)).expect("compiles");
            let b = compile(&testgen::random_ruleset(&mut rng, &opts)).expect("compiles");
            let d = diff(&a, &b);
            let mut applied = a.clone();
            d.apply(&mut applied, b.meta);
            assert_eq!(applied.meta, b.meta);
            assert_eq!(applied.ident_v4, b.ident_v4);
            assert_eq!(applied.ident_v6, b.ident_v6);
            assert_eq!(applied.policy, b.policy);
            // Every upsert is a real change, every removal a real key.
            for (k, v) in &d.policy.upserts {
                assert_ne!(a.policy.get(k), Some(v));
            }
            for k in &d.policy.removals {
                assert!(a.policy.contains_key(k) && !b.policy.contains_key(k));
            }
        }
    }
}
