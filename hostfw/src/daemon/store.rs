//! `/var/lib/hostfw`: the last confirmed policy and the pending trial,
//! each stored as what was enforced — the policy files' text, the mode and
//! the cluster's data — not as a recipe of files to read again. Written
//! durably (temporary file, fsync, rename, fsync of the directory; the
//! temporary file is removed when any step fails) so that a crash or
//! reboot finds one version or the other whole. Read back with validation:
//! a file that is not a record hostfw wrote is moved aside
//! ([`Store::set_aside`]), never half-used.

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

pub use crate::policy::SourceFile;
use crate::ruleset::Mode;

/// Default state directory.
pub const DEFAULT_DIR: &str = "/var/lib/hostfw";

/// The version of the records written here.
pub const FORMAT: u32 = 2;

/// Largest state file read back (a policy of 100,000 rules is ~10 MiB).
const MAX_RECORD: u64 = 256 << 20;

/// Where an enforced policy's files came from, which decides what a
/// reload does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The configuration's `[policies] paths`: a reload reads them again.
    Configured,
    /// Files given to `hostfw apply`: kept as applied until the next apply.
    Applied,
}

/// A policy as enforced: the files' text, the mode and the cluster data.
/// Everything needed to enforce it again, without reading any file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Where the files came from.
    pub origin: Origin,
    /// The policy files as read (or as applied), in order.
    pub files: Vec<SourceFile>,
    /// Audit or enforce.
    pub mode: Mode,
    /// With `[kubernetes]`: the cluster's data this policy was lowered
    /// with, so that a restart with the API server unreachable, or a revert,
    /// enforces exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<crate::kubernetes::ClusterView>,
}

impl Snapshot {
    /// No policy file, in `mode`: the failsafe entries only.
    #[must_use]
    pub fn empty(mode: Mode) -> Self {
        Self {
            origin: Origin::Configured,
            files: Vec::new(),
            mode,
            cluster: None,
        }
    }
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

/// The confirmed policy as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// The policy as confirmed.
    Policy(Snapshot),
    /// A record of hostfw 0.1, which stored "the configured paths" without
    /// their text: its mode and cluster data, and the files must be read.
    Recipe {
        /// The confirmed mode.
        mode: Mode,
        /// The cluster data.
        cluster: Option<crate::kubernetes::ClusterView>,
    },
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
    /// The file is not a record hostfw writes.
    #[error("{path}: not a hostfw state record: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The state directory.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

/// The confirmed policy's file name.
pub const CONFIRMED: &str = "confirmed.json";
/// The pending trial's file name.
pub const TRIAL: &str = "trial.json";
/// The configuration of the last start or reload that read it whole.
pub const LAST_CONFIG: &str = "last-good-hostfw.toml";

/// `confirmed.json` as written: the format version, then the policy.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmedRecord {
    format: u32,
    confirmed: Snapshot,
}

/// `trial.json` as written.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrialFile {
    format: u32,
    trial: Snapshot,
    deadline_unix_ms: u64,
}

/// hostfw 0.1's records (no `format` field).
mod legacy {
    use serde::Deserialize;

    use super::SourceFile;
    use crate::ruleset::Mode;

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case", tag = "kind", content = "files")]
    pub enum Sources {
        Configured,
        Files(Vec<SourceFile>),
    }

    #[derive(Deserialize)]
    pub struct Snapshot {
        pub sources: Sources,
        pub mode: Mode,
        #[serde(default)]
        pub cluster: Option<crate::kubernetes::ClusterView>,
    }

    #[derive(Deserialize)]
    pub struct Trial {
        pub snapshot: Snapshot,
        pub deadline_unix_ms: u64,
    }
}

impl Store {
    /// The store in `dir` (created on first write).
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last confirmed policy, if one was ever confirmed.
    pub fn confirmed(&self) -> Result<Option<Confirmed>, StoreError> {
        let Some((path, value)) = self.read_json(CONFIRMED)? else {
            return Ok(None);
        };
        let corrupt = corrupt(&path);
        if value.get("format").is_none() {
            let old: legacy::Snapshot =
                serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
            return Ok(Some(match old.sources {
                legacy::Sources::Configured => Confirmed::Recipe {
                    mode: old.mode,
                    cluster: old.cluster,
                },
                legacy::Sources::Files(files) => Confirmed::Policy(Snapshot {
                    origin: Origin::Applied,
                    files,
                    mode: old.mode,
                    cluster: old.cluster,
                }),
            }));
        }
        let r: ConfirmedRecord = from_record(value).map_err(corrupt)?;
        Ok(Some(Confirmed::Policy(r.confirmed)))
    }

