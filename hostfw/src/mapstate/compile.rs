//! From a [`RuleSet`] to the map contents of one generation.

use std::collections::BTreeMap;

// A fast non-cryptographic hash: the keys are the policy's own prefixes
// and selectors, and hashing dominated the compile with SipHash.
use foldhash::HashMap;

use hostfw_common::{
    config::{DEFAULT_DENY_EGRESS, DEFAULT_DENY_INGRESS, MODE_AUDIT, MODE_ENFORCE},
    policy::{IDENTITY_ANY, IDENTITY_NONE, PolicyKey, PolicyValue},
    proto,
};
use ipnet::IpNet;

use super::{
    MapState, Meta, PolicyEntry,
    identities::{self, SelectorId},
    ports::port_prefixes,
};
use crate::ruleset::{Cidr, L4, Mode, Peers, Rule, RuleSet};

/// Why a [`RuleSet`] cannot be compiled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// Rule id 0 means "no rule" in the datapath.
    #[error("rule id 0 is reserved (\"no rule\")")]
    ZeroRuleId,
    /// Two rules share an id.
    #[error("rule id {0} is used by more than one rule")]
    DuplicateRuleId(u32),
    /// An except is not inside its net (or of another family).
    #[error("rule {rule}: except {except} is not inside {net}")]
    ExceptOutsideNet {
        /// Rule id.
        rule: u32,
        /// The CIDR's net.
        net: IpNet,
        /// The offending except.
        except: IpNet,
    },
    /// A port range whose first port is above its last.
    #[error("rule {rule}: port range {first}-{last} is empty")]
    EmptyPortRange {
        /// Rule id.
        rule: u32,
        /// First port.
        first: u16,
        /// Last port.
        last: u16,
    },
    /// Ports on a protocol without ports.
    #[error("rule {rule}: ports are only defined for TCP, UDP and SCTP, not protocol {proto}")]
    PortsProtocol {
        /// Rule id.
        rule: u32,
        /// The protocol.
        proto: u8,
    },
    /// An ICMP type on a protocol other than ICMP and ICMPv6.
    #[error("rule {rule}: ICMP types need protocol 1 (ICMP) or 58 (ICMPv6), not {proto}")]
    IcmpProtocol {
        /// Rule id.
        rule: u32,
        /// The protocol.
        proto: u8,
    },
    /// The selectors distinguish more address classes than identities exist.
    #[error("the policy needs more identities than the datapath can number")]
    TooManyIdentities,
}

/// Entries of one identity (the `identity` field is not yet set). Built
/// unordered, then [`settle`]d: sorted by entry, one value per entry.
type Group = Vec<(PolicyEntry, PolicyValue)>;

/// Compiles `rules` into the desired map contents of a generation.
///
/// # Errors
/// An invalid rule set: see [`CompileError`].
pub fn compile(rules: &RuleSet) -> Result<MapState, CompileError> {
    compile_after(rules, None)
}

