//! The control socket: requests from the `hostfw` CLI to the daemon and
//! their answers, one JSON object per line.
//!
//! **Who may connect.** The socket is created mode 0600 (umask 0177 around
//! `bind`, so it never exists with a looser mode) in a directory that is
//! created 0700 if missing and refused if it is group- or world-writable or
//! owned by someone other than root or the daemon's user. Every connection's
//! peer credentials (`SO_PEERCRED`) are checked: root and the daemon's own
//! user are served; with `[control] group = "NAME"` in the configuration,
//! members of that group too (the socket is then 0660 and its directory
//! 0750, both of that group). Anyone else gets one line, `{"ok": false,
//! "message": "permission denied: uid N is not root"}`, and the connection
//! is closed at once.
//!
//! **Bounds.** One request per connection, at most [`MAX_REQUEST`] bytes,
//! sent within 2 s of connecting. At most 64 connections wait for their
//! request at once; when more arrive, the one waiting longest is closed if
//! it has waited 50 ms (a real client sends its request right after
//! connecting), else the newcomer is told the daemon is busy. A
//! connection whose whole request has arrived is served even without a
//! seat (a newcomer refused one, or one evicted before the daemon read
//! it). At most 64 requests are carried out at once (more are told the
//! daemon is busy), and at most 32 `observe` streams are served at once;
//! more are refused with a message.
//! Answers are at most [`MAX_ANSWER`] bytes.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use crate::daemon::store::SourceFile;

/// Default socket path.
pub const DEFAULT_SOCKET: &str = "/run/hostfw/hostfw.sock";

/// Largest request the daemon reads, in bytes (its JSON line, newline
/// included). A larger policy set goes in `[policies] paths`.
pub const MAX_REQUEST: usize = 1 << 20;

/// Largest answer the CLI reads, in bytes (a status with many policies, a
/// suggestion).
pub const MAX_ANSWER: usize = 8 << 20;

/// What the CLI asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// The daemon's state.
    Status,
    /// Apply a policy: these files, or the configured paths afresh.
    Apply {
        /// Files to apply; `None`: the configuration's `[policies] paths`.
        files: Option<Vec<SourceFile>>,
        /// Trial duration in milliseconds; `None`: confirmed at once.
        trial_ms: Option<u64>,
        /// Apply even if the lockout preflight finds a session it would cut.
        force: bool,
        /// The caller's `SSH_CONNECTION`, if any.
        ssh_connection: Option<String>,
    },
    /// Make the pending trial the confirmed policy.
    Confirm,
    /// What the enforced policy does to one flow (`hostfw trace`).
    Trace {
        /// "ingress" or "egress".
        direction: String,
        /// The remote address.
        peer: std::net::IpAddr,
        /// IP protocol number.
        proto: u8,
        /// Destination port.
        port: Option<u16>,
        /// ICMP type.
        icmp_type: Option<u8>,
    },
    /// Recent verdicts, then (with `follow`) new ones as they come: the
    /// answer is one JSON [`crate::observe::Flow`] per line.
    Observe {
        /// Which flows.
        filter: crate::observe::Filter,
        /// Keep the connection open and stream new flows.
        follow: bool,
    },
    /// A CCNP, for review, that would allow what audit mode saw denied.
    Suggest {
        /// Only flows of the last this many milliseconds.
        since_ms: Option<u64>,
    },
    /// Stop the daemon; `detach` removes the firewall from every interface.
    Stop {
        /// Detach and remove the pins.
        detach: bool,
    },
    /// Revert the pending trial now.
    Rollback,
    /// Switch between audit and enforce (enforce is applied as a trial).
    Mode {
        /// "audit" or "enforce".
        mode: String,
        /// Trial duration in milliseconds; `None`: the configured default
        /// for enforce, confirmed at once for audit.
        trial_ms: Option<u64>,
        /// As for apply.
        force: bool,
        /// As for apply.
        ssh_connection: Option<String>,
    },
}

/// The daemon's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request was carried out.
    pub ok: bool,
    /// What happened, for people.
    pub message: String,
    /// The state afterwards.
    pub status: Option<Status>,
    /// A request's own result (trace: the JSON object of the contract).
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

/// The daemon's state, as `hostfw status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// "audit" or "enforce", as enforced now.
    pub mode: String,
    /// Policy revision in the kernel.
    pub revision: u32,
    /// Where the enforced policy comes from: "configured paths" or files.
    pub source: String,
    /// The pending trial.
    pub trial: Option<TrialStatus>,
    /// Attached interfaces.
    pub interfaces: Vec<InterfaceStatus>,
    /// Policies and what became of them.
    pub policies: Vec<PolicyStatus>,
    /// Ingress is default-deny.
    pub default_deny_ingress: bool,
    /// Egress is default-deny.
    pub default_deny_egress: bool,
    /// Failsafe entries, always allowed.
    pub failsafe: Vec<String>,
    /// The last reload or apply error, with its location.
    pub last_error: Option<String>,
    /// Connection trackers: entries in use (sampled), capacity, evictions.
    pub conntrack: crate::datapath::counters::ConntrackUsage,
    /// Packet counters by kind.
    pub counters: Vec<(String, u64)>,
    /// The Kubernetes source, when `[kubernetes]` is configured.
    #[serde(default)]
    pub kubernetes: Option<KubeStatus>,
}

