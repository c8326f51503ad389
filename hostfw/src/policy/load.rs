//! Reading policy files and directories.

use std::{
    collections::BTreeMap,
    fs,
    io::Read as _,
    os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::{
    document,
    error::{ErrorKind, PolicyError},
    model::{Format, Policy},
};

/// Default largest policy file read (`[policies] max_file_size`).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 16 << 20;

/// One policy file's text as read: its path (for messages) and its text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its text when read.
    pub text: String,
}

/// Reads a policy (or configuration) file without ever blocking: only a
/// regular file is read (a FIFO, a device or a socket is an error naming
/// what it is; it is opened non-blocking, so a FIFO with no writer does
/// not hang), and only up to `limit` bytes (a larger file is an error).
pub fn read_text(path: &Path, limit: u64) -> std::io::Result<String> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    let meta = f.metadata()?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let what = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else if ft.is_dir() {
            "a directory"
        } else {
            "not a file"
        };
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{what}, not a regular file: only regular files are read"),
        ));
    }
    let too_large = |size: u64| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{size} bytes, over the limit of {limit} bytes ([policies] max_file_size)"),
        )
    };
    if meta.len() > limit {
        return Err(too_large(meta.len()));
    }
    let mut text = String::new();
    f.take(limit.saturating_add(1)).read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(too_large(text.len() as u64));
    }
    Ok(text)
}

/// What happened to one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileStatus {
    /// Read; it holds this many policies.
    Loaded {
        /// Number of policies.
        policies: usize,
    },
    /// Skipped, and why (not a policy file name, a directory, …).
    Ignored {
        /// Why.
        reason: String,
    },
    /// Could not be used; the errors say why.
    Failed,
}

/// One file met while loading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// Loaded, ignored or failed.
    pub status: FileStatus,
}

/// Everything found in the policy paths.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The valid policies, in file order.
    pub policies: Vec<Policy>,
    /// Every problem found (all of them, not just the first).
    pub errors: Vec<PolicyError>,
    /// The files met, in the order read.
    pub files: Vec<FileReport>,
}

/// The format of a policy file, by its name.
#[must_use]
pub fn format_of(path: &Path) -> Option<Format> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => Some(Format::Yaml),
        Some("toml") => Some(Format::Toml),
        _ => None,
    }
}

/// Reads files and directories of policies. A directory gives its
/// `*.yaml`, `*.yml` and `*.toml` files sorted by name (not recursing;
/// other entries are ignored and listed in [`Loaded::files`]). A file
/// named explicitly must have one of those extensions. Files over
/// [`DEFAULT_MAX_FILE_SIZE`] are errors.
#[must_use]
pub fn load(paths: &[PathBuf]) -> Loaded {
    let collected = collect(paths, DEFAULT_MAX_FILE_SIZE);
    parse_collected(collected)
}

/// The files of `paths` as read, before parsing.
#[derive(Debug, Default)]
pub struct Collected {
    /// The policy files read, in order.
    pub texts: Vec<SourceFile>,
    /// Every file met: those read are marked `Loaded` here and get their
    /// final status when parsed.
    pub files: Vec<FileReport>,
    /// Files that could not be read.
    pub errors: Vec<PolicyError>,
}

/// Reads (but does not parse) the policy files of `paths`, each with
/// [`read_text`] and `limit`: what [`load`] reads, for a caller that keeps
/// the texts (the daemon stores the policy as enforced).
#[must_use]
pub fn collect(paths: &[PathBuf], limit: u64) -> Collected {
    let mut out = Collected::default();
    for path in paths {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(source) => {
                read_error(&mut out, path, source);
                continue;
            }
        };
        if meta.is_dir() {
            let entries = match fs::read_dir(path) {
                Ok(rd) => rd.collect::<Result<Vec<_>, _>>(),
                Err(e) => Err(e),
            };
            let mut entries = match entries {
                Ok(entries) => entries,
                Err(source) => {
                    read_error(&mut out, path, source);
                    continue;
                }
            };
            entries.sort_by_key(std::fs::DirEntry::file_name);
            for entry in entries {
                let file = entry.path();
                let name = entry.file_name();
                let ignored = |reason: &str| FileReport {
                    path: file.clone(),
                    status: FileStatus::Ignored {
                        reason: reason.to_string(),
                    },
                };
                if name.to_string_lossy().starts_with('.') {
                    out.files.push(ignored("hidden file"));
                } else if file.is_dir() {
                    out.files.push(ignored(
                        "a directory (policy directories are not read recursively)",
                    ));
                } else if format_of(&file).is_none() {
                    out.files.push(ignored("not a .yaml, .yml or .toml file"));
                } else {
                    read_file(&mut out, &file, limit);
                }
            }
        } else if format_of(path).is_none() {
            out.errors.push(PolicyError {
                file: path.clone(),
                pos: None,
                policy: None,
                path: None,
                kind: ErrorKind::Invalid {
                    value: path.display().to_string(),
                    expected: "a policy file named *.yaml, *.yml or *.toml, or a directory of them"
                        .into(),
                },
            });
            out.files.push(FileReport {
                path: path.clone(),
                status: FileStatus::Failed,
            });
        } else {
            read_file(&mut out, path, limit);
        }
    }
    out
}

