//! Drops and audits in the log (the journal under systemd), rate-limited:
//! a token bucket, and a line saying how many were suppressed once lines
//! may flow again.

use std::{
    fmt,
    time::{Duration, Instant},
};

use super::Flow;

/// Lines suppressed by the limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suppressed {
    /// How many.
    pub count: u64,
    /// When the first of them was suppressed.
    pub since: Instant,
}

impl fmt::Display for Suppressed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} more drop/audit lines suppressed (rate limit)",
            self.count
        )
    }
}

/// What to do with one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogDecision {
    /// Log it.
    Log,
    /// Log the summary of the suppressed lines, then this line.
    LogAfter(Suppressed),
    /// Drop it (counted, for the summary).
    Suppress,
}

/// A token bucket: `rate` lines a second on average, bursts of `burst`.
/// Time is given by the caller, so tests use synthetic instants.
#[derive(Clone, Debug)]
pub struct LogLimiter {
    /// Time one token takes to come back.
    per_token: Duration,
    /// Time the full bucket takes to fill: `burst` tokens.
    capacity: Duration,
    /// Tokens in the bucket, as time (`per_token` each).
    credit: Duration,
    last: Option<Instant>,
    suppressed: Option<Suppressed>,
}

impl Default for LogLimiter {
    fn default() -> Self {
        Self::new(Self::DEFAULT_RATE, Self::DEFAULT_BURST)
    }
}

impl LogLimiter {
    /// Default lines per second.
    pub const DEFAULT_RATE: u32 = 20;
    /// Default burst.
    pub const DEFAULT_BURST: u32 = 100;

