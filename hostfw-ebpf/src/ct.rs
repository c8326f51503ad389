//! Connection tracking: one lookup per tracker under the flow's canonical
//! key, creation, promotion, refresh.
//!
//! Two LRU maps, as nf_conntrack's "assured" flag: a new flow goes to
//! `HFW_CT_NEW`; once its peer answered and its originator spoke again
//! (TCP: the handshake's ACK), it moves to `HFW_CT`. A flood of new flows
//! (spoofed SYNs) then evicts only new flows, never an idle established
//! one.
//!
//! The functions marked `#[inline(never)]` are calls so that their keys
//! live in frames of their own: the programs must fit the 512-byte stack.

use aya_ebpf::{
    bindings::{BPF_ANY, BPF_NOEXIST},
    maps::LruHashMap,
};
use hostfw_common::{
    conntrack::{
        CT_FLAG_DENIED, CT_FLAG_KEY_REVERSED, CT_FLAG_SEEN_REPLY, CT_REFRESH_NS,
        CT_TIMEOUT_DATAGRAM_NS, CT_TIMEOUT_STREAM_NS, CtKey, CtValue, FragKey, FragValue,
    },
    proto,
    stats::Stat,
};

use crate::{
    maps::{CONNTRACK, CONNTRACK_NEW, FRAGS},
    parse::Flow,
    report::count,
};

/// The SYN bit of the TCP flags byte.
const TCP_SYN: u8 = 0x02;

/// Which tracker holds an entry.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `HFW_CT`: answered and confirmed by the originator.
    Established,
    /// `HFW_CT_NEW`: not established yet.
    New,
}

/// A tracked flow found for a packet.
pub struct Tracked<'k> {
    /// The entry's key, as stored (canonical).
    pub key: &'k CtKey,
    pub value: *mut CtValue,
    pub table: Table,
    /// The packet goes the other way from the originator's.
    pub reply: bool,
}

impl Tracked<'_> {
    /// The originator's source and destination addresses.
    #[inline(always)]
    pub fn origin(&self) -> (&[u8; 16], &[u8; 16]) {
        // SAFETY: pointer into the map's value, valid for this program run.
        let flags = unsafe { (*self.value).flags };
        if flags & CT_FLAG_KEY_REVERSED != 0 {
            (&self.key.dst, &self.key.src)
        } else {
            (&self.key.src, &self.key.dst)
        }
    }
}

/// The canonical key of a packet's flow, and whether the packet goes
/// against the key's orientation.
#[inline(always)]
pub fn key_of(flow: &Flow) -> (CtKey, bool) {
    CtKey::canonical_of(
        &flow.src,
        &flow.dst,
        flow.sport_be,
        flow.dport_be,
        flow.proto,
        flow.family,
    )
}

#[inline(always)]
fn timeout(proto_nr: u8) -> u64 {
    if proto_nr == proto::TCP || proto_nr == proto::SCTP {
        CT_TIMEOUT_STREAM_NS
    } else {
        CT_TIMEOUT_DATAGRAM_NS
    }
}

/// The live entry of a canonical key in one tracker.
#[inline(always)]
fn find_in(map: &LruHashMap<CtKey, CtValue>, key: &CtKey, now: u64) -> Option<*mut CtValue> {
    let value = map.get_ptr_mut(key)?;
    // SAFETY: pointer into the map's value, valid for this program run.
    let last = unsafe { (*value).last_seen_ns };
    if now.wrapping_sub(last) > timeout(key.proto) {
        return None;
    }
    if now.wrapping_sub(last) > CT_REFRESH_NS {
        // SAFETY: as above.
        unsafe { (*value).last_seen_ns = now };
    }
    Some(value)
}

/// Finds the live entry of a packet's flow (canonical `key`, `reversed`
/// as from [`key_of`]): established flows first.
#[inline(always)]
pub fn find(key: &CtKey, reversed: bool, now: u64) -> Option<Tracked<'_>> {
    let (value, table) = match find_in(&CONNTRACK, key, now) {
        Some(v) => (v, Table::Established),
        None => (find_in(&CONNTRACK_NEW, key, now)?, Table::New),
    };
    // SAFETY: pointer into the map's value, valid for this program run.
    let stored_reversed = unsafe { (*value).flags } & CT_FLAG_KEY_REVERSED != 0;
    Some(Tracked {
        key,
        value,
        table,
        reply: reversed != stored_reversed,
    })
}

/// Moves a new flow on after a packet that passed: a reply marks it
/// answered; the originator's next packet after that (TCP: without SYN)
/// establishes it. Cut flows stay where they are.
#[inline(always)]
pub fn advance(t: &Tracked<'_>, flow: &Flow) {
    // SAFETY: pointer into the map's value, valid for this program run.
    let entry = unsafe { &mut *t.value };
    if t.table != Table::New || entry.flags & CT_FLAG_DENIED != 0 {
        return;
    }
    if t.reply {
        entry.flags |= CT_FLAG_SEEN_REPLY;
    } else if entry.flags & CT_FLAG_SEEN_REPLY != 0
        && (flow.proto != proto::TCP || flow.tcp_flags & TCP_SYN == 0)
    {
        promote(t.key, entry);
    }
}

/// Copies an entry to the established tracker and removes it from the new
/// one.
#[inline(never)]
fn promote(key: &CtKey, entry: &CtValue) {
    let mut value = *entry;
    value.flags &= !CT_FLAG_SEEN_REPLY;
    if CONNTRACK.insert(key, &value, BPF_NOEXIST as u64).is_ok() {
        count(Stat::CtPromoted);
    } else {
        // A stale (timed-out) entry of the same flow: replaced.
        let _ = CONNTRACK.insert(key, &value, BPF_ANY as u64);
    }
    if CONNTRACK_NEW.remove(key).is_ok() {
        count(Stat::CtNewRemoved);
    }
}

/// Whether an ICMP error refers to a tracked flow.
#[inline(never)]
pub fn related(flow: &Flow, now: u64) -> bool {
    if flow.inner.proto == 0 {
        return false;
    }
    let (key, reversed) = CtKey::canonical_of(
        &flow.inner.src,
        &flow.inner.dst,
        flow.inner.sport_be,
        flow.inner.dport_be,
        flow.inner.proto,
        flow.family,
    );
    find(&key, reversed, now).is_some()
}

/// Records a new flow in the new-flow tracker, in the orientation of this
/// (its first) packet.
#[inline(never)]
pub fn create(flow: &Flow, value: &CtValue) {
    let (key, reversed) = key_of(flow);
    let mut value = *value;
    if reversed {
        value.flags |= CT_FLAG_KEY_REVERSED;
    }
    // A full LRU map evicts its oldest entry (a new flow: established ones
    // live in the other map); insertion fails only on memory pressure, and
    // then the flow is simply evaluated again.
    if CONNTRACK_NEW
        .insert(&key, &value, BPF_NOEXIST as u64)
        .is_ok()
    {
        count(Stat::CtNewCreated);
    } else {
        // A stale entry of the same flow: replaced.
        let _ = CONNTRACK_NEW.insert(&key, &value, BPF_ANY as u64);
    }
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
