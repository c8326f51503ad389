//! XDP tells TC ingress that it already decided a packet, so TC does not
//! decide it again (a second conntrack lookup, and in audit mode a second
//! count and event for untracked packets).
//!
//! XDP puts a 4-byte marker in the packet's metadata area. A sender cannot
//! write metadata, but another XDP program can, so TC ingress trusts the
//! marker only when
//! - it is the value this load of the object uses ([`HFW_XDP_MARK`], drawn
//!   at random by the loader: no fixed value to copy), and
//! - XDP on the packet's interface is hostfw's own: the loader sets the
//!   interface's slot of [`crate::maps::XDP_OWNED`] when it attaches
//!   hostfw's XDP there and clears it where another program runs at XDP.
//!
//! Where the driver offers no metadata room, there is no marker and TC
//! decides the packet itself.

use aya_ebpf::{
    helpers::generated::bpf_xdp_adjust_meta,
    programs::{TcContext, XdpContext},
};

use crate::maps::XDP_OWNED;

/// The marker (`.rodata`): the loader replaces this default with a random
/// value at every load (`EbpfLoader::set_global`).
#[unsafe(no_mangle)]
static HFW_XDP_MARK: u32 = 1;

/// The marker of this load. A volatile read: the compiler must not fold
/// the default in.
#[inline(always)]
fn mark_value() -> u32 {
    // SAFETY: a read of an initialised global.
    unsafe { core::ptr::read_volatile(&raw const HFW_XDP_MARK) }
}

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
    unsafe { core::ptr::write_unaligned(meta as *mut u32, mark_value()) };
}

/// Whether hostfw's XDP already passed this packet.
#[inline(always)]
pub fn decided(ctx: &TcContext) -> bool {
    // SAFETY: reading fields of the program's own context.
    let (meta, data, ifindex) = unsafe {
        let skb = ctx.skb.skb;
        (
            (*skb).data_meta as usize,
            (*skb).data as usize,
            (*skb).ifindex,
        )
    };
    if meta + 4 > data {
        return false;
    }
    // SAFETY: bounds checked against `data` just above.
    if unsafe { core::ptr::read_unaligned(meta as *const u32) } != mark_value() {
        return false;
    }
    XDP_OWNED.get(ifindex).is_some_and(|&owned| owned == 1)
}
