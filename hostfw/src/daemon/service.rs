//! The daemon's state machine: what is enforced, the confirmed policy, the
//! pending trial, and the transitions between them (start, apply, confirm,
//! rollback, expiry, reload). Every transition goes through the same path:
//! lower → preflight → compile → save → atomic switch. A change whose
//! record cannot be saved is not made; a revert restores the confirmed
//! policy as it was enforced (kept in memory and on disk as its text),
//! never as the files say now.

mod cluster;
mod start;

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use super::{
    preflight,
    store::{Origin, Snapshot, Store, TrialRecord},
};
use crate::{
    config::Config,
    control::{ForeignXdp, InterfaceStatus, PolicyStatus, Status, TrialStatus},
    datapath::{
        Datapath,
        attach::{Attachment, TcAttach, XdpAttach, XdpState},
        writer::Switch,
    },
    duration, mapstate,
    policy::{Lowered, Selection, SourceFile},
    ruleset::Mode,
    source,
};

/// A policy the kernel enforces (or holds as the fallback of a trial).
#[derive(Clone)]
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
    /// The confirmed policy the kernel's confirmed generation holds;
    /// `None` when this daemon does not know it (the pinned programs of an
    /// earlier run keep enforcing: see [`Self::inherited`]).
    confirmed: Option<Active>,
    /// What `confirmed.json` holds now (to write only what changed).
    stored: Option<Snapshot>,
    /// The pending trial: its record and what it enforces.
    trial: Option<(TrialRecord, Active)>,
    /// With no known confirmed policy: the revision the pinned programs
    /// enforce, left as they were.
    inherited: Option<u32>,
    /// Why the service runs on a fallback (set at start, cleared by the
    /// next good reload or apply).
    degraded: Option<String>,
    /// A reload deferred while a trial was pending, and why.
    deferred: Option<String>,
    last_error: Option<String>,
    attachments: BTreeMap<String, Attachment>,
    cluster: cluster::ClusterState,
    events: Events,
    conntrack: crate::datapath::counters::ConntrackUsage,
}

/// A request the service refused; the running policy is unchanged.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Whether a transition checks the lockout preflight.
#[derive(Clone, Copy, Debug)]
pub enum Preflight<'a> {
    /// Not checked (`--force`, reloads, reverts, start-up).
    Bypassed,
    /// Checked, with the requester's `SSH_CONNECTION`.
    Check(Option<&'a str>),
}

impl<'a> Preflight<'a> {
    /// From a request's `force` flag and caller.
    #[must_use]
    pub fn from_request(force: bool, caller: Option<&'a str>) -> Self {
        if force {
            Self::Bypassed
        } else {
            Self::Check(caller)
        }
    }
}

/// Whether a transition must be saved before it is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Save {
    /// Not made unless saved.
    Required,
    /// Made even if it cannot be saved (at start: enforcing valid files is
    /// better than falling back because the disk is full); the error is
    /// reported.
    BestEffort,
    /// Not written: not a confirmed choice (the failsafe fallback).
    Never,
}

/// Files read and lowered off the main loop, ready to be enforced.
pub struct Prepared {
    cfg: Config,
    /// The configuration's text, when it was read (a reload).
    cfg_text: Option<String>,
    snapshot: Snapshot,
    lowered: Result<Lowered, Vec<String>>,
}

/// What to read for a reload or an apply of the configured paths: run
/// [`Self::run`] on a blocking thread, then hand the result to
/// [`Service::reload_prepared`] or [`Service::apply_prepared`].
pub struct Job {
    config_path: PathBuf,
    /// The configuration to lower with (an apply); `None`: load it from
    /// `config_path` (a reload).
    cfg: Option<Config>,
    origin: Origin,
    applied: Vec<SourceFile>,
    mode: Mode,
    cluster: Option<crate::kubernetes::ClusterView>,
}

