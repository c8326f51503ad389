//! Bounds-checked packet reads for XDP and TC through one trait.
//!
//! Both use the kernel's load-bytes helpers, which check the offset against
//! the packet at run time and also read non-linear data (skb fragments, XDP
//! multi-buffer). A read past the end returns `None`: a truncated packet can
//! never cause an unsafe access.

use core::{ffi::c_void, mem::MaybeUninit};

use aya_ebpf::{
    EbpfContext as _,
    helpers::generated::bpf_xdp_load_bytes,
    programs::{TcContext, XdpContext},
};

/// A packet the parser can read from.
pub trait Packet {
    /// Reads a `T` at byte `offset` from the start of the Ethernet header.
    fn load<T: Copy>(&self, offset: usize) -> Option<T>;
    /// Length of the whole packet, from the Ethernet header: what header
    /// lengths are checked against. A context field, not a helper call.
    fn len(&self) -> usize;
    /// Interface index the packet is on.
    fn ifindex(&self) -> u32;
}

/// An XDP buffer.
pub struct XdpPacket<'a> {
    ctx: &'a XdpContext,
}

impl<'a> XdpPacket<'a> {
    #[inline(always)]
    pub fn new(ctx: &'a XdpContext) -> Self {
        Self { ctx }
    }
}

impl Packet for XdpPacket<'_> {
    #[inline(always)]
    fn load<T: Copy>(&self, offset: usize) -> Option<T> {
        let mut out = MaybeUninit::<T>::uninit();
        // SAFETY: the helper writes at most size_of::<T>() bytes into `out`
        // and fails (negative return) rather than read past the packet.
        let ret = unsafe {
            bpf_xdp_load_bytes(
                self.ctx.as_ptr().cast(),
                offset as u32,
                out.as_mut_ptr().cast::<c_void>(),
                core::mem::size_of::<T>() as u32,
            )
        };
        if ret == 0 {
            // SAFETY: fully written by the successful helper call.
            Some(unsafe { out.assume_init() })
        } else {
            None
        }
    }

    #[inline(always)]
    fn len(&self) -> usize {
        // Not multi-buffer (`xdp.frags`): the frame is all direct data.
        self.ctx.data_end() - self.ctx.data()
    }

    #[inline(always)]
    fn ifindex(&self) -> u32 {
        self.ctx.ingress_ifindex() as u32
    }
}

/// A socket buffer at TC.
pub struct SkbPacket<'a> {
    ctx: &'a TcContext,
}

impl<'a> SkbPacket<'a> {
    #[inline(always)]
    pub fn new(ctx: &'a TcContext) -> Self {
        Self { ctx }
    }
}

impl Packet for SkbPacket<'_> {
    #[inline(always)]
    fn load<T: Copy>(&self, offset: usize) -> Option<T> {
        self.ctx.load::<T>(offset).ok()
    }

    #[inline(always)]
    fn len(&self) -> usize {
        // `skb->len`: linear data and fragments.
        self.ctx.len() as usize
    }

    #[inline(always)]
    fn ifindex(&self) -> u32 {
        // SAFETY: reading a field of the program's own context.
        unsafe { (*self.ctx.skb.skb).ifindex }
    }
}
