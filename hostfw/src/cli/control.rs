//! The commands that talk to the running daemon: `status`, `apply`,
//! `confirm`, `rollback`, `mode`.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use super::CliError;
use crate::{
    control::{self, Request, Response, Status},
    daemon::store::SourceFile,
    duration,
};

/// How long the CLI waits for the daemon (an apply of a large policy
/// takes a while).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Where the daemon listens.
#[derive(Debug, clap::Args)]
pub struct SocketArg {
    /// Control socket of the daemon.
    #[arg(long, value_name = "PATH", default_value = control::DEFAULT_SOCKET)]
    pub socket: PathBuf,
}

/// Output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// For people.
    #[default]
    Text,
    /// One JSON object, for scripts.
    Json,
}

/// `hostfw status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    output: Output,
}

/// `hostfw apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// Policy files to apply; without any, the configuration's
    /// `[policies] paths` are read afresh.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Apply as a trial that reverts by itself after DURATION (e.g. 2m)
    /// unless `hostfw confirm` is run.
    #[arg(long, value_name = "DURATION")]
    trial: Option<String>,
    /// Apply even if it would cut the ssh session it is run from.
    #[arg(long)]
    force: bool,
}

/// `hostfw mode`.
#[derive(Debug, clap::Args)]
pub struct ModeArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// The mode.
    #[arg(value_parser = ["audit", "enforce"])]
    mode: String,
    /// Trial duration (enforce is always a trial; default: `[trial]
    /// default` of the configuration).
    #[arg(long, value_name = "DURATION")]
    trial: Option<String>,
    /// Switch even if it would cut the ssh session it is run from.
    #[arg(long)]
    force: bool,
}

fn send(socket: &Path, req: &Request) -> Result<Response, CliError> {
    Ok(control::request(socket, req, TIMEOUT)?)
}

fn trial_ms(text: Option<&str>) -> Result<Option<u64>, CliError> {
    text.map(|t| duration::parse(t).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
        .transpose()
        .map_err(|e| CliError::Usage(e.to_string()))
}

fn finish(resp: &Response, out: &mut dyn Write) -> Result<(), CliError> {
    if resp.ok {
        writeln!(out, "{}", resp.message)?;
        Ok(())
    } else {
        Err(CliError::Refused(resp.message.clone()))
    }
}

/// Runs `status`.
pub fn status(args: &StatusArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let resp = send(&args.socket.socket, &Request::Status)?;
    if !resp.ok {
        // Refused (permission denied, busy): say why, not an empty status.
        return Err(CliError::Refused(resp.message));
    }
    let status = resp.status.unwrap_or_default();
    match args.output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut *out, &status)
                .map_err(|e| CliError::Output(std::io::Error::other(e)))?;
            writeln!(out)?;
        }
        Output::Text => out.write_all(render(&status).as_bytes())?,
    }
    Ok(())
}

/// `status` for people.
#[must_use]
pub fn render(s: &Status) -> String {
    let mut t = format!(
        "mode: {}, revision {}, policy from {}\n",
        s.mode, s.revision, s.source
    );
    if let Some(trial) = &s.trial {
        t.push_str(&format!(
            "trial: {} ({} mode) reverts in {} unless confirmed (hostfw confirm / hostfw rollback)\n",
            trial.source,
            trial.mode,
            duration::format(Duration::from_secs(trial.remaining_secs))
        ));
    }
    let dd = |on: bool| if on { "default-deny" } else { "open" };
    t.push_str(&format!(
        "ingress: {}, egress: {}\n",
        dd(s.default_deny_ingress),
        dd(s.default_deny_egress)
    ));
    t.push_str("interfaces:\n");
    if s.interfaces.is_empty() {
        t.push_str("  none\n");
    }
    for i in &s.interfaces {
        let pin = if i.pinned { "" } else { ", links not pinned" };
        let xdp = match &i.xdp_foreign {
            Some(f) => format!(
                "xdp: another program (id {}, name {}) is attached; hostfw enforces at TC only",
                f.prog_id, f.name
            ),
            None => format!("xdp {}", i.xdp),
        };
        t.push_str(&format!("  {}: {xdp}, tc {}{pin}\n", i.name, i.tc));
    }
    t.push_str("policies:\n");
    if s.policies.is_empty() {
        t.push_str("  none\n");
    }
    for p in &s.policies {
        t.push_str(&format!(
            "  {}: {}, {} rules ({})\n",
            p.name, p.selection, p.rules, p.file
        ));
    }
    t.push_str(&format!("failsafe: {}\n", s.failsafe.join(", ")));
    if let Some(k) = &s.kubernetes {
        t.push_str(&render_kubernetes(k));
    }
    if let Some(e) = &s.last_error {
        t.push_str(&format!("last error: {e}\n"));
    }
    let (e, n) = (&s.conntrack.established, &s.conntrack.new);
    t.push_str(&format!(
        "conntrack: established {} of {} ({} evicted), new {} of {} ({} evicted)\n",
        e.used, e.capacity, e.evicted, n.used, n.capacity, n.evicted
    ));
    let counters: Vec<String> = s
        .counters
        .iter()
        .filter(|(_, v)| *v > 0)
        .map(|(n, v)| format!("{n} {v}"))
        .collect();
    t.push_str(&format!("packets: {}\n", counters.join(", ")));
    t
}

