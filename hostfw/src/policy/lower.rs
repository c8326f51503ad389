//! Lowering: the policies that select this node → one [`RuleSet`], with a
//! report of what each policy became.
//!
//! Semantics (DESIGN.md section 1; Cilium where it is silent):
//! - A spec applies iff its `nodeSelector` matches the node's labels.
//! - Default deny, per direction: on iff some applying spec has a rule in
//!   that direction (`ingress`/`ingressDeny`, or `egress`/`egressDeny`;
//!   an empty rule `{}` counts) and does not say
//!   `enableDefaultDeny.<direction>: false`. `enableDefaultDeny: true`
//!   without rules in that direction does nothing. Several specs combine
//!   by OR. (Cilium: `Rule.Sanitize` in `pkg/policy/api/rule_validation.go`
//!   fills the default from "has rules"; `computePolicyEnforcementAndRules`
//!   in `pkg/policy/repository.go` only reads the flag of rules that have
//!   rules in the direction, and any one of them turns it on.)
//! - Entities on a bare node: `host` = this node's addresses;
//!   `remote-node` = the cluster's nodes that are not this node;
//!   `kube-apiserver` = the API servers; `cluster` = all of these plus the
//!   pod CIDRs; `world` = everything but this node, the other nodes and the
//!   pod CIDRs (an API server that is not a node stays in `world`, as in
//!   Cilium), `world-ipv4`/`world-ipv6` its halves; `all` = every peer;
//!   `health`, `init`, `ingress`, `unmanaged` = nothing (with a warning);
//!   `none` = nothing.
//! - CIDR peers never match this node's addresses or the pod CIDRs, nor
//!   the other nodes unless `cidr_match_nodes` (Cilium's
//!   `policy-cidr-match-mode: nodes` gives CIDR identities to the other
//!   nodes only; this host stays `host`). These are cut out as excepts,
//!   with a warning naming them.
//! - Rule ids: failsafe entries first (inbound, then outbound), then the
//!   policies by name, their specs in order, and in each spec `ingress`,
//!   `ingressDeny`, `egress`, `egressDeny`, rules in order. One source rule
//!   is one [`Rule`]; an empty rule `{}` gives none.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
};

use hostfw_common::proto;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{
    cidr::{carve, dedup, host_net, overlaps},
    entities::Entity,
    error::Pos,
    model::{IcmpFamily, L4Match, Peer, PeerRule, Policy, Protocol, Subject},
    select,
};
use crate::{
    config::{Config, FailsafePort},
    refeval::{icmp6_always, icmp6_by_policy},
    ruleset::{Action, Cidr, Direction, L4, Mode, Peers, Rule, RuleSet},
};

/// One failsafe entry: always allowed, whatever the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailsafeEntry {
    /// Inbound entries are ingress, outbound egress.
    pub direction: Direction,
    /// IP protocol (TCP, UDP or SCTP).
    pub proto: u8,
    /// Destination port.
    pub port: u16,
    /// Narrows the entry to these peers.
    pub cidr: Option<IpNet>,
}

impl FailsafeEntry {
    /// The label in reports: `failsafe inbound TCP/22`, with
    /// ` from 10.50.0.0/24` (or ` to …`) when narrowed.
    #[must_use]
    pub fn label(&self) -> String {
        let (dir, peer) = match self.direction {
            Direction::Ingress => ("inbound", "from"),
            Direction::Egress => ("outbound", "to"),
        };
        let name = match self.proto {
            proto::TCP => "TCP",
            proto::UDP => "UDP",
            proto::SCTP => "SCTP",
            _ => "?",
        };
        match self.cidr {
            Some(c) => format!("failsafe {dir} {name}/{} {peer} {c}", self.port),
            None => format!("failsafe {dir} {name}/{}", self.port),
        }
    }
}

