//! The daemon as an operator drives it: started in a network namespace,
//! controlled with the `hostfw` CLI over its socket, with real traffic from
//! another namespace. Trials revert by the daemon's timer, by the kernel
//! when the daemon was killed, and from the persisted record when it
//! restarts after the deadline. Needs root.

mod common;

use std::{
    fs,
    process::Command,
    time::{Duration, Instant},
};

use common::{
    Pair,
    daemon::{BIN, Daemon, LONG, SHORT, path, wait_until},
    traffic,
};

#[test]
fn trials_revert_by_timer_by_kernel_and_from_the_record() {
    let pair = Pair::new();
    let mut d = Daemon::new(&pair);
    d.start();
    traffic::tcp_server(&pair.node, 8080);
    traffic::tcp_server(&pair.node, 9090);
    let node = pair.node_v4;
    let reach = |port| traffic::tcp_ok(&pair.peer, node, port, SHORT);

    let s = d.status();
    assert_eq!(s["mode"], "enforce");
    assert!(
        s["interfaces"]
            .as_array()
            .expect("list")
            .iter()
            .any(|i| i["name"] == pair.node_if.as_str()),
        "{s}"
    );
    assert!(
        reach(9090) && traffic::tcp_ok(&pair.peer, node, 8080, LONG),
        "confirmed policy allows both"
    );
    assert!(!reach(7070), "default deny");
    // Live trace against the running policy, in the contract's JSON.
    let peer = pair.peer_v4.to_string();
    let t: serde_json::Value = serde_json::from_str(&d.ok(&[
        "trace",
        "--ingress",
        "--peer",
        &peer,
        "--port",
        "9090",
        "-o",
        "json",
    ]))
    .expect("trace JSON");
    assert_eq!(t["verdict"], "allowed", "{t}");
    assert_eq!(t["policy"], "web", "{t}");
    assert_eq!(t.as_object().map(serde_json::Map::len), Some(4), "{t}");
    let t: serde_json::Value = serde_json::from_str(&d.ok(&[
        "trace",
        "--ingress",
        "--peer",
        &peer,
        "--port",
        "7070",
        "-o",
        "json",
    ]))
    .expect("trace JSON");
    assert_eq!(t["verdict"], "denied", "{t}");

    // 1. The daemon's timer reverts.
    let only = d.dir.join("only-8080.toml");
    let msg = d.ok(&["apply", path(&only), "--trial", "2s"]);
    assert!(msg.contains("reverts in 2s"), "{msg}");
    assert!(!reach(9090), "trial denies 9090");
    assert!(reach(8080));
    assert!(
        d.status()["trial"]["remaining_secs"]
            .as_u64()
            .is_some_and(|r| r <= 2)
    );
    wait_until("timer revert", Duration::from_secs(5), || reach(9090));
    wait_until("status: trial over", Duration::from_secs(2), || {
        d.status()["trial"].is_null()
    });
    assert!(
        d.log().contains("reverted (deadline passed)"),
        "{}",
        d.log()
    );

    // 2. The daemon is killed during a trial: the last policy stays
    //    enforced (fail static) and the kernel reverts at the deadline.
    d.ok(&["apply", path(&only), "--trial", "3s"]);
    assert!(!reach(9090));
    d.kill();
    assert!(!reach(9090), "killed daemon: still enforcing the trial");
    assert!(!reach(7070), "killed daemon: still enforcing default deny");
    wait_until("kernel revert", Duration::from_secs(6), || reach(9090));
    assert!(
        !reach(7070),
        "after the kernel revert: confirmed policy, not open"
    );

    // 3. Restart after the deadline: the record is reverted at start.
    d.start();
    assert!(
        d.log().contains("expired while hostfw was not running"),
        "{}",
        d.log()
    );
    let s = d.status();
    assert!(s["trial"].is_null(), "{s}");
    assert!(reach(9090) && !reach(7070));

    // 4. Restart during a trial: resumed with the time left.
    d.ok(&["apply", path(&only), "--trial", "4s"]);
    d.kill();
    d.start();
    let s = d.status();
    assert!(
        s["trial"]["remaining_secs"].as_u64().is_some(),
        "trial resumed: {s}"
    );
    assert!(!reach(9090), "still the trial");
    wait_until("revert after resume", Duration::from_secs(7), || {
        reach(9090)
    });

    // 5. Confirm makes a trial stick, across a restart too.
    d.ok(&["apply", path(&only), "--trial", "30s"]);
    d.ok(&["confirm"]);
    d.kill();
    d.start();
    assert!(d.status()["trial"].is_null());
    assert!(
        !reach(9090) && reach(8080),
        "confirmed policy after restart"
    );
    d.ok(&["apply"]);
    assert!(reach(9090), "back to the configured paths");
}

