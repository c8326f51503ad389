//! Observing verdicts: `hostfw observe` and `hostfw suggest` (DESIGN.md
//! section 3), and the rate-limited journal lines of drops and audits.
//!
//! - [`enrich`] turns a ring-buffer [`VerdictEvent`](crate::datapath::events::VerdictEvent)
//!   into a [`Flow`]: wall-clock time ([`clock`]), interface name
//!   ([`IfNames`]), the policy and rule of the lowered report.
//! - [`Recorder`] keeps the recent flows (a bounded ring) for
//!   `observe`, hands new ones to followers (`observe --follow`), and
//!   aggregates the would-be-denied ones ([`Seen`]) for `suggest`.
//! - [`suggest()`] writes a CiliumClusterwideNetworkPolicy that would allow
//!   what was denied, for a person to review.
//! - [`LogLimiter`] rate-limits the log lines of drops and audits.

mod aggregate;
pub mod clock;
mod filter;
mod flow;
mod ifnames;
mod journal;
mod peers;
mod recorder;
mod suggest;
mod suggest_context;
mod suggest_rules;
mod walltime;
mod yaml;

#[cfg(test)]
mod suggest_tests;
#[cfg(test)]
mod testutil;

pub use aggregate::{Aggregate, Seen};
pub use filter::{Filter, FilterError, parse_verdict};
pub use flow::{Flow, Icmp, enrich, enrich_at};
pub use ifnames::IfNames;
pub use journal::{LogDecision, LogLimiter, Suppressed};
pub use recorder::Recorder;
pub use suggest::{POLICY_NAME, suggest};
pub use suggest_context::SuggestContext;
pub use walltime::{TimeParseError, WallTime};
