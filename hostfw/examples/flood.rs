//! UDP flood tools for `scripts/bench.sh` (root, run inside the benchmark's
//! network namespaces; they never pick an address by themselves).
//!
//! - `flood send --ifname IF --src ADDR --dst ADDR --dport PORT --secs S
//!   [--batch N]`: sends minimum-size UDP frames (60 bytes) out of `IF`
//!   through an `AF_PACKET` socket with `PACKET_QDISC_BYPASS`, `N` frames
//!   per `sendmmsg`, for `S` seconds. The frames carry the MAC addresses of
//!   `hostfw::craft` (source `02:00:00:00:00:01`, destination
//!   `02:00:00:00:00:02`): the benchmark gives its veth pair those
//!   addresses. Prints one JSON line: frames offered (every frame handed to
//!   the kernel), sent (accepted by the interface) and refused (`ENOBUFS`:
//!   the receiver's queue was full), and the rates.
//! - `flood sink --port PORT`: counts UDP datagrams on `PORT` per source
//!   address until its standard input closes, then prints one JSON line.
//! - `flood probe --bind ADDR --dst ADDR --dport PORT --count N`: sends `N`
//!   ordinary UDP datagrams from `ADDR` (the allowed flow), 1 ms apart.

use std::{
    collections::BTreeMap,
    io::Read as _,
    net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket},
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use hostfw::craft::Frame;

#[path = "common/args.rs"]
mod args;
#[path = "common/rawbpf.rs"]
mod rawbpf;
use args::Args;
use rawbpf::{insn, os_err};

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = argv.split_first() else {
        bail!("usage: flood send|sink|probe [--option value]...");
    };
    let args = Args(rest.to_vec());
    match cmd.as_str() {
        "send" => send(&args),
        "sink" => sink(&args),
        "probe" => probe(&args),
        "xdp-send" => xdp_send(&args),
        "xdp-attach" => xdp_attach(&args),
        other => bail!("unknown command {other}: send, xdp-send, xdp-attach, sink or probe"),
    }
}

