//! Errors of loading and validating policies: each names the file, the
//! position, the policy and the rule, and says what was expected.

use std::{fmt, path::PathBuf};

/// A position in a policy file, both 1-based (columns count characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One thing wrong with a policy file.
///
/// Displayed as `FILE:LINE:COL: policy NAME, ingress[0].toPorts[0].ports[1]: MESSAGE`;
/// parts that are not known are left out.
#[derive(Debug, thiserror::Error)]
pub struct PolicyError {
    /// The file.
    pub file: PathBuf,
    /// Where in the file, when the format tells.
    pub pos: Option<Pos>,
    /// The policy's name, once known.
    pub policy: Option<String>,
    /// The field path inside the policy (or the document), like
    /// `ingress[0].toPorts[0].ports[1]`.
    pub path: Option<String>,
    /// What is wrong.
    #[source]
    pub kind: ErrorKind,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(pos) = self.pos {
            write!(f, ":{pos}")?;
        }
        f.write_str(": ")?;
        match (&self.policy, &self.path) {
            (Some(name), Some(path)) => write!(f, "policy {name}, {path}: ")?,
            (Some(name), None) => write!(f, "policy {name}: ")?,
            (None, Some(path)) => write!(f, "{path}: ")?,
            (None, None) => {}
        }
        write!(f, "{}", self.kind)
    }
}

/// What is wrong, with what was expected instead.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The file or directory could not be read.
    #[error("cannot read: {source}")]
    Read {
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid YAML or TOML.
    #[error("not valid {format}: {message}")]
    Syntax {
        /// "YAML" or "TOML".
        format: &'static str,
        /// The parser's message.
        message: String,
    },
    /// A field that the policy language does not have (a typo must not
    /// silently change a policy).
    #[error("unknown field `{field}`; expected one of {expected}{hint}")]
    UnknownField {
        /// The field as written.
        field: String,
        /// The fields allowed here.
        expected: String,
        /// A suggestion, with its leading separator, or empty.
        hint: String,
    },
    /// A field of Cilium's language that a host policy on a bare node
    /// cannot have.
    #[error("`{field}` is not supported in hostfw host policies: {advice}")]
    Unsupported {
        /// The field.
        field: String,
        /// Why, and what to use instead.
        advice: String,
    },
    /// A value of the wrong type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// A required field is missing.
    #[error("missing field `{field}`: {expected}")]
    Missing {
        /// The field.
        field: &'static str,
        /// What it must hold.
        expected: String,
    },
    /// A value that cannot be used.
    #[error("invalid value {value:?}: expected {expected}")]
    Invalid {
        /// The value as written.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// Two fields that cannot be used together.
    #[error("`{first}` and `{second}` cannot be used together: {advice}")]
    Conflict {
        /// One field.
        first: String,
        /// The other.
        second: String,
        /// What to do instead.
        advice: String,
    },
    /// A Kubernetes object that is not a host policy.
    #[error("kind {kind:?} is not a host policy: {advice}")]
    Kind {
        /// The kind as written.
        kind: String,
        /// What hostfw reads instead.
        advice: String,
    },
    /// Two policies with one name.
    #[error("policy name {name:?} is already used at {first}; policy names must be unique")]
    Duplicate {
        /// The name.
        name: String,
        /// Where it was first defined (`FILE:LINE:COL`).
        first: String,
    },
    /// A host policy without any rule (Cilium rejects it too).
    #[error(
        "the policy has no rules: expected at least one of ingress, ingressDeny, egress or \
         egressDeny (an empty rule `{{}}` makes its direction default-deny)"
    )]
    NoRules,
}

/// Collects the errors of one file, each with the file and the policy
/// being read.
pub(crate) struct Errors<'a> {
    file: PathBuf,
    policy: Option<String>,
    out: &'a mut Vec<PolicyError>,
}

impl<'a> Errors<'a> {
    pub(crate) fn new(file: PathBuf, out: &'a mut Vec<PolicyError>) -> Self {
        Self {
            file,
            policy: None,
            out,
        }
    }

    /// Sets the policy named in the errors that follow.
    pub(crate) fn set_policy(&mut self, name: Option<String>) {
        self.policy = name;
    }

    /// Records an error at `pos`, in field `path` (empty: none).
    pub(crate) fn push(&mut self, pos: Option<Pos>, path: &str, kind: ErrorKind) {
        self.out.push(PolicyError {
            file: self.file.clone(),
            pos,
            policy: self.policy.clone(),
            path: (!path.is_empty()).then(|| path.to_string()),
            kind,
        });
    }

    /// How many errors were recorded so far (by every collector of `out`).
    pub(crate) fn count(&self) -> usize {
        self.out.len()
    }

    pub(crate) fn file(&self) -> &std::path::Path {
        &self.file
    }
}

impl ErrorKind {
    /// An unknown field among `allowed`, with a suggestion when the field
    /// looks like a typo of one of them.
    #[must_use]
    pub fn unknown_field(field: &str, allowed: &[&str]) -> Self {
        Self::UnknownField {
            field: field.to_owned(),
            expected: allowed
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", "),
            hint: super::decode::suggest(field, allowed)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_position_policy_rule_and_message() {
        let e = PolicyError {
            file: PathBuf::from("/etc/hostfw/policies.d/a.yaml"),
            pos: Some(Pos {
                line: 12,
                column: 9,
            }),
            policy: Some("ssh".into()),
            path: Some("ingress[0].toPorts[0].ports[1]".into()),
            kind: ErrorKind::Missing {
                field: "port",
                expected: "a port number".into(),
            },
        };
        assert_eq!(
            e.to_string(),
            "/etc/hostfw/policies.d/a.yaml:12:9: policy ssh, ingress[0].toPorts[0].ports[1]: \
             missing field `port`: a port number"
        );
        let e = PolicyError {
            file: PathBuf::from("x.toml"),
            pos: None,
            policy: None,
            path: None,
            kind: ErrorKind::NoRules,
        };
        assert!(
            e.to_string().starts_with("x.toml: the policy has no rules"),
            "{e}"
        );
    }
}
