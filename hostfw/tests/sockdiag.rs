//! `hostfw::sockdiag` against the kernel: TCP connections and listeners in a
//! fresh network namespace, and a real sshd found by `sshd_ports()`.
//!
//! Needs root (CI runs as root) and, for the sshd test, openssh-server
//! (`scripts/install-deps.sh` installs it). Nothing skips: without them the
//! tests fail and say what is missing.

mod common;

use std::{
    collections::HashSet,
    fs,
    io::Read,
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use common::{Netns, sh};
use hostfw::sockdiag::{self, Listener, TcpConn};

const SSHD: &str = "/usr/sbin/sshd";
const SSH_PORT: u16 = 2222;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh network namespace with loopback up (deleted on drop).
fn netns() -> Netns {
    assert!(
        nix::unistd::geteuid().is_root(),
        "privileged test: run as root (CI does); it creates network namespaces"
    );
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Netns::new(format!("hfwsd{}x{n}", std::process::id()))
}

/// Polls `f` until it returns true (for up to 5 s).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn established() -> HashSet<(SocketAddr, SocketAddr)> {
    sockdiag::established()
        .unwrap_or_else(|e| panic!("established(): {e}"))
        .iter()
        .map(|c| (c.local, c.remote))
        .collect()
}

/// A client connected to `listener`: (client, accepted server side).
fn connect(listener: &TcpListener, to: SocketAddr) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(to).unwrap_or_else(|e| panic!("connect {to}: {e}"));
    let (server, _) = listener.accept().unwrap_or_else(|e| panic!("accept: {e}"));
    (client, server)
}

/// (local, remote) of a stream, IPv4-mapped IPv6 as IPv4 (as on the wire,
/// and as sockdiag reports them; std keeps the mapped form).
fn addrs(c: &TcpStream) -> (SocketAddr, SocketAddr) {
    let wire = |a: SocketAddr| match a {
        SocketAddr::V6(v6) => v6
            .ip()
            .to_ipv4_mapped()
            .map_or(a, |v4| SocketAddr::new(v4.into(), v6.port())),
        SocketAddr::V4(_) => a,
    };
    (
        wire(c.local_addr().unwrap_or_else(|e| panic!("local_addr: {e}"))),
        wire(c.peer_addr().unwrap_or_else(|e| panic!("peer_addr: {e}"))),
    )
}

#[test]
fn established_listeners_and_inbound_ipv4_and_ipv6() {
    let ns = netns();
    ns.run(|| {
        let bind = |a: &str| TcpListener::bind(a).unwrap_or_else(|e| panic!("bind {a}: {e}"));
        let (l4, l6) = (bind("127.0.0.1:0"), bind("[::1]:0"));
        // A dual-stack listener: its IPv4 peers are reported as IPv4.
        let dual = bind("[::]:0");
        let local = |l: &TcpListener| l.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let (a4, a6, ad) = (local(&l4), local(&l6), local(&dual));
        let dual_v4: SocketAddr = format!("127.0.0.1:{}", ad.port())
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let mut conns = vec![connect(&l4, a4), connect(&l6, a6), connect(&dual, dual_v4)];

        let mut expected = HashSet::new();
        for (client, server) in &conns {
            expected.insert(addrs(client));
            expected.insert(addrs(server));
        }
        let dual_server = conns[2].1.local_addr().unwrap_or_else(|e| panic!("{e}"));
        assert!(dual_server.is_ipv6(), "std reports {dual_server} (mapped)");
        assert_eq!(addrs(&conns[2].1).0, dual_v4);
        // The namespace is fresh: these are all its connections.
        assert_eq!(established(), expected);
        let all = sockdiag::established().unwrap_or_else(|e| panic!("{e}"));
        assert!(all.iter().all(|c| c.inode != 0 && c.uid == 0), "{all:?}");

        let listeners: HashSet<SocketAddr> = sockdiag::listeners()
            .unwrap_or_else(|e| panic!("listeners(): {e}"))
            .iter()
            .map(|l: &Listener| l.local)
            .collect();
        assert_eq!(listeners, HashSet::from([a4, a6, ad]));

        let ports = [a4.port(), a6.port(), ad.port()];
        let inbound: HashSet<(SocketAddr, SocketAddr)> = sockdiag::inbound(&all, &ports)
            .iter()
            .map(|c: &&TcpConn| (c.local, c.remote))
            .collect();
        let servers: HashSet<_> = conns.iter().map(|(_, s)| addrs(s)).collect();
        assert_eq!(inbound, servers, "inbound() picks the accepted sides");
        assert!(sockdiag::inbound(&all, &[1]).is_empty());

        // Closing the IPv4 connection removes both of its sides.
        let (client, server) = conns.remove(0);
        let gone = [addrs(&client), addrs(&server)];
        drop((client, server));
        eventually("the closed connection leaves ESTABLISHED", || {
            let now = established();
            gone.iter().all(|g| !now.contains(g)) && now.len() == 4
        });
    });
}

