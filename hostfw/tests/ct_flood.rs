//! A flood of new flows must never evict an established allowed flow.
//!
//! The field report (issue 14): a node allowing the world on TCP 443 and a
//! bastion on ssh, ingress and egress default-deny. Spoofed SYNs to 443
//! filled connection tracking; idle established sessions were evicted, and
//! their next packet, from the side that did not open them, was judged a
//! new flow in its own direction and denied. Here, between namespaces and
//! bounded: two idle sessions (one opened by the peer, one by the node), a
//! flood of spoofed SYNs several times the tracker's size, then each
//! session's *non-opening* side speaks first.
//!
//! Needs root.

mod common;

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    time::Duration,
};

use common::{Pair, TestDatapath};
use hostfw::{
    datapath::{Datapath, LoadOptions, writer::Switch},
    mapstate,
    ruleset::{Action, Direction, L4, Mode, Peers, Rule, RuleSet},
    sockdiag::TcpConn,
};
use hostfw_common::{proto, stats::Stat};

const SSH: u16 = 2222;
const HTTPS: u16 = 443;
const OUT: u16 = 8443;
/// Entries of each connection tracker of the test datapath.
const TRACKED: u32 = 4096;
/// Spoofed SYNs: five times what the tracker holds.
const FLOOD: u32 = 5 * TRACKED;

/// Ingress and egress default-deny: the world may reach 443, the peer (the
/// bastion) `SSH`; the node may reach the peer's `OUT`.
fn policy(pair: &Pair) -> RuleSet {
    let peer = Peers::nets([pair.peer_v4.into()]);
    RuleSet {
        mode: Mode::Enforce,
        default_deny_ingress: true,
        default_deny_egress: true,
        rules: vec![
            Rule::new(
                1,
                Direction::Ingress,
                Action::Allow,
                Peers::Any,
                vec![L4::port(proto::TCP, HTTPS)],
            ),
            Rule::new(
                2,
                Direction::Ingress,
                Action::Allow,
                peer.clone(),
                vec![L4::port(proto::TCP, SSH)],
            ),
            Rule::new(
                3,
                Direction::Egress,
                Action::Allow,
                peer,
                vec![L4::port(proto::TCP, OUT)],
            ),
        ],
    }
}

/// A connection between two namespaces: `(opener's end, listener's end)`.
fn session(
    listen_ns: &common::Netns,
    open_ns: &common::Netns,
    addr: IpAddr,
    port: u16,
) -> (TcpStream, TcpStream) {
    let listener = listen_ns.run(move || {
        TcpListener::bind(("0.0.0.0", port)).unwrap_or_else(|e| panic!("bind {port}: {e}"))
    });
    let opener = open_ns.run(move || {
        TcpStream::connect_timeout(&SocketAddr::new(addr, port), Duration::from_secs(3))
            .unwrap_or_else(|e| panic!("connect {addr}:{port}: {e}"))
    });
    let (accepted, _) = listener
        .accept()
        .unwrap_or_else(|e| panic!("accept {port}: {e}"));
    for s in [&opener, &accepted] {
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap_or_else(|e| panic!("timeout: {e}"));
    }
    (opener, accepted)
}

/// Sends `msg` on `from` and whether `to` receives it.
fn carries(from: &mut TcpStream, to: &mut TcpStream, msg: &[u8]) -> bool {
    if from.write_all(msg).is_err() {
        return false;
    }
    let mut buf = vec![0u8; msg.len()];
    to.read_exact(&mut buf).is_ok() && buf == msg
}

/// 16-bit ones' complement sum, folded.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A TCP SYN from `src:sport` to `dst:HTTPS`, IPv4 header included.
fn syn(src: Ipv4Addr, sport: u16, dst: Ipv4Addr) -> [u8; 40] {
    let mut p = [0u8; 40];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[8] = 64;
    p[9] = proto::TCP;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let ip_sum = checksum(&p[..20]);
    p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    let t = &mut p[20..];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&HTTPS.to_be_bytes());
    t[4..8].copy_from_slice(&0x1000_0000u32.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02;
    t[14..16].copy_from_slice(&1024u16.to_be_bytes());
    let mut pseudo = Vec::with_capacity(32);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, proto::TCP, 0, 20]);
    pseudo.extend_from_slice(&p[20..]);
    let tcp_sum = checksum(&pseudo);
    p[36..38].copy_from_slice(&tcp_sum.to_be_bytes());
    p
}

