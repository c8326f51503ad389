//! Start-up: never less protected than the last confirmed state, never a
//! crash loop. In this order, the first that can be enforced wins:
//!
//! 1. the configured policy files, read afresh, unless the confirmed
//!    policy was applied from other files (`hostfw apply FILE…`);
//! 2. the last confirmed policy as stored (its text), when the files do
//!    not validate or cannot be read;
//! 3. with no usable record: the programs pinned by the earlier run, left
//!    enforcing what they enforce (a pending trial in the kernel is
//!    reverted to its confirmed generation);
//! 4. with no pins either (after a reboot): audit mode with the failsafe
//!    entries only.
//!
//! A state file that cannot be read is moved aside first, and the rest
//! goes on. Then a pending trial is resumed with the time it has left, or
//! reverted if its deadline passed. Every problem is in `status`
//! (`last_error`), the journal and the unit's status text.

use std::path::PathBuf;

use super::{Active, Preflight, Refused, Save, Service, source_name};
use crate::{
    config::Config,
    daemon::store::{CONFIRMED, Confirmed, Origin, Snapshot, Store, StoreError, TRIAL},
    datapath::{Datapath, writer::SlotState},
    duration,
    ruleset::Mode,
    source,
};

impl Service {
    /// Starts from the stored state and the configured files (see the
    /// module's documentation for the order); `problem` is one found
    /// before (a configuration that did not load). Fails only when the
    /// kernel refuses even the failsafe policy.
    pub fn start(
        config_path: PathBuf,
        cfg: Config,
        store: Store,
        dp: Datapath,
        problem: Option<String>,
    ) -> Result<Self, Refused> {
        let mut problems: Vec<String> = problem.into_iter().collect();
        let record = read_or_set_aside(&store, CONFIRMED, Store::confirmed, &mut problems);
        let pending = read_or_set_aside(&store, TRIAL, Store::trial, &mut problems);
        let (stored, mode, cluster) = match record {
            Some(Confirmed::Policy(s)) => {
                let (mode, cluster) = (s.mode, s.cluster.clone());
                (Some(s), mode, cluster)
            }
            Some(Confirmed::Recipe { mode, cluster }) => (None, mode, cluster),
            None => (None, cfg.mode, None),
        };
        let mut svc = Self {
            config_path,
            cfg,
            store,
            dp,
            confirmed: None,
            stored: stored.clone(),
            trial: None,
            inherited: None,
            degraded: None,
            deferred: None,
            last_error: None,
            attachments: std::collections::BTreeMap::new(),
            cluster: super::cluster::ClusterState::default(),
            events: super::Events::default(),
            conntrack: Default::default(),
        };
        let mut candidates: Vec<(Snapshot, &str)> = Vec::new();
        if stored
            .as_ref()
            .is_none_or(|s| s.origin == Origin::Configured)
        {
            match source::configured_snapshot(&svc.cfg, mode, cluster) {
                Ok(s) => candidates.push((s, "the configured policy files")),
                Err(errors) => problems.push(format!(
                    "the configured policy files cannot be read:\n{}",
                    errors.join("\n")
                )),
            }
        }
        if let Some(s) = stored {
            candidates.push((s, "the last confirmed policy (as stored)"));
        }
        // The first candidate that can be enforced wins.
        let enforced = candidates.into_iter().any(|(snap, what)| {
            match svc.enforce(&snap, None, Preflight::Bypassed, Save::BestEffort) {
                Ok(msg) => {
                    log::info!("start: {what}: {msg}");
                    true
                }
                Err(e) => {
                    problems.push(format!("{what} not enforced: {e}"));
                    false
                }
            }
        });
        if !enforced {
            svc.fall_back(&mut problems)?;
        }
        if let Some(t) = pending {
            svc.resume_trial(&t, &mut problems);
        }
        if !problems.is_empty() {
            let text = problems.join("\n");
            for p in &problems {
                log::error!("start: {p}");
            }
            if svc.confirmed.is_none() || svc.stored.is_none() {
                svc.degraded = Some(text.clone());
            }
            svc.last_error = Some(text);
        }
        Ok(svc)
    }