    /// `rate` lines a second (at least 1), bursts of `burst` (at least 1);
    /// the bucket starts full.
    #[must_use]
    pub fn new(rate: u32, burst: u32) -> Self {
        let per_token = Duration::from_secs(1) / rate.max(1);
        let capacity = per_token * burst.max(1);
        Self {
            per_token,
            capacity,
            credit: capacity,
            last: None,
            suppressed: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last);
            self.credit = (self.credit + elapsed).min(self.capacity);
        }
        if self.last.is_none_or(|last| now > last) {
            self.last = Some(now);
        }
    }

    /// Whether a line may be logged at `now`.
    pub fn decide(&mut self, now: Instant) -> LogDecision {
        self.refill(now);
        if self.credit >= self.per_token {
            self.credit -= self.per_token;
            match self.suppressed.take() {
                Some(s) => LogDecision::LogAfter(s),
                None => LogDecision::Log,
            }
        } else {
            match &mut self.suppressed {
                Some(s) => s.count += 1,
                None => {
                    self.suppressed = Some(Suppressed {
                        count: 1,
                        since: now,
                    });
                }
            }
            LogDecision::Suppress
        }
    }

    /// `Some` when a line may be logged at `now`, holding the lines
    /// suppressed before it (`count` 0: none); `None` when it must be
    /// dropped.
    pub fn allow(&mut self, now: Instant) -> Option<Suppressed> {
        match self.decide(now) {
            LogDecision::Log => Some(Suppressed {
                count: 0,
                since: now,
            }),
            LogDecision::LogAfter(s) => Some(s),
            LogDecision::Suppress => None,
        }
    }

    /// The suppressed lines, if any and a line may be logged now: for a
    /// timer, so that the summary is written even when no line follows.
    pub fn flush(&mut self, now: Instant) -> Option<Suppressed> {
        self.suppressed?;
        self.refill(now);
        if self.credit >= self.per_token {
            self.credit -= self.per_token;
            self.suppressed.take()
        } else {
            None
        }
    }

    /// Logs `flow` if it was denied (at warning level) or audited (info),
    /// within the limit; allowed flows are not logged.
    pub fn log_flow(&mut self, flow: &Flow, now: Instant) {
        if !flow.is_drop_or_audit() {
            return;
        }
        let level = if flow.verdict == "denied" {
            log::Level::Warn
        } else {
            log::Level::Info
        };
        match self.decide(now) {
            LogDecision::Suppress => {}
            LogDecision::Log => log::log!(target: "hostfw::verdict", level, "{flow}"),
            LogDecision::LogAfter(s) => {
                log::warn!(target: "hostfw::verdict", "{s}");
                log::log!(target: "hostfw::verdict", level, "{flow}");
            }
        }
    }

    /// Logs the summary of suppressed lines if it is due (see
    /// [`LogLimiter::flush`]).
    pub fn log_flush(&mut self, now: Instant) {
        if let Some(s) = self.flush(now) {
            log::warn!(target: "hostfw::verdict", "{s}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::testutil::flow;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn bursts_then_the_rate() {
        let t0 = Instant::now();
        let mut l = LogLimiter::new(20, 100);
        for _ in 0..100 {
            assert_eq!(l.decide(t0), LogDecision::Log);
        }
        assert_eq!(l.decide(t0), LogDecision::Suppress);
        assert_eq!(l.decide(ms(t0, 49)), LogDecision::Suppress);
        // One token every 50 ms.
        assert_eq!(
            l.decide(ms(t0, 50)),
            LogDecision::LogAfter(Suppressed {
                count: 2,
                since: t0
            })
        );
        assert_eq!(l.decide(ms(t0, 60)), LogDecision::Suppress);
        assert_eq!(
            l.decide(ms(t0, 100)),
            LogDecision::LogAfter(Suppressed {
                count: 1,
                since: ms(t0, 60)
            })
        );
        // A second: 20 lines, not more.
        let logged = (0..1000)
            .map(|i| l.decide(ms(t0, 101 + i)))
            .filter(|d| *d != LogDecision::Suppress)
            .count();
        assert_eq!(logged, 20);
    }

    #[test]
    fn refills_to_the_burst_only() {
        let t0 = Instant::now();
        let mut l = LogLimiter::new(20, 100);
        for _ in 0..100 {
            assert!(l.allow(t0).is_some());
        }
        let later = t0 + Duration::from_secs(3600);
        let mut n = 0;
        while l.allow(later).is_some() {
            n += 1;
        }
        assert_eq!(n, 100);
        let s = l.allow(later + Duration::from_secs(1)).expect("refilled");
        assert_eq!(s.count, 1);
        assert_eq!(
            s.to_string(),
            "1 more drop/audit lines suppressed (rate limit)"
        );
        assert_eq!(
            l.allow(later + Duration::from_secs(1)).map(|s| s.count),
            Some(0)
        );
    }

    #[test]
    fn flush_reports_when_no_line_follows() {
        let t0 = Instant::now();
        let mut l = LogLimiter::new(1, 1);
        assert_eq!(l.flush(t0), None);
        assert_eq!(l.decide(t0), LogDecision::Log);
        for _ in 0..5 {
            assert_eq!(l.decide(t0), LogDecision::Suppress);
        }
        assert_eq!(l.flush(ms(t0, 500)), None, "no token yet");
        let s = l.flush(ms(t0, 1000)).expect("due");
        assert_eq!((s.count, s.since), (5, t0));
        assert_eq!(l.flush(ms(t0, 5000)), None, "reported once");
        // Time going backwards does not mint tokens.
        let mut l = LogLimiter::new(1, 1);
        assert_eq!(l.decide(ms(t0, 1000)), LogDecision::Log);
        assert_eq!(l.decide(t0), LogDecision::Suppress);
        assert_eq!(l.decide(ms(t0, 1500)), LogDecision::Suppress);
    }

    #[test]
    fn logs_only_drops_and_audits() {
        let t0 = Instant::now();
        let mut l = LogLimiter::new(1, 1);
        l.log_flow(&flow("allowed", 1), t0);
        l.log_flow(&flow("denied", 1), t0);
        l.log_flow(&flow("audit", 1), t0);
        l.log_flow(&flow("audit", 1), t0);
        assert_eq!(l.flush(ms(t0, 1000)).map(|s| s.count), Some(2));
        l.log_flush(ms(t0, 2000));
    }
}
