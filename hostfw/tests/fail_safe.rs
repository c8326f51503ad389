//! Fail safe: a daemon started with a broken policy file or a corrupt
//! state file keeps the node at least as protected as the last confirmed
//! state and keeps running; a change that cannot be saved is not made;
//! files that would block are refused without stalling the daemon; a
//! revert makes `status` and `trace` describe what the kernel enforces.
//! Real daemons in network namespaces with real traffic. Needs root.

mod common;

use std::{
    fs,
    process::Command,
    time::{Duration, Instant},
};

use common::{
    Pair,
    daemon::{Daemon, LONG, SHORT, path, policy, wait_until},
    notify::Notifications,
    sh, traffic,
};

const TYPO: &str = "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\n\
metadata:\n  name: typo\nspec:\n  nodeSelector: {}\n  ingres: []\n";

/// A "reboot": the daemon stops and takes its programs and pins with it
/// (`hostfw stop --detach`), so the next start finds the interface
/// unfiltered and no pins, as after a reboot.
fn reboot(d: &mut Daemon) {
    d.ok(&["stop", "--detach"]);
    let start = Instant::now();
    while d.exited().is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "stop --detach");
        std::thread::sleep(Duration::from_millis(50));
    }
    d.child = None;
}

/// A node and a peer, a daemon (not started) and TCP servers on `ports`.
fn node_serving(ports: &[u16]) -> (Pair, Daemon) {
    let pair = Pair::new();
    let d = Daemon::new(&pair);
    for p in ports {
        traffic::tcp_server(&pair.node, *p);
    }
    (pair, d)
}

/// A new connection from the peer to the node's `port` succeeds.
fn reaches(pair: &Pair, port: u16) -> bool {
    traffic::tcp_ok(&pair.peer, pair.node_v4, port, SHORT)
}

