//! Durations as operators write them: `90s`, `2m`, `1h30m`, `500ms`.

use std::time::Duration;

/// A duration that could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration {text:?}: expected a number with a unit, like 30s, 2m or 1h30m")]
pub struct DurationError {
    /// What was given.
    pub text: String,
}

/// Parses `1h30m`, `2m`, `45s`, `500ms` (units h, m, s, ms; at least one).
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let err = || DurationError {
        text: text.to_owned(),
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(err());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        if digits == 0 {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(err)?),
            "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(err)?),
            "s" => Duration::from_secs(n),
            "ms" => Duration::from_millis(n),
            _ => return Err(err()),
        };
        total = total.checked_add(unit).ok_or_else(err)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// `2m30s` style, for output.
#[must_use]
pub fn format(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, sec) => format!("{m}m{sec}s"),
        (h, m, sec) => format!("{h}h{m}m{sec}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_operators_write() {
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "2", "m", "2x", "-1s", "1.5m", "s2"] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(
            parse("2q")
                .expect_err("bad unit")
                .to_string()
                .contains("like 30s")
        );
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_secs(120)), "2m");
        assert_eq!(format(Duration::from_secs(7)), "7s");
        assert_eq!(format(Duration::from_secs(3661)), "1h1m1s");
    }
}
