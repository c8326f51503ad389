//! Parsing and validation tests: the formats, every rejected field, every
//! error kind, with file, line and column.

use std::path::{Path, PathBuf};

use ipnet::IpNet;

use super::*;

fn yaml(text: &str) -> Result<Vec<Policy>, Vec<PolicyError>> {
    parse_str(text, Path::new("p.yaml"), Format::Yaml)
}

fn toml(text: &str) -> Result<Vec<Policy>, Vec<PolicyError>> {
    parse_str(text, Path::new("p.toml"), Format::Toml)
}

/// The error messages of `text` (YAML), which must not parse.
fn errors(text: &str) -> Vec<String> {
    match yaml(text) {
        Ok(p) => panic!("expected errors, got {p:#?}"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

/// One error, exactly.
fn error(text: &str) -> String {
    let e = errors(text);
    assert_eq!(e.len(), 1, "one error expected: {e:#?}");
    e.into_iter().next().unwrap_or_default()
}

/// A CCNP around a spec body (indented by two).
fn ccnp(body: &str) -> String {
    format!(
        "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: p1\n\
         spec:\n  nodeSelector: {{}}\n{body}"
    )
}

fn net(s: &str) -> IpNet {
    s.parse().expect("prefix")
}

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/policy/testdata")
        .join(name)
}

// ---------------------------------------------------------------- formats

#[test]
fn kubectl_list_with_metadata_and_status_noise() {
    let p = load_paths(&[testdata("kubectl-list.yaml")]).expect("kubectl output parses");
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].name, "demo-host-policy");
    assert_eq!(p[0].format, Format::Yaml);
    let s = &p[0].specs[0];
    assert_eq!(s.ingress.len(), 3);
    assert_eq!(s.ingress[0].peer, Peer::Entities(vec![Entity::Cluster]));
    assert_eq!(s.ingress[0].label, "ingress[0]");
    assert_eq!(
        s.ingress[1].l4,
        L4Match::Ports(vec![PortMatch {
            protocol: Protocol::Tcp,
            first: 22,
            last: 22
        }])
    );
    assert_eq!(
        s.ingress[2].l4,
        L4Match::Icmps(vec![IcmpMatch {
            family: IcmpFamily::V4,
            icmp_type: 8
        }])
    );
    let Subject::Nodes(sel) = &s.subject else {
        panic!("host policy")
    };
    assert_eq!(
        sel.match_labels.get("node-access").map(String::as_str),
        Some("ssh")
    );

    let cp = &p[1].specs[0];
    assert_eq!(p[1].name, "control-plane");
    assert_eq!(cp.enable_default_deny.egress, Some(false));
    assert_eq!(cp.enable_default_deny.ingress, None);
    assert_eq!(
        cp.ingress[0].l4,
        L4Match::Ports(vec![
            PortMatch {
                protocol: Protocol::Tcp,
                first: 6443,
                last: 6443
            },
            PortMatch {
                protocol: Protocol::Tcp,
                first: 2379,
                last: 2380
            }
        ])
    );
    assert_eq!(
        cp.egress_deny[0].peer,
        Peer::Cidrs(vec![CidrPeer {
            net: net("169.254.169.254/32"),
            except: vec![]
        }])
    );
    assert_eq!(cp.egress_deny[0].label, "egressDeny[0]");
    // Positions point into the file.
    assert_eq!(cp.egress_deny[0].pos.map(|p| p.line), Some(64));
}

#[test]
fn multi_document_files_lists_and_specs() {
    let p = load_paths(&[testdata("multi.yaml")]).expect("multi-document file parses");
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].name, "ssh-from-bastion");
    assert_eq!(
        p[0].specs[0].ingress[0].peer,
        Peer::Cidrs(vec![
            CidrPeer {
                net: net("192.0.2.10/32"),
                except: vec![]
            },
            CidrPeer {
                net: net("2001:db8::10/128"),
                except: vec![]
            }
        ])
    );
    assert_eq!(p[1].name, "egress-dns");
    assert_eq!(p[1].specs.len(), 2);
    assert_eq!(p[1].specs[0].egress[0].label, "specs[0].egress[0]");
    assert_eq!(
        p[1].specs[0].egress[0].peer,
        Peer::Cidrs(vec![CidrPeer {
            net: net("10.96.0.0/12"),
            except: vec![net("10.96.0.0/24")]
        }])
    );
    // Protocol omitted = ANY.
    assert_eq!(
        p[1].specs[0].egress[0].l4,
        L4Match::Ports(vec![PortMatch {
            protocol: Protocol::Any,
            first: 53,
            last: 53
        }])
    );
    // A pod spec is kept (reported as skipped); its rules are not read.
    assert_eq!(p[1].specs[1].subject, Subject::Endpoints);
    assert!(p[1].specs[1].egress.is_empty());
}