#[test]
fn preflight_reload_errors_and_hotplug() {
    let pair = Pair::new();
    let mut d = Daemon::new(&pair);
    d.start();
    let node = pair.node_v4;
    traffic::tcp_server(&pair.node, 8080);

    // Lockout preflight: the caller's ssh session would be cut.
    let only = d.dir.join("only-8080.toml");
    let ssh = format!("{} 50000 {} 22", pair.peer_v4, node);
    let refused = Command::new(BIN)
        .env("SSH_CONNECTION", &ssh)
        .args(["apply", path(&only), "--socket", path(&d.socket())])
        .output()
        .expect("run");
    assert!(!refused.status.success(), "must refuse");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains(&format!("{} port 50000 to port 22", pair.peer_v4)),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    let forced = Command::new(BIN)
        .env("SSH_CONNECTION", &ssh)
        .args([
            "apply",
            path(&only),
            "--force",
            "--socket",
            path(&d.socket()),
        ])
        .output()
        .expect("run");
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    d.ok(&["apply"]);

    // A broken policy file on reload: the running policy stays; status says
    // where the error is.
    fs::write(
        d.dir.join("policies/broken.yaml"),
        "apiVersion: cilium.io/v2\nkind: Nope\n",
    )
    .expect("write");
    let pid = d.child.as_ref().expect("running").id();
    Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill -HUP");
    wait_until("reload error in status", Duration::from_secs(5), || {
        d.status()["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("broken.yaml:2:"))
    });
    assert!(
        traffic::tcp_ok(&pair.peer, node, 8080, LONG),
        "running policy still allows 8080"
    );
    // Metrics (on the node namespace's loopback) count the failed reload.
    wait_until(
        "metrics show the failed reload",
        Duration::from_secs(5),
        || {
            let m = metrics(&pair);
            sample(&m, "hostfw_reloads_total{result=\"error\"}").is_some_and(|v| v >= 1.0)
        },
    );
    let m = metrics(&pair);
    assert_eq!(sample(&m, "hostfw_mode_enforce"), Some(1.0), "{m}");
    assert!(
        sample(&m, "hostfw_policy_revision").is_some_and(|v| v >= 1.0),
        "{m}"
    );
    assert!(
        m.contains(&format!(
            "hostfw_interface_info{{interface=\"{}\"",
            pair.node_if
        )),
        "{m}"
    );
    assert!(m.contains("# TYPE hostfw_packets_total counter"), "{m}");
    let passed = format!(
        "hostfw_interface_packets_total{{interface=\"{}\",outcome=\"passed\"}}",
        pair.node_if
    );
    assert!(sample(&m, &passed).is_some_and(|v| v > 0.0), "{m}");
    fs::remove_file(d.dir.join("policies/broken.yaml")).expect("remove");
    Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill -HUP");
    wait_until("reload ok", Duration::from_secs(5), || {
        d.status()["last_error"].is_null()
    });

    // Hotplug: a new matching interface is attached within a second.
    let new_if = format!("hn{}x", pair.id);
    let start = Instant::now();
    common::sh(&[
        "ip",
        "-n",
        &pair.node.name,
        "link",
        "add",
        &new_if,
        "type",
        "veth",
        "peer",
        "name",
        &format!("hq{}x", pair.id),
    ]);
    wait_until("hotplug attach", Duration::from_secs(1), || {
        d.status()["interfaces"]
            .as_array()
            .is_some_and(|l| l.iter().any(|i| i["name"] == new_if.as_str()))
    });
    eprintln!("new interface attached after {:?}", start.elapsed());
    common::sh(&["ip", "-n", &pair.node.name, "link", "del", &new_if]);
    wait_until("hotplug detach", Duration::from_secs(1), || {
        d.status()["interfaces"]
            .as_array()
            .is_some_and(|l| !l.iter().any(|i| i["name"] == new_if.as_str()))
    });
}

/// GET /metrics on the node namespace's loopback.
fn metrics(pair: &Pair) -> String {
    pair.node.run(|| {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", 9964)) else {
            return String::new();
        };
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    })
}