fn last_error(d: &Daemon) -> String {
    d.status()["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Case 1: a typo in a policy file at start, with the pins present (restart)
/// and without (reboot): the last confirmed policy is enforced, the daemon
/// runs, and status names the file.
#[test]
fn a_broken_policy_file_at_start_keeps_the_confirmed_policy() {
    let (pair, mut d) = node_serving(&[9090, 7070]);
    let node = pair.node_v4;
    let reach = |port| reaches(&pair, port);
    d.start();
    assert!(traffic::tcp_ok(&pair.peer, node, 9090, LONG) && !reach(7070));

    fs::write(d.dir.join("policies/typo.yaml"), TYPO).expect("write");
    d.kill();
    d.start();
    let e = last_error(&d);
    assert!(e.contains("typo.yaml") && e.contains("ingres"), "{e}");
    assert!(reach(9090) && !reach(7070), "restart: the confirmed policy");
    let s = d.status();
    assert_eq!(s["mode"], "enforce", "{s}");
    assert_eq!(s["policies"][0]["name"], "web", "{s}");

    reboot(&mut d);
    assert!(
        reach(7070),
        "after the reboot nothing filters until hostfw starts"
    );
    d.start();
    assert!(
        reach(9090) && !reach(7070),
        "reboot: the stored policy is enforced although the files do not validate"
    );
    let e = last_error(&d);
    assert!(e.contains("typo.yaml"), "{e}");
    assert!(
        d.log().contains("the last confirmed policy (as stored)"),
        "{}",
        d.log()
    );

    // A typo in the configuration file too, and another reboot: the last
    // configuration that loaded is used, and status says so.
    let cfg = d.dir.join("hostfw.toml");
    let good_cfg = fs::read_to_string(&cfg).expect("config");
    fs::write(&cfg, format!("{good_cfg}\n[policies]\nbogus = 1\n")).expect("break config");
    reboot(&mut d);
    d.start();
    assert!(
        reach(9090) && !reach(7070),
        "broken configuration: still enforcing"
    );
    let e = last_error(&d);
    assert!(
        e.contains("hostfw.toml") && e.contains("last configuration that loaded"),
        "{e}"
    );
    fs::write(&cfg, good_cfg).expect("fix config");

    // Fixing the file and reloading clears the error.
    fs::remove_file(d.dir.join("policies/typo.yaml")).expect("remove");
    let pid = d.child.as_ref().expect("running").id().to_string();
    sh(&["kill", "-HUP", &pid]);
    wait_until("reloaded", Duration::from_secs(5), || {
        d.status()["last_error"].is_null()
    });
}

/// Case 2: corrupt state files: each is moved aside with a clear message and
/// the daemon runs on the files; with the files broken too, the pinned
/// programs keep enforcing; with no pins either, audit mode with the
/// failsafe entries.
#[test]
fn corrupt_state_files_are_set_aside_and_the_start_goes_on() {
    let (pair, mut d) = node_serving(&[9090, 7070]);
    let reach = |port| reaches(&pair, port);
    d.start();
    let only = d.dir.join("only-8080.toml");
    d.ok(&["apply", path(&only), "--trial", "10m"]);
    d.kill();
    let state = d.state_dir.clone();
    let confirmed = fs::read_to_string(state.join("confirmed.json")).expect("record");
    let corruptions: Vec<(&str, &str, String)> = vec![
        (
            "confirmed.json",
            "truncated",
            confirmed[..confirmed.len() / 2].into(),
        ),
        ("confirmed.json", "empty", String::new()),
        ("confirmed.json", "garbage", "\u{0}\u{7f}garbage".into()),
        (
            "confirmed.json",
            "wrong types",
            confirmed.replace("\"enforce\"", "[]"),
        ),
        ("trial.json", "truncated", "{\"format\":2,\"trial\":".into()),
        ("trial.json", "invalid policy text", {
            let t = fs::read_to_string(state.join("trial.json")).expect("trial");
            t.replace("[[policy]]", "[[policy]]\\nbogus = 1")
        }),
    ];
    for (file, what, text) in &corruptions {
        let _ = fs::remove_dir_all(&state);
        fs::create_dir_all(&state).expect("dir");
        fs::write(state.join("confirmed.json"), &confirmed).expect("write");
        fs::write(state.join(file), text).expect("write");
        d.start();
        let e = last_error(&d);
        assert!(e.contains(file), "{what} {file}: {e}");
        assert!(
            reach(9090) && !reach(7070),
            "{what} {file}: the configured policy"
        );
        let aside = fs::read_dir(&state)
            .expect("dir")
            .filter_map(Result::ok)
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{file}.corrupt-"))
            });
        let invalid_trial = *what == "invalid policy text";
        assert!(aside || invalid_trial, "{what} {file}: moved aside");
        d.kill();
    }
    // A directory in the record's place.
    let _ = fs::remove_dir_all(&state);
    fs::create_dir_all(state.join("confirmed.json")).expect("dir");
    d.start();
    assert!(last_error(&d).contains("a directory"), "{}", last_error(&d));
    assert!(reach(9090) && !reach(7070));
    d.kill();

    // Record corrupt and files broken, pins present: the pinned programs
    // keep enforcing what they enforced.
    fs::write(d.dir.join("policies/typo.yaml"), TYPO).expect("write");
    let _ = fs::remove_dir_all(&state);
    fs::create_dir_all(&state).expect("dir");
    fs::write(state.join("confirmed.json"), "{").expect("write");
    d.start();
    let s = d.status();
    assert!(
        s["source"]
            .as_str()
            .is_some_and(|v| v.contains("pinned by an earlier run")),
        "{s}"
    );
    assert_eq!(s["mode"], "enforce", "{s}");
    assert!(
        reach(9090) && !reach(7070),
        "the pinned programs still enforce"
    );
    let peer = pair.peer_v4.to_string();
    let out = d.cli(&["trace", "--ingress", "--peer", &peer, "--port", "7070"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pinned by an earlier run"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // ... and after a reboot (no pins): audit mode with the failsafe
    // entries, the daemon running and saying why.
    reboot(&mut d);
    let _ = fs::remove_dir_all(&state);
    fs::create_dir_all(&state).expect("dir");
    fs::write(state.join("confirmed.json"), "{").expect("write");
    d.start();
    let s = d.status();
    assert_eq!(s["mode"], "audit", "{s}");
    assert!(
        s["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("failsafe entries only")),
        "{s}"
    );
    assert!(
        s["interfaces"].as_array().is_some_and(|i| !i.is_empty()),
        "{s}"
    );
    // Fixing the files and reloading enforces them, in the configured mode.
    fs::remove_file(d.dir.join("policies/typo.yaml")).expect("remove");
    let pid = d.child.as_ref().expect("running").id().to_string();
    sh(&["kill", "-HUP", &pid]);
    wait_until("reloaded into enforce", Duration::from_secs(5), || {
        d.status()["mode"] == "enforce"
    });
    assert!(reach(9090) && !reach(7070));
}

/// Case 3: a full disk: apply, confirm and mode fail with the path and the
/// reason, the kernel keeps what was in force, no temporary file is left.
#[test]
fn a_change_that_cannot_be_saved_is_not_made() {
    let pair = Pair::new();
    let mut d = Daemon::new(&pair);
    let state = d.dir.join("small-state");
    fs::create_dir_all(&state).expect("dir");
    sh(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "size=256k",
        "tmpfs",
        path(&state),
    ]);
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(state.clone());
    d.state_dir = state.clone();
    traffic::tcp_server(&pair.node, 9090);
    traffic::tcp_server(&pair.node, 8080);
    let node = pair.node_v4;
    let reach = |port| traffic::tcp_ok(&pair.peer, node, port, SHORT);
    d.start();
    assert!(traffic::tcp_ok(&pair.peer, node, 9090, LONG));
    let fill = state.join("fill");
    let fill_up = || {
        let _ = Command::new("dd")
            .args(["if=/dev/zero", &format!("of={}", fill.display()), "bs=4k"])
            .output();
    };
    let tmp_files = || {
        fs::read_dir(&state)
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect::<Vec<_>>()
    };
    fill_up();
    let only = d.dir.join("only-8080.toml");
    let out = d.cli(&["apply", path(&only), "--trial", "5m"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "apply --trial on a full disk must fail"
    );
    assert!(
        err.contains("trial.json") && err.contains("No space left on device"),
        "{err}"
    );
    assert!(reach(9090), "the kernel keeps the confirmed policy");
    assert!(d.status()["trial"].is_null());
    assert!(
        last_error(&d).contains("No space left"),
        "{}",
        last_error(&d)
    );
    assert!(tmp_files().is_empty(), "{:?}", tmp_files());
    let out = d.cli(&["mode", "audit"]);
    assert!(!out.status.success(), "mode audit on a full disk must fail");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("confirmed.json"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(d.status()["mode"], "enforce");

    // With room for the trial but not for the confirm.
    fs::remove_file(&fill).expect("free");
    d.ok(&["apply", path(&only), "--trial", "5m"]);
    assert!(!reach(9090), "trial in force");
    fill_up();
    let out = d.cli(&["confirm"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "confirm on a full disk must fail");
    assert!(
        err.contains("confirmed.json") && err.contains("No space left"),
        "{err}"
    );
    let s = d.status();
    assert!(
        s["trial"]["remaining_secs"].as_u64().is_some(),
        "still a trial: {s}"
    );
    assert!(tmp_files().is_empty(), "{:?}", tmp_files());
    fs::remove_file(&fill).expect("free");
    d.ok(&["confirm"]);
    d.kill();
    d.start();
    assert!(
        !reach(9090) && reach(8080),
        "the confirmed change survived the restart"
    );
}

/// Case 4: a FIFO and a very large file in the policies directory: refused,
/// naming them, while status, the watchdog and signals are served; a
/// large file that is allowed is parsed off the main loop.
#[test]
fn files_that_would_block_or_stall_are_refused_while_the_daemon_serves() {
    let pair = Pair::new();
    let mut d = Daemon::new(&pair);
    // Files up to 64 MiB are allowed here, to parse a large one.
    let cfg = d.dir.join("hostfw.toml");
    let text = fs::read_to_string(&cfg).expect("config");
    fs::write(
        &cfg,
        text.replace(
            "paths = [\"policies\"]",
            "paths = [\"policies\"]\nmax_file_size = \"64MiB\"",
        ),
    )
    .expect("config");
    let wd = Notifications::bind(&d.dir);
    d.start_with(|c| wd.env(c, 1_000_000));
    traffic::tcp_server(&pair.node, 9090);
    let node = pair.node_v4;
    assert!(wd.watchdog_gap_over(Duration::from_secs(2)) < Duration::from_millis(900));

    let fifo = d.dir.join("policies/x.yaml");
    nix::unistd::mkfifo(
        &fifo,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .expect("mkfifo");
    wait_until("the FIFO is refused", Duration::from_secs(5), || {
        last_error(&d).contains("x.yaml") && last_error(&d).contains("a FIFO")
    });
    let t = Instant::now();
    d.status();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "status took {:?}",
        t.elapsed()
    );
    assert!(wd.watchdog_gap_over(Duration::from_secs(2)) < Duration::from_millis(900));
    assert!(
        traffic::tcp_ok(&pair.peer, node, 9090, LONG),
        "the running policy stays"
    );
    // A restart with the FIFO still there does not block either.
    d.kill();
    d.start_with(|c| wd.env(c, 1_000_000));
    assert!(last_error(&d).contains("a FIFO"), "{}", last_error(&d));
    fs::remove_file(&fifo).expect("rm fifo");

    // Over the size limit: refused without reading it.
    let huge = d.dir.join("policies/huge.yaml");
    let f = fs::File::create(&huge).expect("create");
    f.set_len(80 << 20).expect("sparse 80 MiB");
    wait_until("the large file is refused", Duration::from_secs(5), || {
        last_error(&d).contains("huge.yaml") && last_error(&d).contains("over the limit")
    });
    fs::remove_file(&huge).expect("rm");

    // Under the limit but slow to parse: a reload parses it while the
    // daemon answers and the watchdog is pinged.
    // Slow to parse, cheap to enforce: one policy, and a large `status`
    // (free-form, ignored, as on objects read from a cluster).
    let mut big = String::from(
        "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: big\n\
         spec:\n  nodeSelector: {}\n  ingress:\n  - toPorts: [{ports: [{port: \"9090\", protocol: TCP}]}]\n\
         status:\n",
    );
    let mut n = 0u32;
    while big.len() < (24 << 20) {
        big.push_str(&format!("  k{n}: {{a: {n}, b: [x, y, z], c: {{d: e}}}}\n"));
        n += 1;
    }
    fs::write(d.dir.join("policies/big.yaml"), &big).expect("write big");
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut answered = 0;
    while start.elapsed() < Duration::from_secs(6) {
        let t = Instant::now();
        d.status();
        slowest = slowest.max(t.elapsed());
        answered += 1;
    }
    eprintln!(
        "while parsing {} MiB: {answered} status answers, slowest {slowest:?}",
        big.len() >> 20
    );
    assert!(
        slowest < Duration::from_secs(1),
        "status stalled {slowest:?}"
    );
    assert!(wd.watchdog_gap_over(Duration::from_secs(2)) < Duration::from_millis(900));
}

/// Case 7: after a rollback, status and the live trace describe the confirmed
/// policy the kernel enforces, even when the configured files were broken
/// meanwhile; the deferred reload then runs and reports the broken file.
#[test]
fn a_rollback_restores_the_confirmed_policy_as_enforced() {
    let pair = Pair::new();
    let mut d = Daemon::new(&pair);
    fs::write(
        d.dir.join("policies/web.toml"),
        policy("a-allows-8080", &["8080"]),
    )
    .expect("a");
    fs::write(d.dir.join("b.toml"), policy("b-allows-9090", &["9090"])).expect("b");
    traffic::tcp_server(&pair.node, 8080);
    traffic::tcp_server(&pair.node, 9090);
    let node = pair.node_v4;
    let reach = |port| traffic::tcp_ok(&pair.peer, node, port, SHORT);
    d.start();
    assert!(traffic::tcp_ok(&pair.peer, node, 8080, LONG) && !reach(9090));
    let before = d.status();
    let b = d.dir.join("b.toml");
    d.ok(&["apply", path(&b), "--trial", "5m", "--force"]);
    assert!(reach(9090) && !reach(8080), "trial in force");
    fs::write(
        d.dir.join("policies/web.toml"),
        "[[policy]\nname = \"broken",
    )
    .expect("break a");
    std::thread::sleep(Duration::from_millis(800));
    d.ok(&["rollback"]);
    assert!(reach(8080) && !reach(9090), "the kernel enforces a again");
    let s = d.status();
    assert_eq!(s["revision"], before["revision"], "{s}");
    assert_eq!(s["policies"][0]["name"], "a-allows-8080", "{s}");
    assert!(s["trial"].is_null(), "{s}");
    let peer = pair.peer_v4.to_string();
    let trace = |port: &str| -> serde_json::Value {
        serde_json::from_str(&d.ok(&[
            "trace",
            "--ingress",
            "--peer",
            &peer,
            "--port",
            port,
            "-o",
            "json",
        ]))
        .expect("json")
    };
    assert_eq!(trace("9090")["verdict"], "denied");
    assert_eq!(trace("8080")["verdict"], "allowed");
    assert_eq!(trace("8080")["policy"], "a-allows-8080");
    // The reload deferred by the trial runs after it (off the loop), and
    // says why it was refused (not "deferred").
    wait_until("the deferred reload ran", Duration::from_secs(5), || {
        let e = last_error(&d);
        e.contains("web.toml") && !e.contains("deferred")
    });
    // It changed nothing: still the confirmed policy as enforced.
    assert_eq!(d.status()["revision"], before["revision"]);
    assert!(reach(8080) && !reach(9090));
}

/// `hostfw stop` says what the daemon will do: one run with
/// `--detach-on-exit` detaches even without `stop --detach`, and says so
/// (it used to answer "the last policy stays enforced").
#[test]
fn stop_says_what_a_detach_on_exit_daemon_does() {
    let (pair, mut d) = node_serving(&[9090]);
    d.start_with(|c| {
        c.arg("--detach-on-exit");
    });
    assert!(traffic::tcp_ok(&pair.peer, pair.node_v4, 9090, LONG));
    let said = d.ok(&["stop"]);
    assert!(said.contains("detaching from every interface"), "{said}");
    let start = Instant::now();
    while d.exited().is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    d.child = None;
    assert!(
        !d.pin_root.exists(),
        "the pins are gone: the daemon detached as it said"
    );
}
