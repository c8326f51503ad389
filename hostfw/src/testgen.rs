//! Random rule sets and packets for differential tests.
//!
//! The generators aim at the places where a compiler of rules into LPM
//! tries goes wrong: overlapping IPv4 and IPv6 prefixes around a few shared
//! anchors, excepts, peers that are `Any` or match nothing, port ranges with
//! awkward boundaries, ICMP types (including the special ICMPv6 classes),
//! every action, both directions, both modes and default-deny flags.
//! Packets are biased toward the boundaries of the rules they are tested
//! against: first and last address of a prefix and their neighbours, first
//! and last port of a range and their neighbours, unknown ports.
//!
//! Everything is driven by the caller's [`Rng`], so a fixed seed gives a
//! fixed sequence.

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use hostfw_common::proto;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rand::{Rng, seq::IndexedRandom};

use crate::{
    refeval::Packet,
    ruleset::{Action, Cidr, Direction, L4, Mode, Peers, Rule, RuleSet},
};

/// Addresses around which IPv4 prefixes are built.
pub const V4_ANCHORS: [u32; 8] = [
    0x0a01_0203, // 10.1.2.3
    0x0a01_0282, // 10.1.2.130
    0x0a01_c807, // 10.1.200.7
    0x0ac8_0001, // 10.200.0.1
    0xc0a8_0001, // 192.168.0.1
    0xc000_0201, // 192.0.2.1
    0x0000_0000,
    0xffff_ffff,
];

/// Addresses around which IPv6 prefixes are built.
pub const V6_ANCHORS: [u128; 8] = [
    0x2001_0db8_0000_0000_0000_0000_0000_0001,
    0x2001_0db8_0000_0001_0000_0000_0000_0005,
    0x2001_0db8_0001_0000_0000_0000_0000_0080,
    0xfd00_0000_0000_0000_0000_0000_0000_0001,
    0x0000_0000_0000_0000_0000_ffff_0a01_0203, // ::ffff:10.1.2.3
    0xfe80_0000_0000_0000_0000_0000_0000_0001,
    0,
    u128::MAX,
];

const V4_LENS: [u8; 13] = [0, 1, 8, 9, 15, 16, 23, 24, 25, 26, 30, 31, 32];
const V6_LENS: [u8; 12] = [0, 1, 16, 32, 47, 48, 63, 64, 96, 120, 127, 128];
const PORTS: [u16; 17] = [
    0, 1, 21, 22, 23, 53, 79, 80, 81, 443, 1023, 1024, 8080, 32767, 32768, 65534, 65535,
];
const ICMP_TYPES: [u8; 10] = [0, 1, 3, 8, 11, 128, 129, 135, 137, 255];
/// ICMPv6 types around the class boundaries of the datapath.
const ICMP6_EDGES: [u8; 24] = [
    0, 1, 2, 4, 5, 127, 128, 129, 130, 133, 136, 137, 140, 141, 143, 144, 147, 148, 149, 150, 151,
    153, 154, 255,
];
const OTHER_PROTOS: [u8; 6] = [
    proto::TCP,
    proto::UDP,
    proto::SCTP,
    proto::ICMP,
    proto::ICMPV6,
    47,
];

/// Shape of the generated rule sets.
#[derive(Clone, Debug)]
pub struct RuleSetOptions {
    /// At most this many rules (at least 0).
    pub max_rules: usize,
    /// At most this many CIDRs per rule.
    pub max_cidrs: usize,
    /// At most this many excepts per CIDR.
    pub max_excepts: usize,
    /// At most this many L4 entries per rule.
    pub max_l4: usize,
    /// Generate IPv4 CIDRs.
    pub v4: bool,
    /// Generate IPv6 CIDRs.
    pub v6: bool,
}

impl Default for RuleSetOptions {
    fn default() -> Self {
        Self {
            max_rules: 10,
            max_cidrs: 3,
            max_excepts: 2,
            max_l4: 3,
            v4: true,
            v6: true,
        }
    }
}

/// Shape of the generated packets.
#[derive(Clone, Debug)]
pub struct PacketOptions {
    /// Probability that the port (or ICMP type) is unknown, as for a
    /// non-first fragment.
    pub unknown_port: f64,
    /// Generate IPv4 peers.
    pub v4: bool,
    /// Generate IPv6 peers.
    pub v6: bool,
}

