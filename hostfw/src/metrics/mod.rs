//! Metrics in the Prometheus text format on a loopback port.
//!
//! The daemon fills in a [`Snapshot`] (plain data: packet counters, per-rule
//! flow counters, interfaces, conntrack usage, reload and trial events),
//! [`render`] turns it into the text exposition format 0.0.4, and
//! [`MetricsServer`] answers `GET /metrics` with fresh text per request.
//! Only loopback addresses are accepted ([`listen_addr`], [`MetricsServer::bind`]).

mod render;
mod server;

pub use render::{CONTENT_TYPE, InterfaceSample, RuleSample, Snapshot, render};
pub use server::{MetricsError, MetricsServer, listen_addr, serve};
