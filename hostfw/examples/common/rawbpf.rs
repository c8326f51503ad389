//! Raw `bpf(2)` for the benchmark binaries (included with `#[path]`): the
//! reference programs are a few hand-written instructions, loaded without
//! any toolchain, so they are the same on every machine.
//!
//! - [`load`]: a program from instructions;
//! - [`one_lookup`]: the "trivial" program hostfw's verdict cost is
//!   compared with: one array-map lookup, then a fixed verdict;
//! - [`test_run`]: `BPF_PROG_TEST_RUN`, ns per run.

#![allow(dead_code, reason = "each benchmark binary uses a part")]

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

pub const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
pub const BPF_PROG_LOAD: libc::c_long = 5;
pub const BPF_PROG_TEST_RUN: libc::c_long = 10;
pub const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
pub const BPF_PROG_TYPE_XDP: u32 = 6;
pub const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;
const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_FUNC_MAP_LOOKUP_ELEM: i32 = 1;
const BPF_PSEUDO_MAP_FD: u8 = 1;

/// `union bpf_attr` for `BPF_PROG_LOAD` (the fields used here).
#[repr(C, align(8))]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    rest: [u64; 12],
}

/// `union bpf_attr` for `BPF_MAP_CREATE` (the fields used here).
#[repr(C, align(8))]
#[derive(Default)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    rest: [u32; 27],
}

/// `union bpf_attr` for `BPF_PROG_TEST_RUN`.
#[repr(C, align(8))]
#[derive(Default)]
pub struct TestRun {
    pub prog_fd: u32,
    pub retval: u32,
    pub data_size_in: u32,
    pub data_size_out: u32,
    pub data_in: u64,
    pub data_out: u64,
    pub repeat: u32,
    pub duration: u32,
    pub ctx_size_in: u32,
    pub ctx_size_out: u32,
    pub ctx_in: u64,
    pub ctx_out: u64,
    pub flags: u32,
    pub cpu: u32,
    pub batch_size: u32,
    pub pad: u32,
}

pub fn os_err(what: &str) -> anyhow::Error {
    anyhow::anyhow!("{what}: {}", std::io::Error::last_os_error())
}

/// One instruction: `code`, registers, offset, immediate.
#[must_use]
pub fn insn_full(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | (u64::from(dst & 0xf) << 8)
        | (u64::from(src & 0xf) << 12)
        | (u64::from(off.cast_unsigned()) << 16)
        | (u64::from(imm.cast_unsigned()) << 32)
}

/// An instruction with a destination register and an immediate.
#[must_use]
pub fn insn(code: u8, dst: u8, imm: i32) -> u64 {
    insn_full(code, dst, 0, 0, imm)
}

/// Issues `bpf(cmd, attr)`; returns the result or the OS error.
///
/// # Safety
/// `attr` must be a valid `union bpf_attr` for `cmd`, alive for the call.
unsafe fn sys<T>(cmd: libc::c_long, attr: *const T) -> libc::c_long {
    // SAFETY: the caller's contract.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr, size_of::<T>()) }
}

fn owned(fd: libc::c_long, what: &str) -> anyhow::Result<OwnedFd> {
    if fd < 0 {
        return Err(os_err(what));
    }
    // SAFETY: a fresh descriptor owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(i32::try_from(fd)?) })
}

/// Loads a program of `prog_type` from raw instructions.
pub fn load(prog_type: u32, prog: &[u64], name: &[u8]) -> anyhow::Result<OwnedFd> {
    let license = c"GPL";
    let mut prog_name = [0u8; 16];
    let n = name.len().min(15);
    prog_name[..n].copy_from_slice(&name[..n]);
    let attr = ProgLoad {
        prog_type,
        insn_cnt: u32::try_from(prog.len())?,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name,
        ..ProgLoad::default()
    };
    // SAFETY: a valid bpf_attr for BPF_PROG_LOAD, alive for the call.
    owned(
        unsafe { sys(BPF_PROG_LOAD, &raw const attr) },
        "BPF_PROG_LOAD",
    )
}

/// A one-entry hash map (4-byte key, 8-byte value).
fn one_entry_hash() -> anyhow::Result<OwnedFd> {
    let attr = MapCreate {
        map_type: BPF_MAP_TYPE_HASH,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
        ..MapCreate::default()
    };
    // SAFETY: a valid bpf_attr for BPF_MAP_CREATE, alive for the call.
    owned(
        unsafe { sys(BPF_MAP_CREATE, &raw const attr) },
        "BPF_MAP_CREATE",
    )
}