#[test]
fn toml_is_the_same_model() {
    let t = load_paths(&[testdata("design.toml")]).expect("the DESIGN.md TOML parses");
    let y = load_paths(&[testdata("design.yaml")]).expect("its YAML twin parses");
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].format, Format::Toml);
    assert_eq!(t[0].name, y[0].name);
    let (ts, ys) = (&t[0].specs[0], &y[0].specs[0]);
    assert_eq!(ts.subject, ys.subject);
    assert_eq!(ts.ingress.len(), 2);
    for (a, b) in ts.ingress.iter().zip(&ys.ingress) {
        assert_eq!((&a.label, &a.peer, &a.l4), (&b.label, &b.peer, &b.l4));
    }
}

#[test]
fn toml_accepts_every_spec_field_and_reports_positions() {
    let p = toml(
        r#"
[[policy]]
name = "a"
description = "d"
nodeSelector = { matchExpressions = [{ key = "tier", operator = "In", values = ["db"] }] }
enableDefaultDeny = { ingress = false }

[[policy.ingressDeny]]
fromCIDRSet = [{ cidr = "203.0.113.0/24", except = ["203.0.113.8/29"] }]

[[policy.egress]]
toEntities = ["world"]
icmps = [{ fields = [{ type = "EchoRequest", family = "IPv6" }] }]

[[policy.egressDeny]]
toPorts = [{ ports = [{ port = 25 }] }]

[[policy]]
name = "b"
nodeSelector = {}
ingress = [{}]
"#,
    )
    .expect("valid TOML policies");
    assert_eq!(p.len(), 2);
    let s = &p[0].specs[0];
    assert_eq!(s.description.as_deref(), Some("d"));
    assert_eq!(s.enable_default_deny.ingress, Some(false));
    assert_eq!(
        s.egress[0].l4,
        L4Match::Icmps(vec![IcmpMatch {
            family: IcmpFamily::V6,
            icmp_type: 128
        }])
    );
    assert_eq!(s.egress_deny[0].label, "egressDeny[0]");
    assert_eq!(p[1].specs[0].ingress[0].peer, Peer::Unspecified);

    let e = match toml(
        "[[policy]]\nname = \"a\"\nnodeSelector = {}\n\n[[policy.ingress]]\nfromCidr = [\"10.0.0.0/8\"]\n",
    ) {
        Ok(p) => panic!("typo accepted: {p:?}"),
        Err(e) => e,
    };
    let msg = e[0].to_string();
    assert!(
        msg.starts_with("p.toml:6:1: policy a, ingress[0]: unknown field `fromCidr`"),
        "{msg}"
    );
    assert!(msg.contains("did you mean `fromCIDR`?"), "{msg}");
}

#[test]
fn json_is_yaml() {
    let p = yaml(
        r#"{"apiVersion":"cilium.io/v2","kind":"CiliumClusterwideNetworkPolicy",
            "metadata":{"name":"j"},
            "spec":{"nodeSelector":{},"egress":[{"toEntities":["kube-apiserver"]}]}}"#,
    )
    .expect("JSON object parses as YAML");
    assert_eq!(
        p[0].specs[0].egress[0].peer,
        Peer::Entities(vec![Entity::KubeApiserver])
    );
}

#[test]
fn cidrs_bare_addresses_and_host_bits() {
    let p = yaml(&ccnp(
        "  ingress:\n  - fromCIDR: [10.1.2.3, 10.1.2.3/16, \"fd00::1\"]\n",
    ))
    .expect("valid");
    let s = &p[0].specs[0];
    let Peer::Cidrs(c) = &s.ingress[0].peer else {
        panic!("cidrs")
    };
    let nets: Vec<IpNet> = c.iter().map(|c| c.net).collect();
    assert_eq!(
        nets,
        vec![net("10.1.2.3/32"), net("10.1.0.0/16"), net("fd00::1/128")]
    );
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert!(
        s.warnings[0].contains("10.1.2.3/16 has host bits set; it is read as 10.1.0.0/16"),
        "{:?}",
        s.warnings
    );
}

