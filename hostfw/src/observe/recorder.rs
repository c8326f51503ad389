//! The daemon's memory of verdicts: a bounded ring of recent flows for
//! `hostfw observe`, a broadcast channel for `observe --follow`, and the
//! [`Aggregate`] of denied flows for `hostfw suggest`.

use std::{
    collections::VecDeque,
    sync::{Mutex, MutexGuard, PoisonError},
    time::SystemTime,
};

use tokio::sync::broadcast;

use super::{Aggregate, Filter, Flow, Seen};

/// Recent flows, followers and the aggregate; shared (`Arc<Recorder>`)
/// between the ring-buffer reader and the control server.
#[derive(Debug)]
pub struct Recorder {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Flow>,
}

#[derive(Debug)]
struct Inner {
    ring: VecDeque<Flow>,
    capacity: usize,
    aggregate: Aggregate,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl Recorder {
    /// Default number of recent flows kept.
    pub const DEFAULT_CAPACITY: usize = 10_000;
    /// Default number of flows a follower may fall behind before it
    /// misses some (`broadcast::error::RecvError::Lagged`).
    pub const DEFAULT_FOLLOW_BUFFER: usize = 4096;

    /// Keeps the `capacity` most recent flows; the aggregate and the
    /// follow buffer have their default bounds.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self::with_limits(
            capacity,
            Aggregate::DEFAULT_LIMIT,
            Self::DEFAULT_FOLLOW_BUFFER,
        )
    }

    /// Keeps the `capacity` most recent flows and at most `seen_limit`
    /// aggregate entries; followers may lag `follow_buffer` flows (at
    /// least 1).
    #[must_use]
    pub fn with_limits(capacity: usize, seen_limit: usize, follow_buffer: usize) -> Self {
        let (tx, _) = broadcast::channel(follow_buffer.max(1));
        Self {
            inner: Mutex::new(Inner {
                ring: VecDeque::with_capacity(capacity.min(1024)),
                capacity,
                aggregate: Aggregate::new(seen_limit),
            }),
            tx,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere leaves plain data behind; keep going.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `flow`: into the ring (evicting the oldest when full), the
    /// aggregate (if denied or audited) and to the followers.
    pub fn record(&self, flow: Flow) {
        {
            let mut inner = self.lock();
            inner.aggregate.add(&flow);
            if inner.capacity > 0 {
                if inner.ring.len() >= inner.capacity {
                    inner.ring.pop_front();
                }
                inner.ring.push_back(flow.clone());
            }
        }
        // No follower is not an error.
        let _ = self.tx.send(flow);
    }

    /// The recent flows `filter` selects, oldest first; with
    /// `filter.last`, only that many of the newest.
    #[must_use]
    pub fn recent(&self, filter: &Filter) -> Vec<Flow> {
        let inner = self.lock();
        let mut out: Vec<Flow> = inner
            .ring
            .iter()
            .filter(|f| filter.matches(f))
            .cloned()
            .collect();
        if let Some(n) = filter.last
            && out.len() > n
        {
            out.drain(..out.len() - n);
        }
        out
    }

    /// Every flow recorded from now on (followers apply their
    /// [`Filter::matches`] themselves).
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Flow> {
        self.tx.subscribe()
    }

    /// The aggregate of denied and audited flows last seen at or after
    /// `since`, for [`suggest`](super::suggest()).
    #[must_use]
    pub fn seen(&self, since: Option<SystemTime>) -> Vec<Seen> {
        self.lock().aggregate.seen(since)
    }

    /// What the aggregate left out, for the suggestion's header
    /// ([`SuggestContext::notes`](super::SuggestContext::notes)).
    #[must_use]
    pub fn seen_notes(&self) -> Vec<String> {
        self.lock().aggregate.notes()
    }

    /// Flows in the ring.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().ring.len()
    }

    /// The ring is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().ring.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::broadcast::error::TryRecvError;

    use super::*;
    use crate::observe::testutil::flow;

    fn port(f: &Flow) -> u16 {
        f.dport.unwrap_or_default()
    }

    fn numbered(verdict: &str, i: u16) -> Flow {
        Flow {
            dport: Some(i),
            ..flow(verdict, u64::from(i))
        }
    }

    #[test]
    fn the_ring_evicts_the_oldest() {
        let r = Recorder::new(5);
        assert!(r.is_empty());
        for i in 0..12 {
            r.record(numbered(if i % 2 == 0 { "audit" } else { "allowed" }, i));
        }
        assert_eq!(r.len(), 5);
        let all: Vec<u16> = r.recent(&Filter::default()).iter().map(port).collect();
        assert_eq!(all, vec![7, 8, 9, 10, 11]);
        let audit = Filter::with_verdicts(&["audit"]).expect("valid");
        let got: Vec<u16> = r.recent(&audit).iter().map(port).collect();
        assert_eq!(got, vec![8, 10]);
        let last = Filter {
            last: Some(2),
            since: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(8)),
            ..Filter::default()
        };
        let got: Vec<u16> = r.recent(&last).iter().map(port).collect();
        assert_eq!(got, vec![10, 11]);
        let none = Recorder::new(0);
        none.record(numbered("audit", 1));
        assert!(none.is_empty());
        assert_eq!(
            none.seen(None).len(),
            1,
            "the aggregate does not depend on the ring"
        );
    }

    #[test]
    fn the_aggregate_outlives_the_ring() {
        let r = Recorder::with_limits(2, 100, 8);
        for i in 0..50 {
            r.record(numbered("audit", i));
            r.record(numbered("allowed", i));
        }
        assert_eq!(r.len(), 2);
        let seen = r.seen(None);
        assert_eq!(seen.len(), 50);
        assert!(seen.iter().all(|s| s.count == 1));
        let recent = r.seen(Some(SystemTime::UNIX_EPOCH + Duration::from_secs(45)));
        assert_eq!(recent.len(), 5);
        assert!(r.seen_notes().is_empty());
        let tiny = Recorder::with_limits(2, 3, 8);
        for i in 0..5 {
            tiny.record(numbered("denied", i));
        }
        assert_eq!(tiny.seen(None).len(), 3);
        assert_eq!(tiny.seen_notes().len(), 1);
    }

    #[test]
    fn followers_get_new_flows() {
        let r = Recorder::with_limits(10, 10, 2);
        r.record(numbered("audit", 1));
        let mut rx = r.subscribe();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        r.record(numbered("audit", 2));
        assert_eq!(rx.try_recv().map(|f| port(&f)), Ok(2));
        for i in 3..7 {
            r.record(numbered("audit", i));
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(2)));
        assert_eq!(rx.try_recv().map(|f| port(&f)), Ok(5));
        assert_eq!(rx.try_recv().map(|f| port(&f)), Ok(6));
    }
}