/// A configuration that cannot be lowered against.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A failsafe entry with a protocol other than TCP, UDP or SCTP.
    #[error("[failsafe] {list}[{index}]: invalid protocol {protocol:?}: expected TCP, UDP or SCTP")]
    FailsafeProtocol {
        /// `inbound` or `outbound`.
        list: &'static str,
        /// Index in the list.
        index: usize,
        /// The protocol as written.
        protocol: String,
    },
}

/// What lowering needs to know about this node and its cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LowerContext {
    /// This node's labels, matched by `nodeSelector`.
    pub node_labels: BTreeMap<String, String>,
    /// This node's addresses (configured and of its interfaces): `host`.
    pub host_addresses: Vec<IpAddr>,
    /// Every node of the cluster (this one may be among them).
    pub cluster_nodes: Vec<IpAddr>,
    /// The pod CIDRs.
    pub pod_cidrs: Vec<IpNet>,
    /// The API servers.
    pub apiservers: Vec<IpAddr>,
    /// CIDR rules also match the other nodes.
    pub cidr_match_nodes: bool,
    /// Audit or enforce.
    pub mode: Mode,
    /// Failsafe entries.
    pub failsafe: Vec<FailsafeEntry>,
}

impl LowerContext {
    /// The context from the configuration file and the addresses of this
    /// node's interfaces.
    pub fn from_config(cfg: &Config, interface_addresses: &[IpAddr]) -> Result<Self, ContextError> {
        let mut host: Vec<IpAddr> = cfg.node.addresses.clone();
        host.extend_from_slice(interface_addresses);
        host.sort();
        host.dedup();
        let mut failsafe = Vec::new();
        for (list, entries, direction) in [
            ("inbound", &cfg.failsafe.inbound, Direction::Ingress),
            ("outbound", &cfg.failsafe.outbound, Direction::Egress),
        ] {
            for (index, e) in entries.iter().enumerate() {
                failsafe.push(failsafe_entry(e, direction).ok_or_else(|| {
                    ContextError::FailsafeProtocol {
                        list,
                        index,
                        protocol: e.protocol.clone(),
                    }
                })?);
            }
        }
        Ok(Self {
            node_labels: cfg.node.labels.clone(),
            host_addresses: host,
            cluster_nodes: cfg.cluster.nodes.clone(),
            pod_cidrs: cfg.cluster.pod_cidrs.clone(),
            apiservers: cfg.cluster.apiservers.clone(),
            cidr_match_nodes: cfg.policy.cidr_match_nodes,
            mode: cfg.mode,
            failsafe,
        })
    }
}

fn failsafe_entry(e: &FailsafePort, direction: Direction) -> Option<FailsafeEntry> {
    let proto = match e.protocol.to_ascii_uppercase().as_str() {
        "TCP" => proto::TCP,
        "UDP" => proto::UDP,
        "SCTP" => proto::SCTP,
        _ => return None,
    };
    Some(FailsafeEntry {
        direction,
        proto,
        port: e.port,
        cidr: e.cidr.map(|c| c.trunc()),
    })
}

/// The result of lowering.
#[derive(Clone, Debug, PartialEq)]
pub struct Lowered {
    /// What the datapath enforces.
    pub rules: RuleSet,
    /// What became of each policy, and where each rule comes from.
    pub report: Report,
}

/// What lowering did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// One entry per policy, by name.
    pub policies: Vec<PolicyReport>,
    /// Rule id → where it comes from.
    pub origins: BTreeMap<u32, RuleOrigin>,
    /// The policies that make ingress default-deny.
    pub default_deny_ingress: Vec<String>,
    /// The policies that make egress default-deny.
    pub default_deny_egress: Vec<String>,
}

impl Report {
    /// Where rule `id` comes from.
    #[must_use]
    pub fn origin(&self, id: u32) -> Option<&RuleOrigin> {
        self.origins.get(&id)
    }

    /// The policies that make `direction` default-deny.
    #[must_use]
    pub fn default_deny(&self, direction: Direction) -> &[String] {
        match direction {
            Direction::Ingress => &self.default_deny_ingress,
            Direction::Egress => &self.default_deny_egress,
        }
    }
}

