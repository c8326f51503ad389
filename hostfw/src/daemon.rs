//! `hostfw daemon`: load, attach to the managed interfaces, apply the
//! policy, report verdicts until stopped.

use std::{path::PathBuf, time::Duration};

use aya::maps::{MapData, RingBuf};
use hostfw_common::names::MAP_EVENTS;
use tokio::{io::unix::AsyncFd, signal::unix::SignalKind};

use crate::{
    config::Config,
    datapath::{Datapath, DatapathError, LoadOptions, events::VerdictEvent, writer::Switch},
    mapstate,
};

/// Options of `hostfw daemon`.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    /// Configuration file.
    pub config: PathBuf,
    /// Detach from every interface and remove the pins on exit, instead of
    /// leaving the last policy enforcing.
    pub detach_on_exit: bool,
    /// Pin directory.
    pub pin_root: PathBuf,
}

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The policy could not be compiled.
    #[error("policy: {0}")]
    Policy(String),
    /// Kernel side.
    #[error(transparent)]
    Datapath(#[from] DatapathError),
    /// Runtime.
    #[error("{what}: {source}")]
    Io {
        /// What failed.
        what: &'static str,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Names of the interfaces the configuration manages, sorted.
#[must_use]
pub fn managed_interfaces(cfg: &Config) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| cfg.interfaces.manages(n))
        .collect();
    names.sort();
    names
}

/// Runs the daemon until SIGINT or SIGTERM.
pub async fn run(opts: DaemonOptions) -> Result<(), DaemonError> {
    // Signals first: a Ctrl-C during attach must still detach cleanly.
    let io = |what| move |source| DaemonError::Io { what, source };
    let term = tokio::signal::unix::signal(SignalKind::terminate()).map_err(io("SIGTERM"))?;
    let int = tokio::signal::unix::signal(SignalKind::interrupt()).map_err(io("SIGINT"))?;
    let cfg = Config::load(&opts.config)?;
    let rules = crate::source::rules_from_config(&cfg).map_err(DaemonError::Policy)?;
    let state = mapstate::compile(&rules).map_err(|e| DaemonError::Policy(e.to_string()))?;
    let mut dp = Datapath::load(&LoadOptions {
        pin_root: opts.pin_root.clone(),
        ..LoadOptions::default()
    })?;
    let applied = dp.apply(&state, Switch::Confirmed)?;
    log::info!(
        "policy revision {} applied: {} rules, {} map changes in {:?} ({} mode)",
        applied.revision,
        rules.rules.len(),
        applied.changes,
        applied.took,
        match rules.mode {
            crate::ruleset::Mode::Audit => "audit",
            crate::ruleset::Mode::Enforce => "enforce",
        }
    );
    let ifaces = managed_interfaces(&cfg);
    if ifaces.is_empty() {
        log::warn!("no interface matches [interfaces] include/exclude: nothing is filtered");
    }
    let mut attached = Vec::new();
    for ifname in &ifaces {
        match dp.attach(ifname) {
            Ok(a) => {
                log::info!("attached {a}");
                attached.push(ifname.clone());
            }
            Err(e) => log::error!("{ifname}: not attached: {e}"),
        }
    }
    let result = follow_events(&mut dp, term, int).await;
    if opts.detach_on_exit {
        drop(dp);
        match Datapath::remove_all(&opts.pin_root) {
            Ok(()) => log::info!("detached from {} and removed the pins", attached.join(", ")),
            Err(errors) => {
                for e in errors {
                    log::error!("detach: {e}");
                }
            }
        }
    } else {
        log::info!("stopping; the programs stay attached and enforce the last policy");
    }
    result
}

/// Prints verdict events until SIGINT or SIGTERM.
async fn follow_events(
    dp: &mut Datapath,
    mut term: tokio::signal::unix::Signal,
    mut int: tokio::signal::unix::Signal,
) -> Result<(), DaemonError> {
    let map = dp
        .ebpf_mut()
        .take_map(MAP_EVENTS)
        .ok_or(DatapathError::Missing {
            kind: "map",
            name: MAP_EVENTS,
        })?;
    let ring: RingBuf<MapData> =
        RingBuf::try_from(map).map_err(|e| DatapathError::map(MAP_EVENTS, "open", e))?;
    // SAFETY: the ring buffer owns its fd, which stays open and the same
    // for as long as the AsyncFd owns the ring buffer.
    let mut fd = unsafe { AsyncFd::register(ring) }.map_err(|e| DaemonError::Io {
        what: "watching the event ring buffer",
        source: e.into(),
    })?;
    let io = |what| move |source| DaemonError::Io { what, source };
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            guard = fd.readable_mut() => {
                let mut guard = guard.map_err(io("reading events"))?;
                let ring = guard.get_inner_mut();
                while let Some(item) = ring.next() {
                    if let Some(ev) = VerdictEvent::decode(&item) {
                        println!("{ev}");
                    }
                }
                guard.clear_ready();
            }
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}
