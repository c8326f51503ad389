//! The strict decoder: a [`Node`] tree of one spec → the validated
//! [`Spec`], every problem recorded with its position and field path.
//!
//! Shared by the YAML and the TOML forms. Rules follow Cilium's
//! `pkg/policy/api` (`rule_validation.go`): one peer kind per rule, `icmps`
//! without `toPorts`, `except` inside its `cidr`; fields a bare node cannot
//! honour are rejected with what to use instead.

use std::{net::IpAddr, str::FromStr};

use ipnet::IpNet;

use super::{
    entities::{self, Entity},
    error::{ErrorKind, Errors, Pos},
    icmp,
    model::{
        CidrPeer, DefaultDeny, IcmpFamily, IcmpMatch, L4Match, Operator, Peer, PeerRule, PortMatch,
        Protocol, Requirement, Selector, Spec, Subject,
    },
    tree::{Entry, Node, Value},
};

/// `path.key`, or `key` at the top.
pub(crate) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Which rule list a rule is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Ingress,
    Egress,
}

const SPEC_FIELDS: &[&str] = &[
    "nodeSelector",
    "endpointSelector",
    "ingress",
    "ingressDeny",
    "egress",
    "egressDeny",
    "enableDefaultDeny",
    "description",
    "labels",
    "log",
];

const INGRESS_FIELDS: &[&str] = &[
    "fromEntities",
    "fromCIDR",
    "fromCIDRSet",
    "toPorts",
    "icmps",
];
const EGRESS_FIELDS: &[&str] = &["toEntities", "toCIDR", "toCIDRSet", "toPorts", "icmps"];

const NO_IDENTITIES: &str = "a bare node has no pod identities; select peers with \
    fromEntities/toEntities (cluster, remote-node, host, kube-apiserver, world) or by address \
    with fromCIDR/toCIDR";

const INGRESS_REJECTED: &[(&str, &str)] = &[
    ("fromEndpoints", NO_IDENTITIES),
    ("fromRequires", NO_IDENTITIES),
    (
        "fromNodes",
        "hostfw does not know the labels of other nodes; use fromEntities: [remote-node], or \
         fromCIDR with their addresses and [policy] cidr_match_nodes = true",
    ),
    (
        "fromGroups",
        "cloud provider groups are not resolved by hostfw; use fromCIDR/fromCIDRSet with the \
         addresses",
    ),
    (
        "authentication",
        "mutual authentication needs Cilium's agent; remove it (hostfw enforces L3/L4 only)",
    ),
    (
        "toFQDNs",
        "toFQDNs is an egress field, and hostfw has no DNS proxy; use toCIDR/toCIDRSet with the addresses",
    ),
];

const EGRESS_REJECTED: &[(&str, &str)] = &[
    ("toEndpoints", NO_IDENTITIES),
    ("toRequires", NO_IDENTITIES),
    (
        "toServices",
        "hostfw does not resolve Kubernetes services; use toCIDR with the service's backend \
         addresses, or toEntities: [kube-apiserver] for the API server",
    ),
    (
        "toFQDNs",
        "hostfw has no DNS proxy to learn the addresses of names; use toCIDR/toCIDRSet with the \
         addresses",
    ),
    (
        "toNodes",
        "hostfw does not know the labels of other nodes; use toEntities: [remote-node], or \
         toCIDR with their addresses and [policy] cidr_match_nodes = true",
    ),
    (
        "toGroups",
        "cloud provider groups are not resolved by hostfw; use toCIDR/toCIDRSet with the \
         addresses",
    ),
    (
        "authentication",
        "mutual authentication needs Cilium's agent; remove it (hostfw enforces L3/L4 only)",
    ),
];

const L7: &str = "layer-7 filtering needs Cilium's proxy, which a bare node does not have; \
    hostfw enforces L3/L4 only: remove it to allow the whole port";

const PORT_RULE_REJECTED: &[(&str, &str)] = &[
    ("rules", L7),
    ("originatingTLS", L7),
    ("terminatingTLS", L7),
    ("serverNames", L7),
    ("listener", L7),
];

const CIDR_GROUP: &str = "CiliumCIDRGroup objects are not resolved by hostfw; write the CIDRs \
    themselves in `cidr` (one fromCIDRSet/toCIDRSet entry each)";

