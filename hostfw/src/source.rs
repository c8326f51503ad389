//! Where the enforced rule set comes from: policy files lowered with the
//! node and cluster facts of the configuration and the addresses of this
//! node's interfaces. The daemon reads `[policies] paths`; `hostfw check`
//! and `hostfw trace --policies` read the paths they are given, the same
//! way ([`read`]).

use std::{net::IpAddr, path::PathBuf};

use crate::{
    config::Config,
    daemon::store::{Origin, Snapshot},
    policy::{
        self, ContextError, FileReport, LowerContext, Lowered, PolicyError, Selection, SourceFile,
    },
};

/// The addresses of this node's interfaces (loopback excluded): part of
/// entity `host`.
#[must_use]
pub fn interface_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out: Vec<IpAddr> = addrs
        .filter_map(|a| {
            let sa = a.address?;
            if let Some(v4) = sa.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                sa.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .filter(|ip| !ip.is_loopback())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Policy files read and lowered for this node.
#[derive(Debug)]
pub struct Sourced {
    /// The files met, in the order read.
    pub files: Vec<FileReport>,
    /// Every problem found; any one rejects the whole set.
    pub errors: Vec<PolicyError>,
    /// The valid policies lowered (complete only when `errors` is empty).
    pub lowered: Lowered,
}

impl Sourced {
    /// The lowered policies, or every error: nothing half-parsed is used.
    pub fn into_lowered(self) -> Result<Lowered, Vec<PolicyError>> {
        if self.errors.is_empty() {
            Ok(self.lowered)
        } else {
            Err(self.errors)
        }
    }
}

/// Reads the policies of `paths` and lowers them with the node, cluster,
/// failsafe and mode of `cfg`; entity `host` is `[node] addresses` plus
/// this machine's [`interface_addresses`]. Fails only when the
/// configuration cannot be lowered against; policy errors are in
/// [`Sourced::errors`].
pub fn read(cfg: &Config, paths: &[PathBuf]) -> Result<Sourced, ContextError> {
    let loaded = policy::parse_collected(policy::collect(paths, cfg.policies.max_file_size));
    let ctx = LowerContext::from_config(cfg, &interface_addresses())?;
    let lowered = policy::lower(&loaded.policies, &ctx);
    Ok(Sourced {
        files: loaded.files,
        errors: loaded.errors,
        lowered,
    })
}

/// Reads the configuration's `[policies] paths` (only regular files, up to
/// `[policies] max_file_size` each): the texts, or every error, formatted
/// as `hostfw check` prints them. Reads only; parsing is
/// [`lower_snapshot`]'s.
fn read_configured(cfg: &Config) -> Result<Vec<SourceFile>, Vec<String>> {
    let c = policy::collect(&cfg.policies.paths, cfg.policies.max_file_size);
    if c.errors.is_empty() {
        Ok(c.texts)
    } else {
        Err(c.errors.iter().map(ToString::to_string).collect())
    }
}

/// The configured paths read afresh, as a snapshot of `mode` with
/// `cluster`: what a reload or a start would enforce.
pub fn configured_snapshot(
    cfg: &Config,
    mode: crate::ruleset::Mode,
    cluster: Option<crate::kubernetes::ClusterView>,
) -> Result<Snapshot, Vec<String>> {
    Ok(Snapshot {
        origin: Origin::Configured,
        files: read_configured(cfg)?,
        mode,
        cluster,
    })
}

/// Lowers a snapshot for this node: its files' text as stored (no file is
/// read), with its cluster data (the `Node`'s labels and the entities'
/// addresses merged into `cfg`, and the cluster's CCNPs beside the files'
/// when the files are the configured paths). Every error, formatted as
/// `hostfw check` prints it; any error rejects the whole set.
pub fn lower_snapshot(cfg: &Config, snap: &Snapshot) -> Result<Lowered, Vec<String>> {
    let strings = |errors: Vec<policy::PolicyError>| {
        errors.iter().map(ToString::to_string).collect::<Vec<_>>()
    };
    let merged;
    let cfg = match &snap.cluster {
        Some(view) => {
            merged = view.merged(cfg);
            &merged
        }
        None => cfg,
    };
    let mut policies = Vec::new();
    let mut errors = Vec::new();
    for f in &snap.files {
        let Some(format) = policy::format_of(&f.path) else {
            errors.push(format!(
                "{}: not a policy file name (*.yaml, *.yml or *.toml)",
                f.path.display()
            ));
            continue;
        };
        match policy::parse_str(&f.text, &f.path, format) {
            Ok(mut p) => policies.append(&mut p),
            Err(e) => errors.extend(strings(e)),
        }
    }
    if errors.is_empty() {
        let mut dup = Vec::new();
        policy::check_unique(&policies, &mut dup);
        errors.extend(strings(dup));
    }
    if snap.origin == Origin::Configured
        && let Some(view) = &snap.cluster
    {
        match view.parse_policies() {
            Ok(mut p) => policies.append(&mut p),
            Err(e) => errors.extend(strings(e)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let ctx =
        LowerContext::from_config(cfg, &interface_addresses()).map_err(|e| vec![e.to_string()])?;
    let mut lowered = policy::lower(&policies, &ctx);
    lowered.rules.mode = snap.mode;
    Ok(lowered)
}

/// Logs what became of each policy: selected or why not, and warnings.
pub fn log_report(lowered: &Lowered) {
    for p in &lowered.report.policies {
        match &p.selection {
            Selection::Selected => log::info!(
                "policy {}: selected, {} rules ({})",
                p.name,
                p.rule_ids.len(),
                p.file.display()
            ),
            Selection::NotSelected { reason } => {
                log::info!("policy {}: not selected: {reason}", p.name);
            }
            Selection::Skipped { reason } => log::info!("policy {}: skipped: {reason}", p.name),
        }
        for w in &p.warnings {
            log::warn!("policy {}: {w}", p.name);
        }
    }
}
