//! Interfaces and addresses from rtnetlink: a one-shot [`snapshot`] and a
//! [`Watcher`] that turns link and address notifications into [`NetEvent`]s.
//!
//! The daemon uses them to attach to interfaces that appear after start,
//! to clean up after deleted ones and to keep entity `host` equal to the
//! node's current addresses: take a [`snapshot`] *after* [`Watcher::start`],
//! then re-read the addresses with [`snapshot`] on each
//! [`NetEvent::AddressesChanged`].
//!
//! # Network namespaces
//!
//! A netlink socket belongs to the network namespace that was current for
//! the thread that created it. Both [`snapshot`] and [`Watcher::start`]
//! create their socket synchronously, on their first poll, before their
//! first `.await`; so they watch the namespace of the thread that first
//! polls them. Await them directly on the thread whose namespace matters
//! (e.g. `rt.block_on(Watcher::start())`, or `.await` on a current-thread
//! runtime running on that thread); do not hand them to `tokio::spawn` on a
//! multi-thread runtime whose workers are in another namespace. Once
//! created, the socket stays in its namespace whichever thread polls it.

mod conn;
mod parse;
mod tracker;
mod watcher;

use std::{io, net::IpAddr};

pub use watcher::Watcher;

/// One network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// The interface's addresses (IPv4 and IPv6, all scopes, loopback
    /// included; callers filter what they do not want).
    pub addresses: Vec<IpAddr>,
}

/// A change reported by the [`Watcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// An interface appeared (an index not seen before), or an existing one
    /// was renamed (then `name` is the new name). Attribute and state
    /// changes of a known interface are not reported.
    LinkAdded {
        /// Interface index.
        index: u32,
        /// Interface name.
        name: String,
    },
    /// An interface was deleted (or moved to another namespace).
    LinkRemoved {
        /// Interface index.
        index: u32,
        /// Interface name.
        name: String,
    },
    /// The set of the namespace's addresses changed; read it again with
    /// [`snapshot`]. Several changes at once give one event.
    AddressesChanged,
}

/// What failed while talking to rtnetlink.
#[derive(Debug, thiserror::Error)]
pub enum NetwatchError {
    /// The netlink route socket could not be opened.
    #[error("cannot open a netlink route socket: {0}")]
    Socket(#[source] io::Error),
    /// The netlink route socket could not be bound.
    #[error("cannot bind the netlink route socket: {0}")]
    Bind(#[source] io::Error),
    /// Joining a multicast group failed.
    #[error("cannot subscribe to netlink multicast group {group}: {source}")]
    Subscribe {
        /// The group, e.g. `RTNLGRP_LINK`.
        group: &'static str,
        /// The error.
        source: io::Error,
    },
    /// A dump request failed.
    #[error("netlink dump of {what} failed: {source}")]
    Dump {
        /// What was dumped: `links` or `addresses`.
        what: &'static str,
        /// The error.
        source: rtnetlink::Error,
    },
    /// The netlink connection closed before a dump finished.
    #[error("the netlink connection closed during the dump of {what}")]
    Closed {
        /// What was dumped: `links` or `addresses`.
        what: &'static str,
    },
}

/// The current interfaces with their addresses, sorted by index.
///
/// Opens its own netlink socket in the network namespace of the thread that
/// first polls the future (see the [module documentation](self)).
pub async fn snapshot() -> Result<Vec<Link>, NetwatchError> {
    let (conn, handle, _messages) = rtnetlink::new_connection().map_err(NetwatchError::Socket)?;
    let mut conn = Box::pin(conn);
    let links = conn::dump_links(&mut conn, &handle).await?;
    let addresses = conn::dump_addresses(&mut conn, &handle).await?;
    Ok(parse::assemble(&links, &addresses))
}
