//! From aggregate entries to suggested rules: what each entry needs, peer
//! groups, and peer groups with the same needs sharing a rule.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    time::SystemTime,
};

use hostfw_common::proto;

use super::{
    Seen, SuggestContext,
    peers::{PeerKey, entity_of, world_nets},
};
use crate::{
    policy::Entity,
    refeval::{icmp6_always, icmp6_by_policy},
    ruleset::Direction,
};

/// What one aggregate entry needs from a rule.
#[derive(Clone, Debug)]
pub(super) enum Need {
    /// A port of a protocol.
    Port(u8, u16),
    /// Every port of a protocol.
    AllPorts(u8),
    /// An ICMP or ICMPv6 type.
    Icmp(u8, u8),
    /// Every protocol and port; why.
    L3(String),
    /// Nothing can allow it; why.
    Skip(String),
}

pub(super) fn proto_name(p: u8) -> String {
    match p {
        proto::TCP => "TCP".into(),
        proto::UDP => "UDP".into(),
        proto::SCTP => "SCTP".into(),
        proto::ICMP => "ICMP".into(),
        proto::ICMPV6 => "ICMPv6".into(),
        n => format!("protocol {n}"),
    }
}

pub(super) fn need(s: &Seen) -> Need {
    let icmp_type = s.port.and_then(|p| u8::try_from(p).ok());
    match (s.proto, s.port) {
        (proto::TCP | proto::UDP | proto::SCTP, Some(p)) if p != 0 => Need::Port(s.proto, p),
        (proto::TCP | proto::UDP | proto::SCTP, _) => Need::AllPorts(s.proto),
        (proto::ICMP, _) => match icmp_type {
            Some(t) => Need::Icmp(s.proto, t),
            None => Need::L3("ICMP of unknown type (fragments)".into()),
        },
        (proto::ICMPV6, _) => match icmp_type {
            Some(t) if icmp6_by_policy(t) => Need::Icmp(s.proto, t),
            Some(t) if icmp6_always(t) => Need::Skip(format!(
                "ICMPv6 type {t}, which a host always passes (reported in error)"
            )),
            Some(t) => Need::Skip(format!(
                "ICMPv6 type {t}, which a host always drops (only echo is decided by policy)"
            )),
            None => Need::L3("ICMPv6 of unknown type (fragments)".into()),
        },
        (p, _) => Need::L3(proto_name(p)),
    }
}

/// The L4 part of a rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct L4Set {
    /// Non-empty: a rule without L4 is needed, for these.
    pub(super) l3: BTreeSet<String>,
    /// Every port of these protocols.
    pub(super) all_ports: BTreeSet<u8>,
    /// (protocol, port).
    pub(super) ports: BTreeSet<(u8, u16)>,
    /// (protocol, type).
    pub(super) icmps: BTreeSet<(u8, u8)>,
}

impl L4Set {
    fn add(&mut self, need: Need) {
        match need {
            Need::Port(p, port) => {
                self.ports.insert((p, port));
            }
            Need::AllPorts(p) => {
                self.all_ports.insert(p);
            }
            Need::Icmp(p, t) => {
                self.icmps.insert((p, t));
            }
            Need::L3(why) => {
                self.l3.insert(why);
            }
            Need::Skip(_) => {}
        }
    }
}

/// Counts behind a rule, for its comment.
#[derive(Clone, Debug)]
pub(super) struct Tally {
    pub(super) count: u64,
    pub(super) first: SystemTime,
    pub(super) last: SystemTime,
    pub(super) addrs: BTreeSet<IpAddr>,
}

impl Tally {
    fn of(s: &Seen) -> Self {
        Self {
            count: s.count,
            first: s.first,
            last: s.last,
            addrs: BTreeSet::from([s.peer]),
        }
    }

    fn merge(&mut self, o: &Self) {
        self.count += o.count;
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
        self.addrs.extend(&o.addrs);
    }
}

/// One rule to write (two when it has both ports and ICMP types).
pub(super) struct Suggested {
    pub(super) direction: Direction,
    pub(super) peers: Vec<PeerKey>,
    pub(super) l4: L4Set,
    pub(super) tally: Tally,
}

/// The suggested rules, sorted by direction and peers.
pub(super) fn suggested_rules(kept: &[(&Seen, Need)], ctx: &SuggestContext) -> Vec<Suggested> {
    let mut world: BTreeMap<Direction, BTreeSet<IpAddr>> = BTreeMap::new();
    for (s, _) in kept {
        if entity_of(s.peer, ctx).is_none() {
            world.entry(s.direction).or_default().insert(s.peer);
        }
    }
    let nets: BTreeMap<Direction, BTreeMap<IpAddr, ipnet::IpNet>> = world
        .iter()
        .map(|(d, addrs)| (*d, world_nets(addrs, ctx)))
        .collect();

    let mut groups: BTreeMap<(Direction, PeerKey), (L4Set, Tally)> = BTreeMap::new();
    for (s, need) in kept {
        let key = match entity_of(s.peer, ctx) {
            Some(e) => PeerKey::Entity(e),
            None => PeerKey::Net(
                nets.get(&s.direction)
                    .and_then(|m| m.get(&s.peer))
                    .copied()
                    .unwrap_or_else(|| ipnet::IpNet::from(s.peer)),
            ),
        };
        let need = need.clone();
        match groups.get_mut(&(s.direction, key)) {
            Some((l4, tally)) => {
                l4.add(need);
                tally.merge(&Tally::of(s));
            }
            None => {
                let mut l4 = L4Set::default();
                l4.add(need);
                groups.insert((s.direction, key), (l4, Tally::of(s)));
            }
        }
    }

    // Peer groups of one kind with the same L4 share a rule.
    let mut merged: BTreeMap<(Direction, bool, L4Set), (Vec<PeerKey>, Tally)> = BTreeMap::new();
    for ((direction, key), (l4, tally)) in groups {
        let is_net = matches!(key, PeerKey::Net(_));
        match merged.get_mut(&(direction, is_net, l4.clone())) {
            Some((peers, t)) => {
                peers.push(key);
                t.merge(&tally);
            }
            None => {
                merged.insert((direction, is_net, l4), (vec![key], tally));
            }
        }
    }
    let mut out: Vec<Suggested> = merged
        .into_iter()
        .map(|((direction, _, l4), (mut peers, tally))| {
            // `cluster` holds the other entities.
            if peers.contains(&PeerKey::Entity(Entity::Cluster)) {
                peers.retain(|p| *p == PeerKey::Entity(Entity::Cluster));
            }
            (direction, l4, peers, tally)
        })
        .map(|(direction, l4, peers, tally)| Suggested {
            direction,
            peers,
            l4,
            tally,
        })
        .collect();
    out.sort_by(|a, b| (a.direction, &a.peers, &a.l4).cmp(&(b.direction, &b.peers, &b.l4)));
    out
}

/// Consecutive ports as (first, last) runs.
pub(super) fn runs(ports: impl IntoIterator<Item = u16>) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for p in ports {
        match out.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(p) => *last = p,
            _ => out.push((p, p)),
        }
    }
    out
}
