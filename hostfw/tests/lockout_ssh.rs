//! The ssh lockout, end to end: a real sshd in the node namespace, a real
//! ssh session from the peer namespace, and from inside that session the
//! real CLI applies a policy that blocks ssh as a trial. The session is
//! cut; after the deadline a new login works — with the daemon alive, with
//! the daemon killed during the trial (the kernel reverts), and with the
//! daemon killed and restarted after the deadline (the persisted record
//! reverts). Without `--force` the CLI refuses and the session lives on.
//! Needs root and OpenSSH (client and server).

mod common;

use std::{
    fs,
    net::IpAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

use common::{
    Pair,
    daemon::{BIN, Daemon, SHORT, path, policy, wait_until},
    traffic,
};

const SSHD: &str = "/usr/sbin/sshd";
const SSH: &str = "/usr/bin/ssh";
const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";
/// The trial's length: long enough for the client's keepalives (every
/// second, given up after two unanswered) to notice the cut first.
const TRIAL: Duration = Duration::from_secs(4);

/// Fails unless the OpenSSH binaries are installed.
fn require_openssh() {
    for (bin, package) in [
        (SSHD, "openssh-server"),
        (SSH, "openssh-client"),
        (SSH_KEYGEN, "openssh-client"),
    ] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: install {package} (apt-get install openssh-server openssh-client; \
             scripts/install-deps.sh does)"
        );
    }
}

fn keygen(file: &Path) {
    common::sh(&[
        SSH_KEYGEN,
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        "hostfw-lockout-test",
        "-f",
        path(file),
    ]);
}

/// A real sshd on port 22 of the node's addresses, and the key of a client
/// that may log in as root. Everything left in the node namespace (sshd,
/// its sessions and their commands) is killed on drop.
struct Sshd {
    child: Child,
    dir: PathBuf,
    key: PathBuf,
    node_ns: String,
    peer_ns: String,
}

impl Sshd {
    fn start(pair: &Pair) -> Self {
        require_openssh();
        let dir = std::env::temp_dir().join(format!("hostfw-lockout-ssh-{}", pair.id));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("sshd dir");
        // sshd's privilege separation directory.
        fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let (host_key, key) = (dir.join("host_key"), dir.join("client_key"));
        keygen(&host_key);
        keygen(&key);
        let authorized = dir.join("authorized_keys");
        fs::copy(dir.join("client_key.pub"), &authorized).expect("authorized_keys");
        let config = dir.join("sshd_config");
        fs::write(
            &config,
            format!(
                "Port 22\nListenAddress {}\nListenAddress {}\nHostKey {}\n\
                 PermitRootLogin prohibit-password\nAuthorizedKeysFile {}\n\
                 StrictModes no\nUsePAM no\nPidFile {}\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPrintMotd no\nPrintLastLog no\n\
                 UseDNS no\n",
                pair.node_v4,
                pair.node_v6,
                path(&host_key),
                path(&authorized),
                path(&dir.join("sshd.pid")),
            ),
        )
        .expect("sshd_config");
        let log = fs::File::create(dir.join("sshd.log")).expect("sshd log");
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", pair.node.name))
            .args([SSHD, "-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        Self {
            child,
            dir,
            key,
            node_ns: pair.node.name.clone(),
            peer_ns: pair.peer.name.clone(),
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// `ssh root@node REMOTE` from the peer namespace.
    fn ssh(&self, node: IpAddr, remote: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.peer_ns, SSH, "-F", "/dev/null", "-i"])
            .arg(&self.key)
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=3",
                "-o",
                "ServerAliveInterval=1",
                "-o",
                "ServerAliveCountMax=2",
                "-o",
                "LogLevel=INFO",
            ])
            .arg(format!("root@{node}"))
            .arg(remote)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// A session running `remote`, in the background.
    fn session(&self, node: IpAddr, remote: &str) -> Child {
        self.ssh(node, remote).spawn().expect("run ssh")
    }

    /// Whether a new login (running `true`) works.
    fn login(&self, node: IpAddr) -> bool {
        self.ssh(node, "true")
            .output()
            .expect("run ssh")
            .status
            .success()
    }

