//! Real traffic between network namespaces over a veth pair, with the
//! programs attached to the node's veth (XDP + TC). Needs root.

mod common;

use std::time::Duration;

use common::{Pair, TestDatapath, traffic};
use hostfw::{
    datapath::{events::VerdictEvent, writer::Switch},
    mapstate,
    ruleset::{Action, Direction, L4, Mode, Peers, Rule, RuleSet},
};
use hostfw_common::{names::MAP_EVENTS, proto, stats::Stat};

const SHORT: Duration = Duration::from_millis(700);
const LONG: Duration = Duration::from_secs(3);

fn peer_rule(id: u32, dir: Direction, peers: Vec<std::net::IpAddr>, l4: Vec<L4>) -> Rule {
    let peers = Peers::nets(peers.into_iter().map(Into::into));
    Rule::new(id, dir, Action::Allow, peers, l4)
}

/// Ingress default-deny: the peer may reach TCP 8080, UDP 5353 and ping;
/// nothing else. Egress is open (no default deny).
fn node_policy(pair: &Pair, mode: Mode) -> RuleSet {
    let peers = vec![pair.peer_v4, pair.peer_v6];
    RuleSet {
        mode,
        default_deny_ingress: true,
        default_deny_egress: false,
        rules: vec![
            peer_rule(
                1,
                Direction::Ingress,
                peers.clone(),
                vec![L4::port(proto::TCP, 8080)],
            ),
            peer_rule(
                2,
                Direction::Ingress,
                peers.clone(),
                vec![L4::port(proto::UDP, 5353)],
            ),
            peer_rule(
                3,
                Direction::Ingress,
                peers,
                vec![L4::icmp(proto::ICMP, 8), L4::icmp(proto::ICMPV6, 128)],
            ),
        ],
    }
}

fn apply(t: &mut TestDatapath, rules: &RuleSet) {
    let state = mapstate::compile(rules).expect("compiles");
    t.dp.apply(state, Switch::Confirmed).expect("apply");
}

fn events(t: &mut TestDatapath) -> Vec<VerdictEvent> {
    let map = t.dp.ebpf_mut().map_mut(MAP_EVENTS).expect("events map");
    let mut ring = aya::maps::RingBuf::try_from(map).expect("ring buffer");
    let mut out = Vec::new();
    while let Some(item) = ring.next() {
        if let Some(e) = VerdictEvent::decode(&item) {
            out.push(e);
        }
    }
    out
}

#[test]
fn enforce_mode_allows_the_policy_and_drops_the_rest() {
    let pair = Pair::new();
    let mut t = TestDatapath::attached(&pair);
    apply(&mut t, &node_policy(&pair, Mode::Enforce));
    for port in [8080, 9090] {
        traffic::tcp_server(&pair.node, port);
    }
    for port in [5353, 5454] {
        traffic::udp_echo_server(&pair.node, port);
    }
    for (node, fam) in [(pair.node_v4, "IPv4"), (pair.node_v6, "IPv6")] {
        assert!(
            traffic::tcp_ok(&pair.peer, node, 8080, LONG),
            "{fam} TCP 8080 allowed"
        );
        assert!(
            !traffic::tcp_ok(&pair.peer, node, 9090, SHORT),
            "{fam} TCP 9090 dropped"
        );
        assert!(
            traffic::udp_ok(&pair.peer, node, 5353, LONG),
            "{fam} UDP 5353 allowed"
        );
        assert!(
            !traffic::udp_ok(&pair.peer, node, 5454, SHORT),
            "{fam} UDP 5454 dropped"
        );
        assert!(traffic::ping_ok(&pair.peer, node), "{fam} ping allowed");
    }
    let c = t.dp.counters().expect("counters");
    assert!(c.get(Stat::Dropped) >= 4, "drops counted: {c:?}");
    assert!(
        c.get(Stat::Icmp6Always) >= 1,
        "neighbour discovery passed: {c:?}"
    );
    let ev = events(&mut t);
    assert!(
        ev.iter()
            .any(|e| e.verdict == "denied" && e.dport == Some(9090)),
        "a denied event for 9090: {ev:#?}"
    );
    assert!(
        ev.iter()
            .any(|e| e.verdict == "allowed" && e.dport == Some(8080) && e.rule_id == 1),
        "an allowed event for 8080 by rule 1"
    );
    // Without the ping rule, pings stop.
    let mut no_ping = node_policy(&pair, Mode::Enforce);
    no_ping.rules.retain(|r| r.id != 3);
    apply(&mut t, &no_ping);
    assert!(
        !traffic::ping_ok(&pair.peer, pair.node_v4),
        "ping dropped without its rule"
    );
    assert!(
        !traffic::ping_ok(&pair.peer, pair.node_v6),
        "ping6 dropped without its rule"
    );
}

