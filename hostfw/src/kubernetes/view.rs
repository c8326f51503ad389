//! What the cluster says, as hostfw uses it: this node's labels, every
//! node's addresses and pod CIDRs, the API servers' addresses and the valid
//! CCNPs. A plain value: compared to decide whether anything changed,
//! stored with the confirmed policy (so that a restart with the API server
//! unreachable enforces what was enforced), and merged with the
//! configuration file to lower the policies.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    path::PathBuf,
};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::{
    config::Config,
    policy::{self, Format, Policy, PolicyError},
};

/// One node's addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFacts {
    /// `status.addresses` of type InternalIP and ExternalIP.
    pub addresses: BTreeSet<IpAddr>,
    /// `spec.podCIDRs` (or `spec.podCIDR`).
    pub pod_cidrs: BTreeSet<IpNet>,
}

/// The cluster's data, as of one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    /// This node's `Node` labels; `None` when no `Node` of this name exists.
    pub node_labels: Option<BTreeMap<String, String>>,
    /// Every node, by name.
    pub nodes: BTreeMap<String, NodeFacts>,
    /// Endpoint addresses of the `default/kubernetes` EndpointSlices.
    pub apiservers: BTreeSet<IpAddr>,
    /// The valid CCNPs by name: the object as JSON text (invalid ones are
    /// reported, never part of a view).
    pub policies: BTreeMap<String, String>,
}

impl ClusterView {
    /// The name a CCNP from the cluster has in messages, like a file's.
    #[must_use]
    pub fn policy_origin(name: &str) -> PathBuf {
        PathBuf::from(format!("ccnp/{name}"))
    }

    /// Parses one CCNP's text as the files' policies are parsed.
    pub fn parse_policy(name: &str, text: &str) -> Result<Vec<Policy>, Vec<PolicyError>> {
        policy::parse_str(text, &Self::policy_origin(name), Format::Yaml)
    }

    /// Every CCNP of the view, parsed. They were validated when they
    /// arrived; an error here means a stored view no longer parses (a newer
    /// hostfw with stricter rules), and is reported like a file's.
    pub fn parse_policies(&self) -> Result<Vec<Policy>, Vec<PolicyError>> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for (name, text) in &self.policies {
            match Self::parse_policy(name, text) {
                Ok(mut p) => out.append(&mut p),
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// The configuration with the cluster's facts added: the `Node`'s
    /// labels under `[node] labels` (the file's win on the same key), and
    /// the nodes' addresses, pod CIDRs and API servers beside `[cluster]`'s.
    #[must_use]
    pub fn merged(&self, cfg: &Config) -> Config {
        let mut out = cfg.clone();
        if let Some(labels) = &self.node_labels {
            let mut merged = labels.clone();
            merged.extend(cfg.node.labels.clone());
            out.node.labels = merged;
        }
        for n in self.nodes.values() {
            out.cluster.nodes.extend(n.addresses.iter().copied());
            out.cluster.pod_cidrs.extend(n.pod_cidrs.iter().copied());
        }
        out.cluster
            .apiservers
            .extend(self.apiservers.iter().copied());
        out.cluster.nodes.sort();
        out.cluster.nodes.dedup();
        out.cluster.pod_cidrs.sort();
        out.cluster.pod_cidrs.dedup();
        out.cluster.apiservers.sort();
        out.cluster.apiservers.dedup();
        out
    }

    /// "3 policies, 2 nodes, 1 API server address".
    #[must_use]
    pub fn summary(&self) -> String {
        let count =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut s = format!(
            "{}, {}, {}",
            count(self.policies.len(), "policy", "policies"),
            count(self.nodes.len(), "node", "nodes"),
            count(
                self.apiservers.len(),
                "API server address",
                "API server addresses"
            ),
        );
        if self.node_labels.is_none() {
            s.push_str("; this node's Node object not found");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> ClusterView {
        let mut v = ClusterView {
            node_labels: Some(BTreeMap::from([
                ("role".into(), "db".into()),
                ("zone".into(), "a".into()),
            ])),
            ..ClusterView::default()
        };
        v.nodes.insert(
            "n1".into(),
            NodeFacts {
                addresses: BTreeSet::from(["10.0.0.1".parse().expect("ip")]),
                pod_cidrs: BTreeSet::from(["10.244.1.0/24".parse().expect("net")]),
            },
        );
        v.apiservers.insert("10.0.0.10".parse().expect("ip"));
        v
    }

    #[test]
    fn merged_adds_the_cluster_facts_and_the_file_wins_on_labels() {
        let cfg = Config::parse(
            "[node]\nlabels = { zone = \"b\" }\n[cluster]\nnodes = [\"10.0.0.1\", \"10.0.0.2\"]\n",
            std::path::Path::new("h.toml"),
        )
        .expect("config");
        let m = view().merged(&cfg);
        assert_eq!(m.node.labels.get("zone").map(String::as_str), Some("b"));
        assert_eq!(m.node.labels.get("role").map(String::as_str), Some("db"));
        assert_eq!(
            m.cluster.nodes.len(),
            2,
            "deduplicated: {:?}",
            m.cluster.nodes
        );
        assert_eq!(m.cluster.pod_cidrs.len(), 1);
        assert_eq!(m.cluster.apiservers.len(), 1);
        let none = ClusterView::default().merged(&cfg);
        assert_eq!(none.node.labels, cfg.node.labels);
    }

    #[test]
    fn summary_counts_and_names_a_missing_node() {
        let mut v = view();
        assert_eq!(v.summary(), "0 policies, 1 node, 1 API server address");
        v.node_labels = None;
        v.policies.insert("a".into(), "{}".into());
        assert!(v.summary().starts_with("1 policy, "), "{}", v.summary());
        assert!(v.summary().contains("Node object not found"));
    }

    #[test]
    fn a_ccnp_as_json_parses_and_errors_name_it() {
        let good = r#"{"apiVersion":"cilium.io/v2","kind":"CiliumClusterwideNetworkPolicy",
            "metadata":{"name":"p","resourceVersion":"7"},
            "spec":{"nodeSelector":{},"ingress":[{"fromEntities":["cluster"]}]}}"#;
        let p = ClusterView::parse_policy("p", good).expect("valid");
        assert_eq!(p.len(), 1);
        let bad = good.replace("fromEntities", "fromEntitys");
        let e = ClusterView::parse_policy("p", &bad).expect_err("invalid");
        let text = e[0].to_string();
        assert!(text.starts_with("ccnp/p:"), "{text}");
        assert!(text.contains("fromEntitys"), "{text}");
    }
}
