//! `/etc/hostfw/hostfw.toml`: the daemon's configuration file.
//!
//! Every key is optional; unknown keys are errors. See DESIGN.md section 3
//! for the contract and the defaults.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::{Path, PathBuf},
};

use ipnet::IpNet;
use serde::Deserialize;

use crate::ruleset::Mode;

mod conntrack;
pub use conntrack::Conntrack;

/// Default path of the configuration file.
pub const DEFAULT_PATH: &str = "/etc/hostfw/hostfw.toml";

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// "audit" (default) or "enforce".
    #[serde(default, deserialize_with = "mode")]
    pub mode: Mode,
    /// This node.
    #[serde(default)]
    pub node: Node,
    /// Which interfaces are managed.
    #[serde(default)]
    pub interfaces: Interfaces,
    /// Address sets of the entities.
    #[serde(default)]
    pub cluster: Cluster,
    /// Policy options.
    #[serde(default)]
    pub policy: PolicyOptions,
    /// Always-allowed traffic.
    #[serde(default)]
    pub failsafe: Failsafe,
    /// Trial apply defaults.
    #[serde(default)]
    pub trial: Trial,
    /// Where the policies are.
    #[serde(default)]
    pub policies: Policies,
    /// Prometheus endpoint.
    #[serde(default)]
    pub metrics: Metrics,
    /// Who may use the control socket besides root.
    #[serde(default)]
    pub control: Control,
    /// Sizes of the connection trackers.
    #[serde(default)]
    pub conntrack: Conntrack,
    /// The Kubernetes API as a policy source; absent: files only.
    pub kubernetes: Option<Kubernetes>,
}

fn mode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
    match String::deserialize(d)?.as_str() {
        "audit" => Ok(Mode::Audit),
        "enforce" => Ok(Mode::Enforce),
        other => Err(serde::de::Error::custom(format!(
            "mode must be \"audit\" or \"enforce\", not {other:?}"
        ))),
    }
}

/// `[node]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Node name; default: the hostname.
    pub name: Option<String>,
    /// Labels matched by `nodeSelector`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Extra addresses of entity `host`, beside the interfaces' own.
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
}

/// `[interfaces]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Interfaces {
    /// Glob patterns of managed interface names.
    #[serde(default = "default_include")]
    pub include: Vec<String>,
    /// Glob patterns of interfaces never managed.
    #[serde(default = "default_exclude")]
    pub exclude: Vec<String>,
}

fn default_include() -> Vec<String> {
    vec!["*".into()]
}

fn default_exclude() -> Vec<String> {
    ["lo", "veth*", "docker*", "cni*", "lxc*"]
        .into_iter()
        .map(String::from)
        .collect()
}

impl Default for Interfaces {
    fn default() -> Self {
        Self {
            include: default_include(),
            exclude: default_exclude(),
        }
    }
}

impl Interfaces {
    /// Whether `name` is managed. Loopback never is.
    #[must_use]
    pub fn manages(&self, name: &str) -> bool {
        name != "lo"
            && self.include.iter().any(|p| glob_match(p, name))
            && !self.exclude.iter().any(|p| glob_match(p, name))
    }
}

/// Shell-style `*` and `?` matching of interface names.
#[must_use]
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn rec(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => rec(&p[1..], n) || (!n.is_empty() && rec(p, &n[1..])),
            (Some(b'?'), Some(_)) => rec(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => rec(&p[1..], &n[1..]),
            _ => false,
        }
    }
    rec(pattern.as_bytes(), name.as_bytes())
}

/// `[cluster]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Addresses of all nodes.
    #[serde(default)]
    pub nodes: Vec<IpAddr>,
    /// Pod CIDRs.
    #[serde(default)]
    pub pod_cidrs: Vec<IpNet>,
    /// API server addresses.
    #[serde(default)]
    pub apiservers: Vec<IpAddr>,
}

/// `[policy]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicyOptions {
    /// CIDR rules also match node addresses.
    #[serde(default)]
    pub cidr_match_nodes: bool,
}

/// One failsafe entry.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FailsafePort {
    /// "TCP", "UDP" or "SCTP".
    pub protocol: String,
    /// Port.
    pub port: u16,
    /// Narrows the entry to these peers.
    pub cidr: Option<IpNet>,
}

/// `[failsafe]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Failsafe {
    /// Inbound failsafe ports.
    #[serde(default = "default_inbound")]
    pub inbound: Vec<FailsafePort>,
    /// Outbound failsafe ports.
    #[serde(default = "default_outbound")]
    pub outbound: Vec<FailsafePort>,
}