/// Decodes one spec; `prefix` is empty for `spec`, `specs[N]` otherwise.
/// `extra` are fields allowed beside the spec's (TOML's `name`).
pub(crate) fn spec(
    errs: &mut Errors<'_>,
    node: &Node,
    prefix: &str,
    extra: &[&str],
) -> Option<Spec> {
    let before = errs.count();
    let mut d = Decoder {
        errs,
        warnings: Vec::new(),
    };
    let spec = d.spec(node, prefix, extra);
    let ok = d.errs.count() == before;
    let warnings = d.warnings;
    spec.filter(|_| ok).map(|mut s| {
        s.warnings = warnings;
        s
    })
}

/// Walks one spec, recording errors and warnings.
struct Decoder<'a, 'b> {
    errs: &'a mut Errors<'b>,
    warnings: Vec<String>,
}

/// The entry of a map whose value is not null (null is "not written", as
/// for Cilium's Go types).
fn field<'n>(entries: &'n [Entry], key: &str) -> Option<&'n Entry> {
    entries
        .iter()
        .find(|e| e.key == key && e.value.value != Value::Null)
}

impl Decoder<'_, '_> {
    fn err(&mut self, pos: Option<Pos>, path: &str, kind: ErrorKind) {
        self.errs.push(pos, path, kind);
    }

    fn wrong(&mut self, node: &Node, path: &str, expected: &'static str) {
        self.err(
            node.pos,
            path,
            ErrorKind::WrongType {
                expected,
                found: node.value.type_name(),
            },
        );
    }

