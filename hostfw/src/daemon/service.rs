//! The daemon's state machine: what is enforced, the confirmed policy, the
//! pending trial, and the transitions between them (apply, confirm,
//! rollback, expiry, reload). Every transition goes through the same
//! path: lower → preflight → compile → atomic switch → persist.

mod cluster;

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use super::{
    preflight,
    store::{Snapshot, Sources, Store, TrialRecord},
};
use crate::{
    config::Config,
    control::{InterfaceStatus, MapUsage, PolicyStatus, Status, TrialStatus},
    datapath::{
        Datapath,
        attach::{Attachment, TcAttach, XdpAttach},
        writer::Switch,
    },
    duration, mapstate,
    policy::{Lowered, Selection},
    ruleset::Mode,
    source,
};

/// What the kernel enforces now.
struct Active {
    snapshot: Snapshot,
    lowered: Lowered,
    revision: u32,
}

/// Counts for metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct Events {
    /// Reloads that applied.
    pub reloads_ok: u64,
    /// Reloads refused (the running policy stayed).
    pub reloads_failed: u64,
    /// Trials started.
    pub trials_started: u64,
    /// Trials confirmed.
    pub trials_confirmed: u64,
    /// Trials reverted (rollback, expiry, or at start).
    pub trials_reverted: u64,
}

/// The daemon's state.
pub struct Service {
    config_path: PathBuf,
    cfg: Config,
    store: Store,
    dp: Datapath,
    active: Option<Active>,
    confirmed: Snapshot,
    trial: Option<TrialRecord>,
    last_error: Option<String>,
    attachments: BTreeMap<String, Attachment>,
    cluster: cluster::ClusterState,
    events: Events,
    conntrack_used: u64,
}

/// A request the service refused; the running policy is unchanged.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Audit => "audit",
        Mode::Enforce => "enforce",
    }
}

fn source_name(s: &Sources) -> String {
    match s {
        Sources::Configured => "configured paths".into(),
        Sources::Files(files) => {
            let names: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
            format!("files {}", names.join(", "))
        }
    }
}

impl Service {
    /// Starts from the persisted state: the confirmed policy (or the
    /// configured paths on a fresh install), then a pending trial if its
    /// deadline has not passed (one that expired while the daemon was down
    /// is reverted here, and the journal says so).
    pub fn start(
        config_path: PathBuf,
        cfg: Config,
        store: Store,
        dp: Datapath,
    ) -> Result<Self, Refused> {
        let confirmed = store
            .confirmed()
            .map_err(|e| Refused(e.to_string()))?
            .unwrap_or(Snapshot {
                sources: Sources::Configured,
                mode: cfg.mode,
                cluster: None,
            });
        let pending = store.trial().map_err(|e| Refused(e.to_string()))?;
        let mut svc = Self {
            config_path,
            cfg,
            store,
            dp,
            active: None,
            confirmed: confirmed.clone(),
            trial: None,
            last_error: None,
            attachments: BTreeMap::new(),
            cluster: cluster::ClusterState::default(),
            events: Events::default(),
            conntrack_used: 0,
        };
        svc.enforce(&confirmed, None, true, None)?;
        if let Some(t) = pending {
            match t.remaining() {
                Some(left) => {
                    log::info!(
                        "resuming the trial of {} ({} left)",
                        source_name(&t.snapshot.sources),
                        duration::format(left)
                    );
                    svc.enforce(&t.snapshot, Some(left), true, None)?;
                }
                None => {
                    log::warn!(
                        "trial of {} expired while hostfw was not running: reverted to the confirmed policy",
                        source_name(&t.snapshot.sources)
                    );
                    svc.events.trials_reverted += 1;
                    svc.store
                        .clear_trial()
                        .map_err(|e| Refused(e.to_string()))?;
                }
            }
        }
        Ok(svc)
    }

