//! Another tool's XDP program on an interface hostfw manages: hostfw
//! leaves it attached and enforces at TC, tells it apart from its own
//! program by record (not by name), and does not let it forge the mark
//! with which hostfw's XDP tells TC ingress a packet is decided. Real
//! traffic over veth between test namespaces; needs root.

mod common;

use std::time::{Duration, Instant};

use common::{Pair, TestDatapath, daemon::Daemon, foreign, traffic};
use hostfw::{
    datapath::{
        Datapath, LoadOptions,
        attach::{Attachment, TcAttach, XdpAttach, XdpState},
        bpffs::{link_pin, xdp_owner_record},
        writer::Switch,
    },
    mapstate,
    ruleset::{Action, Direction, L4, Mode, Peers, Rule, RuleSet},
};
use hostfw_common::{names::MAP_CONFIG, proto, stats::Stat};

const SHORT: Duration = Duration::from_millis(700);
const LONG: Duration = Duration::from_secs(3);
const ALLOWED: u16 = 8080;
const DENIED: u16 = 9090;
/// The fixed marker hostfw's XDP used to write.
const HFW1: u32 = u32::from_le_bytes(*b"HFW1");

/// Ingress default-deny; the peer may reach TCP 8080.
fn policy(pair: &Pair) -> RuleSet {
    let peers = Peers::nets([pair.peer_v4, pair.peer_v6].into_iter().map(Into::into));
    RuleSet {
        mode: Mode::Enforce,
        default_deny_ingress: true,
        default_deny_egress: false,
        rules: vec![Rule::new(
            1,
            Direction::Ingress,
            Action::Allow,
            peers,
            vec![L4::port(proto::TCP, ALLOWED)],
        )],
    }
}

fn apply(t: &mut TestDatapath, pair: &Pair) {
    let state = mapstate::compile(&policy(pair)).expect("compiles");
    t.dp.apply(state, Switch::Confirmed).expect("apply");
}