    fn map<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        expected: &'static str,
    ) -> Option<&'n [Entry]> {
        match &node.value {
            Value::Map(entries) => Some(entries),
            _ => {
                self.wrong(node, path, expected);
                None
            }
        }
    }

    fn seq<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        expected: &'static str,
    ) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.wrong(node, path, expected);
                None
            }
        }
    }

    fn string<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        expected: &'static str,
    ) -> Option<&'n str> {
        match &node.value {
            Value::Str(s) => Some(s),
            _ => {
                self.wrong(node, path, expected);
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.wrong(node, path, "true or false");
                None
            }
        }
    }

    /// Checks every key of `entries` against `allowed` and `rejected`.
    fn fields(
        &mut self,
        entries: &[Entry],
        path: &str,
        allowed: &[&str],
        rejected: &[(&str, &str)],
    ) {
        for e in entries {
            if allowed.contains(&e.key.as_str()) {
                continue;
            }
            if let Some((_, advice)) = rejected.iter().find(|(k, _)| *k == e.key) {
                self.err(
                    e.key_pos,
                    path,
                    ErrorKind::Unsupported {
                        field: e.key.clone(),
                        advice: (*advice).to_string(),
                    },
                );
                continue;
            }
            self.err(e.key_pos, path, ErrorKind::unknown_field(&e.key, allowed));
        }
    }

    fn spec(&mut self, node: &Node, prefix: &str, extra: &[&str]) -> Option<Spec> {
        let here = if prefix.is_empty() { "spec" } else { prefix };
        let before = self.errs.count();
        let entries = self.map(node, here, "a policy spec (a map)")?;
        let allowed: Vec<&str> = SPEC_FIELDS.iter().chain(extra).copied().collect();
        self.fields(entries, prefix, &allowed, &[]);

        let node_sel = field(entries, "nodeSelector");
        let ep_sel = field(entries, "endpointSelector");
        let subject = match (node_sel, ep_sel) {
            (Some(_), Some(ep)) => {
                self.err(
                    ep.key_pos,
                    prefix,
                    ErrorKind::Conflict {
                        first: "nodeSelector".into(),
                        second: "endpointSelector".into(),
                        advice: "a policy selects either nodes (a host policy, nodeSelector) or \
                                 pods (endpointSelector), as in Cilium"
                            .into(),
                    },
                );
                return None;
            }
            (None, None) => {
                self.err(
                    node.pos,
                    here,
                    ErrorKind::Missing {
                        field: "nodeSelector",
                        expected: "a host policy selects nodes with nodeSelector (`{}` selects \
                                   every node); Cilium requires nodeSelector or endpointSelector"
                            .into(),
                    },
                );
                return None;
            }
            (None, Some(_)) => Subject::Endpoints,
            (Some(sel), None) => {
                Subject::Nodes(self.selector(&sel.value, &child(prefix, "nodeSelector"))?)
            }
        };

        let description = match field(entries, "description") {
            Some(e) => Some(
                self.string(&e.value, &child(prefix, "description"), "a string")?
                    .to_string(),
            ),
            None => None,
        };
        if let Some(e) = field(entries, "log") {
            // Hubble logging configuration: accepted, nothing to do here.
            self.map(&e.value, &child(prefix, "log"), "a map")?;
        }
        if let Some(e) = field(entries, "labels") {
            // Rule labels (metadata): accepted and ignored.
            self.seq(&e.value, &child(prefix, "labels"), "a list of labels")?;
        }
        let enable_default_deny = match field(entries, "enableDefaultDeny") {
            Some(e) => self.default_deny(&e.value, &child(prefix, "enableDefaultDeny"))?,
            None => DefaultDeny::default(),
        };

        let mut spec = Spec {
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}.")
            },
            pos: node.pos,
            subject,
            description,
            ingress: Vec::new(),
            ingress_deny: Vec::new(),
            egress: Vec::new(),
            egress_deny: Vec::new(),
            enable_default_deny,
            warnings: Vec::new(),
        };
        if spec.subject == Subject::Endpoints {
            // A pod policy: reported as skipped, its rules are Cilium's.
            return Some(spec);
        }
        spec.ingress = self.rules(entries, prefix, "ingress", Dir::Ingress);
        spec.ingress_deny = self.rules(entries, prefix, "ingressDeny", Dir::Ingress);
        spec.egress = self.rules(entries, prefix, "egress", Dir::Egress);
        spec.egress_deny = self.rules(entries, prefix, "egressDeny", Dir::Egress);
        let no_rules = ["ingress", "ingressDeny", "egress", "egressDeny"]
            .iter()
            .all(|k| {
                field(entries, k)
                    .is_none_or(|e| matches!(&e.value.value, Value::Seq(s) if s.is_empty()))
            });
        // A typo like `ingres` already said why there is no rule.
        if no_rules && self.errs.count() == before {
            self.err(node.pos, here, ErrorKind::NoRules);
            return None;
        }
        if no_rules {
            return None;
        }
        Some(spec)
    }

    fn default_deny(&mut self, node: &Node, path: &str) -> Option<DefaultDeny> {
        let entries = self.map(node, path, "a map with `ingress` and/or `egress`")?;
        self.fields(entries, path, &["ingress", "egress"], &[]);
        let mut dd = DefaultDeny::default();
        if let Some(e) = field(entries, "ingress") {
            dd.ingress = Some(self.boolean(&e.value, &child(path, "ingress"))?);
        }
        if let Some(e) = field(entries, "egress") {
            dd.egress = Some(self.boolean(&e.value, &child(path, "egress"))?);
        }
        Some(dd)
    }

    fn selector(&mut self, node: &Node, path: &str) -> Option<Selector> {
        let entries = self.map(
            node,
            path,
            "a label selector (a map; `{}` selects everything)",
        )?;
        self.fields(entries, path, &["matchLabels", "matchExpressions"], &[]);
        let mut sel = Selector::default();
        let mut ok = true;
        if let Some(e) = field(entries, "matchLabels") {
            let path = child(path, "matchLabels");
            for l in self.map(&e.value, &path, "a map of label keys to values")? {
                let value = match &l.value.value {
                    Value::Str(s) => s.clone(),
                    // Go reads `key:` (null) into a map[string]string as "".
                    Value::Null => String::new(),
                    _ => {
                        self.wrong(
                            &l.value,
                            &child(&path, &l.key),
                            "a string (quote numbers and booleans)",
                        );
                        ok = false;
                        continue;
                    }
                };
                match self.label_key(&l.key, l.key_pos, &path) {
                    Some(key) => {
                        sel.match_labels.insert(key, value);
                    }
                    None => ok = false,
                }
            }
        }
        if let Some(e) = field(entries, "matchExpressions") {
            let path = child(path, "matchExpressions");
            for (i, item) in self
                .seq(&e.value, &path, "a list of requirements")?
                .iter()
                .enumerate()
            {
                match self.requirement(item, &index(&path, i)) {
                    Some(r) => sel.match_expressions.push(r),
                    None => ok = false,
                }
            }
        }
        ok.then_some(sel)
    }

    /// A label key as written in a selector; Cilium's `k8s:` and `any:`
    /// source prefixes select the same Kubernetes labels and are dropped.
    fn label_key(&mut self, key: &str, pos: Option<Pos>, path: &str) -> Option<String> {
        let plain = key
            .strip_prefix("k8s:")
            .or_else(|| key.strip_prefix("any:"))
            .unwrap_or(key);
        if plain.is_empty() || plain.contains(':') {
            self.err(
                pos,
                path,
                ErrorKind::Invalid {
                    value: key.to_string(),
                    expected: "a Kubernetes label key of the node, like \
                               node-role.kubernetes.io/control-plane (a `k8s:` or `any:` prefix \
                               is accepted; other Cilium label sources are not node labels)"
                        .into(),
                },
            );
            return None;
        }
        Some(plain.to_string())
    }

    fn requirement(&mut self, node: &Node, path: &str) -> Option<Requirement> {
        let entries = self.map(node, path, "a requirement (key, operator, values)")?;
        self.fields(entries, path, &["key", "operator", "values"], &[]);
        let Some(key) = field(entries, "key") else {
            self.err(
                node.pos,
                path,
                ErrorKind::Missing {
                    field: "key",
                    expected: "the label key to test".into(),
                },
            );
            return None;
        };
        let key_str = self.string(&key.value, &child(path, "key"), "a label key")?;
        let key_str = self.label_key(key_str, key.value.pos, path)?;
        let Some(op) = field(entries, "operator") else {
            self.err(
                node.pos,
                path,
                ErrorKind::Missing {
                    field: "operator",
                    expected: "In, NotIn, Exists or DoesNotExist".into(),
                },
            );
            return None;
        };
        let op_str = self.string(&op.value, &child(path, "operator"), "an operator")?;
        let operator = match op_str {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            other => {
                self.err(
                    op.value.pos,
                    &child(path, "operator"),
                    ErrorKind::Invalid {
                        value: other.to_string(),
                        expected: "In, NotIn, Exists or DoesNotExist".into(),
                    },
                );
                return None;
            }
        };
        let mut values = Vec::new();
        if let Some(v) = field(entries, "values") {
            let vpath = child(path, "values");
            for item in self.seq(&v.value, &vpath, "a list of strings")? {
                values.push(self.string(item, &vpath, "a string")?.to_string());
            }
        }
        let needs_values = matches!(operator, Operator::In | Operator::NotIn);
        if needs_values == values.is_empty() {
            self.err(
                node.pos,
                path,
                ErrorKind::Invalid {
                    value: op_str.to_string(),
                    expected: if needs_values {
                        format!("{op_str} with a non-empty `values` list")
                    } else {
                        format!("{op_str} without `values`")
                    },
                },
            );
            return None;
        }
        Some(Requirement {
            key: key_str,
            operator,
            values,
        })
    }

    fn rules(&mut self, entries: &[Entry], prefix: &str, key: &str, dir: Dir) -> Vec<PeerRule> {
        let Some(e) = field(entries, key) else {
            return Vec::new();
        };
        let path = child(prefix, key);
        let Some(items) = self.seq(&e.value, &path, "a list of rules") else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.rule(item, &index(&path, i), dir))
            .collect()
    }

    fn rule(&mut self, node: &Node, path: &str, dir: Dir) -> Option<PeerRule> {
        let before = self.errs.count();
        let entries = self.map(node, path, "a rule (a map; `{}` is the empty rule)")?;
        let (allowed, rejected, peer_fields) = match dir {
            Dir::Ingress => (
                INGRESS_FIELDS,
                INGRESS_REJECTED,
                ["fromEntities", "fromCIDR", "fromCIDRSet"],
            ),
            Dir::Egress => (
                EGRESS_FIELDS,
                EGRESS_REJECTED,
                ["toEntities", "toCIDR", "toCIDRSet"],
            ),
        };
        self.fields(entries, path, allowed, rejected);

        let present: Vec<&Entry> = peer_fields
            .iter()
            .filter_map(|k| field(entries, k))
            .collect();
        let peer = match present.as_slice() {
            [] => Peer::Unspecified,
            [one] => {
                let fpath = child(path, &one.key);
                match one.key.as_str() {
                    "fromEntities" | "toEntities" => self.entities(&one.value, &fpath)?,
                    "fromCIDR" | "toCIDR" => self.cidrs(&one.value, &fpath)?,
                    _ => self.cidr_set(&one.value, &fpath)?,
                }
            }
            [first, second, ..] => {
                self.err(
                    second.key_pos,
                    path,
                    ErrorKind::Conflict {
                        first: first.key.clone(),
                        second: second.key.clone(),
                        advice: "write one rule per peer kind (Cilium rejects the combination \
                                 too)"
                            .into(),
                    },
                );
                return None;
            }
        };

        let ports = field(entries, "toPorts");
        let icmps = field(entries, "icmps");
        let l4 = match (ports, icmps) {
            (Some(_), Some(i)) => {
                self.err(
                    i.key_pos,
                    path,
                    ErrorKind::Conflict {
                        first: "toPorts".into(),
                        second: "icmps".into(),
                        advice: "write the ICMP types in a separate rule with the same peers \
                                 (as Cilium requires)"
                            .into(),
                    },
                );
                return None;
            }
            (Some(p), None) => self.port_rules(&p.value, &child(path, "toPorts"))?,
            (None, Some(i)) => self.icmps(&i.value, &child(path, "icmps"))?,
            (None, None) => L4Match::Unspecified,
        };
        (self.errs.count() == before).then(|| PeerRule {
            label: path.to_string(),
            pos: node.pos,
            peer,
            l4,
        })
    }

    fn entities(&mut self, node: &Node, path: &str) -> Option<Peer> {
        let items = self.seq(node, path, "a list of entity names")?;
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let name = self.string(item, &index(path, i), "an entity name")?;
            match Entity::parse(name) {
                Some(e) => out.push(e),
                None => {
                    self.err(
                        item.pos,
                        &index(path, i),
                        ErrorKind::Invalid {
                            value: name.to_string(),
                            expected: format!("an entity: one of {}", entities::names()),
                        },
                    );
                    return None;
                }
            }
        }
        Some(Peer::Entities(out))
    }

    /// One CIDR: with `bare_ip`, an address alone is a /32 or /128 (as
    /// Cilium's `fromCIDR`); host bits are cleared, as Cilium does.
    fn cidr(&mut self, node: &Node, path: &str, bare_ip: bool) -> Option<IpNet> {
        let text = self.string(node, path, "a CIDR string")?;
        let parsed = if text.contains('/') {
            IpNet::from_str(text).ok()
        } else if bare_ip {
            IpAddr::from_str(text).ok().map(IpNet::from)
        } else {
            None
        };
        let Some(net) = parsed else {
            self.err(
                node.pos,
                path,
                ErrorKind::Invalid {
                    value: text.to_string(),
                    expected: if bare_ip {
                        "an IPv4 or IPv6 address or CIDR, like 192.0.2.0/24 or 2001:db8::/32"
                    } else {
                        "a CIDR with a prefix length, like 192.0.2.0/24 or 2001:db8::/32"
                    }
                    .into(),
                },
            );
            return None;
        };
        let trunc = net.trunc();
        if trunc != net {
            self.warnings.push(format!(
                "{path}: {text} has host bits set; it is read as {trunc} (as Cilium does)"
            ));
        }
        Some(trunc)
    }

    fn cidrs(&mut self, node: &Node, path: &str) -> Option<Peer> {
        let items = self.seq(node, path, "a list of CIDRs")?;
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let net = self.cidr(item, &index(path, i), true)?;
            out.push(CidrPeer {
                net,
                except: Vec::new(),
            });
        }
        Some(Peer::Cidrs(out))
    }

    fn cidr_set(&mut self, node: &Node, path: &str) -> Option<Peer> {
        let items = self.seq(node, path, "a list of {cidr, except}")?;
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ipath = index(path, i);
            let entries = self.map(item, &ipath, "a map with `cidr` and optional `except`")?;
            self.fields(
                entries,
                &ipath,
                &["cidr", "except"],
                &[
                    ("cidrGroupRef", CIDR_GROUP),
                    ("cidrGroupSelector", CIDR_GROUP),
                ],
            );
            if field(entries, "cidrGroupRef").is_some()
                || field(entries, "cidrGroupSelector").is_some()
            {
                return None;
            }
            let Some(c) = field(entries, "cidr") else {
                self.err(
                    item.pos,
                    &ipath,
                    ErrorKind::Missing {
                        field: "cidr",
                        expected: "a CIDR with a prefix length, like 192.0.2.0/24".into(),
                    },
                );
                return None;
            };
            let net = self.cidr(&c.value, &child(&ipath, "cidr"), false)?;
            let mut except = Vec::new();
            if let Some(e) = field(entries, "except") {
                let epath = child(&ipath, "except");
                for (j, x) in self
                    .seq(&e.value, &epath, "a list of CIDRs")?
                    .iter()
                    .enumerate()
                {
                    let xpath = index(&epath, j);
                    let ex = self.cidr(x, &xpath, false)?;
                    if ex.prefix_len() < net.prefix_len() || !net.contains(&ex.network()) {
                        self.err(
                            x.pos,
                            &xpath,
                            ErrorKind::Invalid {
                                value: ex.to_string(),
                                expected: format!(
                                    "a CIDR inside {net} (except lies inside its cidr)"
                                ),
                            },
                        );
                        return None;
                    }
                    except.push(ex);
                }
            }
            out.push(CidrPeer { net, except });
        }
        Some(Peer::Cidrs(out))
    }

    fn port_rules(&mut self, node: &Node, path: &str) -> Option<L4Match> {
        let items = self.seq(node, path, "a list of port rules")?;
        if items.is_empty() {
            // As in Cilium: no port rule, no port restriction.
            return Some(L4Match::Unspecified);
        }
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ipath = index(path, i);
            let entries = self.map(item, &ipath, "a port rule (a map with `ports`)")?;
            self.fields(entries, &ipath, &["ports"], PORT_RULE_REJECTED);
            let ppath = child(&ipath, "ports");
            let ports = match field(entries, "ports") {
                Some(p) => self.seq(&p.value, &ppath, "a list of ports")?,
                None => &[],
            };
            if ports.is_empty() {
                self.err(
                    item.pos,
                    &ipath,
                    ErrorKind::Missing {
                        field: "ports",
                        expected: "a non-empty list of ports; to allow every port of these \
                                   peers, leave toPorts out"
                            .into(),
                    },
                );
                return None;
            }
            for (j, p) in ports.iter().enumerate() {
                out.push(self.port(p, &index(&ppath, j))?);
            }
        }
        Some(L4Match::Ports(out))
    }

    fn port(&mut self, node: &Node, path: &str) -> Option<PortMatch> {
        let entries = self.map(node, path, "a port (a map with port, endPort, protocol)")?;
        self.fields(entries, path, &["port", "endPort", "protocol"], &[]);
        let protocol = match field(entries, "protocol") {
            None => Protocol::Any,
            Some(e) => self.protocol(&e.value, &child(path, "protocol"))?,
        };
        let Some(p) = field(entries, "port") else {
            self.err(
                node.pos,
                path,
                ErrorKind::Missing {
                    field: "port",
                    expected: "a port number; port: \"0\" means every port".into(),
                },
            );
            return None;
        };
        let port = self.port_number(&p.value, &child(path, "port"))?;
        let end = match field(entries, "endPort") {
            None => None,
            Some(e) => match e.value.value {
                Value::Int(n) if (0..=65535).contains(&n) => u16::try_from(n).ok(),
                Value::Int(n) => {
                    self.err(
                        e.value.pos,
                        &child(path, "endPort"),
                        ErrorKind::Invalid {
                            value: n.to_string(),
                            expected: "a port number from 0 to 65535".into(),
                        },
                    );
                    return None;
                }
                _ => {
                    self.wrong(&e.value, &child(path, "endPort"), "a port number");
                    return None;
                }
            },
        };
        let (first, last) = match (port, end) {
            (0, Some(_)) => {
                self.warnings.push(format!(
                    "{path}: endPort is ignored: port \"0\" already means every port"
                ));
                (0, u16::MAX)
            }
            (0, None) => (0, u16::MAX),
            (p, Some(e)) if e > p => (p, e),
            (p, Some(e)) => {
                if e < p && e != 0 {
                    self.warnings.push(format!(
                        "{path}: endPort {e} is below port {p}: the entry matches port {p} only"
                    ));
                }
                (p, p)
            }
            (p, None) => (p, p),
        };
        Some(PortMatch {
            protocol,
            first,
            last,
        })
    }

    fn port_number(&mut self, node: &Node, path: &str) -> Option<u16> {
        let invalid = |value: String, expected: &str| ErrorKind::Invalid {
            value,
            expected: expected.to_string(),
        };
        const RANGE: &str = "a port number from 0 to 65535 (0 means every port)";
        match &node.value {
            Value::Int(n) => match u16::try_from(*n) {
                Ok(p) => Some(p),
                Err(_) => {
                    self.err(node.pos, path, invalid(n.to_string(), RANGE));
                    None
                }
            },
            Value::Str(s) if s.is_empty() => {
                self.err(node.pos, path, invalid(s.clone(), RANGE));
                None
            }
            Value::Str(s) if s.bytes().all(|b| b.is_ascii_digit()) => {
                if s.len() > 1 && s.starts_with('0') {
                    // Cilium parses with base 0: "010" would be octal 8.
                    self.err(
                        node.pos,
                        path,
                        invalid(s.clone(), "a decimal port number without leading zeros"),
                    );
                    return None;
                }
                match s.parse::<u16>() {
                    Ok(p) => Some(p),
                    Err(_) => {
                        self.err(node.pos, path, invalid(s.clone(), RANGE));
                        None
                    }
                }
            }
            Value::Str(s) if s.bytes().any(|b| b.is_ascii_alphabetic()) => {
                self.err(
                    node.pos,
                    path,
                    invalid(
                        s.clone(),
                        "a port number: named ports are resolved from pod specs, which a bare \
                         node does not have; write the number",
                    ),
                );
                None
            }
            Value::Str(s) => {
                self.err(
                    node.pos,
                    path,
                    invalid(s.clone(), "a single port number; use endPort for a range"),
                );
                None
            }
            _ => {
                self.wrong(node, path, "a port number (a string or an integer)");
                None
            }
        }
    }

    fn protocol(&mut self, node: &Node, path: &str) -> Option<Protocol> {
        let s = self.string(node, path, "a protocol name")?;
        // Cilium's ParseL4Proto upper-cases the name.
        match s.to_ascii_uppercase().as_str() {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            "ANY" | "" => Some(Protocol::Any),
            "ICMP" | "ICMPV6" => {
                self.err(
                    node.pos,
                    path,
                    ErrorKind::Unsupported {
                        field: format!("protocol: {s}"),
                        advice: "ICMP has no ports: match it with `icmps` (fields with type \
                                 and family) in a rule of its own"
                            .into(),
                    },
                );
                None
            }
            _ => {
                self.err(
                    node.pos,
                    path,
                    ErrorKind::Invalid {
                        value: s.to_string(),
                        expected: "TCP, UDP, SCTP or ANY (hostfw filters TCP, UDP, SCTP and, \
                                   with icmps, ICMP)"
                            .into(),
                    },
                );
                None
            }
        }
    }

    fn icmps(&mut self, node: &Node, path: &str) -> Option<L4Match> {
        let items = self.seq(node, path, "a list of {fields}")?;
        if items.is_empty() {
            return Some(L4Match::Unspecified);
        }
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ipath = index(path, i);
            let entries = self.map(item, &ipath, "a map with `fields`")?;
            self.fields(entries, &ipath, &["fields"], &[]);
            let fields = match field(entries, "fields").map(|f| &f.value.value) {
                Some(Value::Seq(list)) if !list.is_empty() => list,
                _ => {
                    self.err(
                        item.pos,
                        &ipath,
                        ErrorKind::Missing {
                            field: "fields",
                            expected: "a non-empty list of {type, family}".into(),
                        },
                    );
                    return None;
                }
            };
            let fpath = child(&ipath, "fields");
            for (j, f) in fields.iter().enumerate() {
                out.push(self.icmp_field(f, &index(&fpath, j))?);
            }
        }
        Some(L4Match::Icmps(out))
    }

    fn icmp_field(&mut self, node: &Node, path: &str) -> Option<IcmpMatch> {
        let entries = self.map(node, path, "a map with `type` and optional `family`")?;
        self.fields(entries, path, &["type", "family"], &[]);
        let family = match field(entries, "family") {
            None => IcmpFamily::V4,
            Some(e) => match self.string(&e.value, &child(path, "family"), "IPv4 or IPv6")? {
                "IPv4" | "" => IcmpFamily::V4,
                "IPv6" => IcmpFamily::V6,
                other => {
                    self.err(
                        e.value.pos,
                        &child(path, "family"),
                        ErrorKind::Invalid {
                            value: other.to_string(),
                            expected: "IPv4 (the default) or IPv6".into(),
                        },
                    );
                    return None;
                }
            },
        };
        let Some(t) = field(entries, "type") else {
            self.err(
                node.pos,
                path,
                ErrorKind::Missing {
                    field: "type",
                    expected: "an ICMP type: a number from 0 to 255 or a name like EchoRequest"
                        .into(),
                },
            );
            return None;
        };
        let tpath = child(path, "type");
        let icmp_type = match &t.value.value {
            Value::Int(n) => u8::try_from(*n).ok(),
            Value::Str(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().ok()
            }
            Value::Str(s) => {
                if let Some(t) = icmp::type_by_name(family, s) {
                    Some(t)
                } else {
                    let other = match family {
                        IcmpFamily::V4 => IcmpFamily::V6,
                        IcmpFamily::V6 => IcmpFamily::V4,
                    };
                    let expected = if icmp::type_by_name(other, s).is_some() {
                        format!(
                            "an {} type: {s} is an {} type name (set family: {})",
                            icmp::family_name(family),
                            icmp::family_name(other),
                            icmp::family_name(other)
                        )
                    } else {
                        format!(
                            "a number from 0 to 255 or an {} type name: {}",
                            icmp::family_name(family),
                            icmp::names(family)
                        )
                    };
                    self.err(
                        t.value.pos,
                        &tpath,
                        ErrorKind::Invalid {
                            value: s.clone(),
                            expected,
                        },
                    );
                    return None;
                }
            }
            _ => {
                self.wrong(&t.value, &tpath, "an ICMP type (a number or a name)");
                return None;
            }
        };
        let Some(icmp_type) = icmp_type else {
            let shown = match &t.value.value {
                Value::Int(n) => n.to_string(),
                Value::Str(s) => s.clone(),
                _ => String::new(),
            };
            self.err(
                t.value.pos,
                &tpath,
                ErrorKind::Invalid {
                    value: shown,
                    expected: "an ICMP type from 0 to 255".into(),
                },
            );
            return None;
        };
        Some(IcmpMatch { family, icmp_type })
    }
}

