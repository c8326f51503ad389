//! Policy swaps are atomic: a flow both policies allow never loses a packet
//! while the policy is swapped back and forth, and a flow both deny never
//! gets through. Real traffic over veth; needs root.

mod common;

use std::{
    net::UdpSocket,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::{Pair, TestDatapath, traffic};
use hostfw::{
    datapath::writer::Switch,
    mapstate,
    ruleset::{Action, Cidr, Direction, L4, Mode, Peers, Rule, RuleSet},
};
use hostfw_common::{proto, stats::Stat};

const SWAPS: usize = 120;

fn udp(port: u16) -> L4 {
    L4::port(proto::UDP, port)
}

/// Two different policies that both allow UDP 6000 from the peer and both
/// deny UDP 6001 (default deny).
fn policies(pair: &Pair) -> [RuleSet; 2] {
    let peer = Peers::nets([pair.peer_v4.into()]);
    let wide = Peers::Cidrs(vec![Cidr {
        net: "10.0.0.0/8".parse().expect("literal"),
        except: vec!["10.255.0.0/16".parse().expect("literal")],
    }]);
    let rule = |id, peers, l4| Rule::new(id, Direction::Ingress, Action::Allow, peers, l4);
    let a = RuleSet {
        mode: Mode::Enforce,
        default_deny_ingress: true,
        default_deny_egress: false,
        rules: vec![rule(1, peer.clone(), vec![udp(6000)])],
    };
    let b = RuleSet {
        rules: vec![
            rule(1, Peers::Any, vec![udp(7000)]),
            rule(2, wide, vec![udp(5990), udp(6000), udp(6010)]),
            rule(3, peer, vec![udp(6002)]),
        ],
        ..a.clone()
    };
    [a, b]
}

#[test]
fn swapping_policies_drops_nothing_they_both_allow() {
    let pair = Pair::new();
    let mut t = TestDatapath::attached(&pair);
    let [a, b] = policies(&pair);
    let states = [
        mapstate::compile(&a).expect("a compiles"),
        mapstate::compile(&b).expect("b compiles"),
    ];
    t.dp.apply(states[0].clone(), Switch::Confirmed)
        .expect("apply a");
    traffic::udp_echo_server(&pair.node, 6000);
    traffic::udp_echo_server(&pair.node, 6001);
    assert!(traffic::udp_ok(
        &pair.peer,
        pair.node_v4,
        6000,
        Duration::from_secs(3)
    ));

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let lost = Arc::new(AtomicUsize::new(0));
    let leaked = Arc::new(AtomicUsize::new(0));
    let node = pair.node_v4;
    let path = format!("/run/netns/{}", pair.peer.name);
    let sender = {
        let (stop, sent, lost, leaked) = (stop.clone(), sent.clone(), lost.clone(), leaked.clone());
        std::thread::spawn(move || {
            common::enter(&path);
            while !stop.load(Ordering::Relaxed) {
                // A new socket per round: each datagram starts a new flow,
                // so every one is decided by the policy in force.
                for (port, allowed) in [(6000u16, true), (6001u16, false)] {
                    let s = UdpSocket::bind("0.0.0.0:0").expect("bind");
                    let wait = if allowed { 2000 } else { 30 };
                    s.set_read_timeout(Some(Duration::from_millis(wait)))
                        .expect("timeout");
                    s.send_to(b"x", (node, port)).expect("send");
                    let got = s.recv_from(&mut [0u8; 8]).is_ok();
                    if allowed {
                        sent.fetch_add(1, Ordering::Relaxed);
                        if !got {
                            lost.fetch_add(1, Ordering::Relaxed);
                        }
                    } else if got {
                        leaked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    for i in 0..SWAPS {
        t.dp.apply(states[(i + 1) % 2].clone(), Switch::Confirmed)
            .unwrap_or_else(|e| panic!("swap {i}: {e:?}"));
    }
    stop.store(true, Ordering::Relaxed);
    sender.join().expect("sender thread");
    let (sent, lost, leaked) = (
        sent.load(Ordering::Relaxed),
        lost.load(Ordering::Relaxed),
        leaked.load(Ordering::Relaxed),
    );
    eprintln!(
        "{SWAPS} swaps; allowed flow: {sent} datagrams, {lost} lost; denied flow leaked {leaked}"
    );
    assert!(sent >= 50, "too little traffic during the swaps: {sent}");
    assert_eq!(lost, 0, "allowed datagrams lost during swaps");
    assert_eq!(leaked, 0, "denied datagrams let through during swaps");
    let c = t.dp.counters().expect("counters");
    assert!(
        c.get(Stat::Dropped) >= 1,
        "the denied flow was dropped: {c:?}"
    );
}
