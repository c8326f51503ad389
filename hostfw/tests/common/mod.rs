//! Shared set-up of the privileged tests: network namespaces joined by veth
//! pairs, a datapath loaded and attached inside the "node" namespace, and
//! helpers to send real traffic from the "peer" namespace.
//!
//! These tests need root (CI runs as root). They do not skip: without root
//! or a needed kernel feature they fail and say what is missing.
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod daemon;
pub mod foreign;
pub mod frames;
pub mod kubeapi;
pub mod notify;
pub mod traffic;

/// Raw `bpf(2)` of the benchmarks: programs without a toolchain.
#[path = "../../examples/common/rawbpf.rs"]
pub mod rawbpf;

use std::{
    fs::File,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::AsFd,
    path::PathBuf,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

use hostfw::datapath::{Datapath, LoadOptions, MapSizes};
use nix::sched::{CloneFlags, setns};

static NEXT: AtomicU32 = AtomicU32::new(1);

/// Fails the test unless running as root.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "privileged test: run as root (CI does); it loads eBPF programs and creates network namespaces"
    );
}

/// Runs a command and panics with its output if it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: String) -> Self {
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Self { name }
    }

    /// Runs `f` on a thread that has entered this namespace.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            enter(&path);
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }

    /// Runs a command inside the namespace (with `ip netns exec`).
    pub fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {args:?} in {}: {e}", self.name))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Moves the calling thread into the namespace at `path`.
pub fn enter(path: &str) {
    let f = File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    setns(f.as_fd(), CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
}

/// Two namespaces joined by a veth pair with IPv4 and IPv6 addresses.
pub struct Pair {
    pub node: Netns,
    pub peer: Netns,
    pub node_if: String,
    pub peer_if: String,
    pub node_v4: IpAddr,
    pub peer_v4: IpAddr,
    pub node_v6: IpAddr,
    pub peer_v6: IpAddr,
    pub id: u32,
}

impl Pair {
    pub fn new() -> Self {
        require_root();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = (std::process::id() % 200) * 50 + n;
        let tag = format!("{}{}", std::process::id() % 10000, n);
        let node = Netns::new(format!("hfwn{tag}"));
        let peer = Netns::new(format!("hfwp{tag}"));
        let node_if = format!("hn{tag}");
        let peer_if = format!("hp{tag}");
        sh(&[
            "ip", "link", "add", &node_if, "netns", &node.name, "type", "veth", "peer", "name",
            &peer_if, "netns", &peer.name,
        ]);
        let (b, c) = (
            u8::try_from(id / 250 % 250).unwrap_or(0),
            u8::try_from(id % 250).unwrap_or(0),
        );
        let node_v4 = IpAddr::V4(Ipv4Addr::new(10, 200 + b % 50, c, 1));
        let peer_v4 = IpAddr::V4(Ipv4Addr::new(10, 200 + b % 50, c, 2));
        let seg = u16::try_from(id).unwrap_or(1);
        let node_v6 = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x200, seg, 0, 0, 0, 0, 1));
        let peer_v6 = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x200, seg, 0, 0, 0, 0, 2));
        for (ns, ifname, v4, v6) in [
            (&node, &node_if, node_v4, node_v6),
            (&peer, &peer_if, peer_v4, peer_v6),
        ] {
            // nodad: the IPv6 address is usable at once, without DAD.
            for (addr, extra) in [
                (format!("{v4}/24"), None),
                (format!("{v6}/64"), Some("nodad")),
            ] {
                let mut cmd = vec!["ip", "-n", &ns.name, "addr", "add", &addr, "dev", ifname];
                cmd.extend(extra);
                sh(&cmd);
            }
            sh(&["ip", "-n", &ns.name, "link", "set", ifname, "up"]);
        }
        Self {
            node,
            peer,
            node_if,
            peer_if,
            node_v4,
            peer_v4,
            node_v6,
            peer_v6,
            id,
        }
    }
}

/// A datapath loaded with its own pin directory; everything is removed on
/// drop.
pub struct TestDatapath {
    pub dp: Datapath,
    pub pin_root: PathBuf,
}

impl TestDatapath {
    /// The small map sizes tests load with.
    pub const SIZES: MapSizes = MapSizes {
        ident_v4: 4096,
        ident_v6: 4096,
        policy: 16384,
        conntrack_established: 4096,
        conntrack_new: 4096,
        frags: 256,
        rule_ids: 4096,
    };

    /// Loads the object (not attached anywhere).
    pub fn load() -> Self {
        Self::load_with(Self::SIZES)
    }

    pub fn load_with(sizes: MapSizes) -> Self {
        require_root();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pin_root = PathBuf::from(format!(
            "/sys/fs/bpf/hostfw-test-{}-{n}",
            std::process::id()
        ));
        let _ = Datapath::remove_all(&pin_root);
        let dp = Datapath::load(&LoadOptions {
            pin_root: pin_root.clone(),
            sizes,
        })
        .unwrap_or_else(|e| panic!("loading the datapath failed: {e:?}"));
        Self { dp, pin_root }
    }

    /// Loads inside the node namespace and attaches to its veth.
    pub fn attached(pair: &Pair) -> Self {
        Self::attached_with(pair, Self::SIZES)
    }

    /// [`Self::attached`] with these map sizes.
    pub fn attached_with(pair: &Pair, sizes: MapSizes) -> Self {
        let ifname = pair.node_if.clone();
        let path = format!("/run/netns/{}", pair.node.name);
        std::thread::spawn(move || {
            enter(&path);
            let mut t = Self::load_with(sizes);
            let a =
                t.dp.attach(&ifname)
                    .unwrap_or_else(|e| panic!("attach to {ifname} failed: {e:?}"));
            eprintln!("attached: {a}");
            t
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }
}

impl Drop for TestDatapath {
    fn drop(&mut self) {
        if let Err(errors) = Datapath::remove_all(&self.pin_root) {
            eprintln!("cleanup of {}: {errors:?}", self.pin_root.display());
        }
    }
}
