//! `hostfw check` and `hostfw trace` as scripts run them: the built binary
//! on files written here (no root needed).

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// A fresh directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("hostfw-cli-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("parent dir");
        }
        fs::write(&path, text).expect("write");
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// This node is 10.0.0.1 (so entity `host` does not depend on this
/// machine), 10.0.0.2 is another node; enforce mode; default failsafe.
const CONFIG: &str = "mode = \"enforce\"\n[node]\nlabels = { role = \"db\" }\n\
                      addresses = [\"10.0.0.1\"]\n[cluster]\nnodes = [\"10.0.0.1\", \"10.0.0.2\"]\n\
                      pod_cidrs = [\"10.244.0.0/16\"]\n";

const BASELINE: &str = "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\n\
                        metadata:\n  name: baseline\nspec:\n  nodeSelector: {}\n  ingress:\n  \
                        - fromEntities: [cluster]\n  \
                        - toPorts: [{ports: [{port: \"443\", protocol: TCP}]}]\n";

const DB_TOML: &str = "[[policy]]\nname = \"db\"\nnodeSelector.matchLabels = { role = \"db\" }\n\n\
                       [[policy.ingress]]\nfromCIDR = [\"192.0.2.0/24\"]\n\
                       toPorts = [{ ports = [{ port = \"5432\", protocol = \"TCP\" }] }]\n";

/// `ingress[0]` has a typo: `toPort`, line 9, column 5.
const BAD: &str = "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\n\
                   metadata:\n  name: bad\nspec:\n  nodeSelector: {}\n  ingress:\n  \
                   - fromEntities: [world]\n    toPort: []\n";

fn hostfw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hostfw"))
        .args(args)
        .output()
        .expect("run hostfw")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A configuration and a valid policy directory.
fn valid(name: &str) -> (TempDir, PathBuf, PathBuf) {
    let t = TempDir::new(name);
    let config = t.write("hostfw.toml", CONFIG);
    t.write("policies.d/baseline.yaml", BASELINE);
    t.write("policies.d/db.toml", DB_TOML);
    let dir = t.path("policies.d");
    (t, config, dir)
}

#[test]
fn check_passes_a_valid_policy_directory() {
    let (_t, config, dir) = valid("check-ok");
    let out = hostfw(&["check", "--config", s(&config), s(&dir)]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("baseline.yaml: 1 policy\n"), "{stdout}");
    assert!(
        stdout.contains("db.toml): selected; ingress 1; makes ingress default-deny"),
        "{stdout}"
    );
    assert!(stdout.ends_with("ok: 2 policies, 2 selected\n"), "{stdout}");
}

#[test]
fn check_fails_an_invalid_policy_naming_file_line_and_column() {
    let (t, config, dir) = valid("check-bad");
    let bad = t.write("policies.d/bad.yaml", BAD);
    let out = hostfw(&["check", "--config", s(&config), s(&dir)]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:9:5: policy bad, ingress[0]: unknown field `toPort`",
            bad.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("hostfw: 1 error in the policies: the daemon would reject them whole\n"),
        "{stderr}"
    );
    assert!(text(&out.stdout).contains("bad.yaml: not valid (errors below)"));
}

#[test]
fn check_refuses_a_missing_explicit_config() {
    let (t, _config, dir) = valid("check-noconfig");
    let missing = t.path("nope.toml");
    let out = hostfw(&["check", "--config", s(&missing), s(&dir)]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("nope.toml"),
        "{}",
        text(&out.stderr)
    );
}

fn trace_json(
    config: &Path,
    dir: &Path,
    flow: &[&str],
) -> serde_json::Map<String, serde_json::Value> {
    let mut args = vec![
        "trace",
        "--config",
        s(config),
        "--policies",
        s(dir),
        "-o",
        "json",
    ];
    args.extend_from_slice(flow);
    let out = hostfw(&args);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout.lines().count(), 1, "one object, one line: {stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let obj = v.as_object().expect("an object").clone();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["policy", "reason", "rule", "verdict"], "{stdout}");
    obj
}

