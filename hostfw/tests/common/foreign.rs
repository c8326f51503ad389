//! Another tool's XDP program: a few raw instructions loaded with `bpf(2)`
//! and attached through netlink (native mode), as a tool that is not
//! hostfw would. It passes every packet; it may first write a 4-byte value
//! into the packet's metadata area.

use std::{io, os::fd::AsRawFd as _};

use hostfw::datapath::xdp_netlink;

use super::{
    Netns,
    rawbpf::{self, insn, insn_full},
};

const BPF_FUNC_XDP_ADJUST_META: i32 = 54;
const XDP_PASS: i32 = 2;

/// The program's instructions: `meta` written into 4 bytes of metadata
/// when given, then `XDP_PASS`.
fn program(meta: Option<u32>) -> Vec<u64> {
    let Some(value) = meta else {
        return vec![insn(0xb7, 0, XDP_PASS), insn(0x95, 0, 0)];
    };
    vec![
        insn_full(0xbf, 6, 1, 0, 0),                   // r6 = ctx
        insn(0xb7, 2, -4),                             // r2 = -4
        insn(0x85, 0, BPF_FUNC_XDP_ADJUST_META),       // bpf_xdp_adjust_meta(ctx, -4)
        insn_full(0x55, 0, 0, 6, 0),                   // if r0 != 0 goto pass
        insn_full(0x61, 2, 6, 8, 0),                   // r2 = ctx->data_meta
        insn_full(0x61, 3, 6, 0, 0),                   // r3 = ctx->data
        insn_full(0xbf, 4, 2, 0, 0),                   // r4 = r2
        insn(0x07, 4, 4),                              // r4 += 4
        insn_full(0x2d, 4, 3, 1, 0),                   // if r4 > r3 goto pass
        insn_full(0x62, 2, 0, 0, value.cast_signed()), // *(u32 *)meta = value
        insn(0xb7, 0, XDP_PASS),                       // pass: r0 = XDP_PASS
        insn(0x95, 0, 0),                              // exit
    ]
}

/// A program that looks up key 0 of the map `map_fd` (so it uses that
/// map), then passes.
fn program_using(map_fd: i32) -> Vec<u64> {
    vec![
        insn_full(0x62, 10, 0, -4, 0),    // *(u32 *)(r10 - 4) = 0
        insn_full(0xbf, 2, 10, 0, 0),     // r2 = r10
        insn(0x07, 2, -4),                // r2 += -4
        insn_full(0x18, 1, 1, 0, map_fd), // r1 = map (ld_imm64, pseudo map fd ...
        0,                                // ... second half)
        insn(0x85, 0, 1),                 // call map_lookup_elem
        insn(0xb7, 0, XDP_PASS),          // r0 = XDP_PASS
        insn(0x95, 0, 0),                 // exit
    ]
}

/// Loads the program named `name` and attaches it to `ifname` in `ns`
/// (replacing a program attached through netlink); returns its id.
pub fn attach(ns: &Netns, ifname: &str, name: &'static str, meta: Option<u32>) -> u32 {
    attach_insns(ns, ifname, name, program(meta))
}

/// [`attach`] of a program that uses the map `map_fd` (as hostfw's own
/// programs use its pinned maps).
pub fn attach_using(ns: &Netns, ifname: &str, name: &'static str, map_fd: i32) -> u32 {
    attach_insns(ns, ifname, name, program_using(map_fd))
}

fn attach_insns(ns: &Netns, ifname: &str, name: &'static str, insns: Vec<u64>) -> u32 {
    let ifname = ifname.to_owned();
    ns.run(move || {
        let prog = rawbpf::load(rawbpf::BPF_PROG_TYPE_XDP, &insns, name.as_bytes())
            .unwrap_or_else(|e| panic!("loading the foreign XDP program {name}: {e}"));
        let ifindex = nix::net::if_::if_nametoindex(ifname.as_str())
            .unwrap_or_else(|e| panic!("{ifname}: {e}"));
        // A bpf link whose pin was just removed detaches a moment later
        // (the kernel frees links in deferred work): EBUSY until then.
        let start = std::time::Instant::now();
        loop {
            match xdp_netlink::set(ifindex, prog.as_raw_fd(), xdp_netlink::XDP_FLAGS_DRV_MODE) {
                Ok(()) => break,
                Err(e)
                    if e.raw_os_error() == Some(libc::EBUSY)
                        && start.elapsed() < std::time::Duration::from_secs(3) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("attaching {name} to {ifname}: {e}"),
            }
        }
        // The netlink attachment holds the program; the descriptor may go.
        query(&ifname)
            .unwrap_or_else(|e| panic!("{ifname}: {e}"))
            .unwrap_or_else(|| panic!("{name} is not attached to {ifname}"))
    })
}

/// The id of the XDP program attached to `ifname` (call inside its
/// namespace).
pub fn query(ifname: &str) -> io::Result<Option<u32>> {
    let ifindex = nix::net::if_::if_nametoindex(ifname).map_err(io::Error::from)?;
    Ok(xdp_netlink::query(ifindex)?.map(|a| a.prog_id))
}

/// The id of the XDP program attached to `ifname` in `ns`.
pub fn attached_id(ns: &Netns, ifname: &str) -> Option<u32> {
    let ifname = ifname.to_owned();
    ns.run(move || query(&ifname).unwrap_or_else(|e| panic!("{ifname}: {e}")))
}
