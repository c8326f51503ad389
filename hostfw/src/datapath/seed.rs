//! Seeding the connection tracker from the kernel's established TCP
//! sockets (sock_diag), so that turning hostfw on cuts nothing the policy
//! allows: the reply of a connection opened before hostfw started is
//! recognised as a reply, not taken for a new inbound flow.
//!
//! A seeded entry carries revision 0, which no policy has: its first packet
//! has the flow evaluated as its originator's first packet was, in the
//! originator's direction, and the entry kept only if the policy allows it.

use std::net::{IpAddr, SocketAddr};

use aya::maps::{HashMap, MapData};
use hostfw_common::{
    DIR_EGRESS, DIR_INGRESS, FAMILY_V4, FAMILY_V6,
    conntrack::{CT_FLAG_KEY_REVERSED, CT_FLAG_SEEDED, CtKey, CtValue},
    names::MAP_CONNTRACK,
    proto,
    stats::Stat,
};

use super::{Datapath, DatapathError, boot_ns};
use crate::sockdiag::TcpConn;

/// `BPF_NOEXIST`: never overwrite an entry the datapath made.
const BPF_NOEXIST: u64 = 1;

fn bytes(ip: IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out = v6.octets(),
    }
    out
}

/// The tracking entry of an established connection: `inbound` when the
/// peer opened it (its local port is a listening port).
#[must_use]
pub fn entry(conn: &TcpConn, inbound: bool, now_ns: u64) -> (CtKey, CtValue) {
    let (orig_src, orig_dst): (SocketAddr, SocketAddr) = if inbound {
        (conn.remote, conn.local)
    } else {
        (conn.local, conn.remote)
    };
    let key = CtKey {
        src: bytes(orig_src.ip()),
        dst: bytes(orig_dst.ip()),
        sport_be: orig_src.port().to_be(),
        dport_be: orig_dst.port().to_be(),
        proto: proto::TCP,
        family: if orig_src.is_ipv4() {
            FAMILY_V4
        } else {
            FAMILY_V6
        },
        reserved: [0; 2],
    };
    let (key, reversed) = key.canonical();
    let value = CtValue {
        last_seen_ns: now_ns,
        revision: 0,
        rule_id: 0,
        policy_port: orig_dst.port(),
        origin_dir: if inbound { DIR_INGRESS } else { DIR_EGRESS },
        flags: CT_FLAG_SEEDED | if reversed { CT_FLAG_KEY_REVERSED } else { 0 },
        reserved: 0,
    };
    (key, value)
}

impl Datapath {
    /// Adds an entry for every established connection that has none yet.
    /// Returns how many were added.
    pub fn seed_conntrack(
        &mut self,
        conns: &[TcpConn],
        listen_ports: &[u16],
    ) -> Result<usize, DatapathError> {
        let now = boot_ns()?;
        let map = self.map_mut_named(MAP_CONNTRACK)?;
        let mut ct: HashMap<&mut MapData, CtKey, CtValue> =
            HashMap::try_from(map).map_err(|e| DatapathError::map(MAP_CONNTRACK, "open", e))?;
        let mut added = 0;
        for c in conns {
            let inbound = listen_ports.contains(&c.local.port());
            let (key, value) = entry(c, inbound, now);
            // An existing entry (the datapath's own) makes this fail: fine.
            if ct.insert(key, value, BPF_NOEXIST).is_ok() {
                added += 1;
            }
        }
        super::counters::add_to_stat(self.ebpf_mut(), Stat::CtUserspaceAdded, added as u64)?;
        Ok(added)
    }
}
