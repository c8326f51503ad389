//! `hostfw daemon`: load, attach to the managed interfaces, enforce the
//! policy, serve the control socket, report verdicts until stopped.

mod control_server;
pub mod memory;
mod notify;
pub mod preflight;
pub mod service;
pub mod store;
mod watch;

use std::{path::PathBuf, time::Duration};

use aya::maps::{MapData, RingBuf};
use hostfw_common::names::MAP_EVENTS;
use tokio::{io::unix::AsyncFd, signal::unix::SignalKind};

use crate::{
    config::Config,
    control::{Request, Response},
    datapath::{
        Datapath, DatapathError, LoadOptions,
        attach::{Attachment, XdpState},
        events::VerdictEvent,
    },
    duration,
    ruleset::Mode,
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
    /// State directory (confirmed policy, pending trial).
    pub state_dir: PathBuf,
    /// Control socket.
    pub socket: PathBuf,
}

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The policy could not be enforced.
    #[error("policy: {0}")]
    Policy(String),
    /// Kernel side.
    #[error(transparent)]
    Datapath(#[from] DatapathError),
    /// The control socket cannot be served.
    #[error(transparent)]
    ControlSocket(#[from] control_server::SocketError),
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

/// Names of the interfaces the configuration manages, sorted. Asked of
/// the kernel over netlink: `/sys/class/net` shows the interfaces of the
/// namespace that mounted sysfs, which need not be this one.
pub async fn managed_interfaces(cfg: &Config) -> Result<Vec<String>, DaemonError> {
    let links = crate::netwatch::snapshot()
        .await
        .map_err(|e| DaemonError::Io {
            what: "listing interfaces",
            source: std::io::Error::other(e.to_string()),
        })?;
    let mut names: Vec<String> = links
        .into_iter()
        .map(|l| l.name)
        .filter(|n| cfg.interfaces.manages(n))
        .collect();
    names.sort();
    Ok(names)
}

/// Runs the daemon until SIGINT or SIGTERM.
pub async fn run(opts: DaemonOptions) -> Result<(), DaemonError> {
    let mut detach_on_exit = opts.detach_on_exit;
    // Signals first: a Ctrl-C during attach must still detach cleanly.
    let io = |what| move |source| DaemonError::Io { what, source };
    let mut term = tokio::signal::unix::signal(SignalKind::terminate()).map_err(io("SIGTERM"))?;
    let mut int = tokio::signal::unix::signal(SignalKind::interrupt()).map_err(io("SIGINT"))?;
    let mut hup = tokio::signal::unix::signal(SignalKind::hangup()).map_err(io("SIGHUP"))?;
    let store = store::Store::new(&opts.state_dir);
    let (cfg, config_problem) = load_config(&opts.config, &store)?;
    let control_group = cfg.control.resolve(&opts.config)?;
    let dp = Datapath::load(&LoadOptions {
        pin_root: opts.pin_root.clone(),
        sizes: crate::datapath::MapSizes {
            conntrack_established: cfg.conntrack.established,
            conntrack_new: cfg.conntrack.new,
            ..crate::datapath::MapSizes::default()
        },
    })?;
    let mut svc = service::Service::start(opts.config.clone(), cfg, store, dp, config_problem)
        .map_err(|e| DaemonError::Policy(e.0))?;
    let mut status_line = svc.status_line();
    notify::status(&status_line);
    let mut cluster = start_cluster(&mut svc).await;
    let ifaces = managed_interfaces(svc.config()).await?;
    if ifaces.is_empty() {
        log::warn!("no interface matches [interfaces] include/exclude: nothing is filtered");
    }
    for ifname in &ifaces {
        match svc.datapath().attach(ifname) {
            Ok(a) => record_attachment(&mut svc, a, "attached"),
            Err(e) => log::error!("{ifname}: not attached: {e}"),
        }
    }
    seed_conntrack(&mut svc);
    let (_watcher, mut net) =
        crate::netwatch::Watcher::start()
            .await
            .map_err(|e| DaemonError::Io {
                what: "watching interfaces",
                source: std::io::Error::other(e.to_string()),
            })?;
    let metrics_text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let _metrics = start_metrics(&svc.config().metrics.listen, metrics_text.clone()).await;
    let mut metrics_tick = tokio::time::interval(Duration::from_secs(2));
    let mut conntrack_tick = tokio::time::interval(Duration::from_secs(10));
    let mut watch = watch::Watch::new(&opts.config, &svc.config().policies.paths)
        .map_err(io("watching the configuration"))?;
    let mut reload_at: Option<tokio::time::Instant> = None;
    // Files are read and parsed off the loop, one job at a time; a reload
    // asked for meanwhile runs after it, applies of the configured paths
    // wait their turn.
    let mut job: JobSlot = None;
    let mut reload_again: Option<String> = None;
    let mut applies: std::collections::VecDeque<Waiting> = std::collections::VecDeque::new();
    let (tx, mut requests) = tokio::sync::mpsc::channel(16);
    let recorder = std::sync::Arc::new(crate::observe::Recorder::new(
        crate::observe::Recorder::DEFAULT_CAPACITY,
    ));
    let mut ifnames = crate::observe::IfNames::new();
    let mut limiter = crate::observe::LogLimiter::new(20, 100);
    let server = control_server::serve(&opts.socket, control_group, tx, recorder.clone())?;
    let mut events = event_stream(svc.datapath())?;
    notify::ready();
    notify::status(&status_line);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let watchdog = notify::watchdog_interval();
    let mut watchdog_tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    log::info!("ready; control socket {}", opts.socket.display());
    let result = loop {
        tokio::select! {
            _ = term.recv() => break Ok(()),
            _ = int.recv() => break Ok(()),
            _ = hup.recv() => {
                reload_again = Some("SIGHUP".into());
                next_job(&mut svc, &mut job, &mut applies, &mut reload_again);
            }
            changed = watch.changed() => {
                if let Err(e) = changed {
                    log::error!("watching the configuration: {e}");
                }
                // Let a burst of writes settle before reloading once.
                reload_at = Some(tokio::time::Instant::now() + Duration::from_millis(300));
            }
            () = async { if let Some(t) = reload_at { tokio::time::sleep_until(t).await } }, if reload_at.is_some() => {
                reload_at = None;
                reload_again.get_or_insert_with(|| "file change".into());
                next_job(&mut svc, &mut job, &mut applies, &mut reload_again);
            }
            done = async {
                match job.as_mut() {
                    Some((_, handle)) => handle.await,
                    None => std::future::pending().await,
                }
            }, if job.is_some() => {
                let prepared = done.unwrap_or_else(|e| {
                    Err(service::Refused(format!("reading the policy files failed: {e}")))
                });
                if let Some((waiting, _)) = job.take() {
                    finish_job(&mut svc, waiting, prepared);
                }
                next_job(&mut svc, &mut job, &mut applies, &mut reload_again);
            }
            Some((req, reply)) = requests.recv() => {
                if let Request::Stop { detach } = req {
                    // What happens is what this daemon will do at exit: a
                    // daemon run with --detach-on-exit detaches either way.
                    detach_on_exit |= detach;
                    let _ = reply.send(Response {
                        ok: true,
                        message: if detach_on_exit {
                            "stopping; detaching from every interface".into()
                        } else {
                            "stopping; the last policy stays enforced".into()
                        },
                        status: None,
                        data: None,
                    });
                    break Ok(());
                }
                let answer = match req {
                    Request::Suggest { since_ms } => suggest(&svc, &recorder, since_ms),
                    Request::Apply { files: None, trial_ms, force, ssh_connection } => {
                        applies.push_back(Waiting::Apply {
                            trial: trial_ms.map(Duration::from_millis),
                            force,
                            caller: ssh_connection,
                            reply,
                        });
                        next_job(&mut svc, &mut job, &mut applies, &mut reload_again);
                        continue;
                    }
                    req => handle(&mut svc, req),
                };
                let _ = reply.send(answer);
                // A confirm or a rollback lets a deferred reload run.
                next_job(&mut svc, &mut job, &mut applies, &mut reload_again);
            }
            _ = tick.tick() => {
                svc.tick();
                next_job(&mut svc, &mut job, &mut applies, &mut reload_again);
                limiter.log_flush(std::time::Instant::now());
                let line = svc.status_line();
                if line != status_line {
                    notify::status(&line);
                    status_line = line;
                }
            }
            _ = conntrack_tick.tick() => svc.sample_conntrack(),
            _ = metrics_tick.tick() => {
                let text = crate::metrics::render(&svc.metrics());
                if let Ok(mut m) = metrics_text.lock() {
                    *m = text;
                }
            }
            Some(view) = async {
                match cluster.as_mut() {
                    Some(c) => c.views.recv().await,
                    None => std::future::pending().await,
                }
            } => svc.cluster_changed(view),
            Some(ev) = net.recv() => {
                ifnames.clear();
                on_net_event(&mut svc, ev);
            }
            _ = watchdog_tick.tick(), if watchdog.is_some() => notify::watchdog(),
            guard = events.readable_mut() => {
                let mut guard = guard.map_err(io("reading events"))?;
                let ring = guard.get_inner_mut();
                let now = std::time::Instant::now();
                while let Some(item) = ring.next() {
                    if let Some(ev) = VerdictEvent::decode(&item) {
                        let flow = crate::observe::enrich(&ev, svc.lowered(), &mut ifnames);
                        if flow.is_drop_or_audit() {
                            limiter.log_flow(&flow, now);
                        }
                        recorder.record(flow);
                    }
                }
                guard.clear_ready();
            }
        }
    };
    server.abort();
    let _ = std::fs::remove_file(&opts.socket);
    let attached: Vec<String> = svc
        .status()
        .interfaces
        .into_iter()
        .map(|i| i.name)
        .collect();
    drop(svc);
    if detach_on_exit {
        for ifname in &attached {
            if let Err(e) = crate::datapath::attach::detach_netlink(&opts.pin_root, ifname) {
                log::error!("detach from {ifname}: {e}");
            }
        }
        match Datapath::remove_all(&opts.pin_root) {
            Ok(()) if attached.is_empty() => log::info!("removed the pins"),
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

/// The configuration to start with: the file, or, when it does not load,
/// the copy of the last one that did (with the error to report), so that
/// a typo in `hostfw.toml` before a reboot does not leave the node open.
/// Without a copy, the error stops the daemon.
fn load_config(
    path: &std::path::Path,
    store: &store::Store,
) -> Result<(Config, Option<String>), DaemonError> {
    match Config::load_with_text(path) {
        Ok((cfg, text)) => {
            if let Err(e) = store.save_config(&text) {
                log::warn!("keeping a copy of the configuration: {e}");
            }
            Ok((cfg, None))
        }
        Err(e) => {
            let saved = store.config_text().ok().flatten();
            match saved.map(|text| Config::from_text(&text, path)) {
                Some(Ok(cfg)) => Ok((
                    cfg,
                    Some(format!(
                        "{e}; running with the last configuration that loaded ({}); fix the \
                         file and reload",
                        store.dir().join(store::LAST_CONFIG).display()
                    )),
                )),
                _ => Err(e.into()),
            }
        }
    }
}

/// Starts the Kubernetes source if `[kubernetes]` is configured. A source
/// that cannot start (an unreadable kubeconfig) is reported in `status`
/// and the journal; the daemon runs on with the files and the cluster data
/// it last enforced.
async fn start_cluster(svc: &mut service::Service) -> Option<crate::kubernetes::Source> {
    let k = svc.config().kubernetes.clone()?;
    let node = svc.config().node_name();
    match crate::kubernetes::start(&k, node.clone()).await {
        Ok(source) => {
            svc.cluster_source(source.status.clone());
            Some(source)
        }
        Err(e) => {
            log::error!("{e}; enforcing the files and the cluster data last enforced");
            let status = crate::control::KubeStatus {
                node,
                state: "failed".into(),
                last_error: Some(e),
                ..crate::control::KubeStatus::default()
            };
            svc.cluster_source(std::sync::Arc::new(std::sync::Mutex::new(status)));
            None
        }
    }
}

/// Serves the metrics text on the configured loopback address; without it
/// (a bad address), the daemon runs on and says why.
async fn start_metrics(
    listen: &str,
    text: std::sync::Arc<std::sync::Mutex<String>>,
) -> Option<tokio::task::JoinHandle<()>> {
    let server = match crate::metrics::listen_addr(listen) {
        Ok(addr) => crate::metrics::MetricsServer::bind(addr).await,
        Err(e) => Err(e),
    };
    match server {
        Ok(server) => {
            log::info!("metrics on http://{}/metrics", server.local_addr());
            Some(tokio::spawn(server.serve(move || {
                text.lock().map(|t| t.clone()).unwrap_or_default()
            })))
        }
        Err(e) => {
            log::error!("[metrics] listen: {e}; no metrics endpoint");
            None
        }
    }
}

/// Seeds connection tracking from the established TCP sockets, so that
/// replies of connections opened before hostfw started are replies.
fn seed_conntrack(svc: &mut service::Service) {
    let conns = match crate::sockdiag::established() {
        Ok(c) => c,
        Err(e) => {
            log::warn!("cannot list established connections to seed connection tracking: {e}");
            return;
        }
    };
    let ports: Vec<u16> = match crate::sockdiag::listeners() {
        Ok(l) => l.iter().map(|l| l.local.port()).collect(),
        Err(e) => {
            log::warn!("cannot list listening sockets to seed connection tracking: {e}");
            return;
        }
    };
    match svc.datapath().seed_conntrack(&conns, &ports) {
        Ok(n) => log::info!("connection tracking: {n} established connections seeded"),
        Err(e) => log::warn!("seeding connection tracking: {e}"),
    }
}

/// Logs an attachment and records it for status; warns once (not again
/// while it stays so) when another program runs at XDP there.
fn record_attachment(svc: &mut service::Service, a: Attachment, what: &str) {
    log::info!("{what} {a}");
    let warn = match &a.xdp {
        XdpState::Foreign { prog_id, name } => Some(format!(
            "{}: another XDP program (id {prog_id}, name {name:?}) is attached; hostfw \
             leaves it in place and enforces at TC only (no XDP drops there). Detach \
             that program (ip link set dev {} xdp off) or exclude the interface in \
             [interfaces] of the configuration",
            a.ifname, a.ifname
        )),
        XdpState::Hostfw(_) => None,
    };
    let xdp = a.xdp.clone();
    let before = svc.attached(a);
    if let Some(w) = warn
        && before.is_none_or(|b| b.xdp != xdp)
    {
        log::warn!("{w}");
    }
}

/// A link appeared or went away, or addresses changed.
fn on_net_event(svc: &mut service::Service, ev: crate::netwatch::NetEvent) {
    use crate::netwatch::NetEvent;
    match ev {
        NetEvent::LinkAdded { name, .. } if svc.config().interfaces.manages(&name) => {
            match svc.datapath().attach(&name) {
                Ok(a) => record_attachment(svc, a, "new interface: attached"),
                Err(e) => log::error!("new interface {name}: not attached: {e}"),
            }
        }
        NetEvent::LinkAdded { .. } => {}
        NetEvent::LinkRemoved { name, .. } => {
            log::info!("interface {name} went away");
            svc.detached(&name);
        }
        NetEvent::AddressesChanged => svc.addresses_changed(),
    }
}

/// `hostfw suggest`: a CCNP allowing what was seen denied or audited.
fn suggest(
    svc: &service::Service,
    recorder: &crate::observe::Recorder,
    since_ms: Option<u64>,
) -> Response {
    let since =
        since_ms.and_then(|ms| std::time::SystemTime::now().checked_sub(Duration::from_millis(ms)));
    let mut ctx = crate::observe::SuggestContext::from_config(
        svc.config(),
        &crate::source::interface_addresses(),
    );
    ctx.notes = recorder.seen_notes();
    Response {
        ok: true,
        message: crate::observe::suggest(&recorder.seen(since), &ctx),
        status: None,
        data: None,
    }
}

/// Work waiting for (or in) the off-loop reading of policy files.
enum Waiting {
    /// A reload (SIGHUP, a file change), and why.
    Reload(String),
    /// `hostfw apply` of the configured paths.
    Apply {
        trial: Option<Duration>,
        force: bool,
        caller: Option<String>,
        reply: tokio::sync::oneshot::Sender<Response>,
    },
}

type JobSlot = Option<(
    Waiting,
    tokio::task::JoinHandle<Result<service::Prepared, service::Refused>>,
)>;

/// Starts the next reading job if none runs: a waiting apply first, then a
/// reload (asked for, or deferred by a trial that has ended since).
fn next_job(
    svc: &mut service::Service,
    slot: &mut JobSlot,
    applies: &mut std::collections::VecDeque<Waiting>,
    reload: &mut Option<String>,
) {
    if let Some(why) = svc.take_deferred() {
        reload.get_or_insert(why);
    }
    while slot.is_none() {
        let (waiting, job) = if let Some(w) = applies.pop_front() {
            (w, svc.apply_job())
        } else if let Some(why) = reload.take() {
            match svc.reload_job(&why) {
                Some(job) => (Waiting::Reload(why), job),
                None => continue,
            }
        } else {
            return;
        };
        *slot = Some((waiting, tokio::task::spawn_blocking(move || job.run())));
    }
}

/// Enforces what a job read.
fn finish_job(
    svc: &mut service::Service,
    waiting: Waiting,
    prepared: Result<service::Prepared, service::Refused>,
) {
    match waiting {
        Waiting::Reload(why) => svc.reload_prepared(&why, prepared),
        Waiting::Apply {
            trial,
            force,
            caller,
            reply,
        } => {
            let check = service::Preflight::from_request(force, caller.as_deref());
            let r = svc.apply_prepared(prepared, trial, check);
            let _ = reply.send(respond(svc, r));
        }
    }
}

/// Carries out one control request.
fn handle(svc: &mut service::Service, req: Request) -> Response {
    let ms = |v: Option<u64>| v.map(Duration::from_millis);
    let result = match req {
        Request::Status => Ok(String::new()),
        Request::Apply {
            files,
            trial_ms,
            force,
            ssh_connection,
        } => svc.apply(
            files.unwrap_or_default(),
            ms(trial_ms),
            service::Preflight::from_request(force, ssh_connection.as_deref()),
        ),
        Request::Confirm => svc.confirm(),
        Request::Trace {
            direction,
            peer,
            proto,
            port,
            icmp_type,
        } => {
            let direction = if direction == "egress" {
                crate::ruleset::Direction::Egress
            } else {
                crate::ruleset::Direction::Ingress
            };
            let q = crate::trace::TraceQuery {
                direction,
                peer,
                proto,
                port,
                icmp_type,
            };
            return match svc.lowered() {
                Some(lowered) => {
                    let t = crate::trace::trace(lowered, &q);
                    Response {
                        ok: true,
                        message: t.render(&q),
                        status: None,
                        data: serde_json::to_value(&t).ok(),
                    }
                }
                None => Response {
                    ok: false,
                    message: svc.unknown_policy(),
                    status: None,
                    data: None,
                },
            };
        }
        Request::Stop { .. } | Request::Observe { .. } | Request::Suggest { .. } => {
            Ok(String::new())
        }
        Request::Rollback => svc.rollback("hostfw rollback"),
        Request::Mode {
            mode,
            trial_ms,
            force,
            ssh_connection,
        } => {
            let check = service::Preflight::from_request(force, ssh_connection.as_deref());
            match mode.as_str() {
                "audit" => svc.set_mode(Mode::Audit, ms(trial_ms), check),
                "enforce" => svc.set_mode(Mode::Enforce, ms(trial_ms), check),
                other => Err(service::Refused(format!(
                    "unknown mode {other:?}: expected audit or enforce"
                ))),
            }
        }
    };
    respond(svc, result)
}

/// A request's answer, with the state afterwards.
fn respond(svc: &service::Service, result: Result<String, service::Refused>) -> Response {
    let (ok, message) = match result {
        Ok(m) => (true, m),
        Err(e) => (false, e.0),
    };
    Response {
        ok,
        message,
        status: Some(svc.status()),
        data: None,
    }
}

/// The event ring buffer, readable from tokio.
fn event_stream(dp: &mut Datapath) -> Result<AsyncFd<RingBuf<MapData>>, DaemonError> {
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
    unsafe { AsyncFd::register(ring) }.map_err(|e| DaemonError::Io {
        what: "watching the event ring buffer",
        source: e.into(),
    })
}

/// The configured default trial, for messages.
#[must_use]
pub fn default_trial(cfg: &Config) -> Option<Duration> {
    duration::parse(&cfg.trial.default).ok()
}
