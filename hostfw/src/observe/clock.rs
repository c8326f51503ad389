//! The datapath stamps events with the boot clock (`CLOCK_BOOTTIME`,
//! `bpf_ktime_get_boot_ns`); people read wall-clock time.

use std::time::{Duration, SystemTime};

use nix::time::{ClockId, clock_gettime};

/// Nanoseconds of `CLOCK_BOOTTIME` now; `None` if the clock cannot be read.
#[must_use]
pub fn boot_now_ns() -> Option<u64> {
    let ts = clock_gettime(ClockId::CLOCK_BOOTTIME).ok()?;
    let secs = u64::try_from(ts.tv_sec()).ok()?;
    let nanos = u64::try_from(ts.tv_nsec()).ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// The wall-clock time of boot-clock instant `ts_ns`, by the offset
/// between the two clocks now. If the boot clock cannot be read, now.
#[must_use]
pub fn boot_to_wall(ts_ns: u64) -> SystemTime {
    let wall_now = SystemTime::now();
    match boot_now_ns() {
        Some(boot_now) => boot_to_wall_at(ts_ns, boot_now, wall_now),
        None => wall_now,
    }
}

/// The wall-clock time of boot-clock instant `ts_ns`, given that the boot
/// clock reads `boot_now_ns` at wall-clock time `wall_now`.
#[must_use]
pub fn boot_to_wall_at(ts_ns: u64, boot_now_ns: u64, wall_now: SystemTime) -> SystemTime {
    if ts_ns <= boot_now_ns {
        let ago = Duration::from_nanos(boot_now_ns - ts_ns);
        wall_now
            .checked_sub(ago)
            .filter(|t| *t >= SystemTime::UNIX_EPOCH)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    } else {
        let ahead = Duration::from_nanos(ts_ns - boot_now_ns);
        wall_now.checked_add(ahead).unwrap_or(wall_now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_by_the_clocks_difference() {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |ts| boot_to_wall_at(ts, 5_000_000_000, wall);
        assert_eq!(at(5_000_000_000), wall);
        assert_eq!(at(3_500_000_000), wall - Duration::from_millis(1500));
        assert_eq!(at(5_000_000_001), wall + Duration::from_nanos(1));
        let early = boot_to_wall_at(0, u64::MAX, SystemTime::UNIX_EPOCH);
        assert_eq!(early, SystemTime::UNIX_EPOCH, "saturates at the epoch");
    }

    #[test]
    fn an_event_of_now_is_now() {
        let boot = boot_now_ns().expect("CLOCK_BOOTTIME");
        let wall = boot_to_wall(boot);
        let diff = SystemTime::now()
            .duration_since(wall)
            .unwrap_or(Duration::ZERO);
        assert!(diff < Duration::from_secs(5), "{diff:?}");
    }
}
