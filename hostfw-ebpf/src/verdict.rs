//! The per-packet pipeline shared by the XDP and TC programs.
//!
//! 1. Pick the generation in force (active, or fallback past a trial's
//!    deadline) and its settings.
//! 2. Parse. Not IP: pass. Malformed: decided as if no rule allowed it.
//! 3. ICMPv6 that always passes or is always dropped is settled first.
//! 4. A tracked flow of the current revision passes. One of an older
//!    revision is evaluated again against the current policy.
//! 5. A new flow is decided by the policy; allowed (or audited) flows are
//!    tracked so that their replies pass, first in the new-flow tracker,
//!    then (answered, and confirmed by the originator) in the established
//!    one, which new flows cannot evict.

use aya_ebpf::helpers::bpf_ktime_get_boot_ns;
use hostfw_common::{
    config::{GenMeta, MODE_AUDIT},
    conntrack::{CT_FLAG_AUDIT, CT_FLAG_DENIED, CtValue},
    event::{Reason, VERDICT_ALLOWED, VERDICT_AUDIT, VERDICT_DENIED},
    proto,
    stats::Stat,
};

use crate::{
    access::Packet,
    ct,
    decide::{Decision, Query, by_default, decide},
    maps::{CONFIG, GEN_META},
    parse::{Flow, Fragment, L4Kind, Parsed, parse},
    report::{IfOutcome, Verdict, count, count_if, count_rule, emit},
};

/// Everything fixed for one packet.
struct Ctx<'a> {
    generation: u32,
    meta: &'a GenMeta,
    direction: u8,
    ifindex: u32,
    now: u64,
}

impl Ctx<'_> {
    #[inline(always)]
    fn audit(&self) -> bool {
        self.meta.mode == MODE_AUDIT
    }

    #[inline(always)]
    fn report(&self, flow: &Flow, verdict: u8, reason: Reason, rule_id: u32) {
        emit(
            flow,
            &Verdict {
                direction: self.direction,
                ifindex: self.ifindex,
                verdict,
                reason,
                rule_id,
                revision: self.meta.revision,
                now: self.now,
            },
        );
    }

    /// A packet the policy denies: dropped, or passed and reported in audit
    /// mode. Returns whether it passes.
    #[inline(always)]
    fn deny(&self, flow: &Flow, reason: Reason, rule_id: u32) -> bool {
        if self.audit() {
            count(Stat::Audited);
            count_if(self.ifindex, IfOutcome::Audited);
            self.report(flow, VERDICT_AUDIT, reason, rule_id);
            true
        } else {
            count(Stat::Dropped);
            self.report(flow, VERDICT_DENIED, reason, rule_id);
            false
        }
    }

    #[inline(always)]
    fn query<'q>(&'q self, flow: &'q Flow, remote: &'q [u8; 16], dir: u8, port: u16) -> Query<'q> {
        Query {
            generation: self.generation,
            meta: self.meta,
            direction: dir,
            family: flow.family,
            remote,
            proto: flow.proto,
            port,
            port_known: flow.port_known,
        }
    }
}

/// Decides one packet and counts the outcome on its interface. Returns
/// `true` to pass it.
#[inline(always)]
pub fn process<P: Packet>(pkt: &P, direction: u8) -> bool {
    let pass = decide_packet(pkt, direction);
    count_if(
        pkt.ifindex(),
        if pass {
            IfOutcome::Passed
        } else {
            IfOutcome::Dropped
        },
    );
    pass
}

#[inline(always)]
fn decide_packet<P: Packet>(pkt: &P, direction: u8) -> bool {
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    let generation = match CONFIG.get(0) {
        Some(cfg) => cfg.effective(now),
        None => 0,
    };
    let Some(meta) = GEN_META.get(generation) else {
        return true;
    };
    if meta.revision == 0 {
        count(Stat::Unconfigured);
        return true;
    }
    let ctx = Ctx {
        generation,
        meta,
        direction,
        ifindex: pkt.ifindex(),
        now,
    };
    let mut flow = Flow::empty();
    match parse(pkt, &mut flow) {
        Parsed::NotIp => {
            count(Stat::NotIp);
            return true;
        }
        Parsed::Malformed => {
            count(Stat::Malformed);
            let d = by_default(meta, direction);
            return d.allowed || ctx.deny(&flow, Reason::Malformed, 0);
        }
        Parsed::Ip => {}
    }
    match flow.frag {
        Fragment::None => {}
        Fragment::First => ct::remember_fragment(&flow),
        Fragment::Later => {
            if !ct::recall_fragment(&mut flow) {
                count(Stat::FragmentUnknown);
                flow.port_known = false;
                return new_flow(&ctx, &flow, false);
            }
        }
    }
    match flow.kind {
        L4Kind::Icmp6Always => {
            count(Stat::Icmp6Always);
            true
        }
        L4Kind::Icmp6Forbidden => {
            count(Stat::Icmp6Forbidden);
            ctx.deny(&flow, Reason::Icmp6Forbidden, 0)
        }
        L4Kind::Error => {
            if ct::related(&flow, now) {
                count(Stat::CtRelated);
                true
            } else if flow.proto == proto::ICMPV6 {
                // ICMPv6 errors always pass (IPv6 depends on them).
                count(Stat::Icmp6Always);
                true
            } else {
                new_flow(&ctx, &flow, false)
            }
        }
        L4Kind::Untracked => new_flow(&ctx, &flow, false),
        L4Kind::Tracked if !flow.port_known => new_flow(&ctx, &flow, false),
        L4Kind::Tracked => match tracked(&ctx, &flow) {
            Some(pass) => pass,
            None => new_flow(&ctx, &flow, true),
        },
    }
}

