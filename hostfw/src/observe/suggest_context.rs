//! What `hostfw suggest` knows about the node and its cluster.

use std::{collections::BTreeMap, net::IpAddr};

use crate::{config::Config, policy::LowerContext};

/// What a suggestion needs to know about the node and its cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuggestContext {
    /// This node's name, for the header.
    pub node_name: Option<String>,
    /// This node's labels: the `nodeSelector` (`{}` when empty).
    pub node_labels: BTreeMap<String, String>,
    /// This node's addresses: entity `host`.
    pub host_addresses: Vec<IpAddr>,
    /// Every node of the cluster: entity `remote-node` for the others.
    pub cluster_nodes: Vec<IpAddr>,
    /// Pod CIDRs: entity `cluster`.
    pub pod_cidrs: Vec<ipnet::IpNet>,
    /// API servers: entity `kube-apiserver`.
    pub apiservers: Vec<IpAddr>,
    /// Addresses of one /24 (IPv6: /64), seen in one direction, from which
    /// the rule names the /24 rather than each address.
    pub group_threshold: usize,
    /// Lines for the header (what the aggregate left out:
    /// [`Recorder::seen_notes`](super::Recorder::seen_notes)).
    pub notes: Vec<String>,
}

impl Default for SuggestContext {
    fn default() -> Self {
        Self {
            node_name: None,
            node_labels: BTreeMap::new(),
            host_addresses: Vec::new(),
            cluster_nodes: Vec::new(),
            pod_cidrs: Vec::new(),
            apiservers: Vec::new(),
            group_threshold: Self::DEFAULT_GROUP_THRESHOLD,
            notes: Vec::new(),
        }
    }
}

impl SuggestContext {
    /// Default [`SuggestContext::group_threshold`].
    pub const DEFAULT_GROUP_THRESHOLD: usize = 4;

    /// The sets of the lowering context (which has the interfaces'
    /// addresses).
    #[must_use]
    pub fn from_lower_context(ctx: &LowerContext) -> Self {
        Self {
            node_labels: ctx.node_labels.clone(),
            host_addresses: ctx.host_addresses.clone(),
            cluster_nodes: ctx.cluster_nodes.clone(),
            pod_cidrs: ctx.pod_cidrs.clone(),
            apiservers: ctx.apiservers.clone(),
            ..Self::default()
        }
    }

    /// The sets of the configuration and the addresses of this node's
    /// interfaces.
    #[must_use]
    pub fn from_config(cfg: &Config, interface_addresses: &[IpAddr]) -> Self {
        let mut host = cfg.node.addresses.clone();
        host.extend_from_slice(interface_addresses);
        host.sort();
        host.dedup();
        Self {
            node_name: cfg.node.name.clone(),
            node_labels: cfg.node.labels.clone(),
            host_addresses: host,
            cluster_nodes: cfg.cluster.nodes.clone(),
            pod_cidrs: cfg.cluster.pod_cidrs.clone(),
            apiservers: cfg.cluster.apiservers.clone(),
            ..Self::default()
        }
    }
}
