//! Packet parsing: Ethernet, up to two VLAN tags, IPv4 (with options),
//! IPv6 (with extension headers), TCP, UDP, SCTP, ICMP and ICMPv6.
//!
//! Documented verdicts (see the README, "Datapath"):
//! - not IPv4/IPv6 (ARP, LLDP, …): never filtered;
//! - a frame with more than [`MAX_VLAN_TAGS`] VLAN tags, or a cut tag:
//!   `Malformed`;
//! - an IP packet whose headers are truncated or inconsistent (IPv4 IHL < 5,
//!   total length beyond the packet, a TCP header under 20 bytes, a TCP data
//!   offset < 5 or beyond the packet, more than
//!   [`MAX_EXT_HEADERS`] IPv6 extension headers): `Malformed`, handled like a
//!   packet that no rule allows;
//! - a non-first fragment takes the ports of its first fragment (tracked in
//!   `HFW_FRAGS`); when the first fragment was not seen, the ports are
//!   unknown and only rules that allow every port of the protocol match.

use hostfw_common::{FAMILY_V4, FAMILY_V6, proto};

use crate::access::Packet;

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

/// VLAN tags read before the IP header; a frame with more is malformed.
pub const MAX_VLAN_TAGS: usize = 2;

/// IPv6 extension headers followed before giving up as malformed.
pub const MAX_EXT_HEADERS: usize = 8;

/// What the parser found.
pub enum Parsed {
    /// Not IP: never filtered.
    NotIp,
    /// Truncated or inconsistent IP headers.
    Malformed,
    /// A well-formed IP packet.
    Ip,
}

/// How the L4 part of a packet relates to flows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum L4Kind {
    /// TCP, UDP, SCTP, ICMP echo and other IP protocols: tracked as a flow.
    Tracked,
    /// ICMP (v4) other than echo and errors: decided per packet.
    Untracked,
    /// An ICMP/ICMPv6 error carrying the header of `inner`.
    Error,
    /// ICMPv6 that always passes (errors, neighbour/router discovery, MLD).
    Icmp6Always,
    /// ICMPv6 that is always dropped (redirect and unknown types).
    Icmp6Forbidden,
}

/// The fields of a packet the datapath decides on.
#[derive(Clone, Copy)]
pub struct Flow {
    pub family: u8,
    pub proto: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport_be: u16,
    pub dport_be: u16,
    /// The port (or ICMP `type << 8 | code`) the policy is asked about.
    pub policy_port: u16,
    /// False for a non-first fragment whose first fragment was not seen.
    pub port_known: bool,
    pub tcp_flags: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub kind: L4Kind,
    /// Whether the packet is a fragment, and which.
    pub frag: Fragment,
    /// Fragment identification (when `frag` is not `None`).
    pub frag_id: u32,
    /// For [`L4Kind::Error`]: the embedded packet's addresses and ports.
    pub inner: Inner,
}

/// Fragment bookkeeping. A plain enum, not an `Option` of a struct: the
/// type appears in the BTF of the program's functions, and the kernel
/// rejects BTF unions whose members are not at offset 0.
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// Not a fragment.
    None,
    /// First fragment (offset 0): it carries the L4 header.
    First,
    /// A later fragment: no L4 header.
    Later,
}

/// The packet embedded in an ICMP error.
#[derive(Clone, Copy, Default)]
pub struct Inner {
    pub proto: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport_be: u16,
    pub dport_be: u16,
}

impl Flow {
    #[inline(always)]
    pub const fn empty() -> Self {
        Self {
            family: 0,
            proto: 0,
            src: [0; 16],
            dst: [0; 16],
            sport_be: 0,
            dport_be: 0,
            policy_port: 0,
            port_known: true,
            tcp_flags: 0,
            icmp_type: 0,
            icmp_code: 0,
            kind: L4Kind::Tracked,
            frag: Fragment::None,
            frag_id: 0,
            inner: Inner {
                proto: 0,
                src: [0; 16],
                dst: [0; 16],
                sport_be: 0,
                dport_be: 0,
            },
        }
    }
}

