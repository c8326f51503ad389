//! Reading policy files and directories.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use super::{
    document,
    error::{ErrorKind, PolicyError},
    model::{Format, Policy},
};

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
/// named explicitly must have one of those extensions.
#[must_use]
pub fn load(paths: &[PathBuf]) -> Loaded {
    let mut out = Loaded::default();
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
                    load_file(&mut out, &file);
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
            load_file(&mut out, path);
        }
    }
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

fn read_error(out: &mut Loaded, path: &Path, source: std::io::Error) {
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

fn load_file(out: &mut Loaded, path: &Path) {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(source) => {
            read_error(out, path, source);
            return;
        }
    };
    let before = out.errors.len();
    let policies = match format_of(path) {
        Some(Format::Toml) => document::from_toml(&text, path, &mut out.errors),
        _ => document::from_yaml(&text, path, &mut out.errors),
    };
    out.files.push(FileReport {
        path: path.to_path_buf(),
        status: if out.errors.len() == before {
            FileStatus::Loaded {
                policies: policies.len(),
            }
        } else {
            FileStatus::Failed
        },
    });
    out.policies.extend(policies);
}

/// Policy names are unique (as Kubernetes object names are).
fn check_unique(policies: &[Policy], errors: &mut Vec<PolicyError>) {
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