impl Default for PacketOptions {
    fn default() -> Self {
        Self {
            unknown_port: 0.1,
            v4: true,
            v6: true,
        }
    }
}

/// A random prefix near the anchors, host bits cleared.
pub fn random_net<R: Rng + ?Sized>(rng: &mut R, v6: bool) -> IpNet {
    if v6 {
        let mut a = *V6_ANCHORS.choose(rng).unwrap_or(&0);
        if rng.random_bool(0.2) {
            a ^= 1 << rng.random_range(0..128);
        }
        let len = if rng.random_bool(0.8) {
            *V6_LENS.choose(rng).unwrap_or(&64)
        } else {
            rng.random_range(0..=128)
        };
        IpNet::V6(
            Ipv6Net::new(Ipv6Addr::from(a), len)
                .map(|n| n.trunc())
                .unwrap_or_default(),
        )
    } else {
        let mut a = *V4_ANCHORS.choose(rng).unwrap_or(&0);
        if rng.random_bool(0.2) {
            a ^= 1 << rng.random_range(0..32);
        }
        let len = if rng.random_bool(0.8) {
            *V4_LENS.choose(rng).unwrap_or(&24)
        } else {
            rng.random_range(0..=32)
        };
        IpNet::V4(
            Ipv4Net::new(Ipv4Addr::from(a), len)
                .map(|n| n.trunc())
                .unwrap_or_default(),
        )
    }
}

/// A random prefix inside `net` (possibly `net` itself).
pub fn random_subnet<R: Rng + ?Sized>(rng: &mut R, net: &IpNet) -> IpNet {
    let addr = random_addr_in(rng, net);
    let min = net.prefix_len();
    let max = net.max_prefix_len();
    let len = if rng.random_bool(0.3) {
        max
    } else {
        rng.random_range(min..=max)
    };
    IpNet::new(addr, len).map(|n| n.trunc()).unwrap_or(*net)
}

/// A random address inside `net`, often one of its ends.
pub fn random_addr_in<R: Rng + ?Sized>(rng: &mut R, net: &IpNet) -> IpAddr {
    match rng.random_range(0..4) {
        0 => net.network(),
        1 => net.broadcast(),
        _ => match net {
            IpNet::V4(n) => {
                let host = rng.random::<u32>() & u32::from(n.hostmask());
                IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) | host))
            }
            IpNet::V6(n) => {
                let host = rng.random::<u128>() & u128::from(n.hostmask());
                IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) | host))
            }
        },
    }
}

/// A random CIDR with up to `max_excepts` excepts inside it.
pub fn random_cidr<R: Rng + ?Sized>(rng: &mut R, v6: bool, max_excepts: usize) -> Cidr {
    let net = random_net(rng, v6);
    let n = if rng.random_bool(0.5) {
        0
    } else {
        rng.random_range(0..=max_excepts)
    };
    let except = (0..n).map(|_| random_subnet(rng, &net)).collect();
    Cidr { net, except }
}

/// Random peers: `Any`, nothing, or a few CIDRs of either family.
pub fn random_peers<R: Rng + ?Sized>(rng: &mut R, opts: &RuleSetOptions) -> Peers {
    let roll = rng.random_range(0..100);
    if roll < 25 || !(opts.v4 || opts.v6) {
        return Peers::Any;
    }
    if roll < 28 || opts.max_cidrs == 0 {
        return Peers::Cidrs(Vec::new());
    }
    let n = rng.random_range(1..=opts.max_cidrs);
    Peers::Cidrs(
        (0..n)
            .map(|_| {
                let v6 = if opts.v4 && opts.v6 {
                    rng.random_bool(0.5)
                } else {
                    opts.v6
                };
                random_cidr(rng, v6, opts.max_excepts)
            })
            .collect(),
    )
}

fn random_port<R: Rng + ?Sized>(rng: &mut R) -> u16 {
    if rng.random_bool(0.7) {
        *PORTS.choose(rng).unwrap_or(&80)
    } else {
        rng.random()
    }
}