impl Job {
    /// Reads the configuration (for a reload) and the policy files, and
    /// lowers them. Blocking: regular files only, bounded in size.
    pub fn run(self) -> Result<Prepared, Refused> {
        let (cfg, cfg_text) = match self.cfg {
            Some(cfg) => (cfg, None),
            None => Config::load_with_text(&self.config_path)
                .map(|(c, t)| (c, Some(t)))
                .map_err(|e| Refused(e.to_string()))?,
        };
        let snapshot = match self.origin {
            Origin::Configured => source::configured_snapshot(&cfg, self.mode, self.cluster)
                .map_err(|errors| not_valid(&errors))?,
            Origin::Applied => Snapshot {
                origin: Origin::Applied,
                files: self.applied,
                mode: self.mode,
                cluster: self.cluster,
            },
        };
        let lowered = source::lower_snapshot(&cfg, &snapshot);
        Ok(Prepared {
            cfg,
            cfg_text,
            snapshot,
            lowered,
        })
    }
}

fn not_valid(errors: &[String]) -> Refused {
    Refused(format!(
        "the policy does not validate; nothing changed:\n{}",
        errors.join("\n")
    ))
}

fn source_name(s: &Snapshot) -> String {
    match s.origin {
        Origin::Configured if s.files.is_empty() => "no policy file".into(),
        Origin::Configured => "configured paths".into(),
        Origin::Applied => {
            let names: Vec<String> = s
                .files
                .iter()
                .map(|f| f.path.display().to_string())
                .collect();
            format!("files {}", names.join(", "))
        }
    }
}

