//! The `hostfw` command: parses the command line and dispatches.

use std::{io, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use hostfw::{cli, config, daemon};

#[derive(Parser)]
#[command(
    name = "hostfw",
    version,
    about = "Host firewall: Cilium host policies enforced with eBPF"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the firewall service: attach to the interfaces and enforce.
    Daemon {
        /// Configuration file.
        #[arg(long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// On exit, detach and remove all pins instead of leaving the last
        /// policy enforcing.
        #[arg(long)]
        detach_on_exit: bool,
        /// bpffs directory of the pins.
        #[arg(long, default_value = hostfw_common::names::PIN_ROOT, hide = true)]
        pin_root: PathBuf,
        /// State directory: the confirmed policy and the pending trial.
        #[arg(long, default_value = daemon::store::DEFAULT_DIR, hide = true)]
        state_dir: PathBuf,
        /// Control socket.
        #[arg(long, default_value = hostfw::control::DEFAULT_SOCKET, hide = true)]
        socket: PathBuf,
    },
    /// The daemon's state: mode, trial countdown, interfaces, policies,
    /// failsafe, last error, counters.
    Status(cli::control::StatusArgs),
    /// Apply policy files (or the configured ones afresh), optionally as a
    /// trial that reverts by itself. Refuses a policy that would cut the
    /// ssh session it is run from, unless --force.
    Apply(cli::control::ApplyArgs),
    /// Make the pending trial the confirmed policy.
    Confirm(cli::control::SocketArg),
    /// Revert the pending trial now.
    Rollback(cli::control::SocketArg),
    /// Switch to audit or enforce; enforce is applied as a trial.
    Mode(cli::control::ModeArgs),
    /// Stop the daemon. The last policy stays enforced unless --detach.
    Stop(cli::control::StopArgs),
    /// Verdicts the datapath reported, like `hubble observe`.
    Observe(cli::observe::ObserveArgs),
    /// A CCNP (YAML, for review) that would allow the flows audit mode saw
    /// denied.
    Suggest(cli::observe::SuggestArgs),
    /// Validate policy files offline and show what each policy becomes on
    /// this node; exit non-zero on any error.
    #[command(after_help = cli::NODE_FACTS_HELP)]
    Check(cli::check::CheckArgs),
    /// What the policy does to one flow, and which rule decides. Exit 0
    /// whatever the verdict; non-zero only for an error.
    #[command(after_help = cli::NODE_FACTS_HELP)]
    Trace(cli::trace::TraceArgs),
    /// Write the man page and shell completions (for packaging).
    #[command(hide = true)]
    Generate(cli::generate::GenerateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    hostfw::logging::init();
    let result = match cli.command {
        Command::Daemon {
            config,
            detach_on_exit,
            pin_root,
            state_dir,
            socket,
        } => run_daemon(daemon::DaemonOptions {
            config,
            detach_on_exit,
            pin_root,
            state_dir,
            socket,
        }),
        Command::Status(args) => {
            cli::control::status(&args, &mut io::stdout()).map_err(anyhow::Error::from)
        }
        Command::Apply(args) => {
            cli::control::apply(&args, &mut io::stdout()).map_err(anyhow::Error::from)
        }
        Command::Confirm(args) => {
            cli::control::confirm(&args, &mut io::stdout()).map_err(anyhow::Error::from)
        }
        Command::Rollback(args) => {
            cli::control::rollback(&args, &mut io::stdout()).map_err(anyhow::Error::from)
        }
        Command::Observe(args) => {
            cli::observe::observe(&args, &mut io::stdout()).map_err(anyhow::Error::from)
        }
        Command::Suggest(args) => {
            cli::observe::suggest(&args, &mut io::stdout()).map_err(anyhow::Error::from)
        }
        Command::Stop(args) => {
            cli::control::stop(&args, &mut io::stdout()).map_err(anyhow::Error::from)
        }
        Command::Mode(args) => {
            cli::control::mode(&args, &mut io::stdout()).map_err(anyhow::Error::from)
        }
        Command::Check(args) => cli::check::run(&args, &mut io::stdout(), &mut io::stderr())
            .map_err(anyhow::Error::from),
        Command::Trace(args) => cli::trace::run(&args, &mut io::stdout(), &mut io::stderr())
            .map_err(anyhow::Error::from),
        Command::Generate(args) => cli::generate::run(
            <Cli as clap::CommandFactory>::command(),
            &args,
            &mut io::stdout(),
        )
        .map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hostfw: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_daemon(opts: daemon::DaemonOptions) -> anyhow::Result<()> {
    daemon::memory::limit_arenas();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(daemon::run(opts))?;
    Ok(())
}
