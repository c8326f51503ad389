//! What was denied since the daemon started, by peer and port: the input
//! of `hostfw suggest`. Bounded, and independent of the ring of recent
//! flows.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    time::SystemTime,
};

use hostfw_common::proto;

use super::Flow;
use crate::ruleset::Direction;

/// Denied (or audited) flows of one direction, peer, protocol and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Ingress or egress.
    pub direction: Direction,
    /// The peer: source of ingress, destination of egress.
    pub peer: IpAddr,
    /// IP protocol.
    pub proto: u8,
    /// Destination port (TCP, UDP, SCTP) or type (ICMP, ICMPv6); `None`
    /// when unknown (a fragment) or when the protocol has neither.
    pub port: Option<u16>,
    /// Flows counted since the daemon started.
    pub count: u64,
    /// First seen.
    pub first: SystemTime,
    /// Last seen.
    pub last: SystemTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    direction: Direction,
    peer: IpAddr,
    proto: u8,
    port: Option<u16>,
}

#[derive(Clone, Copy, Debug)]
struct Stats {
    count: u64,
    first: SystemTime,
    last: SystemTime,
}

/// The aggregate: at most `limit` (direction, peer, protocol, port)
/// entries; once full, flows of new entries are only counted.
#[derive(Clone, Debug)]
pub struct Aggregate {
    entries: HashMap<Key, Stats>,
    limit: usize,
    overflowed: u64,
    left_out: BTreeMap<&'static str, u64>,
}

/// Reasons whose flows no allow rule would let through, left out.
const LEFT_OUT: [(&str, &str); 3] = [
    (
        "deny-rule",
        "denied by a deny rule (an allow rule cannot override it)",
    ),
    ("malformed", "malformed packets"),
    (
        "icmpv6-always-denied",
        "ICMPv6 types a host always drops (no policy can allow them)",
    ),
];

impl Default for Aggregate {
    fn default() -> Self {
        Self::new(Self::DEFAULT_LIMIT)
    }
}

impl Aggregate {
    /// Default bound on the entries.
    pub const DEFAULT_LIMIT: usize = 4096;

    /// An empty aggregate of at most `limit` entries.
    #[must_use]
    pub fn new(limit: usize) -> Self {
        Self {
            entries: HashMap::new(),
            limit,
            overflowed: 0,
            left_out: BTreeMap::new(),
        }
    }

    /// Counts `flow` if it was denied or audited. Flows that no allow rule
    /// would pass (denied by a deny rule, malformed, ICMPv6 types always
    /// dropped) are left out, and counted by reason.
    pub fn add(&mut self, flow: &Flow) {
        if !flow.is_drop_or_audit() {
            return;
        }
        if let Some(&(reason, _)) = LEFT_OUT.iter().find(|(r, _)| *r == flow.reason) {
            *self.left_out.entry(reason).or_default() += 1;
            return;
        }
        let (Some(direction), Some(proto)) = (flow.direction(), flow.proto_number()) else {
            *self.left_out.entry("unknown").or_default() += 1;
            return;
        };
        let port = match proto {
            proto::TCP | proto::UDP | proto::SCTP => flow.dport,
            proto::ICMP | proto::ICMPV6 => flow.icmp.map(|i| u16::from(i.icmp_type)),
            _ => None,
        };
        let key = Key {
            direction,
            peer: flow.peer(),
            proto,
            port,
        };
        let t = flow.time.0;
        if let Some(s) = self.entries.get_mut(&key) {
            s.count += 1;
            s.first = s.first.min(t);
            s.last = s.last.max(t);
        } else if self.entries.len() < self.limit {
            self.entries.insert(
                key,
                Stats {
                    count: 1,
                    first: t,
                    last: t,
                },
            );
        } else {
            self.overflowed += 1;
        }
    }