/// A likely intended field for a typo: same letters in another case,
/// `from`/`to` swapped, or at most two edits away.
pub(super) fn suggest<'a>(field: &str, allowed: &[&'a str]) -> Option<&'a str> {
    if let Some(a) = allowed.iter().find(|a| a.eq_ignore_ascii_case(field)) {
        return Some(a);
    }
    let swapped = field
        .strip_prefix("from")
        .map(|rest| format!("to{rest}"))
        .or_else(|| field.strip_prefix("to").map(|rest| format!("from{rest}")));
    if let Some(s) = swapped
        && let Some(a) = allowed.iter().find(|a| a.eq_ignore_ascii_case(&s))
    {
        return Some(a);
    }
    allowed
        .iter()
        .map(|a| {
            (
                edit_distance(&field.to_ascii_lowercase(), &a.to_ascii_lowercase()),
                *a,
            )
        })
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest("fromCidr", INGRESS_FIELDS), Some("fromCIDR"));
        assert_eq!(suggest("toCIDR", INGRESS_FIELDS), Some("fromCIDR"));
        assert_eq!(suggest("toPort", INGRESS_FIELDS), Some("toPorts"));
        assert_eq!(suggest("fromEntitys", INGRESS_FIELDS), Some("fromEntities"));
        assert_eq!(suggest("bogus", INGRESS_FIELDS), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
