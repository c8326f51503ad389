//! Counters and rate-limited verdict events.

use hostfw_common::{
    config::GenMeta,
    event::{Event, Reason},
    stats::{EVENT_RATE_PER_SEC, MAX_IFINDEX, Stat},
};

use crate::{
    maps::{EVENT_BUDGET, EVENTS, IF_STATS, RULE_STATS, STATS},
    parse::Flow,
};

/// Adds one to a packet counter.
#[inline(always)]
pub fn count(stat: Stat) {
    if let Some(slot) = STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU slot; no other writer on this CPU meanwhile.
        unsafe { *slot += 1 };
    }
}

/// The outcome of a packet on an interface.
#[derive(Clone, Copy)]
pub enum IfOutcome {
    Passed,
    Dropped,
    Audited,
}

/// Counts a packet's outcome on its interface.
#[inline(always)]
pub fn count_if(ifindex: u32, outcome: IfOutcome) {
    let slot = if ifindex < MAX_IFINDEX {
        ifindex
    } else {
        MAX_IFINDEX - 1
    };
    if let Some(c) = IF_STATS.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot.
        let c = unsafe { &mut *c };
        match outcome {
            IfOutcome::Passed => c.passed += 1,
            IfOutcome::Dropped => c.dropped += 1,
            IfOutcome::Audited => c.audited += 1,
        }
    }
}

/// Adds one to the new-flow counter of `rule_id` in this generation.
#[inline(always)]
pub fn count_rule(meta: &GenMeta, rule_id: u32) {
    if rule_id == 0 {
        return;
    }
    if let Some(slot) = RULE_STATS.get_ptr_mut(meta.rule_stats_base.wrapping_add(rule_id)) {
        // SAFETY: per-CPU slot.
        unsafe { *slot += 1 };
    }
}

/// Takes a token from this CPU's event budget.
#[inline(always)]
fn take_token(now: u64) -> bool {
    let Some(b) = EVENT_BUDGET.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: per-CPU slot.
    let b = unsafe { &mut *b };
    let elapsed = now.wrapping_sub(b.last_ns);
    if elapsed >= 1_000_000 {
        let add = elapsed / (1_000_000_000 / EVENT_RATE_PER_SEC);
        b.tokens = if b.tokens + add > EVENT_RATE_PER_SEC {
            EVENT_RATE_PER_SEC
        } else {
            b.tokens + add
        };
        b.last_ns = now;
    }
    if b.tokens == 0 {
        return false;
    }
    b.tokens -= 1;
    true
}

/// What an event says about a packet.
pub struct Verdict {
    pub direction: u8,
    pub ifindex: u32,
    pub verdict: u8,
    pub reason: Reason,
    pub rule_id: u32,
    pub revision: u32,
    /// The packet's boot-clock time, read once at entry.
    pub now: u64,
}

/// Sends a verdict event if the rate limit allows. A call, for the stack.
#[inline(never)]
pub fn emit(flow: &Flow, v: &Verdict) {
    let now = v.now;
    if !take_token(now) {
        count(Stat::EventsLost);
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<Event>(0) else {
        count(Stat::EventsLost);
        return;
    };
    entry.write(Event {
        ts_ns: now,
        ifindex: v.ifindex,
        rule_id: v.rule_id,
        src: flow.src,
        dst: flow.dst,
        sport_be: flow.sport_be,
        dport_be: flow.dport_be,
        family: flow.family,
        proto: flow.proto,
        direction: v.direction,
        verdict: v.verdict,
        reason: v.reason as u8,
        tcp_flags: flow.tcp_flags,
        icmp_type: flow.icmp_type,
        icmp_code: flow.icmp_code,
        revision: v.revision,
    });
    entry.submit(0);
}