fn fs(protocol: &str, port: u16) -> FailsafePort {
    FailsafePort {
        protocol: protocol.into(),
        port,
        cidr: None,
    }
}

fn default_inbound() -> Vec<FailsafePort> {
    vec![fs("TCP", 22), fs("UDP", 68)]
}

fn default_outbound() -> Vec<FailsafePort> {
    vec![fs("UDP", 53), fs("TCP", 53), fs("UDP", 67)]
}

impl Default for Failsafe {
    fn default() -> Self {
        Self {
            inbound: default_inbound(),
            outbound: default_outbound(),
        }
    }
}

/// `[trial]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Trial {
    /// Default trial duration, e.g. "2m".
    #[serde(default = "default_trial")]
    pub default: String,
}

fn default_trial() -> String {
    "2m".into()
}

impl Default for Trial {
    fn default() -> Self {
        Self {
            default: default_trial(),
        }
    }
}

/// `[policies]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Policies {
    /// Files or directories of policies.
    #[serde(default = "default_paths")]
    pub paths: Vec<PathBuf>,
    /// Largest policy file read, in bytes: an integer, or a string with a
    /// unit ("16MiB", "512KiB"). Larger files are errors.
    #[serde(default = "default_max_file_size", deserialize_with = "byte_size")]
    pub max_file_size: u64,
}

fn default_max_file_size() -> u64 {
    crate::policy::DEFAULT_MAX_FILE_SIZE
}

/// A size in bytes: an integer, or a string with a unit (B, KiB, MiB, GiB;
/// K, M, G and KB, MB, GB are read as the binary units too).
fn byte_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    let text = match Size::deserialize(d)? {
        Size::Bytes(n) => return Ok(n),
        Size::Text(t) => t,
    };
    parse_byte_size(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "{text:?} is not a size: expected bytes or a number with a unit, e.g. \"16MiB\""
        ))
    })
}

/// Parses "16MiB", "512 KiB", "1G", "4096".
#[must_use]
pub fn parse_byte_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

fn default_paths() -> Vec<PathBuf> {
    vec![PathBuf::from("/etc/hostfw/policies.d")]
}

impl Default for Policies {
    fn default() -> Self {
        Self {
            paths: default_paths(),
            max_file_size: default_max_file_size(),
        }
    }
}

/// `[metrics]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Listen address of the Prometheus endpoint.
    #[serde(default = "default_listen")]
    pub listen: String,
}

fn default_listen() -> String {
    "127.0.0.1:9964".into()
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            listen: default_listen(),
        }
    }
}

/// `[control]`: who may use the control socket (`hostfw status`,
/// `apply`, `mode`, …). Root and the daemon's own user always may.
/// Read at start: a change needs a restart of the daemon.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// A group whose members may use it too (the socket is then 0660 and
    /// its directory 0750, both of this group); default: none, root only
    /// (socket 0600, directory 0700).
    pub group: Option<String>,
}

/// A `[control] group`, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlGroup {
    /// Its name, for messages.
    pub name: String,
    /// Its id.
    pub gid: nix::unistd::Gid,
}

impl Control {
    /// Looks up `group` in the system's group database; `path` (the
    /// configuration file) is for the error, which names the group.
    pub fn resolve(&self, path: &Path) -> Result<Option<ControlGroup>, ConfigError> {
        let Some(name) = &self.group else {
            return Ok(None);
        };
        let invalid = |why: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: format!("[control] group {name:?}: {why}"),
        };
        match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => Ok(Some(ControlGroup {
                name: name.clone(),
                gid: g.gid,
            })),
            Ok(None) => Err(invalid(
                "no such group (create it with `groupadd`, or remove the key: root only)".into(),
            )),
            Err(e) => Err(invalid(format!("cannot look it up: {e}"))),
        }
    }
}

/// `[kubernetes]`: CCNPs, this node's labels and the entities' address
/// sets from the cluster's API server, added to what the files give.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Kubernetes {
    /// A kubeconfig file (its current context); relative to this file.
    pub kubeconfig: Option<PathBuf>,
    /// The pod's service account instead (hostfw run in a pod).
    #[serde(default)]
    pub in_cluster: bool,
    /// This node's `Node` object; default: `[node] name`, else the hostname.
    pub node_name: Option<String>,
    /// How changes from the cluster are enforced.
    #[serde(default)]
    pub changes: Changes,
}

/// `[kubernetes] changes`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Changes {
    /// Enforced as they arrive, like a changed policy file.
    #[default]
    Apply,
    /// Each one applied as a trial of `[trial] default`: kept by `hostfw
    /// confirm`, reverted by itself otherwise.
    Trial,
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("{path}: {message}")]
    Invalid {
        /// File.
        path: PathBuf,
        /// What is wrong and where (line and column).
        message: String,
    },
}

