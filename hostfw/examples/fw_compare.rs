//! hostfw against nftables and iptables, side by side, in network
//! namespaces this program creates (traffic goes only between them):
//! drop rate under a UDP flood, allowed-traffic overhead, the control plane
//! of the real daemon, and the summary with the project's goals. Run by
//! `scripts/bench.sh` (root), after `verdict_cost --out DIR`, whose CSV
//! files the summary includes.
//!
//! Topology (`hfwb-*` namespaces):
//!
//! ```text
//!  hfwb-fl  hbfl1 198.18.0.2/24 ── hbfl0 198.18.0.1/24   hfwb-rx   (the node)
//!  (flood: denied source)                hbok0 198.18.1.1 ── hbok1 10.255.255.2   hfwb-ok
//!                                                                  (allowed client)
//! ```
//!
//! Every firewall enforces the same policy: ingress from `n` CIDRs (the
//! generator of `verdict_cost`, the allowed client's /28 last), everything
//! else dropped: hostfw (the real daemon, enforce mode, `n` rules), nftables
//! (`inet` table, prerouting hook at priority -300, an interval set),
//! iptables-legacy (`raw` PREROUTING, `n` linear rules, then DROP) and
//! iptables-legacy with an ipset `hash:net`.
//!
//! Exits non-zero when a denied flow passed, an allowed flow was refused,
//! or a firewall did not count the drops it should have made.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::{BufRead as _, BufReader, Write as _},
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use ipnet::Ipv4Net;
use serde_json::Value;

const RX: &str = "hfwb-rx";
const FL: &str = "hfwb-fl";
const OK: &str = "hfwb-ok";
const RX_FL_IF: &str = "hbfl0";
const FL_IF: &str = "hbfl1";
const RX_OK_IF: &str = "hbok0";
const OK_IF: &str = "hbok1";
const RX_FL_ADDR: &str = "198.18.0.1";
const FLOOD_SRC: &str = "198.18.0.2";
const RX_OK_ADDR: &str = "198.18.1.1";
const ALLOWED: &str = "10.255.255.2";
const ALLOWED_NET: &str = "10.255.255.0/28";
const OTHER_NET: &str = "10.255.254.0/28";
const UDP_PORT: &str = "9000";
const RR_PORT: &str = "7001";
const IPERF_PORT: &str = "5201";
const PROBES: u64 = 10;
const NFT_TABLE: &str = "hfwbench";
const IPSET: &str = "hfwb-allow";

/// The `i`-th CIDR, as in `verdict_cost`: disjoint /26 blocks of
/// 10.0.0.0/8 with prefix lengths /32, /30, /28, /26 in turn.
fn cidr(i: u32) -> Ipv4Net {
    let len = [32u8, 30, 28, 26][(i % 4) as usize];
    Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i * 64), len).unwrap_or_default()
}

/// The `n` allowed CIDRs; the last one holds the allowed client when
/// `client_allowed`, else a neighbouring /28 that does not.
fn allowed(n: u32, client_allowed: bool) -> Vec<String> {
    let mut v: Vec<String> = (0..n - 1).map(|i| cidr(i).to_string()).collect();
    v.push(
        if client_allowed {
            ALLOWED_NET
        } else {
            OTHER_NET
        }
        .to_owned(),
    );
    v
}

// ---------------------------------------------------------------- commands

fn describe(args: &[&str]) -> String {
    args.join(" ")
}

/// Runs a command; its stdout, or an error with its output.
fn run(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("cannot run {}", describe(args)))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}{}",
            describe(args),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command with a file as its standard input.