#[test]
fn empty_lists_and_empty_rules() {
    let p = yaml(&ccnp(
        "  ingress:\n  - {}\n  - fromEntities: []\n    toPorts: [{ports: [{port: \"80\"}]}]\n  - toPorts: []\n    fromCIDR: []\n",
    ))
    .expect("valid");
    let s = &p[0].specs[0];
    assert_eq!(s.ingress[0].peer, Peer::Unspecified);
    assert_eq!(s.ingress[0].l4, L4Match::Unspecified);
    assert_eq!(s.ingress[1].peer, Peer::Entities(vec![]));
    assert_eq!(s.ingress[2].peer, Peer::Cidrs(vec![]));
    // As in Cilium, an empty toPorts restricts no port.
    assert_eq!(s.ingress[2].l4, L4Match::Unspecified);
}

#[test]
fn ports_numbers_strings_ranges() {
    let p = yaml(&ccnp(
        "  ingress:\n  - toPorts:\n    - ports:\n      - {port: 80}\n      - {port: \"0\", protocol: udp}\n      \
         - {port: \"8000\", endPort: 8080, protocol: SCTP}\n      - {port: \"9000\", endPort: 10, protocol: ANY}\n      \
         - {port: \"443\", protocol: \"\"}\n",
    ))
    .expect("valid");
    let s = &p[0].specs[0];
    let want = |protocol, first, last| PortMatch {
        protocol,
        first,
        last,
    };
    assert_eq!(
        s.ingress[0].l4,
        L4Match::Ports(vec![
            want(Protocol::Any, 80, 80),
            want(Protocol::Udp, 0, 65535),
            want(Protocol::Sctp, 8000, 8080),
            want(Protocol::Any, 9000, 9000),
            want(Protocol::Any, 443, 443),
        ])
    );
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("endPort 10 is below port 9000")),
        "{:?}",
        s.warnings
    );
}

#[test]
fn selector_keys_and_expressions() {
    let p = yaml(
        "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: s}\nspec:\n  \
         nodeSelector:\n    matchLabels:\n      k8s:tier: db\n      node-role.kubernetes.io/control-plane:\n    \
         matchExpressions:\n    - {key: any:zone, operator: NotIn, values: [a, b]}\n    - {key: gpu, operator: DoesNotExist}\n  \
         ingress: [{}]\n",
    )
    .expect("valid");
    let Subject::Nodes(sel) = &p[0].specs[0].subject else {
        panic!("host policy")
    };
    assert_eq!(sel.match_labels.get("tier").map(String::as_str), Some("db"));
    assert_eq!(
        sel.match_labels
            .get("node-role.kubernetes.io/control-plane")
            .map(String::as_str),
        Some("")
    );
    assert_eq!(sel.match_expressions[0].key, "zone");
    assert_eq!(sel.match_expressions[0].operator, Operator::NotIn);
    assert_eq!(sel.match_expressions[1].operator, Operator::DoesNotExist);
}

// --------------------------------------------------------- rejected fields

/// `(rule list, snippet inside one rule, field named, advice fragment)`.
const REJECTED: &[(&str, &str, &str, &str)] = &[
    (
        "ingress",
        "fromEndpoints: [{matchLabels: {app: x}}]",
        "fromEndpoints",
        "fromEntities",
    ),
    (
        "ingress",
        "fromRequires: [{matchLabels: {app: x}}]",
        "fromRequires",
        "fromEntities",
    ),
    (
        "ingress",
        "fromNodes: [{matchLabels: {a: b}}]",
        "fromNodes",
        "remote-node",
    ),
    (
        "ingress",
        "fromGroups: [{aws: {securityGroupsIds: [sg-1]}}]",
        "fromGroups",
        "fromCIDR",
    ),
    (
        "ingress",
        "authentication: {mode: required}",
        "authentication",
        "L3/L4",
    ),
    (
        "egress",
        "toEndpoints: [{matchLabels: {app: x}}]",
        "toEndpoints",
        "toEntities",
    ),
    (
        "egress",
        "toRequires: [{matchLabels: {app: x}}]",
        "toRequires",
        "toEntities",
    ),
    (
        "egress",
        "toServices: [{k8sService: {serviceName: s, namespace: n}}]",
        "toServices",
        "toCIDR",
    ),
    (
        "egress",
        "toFQDNs: [{matchName: example.com}]",
        "toFQDNs",
        "no DNS proxy",
    ),
    ("egress", "toNodes: [{}]", "toNodes", "remote-node"),
    (
        "egress",
        "toGroups: [{aws: {securityGroupsIds: [sg-1]}}]",
        "toGroups",
        "toCIDR",
    ),
    (
        "egress",
        "authentication: {mode: required}",
        "authentication",
        "L3/L4",
    ),
    (
        "ingress",
        "toPorts: [{ports: [{port: \"80\", protocol: TCP}], rules: {http: [{method: GET}]}}]",
        "rules",
        "L3/L4 only",
    ),
    (
        "ingress",
        "toPorts: [{ports: [{port: \"9092\", protocol: TCP}], rules: {kafka: [{topic: t}]}}]",
        "rules",
        "L3/L4 only",
    ),
    (
        "egress",
        "toPorts: [{ports: [{port: \"53\", protocol: ANY}], rules: {dns: [{matchPattern: \"*\"}]}}]",
        "rules",
        "L3/L4 only",
    ),
    (
        "egress",
        "toPorts: [{ports: [{port: \"443\"}], originatingTLS: {secret: {name: s}}}]",
        "originatingTLS",
        "Cilium's proxy",
    ),
    (
        "ingress",
        "toPorts: [{ports: [{port: \"443\"}], terminatingTLS: {secret: {name: s}}}]",
        "terminatingTLS",
        "Cilium's proxy",
    ),
    (
        "egress",
        "toPorts: [{ports: [{port: \"443\"}], serverNames: [example.com]}]",
        "serverNames",
        "Cilium's proxy",
    ),
    (
        "egress",
        "toPorts: [{ports: [{port: \"80\"}], listener: {envoyConfig: {kind: X, name: y}, name: z}}]",
        "listener",
        "Cilium's proxy",
    ),
    (
        "ingress",
        "fromCIDRSet: [{cidrGroupRef: my-group}]",
        "cidrGroupRef",
        "write the CIDRs",
    ),
    (
        "egress",
        "toCIDRSet: [{cidrGroupSelector: {matchLabels: {a: b}}}]",
        "cidrGroupSelector",
        "write the CIDRs",
    ),
    (
        "egressDeny",
        "toFQDNs: [{matchName: example.com}]",
        "toFQDNs",
        "no DNS proxy",
    ),
    (
        "ingressDeny",
        "fromEndpoints: [{}]",
        "fromEndpoints",
        "fromEntities",
    ),
];