impl Service {
    /// The datapath, for attaching and reading.
    pub fn datapath(&mut self) -> &mut Datapath {
        &mut self.dp
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Records an attachment for status; returns the one it replaces.
    pub fn attached(&mut self, a: Attachment) -> Option<Attachment> {
        self.attachments.insert(a.ifname.clone(), a)
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

    fn active(&self) -> Option<&Active> {
        self.trial
            .as_ref()
            .map(|(_, a)| a)
            .or(self.confirmed.as_ref())
    }

    /// The policy in force, lowered (for trace and metrics).
    #[must_use]
    pub fn lowered(&self) -> Option<&Lowered> {
        self.active().map(|a| &a.lowered)
    }

    /// Why `trace` has no policy to answer from.
    #[must_use]
    pub fn unknown_policy(&self) -> String {
        match self.inherited {
            Some(rev) => format!(
                "the programs pinned by an earlier run enforce revision {rev}, which this daemon \
                 does not know: {}",
                self.degraded.as_deref().unwrap_or("no usable record")
            ),
            None => "no policy is enforced yet".into(),
        }
    }

    /// One line for systemd's status text (`sd_notify STATUS=`).
    #[must_use]
    /// Built from what the service holds, without the kernel reads of
    /// [`Self::status`] (the loop asks for it at every tick).
    pub fn status_line(&self) -> String {
        let head = match self.active() {
            Some(a) => format!(
                "{} mode, revision {}, {} ({} policies)",
                a.snapshot.mode.name(),
                a.revision,
                source_name(&a.snapshot),
                a.lowered.report.policies.len()
            ),
            None => {
                let (mode, revision, source, ..) = self.inherited_status();
                format!("{mode} mode, revision {revision}, {source}")
            }
        };
        match &self.last_error {
            Some(e) => format!(
                "{head}; ERROR: {}",
                e.lines().take(2).collect::<Vec<_>>().join(" ")
            ),
            None => head,
        }
    }

    /// Lowers, checks, saves and enforces `snap`.
    fn enforce(
        &mut self,
        snap: &Snapshot,
        trial: Option<Duration>,
        check: Preflight<'_>,
        save: Save,
    ) -> Result<String, Refused> {
        let lowered = source::lower_snapshot(&self.cfg, snap).map_err(|e| not_valid(&e))?;
        self.enforce_lowered(snap, lowered, trial, check, save)
    }

    /// Checks, saves and enforces an already lowered `snap`: confirmed
    /// (`trial == None`) or as a trial. Nothing changes unless the record
    /// was saved (with [`Save::Required`]) and the kernel switched.
    fn enforce_lowered(
        &mut self,
        snap: &Snapshot,
        lowered: Lowered,
        trial: Option<Duration>,
        check: Preflight<'_>,
        save: Save,
    ) -> Result<String, Refused> {
        // Whatever the outcome, the reload's transients (and the policy it
        // replaced) are freed by the time this returns.
        let _release = crate::daemon::memory::ReleaseOnDrop;
        if let Preflight::Check(caller) = check {
            preflight::check(&lowered.rules, caller).map_err(Refused)?;
        }
        let previous = self
            .dp
            .enforced_state()
            .map_err(|e| Refused(e.to_string()))?;
        let state = mapstate::compile_after(&lowered.rules, previous)
            .map_err(|e| Refused(e.to_string()))?;
        let record = trial.map(|d| TrialRecord::new(snap.clone(), d));
        // Save first: a change that cannot be saved is not made.
        let saved = match &record {
            _ if save == Save::Never => Ok(false),
            Some(r) => self.store.save_trial(r).map(|()| true),
            None if self.stored.as_ref() == Some(snap) => Ok(false),
            None => self.store.save_confirmed(snap).map(|()| true),
        };
        let saved = match saved {
            Ok(saved) => saved,
            Err(e) if save == Save::Required => {
                let what = if record.is_some() { "trial" } else { "policy" };
                return Err(Refused(format!(
                    "nothing changed: the {what} could not be saved: {e}"
                )));
            }
            Err(e) => {
                let msg = format!("enforced, but it could not be saved: {e}");
                log::error!("{msg}");
                self.last_error = Some(msg);
                false
            }
        };
        let switch = match trial {
            Some(duration) => Switch::Trial { duration },
            None => Switch::Confirmed,
        };
        let applied = match self.dp.apply(state, switch) {
            Ok(a) => a,
            Err(e) => {
                if saved {
                    self.restore_records(record.is_some());
                }
                return Err(Refused(format!("nothing changed: {e}")));
            }
        };
        source::log_report(&lowered);
        let writes = if applied.unchanged {
            "unchanged: nothing written".to_owned()
        } else {
            format!("{} map changes in {:?}", applied.changes, applied.took)
        };
        let what = format!(
            "{} in {} mode, revision {} ({} rules, {writes})",
            source_name(snap),
            snap.mode.name(),
            applied.revision,
            lowered.rules.rules.len(),
        );
        let active = Active {
            snapshot: snap.clone(),
            lowered,
            revision: applied.revision,
        };
        match record {
            Some(r) => {
                // A new trial replaces a pending one; the confirmed policy
                // stays the fallback.
                self.trial = Some((r, active));
                self.events.trials_started += 1;
            }
            None => {
                self.inherited = None;
                self.degraded = None;
                if saved {
                    self.stored = Some(snap.clone());
                }
                self.confirmed = Some(active);
                if self.trial.take().is_some()
                    && let Err(e) = self.store.clear_trial()
                {
                    log::error!("the replaced trial's record could not be removed: {e}");
                }
            }
        }
        Ok(match trial {
            Some(d) => format!(
                "trial applied: {what}; reverts in {} unless confirmed (hostfw confirm)",
                duration::format(d)
            ),
            None => format!("applied: {what}"),
        })
    }

    /// Puts back the records of what is in force after a switch failed.
    fn restore_records(&mut self, trial: bool) {
        let r = if trial {
            match &self.trial {
                Some((t, _)) => self.store.save_trial(t),
                None => self.store.clear_trial(),
            }
        } else {
            match &self.stored {
                Some(s) => self.store.save_confirmed(s),
                None => Ok(()),
            }
        };
        if let Err(e) = r {
            log::error!("the state record could not be put back: {e}");
        }
    }

    /// Reports a refused request in `status` too.
    fn refused(&mut self, r: Result<String, Refused>) -> Result<String, Refused> {
        match r {
            Ok(msg) => {
                log::info!("{msg}");
                Ok(msg)
            }
            Err(e) => {
                log::error!("{e}");
                self.last_error = Some(e.0.clone());
                Err(e)
            }
        }
    }

    /// `hostfw apply FILE…`: the files as sent.
    pub fn apply(
        &mut self,
        files: Vec<SourceFile>,
        trial: Option<Duration>,
        check: Preflight<'_>,
    ) -> Result<String, Refused> {
        let snap = Snapshot {
            origin: Origin::Applied,
            files,
            mode: self.current_mode(),
            cluster: self.current_cluster(),
        };
        let r = self.enforce(&snap, trial, check, Save::Required);
        self.after_request(r)
    }

    /// `hostfw apply` without files: what to read off the loop; then
    /// [`Self::apply_prepared`].
    #[must_use]
    pub fn apply_job(&self) -> Job {
        Job {
            config_path: self.config_path.clone(),
            cfg: Some(self.cfg.clone()),
            origin: Origin::Configured,
            applied: Vec::new(),
            mode: self.current_mode(),
            cluster: self.current_cluster(),
        }
    }

    /// Enforces the configured paths read by [`Self::apply_job`].
    pub fn apply_prepared(
        &mut self,
        prepared: Result<Prepared, Refused>,
        trial: Option<Duration>,
        check: Preflight<'_>,
    ) -> Result<String, Refused> {
        let r = prepared.and_then(|p| {
            let lowered = p.lowered.map_err(|e| not_valid(&e))?;
            self.enforce_lowered(&p.snapshot, lowered, trial, check, Save::Required)
        });
        self.after_request(r)
    }

    fn after_request(&mut self, r: Result<String, Refused>) -> Result<String, Refused> {
        let r = self.refused(r);
        if r.is_ok() {
            self.last_error = None;
        }
        r
    }

    /// `hostfw mode`: enforce is a trial (of the configured default length
    /// unless given), audit is confirmed at once unless a trial is asked.
    pub fn set_mode(
        &mut self,
        mode: Mode,
        trial: Option<Duration>,
        check: Preflight<'_>,
    ) -> Result<String, Refused> {
        let trial = match (mode, trial) {
            (Mode::Enforce, None) => Some(
                duration::parse(&self.cfg.trial.default)
                    .map_err(|e| Refused(format!("[trial] default: {e}")))?,
            ),
            (_, t) => t,
        };
        let snap = match self.active() {
            Some(a) => Snapshot {
                mode,
                cluster: self.current_cluster(),
                ..a.snapshot.clone()
            },
            None => source::configured_snapshot(&self.cfg, mode, self.current_cluster())
                .map_err(|e| not_valid(&e))?,
        };
        let r = self.enforce(&snap, trial, check, Save::Required);
        self.after_request(r)
    }

    fn current_mode(&self) -> Mode {
        match (&self.degraded, self.active()) {
            (None, Some(a)) => a.snapshot.mode,
            _ => self.cfg.mode,
        }
    }

    /// `hostfw confirm`.
    pub fn confirm(&mut self) -> Result<String, Refused> {
        let Some((t, active)) = self.trial.take() else {
            return Err(Refused("no trial is pending".into()));
        };
        if let Err(e) = self.store.save_confirmed(&t.snapshot) {
            let msg = format!(
                "not confirmed: the policy could not be saved: {e}; the trial stays pending and \
                 reverts in {}",
                duration::format(t.remaining().unwrap_or_default())
            );
            self.trial = Some((t, active));
            return self.refused(Err(Refused(msg)));
        }
        if let Err(e) = self.dp.confirm() {
            self.trial = Some((t, active));
            self.restore_records(false);
            return self.refused(Err(Refused(format!("not confirmed: {e}"))));
        }
        self.stored = Some(t.snapshot.clone());
        if let Err(e) = self.store.clear_trial() {
            log::error!("confirmed, but the trial record could not be removed: {e}");
        }
        self.confirmed = Some(active);
        self.events.trials_confirmed += 1;
        let msg = format!("confirmed: {}", source_name(&t.snapshot));
        log::info!("{msg}");
        self.last_error = None;
        self.cluster_after_trial(&t.snapshot, true);
        Ok(msg)
    }

    /// `hostfw rollback`, and the trial timer.
    pub fn rollback(&mut self, why: &str) -> Result<String, Refused> {
        let Some((t, active)) = self.trial.take() else {
            return Err(Refused("no trial is pending".into()));
        };
        if let Err(e) = self.dp.rollback() {
            self.trial = Some((t, active));
            return self.refused(Err(Refused(format!("not reverted: {e}"))));
        }
        if let Err(e) = self.store.clear_trial() {
            let msg = format!(
                "reverted, but the trial record could not be removed: {e} (a restart before \
                 its deadline would resume the trial)"
            );
            log::error!("{msg}");
            self.last_error = Some(msg);
        }
        self.events.trials_reverted += 1;
        let msg = format!(
            "trial of {} reverted ({why}): the confirmed policy is in force ({})",
            source_name(&t.snapshot),
            self.confirmed.as_ref().map_or_else(
                || "none known".to_string(),
                |c| format!("revision {}", c.revision)
            )
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
            .map(|(t, _)| t.remaining().unwrap_or_default())
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

    /// A reload that waited for the trial to end, once it has ended: the
    /// loop then reads the files off the loop as for any reload.
    pub fn take_deferred(&mut self) -> Option<String> {
        if self.trial.is_some() {
            return None;
        }
        self.deferred.take()
    }

    /// SIGHUP or a file change: what to read off the loop (the
    /// configuration and, for the configured paths, the policy files), or
    /// `None` while a trial is pending (the reload then runs right after
    /// the confirm or revert).
    pub fn reload_job(&mut self, why: &str) -> Option<Job> {
        if self.trial.is_some() {
            let msg =
                format!("{why}: reload deferred: a trial is pending (confirm or roll back first)");
            log::warn!("{msg}");
            self.deferred = Some(why.to_string());
            self.last_error = Some(msg);
            return None;
        }
        // Applied files stay as applied; anything else reads the
        // configured paths afresh.
        let (origin, applied) = match (&self.degraded, &self.confirmed) {
            (None, Some(c)) if c.snapshot.origin == Origin::Applied => {
                (Origin::Applied, c.snapshot.files.clone())
            }
            _ => (Origin::Configured, Vec::new()),
        };
        Some(Job {
            config_path: self.config_path.clone(),
            cfg: None,
            origin,
            applied,
            mode: self.current_mode(),
            cluster: self.current_cluster(),
        })
    }

    /// Enforces what a reload read. A broken file leaves the running
    /// policy in force and is reported in `status`.
    pub fn reload_prepared(&mut self, why: &str, prepared: Result<Prepared, Refused>) {
        if self.trial.is_some() {
            // A trial started while the files were read.
            self.deferred = Some(why.to_string());
            return;
        }
        let result = prepared.and_then(|p| {
            let lowered = p.lowered.map_err(|e| not_valid(&e))?;
            let previous = std::mem::replace(&mut self.cfg, p.cfg);
            let r = self.enforce_lowered(
                &p.snapshot,
                lowered,
                None,
                Preflight::Bypassed,
                Save::Required,
            );
            match (&r, p.cfg_text) {
                (Err(_), _) => self.cfg = previous,
                (Ok(_), Some(text)) => {
                    if let Err(e) = self.store.save_config(&text) {
                        log::warn!("keeping a copy of the configuration: {e}");
                    }
                }
                (Ok(_), None) => {}
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
    /// (entity `host`), keeping a pending trial a trial; the confirmed
    /// policy follows when the trial ends.
    pub fn addresses_changed(&mut self) {
        let r = match &self.trial {
            Some((t, a)) => {
                let (snap, left) = (a.snapshot.clone(), t.remaining());
                self.deferred
                    .get_or_insert_with(|| "addresses changed".into());
                match left {
                    Some(left) => {
                        self.enforce(&snap, Some(left), Preflight::Bypassed, Save::Required)
                    }
                    None => return,
                }
            }
            None => match &self.confirmed {
                Some(c) => {
                    let snap = c.snapshot.clone();
                    self.enforce(&snap, None, Preflight::Bypassed, Save::Required)
                }
                None => return,
            },
        };
        if let Err(e) = r {
            log::error!("addresses changed, but the policy could not follow: {e}");
        }
    }

    /// Counts the connection trackers' entries (a walk of the maps) for
    /// status and metrics, and warns when the established one is nearly
    /// full or has evicted flows.
    pub fn sample_conntrack(&mut self) {
        let usage = self.dp.counters().and_then(|c| self.dp.conntrack_usage(&c));
        match usage {
            Ok(u) => {
                let (n, cap) = (u.established.used, u.established.capacity);
                let was = self.conntrack.established.used;
                if n * 10 >= cap * 9 && was * 10 < cap * 9 {
                    log::warn!(
                        "established connection tracking is {}% full ({n} of {cap}); when full, the least recently used flows are evicted and then evaluated again; raise [conntrack] established",
                        n * 100 / cap.max(1)
                    );
                }
                let evicted = u.established.evicted;
                if evicted > self.conntrack.established.evicted {
                    log::warn!(
                        "{} established flows evicted from connection tracking ({evicted} in all); raise [conntrack] established (now {cap})",
                        evicted - self.conntrack.established.evicted
                    );
                }
                self.conntrack = u;
            }
            Err(e) => log::warn!("counting connection-tracking entries: {e}"),
        }
    }

    /// What the metrics endpoint serves.
    #[must_use]
    pub fn metrics(&self) -> crate::metrics::Snapshot {
        let status = self.status();
        let mut rules = Vec::new();
        if let (Some(active), Ok(cfg)) = (self.active(), self.dp.config()) {
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
                        policy: origin.and_then(|o| o.policy.as_deref().map(str::to_owned)),
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
            conntrack: self.conntrack,
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

    /// What `status` says of programs pinned by an earlier run, read from
    /// the kernel's generation metadata.
    fn inherited_status(&self) -> (String, u32, String, Vec<PolicyStatus>, bool, bool) {
        let meta = self
            .dp
            .config()
            .and_then(|c| self.dp.gen_meta(c.active()))
            .ok();
        match (self.inherited, meta) {
            (Some(rev), Some(m)) => (
                if m.mode == hostfw_common::config::MODE_ENFORCE {
                    "enforce".into()
                } else {
                    "audit".into()
                },
                rev,
                "programs pinned by an earlier run (their policy is not known here)".into(),
                Vec::new(),
                m.flags & hostfw_common::config::DEFAULT_DENY_INGRESS != 0,
                m.flags & hostfw_common::config::DEFAULT_DENY_EGRESS != 0,
            ),
            _ => ("audit".into(), 0, "none".into(), Vec::new(), false, false),
        }
    }

    /// `hostfw status`.
    #[must_use]
    pub fn status(&self) -> Status {
        let (mode, revision, source, policies, dd_in, dd_out) = match self.active() {
            Some(a) => (
                a.snapshot.mode.name().to_string(),
                a.revision,
                source_name(&a.snapshot),
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
            None => self.inherited_status(),
        };
        let trial = self.trial.as_ref().map(|(t, _)| TrialStatus {
            remaining_secs: t.remaining().map_or(0, |d| d.as_secs()),
            mode: t.snapshot.mode.name().into(),
            source: source_name(&t.snapshot),
        });
        let interfaces = self
            .attachments
            .values()
            .map(|a| InterfaceStatus {
                name: a.ifname.clone(),
                xdp: match a.xdp {
                    XdpState::Hostfw(XdpAttach::Native) => "native".into(),
                    XdpState::Hostfw(XdpAttach::Generic) => "generic".into(),
                    XdpState::Foreign { .. } => "foreign".into(),
                },
                xdp_foreign: match &a.xdp {
                    XdpState::Foreign { prog_id, name } => Some(ForeignXdp {
                        prog_id: *prog_id,
                        name: name.clone(),
                    }),
                    XdpState::Hostfw(_) => None,
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
            conntrack: self.conntrack,
            counters,
            kubernetes: self.cluster_status(),
        }
    }
}