#[test]
fn replies_of_connections_the_node_opens_pass_under_ingress_default_deny() {
    let pair = Pair::new();
    let mut t = TestDatapath::attached(&pair);
    // Ingress default-deny with no rule at all for the peer.
    let rules = RuleSet {
        mode: Mode::Enforce,
        default_deny_ingress: true,
        default_deny_egress: false,
        rules: vec![],
    };
    apply(&mut t, &rules);
    traffic::tcp_server(&pair.peer, 7000);
    traffic::udp_echo_server(&pair.peer, 7001);
    traffic::tcp_server(&pair.node, 7002);
    for (peer, fam) in [(pair.peer_v4, "IPv4"), (pair.peer_v6, "IPv6")] {
        assert!(
            traffic::tcp_ok(&pair.node, peer, 7000, LONG),
            "{fam}: TCP reply passes"
        );
        assert!(
            traffic::udp_ok(&pair.node, peer, 7001, LONG),
            "{fam}: UDP reply passes"
        );
        assert!(
            traffic::ping_ok(&pair.node, peer),
            "{fam}: echo reply passes"
        );
    }
    assert!(
        !traffic::tcp_ok(&pair.peer, pair.node_v4, 7002, SHORT),
        "inbound still denied"
    );
    assert!(t.dp.counters().expect("counters").get(Stat::CtEstablished) > 0);
}

#[test]
fn audit_mode_passes_and_reports_what_it_would_drop() {
    let pair = Pair::new();
    let mut t = TestDatapath::attached(&pair);
    apply(&mut t, &node_policy(&pair, Mode::Audit));
    traffic::tcp_server(&pair.node, 9191);
    assert!(
        traffic::tcp_ok(&pair.peer, pair.node_v4, 9191, LONG),
        "audit: denied port still reachable"
    );
    assert!(
        traffic::tcp_ok(&pair.peer, pair.node_v6, 9191, LONG),
        "audit: v6 too"
    );
    let c = t.dp.counters().expect("counters");
    assert_eq!(c.get(Stat::Dropped), 0, "nothing dropped in audit mode");
    assert!(c.get(Stat::FlowAudit) >= 2);
    let ev = events(&mut t);
    assert!(
        ev.iter()
            .any(|e| e.verdict == "audit" && e.dport == Some(9191) && e.reason == "default-deny"),
        "AUDIT event for 9191: {ev:#?}"
    );
    // Switching the same policy to enforce cuts the audited flow's new
    // connections but keeps allowed ones.
    apply(&mut t, &node_policy(&pair, Mode::Enforce));
    assert!(
        !traffic::tcp_ok(&pair.peer, pair.node_v4, 9191, SHORT),
        "enforced now"
    );
}

#[test]
fn connections_opened_before_hostfw_keep_their_replies_once_seeded() {
    use std::{
        io::{Read, Write},
        net::{TcpListener, TcpStream},
    };

    let pair = Pair::new();
    // The peer's server pushes a line whenever the test asks it to.
    let (push_tx, push_rx) = std::sync::mpsc::channel::<&'static [u8]>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let peer_path = format!("/run/netns/{}", pair.peer.name);
    std::thread::spawn(move || {
        common::enter(&peer_path);
        let l = TcpListener::bind(("0.0.0.0", 7100)).expect("bind");
        let _ = ready_tx.send(());
        let (mut s, _) = l.accept().expect("accept");
        while let Ok(msg) = push_rx.recv() {
            if s.write_all(msg).is_err() {
                break;
            }
        }
    });
    ready_rx.recv().expect("server up");
    // The node connects out before any firewall exists, and only reads.
    let peer = pair.peer_v4;
    let node_path = format!("/run/netns/{}", pair.node.name);
    let (got_tx, got_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        common::enter(&node_path);
        let mut s = TcpStream::connect((peer, 7100)).expect("connect before hostfw");
        let mut buf = [0u8; 64];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 || got_tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let pushed = |msg: &'static [u8]| {
        push_tx.send(msg).expect("server alive");
        got_rx.recv_timeout(Duration::from_millis(1500)).is_ok()
    };
    assert!(pushed(b"one\n"), "works before hostfw");
    // hostfw starts: ingress default-deny, egress open.
    let mut t = TestDatapath::attached(&pair);
    apply(
        &mut t,
        &RuleSet {
            mode: Mode::Enforce,
            default_deny_ingress: true,
            default_deny_egress: false,
            rules: vec![],
        },
    );
    assert!(
        !pushed(b"two\n"),
        "unseeded: the peer's segment looks like a new inbound flow and is dropped"
    );
    // Seeding from the node's sockets makes it part of an outbound flow.
    let conns = pair
        .node
        .run(|| hostfw::sockdiag::established().expect("sock_diag"));
    assert!(
        conns.iter().any(|c| c.remote.port() == 7100),
        "listed: {conns:?}"
    );
    let added = t.dp.seed_conntrack(&conns, &[]).expect("seed");
    assert!(added >= 1);
    // The peer retransmits "two", which passes now.
    assert!(
        got_rx.recv_timeout(Duration::from_secs(5)).is_ok(),
        "seeded: the retransmitted segment passes"
    );
    assert!(pushed(b"three\n"), "and the flow stays open");
}