/// The Kubernetes source's health and data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeStatus {
    /// The API server's URL.
    pub server: String,
    /// The name of this node's `Node` object.
    pub node: String,
    /// "connecting" (no complete list yet), "synced" (watching), "stale"
    /// (the API server failed since the last good data, which stays in
    /// force), or "failed" (the source could not start: `last_error`).
    pub state: String,
    /// Seconds since the data was last known current; 0 while synced.
    pub data_age_secs: u64,
    /// What the cluster gives: "3 policies, 2 nodes, 1 API server address".
    pub summary: String,
    /// Watches restarted since the daemon started (after an error, or a
    /// relist after `410 Gone`).
    pub watch_restarts: u64,
    /// The last error from the API server, if the state is not synced.
    pub last_error: Option<String>,
    /// CCNPs left out because they are invalid: name, then the errors.
    pub invalid_policies: Vec<(String, String)>,
    /// A change from the cluster not enforced yet, and why.
    pub pending: Option<String>,
}

/// A pending trial.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialStatus {
    /// Seconds until it reverts by itself.
    pub remaining_secs: u64,
    /// The trial's mode.
    pub mode: String,
    /// The trial's source.
    pub source: String,
}

/// An attached interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceStatus {
    /// Name.
    pub name: String,
    /// "native" or "generic" (hostfw's XDP), or "foreign": another
    /// program runs at XDP and hostfw enforces at TC only.
    pub xdp: String,
    /// The other program, when `xdp` is "foreign".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xdp_foreign: Option<ForeignXdp>,
    /// "tcx" or "clsact".
    pub tc: String,
    /// Links pinned (they outlive the daemon).
    pub pinned: bool,
}

/// Another tool's program at XDP on a managed interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignXdp {
    /// Its id.
    pub prog_id: u32,
    /// Its name as the kernel holds it (may be empty).
    pub name: String,
}

/// A policy as the daemon sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyStatus {
    /// Name.
    pub name: String,
    /// File.
    pub file: String,
    /// "selected", or "not selected: why", or "skipped: why".
    pub selection: String,
    /// Rules it contributes.
    pub rules: usize,
}

/// A request that could not be sent or answered.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No daemon listens.
    #[error(
        "cannot reach the daemon at {path}: {source} (is `hostfw daemon` running? `systemctl status hostfw`)"
    )]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Sending or receiving failed.
    #[error("talking to the daemon at {path}: {source}")]
    Io {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The answer was not understood.
    #[error("the daemon's answer is not understood: {0}")]
    Decode(#[source] serde_json::Error),
    /// The request is larger than the daemon reads ([`MAX_REQUEST`]).
    #[error(
        "the request is {len} bytes, more than the control socket accepts ({} bytes)",
        MAX_REQUEST
    )]
    TooLarge {
        /// Its size, newline included.
        len: usize,
    },
}

/// The line sent for `req`, newline included; an error if the daemon
/// would refuse it as too large.
pub fn encode(req: &Request) -> Result<String, ControlError> {
    let mut line = serde_json::to_string(req).map_err(ControlError::Decode)?;
    line.push('\n');
    if line.len() > MAX_REQUEST {
        return Err(ControlError::TooLarge { len: line.len() });
    }
    Ok(line)
}

/// Sends one request and waits for the answer. A request larger than
/// [`MAX_REQUEST`] is refused before connecting.
pub fn request(socket: &Path, req: &Request, timeout: Duration) -> Result<Response, ControlError> {
    let line = encode(req)?;
    let io = |source| ControlError::Io {
        path: socket.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(|source| ControlError::Connect {
        path: socket.to_path_buf(),
        source,
    })?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let sent = stream.write_all(line.as_bytes());
    // Read even if sending failed: a daemon that refuses the caller says
    // why in one line and closes, possibly before reading it all.
    let mut answer = String::new();
    let received = BufReader::new((&stream).take(MAX_ANSWER as u64)).read_line(&mut answer);
    if !answer.ends_with('\n') {
        sent.map_err(io)?;
        received.map_err(io)?;
    }
    serde_json::from_str(&answer).map_err(ControlError::Decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(text: String) -> Request {
        Request::Apply {
            files: Some(vec![SourceFile {
                path: PathBuf::from("/p.yaml"),
                text,
            }]),
            trial_ms: None,
            force: false,
            ssh_connection: None,
        }
    }

    #[test]
    fn requests_are_one_line_of_at_most_max_request() {
        let line = encode(&Request::Status).expect("small");
        assert_eq!(line, "{\"cmd\":\"status\"}\n");
        let line = encode(&apply("a\nb".into())).expect("small");
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        let big = encode(&apply("x".repeat(MAX_REQUEST)));
        let Err(ControlError::TooLarge { len }) = big else {
            panic!("not refused: {big:?}");
        };
        assert!(len > MAX_REQUEST);
        let e = ControlError::TooLarge { len }.to_string();
        assert!(
            e.contains("more than the control socket accepts (1048576 bytes)"),
            "{e}"
        );
    }

    #[test]
    fn an_oversized_request_is_refused_before_connecting() {
        let e = request(
            Path::new("/nonexistent/hostfw.sock"),
            &apply("x".repeat(MAX_REQUEST)),
            Duration::from_secs(1),
        )
        .expect_err("too large");
        assert!(matches!(e, ControlError::TooLarge { .. }), "{e}");
    }
}