#[test]
fn many_connections_span_several_datagrams() {
    const N: usize = 250;
    let ns = netns();
    ns.run(|| {
        let l = TcpListener::bind("[::1]:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let to = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let conns: Vec<_> = (0..N).map(|_| connect(&l, to)).collect();
        let mut expected = HashSet::new();
        for (client, server) in &conns {
            expected.insert(addrs(client));
            expected.insert(addrs(server));
        }
        // About 100 bytes per socket: more than one 32 KiB datagram.
        assert_eq!(established(), expected);
    });
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A running sshd, killed on drop.
struct Sshd(Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts sshd in `ns` on port 2222 (loopback, IPv4 and IPv6).
fn start_sshd(ns: &Netns, dir: &TempDir) -> Sshd {
    let key = dir.0.join("host_key");
    let key_s = key.to_string_lossy().into_owned();
    sh(&["ssh-keygen", "-q", "-t", "ed25519", "-f", &key_s, "-N", ""]);
    let config = dir.0.join("sshd_config");
    let text = format!(
        "HostKey {key_s}\nListenAddress 127.0.0.1\nListenAddress ::1\nPidFile none\nUsePAM no\n"
    );
    fs::write(&config, text).unwrap_or_else(|e| panic!("write {}: {e}", config.display()));
    // sshd refuses to start without its privilege separation directory.
    fs::create_dir_all("/run/sshd").unwrap_or_else(|e| panic!("mkdir /run/sshd: {e}"));
    let log = dir.0.join("sshd.log");
    let log_file = fs::File::create(&log).unwrap_or_else(|e| panic!("create log: {e}"));
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.name, SSHD, "-D", "-e", "-f"])
        .arg(&config)
        .args(["-p", &SSH_PORT.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"));
    Sshd(child)
}

#[test]
fn sshd_ports_finds_a_real_sshd() {
    assert!(
        std::path::Path::new(SSHD).exists(),
        "{SSHD} is missing: install openssh-server and openssh-client \
         (apt-get install -y openssh-server openssh-client, or run scripts/install-deps.sh)"
    );
    let ns = netns();
    let dir = TempDir(std::env::temp_dir().join(format!("{}-sshd", ns.name)));
    fs::create_dir_all(&dir.0).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.0.display()));

    // No sshd in this namespace: the documented fallback.
    assert_eq!(ns.run(sockdiag::sshd_ports), vec![22]);

    let mut sshd = start_sshd(&ns, &dir);
    let log = dir.0.join("sshd.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if ns.run(sockdiag::sshd_ports) == vec![SSH_PORT] {
            break;
        }
        let exited = sshd.0.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            let mut text = String::new();
            let _ = fs::File::open(&log).and_then(|mut f| f.read_to_string(&mut text));
            panic!(
                "sshd_ports() never returned [{SSH_PORT}] (sshd exit: {exited:?}); log:\n{text}"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // The lockout preflight's view: a session to sshd is inbound.
    ns.run(|| {
        let mut client = TcpStream::connect(("127.0.0.1", SSH_PORT))
            .unwrap_or_else(|e| panic!("connect to sshd: {e}"));
        let mut banner = [0u8; 4];
        client
            .read_exact(&mut banner)
            .unwrap_or_else(|e| panic!("read the ssh banner: {e}"));
        assert_eq!(&banner, b"SSH-");
        let me = addrs(&client).0;
        let all = sockdiag::established().unwrap_or_else(|e| panic!("{e}"));
        let inbound = sockdiag::inbound(&all, &sockdiag::sshd_ports());
        assert_eq!(inbound.len(), 1, "{inbound:?}");
        assert_eq!(inbound[0].remote, me);
        assert_eq!(inbound[0].local.port(), SSH_PORT);
    });
}
