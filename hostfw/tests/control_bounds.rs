//! No local user can stall the daemon (issue 13, items 5 and 6): the real
//! daemon, in a network namespace, with its descriptors limited to 1024,
//! against thousands of idle, trickling and oversized clients on the
//! control socket and the metrics port; the control socket's mode and peer
//! check against a non-root user racing the start under umask 000; the
//! `[control] group`. Needs root.
//!
//! The tests run one at a time (they load the machine) and take about
//! 40 s together.

mod common;

use std::{
    fs,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    os::{
        fd::{FromRawFd as _, OwnedFd},
        unix::{
            fs::{MetadataExt as _, PermissionsExt as _},
            net::UnixStream,
            process::CommandExt as _,
        },
    },
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use common::{
    Netns, Pair,
    daemon::{BIN, Daemon, path, wait_until},
    notify::Notifications,
};
use nix::{
    sys::signal::{Signal, kill},
    unistd::{ForkResult, Pid},
};

/// The metrics port inside the daemon's namespace (its own loopback).
const METRICS_PORT: u16 = 19964;
/// The uid and gid the hostile non-root clients run as.
const NOBODY: u32 = 65534;
/// What the racing non-root user asks.
const TO_AUDIT: &[u8] =
    b"{\"cmd\":\"mode\",\"mode\":\"audit\",\"trial_ms\":null,\"force\":true,\"ssh_connection\":null}\n";

static SERIAL: Mutex<()> = Mutex::new(());

/// One test at a time: each opens thousands of sockets.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Raises this process's descriptor limit (the attacks hold thousands).
fn raise_own_nofile(n: u64) {
    let limit = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: a valid rlimit.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// The daemon gets at most 1024 descriptors, as under a default limit.
fn limit_fds(cmd: &mut Command) {
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: 1024,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// A daemon whose configuration serves metrics on [`METRICS_PORT`], with
/// `extra` appended to it.
fn daemon(pair: &Pair, extra: &str) -> Daemon {
    let d = Daemon::new(pair);
    let config = d.dir.join("hostfw.toml");
    let mut text = fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "[metrics]\nlisten = \"127.0.0.1:{METRICS_PORT}\"\n{extra}"
    ));
    fs::write(&config, text).expect("config");
    d
}

fn pid(d: &Daemon) -> i32 {
    let id = d.child.as_ref().expect("running").id();
    i32::try_from(id).expect("pid")
}

/// A `sockaddr_un` for `path`, built before any fork.
#[derive(Clone, Copy)]
struct Addr {
    sun: libc::sockaddr_un,
    len: libc::socklen_t,
}

impl Addr {
    fn new(path: &Path) -> Self {
        let bytes = path.as_os_str().as_encoded_bytes();
        // SAFETY: all-zero is a valid sockaddr_un.
        let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        sun.sun_family = libc::sa_family_t::try_from(libc::AF_UNIX).expect("AF_UNIX");
        assert!(bytes.len() < sun.sun_path.len(), "socket path too long");
        for (d, s) in sun.sun_path.iter_mut().zip(bytes) {
            *d = libc::c_char::from_ne_bytes([*s]);
        }
        let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
        Self {
            sun,
            len: libc::socklen_t::try_from(len).expect("length"),
        }
    }

    /// Connects a new stream socket, non-blocking if asked; only system
    /// calls, so that a forked child may use it. The error is the errno.
    fn connect(&self, nonblocking: bool) -> Result<i32, i32> {
        let flags = if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
        // SAFETY: plain system calls on a descriptor this function owns.
        unsafe {
            let fd = libc::socket(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC | flags,
                0,
            );
            if fd < 0 {
                return Err(*libc::__errno_location());
            }
            let rc = libc::connect(fd, (&raw const self.sun).cast(), self.len);
            if rc == 0 {
                return Ok(fd);
            }
            let errno = *libc::__errno_location();
            libc::close(fd);
            Err(errno)
        }
    }

    /// A connected std stream, or `None` (refused, backlog full).
    fn stream(&self) -> Option<UnixStream> {
        let fd = self.connect(true).ok()?;
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        Some(UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
}

/// Runs `f` in a forked child as uid and gid 65534, no supplementary
/// groups; returns its pid. The parent has threads: the child makes
/// system calls only (no allocation, no locks) and exits with `f`'s code.
fn fork_as_nobody(f: impl FnOnce() -> i32) -> Pid {
    // SAFETY: the child only makes raw system calls and _exits.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => unsafe {
            let n = libc::c_long::from(NOBODY);
            if libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
                || libc::syscall(libc::SYS_setresgid, n, n, n) != 0
                || libc::syscall(libc::SYS_setresuid, n, n, n) != 0
            {
                libc::_exit(100);
            }
            let code = f();
            libc::_exit(code)
        },
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => panic!("fork: {e}"),
    }
}

/// Kills a forked child and returns its exit code (`None`: killed).
fn reap(child: Pid, kill_it: bool) -> Option<i32> {
    if kill_it {
        let _ = kill(child, Signal::SIGKILL);
    }
    match nix::sys::wait::waitpid(child, None) {
        Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => Some(code),
        _ => None,
    }
}

/// Seconds on the monotonic clock, for a forked child's deadline.
fn monotonic_secs() -> i64 {
    // SAFETY: a valid timespec.
    unsafe {
        let mut t: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut t);
        t.tv_sec
    }
}