    /// The datapath, for attaching and reading.
    pub fn datapath(&mut self) -> &mut Datapath {
        &mut self.dp
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Records an attachment for status.
    pub fn attached(&mut self, a: Attachment) {
        self.attachments.insert(a.ifname.clone(), a);
    }

    /// Forgets an interface that went away.
    pub fn detached(&mut self, ifname: &str) {
        self.attachments.remove(ifname);
    }

    /// Counts for metrics.
    #[must_use]
    pub fn events(&self) -> Events {
        self.events
    }

    /// The policy in force, lowered (for trace and metrics).
    #[must_use]
    pub fn lowered(&self) -> Option<&Lowered> {
        self.active.as_ref().map(|a| &a.lowered)
    }

    /// Lowers, checks and enforces `snap`: confirmed (`trial == None`) or
    /// as a trial. `force` skips the lockout preflight; `caller` is the
    /// requester's `SSH_CONNECTION`.
    fn enforce(
        &mut self,
        snap: &Snapshot,
        trial: Option<Duration>,
        force: bool,
        caller: Option<&str>,
    ) -> Result<String, Refused> {
        let lowered = source::lower_snapshot(&self.cfg, snap).map_err(|errors| {
            Refused(format!(
                "the policy does not validate; nothing changed:\n{}",
                errors.join("\n")
            ))
        })?;
        if !force {
            preflight::check(&lowered.rules, caller).map_err(Refused)?;
        }
        let state = mapstate::compile(&lowered.rules).map_err(|e| Refused(e.to_string()))?;
        let switch = match trial {
            Some(duration) => Switch::Trial { duration },
            None => Switch::Confirmed,
        };
        let applied = self
            .dp
            .apply(&state, switch)
            .map_err(|e| Refused(format!("nothing changed: {e}")))?;
        source::log_report(&lowered);
        let what = format!(
            "{} in {} mode, revision {} ({} rules, {} map changes in {:?})",
            source_name(&snap.sources),
            mode_name(snap.mode),
            applied.revision,
            lowered.rules.rules.len(),
            applied.changes,
            applied.took
        );
        self.active = Some(Active {
            snapshot: snap.clone(),
            lowered,
            revision: applied.revision,
        });
        let persisted = match trial {
            Some(d) => {
                let record = TrialRecord::new(snap.clone(), d);
                let r = self.store.save_trial(&record);
                self.trial = Some(record);
                self.events.trials_started += 1;
                r
            }
            None => {
                self.confirmed = snap.clone();
                self.trial = None;
                self.store
                    .save_confirmed(snap)
                    .and_then(|()| self.store.clear_trial())
            }
        };
        if let Err(e) = persisted {
            log::error!("applied, but the state could not be saved: {e}");
        }
        Ok(match trial {
            Some(d) => format!(
                "trial applied: {what}; reverts in {} unless confirmed (hostfw confirm)",
                duration::format(d)
            ),
            None => format!("applied: {what}"),
        })
    }

    /// `hostfw apply`.
    pub fn apply(
        &mut self,
        files: Option<Vec<crate::daemon::store::SourceFile>>,
        trial: Option<Duration>,
        force: bool,
        caller: Option<&str>,
    ) -> Result<String, Refused> {
        let snap = Snapshot {
            sources: files.map_or(Sources::Configured, Sources::Files),
            mode: self.current_mode(),
            cluster: self.current_cluster(),
        };
        let msg = self.enforce(&snap, trial, force, caller)?;
        log::info!("{msg}");
        Ok(msg)
    }

    /// `hostfw mode`: enforce is a trial (of the configured default length
    /// unless given), audit is confirmed at once unless a trial is asked.
    pub fn set_mode(
        &mut self,
        mode: Mode,
        trial: Option<Duration>,
        force: bool,
        caller: Option<&str>,
    ) -> Result<String, Refused> {
        let trial = match (mode, trial) {
            (Mode::Enforce, None) => Some(
                duration::parse(&self.cfg.trial.default)
                    .map_err(|e| Refused(format!("[trial] default: {e}")))?,
            ),
            (_, t) => t,
        };
        let sources = self
            .active
            .as_ref()
            .map_or(Sources::Configured, |a| a.snapshot.sources.clone());
        let snap = Snapshot {
            sources,
            mode,
            cluster: self.current_cluster(),
        };
        let msg = self.enforce(&snap, trial, force, caller)?;
        log::info!("{msg}");
        Ok(msg)
    }

    fn current_mode(&self) -> Mode {
        self.active
            .as_ref()
            .map_or(self.cfg.mode, |a| a.snapshot.mode)
    }

    /// `hostfw confirm`.
    pub fn confirm(&mut self) -> Result<String, Refused> {
        let Some(t) = self.trial.take() else {
            return Err(Refused("no trial is pending".into()));
        };
        self.dp.confirm().map_err(|e| Refused(e.to_string()))?;
        self.confirmed = t.snapshot.clone();
        if let Err(e) = self
            .store
            .save_confirmed(&t.snapshot)
            .and_then(|()| self.store.clear_trial())
        {
            log::error!("confirmed, but the state could not be saved: {e}");
        }
        self.events.trials_confirmed += 1;
        let msg = format!("confirmed: {}", source_name(&t.snapshot.sources));
        log::info!("{msg}");
        self.cluster_after_trial(&t.snapshot, true);
        Ok(msg)
    }

    /// `hostfw rollback`, and the trial timer.
    pub fn rollback(&mut self, why: &str) -> Result<String, Refused> {
        let Some(t) = self.trial.take() else {
            return Err(Refused("no trial is pending".into()));
        };
        self.dp.rollback().map_err(|e| Refused(e.to_string()))?;
        let confirmed = self.confirmed.clone();
        let lowered = source::lower_snapshot(&self.cfg, &confirmed).ok();
        if let (Some(lowered), Ok(meta)) = (lowered, self.dp.slot_state()) {
            let revision = match meta {
                crate::datapath::writer::SlotState::Confirmed { generation } => self
                    .dp
                    .gen_meta(generation)
                    .map(|m| m.revision)
                    .unwrap_or(0),
                _ => 0,
            };
            self.active = Some(Active {
                snapshot: confirmed,
                lowered,
                revision,
            });
        }
        if let Err(e) = self.store.clear_trial() {
            log::error!("reverted, but the trial record could not be removed: {e}");
        }
        self.events.trials_reverted += 1;
        let msg = format!(
            "trial of {} reverted ({why}): the confirmed policy is in force",
            source_name(&t.snapshot.sources)
        );
        log::warn!("{msg}");
        self.cluster_after_trial(&t.snapshot, false);
        Ok(msg)
    }

    /// Time until the pending trial reverts.
    #[must_use]
    pub fn trial_remaining(&self) -> Option<Duration> {
        self.trial
            .as_ref()
            .map(|t| t.remaining().unwrap_or_default())
    }

    /// Reverts the trial once its deadline has passed (the kernel already
    /// did; this makes it official and persistent).
    pub fn tick(&mut self) {
        if self.trial_remaining() == Some(Duration::ZERO)
            && let Err(e) = self.rollback("deadline passed")
        {
            log::error!("reverting the expired trial: {e}");
        }
    }

    /// SIGHUP or a file change: re-read the configuration and re-lower the
    /// confirmed policy. A broken file leaves the running policy in force
    /// and is reported in `status`. Not while a trial is pending.
    pub fn reload(&mut self, why: &str) {
        if self.trial.is_some() {
            let msg =
                format!("{why}: reload deferred: a trial is pending (confirm or roll back first)");
            log::warn!("{msg}");
            self.last_error = Some(msg);
            return;
        }
        let result = Config::load(&self.config_path)
            .map_err(|e| Refused(e.to_string()))
            .and_then(|cfg| {
                let previous = std::mem::replace(&mut self.cfg, cfg);
                let confirmed = self.confirmed.clone();
                let r = self.enforce(&confirmed, None, true, None);
                if r.is_err() {
                    self.cfg = previous;
                }
                r
            });
        match result {
            Ok(msg) => {
                log::info!("{why}: reloaded: {msg}");
                self.last_error = None;
                self.events.reloads_ok += 1;
            }
            Err(e) => {
                log::error!("{why}: reload refused, the running policy stays: {e}");
                self.last_error = Some(e.0);
                self.events.reloads_failed += 1;
            }
        }
    }

    /// Re-lowers the enforced policy after the node's addresses changed
    /// (entity `host`), keeping a pending trial a trial.
    pub fn addresses_changed(&mut self) {
        let Some(active) = &self.active else { return };
        let snap = active.snapshot.clone();
        let r = match self.trial_remaining() {
            Some(left) if left > Duration::ZERO => self.enforce(&snap, Some(left), true, None),
            _ => self.enforce(&snap, None, true, None),
        };
        if let Err(e) = r {
            log::error!("addresses changed, but the policy could not follow: {e}");
        }
    }

    /// Counts the connection tracker's entries (a walk of the map) for
    /// status and metrics, and warns when it is nearly full.
    pub fn sample_conntrack(&mut self) {
        match self.dp.conntrack_entries() {
            Ok(n) => {
                let cap = u64::from(self.dp.sizes().conntrack);
                if n * 10 >= cap * 9 && self.conntrack_used * 10 < cap * 9 {
                    log::warn!(
                        "connection tracking is {}% full ({n} of {cap}); the oldest flows are evicted and then evaluated again",
                        n * 100 / cap.max(1)
                    );
                }
                self.conntrack_used = n;
            }
            Err(e) => log::warn!("counting connection-tracking entries: {e}"),
        }
    }

    /// What the metrics endpoint serves.
    #[must_use]
    pub fn metrics(&self) -> crate::metrics::Snapshot {
        let status = self.status();
        let mut rules = Vec::new();
        if let (Some(active), Ok(cfg)) = (&self.active, self.dp.config()) {
            let max = active
                .lowered
                .rules
                .rules
                .iter()
                .map(|r| r.id)
                .max()
                .unwrap_or(0);
            if let Ok(counts) = self.dp.rule_counts(cfg.active(), max) {
                for (id, packets) in counts {
                    let origin = active.lowered.report.origin(id);
                    rules.push(crate::metrics::RuleSample {
                        policy: origin.and_then(|o| o.policy.clone()),
                        rule: origin.map_or_else(|| format!("rule {id}"), |o| o.rule.clone()),
                        packets,
                    });
                }
            }
        }
        crate::metrics::Snapshot {
            counters: self
                .dp
                .counters()
                .map(|c| c.iter().collect())
                .unwrap_or_default(),
            rules,
            interfaces: status
                .interfaces
                .iter()
                .map(|i| {
                    let c = nix::net::if_::if_nametoindex(i.name.as_str())
                        .ok()
                        .and_then(|ix| self.dp.interface_counters(ix).ok())
                        .unwrap_or_default();
                    crate::metrics::InterfaceSample {
                        name: i.name.clone(),
                        xdp: i.xdp.clone(),
                        tc: i.tc.clone(),
                        passed: c.passed,
                        dropped: c.dropped,
                        audited: c.audited,
                    }
                })
                .collect(),
            conntrack_entries: self.conntrack_used,
            conntrack_capacity: u64::from(self.dp.sizes().conntrack),
            reloads_ok: self.events.reloads_ok,
            reloads_failed: self.events.reloads_failed,
            trials_started: self.events.trials_started,
            trials_confirmed: self.events.trials_confirmed,
            trials_reverted: self.events.trials_reverted,
            policy_revision: status.revision,
            mode_enforce: status.mode == "enforce",
            kubernetes: status.kubernetes.clone(),
        }
    }

    /// `hostfw status`.
    #[must_use]
    pub fn status(&self) -> Status {
        let (mode, revision, source, policies, dd_in, dd_out) = match &self.active {
            Some(a) => (
                mode_name(a.snapshot.mode).to_string(),
                a.revision,
                source_name(&a.snapshot.sources),
                a.lowered
                    .report
                    .policies
                    .iter()
                    .map(|p| PolicyStatus {
                        name: p.name.clone(),
                        file: p.file.display().to_string(),
                        selection: match &p.selection {
                            Selection::Selected => "selected".into(),
                            Selection::NotSelected { reason } => format!("not selected: {reason}"),
                            Selection::Skipped { reason } => format!("skipped: {reason}"),
                        },
                        rules: p.rule_ids.len(),
                    })
                    .collect(),
                a.lowered.rules.default_deny_ingress,
                a.lowered.rules.default_deny_egress,
            ),
            None => ("audit".into(), 0, "none".into(), Vec::new(), false, false),
        };
        let trial = self.trial.as_ref().map(|t| TrialStatus {
            remaining_secs: t.remaining().map_or(0, |d| d.as_secs()),
            mode: mode_name(t.snapshot.mode).into(),
            source: source_name(&t.snapshot.sources),
        });
        let interfaces = self
            .attachments
            .values()
            .map(|a| InterfaceStatus {
                name: a.ifname.clone(),
                xdp: match a.xdp {
                    XdpAttach::Native => "native".into(),
                    XdpAttach::Generic => "generic".into(),
                },
                tc: match a.tc {
                    TcAttach::Tcx => "tcx".into(),
                    TcAttach::Clsact => "clsact".into(),
                },
                pinned: a.pinned,
            })
            .collect();
        let failsafe = self
            .cfg
            .failsafe
            .inbound
            .iter()
            .map(|f| ("inbound", f))
            .chain(self.cfg.failsafe.outbound.iter().map(|f| ("outbound", f)))
            .map(|(dir, f)| match f.cidr {
                Some(c) => format!("{dir} {}/{} from {c}", f.protocol, f.port),
                None => format!("{dir} {}/{}", f.protocol, f.port),
            })
            .collect();
        let counters = self
            .dp
            .counters()
            .map(|c| c.iter().map(|(n, v)| (n.to_string(), v)).collect())
            .unwrap_or_default();
        Status {
            mode,
            revision,
            source,
            trial,
            interfaces,
            policies,
            default_deny_ingress: dd_in,
            default_deny_egress: dd_out,
            failsafe,
            last_error: self.last_error.clone(),
            conntrack: MapUsage {
                used: self.conntrack_used,
                capacity: u64::from(self.dp.sizes().conntrack),
            },
            counters,
            kubernetes: self.cluster_status(),
        }
    }
}