    /// The pending trial, if any.
    pub fn trial(&self) -> Result<Option<TrialRecord>, StoreError> {
        let Some((path, value)) = self.read_json(TRIAL)? else {
            return Ok(None);
        };
        let corrupt = corrupt(&path);
        if value.get("format").is_none() {
            let old: legacy::Trial =
                serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
            let legacy::Sources::Files(files) = old.snapshot.sources else {
                return Err(corrupt(
                    "a trial of hostfw 0.1 of the configured paths, whose text it did not keep"
                        .into(),
                ));
            };
            return Ok(Some(TrialRecord {
                snapshot: Snapshot {
                    origin: Origin::Applied,
                    files,
                    mode: old.snapshot.mode,
                    cluster: old.snapshot.cluster,
                },
                deadline_unix_ms: old.deadline_unix_ms,
            }));
        }
        let r: TrialFile = from_record(value).map_err(corrupt)?;
        Ok(Some(TrialRecord {
            snapshot: r.trial,
            deadline_unix_ms: r.deadline_unix_ms,
        }))
    }

    /// Records `s` as the confirmed policy, durably.
    pub fn save_confirmed(&self, s: &Snapshot) -> Result<(), StoreError> {
        self.write(
            CONFIRMED,
            &ConfirmedRecord {
                format: FORMAT,
                confirmed: s.clone(),
            },
        )
    }

    /// Records a pending trial, durably.
    pub fn save_trial(&self, t: &TrialRecord) -> Result<(), StoreError> {
        self.write(
            TRIAL,
            &TrialFile {
                format: FORMAT,
                trial: t.snapshot.clone(),
                deadline_unix_ms: t.deadline_unix_ms,
            },
        )
    }

    /// Keeps a copy of a configuration that loaded, for a start that finds
    /// the file broken.
    pub fn save_config(&self, text: &str) -> Result<(), StoreError> {
        if self.config_text().ok().flatten().as_deref() == Some(text) {
            return Ok(());
        }
        self.write_bytes(LAST_CONFIG, text.as_bytes())
    }

    /// The copy kept by [`Self::save_config`].
    pub fn config_text(&self) -> Result<Option<String>, StoreError> {
        Ok(self.read(LAST_CONFIG)?.map(|(_, t)| t))
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

    /// Moves a state file that cannot be used out of the way (to
    /// `NAME.corrupt-UNIXSECONDS`, kept for a person to look at) and
    /// returns where it went.
    pub fn set_aside(&self, name: &str) -> Result<PathBuf, StoreError> {
        let path = self.dir.join(name);
        let secs = unix_ms(SystemTime::now()) / 1000;
        let aside = self.dir.join(format!("{name}.corrupt-{secs}"));
        fs::rename(&path, &aside).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        sync_dir(&self.dir)?;
        Ok(aside)
    }

    fn read_json(&self, name: &str) -> Result<Option<(PathBuf, serde_json::Value)>, StoreError> {
        let Some((path, text)) = self.read(name)? else {
            return Ok(None);
        };
        let value = serde_json::from_str(&text).map_err(|e| corrupt(&path)(e.to_string()))?;
        Ok(Some((path, value)))
    }

    fn read(&self, name: &str) -> Result<Option<(PathBuf, String)>, StoreError> {
        let path = self.dir.join(name);
        match crate::policy::read_text(&path, MAX_RECORD) {
            Ok(t) => Ok(Some((path, t))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(StoreError::Corrupt {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Err(StoreError::Corrupt {
                path,
                reason: e.to_string(),
            }),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let text = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
            path: self.dir.join(name),
            reason: e.to_string(),
        })?;
        self.write_bytes(name, &text)
    }

    fn write_bytes(&self, name: &str, text: &[u8]) -> Result<(), StoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let written = (|| {
            // Errors name the record, not its temporary file.
            let mut f = fs::File::create(&tmp).map_err(io(&path))?;
            f.write_all(text).map_err(io(&path))?;
            f.sync_all().map_err(io(&path))?;
            fs::rename(&tmp, &path).map_err(io(&path))
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written?;
        sync_dir(&self.dir)
    }
}

/// The error for a record at `path` that is not what hostfw writes.
fn corrupt(path: &Path) -> impl Fn(String) -> StoreError + '_ {
    move |reason| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    }
}

/// A record of this format, validated.
fn from_record<T: for<'de> Deserialize<'de>>(value: serde_json::Value) -> Result<T, String> {
    match value.get("format").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(FORMAT) => {}
        Some(v) => {
            return Err(format!(
                "format {v}, and this hostfw reads format {FORMAT} (written by a newer hostfw?)"
            ));
        }
        None => return Err("its \"format\" is not a number".into()),
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
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
mod tests;
