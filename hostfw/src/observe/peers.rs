//! Which peer group a suggested rule names for an address.
//!
//! - An address of this node is entity `host`; an API server
//!   `kube-apiserver`; another node `remote-node`; an address in a pod CIDR
//!   `cluster` (the narrowest entity holding it, in that order).
//! - Any other address is a CIDR: its /32 (IPv6: /128), or its /24 (IPv6:
//!   /64) when at least `group_threshold` addresses of that /24 were seen
//!   in the same direction and the /24 holds no cluster address (node,
//!   API server or pod CIDR).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use ipnet::IpNet;

use super::SuggestContext;
use crate::policy::Entity;

/// The peers of a suggested rule: an entity or a CIDR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum PeerKey {
    /// `fromEntities`/`toEntities`.
    Entity(Entity),
    /// `fromCIDR`/`toCIDR`.
    Net(IpNet),
}

/// The entity of a cluster address; `None` for any other address.
pub(super) fn entity_of(addr: IpAddr, ctx: &SuggestContext) -> Option<Entity> {
    if ctx.host_addresses.contains(&addr) {
        Some(Entity::Host)
    } else if ctx.apiservers.contains(&addr) {
        Some(Entity::KubeApiserver)
    } else if ctx.cluster_nodes.contains(&addr) {
        Some(Entity::RemoteNode)
    } else if ctx.pod_cidrs.iter().any(|n| n.contains(&addr)) {
        Some(Entity::Cluster)
    } else {
        None
    }
}

/// The /24 (IPv6: /64) of `addr`.
fn wide_net(addr: IpAddr) -> IpNet {
    let len = if addr.is_ipv4() { 24 } else { 64 };
    IpNet::new_assert(addr, len).trunc()
}

/// Whether `net` holds a cluster address.
fn holds_cluster(net: &IpNet, ctx: &SuggestContext) -> bool {
    ctx.host_addresses
        .iter()
        .chain(&ctx.cluster_nodes)
        .chain(&ctx.apiservers)
        .any(|a| net.contains(a))
        || ctx
            .pod_cidrs
            .iter()
            .any(|p| net.contains(&p.network()) || p.contains(&net.network()))
}

/// The CIDR of each non-cluster address of one direction.
pub(super) fn world_nets(
    addrs: &BTreeSet<IpAddr>,
    ctx: &SuggestContext,
) -> BTreeMap<IpAddr, IpNet> {
    let mut by_wide: BTreeMap<IpNet, Vec<IpAddr>> = BTreeMap::new();
    for &a in addrs {
        by_wide.entry(wide_net(a)).or_default().push(a);
    }
    let mut out = BTreeMap::new();
    for (wide, members) in by_wide {
        let group = members.len() >= ctx.group_threshold && !holds_cluster(&wide, ctx);
        for a in members {
            out.insert(a, if group { wide } else { IpNet::from(a) });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn ctx() -> SuggestContext {
        SuggestContext {
            host_addresses: vec![ip("10.0.0.1")],
            cluster_nodes: vec![ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")],
            apiservers: vec![ip("10.0.0.3"), ip("10.0.9.9")],
            pod_cidrs: vec![
                "10.244.0.0/16".parse().expect("net"),
                "172.16.5.0/26".parse().expect("net"),
            ],
            group_threshold: 3,
            ..SuggestContext::default()
        }
    }

    #[test]
    fn cluster_addresses_are_entities() {
        let c = ctx();
        assert_eq!(entity_of(ip("10.0.0.1"), &c), Some(Entity::Host));
        assert_eq!(entity_of(ip("10.0.0.2"), &c), Some(Entity::RemoteNode));
        assert_eq!(entity_of(ip("10.0.0.3"), &c), Some(Entity::KubeApiserver));
        assert_eq!(entity_of(ip("10.0.9.9"), &c), Some(Entity::KubeApiserver));
        assert_eq!(entity_of(ip("10.244.3.4"), &c), Some(Entity::Cluster));
        assert_eq!(entity_of(ip("10.0.0.4"), &c), None);
    }

    #[test]
    fn groups_by_slash_24_from_the_threshold() {
        let c = ctx();
        let set = |v: &[&str]| v.iter().map(|s| ip(s)).collect::<BTreeSet<_>>();
        let net = |s: &str| s.parse::<IpNet>().expect("net");
        let got = world_nets(
            &set(&[
                "192.0.2.1",
                "192.0.2.7",
                "192.0.2.200",
                "198.51.100.1",
                "198.51.100.2",
                "10.0.0.7",
                "10.0.0.8",
                "10.0.0.9",
                "2001:db8::1",
                "2001:db8::2",
                "2001:db8::3",
            ]),
            &c,
        );
        assert_eq!(got[&ip("192.0.2.7")], net("192.0.2.0/24"));
        assert_eq!(got[&ip("198.51.100.2")], net("198.51.100.2/32"));
        assert_eq!(
            got[&ip("10.0.0.8")],
            net("10.0.0.8/32"),
            "a /24 with nodes in it stays /32"
        );
        assert_eq!(got[&ip("2001:db8::3")], net("2001:db8::/64"));
        let near_pods = world_nets(&set(&["172.16.5.100", "172.16.5.101", "172.16.5.102"]), &c);
        assert!(near_pods.values().all(|n| n.prefix_len() == 32));
    }
}