impl PolicyReport {
    /// It is selected and has rules (empty ones included) in `direction`.
    #[must_use]
    pub fn has_rules(&self, direction: Direction) -> bool {
        let c = &self.counts;
        self.selection == Selection::Selected
            && match direction {
                Direction::Ingress => c.ingress + c.ingress_deny > 0,
                Direction::Egress => c.egress + c.egress_deny > 0,
            }
    }

    /// It makes `direction` default-deny.
    #[must_use]
    pub const fn makes_default_deny(&self, direction: Direction) -> bool {
        match direction {
            Direction::Ingress => self.default_deny_ingress,
            Direction::Egress => self.default_deny_egress,
        }
    }
}

/// Where a rule comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleOrigin {
    /// The policy; `None` for a failsafe entry. Shared by the policy's rules.
    pub policy: Option<std::sync::Arc<str>>,
    /// `ingress[1]` style (`specs[0].ingress[1]` in a multi-spec policy), or
    /// `failsafe inbound TCP/22`.
    pub rule: String,
    /// The policy's file, shared by its rules.
    pub file: Option<std::sync::Arc<std::path::Path>>,
    /// Where the rule is in it.
    pub pos: Option<Pos>,
}

/// What became of one policy.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyReport {
    /// Name.
    pub name: String,
    /// File.
    pub file: PathBuf,
    /// Whether it applies to this node.
    pub selection: Selection,
    /// Its rules (entries of each list) that apply.
    pub counts: RuleCounts,
    /// The ids of its rules in the rule set.
    pub rule_ids: Vec<u32>,
    /// It makes ingress default-deny.
    pub default_deny_ingress: bool,
    /// It makes egress default-deny.
    pub default_deny_egress: bool,
    /// Things worth knowing (CIDRs overlapping cluster addresses, entities
    /// that are empty here, …).
    pub warnings: Vec<String>,
    /// The CIDR peers that overlap cluster addresses (each also among the
    /// warnings), for `trace` to point out.
    pub overlaps: Vec<CidrOverlap>,
}

/// A CIDR peer of a rule that overlaps cluster addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CidrOverlap {
    /// The rule's direction.
    pub direction: Direction,
    /// The CIDR as written (host bits cleared).
    pub net: IpNet,
    /// The warning: rule label, what overlaps and what is done with it.
    pub warning: String,
}

/// Whether a policy applies to this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Its `nodeSelector` matches this node.
    Selected,
    /// Its `nodeSelector` does not match; why.
    NotSelected {
        /// Why.
        reason: String,
    },
    /// Never enforced by hostfw (a pod policy); why.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// Rules of a policy per list (source rules, empty ones included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleCounts {
    /// `ingress`.
    pub ingress: usize,
    /// `ingressDeny`.
    pub ingress_deny: usize,
    /// `egress`.
    pub egress: usize,
    /// `egressDeny`.
    pub egress_deny: usize,
}

/// The address sets of the entities.
struct Sets {
    host: Vec<IpNet>,
    remote: Vec<IpNet>,
    pods: Vec<IpNet>,
    apis: Vec<IpNet>,
    cidr_match_nodes: bool,
}

impl Sets {
    fn new(ctx: &LowerContext) -> Self {
        let norm = |mut v: Vec<IpNet>| {
            v.sort();
            v.dedup();
            v
        };
        let host = norm(ctx.host_addresses.iter().map(|&a| host_net(a)).collect());
        let remote = norm(
            ctx.cluster_nodes
                .iter()
                .map(|&a| host_net(a))
                .filter(|n| !host.contains(n))
                .collect(),
        );
        Self {
            pods: norm(ctx.pod_cidrs.iter().map(IpNet::trunc).collect()),
            apis: norm(ctx.apiservers.iter().map(|&a| host_net(a)).collect()),
            host,
            remote,
            cidr_match_nodes: ctx.cidr_match_nodes,
        }
    }

