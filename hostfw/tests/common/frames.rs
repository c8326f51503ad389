//! Frames for reference-evaluator packets, for the kernel comparisons.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hostfw::{craft::Frame, refeval::Packet, ruleset::Direction};
use hostfw_common::proto;

/// A local address unique to case `n`, so no case meets another's
/// connection-tracking entry.
pub fn local(n: u32, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            0,
            0,
            0,
            (n >> 16) as u16,
            n as u16,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::from(0x6440_0000u32 | (n & 0x003f_ffff)))
    }
}

/// The frame for `pkt` as seen on the wire in its direction.
pub fn frame(pkt: &Packet, n: u32) -> Vec<u8> {
    let me = local(n, pkt.remote.is_ipv6());
    let (src, dst) = match pkt.direction {
        Direction::Ingress => (pkt.remote, me),
        Direction::Egress => (me, pkt.remote),
    };
    let sport = 1024 + (n % 60000) as u16;
    let mut f = match pkt.proto {
        proto::ICMP | proto::ICMPV6 => {
            let (t, c) = pkt.icmp.unwrap_or((0, 0));
            Frame::icmp(src, dst, t, c, sport).with_proto(pkt.proto)
        }
        p => Frame::tcp(src, dst, sport, pkt.port.unwrap_or(0)).with_proto(p),
    };
    if pkt.policy_port().is_some() {
        return f.build();
    }
    // Unknown port: a non-first fragment (its first fragment never seen).
    if src.is_ipv4() {
        f.fragment = Some((8, false));
        let mut b = f.build();
        b.truncate(14 + 20);
        b.extend_from_slice(&[0xee; 16]);
        b[16..18].copy_from_slice(&36u16.to_be_bytes());
        b
    } else {
        let mut b = f.build();
        b.truncate(14 + 40);
        let next = b[14 + 6];
        b[14 + 6] = 44;
        let id = n.to_be_bytes();
        b.extend_from_slice(&[next, 0, 0, 8 << 3, id[0], id[1], id[2], id[3]]);
        b.extend_from_slice(&[0xee; 16]);
        b[18..20].copy_from_slice(&24u16.to_be_bytes());
        b
    }
}