impl Config {
    /// Parses the text of a configuration file; `path` is for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: Self = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let before = &text[..s.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!("line {line}, column {col}: ")
                })
                .unwrap_or_default();
            ConfigError::Invalid {
                path: path.to_path_buf(),
                message: format!("{at}{}", e.message()),
            }
        })?;
        if let Some(k) = &cfg.kubernetes {
            let message = match (&k.kubeconfig, k.in_cluster) {
                (Some(_), true) => {
                    Some("[kubernetes]: kubeconfig and in_cluster = true exclude each other")
                }
                (None, false) => Some(
                    "[kubernetes]: set kubeconfig = \"/etc/hostfw/kubeconfig\" (or in_cluster = true in a pod)",
                ),
                _ => None,
            };
            if let Some(message) = message {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    message: message.into(),
                });
            }
        }
        Ok(cfg)
    }

    /// The name of this node's `Node` object: `[kubernetes] node_name`,
    /// `[node] name`, else the hostname.
    #[must_use]
    pub fn node_name(&self) -> String {
        self.kubernetes
            .as_ref()
            .and_then(|k| k.node_name.clone())
            .or_else(|| self.node.name.clone())
            .or_else(|| nix::unistd::gethostname().ok()?.into_string().ok())
            .unwrap_or_default()
    }

    /// Reads and parses a configuration file. Relative `[policies] paths`
    /// are taken relative to the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_text(path).map(|(cfg, _)| cfg)
    }

    /// [`Self::load`], with the text read (the daemon keeps a copy of the
    /// last good one).
    pub fn load_with_text(path: &Path) -> Result<(Self, String), ConfigError> {
        let text = crate::policy::read_text(path, crate::policy::DEFAULT_MAX_FILE_SIZE).map_err(
            |source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            },
        )?;
        let cfg = Self::from_text(&text, path)?;
        Ok((cfg, text))
    }

    /// Parses `text` as the configuration file at `path` (relative paths
    /// are taken relative to its directory).
    pub fn from_text(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut cfg = Self::parse(text, path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for p in &mut cfg.policies.paths {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        if let Some(k) = cfg.kubernetes.as_mut()
            && let Some(p) = k.kubeconfig.as_mut()
            && p.is_relative()
        {
            *p = dir.join(&*p);
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let c = Config::parse("", Path::new("x.toml")).expect("empty config is valid");
        assert_eq!(c.mode, Mode::Audit);
        assert_eq!(c.interfaces.include, vec!["*"]);
        assert!(c.interfaces.exclude.contains(&"veth*".to_string()));
        assert_eq!(c.failsafe.inbound[0], fs("TCP", 22));
        assert_eq!(c.failsafe.outbound.len(), 3);
        assert_eq!(c.trial.default, "2m");
        assert_eq!(c.metrics.listen, "127.0.0.1:9964");
        assert!(c.cluster.nodes.is_empty());
        assert_eq!(c.control.group, None, "root only");
    }

    #[test]
    fn control_group_is_resolved_by_name() {
        let c = Config::parse("[control]\ngroup = \"root\"\n", Path::new("h.toml")).expect("valid");
        assert_eq!(c.control.group.as_deref(), Some("root"));
        let g = c.control.resolve(Path::new("h.toml")).expect("root exists");
        assert_eq!(
            g,
            Some(ControlGroup {
                name: "root".into(),
                gid: nix::unistd::Gid::from_raw(0)
            })
        );
        assert_eq!(
            Control::default()
                .resolve(Path::new("h.toml"))
                .expect("none"),
            None
        );
        let unknown = Config::parse(
            "[control]\ngroup = \"hostfw-no-such-group\"\n",
            Path::new("h.toml"),
        )
        .expect("parses: resolved at start");
        let e = unknown
            .control
            .resolve(Path::new("h.toml"))
            .expect_err("unknown group")
            .to_string();
        assert!(
            e.contains("h.toml: [control] group \"hostfw-no-such-group\": no such group"),
            "{e}"
        );
        let e = Config::parse("[control]\nuser = \"x\"\n", Path::new("h.toml"))
            .expect_err("unknown key")
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("unknown field `user`"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_is_an_error_with_its_position() {
        let err = Config::parse(
            "mode = \"audit\"\n[node]\nnmae = \"x\"\n",
            Path::new("c.toml"),
        )
        .expect_err("typo must be rejected");
        let msg = err.to_string();
        assert!(msg.contains("c.toml: line 3"), "{msg}");
        assert!(msg.contains("nmae"), "{msg}");
    }

    #[test]
    fn bad_mode_is_named() {
        let err = Config::parse("mode = \"enforcing\"", Path::new("c.toml")).expect_err("bad mode");
        assert!(
            err.to_string().contains("\"audit\" or \"enforce\""),
            "{err}"
        );
    }

    #[test]
    fn the_design_example_parses() {
        let text = r#"
mode = "audit"
[node]
name = "node-1"
labels = { "node-role.kubernetes.io/control-plane" = "" }
addresses = []
[interfaces]
include = ["*"]
exclude = ["lo", "veth*", "docker*", "cni*", "lxc*"]
[cluster]
nodes = ["10.0.0.1", "10.0.0.2"]
pod_cidrs = ["10.244.0.0/16"]
apiservers = ["10.0.0.10"]
[policy]
cidr_match_nodes = false
[failsafe]
inbound = [{ protocol = "TCP", port = 22 }, { protocol = "UDP", port = 68 }]
outbound = [{ protocol = "UDP", port = 53 }, { protocol = "TCP", port = 53 },
            { protocol = "UDP", port = 67, cidr = "10.50.0.0/24" }]
[trial]
default = "2m"
[policies]
paths = ["/etc/hostfw/policies.d"]
[metrics]
listen = "127.0.0.1:9964"
"#;
        let c = Config::parse(text, Path::new("h.toml")).expect("design example");
        assert_eq!(c.node.name.as_deref(), Some("node-1"));
        assert_eq!(c.cluster.nodes.len(), 2);
        assert!(c.failsafe.outbound[2].cidr.is_some());
    }

    #[test]
    fn relative_policy_paths_follow_the_config_file() {
        let dir = std::env::temp_dir().join(format!("hostfw-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("hostfw.toml");
        std::fs::write(&file, "[policies]\npaths = [\"policies.d\", \"/abs\"]\n").expect("write");
        let c = Config::load(&file).expect("loads");
        assert_eq!(
            c.policies.paths,
            vec![dir.join("policies.d"), PathBuf::from("/abs")]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn max_file_size_takes_bytes_or_units() {
        let c = Config::parse("", Path::new("h.toml")).expect("valid");
        assert_eq!(c.policies.max_file_size, 16 << 20);
        for (v, want) in [
            ("4096", 4096),
            ("\"512KiB\"", 512 << 10),
            ("\"2 MiB\"", 2 << 20),
        ] {
            let c = Config::parse(
                &format!("[policies]\nmax_file_size = {v}\n"),
                Path::new("h.toml"),
            )
            .expect("valid");
            assert_eq!(c.policies.max_file_size, want, "{v}");
        }
        let e = Config::parse(
            "[policies]\nmax_file_size = \"lots\"\n",
            Path::new("h.toml"),
        )
        .expect_err("not a size");
        assert!(e.to_string().contains("not a size"), "{e}");
    }

    #[test]
    fn kubernetes_section_needs_one_way_to_reach_the_api() {
        let ok = Config::parse(
            "[kubernetes]\nkubeconfig = \"/etc/hostfw/kubeconfig\"\nchanges = \"trial\"\n",
            Path::new("h.toml"),
        )
        .expect("valid");
        let k = ok.kubernetes.expect("section");
        assert_eq!(k.changes, Changes::Trial);
        assert!(!k.in_cluster);
        for (text, want) in [
            ("[kubernetes]\n", "set kubeconfig"),
            (
                "[kubernetes]\nkubeconfig = \"k\"\nin_cluster = true\n",
                "exclude each other",
            ),
            (
                "[kubernetes]\nkubeconfig = \"k\"\nchanges = \"now\"\n",
                "unknown variant",
            ),
            (
                "[kubernetes]\nkubeconfig = \"k\"\nnode = \"x\"\n",
                "unknown field",
            ),
        ] {
            let err = Config::parse(text, Path::new("h.toml")).expect_err(text);
            assert!(err.to_string().contains(want), "{text}: {err}");
        }
        let named = Config::parse(
            "[node]\nname = \"a\"\n[kubernetes]\nin_cluster = true\n",
            Path::new("h.toml"),
        )
        .expect("valid");
        assert_eq!(named.node_name(), "a");
    }

    #[test]
    fn interface_globs() {
        let i = Interfaces::default();
        assert!(i.manages("eth0"));
        assert!(!i.manages("lo"));
        assert!(!i.manages("veth12ab"));
        assert!(glob_match("en?0", "enp0") && !glob_match("en?0", "enp10"));
    }
}