    /// Everything that is not `world`.
    fn not_world(&self) -> Vec<IpNet> {
        self.host
            .iter()
            .chain(&self.remote)
            .chain(&self.pods)
            .copied()
            .collect()
    }

    /// What CIDR peers never match.
    fn not_cidr(&self) -> Vec<IpNet> {
        let mut v: Vec<IpNet> = self.host.iter().chain(&self.pods).copied().collect();
        if !self.cidr_match_nodes {
            v.extend_from_slice(&self.remote);
        }
        v
    }

    fn world(&self, v6: bool) -> Option<Cidr> {
        let all = if v6 {
            IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 0))
        } else {
            IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::UNSPECIFIED, 0))
        };
        carve(all, &[], &self.not_world())
    }
}

fn plain(nets: &[IpNet]) -> Vec<Cidr> {
    nets.iter()
        .map(|&net| Cidr {
            net,
            except: Vec::new(),
        })
        .collect()
}

/// Lowers the policies for the node of `ctx`.
#[must_use]
pub fn lower(policies: &[Policy], ctx: &LowerContext) -> Lowered {
    let sets = Sets::new(ctx);
    let mut rules = RuleSet {
        mode: ctx.mode,
        ..RuleSet::default()
    };
    let mut report = Report::default();
    let mut next_id: u32 = 1;

    for f in &ctx.failsafe {
        let peers = match f.cidr {
            Some(net) => Peers::Cidrs(vec![Cidr {
                net,
                except: Vec::new(),
            }]),
            None => Peers::Any,
        };
        rules.rules.push(Rule {
            id: next_id,
            direction: f.direction,
            action: Action::Failsafe,
            peers,
            l4: vec![L4::Ports {
                proto: f.proto,
                first: f.port,
                last: f.port,
            }],
        });
        report.origins.insert(
            next_id,
            RuleOrigin {
                policy: None,
                rule: f.label(),
                file: None,
                pos: None,
            },
        );
        next_id += 1;
    }

    let mut order: Vec<&Policy> = policies.iter().collect();
    order.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| a.file.cmp(&b.file))
            .then_with(|| a.pos.cmp(&b.pos))
    });

    for policy in order {
        let mut pr = PolicyReport {
            name: policy.name.clone(),
            file: policy.file.clone(),
            selection: Selection::Selected,
            counts: RuleCounts::default(),
            rule_ids: Vec::new(),
            default_deny_ingress: false,
            default_deny_egress: false,
            warnings: Vec::new(),
            overlaps: Vec::new(),
        };
        let mut selected = false;
        let mut reasons = Vec::new();
        let mut skipped = Vec::new();
        let many = policy.specs.len() > 1;
        for spec in &policy.specs {
            let tag = if many {
                format!("{}: ", spec.prefix.trim_end_matches('.'))
            } else {
                String::new()
            };
            let sel = match &spec.subject {
                Subject::Endpoints => {
                    skipped.push(format!(
                        "{tag}endpointSelector makes it a pod policy; hostfw enforces host \
                         policies (nodeSelector) only"
                    ));
                    continue;
                }
                Subject::Nodes(sel) => sel,
            };
            if let Some(why) = select::mismatch(sel, &ctx.node_labels) {
                reasons.push(format!("{tag}nodeSelector does not match this node: {why}"));
                continue;
            }
            selected = true;
            pr.warnings.extend(spec.warnings.iter().cloned());

            let has_in = !spec.ingress.is_empty() || !spec.ingress_deny.is_empty();
            let has_eg = !spec.egress.is_empty() || !spec.egress_deny.is_empty();
            let dd = spec.enable_default_deny;
            if has_in && dd.ingress != Some(false) {
                pr.default_deny_ingress = true;
            }
            if has_eg && dd.egress != Some(false) {
                pr.default_deny_egress = true;
            }
            for (has, flag, dir) in [
                (has_in, dd.ingress, "ingress"),
                (has_eg, dd.egress, "egress"),
            ] {
                if !has && flag == Some(true) {
                    pr.warnings.push(format!(
                        "{tag}enableDefaultDeny.{dir}: true has no effect without {dir} rules \
                         (as in Cilium)"
                    ));
                }
            }

            // One copy of the name and path for all of the policy's rules.
            let shared_name: std::sync::Arc<str> = policy.name.as_str().into();
            let shared_file: std::sync::Arc<std::path::Path> = policy.file.as_path().into();
            pr.counts.ingress += spec.ingress.len();
            pr.counts.ingress_deny += spec.ingress_deny.len();
            pr.counts.egress += spec.egress.len();
            pr.counts.egress_deny += spec.egress_deny.len();
            for (list, direction, action) in [
                (&spec.ingress, Direction::Ingress, Action::Allow),
                (&spec.ingress_deny, Direction::Ingress, Action::Deny),
                (&spec.egress, Direction::Egress, Action::Allow),
                (&spec.egress_deny, Direction::Egress, Action::Deny),
            ] {
                for source in list {
                    let Some((peers, l4)) = lower_rule(source, direction, &sets, &mut pr) else {
                        continue;
                    };
                    rules.rules.push(Rule {
                        id: next_id,
                        direction,
                        action,
                        peers,
                        l4,
                    });
                    report.origins.insert(
                        next_id,
                        RuleOrigin {
                            policy: Some(shared_name.clone()),
                            rule: source.label.clone(),
                            file: Some(shared_file.clone()),
                            pos: source.pos,
                        },
                    );
                    pr.rule_ids.push(next_id);
                    next_id += 1;
                }
            }
        }
        pr.selection = if selected {
            Selection::Selected
        } else if !reasons.is_empty() {
            Selection::NotSelected {
                reason: reasons.join("; "),
            }
        } else {
            Selection::Skipped {
                reason: skipped.join("; "),
            }
        };
        if pr.default_deny_ingress {
            rules.default_deny_ingress = true;
            report.default_deny_ingress.push(pr.name.clone());
        }
        if pr.default_deny_egress {
            rules.default_deny_egress = true;
            report.default_deny_egress.push(pr.name.clone());
        }
        report.policies.push(pr);
    }
    Lowered { rules, report }
}

