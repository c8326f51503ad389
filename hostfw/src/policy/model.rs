//! The validated policy model: what the files said, checked, before it is
//! lowered for one node.

use std::{collections::BTreeMap, path::PathBuf};

use ipnet::IpNet;

use super::{entities::Entity, error::Pos};

/// Which file format a policy came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// CCNP YAML (as `kubectl get ccnp -o yaml` prints it).
    Yaml,
    /// hostfw's `[[policy]]` TOML.
    Toml,
}

/// One policy: a `CiliumClusterwideNetworkPolicy` or a TOML `[[policy]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// `metadata.name` (YAML) or `name` (TOML).
    pub name: String,
    /// The file it was read from.
    pub file: PathBuf,
    /// Where it starts in the file.
    pub pos: Option<Pos>,
    /// The format of the file.
    pub format: Format,
    /// Its rule sets: one for `spec` (and TOML), one more per `specs[]`.
    pub specs: Vec<Spec>,
}

/// One spec of a policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// Prefix of the rule labels: empty for `spec`, `specs[1].` for an
    /// entry of `specs`.
    pub prefix: String,
    /// Where the spec starts.
    pub pos: Option<Pos>,
    /// Who the rules apply to.
    pub subject: Subject,
    /// `description`.
    pub description: Option<String>,
    /// `ingress`.
    pub ingress: Vec<PeerRule>,
    /// `ingressDeny`.
    pub ingress_deny: Vec<PeerRule>,
    /// `egress`.
    pub egress: Vec<PeerRule>,
    /// `egressDeny`.
    pub egress_deny: Vec<PeerRule>,
    /// `enableDefaultDeny`.
    pub enable_default_deny: DefaultDeny,
    /// Things that are valid but worth saying (a CIDR with host bits, …).
    pub warnings: Vec<String>,
}

/// Who a spec applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// `nodeSelector`: a host policy.
    Nodes(Selector),
    /// `endpointSelector`: a pod policy, never enforced by hostfw (its
    /// rules are not read).
    Endpoints,
}

/// A Kubernetes label selector (`matchLabels` and `matchExpressions`,
/// all of which must match).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    /// `matchLabels`: key → value.
    pub match_labels: BTreeMap<String, String>,
    /// `matchExpressions`.
    pub match_expressions: Vec<Requirement>,
}

/// One `matchExpressions` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub operator: Operator,
    /// Values (`In`/`NotIn` only).
    pub values: Vec<String>,
}

/// A `matchExpressions` operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    /// The label is one of the values.
    In,
    /// The label is absent or none of the values.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

/// `enableDefaultDeny`: `None` = not written (default: on for a direction
/// that has rules).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefaultDeny {
    /// `enableDefaultDeny.ingress`.
    pub ingress: Option<bool>,
    /// `enableDefaultDeny.egress`.
    pub egress: Option<bool>,
}

/// One entry of `ingress`, `ingressDeny`, `egress` or `egressDeny`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRule {
    /// Label like `ingress[1]` (or `specs[1].ingress[1]`).
    pub label: String,
    /// Where the rule starts.
    pub pos: Option<Pos>,
    /// Which peers.
    pub peer: Peer,
    /// Which ports or ICMP types.
    pub l4: L4Match,
}

/// The peers of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// No peer field: every peer (when the rule has `toPorts` or `icmps`).
    Unspecified,
    /// `fromEntities`/`toEntities` (an empty list selects nothing).
    Entities(Vec<Entity>),
    /// `fromCIDR`/`toCIDR`/`fromCIDRSet`/`toCIDRSet` (an empty list
    /// selects nothing).
    Cidrs(Vec<CidrPeer>),
}

/// One CIDR of a rule, host bits cleared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CidrPeer {
    /// The prefix.
    pub net: IpNet,
    /// `except`: sub-prefixes not matched.
    pub except: Vec<IpNet>,
}

/// The L4 part of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum L4Match {
    /// No `toPorts` or `icmps`: every protocol and port.
    Unspecified,
    /// `toPorts[].ports[]`.
    Ports(Vec<PortMatch>),
    /// `icmps[].fields[]`.
    Icmps(Vec<IcmpMatch>),
}

/// One `ports[]` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortMatch {
    /// Protocol.
    pub protocol: Protocol,
    /// First port; with `last` 0..=65535 is every port (`port: "0"`).
    pub first: u16,
    /// Last port (inclusive, `>= first`).
    pub last: u16,
}

/// `protocol` of a `ports[]` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
    /// `ANY` or omitted: TCP, UDP and SCTP (never ICMP).
    Any,
}

/// One `icmps[].fields[]` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpMatch {
    /// `family`.
    pub family: IcmpFamily,
    /// `type`, as a number.
    pub icmp_type: u8,
}

/// `family` of an ICMP field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpFamily {
    /// ICMP (IP protocol 1).
    V4,
    /// ICMPv6 (IP protocol 58).
    V6,
}

impl Spec {
    /// The rule lists with their field names, in the order rule ids are
    /// given.
    #[must_use]
    pub fn rule_lists(&self) -> [(&'static str, &[PeerRule]); 4] {
        [
            ("ingress", &self.ingress),
            ("ingressDeny", &self.ingress_deny),
            ("egress", &self.egress),
            ("egressDeny", &self.egress_deny),
        ]
    }
}
