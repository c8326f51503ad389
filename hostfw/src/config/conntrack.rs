//! `[conntrack]`: the sizes of the connection trackers.
//!
//! Sizes are read at start. A changed size recreates the tracker at the
//! daemon's next start, carrying its flows over (as many as fit).

use hostfw_common::conntrack::{DEFAULT_CT_ESTABLISHED, DEFAULT_CT_NEW};
use serde::Deserialize;

/// Smallest size accepted for either tracker.
pub const MIN_ENTRIES: u32 = 1024;
/// Largest size accepted for either tracker (about 2 GiB of kernel memory
/// at ~120 bytes per entry).
pub const MAX_ENTRIES: u32 = 1 << 24;

/// `[conntrack]`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Conntrack {
    /// Established flows (answered, and confirmed by their originator).
    /// New flows never evict them.
    #[serde(deserialize_with = "established")]
    pub established: u32,
    /// New flows, not answered yet: what a flood of spoofed SYNs fills.
    #[serde(deserialize_with = "new")]
    pub new: u32,
}

impl Default for Conntrack {
    fn default() -> Self {
        Self {
            established: DEFAULT_CT_ESTABLISHED,
            new: DEFAULT_CT_NEW,
        }
    }
}

fn established<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    entries(d, "established")
}

fn new<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    entries(d, "new")
}

fn entries<'de, D: serde::Deserializer<'de>>(d: D, key: &str) -> Result<u32, D::Error> {
    let n = i64::deserialize(d)
        .map_err(|e| serde::de::Error::custom(format!("[conntrack] {key}: {e}")))?;
    match u32::try_from(n) {
        Ok(n) if (MIN_ENTRIES..=MAX_ENTRIES).contains(&n) => Ok(n),
        _ => Err(serde::de::Error::custom(format!(
            "[conntrack] {key} must be {MIN_ENTRIES} to {MAX_ENTRIES} entries, not {n}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    #[test]
    fn sizes_default_and_parse() {
        let c = Config::parse("", Path::new("t.toml")).expect("empty");
        assert_eq!(c.conntrack, super::Conntrack::default());
        let c = Config::parse(
            "[conntrack]\nestablished = 1000000\nnew = 4096\n",
            Path::new("t.toml"),
        )
        .expect("sizes");
        assert_eq!(
            (c.conntrack.established, c.conntrack.new),
            (1_000_000, 4096)
        );
    }

    #[test]
    fn bad_sizes_and_unknown_keys_are_errors_naming_the_key() {
        for (text, needle) in [
            ("[conntrack]\nestablished = 10\n", "established"),
            ("[conntrack]\nnew = -1\n", "new"),
            ("[conntrack]\nnew = 99999999999\n", "new"),
            ("[conntrack]\nestablished = \"big\"\n", "established"),
            ("[conntrack]\nmax = 5\n", "max"),
        ] {
            let e = Config::parse(text, Path::new("t.toml"))
                .expect_err(text)
                .to_string();
            assert!(e.contains(needle) && e.contains("t.toml"), "{text}: {e}");
        }
    }
}
