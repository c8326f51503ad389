//! hostfw's kernel programs: XDP on ingress, TC on ingress and egress.
//!
//! Each entry point is a thin wrapper around [`verdict::process`], which
//! parses the packet, consults the connection tracker and the policy maps,
//! and returns whether the packet passes.
#![no_std]
#![no_main]

mod access;
mod ct;
mod decide;
mod handoff;
mod maps;
mod parse;
mod report;
mod verdict;

use aya_ebpf::{
    bindings::{TC_ACT_SHOT, TC_ACT_UNSPEC, xdp_action},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use hostfw_common::{DIR_EGRESS, DIR_INGRESS};

use crate::access::{SkbPacket, XdpPacket};

/// XDP on ingress: drops denied new flows before an skb exists.
#[xdp]
pub fn hostfw_xdp(ctx: XdpContext) -> u32 {
    let pkt = XdpPacket::new(&ctx);
    if verdict::process(&pkt, DIR_INGRESS) {
        handoff::mark(&ctx);
        xdp_action::XDP_PASS
    } else {
        xdp_action::XDP_DROP
    }
}

/// TC on ingress. `TC_ACT_UNSPEC` (TCX: next) lets later programs run.
#[classifier]
pub fn hostfw_tc_in(ctx: TcContext) -> i32 {
    if handoff::decided(&ctx) {
        report::count(hostfw_common::stats::Stat::XdpDecided);
        return TC_ACT_UNSPEC;
    }
    tc_verdict(&ctx, DIR_INGRESS)
}

/// TC on egress.
#[classifier]
pub fn hostfw_tc_out(ctx: TcContext) -> i32 {
    tc_verdict(&ctx, DIR_EGRESS)
}

#[inline(always)]
fn tc_verdict(ctx: &TcContext, direction: u8) -> i32 {
    let pkt = SkbPacket::new(ctx);
    if verdict::process(&pkt, direction) {
        TC_ACT_UNSPEC
    } else {
        TC_ACT_SHOT as i32
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Unreachable in a verified program: the verifier rejects any path that
    // could reach here.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