#[test]
fn every_rejected_field_names_field_file_line_and_advice() {
    for (list, snippet, field, advice) in REJECTED {
        let text = ccnp(&format!("  {list}:\n  - {snippet}\n"));
        let e = errors(&text);
        assert!(
            e.iter().any(|m| m.starts_with("p.yaml:8:")
                && m.contains(&format!("policy p1, {list}[0]"))
                && m.contains(&format!("`{field}` is not supported"))
                && m.contains(advice)),
            "{list}: {snippet}: {e:#?}"
        );
    }
}

#[test]
fn rejected_field_column_points_at_the_key() {
    let e = error(&ccnp(
        "  ingress:\n  - fromEntities: [world]\n    fromEndpoints: [{}]\n",
    ));
    assert!(
        e.starts_with("p.yaml:9:5: policy p1, ingress[0]: `fromEndpoints` is not supported"),
        "{e}"
    );
}

#[test]
fn named_ports_and_icmp_protocol_are_refused_with_advice() {
    let e = error(&ccnp(
        "  ingress:\n  - toPorts:\n    - ports:\n      - port: http\n        protocol: TCP\n",
    ));
    assert!(
        e.starts_with("p.yaml:10:15: policy p1, ingress[0].toPorts[0].ports[0].port:"),
        "{e}"
    );
    assert!(
        e.contains("named ports") && e.contains("write the number"),
        "{e}"
    );
    let e = error(&ccnp(
        "  ingress:\n  - toPorts:\n    - ports:\n      - port: \"0\"\n        protocol: ICMP\n",
    ));
    assert!(
        e.contains("`protocol: ICMP` is not supported") && e.contains("icmps"),
        "{e}"
    );
}

#[test]
fn cilium_lock_down_example_with_pod_selectors_is_rejected() {
    // Cilium's lock-down examples mix host rules with fromEndpoints for
    // kube-dns: every such rule is named.
    let text = ccnp(
        "  ingress:\n  - fromEntities: [remote-node, health]\n  - fromEndpoints:\n    - matchLabels:\n        \
         k8s:io.kubernetes.pod.namespace: kube-system\n        k8s-app: kube-dns\n    toPorts:\n    - ports:\n      \
         - {port: \"6443\", protocol: TCP}\n  egress:\n  - toEndpoints:\n    - matchLabels: {name: echo-b}\n    \
         toPorts:\n    - ports:\n      - {port: \"8080\", protocol: TCP}\n",
    );
    let e = errors(&text);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].starts_with("p.yaml:9:5: policy p1, ingress[1]: `fromEndpoints`"),
        "{e:#?}"
    );
    assert!(
        e[1].starts_with("p.yaml:17:5: policy p1, egress[0]: `toEndpoints`"),
        "{e:#?}"
    );
}

