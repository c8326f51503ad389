//! hostfw: a host firewall for bare Linux nodes.
//!
//! The library holds all of hostfw's work; `main.rs` only parses the
//! command line. Layers, from the policy to the kernel:
//! [`ruleset`] (the lowered policy) → [`mapstate`] (desired map contents,
//! pure) → [`datapath`] (load, attach, write with an atomic switch).
//! [`refeval`] evaluates a rule set directly and is the tests' oracle.
//! Offline tools: [`check`] validates policy files, [`trace`] explains what
//! the policy does to one flow; [`cli`] runs them for the command line.

pub mod check;
pub mod cli;
pub mod config;
pub mod control;
pub mod craft;
pub mod daemon;
pub mod datapath;
pub mod duration;
pub mod kubernetes;
pub mod logging;
pub mod mapstate;
pub mod metrics;
pub mod netwatch;
pub mod observe;
pub mod policy;
pub mod refeval;
pub mod ruleset;
pub mod sockdiag;
pub mod source;
pub mod testgen;
pub mod trace;
pub mod waiting_room;