/// Sends `n` SYNs to `dst:HTTPS` from distinct spoofed sources in
/// 100.64.0.0/10, from a raw socket in `ns`. Returns how many were sent.
fn spoofed_syn_flood(ns: &common::Netns, dst: Ipv4Addr, n: u32) -> u32 {
    ns.run(move || {
        // SAFETY: plain socket calls on a descriptor owned here.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
        assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        let to = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(dst).to_be(),
            },
            sin_zero: [0; 8],
        };
        let mut sent = 0;
        for i in 0..n {
            let src = Ipv4Addr::from(0x6440_0000 | (i + 1));
            let pkt = syn(src, 1024 + (i % 60000) as u16, dst);
            // SAFETY: `pkt` and `to` outlive the call.
            let r = unsafe {
                libc::sendto(
                    fd,
                    pkt.as_ptr().cast(),
                    pkt.len(),
                    0,
                    (&raw const to).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            };
            if r == 40 {
                sent += 1;
            } else {
                // The veth's queue is full: give the receiver a moment.
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        // SAFETY: closing our own descriptor.
        unsafe { libc::close(fd) };
        sent
    })
}

#[test]
fn a_syn_flood_never_evicts_idle_established_sessions() {
    let pair = Pair::new();
    let mut sizes = TestDatapath::SIZES;
    sizes.conntrack_new = TRACKED;
    sizes.conntrack_established = TRACKED;
    let mut t = TestDatapath::attached_with(&pair, sizes);
    let state = mapstate::compile(&policy(&pair)).expect("compiles");
    t.dp.apply(state, Switch::Confirmed).expect("apply");

    // Two sessions, each used once in both directions, then left idle.
    let (mut bastion, mut sshd) = session(&pair.node, &pair.peer, pair.node_v4, SSH);
    let (mut client, mut server) = session(&pair.peer, &pair.node, pair.peer_v4, OUT);
    assert!(
        carries(&mut bastion, &mut sshd, b"hello"),
        "inbound session"
    );
    assert!(carries(&mut sshd, &mut bastion, b"hello"), "inbound reply");
    assert!(
        carries(&mut client, &mut server, b"hello"),
        "outbound session"
    );
    assert!(
        carries(&mut server, &mut client, b"hello"),
        "outbound reply"
    );

    let IpAddr::V4(node_v4) = pair.node_v4 else {
        unreachable!("the pair's node_v4 is IPv4")
    };
    // The node answers every spoofed SYN, as in the field: its SYN-ACKs
    // are routed to the peer namespace, which drops them.
    common::sh(&[
        "ip",
        "-n",
        &pair.node.name,
        "route",
        "add",
        "100.64.0.0/10",
        "via",
        &pair.peer_v4.to_string(),
    ]);
    let before = t.dp.counters().expect("stats").get(Stat::FlowAllowed);
    let sent = spoofed_syn_flood(&pair.peer, node_v4, FLOOD);
    let admitted = t.dp.counters().expect("stats").get(Stat::FlowAllowed) - before;
    eprintln!("flood: {sent} SYNs sent, {admitted} admitted as new flows to {HTTPS}");
    assert!(
        admitted >= u64::from(2 * TRACKED),
        "the flood must overrun the tracker ({TRACKED} entries): only {admitted} SYNs were \
         admitted of {sent} sent"
    );

    // The side that did not open each session speaks first: a lost entry
    // makes its packet a new flow in its own direction, which default deny
    // drops (the node's sshd to the bastion's port; the peer's server to
    // the node's ephemeral port).
    assert!(
        carries(&mut sshd, &mut bastion, b"after the flood"),
        "the idle inbound session (bastion -> node:{SSH}) lost its tracking entry in the flood: \
         the node's next packet to the bastion was dropped by egress default deny"
    );
    assert!(
        carries(&mut server, &mut client, b"after the flood"),
        "the idle outbound session (node -> peer:{OUT}) lost its tracking entry in the flood: \
         the peer's next packet to the node was dropped by ingress default deny"
    );
    assert!(carries(&mut bastion, &mut sshd, b"both ways"), "inbound");
    assert!(carries(&mut client, &mut server, b"both ways"), "outbound");

    // What status and metrics report: the flood evicted new flows only.
    let counters = t.dp.counters().expect("stats");
    let usage = t.dp.conntrack_usage(&counters).expect("usage");
    eprintln!("conntrack after the flood: {usage:?}");
    assert_eq!(
        usage.established.evicted, 0,
        "established flows were evicted: {usage:?}"
    );
    assert!(
        usage.established.used >= 2,
        "both sessions are established: {usage:?}"
    );
    assert!(
        usage.new.evicted >= u64::from(TRACKED),
        "the flood overran the new-flow tracker, and its evictions are counted: {usage:?}"
    );
    assert_eq!(
        (usage.established.capacity, usage.new.capacity),
        (u64::from(TRACKED), u64::from(TRACKED)),
        "capacities are the kernel maps' sizes"
    );
}

/// `[conntrack]` sizes changed between two starts: the trackers are
/// recreated at the new size (the kernel cannot resize a map) and keep
/// their flows and the counters that account for them.
#[test]
fn a_resized_tracker_keeps_its_flows_and_counters() {
    let mut t = TestDatapath::load();
    let conns: Vec<TcpConn> = (0..100u16)
        .map(|i| TcpConn {
            local: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1)), 22),
            remote: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 9, 1, 1)), 40_000 + i),
            inode: 0,
            uid: 0,
        })
        .collect();
    let seeded = t.dp.seed_conntrack(&conns, &[22]).expect("seed");
    assert_eq!(seeded, 100);
    let before = t.dp.counters().expect("stats");
    let usage = t.dp.conntrack_usage(&before).expect("usage");
    assert_eq!(usage.established.used, 100);

    let mut sizes = TestDatapath::SIZES;
    sizes.conntrack_established *= 2;
    sizes.conntrack_new /= 2;
    let reloaded = Datapath::load(&LoadOptions {
        pin_root: t.pin_root.clone(),
        sizes,
    })
    .expect("reload with new sizes");
    drop(std::mem::replace(&mut t.dp, reloaded));
    let after = t.dp.counters().expect("stats");
    let usage = t.dp.conntrack_usage(&after).expect("usage");
    assert_eq!(
        (usage.established.capacity, usage.new.capacity),
        (
            u64::from(sizes.conntrack_established),
            u64::from(sizes.conntrack_new)
        ),
        "the kernel maps have the new sizes"
    );
    assert_eq!(usage.established.used, 100, "flows carried over");
    assert_eq!(usage.established.evicted, 0, "{usage:?}");
    assert_eq!(
        after.get(Stat::CtUserspaceAdded),
        100,
        "counters carried over"
    );
}

