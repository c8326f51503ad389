//! `hostfw check`: validates policy files offline and says what each file
//! and each policy becomes on this node.
//!
//! The files are read and lowered exactly as the daemon does
//! ([`source::read`]): node labels, cluster sets, failsafe and mode from
//! the configuration; entity `host` is `[node] addresses` plus this
//! machine's interface addresses.

use std::{fmt::Write as _, path::PathBuf};

use crate::{
    config::Config,
    policy::{ContextError, FileReport, FileStatus, Lowered, PolicyError, PolicyReport, Selection},
    ruleset::{Direction, Mode},
    source::{self, Sourced},
};

/// What `hostfw check` found.
#[derive(Debug)]
pub struct CheckReport {
    /// The files met, in the order read.
    pub files: Vec<FileReport>,
    /// Every error; any one fails the check.
    pub errors: Vec<PolicyError>,
    /// The valid policies lowered for this node.
    pub lowered: Lowered,
}

impl From<Sourced> for CheckReport {
    fn from(s: Sourced) -> Self {
        Self {
            files: s.files,
            errors: s.errors,
            lowered: s.lowered,
        }
    }
}

/// Reads and lowers the policies of `paths` for the node of `cfg`. Fails
/// only when the configuration cannot be lowered against (a bad failsafe
/// entry); policy errors are in [`CheckReport::errors`].
pub fn check(cfg: &Config, paths: &[PathBuf]) -> Result<CheckReport, ContextError> {
    source::read(cfg, paths).map(CheckReport::from)
}

/// The errors, one `FILE:LINE:COL: policy NAME, PATH: MESSAGE` line each.
#[must_use]
pub fn render_errors(errors: &[PolicyError]) -> String {
    errors.iter().map(|e| format!("{e}\n")).collect()
}

impl CheckReport {
    /// No error.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// The summary for people: each file, each policy (selected or why
    /// not, rules per list, default-deny effect, warnings), then what the
    /// node's directions become. Errors are not in it ([`render_errors`]).
    #[must_use]
    pub fn summary(&self) -> String {
        let mut s = String::new();
        if self.files.is_empty() {
            s.push_str("no policy file found\n");
        }
        for f in &self.files {
            let what = match &f.status {
                FileStatus::Loaded { policies: 1 } => "1 policy".to_string(),
                FileStatus::Loaded { policies } => format!("{policies} policies"),
                FileStatus::Ignored { reason } => format!("ignored: {reason}"),
                FileStatus::Failed => "not valid (errors below)".to_string(),
            };
            let _ = writeln!(s, "{}: {what}", f.path.display());
        }
        let report = &self.lowered.report;
        for p in &report.policies {
            let _ = writeln!(
                s,
                "policy {} ({}): {}",
                p.name,
                p.file.display(),
                policy_line(p)
            );
            for w in &p.warnings {
                let _ = writeln!(s, "  warning: {w}");
            }
        }
        let dirs: Vec<String> = [Direction::Ingress, Direction::Egress]
            .into_iter()
            .map(|d| self.direction_line(d))
            .collect();
        let mode = match self.lowered.rules.mode {
            Mode::Audit => "mode audit (what the policy denies is logged and passes)",
            Mode::Enforce => "mode enforce",
        };
        let _ = writeln!(s, "this node: {}; {mode}", dirs.join("; "));
        if self.is_ok() {
            let selected = report
                .policies
                .iter()
                .filter(|p| p.selection == Selection::Selected)
                .count();
            let _ = writeln!(
                s,
                "ok: {} {}, {selected} selected",
                report.policies.len(),
                if report.policies.len() == 1 {
                    "policy"
                } else {
                    "policies"
                }
            );
        }
        s
    }

    /// `ingress default-deny (a, b)` or `egress not default-deny (…why)`.
    fn direction_line(&self, d: Direction) -> String {
        let dir = d.name();
        let report = &self.lowered.report;
        let by = report.default_deny(d);
        if !by.is_empty() {
            return format!("{dir} default-deny ({})", by.join(", "));
        }
        let open: Vec<&str> = report
            .policies
            .iter()
            .filter(|p| p.has_rules(d))
            .map(|p| p.name.as_str())
            .collect();
        if open.is_empty() {
            format!("{dir} not default-deny (no selected policy has {dir} rules)")
        } else {
            format!(
                "{dir} not default-deny (enableDefaultDeny.{dir}: false in {})",
                open.join(", ")
            )
        }
    }
}

/// `selected; ingress 2, ingressDeny 1; makes ingress default-deny`, or
/// why it is not selected.
fn policy_line(p: &PolicyReport) -> String {
    match &p.selection {
        Selection::NotSelected { reason } => format!("not selected: {reason}"),
        Selection::Skipped { reason } => format!("skipped: {reason}"),
        Selection::Selected => {
            let c = &p.counts;
            let lists: Vec<String> = [
                ("ingress", c.ingress),
                ("ingressDeny", c.ingress_deny),
                ("egress", c.egress),
                ("egressDeny", c.egress_deny),
            ]
            .into_iter()
            .filter(|&(_, n)| n > 0)
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
            let mut parts = vec!["selected".to_string()];
            if !lists.is_empty() {
                parts.push(lists.join(", "));
            }
            for d in [Direction::Ingress, Direction::Egress] {
                let dir = d.name();
                if p.makes_default_deny(d) {
                    parts.push(format!("makes {dir} default-deny"));
                } else if p.has_rules(d) {
                    parts.push(format!(
                        "{dir} not default-deny (enableDefaultDeny.{dir}: false)"
                    ));
                }
            }
            parts.join("; ")
        }
    }
}

#[cfg(test)]
mod tests;