/// The peers and L4 entries of one source rule; `None` for an empty rule.
fn lower_rule(
    rule: &PeerRule,
    direction: Direction,
    sets: &Sets,
    pr: &mut PolicyReport,
) -> Option<(Peers, Vec<L4>)> {
    let label = &rule.label;
    let warnings = &mut pr.warnings;
    let peers = match &rule.peer {
        Peer::Unspecified if rule.l4 == L4Match::Unspecified => return None,
        Peer::Unspecified => Peers::Any,
        Peer::Entities(list) => entities(list, label, sets, warnings),
        Peer::Cidrs(list) => {
            if list.is_empty() {
                warnings.push(format!("{label}: the empty CIDR list selects no peer"));
            }
            let mut out = Vec::new();
            for c in list {
                if let Some(warning) = cidr_warning(c.net, &c.except, label, sets) {
                    warnings.push(warning.clone());
                    pr.overlaps.push(CidrOverlap {
                        direction,
                        net: c.net,
                        warning,
                    });
                }
                if let Some(cut) = carve(c.net, &c.except, &sets.not_cidr()) {
                    out.push(cut);
                }
            }
            Peers::Cidrs(dedup(out))
        }
    };
    let l4 = match &rule.l4 {
        L4Match::Unspecified => vec![L4::Any],
        L4Match::Ports(ports) => {
            let mut out = Vec::new();
            for p in ports {
                let protos: &[u8] = match p.protocol {
                    Protocol::Tcp => &[proto::TCP],
                    Protocol::Udp => &[proto::UDP],
                    Protocol::Sctp => &[proto::SCTP],
                    Protocol::Any => &[proto::TCP, proto::UDP, proto::SCTP],
                };
                for &proto in protos {
                    let l4 = L4::Ports {
                        proto,
                        first: p.first,
                        last: p.last,
                    };
                    if !out.contains(&l4) {
                        out.push(l4);
                    }
                }
            }
            out
        }
        L4Match::Icmps(fields) => {
            let mut out = Vec::new();
            for f in fields {
                let proto = match f.family {
                    IcmpFamily::V4 => proto::ICMP,
                    IcmpFamily::V6 => proto::ICMPV6,
                };
                if f.family == IcmpFamily::V6 {
                    let t = f.icmp_type;
                    if icmp6_always(t) {
                        warnings.push(format!(
                            "{label}: ICMPv6 type {t} always passes on the host (IPv6 needs it); \
                             this entry has no effect"
                        ));
                    } else if !icmp6_by_policy(t) {
                        warnings.push(format!(
                            "{label}: ICMPv6 type {t} is always dropped on the host (only echo, \
                             128 and 129, is decided by policy); this entry has no effect"
                        ));
                    }
                }
                let l4 = L4::Icmp {
                    proto,
                    icmp_type: f.icmp_type,
                };
                if !out.contains(&l4) {
                    out.push(l4);
                }
            }
            out
        }
    };
    Some((peers, l4))
}