/// A random L4 entry (always valid for the compiler).
pub fn random_l4<R: Rng + ?Sized>(rng: &mut R) -> L4 {
    let roll = rng.random_range(0..100);
    if roll < 15 {
        return L4::Any;
    }
    if roll < 70 {
        let proto = *[proto::TCP, proto::TCP, proto::UDP, proto::SCTP]
            .choose(rng)
            .unwrap_or(&proto::TCP);
        let (first, last) = match rng.random_range(0..10) {
            0 => (0, u16::MAX),
            1..=3 => {
                let p = random_port(rng);
                (p, p)
            }
            _ => {
                let (a, b) = (random_port(rng), random_port(rng));
                (a.min(b), a.max(b))
            }
        };
        return L4::Ports { proto, first, last };
    }
    let proto = if rng.random_bool(0.5) {
        proto::ICMP
    } else {
        proto::ICMPV6
    };
    let icmp_type = if rng.random_bool(0.8) {
        *ICMP_TYPES.choose(rng).unwrap_or(&8)
    } else {
        rng.random()
    };
    L4::Icmp { proto, icmp_type }
}

/// A random valid rule set.
pub fn random_ruleset<R: Rng + ?Sized>(rng: &mut R, opts: &RuleSetOptions) -> RuleSet {
    let n = rng.random_range(0..=opts.max_rules);
    let mut ids = HashSet::new();
    let mut rules = Vec::with_capacity(n);
    while rules.len() < n {
        let id = if rng.random_bool(0.9) {
            rng.random_range(1..=40)
        } else {
            rng.random_range(1..=100_000)
        };
        if !ids.insert(id) {
            continue;
        }
        let l4_count = if rng.random_bool(0.03) || opts.max_l4 == 0 {
            0
        } else {
            rng.random_range(1..=opts.max_l4)
        };
        rules.push(Rule {
            id,
            direction: if rng.random_bool(0.5) {
                Direction::Ingress
            } else {
                Direction::Egress
            },
            action: match rng.random_range(0..100) {
                0..45 => Action::Allow,
                45..85 => Action::Deny,
                _ => Action::Failsafe,
            },
            peers: random_peers(rng, opts),
            l4: (0..l4_count).map(|_| random_l4(rng)).collect(),
        });
    }
    RuleSet {
        mode: if rng.random_bool(0.5) {
            Mode::Enforce
        } else {
            Mode::Audit
        },
        default_deny_ingress: rng.random_bool(0.5),
        default_deny_egress: rng.random_bool(0.5),
        rules,
    }
}

/// The prefixes named by `rules` (nets and excepts).
fn prefixes(rules: &RuleSet) -> Vec<IpNet> {
    let mut out = Vec::new();
    for rule in &rules.rules {
        if let Peers::Cidrs(cidrs) = &rule.peers {
            for c in cidrs {
                out.push(c.net);
                out.extend_from_slice(&c.except);
            }
        }
    }
    out
}

/// The address next to `a` (`+1` or `-1`, wrapping).
fn neighbour(a: IpAddr, up: bool) -> IpAddr {
    match a {
        IpAddr::V4(a) => {
            let v = u32::from(a);
            IpAddr::V4(Ipv4Addr::from(if up {
                v.wrapping_add(1)
            } else {
                v.wrapping_sub(1)
            }))
        }
        IpAddr::V6(a) => {
            let v = u128::from(a);
            IpAddr::V6(Ipv6Addr::from(if up {
                v.wrapping_add(1)
            } else {
                v.wrapping_sub(1)
            }))
        }
    }
}

fn random_remote<R: Rng + ?Sized>(rng: &mut R, rules: &RuleSet, opts: &PacketOptions) -> IpAddr {
    let family_ok = |a: &IpAddr| (a.is_ipv4() && opts.v4) || (a.is_ipv6() && opts.v6);
    let nets: Vec<IpNet> = prefixes(rules)
        .into_iter()
        .filter(|n| family_ok(&n.network()))
        .collect();
    let v6 = if opts.v4 && opts.v6 {
        rng.random_bool(0.5)
    } else {
        opts.v6
    };
    let roll = rng.random_range(0..100);
    if roll < 55
        && let Some(net) = nets.choose(rng)
    {
        return match rng.random_range(0..6) {
            0 => neighbour(net.network(), false),
            1 => neighbour(net.broadcast(), true),
            _ => random_addr_in(rng, net),
        };
    }
    if roll < 80 {
        let net = random_net(rng, v6);
        return random_addr_in(rng, &net);
    }
    if v6 {
        IpAddr::V6(Ipv6Addr::from(rng.random::<u128>()))
    } else {
        IpAddr::V4(Ipv4Addr::from(rng.random::<u32>()))
    }
}