/// The frame: Ethernet, IPv4 (with its header checksum), UDP without
/// checksum, 18 bytes of payload: 60 bytes, the Ethernet minimum.
fn frame(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
    let mut f = Frame {
        payload: 18,
        ..Frame::udp(IpAddr::V4(src), IpAddr::V4(dst), sport, dport)
    }
    .build();
    let ip = 14;
    let mut sum: u32 = 0;
    for i in (ip..ip + 20).step_by(2) {
        sum += u32::from(u16::from_be_bytes([f[i], f[i + 1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let csum = !u16::try_from(sum).unwrap_or(0);
    f[ip + 10..ip + 12].copy_from_slice(&csum.to_be_bytes());
    f
}

fn send(args: &Args) -> anyhow::Result<()> {
    let ifname: String = args.req("--ifname")?;
    let src: Ipv4Addr = args.req("--src")?;
    let dst: Ipv4Addr = args.req("--dst")?;
    let dport: u16 = args.req("--dport")?;
    let secs: f64 = args.req("--secs")?;
    let batch: usize = args.opt("--batch", 64)?;
    let ifindex = nix::net::if_::if_nametoindex(ifname.as_str())
        .with_context(|| format!("no interface {ifname}"))?;
    // Protocol 0: this socket only sends; it gets no copy of received frames.
    // SAFETY: plain socket(2) call; the descriptor is owned right away.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(os_err("socket(AF_PACKET)"));
    }
    // SAFETY: `raw` is a fresh descriptor owned by nothing else.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let one: libc::c_int = 1;
    // SAFETY: valid option pointer and length.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            (&raw const one).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(os_err("PACKET_QDISC_BYPASS"));
    }
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = i32::try_from(ifindex)?;
    // SAFETY: `sll` is a valid sockaddr_ll of the given length.
    let rc = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&raw const sll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(os_err("bind(AF_PACKET)"));
    }
    let frames: Vec<Vec<u8>> = (0..batch)
        .map(|i| {
            frame(
                src,
                dst,
                40000 + u16::try_from(i % 1000).unwrap_or(0),
                dport,
            )
        })
        .collect();
    let mut iovs: Vec<libc::iovec> = frames
        .iter()
        .map(|f| libc::iovec {
            iov_base: f.as_ptr().cast_mut().cast(),
            iov_len: f.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iovs
        .iter_mut()
        .map(|iov| {
            // SAFETY: all-zero is a valid mmsghdr.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    let (mut sent, mut refused, mut calls) = (0u64, 0u64, 0u64);
    let limit = Duration::from_secs_f64(secs);
    let start = Instant::now();
    loop {
        if calls % 16 == 0 && start.elapsed() >= limit {
            break;
        }
        calls += 1;
        // SAFETY: `msgs` points at `iovs` and `frames`, alive for the call.
        let n = unsafe {
            libc::sendmmsg(
                sock.as_raw_fd(),
                msgs.as_mut_ptr(),
                u32::try_from(batch)?,
                0,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENOBUFS | libc::EAGAIN) => refused += 1,
                _ => bail!("sendmmsg: {e}"),
            }
            continue;
        }
        let n = u64::try_from(n)?;
        sent += n;
        if n < batch as u64 {
            // The frame after the last one sent was refused.
            refused += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let offered = sent + refused;
    #[expect(clippy::cast_precision_loss, reason = "packet counts fit easily")]
    let (offered_pps, sent_pps) = (offered as f64 / secs, sent as f64 / secs);
    println!(
        "{}",
        serde_json::json!({
            "offered": offered, "sent": sent, "refused": refused, "secs": secs,
            "offered_pps": offered_pps, "sent_pps": sent_pps,
        })
    );
    Ok(())
}

fn sink(args: &Args) -> anyhow::Result<()> {
    let port: u16 = args.req("--port")?;
    let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
        .with_context(|| format!("bind UDP port {port}"))?;
    let size: libc::c_int = 8 << 20;
    // SAFETY: valid option pointer and length.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&raw const size).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    sock.set_read_timeout(Some(Duration::from_millis(50)))?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            stop.store(true, Ordering::Relaxed);
        });
    }
    println!("ready");
    const BATCH: usize = 64;
    let mut bufs = vec![[0u8; 256]; BATCH];
    // SAFETY: all-zero is a valid sockaddr_in.
    let mut names: Vec<libc::sockaddr_in> = vec![unsafe { std::mem::zeroed() }; BATCH];
    let mut iovs: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    let mut by_source: BTreeMap<Ipv4Addr, u64> = BTreeMap::new();
    let mut total = 0u64;
    let start = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let mut msgs: Vec<libc::mmsghdr> = iovs
            .iter_mut()
            .zip(names.iter_mut())
            .map(|(iov, name)| {
                // SAFETY: all-zero is a valid mmsghdr.
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_iov = iov;
                m.msg_hdr.msg_iovlen = 1;
                m.msg_hdr.msg_name = std::ptr::from_mut(name).cast();
                m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
                m
            })
            .collect();
        // SAFETY: the headers point at live buffers of the sizes given.
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            continue;
        }
        for name in names.iter().take(usize::try_from(n)?) {
            let src = Ipv4Addr::from(u32::from_be(name.sin_addr.s_addr));
            *by_source.entry(src).or_default() += 1;
            total += 1;
        }
    }
    let by_source: BTreeMap<String, u64> = by_source
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "total": total, "secs": start.elapsed().as_secs_f64(), "by_source": by_source,
        })
    );
    Ok(())
}

