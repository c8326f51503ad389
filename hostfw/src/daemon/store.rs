//! `/var/lib/hostfw`: the last confirmed policy and the pending trial,
//! written atomically (temporary file, fsync, rename, fsync of the
//! directory) so that a crash or reboot finds one or the other whole.

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use crate::ruleset::Mode;

/// Default state directory.
pub const DEFAULT_DIR: &str = "/var/lib/hostfw";

/// One policy file as applied: its path (for messages) and its text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its text at apply time.
    pub text: String,
}

/// Where a policy comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "files")]
pub enum Sources {
    /// The files of the configuration's `[policies] paths`, read afresh.
    Configured,
    /// Files given to `hostfw apply`, kept as applied.
    Files(Vec<SourceFile>),
}

/// A policy as enforced: its sources and the mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Policy sources.
    pub sources: Sources,
    /// Audit or enforce.
    #[serde(with = "mode_serde")]
    pub mode: Mode,
    /// With `[kubernetes]`: the cluster's data this policy was lowered
    /// with, so that a restart with the API server unreachable, or a revert,
    /// enforces exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<crate::kubernetes::ClusterView>,
}

/// A pending trial: what it applied, and when it reverts (wall clock, so
/// that it holds across a reboot).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialRecord {
    /// The trial's policy.
    pub snapshot: Snapshot,
    /// Deadline in milliseconds since the Unix epoch.
    pub deadline_unix_ms: u64,
}

impl TrialRecord {
    /// A record for a trial of `duration` from now.
    #[must_use]
    pub fn new(snapshot: Snapshot, duration: Duration) -> Self {
        let deadline = SystemTime::now() + duration;
        Self {
            snapshot,
            deadline_unix_ms: unix_ms(deadline),
        }
    }

    /// Time left, or `None` once the deadline has passed.
    #[must_use]
    pub fn remaining(&self) -> Option<Duration> {
        let now = unix_ms(SystemTime::now());
        self.deadline_unix_ms
            .checked_sub(now)
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

mod mode_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::ruleset::Mode;

    pub fn serialize<S: Serializer>(m: &Mode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match m {
            Mode::Audit => "audit",
            Mode::Enforce => "enforce",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        match String::deserialize(d)?.as_str() {
            "audit" => Ok(Mode::Audit),
            "enforce" => Ok(Mode::Enforce),
            other => Err(serde::de::Error::custom(format!("unknown mode {other:?}"))),
        }
    }
}

/// A state file that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading, writing or renaming failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not what hostfw writes.
    #[error("{path}: not a hostfw state file: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

/// The state directory.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

const CONFIRMED: &str = "confirmed.json";
const TRIAL: &str = "trial.json";

impl Store {
    /// The store in `dir` (created on first write).
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The last confirmed policy, if one was ever confirmed.
    pub fn confirmed(&self) -> Result<Option<Snapshot>, StoreError> {
        self.read(CONFIRMED)
    }

    /// The pending trial, if any.
    pub fn trial(&self) -> Result<Option<TrialRecord>, StoreError> {
        self.read(TRIAL)
    }

    /// Records `s` as the confirmed policy.
    pub fn save_confirmed(&self, s: &Snapshot) -> Result<(), StoreError> {
        self.write(CONFIRMED, s)
    }

    /// Records a pending trial.
    pub fn save_trial(&self, t: &TrialRecord) -> Result<(), StoreError> {
        self.write(TRIAL, t)
    }

    /// Forgets the pending trial.
    pub fn clear_trial(&self) -> Result<(), StoreError> {
        let path = self.dir.join(TRIAL);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    fn read<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<Option<T>, StoreError> {
        let path = self.dir.join(name);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| StoreError::Corrupt { path, source })
    }

    fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let text = serde_json::to_string_pretty(value).map_err(|source| StoreError::Corrupt {
            path: path.clone(),
            source,
        })?;
        let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(text.as_bytes()).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(&self.dir)
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::env::temp_dir().join(format!("hostfw-store-{}-{n}", std::process::id()))
    }

    #[test]
    fn confirmed_and_trial_round_trip_and_clear() {
        let dir = temp();
        let store = Store::new(&dir);
        assert_eq!(store.confirmed().expect("read"), None);
        let snap = Snapshot {
            cluster: None,
            sources: Sources::Files(vec![SourceFile {
                path: "/etc/x.yaml".into(),
                text: "a: 1\n".into(),
            }]),
            mode: Mode::Enforce,
        };
        store.save_confirmed(&snap).expect("save");
        assert_eq!(store.confirmed().expect("read"), Some(snap.clone()));
        let trial = TrialRecord::new(snap, Duration::from_secs(60));
        store.save_trial(&trial).expect("save trial");
        let back = store.trial().expect("read").expect("present");
        assert!(
            back.remaining()
                .is_some_and(|r| r <= Duration::from_secs(60))
        );
        store.clear_trial().expect("clear");
        store.clear_trial().expect("clearing twice is fine");
        assert_eq!(store.trial().expect("read"), None);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_expired_trial_has_no_time_left() {
        let t = TrialRecord {
            snapshot: Snapshot {
                cluster: None,
                sources: Sources::Configured,
                mode: Mode::Audit,
            },
            deadline_unix_ms: 1,
        };
        assert_eq!(t.remaining(), None);
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = temp();
        fs::create_dir_all(&dir).expect("dir");
        fs::write(dir.join(CONFIRMED), "{not json").expect("write");
        let err = Store::new(&dir).confirmed().expect_err("corrupt");
        assert!(err.to_string().contains("confirmed.json"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }
}