/// The value of the sample line that starts with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn audit_mode_observe_and_suggest() {
    use std::io::{BufRead as _, BufReader};

    let pair = Pair::new();
    let mut d = Daemon::new(&pair);
    let config = d.dir.join("hostfw.toml");
    let text = fs::read_to_string(&config).expect("config");
    fs::write(
        &config,
        text.replace("mode = \"enforce\"", "mode = \"audit\""),
    )
    .expect("config");
    d.start();
    traffic::tcp_server(&pair.node, 7070);
    let node = pair.node_v4;
    // Follow from the start: a new flow shows up while it runs.
    let socket = d.socket();
    let mut follow = Command::new(BIN)
        .args([
            "observe",
            "--follow",
            "-o",
            "json",
            "--verdict",
            "audit",
            "--socket",
        ])
        .arg(&socket)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("observe --follow");
    assert!(
        traffic::tcp_ok(&pair.peer, node, 7070, LONG),
        "audit mode: the denied port is reachable"
    );
    let mut first = String::new();
    let stdout = follow.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let _ = BufReader::new(stdout).read_line(&mut first);
        first
    });
    let start = Instant::now();
    while !reader.is_finished() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = follow.kill();
    let _ = follow.wait();
    let first = reader.join().expect("reader");
    let flow: serde_json::Value = serde_json::from_str(&first).expect("a followed flow, as JSON");
    assert_eq!(flow["verdict"], "audit", "{flow}");
    assert_eq!(flow["dport"], 7070, "{flow}");
    assert_eq!(flow["direction"], "ingress", "{flow}");
    // Recorded flows, as text for people.
    let text = d.ok(&["observe", "--verdict", "audit"]);
    assert!(text.contains("AUDIT") && text.contains(":7070"), "{text}");
    // suggest: a CCNP that check accepts and that allows the flow.
    let yaml = d.ok(&["suggest"]);
    let file = d.dir.join("suggested.yaml");
    fs::write(&file, &yaml).expect("write");
    let check = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&config)
        .arg(&file)
        .output()
        .expect("check");
    assert!(
        check.status.success(),
        "{yaml}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let t: serde_json::Value = serde_json::from_slice(
        &Command::new(BIN)
            .args([
                "trace",
                "--ingress",
                "--peer",
                &pair.peer_v4.to_string(),
                "--port",
                "7070",
            ])
            .args(["-o", "json", "--config"])
            .arg(&config)
            .arg("--policies")
            .arg(&file)
            .output()
            .expect("trace")
            .stdout,
    )
    .expect("trace JSON");
    assert_eq!(t["verdict"], "allowed", "{t}\n{yaml}");
    // Switching to enforce is itself a trial ([trial] default, 3s here).
    let msg = d.ok(&["mode", "enforce"]);
    assert!(msg.contains("reverts in 3s"), "{msg}");
    let s = d.status();
    assert_eq!(s["mode"], "enforce", "{s}");
    assert_eq!(s["trial"]["mode"], "enforce", "{s}");
    assert!(
        !traffic::tcp_ok(&pair.peer, node, 7070, SHORT),
        "enforced during the trial"
    );
    wait_until("back to audit", Duration::from_secs(6), || {
        d.status()["mode"] == "audit"
    });
    assert!(traffic::tcp_ok(&pair.peer, node, 7070, LONG), "audit again");
}