fn run_stdin(args: &[&str], input: &Path) -> anyhow::Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(std::fs::File::open(input)?)
        .output()
        .with_context(|| format!("cannot run {}", describe(args)))?;
    if !out.status.success() {
        bail!(
            "{} < {} failed: {}",
            describe(args),
            input.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn in_ns<'a>(ns: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(args);
    v
}

/// A background process, killed (by its id) when dropped.
struct Bg {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<BufReader<ChildStdout>>,
}

impl Bg {
    fn spawn(name: &str, args: &[&str]) -> anyhow::Result<Self> {
        Self::spawn_with(name, args, Stdio::piped())
    }

    /// Without its output (a server that talks).
    fn spawn_quiet(name: &str, args: &[&str]) -> anyhow::Result<Self> {
        Self::spawn_with(name, args, Stdio::null())
    }

    fn spawn_with(name: &str, args: &[&str], stdout: Stdio) -> anyhow::Result<Self> {
        let mut child = Command::new(args[0])
            .args(&args[1..])
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {name}: {}", describe(args)))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(BufReader::new);
        Ok(Self {
            name: name.to_owned(),
            child,
            stdin,
            stdout,
        })
    }

    /// Waits for the line `ready`.
    fn ready(mut self) -> anyhow::Result<Self> {
        let mut line = String::new();
        if let Some(out) = self.stdout.as_mut() {
            out.read_line(&mut line)?;
        }
        if line.trim() != "ready" {
            bail!("{} did not start (said {:?})", self.name, line.trim());
        }
        Ok(self)
    }

    /// Closes its standard input and returns the rest of its output.
    fn finish(mut self) -> anyhow::Result<String> {
        drop(self.stdin.take());
        let mut rest = String::new();
        if let Some(mut out) = self.stdout.take() {
            std::io::Read::read_to_string(&mut out, &mut rest)?;
        }
        let status = self.child.wait()?;
        if !status.success() {
            bail!("{} failed ({status})", self.name);
        }
        Ok(rest)
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn json(s: &str) -> anyhow::Result<Value> {
    let line = s
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("no JSON in {s:?}"))?;
    Ok(serde_json::from_str(line)?)
}

fn num(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

// ---------------------------------------------------------------- statistics

#[derive(Clone, Copy, Debug, Default)]
struct Stat {
    med: f64,
    min: f64,
    max: f64,
}

fn stat(v: &[f64]) -> Stat {
    if v.is_empty() {
        return Stat::default();
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let med = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        f64::midpoint(s[s.len() / 2 - 1], s[s.len() / 2])
    };
    Stat {
        med,
        min: s[0],
        max: s[s.len() - 1],
    }
}

/// 1234567 → "1.23M".
fn si(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn si_stat(s: Stat) -> String {
    format!("{} ({}-{})", si(s.med), si(s.min), si(s.max))
}

fn ms_stat(s: Stat) -> String {
    format!("{:.0} ({:.0}-{:.0})", s.med, s.min, s.max)
}

// ---------------------------------------------------------------- topology

/// The three namespaces and two veth pairs; deleted when dropped.
struct Topology;

impl Topology {
    fn create() -> anyhow::Result<Self> {
        Self::delete();
        let t = Self;
        for ns in [RX, FL, OK] {
            run(&["ip", "netns", "add", ns])?;
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
            run(&in_ns(
                ns,
                &[
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ],
            ))?;
        }
        // The MAC addresses of hostfw::craft frames: the flood's frames
        // need no neighbour resolution.
        run(&[
            "ip",
            "link",
            "add",
            RX_FL_IF,
            "netns",
            RX,
            "address",
            "02:00:00:00:00:02",
            "type",
            "veth",
            "peer",
            "name",
            FL_IF,
            "netns",
            FL,
            "address",
            "02:00:00:00:00:01",
        ])?;
        run(&[
            "ip", "link", "add", RX_OK_IF, "netns", RX, "type", "veth", "peer", "name", OK_IF,
            "netns", OK,
        ])?;
        run(&[
            "ip",
            "-n",
            RX,
            "addr",
            "add",
            &format!("{RX_FL_ADDR}/24"),
            "dev",
            RX_FL_IF,
        ])?;
        run(&[
            "ip",
            "-n",
            FL,
            "addr",
            "add",
            &format!("{FLOOD_SRC}/24"),
            "dev",
            FL_IF,
        ])?;
        run(&[
            "ip", "-n", RX, "addr", "add", RX_OK_ADDR, "peer", ALLOWED, "dev", RX_OK_IF,
        ])?;
        run(&[
            "ip", "-n", OK, "addr", "add", ALLOWED, "peer", RX_OK_ADDR, "dev", OK_IF,
        ])?;
        for (ns, ifname) in [(RX, RX_FL_IF), (RX, RX_OK_IF), (FL, FL_IF), (OK, OK_IF)] {
            run(&["ip", "-n", ns, "link", "set", ifname, "up"])?;
        }
        // The receiving veth polls its ring in NAPI (as a NIC does) for
        // every configuration: GRO on; the flood's side without TSO so
        // that its frames take that ring too.
        run(&in_ns(RX, &["ethtool", "-K", RX_FL_IF, "gro", "on"]))?;
        run(&in_ns(
            FL,
            &["ethtool", "-K", FL_IF, "tso", "off", "gso", "off"],
        ))?;
        Ok(t)
    }

    fn delete() {
        for ns in [RX, FL, OK] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        Self::delete();
    }
}

// ---------------------------------------------------------------- firewalls

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fw {
    None,
    /// A two-instruction XDP program (drop, or pass) in native mode: what
    /// XDP on this path costs by itself.
    XdpRef,
    Hostfw,
    Nft,
    IptLinear,
    IptSet,
}

impl Fw {
    fn label(self) -> &'static str {
        match self {
            Self::None => "no firewall",
            Self::XdpRef => "reference XDP prog",
            Self::Hostfw => "hostfw (XDP)",
            Self::Nft => "nftables set",
            Self::IptLinear => "iptables linear",
            Self::IptSet => "iptables+ipset",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::XdpRef => "xdp_ref",
            Self::Hostfw => "hostfw",
            Self::Nft => "nftables",
            Self::IptLinear => "iptables",
            Self::IptSet => "ipset",
        }
    }

    fn filters(self) -> bool {
        !matches!(self, Self::None)
    }
}

/// The real daemon in the node namespace, with its own configuration,
/// state, socket and pins; stopped (detached, pins removed) when dropped.
struct Daemon {
    child: Option<Child>,
    dir: PathBuf,
    socket: PathBuf,
    pin_root: PathBuf,
    policy: PathBuf,
    hostfw: PathBuf,
}

impl Daemon {
    /// Starts it with `n` rules; returns it once it enforces them, and the
    /// time that took.
    fn start(hostfw: &Path, work: &Path, n: u32) -> anyhow::Result<(Self, Duration)> {
        let dir = work.join(format!("daemon-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("policies"))?;
        std::fs::write(
            dir.join("hostfw.toml"),
            format!(
                "mode = \"enforce\"\n[interfaces]\ninclude = [\"{RX_FL_IF}\", \"{RX_OK_IF}\"]\n\
                 exclude = []\n[failsafe]\ninbound = []\noutbound = []\n\
                 [policies]\npaths = [\"policies\"]\n"
            ),
        )?;
        for (name, ok) in [("allow.toml", true), ("deny.toml", false)] {
            std::fs::write(dir.join(name), policy_toml(n, ok))?;
        }
        let policy = dir.join("policies/bench.toml");
        std::fs::copy(dir.join("allow.toml"), &policy)?;
        let socket = dir.join("hostfw.sock");
        let pin_root = PathBuf::from(format!(
            "/sys/fs/bpf/hostfw-bench-daemon-{}",
            std::process::id()
        ));
        let _ = hostfw::datapath::Datapath::remove_all(&pin_root);
        let log = std::fs::File::create(dir.join("daemon.log"))?;
        let start = Instant::now();
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{RX}"))
            .arg(hostfw)
            .arg("daemon")
            .arg("--config")
            .arg(dir.join("hostfw.toml"))
            .arg("--pin-root")
            .arg(&pin_root)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--socket")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting hostfw daemon")?;
        let mut d = Self {
            child: Some(child),
            dir,
            socket,
            pin_root,
            policy,
            hostfw: hostfw.to_path_buf(),
        };
        loop {
            if let Ok(s) = d.status()
                && s["mode"] == "enforce"
                && s["revision"].as_u64().unwrap_or(0) >= 1
                && s["interfaces"].as_array().map_or(0, Vec::len) == 2
                && s["policies"][0]["rules"].as_u64() == Some(u64::from(n))
            {
                break;
            }
            if start.elapsed() > Duration::from_secs(120) {
                bail!(
                    "hostfw daemon not enforcing {n} rules after 120 s:\n{}",
                    d.log()
                );
            }
            if let Some(c) = d.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                bail!("hostfw daemon exited ({st}):\n{}", d.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok((d, start.elapsed()))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    fn status(&self) -> anyhow::Result<Value> {
        let out = Command::new(&self.hostfw)
            .args(["status", "-o", "json", "--socket"])
            .arg(&self.socket)
            .output()?;
        if !out.status.success() {
            bail!("hostfw status: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    fn counter(&self, name: &str) -> anyhow::Result<u64> {
        let s = self.status()?;
        s["counters"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c[0] == name).and_then(|c| c[1].as_u64()))
            .with_context(|| format!("no counter {name} in hostfw status"))
    }

    fn xdp_modes(&self) -> String {
        self.status()
            .ok()
            .and_then(|s| {
                s["interfaces"].as_array().map(|a| {
                    a.iter()
                        .map(|i| {
                            format!(
                                "{}: xdp {}, tc {}",
                                i["name"].as_str().unwrap_or("?"),
                                i["xdp"].as_str().unwrap_or("?"),
                                i["tc"].as_str().unwrap_or("?")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                })
            })
            .unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// VmRSS and VmHWM in KiB.
    fn memory_kib(&self) -> (u64, u64) {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |k: &str| {
            s.lines()
                .find(|l| l.starts_with(k))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new(&self.hostfw)
                .args(["stop", "--detach", "--socket"])
                .arg(&self.socket)
                .output();
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(10) {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        for ifname in [RX_FL_IF, RX_OK_IF] {
            let _ = Command::new("nsenter")
                .arg(format!("--net=/run/netns/{RX}"))
                .args(["ip", "link", "set", ifname, "xdp", "off"])
                .output();
        }
        let _ = hostfw::datapath::Datapath::remove_all(&self.pin_root);
        let _ = std::fs::remove_dir_all(&self.pin_root);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

fn policy_toml(n: u32, client_allowed: bool) -> String {
    let mut s = String::from(
        "# hostfw benchmark: ingress from these CIDRs only\n[[policy]]\nname = \"bench\"\n\
         nodeSelector = {}\n",
    );
    for c in allowed(n, client_allowed) {
        let _ = write!(s, "\n[[policy.ingress]]\nfromCIDR = [\"{c}\"]\n");
    }
    s
}

/// A firewall set up in the node namespace.
struct Active {
    fw: Fw,
    daemon: Option<Daemon>,
    reference: Option<Bg>,
    /// Time to load the rules (daemon: start until enforcing).
    load: Duration,
    /// How XDP runs, for the report.
    mode: String,
}

struct Bench {
    bins: PathBuf,
    hostfw: PathBuf,
    out: PathBuf,
    work: PathBuf,
    flood_secs: f64,
    runs: usize,
    flood_sizes: Vec<u32>,
    ctl_sizes: Vec<u32>,
    overhead_rules: u32,
    /// Only the control plane (`--only-control`): no flood, no overhead.
    only_control: bool,
    failures: Vec<String>,
    raw: String,
    notes: Vec<String>,
}

impl Bench {
    fn exe(&self, name: &str) -> String {
        self.bins.join(name).to_string_lossy().into_owned()
    }

    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            let msg = what();
            eprintln!("CHECK FAILED: {msg}");
            self.failures.push(msg);
        }
    }

    fn record(
        &mut self,
        section: &str,
        config: &str,
        rules: u32,
        run: usize,
        metric: &str,
        v: f64,
    ) {
        let _ = writeln!(self.raw, "{section},{config},{rules},{run},{metric},{v}");
    }

    /// Sets up `fw` with `n` rules (`on` is the interface of the XDP
    /// reference program; `action` its verdict).
    fn setup(&mut self, fw: Fw, n: u32, on: &str, action: &str) -> anyhow::Result<Active> {
        self.assert_clean()?;
        let mut a = Active {
            fw,
            daemon: None,
            reference: None,
            load: Duration::ZERO,
            mode: String::new(),
        };
        let start = Instant::now();
        match fw {
            Fw::None => {}
            Fw::XdpRef => {
                let flood = self.exe("flood");
                let bg = Bg::spawn(
                    "reference XDP program",
                    &[
                        "nsenter",
                        &format!("--net=/run/netns/{RX}"),
                        &flood,
                        "xdp-attach",
                        "--ifname",
                        on,
                        "--action",
                        action,
                    ],
                )?
                .ready()?;
                a.reference = Some(bg);
                a.mode = format!("{on}: native, XDP_{}", action.to_uppercase());
            }
            Fw::Hostfw => {
                let (d, took) = Daemon::start(&self.hostfw, &self.work, n)?;
                a.mode = d.xdp_modes();
                a.daemon = Some(d);
                a.load = took;
                return Ok(a);
            }
            Fw::Nft => {
                let file = self.work.join(format!("nft-{n}.nft"));
                let mut s = format!(
                    "table inet {NFT_TABLE} {{\n  set allow4 {{ type ipv4_addr; flags interval; elements = {{ "
                );
                s.push_str(&allowed(n, true).join(", "));
                s.push_str(
                    " } }\n  chain pre {\n    type filter hook prerouting priority -300; policy accept;\n    \
                     iif lo accept\n    ip saddr != @allow4 counter drop\n  }\n}\n",
                );
                std::fs::write(&file, s)?;
                run(&in_ns(RX, &["nft", "-f", &file.to_string_lossy()]))?;
            }
            Fw::IptLinear | Fw::IptSet => {
                let mut rules = String::from(
                    "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -i lo -j ACCEPT\n",
                );
                if fw == Fw::IptSet {
                    let set_file = self.work.join(format!("ipset-{n}"));
                    let mut s = format!(
                        "create {IPSET} hash:net family inet hashsize 65536 maxelem 1048576\n"
                    );
                    for c in allowed(n, true) {
                        let _ = writeln!(s, "add {IPSET} {c}");
                    }
                    std::fs::write(&set_file, s)?;
                    run_stdin(&in_ns(RX, &["ipset", "restore"]), &set_file)?;
                    let _ = writeln!(
                        rules,
                        "-A PREROUTING -m set ! --match-set {IPSET} src -j DROP"
                    );
                } else {
                    for c in allowed(n, true) {
                        let _ = writeln!(rules, "-A PREROUTING -s {c} -j ACCEPT");
                    }
                    rules.push_str("-A PREROUTING -j DROP\n");
                }
                rules.push_str("COMMIT\n");
                let file = self.work.join(format!("iptables-{n}"));
                std::fs::write(&file, rules)?;
                run_stdin(&in_ns(RX, &["iptables-legacy-restore"]), &file)?;
            }
        }
        a.load = start.elapsed();
        Ok(a)
    }

    fn teardown(&mut self, a: Active) -> anyhow::Result<()> {
        match a.fw {
            Fw::None | Fw::Hostfw => {}
            Fw::XdpRef => {
                if let Some(bg) = a.reference {
                    bg.finish()?;
                }
            }
            Fw::Nft => {
                run(&in_ns(RX, &["nft", "delete", "table", "inet", NFT_TABLE]))?;
            }
            Fw::IptLinear | Fw::IptSet => {
                run(&in_ns(
                    RX,
                    &["iptables-legacy", "-t", "raw", "-F", "PREROUTING"],
                ))?;
                if a.fw == Fw::IptSet {
                    run(&in_ns(RX, &["ipset", "destroy", IPSET]))?;
                }
            }
        }
        drop(a.daemon);
        self.assert_clean()
    }

    /// No filtering left in the node namespace.
    fn assert_clean(&self) -> anyhow::Result<()> {
        let links = run(&["ip", "-n", RX, "link", "show"])?;
        if links.contains(" xdp") || links.contains("prog/xdp") {
            bail!("an XDP program is still attached in {RX}:\n{links}");
        }
        let nft = run(&in_ns(RX, &["nft", "list", "ruleset"]))?;
        if nft.contains("table") {
            bail!("nftables rules left in {RX}:\n{nft}");
        }
        let ipt = run(&in_ns(
            RX,
            &["iptables-legacy", "-t", "raw", "-S", "PREROUTING"],
        ))?;
        if ipt.lines().count() > 1 {
            bail!("iptables rules left in {RX}:\n{ipt}");
        }
        Ok(())
    }

    /// Packets the firewall has dropped so far.
    fn drops(a: &Active) -> anyhow::Result<u64> {
        Ok(match a.fw {
            Fw::None => 0,
            Fw::XdpRef => ethtool_stat(RX, RX_FL_IF, "rx_queue_0_xdp_drops")?,
            Fw::Hostfw => a.daemon.as_ref().context("no daemon")?.counter("dropped")?,
            Fw::Nft => {
                let s = run(&in_ns(
                    RX,
                    &["nft", "list", "chain", "inet", NFT_TABLE, "pre"],
                ))?;
                s.split("counter packets ")
                    .skip(1)
                    .filter_map(|t| t.split_whitespace().next()?.parse::<u64>().ok())
                    .sum()
            }
            Fw::IptLinear | Fw::IptSet => {
                let s = run(&in_ns(
                    RX,
                    &[
                        "iptables-legacy",
                        "-t",
                        "raw",
                        "-L",
                        "PREROUTING",
                        "-v",
                        "-n",
                        "-x",
                    ],
                ))?;
                s.lines()
                    .filter(|l| l.split_whitespace().nth(2) == Some("DROP"))
                    .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
                    .sum()
            }
        })
    }

    /// A TCP connection to the node from `ns` (to `addr`): true if it
    /// completed.
    fn connects(&self, ns: &str, addr: &str) -> anyhow::Result<bool> {
        let rr = self.exe("tcp_rr");
        let to = format!("{addr}:{RR_PORT}");
        let out = run(&in_ns(
            ns,
            &[&rr, "connect", "--connect", &to, "--timeout-ms", "300"],
        ))?;
        Ok(out.trim() == "ok")
    }

    /// The allowed client connects, the flood's source does not (or does,
    /// without a firewall).
    fn check_flows(&mut self, fw: Fw, n: u32, when: &str) -> anyhow::Result<()> {
        let allowed = self.connects(OK, RX_OK_ADDR)?;
        let denied_passed = self.connects(FL, RX_FL_ADDR)?;
        self.check(allowed, || {
            format!(
                "{}, {n} rules, {when}: the allowed TCP flow was refused",
                fw.label()
            )
        });
        let want = !fw.filters() || fw == Fw::XdpRef;
        self.check(denied_passed == want, || {
            format!(
                "{}, {n} rules, {when}: the TCP flow from the denied source {}",
                fw.label(),
                if denied_passed {
                    "passed"
                } else {
                    "was refused"
                }
            )
        });
        Ok(())
    }
}

fn ethtool_stat(ns: &str, ifname: &str, key: &str) -> anyhow::Result<u64> {
    let s = run(&in_ns(ns, &["ethtool", "-S", ifname]))?;
    s.lines()
        .find_map(|l| {
            let (k, v) = l.trim().split_once(':')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
        .with_context(|| format!("no {key} in ethtool -S {ifname}"))
}

// ---------------------------------------------------------------- flood

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gen {
    AfPacket,
    XdpFrames,
}

impl Gen {
    fn cmd(self) -> &'static str {
        match self {
            Self::AfPacket => "send",
            Self::XdpFrames => "xdp-send",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::AfPacket => "af_packet",
            Self::XdpFrames => "xdp_frames",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::AfPacket => {
                "AF_PACKET sender (sendmmsg of 64 frames, PACKET_QDISC_BYPASS): frames reach the node as skbs"
            }
            Self::XdpFrames => {
                "XDP-frame sender (BPF_PROG_TEST_RUN live frames, bpf_redirect): frames reach the node as XDP frames, as from a NIC"
            }
        }
    }
}

#[derive(Default)]
struct FloodPoint {
    offered: Vec<f64>,
    dropped: Vec<f64>,
    processed: Vec<f64>,
    received: Vec<f64>,
}

struct FloodRow {
    sender: Gen,
    fw: Fw,
    rules: u32,
    offered: Stat,
    dropped: Stat,
    processed: Stat,
    received: Stat,
    load_ms: f64,
}

impl Bench {
    fn flood_run(
        &mut self,
        a: &Active,
        sender: Gen,
        n: u32,
        run_no: usize,
        p: &mut FloodPoint,
    ) -> anyhow::Result<()> {
        let flood = self.exe("flood");
        let sink = Bg::spawn(
            "sink",
            &[
                "taskset", "-c", "1", "ip", "netns", "exec", RX, &flood, "sink", "--port", UDP_PORT,
            ],
        )?
        .ready()?;
        let ring0 = ethtool_stat(RX, RX_FL_IF, "rx_queue_0_xdp_packets")?;
        let d0 = Self::drops(a)?;
        let secs = format!("{}", self.flood_secs);
        let out = run(&[
            "taskset",
            "-c",
            "0",
            "nsenter",
            &format!("--net=/run/netns/{FL}"),
            &flood,
            sender.cmd(),
            "--ifname",
            FL_IF,
            "--src",
            FLOOD_SRC,
            "--dst",
            RX_FL_ADDR,
            "--dport",
            UDP_PORT,
            "--secs",
            &secs,
        ])?;
        let ring1 = ethtool_stat(RX, RX_FL_IF, "rx_queue_0_xdp_packets")?;
        let d1 = Self::drops(a)?;
        let sent = json(&out)?;
        let probes = PROBES.to_string();
        run(&in_ns(
            OK,
            &[
                &flood, "probe", "--bind", ALLOWED, "--dst", RX_OK_ADDR, "--dport", UDP_PORT,
                "--count", &probes,
            ],
        ))?;
        std::thread::sleep(Duration::from_millis(100));
        let got = json(&sink.finish()?)?;
        let secs = num(&sent, "secs");
        let from = |src: &str| got["by_source"][src].as_u64().unwrap_or(0);
        let (denied_in, allowed_in) = (from(FLOOD_SRC), from(ALLOWED));
        #[expect(clippy::cast_precision_loss, reason = "packet counts fit easily")]
        let (processed, dropped, received) = (
            (ring1 - ring0) as f64 / secs,
            (d1 - d0) as f64 / secs,
            denied_in as f64 / secs,
        );
        let offered = num(&sent, "offered_pps");
        let cfg = format!("{}/{}", a.fw.key(), sender.key());
        for (m, v) in [
            ("offered_pps", offered),
            ("processed_pps", processed),
            ("dropped_pps", dropped),
            ("received_pps", received),
        ] {
            self.record("flood", &cfg, n, run_no, m, v);
        }
        p.offered.push(offered);
        p.processed.push(processed);
        p.dropped.push(dropped);
        p.received.push(received);
        let label = a.fw.label();
        self.check(allowed_in == PROBES, || {
            format!(
                "flood, {label}, {n} rules: {allowed_in} of {PROBES} datagrams of the allowed flow arrived"
            )
        });
        if a.fw.filters() {
            self.check(denied_in == 0, || {
                format!("flood, {label}, {n} rules: {denied_in} datagrams of the denied source reached the socket")
            });
            let counted = d1 - d0;
            let seen = ring1 - ring0;
            self.check(seen > 0 && counted * 100 >= seen * 95, || {
                format!(
                    "flood, {label}, {n} rules: the firewall counted {counted} drops of {seen} flood frames"
                )
            });
        } else {
            self.check(denied_in > 0, || {
                "flood without a firewall: nothing reached the socket".to_owned()
            });
        }
        Ok(())
    }

    /// Every configuration once per round, rounds repeated: load that
    /// comes and goes on the machine touches every configuration alike.
    fn flood(&mut self) -> anyhow::Result<Vec<FloodRow>> {
        let mut configs: Vec<(Fw, u32)> = vec![(Fw::None, 0), (Fw::XdpRef, 0)];
        for &n in &self.flood_sizes {
            for fw in [Fw::Hostfw, Fw::Nft, Fw::IptLinear, Fw::IptSet] {
                configs.push((fw, n));
            }
        }
        let senders = [Gen::AfPacket, Gen::XdpFrames];
        let mut points: Vec<[FloodPoint; 2]> = configs.iter().map(|_| Default::default()).collect();
        let mut loads: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
        for r in 0..self.runs {
            for (i, &(fw, n)) in configs.iter().enumerate() {
                let a = self.setup(fw, n, RX_FL_IF, "drop")?;
                if fw == Fw::Hostfw && r == 0 {
                    self.notes.push(format!("hostfw, {n} rules: {}", a.mode));
                }
                eprintln!(
                    "flood, round {}/{}: {} {n} rules (set up in {:.0} ms)",
                    r + 1,
                    self.runs,
                    fw.label(),
                    a.load.as_secs_f64() * 1e3
                );
                loads[i].push(a.load.as_secs_f64() * 1e3);
                for (k, &sender) in senders.iter().enumerate() {
                    self.flood_run(&a, sender, n, r, &mut points[i][k])?;
                }
                self.teardown(a)?;
            }
        }
        let mut rows = Vec::new();
        for (k, &sender) in senders.iter().enumerate() {
            for (i, &(fw, n)) in configs.iter().enumerate() {
                let p = &points[i][k];
                rows.push(FloodRow {
                    sender,
                    fw,
                    rules: n,
                    offered: stat(&p.offered),
                    dropped: stat(&p.dropped),
                    processed: stat(&p.processed),
                    received: stat(&p.received),
                    load_ms: stat(&loads[i]).med,
                });
            }
        }
        Ok(rows)
    }
}

// ---------------------------------------------------------------- overhead

struct OverheadRow {
    fw: Fw,
    gbps: Stat,
    tps: Stat,
}

impl Bench {
    fn overhead(&mut self) -> anyhow::Result<Vec<OverheadRow>> {
        let n = self.overhead_rules;
        let _iperf = Bg::spawn_quiet(
            "iperf3 server",
            &[
                "taskset", "-c", "1", "ip", "netns", "exec", RX, "iperf3", "-s", "-B", RX_OK_ADDR,
                "-p", IPERF_PORT,
            ],
        )?;
        std::thread::sleep(Duration::from_millis(300));
        let rr = self.exe("tcp_rr");
        let fws = [
            Fw::None,
            Fw::XdpRef,
            Fw::Hostfw,
            Fw::Nft,
            Fw::IptLinear,
            Fw::IptSet,
        ];
        let (mut gbps, mut tps) = (vec![Vec::new(); fws.len()], vec![Vec::new(); fws.len()]);
        // Rounds, as for the flood.
        for r in 0..self.runs {
            for (i, &fw) in fws.iter().enumerate() {
                let a = self.setup(fw, n, RX_OK_IF, "pass")?;
                eprintln!(
                    "allowed traffic, round {}/{}: {} {n} rules",
                    r + 1,
                    self.runs,
                    fw.label()
                );
                self.check_flows(fw, n, "allowed-traffic test")?;
                let out = run(&in_ns(
                    OK,
                    &[
                        "taskset", "-c", "0", "iperf3", "-c", RX_OK_ADDR, "-p", IPERF_PORT, "-t",
                        "2", "-J",
                    ],
                ))?;
                let v: Value = serde_json::from_str(&out)?;
                let bps = v["end"]["sum_received"]["bits_per_second"]
                    .as_f64()
                    .unwrap_or(0.0);
                self.check(bps > 0.0, || {
                    format!("iperf3 through {}: no throughput", fw.label())
                });
                gbps[i].push(bps / 1e9);
                self.record("overhead", fw.key(), n, r, "tcp_gbps", bps / 1e9);
                let to = format!("{RX_OK_ADDR}:{RR_PORT}");
                let out = run(&in_ns(
                    OK,
                    &[
                        "taskset",
                        "-c",
                        "0",
                        &rr,
                        "client",
                        "--connect",
                        &to,
                        "--secs",
                        "2",
                    ],
                ))?;
                let t = num(&json(&out)?, "tps");
                tps[i].push(t);
                self.record("overhead", fw.key(), n, r, "rr_tps", t);
                self.teardown(a)?;
            }
        }
        Ok(fws
            .iter()
            .enumerate()
            .map(|(i, &fw)| OverheadRow {
                fw,
                gbps: stat(&gbps[i]),
                tps: stat(&tps[i]),
            })
            .collect())
    }
}

// ---------------------------------------------------------------- control plane

struct ControlRow {
    rules: u32,
    startup_ms: f64,
    to_deny: Stat,
    to_allow: Stat,
    rss_mib: f64,
    hwm_mib: f64,
}

impl Bench {
    fn flip(&mut self, d: &Daemon, with: &str, expect: &str) -> anyhow::Result<f64> {
        let rr = self.exe("tcp_rr");
        let to = format!("{RX_OK_ADDR}:{RR_PORT}");
        let with = d.dir.join(with);
        let out = run(&in_ns(
            OK,
            &[
                &rr,
                "flip",
                "--file",
                &d.policy.to_string_lossy(),
                "--with",
                &with.to_string_lossy(),
                "--connect",
                &to,
                "--expect",
                expect,
                "--timeout-ms",
                "20",
                "--max-secs",
                "30",
            ],
        ))?;
        Ok(num(&json(&out)?, "ms"))
    }

    fn control(&mut self) -> anyhow::Result<Vec<ControlRow>> {
        let mut rows = Vec::new();
        for n in self.ctl_sizes.clone() {
            eprintln!("control plane: hostfw daemon, {n} rules");
            let (d, startup) = Daemon::start(&self.hostfw, &self.work, n)?;
            self.check_flows(Fw::Hostfw, n, "daemon started")?;
            let (mut deny, mut allow) = (Vec::new(), Vec::new());
            for r in 0..self.runs {
                // Let the previous reload settle.
                std::thread::sleep(Duration::from_millis(400));
                let ms = self.flip(&d, "deny.toml", "fail")?;
                deny.push(ms);
                self.record("control", "file_to_deny", n, r, "ms", ms);
                std::thread::sleep(Duration::from_millis(400));
                let ms = self.flip(&d, "allow.toml", "ok")?;
                allow.push(ms);
                self.record("control", "file_to_allow", n, r, "ms", ms);
            }
            self.check_flows(Fw::Hostfw, n, "after the policy changes")?;
            std::thread::sleep(Duration::from_millis(500));
            let (rss, hwm) = d.memory_kib();
            #[expect(clippy::cast_precision_loss, reason = "KiB fit easily")]
            let (rss_mib, hwm_mib) = (rss as f64 / 1024.0, hwm as f64 / 1024.0);
            self.record("control", "daemon_rss_mib", n, 0, "mib", rss_mib);
            self.record("control", "daemon_hwm_mib", n, 0, "mib", hwm_mib);
            let last = d.status()?;
            self.check(last["last_error"].is_null(), || {
                format!("hostfw daemon, {n} rules: {}", last["last_error"])
            });
            drop(d);
            self.assert_clean()?;
            rows.push(ControlRow {
                rules: n,
                startup_ms: startup.as_secs_f64() * 1e3,
                to_deny: stat(&deny),
                to_allow: stat(&allow),
                rss_mib,
                hwm_mib,
            });
        }
        Ok(rows)
    }
}

// ---------------------------------------------------------------- report

/// Rows of a CSV file written by `verdict_cost`, as maps.
fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut lines = text.lines();
    let Some(head) = lines.next() else {
        return Vec::new();
    };
    let cols: Vec<&str> = head.split(',').collect();
    lines
        .map(|l| {
            cols.iter()
                .zip(l.split(','))
                .map(|(c, v)| ((*c).to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

fn fnum(row: &BTreeMap<String, String>, k: &str) -> f64 {
    row.get(k).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
}

fn yes(ok: bool) -> &'static str {
    if ok { "MET" } else { "NOT MET" }
}

struct Report<'a> {
    out: &'a Path,
    flood: &'a [FloodRow],
    overhead: &'a [OverheadRow],
    control: &'a [ControlRow],
    overhead_rules: u32,
    flood_secs: f64,
    runs: usize,
}

impl Report<'_> {
    fn flood_row(&self, sender: Gen, fw: Fw, n: u32) -> Option<&FloodRow> {
        self.flood
            .iter()
            .find(|r| r.sender == sender && r.fw == fw && r.rules == n)
    }

    #[expect(clippy::too_many_lines, reason = "one report, in order")]
    fn render(&self) -> anyhow::Result<(String, Vec<(String, bool)>)> {
        let mut t = String::new();
        let mut goals: Vec<(String, bool)> = Vec::new();
        let vc = read_csv(&self.out.join("verdict_cost.csv"));
        let ap = read_csv(&self.out.join("apply.csv"));

        // 1. Verdict cost.
        writeln!(
            t,
            "\n== 1. Verdict cost: ns per packet, BPF_PROG_TEST_RUN (median, min-max; from verdict_cost.csv)"
        )?;
        let sizes: Vec<String> = {
            let mut s: Vec<u32> = vc
                .iter()
                .filter_map(|r| r.get("rules")?.parse().ok())
                .collect();
            s.sort_unstable();
            s.dedup();
            s.iter().map(u32::to_string).collect()
        };
        write!(t, "{:<6} {:<18} {:<4}", "kind", "packet", "prog")?;
        for s in &sizes {
            write!(t, " {:>18}", format!("{s} rules"))?;
        }
        writeln!(t, " {:>9}", "max/min")?;
        let mut worst: (f64, String) = (0.0, String::new());
        for (kind, family) in ["cidr", "port", "mixed"]
            .into_iter()
            .flat_map(|k| ["ipv4", "ipv6"].map(|f| (k, f)))
        {
            for packet in ["denied", "allowed_new", "allowed_tracked"] {
                for prog in ["xdp", "tc"] {
                    let cells: Vec<&BTreeMap<String, String>> = sizes
                        .iter()
                        .filter_map(|s| {
                            vc.iter().find(|r| {
                                r.get("kind").map(String::as_str) == Some(kind)
                                    && r.get("family").map_or("ipv4", String::as_str) == family
                                    && r.get("packet").map(String::as_str) == Some(packet)
                                    && r.get("prog").map(String::as_str) == Some(prog)
                                    && r.get("rules") == Some(s)
                            })
                        })
                        .collect();
                    if cells.is_empty() {
                        continue;
                    }
                    write!(
                        t,
                        "{kind:<6} {:<18} {prog:<4}",
                        format!("{family} {packet}")
                    )?;
                    for c in &cells {
                        write!(
                            t,
                            " {:>18}",
                            format!(
                                "{:.0} ({:.0}-{:.0})",
                                fnum(c, "median_ns"),
                                fnum(c, "min_ns"),
                                fnum(c, "max_ns")
                            )
                        )?;
                    }
                    let ratio =
                        fnum(cells[cells.len() - 1], "median_ns") / fnum(cells[0], "median_ns");
                    writeln!(t, " {ratio:>9.2}")?;
                    if ratio > worst.0 {
                        worst = (ratio, format!("{kind} rules, {family} {packet}, {prog}"));
                    }
                }
            }
        }
        if !vc.is_empty() {
            goals.push((
                format!(
                    "verdict cost at {} rules <= 1.3 x cost at {} rules: worst {:.2} ({})",
                    sizes.last().map_or("?", String::as_str),
                    sizes.first().map_or("?", String::as_str),
                    worst.0,
                    worst.1
                ),
                worst.0 <= 1.3,
            ));
        }

        // 2. Flood.
        for sender in [Gen::AfPacket, Gen::XdpFrames] {
            writeln!(
                t,
                "\n== 2. Drop rate under a UDP flood from a denied source, packets/s, median (min-max) of {} runs of {} s\n   {}",
                self.runs,
                self.flood_secs,
                sender.title()
            )?;
            writeln!(
                t,
                "   (reference XDP prog: a 2-instruction XDP_DROP program on the same veth, the ceiling of this harness;\n   \
                 offered: frames the sender handed to the kernel per second; dropped: counted by the firewall)"
            )?;
            writeln!(
                t,
                "{:>6} {:<19} {:>22} {:>22} {:>22} {:>8}",
                "rules", "firewall", "offered", "dropped", "received by socket", "vs nft"
            )?;
            for r in self.flood.iter().filter(|r| r.sender == sender) {
                let nft = self
                    .flood_row(sender, Fw::Nft, r.rules)
                    .map(|x| x.dropped.med);
                let ratio = match (r.fw.filters(), nft) {
                    (true, Some(n)) if n > 0.0 => format!("{:.2}", r.dropped.med / n),
                    _ => "-".to_owned(),
                };
                let rules = if r.rules == 0 {
                    "-".to_owned()
                } else {
                    r.rules.to_string()
                };
                let dropped = if r.fw.filters() {
                    si_stat(r.dropped)
                } else {
                    "-".to_owned()
                };
                writeln!(
                    t,
                    "{rules:>6} {:<19} {:>22} {:>22} {:>22} {ratio:>8}",
                    r.fw.label(),
                    si_stat(r.offered),
                    dropped,
                    si_stat(r.received),
                )?;
            }
            for (n, want) in [(10_000u32, 3.0), (10, 1.5)] {
                if let (Some(h), Some(f)) = (
                    self.flood_row(sender, Fw::Hostfw, n),
                    self.flood_row(sender, Fw::Nft, n),
                ) {
                    let ratio = h.dropped.med / f.dropped.med;
                    let min_ratio = h.dropped.min / f.dropped.max;
                    let max_ratio = h.dropped.max / f.dropped.min;
                    goals.push((
                        format!(
                            "hostfw XDP drop rate >= {want}x nftables at {n} rules ({}): {ratio:.2}x \
                             (range {min_ratio:.2}-{max_ratio:.2}; {} vs {} pps)",
                            sender.key(),
                            si(h.dropped.med),
                            si(f.dropped.med)
                        ),
                        ratio >= want,
                    ));
                }
            }
        }

        // 3. Overhead.
        writeln!(
            t,
            "\n== 3. Allowed traffic through {} rules (allowed client matches the last rule): median (min-max) of {} runs\n   \
             (reference XDP prog: a 2-instruction XDP_PASS program; any XDP program on a veth turns TSO off on its peer)",
            self.overhead_rules, self.runs
        )?;
        writeln!(
            t,
            "{:<19} {:>26} {:>8} {:>30} {:>8}",
            "firewall",
            "TCP throughput (iperf3)",
            "vs none",
            "TCP request/response (64 B)",
            "vs none"
        )?;
        let base = self.overhead.iter().find(|r| r.fw == Fw::None);
        for r in self.overhead {
            let (g, q) = base.map_or((f64::NAN, f64::NAN), |b| {
                (r.gbps.med / b.gbps.med, r.tps.med / b.tps.med)
            });
            writeln!(
                t,
                "{:<19} {:>26} {:>7.0}% {:>30} {:>7.0}%",
                r.fw.label(),
                format!(
                    "{:.2} ({:.2}-{:.2}) Gbit/s",
                    r.gbps.med, r.gbps.min, r.gbps.max
                ),
                g * 100.0,
                format!("{} ({}-{}) /s", si(r.tps.med), si(r.tps.min), si(r.tps.max)),
                q * 100.0
            )?;
        }
        if let (Some(b), Some(h)) = (base, self.overhead.iter().find(|r| r.fw == Fw::Hostfw)) {
            let pct = h.gbps.med / b.gbps.med * 100.0;
            goals.push((
                format!(
                    "allowed TCP throughput with hostfw >= 95% of no firewall: {pct:.0}% \
                     ({:.2} vs {:.2} Gbit/s; request/response {:.0}%)",
                    h.gbps.med,
                    b.gbps.med,
                    h.tps.med / b.tps.med * 100.0
                ),
                pct >= 95.0,
            ));
        }

        // 4. Control plane.
        writeln!(
            t,
            "\n== 4. Control plane (hostfw; cidr rules). compile and apply: Datapath::apply of verdict_cost (median, min-max);\n   \
             file change to enforcement: the real daemon, a policy file replaced, until a TCP connect's verdict changes"
        )?;
        writeln!(
            t,
            "{:>7} {:>16} {:>18} {:>18} {:>11} {:>18} {:>18} {:>9} {:>9}",
            "rules",
            "compile ms",
            "apply ms",
            "compile+apply ms",
            "start ms",
            "file->deny ms",
            "file->allow ms",
            "RSS MiB",
            "peak MiB"
        )?;
        for c in self.control {
            let a = ap.iter().find(|r| {
                r.get("kind").map(String::as_str) == Some("cidr")
                    && r.get("rules") == Some(&c.rules.to_string())
            });
            let cell = |k: &str| {
                a.map_or("-".to_owned(), |r| {
                    format!(
                        "{:.0} ({:.0}-{:.0})",
                        fnum(r, &format!("{k}_ms")),
                        fnum(r, &format!("{k}_min")),
                        fnum(r, &format!("{k}_max"))
                    )
                })
            };
            writeln!(
                t,
                "{:>7} {:>16} {:>18} {:>18} {:>11.0} {:>18} {:>18} {:>9.1} {:>9.1}",
                c.rules,
                cell("compile"),
                cell("apply"),
                cell("total"),
                c.startup_ms,
                ms_stat(c.to_deny),
                ms_stat(c.to_allow),
                c.rss_mib,
                c.hwm_mib
            )?;
        }
        let loads: Vec<String> = self
            .flood
            .iter()
            .filter(|r| r.sender == Gen::AfPacket && r.rules >= 1000 && r.fw != Fw::Hostfw)
            .map(|r| format!("{} {}: {:.0} ms", r.fw.label(), r.rules, r.load_ms))
            .collect();
        if !loads.is_empty() {
            writeln!(
                t,
                "   loading the same rules into the others: {}",
                loads.join(", ")
            )?;
        }
        if let Some(r) = ap.iter().find(|r| {
            r.get("kind").map(String::as_str) == Some("cidr")
                && r.get("rules").map(String::as_str) == Some("10000")
        }) {
            let total = fnum(r, "total_ms");
            goals.push((
                format!(
                    "compile and apply of 10,000 rules into empty slots <= 20 ms: {total:.0} ms \
                     (compile {:.0}, apply {:.0}; verdict_cost prints the other control-plane goals)",
                    fnum(r, "compile_ms"),
                    fnum(r, "apply_ms")
                ),
                total <= 20.0,
            ));
        }
        if let Some(c) = self.control.iter().find(|c| c.rules == 10_000) {
            let worst = c.to_deny.med.max(c.to_allow.med);
            goals.push((
                format!(
                    "file change to enforcement <= 1 s at 10,000 rules: {worst:.0} ms \
                     (to deny {:.0}, to allow {:.0}; the daemon waits 300 ms for writes to settle)",
                    c.to_deny.med, c.to_allow.med
                ),
                worst <= 1000.0,
            ));
            goals.push((
                format!(
                    "daemon RSS <= 30 MiB at 10,000 rules: {:.1} MiB (peak {:.1} MiB)",
                    c.rss_mib, c.hwm_mib
                ),
                c.rss_mib <= 30.0,
            ));
        }
        Ok((t, goals))
    }
}

// ---------------------------------------------------------------- outputs

impl Bench {
    fn write_outputs(
        &self,
        flood: &[FloodRow],
        overhead: &[OverheadRow],
        control: &[ControlRow],
    ) -> anyhow::Result<()> {
        let mut f = String::from(
            "generator,firewall,rules,offered_pps,offered_min,offered_max,dropped_pps,dropped_min,dropped_max,\
             received_pps,received_min,received_max,processed_pps,ratio_to_nft,load_ms\n",
        );
        for r in flood {
            let nft = flood
                .iter()
                .find(|x| x.sender == r.sender && x.fw == Fw::Nft && x.rules == r.rules)
                .map_or(f64::NAN, |x| r.dropped.med / x.dropped.med);
            writeln!(
                f,
                "{},{},{},{:.0},{:.0},{:.0},{:.0},{:.0},{:.0},{:.0},{:.0},{:.0},{:.0},{:.3},{:.1}",
                r.sender.key(),
                r.fw.key(),
                r.rules,
                r.offered.med,
                r.offered.min,
                r.offered.max,
                r.dropped.med,
                r.dropped.min,
                r.dropped.max,
                r.received.med,
                r.received.min,
                r.received.max,
                r.processed.med,
                nft,
                r.load_ms
            )?;
        }
        std::fs::write(self.out.join("flood.csv"), f)?;
        let mut o = String::from("firewall,rules,tcp_gbps,tcp_min,tcp_max,rr_tps,rr_min,rr_max\n");
        for r in overhead {
            writeln!(
                o,
                "{},{},{:.3},{:.3},{:.3},{:.0},{:.0},{:.0}",
                r.fw.key(),
                self.overhead_rules,
                r.gbps.med,
                r.gbps.min,
                r.gbps.max,
                r.tps.med,
                r.tps.min,
                r.tps.max
            )?;
        }
        std::fs::write(self.out.join("overhead.csv"), o)?;
        let mut c = String::from(
            "rules,startup_ms,file_to_deny_ms,deny_min,deny_max,file_to_allow_ms,allow_min,allow_max,rss_mib,peak_mib\n",
        );
        for r in control {
            writeln!(
                c,
                "{},{:.0},{:.0},{:.0},{:.0},{:.0},{:.0},{:.0},{:.1},{:.1}",
                r.rules,
                r.startup_ms,
                r.to_deny.med,
                r.to_deny.min,
                r.to_deny.max,
                r.to_allow.med,
                r.to_allow.min,
                r.to_allow.max,
                r.rss_mib,
                r.hwm_mib
            )?;
        }
        std::fs::write(self.out.join("control.csv"), c)?;
        std::fs::write(
            self.out.join("runs.csv"),
            format!("section,config,rules,run,metric,value\n{}", self.raw),
        )?;
        self.plot_data(flood, overhead, control)
    }

    /// Whitespace-separated series for `bench/plot.gp`.
    fn plot_data(
        &self,
        flood: &[FloodRow],
        overhead: &[OverheadRow],
        control: &[ControlRow],
    ) -> anyhow::Result<()> {
        let dir = self.out.join("plot");
        std::fs::create_dir_all(&dir)?;
        // Verdict cost: rules, then XDP medians of denied and allowed-new for
        // cidr, port, mixed.
        let vc = read_csv(&self.out.join("verdict_cost.csv"));
        let mut sizes: Vec<u32> = vc
            .iter()
            .filter_map(|r| r.get("rules")?.parse().ok())
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        let mut v = String::from(
            "# rules cidr_denied cidr_new port_denied port_new mixed_denied mixed_new (XDP ns)\n",
        );
        for n in &sizes {
            write!(v, "{n}")?;
            for kind in ["cidr", "port", "mixed"] {
                for packet in ["denied", "allowed_new"] {
                    let x = vc
                        .iter()
                        .find(|r| {
                            r.get("kind").map(String::as_str) == Some(kind)
                                && r.get("family").map_or("ipv4", String::as_str) == "ipv4"
                                && r.get("packet").map(String::as_str) == Some(packet)
                                && r.get("prog").map(String::as_str) == Some("xdp")
                                && r.get("rules") == Some(&n.to_string())
                        })
                        .map_or(f64::NAN, |r| fnum(r, "median_ns"));
                    write!(v, " {x:.1}")?;
                }
            }
            writeln!(v)?;
        }
        std::fs::write(dir.join("verdict.dat"), v)?;
        // Flood: per generator, rules then (median min max) Mpps for hostfw,
        // nftables, iptables, ipset.
        for sender in [Gen::AfPacket, Gen::XdpFrames] {
            let mut s = String::from(
                "# rules, then median min max Mpps of hostfw nftables iptables ipset\n",
            );
            for &n in &self.flood_sizes {
                write!(s, "{n}")?;
                for fw in [Fw::Hostfw, Fw::Nft, Fw::IptLinear, Fw::IptSet] {
                    let r = flood
                        .iter()
                        .find(|r| r.sender == sender && r.fw == fw && r.rules == n);
                    let d = r.map_or(Stat::default(), |r| r.dropped);
                    write!(
                        s,
                        " {:.4} {:.4} {:.4}",
                        d.med / 1e6,
                        d.min / 1e6,
                        d.max / 1e6
                    )?;
                }
                writeln!(s)?;
            }
            std::fs::write(dir.join(format!("flood_{}.dat", sender.key())), s)?;
        }
        let base = overhead.iter().find(|r| r.fw == Fw::None);
        let mut o = String::from("# firewall throughput_pct rr_pct\n");
        for r in overhead {
            let (g, q) = base.map_or((0.0, 0.0), |b| {
                (
                    r.gbps.med / b.gbps.med * 100.0,
                    r.tps.med / b.tps.med * 100.0,
                )
            });
            writeln!(o, "\"{}\" {g:.1} {q:.1}", r.fw.label())?;
        }
        std::fs::write(dir.join("overhead.dat"), o)?;
        let ap = read_csv(&self.out.join("apply.csv"));
        let mut c =
            String::from("# rules compile_apply_ms file_to_deny_ms file_to_allow_ms rss_mib\n");
        for r in control {
            let total = ap
                .iter()
                .find(|a| {
                    a.get("kind").map(String::as_str) == Some("cidr")
                        && a.get("rules") == Some(&r.rules.to_string())
                })
                .map_or(f64::NAN, |a| fnum(a, "total_ms"));
            writeln!(
                c,
                "{} {total:.1} {:.1} {:.1} {:.2}",
                r.rules, r.to_deny.med, r.to_allow.med, r.rss_mib
            )?;
        }
        std::fs::write(dir.join("control.dat"), c)?;
        Ok(())
    }
}

// ---------------------------------------------------------------- main

fn sizes(s: &str) -> anyhow::Result<Vec<u32>> {
    s.split(',')
        .map(|x| x.parse().with_context(|| format!("bad size {x}")))
        .collect()
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let exe = std::env::current_exe()?;
    let examples = exe.parent().context("no exe dir")?.to_path_buf();
    let release = examples.parent().context("no target dir")?.to_path_buf();
    let mut b = Bench {
        bins: examples,
        hostfw: release.join("hostfw"),
        out: PathBuf::from("target/bench"),
        work: std::env::temp_dir().join(format!("hostfw-bench-{}", std::process::id())),
        flood_secs: 2.0,
        runs: 3,
        flood_sizes: vec![10, 1_000, 10_000],
        ctl_sizes: vec![1_000, 10_000, 100_000],
        overhead_rules: 10_000,
        only_control: false,
        failures: Vec::new(),
        raw: String::new(),
        notes: Vec::new(),
    };
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--out" => b.out = PathBuf::from(val()?),
            "--runs" => b.runs = val()?.parse()?,
            "--flood-secs" => b.flood_secs = val()?.parse()?,
            "--flood-sizes" => b.flood_sizes = sizes(&val()?)?,
            "--control-sizes" => b.ctl_sizes = sizes(&val()?)?,
            "--overhead-rules" => b.overhead_rules = val()?.parse()?,
            "--hostfw" => b.hostfw = PathBuf::from(val()?),
            "--only-control" => b.only_control = true,
            other => bail!("unknown option {other}"),
        }
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("run as root: this creates network namespaces and loads eBPF programs");
    }
    if b.runs == 0 || b.flood_sizes.iter().chain(&b.ctl_sizes).any(|&n| n < 2) {
        bail!("--runs must be at least 1 and every size at least 2");
    }
    std::fs::create_dir_all(&b.out)?;
    std::fs::create_dir_all(&b.work)?;
    let result = run_all(&mut b);
    let _ = std::fs::remove_dir_all(&b.work);
    result
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn run_all(b: &mut Bench) -> anyhow::Result<()> {
    let started = Instant::now();
    let load_before = loadavg();
    let topo = Topology::create()?;
    let rr = Bg::spawn(
        "tcp_rr server",
        &[
            "taskset",
            "-c",
            "1",
            "ip",
            "netns",
            "exec",
            RX,
            &b.exe("tcp_rr"),
            "server",
            "--port",
            RR_PORT,
        ],
    )?
    .ready()?;
    b.check_flows(Fw::None, 0, "before any firewall")?;
    let (flood, overhead) = if b.only_control {
        (Vec::new(), Vec::new())
    } else {
        (b.flood()?, b.overhead()?)
    };
    let control = b.control()?;
    drop(rr);
    drop(topo);
    b.write_outputs(&flood, &overhead, &control)?;
    let report = Report {
        out: &b.out,
        flood: &flood,
        overhead: &overhead,
        control: &control,
        overhead_rules: b.overhead_rules,
        flood_secs: b.flood_secs,
        runs: b.runs,
    };
    let (table, goals) = report.render()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{table}")?;
    for n in &b.notes {
        writeln!(out, "note: {n}")?;
    }
    writeln!(
        out,
        "note: load average (1, 5, 15 min) before the network part: {load_before}; after: {} \
         (work of others on this machine adds noise; rounds interleave the configurations)",
        loadavg()
    )?;
    writeln!(out, "\n== Goals (targets for the project, not tests)")?;
    let mut g = String::from("goal,measured,met\n");
    for (what, ok) in &goals {
        writeln!(out, "  [{}] {what}", yes(*ok))?;
        let _ = writeln!(g, "\"{}\",{}", what.replace('"', "'"), ok);
    }
    std::fs::write(b.out.join("goals.csv"), g)?;
    std::fs::write(b.out.join("report.txt"), format!("{table}\n"))?;
    writeln!(
        out,
        "\nnetwork part took {:.0} s",
        started.elapsed().as_secs_f64()
    )?;
    if !b.failures.is_empty() {
        writeln!(out, "\nCORRECTNESS FAILURES ({}):", b.failures.len())?;
        for f in &b.failures {
            writeln!(out, "  {f}")?;
        }
        bail!(
            "{} correctness check(s) failed: the numbers above are not valid",
            b.failures.len()
        );
    }
    writeln!(
        out,
        "correctness: every denied flow was denied and every allowed flow allowed"
    )?;
    Ok(())
}
