//! Verdicts of the loaded programs on crafted packets (BPF_PROG_TEST_RUN):
//! policy decisions, parsing of every header kind, and the documented
//! verdicts of malformed packets. Needs root.

mod common;

use std::{net::IpAddr, str::FromStr, time::Duration};

use common::TestDatapath;
use hostfw::{
    craft::Frame,
    datapath::testrun::{Prog, passes},
    datapath::writer::{SlotState, Switch},
    mapstate,
    ruleset::{Action, Direction, L4, Mode, Peers, Rule, RuleSet},
};
use hostfw_common::{proto, stats::Stat};

fn ip(s: &str) -> IpAddr {
    IpAddr::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn cidrs(list: &[&str]) -> Peers {
    Peers::nets(
        list.iter()
            .map(|c| c.parse().unwrap_or_else(|e| panic!("{c}: {e}"))),
    )
}

/// The policy of these tests; both directions default-deny.
fn policy(mode: Mode) -> RuleSet {
    use Action::*;
    use Direction::*;
    let rule = Rule::new;
    RuleSet {
        mode,
        default_deny_ingress: true,
        default_deny_egress: true,
        rules: vec![
            rule(
                1,
                Ingress,
                Allow,
                cidrs(&["10.1.0.0/16", "fd00:1::/32"]),
                vec![L4::port(proto::TCP, 22)],
            ),
            rule(2, Ingress, Deny, cidrs(&["10.1.2.0/24"]), vec![L4::Any]),
            rule(
                3,
                Ingress,
                Allow,
                Peers::Any,
                vec![L4::Ports {
                    proto: proto::UDP,
                    first: 53,
                    last: 54,
                }],
            ),
            rule(4, Ingress, Allow, cidrs(&["10.9.0.0/16"]), vec![L4::Any]),
            rule(
                5,
                Ingress,
                Allow,
                cidrs(&["fd00:1::/32"]),
                vec![L4::icmp(proto::ICMPV6, 128)],
            ),
            rule(
                6,
                Ingress,
                Allow,
                cidrs(&["10.1.0.0/16"]),
                vec![L4::icmp(proto::ICMP, 8)],
            ),
            rule(
                7,
                Egress,
                Allow,
                Peers::Any,
                vec![L4::port(proto::TCP, 443)],
            ),
            rule(
                8,
                Ingress,
                Allow,
                cidrs(&["10.7.0.0/16"]),
                vec![L4::all_ports(proto::UDP)],
            ),
        ],
    }
}

const NODE4: &str = "192.0.2.1";
const NODE6: &str = "2001:db8::1";

fn setup(mode: Mode) -> TestDatapath {
    let mut t = TestDatapath::load();
    apply(&mut t, &policy(mode), Switch::Confirmed);
    t
}

fn apply(t: &mut TestDatapath, rules: &RuleSet, switch: Switch) {
    let state = mapstate::compile(rules).expect("test policy compiles");
    t.dp.apply(state, switch)
        .unwrap_or_else(|e| panic!("apply failed: {e:?}"));
}

/// Asserts the verdict of XDP and TC ingress (each on a fresh flow).
fn ingress(t: &TestDatapath, frame: &Frame, want: bool, what: &str) {
    let mut f = frame.clone();
    for prog in [Prog::Xdp, Prog::TcIn] {
        f.sport = f.sport.wrapping_add(1);
        assert_eq!(passes(&t.dp, prog, &f.build()), want, "{what} via {prog:?}");
    }
}

fn stat(t: &TestDatapath, s: Stat) -> u64 {
    t.dp.counters().expect("counters").get(s)
}

#[test]
fn policy_decisions_ipv4_and_ipv6() {
    let t = setup(Mode::Enforce);
    let n4 = ip(NODE4);
    let n6 = ip(NODE6);
    ingress(
        &t,
        &Frame::tcp(ip("10.1.5.5"), n4, 40000, 22),
        true,
        "allowed ssh",
    );
    ingress(
        &t,
        &Frame::tcp(ip("fd00:1::5"), n6, 40000, 22),
        true,
        "allowed ssh v6",
    );
    ingress(
        &t,
        &Frame::tcp(ip("10.1.2.3"), n4, 40100, 22),
        false,
        "deny beats allow",
    );
    ingress(
        &t,
        &Frame::tcp(ip("10.1.5.5"), n4, 40200, 23),
        false,
        "default deny port",
    );
    ingress(
        &t,
        &Frame::tcp(ip("10.2.0.1"), n4, 40300, 22),
        false,
        "default deny peer",
    );
    ingress(
        &t,
        &Frame::tcp(ip("fd00:2::5"), n6, 40000, 22),
        false,
        "default deny v6 peer",
    );
    ingress(
        &t,
        &Frame::udp(ip("203.0.113.9"), n4, 40400, 53),
        true,
        "any peer udp 53",
    );
    ingress(
        &t,
        &Frame::udp(ip("2001:db8:9::9"), n6, 40400, 54),
        true,
        "any peer udp 54 v6",
    );
    ingress(
        &t,
        &Frame::udp(ip("203.0.113.9"), n4, 40500, 55),
        false,
        "udp 55",
    );
    ingress(
        &t,
        &Frame::tcp(ip("10.9.3.3"), n4, 40600, 9999),
        true,
        "L3 rule any port",
    );
    ingress(
        &t,
        &Frame::tcp(ip("10.9.3.3"), n4, 40600, 1).with_proto(proto::SCTP),
        true,
        "L3 rule sctp",
    );
    ingress(
        &t,
        &Frame::icmp(ip("10.1.5.5"), n4, 8, 0, 7),
        true,
        "echo request v4",
    );
    ingress(
        &t,
        &Frame::icmp(ip("10.1.2.5"), n4, 8, 0, 7),
        false,
        "echo from denied /24",
    );
    ingress(
        &t,
        &Frame::icmp(ip("10.1.5.5"), n4, 13, 0, 7),
        false,
        "timestamp not allowed",
    );
    ingress(
        &t,
        &Frame::icmp(ip("fd00:1::5"), n6, 128, 0, 7),
        true,
        "echo request v6",
    );
    ingress(
        &t,
        &Frame::icmp(ip("fd00:9::5"), n6, 128, 0, 7),
        false,
        "echo v6 other peer",
    );
    ingress(
        &t,
        &Frame::tcp(ip("10.9.3.3"), n4, 40700, 0).with_proto(47),
        true,
        "GRE from L3-allowed peer",
    );
    ingress(
        &t,
        &Frame::tcp(ip("10.1.5.5"), n4, 40700, 0).with_proto(47),
        false,
        "GRE from port-only peer",
    );
    // Egress: only TCP 443.
    let out = |f: Frame| passes(&t.dp, Prog::TcOut, &f.build());
    assert!(
        out(Frame::tcp(n4, ip("198.51.100.7"), 50000, 443)),
        "egress 443"
    );
    assert!(
        !out(Frame::tcp(n4, ip("198.51.100.7"), 50001, 80)),
        "egress 80"
    );
    assert!(
        out(Frame::tcp(n6, ip("2001:db8:7::7"), 50000, 443)),
        "egress 443 v6"
    );
}

#[test]
fn icmpv6_classes_and_non_ip() {
    let t = setup(Mode::Enforce);
    let n6 = ip(NODE6);
    let peer = ip("fe80::99");
    for ty in [1u8, 2, 3, 4, 133, 134, 135, 136, 143] {
        ingress(
            &t,
            &Frame::icmp(peer, n6, ty, 0, 0),
            true,
            &format!("ICMPv6 type {ty} always passes"),
        );
    }
    for ty in [137u8, 138, 200] {
        ingress(
            &t,
            &Frame::icmp(peer, n6, ty, 0, 0),
            false,
            &format!("ICMPv6 type {ty} dropped"),
        );
    }
    // ARP: not IP, never filtered.
    let mut arp = vec![0xffu8; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0u8; 28]);
    assert!(passes(&t.dp, Prog::Xdp, &arp), "ARP passes XDP");
    assert!(passes(&t.dp, Prog::TcIn, &arp), "ARP passes TC");
    assert!(stat(&t, Stat::NotIp) >= 2);
}