/// Parses what [`collect`] read.
#[must_use]
pub fn parse_collected(collected: Collected) -> Loaded {
    let Collected {
        texts,
        mut files,
        errors,
    } = collected;
    let mut out = Loaded {
        errors,
        ..Loaded::default()
    };
    // The k-th file marked `Loaded` is the k-th text read.
    let mut reports = files
        .iter_mut()
        .filter(|r| matches!(r.status, FileStatus::Loaded { .. }));
    for f in &texts {
        let before = out.errors.len();
        let policies = match format_of(&f.path) {
            Some(Format::Toml) => document::from_toml(&f.text, &f.path, &mut out.errors),
            _ => document::from_yaml(&f.text, &f.path, &mut out.errors),
        };
        if let Some(r) = reports.next() {
            r.status = if out.errors.len() == before {
                FileStatus::Loaded {
                    policies: policies.len(),
                }
            } else {
                FileStatus::Failed
            };
        }
        out.policies.extend(policies);
    }
    drop(reports);
    out.files = files;
    check_unique(&out.policies, &mut out.errors);
    out
}

/// Reads files and directories of policies: all of them, or every error.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<Policy>, Vec<PolicyError>> {
    let loaded = load(paths);
    if loaded.errors.is_empty() {
        Ok(loaded.policies)
    } else {
        Err(loaded.errors)
    }
}

/// Parses policy text of `format`; `file` names it in errors. JSON is
/// YAML, so a CCNP object as the Kubernetes API returns it parses as
/// [`Format::Yaml`].
pub fn parse_str(text: &str, file: &Path, format: Format) -> Result<Vec<Policy>, Vec<PolicyError>> {
    let mut errors = Vec::new();
    let policies = match format {
        Format::Yaml => document::from_yaml(text, file, &mut errors),
        Format::Toml => document::from_toml(text, file, &mut errors),
    };
    check_unique(&policies, &mut errors);
    if errors.is_empty() {
        Ok(policies)
    } else {
        Err(errors)
    }
}

fn read_error(out: &mut Collected, path: &Path, source: std::io::Error) {
    out.errors.push(PolicyError {
        file: path.to_path_buf(),
        pos: None,
        policy: None,
        path: None,
        kind: ErrorKind::Read { source },
    });
    out.files.push(FileReport {
        path: path.to_path_buf(),
        status: FileStatus::Failed,
    });
}

fn read_file(out: &mut Collected, path: &Path, limit: u64) {
    match read_text(path, limit) {
        Ok(text) => {
            out.files.push(FileReport {
                path: path.to_path_buf(),
                status: FileStatus::Loaded { policies: 0 },
            });
            out.texts.push(SourceFile {
                path: path.to_path_buf(),
                text,
            });
        }
        Err(source) => read_error(out, path, source),
    }
}

/// Policy names are unique (as Kubernetes object names are).
pub fn check_unique(policies: &[Policy], errors: &mut Vec<PolicyError>) {
    let mut seen: BTreeMap<&str, &Policy> = BTreeMap::new();
    for p in policies {
        if let Some(first) = seen.get(p.name.as_str()) {
            let at = match first.pos {
                Some(pos) => format!("{}:{pos}", first.file.display()),
                None => first.file.display().to_string(),
            };
            errors.push(PolicyError {
                file: p.file.clone(),
                pos: p.pos,
                policy: Some(p.name.clone()),
                path: None,
                kind: ErrorKind::Duplicate {
                    name: p.name.clone(),
                    first: at,
                },
            });
        } else {
            seen.insert(&p.name, p);
        }
    }
}