/// [`compile`], keeping the identity numbers of `previous` (the policy in
/// force) where the same address classes remain: a change to a few rules
/// then changes few map entries instead of renumbering every identity.
///
/// # Errors
/// An invalid rule set: see [`CompileError`].
pub fn compile_after(
    rules: &RuleSet,
    previous: Option<&MapState>,
) -> Result<MapState, CompileError> {
    // In id order, so that the result does not depend on the rules' order.
    let mut sorted: Vec<&Rule> = rules.rules.iter().collect();
    sorted.sort_unstable_by_key(|r| r.id);
    if sorted.first().is_some_and(|r| r.id == 0) {
        return Err(CompileError::ZeroRuleId);
    }
    if let Some(w) = sorted.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(CompileError::DuplicateRuleId(w[0].id));
    }

    let mut selector_ids: HashMap<Vec<Cidr>, SelectorId> = HashMap::default();
    let mut selectors: Vec<Vec<Cidr>> = Vec::new();
    let mut templates: Vec<Group> = Vec::new();
    let mut any = Group::new();
    for rule in sorted {
        let cidrs = match &rule.peers {
            Peers::Any => None,
            Peers::Cidrs(cidrs) => Some(normalize(rule.id, cidrs)?),
        };
        let slots = slots(rule)?;
        if slots.is_empty() {
            continue;
        }
        let group = match cidrs {
            None => &mut any,
            // Matches no address.
            Some(cidrs) if cidrs.is_empty() => continue,
            Some(cidrs) => {
                let next =
                    u32::try_from(selectors.len()).map_err(|_| CompileError::TooManyIdentities)?;
                let sel = *selector_ids.entry(cidrs).or_insert_with_key(|cidrs| {
                    selectors.push(cidrs.clone());
                    templates.push(Group::new());
                    next
                });
                &mut templates[sel as usize]
            }
        };
        let value = PolicyValue::new(rule.action.as_u8(), rule.id);
        group.extend(slots.into_iter().map(|slot| (slot, value)));
    }
    for t in &mut templates {
        settle(t);
    }
    settle(&mut any);

    let previous = previous.map(|p| identities::Previous {
        ident_v4: &p.ident_v4,
        ident_v6: &p.ident_v6,
    });
    let ids =
        identities::assign(&selectors, previous).map_err(|_| CompileError::TooManyIdentities)?;
    let mut policy = BTreeMap::new();
    let mut merged = Group::new();
    for (identity, label) in (1..).zip(&ids.labels) {
        match label.as_slice() {
            [] => {}
            [one] => close(&templates[*one as usize], identity, &mut policy),
            many => {
                merged.clear();
                for &sel in many {
                    merged.extend_from_slice(&templates[sel as usize]);
                }
                settle(&mut merged);
                close(&merged, identity, &mut policy);
            }
        }
    }
    close(&any, IDENTITY_ANY, &mut policy);

    let mut default_deny = 0;
    if rules.default_deny_ingress {
        default_deny |= DEFAULT_DENY_INGRESS;
    }
    if rules.default_deny_egress {
        default_deny |= DEFAULT_DENY_EGRESS;
    }
    let mut state = MapState {
        meta: Meta {
            mode: match rules.mode {
                Mode::Audit => MODE_AUDIT,
                Mode::Enforce => MODE_ENFORCE,
            },
            default_deny,
            skip: 0,
        },
        ident_v4: ids.ident_v4,
        ident_v6: ids.ident_v6,
        policy,
        max_rule_id: rules.rules.iter().map(|r| r.id).max().unwrap_or(0),
    };
    state.meta.skip = state.skips();
    Ok(state)
}