// ------------------------------------------------------------ error kinds

#[test]
fn unknown_fields_everywhere_with_line_and_column() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "  ingress:\n  - fromCidr: [10.0.0.0/8]\n",
            "p.yaml:8:5: policy p1, ingress[0]: unknown field `fromCidr`",
            "`fromCIDR`",
        ),
        (
            "  egress:\n  - fromCIDR: [10.0.0.0/8]\n",
            "p.yaml:8:5: policy p1, egress[0]: unknown field `fromCIDR`",
            "`toCIDR`",
        ),
        (
            "  ingress:\n  - toPorts: [{ports: [{port: \"1\", proto: TCP}]}]\n",
            "p.yaml:8:36: policy p1, ingress[0].toPorts[0].ports[0]: unknown field `proto`",
            "`protocol`",
        ),
        (
            "  ingres:\n  - {}\n",
            "p.yaml:7:3: policy p1: unknown field `ingres`",
            "`ingress`",
        ),
        (
            "  ingress:\n  - icmps: [{fields: [{type: 8, famly: IPv4}]}]\n",
            "p.yaml:8:33: policy p1, ingress[0].icmps[0].fields[0]: unknown field `famly`",
            "`family`",
        ),
        (
            "  ingress:\n  - fromCIDRSet: [{cidr: 10.0.0.0/8, exclude: [10.1.0.0/16]}]\n",
            "p.yaml:8:38: policy p1, ingress[0].fromCIDRSet[0]: unknown field `exclude`",
            "`except`",
        ),
        (
            "  enableDefaultDeny: {ingres: false}\n  ingress: [{}]\n",
            "p.yaml:7:23: policy p1, enableDefaultDeny: unknown field `ingres`",
            "`ingress`",
        ),
    ];
    for (body, start, hint) in cases {
        let e = error(&ccnp(body));
        assert!(e.starts_with(start), "{e}\n  expected start: {start}");
        assert!(e.contains(hint), "{e}\n  expected hint: {hint}");
    }
    let e = error(
        "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: x}\nspecc: {}\nspec: {nodeSelector: {}, ingress: [{}]}\n",
    );
    assert!(
        e.starts_with("p.yaml:4:1: policy x: unknown field `specc`"),
        "{e}"
    );
    let e = error(
        &ccnp("  ingress:\n  - fromEntities: [world]\n")
            .replace("nodeSelector: {}", "nodeSelector: {matchLabel: {a: b}}"),
    );
    assert!(
        e.contains("unknown field `matchLabel`") && e.contains("did you mean `matchLabels`"),
        "{e}"
    );
}

#[test]
fn peers_and_l4_combinations() {
    let e = error(&ccnp(
        "  ingress:\n  - fromEntities: [world]\n    fromCIDR: [10.0.0.0/8]\n",
    ));
    assert!(e.starts_with("p.yaml:9:5: policy p1, ingress[0]: `fromEntities` and `fromCIDR` cannot be used together"), "{e}");
    let e = error(&ccnp(
        "  egress:\n  - toCIDR: [10.0.0.0/8]\n    toCIDRSet: [{cidr: 10.0.0.0/8}]\n",
    ));
    assert!(e.contains("`toCIDR` and `toCIDRSet`"), "{e}");
    let e = error(&ccnp(
        "  ingress:\n  - toPorts: [{ports: [{port: \"22\"}]}]\n    icmps: [{fields: [{type: 8}]}]\n",
    ));
    assert!(
        e.starts_with(
            "p.yaml:9:5: policy p1, ingress[0]: `toPorts` and `icmps` cannot be used together"
        ),
        "{e}"
    );
}

