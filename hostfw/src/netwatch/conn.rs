//! The netlink connection: opening, subscribing and dumping.
//!
//! The connection future is never spawned on its own: it is polled together
//! with whatever waits on it ([`with_conn`]), so a dump cannot end early
//! because the connection died unnoticed.

use std::{future::Future, pin::Pin};

use futures::{FutureExt, StreamExt, TryStreamExt, channel::mpsc::UnboundedReceiver};
use netlink_packet_route::{RouteNetlinkMessage, address::AddressMessage, link::LinkMessage};
use rtnetlink::{
    Handle, MulticastGroup,
    packet_core::NetlinkMessage,
    proto::Connection,
    sys::{AsyncSocket, SocketAddr},
};

use super::NetwatchError;

/// The connection future, pinned so it can be polled repeatedly.
pub(super) type Conn = Pin<Box<Connection<RouteNetlinkMessage>>>;
/// Notifications (and overrun markers) not answering a request.
pub(super) type Messages = UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

/// The groups the watcher joins, with their names for errors.
const GROUPS: [(MulticastGroup, &str); 3] = [
    (MulticastGroup::Link, "RTNLGRP_LINK"),
    (MulticastGroup::Ipv4Ifaddr, "RTNLGRP_IPV4_IFADDR"),
    (MulticastGroup::Ipv6Ifaddr, "RTNLGRP_IPV6_IFADDR"),
];

/// Receive buffer asked for (the kernel caps it at `net.core.rmem_max`);
/// an overflow is recovered from by a resync, this only makes it rarer.
const RCVBUF: usize = 4 << 20;

/// Opens a route socket in the calling thread's network namespace and joins
/// the link and address groups. Synchronous on purpose (module docs).
pub(super) fn open_subscribed() -> Result<(Conn, Handle, Messages), NetwatchError> {
    let (mut conn, handle, messages) =
        rtnetlink::new_connection().map_err(NetwatchError::Socket)?;
    let socket = conn.socket_mut().socket_mut();
    socket.bind_auto().map_err(NetwatchError::Bind)?;
    for (group, name) in GROUPS {
        socket
            .add_membership(group as u32)
            .map_err(|source| NetwatchError::Subscribe {
                group: name,
                source,
            })?;
    }
    if let Err(e) = socket.set_rx_buf_sz(RCVBUF) {
        log::debug!("netwatch: cannot enlarge the netlink receive buffer: {e}");
    }
    Ok((Box::pin(conn), handle, messages))
}

/// Runs `fut` while driving the connection; `None` if the connection ended
/// first.
pub(super) async fn with_conn<F: Future>(conn: &mut Conn, fut: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        () = conn.as_mut() => None,
        out = fut => Some(out),
    }
}

/// All links (`RTM_GETLINK` dump).
pub(super) async fn dump_links(
    conn: &mut Conn,
    handle: &Handle,
) -> Result<Vec<LinkMessage>, NetwatchError> {
    let what = "links";
    let dump = handle.link().get().execute().try_collect::<Vec<_>>();
    with_conn(conn, dump)
        .await
        .ok_or(NetwatchError::Closed { what })?
        .map_err(|source| NetwatchError::Dump { what, source })
}

/// All addresses of all families (`RTM_GETADDR` dump).
pub(super) async fn dump_addresses(
    conn: &mut Conn,
    handle: &Handle,
) -> Result<Vec<AddressMessage>, NetwatchError> {
    let what = "addresses";
    let dump = handle.address().get().execute().try_collect::<Vec<_>>();
    with_conn(conn, dump)
        .await
        .ok_or(NetwatchError::Closed { what })?
        .map_err(|source| NetwatchError::Dump { what, source })
}

/// The next notification, driving the connection meanwhile; `None` once
/// the connection or the stream ended.
pub(super) async fn next_message(
    conn: &mut Conn,
    messages: &mut Messages,
) -> Option<NetlinkMessage<RouteNetlinkMessage>> {
    with_conn(conn, messages.next())
        .await
        .flatten()
        .map(|(msg, _)| msg)
}

/// A notification already queued, without waiting.
pub(super) fn queued_message(
    messages: &mut Messages,
) -> Option<NetlinkMessage<RouteNetlinkMessage>> {
    messages.next().now_or_never().flatten().map(|(msg, _)| msg)
}