fn entities(list: &[Entity], label: &str, sets: &Sets, warnings: &mut Vec<String>) -> Peers {
    if list.is_empty() {
        warnings.push(format!("{label}: the empty entity list selects no peer"));
    }
    let mut out: Vec<Cidr> = Vec::new();
    for &e in list {
        let empty = |what: &str, warnings: &mut Vec<String>| {
            warnings.push(format!("{label}: entity {e} is no address here: {what}"));
        };
        match e {
            Entity::All => return Peers::Any,
            Entity::World => out.extend(sets.world(false).into_iter().chain(sets.world(true))),
            Entity::WorldIpv4 => out.extend(sets.world(false)),
            Entity::WorldIpv6 => out.extend(sets.world(true)),
            Entity::Cluster => {
                let all: Vec<IpNet> = sets
                    .host
                    .iter()
                    .chain(&sets.remote)
                    .chain(&sets.pods)
                    .chain(&sets.apis)
                    .copied()
                    .collect();
                if all.is_empty() {
                    empty(
                        "no node, pod CIDR or API server is known ([cluster], [node])",
                        warnings,
                    );
                }
                out.extend(plain(&all));
            }
            Entity::Host => {
                if sets.host.is_empty() {
                    empty("this node has no known address", warnings);
                }
                out.extend(plain(&sets.host));
            }
            Entity::RemoteNode => {
                if sets.remote.is_empty() {
                    empty("[cluster] nodes lists no other node", warnings);
                }
                out.extend(plain(&sets.remote));
            }
            Entity::KubeApiserver => {
                if sets.apis.is_empty() {
                    empty("[cluster] apiservers is empty", warnings);
                }
                out.extend(plain(&sets.apis));
            }
            Entity::Health | Entity::Init | Entity::Ingress | Entity::Unmanaged => {
                empty(
                    "it names Cilium endpoints, which a bare node does not have",
                    warnings,
                );
            }
            Entity::None => {}
        }
    }
    // A covering prefix makes the ones inside it redundant only when it
    // has no excepts; keep it simple and exact: just drop duplicates.
    Peers::Cidrs(dedup(out))
}