/// An upgrade from the release with one tracker (no `HFW_CT_NEW` pin, keys
/// in the originator's orientation): its flows are carried over under
/// their canonical keys, so a reply still finds its flow.
#[test]
fn an_older_trackers_flows_get_canonical_keys() {
    use aya::maps::HashMap;
    use hostfw_common::{
        conntrack::{CT_FLAG_KEY_REVERSED, CtKey, CtValue},
        names::{MAP_CONNTRACK, MAP_CONNTRACK_NEW},
    };
    let mut t = TestDatapath::load();
    // The originator is 10.9.0.2:40000, the node 10.9.0.1:22: this key is
    // not canonical (its source side sorts after its destination side).
    let mut legacy = CtKey {
        sport_be: 40_000u16.to_be(),
        dport_be: 22u16.to_be(),
        proto: proto::TCP,
        family: hostfw_common::FAMILY_V4,
        ..CtKey::default()
    };
    legacy.src[..4].copy_from_slice(&[10, 9, 0, 2]);
    legacy.dst[..4].copy_from_slice(&[10, 9, 0, 1]);
    assert!(legacy.canonical().1, "the test key must not be canonical");
    let value = CtValue {
        last_seen_ns: 1,
        revision: 7,
        ..CtValue::default()
    };
    {
        let map = t.dp.ebpf_mut().map_mut(MAP_CONNTRACK).expect("HFW_CT");
        let mut ct: HashMap<_, CtKey, CtValue> = HashMap::try_from(map).expect("hash");
        ct.insert(legacy, value, 0).expect("insert");
    }
    std::fs::remove_file(t.pin_root.join(MAP_CONNTRACK_NEW)).expect("unpin HFW_CT_NEW");

    let reloaded = Datapath::load(&LoadOptions {
        pin_root: t.pin_root.clone(),
        sizes: TestDatapath::SIZES,
    })
    .expect("reload");
    drop(std::mem::replace(&mut t.dp, reloaded));
    let map = t.dp.ebpf().map(MAP_CONNTRACK).expect("HFW_CT");
    let ct: HashMap<_, CtKey, CtValue> = HashMap::try_from(map).expect("hash");
    let entries: Vec<(CtKey, CtValue)> = ct.iter().flatten().collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let (key, v) = entries[0];
    assert_eq!(key, legacy.reversed(), "stored under its canonical key");
    assert_eq!(v.flags & CT_FLAG_KEY_REVERSED, CT_FLAG_KEY_REVERSED);
    assert_eq!(v.revision, 7);
    assert!(
        t.pin_root.join(MAP_CONNTRACK_NEW).exists(),
        "HFW_CT_NEW pinned"
    );
    // The carried-over flow is accounted for: not counted as evicted now,
    // and an eviction later would be counted (no slack from it).
    let counters = t.dp.counters().expect("stats");
    let usage = t.dp.conntrack_usage(&counters).expect("usage");
    assert_eq!(usage.established.used, 1);
    assert_eq!(
        counters.get(Stat::CtPromoted) + counters.get(Stat::CtUserspaceAdded),
        usage.established.used,
        "every entry of the established tracker is accounted as taken in: {usage:?}"
    );
}
