//! Errors of the kernel side: loading, attaching, writing maps.

use std::{io, path::PathBuf};

/// An error from the datapath loader or writer.
#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    /// bpffs could not be found or mounted.
    #[error("bpffs is not mounted at {path} and mounting it failed: {source}")]
    Bpffs {
        /// Mount point.
        path: PathBuf,
        /// Cause.
        #[source]
        source: nix::Error,
    },
    /// A pin directory could not be created or read.
    #[error("cannot use pin directory {path}: {source}")]
    PinDir {
        /// Directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The kernel lacks a feature the programs use (see `datapath::kernel`).
    #[error("{0}")]
    Kernel(String),
    /// The eBPF object failed to load (verifier, map creation).
    #[error("loading the eBPF object failed: {0}")]
    Load(#[source] Box<aya::EbpfError>),
    /// A program failed to load or attach.
    #[error("program {program}: {action} failed: {source}")]
    Program {
        /// Program name.
        program: &'static str,
        /// What was being done.
        action: String,
        /// Cause.
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    /// A program or map is missing from the object.
    #[error("the eBPF object has no {kind} named {name}")]
    Missing {
        /// "program" or "map".
        kind: &'static str,
        /// Name.
        name: &'static str,
    },
    /// A map operation failed.
    #[error("map {map}: {action} failed: {source}")]
    Map {
        /// Map name.
        map: &'static str,
        /// What was being done.
        action: &'static str,
        /// Cause.
        #[source]
        source: Box<aya::maps::MapError>,
    },
    /// The record of whose program runs at XDP on an interface (the
    /// `HFW_XDP_OWNED` slot TC ingress reads) could not be written.
    #[error("{ifname}: recording whether XDP there is hostfw's: {message}")]
    XdpOwner {
        /// Interface.
        ifname: String,
        /// What failed.
        message: String,
    },
    /// A link pin could not be created, read or removed.
    #[error("link pin {path}: {message}")]
    LinkPin {
        /// Pin path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A netlink request about an interface failed.
    #[error("{ifname}: {message}")]
    Netlink {
        /// Interface.
        ifname: String,
        /// What failed.
        message: String,
    },
    /// The interface does not exist.
    #[error("interface {0} does not exist")]
    NoInterface(String),
    /// The new policy does not fit in a map; nothing was switched.
    #[error(transparent)]
    Capacity(#[from] crate::mapstate::CapacityError),
    /// Reading the boot clock failed.
    #[error("reading CLOCK_BOOTTIME failed: {0}")]
    Clock(#[source] nix::Error),
}

impl DatapathError {
    pub(crate) fn map(map: &'static str, action: &'static str, e: aya::maps::MapError) -> Self {
        Self::Map {
            map,
            action,
            source: Box::new(e),
        }
    }

    /// A batched map call ([`super::batch`]) the kernel refused.
    pub(crate) fn batch(
        map: &'static str,
        action: &'static str,
        e: super::batch::BatchError,
    ) -> Self {
        Self::map(
            map,
            action,
            aya::maps::MapError::SyscallError(aya::sys::SyscallError {
                call: "bpf_map_*_batch",
                io_error: e.source,
            }),
        )
    }

    pub(crate) fn program(
        program: &'static str,
        action: impl Into<String>,
        e: aya::programs::ProgramError,
    ) -> Self {
        Self::Program {
            program,
            action: action.into(),
            source: Box::new(e),
        }
    }
}
