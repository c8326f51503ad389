//! The watcher task: notifications in, [`NetEvent`]s out.

use rtnetlink::{Handle, packet_core::NetlinkPayload};
use tokio::{
    sync::mpsc::{self, Receiver, Sender},
    task::JoinHandle,
};

use super::{
    NetEvent, NetwatchError,
    conn::{self, Conn, Messages},
    tracker::{Batch, Tracker},
};

/// Events waiting for the consumer; the task waits (and the kernel buffers)
/// when the consumer is this far behind.
const CAPACITY: usize = 256;

/// Watches link and address changes of one network namespace.
///
/// Dropping it stops the watch. The receiver returned by [`Watcher::start`]
/// yields `None` once the watch stopped, either because the watcher was
/// dropped or because the netlink connection failed (logged); the daemon
/// should then start a new watcher and resynchronise from [`super::snapshot`].
#[derive(Debug)]
pub struct Watcher {
    task: JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watcher {
    /// Subscribes to `RTNLGRP_LINK`, `RTNLGRP_IPV4_IFADDR` and
    /// `RTNLGRP_IPV6_IFADDR`, learns the current links and addresses, and
    /// spawns the task that reports changes from then on.
    ///
    /// The socket is created and subscribed synchronously on the first poll,
    /// before any `.await`, so it watches the network namespace of the
    /// thread that first polls this future (see the module docs). Must run
    /// inside a tokio runtime. Links present at start are not reported;
    /// read them with [`super::snapshot`] after this returns.
    pub async fn start() -> Result<(Watcher, Receiver<NetEvent>), NetwatchError> {
        let (mut conn, handle, messages) = conn::open_subscribed()?;
        // Notifications arriving during the dumps wait in `messages`; those
        // already reflected in the dumps are deduplicated by the tracker.
        let links = conn::dump_links(&mut conn, &handle).await?;
        let addresses = conn::dump_addresses(&mut conn, &handle).await?;
        let tracker = Tracker::seed(&links, &addresses);
        let (tx, rx) = mpsc::channel(CAPACITY);
        let task = tokio::spawn(run(conn, handle, messages, tracker, tx));
        Ok((Watcher { task }, rx))
    }

    /// Whether the watch stopped (connection failure).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Reads batches of notifications (one, plus whatever is already queued),
/// resynchronises after an overrun, and sends the batch's events.
async fn run(
    mut conn: Conn,
    handle: Handle,
    mut messages: Messages,
    mut tracker: Tracker,
    tx: Sender<NetEvent>,
) {
    loop {
        let Some(first) = conn::next_message(&mut conn, &mut messages).await else {
            log::error!(
                "netwatch: the netlink connection closed; interface changes are no longer seen"
            );
            return;
        };
        let mut batch = Batch::default();
        let mut overrun = false;
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg.payload {
                NetlinkPayload::InnerMessage(m) => tracker.apply(&m, &mut batch),
                NetlinkPayload::Overrun(_) => overrun = true,
                _ => {}
            }
            next = conn::queued_message(&mut messages);
        }
        if overrun {
            log::warn!(
                "netwatch: netlink notifications were lost (buffer overrun); resynchronising"
            );
            if let Err(e) = resync(&mut conn, &handle, &mut tracker, &mut batch).await {
                log::error!("netwatch: resynchronising failed: {e}");
                return;
            }
        }
        for event in batch.finish() {
            match conn::with_conn(&mut conn, tx.send(event)).await {
                Some(Ok(())) => {}
                Some(Err(_)) => return, // receiver dropped
                None => {
                    log::error!("netwatch: the netlink connection closed");
                    return;
                }
            }
        }
    }
}

async fn resync(
    conn: &mut Conn,
    handle: &Handle,
    tracker: &mut Tracker,
    batch: &mut Batch,
) -> Result<(), NetwatchError> {
    let links = conn::dump_links(conn, handle).await?;
    let addresses = conn::dump_addresses(conn, handle).await?;
    tracker.resync(&links, &addresses, batch);
    Ok(())
}
