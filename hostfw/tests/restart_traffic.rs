//! Restart under traffic: a continuous allowed flow and a denied flow
//! while the daemon is killed (SIGKILL and SIGTERM, alternately) and
//! started again 20 times — no allowed datagram is lost (new flows, and a
//! long-lived flow that the tracker must keep across restarts), no denied
//! one gets through, whether the daemon runs, is down, or is starting and
//! adopting the pinned maps and the attachments; and every restarted
//! daemon reports the interface attached. Real traffic over veth between
//! test namespaces, IPv4 and IPv6; needs root.

mod common;

use std::{
    fs,
    net::{IpAddr, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::{
    Pair,
    daemon::{Daemon, SHORT},
    traffic,
};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

const RESTARTS: usize = 20;
const ALLOWED: u16 = 6000;
const DENIED: u16 = 6001;
/// How long the daemon runs between restarts, and stays down.
const RUNNING: Duration = Duration::from_millis(200);
const DOWN: Duration = Duration::from_millis(200);

const PHASES: [&str; 3] = ["running", "down", "starting"];
const RUNNING_PHASE: usize = 0;
const DOWN_PHASE: usize = 1;
const STARTING_PHASE: usize = 2;

/// What the sender saw, per phase of the daemon.
#[derive(Default)]
struct Counts {
    phase: AtomicUsize,
    allowed: [AtomicUsize; 3],
    lost: [AtomicUsize; 3],
    denied: [AtomicUsize; 3],
    leaked: [AtomicUsize; 3],
    /// Datagrams of one long-lived allowed flow (the same socket
    /// throughout), and those of them lost.
    established: AtomicUsize,
    established_lost: AtomicUsize,
}

impl Counts {
    fn set_phase(&self, p: usize) {
        self.phase.store(p, Ordering::SeqCst);
    }

    fn total(list: &[AtomicUsize; 3]) -> usize {
        list.iter().map(|c| c.load(Ordering::SeqCst)).sum()
    }
}

fn udp_policy(port: u16) -> String {
    format!(
        "[[policy]]\nname = \"udp-echo\"\nnodeSelector = {{}}\n\n[[policy.ingress]]\n\
         toPorts = [{{ ports = [{{ port = \"{port}\", protocol = \"UDP\" }}] }}]\n"
    )
}

/// One datagram from a new socket (so a new flow, decided by the policy in
/// force); whether the echo came back within `wait`.
fn round_trip(node: IpAddr, port: u16, wait: Duration) -> bool {
    let bind = if node.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let s = UdpSocket::bind(bind).expect("bind");
    s.set_read_timeout(Some(wait)).expect("timeout");
    s.send_to(b"x", (node, port)).expect("send");
    s.recv_from(&mut [0u8; 8]).is_ok()
}

/// Stops the daemon with SIGTERM; it must exit cleanly and soon.
fn terminate(d: &mut Daemon) {
    let mut child = d.child.take().expect("the daemon runs");
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    kill(pid, Signal::SIGTERM).expect("SIGTERM");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the daemon") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the daemon did not stop within 10 s of SIGTERM\n{}",
                d.log()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        status.success(),
        "SIGTERM: clean exit expected, got {status}\n{}",
        d.log()
    );
}

#[test]
fn restarting_the_daemon_under_traffic_drops_and_leaks_nothing() {
    let started = Instant::now();
    let pair = Pair::new();
    let mut d = Daemon::new(&pair);
    fs::write(d.dir.join("policies/udp.toml"), udp_policy(ALLOWED)).expect("policy");
    d.start();
    traffic::udp_echo_server(&pair.node, ALLOWED);
    traffic::udp_echo_server(&pair.node, DENIED);
    let nodes = [pair.node_v4, pair.node_v6];
    for node in nodes {
        assert!(
            traffic::udp_ok(&pair.peer, node, ALLOWED, Duration::from_secs(3)),
            "UDP {ALLOWED} to {node} is allowed\n{}",
            d.log()
        );
        assert!(
            !traffic::udp_ok(&pair.peer, node, DENIED, SHORT),
            "UDP {DENIED} to {node} is denied"
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let sender = {
        let (stop, counts) = (stop.clone(), counts.clone());
        let path = format!("/run/netns/{}", pair.peer.name);
        std::thread::spawn(move || {
            common::enter(&path);
            let long_lived: Vec<(IpAddr, UdpSocket)> = nodes
                .iter()
                .map(|&node| {
                    let bind = if node.is_ipv4() {
                        "0.0.0.0:0"
                    } else {
                        "[::]:0"
                    };
                    let s = UdpSocket::bind(bind).expect("bind");
                    s.set_read_timeout(Some(Duration::from_secs(2)))
                        .expect("timeout");
                    (node, s)
                })
                .collect();
            while !stop.load(Ordering::SeqCst) {
                for (node, s) in &long_lived {
                    counts.established.fetch_add(1, Ordering::SeqCst);
                    s.send_to(b"y", (*node, ALLOWED)).expect("send");
                    if s.recv_from(&mut [0u8; 8]).is_err() {
                        counts.established_lost.fetch_add(1, Ordering::SeqCst);
                        eprintln!("lost: long-lived UDP {ALLOWED} flow to {node}");
                    }
                }
                for node in nodes {
                    let phase = counts.phase.load(Ordering::SeqCst);
                    counts.allowed[phase].fetch_add(1, Ordering::SeqCst);
                    if !round_trip(node, ALLOWED, Duration::from_secs(2)) {
                        counts.lost[phase].fetch_add(1, Ordering::SeqCst);
                        eprintln!("lost: UDP {ALLOWED} to {node} while {}", PHASES[phase]);
                    }
                    let phase = counts.phase.load(Ordering::SeqCst);
                    counts.denied[phase].fetch_add(1, Ordering::SeqCst);
                    if round_trip(node, DENIED, Duration::from_millis(30)) {
                        counts.leaked[phase].fetch_add(1, Ordering::SeqCst);
                        eprintln!("leaked: UDP {DENIED} to {node} while {}", PHASES[phase]);
                    }
                }
            }
        })
    };

    let mut start_times = Vec::new();
    // Restarts after which the daemon did not report the interface.
    let mut not_attached = Vec::new();
    for i in 0..RESTARTS {
        std::thread::sleep(RUNNING);
        if i % 2 == 0 {
            d.kill();
        } else {
            terminate(&mut d);
        }
        counts.set_phase(DOWN_PHASE);
        std::thread::sleep(DOWN);
        counts.set_phase(STARTING_PHASE);
        let t = Instant::now();
        d.start();
        start_times.push(t.elapsed());
        counts.set_phase(RUNNING_PHASE);
        if !attached(&d, &pair.node_if) {
            not_attached.push(i + 1);
        }
    }
    std::thread::sleep(RUNNING);
    stop.store(true, Ordering::SeqCst);
    sender.join().expect("sender thread");

    for (p, name) in PHASES.iter().enumerate() {
        eprintln!(
            "daemon {name}: {} allowed datagrams, {} lost; {} denied, {} leaked",
            counts.allowed[p].load(Ordering::SeqCst),
            counts.lost[p].load(Ordering::SeqCst),
            counts.denied[p].load(Ordering::SeqCst),
            counts.leaked[p].load(Ordering::SeqCst),
        );
    }
    let (established, established_lost) = (
        counts.established.load(Ordering::SeqCst),
        counts.established_lost.load(Ordering::SeqCst),
    );
    eprintln!("long-lived allowed flows: {established} datagrams, {established_lost} lost");
    let slowest = start_times.iter().max().copied().unwrap_or_default();
    let mean = start_times.iter().sum::<Duration>() / u32::try_from(RESTARTS).unwrap_or(1);
    eprintln!(
        "{RESTARTS} restarts (SIGKILL and SIGTERM alternately): start until the socket answers \
         {mean:?} on average, {slowest:?} at most; test took {:?}",
        started.elapsed()
    );
    let (allowed, lost, denied, leaked) = (
        Counts::total(&counts.allowed),
        Counts::total(&counts.lost),
        Counts::total(&counts.denied),
        Counts::total(&counts.leaked),
    );
    assert_eq!(lost, 0, "allowed datagrams lost across restarts");
    assert_eq!(
        established_lost, 0,
        "datagrams of the long-lived allowed flows lost across restarts"
    );
    assert_eq!(leaked, 0, "denied datagrams let through across restarts");
    assert!(allowed >= 40, "too little traffic: {allowed} allowed");
    assert!(denied >= 40, "too little traffic: {denied} denied");
    for p in [DOWN_PHASE, STARTING_PHASE] {
        assert!(
            counts.allowed[p].load(Ordering::SeqCst) >= 10
                && counts.denied[p].load(Ordering::SeqCst) >= 10,
            "too little traffic while the daemon was {}",
            PHASES[p]
        );
    }
    let s = d.status();
    assert!(s["trial"].is_null(), "{s}");
    let log = d.log();
    assert_eq!(
        log.matches("ready; control socket").count(),
        RESTARTS + 1,
        "every start got ready"
    );
    assert!(
        not_attached.is_empty() && !log.contains("not attached"),
        "a restarted daemon adopts the attachment of {}: not in status after restarts \
         {not_attached:?}; status now: {s}\n--- daemon log ---\n{log}",
        pair.node_if
    );
}

/// Whether the daemon's status lists `ifname` as attached.
fn attached(d: &Daemon, ifname: &str) -> bool {
    d.status()["interfaces"]
        .as_array()
        .is_some_and(|l| l.iter().any(|i| i["name"] == ifname))
}
