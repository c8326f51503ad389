//! The lowered policy: what the datapath enforces, in plain values.
//!
//! The policy front end (CCNP/TOML) lowers selected policies to a
//! [`RuleSet`]; [`crate::mapstate::compile`] turns a `RuleSet` into the
//! desired contents of the maps, and [`crate::refeval`] evaluates a
//! `RuleSet` directly, as the reference the datapath is tested against.

use ipnet::IpNet;

/// Direction of traffic as seen from the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Into the node; the peer is the source.
    Ingress,
    /// Out of the node; the peer is the destination.
    Egress,
}

impl Direction {
    /// `ingress` or `egress`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ingress => "ingress",
            Self::Egress => "egress",
        }
    }

    /// The datapath's byte for this direction.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Ingress => hostfw_common::DIR_INGRESS,
            Self::Egress => hostfw_common::DIR_EGRESS,
        }
    }
}

/// What a matching rule does. Order is precedence: failsafe beats deny,
/// deny beats allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Allow.
    Allow,
    /// Deny.
    Deny,
    /// Failsafe allow (always wins).
    Failsafe,
}

impl Action {
    /// The datapath's byte for this action.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Allow => hostfw_common::policy::ACTION_ALLOW,
            Self::Deny => hostfw_common::policy::ACTION_DENY,
            Self::Failsafe => hostfw_common::policy::ACTION_FAILSAFE,
        }
    }
}

/// Enforce or audit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Would-be drops pass and are reported.
    #[default]
    Audit,
    /// Denied packets are dropped.
    Enforce,
}

impl Mode {
    /// "audit" or "enforce", as the configuration and `status` spell it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Audit => "audit",
            Self::Enforce => "enforce",
        }
    }
}

/// One CIDR with the prefixes cut out of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    /// The prefix (host bits zero).
    pub net: IpNet,
    /// Sub-prefixes excluded; each lies inside `net`.
    pub except: Vec<IpNet>,
}

/// Which peers a rule applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Peers {
    /// Every peer, whatever its address.
    Any,
    /// Peers whose address lies in one of these CIDRs. An empty list
    /// matches nothing.
    Cidrs(Vec<Cidr>),
}

/// The L4 part of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum L4 {
    /// Every protocol and port (L3-only rule).
    Any,
    /// Ports `first..=last` of one IP protocol (TCP, UDP or SCTP). `0..=65535`
    /// is every port.
    Ports {
        /// IP protocol number.
        proto: u8,
        /// First port.
        first: u16,
        /// Last port (inclusive, `>= first`).
        last: u16,
    },
    /// One ICMP type (any code) of ICMP (`proto` 1) or ICMPv6 (`proto` 58).
    Icmp {
        /// 1 or 58.
        proto: u8,
        /// The type.
        icmp_type: u8,
    },
}

/// One rule of the lowered policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Identifier reported by the datapath, `1..`; unique in a `RuleSet`.
    pub id: u32,
    /// Direction.
    pub direction: Direction,
    /// Allow, deny or failsafe.
    pub action: Action,
    /// Peers.
    pub peers: Peers,
    /// Any of these L4 matches (an empty list matches nothing).
    pub l4: Vec<L4>,
}

/// A whole lowered policy.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RuleSet {
    /// Audit or enforce.
    pub mode: Mode,
    /// Ingress is default-deny.
    pub default_deny_ingress: bool,
    /// Egress is default-deny.
    pub default_deny_egress: bool,
    /// The rules, in any order.
    pub rules: Vec<Rule>,
}

impl Rule {
    /// A rule from its parts.
    #[must_use]
    pub const fn new(
        id: u32,
        direction: Direction,
        action: Action,
        peers: Peers,
        l4: Vec<L4>,
    ) -> Self {
        Self {
            id,
            direction,
            action,
            peers,
            l4,
        }
    }
}

impl Peers {
    /// Peers in these prefixes, without exceptions.
    #[must_use]
    pub fn nets(nets: impl IntoIterator<Item = IpNet>) -> Self {
        Self::Cidrs(
            nets.into_iter()
                .map(|net| Cidr {
                    net,
                    except: Vec::new(),
                })
                .collect(),
        )
    }
}

impl L4 {
    /// One port of `proto`.
    #[must_use]
    pub const fn port(proto: u8, port: u16) -> Self {
        Self::Ports {
            proto,
            first: port,
            last: port,
        }
    }

    /// Every port of `proto`.
    #[must_use]
    pub const fn all_ports(proto: u8) -> Self {
        Self::Ports {
            proto,
            first: 0,
            last: u16::MAX,
        }
    }

    /// One ICMP (`proto` 1) or ICMPv6 (`proto` 58) type.
    #[must_use]
    pub const fn icmp(proto: u8, icmp_type: u8) -> Self {
        Self::Icmp { proto, icmp_type }
    }
}