    /// Polls a new login until `limit`; the time of the first that worked.
    fn login_within(&self, node: IpAddr, limit: Duration) -> Option<Instant> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.login(node) {
                return Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Sessions cut by the test leave their commands running (`sleep`):
        // end every process of the node namespace, all started here.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.node_ns])
            .output()
        {
            let me = std::process::id();
            for pid in String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
                .filter(|&p| u32::try_from(p).is_ok_and(|p| p != me))
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Waits up to `limit` for `child` to exit.
fn exit_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for ssh") {
            return Some(status);
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// How the trial ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    /// The daemon's timer reverts it.
    DaemonAlive,
    /// The daemon is SIGKILLed during the trial; the kernel reverts.
    KilledDuringTrial,
    /// Killed during the trial, restarted after the deadline: the record
    /// is reverted at start.
    RestartedAfterDeadline,
}

struct Test<'a> {
    pair: &'a Pair,
    d: Daemon,
    sshd: Sshd,
    block: PathBuf,
}

impl Test<'_> {
    fn context(&self) -> String {
        let status = if self.d.child.is_some() {
            let out = self.d.cli(&["status"]);
            String::from_utf8_lossy(&out.stdout).into_owned()
        } else {
            "(no daemon running)\n".to_string()
        };
        format!(
            "\n--- status ---\n{status}--- daemon log ---\n{}\n--- sshd log ---\n{}",
            self.d.log(),
            self.sshd.log()
        )
    }

    /// The confirmed policy is in force and no trial is pending.
    fn assert_confirmed(&self, node: IpAddr) {
        let s = self.d.status();
        assert!(s["trial"].is_null(), "no trial pending: {s}");
        assert!(
            s["interfaces"]
                .as_array()
                .is_some_and(|l| l.iter().any(|i| i["name"] == self.pair.node_if.as_str())),
            "the daemon reports {} attached: {s}{}",
            self.pair.node_if,
            self.context()
        );
        assert!(
            self.sshd.login(node),
            "ssh login under the confirmed policy{}",
            self.context()
        );
        assert!(
            !traffic::tcp_ok(&self.pair.peer, node, 7070, SHORT),
            "the confirmed policy (not an open firewall) is in force"
        );
    }