/// A random packet, biased toward the boundaries of `rules`.
pub fn random_packet<R: Rng + ?Sized>(
    rng: &mut R,
    rules: &RuleSet,
    opts: &PacketOptions,
) -> Packet {
    let l4s: Vec<L4> = rules
        .rules
        .iter()
        .flat_map(|r| r.l4.iter().copied())
        .filter(|l| !matches!(l, L4::Any))
        .collect();
    let from_rule = if rng.random_bool(0.6) {
        l4s.choose(rng).copied()
    } else {
        None
    };
    let proto = match from_rule {
        Some(L4::Ports { proto, .. } | L4::Icmp { proto, .. }) => proto,
        _ => *OTHER_PROTOS.choose(rng).unwrap_or(&proto::TCP),
    };
    let unknown = rng.random_bool(opts.unknown_port);
    let mut port = None;
    let mut icmp = None;
    match proto {
        proto::TCP | proto::UDP | proto::SCTP if !unknown => {
            port = Some(match from_rule {
                Some(L4::Ports { first, last, .. }) => match rng.random_range(0..6) {
                    0 => first,
                    1 => last,
                    2 => first.wrapping_sub(1),
                    3 => last.wrapping_add(1),
                    _ => rng.random_range(first..=last),
                },
                _ => random_port(rng),
            });
        }
        proto::ICMP | proto::ICMPV6 if !unknown => {
            let icmp_type = match from_rule {
                Some(L4::Icmp { icmp_type, .. }) if rng.random_bool(0.7) => icmp_type,
                _ if proto == proto::ICMPV6 && rng.random_bool(0.7) => {
                    *ICMP6_EDGES.choose(rng).unwrap_or(&128)
                }
                _ if rng.random_bool(0.5) => *ICMP_TYPES.choose(rng).unwrap_or(&8),
                _ => rng.random(),
            };
            icmp = Some((icmp_type, rng.random_range(0..4)));
        }
        _ => {}
    }
    let direction = match rules.rules.choose(rng) {
        Some(r) if rng.random_bool(0.7) => r.direction,
        _ if rng.random_bool(0.5) => Direction::Ingress,
        _ => Direction::Egress,
    };
    Packet {
        direction,
        remote: random_remote(rng, rules, opts),
        proto,
        port,
        icmp,
    }
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;
    use crate::mapstate::compile;

    #[test]
    fn generated_rule_sets_compile() {
        let mut rng = StdRng::seed_from_u64(7);
        let opts = RuleSetOptions::default();
        let mut rules = 0;
        for _ in 0..2000 {
            let rs = random_ruleset(&mut rng, &opts);
            rules += rs.rules.len();
            if let Err(e) = compile(&rs) {
                panic!("{e}: {rs:?}");
            }
        }
        assert!(rules > 5000);
    }

    #[test]
    fn packets_cover_the_interesting_cases() {
        let mut rng = StdRng::seed_from_u64(8);
        let ropts = RuleSetOptions::default();
        let popts = PacketOptions::default();
        let (mut unknown, mut icmp6, mut v4, mut v6) = (0, 0, 0, 0);
        for _ in 0..2000 {
            let rs = random_ruleset(&mut rng, &ropts);
            let p = random_packet(&mut rng, &rs, &popts);
            unknown += usize::from(p.policy_port().is_none());
            icmp6 += usize::from(p.proto == proto::ICMPV6 && p.icmp.is_some());
            v4 += usize::from(p.remote.is_ipv4());
            v6 += usize::from(p.remote.is_ipv6());
        }
        assert!(
            unknown > 50 && icmp6 > 100 && v4 > 500 && v6 > 500,
            "{unknown} {icmp6} {v4} {v6}"
        );
    }
}
