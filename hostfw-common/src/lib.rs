//! Types shared by the hostfw eBPF programs and userspace.
//!
//! Every map of the datapath is described here once: its name, its key and
//! value types and the constants that give them meaning. The kernel side
//! (`hostfw-ebpf`) and userspace (`hostfw`) both build on these definitions,
//! so a layout change cannot reach only one side.
//!
//! All types are `#[repr(C)]` without implicit padding (size asserts below)
//! and spell out their byte order in field names (`_be` = network order).
#![no_std]

pub mod config;
pub mod conntrack;
pub mod event;
pub mod names;
pub mod policy;
pub mod stats;

#[cfg(feature = "user")]
mod pod;

/// Traffic direction as seen from the node.
pub const DIR_INGRESS: u8 = 0;
/// Traffic leaving the node.
pub const DIR_EGRESS: u8 = 1;

/// Address family tags used in keys and events.
pub const FAMILY_V4: u8 = 4;
/// IPv6.
pub const FAMILY_V6: u8 = 6;

/// IP protocol numbers the datapath understands.
pub mod proto {
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = 132;
}