#[test]
fn trace_json_is_one_object_with_the_four_keys() {
    let (_t, config, dir) = valid("trace-json");
    let allowed = trace_json(
        &config,
        &dir,
        &["--ingress", "--peer", "192.0.2.9", "--port", "5432"],
    );
    assert_eq!(allowed["verdict"], "allowed");
    assert_eq!(allowed["policy"], "db");
    assert_eq!(allowed["rule"], "ingress[0]");
    assert!(
        allowed["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("allowed by policy db, ingress[0] (")),
        "{allowed:?}"
    );

    // Denied is a verdict, not an error: exit 0, null policy and rule.
    let denied = trace_json(
        &config,
        &dir,
        &["--ingress", "--peer", "203.0.113.5", "--port", "80"],
    );
    assert_eq!(denied["verdict"], "denied");
    assert!(
        denied["policy"].is_null() && denied["rule"].is_null(),
        "{denied:?}"
    );
    assert!(
        denied["reason"]
            .as_str()
            .is_some_and(|r| r.contains("policies baseline, db make ingress default-deny")),
        "{denied:?}"
    );

    let egress = trace_json(
        &config,
        &dir,
        &[
            "--egress",
            "--peer",
            "2001:db8::1",
            "--proto",
            "udp",
            "--port",
            "53",
        ],
    );
    assert_eq!(egress["verdict"], "allowed");
    assert!(egress["rule"].is_null());

    let nd = trace_json(
        &config,
        &dir,
        &[
            "--ingress",
            "--peer",
            "fe80::1",
            "--proto",
            "icmpv6",
            "--icmp-type",
            "NeighborSolicitation",
        ],
    );
    assert_eq!(nd["verdict"], "allowed");
    assert!(
        nd["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("never filtered")),
        "{nd:?}"
    );
}

#[test]
fn trace_prints_the_verdict_for_people() {
    let (_t, config, dir) = valid("trace-text");
    let out = hostfw(&[
        "trace",
        "--ingress",
        "--peer",
        "10.0.0.2",
        "--port",
        "8080",
        "--config",
        s(&config),
        "--policies",
        s(&dir),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("ingress tcp/8080 from 10.0.0.2: allowed\nreason: allowed by policy baseline, ingress[0] ("),
        "{stdout}"
    );
}

#[test]
fn bad_flags_exit_non_zero() {
    let (_t, config, dir) = valid("trace-flags");
    let base = ["trace", "--config", s(&config), "--policies", s(&dir)];
    for (flags, says) in [
        (&["--peer", "192.0.2.1"][..], "--ingress"),
        (
            &["--ingress", "--egress", "--peer", "192.0.2.1"][..],
            "cannot be used with",
        ),
        (
            &["--ingress", "--peer", "not-an-address"][..],
            "not-an-address",
        ),
        (
            &["--ingress", "--peer", "192.0.2.1", "--proto", "gre"][..],
            "gre",
        ),
        (
            &["--ingress", "--peer", "192.0.2.1", "--port", "70000"][..],
            "70000",
        ),
        (
            &[
                "--ingress",
                "--peer",
                "192.0.2.1",
                "--proto",
                "icmp",
                "--port",
                "22",
            ][..],
            "--port applies to tcp, udp and sctp only",
        ),
        (
            &["--ingress", "--peer", "192.0.2.1", "--icmp-type", "8"][..],
            "--icmp-type applies to icmp and icmpv6 only",
        ),
        (
            &[
                "--ingress",
                "--peer",
                "192.0.2.1",
                "--proto",
                "icmp",
                "--icmp-type",
                "Bogus",
            ][..],
            "expected a number 0-255 or an ICMP type name",
        ),
        (
            &["--ingress", "--peer", "2001:db8::1", "--proto", "icmp"][..],
            "use --proto icmpv6",
        ),
        (
            &["--ingress", "--peer", "192.0.2.1", "-o", "yaml"][..],
            "yaml",
        ),
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(flags);
        let out = hostfw(&args);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{flags:?} must fail");
        assert!(out.stdout.is_empty(), "{flags:?}: {}", text(&out.stdout));
        assert!(stderr.contains(says), "{flags:?}: {says:?} in {stderr}");
    }
}

#[test]
fn trace_with_an_invalid_policy_prints_the_check_errors() {
    let (t, config, dir) = valid("trace-bad");
    t.write("policies.d/bad.yaml", BAD);
    let trace = hostfw(&[
        "trace",
        "--ingress",
        "--peer",
        "192.0.2.1",
        "--port",
        "22",
        "--config",
        s(&config),
        "--policies",
        s(&dir),
        "-o",
        "json",
    ]);
    assert!(!trace.status.success());
    assert!(trace.stdout.is_empty(), "{}", text(&trace.stdout));
    let check = hostfw(&["check", "--config", s(&config), s(&dir)]);
    assert!(!check.status.success());
    let trace_err = text(&trace.stderr);
    assert_eq!(trace_err, text(&check.stderr), "printed as check prints it");
    assert!(
        trace_err.contains("bad.yaml:9:5: policy bad, ingress[0]:"),
        "{trace_err}"
    );
}

#[test]
fn trace_without_policies_asks_the_daemon_and_says_when_none_runs() {
    let out = hostfw(&[
        "trace",
        "--ingress",
        "--peer",
        "192.0.2.1",
        "--port",
        "22",
        "--socket",
        "/nonexistent/hostfw.sock",
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot reach the daemon at /nonexistent/hostfw.sock"),
        "{stderr}"
    );
    assert!(stderr.contains("hostfw daemon"), "{stderr}");
}