    /// Without `--force`, the CLI run inside an ssh session refuses a
    /// policy that would cut that session, and the session lives on.
    fn refused_without_force(&self, node: IpAddr) {
        let cmd = format!(
            "{BIN} apply {} --trial {}s --socket {} 2>&1; echo \"apply exit $?\"; \
             sleep 4; echo still connected",
            path(&self.block),
            TRIAL.as_secs(),
            path(&self.d.socket())
        );
        let mut session = self.sshd.session(node, &cmd);
        let status = exit_within(&mut session, Duration::from_secs(15));
        let out = session.wait_with_output().expect("ssh output");
        let shown = text(&out);
        assert!(
            status.is_some_and(|s| s.success()),
            "the session ends normally: {shown}{}",
            self.context()
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let peer = self.pair.peer_v4;
        assert!(
            stdout.contains(&format!(
                "hostfw: refused: it would cut the ssh session from {peer} port "
            )) && stdout.contains("to port 22")
                && stdout.contains("--force"),
            "the refusal names the session and --force: {shown}"
        );
        assert!(
            stdout.contains("apply exit 1\n"),
            "refused: exit 1: {shown}"
        );
        assert!(
            stdout.contains("still connected"),
            "not cut (keepalives every second for 4 s): {shown}"
        );
        self.assert_confirmed(node);
        eprintln!("without --force: refused, session kept:\n{stdout}");
    }

    /// From outside any session (no `SSH_CONNECTION`), an apply that would
    /// cut an open ssh session to the node is refused too: the daemon finds
    /// the session among the established connections to sshd.
    fn refused_for_an_open_session(&self, node: IpAddr) {
        let mut session = self.sshd.session(node, "sleep 8");
        let peer = self.pair.peer_v4;
        let start = Instant::now();
        let established = || {
            self.pair.node.run(move || {
                hostfw::sockdiag::established()
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.local.port() == 22 && c.remote.ip() == peer)
            })
        };
        while !established() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the ssh session did not come up{}",
                self.context()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = self.d.cli(&["apply", path(&self.block), "--trial", "4s"]);
        let refused = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "applied over an open session{}",
            self.context()
        );
        assert!(
            refused.contains(&format!("ssh session from {peer} port"))
                && refused.contains("--force"),
            "refusal names the open session: {refused}{}",
            self.context()
        );
        let _ = session.kill();
        let _ = session.wait();
        self.assert_confirmed(node);
    }

    /// Applies the ssh-blocking trial from inside a session over `node`,
    /// checks the session is cut and that a new login works again after
    /// the deadline, ended the way `way` says.
    fn cut_and_recover(&mut self, way: Way, node: IpAddr) {
        let log_before = self.d.log().len();
        let cmd = format!(
            "{BIN} apply {} --trial {}s --force --socket {}; sleep 30",
            path(&self.block),
            TRIAL.as_secs(),
            path(&self.d.socket())
        );
        let mut session = self.sshd.session(node, &cmd);
        let begun = Instant::now();
        wait_until(
            "the trial applied from inside the ssh session",
            Duration::from_secs(10),
            || !self.d.status()["trial"].is_null(),
        );
        let applied = Instant::now();
        let deadline = applied + TRIAL;
        if way != Way::DaemonAlive {
            self.d.kill();
        }
        let status = exit_within(&mut session, Duration::from_secs(10));
        let cut_after = applied.elapsed();
        if status.is_none() {
            let _ = session.kill();
        }
        let out = session.wait_with_output().expect("ssh output");
        assert!(
            status.is_some(),
            "{way:?}: the ssh session was not cut within 10 s of the apply: {}{}",
            text(&out),
            self.context()
        );
        assert_eq!(
            out.status.code(),
            Some(255),
            "{way:?}: ssh fails (connection lost), not the remote command: {}",
            text(&out)
        );
        assert!(
            cut_after < TRIAL,
            "{way:?}: the session was cut before the deadline, not after ({cut_after:?})"
        );

        // New logins are denied until the deadline, and work after it.
        let logged_in = self
            .sshd
            .login_within(node, TRIAL + Duration::from_secs(10))
            .unwrap_or_else(|| {
                panic!(
                    "{way:?}: no new ssh login within 10 s of the deadline{}",
                    self.context()
                )
            });
        assert!(
            logged_in + Duration::from_secs(1) >= deadline,
            "{way:?}: a new login worked {:?} after the apply, before the {TRIAL:?} deadline",
            logged_in - applied
        );
        eprintln!(
            "{way:?} over {node}: apply seen {:?} after ssh started; session cut {cut_after:?} \
             after the apply (ssh: {:?}); new login at {:?}",
            applied - begun,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default(),
            logged_in - applied
        );

        match way {
            Way::DaemonAlive => {
                wait_until("the daemon's timer reverts", Duration::from_secs(3), || {
                    self.d.status()["trial"].is_null()
                });
                let log = &self.d.log()[log_before..];
                assert!(log.contains("reverted (deadline passed)"), "{log}");
            }
            Way::KilledDuringTrial => {
                assert!(self.d.child.is_none(), "no daemon ran during the revert");
                assert!(
                    !traffic::tcp_ok(&self.pair.peer, node, 7070, SHORT),
                    "kernel revert: the confirmed policy, not an open firewall"
                );
                self.restart_with_expired_record(log_before);
            }
            Way::RestartedAfterDeadline => {
                let past = deadline + Duration::from_secs(1);
                if let Some(wait) = past.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                self.restart_with_expired_record(log_before);
            }
        }
        self.assert_confirmed(node);
    }

    fn restart_with_expired_record(&mut self, log_before: usize) {
        self.d.start();
        let log = self.d.log()[log_before..].to_string();
        assert!(
            log.contains("expired while hostfw was not running"),
            "restart after the deadline reverts the persisted trial: {log}"
        );
    }
}

#[test]
fn ssh_lockout_is_undone_by_the_deadline() {
    let started = Instant::now();
    let pair = Pair::new();
    let mut d = Daemon::new(&pair);
    fs::write(d.dir.join("policies/ssh.toml"), policy("ssh", &["22"])).expect("policy");
    let block = d.dir.join("block-ssh.toml");
    fs::write(&block, policy("block-ssh", &["8080"])).expect("policy");
    d.start();
    traffic::tcp_server(&pair.node, 7070);
    let sshd = Sshd::start(&pair);
    let (v4, v6) = (pair.node_v4, pair.node_v6);
    let mut t = Test {
        pair: &pair,
        d,
        sshd,
        block,
    };
    assert!(
        t.sshd.login_within(v4, Duration::from_secs(10)).is_some(),
        "ssh login to the node with the confirmed policy (ssh allowed){}",
        t.context()
    );
    t.assert_confirmed(v6);

    t.refused_without_force(v4);
    t.refused_for_an_open_session(v4);
    t.cut_and_recover(Way::DaemonAlive, v4);
    t.cut_and_recover(Way::KilledDuringTrial, v6);
    t.cut_and_recover(Way::RestartedAfterDeadline, v4);
    eprintln!("ssh lockout test took {:?}", started.elapsed());
}