/// Canonical form of a selector: host bits cleared, excepts checked, sorted
/// and deduplicated, CIDRs that match nothing dropped, CIDRs sorted and
/// deduplicated.
fn normalize(rule: u32, cidrs: &[Cidr]) -> Result<Vec<Cidr>, CompileError> {
    let mut out = Vec::with_capacity(cidrs.len());
    for c in cidrs {
        let net = c.net.trunc();
        let mut except = Vec::with_capacity(c.except.len());
        for e in &c.except {
            let e = e.trunc();
            if !net.contains(&e) {
                return Err(CompileError::ExceptOutsideNet {
                    rule,
                    net: c.net,
                    except: e,
                });
            }
            except.push(e);
        }
        if except.contains(&net) {
            continue;
        }
        except.sort_unstable();
        except.dedup();
        out.push(Cidr { net, except });
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The (identity-less) entries of a rule's L4 list.
fn slots(rule: &Rule) -> Result<Vec<PolicyEntry>, CompileError> {
    let dir = rule.direction.as_u8();
    let mut out = Vec::new();
    for l4 in &rule.l4 {
        match *l4 {
            L4::Any => out.push(PolicyEntry::any_proto(IDENTITY_NONE, dir)),
            L4::Ports { proto, first, last } => {
                if !matches!(proto, proto::TCP | proto::UDP | proto::SCTP) {
                    return Err(CompileError::PortsProtocol {
                        rule: rule.id,
                        proto,
                    });
                }
                if first > last {
                    return Err(CompileError::EmptyPortRange {
                        rule: rule.id,
                        first,
                        last,
                    });
                }
                out.extend(
                    port_prefixes(first, last).into_iter().map(|(port, len)| {
                        PolicyEntry::ports(IDENTITY_NONE, dir, proto, port, len)
                    }),
                );
            }
            L4::Icmp { proto, icmp_type } => {
                if !matches!(proto, proto::ICMP | proto::ICMPV6) {
                    return Err(CompileError::IcmpProtocol {
                        rule: rule.id,
                        proto,
                    });
                }
                let port = PolicyKey::icmp_port(icmp_type, 0);
                out.push(PolicyEntry::ports(IDENTITY_NONE, dir, proto, port, 8));
            }
        }
    }
    Ok(out)
}

/// Sorts a group by entry and combines the values of equal entries.
fn settle(group: &mut Group) {
    group.sort_unstable_by_key(|&(entry, _)| entry);
    group.dedup_by(|(later, v), (kept, kept_v)| {
        let same = later == kept;
        if same {
            *kept_v = kept_v.combine(*v);
        }
        same
    });
}

/// Writes a settled `group` under `identity`, each entry combined with every
/// entry of its direction that contains it: the trie returns only the
/// longest match, so that one must carry the decision of the broader ones.
fn close(
    group: &[(PolicyEntry, PolicyValue)],
    identity: u32,
    out: &mut BTreeMap<PolicyEntry, PolicyValue>,
) {
    let find = |e: &PolicyEntry| {
        group
            .binary_search_by_key(e, |&(entry, _)| entry)
            .ok()
            .map(|i| group[i].1)
    };
    for &(slot, mut value) in group {
        if let Some(p) = slot.proto {
            let broader = std::iter::once(PolicyEntry::any_proto(slot.identity, slot.direction))
                .chain((0..slot.port_prefix).map(|len| {
                    PolicyEntry::ports(slot.identity, slot.direction, p, slot.port, len)
                }));
            for b in broader {
                if let Some(v) = find(&b) {
                    value = value.combine(v);
                }
            }
        }
        out.insert(PolicyEntry { identity, ..slot }, value);
    }
}

#[cfg(test)]
mod tests {
    use hostfw_common::{
        DIR_EGRESS, DIR_INGRESS,
        policy::{ACTION_ALLOW, ACTION_DENY, ACTION_FAILSAFE},
    };
    use ipnet::Ipv4Net;

    use super::*;
    use crate::ruleset::{Action, Direction};

    fn net(s: &str) -> IpNet {
        s.parse().expect("valid net")
    }

    fn cidrs(nets: &[&str]) -> Peers {
        Peers::Cidrs(
            nets.iter()
                .map(|n| Cidr {
                    net: net(n),
                    except: vec![],
                })
                .collect(),
        )
    }

    fn rule(id: u32, action: Action, peers: Peers, l4: Vec<L4>) -> Rule {
        Rule::new(id, Direction::Ingress, action, peers, l4)
    }

    fn tcp(first: u16, last: u16) -> L4 {
        L4::Ports {
            proto: proto::TCP,
            first,
            last,
        }
    }

    fn set(rules: Vec<Rule>) -> RuleSet {
        RuleSet {
            mode: Mode::Enforce,
            default_deny_ingress: true,
            default_deny_egress: false,
            rules,
        }
    }

    fn compile_ok(rules: Vec<Rule>) -> MapState {
        compile(&set(rules)).expect("compiles")
    }

    #[test]
    fn errors() {
        let ok = rule(1, Action::Allow, Peers::Any, vec![L4::Any]);
        let bad = |r: Rule| compile(&set(vec![ok.clone(), r])).err();
        assert_eq!(
            bad(rule(0, Action::Allow, Peers::Any, vec![])),
            Some(CompileError::ZeroRuleId)
        );
        assert_eq!(
            bad(rule(1, Action::Deny, Peers::Any, vec![])),
            Some(CompileError::DuplicateRuleId(1))
        );
        let outside = Peers::Cidrs(vec![Cidr {
            net: net("10.0.0.0/8"),
            except: vec![net("11.0.0.0/16")],
        }]);
        assert_eq!(
            bad(rule(2, Action::Allow, outside, vec![L4::Any])),
            Some(CompileError::ExceptOutsideNet {
                rule: 2,
                net: net("10.0.0.0/8"),
                except: net("11.0.0.0/16"),
            })
        );
        let other_family = Peers::Cidrs(vec![Cidr {
            net: net("0.0.0.0/0"),
            except: vec![net("::/0")],
        }]);
        assert!(matches!(
            bad(rule(2, Action::Allow, other_family, vec![L4::Any])),
            Some(CompileError::ExceptOutsideNet { .. })
        ));
        let larger = Peers::Cidrs(vec![Cidr {
            net: net("10.1.0.0/16"),
            except: vec![net("10.0.0.0/8")],
        }]);
        assert!(matches!(
            bad(rule(2, Action::Allow, larger, vec![L4::Any])),
            Some(CompileError::ExceptOutsideNet { .. })
        ));
        assert_eq!(
            bad(rule(3, Action::Allow, Peers::Any, vec![tcp(10, 9)])),
            Some(CompileError::EmptyPortRange {
                rule: 3,
                first: 10,
                last: 9
            })
        );
        let icmp_ports = L4::Ports {
            proto: proto::ICMP,
            first: 0,
            last: 65535,
        };
        assert_eq!(
            bad(rule(4, Action::Allow, Peers::Any, vec![icmp_ports])),
            Some(CompileError::PortsProtocol {
                rule: 4,
                proto: proto::ICMP
            })
        );
        let tcp_icmp = L4::Icmp {
            proto: proto::TCP,
            icmp_type: 8,
        };
        assert_eq!(
            bad(rule(5, Action::Allow, Peers::Any, vec![tcp_icmp])),
            Some(CompileError::IcmpProtocol {
                rule: 5,
                proto: proto::TCP
            })
        );
        // Errors are reported even for rules that produce no entries.
        let empty_peers = rule(6, Action::Allow, Peers::Cidrs(vec![]), vec![tcp(2, 1)]);
        assert!(matches!(
            bad(empty_peers),
            Some(CompileError::EmptyPortRange { .. })
        ));
        let msg = CompileError::PortsProtocol { rule: 4, proto: 1 }.to_string();
        assert!(
            msg.contains("rule 4") && msg.contains("protocol 1"),
            "{msg}"
        );
    }

    #[test]
    fn meta_and_simple_entries() {
        let s = compile_ok(vec![rule(
            3,
            Action::Allow,
            cidrs(&["10.0.0.0/8"]),
            vec![
                tcp(80, 80),
                L4::Icmp {
                    proto: proto::ICMP,
                    icmp_type: 8,
                },
            ],
        )]);
        assert_eq!(s.meta.mode, MODE_ENFORCE);
        assert_eq!(s.meta.default_deny, DEFAULT_DENY_INGRESS);
        assert_eq!(s.ident_v4.len(), 1);
        assert_eq!(
            s.ident_v4
                .get(&"10.0.0.0/8".parse::<Ipv4Net>().expect("valid")),
            Some(&1)
        );
        let expect: BTreeMap<_, _> = [
            (
                PolicyEntry::ports(1, DIR_INGRESS, proto::TCP, 80, 16),
                PolicyValue::new(ACTION_ALLOW, 3),
            ),
            (
                PolicyEntry::ports(1, DIR_INGRESS, proto::ICMP, 8 << 8, 8),
                PolicyValue::new(ACTION_ALLOW, 3),
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(s.policy, expect);
        assert_eq!(s.max_rule_id(), 3);
    }

    #[test]
    fn full_port_range_is_one_entry() {
        let s = compile_ok(vec![rule(1, Action::Deny, Peers::Any, vec![tcp(0, 65535)])]);
        assert_eq!(s.policy.len(), 1);
        let (e, v) = s.policy.iter().next().expect("one entry");
        assert_eq!(
            *e,
            PolicyEntry::ports(IDENTITY_ANY, DIR_INGRESS, proto::TCP, 0, 0)
        );
        assert_eq!(*v, PolicyValue::new(ACTION_DENY, 1));
        assert!(s.ident_v4.is_empty() && s.ident_v6.is_empty());
    }

    #[test]
    fn broad_deny_beats_narrow_allow() {
        // Deny TCP 0-1023 from everyone, allow TCP 22 from everyone: the
        // allow entry is longer and must carry the deny.
        let s = compile_ok(vec![
            rule(1, Action::Allow, Peers::Any, vec![tcp(22, 22)]),
            rule(2, Action::Deny, Peers::Any, vec![tcp(0, 1023)]),
        ]);
        let e22 = PolicyEntry::ports(IDENTITY_ANY, DIR_INGRESS, proto::TCP, 22, 16);
        assert_eq!(s.policy.get(&e22), Some(&PolicyValue::new(ACTION_DENY, 2)));
        let e0 = PolicyEntry::ports(IDENTITY_ANY, DIR_INGRESS, proto::TCP, 0, 6);
        assert_eq!(s.policy.get(&e0), Some(&PolicyValue::new(ACTION_DENY, 2)));
    }

    #[test]
    fn l3_deny_beats_port_allow_and_failsafe_beats_deny() {
        let s = compile_ok(vec![
            rule(
                5,
                Action::Allow,
                cidrs(&["10.1.0.0/16"]),
                vec![tcp(443, 443)],
            ),
            rule(6, Action::Deny, cidrs(&["10.1.0.0/16"]), vec![L4::Any]),
            rule(
                7,
                Action::Failsafe,
                cidrs(&["10.1.0.0/16"]),
                vec![tcp(22, 22)],
            ),
        ]);
        let id = 1;
        assert_eq!(
            s.policy
                .get(&PolicyEntry::ports(id, DIR_INGRESS, proto::TCP, 443, 16)),
            Some(&PolicyValue::new(ACTION_DENY, 6))
        );
        assert_eq!(
            s.policy
                .get(&PolicyEntry::ports(id, DIR_INGRESS, proto::TCP, 22, 16)),
            Some(&PolicyValue::new(ACTION_FAILSAFE, 7))
        );
        assert_eq!(
            s.policy.get(&PolicyEntry::any_proto(id, DIR_INGRESS)),
            Some(&PolicyValue::new(ACTION_DENY, 6))
        );
        assert_eq!(s.policy.len(), 3);
    }

    #[test]
    fn equal_actions_lowest_id_wins() {
        let s = compile_ok(vec![
            rule(9, Action::Allow, Peers::Any, vec![tcp(80, 80)]),
            rule(4, Action::Allow, Peers::Any, vec![tcp(0, 65535)]),
            rule(2, Action::Allow, Peers::Any, vec![tcp(80, 80)]),
        ]);
        let e80 = PolicyEntry::ports(IDENTITY_ANY, DIR_INGRESS, proto::TCP, 80, 16);
        assert_eq!(s.policy.get(&e80), Some(&PolicyValue::new(ACTION_ALLOW, 2)));
        let s = compile_ok(vec![
            rule(9, Action::Allow, Peers::Any, vec![tcp(80, 80)]),
            rule(4, Action::Allow, Peers::Any, vec![tcp(0, 65535)]),
        ]);
        assert_eq!(s.policy.get(&e80), Some(&PolicyValue::new(ACTION_ALLOW, 4)));
    }

    #[test]
    fn any_and_cidr_peers_are_separate_groups() {
        // The specific identity and IDENTITY_ANY are looked up separately;
        // the kernel combines them, so precedence is not copied across.
        let s = compile_ok(vec![
            rule(1, Action::Deny, Peers::Any, vec![L4::Any]),
            rule(2, Action::Allow, cidrs(&["10.0.0.1/32"]), vec![tcp(80, 80)]),
        ]);
        assert_eq!(
            s.policy
                .get(&PolicyEntry::any_proto(IDENTITY_ANY, DIR_INGRESS)),
            Some(&PolicyValue::new(ACTION_DENY, 1))
        );
        assert_eq!(
            s.policy
                .get(&PolicyEntry::ports(1, DIR_INGRESS, proto::TCP, 80, 16)),
            Some(&PolicyValue::new(ACTION_ALLOW, 2))
        );
        assert_eq!(s.policy.len(), 2);
    }

    #[test]
    fn overlapping_selectors_merge_into_one_identity() {
        let mut egress = rule(2, Action::Deny, cidrs(&["10.0.0.0/8"]), vec![tcp(0, 65535)]);
        egress.direction = Direction::Egress;
        let s = compile_ok(vec![
            rule(1, Action::Allow, cidrs(&["10.1.0.0/16"]), vec![tcp(80, 80)]),
            egress,
            rule(3, Action::Deny, cidrs(&["10.0.0.0/8"]), vec![tcp(0, 65535)]),
        ]);
        // 10/8 -> {deny sel}, 10.1/16 -> {deny sel, allow sel}.
        let inner = *s
            .ident_v4
            .get(&"10.1.0.0/16".parse::<Ipv4Net>().expect("valid"))
            .expect("present");
        let outer = *s
            .ident_v4
            .get(&"10.0.0.0/8".parse::<Ipv4Net>().expect("valid"))
            .expect("present");
        assert_ne!(inner, outer);
        assert_eq!(
            s.policy
                .get(&PolicyEntry::ports(inner, DIR_INGRESS, proto::TCP, 80, 16)),
            Some(&PolicyValue::new(ACTION_DENY, 3))
        );
        assert_eq!(
            s.policy
                .get(&PolicyEntry::ports(inner, DIR_EGRESS, proto::TCP, 0, 0)),
            Some(&PolicyValue::new(ACTION_DENY, 2))
        );
        assert_eq!(
            s.policy
                .get(&PolicyEntry::ports(outer, DIR_INGRESS, proto::TCP, 80, 16)),
            None
        );
    }

    #[test]
    fn rules_that_match_nothing_produce_nothing() {
        let s = compile_ok(vec![
            rule(1, Action::Deny, Peers::Cidrs(vec![]), vec![L4::Any]),
            rule(2, Action::Deny, cidrs(&["10.0.0.0/8"]), vec![]),
            rule(
                3,
                Action::Deny,
                Peers::Cidrs(vec![Cidr {
                    net: net("10.0.0.0/8"),
                    except: vec![net("10.0.0.0/8")],
                }]),
                vec![L4::Any],
            ),
        ]);
        assert!(s.policy.is_empty());
        assert!(s.ident_v4.is_empty());
        assert_eq!(s.max_rule_id(), 3);
    }

    #[test]
    fn rule_order_does_not_matter() {
        let rules = vec![
            rule(
                1,
                Action::Allow,
                cidrs(&["10.0.0.0/8", "fd00::/8"]),
                vec![tcp(1, 1000)],
            ),
            rule(2, Action::Deny, cidrs(&["10.1.0.0/16"]), vec![L4::Any]),
            rule(
                3,
                Action::Allow,
                cidrs(&["10.1.2.0/24"]),
                vec![tcp(443, 443)],
            ),
            rule(4, Action::Failsafe, cidrs(&["fd00::/8"]), vec![tcp(22, 22)]),
        ];
        let a = compile_ok(rules.clone());
        let mut reversed = rules;
        reversed.reverse();
        assert_eq!(compile_ok(reversed), a);
    }

    #[test]
    fn host_bits_are_ignored() {
        let a = compile_ok(vec![rule(
            1,
            Action::Allow,
            cidrs(&["10.1.2.3/8"]),
            vec![L4::Any],
        )]);
        let b = compile_ok(vec![rule(
            1,
            Action::Allow,
            cidrs(&["10.0.0.0/8"]),
            vec![L4::Any],
        )]);
        assert_eq!(a, b);
    }

    #[test]
    fn keys_are_canonical() {
        let s = compile_ok(vec![
            rule(1, Action::Allow, Peers::Any, vec![tcp(3, 70), L4::Any]),
            rule(
                2,
                Action::Allow,
                Peers::Any,
                vec![L4::Icmp {
                    proto: proto::ICMPV6,
                    icmp_type: 128,
                }],
            ),
        ]);
        for e in s.policy.keys() {
            let k = e.key(1);
            let port = u16::from_be(k.port_be);
            assert_eq!(port & !super::super::port_mask(e.port_prefix), 0, "{e:?}");
            if e.proto.is_none() {
                assert_eq!((k.proto, k.port_be, e.port_prefix), (0, 0, 0));
            }
        }
    }
}
