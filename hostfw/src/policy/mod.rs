//! The policy front end: Cilium host policies (CCNP YAML or hostfw's
//! TOML) → validated [`Policy`] values → a [`RuleSet`](crate::ruleset::RuleSet)
//! for one node.
//!
//! - [`load_paths`] / [`load`] read files and directories (`*.yaml`,
//!   `*.yml`, `*.toml`, sorted by name), [`parse_str`] reads text. Every
//!   error names the file, line and column, the policy and the rule
//!   ([`PolicyError`]).
//! - [`lower`] turns the policies that select this node into a rule set,
//!   with a [`Report`] of what each policy became and where each rule id
//!   comes from.
//!
//! DESIGN.md section 1 is the specification; where it is silent, Cilium's
//! documented behaviour and `pkg/policy` decide. See [`lower`](lower::lower)
//! for the semantics.

mod cidr;
mod decode;
mod document;
pub mod entities;
mod error;
pub mod icmp;
mod load;
mod lower;
mod model;
pub mod select;
mod toml;
mod tree;
mod yaml;

pub use entities::Entity;
pub use error::{ErrorKind, PolicyError, Pos};
pub use load::{
    Collected, DEFAULT_MAX_FILE_SIZE, FileReport, FileStatus, Loaded, SourceFile, check_unique,
    collect, format_of, load, load_paths, parse_collected, parse_str, read_text,
};
pub use lower::{
    CidrOverlap, ContextError, FailsafeEntry, LowerContext, Lowered, PolicyReport, Report,
    RuleCounts, RuleOrigin, Selection, lower,
};
pub use model::{
    CidrPeer, DefaultDeny, Format, IcmpFamily, IcmpMatch, L4Match, Operator, Peer, PeerRule,
    Policy, PortMatch, Protocol, Requirement, Selector, Spec, Subject,
};

#[cfg(test)]
mod tests;