/// `hostfw status -o json` as the CLI runs it, killed after `limit`:
/// how long it took and the status, if it answered.
fn timed_status(d: &Daemon, limit: Duration) -> (Duration, Option<serde_json::Value>) {
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(["status", "-o", "json", "--socket", path(&d.socket())])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hostfw status");
    loop {
        if let Ok(Some(exit)) = child.try_wait() {
            let took = start.elapsed();
            let mut out = String::new();
            if let Some(mut o) = child.stdout.take() {
                let _ = o.read_to_string(&mut out);
            }
            if !exit.success() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                eprintln!("hostfw status failed: {err}");
                return (took, None);
            }
            return (took, serde_json::from_str(&out).ok());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return (start.elapsed(), None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One `GET /metrics` from inside `ns`: its latency if answered 200
/// within `limit`.
fn scrape(ns: &Netns, limit: Duration) -> Result<Duration, String> {
    ns.run(move || {
        let start = Instant::now();
        let addr = SocketAddr::from(([127, 0, 0, 1], METRICS_PORT));
        let mut s =
            TcpStream::connect_timeout(&addr, limit).map_err(|e| format!("connect: {e}"))?;
        let left = limit
            .saturating_sub(start.elapsed())
            .max(Duration::from_millis(1));
        s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .map_err(|e| format!("send: {e}"))?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .map_err(|e| format!("receive after {:?}: {e}", start.elapsed()))?;
        let text = String::from_utf8_lossy(&raw);
        if text.starts_with("HTTP/1.1 200") && text.contains("hostfw_") {
            Ok(start.elapsed())
        } else {
            Err(format!(
                "unexpected answer: {}",
                text.lines().next().unwrap_or("")
            ))
        }
    })
}

/// Hostile clients on threads, stopped (and joined) on drop.
#[derive(Default)]
struct Attack {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Connections opened so far, by every thread.
    opened: Arc<AtomicUsize>,
}

impl Attack {
    fn spawn(&mut self, f: impl FnOnce(&AtomicBool, &AtomicUsize) + Send + 'static) {
        let (stop, opened) = (Arc::clone(&self.stop), Arc::clone(&self.opened));
        self.threads
            .push(std::thread::spawn(move || f(&stop, &opened)));
    }

    /// `n` connections to the control socket that send nothing, held
    /// until the end (those the daemon closes stay closed).
    fn idle_unix(&mut self, addr: Addr, n: usize) {
        self.spawn(move |stop, opened| {
            let mut held = Vec::with_capacity(n);
            let give_up = Instant::now() + Duration::from_secs(10);
            while held.len() < n && !stop.load(Ordering::Relaxed) && Instant::now() < give_up {
                match addr.stream() {
                    Some(s) => {
                        held.push(s);
                        opened.fetch_add(1, Ordering::Relaxed);
                    }
                    None => std::thread::sleep(Duration::from_millis(1)),
                }
            }
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
        });
    }

    /// `n` clients that connect (from inside `netns`, when given) and send
    /// one byte every 100 ms, never a newline (or a blank line),
    /// reconnecting when closed.
    fn trickle<S: std::io::Write + Send + 'static>(
        &mut self,
        netns: Option<String>,
        n: usize,
        first: &'static [u8],
        connect: impl Fn() -> Option<S> + Send + 'static,
    ) {
        self.spawn(move |stop, opened| {
            if let Some(ns) = &netns {
                common::enter(ns);
            }
            let mut clients: Vec<Option<S>> = (0..n).map(|_| None).collect();
            while !stop.load(Ordering::Relaxed) {
                for c in &mut clients {
                    let alive = match c {
                        Some(s) => s.write(b"x").is_ok(),
                        None => false,
                    };
                    if !alive {
                        *c = connect().and_then(|mut s| {
                            opened.fetch_add(1, Ordering::Relaxed);
                            s.write_all(first).ok().map(|()| s)
                        });
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
    }

    /// `n` clients that each send 8 MiB without a newline, again and
    /// again.
    fn oversized(&mut self, addr: Addr, n: usize) {
        let blob: Arc<Vec<u8>> = Arc::new(vec![b'x'; 8 << 20]);
        for _ in 0..n {
            let blob = Arc::clone(&blob);
            self.spawn(move |stop, opened| {
                while !stop.load(Ordering::Relaxed) {
                    let Some(s) = addr.stream() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    opened.fetch_add(1, Ordering::Relaxed);
                    let mut s = s;
                    if s.set_nonblocking(false).is_err()
                        || s.set_write_timeout(Some(Duration::from_secs(1))).is_err()
                    {
                        continue;
                    }
                    let _ = s.write_all(&blob);
                }
            });
        }
    }
}

impl Drop for Attack {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// CPU time (user + system) the process has used.
fn cpu_time(pid: i32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15; `after` starts at field 3.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let per_sec = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).expect("CLK_TCK");
    Duration::from_millis(ticks * 1000 / per_sec)
}

/// Resident memory of the process, in MiB.
fn rss_mib(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib / 1024
}

/// Open descriptors of the process.
fn fds(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

#[test]
fn idle_slow_and_oversized_clients_do_not_stall_the_daemon() {
    let _serial = serial();
    raise_own_nofile(16384);
    let pair = Pair::new();
    let mut d = daemon(&pair, "");
    let notify = Notifications::bind(&d.dir);
    d.start_with(|cmd| {
        limit_fds(cmd);
        notify.env(cmd, 2_000_000);
    });
    let pid = pid(&d);
    let addr = Addr::new(&d.socket());
    let baseline_rss = rss_mib(pid);

    // Phase 1: 2,000 idle connections as root (the worst case: root
    // passes the peer check), 200 as nobody, 100 trickling clients.
    let attack_start = Instant::now();
    let mut attack = Attack::default();
    attack.idle_unix(addr, 2000);
    wait_until(
        "2,000 idle connections opened (the daemon accepts them, closing those that wait)",
        Duration::from_secs(10),
        || attack.opened.load(Ordering::Relaxed) >= 2000,
    );
    eprintln!(
        "2,000 idle connections opened in {:?}",
        attack_start.elapsed()
    );
    attack.trickle(None, 100, b"{\"cmd\":", move || addr.stream());
    let nobody = fork_as_nobody(move || {
        let mut held = 0;
        for _ in 0..200 {
            if addr.connect(false).is_ok() {
                held += 1;
            }
        }
        // SAFETY: a plain system call.
        unsafe { libc::sleep(60) };
        held
    });
    wait_until("100 trickling clients", Duration::from_secs(5), || {
        attack.opened.load(Ordering::Relaxed) >= 2100
    });
    std::thread::sleep(Duration::from_millis(500));

    // The CLI is answered, again and again.
    let mut latencies = Vec::new();
    for _ in 0..5 {
        let (took, status) = timed_status(&d, Duration::from_secs(3));
        let status = status.unwrap_or_else(|| {
            panic!(
                "hostfw status not answered within 3 s under attack (took {took:?}):\n{}",
                d.log()
            )
        });
        assert_eq!(status["mode"], "enforce", "{status}");
        latencies.push(took);
        std::thread::sleep(Duration::from_millis(100));
    }
    // The accept loop does not spin: CPU over 3 s of the attack.
    let (cpu0, t0) = (cpu_time(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let cpu = (cpu_time(pid) - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64();
    // SIGHUP reloads: the descriptors it needs are there.
    kill(Pid::from_raw(pid), Signal::SIGHUP).expect("SIGHUP");
    wait_until("the SIGHUP reload", Duration::from_secs(3), || {
        d.log().contains("SIGHUP: reloaded")
    });
    let (took, status) = timed_status(&d, Duration::from_secs(3));
    let status = status.unwrap_or_else(|| panic!("status after SIGHUP ({took:?}):\n{}", d.log()));
    assert!(status["last_error"].is_null(), "{status}");
    latencies.push(took);
    // Metrics are scraped.
    let scraped = scrape(&pair.node, Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("metrics scrape under attack: {e}\n{}", d.log()));
    let fds_phase1 = fds(pid);
    let phase1_end = Instant::now();

    // Phase 2: 100 clients each sending 8 MiB without a newline.
    attack.oversized(addr, 100);
    let mut max_rss = 0;
    let phase2 = Instant::now();
    while phase2.elapsed() < Duration::from_secs(3) {
        max_rss = max_rss.max(rss_mib(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    let (took2, status) = timed_status(&d, Duration::from_secs(3));
    assert!(
        status.is_some(),
        "status while 8 MiB requests arrive ({took2:?}):\n{}",
        d.log()
    );
    max_rss = max_rss.max(rss_mib(pid));
    let attack_end = Instant::now();
    let opened = attack.opened.load(Ordering::Relaxed);
    drop(attack);
    reap(nobody, true);
    let gap = notify.max_watchdog_gap(attack_start, attack_end);

    eprintln!(
        "status latencies under attack: {latencies:?} (with 8 MiB senders: {took2:?}); \
         metrics scrape {scraped:?}; daemon CPU {:.1}% of a core; fds {fds_phase1}; \
         RSS {baseline_rss} MiB before, at most {max_rss} MiB with 8 MiB senders; \
         longest watchdog gap {gap:?} over {:?}; {opened} hostile connections",
        cpu * 100.0,
        attack_end - attack_start
    );
    assert!(
        latencies.iter().all(|l| *l < Duration::from_secs(2)),
        "{latencies:?}"
    );
    assert!(cpu < 0.5, "the daemon used {:.0}% of a core", cpu * 100.0);
    assert!(fds_phase1 < 512, "{fds_phase1} descriptors open");
    assert!(max_rss < 150, "RSS reached {max_rss} MiB");
    assert!(
        gap <= Duration::from_millis(1500),
        "watchdog not petted for {gap:?} (phase 1 ended after {:?})",
        phase1_end - attack_start
    );
    assert!(!d.log().contains("Too many open files"), "{}", d.log());
    let (_, status) = timed_status(&d, Duration::from_secs(3));
    assert_eq!(status.expect("status after the attack")["mode"], "enforce");
}

#[test]
fn hostile_metrics_clients_do_not_stop_scrapes() {
    let _serial = serial();
    raise_own_nofile(16384);
    let pair = Pair::new();
    let mut d = daemon(&pair, "");
    d.start_with(limit_fds);
    wait_until("the metrics endpoint", Duration::from_secs(5), || {
        scrape(&pair.node, Duration::from_secs(2)).is_ok()
    });
    let ns = format!("/run/netns/{}", pair.node.name);
    let target = SocketAddr::from(([127, 0, 0, 1], METRICS_PORT));
    let tcp = move || TcpStream::connect_timeout(&target, Duration::from_millis(300)).ok();
    let mut attack = Attack::default();
    {
        let ns = ns.clone();
        attack.spawn(move |stop, opened| {
            common::enter(&ns);
            let mut held = Vec::new();
            while held.len() < 145 && !stop.load(Ordering::Relaxed) {
                if let Some(s) = tcp() {
                    held.push(s);
                    opened.fetch_add(1, Ordering::Relaxed);
                }
            }
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
        });
    }
    // Trickling from inside the namespace, where the endpoint listens.
    attack.trickle(
        Some(ns.clone()),
        300,
        b"GET /metrics HTTP/1.1\r\nX-Slow: ",
        tcp,
    );
    wait_until(
        "445 hostile connections (the endpoint accepts them, closing those that wait)",
        Duration::from_secs(10),
        || attack.opened.load(Ordering::Relaxed) >= 445,
    );
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        let took = scrape(&pair.node, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("scrape with 145 idle and 300 slow clients: {e}"));
        latencies.push(took);
        std::thread::sleep(Duration::from_millis(200));
    }
    let opened = attack.opened.load(Ordering::Relaxed);
    drop(attack);
    let max = latencies.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{} scrapes with 145 idle and 300 slow clients ({opened} connections): slowest {max:?}",
        latencies.len()
    );
    assert!(max < Duration::from_secs(2), "{latencies:?}");
    // Still the daemon's: status answers.
    assert_eq!(d.status()["mode"], "enforce");
}

#[test]
fn a_non_root_user_racing_a_umask_000_start_is_refused() {
    let _serial = serial();
    let pair = Pair::new();
    let mut d = daemon(&pair, "");
    let addr = Addr::new(&d.socket());
    // From before the daemon is spawned until it has answered: nobody
    // tries to connect and switch the node to audit, as fast as it can.
    let until = monotonic_secs() + 20;
    let (seen, told) = nix::unistd::pipe().expect("pipe");
    let told_fd = std::os::fd::AsRawFd::as_raw_fd(&told);
    let racer = fork_as_nobody(move || {
        while monotonic_secs() < until {
            if let Ok(fd) = addr.connect(false) {
                // SAFETY: plain system calls on descriptors we own.
                unsafe {
                    libc::write(told_fd, b"c".as_ptr().cast(), 1);
                    libc::write(fd, TO_AUDIT.as_ptr().cast(), TO_AUDIT.len());
                    let mut buf = [0u8; 512];
                    libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                    libc::close(fd);
                }
            }
        }
        0
    });
    drop(told);
    d.start_with(|cmd| {
        // SAFETY: umask is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::umask(0);
                Ok(())
            });
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    reap(racer, true);
    let mut connects = Vec::new();
    fs::File::from(seen)
        .read_to_end(&mut connects)
        .expect("the racer's report");
    let mode = fs::metadata(d.socket()).expect("socket").mode() & 0o7777;
    let status = d.status();
    eprintln!(
        "racer as uid 65534: {} connections made; socket mode {mode:o}",
        connects.len()
    );
    assert_eq!(
        status["mode"], "enforce",
        "the racer switched the mode: {status}"
    );
    assert_eq!(mode, 0o600);
    assert!(
        connects.is_empty(),
        "uid 65534 connected {} times",
        connects.len()
    );

    // Were the mode looser (an admin's chmod), the peer check still
    // refuses, says why, and logs it.
    fs::set_permissions(d.socket(), fs::Permissions::from_mode(0o666)).expect("chmod");
    let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
    let out = std::os::fd::AsRawFd::as_raw_fd(&write_end);
    let asker = fork_as_nobody(move || {
        let Ok(fd) = addr.connect(false) else {
            return 1;
        };
        // SAFETY: plain system calls on descriptors we own.
        unsafe {
            libc::write(fd, TO_AUDIT.as_ptr().cast(), TO_AUDIT.len());
            let mut buf = [0u8; 512];
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            if n > 0 {
                libc::write(out, buf.as_ptr().cast(), n.unsigned_abs());
            }
        }
        0
    });
    drop(write_end);
    let mut answer = String::new();
    fs::File::from(read_end)
        .read_to_string(&mut answer)
        .expect("the refusal");
    assert_eq!(reap(asker, false), Some(0), "nobody could not connect");
    let answer: serde_json::Value = serde_json::from_str(&answer).expect("one JSON line");
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(
        answer["message"], "permission denied: uid 65534 is not root",
        "{answer}"
    );
    assert_eq!(d.status()["mode"], "enforce");
    let log = d.log();
    assert!(
        log.contains("refused a connection") && log.contains("uid 65534 is not root"),
        "{log}"
    );
}

/// A group of which uid 65534 is a member (its primary group).
fn nobody_group() -> String {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(NOBODY))
        .expect("passwd")
        .expect("uid 65534 exists");
    nix::unistd::Group::from_gid(user.gid)
        .expect("group")
        .expect("its group exists")
        .name
}

/// Sends `request` as uid `uid` (gid `uid`, no other groups) and returns
/// the answer's first line, or the connect errno.
fn ask_as(uid: u32, addr: Addr, request: &'static [u8]) -> Result<String, i32> {
    let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
    let out = std::os::fd::AsRawFd::as_raw_fd(&write_end);
    // SAFETY: the child only makes raw system calls and _exits.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => unsafe {
            let n = libc::c_long::from(uid);
            if libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
                || libc::syscall(libc::SYS_setresgid, n, n, n) != 0
                || libc::syscall(libc::SYS_setresuid, n, n, n) != 0
            {
                libc::_exit(100);
            }
            match addr.connect(false) {
                Err(errno) => libc::_exit(errno.clamp(1, 99)),
                Ok(fd) => {
                    libc::write(fd, request.as_ptr().cast(), request.len());
                    let mut buf = [0u8; 16384];
                    loop {
                        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                        if n <= 0 {
                            break;
                        }
                        libc::write(out, buf.as_ptr().cast(), n.unsigned_abs());
                    }
                    libc::_exit(0)
                }
            }
        },
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => panic!("fork: {e}"),
    };
    drop(write_end);
    let mut answer = String::new();
    let _ = fs::File::from(read_end).read_to_string(&mut answer);
    match reap(child, false) {
        Some(0) => Ok(answer.lines().next().unwrap_or_default().to_owned()),
        Some(errno) => Err(errno),
        None => Err(-1),
    }
}

#[test]
fn control_group_members_are_served_and_streams_are_capped() {
    let _serial = serial();
    let pair = Pair::new();

    // An unknown group stops the daemon at start, named.
    let mut bad = daemon(&pair, "[control]\ngroup = \"hostfw-no-such-group\"\n");
    bad.spawn_with(|_| {});
    wait_until(
        "the daemon refuses the group",
        Duration::from_secs(10),
        || bad.exited().is_some(),
    );
    assert!(
        bad.log()
            .contains("[control] group \"hostfw-no-such-group\": no such group"),
        "{}",
        bad.log()
    );
    drop(bad);

    let group = nobody_group();
    let gid = nix::unistd::Group::from_name(&group)
        .expect("group")
        .expect("exists")
        .gid
        .as_raw();
    let mut d = daemon(&pair, &format!("[control]\ngroup = \"{group}\"\n"));
    d.start();
    let socket = fs::metadata(d.socket()).expect("socket");
    let dir = fs::metadata(&d.dir).expect("dir");
    assert_eq!((socket.mode() & 0o7777, socket.gid()), (0o660, gid));
    assert_eq!((dir.mode() & 0o7777, dir.gid()), (0o750, gid));
    let addr = Addr::new(&d.socket());
    // A member of the group is served.
    let answer = ask_as(NOBODY, addr, b"{\"cmd\":\"status\"}\n").expect("a member connects");
    let answer: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["status"]["mode"], "enforce", "{answer}");
    // Someone else cannot even connect; with the socket opened up, the
    // peer check refuses them, naming the group.
    assert_eq!(
        ask_as(65533, addr, b"{\"cmd\":\"status\"}\n"),
        Err(libc::EACCES)
    );
    fs::set_permissions(d.socket(), fs::Permissions::from_mode(0o666)).expect("chmod");
    fs::set_permissions(&d.dir, fs::Permissions::from_mode(0o755)).expect("chmod");
    let answer = ask_as(65533, addr, b"{\"cmd\":\"status\"}\n").expect("connects");
    let answer: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
    assert_eq!(
        answer["message"],
        format!("permission denied: uid 65533 is not root nor in group {group}"),
        "{answer}"
    );

    // 32 observe streams at once; the 33rd is refused, with a message.
    let follow = b"{\"cmd\":\"observe\",\"filter\":{},\"follow\":true}\n";
    let mut streams: Vec<UnixStream> = (0..32)
        .map(|_| {
            let mut s = UnixStream::connect(d.socket()).expect("connect");
            s.write_all(follow).expect("send");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let out = d.cli(&["observe", "--follow"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the 33rd stream was served");
    assert!(
        stderr.contains("too many `hostfw observe` streams (32) are open"),
        "{stderr}"
    );
    // A stream whose client went away frees its slot.
    streams.pop();
    std::thread::sleep(Duration::from_millis(300));
    let mut again = UnixStream::connect(d.socket()).expect("connect");
    again.write_all(follow).expect("send");
    again
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    // Streaming: flows, or nothing yet; not a refusal, not closed.
    let mut buf = [0u8; 4096];
    match again.read(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok(n) if n > 0 && !String::from_utf8_lossy(&buf[..n]).contains("\"ok\":false") => {}
        other => panic!(
            "the freed slot was not reused: {other:?} {}",
            String::from_utf8_lossy(&buf)
        ),
    }
    drop(streams);
}

#[test]
fn apply_refuses_files_over_the_request_limit_before_connecting() {
    let dir = std::env::temp_dir().join(format!("hostfw-big-apply-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("dir");
    let big = dir.join("big.yaml");
    let mut text = String::from("# padding\n");
    while text.len() <= hostfw::control::MAX_REQUEST {
        text.push_str("# a comment line that makes the file large, and larger\n");
    }
    fs::write(&big, text).expect("file");
    let out = Command::new(BIN)
        .args(["apply", path(&big), "--socket", "/nonexistent/hostfw.sock"])
        .output()
        .expect("run hostfw apply");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("more than the daemon accepts (1048576 bytes)")
            && stderr.contains("put them in [policies] paths")
            && !stderr.contains("cannot reach the daemon"),
        "{stderr}"
    );
    let _ = fs::remove_dir_all(&dir);
}