#[test]
fn vlan_tags_options_and_extension_headers() {
    let t = setup(Mode::Enforce);
    let n4 = ip(NODE4);
    let n6 = ip(NODE6);
    for vlans in [vec![100], vec![100, 200]] {
        let mut ok = Frame::tcp(ip("10.1.5.5"), n4, 41000, 22);
        ok.vlans.clone_from(&vlans);
        ingress(
            &t,
            &ok,
            true,
            &format!("allowed behind {} tag(s)", vlans.len()),
        );
        let mut bad = Frame::tcp(ip("10.1.5.5"), n4, 41100, 23);
        bad.vlans = vlans;
        ingress(&t, &bad, false, "denied behind tags");
    }
    // IPv4 with 8 bytes of options (IHL 7): the TCP ports must still be read.
    let with_options = |dport: u16, sport: u16| {
        let mut f = Frame::tcp(ip("10.1.5.5"), n4, sport, dport).build();
        f[14] = 0x47;
        let total = u16::from_be_bytes([f[16], f[17]]) + 8;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f.splice(34..34, [1u8, 1, 1, 0, 1, 1, 1, 0]);
        f
    };
    for prog in [Prog::Xdp, Prog::TcIn] {
        assert!(
            passes(&t.dp, prog, &with_options(22, 41200 + prog as u16)),
            "options, port 22, {prog:?}"
        );
        assert!(
            !passes(&t.dp, prog, &with_options(23, 41300 + prog as u16)),
            "options, port 23, {prog:?}"
        );
    }
    // IPv6 with hop-by-hop and destination options before TCP.
    let with_ext = |dport: u16, sport: u16, count: usize| {
        let mut f = Frame::tcp(ip("fd00:1::5"), n6, sport, dport).build();
        let mut ext = Vec::new();
        for i in 0..count {
            let next = if i + 1 == count { proto::TCP } else { 60 };
            ext.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        f[14 + 6] = if count == 0 { proto::TCP } else { 0 };
        let len = u16::from_be_bytes([f[18], f[19]]) + u16::try_from(ext.len()).unwrap_or(0);
        f[18..20].copy_from_slice(&len.to_be_bytes());
        f.splice(54..54, ext);
        f
    };
    for prog in [Prog::Xdp, Prog::TcIn] {
        let s = 42000 + 10 * (prog as u16);
        assert!(
            passes(&t.dp, prog, &with_ext(22, s, 2)),
            "2 ext headers, 22, {prog:?}"
        );
        assert!(
            !passes(&t.dp, prog, &with_ext(23, s + 1, 2)),
            "2 ext headers, 23, {prog:?}"
        );
        assert!(
            passes(&t.dp, prog, &with_ext(22, s + 2, 8)),
            "8 ext headers, {prog:?}"
        );
        let before = stat(&t, Stat::Malformed);
        assert!(
            !passes(&t.dp, prog, &with_ext(22, s + 3, 9)),
            "9 ext headers: malformed, {prog:?}"
        );
        assert_eq!(
            stat(&t, Stat::Malformed),
            before + 1,
            "counted as malformed"
        );
    }
}

/// Truncated and inconsistent packets: a documented verdict, counted.
///
/// The flag says whether TC can be test-run on it too: BPF_PROG_TEST_RUN
/// refuses an skb shorter than its IP header (EINVAL), so those cases run
/// through XDP only.
fn malformed_frames() -> Vec<(&'static str, Vec<u8>, bool)> {
    let n4 = ip(NODE4);
    let good = Frame::tcp(ip("10.1.5.5"), n4, 43000, 22).build();
    let good6 = Frame::tcp(ip("fd00:1::5"), ip(NODE6), 43000, 22).build();
    let mut out = vec![
        ("IPv4 header cut", good[..14 + 12].to_vec(), false),
        ("TCP header cut", good[..14 + 20 + 10].to_vec(), true),
        ("IPv6 header cut", good6[..14 + 30].to_vec(), false),
    ];
    let mut ihl = good.clone();
    ihl[14] = 0x44;
    out.push(("IHL 4", ihl, true));
    let mut total = good.clone();
    total[16..18].copy_from_slice(&500u16.to_be_bytes());
    out.push(("total length beyond packet", total, true));
    let mut doff = good.clone();
    doff[14 + 20 + 12] = 4 << 4;
    out.push(("TCP data offset 4", doff, true));
    let mut ver = good.clone();
    ver[14] = 0x55;
    out.push(("IP version 5 in an IPv4 frame", ver, true));
    let mut plen = good6.clone();
    plen[18..20].copy_from_slice(&900u16.to_be_bytes());
    out.push(("IPv6 payload length beyond packet", plen, true));
    // A TCP header shorter than its 20 fixed bytes, with IP lengths that
    // agree: only the TCP check can catch it.
    const CUT: [(usize, &str); 6] = [
        (14, "TCP header of 14 bytes"),
        (15, "TCP header of 15 bytes"),
        (16, "TCP header of 16 bytes"),
        (17, "TCP header of 17 bytes"),
        (18, "TCP header of 18 bytes"),
        (19, "TCP header of 19 bytes"),
    ];
    for (len, what) in CUT {
        let mut f = good[..14 + 20 + len].to_vec();
        let total = u16::try_from(20 + len).unwrap_or(0);
        f[16..18].copy_from_slice(&total.to_be_bytes());
        // The IPv4 header checksum is not checked by the datapath.
        out.push((what, f, true));
    }
    let mut f6 = good6[..14 + 40 + 16].to_vec();
    f6[18..20].copy_from_slice(&16u16.to_be_bytes());
    out.push(("IPv6 with a TCP header of 16 bytes", f6, true));
    // A TCP data offset that points past the end of the packet.
    let mut doff_long = good.clone();
    doff_long[14 + 20 + 12] = 15 << 4;
    out.push(("TCP data offset beyond packet", doff_long, true));
    // More VLAN tags than the parser reads: it cannot find the IP header,
    // and such a frame must not pass as "not IP".
    let mut three = Frame::tcp(ip("10.1.5.5"), n4, 43000, 22);
    three.vlans = vec![100, 200, 300];
    out.push(("three VLAN tags", three.build(), true));
    out
}

#[test]
fn malformed_packets_are_dropped_under_default_deny_and_counted() {
    let t = setup(Mode::Enforce);
    // Every case is tried; the failure names all that went wrong.
    let mut wrong = Vec::new();
    for (what, frame, tc_too) in malformed_frames() {
        let progs: &[Prog] = if tc_too {
            &[Prog::Xdp, Prog::TcIn]
        } else {
            &[Prog::Xdp]
        };
        for &prog in progs {
            let before = stat(&t, Stat::Malformed);
            if passes(&t.dp, prog, &frame) {
                wrong.push(format!("{what} via {prog:?} passed"));
            } else if stat(&t, Stat::Malformed) != before + 1 {
                wrong.push(format!("{what} via {prog:?} not counted as malformed"));
            }
        }
    }
    assert!(wrong.is_empty(), "must be dropped as malformed: {wrong:#?}");
    // A bare Ethernet header of an unknown EtherType is not IP: passed.
    // (BPF_PROG_TEST_RUN refuses frames shorter than 14 bytes.)
    assert!(passes(&t.dp, Prog::Xdp, &[0u8; 14]), "bare Ethernet header");
}

#[test]
fn audit_mode_passes_what_it_would_drop_and_counts_it() {
    let t = setup(Mode::Audit);
    let n4 = ip(NODE4);
    let before = stat(&t, Stat::Audited);
    ingress(
        &t,
        &Frame::tcp(ip("10.1.2.3"), n4, 44000, 22),
        true,
        "deny rule in audit",
    );
    ingress(
        &t,
        &Frame::tcp(ip("10.2.0.1"), n4, 44100, 80),
        true,
        "default deny in audit",
    );
    assert!(stat(&t, Stat::Audited) >= before + 4, "audited counted");
    assert!(stat(&t, Stat::FlowAudit) >= 4);
    for (what, frame, _) in malformed_frames() {
        assert!(
            passes(&t.dp, Prog::Xdp, &frame),
            "{what} passes in audit mode"
        );
    }
    assert!(
        stat(&t, Stat::Dropped) == 0,
        "nothing dropped in audit mode"
    );
}

#[test]
fn fragments_follow_their_first_fragment() {
    let t = setup(Mode::Enforce);
    let n4 = ip(NODE4);
    for prog in [Prog::Xdp, Prog::TcIn] {
        let base = 45000 + 100 * (prog as u16);
        // Allowed UDP 53 from anyone: first fragment, then a later one.
        let mut first = Frame::udp(ip("203.0.113.9"), n4, base, 53);
        first.fragment = Some((0, true));
        first.payload = 16;
        assert!(
            passes(&t.dp, prog, &first.build()),
            "first fragment {prog:?}"
        );
        let mut later = first.clone();
        later.fragment = Some((3, false));
        // The later fragment has no UDP header; its bytes are payload.
        let mut bytes = later.build();
        bytes.truncate(14 + 20);
        bytes.extend_from_slice(&[0xcd; 16]);
        let total = 20u16 + 16;
        bytes[16..18].copy_from_slice(&total.to_be_bytes());
        assert!(
            passes(&t.dp, prog, &bytes),
            "later fragment follows first {prog:?}"
        );
        // A later fragment whose first was never seen, from a peer allowed
        // only on one TCP port: ports unknown, dropped.
        let mut orphan = Frame::tcp(ip("10.1.5.5"), n4, base + 1, 22);
        orphan.fragment = Some((5, false));
        let mut ob = orphan.build();
        ob[18..20].copy_from_slice(&(7000 + base).to_be_bytes());
        let before = stat(&t, Stat::FragmentUnknown);
        assert!(
            !passes(&t.dp, prog, &ob),
            "orphan fragment from port-only peer {prog:?}"
        );
        assert_eq!(stat(&t, Stat::FragmentUnknown), before + 1);
        // From a peer allowed on every UDP port: passes.
        let mut orphan_udp = Frame::udp(ip("10.7.1.1"), n4, base + 2, 9999);
        orphan_udp.fragment = Some((5, false));
        let mut ub = orphan_udp.build();
        ub[18..20].copy_from_slice(&(8000 + base).to_be_bytes());
        assert!(
            passes(&t.dp, prog, &ub),
            "orphan fragment, all-ports peer {prog:?}"
        );
    }
}

#[test]
fn replies_and_related_icmp_errors_of_allowed_flows_pass() {
    let t = setup(Mode::Enforce);
    let n4 = ip(NODE4);
    let remote = ip("198.51.100.7");
    // Without an outgoing connection the "reply" is a new inbound flow: dropped.
    let mut synack = Frame::tcp(remote, n4, 443, 51000);
    synack.tcp_flags = 0x12;
    assert!(
        !passes(&t.dp, Prog::Xdp, &synack.build()),
        "unsolicited SYN-ACK"
    );
    // The node connects out (allowed egress 443): the reply passes.
    assert!(passes(
        &t.dp,
        Prog::TcOut,
        &Frame::tcp(n4, remote, 51001, 443).build()
    ));
    let mut reply = Frame::tcp(remote, n4, 443, 51001);
    reply.tcp_flags = 0x12;
    assert!(passes(&t.dp, Prog::Xdp, &reply.build()), "reply via XDP");
    assert!(passes(&t.dp, Prog::TcIn, &reply.build()), "reply via TC");
    assert!(stat(&t, Stat::CtEstablished) >= 2);
    // An ICMP error quoting that connection's packet is related.
    let quoted = Frame::tcp(n4, remote, 51001, 443).ip_packet();
    let mut err = Frame::icmp(ip("203.0.113.1"), n4, 3, 4, 0);
    err.data = quoted[..28].to_vec();
    assert!(passes(&t.dp, Prog::Xdp, &err.build()), "related ICMP error");
    let unrelated = Frame::tcp(n4, remote, 51999, 443).ip_packet();
    let mut err2 = Frame::icmp(ip("203.0.113.1"), n4, 3, 4, 0);
    err2.data = unrelated[..28].to_vec();
    assert!(
        !passes(&t.dp, Prog::Xdp, &err2.build()),
        "unrelated ICMP error"
    );
    // IPv6 echo from the node, reply passes.
    let n6 = ip(NODE6);
    let r6 = ip("2001:db8:7::7");
    let mut egress_policy = policy(Mode::Enforce);
    egress_policy.rules.push(Rule::new(
        9,
        Direction::Egress,
        Action::Allow,
        Peers::Any,
        vec![L4::icmp(proto::ICMPV6, 128)],
    ));
    let mut t2 = TestDatapath::load();
    apply(&mut t2, &egress_policy, Switch::Confirmed);
    assert!(passes(
        &t2.dp,
        Prog::TcOut,
        &Frame::icmp(n6, r6, 128, 0, 99).build()
    ));
    assert!(
        passes(&t2.dp, Prog::Xdp, &Frame::icmp(r6, n6, 129, 0, 99).build()),
        "echo reply"
    );
    assert!(
        !passes(&t2.dp, Prog::Xdp, &Frame::icmp(r6, n6, 129, 0, 98).build()),
        "unsolicited echo reply"
    );
}

#[test]
fn a_policy_change_reevaluates_established_flows() {
    let mut t = setup(Mode::Enforce);
    let n4 = ip(NODE4);
    let syn = Frame::tcp(ip("10.1.5.5"), n4, 46000, 22);
    assert!(passes(&t.dp, Prog::Xdp, &syn.build()));
    let mut ack = syn.clone();
    ack.tcp_flags = 0x10;
    assert!(passes(&t.dp, Prog::Xdp, &ack.build()), "established");
    // Same flow, a policy that still allows it: passes, re-evaluated once.
    let mut same = policy(Mode::Enforce);
    same.rules.retain(|r| r.id != 6);
    apply(&mut t, &same, Switch::Confirmed);
    let before = stat(&t, Stat::CtReevaluated);
    assert!(passes(&t.dp, Prog::Xdp, &ack.build()), "still allowed");
    assert_eq!(stat(&t, Stat::CtReevaluated), before + 1);
    assert!(passes(&t.dp, Prog::Xdp, &ack.build()), "and tracked again");
    assert_eq!(
        stat(&t, Stat::CtReevaluated),
        before + 1,
        "re-evaluated only once"
    );
    // A policy without the ssh rule: the established flow is cut.
    let mut no_ssh = policy(Mode::Enforce);
    no_ssh.rules.retain(|r| r.id != 1);
    apply(&mut t, &no_ssh, Switch::Confirmed);
    assert!(
        !passes(&t.dp, Prog::Xdp, &ack.build()),
        "stale entry must not let it through"
    );
    assert!(!passes(&t.dp, Prog::TcIn, &ack.build()), "and stays cut");
}

#[test]
fn dead_man_switch_reverts_in_the_kernel() {
    let mut t = setup(Mode::Enforce);
    let n4 = ip(NODE4);
    let mut no_ssh = policy(Mode::Enforce);
    no_ssh.rules.retain(|r| r.id != 1);
    apply(
        &mut t,
        &no_ssh,
        Switch::Trial {
            duration: Duration::from_millis(1500),
        },
    );
    assert!(matches!(
        t.dp.slot_state().expect("state"),
        SlotState::Trial { .. }
    ));
    assert!(
        !passes(
            &t.dp,
            Prog::Xdp,
            &Frame::tcp(ip("10.1.5.5"), n4, 47000, 22).build()
        ),
        "trial denies ssh"
    );
    // Nothing in userspace acts from here on: only time passes.
    std::thread::sleep(Duration::from_millis(1700));
    assert!(
        passes(
            &t.dp,
            Prog::Xdp,
            &Frame::tcp(ip("10.1.5.5"), n4, 47001, 22).build()
        ),
        "kernel fell back to the confirmed policy"
    );
    assert!(matches!(
        t.dp.slot_state().expect("state"),
        SlotState::Expired { .. }
    ));
    // Userspace catching up later makes it official.
    assert!(t.dp.rollback().expect("rollback"));
    assert!(matches!(
        t.dp.slot_state().expect("state"),
        SlotState::Confirmed { .. }
    ));
    assert!(passes(
        &t.dp,
        Prog::Xdp,
        &Frame::tcp(ip("10.1.5.5"), n4, 47002, 22).build()
    ));
}

#[test]
fn icmp_fragments_keep_the_type_of_their_first_fragment() {
    // Only echo replies (type 0) are allowed in.
    let mut t = TestDatapath::load();
    let only_echo_reply = RuleSet {
        mode: Mode::Enforce,
        default_deny_ingress: true,
        default_deny_egress: false,
        rules: vec![Rule::new(
            1,
            Direction::Ingress,
            Action::Allow,
            Peers::Any,
            vec![L4::icmp(proto::ICMP, 0)],
        )],
    };
    apply(&mut t, &only_echo_reply, Switch::Confirmed);
    let n4 = ip(NODE4);
    for prog in [Prog::Xdp, Prog::TcIn] {
        // A fragmented timestamp request (type 13): its first fragment is
        // denied, and so is the later one, which must not pass as "type 0".
        let mut first = Frame::icmp(ip("203.0.113.9"), n4, 13, 0, 77);
        first.fragment = Some((0, true));
        first.payload = 16;
        assert!(
            !passes(&t.dp, prog, &first.build()),
            "first fragment {prog:?}"
        );
        let mut later = first.build();
        later.truncate(14 + 20);
        later[20..22].copy_from_slice(&(2u16 & 0x1fff).to_be_bytes());
        later.extend_from_slice(&[0xcd; 16]);
        later[16..18].copy_from_slice(&36u16.to_be_bytes());
        assert!(
            !passes(&t.dp, prog, &later),
            "later fragment of type 13 {prog:?}"
        );
    }
}

#[test]
fn a_second_loader_adopts_the_pinned_maps_and_their_policy() {
    let mut t = setup(Mode::Enforce);
    let n4 = ip(NODE4);
    // A second load on the same pins, as a restarted daemon does.
    let mut again = hostfw::datapath::Datapath::load(&hostfw::datapath::LoadOptions {
        pin_root: t.pin_root.clone(),
        sizes: t.dp.sizes(),
    })
    .expect("second load on the same pins");
    let ssh = |sport| Frame::tcp(ip("10.1.5.5"), n4, sport, 22).build();
    assert!(
        passes(&again, Prog::Xdp, &ssh(48000)),
        "the running policy is in force at once"
    );
    assert!(matches!(
        again.slot_state().expect("state"),
        SlotState::Confirmed { .. }
    ));
    // The new loader knows nothing of the slots' contents: it reads them back
    // and writes the next policy correctly.
    let mut no_ssh = policy(Mode::Enforce);
    no_ssh.rules.retain(|r| r.id != 1);
    let state = mapstate::compile(&no_ssh).expect("compiles");
    again
        .apply(state.clone(), Switch::Confirmed)
        .expect("apply");
    assert!(!passes(&again, Prog::Xdp, &ssh(48001)), "new policy");
    assert!(
        !passes(&t.dp, Prog::Xdp, &ssh(48002)),
        "seen by the first loader's programs too"
    );
    let SlotState::Confirmed { generation } = again.slot_state().expect("state") else {
        panic!("not confirmed");
    };
    // The slot left behind keeps the previous policy, out of force, for the
    // next write to diff against.
    let old = again.read_generation(1 - generation).expect("read");
    let previous = mapstate::compile(&policy(Mode::Enforce)).expect("compiles");
    assert!(
        old.same_entries(&previous),
        "the old generation holds the previous policy"
    );
    assert_eq!(
        again.read_generation(generation).expect("read").policy,
        state.policy
    );
    // And the first loader, whose idea of the slots is now stale, can still
    // apply: it writes only into the slot that is not in force.
    apply(&mut t, &policy(Mode::Enforce), Switch::Confirmed);
    assert!(passes(&t.dp, Prog::Xdp, &ssh(48003)));
}

#[test]
fn a_cut_flow_stays_cut_in_both_directions() {
    // Ingress allows ssh; egress is open (no default deny).
    let open_egress = |ssh: bool| RuleSet {
        mode: Mode::Enforce,
        default_deny_ingress: true,
        default_deny_egress: false,
        rules: if ssh {
            vec![Rule::new(
                1,
                Direction::Ingress,
                Action::Allow,
                Peers::Any,
                vec![L4::port(proto::TCP, 22)],
            )]
        } else {
            vec![]
        },
    };
    let mut t = TestDatapath::load();
    apply(&mut t, &open_egress(true), Switch::Confirmed);
    let n4 = ip(NODE4);
    let client = ip("10.1.5.5");
    let inbound = Frame::tcp(client, n4, 49000, 22);
    let mut reply = Frame::tcp(n4, client, 22, 49000);
    reply.tcp_flags = 0x18;
    assert!(passes(&t.dp, Prog::Xdp, &inbound.build()), "session opens");
    assert!(passes(&t.dp, Prog::TcOut, &reply.build()), "node answers");
    // A policy without ssh: the session is cut...
    apply(&mut t, &open_egress(false), Switch::Confirmed);
    assert!(
        !passes(&t.dp, Prog::Xdp, &inbound.build()),
        "client's packet dropped"
    );
    // ...and the node's retransmission must not reopen it as a new
    // outbound flow (egress is open), nor let the client back in.
    assert!(
        !passes(&t.dp, Prog::TcOut, &reply.build()),
        "node's packet of the cut flow"
    );
    assert!(!passes(&t.dp, Prog::Xdp, &inbound.build()), "still cut");
    // A policy allowing ssh again: the flow is evaluated again and passes.
    apply(&mut t, &open_egress(true), Switch::Confirmed);
    assert!(passes(&t.dp, Prog::Xdp, &inbound.build()), "allowed again");
    assert!(passes(&t.dp, Prog::TcOut, &reply.build()));
}