/// Says which cluster addresses a CIDR peer overlaps, and what is done
/// with them; `None` when it overlaps none.
fn cidr_warning(net: IpNet, except: &[IpNet], label: &str, sets: &Sets) -> Option<String> {
    let hit = |n: &IpNet| {
        overlaps(&net, n)
            && !except
                .iter()
                .any(|e| e.contains(&n.network()) && e.prefix_len() <= n.prefix_len())
    };
    let mut cut = Vec::new();
    let mut kept = Vec::new();
    for n in sets.host.iter().filter(|n| hit(n)) {
        cut.push(format!("{} (this node)", n.addr()));
    }
    for n in sets.remote.iter().filter(|n| hit(n)) {
        if sets.cidr_match_nodes {
            kept.push(format!("{} (a node; cidr_match_nodes = true)", n.addr()));
        } else {
            cut.push(format!("{} (a node)", n.addr()));
        }
    }
    for n in sets.pods.iter().filter(|n| hit(n)) {
        cut.push(format!("{n} (pod CIDR)"));
    }
    for n in sets.apis.iter().filter(|n| hit(n)) {
        let on_node = sets.host.contains(n) || sets.remote.contains(n);
        if !on_node {
            kept.push(format!(
                "{} (API server outside the nodes: world)",
                n.addr()
            ));
        }
    }
    if cut.is_empty() && kept.is_empty() {
        return None;
    }
    let mut msg = format!("{label}: {net} overlaps cluster addresses");
    if !cut.is_empty() {
        msg.push_str(&format!(
            "; not matched: {} (CIDR rules do not select nodes or pods; use the entities host, \
             remote-node or cluster)",
            cut.join(", ")
        ));
    }
    if !kept.is_empty() {
        msg.push_str(&format!("; matched: {}", kept.join(", ")));
    }
    if carve(net, except, &sets.not_cidr()).is_none() {
        msg.push_str("; nothing is left: the CIDR matches no peer");
    }
    Some(msg)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::policy::{Format, parse_str};

    fn policies(body: &str) -> Vec<Policy> {
        let text = format!(
            "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {{name: t}}\n\
             spec:\n  nodeSelector: {{}}\n{body}"
        );
        parse_str(&text, Path::new("t.yaml"), Format::Yaml).expect("valid policy")
    }

    #[test]
    fn context_from_config_merges_addresses_and_failsafe() {
        let cfg = Config::parse(
            "mode = \"enforce\"\n[node]\nlabels = { a = \"b\" }\naddresses = [\"10.0.0.1\"]\n\
             [cluster]\nnodes = [\"10.0.0.1\", \"10.0.0.2\"]\n[policy]\ncidr_match_nodes = true\n\
             [failsafe]\ninbound = [{ protocol = \"tcp\", port = 22, cidr = \"10.50.0.9/24\" }]\n\
             outbound = []\n",
            Path::new("h.toml"),
        )
        .expect("config");
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let ctx =
            LowerContext::from_config(&cfg, &[ip("192.168.1.5"), ip("10.0.0.1")]).expect("context");
        assert_eq!(ctx.mode, Mode::Enforce);
        assert_eq!(ctx.host_addresses, vec![ip("10.0.0.1"), ip("192.168.1.5")]);
        assert!(ctx.cidr_match_nodes);
        assert_eq!(ctx.failsafe.len(), 1);
        assert_eq!(
            ctx.failsafe[0].label(),
            "failsafe inbound TCP/22 from 10.50.0.0/24"
        );

        let bad = Config::parse(
            "[failsafe]\noutbound = [{ protocol = \"ICMP\", port = 0 }]\n",
            Path::new("h.toml"),
        )
        .expect("config");
        let err = LowerContext::from_config(&bad, &[]).expect_err("ICMP failsafe");
        assert_eq!(
            err.to_string(),
            "[failsafe] outbound[0]: invalid protocol \"ICMP\": expected TCP, UDP or SCTP"
        );
    }

    #[test]
    fn failsafe_rules_come_first() {
        let cfg = Config::default();
        let ctx = LowerContext::from_config(&cfg, &[]).expect("default failsafe");
        let l = lower(&policies("  ingress:\n  - fromEntities: [world]\n"), &ctx);
        let n = cfg.failsafe.inbound.len() + cfg.failsafe.outbound.len();
        assert_eq!(l.rules.rules.len(), n + 1);
        for (i, r) in l.rules.rules.iter().enumerate() {
            assert_eq!(r.id as usize, i + 1);
            assert_eq!(r.action == Action::Failsafe, i < n);
        }
        assert_eq!(
            l.report.origin(1).map(|o| o.rule.as_str()),
            Some("failsafe inbound TCP/22")
        );
        assert_eq!(
            l.report.origin(3).map(|o| o.rule.as_str()),
            Some("failsafe outbound UDP/53")
        );
        assert_eq!(l.report.origin(1).and_then(|o| o.policy.clone()), None);
    }

    #[test]
    fn lowering_shapes() {
        let ctx = LowerContext {
            host_addresses: vec!["10.0.0.1".parse().expect("ip")],
            pod_cidrs: vec!["10.244.0.0/16".parse().expect("cidr")],
            ..LowerContext::default()
        };
        let l = lower(
            &policies(
                "  ingress:\n  - {}\n  - toPorts: [{ports: [{port: \"53\"}, {port: \"53\", protocol: UDP}]}]\n  \
                 - fromCIDR: [10.0.0.0/8]\n  - fromEntities: [world, all]\n  \
                 - icmps: [{fields: [{type: 0}, {type: 135, family: IPv6}, {type: 137, family: IPv6}]}]\n",
            ),
            &ctx,
        );
        let r = &l.rules.rules;
        assert_eq!(r.len(), 4, "the empty rule gives none: {r:#?}");
        assert_eq!(r[0].peers, Peers::Any);
        assert_eq!(
            r[0].l4,
            vec![
                L4::Ports {
                    proto: proto::TCP,
                    first: 53,
                    last: 53
                },
                L4::Ports {
                    proto: proto::UDP,
                    first: 53,
                    last: 53
                },
                L4::Ports {
                    proto: proto::SCTP,
                    first: 53,
                    last: 53
                },
            ]
        );
        assert_eq!(
            r[1].peers,
            Peers::Cidrs(vec![Cidr {
                net: "10.0.0.0/8".parse().expect("cidr"),
                except: vec![
                    "10.0.0.1/32".parse().expect("cidr"),
                    "10.244.0.0/16".parse().expect("cidr")
                ],
            }])
        );
        assert_eq!(r[1].l4, vec![L4::Any]);
        assert_eq!(r[2].peers, Peers::Any, "all absorbs world");
        assert_eq!(
            r[3].l4,
            vec![
                L4::Icmp {
                    proto: proto::ICMP,
                    icmp_type: 0
                },
                L4::Icmp {
                    proto: proto::ICMPV6,
                    icmp_type: 135
                },
                L4::Icmp {
                    proto: proto::ICMPV6,
                    icmp_type: 137
                },
            ]
        );
        let w = l.report.policies[0].warnings.join("\n");
        assert!(
            w.contains("ingress[4]: ICMPv6 type 135 always passes"),
            "{w}"
        );
        assert!(
            w.contains("ingress[4]: ICMPv6 type 137 is always dropped"),
            "{w}"
        );
        assert!(
            w.contains("ingress[2]: 10.0.0.0/8 overlaps cluster addresses"),
            "{w}"
        );
        assert!(l.rules.default_deny_ingress && !l.rules.default_deny_egress);
    }

    #[test]
    fn empty_address_sets_are_warned_about() {
        let l = lower(
            &policies("  egress:\n  - toEntities: [remote-node, kube-apiserver, host, none]\n"),
            &LowerContext::default(),
        );
        assert_eq!(l.rules.rules[0].peers, Peers::Cidrs(vec![]));
        let w = l.report.policies[0].warnings.join("\n");
        assert!(
            w.contains(
                "entity remote-node is no address here: [cluster] nodes lists no other node"
            ),
            "{w}"
        );
        assert!(
            w.contains("entity kube-apiserver is no address here"),
            "{w}"
        );
        assert!(w.contains("entity host is no address here"), "{w}");
        assert!(!w.contains("entity none"), "{w}");
    }
}