#[inline(always)]
fn is_vlan(ethertype: u16) -> bool {
    ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD
}

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// Parses the packet from the Ethernet header on into `flow` (which
/// starts as [`Flow::empty`]).
///
/// Not inlined: its header buffers live in their own call frame, which keeps
/// the programs within the 512-byte BPF stack.
#[inline(never)]
pub fn parse<P: Packet>(pkt: &P, flow: &mut Flow) -> Parsed {
    let Some(mut ethertype) = pkt.load::<[u8; 2]>(12).map(be16) else {
        return Parsed::NotIp;
    };
    let mut off = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if is_vlan(ethertype) {
            let Some(inner) = pkt.load::<[u8; 2]>(off + 2).map(be16) else {
                return Parsed::Malformed;
            };
            ethertype = inner;
            off += 4;
        }
    }
    let l4_off = match ethertype {
        ETH_P_IP => {
            flow.family = FAMILY_V4;
            parse_ipv4(pkt, off, flow)
        }
        ETH_P_IPV6 => {
            flow.family = FAMILY_V6;
            parse_ipv6(pkt, off, flow)
        }
        // More tags than are read: the IP header cannot be found, and such
        // a frame must not pass as "not IP".
        t if is_vlan(t) => return Parsed::Malformed,
        _ => return Parsed::NotIp,
    };
    let Some(l4_off) = l4_off else {
        return Parsed::Malformed;
    };
    if flow.frag == Fragment::Later {
        // No L4 header here; the caller looks up the first fragment.
        return Parsed::Ip;
    }
    if parse_l4(pkt, l4_off, flow).is_none() {
        return Parsed::Malformed;
    }
    Parsed::Ip
}

/// Parses an IPv4 header at `off`; returns the L4 offset.
#[inline(always)]
fn parse_ipv4<P: Packet>(pkt: &P, off: usize, flow: &mut Flow) -> Option<usize> {
    let h = pkt.load::<[u8; 20]>(off)?;
    flow.proto = h[9];
    flow.src[..4].copy_from_slice(&h[12..16]);
    flow.dst[..4].copy_from_slice(&h[16..20]);
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if h[0] >> 4 != 4 || ihl < 20 {
        return None;
    }
    let total = usize::from(be16([h[2], h[3]]));
    // A total length of 0 is a BIG TCP super-packet; otherwise it must cover
    // the header and lie inside the packet.
    if total != 0 && (total < ihl || off + total > pkt.len()) {
        return None;
    }
    let frag = be16([h[6], h[7]]);
    let more = frag & 0x2000 != 0;
    let offset = frag & 0x1fff;
    if more || offset != 0 {
        flow.frag_id = u32::from(be16([h[4], h[5]]));
        flow.frag = if offset == 0 {
            Fragment::First
        } else {
            Fragment::Later
        };
    }
    Some(off + ihl)
}

/// Parses an IPv6 header and its extension headers; returns the L4 offset.
#[inline(always)]
fn parse_ipv6<P: Packet>(pkt: &P, off: usize, flow: &mut Flow) -> Option<usize> {
    let h = pkt.load::<[u8; 40]>(off)?;
    flow.src.copy_from_slice(&h[8..24]);
    flow.dst.copy_from_slice(&h[24..40]);
    let mut next = h[6];
    flow.proto = next;
    if h[0] >> 4 != 6 {
        return None;
    }
    let payload = usize::from(be16([h[4], h[5]]));
    // Payload length 0 is a jumbogram / BIG TCP; otherwise it must fit.
    if payload != 0 && off + 40 + payload > pkt.len() {
        return None;
    }
    let mut cur = off + 40;
    // One more round than headers: the last round reads the L4 protocol.
    for _ in 0..=MAX_EXT_HEADERS {
        match next {
            // Hop-by-hop, routing, destination options.
            0 | 43 | 60 => {
                let e = pkt.load::<[u8; 2]>(cur)?;
                next = e[0];
                cur += (usize::from(e[1]) + 1) * 8;
            }
            // Authentication header: length in 4-octet units, minus 2.
            51 => {
                let e = pkt.load::<[u8; 2]>(cur)?;
                next = e[0];
                cur += (usize::from(e[1]) + 2) * 4;
            }
            // Fragment header.
            44 => {
                let e = pkt.load::<[u8; 8]>(cur)?;
                next = e[0];
                let offset = be16([e[2], e[3]]) >> 3;
                flow.frag_id = u32::from_be_bytes([e[4], e[5], e[6], e[7]]);
                flow.frag = if offset == 0 {
                    Fragment::First
                } else {
                    Fragment::Later
                };
                cur += 8;
                if offset != 0 {
                    flow.proto = next;
                    return Some(cur);
                }
            }
            _ => {
                flow.proto = next;
                return Some(cur);
            }
        }
    }
    flow.proto = next;
    None
}

/// ICMPv4 types whose body is the header of the packet that caused them.
#[inline(always)]
fn icmp4_is_error(t: u8) -> bool {
    matches!(t, 3 | 4 | 5 | 11 | 12)
}