/// `union bpf_attr` for `BPF_MAP_UPDATE_ELEM`.
#[repr(C, align(8))]
#[derive(Default)]
struct MapElem {
    map_fd: u32,
    pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// Sets key 0 of a one-entry map to 0.
fn set_key0(map: &OwnedFd) -> anyhow::Result<()> {
    let (key, value) = (0u32, 0u64);
    let attr = MapElem {
        map_fd: u32::try_from(map.as_raw_fd())?,
        key: (&raw const key) as u64,
        value: (&raw const value) as u64,
        ..MapElem::default()
    };
    // SAFETY: a valid bpf_attr for BPF_MAP_UPDATE_ELEM; key and value are
    // alive for the call.
    if unsafe { sys(BPF_MAP_UPDATE_ELEM, &raw const attr) } < 0 {
        return Err(os_err("BPF_MAP_UPDATE_ELEM"));
    }
    Ok(())
}

/// The trivial program: looks up key 0 of a one-entry hash map (the entry
/// exists: the lookup finds it) and returns `verdict`. Returns the program
/// and its map (which must outlive it). A hash lookup is a real call into
/// the map's code; an array lookup the verifier would inline to a few
/// instructions.
pub fn one_lookup(prog_type: u32, verdict: i32) -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let map = one_entry_hash()?;
    set_key0(&map)?;
    let fd = map.as_raw_fd();
    let prog = [
        insn_full(0x62, 10, 0, -4, 0),                // *(u32 *)(r10 - 4) = 0
        insn_full(0xbf, 2, 10, 0, 0),                 // r2 = r10
        insn(0x07, 2, -4),                            // r2 += -4
        insn_full(0x18, 1, BPF_PSEUDO_MAP_FD, 0, fd), // r1 = map (ld_imm64 ...
        0,                                            // ... second half)
        insn(0x85, 0, BPF_FUNC_MAP_LOOKUP_ELEM),      // call map_lookup_elem
        insn(0xb7, 0, verdict),                       // r0 = verdict
        insn(0x95, 0, 0),                             // exit
    ];
    let p = load(prog_type, &prog, b"hfw_trivial")?;
    Ok((p, map))
}

/// `BPF_PROG_TEST_RUN` of `prog` on `frame`, `repeat` times: (return
/// value, ns per run).
pub fn test_run(prog: &OwnedFd, frame: &[u8], repeat: u32) -> anyhow::Result<(u32, f64)> {
    let mut out = vec![0u8; frame.len() + 256];
    let mut attr = TestRun {
        prog_fd: u32::try_from(prog.as_raw_fd())?,
        data_size_in: u32::try_from(frame.len())?,
        data_in: frame.as_ptr() as u64,
        data_size_out: u32::try_from(out.len())?,
        data_out: out.as_mut_ptr() as u64,
        repeat,
        ..TestRun::default()
    };
    // SAFETY: a valid bpf_attr for BPF_PROG_TEST_RUN, alive for the call.
    if unsafe { sys(BPF_PROG_TEST_RUN, &raw mut attr) } < 0 {
        return Err(os_err("BPF_PROG_TEST_RUN"));
    }
    Ok((attr.retval, f64::from(attr.duration)))
}

/// `BPF_PROG_TEST_RUN` with live frames (the flood sender).
pub fn test_run_live(prog: &OwnedFd, frame: &[u8], repeat: u32) -> anyhow::Result<()> {
    let mut attr = TestRun {
        prog_fd: u32::try_from(prog.as_raw_fd())?,
        data_size_in: u32::try_from(frame.len())?,
        data_in: frame.as_ptr() as u64,
        repeat,
        flags: BPF_F_TEST_XDP_LIVE_FRAMES,
        batch_size: 64,
        ..TestRun::default()
    };
    // SAFETY: a valid bpf_attr for BPF_PROG_TEST_RUN, alive for the call.
    if unsafe { sys(BPF_PROG_TEST_RUN, &raw mut attr) } < 0 {
        return Err(os_err("BPF_PROG_TEST_RUN (live frames)"));
    }
    Ok(())
}

/// `bpf(cmd, attr)` for callers with their own attribute structs.
pub fn call<T>(cmd: libc::c_long, attr: &T, what: &str) -> anyhow::Result<OwnedFd> {
    // SAFETY: `attr` is a bpf_attr prefix for `cmd` (the caller's struct),
    // alive for the call; the kernel zero-checks the rest of its size.
    owned(unsafe { sys(cmd, std::ptr::from_ref(attr)) }, what)
}
