//! The cluster's data in the service (`[kubernetes]`): each new view from
//! the watches is enforced through the same path as a changed file, as a
//! confirmed change (`changes = "apply"`) or as a trial (`changes =
//! "trial"`). Never while a trial is pending: the newest view waits for the
//! confirm or the revert.

use std::sync::{Arc, Mutex};

use super::{Preflight, Save, Service, Snapshot};
use crate::{config::Changes, control::KubeStatus, duration, kubernetes::ClusterView};

/// What the service knows of the cluster beyond what it enforces.
#[derive(Default)]
pub(super) struct ClusterState {
    /// The newest view from the watches; `None` before the first list.
    latest: Option<ClusterView>,
    /// The watches' health, for `status`.
    status: Option<Arc<Mutex<KubeStatus>>>,
    /// With `changes = "trial"`: a view whose trial was reverted. It is not
    /// tried again; the next change from the cluster is.
    rejected: Option<ClusterView>,
    /// Why the newest view is not enforced, if it is not.
    pending: Option<String>,
}

impl Service {
    /// Connects the Kubernetes source's health, for `status`.
    pub fn cluster_source(&mut self, status: Arc<Mutex<KubeStatus>>) {
        self.cluster.status = Some(status);
    }

    /// `[kubernetes] changes` (as configured now).
    fn cluster_changes(&self) -> Changes {
        self.cfg
            .kubernetes
            .as_ref()
            .map_or(Changes::Apply, |k| k.changes)
    }

    /// The cluster data a new snapshot is lowered with: the newest from the
    /// API server, else what is enforced (restored from the state directory
    /// while the API server has not answered yet).
    pub(super) fn current_cluster(&self) -> Option<ClusterView> {
        self.cluster
            .latest
            .clone()
            .or_else(|| self.active().and_then(|a| a.snapshot.cluster.clone()))
            .or_else(|| self.stored.as_ref().and_then(|s| s.cluster.clone()))
    }

    /// A new view from the watches.
    pub fn cluster_changed(&mut self, view: ClusterView) {
        self.cluster.latest = Some(view);
        self.cluster_catch_up();
    }

    /// After a trial was confirmed (`kept`) or reverted.
    pub(super) fn cluster_after_trial(&mut self, trial: &Snapshot, kept: bool) {
        if !kept
            && self.cluster_changes() == Changes::Trial
            && trial.cluster.is_some()
            && trial.cluster != self.confirmed_snapshot().and_then(|s| s.cluster.clone())
        {
            self.cluster.rejected = trial.cluster.clone();
        }
        self.cluster_catch_up();
    }

    /// Enforces the newest view if it is not, and may be.
    fn cluster_catch_up(&mut self) {
        let Some(view) = self.cluster.latest.clone() else {
            return;
        };
        if let Some((t, _)) = &self.trial {
            self.cluster.pending = (t.snapshot.cluster.as_ref() != Some(&view)).then(|| {
                "a trial is pending: the cluster's change follows its confirm or revert".into()
            });
            return;
        }
        let Some(confirmed) = self.confirmed_snapshot().cloned() else {
            self.cluster.pending = Some(
                "no confirmed policy is known to apply it to: fix the policy files and reload"
                    .into(),
            );
            return;
        };
        if confirmed.cluster.as_ref() == Some(&view) {
            self.cluster.pending = None;
            return;
        }
        if self.cluster.rejected.as_ref() == Some(&view) {
            self.cluster.pending =
                Some("its trial was reverted; the next change from the cluster is tried".into());
            return;
        }
        let trial = match self.cluster_changes() {
            Changes::Apply => None,
            Changes::Trial => match duration::parse(&self.cfg.trial.default) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.cluster.pending = Some(format!("[trial] default: {e}"));
                    return;
                }
            },
        };
        let snap = Snapshot {
            cluster: Some(view.clone()),
            ..confirmed
        };
        match self.enforce(&snap, trial, Preflight::Bypassed, Save::Required) {
            Ok(msg) => {
                log::info!("kubernetes: {}: {msg}", view.summary());
                self.cluster.pending = None;
            }
            Err(e) => {
                log::error!(
                    "kubernetes: the cluster's change is not enforced, the running policy stays: {e}"
                );
                self.cluster.pending = Some(format!("refused: {e}"));
                self.last_error = Some(e.0);
            }
        }
    }

    /// The confirmed policy known to this daemon.
    fn confirmed_snapshot(&self) -> Option<&Snapshot> {
        self.confirmed.as_ref().map(|c| &c.snapshot)
    }

    /// The source's part of `status`.
    pub(super) fn cluster_status(&self) -> Option<KubeStatus> {
        let shared = self.cluster.status.as_ref()?;
        let mut st = shared.lock().ok()?.clone();
        st.pending.clone_from(&self.cluster.pending);
        Some(st)
    }
}
