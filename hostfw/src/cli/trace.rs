//! `hostfw trace (--ingress | --egress) --peer ADDR …` (DESIGN.md section
//! 3: a stable contract for scripts).

use std::{
    io::{self, Write},
    net::IpAddr,
    path::PathBuf,
};

use clap::ArgGroup;
use hostfw_common::proto;

use super::CliError;
use crate::{
    check::render_errors,
    ruleset::Direction,
    source,
    trace::{TraceQuery, trace},
};

/// `--proto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
    /// ICMP (IPv4 peers).
    Icmp,
    /// ICMPv6 (IPv6 peers).
    Icmpv6,
}

impl Proto {
    /// The IP protocol number.
    #[must_use]
    pub const fn number(self) -> u8 {
        match self {
            Self::Tcp => proto::TCP,
            Self::Udp => proto::UDP,
            Self::Sctp => proto::SCTP,
            Self::Icmp => proto::ICMP,
            Self::Icmpv6 => proto::ICMPV6,
        }
    }
}

/// `-o`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// For people.
    Text,
    /// One JSON object: {"verdict", "policy", "rule", "reason"}.
    Json,
}

/// The arguments of `hostfw trace`.
#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("direction").required(true).args(["ingress", "egress"])))]
pub struct TraceArgs {
    /// A flow into the node: the peer is its source.
    #[arg(long)]
    pub ingress: bool,
    /// A flow out of the node: the peer is its destination.
    #[arg(long)]
    pub egress: bool,
    /// The remote address (IPv4 or IPv6).
    #[arg(long, value_name = "ADDR")]
    pub peer: IpAddr,
    /// IP protocol.
    #[arg(long, value_enum, default_value_t = Proto::Tcp)]
    pub proto: Proto,
    /// Destination port (tcp, udp, sctp); without it the port is unknown
    /// and only rules on every port can match.
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// ICMP or ICMPv6 type, a number or a name of the protocol's family
    /// (EchoRequest, NeighborSolicitation, …); without it the type is
    /// unknown and only rules without toPorts or icmps can match.
    #[arg(long, value_name = "N|NAME")]
    pub icmp_type: Option<String>,
    /// Configuration file for --policies (node labels and addresses,
    /// cluster sets, failsafe, mode) [default: /etc/hostfw/hostfw.toml, or
    /// an empty configuration if it does not exist].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Trace offline against these policy files or directories (repeat for
    /// more) instead of the configuration's [policies] paths. Without it,
    /// trace asks the running daemon.
    #[arg(long, value_name = "FILE|DIR")]
    pub policies: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_name = "FORMAT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Control socket of the daemon (without --policies).
    #[arg(long, value_name = "PATH", default_value = crate::control::DEFAULT_SOCKET)]
    pub socket: PathBuf,
}

/// Runs `trace`: the verdict on `out`; a policy that does not validate is
/// printed on `err` as `hostfw check` prints it and gives
/// [`CliError::Invalid`]. The verdict itself is never an error.
pub fn run(args: &TraceArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let direction = if args.egress {
        Direction::Egress
    } else {
        Direction::Ingress
    };
    let q = TraceQuery::new(
        direction,
        args.peer,
        args.proto.number(),
        args.port,
        args.icmp_type.as_deref(),
    )?;
    if args.policies.is_empty() {
        return from_daemon(args, &q, out);
    }
    let cfg = super::load_config(args.config.as_deref(), err)?;
    let lowered = match source::read(&cfg, &args.policies)?.into_lowered() {
        Ok(lowered) => lowered,
        Err(errors) => {
            err.write_all(render_errors(&errors).as_bytes())?;
            return Err(CliError::Invalid {
                count: errors.len(),
            });
        }
    };
    let traced = trace(&lowered, &q);
    match args.output {
        Output::Json => {
            serde_json::to_writer(&mut *out, &traced).map_err(io::Error::from)?;
            writeln!(out)?;
        }
        Output::Text => out.write_all(traced.render(&q).as_bytes())?,
    }
    Ok(())
}

/// `trace` against the policy the running daemon enforces.
fn from_daemon(args: &TraceArgs, q: &TraceQuery, out: &mut dyn Write) -> Result<(), CliError> {
    let req = crate::control::Request::Trace {
        direction: q.direction.name().to_owned(),
        peer: q.peer,
        proto: q.proto,
        port: q.port,
        icmp_type: q.icmp_type,
    };
    let resp = crate::control::request(&args.socket, &req, std::time::Duration::from_secs(10))?;
    if !resp.ok {
        return Err(CliError::Refused(resp.message));
    }
    match args.output {
        Output::Json => {
            let data = resp.data.unwrap_or_default();
            serde_json::to_writer(&mut *out, &data).map_err(io::Error::from)?;
            writeln!(out)?;
        }
        Output::Text => out.write_all(resp.message.as_bytes())?,
    }
    Ok(())
}