fn probe(args: &Args) -> anyhow::Result<()> {
    let bind: Ipv4Addr = args.req("--bind")?;
    let dst: Ipv4Addr = args.req("--dst")?;
    let dport: u16 = args.req("--dport")?;
    let count: u32 = args.opt("--count", 20)?;
    let sock =
        UdpSocket::bind(SocketAddrV4::new(bind, 0)).with_context(|| format!("bind {bind}"))?;
    let to = SocketAddr::V4(SocketAddrV4::new(dst, dport));
    let mut sent = 0u32;
    for _ in 0..count {
        if sock.send_to(b"hostfw-bench probe", to).is_ok() {
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("{}", serde_json::json!({ "sent": sent }));
    Ok(())
}

const BPF_FUNC_REDIRECT: i32 = 23;

/// The kernel's own packet generator: `BPF_PROG_TEST_RUN` of a 4-instruction
/// XDP program returning `bpf_redirect(IF)`, with live frames: each run
/// transmits the frame out of `IF` as an XDP frame, as a NIC would deliver
/// it (no socket buffer on the way). The receiving veth runs its XDP program
/// on the frame itself; without one, the frame becomes an skb and goes up
/// the stack (netfilter).
fn xdp_send(args: &Args) -> anyhow::Result<()> {
    let ifname: String = args.req("--ifname")?;
    let src: Ipv4Addr = args.req("--src")?;
    let dst: Ipv4Addr = args.req("--dst")?;
    let dport: u16 = args.req("--dport")?;
    let secs: f64 = args.req("--secs")?;
    let ifindex = nix::net::if_::if_nametoindex(ifname.as_str())
        .with_context(|| format!("no interface {ifname}"))?;
    let prog = [
        insn(0xb7, 1, i32::try_from(ifindex)?), // r1 = ifindex
        insn(0xb7, 2, 0),                       // r2 = 0 (flags)
        insn(0x85, 0, BPF_FUNC_REDIRECT),       // call bpf_redirect
        insn(0x95, 0, 0),                       // exit
    ];
    let prog_fd = rawbpf::load(rawbpf::BPF_PROG_TYPE_XDP, &prog, b"hfw_flood")?;
    let data = frame(src, dst, 40000, dport);
    let repeat: u32 = args.opt("--repeat", 200_000)?;
    let limit = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut offered = 0u64;
    while start.elapsed() < limit {
        rawbpf::test_run_live(&prog_fd, &data, repeat)?;
        offered += u64::from(repeat);
    }
    let secs = start.elapsed().as_secs_f64();
    #[expect(clippy::cast_precision_loss, reason = "packet counts fit easily")]
    let offered_pps = offered as f64 / secs;
    println!(
        "{}",
        serde_json::json!({ "offered": offered, "secs": secs, "offered_pps": offered_pps })
    );
    Ok(())
}

const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_XDP: u32 = 37;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// `union bpf_attr` for `BPF_LINK_CREATE`.
#[repr(C, align(8))]
#[derive(Default)]
struct LinkCreate {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    rest: [u64; 8],
}

/// `xdp-attach --ifname IF --action drop|pass`: a reference program that
/// does nothing but drop (or pass) every frame, attached in native mode
/// until standard input closes. It shows what XDP costs on this path by
/// itself, apart from any firewall.
fn xdp_attach(args: &Args) -> anyhow::Result<()> {
    let ifname: String = args.req("--ifname")?;
    let action: i32 = match args.req::<String>("--action")?.as_str() {
        "drop" => 1,
        "pass" => 2,
        other => bail!("--action {other}: drop or pass"),
    };
    let ifindex = nix::net::if_::if_nametoindex(ifname.as_str())
        .with_context(|| format!("no interface {ifname}"))?;
    let prog = [insn(0xb7, 0, action), insn(0x95, 0, 0)]; // r0 = action; exit
    let prog_fd = rawbpf::load(rawbpf::BPF_PROG_TYPE_XDP, &prog, b"hfw_bench_ref")?;
    let attr = LinkCreate {
        prog_fd: u32::try_from(prog_fd.as_raw_fd())?,
        target_ifindex: ifindex,
        attach_type: BPF_XDP,
        flags: XDP_FLAGS_DRV_MODE,
        ..LinkCreate::default()
    };
    // Closing the link detaches the program.
    let _link = rawbpf::call(BPF_LINK_CREATE, &attr, "BPF_LINK_CREATE (XDP, native)")?;
    println!("ready");
    let mut buf = [0u8; 64];
    let mut stdin = std::io::stdin();
    while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
    Ok(())
}
