//! Crafted Ethernet frames for `BPF_PROG_TEST_RUN`: tests and benchmarks
//! feed these to the loaded programs.

use std::net::IpAddr;

use hostfw_common::proto;

/// What to put in a frame.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Source address.
    pub src: IpAddr,
    /// Destination address (same family as `src`).
    pub dst: IpAddr,
    /// IP protocol.
    pub proto: u8,
    /// Source port (TCP/UDP/SCTP) or echo identifier (ICMP).
    pub sport: u16,
    /// Destination port (TCP/UDP/SCTP).
    pub dport: u16,
    /// ICMP type and code.
    pub icmp: (u8, u8),
    /// TCP flags byte.
    pub tcp_flags: u8,
    /// VLAN tags to insert (802.1Q), outermost first.
    pub vlans: Vec<u16>,
    /// IPv4: fragment offset in 8-byte units and the more-fragments flag.
    pub fragment: Option<(u16, bool)>,
    /// Number of filler payload bytes after the L4 header.
    pub payload: usize,
    /// Bytes after the L4 header, before the filler (e.g. the packet an
    /// ICMP error quotes).
    pub data: Vec<u8>,
}

impl Frame {
    /// A TCP SYN.
    #[must_use]
    pub fn tcp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> Self {
        Self {
            src,
            dst,
            proto: proto::TCP,
            sport,
            dport,
            icmp: (0, 0),
            tcp_flags: 0x02,
            vlans: Vec::new(),
            fragment: None,
            payload: 0,
            data: Vec::new(),
        }
    }

    /// A UDP datagram.
    #[must_use]
    pub fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> Self {
        Self {
            proto: proto::UDP,
            tcp_flags: 0,
            ..Self::tcp(src, dst, sport, dport)
        }
    }

    /// An ICMP or ICMPv6 message (by the family of `src`); `id` is the echo
    /// identifier.
    #[must_use]
    pub fn icmp(src: IpAddr, dst: IpAddr, icmp_type: u8, code: u8, id: u16) -> Self {
        let p = if src.is_ipv4() {
            proto::ICMP
        } else {
            proto::ICMPV6
        };
        Self {
            proto: p,
            icmp: (icmp_type, code),
            tcp_flags: 0,
            ..Self::tcp(src, dst, id, 0)
        }
    }

    /// Any protocol with the given number and no L4 header knowledge.
    #[must_use]
    pub fn with_proto(mut self, p: u8) -> Self {
        self.proto = p;
        self
    }

    fn l4(&self) -> Vec<u8> {
        let mut l4 = match self.proto {
            proto::TCP => {
                let mut h = vec![0u8; 20];
                h[0..2].copy_from_slice(&self.sport.to_be_bytes());
                h[2..4].copy_from_slice(&self.dport.to_be_bytes());
                h[12] = 5 << 4;
                h[13] = self.tcp_flags;
                h
            }
            proto::UDP => {
                let mut h = vec![0u8; 8];
                h[0..2].copy_from_slice(&self.sport.to_be_bytes());
                h[2..4].copy_from_slice(&self.dport.to_be_bytes());
                let len = u16::try_from(8 + self.data.len() + self.payload).unwrap_or(u16::MAX);
                h[4..6].copy_from_slice(&len.to_be_bytes());
                h
            }
            proto::SCTP => {
                let mut h = vec![0u8; 12];
                h[0..2].copy_from_slice(&self.sport.to_be_bytes());
                h[2..4].copy_from_slice(&self.dport.to_be_bytes());
                h
            }
            proto::ICMP | proto::ICMPV6 => {
                let mut h = vec![0u8; 8];
                h[0] = self.icmp.0;
                h[1] = self.icmp.1;
                h[4..6].copy_from_slice(&self.sport.to_be_bytes());
                h
            }
            _ => Vec::new(),
        };
        l4.extend_from_slice(&self.data);
        l4.resize(l4.len() + self.payload, 0xab);
        l4
    }

    /// The L3 packet (IP header and everything after it).
    #[must_use]
    pub fn ip_packet(&self) -> Vec<u8> {
        let l4 = self.l4();
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut h = vec![0u8; 20];
                h[0] = 0x45;
                let total = u16::try_from(20 + l4.len()).unwrap_or(u16::MAX);
                h[2..4].copy_from_slice(&total.to_be_bytes());
                h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
                if let Some((off, more)) = self.fragment {
                    let v = (off & 0x1fff) | if more { 0x2000 } else { 0 };
                    h[6..8].copy_from_slice(&v.to_be_bytes());
                }
                h[8] = 64;
                h[9] = self.proto;
                h[12..16].copy_from_slice(&s.octets());
                h[16..20].copy_from_slice(&d.octets());
                h.extend_from_slice(&l4);
                h
            }
            (s, d) => {
                let (IpAddr::V6(s6), IpAddr::V6(d6)) = (to_v6(s), to_v6(d)) else {
                    return Vec::new();
                };
                let mut h = vec![0u8; 40];
                h[0] = 0x60;
                let len = u16::try_from(l4.len()).unwrap_or(u16::MAX);
                h[4..6].copy_from_slice(&len.to_be_bytes());
                h[6] = self.proto;
                h[7] = 64;
                h[8..24].copy_from_slice(&s6.octets());
                h[24..40].copy_from_slice(&d6.octets());
                h.extend_from_slice(&l4);
                h
            }
        }
    }

    /// The whole Ethernet frame.
    #[must_use]
    pub fn build(&self) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
        for vid in &self.vlans {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
        }
        let ethertype: u16 = if self.src.is_ipv4() { 0x0800 } else { 0x86dd };
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(&self.ip_packet());
        f
    }
}

fn to_v6(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
        v6 @ IpAddr::V6(_) => v6,
    }
}
