//! Cilium's entities (`fromEntities`/`toEntities`) and what each is on a
//! bare node.
//!
//! Names are those of Cilium's `pkg/policy/api/entity.go`
//! (`EntitySelectorMapping`). The address sets are resolved by
//! [`super::lower`].

use std::fmt;

/// One entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entity {
    /// `all`: every peer.
    All,
    /// `world`: everything outside the cluster, IPv4 and IPv6.
    World,
    /// `world-ipv4`: the IPv4 part of `world`.
    WorldIpv4,
    /// `world-ipv6`: the IPv6 part of `world`.
    WorldIpv6,
    /// `cluster`: this node, the other nodes, the pod CIDRs and the API
    /// servers.
    Cluster,
    /// `host`: this node's own addresses.
    Host,
    /// `remote-node`: the other nodes.
    RemoteNode,
    /// `kube-apiserver`: the API servers.
    KubeApiserver,
    /// `health`: Cilium's health endpoints; nothing on a bare node.
    Health,
    /// `init`: endpoints being initialised; nothing on a bare node.
    Init,
    /// `ingress`: Cilium's ingress proxy; nothing on a bare node.
    Ingress,
    /// `unmanaged`: pods not managed by Cilium; nothing on a bare node.
    Unmanaged,
    /// `none`: selects nothing, by definition.
    None,
}

/// Every entity, for messages and parsing.
pub const ALL: [Entity; 13] = [
    Entity::All,
    Entity::World,
    Entity::WorldIpv4,
    Entity::WorldIpv6,
    Entity::Cluster,
    Entity::Host,
    Entity::RemoteNode,
    Entity::KubeApiserver,
    Entity::Health,
    Entity::Init,
    Entity::Ingress,
    Entity::Unmanaged,
    Entity::None,
];

impl Entity {
    /// The name written in policies.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::World => "world",
            Self::WorldIpv4 => "world-ipv4",
            Self::WorldIpv6 => "world-ipv6",
            Self::Cluster => "cluster",
            Self::Host => "host",
            Self::RemoteNode => "remote-node",
            Self::KubeApiserver => "kube-apiserver",
            Self::Health => "health",
            Self::Init => "init",
            Self::Ingress => "ingress",
            Self::Unmanaged => "unmanaged",
            Self::None => "none",
        }
    }

    /// The entity named `name` (exact, as Cilium).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        ALL.into_iter().find(|e| e.name() == name)
    }

    /// Entities that exist in Cilium but select no address on a bare node
    /// (said in a warning; `none` is silent: selecting nothing is its
    /// meaning).
    #[must_use]
    pub const fn is_cilium_only(self) -> bool {
        matches!(
            self,
            Self::Health | Self::Init | Self::Ingress | Self::Unmanaged
        )
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The entity names, for "expected one of" messages.
#[must_use]
pub fn names() -> String {
    ALL.iter().map(|e| e.name()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for e in ALL {
            assert_eq!(Entity::parse(e.name()), Some(e));
        }
        assert_eq!(Entity::parse("World"), None);
        assert_eq!(Entity::parse("remote-nodes"), None);
        assert!(names().contains("kube-apiserver"));
    }
}
