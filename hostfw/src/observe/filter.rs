//! Which flows `hostfw observe` shows.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::Flow;

/// The verdicts a flow can have.
const VERDICTS: [&str; 3] = ["allowed", "denied", "audit"];

/// A verdict name that is none of the known ones.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid verdict {given:?}: expected allowed, denied or audit (or hubble's forwarded, dropped)"
)]
pub struct FilterError {
    /// The name as given.
    pub given: String,
}

/// The verdict named `name`: `allowed`, `denied` or `audit`, any case;
/// hubble's `forwarded` and `dropped` are read as `allowed` and `denied`.
pub fn parse_verdict(name: &str) -> Result<&'static str, FilterError> {
    let lower = name.to_ascii_lowercase();
    let canonical = match lower.as_str() {
        "forwarded" => "allowed",
        "dropped" => "denied",
        other => other,
    };
    VERDICTS
        .iter()
        .copied()
        .find(|v| *v == canonical)
        .ok_or_else(|| FilterError {
            given: name.to_string(),
        })
}

/// A selection of flows. The default selects every flow.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Verdicts to show (see [`parse_verdict`]); empty = all.
    #[serde(default)]
    pub verdicts: Vec<String>,
    /// Only flows at or after this time.
    #[serde(default)]
    pub since: Option<SystemTime>,
    /// At most this many, the newest (as `hubble observe --last N`).
    #[serde(default)]
    pub last: Option<usize>,
}

impl Filter {
    /// A filter of these verdicts, checked and made canonical.
    pub fn with_verdicts<S: AsRef<str>>(verdicts: &[S]) -> Result<Self, FilterError> {
        let mut out: Vec<String> = Vec::new();
        for v in verdicts {
            let v = parse_verdict(v.as_ref())?.to_string();
            if !out.contains(&v) {
                out.push(v);
            }
        }
        Ok(Self {
            verdicts: out,
            ..Self::default()
        })
    }

    /// Whether `flow` is selected (`last` aside: that is for
    /// [`Recorder::recent`](super::Recorder::recent)).
    #[must_use]
    pub fn matches(&self, flow: &Flow) -> bool {
        let verdict_ok = self.verdicts.is_empty()
            || self.verdicts.iter().any(|v| {
                parse_verdict(v).is_ok_and(|v| v == flow.verdict)
                    || v.eq_ignore_ascii_case(&flow.verdict)
            });
        let time_ok = self.since.is_none_or(|since| flow.time.0 >= since);
        verdict_ok && time_ok
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::observe::testutil::flow;

    #[test]
    fn verdict_names() {
        assert_eq!(parse_verdict("AUDIT"), Ok("audit"));
        assert_eq!(parse_verdict("dropped"), Ok("denied"));
        assert_eq!(parse_verdict("Forwarded"), Ok("allowed"));
        let err = parse_verdict("rejected").expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "invalid verdict \"rejected\": expected allowed, denied or audit (or hubble's \
             forwarded, dropped)"
        );
        let f = Filter::with_verdicts(&["DROPPED", "denied", "audit"]).expect("valid");
        assert_eq!(f.verdicts, vec!["denied".to_string(), "audit".to_string()]);
        assert!(Filter::with_verdicts(&["nope"]).is_err());
    }

    #[test]
    fn matches_verdicts_and_time() {
        let all = Filter::default();
        assert!(all.matches(&flow("allowed", 10)));
        let f = Filter {
            verdicts: vec!["audit".into(), "DROPPED".into()],
            since: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(10)),
            last: None,
        };
        assert!(f.matches(&flow("audit", 10)));
        assert!(f.matches(&flow("denied", 11)));
        assert!(!f.matches(&flow("allowed", 11)));
        assert!(!f.matches(&flow("audit", 9)));
        let json = serde_json::to_string(&f).expect("serialize");
        let back: Filter = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, f);
        let empty: Filter = serde_json::from_str("{}").expect("defaults");
        assert_eq!(empty, Filter::default());
    }
}