    /// The entries last seen at or after `since` (all with `None`), sorted
    /// by direction, peer, protocol and port.
    #[must_use]
    pub fn seen(&self, since: Option<SystemTime>) -> Vec<Seen> {
        let mut out: Vec<(Key, Stats)> = self
            .entries
            .iter()
            .filter(|(_, s)| since.is_none_or(|t| s.last >= t))
            .map(|(k, s)| (*k, *s))
            .collect();
        out.sort_by_key(|(k, _)| *k);
        out.into_iter()
            .map(|(k, s)| Seen {
                direction: k.direction,
                peer: k.peer,
                proto: k.proto,
                port: k.port,
                count: s.count,
                first: s.first,
                last: s.last,
            })
            .collect()
    }

    /// What was left out, in sentences for the header of a suggestion.
    #[must_use]
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (reason, n) in &self.left_out {
            let what = LEFT_OUT
                .iter()
                .find(|(r, _)| r == reason)
                .map_or("of an unknown direction or protocol", |(_, w)| w);
            out.push(format!("left out: {n} flows {what}"));
        }
        if self.overflowed > 0 {
            out.push(format!(
                "left out: {} flows of new peers or ports: the table of {} was full",
                self.overflowed, self.limit
            ));
        }
        out
    }

    /// Entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Flows of new entries not counted because the aggregate was full.
    #[must_use]
    pub const fn overflowed(&self) -> u64 {
        self.overflowed
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::observe::testutil::{flow, icmp_flow};

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn counts_by_peer_and_port() {
        let mut a = Aggregate::new(10);
        a.add(&flow("audit", 5));
        a.add(&flow("denied", 3));
        a.add(&flow("audit", 9));
        a.add(&flow("allowed", 9));
        let egress = crate::observe::Flow {
            direction: "egress".into(),
            dport: Some(443),
            ..flow("audit", 7)
        };
        a.add(&egress);
        a.add(&icmp_flow("audit", 8, "ICMP", 8));
        let gre = crate::observe::Flow {
            proto: "proto-47".into(),
            sport: None,
            dport: None,
            ..flow("audit", 4)
        };
        a.add(&gre);
        let seen = a.seen(None);
        assert_eq!(seen.len(), 4, "{seen:#?}");
        let ssh = &seen[1];
        assert_eq!(ssh.direction, Direction::Ingress);
        assert_eq!(ssh.peer, flow("audit", 0).src);
        assert_eq!((ssh.proto, ssh.port), (proto::TCP, Some(22)));
        assert_eq!((ssh.count, ssh.first, ssh.last), (3, at(3), at(9)));
        assert_eq!((seen[0].proto, seen[0].port), (proto::ICMP, Some(8)));
        assert_eq!((seen[2].proto, seen[2].port), (47, None));
        let e = &seen[3];
        assert_eq!(e.direction, Direction::Egress);
        assert_eq!(e.peer, egress.dst);
        assert_eq!(e.port, Some(443));
        assert_eq!(a.seen(Some(at(8))).len(), 2);
        assert!(a.notes().is_empty());
    }

    #[test]
    fn is_bounded_and_says_what_it_left_out() {
        let mut a = Aggregate::new(3);
        for port in 0..10u16 {
            let f = crate::observe::Flow {
                dport: Some(port),
                ..flow("audit", 1)
            };
            a.add(&f);
            a.add(&f);
        }
        assert_eq!(a.len(), 3);
        assert_eq!(a.overflowed(), 14);
        a.add(&crate::observe::Flow {
            reason: "deny-rule".into(),
            ..flow("denied", 1)
        });
        a.add(&icmp_flow("denied", 1, "ICMPv6", 200));
        let mut always = icmp_flow("denied", 1, "ICMPv6", 200);
        always.reason = "icmpv6-always-denied".into();
        a.add(&always);
        a.add(&crate::observe::Flow {
            direction: "sideways".into(),
            ..flow("denied", 1)
        });
        assert_eq!(a.len(), 3, "new keys are not added when full");
        assert_eq!(
            a.notes(),
            vec![
                "left out: 1 flows denied by a deny rule (an allow rule cannot override it)"
                    .to_string(),
                "left out: 1 flows ICMPv6 types a host always drops (no policy can allow them)"
                    .into(),
                "left out: 1 flows of an unknown direction or protocol".into(),
                "left out: 15 flows of new peers or ports: the table of 3 was full".into(),
            ]
        );
    }
}