#[test]
fn entities_and_cidrs_are_checked() {
    let e = error(&ccnp(
        "  ingress:\n  - fromEntities: [world, remote-nodes]\n",
    ));
    assert!(
        e.starts_with(
            "p.yaml:8:27: policy p1, ingress[0].fromEntities[1]: invalid value \"remote-nodes\""
        ),
        "{e}"
    );
    assert!(
        e.contains("remote-node") && e.contains("kube-apiserver"),
        "{e}"
    );
    for (body, want) in [
        (
            "  ingress:\n  - fromCIDR: [10.0.0.0/33]\n",
            "invalid value \"10.0.0.0/33\": expected an IPv4 or IPv6 address or CIDR",
        ),
        (
            "  ingress:\n  - fromCIDR: [example.com]\n",
            "invalid value \"example.com\"",
        ),
        (
            "  ingress:\n  - fromCIDRSet: [{cidr: 10.0.0.1}]\n",
            "expected a CIDR with a prefix length",
        ),
        (
            "  ingress:\n  - fromCIDRSet: [{except: [10.0.0.0/8]}]\n",
            "missing field `cidr`",
        ),
        (
            "  ingress:\n  - fromCIDRSet: [{cidr: 10.0.0.0/16, except: [10.1.0.0/24]}]\n",
            "expected a CIDR inside 10.0.0.0/16",
        ),
        (
            "  ingress:\n  - fromCIDRSet: [{cidr: 10.0.0.0/16, except: [10.0.0.0/8]}]\n",
            "expected a CIDR inside 10.0.0.0/16",
        ),
        (
            "  ingress:\n  - fromCIDRSet: [{cidr: 10.0.0.0/16, except: [\"fd00::/64\"]}]\n",
            "expected a CIDR inside 10.0.0.0/16",
        ),
        (
            "  ingress:\n  - fromCIDR: 10.0.0.0/8\n",
            "expected a list of CIDRs, found a string",
        ),
    ] {
        let e = error(&ccnp(body));
        assert!(e.contains(want), "{e}\n  expected: {want}");
        assert!(e.starts_with("p.yaml:8:"), "{e}");
    }
}

#[test]
fn ports_are_checked() {
    for (port, want) in [
        (
            "{protocol: TCP}",
            "missing field `port`: a port number; port: \"0\" means every port",
        ),
        (
            "{port: \"65536\"}",
            "expected a port number from 0 to 65535",
        ),
        ("{port: 70000}", "expected a port number from 0 to 65535"),
        ("{port: -1}", "expected a port number from 0 to 65535"),
        ("{port: \"022\"}", "without leading zeros"),
        ("{port: \"80-90\"}", "use endPort for a range"),
        ("{port: \"\"}", "expected a port number"),
        ("{port: \"80\", endPort: 70000}", "invalid value \"70000\""),
        (
            "{port: \"80\", endPort: \"90\"}",
            "expected a port number, found a string",
        ),
        (
            "{port: \"80\", protocol: GRE}",
            "expected TCP, UDP, SCTP or ANY",
        ),
        ("{port: 1.5}", "found a float"),
    ] {
        let e = error(&ccnp(&format!(
            "  ingress:\n  - toPorts: [{{ports: [{port}]}}]\n"
        )));
        assert!(e.contains(want), "{port}: {e}\n  expected: {want}");
        assert!(e.contains("ingress[0].toPorts[0].ports[0]"), "{e}");
    }
    let e = error(&ccnp("  ingress:\n  - toPorts: [{ports: []}]\n"));
    assert!(
        e.contains("missing field `ports`") && e.contains("leave toPorts out"),
        "{e}"
    );
    let e = error(&ccnp("  ingress:\n  - toPorts: [{}]\n"));
    assert!(e.contains("missing field `ports`"), "{e}");
}

#[test]
fn icmp_types_are_checked_per_family() {
    for (field, want) in [
        ("{type: 256}", "expected an ICMP type from 0 to 255"),
        (
            "{type: EchoRequest, family: ipv6}",
            "expected IPv4 (the default) or IPv6",
        ),
        (
            "{type: NeighborSolicitation}",
            "NeighborSolicitation is an IPv6 type name (set family: IPv6)",
        ),
        (
            "{type: Redirect, family: IPv6}",
            "Redirect is an IPv4 type name (set family: IPv4)",
        ),
        ("{type: Bogus}", "an IPv4 type name: EchoReply"),
        ("{family: IPv4}", "missing field `type`"),
        (
            "{type: [8]}",
            "expected an ICMP type (a number or a name), found a list",
        ),
    ] {
        let e = error(&ccnp(&format!(
            "  ingress:\n  - icmps: [{{fields: [{field}]}}]\n"
        )));
        assert!(e.contains(want), "{field}: {e}\n  expected: {want}");
        assert!(e.contains("ingress[0].icmps[0].fields[0]"), "{e}");
    }
    let e = error(&ccnp("  ingress:\n  - icmps: [{}]\n"));
    assert!(e.contains("missing field `fields`"), "{e}");
    let p = yaml(&ccnp("  ingress:\n  - icmps: [{fields: [{type: \"0\"}, {type: Echo}, {type: \"129\", family: IPv6}]}]\n"))
        .expect("valid");
    assert_eq!(
        p[0].specs[0].ingress[0].l4,
        L4Match::Icmps(vec![
            IcmpMatch {
                family: IcmpFamily::V4,
                icmp_type: 0
            },
            IcmpMatch {
                family: IcmpFamily::V4,
                icmp_type: 8
            },
            IcmpMatch {
                family: IcmpFamily::V6,
                icmp_type: 129
            },
        ])
    );
}

