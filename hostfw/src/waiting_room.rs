//! Listeners that no client can stall: a bounded waiting room for the
//! connections that have not sent their request yet, and the back-off of
//! an accept loop. The control socket and the metrics endpoint use both.
//!
//! A listener accepts eagerly and seats each new connection in the
//! [`WaitingRoom`] until its request has been read. A real client sends its
//! request right after connecting and leaves the room at once; an idle or
//! trickling one stays. When the room is full, the connection that has
//! waited longest is evicted if it has waited at least `evict_after` (far
//! longer than a real client takes); otherwise the newcomer is refused.
//! So a flood of idle connections holds at most `capacity` descriptors,
//! and a client that connects and sends its request is served while
//! thousands of idle ones connect.
//!
//! [`AcceptBackoff`] makes an accept loop wait after an error (out of
//! descriptors: `EMFILE`, `ENFILE`) instead of spinning, and logs once per
//! burst of errors.

use std::{
    collections::BTreeMap,
    io,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use tokio::sync::oneshot;

/// Connections waiting for their request, at most `capacity`.
#[derive(Clone, Debug)]
pub struct WaitingRoom {
    room: Arc<Mutex<Room>>,
}

#[derive(Debug)]
struct Room {
    capacity: usize,
    evict_after: Duration,
    /// The next seat's number: seats are numbered in arrival order, so the
    /// first entry of `seats` has waited longest.
    next: u64,
    seats: BTreeMap<u64, Seat>,
}

#[derive(Debug)]
struct Seat {
    since: Instant,
    /// Dropped to evict: the ticket's receiver then resolves.
    _evict: oneshot::Sender<()>,
}

/// The room is full of connections that arrived too recently to be evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("too many connections are waiting to send their request")]
pub struct Full;

/// A seat in the waiting room, held until the request is read: dropping
/// it leaves the room.
#[derive(Debug)]
pub struct Ticket {
    id: u64,
    room: Arc<Mutex<Room>>,
    evicted: oneshot::Receiver<()>,
}

fn lock(room: &Mutex<Room>) -> MutexGuard<'_, Room> {
    // The room's state stays consistent across a panic (each change is one
    // map operation), so a poisoned lock is used as it is.
    room.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WaitingRoom {
    /// A room of `capacity` seats; when it is full, a connection that has
    /// waited `evict_after` or longer gives its seat to a newcomer.
    #[must_use]
    pub fn new(capacity: usize, evict_after: Duration) -> Self {
        Self {
            room: Arc::new(Mutex::new(Room {
                capacity,
                evict_after,
                next: 0,
                seats: BTreeMap::new(),
            })),
        }
    }

    /// Seats a new connection now (see [`Self::admit_at`]).
    pub fn admit(&self) -> Result<Ticket, Full> {
        self.admit_at(Instant::now())
    }

    /// Seats a connection arriving at `now`. A full room evicts the
    /// connection waiting longest if it has waited `evict_after`, else
    /// refuses the newcomer.
    pub fn admit_at(&self, now: Instant) -> Result<Ticket, Full> {
        let mut room = lock(&self.room);
        if room.seats.len() >= room.capacity {
            let evict_after = room.evict_after;
            match room.seats.first_entry() {
                Some(oldest)
                    if now.saturating_duration_since(oldest.get().since) >= evict_after =>
                {
                    // Dropping the seat drops its sender: the ticket's
                    // holder sees `evicted()` resolve and closes.
                    oldest.remove();
                }
                _ => return Err(Full),
            }
        }
        let id = room.next;
        room.next += 1;
        let (evict, evicted) = oneshot::channel();
        room.seats.insert(
            id,
            Seat {
                since: now,
                _evict: evict,
            },
        );
        Ok(Ticket {
            id,
            room: Arc::clone(&self.room),
            evicted,
        })
    }

    /// Connections seated now.
    #[must_use]
    pub fn waiting(&self) -> usize {
        lock(&self.room).seats.len()
    }
}

impl Ticket {
    /// Resolves when this connection is evicted: its holder should close
    /// it. Never resolves for a connection that keeps its seat.
    pub async fn evicted(&mut self) {
        // The sender is only ever dropped, never used: an error is the
        // eviction.
        let _ = (&mut self.evicted).await;
    }

    /// Whether this connection has been evicted already.
    #[must_use]
    pub fn is_evicted(&mut self) -> bool {
        !matches!(
            self.evicted.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        )
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        lock(&self.room).seats.remove(&self.id);
    }
}

/// What an accept loop does after an error: wait [`Self::PAUSE`], log the
/// first error of a burst and, once accepting works again, how many
/// failed.
#[derive(Debug)]
pub struct AcceptBackoff {
    what: String,
    failures: u64,
}

impl AcceptBackoff {
    /// The pause after a failed accept.
    pub const PAUSE: Duration = Duration::from_millis(100);

    /// For the listener described by `what` (e.g. "control socket
    /// /run/hostfw/hostfw.sock"), named in the log lines.
    #[must_use]
    pub fn new(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            failures: 0,
        }
    }

    /// An accept failed: logs it if it starts a burst, then waits
    /// [`Self::PAUSE`] (descriptors or memory may come back; retrying at
    /// once would spin).
    pub async fn failed(&mut self, e: &io::Error) {
        if let Some(line) = self.record_failure(e) {
            log::warn!("{line}");
        }
        tokio::time::sleep(Self::PAUSE).await;
    }

    /// A connection was accepted: ends a burst of errors.
    pub fn accepted(&mut self) {
        if let Some(line) = self.record_success() {
            log::info!("{line}");
        }
    }

    /// The line to log for a failure, if it is the first of a burst.
    fn record_failure(&mut self, e: &io::Error) -> Option<String> {
        self.failures += 1;
        (self.failures == 1).then(|| {
            format!(
                "{}: accept failed: {e}; retrying every {} ms (logged once until it works again)",
                self.what,
                Self::PAUSE.as_millis()
            )
        })
    }

    /// The line to log for a success, if it ends a burst.
    fn record_success(&mut self) -> Option<String> {
        let failures = std::mem::take(&mut self.failures);
        (failures > 0).then(|| {
            format!(
                "{}: accepting again after {failures} failed attempts",
                self.what
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn seats_up_to_capacity_then_refuses_recent_arrivals() {
        let t0 = Instant::now();
        let room = WaitingRoom::new(3, Duration::from_millis(50));
        let tickets: Vec<Ticket> = (0..3)
            .map(|i| room.admit_at(ms(t0, i)).expect("a seat"))
            .collect();
        assert_eq!(room.waiting(), 3);
        // The oldest has waited 49 ms only: the newcomer is refused.
        assert_eq!(room.admit_at(ms(t0, 49)).err(), Some(Full));
        assert_eq!(room.waiting(), 3);
        drop(tickets);
        assert_eq!(room.waiting(), 0, "dropped tickets leave the room");
    }

    #[test]
    fn a_full_room_evicts_the_connection_waiting_longest() {
        let t0 = Instant::now();
        let room = WaitingRoom::new(2, Duration::from_millis(50));
        let mut first = room.admit_at(t0).expect("seat");
        let mut second = room.admit_at(ms(t0, 10)).expect("seat");
        let mut third = room.admit_at(ms(t0, 50)).expect("evicts the first");
        assert!(first.is_evicted());
        assert!(!second.is_evicted() && !third.is_evicted());
        assert_eq!(room.waiting(), 2);
        // The second has waited 40 ms at 50 ms: not yet.
        assert_eq!(room.admit_at(ms(t0, 50)).err(), Some(Full));
        let mut fourth = room.admit_at(ms(t0, 60)).expect("evicts the second");
        assert!(second.is_evicted() && !third.is_evicted() && !fourth.is_evicted());
        // An evicted ticket's drop does not free anyone else's seat.
        drop(first);
        drop(second);
        assert_eq!(room.waiting(), 2);
        assert!(!third.is_evicted() && !fourth.is_evicted());
    }

    #[test]
    fn a_ticket_that_left_frees_its_seat_for_anyone() {
        let t0 = Instant::now();
        let room = WaitingRoom::new(1, Duration::from_secs(3600));
        let served = room.admit_at(t0).expect("seat");
        assert_eq!(room.admit_at(t0).err(), Some(Full));
        drop(served);
        let _next = room.admit_at(t0).expect("the seat is free again");
    }

    #[test]
    fn a_zero_room_refuses_everyone() {
        let room = WaitingRoom::new(0, Duration::ZERO);
        assert_eq!(room.admit().err(), Some(Full));
    }

    #[tokio::test]
    async fn eviction_wakes_the_waiting_connection() {
        let room = WaitingRoom::new(1, Duration::ZERO);
        let mut idle = room.admit().expect("seat");
        let waiter = tokio::spawn(async move {
            idle.evicted().await;
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        let _newcomer = room.admit().expect("evicts the idle one");
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("joined");
    }

    #[test]
    fn accept_errors_are_logged_once_per_burst() {
        let mut b = AcceptBackoff::new("control socket /x");
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let first = b.record_failure(&emfile).expect("first failure logged");
        assert!(
            first.contains("control socket /x: accept failed"),
            "{first}"
        );
        assert!(first.contains("retrying every 100 ms"), "{first}");
        for _ in 0..99 {
            assert_eq!(b.record_failure(&emfile), None);
        }
        let back = b.record_success().expect("end of the burst logged");
        assert_eq!(
            back,
            "control socket /x: accepting again after 100 failed attempts"
        );
        assert_eq!(b.record_success(), None);
        assert!(b.record_failure(&emfile).is_some(), "a new burst");
    }
}