/// Classifies ICMPv6 as the host firewall must (DESIGN.md section 1).
#[inline(always)]
fn icmp6_kind(t: u8) -> L4Kind {
    match t {
        1..=4 => L4Kind::Error,
        128 | 129 => L4Kind::Tracked,
        130..=136 | 141..=143 | 148 | 149 | 151..=153 => L4Kind::Icmp6Always,
        _ => L4Kind::Icmp6Forbidden,
    }
}

/// How an ICMP (`proto` 1) or ICMPv6 (58) message of `icmp_type` is
/// handled.
#[inline(always)]
pub fn icmp_kind(proto_nr: u8, icmp_type: u8) -> L4Kind {
    if proto_nr == proto::ICMPV6 {
        icmp6_kind(icmp_type)
    } else if icmp_type == 0 || icmp_type == 8 {
        L4Kind::Tracked
    } else if icmp4_is_error(icmp_type) {
        L4Kind::Error
    } else {
        L4Kind::Untracked
    }
}

/// Parses the L4 header at `off`. `None` = truncated or invalid.
#[inline(always)]
fn parse_l4<P: Packet>(pkt: &P, off: usize, flow: &mut Flow) -> Option<()> {
    match flow.proto {
        proto::TCP => {
            // The 20 fixed bytes, and the options the data offset announces.
            let h = pkt.load::<[u8; 20]>(off)?;
            let doff = usize::from(h[12] >> 4) * 4;
            if doff < 20 || off + doff > pkt.len() {
                return None;
            }
            flow.sport_be = u16::from_ne_bytes([h[0], h[1]]);
            flow.dport_be = u16::from_ne_bytes([h[2], h[3]]);
            flow.tcp_flags = h[13];
            flow.policy_port = be16([h[2], h[3]]);
        }
        proto::UDP | proto::SCTP => {
            // UDP header is 8 bytes, SCTP's common header 12.
            let need_sctp = flow.proto == proto::SCTP;
            let h = pkt.load::<[u8; 8]>(off)?;
            if need_sctp {
                pkt.load::<[u8; 12]>(off)?;
            }
            flow.sport_be = u16::from_ne_bytes([h[0], h[1]]);
            flow.dport_be = u16::from_ne_bytes([h[2], h[3]]);
            flow.policy_port = be16([h[2], h[3]]);
        }
        proto::ICMP | proto::ICMPV6 => {
            let h = pkt.load::<[u8; 8]>(off)?;
            flow.icmp_type = h[0];
            flow.icmp_code = h[1];
            flow.policy_port = (u16::from(h[0]) << 8) | u16::from(h[1]);
            flow.kind = icmp_kind(flow.proto, h[0]);
            match flow.kind {
                L4Kind::Tracked => {
                    // Echo: both "ports" are the identifier, so a request and
                    // its reply share one tracking entry.
                    let id = u16::from_ne_bytes([h[4], h[5]]);
                    flow.sport_be = id;
                    flow.dport_be = id;
                }
                L4Kind::Error => parse_inner(pkt, off + 8, flow),
                _ => {}
            }
        }
        // Other IP protocols (GRE, ESP, …) are tracked by addresses alone.
        _ => {}
    }
    Some(())
}

/// Reads the packet embedded in an ICMP error. A truncated inner packet
/// leaves `inner.proto == 0`, which relates to no flow.
#[inline(always)]
fn parse_inner<P: Packet>(pkt: &P, off: usize, flow: &mut Flow) {
    let l4 = if flow.family == FAMILY_V4 {
        let Some(h) = pkt.load::<[u8; 20]>(off) else {
            return;
        };
        flow.inner.src[..4].copy_from_slice(&h[12..16]);
        flow.inner.dst[..4].copy_from_slice(&h[16..20]);
        flow.inner.proto = h[9];
        off + usize::from(h[0] & 0x0f) * 4
    } else {
        let Some(h) = pkt.load::<[u8; 40]>(off) else {
            return;
        };
        flow.inner.src.copy_from_slice(&h[8..24]);
        flow.inner.dst.copy_from_slice(&h[24..40]);
        flow.inner.proto = h[6];
        off + 40
    };
    let Some(p) = pkt.load::<[u8; 8]>(l4) else {
        flow.inner.proto = 0;
        return;
    };
    match flow.inner.proto {
        proto::TCP | proto::UDP | proto::SCTP => {
            flow.inner.sport_be = u16::from_ne_bytes([p[0], p[1]]);
            flow.inner.dport_be = u16::from_ne_bytes([p[2], p[3]]);
        }
        proto::ICMP | proto::ICMPV6 => {
            let id = u16::from_ne_bytes([p[4], p[5]]);
            flow.inner.sport_be = id;
            flow.inner.dport_be = id;
        }
        _ => {}
    }
}