/// Loads the datapath inside the node namespace, not attached.
fn load_in_node(pair: &Pair) -> TestDatapath {
    let path = format!("/run/netns/{}", pair.node.name);
    std::thread::spawn(move || {
        common::enter(&path);
        TestDatapath::load()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Attaches `t` to the node's veth (inside the node namespace).
fn attach(pair: &Pair, mut t: TestDatapath) -> (TestDatapath, Attachment) {
    let path = format!("/run/netns/{}", pair.node.name);
    let ifname = pair.node_if.clone();
    std::thread::spawn(move || {
        common::enter(&path);
        let a =
            t.dp.attach(&ifname)
                .unwrap_or_else(|e| panic!("attach to {ifname} failed: {e}"));
        eprintln!("attached: {a}");
        (t, a)
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// TCP to ALLOWED passes and to DENIED does not, IPv4 and IPv6.
fn assert_enforced(pair: &Pair, what: &str) {
    for (node, fam) in [(pair.node_v4, "IPv4"), (pair.node_v6, "IPv6")] {
        assert!(
            traffic::tcp_ok(&pair.peer, node, ALLOWED, LONG),
            "{what}: {fam} TCP {ALLOWED} allowed"
        );
        assert!(
            !traffic::tcp_ok(&pair.peer, node, DENIED, SHORT),
            "{what}: {fam} TCP {DENIED} must be dropped"
        );
    }
}

fn servers(pair: &Pair) {
    for port in [ALLOWED, DENIED] {
        traffic::tcp_server(&pair.node, port);
    }
}

#[test]
fn tc_enforces_the_policy_when_another_xdp_program_is_attached() {
    let pair = Pair::new();
    let id = foreign::attach(&pair.node, &pair.node_if, "other_fw", None);
    let (mut t, a) = attach(&pair, load_in_node(&pair));
    assert_eq!(a.xdp, foreign_state(id, "other_fw"), "{a}");
    assert!(
        a.to_string().contains(&format!(
            "xdp: another program (id {id}, name other_fw) is attached; hostfw enforces at TC only"
        )),
        "{a}"
    );
    apply(&mut t, &pair);
    servers(&pair);
    assert_enforced(&pair, "foreign XDP, hostfw at TC");
    assert_eq!(
        foreign::attached_id(&pair.node, &pair.node_if),
        Some(id),
        "the other program stays attached"
    );
    let c = t.dp.counters().expect("counters");
    assert!(c.get(Stat::Dropped) >= 2, "TC dropped: {c:?}");
    assert_eq!(
        c.get(Stat::XdpDecided),
        0,
        "every packet was decided by TC: {c:?}"
    );
}

#[test]
fn a_foreign_program_named_like_hostfws_is_not_replaced() {
    let pair = Pair::new();
    let id = foreign::attach(&pair.node, &pair.node_if, "hostfw_xdp", None);
    let (mut t, a) = attach(&pair, load_in_node(&pair));
    assert_eq!(
        foreign::attached_id(&pair.node, &pair.node_if),
        Some(id),
        "the foreign hostfw_xdp must stay attached ({a})"
    );
    assert_eq!(a.xdp, foreign_state(id, "hostfw_xdp"), "{a}");
    apply(&mut t, &pair);
    servers(&pair);
    assert_enforced(&pair, "foreign hostfw_xdp, hostfw at TC");
    // A second attach (a restart of the daemon) still leaves it alone.
    let (t, a) = attach(&pair, t);
    assert_eq!(a.xdp, foreign_state(id, "hostfw_xdp"), "{a}");
    assert_eq!(foreign::attached_id(&pair.node, &pair.node_if), Some(id));
    drop(t);
}

/// hostfw's own XDP is replaced behind its back by a program writing
/// `mark` into the metadata: TC ingress must still decide the packets.
fn forged_mark_after_takeover(mark: u32) {
    let pair = Pair::new();
    let mut t = TestDatapath::attached(&pair);
    apply(&mut t, &pair);
    servers(&pair);
    assert_enforced(&pair, "hostfw's own XDP");
    // Remove hostfw's XDP (a pinned link goes with its pin; a netlink
    // attachment is replaced in place) and attach the forger.
    for pin in ["xdp-native", "xdp-generic"] {
        let _ = std::fs::remove_file(link_pin(&t.pin_root, &pair.node_if, pin));
    }
    foreign::attach(&pair.node, &pair.node_if, "forger", Some(mark));
    let before = t.dp.counters().expect("counters").get(Stat::XdpDecided);
    assert_enforced(&pair, &format!("forger writing {mark:#010x}"));
    let after = t.dp.counters().expect("counters").get(Stat::XdpDecided);
    assert_eq!(
        after, before,
        "TC ingress trusted a mark it did not write ({mark:#010x})"
    );
}

#[test]
fn a_forged_hfw1_mark_does_not_bypass_tc_ingress() {
    forged_mark_after_takeover(HFW1);
}

#[test]
fn a_forged_fixed_mark_does_not_bypass_tc_ingress() {
    forged_mark_after_takeover(0xdead_beef);
}

/// Even the mark of this very load, written by a foreign program, is not
/// trusted: XDP on that interface is not hostfw's.
#[test]
fn the_loaded_mark_is_not_trusted_where_xdp_is_foreign() {
    let pair = Pair::new();
    let t = load_in_node(&pair);
    let other = load_in_node(&pair);
    assert_ne!(t.dp.xdp_mark(), HFW1);
    assert_ne!(
        t.dp.xdp_mark(),
        other.dp.xdp_mark(),
        "each load draws its own mark"
    );
    drop(other);
    let id = foreign::attach(&pair.node, &pair.node_if, "forger", Some(t.dp.xdp_mark()));
    let (mut t, a) = attach(&pair, t);
    assert_eq!(a.xdp, foreign_state(id, "forger"), "{a}");
    apply(&mut t, &pair);
    servers(&pair);
    assert_enforced(&pair, "forger writing hostfw's current mark");
    let c = t.dp.counters().expect("counters");
    assert_eq!(
        c.get(Stat::XdpDecided),
        0,
        "every packet was decided by TC: {c:?}"
    );
}

#[test]
fn hostfws_own_mark_spares_tc_ingress_a_second_decision() {
    let pair = Pair::new();
    let mut t = TestDatapath::attached(&pair);
    apply(&mut t, &pair);
    servers(&pair);
    assert_enforced(&pair, "hostfw's own XDP");
    let c = t.dp.counters().expect("counters");
    assert!(
        c.get(Stat::XdpDecided) > 0,
        "TC ingress decided packets XDP passed again: {c:?}"
    );
}

fn foreign_state(prog_id: u32, name: &str) -> XdpState {
    XdpState::Foreign {
        prog_id,
        name: name.into(),
    }
}

/// The daemon on an interface with a foreign program named `hostfw_xdp`:
/// status and the log name it, TC enforces, and `stop --detach` leaves it.
#[test]
fn the_daemon_reports_a_foreign_program_and_leaves_it_on_detach() {
    let pair = Pair::new();
    let id = foreign::attach(&pair.node, &pair.node_if, "hostfw_xdp", None);
    let mut d = Daemon::new(&pair);
    d.start();
    let s = d.status();
    let iface = s["interfaces"]
        .as_array()
        .and_then(|l| l.iter().find(|i| i["name"] == pair.node_if.as_str()))
        .unwrap_or_else(|| panic!("{} listed in status: {s}\n{}", pair.node_if, d.log()))
        .clone();
    assert_eq!(iface["xdp"], "foreign", "{iface}");
    assert_eq!(iface["xdp_foreign"]["prog_id"], id, "{iface}");
    assert_eq!(iface["xdp_foreign"]["name"], "hostfw_xdp", "{iface}");
    let text = d.ok(&["status"]);
    let want = format!(
        "xdp: another program (id {id}, name hostfw_xdp) is attached; hostfw enforces at TC only"
    );
    assert!(text.contains(&want), "{text}");
    let log = d.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("another XDP program") && l.contains(&pair.node_if))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning: {log}");
    assert!(
        warnings[0].contains(&format!("id {id}"))
            && warnings[0].contains("hostfw_xdp")
            && warnings[0].contains("[interfaces]"),
        "{}",
        warnings[0]
    );
    // The daemon's policy allows 8080 and 9090 only.
    traffic::tcp_server(&pair.node, 8080);
    traffic::tcp_server(&pair.node, 7070);
    assert!(traffic::tcp_ok(&pair.peer, pair.node_v4, 8080, LONG));
    assert!(!traffic::tcp_ok(&pair.peer, pair.node_v4, 7070, SHORT));
    d.ok(&["stop", "--detach"]);
    let start = Instant::now();
    while d.exited().is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "stop --detach");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        foreign::attached_id(&pair.node, &pair.node_if),
        Some(id),
        "detach removes only hostfw's own program:\n{}",
        d.log()
    );
}

/// The record decides, also on the netlink path (links that cannot be
/// pinned, or a previous run's netlink attachment): a program whose id is
/// recorded is taken over in place, a restarted loader takes over the
/// program the previous one recorded, and `detach_netlink` removes it.
#[test]
fn a_recorded_program_is_taken_over_through_netlink_across_a_restart() {
    let pair = Pair::new();
    // A previous run's program, attached through netlink, and its record.
    let previous = foreign::attach(&pair.node, &pair.node_if, "prev_run", None);
    let mut t = load_in_node(&pair);
    let record = xdp_owner_record(&t.pin_root, &pair.node_if);
    std::os::unix::fs::symlink(previous.to_string(), &record).expect("write the record");
    let (t1, a) = attach(&pair, t);
    t = t1;
    assert_eq!(a.xdp, XdpState::Hostfw(XdpAttach::Native), "{a}");
    assert_eq!(a.tc, TcAttach::Clsact, "in place, through netlink: {a}");
    let first = foreign::attached_id(&pair.node, &pair.node_if).expect("attached");
    assert_ne!(first, previous, "the recorded program was replaced");
    assert_eq!(
        read_record(&record),
        first,
        "the record names the new program"
    );
    apply(&mut t, &pair);
    servers(&pair);
    assert_enforced(&pair, "taken over through netlink");
    let c = t.dp.counters().expect("counters");
    assert!(c.get(Stat::XdpDecided) > 0, "own mark trusted: {c:?}");
    // A restart: a second loader on the same pins.
    let pin_root = t.pin_root.clone();
    let ifname = pair.node_if.clone();
    let second = pair.node.run(move || {
        let mut dp = Datapath::load(&LoadOptions {
            pin_root,
            sizes: TestDatapath::SIZES,
        })
        .expect("second load");
        let a = dp.attach(&ifname).expect("second attach");
        (dp, a)
    });
    let (dp2, a) = second;
    assert_eq!(a.xdp, XdpState::Hostfw(XdpAttach::Native), "{a}");
    assert!(a.adopted, "taken over: {a}");
    let now = foreign::attached_id(&pair.node, &pair.node_if).expect("attached");
    assert_ne!(now, first, "the restarted loader's program is attached");
    assert_eq!(read_record(&record), now);
    assert_enforced(&pair, "after the restart");
    // Detach removes hostfw's own program (and only because it is recorded).
    let (pin_root, ifname) = (t.pin_root.clone(), pair.node_if.clone());
    let found = pair
        .node
        .run(move || hostfw::datapath::attach::detach_netlink(&pin_root, &ifname))
        .expect("detach");
    assert!(found);
    assert_eq!(foreign::attached_id(&pair.node, &pair.node_if), None);
    drop(dp2);
}

fn read_record(path: &std::path::Path) -> u32 {
    std::fs::read_link(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{}: not a program id", path.display()))
}

/// A release before the records attached its XDP through netlink and
/// recorded nothing: its program (it uses the pinned maps) is still taken
/// over in place on upgrade, not left as a foreign one.
#[test]
fn an_older_releases_netlink_program_is_taken_over_without_a_record() {
    use std::os::fd::{AsFd as _, AsRawFd as _};

    let pair = Pair::new();
    let t = load_in_node(&pair);
    let config = aya::maps::MapData::from_pin(t.pin_root.join(MAP_CONFIG)).expect("config pin");
    let older = foreign::attach_using(
        &pair.node,
        &pair.node_if,
        "hostfw_xdp",
        config.fd().as_fd().as_raw_fd(),
    );
    let (mut t, a) = attach(&pair, t);
    assert_eq!(a.xdp, XdpState::Hostfw(XdpAttach::Native), "{a}");
    assert_eq!(a.tc, TcAttach::Clsact, "replaced in place: {a}");
    assert_ne!(
        foreign::attached_id(&pair.node, &pair.node_if),
        Some(older),
        "the older release's program was replaced"
    );
    apply(&mut t, &pair);
    servers(&pair);
    assert_enforced(&pair, "after the upgrade");
}