/// A packet of a flow that connection tracking follows.
///
/// This, [`new_flow`] and [`emit`] are calls, not inlined: each gets its
/// own stack frame, which keeps the programs within the 512-byte BPF stack.
///
/// Returns whether the packet passes, or `None` when the flow is not
/// tracked yet (the caller then decides it as a new flow; calling
/// [`new_flow`] from here would stack both frames).
#[inline(never)]
fn tracked(ctx: &Ctx<'_>, flow: &Flow) -> Option<bool> {
    let (key, reversed) = ct::key_of(flow);
    let t = ct::find(&key, reversed, ctx.now)?;
    let pass = judge_tracked(ctx, flow, &t);
    if pass {
        ct::advance(&t, flow);
    }
    Some(pass)
}

/// Whether a packet of a tracked flow passes.
#[inline(always)]
fn judge_tracked(ctx: &Ctx<'_>, flow: &Flow, t: &ct::Tracked<'_>) -> bool {
    // SAFETY: pointer into the map value, valid during this run.
    let entry = unsafe { &mut *t.value };
    if entry.revision == ctx.meta.revision {
        if entry.flags & CT_FLAG_DENIED != 0 {
            return ctx.deny(flow, Reason::Reevaluated, entry.rule_id);
        }
        count(Stat::CtEstablished);
        return true;
    }
    // The policy changed since this flow was admitted: ask again, as for the
    // originator's first packet.
    count(Stat::CtReevaluated);
    let (src, dst) = t.origin();
    let remote = ct::remote_of(src, dst, entry.origin_dir);
    let q = ctx.query(flow, &remote, entry.origin_dir, entry.policy_port);
    let d = decide(&q);
    if d.allowed {
        entry.revision = ctx.meta.revision;
        entry.rule_id = d.rule_id;
        entry.flags &= !(CT_FLAG_AUDIT | CT_FLAG_DENIED);
        count_rule(ctx.meta, d.rule_id);
        return true;
    }
    entry.revision = ctx.meta.revision;
    entry.rule_id = d.rule_id;
    // Audit: tracked as audited. Enforce: kept as cut, so that neither side
    // can start it again (a removed entry would let the node's next packet
    // pass as a new outbound flow, and the peer's replies with it).
    entry.flags |= if ctx.audit() {
        CT_FLAG_AUDIT
    } else {
        CT_FLAG_DENIED
    };
    ctx.deny(flow, Reason::Reevaluated, d.rule_id)
}

/// The first packet of a flow (or an untracked packet): asks the policy.
#[inline(never)]
fn new_flow(ctx: &Ctx<'_>, flow: &Flow, track: bool) -> bool {
    let remote = ct::remote_of(&flow.src, &flow.dst, ctx.direction);
    let q = ctx.query(flow, &remote, ctx.direction, flow.policy_port);
    let d: Decision = decide(&q);
    count_rule(ctx.meta, d.rule_id);
    if d.allowed {
        count(Stat::FlowAllowed);
        if track {
            ct::create(flow, &entry(ctx, flow, &d, 0));
        }
        ctx.report(flow, VERDICT_ALLOWED, d.reason, d.rule_id);
        return true;
    }
    if ctx.audit() {
        count(Stat::FlowAudit);
        if track {
            ct::create(flow, &entry(ctx, flow, &d, CT_FLAG_AUDIT));
        }
    } else {
        count(Stat::FlowDenied);
    }
    ctx.deny(flow, d.reason, d.rule_id)
}

#[inline(always)]
fn entry(ctx: &Ctx<'_>, flow: &Flow, d: &Decision, flags: u8) -> CtValue {
    CtValue {
        last_seen_ns: ctx.now,
        revision: ctx.meta.revision,
        rule_id: d.rule_id,
        policy_port: flow.policy_port,
        origin_dir: ctx.direction,
        flags,
        reserved: 0,
    }
}
