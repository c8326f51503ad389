//! A `hostfw daemon` run in a test namespace, driven with the CLI.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use super::Pair;

pub const BIN: &str = env!("CARGO_BIN_EXE_hostfw");
pub const SHORT: Duration = Duration::from_millis(600);
pub const LONG: Duration = Duration::from_secs(3);

/// A daemon with its own configuration, state, socket and pins.
pub struct Daemon {
    pub dir: PathBuf,
    pub netns: String,
    pub pin_root: PathBuf,
    /// `--state-dir` (default: `state` in `dir`).
    pub state_dir: PathBuf,
    pub child: Option<Child>,
}

impl Daemon {
    pub fn new(pair: &Pair) -> Self {
        let dir = std::env::temp_dir().join(format!("hostfw-daemon-test-{}", pair.id));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("policies")).expect("dirs");
        fs::write(
            dir.join("hostfw.toml"),
            "mode = \"enforce\"\n[interfaces]\ninclude = [\"hn*\"]\nexclude = []\n\
                 [failsafe]\ninbound = []\noutbound = []\n[trial]\ndefault = \"3s\"\n\
                 [policies]\npaths = [\"policies\"]\n",
        )
        .expect("config");
        fs::write(
            dir.join("policies/web.toml"),
            policy("web", &["8080", "9090"]),
        )
        .expect("policy");
        fs::write(dir.join("only-8080.toml"), policy("only-8080", &["8080"])).expect("policy");
        Self {
            pin_root: PathBuf::from(format!("/sys/fs/bpf/hostfw-daemon-test-{}", pair.id)),
            netns: pair.node.name.clone(),
            state_dir: dir.join("state"),
            dir,
            child: None,
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("hostfw.sock")
    }

    pub fn start(&mut self) {
        self.start_with(|_| {});
    }

    /// Starts the daemon with `adjust` applied to its command first
    /// (environment, limits, umask), and waits until it answers.
    pub fn start_with(&mut self, adjust: impl FnOnce(&mut Command)) {
        self.spawn_with(adjust);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if self.cli(&["status", "-o", "json"]).status.success() {
                return;
            }
            if let Some(code) = self.exited() {
                panic!("the daemon exited ({code}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the daemon did not answer within 15 s:\n{}", self.log());
    }

    /// The daemon's exit status, if it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Starts the daemon without waiting for it to answer.
    pub fn spawn_with(&mut self, adjust: impl FnOnce(&mut Command)) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("daemon.log"))
            .expect("log");
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.netns))
            .arg(BIN)
            .args(["daemon", "--config"])
            .arg(self.dir.join("hostfw.toml"))
            .arg("--pin-root")
            .arg(&self.pin_root)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--socket")
            .arg(self.socket())
            .stdout(Stdio::null())
            .stderr(log);
        adjust(&mut cmd);
        self.child = Some(cmd.spawn().expect("start the daemon"));
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut all: Vec<&str> = args.to_vec();
        let socket = self.socket();
        let socket = socket.to_str().expect("utf-8 path");
        all.extend(["--socket", socket]);
        Command::new(BIN).args(&all).output().expect("run hostfw")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "hostfw {args:?} failed: {}{}\n--- daemon log ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn status(&self) -> Value {
        serde_json::from_str(&self.ok(&["status", "-o", "json"])).expect("status is JSON")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        let _ = hostfw::datapath::Datapath::remove_all(&self.pin_root);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub fn policy(name: &str, ports: &[&str]) -> String {
    let ports: Vec<String> = ports
        .iter()
        .map(|p| format!("{{ port = \"{p}\", protocol = \"TCP\" }}"))
        .collect();
    format!(
        "[[policy]]\nname = \"{name}\"\nnodeSelector = {{}}\n\n[[policy.ingress]]\n\
         toPorts = [{{ ports = [{}] }}]\n",
        ports.join(", ")
    )
}

pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: not within {limit:?}");
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