#[test]
fn selectors_are_required_and_exclusive() {
    let e = error(
        "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: n}\nspec:\n  ingress: [{}]\n",
    );
    assert!(
        e.starts_with("p.yaml:5:3: policy n, spec: missing field `nodeSelector`"),
        "{e}"
    );
    let e = error(
        "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: n}\nspec:\n  nodeSelector: {}\n  endpointSelector: {}\n  ingress: [{}]\n",
    );
    assert!(
        e.starts_with(
            "p.yaml:6:3: policy n: `nodeSelector` and `endpointSelector` cannot be used together"
        ),
        "{e}"
    );
    // A pod policy is not an error: it is kept and reported as skipped.
    let p = yaml("apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: pods}\nspec:\n  endpointSelector: {}\n  ingress:\n  - fromEndpoints: [{}]\n    toPorts: [{ports: [{port: http}], rules: {http: [{}]}}]\n")
        .expect("pod policy is skipped, not refused");
    assert_eq!(p[0].specs[0].subject, Subject::Endpoints);
}

#[test]
fn selector_contents_are_checked() {
    for (sel, want) in [
        (
            "{matchExpressions: [{key: a, operator: in, values: [b]}]}",
            "expected In, NotIn, Exists or DoesNotExist",
        ),
        (
            "{matchExpressions: [{key: a, operator: In}]}",
            "expected In with a non-empty `values` list",
        ),
        (
            "{matchExpressions: [{key: a, operator: Exists, values: [b]}]}",
            "expected Exists without `values`",
        ),
        (
            "{matchExpressions: [{operator: Exists}]}",
            "missing field `key`",
        ),
        (
            "{matchLabels: {reserved:host: \"\"}}",
            "a Kubernetes label key of the node",
        ),
        (
            "{matchLabels: {a: 1}}",
            "expected a string (quote numbers and booleans), found an integer",
        ),
        ("[]", "expected a label selector"),
    ] {
        let text =
            ccnp("  ingress: [{}]\n").replace("nodeSelector: {}", &format!("nodeSelector: {sel}"));
        let e = error(&text);
        assert!(e.contains(want), "{sel}: {e}\n  expected: {want}");
        assert!(e.contains("nodeSelector"), "{e}");
    }
}

#[test]
fn a_host_policy_needs_rules() {
    let e = error(&ccnp(""));
    assert!(
        e.starts_with("p.yaml:6:3: policy p1, spec: the policy has no rules"),
        "{e}"
    );
    let e = error(&ccnp("  ingress: []\n  egress: []\n"));
    assert!(e.contains("the policy has no rules"), "{e}");
    let e = error(
        "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: n}\n",
    );
    assert!(e.contains("missing field `spec`"), "{e}");
}

#[test]
fn wrong_types_say_what_was_expected() {
    for (body, want) in [
        (
            "  ingress: {}\n",
            "policy p1, ingress: expected a list of rules, found a map",
        ),
        (
            "  ingress:\n  - [a]\n",
            "policy p1, ingress[0]: expected a rule",
        ),
        (
            "  ingress: [{}]\n  enableDefaultDeny: {ingress: \"no\"}\n",
            "enableDefaultDeny.ingress: expected true or false, found a string",
        ),
        (
            "  ingress: [{}]\n  description: 3\n",
            "description: expected a string, found an integer",
        ),
    ] {
        let e = error(&ccnp(body));
        assert!(e.contains(want), "{e}\n  expected: {want}");
    }
}

#[test]
fn syntax_errors_have_positions() {
    let e = error("apiVersion: cilium.io/v2\nkind: [unclosed\n");
    assert!(e.starts_with("p.yaml:"), "{e}");
    assert!(e.contains("not valid YAML"), "{e}");
    let e = error("a: 1\na: 2\n");
    assert!(e.starts_with("p.yaml:2:1: not valid YAML"), "{e}");
    let Err(e) = toml("[[policy]]\nname = \"x\"\nnodeSelector = {\n") else {
        panic!("bad TOML accepted")
    };
    let m = e[0].to_string();
    assert!(
        m.starts_with("p.toml:3:") && m.contains("not valid TOML"),
        "{m}"
    );
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let e = errors(&format!(
        "{}---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: x, namespace: y}}\n",
        ccnp(
            "  ingress:\n  - fromEntities: [wrld]\n  - toPorts: [{ports: [{port: \"99999\"}]}]\n  egress:\n  - toFQDNs: [{matchName: a.b}]\n"
        )
    ));
    assert_eq!(e.len(), 4, "{e:#?}");
    assert!(e[0].contains("ingress[0].fromEntities[0]"), "{e:#?}");
    assert!(
        e[1].contains("ingress[1].toPorts[0].ports[0].port"),
        "{e:#?}"
    );
    assert!(e[2].contains("egress[0]: `toFQDNs`"), "{e:#?}");
    assert!(
        e[3].contains("document 2.kind") && e[3].contains("namespaced and selects pods"),
        "{e:#?}"
    );
}