/// The Kubernetes source's lines of `status`.
fn render_kubernetes(k: &crate::control::KubeStatus) -> String {
    let mut t = format!("kubernetes: {} ({}, node {})", k.state, k.server, k.node);
    if k.data_age_secs > 0 {
        t.push_str(&format!(
            "; data {} old, kept in force",
            duration::format(Duration::from_secs(k.data_age_secs))
        ));
    }
    t.push('\n');
    if !k.summary.is_empty() {
        t.push_str(&format!("  {}\n", k.summary));
    }
    if k.watch_restarts > 0 {
        t.push_str(&format!("  watch restarts: {}\n", k.watch_restarts));
    }
    if let Some(e) = &k.last_error {
        t.push_str(&format!("  last error: {e}\n"));
    }
    for (name, errors) in &k.invalid_policies {
        let first = errors.lines().next().unwrap_or_default();
        t.push_str(&format!("  invalid, left out: ccnp/{name}: {first}\n"));
    }
    if let Some(p) = &k.pending {
        t.push_str(&format!("  cluster change not enforced: {p}\n"));
    }
    t
}

/// Runs `apply`.
pub fn apply(args: &ApplyArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let files = if args.files.is_empty() {
        None
    } else {
        let mut v = Vec::new();
        for path in &args.files {
            let text = crate::policy::read_text(path, crate::policy::DEFAULT_MAX_FILE_SIZE)
                .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
            let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            v.push(SourceFile { path, text });
        }
        Some(v)
    };
    let req = Request::Apply {
        files,
        trial_ms: trial_ms(args.trial.as_deref())?,
        force: args.force,
        ssh_connection: std::env::var("SSH_CONNECTION").ok(),
    };
    if let Err(control::ControlError::TooLarge { len }) = control::encode(&req) {
        return Err(CliError::Usage(format!(
            "these files make a request of {len} bytes, more than the daemon accepts ({} bytes): \
             put them in [policies] paths of the configuration and run `hostfw apply` without files",
            control::MAX_REQUEST
        )));
    }
    finish(&send(&args.socket.socket, &req)?, out)
}

/// Runs `confirm`.
pub fn confirm(socket: &SocketArg, out: &mut dyn Write) -> Result<(), CliError> {
    finish(&send(&socket.socket, &Request::Confirm)?, out)
}

/// Runs `rollback`.
pub fn rollback(socket: &SocketArg, out: &mut dyn Write) -> Result<(), CliError> {
    finish(&send(&socket.socket, &Request::Rollback)?, out)
}

/// `hostfw stop`.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// Also detach from every interface and remove the pins: no firewall
    /// is left (otherwise the last policy stays enforced).
    #[arg(long)]
    detach: bool,
}

/// Runs `stop`.
pub fn stop(args: &StopArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let req = Request::Stop {
        detach: args.detach,
    };
    finish(&send(&args.socket.socket, &req)?, out)
}

/// Runs `mode`.
pub fn mode(args: &ModeArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let req = Request::Mode {
        mode: args.mode.clone(),
        trial_ms: trial_ms(args.trial.as_deref())?,
        force: args.force,
        ssh_connection: std::env::var("SSH_CONNECTION").ok(),
    };
    finish(&send(&args.socket.socket, &req)?, out)
}
