//! The offline subcommands `check` and `trace`: their arguments and how
//! they run, writing to the streams they are given. `main.rs` only parses
//! the command line and dispatches here.

pub mod check;
pub mod control;
pub mod generate;
pub mod observe;
pub mod trace;

use std::{
    io::{self, Write},
    path::Path,
};

use crate::{
    config::{self, Config, ConfigError},
    policy::ContextError,
    trace::QueryError,
};

/// Why `check` or `trace` failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The configuration file could not be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The configuration cannot be lowered against (bad failsafe entry).
    #[error("configuration: {0}")]
    Context(#[from] ContextError),
    /// The flags of `trace` do not make sense together.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The policies do not validate (the errors were printed).
    #[error(
        "{count} {} in the policies: the daemon would reject them whole",
        if *count == 1 { "error" } else { "errors" }
    )]
    Invalid {
        /// How many errors.
        count: usize,
    },
    /// The daemon could not be reached.
    #[error(transparent)]
    Control(#[from] crate::control::ControlError),
    /// The daemon refused the request; nothing changed.
    #[error("{0}")]
    Refused(String),
    /// A bad argument value.
    #[error("{0}")]
    Usage(String),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
}

/// Help text shared by `check` and `trace`: where the node's facts come
/// from.
pub const NODE_FACTS_HELP: &str = "\
The configuration gives the node's labels (nodeSelector), the cluster address \
sets, failsafe entries and mode; entity host is the configuration's [node] \
addresses plus this machine's interface addresses, as the daemon does. Without \
--config, /etc/hostfw/hostfw.toml is read, or an empty configuration is used if \
that file does not exist.";

/// The configuration of `--config FILE`, or of the default path; when the
/// default file does not exist, an empty configuration, said in one line
/// on `err`. An explicitly named file that is missing is an error.
pub fn load_config(explicit: Option<&Path>, err: &mut dyn Write) -> Result<Config, CliError> {
    load_config_or_default(explicit, Path::new(config::DEFAULT_PATH), err)
}

fn load_config_or_default(
    explicit: Option<&Path>,
    default: &Path,
    err: &mut dyn Write,
) -> Result<Config, CliError> {
    if let Some(path) = explicit {
        return Ok(Config::load(path)?);
    }
    match Config::load(default) {
        Err(ConfigError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            writeln!(
                err,
                "hostfw: {} does not exist: using an empty configuration (no node labels or \
                 addresses, no cluster sets, default failsafe, audit mode)",
                default.display()
            )?;
            Ok(Config::default())
        }
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_default_config_is_an_empty_one_said_in_one_line() {
        let missing =
            std::env::temp_dir().join(format!("hostfw-no-such-config-{}.toml", std::process::id()));
        let mut err = Vec::new();
        let cfg = load_config_or_default(None, &missing, &mut err).expect("empty config");
        assert_eq!(cfg, Config::default());
        let said = String::from_utf8(err).expect("utf-8");
        assert_eq!(said.lines().count(), 1, "{said}");
        assert!(
            said.contains("does not exist: using an empty configuration"),
            "{said}"
        );

        let mut err = Vec::new();
        let e = load_config_or_default(Some(&missing), &missing, &mut err)
            .expect_err("an explicit missing config is an error");
        assert!(
            matches!(e, CliError::Config(ConfigError::Read { .. })),
            "{e}"
        );
        assert!(err.is_empty());
    }
}
