//! XDP tells TC ingress that it already decided a packet, so TC does not
//! decide it again (a second conntrack lookup, and in audit mode a second
//! count and event for untracked packets).
//!
//! XDP puts a 4-byte marker in the packet's metadata area; only XDP
//! programs can write metadata, so a sender cannot forge it. Where the
//! driver offers no metadata room, there is no marker and TC decides the
//! packet itself.

use aya_ebpf::{
    helpers::generated::bpf_xdp_adjust_meta,
    programs::{TcContext, XdpContext},
};
use hostfw_common::stats::XDP_DECIDED_MARK;

/// Marks a packet XDP passed.
#[inline(always)]
pub fn mark(ctx: &XdpContext) {
    // SAFETY: the program's own context; the helper checks the room.
    if unsafe { bpf_xdp_adjust_meta(ctx.ctx, -4) } != 0 {
        return;
    }
    let meta = ctx.metadata();
    if meta + 4 > ctx.data() {
        return;
    }
    // SAFETY: bounds checked against `data` just above.
    unsafe { core::ptr::write_unaligned(meta as *mut u32, XDP_DECIDED_MARK) };
}

/// Whether XDP already passed this packet.
#[inline(always)]
pub fn decided(ctx: &TcContext) -> bool {
    // SAFETY: reading fields of the program's own context.
    let (meta, data) = unsafe {
        let skb = ctx.skb.skb;
        ((*skb).data_meta as usize, (*skb).data as usize)
    };
    if meta + 4 > data {
        return false;
    }
    // SAFETY: bounds checked against `data` just above.
    unsafe { core::ptr::read_unaligned(meta as *const u32) == XDP_DECIDED_MARK }
}
