//! Where the enforced rule set comes from: the policy files named in
//! `[policies] paths`, lowered with the node and cluster facts of the
//! configuration and the addresses of this node's interfaces.

use std::net::IpAddr;

use crate::{
    config::Config,
    policy::{self, LowerContext, Selection},
    ruleset::RuleSet,
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

/// Loads, validates and lowers the policies; logs what was selected.
/// Any error rejects the whole set (nothing half-parsed is enforced).
pub fn rules_from_config(cfg: &Config) -> Result<RuleSet, String> {
    let policies = policy::load_paths(&cfg.policies.paths).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        lines.join("\n")
    })?;
    let ctx = LowerContext::from_config(cfg, &interface_addresses()).map_err(|e| e.to_string())?;
    let lowered = policy::lower(&policies, &ctx);
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
    Ok(lowered.rules)
}