    /// No confirmed policy could be enforced: the pinned programs stay as
    /// they are, or, with none, audit mode with the failsafe entries.
    fn fall_back(&mut self, problems: &mut Vec<String>) -> Result<(), Refused> {
        let state = self
            .dp
            .slot_state()
            .map_err(|e| Refused(format!("reading the pinned state: {e}")))?;
        let generation = match state {
            SlotState::Empty => None,
            SlotState::Confirmed { generation } => Some(generation),
            SlotState::Trial { confirmed, .. } | SlotState::Expired { confirmed, .. } => {
                // The trial's record is not usable without its confirmed
                // policy: the kernel goes back to its confirmed generation.
                self.dp
                    .rollback()
                    .map_err(|e| Refused(format!("reverting the pinned trial: {e}")))?;
                Some(confirmed)
            }
        };
        if let Some(g) = generation {
            let revision = self.dp.gen_meta(g).map(|m| m.revision).unwrap_or_default();
            self.inherited = Some(revision);
            problems.push(format!(
                "no policy could be enforced: the programs pinned by the earlier run keep \
                 enforcing revision {revision}; fix the policy files and reload \
                 (systemctl reload hostfw)"
            ));
            return Ok(());
        }
        let snap = Snapshot::empty(Mode::Audit);
        let lowered = source::lower_snapshot(&self.cfg, &snap)
            .map_err(|e| Refused(format!("the failsafe policy: {}", e.join("; "))))?;
        self.enforce_lowered(&snap, lowered, None, Preflight::Bypassed, Save::Never)
            .map(|_| ())?;
        problems.push(
            "no policy could be enforced and no programs were pinned: audit mode with the \
             failsafe entries only; fix the policy files and reload (systemctl reload hostfw)"
                .into(),
        );
        Ok(())
    }

    /// Resumes a stored trial, or reverts it if it expired or cannot be.
    fn resume_trial(&mut self, t: &crate::daemon::store::TrialRecord, problems: &mut Vec<String>) {
        let name = source_name(&t.snapshot);
        let keep = match (&self.confirmed, self.stored.as_ref(), t.remaining()) {
            (None, _, _) => {
                problems.push(format!(
                    "the trial recorded in {TRIAL} ({name}) is dropped: the policy it would \
                     revert to is not known"
                ));
                false
            }
            (Some(_), Some(s), _) if *s == t.snapshot => false,
            (Some(_), _, None) => {
                log::warn!(
                    "trial of {name} expired while hostfw was not running: reverted to the \
                     confirmed policy"
                );
                self.events.trials_reverted += 1;
                false
            }
            (Some(_), _, Some(left)) => {
                log::info!(
                    "resuming the trial of {name} ({} left)",
                    duration::format(left)
                );
                match self.resume(t) {
                    Ok(()) => true,
                    Err(e) => {
                        problems.push(format!(
                            "the trial recorded in {TRIAL} ({name}) is dropped: {e}"
                        ));
                        self.events.trials_reverted += 1;
                        false
                    }
                }
            }
        };
        if !keep && let Err(e) = self.store.clear_trial() {
            problems.push(format!("the trial record could not be removed: {e}"));
        }
    }

    /// Enforces a stored trial as it was recorded (same deadline).
    fn resume(&mut self, t: &crate::daemon::store::TrialRecord) -> Result<(), Refused> {
        let left = t.remaining().unwrap_or_default();
        let lowered = source::lower_snapshot(&self.cfg, &t.snapshot)
            .map_err(|e| Refused(format!("it does not validate:\n{}", e.join("\n"))))?;
        let previous = self
            .dp
            .enforced_state()
            .map_err(|e| Refused(e.to_string()))?;
        let state = crate::mapstate::compile_after(&lowered.rules, previous)
            .map_err(|e| Refused(e.to_string()))?;
        let applied = self
            .dp
            .apply(
                state,
                crate::datapath::writer::Switch::Trial { duration: left },
            )
            .map_err(|e| Refused(e.to_string()))?;
        self.trial = Some((
            t.clone(),
            Active {
                snapshot: t.snapshot.clone(),
                lowered,
                revision: applied.revision,
            },
        ));
        Ok(())
    }
}

/// Reads one state record; one that cannot be used is moved aside and
/// reported, and reads as none.
fn read_or_set_aside<T>(
    store: &Store,
    name: &str,
    read: impl Fn(&Store) -> Result<Option<T>, StoreError>,
    problems: &mut Vec<String>,
) -> Option<T> {
    match read(store) {
        Ok(r) => r,
        Err(e @ StoreError::Corrupt { .. }) => {
            let moved = match store.set_aside(name) {
                Ok(to) => format!("moved to {}", to.display()),
                Err(e) => format!("and it could not be moved aside: {e}"),
            };
            problems.push(format!("{e}; {moved}; going on without it"));
            None
        }
        Err(e) => {
            problems.push(format!("{e}; going on without it"));
            None
        }
    }
}
