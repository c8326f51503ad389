//! The loaded XDP and TC programs give the reference evaluator's verdict on
//! random (policy, packet) pairs. Needs root.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::TestDatapath;
use hostfw::{
    craft::Frame,
    datapath::testrun::{Prog, passes},
    datapath::writer::Switch,
    mapstate,
    refeval::{self, Packet, Verdict},
    ruleset::{Direction, Mode},
    testgen::{PacketOptions, RuleSetOptions, random_packet, random_ruleset},
};
use hostfw_common::{proto, stats::Stat};
use rand::{SeedableRng, rngs::StdRng};

const POLICIES: usize = 220;
const PACKETS_PER_POLICY: usize = 50;

/// A local address unique to case `n`, so no case meets another's
/// connection-tracking entry.
fn local(n: u32, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            0,
            0,
            0,
            (n >> 16) as u16,
            n as u16,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::from(0x6440_0000u32 | (n & 0x003f_ffff)))
    }
}

/// The frame for `pkt` as seen on the wire in its direction.
fn frame(pkt: &Packet, n: u32) -> Vec<u8> {
    let me = local(n, pkt.remote.is_ipv6());
    let (src, dst) = match pkt.direction {
        Direction::Ingress => (pkt.remote, me),
        Direction::Egress => (me, pkt.remote),
    };
    let sport = 1024 + (n % 60000) as u16;
    let mut f = match pkt.proto {
        proto::ICMP | proto::ICMPV6 => {
            let (t, c) = pkt.icmp.unwrap_or((0, 0));
            Frame::icmp(src, dst, t, c, sport).with_proto(pkt.proto)
        }
        p => Frame::tcp(src, dst, sport, pkt.port.unwrap_or(0)).with_proto(p),
    };
    if pkt.policy_port().is_some() {
        return f.build();
    }
    // Unknown port: a non-first fragment (its first fragment never seen).
    if src.is_ipv4() {
        f.fragment = Some((8, false));
        let mut b = f.build();
        b.truncate(14 + 20);
        b.extend_from_slice(&[0xee; 16]);
        b[16..18].copy_from_slice(&36u16.to_be_bytes());
        b
    } else {
        let mut b = f.build();
        b.truncate(14 + 40);
        let next = b[14 + 6];
        b[14 + 6] = 44;
        let id = n.to_be_bytes();
        b.extend_from_slice(&[next, 0, 0, 8 << 3, id[0], id[1], id[2], id[3]]);
        b.extend_from_slice(&[0xee; 16]);
        b[18..20].copy_from_slice(&24u16.to_be_bytes());
        b
    }
}

fn audited(t: &TestDatapath) -> u64 {
    t.dp.counters().expect("counters").get(Stat::Audited)
}

#[test]
fn kernel_verdicts_equal_the_reference_evaluator() {
    let mut t = TestDatapath::load_with(hostfw::datapath::MapSizes {
        ident_v4: 8192,
        ident_v6: 8192,
        policy: 65536,
        conntrack: 65536,
        frags: 256,
        rule_ids: 1 << 16,
    });
    let mut rng = StdRng::seed_from_u64(0x4f57_2026);
    let mut n = 0u32;
    let mut checked = 0usize;
    let mut by_verdict = [0usize; 3];
    for round in 0..POLICIES {
        let mut rules = random_ruleset(&mut rng, &RuleSetOptions::default());
        // Dense ids keep the per-rule counters small; verdicts do not depend
        // on the numbering.
        for (i, r) in rules.rules.iter_mut().enumerate() {
            r.id = u32::try_from(i + 1).unwrap_or(u32::MAX);
        }
        let state = mapstate::compile(&rules).unwrap_or_else(|e| panic!("round {round}: {e}"));
        t.dp.apply(&state, Switch::Confirmed)
            .unwrap_or_else(|e| panic!("round {round}: apply: {e:?}"));
        for _ in 0..PACKETS_PER_POLICY {
            n += 1;
            let pkt = random_packet(&mut rng, &rules, &PacketOptions::default());
            let want = refeval::evaluate(&rules, &pkt);
            let prog = match pkt.direction {
                Direction::Egress => Prog::TcOut,
                Direction::Ingress if n.is_multiple_of(2) => Prog::Xdp,
                Direction::Ingress => Prog::TcIn,
            };
            let before = audited(&t);
            let pass = passes(&t.dp, prog, &frame(&pkt, n));
            let got = match (pass, audited(&t) > before) {
                (true, true) => Verdict::Audit,
                (true, false) => Verdict::Allowed,
                (false, _) => Verdict::Denied,
            };
            assert_eq!(
                got, want.verdict,
                "round {round}, case {n}, {prog:?}: packet {pkt:?}\nexpected {want:?}\nrules: {rules:#?}"
            );
            by_verdict[want.verdict as usize] += 1;
            checked += 1;
        }
        if round % 50 == 0 {
            eprintln!(
                "round {round}: {checked} cases agree so far; mode {:?}",
                rules.mode
            );
        }
    }
    eprintln!("{checked} cases agree (allowed/denied/audit: {by_verdict:?})");
    assert!(checked >= 10_000);
    assert!(
        by_verdict.iter().all(|&c| c > 500),
        "verdict mix too thin: {by_verdict:?}"
    );
    let _ = Mode::Audit;
}
