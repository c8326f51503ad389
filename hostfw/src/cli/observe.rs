//! `hostfw observe` and `hostfw suggest`.

use std::{
    io::{BufRead as _, BufReader, Write},
    os::unix::net::UnixStream,
    time::Duration,
};

use super::{
    CliError,
    control::{Output, SocketArg},
};
use crate::{
    control::{self, Request},
    duration,
    observe::{Filter, Flow},
};

/// `hostfw observe`.
#[derive(Debug, clap::Args)]
pub struct ObserveArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// Only these verdicts: allowed, denied, audit (hubble's forwarded and
    /// dropped are understood); repeat for more.
    #[arg(long, value_name = "VERDICT")]
    verdict: Vec<String>,
    /// Keep running and show new verdicts as they come.
    #[arg(short, long)]
    follow: bool,
    /// Only the last N recorded verdicts.
    #[arg(long, value_name = "N")]
    last: Option<usize>,
    /// Only verdicts of the last DURATION (e.g. 10m).
    #[arg(long, value_name = "DURATION")]
    since: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    output: Output,
}

/// Runs `observe`.
pub fn observe(args: &ObserveArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let mut filter =
        Filter::with_verdicts(&args.verdict).map_err(|e| CliError::Usage(e.to_string()))?;
    filter.last = args.last;
    if let Some(since) = &args.since {
        let d = duration::parse(since).map_err(|e| CliError::Usage(e.to_string()))?;
        filter.since = std::time::SystemTime::now().checked_sub(d);
    }
    let req = Request::Observe {
        filter,
        follow: args.follow,
    };
    let path = &args.socket.socket;
    let io = |source| control::ControlError::Io {
        path: path.clone(),
        source,
    };
    let mut stream =
        UnixStream::connect(path).map_err(|source| control::ControlError::Connect {
            path: path.clone(),
            source,
        })?;
    if !args.follow {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(io)?;
    }
    let mut line = serde_json::to_string(&req).map_err(control::ControlError::Decode)?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
    for (i, line) in BufReader::new(stream).lines().enumerate() {
        let line = line.map_err(io)?;
        // A refusal (not allowed, too many streams) comes as the one line
        // of an answer instead of flows.
        if i == 0
            && let Ok(answer) = serde_json::from_str::<control::Response>(&line)
            && !answer.ok
        {
            return Err(CliError::Refused(answer.message));
        }
        match args.output {
            Output::Json => writeln!(out, "{line}")?,
            Output::Text => {
                let flow: Flow =
                    serde_json::from_str(&line).map_err(control::ControlError::Decode)?;
                writeln!(out, "{flow}")?;
            }
        }
        out.flush()?;
    }
    Ok(())
}

/// `hostfw suggest`.
#[derive(Debug, clap::Args)]
pub struct SuggestArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// Only flows of the last DURATION (e.g. 1h); default: since the
    /// daemon started.
    #[arg(long, value_name = "DURATION")]
    since: Option<String>,
}

/// Runs `suggest`: the YAML on `out`.
pub fn suggest(args: &SuggestArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let since_ms = args
        .since
        .as_deref()
        .map(duration::parse)
        .transpose()
        .map_err(|e| CliError::Usage(e.to_string()))?
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let resp = control::request(
        &args.socket.socket,
        &Request::Suggest { since_ms },
        Duration::from_secs(30),
    )?;
    if !resp.ok {
        return Err(CliError::Refused(resp.message));
    }
    out.write_all(resp.message.as_bytes())?;
    Ok(())
}