#[test]
fn list_items_are_located() {
    let e = error(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: cilium.io/v2\n  kind: CiliumClusterwideNetworkPolicy\n  \
         metadata: {name: good}\n  spec: {nodeSelector: {}, ingress: [{}]}\n- apiVersion: cilium.io/v2\n  kind: Service\n",
    );
    assert!(
        e.starts_with("p.yaml:9:9: items[1].kind: kind \"Service\" is not a host policy"),
        "{e}"
    );
}

#[test]
fn policy_names_are_unique_across_files() {
    let dir = std::env::temp_dir().join(format!("hostfw-policy-dup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let one = ccnp("  ingress: [{}]\n");
    std::fs::write(dir.join("a.yaml"), &one).expect("write");
    std::fs::write(dir.join("b.yml"), &one).expect("write");
    let Err(e) = load_paths(std::slice::from_ref(&dir)) else {
        panic!("duplicate accepted")
    };
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(e.len(), 1, "{e:?}");
    let m = e[0].to_string();
    assert!(
        m.contains("b.yml:1:1: policy p1: policy name \"p1\" is already used at"),
        "{m}"
    );
    assert!(m.contains("a.yaml:1:1"), "{m}");
}

#[test]
fn directories_are_read_in_name_order_and_other_files_are_reported() {
    let dir = std::env::temp_dir().join(format!("hostfw-policy-dir-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).expect("temp dir");
    let named = |n: &str| ccnp("  ingress: [{}]\n").replace("name: p1", &format!("name: {n}"));
    std::fs::write(dir.join("20-b.yaml"), named("b")).expect("write");
    std::fs::write(
        dir.join("10-a.toml"),
        "[[policy]]\nname = \"a\"\nnodeSelector = {}\ningress = [{}]\n",
    )
    .expect("write");
    std::fs::write(dir.join("30-c.yml"), named("c")).expect("write");
    std::fs::write(dir.join("README.md"), "not a policy").expect("write");
    std::fs::write(dir.join(".20-b.yaml.swp"), "x").expect("write");
    let loaded = load(std::slice::from_ref(&dir));
    std::fs::remove_dir_all(&dir).ok();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let names: Vec<&str> = loaded.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let files: Vec<(String, &FileStatus)> = loaded
        .files
        .iter()
        .map(|f| {
            (
                f.path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                &f.status,
            )
        })
        .collect();
    assert_eq!(files.len(), 6, "{files:#?}");
    assert_eq!(files[0].0, ".20-b.yaml.swp");
    assert!(matches!(files[0].1, FileStatus::Ignored { reason } if reason == "hidden file"));
    assert_eq!(files[1].1, &FileStatus::Loaded { policies: 1 });
    assert!(
        matches!(files[4].1, FileStatus::Ignored { reason } if reason.contains("not a .yaml")),
        "{files:#?}"
    );
    assert!(
        matches!(files[5].1, FileStatus::Ignored { reason } if reason.contains("directory")),
        "{files:#?}"
    );
}

#[test]
fn missing_paths_and_wrong_extensions_are_errors() {
    let Err(e) = load_paths(&[PathBuf::from("/nonexistent/hostfw/x.yaml")]) else {
        panic!("missing file accepted")
    };
    assert!(
        e[0].to_string()
            .starts_with("/nonexistent/hostfw/x.yaml: cannot read:"),
        "{}",
        e[0]
    );
    let f = std::env::temp_dir().join(format!("hostfw-policy-{}.json", std::process::id()));
    std::fs::write(&f, "{}").expect("write");
    let r = load_paths(std::slice::from_ref(&f));
    std::fs::remove_file(&f).ok();
    let Err(e) = r else {
        panic!("json file accepted")
    };
    assert!(
        e[0].to_string()
            .contains("a policy file named *.yaml, *.yml or *.toml"),
        "{}",
        e[0]
    );
}

#[test]
fn demo_host_policy_from_ciliums_docs_parses() {
    let p = load_paths(&[testdata("demo-host-policy.yaml")]).expect("Cilium's example parses");
    assert_eq!(p[0].name, "demo-host-policy");
    assert_eq!(p[0].specs[0].ingress.len(), 3);
}
