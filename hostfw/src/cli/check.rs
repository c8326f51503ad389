//! `hostfw check [--config FILE] FILE|DIR…`.

use std::{io::Write, path::PathBuf};

use super::CliError;
use crate::check::{check, render_errors};

/// The arguments of `hostfw check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Configuration file (node labels and addresses, cluster sets,
    /// failsafe, mode) [default: /etc/hostfw/hostfw.toml, or an empty
    /// configuration if it does not exist].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Policy files (*.yaml, *.yml, *.toml) and directories of them.
    #[arg(value_name = "FILE|DIR", required = true)]
    pub paths: Vec<PathBuf>,
}

/// Runs `check`: the summary on `out`, the errors on `err` (one
/// `FILE:LINE:COL: policy NAME, PATH: MESSAGE` line each). Any error gives
/// [`CliError::Invalid`].
pub fn run(args: &CheckArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let cfg = super::load_config(args.config.as_deref(), err)?;
    let report = check(&cfg, &args.paths)?;
    out.write_all(report.summary().as_bytes())?;
    out.flush()?;
    if report.is_ok() {
        return Ok(());
    }
    err.write_all(render_errors(&report.errors).as_bytes())?;
    Err(CliError::Invalid {
        count: report.errors.len(),
    })
}
