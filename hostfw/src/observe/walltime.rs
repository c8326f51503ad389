//! Wall-clock time of a flow: RFC 3339 in JSON, `Nov 25 02:53:48.123` for
//! people. Both in UTC (the daemon need not know the time zone).

use std::{
    fmt,
    time::{Duration, SystemTime},
};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A wall-clock instant; serialized as RFC 3339 with nanoseconds, UTC
/// (`2024-11-25T02:53:48.123456789Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WallTime(pub SystemTime);

/// Text that is not an RFC 3339 time.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid time {text:?}: expected RFC 3339, like 2024-11-25T02:53:48.123Z")]
pub struct TimeParseError {
    /// The text as given.
    pub text: String,
}

/// Broken-down UTC time.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
    nanos: u32,
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31); H. Hinnant's
/// `civil_from_days`.
const fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

/// (year, month 1-12, day 1-31) → days since 1970-01-01; H. Hinnant's
/// `days_from_civil`.
const fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl WallTime {
    /// Now.
    #[must_use]
    pub fn now() -> Self {
        Self(SystemTime::now())
    }

    fn civil(self) -> Civil {
        // Before the epoch (a clock gone wrong): shown as the epoch.
        let since = self
            .0
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let secs = since.as_secs();
        let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
        let (year, month, day) = civil_from_days(days);
        let rem = secs % 86_400;
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
            nanos: since.subsec_nanos(),
        }
    }

    /// RFC 3339, UTC, with nanoseconds: `2024-11-25T02:53:48.123456789Z`.
    #[must_use]
    pub fn rfc3339(self) -> String {
        let c = self.civil();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
            c.year, c.month, c.day, c.hour, c.minute, c.second, c.nanos
        )
    }

    /// As `hubble observe` shows it, UTC: `Nov 25 02:53:48.123`.
    #[must_use]
    pub fn short(self) -> String {
        let c = self.civil();
        let month = MONTHS
            .get(c.month.saturating_sub(1) as usize)
            .copied()
            .unwrap_or("???");
        format!(
            "{month} {:02} {:02}:{:02}:{:02}.{:03}",
            c.day,
            c.hour,
            c.minute,
            c.second,
            c.nanos / 1_000_000
        )
    }

    /// Parses RFC 3339: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`
    /// (`t`, `z` and a space for `T` accepted too).
    pub fn parse(text: &str) -> Result<Self, TimeParseError> {
        parse(text).ok_or_else(|| TimeParseError {
            text: text.to_string(),
        })
    }
}

fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

fn parse(text: &str) -> Option<WallTime> {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = i64::try_from(digits(&b[0..4])?).ok()?;
    let month = u32::try_from(digits(&b[5..7])?).ok()?;
    let day = u32::try_from(digits(&b[8..10])?).ok()?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month) || day == 0 || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day) {
        return None; // February 30th and the like
    }
    let mut rest = &b[19..];
    let mut nanos = 0u64;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for (i, &c) in frac[..n].iter().enumerate() {
            if i < 9 {
                nanos += u64::from(c - b'0') * 10u64.pow(8 - i as u32);
            }
        }
        rest = &frac[n..];
    }
    let offset: i64 = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = i64::try_from(digits(&[*h1, *h2])?).ok()?;
            let m = i64::try_from(digits(&[*m1, *m2])?).ok()?;
            if h > 23 || m > 59 {
                return None;
            }
            let o = h * 3600 + m * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let local = days * 86_400 + i64::try_from(hour * 3600 + minute * 60 + second).ok()?;
    let secs = u64::try_from(local - offset).ok()?;
    let t = SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, u32::try_from(nanos).ok()?))?;
    Some(WallTime(t))
}

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl Serialize for WallTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

impl<'de> Deserialize<'de> for WallTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> WallTime {
        WallTime(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
    }

    #[test]
    fn formats_utc() {
        // 2024-11-25T02:53:48Z
        let t = at(1_732_503_228, 123_456_789);
        assert_eq!(t.rfc3339(), "2024-11-25T02:53:48.123456789Z");
        assert_eq!(t.short(), "Nov 25 02:53:48.123");
        assert_eq!(at(0, 0).rfc3339(), "1970-01-01T00:00:00.000000000Z");
        // A leap day.
        assert_eq!(
            at(951_782_400, 0).rfc3339(),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(at(951_782_400, 0).short(), "Feb 29 00:00:00.000");
    }

    #[test]
    fn parses_what_it_writes_and_more() {
        for (secs, nanos) in [(0, 0), (1_732_503_228, 123_456_789), (4_102_444_799, 1)] {
            let t = at(secs, nanos);
            assert_eq!(WallTime::parse(&t.rfc3339()), Ok(t));
        }
        assert_eq!(
            WallTime::parse("2024-11-25T03:53:48.5+01:00"),
            Ok(at(1_732_503_228, 500_000_000))
        );
        assert_eq!(
            WallTime::parse("2024-11-25 02:53:48z"),
            Ok(at(1_732_503_228, 0))
        );
        for bad in [
            "",
            "2024-11-25",
            "2024-02-30T00:00:00Z",
            "2024-11-25T02:53:48",
            "2024-11-25T02:53:48.Z",
            "2024-13-01T00:00:00Z",
            "2024-11-25T24:00:00Z",
            "2024-11-25T02:53:48+0100",
            "1969-12-31T23:59:59Z",
        ] {
            let err = WallTime::parse(bad).expect_err(bad);
            assert_eq!(err.text, bad);
        }
    }

    #[test]
    fn serde_is_rfc3339() {
        let t = at(1_732_503_228, 123_000_000);
        let json = serde_json::to_string(&t).expect("serialize");
        assert_eq!(json, "\"2024-11-25T02:53:48.123000000Z\"");
        let back: WallTime = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, t);
        assert!(serde_json::from_str::<WallTime>("\"yesterday\"").is_err());
    }
}
