//! Connection tracking: lookups in both orientations, creation, refresh.
//!
//! The functions marked `#[inline(never)]` are calls so that their keys
//! live in frames of their own: the programs must fit the 512-byte stack.

use hostfw_common::{
    conntrack::{
        CT_REFRESH_NS, CT_TIMEOUT_DATAGRAM_NS, CT_TIMEOUT_STREAM_NS, CtKey, CtValue, FragKey,
        FragValue,
    },
    proto,
};

use crate::{
    maps::{CONNTRACK, FRAGS},
    parse::Flow,
};

/// A tracked flow found for a packet.
pub struct Tracked {
    /// The entry, as stored (key in the originator's orientation).
    pub key: CtKey,
    pub value: *mut CtValue,
}

/// The key of a packet, in the packet's own orientation.
#[inline(always)]
pub fn key_of(flow: &Flow) -> CtKey {
    CtKey {
        src: flow.src,
        dst: flow.dst,
        sport_be: flow.sport_be,
        dport_be: flow.dport_be,
        proto: flow.proto,
        family: flow.family,
        reserved: [0; 2],
    }
}

#[inline(always)]
fn timeout(proto_nr: u8) -> u64 {
    if proto_nr == proto::TCP || proto_nr == proto::SCTP {
        CT_TIMEOUT_STREAM_NS
    } else {
        CT_TIMEOUT_DATAGRAM_NS
    }
}

/// Finds the live entry of a packet's flow, in either orientation.
#[inline(always)]
pub fn find(key: &CtKey, now: u64) -> Option<Tracked> {
    let (stored, value) = if let Some(v) = CONNTRACK.get_ptr_mut(key) {
        (*key, v)
    } else {
        let rev = key.reversed();
        let v = CONNTRACK.get_ptr_mut(&rev)?;
        (rev, v)
    };
    // SAFETY: pointer into the map's value, valid for this program run.
    let last = unsafe { (*value).last_seen_ns };
    if now.wrapping_sub(last) > timeout(key.proto) {
        return None;
    }
    if now.wrapping_sub(last) > CT_REFRESH_NS {
        // SAFETY: as above.
        unsafe { (*value).last_seen_ns = now };
    }
    Some(Tracked { key: stored, value })
}

/// Whether an ICMP error refers to a tracked flow.
#[inline(never)]
pub fn related(flow: &Flow, now: u64) -> bool {
    if flow.inner.proto == 0 {
        return false;
    }
    let key = CtKey {
        src: flow.inner.src,
        dst: flow.inner.dst,
        sport_be: flow.inner.sport_be,
        dport_be: flow.inner.dport_be,
        proto: flow.inner.proto,
        family: flow.family,
        reserved: [0; 2],
    };
    find(&key, now).is_some()
}

/// Records a new flow, in the orientation of this (its first) packet.
#[inline(never)]
pub fn create(flow: &Flow, value: &CtValue) {
    let key = key_of(flow);
    // A full LRU map evicts its oldest entry; insertion fails only on
    // memory pressure, and then the flow is simply evaluated again.
    let _ = CONNTRACK.insert(&key, value, 0);
}

#[inline(always)]
fn frag_key(flow: &Flow) -> FragKey {
    FragKey {
        src: flow.src,
        dst: flow.dst,
        id: flow.frag_id,
        proto: flow.proto,
        family: flow.family,
        reserved: [0; 2],
    }
}

/// Remembers the ports of a first fragment.
#[inline(never)]
pub fn remember_fragment(flow: &Flow) {
    let value = FragValue {
        sport_be: flow.sport_be,
        dport_be: flow.dport_be,
        policy_port: flow.policy_port,
        reserved: 0,
    };
    let _ = FRAGS.insert(&frag_key(flow), &value, 0);
}

/// Gives a later fragment the ports of its first fragment, if it was seen.
#[inline(never)]
pub fn recall_fragment(flow: &mut Flow) -> bool {
    // SAFETY: map lookup; the value is copied out.
    match unsafe { FRAGS.get(&frag_key(flow)) } {
        Some(v) => {
            flow.sport_be = v.sport_be;
            flow.dport_be = v.dport_be;
            flow.policy_port = v.policy_port;
            if flow.proto == proto::ICMP || flow.proto == proto::ICMPV6 {
                // Later fragments are handled as their first fragment was.
                let icmp_type = (v.policy_port >> 8) as u8;
                flow.icmp_type = icmp_type;
                flow.kind = crate::parse::icmp_kind(flow.proto, icmp_type);
            }
            true
        }
        None => false,
    }
}

/// The remote address of a flow seen in `direction`.
#[inline(always)]
pub fn remote_of(src: &[u8; 16], dst: &[u8; 16], direction: u8) -> [u8; 16] {
    if direction == hostfw_common::DIR_INGRESS {
        *src
    } else {
        *dst
    }
}
