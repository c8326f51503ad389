//! The policy language's semantics, as a table: for each rule of
//! DESIGN.md section 1 (and Cilium's documented behaviour where it is
//! silent), policies + flows → the expected verdict and deciding rule,
//! evaluated through the reference evaluator on the lowered rule set.
//!
//! Flows are written `DIR PROTO PEER PORT|TYPE VERDICT RULE`, e.g.
//! `in tcp 198.51.100.7 22 allowed ingress[1]`; RULE is the deciding rule's
//! label (`policy/label` to name the policy too), or `-` when no rule
//! decides (the direction's default).

use std::{net::IpAddr, path::Path};

use hostfw::{
    mapstate::{compile, simulate::Simulator},
    policy::{Format, LowerContext, Lowered, Selection, lower, parse_str},
    refeval::{Packet, Verdict, evaluate},
    ruleset::{Direction, Mode},
};
use hostfw_common::proto;

/// This node: 10.0.0.1 / fd00::1, labelled node-access=ssh, role=db and
/// control-plane. Other nodes 10.0.0.2 (also an API server), 10.0.0.3,
/// fd00::2. Pods 10.244.0.0/16 and fd00:244::/64. An API server outside
/// the nodes: 192.0.2.10.
fn context() -> LowerContext {
    let ip = |s: &str| s.parse::<IpAddr>().expect("address");
    LowerContext {
        node_labels: [
            ("node-access", "ssh"),
            ("role", "db"),
            ("node-role.kubernetes.io/control-plane", ""),
            ("kubernetes.io/os", "linux"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        host_addresses: vec![ip("10.0.0.1"), ip("fd00::1")],
        cluster_nodes: ["10.0.0.1", "10.0.0.2", "10.0.0.3", "fd00::1", "fd00::2"]
            .map(ip)
            .to_vec(),
        pod_cidrs: vec![
            "10.244.0.0/16".parse().expect("cidr"),
            "fd00:244::/64".parse().expect("cidr"),
        ],
        apiservers: vec![ip("10.0.0.2"), ip("192.0.2.10")],
        cidr_match_nodes: false,
        mode: Mode::Enforce,
        failsafe: Vec::new(),
    }
}

/// A CCNP named `name` selecting every node, with `body` (spec fields,
/// indented by two).
fn host(name: &str, body: &str) -> String {
    format!(
        "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: {name}\n\
         spec:\n  nodeSelector: {{}}\n{body}"
    )
}

fn lowered(yaml: &str, ctx: &LowerContext) -> Lowered {
    let policies = parse_str(yaml, Path::new("case.yaml"), Format::Yaml)
        .unwrap_or_else(|e| panic!("policy does not parse: {e:#?}\n{yaml}"));
    lower(&policies, ctx)
}

/// The packet of a flow line (its first four fields).
fn packet(case: &str, line: &str) -> Packet {
    let f: Vec<&str> = line.split_whitespace().collect();
    assert!(f.len() >= 6, "{case}: bad flow line {line:?}");
    let direction = match f[0] {
        "in" => Direction::Ingress,
        "out" => Direction::Egress,
        d => panic!("{case}: direction {d}"),
    };
    let remote: IpAddr = f[2]
        .parse()
        .unwrap_or_else(|_| panic!("{case}: peer {}", f[2]));
    let n: u16 = f[3]
        .parse()
        .unwrap_or_else(|_| panic!("{case}: port {}", f[3]));
    let icmp = u8::try_from(n).ok().map(|t| (t, 0));
    let (proto, port, icmp) = match f[1] {
        "tcp" => (proto::TCP, Some(n), None),
        "udp" => (proto::UDP, Some(n), None),
        "sctp" => (proto::SCTP, Some(n), None),
        "icmp" => (proto::ICMP, None, icmp),
        "icmp6" => (proto::ICMPV6, None, icmp),
        p => panic!("{case}: protocol {p}"),
    };
    Packet {
        direction,
        remote,
        proto,
        port,
        icmp,
    }
}

/// Checks every flow line against the lowered policies. RULE (the rest
/// of the line) is the deciding rule's label, `policy/label` to check the
/// policy too, or `-` when no rule decides.
fn check(case: &str, l: &Lowered, flows: &str) {
    for line in flows.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let pkt = packet(case, line);
        let out = evaluate(&l.rules, &pkt);
        let verdict = match f[4] {
            "allowed" => Verdict::Allowed,
            "denied" => Verdict::Denied,
            "audit" => Verdict::Audit,
            v => panic!("{case}: verdict {v}"),
        };
        let want = f[5..].join(" ");
        let with_policy = want.contains('/') && !want.starts_with("failsafe");
        let got = l.report.origin(out.rule_id).map_or("-".to_string(), |o| {
            if with_policy {
                format!("{}/{}", o.policy.as_deref().unwrap_or("?"), o.rule)
            } else {
                o.rule.clone()
            }
        });
        assert_eq!(
            (out.verdict, got.as_str()),
            (verdict, want.as_str()),
            "{case}: {line}\n  outcome {out:?}\n  rules {:#?}",
            l.rules
        );
    }
}

struct Case {
    name: &'static str,
    policies: String,
    ctx: fn(&mut LowerContext),
    flows: &'static str,
}

fn same(_: &mut LowerContext) {}

#[expect(clippy::too_many_lines, reason = "one table")]
fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "no policy: everything passes",
            policies: String::new(),
            ctx: same,
            flows: "
                in tcp 198.51.100.7 22 allowed -
                out udp 198.51.100.7 53 allowed -
            ",
        },
        Case {
            name: "a policy whose nodeSelector does not match is not enforced",
            policies: host("other", "  ingress: [{}]\n")
                .replace("nodeSelector: {}", "nodeSelector: {matchLabels: {node-access: none}}"),
            ctx: same,
            flows: "in tcp 198.51.100.7 22 allowed -",
        },
        Case {
            name: "a pod policy (endpointSelector) is skipped",
            policies: host("pods", "  ingress: [{}]\n").replace("nodeSelector", "endpointSelector"),
            ctx: same,
            flows: "in tcp 198.51.100.7 22 allowed -",
        },
        Case {
            name: "Cilium's demo-host-policy: cluster, ssh from anywhere, ping",
            policies: include_str!("../src/policy/testdata/demo-host-policy.yaml").to_string(),
            ctx: same,
            flows: "
                in tcp 10.0.0.2 10250 allowed ingress[0]
                in udp 10.244.3.4 53 allowed ingress[0]
                in tcp 192.0.2.10 443 allowed ingress[0]
                in tcp 198.51.100.7 22 allowed ingress[1]
                in tcp 198.51.100.7 80 denied -
                in udp 198.51.100.7 22 denied -
                in icmp 198.51.100.7 8 allowed ingress[2]
                in icmp 198.51.100.7 0 denied -
                in icmp6 2001:db8::7 128 denied -
                in icmp6 2001:db8::7 135 allowed -
                out tcp 198.51.100.7 443 allowed -
            ",
        },
        Case {
            name: "matchExpressions and kubernetes.io labels select this node",
            policies: host("expr", "  ingress:\n  - toPorts: [{ports: [{port: \"22\", protocol: TCP}]}]\n").replace(
                "nodeSelector: {}",
                "nodeSelector:\n    matchLabels: {kubernetes.io/os: linux}\n    matchExpressions:\n    \
                 - {key: role, operator: In, values: [db, web]}\n    - {key: gpu, operator: DoesNotExist}\n    \
                 - {key: zone, operator: NotIn, values: [a]}",
            ),
            ctx: same,
            flows: "
                in tcp 198.51.100.7 22 allowed ingress[0]
                in tcp 198.51.100.7 23 denied -
            ",
        },
        Case {
            name: "an empty rule makes its direction default-deny, and only it",
            policies: host("empty", "  ingress:\n  - {}\n"),
            ctx: same,
            flows: "
                in tcp 10.0.0.2 22 denied -
                in icmp 198.51.100.7 8 denied -
                out tcp 198.51.100.7 443 allowed -
            ",
        },
        Case {
            name: "egress rules make egress default-deny, ingress stays open",
            policies: host("egress", "  egress:\n  - toCIDR: [198.51.100.0/24]\n    toPorts: [{ports: [{port: \"443\", protocol: TCP}]}]\n"),
            ctx: same,
            flows: "
                out tcp 198.51.100.7 443 allowed egress[0]
                out tcp 198.51.100.7 80 denied -
                out tcp 203.0.113.1 443 denied -
                in tcp 198.51.100.7 80 allowed -
            ",
        },
        Case {
            name: "enableDefaultDeny.ingress: false keeps ingress open",
            policies: host(
                "no-dd",
                "  enableDefaultDeny: {ingress: false}\n  ingress:\n  - fromCIDR: [198.51.100.0/24]\n    toPorts: [{ports: [{port: \"22\"}]}]\n",
            ),
            ctx: same,
            flows: "
                in tcp 198.51.100.7 22 allowed ingress[0]
                in tcp 203.0.113.1 80 allowed -
            ",
        },
        Case {
            name: "default deny is on when any selecting policy asks for it",
            policies: format!(
                "{}---\n{}",
                host("a-open", "  enableDefaultDeny: {ingress: false}\n  ingress:\n  - fromEntities: [world]\n    toPorts: [{ports: [{port: \"80\"}]}]\n"),
                host("b-closed", "  ingress:\n  - fromEntities: [world]\n    toPorts: [{ports: [{port: \"22\"}]}]\n"),
            ),
            ctx: same,
            flows: "
                in tcp 198.51.100.7 80 allowed a-open/ingress[0]
                in tcp 198.51.100.7 22 allowed b-closed/ingress[0]
                in tcp 198.51.100.7 443 denied -
            ",
        },
        Case {
            name: "enableDefaultDeny: true without rules in that direction does nothing",
            policies: host("dd-true", "  enableDefaultDeny: {egress: true}\n  ingress:\n  - fromEntities: [all]\n"),
            ctx: same,
            flows: "out tcp 198.51.100.7 443 allowed -",
        },
        Case {
            name: "deny-only policies make the direction default-deny too (Cilium)",
            policies: host("deny-only", "  ingressDeny:\n  - fromCIDR: [203.0.113.0/24]\n"),
            ctx: same,
            flows: "
                in tcp 203.0.113.5 22 denied ingressDeny[0]
                in tcp 198.51.100.7 22 denied -
            ",
        },
        Case {
            name: "deny beats allow, whatever the order",
            policies: host(
                "deny",
                "  enableDefaultDeny: {ingress: false}\n  ingress:\n  - fromEntities: [all]\n  ingressDeny:\n  \
                 - fromCIDRSet: [{cidr: 203.0.113.0/24, except: [203.0.113.128/25]}]\n    toPorts: [{ports: [{port: \"22\", protocol: TCP}]}]\n",
            ),
            ctx: same,
            flows: "
                in tcp 203.0.113.5 22 denied ingressDeny[0]
                in tcp 203.0.113.5 80 allowed ingress[0]
                in tcp 203.0.113.200 22 allowed ingress[0]
                in udp 203.0.113.5 22 allowed ingress[0]
            ",
        },
        Case {
            name: "a rule with toPorts and no peer allows every peer on those ports",
            policies: host("ports-only", "  ingress:\n  - toPorts: [{ports: [{port: \"8080\", protocol: TCP}]}]\n"),
            ctx: same,
            flows: "
                in tcp 10.0.0.2 8080 allowed ingress[0]
                in tcp 10.244.3.4 8080 allowed ingress[0]
                in tcp 2001:db8::7 8080 allowed ingress[0]
                in tcp 10.0.0.2 8081 denied -
            ",
        },
        Case {
            name: "an empty entity list selects nothing",
            policies: host("nothing", "  ingress:\n  - fromEntities: []\n    toPorts: [{ports: [{port: \"22\"}]}]\n"),
            ctx: same,
            flows: "
                in tcp 198.51.100.7 22 denied -
                in tcp 10.0.0.2 22 denied -
            ",
        },
        Case {
            name: "entities: host, remote-node, kube-apiserver",
            policies: host(
                "entities",
                "  ingress:\n  - fromEntities: [host]\n    toPorts: [{ports: [{port: \"1\"}]}]\n  \
                 - fromEntities: [remote-node]\n    toPorts: [{ports: [{port: \"2\"}]}]\n  \
                 - fromEntities: [kube-apiserver]\n    toPorts: [{ports: [{port: \"3\"}]}]\n",
            ),
            ctx: same,
            flows: "
                in tcp 10.0.0.1 1 allowed ingress[0]
                in tcp fd00::1 1 allowed ingress[0]
                in tcp 10.0.0.2 1 denied -
                in tcp 10.0.0.2 2 allowed ingress[1]
                in tcp 10.0.0.3 2 allowed ingress[1]
                in tcp fd00::2 2 allowed ingress[1]
                in tcp 10.0.0.1 2 denied -
                in tcp 10.244.3.4 2 denied -
                in tcp 10.0.0.2 3 allowed ingress[2]
                in tcp 192.0.2.10 3 allowed ingress[2]
                in tcp 10.0.0.3 3 denied -
            ",
        },
        Case {
            name: "entities: cluster is nodes, pods and API servers",
            policies: host("cluster", "  ingress:\n  - fromEntities: [cluster]\n"),
            ctx: same,
            flows: "
                in tcp 10.0.0.1 9 allowed ingress[0]
                in tcp 10.0.0.3 9 allowed ingress[0]
                in udp 10.244.200.1 9 allowed ingress[0]
                in tcp fd00:244::5 9 allowed ingress[0]
                in tcp 192.0.2.10 9 allowed ingress[0]
                in tcp 10.99.0.1 9 denied -
                in tcp 198.51.100.7 9 denied -
            ",
        },
        Case {
            name: "entities: world is outside nodes and pods; an off-node API server is world too",
            policies: host(
                "world",
                "  ingress:\n  - fromEntities: [world]\n    toPorts: [{ports: [{port: \"1\"}]}]\n  \
                 - fromEntities: [world-ipv4]\n    toPorts: [{ports: [{port: \"2\"}]}]\n  \
                 - fromEntities: [world-ipv6]\n    toPorts: [{ports: [{port: \"3\"}]}]\n",
            ),
            ctx: same,
            flows: "
                in tcp 198.51.100.7 1 allowed ingress[0]
                in tcp 2001:db8::7 1 allowed ingress[0]
                in tcp 10.99.0.1 1 allowed ingress[0]
                in tcp 192.0.2.10 1 allowed ingress[0]
                in tcp 10.0.0.2 1 denied -
                in tcp 10.0.0.1 1 denied -
                in tcp 10.244.3.4 1 denied -
                in tcp fd00:244::5 1 denied -
                in tcp 198.51.100.7 2 allowed ingress[1]
                in tcp 2001:db8::7 2 denied -
                in tcp 2001:db8::7 3 allowed ingress[2]
                in tcp 198.51.100.7 3 denied -
            ",
        },
        Case {
            name: "entities: all is every peer; health and friends are nothing here",
            policies: host(
                "all",
                "  ingress:\n  - fromEntities: [all]\n    toPorts: [{ports: [{port: \"1\"}]}]\n  \
                 - fromEntities: [health, init, ingress, unmanaged, none]\n",
            ),
            ctx: same,
            flows: "
                in tcp 10.0.0.2 1 allowed ingress[0]
                in tcp 2001:db8::7 1 allowed ingress[0]
                in tcp 10.0.0.2 2 denied -
            ",
        },
        Case {
            name: "CIDR rules do not select nodes or pods",
            policies: host("cidr", "  ingress:\n  - fromCIDR: [10.0.0.0/8, \"fd00::/8\"]\n"),
            ctx: same,
            flows: "
                in tcp 10.99.0.1 22 allowed ingress[0]
                in tcp 10.0.0.9 22 allowed ingress[0]
                in tcp fd00:99::1 22 allowed ingress[0]
                in tcp 10.0.0.2 22 denied -
                in tcp 10.0.0.1 22 denied -
                in tcp 10.244.3.4 22 denied -
                in tcp fd00::2 22 denied -
                in tcp fd00:244::5 22 denied -
            ",
        },
        Case {
            name: "cidr_match_nodes: CIDR rules select the other nodes, never this one or pods",
            policies: host("cidr-nodes", "  ingress:\n  - fromCIDR: [10.0.0.0/8]\n"),
            ctx: |c| c.cidr_match_nodes = true,
            flows: "
                in tcp 10.0.0.2 22 allowed ingress[0]
                in tcp 10.0.0.3 22 allowed ingress[0]
                in tcp 10.0.0.1 22 denied -
                in tcp 10.244.3.4 22 denied -
            ",
        },
        Case {
            name: "0.0.0.0/0 is world IPv4 only; an off-node API server is matched",
            policies: host("v4-world", "  egress:\n  - toCIDR: [0.0.0.0/0]\n"),
            ctx: same,
            flows: "
                out tcp 198.51.100.7 443 allowed egress[0]
                out tcp 192.0.2.10 6443 allowed egress[0]
                out tcp 10.0.0.3 443 denied -
                out tcp 10.244.3.4 443 denied -
                out tcp 2001:db8::7 443 denied -
            ",
        },
        Case {
            name: "except lies inside its cidr and is not matched",
            policies: host(
                "except",
                "  egress:\n  - toCIDRSet:\n    - cidr: 198.51.100.0/24\n      except: [198.51.100.128/25]\n    \
                 - cidr: 2001:db8::/32\n      except: [2001:db8:1::/48]\n",
            ),
            ctx: same,
            flows: "
                out tcp 198.51.100.7 443 allowed egress[0]
                out tcp 198.51.100.200 443 denied -
                out tcp 2001:db8::7 443 allowed egress[0]
                out tcp 2001:db8:1::7 443 denied -
            ",
        },
        Case {
            name: "protocol omitted is TCP, UDP and SCTP, never ICMP",
            policies: host("any", "  ingress:\n  - toPorts: [{ports: [{port: \"53\"}]}]\n"),
            ctx: same,
            flows: "
                in tcp 198.51.100.7 53 allowed ingress[0]
                in udp 198.51.100.7 53 allowed ingress[0]
                in sctp 198.51.100.7 53 allowed ingress[0]
                in icmp 198.51.100.7 8 denied -
                in udp 198.51.100.7 54 denied -
            ",
        },
        Case {
            name: "port 0 is every port; endPort is inclusive; endPort below port is the port",
            policies: host(
                "ranges",
                "  ingress:\n  - toPorts: [{ports: [{port: \"0\", protocol: UDP}, {port: \"8000\", endPort: 8080, protocol: TCP}, \
                 {port: \"9000\", endPort: 100, protocol: TCP}]}]\n",
            ),
            ctx: same,
            flows: "
                in udp 198.51.100.7 1 allowed ingress[0]
                in udp 198.51.100.7 65535 allowed ingress[0]
                in tcp 198.51.100.7 8000 allowed ingress[0]
                in tcp 198.51.100.7 8080 allowed ingress[0]
                in tcp 198.51.100.7 8081 denied -
                in tcp 198.51.100.7 7999 denied -
                in tcp 198.51.100.7 9000 allowed ingress[0]
                in tcp 198.51.100.7 9001 denied -
                in tcp 198.51.100.7 100 denied -
            ",
        },
        Case {
            name: "ICMP types by number and name, per family; type 0 is EchoReply only",
            policies: host(
                "icmp",
                "  ingress:\n  - icmps: [{fields: [{type: 0}, {type: EchoRequest, family: IPv6}]}]\n  \
                 - fromCIDR: [198.51.100.0/24]\n    icmps: [{fields: [{type: DestinationUnreachable}]}]\n",
            ),
            ctx: same,
            flows: "
                in icmp 203.0.113.1 0 allowed ingress[0]
                in icmp 203.0.113.1 8 denied -
                in icmp 203.0.113.1 3 denied -
                in icmp 198.51.100.7 3 allowed ingress[1]
                in icmp6 2001:db8::7 128 allowed ingress[0]
                in icmp6 2001:db8::7 129 denied -
                in icmp6 2001:db8::7 136 allowed -
                in icmp6 2001:db8::7 137 denied -
                in tcp 203.0.113.1 0 denied -
            ",
        },
        Case {
            name: "failsafe entries beat deny rules; cidr narrows them",
            policies: host("lockdown", "  ingressDeny:\n  - fromEntities: [all]\n  egress:\n  - {}\n"),
            ctx: |c| {
                c.failsafe = vec![
                    hostfw::policy::FailsafeEntry {
                        direction: Direction::Ingress,
                        proto: proto::TCP,
                        port: 22,
                        cidr: Some("10.50.0.0/24".parse().expect("cidr")),
                    },
                    hostfw::policy::FailsafeEntry {
                        direction: Direction::Egress,
                        proto: proto::UDP,
                        port: 53,
                        cidr: None,
                    },
                ];
            },
            flows: "
                in tcp 10.50.0.9 22 allowed failsafe inbound TCP/22 from 10.50.0.0/24
                in tcp 198.51.100.7 22 denied ingressDeny[0]
                out udp 198.51.100.7 53 allowed failsafe outbound UDP/53
                out tcp 198.51.100.7 53 denied -
            ",
        },
        Case {
            name: "audit mode passes what would be denied, and says so",
            policies: host("audit", "  ingress:\n  - toPorts: [{ports: [{port: \"22\"}]}]\n  ingressDeny:\n  - fromCIDR: [203.0.113.0/24]\n"),
            ctx: |c| c.mode = Mode::Audit,
            flows: "
                in tcp 198.51.100.7 22 allowed ingress[0]
                in tcp 198.51.100.7 80 audit -
                in tcp 203.0.113.1 22 audit ingressDeny[0]
            ",
        },
        Case {
            name: "specs: each spec is selected on its own",
            policies: "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: multi}\nspecs:\n\
                - nodeSelector: {matchLabels: {role: db}}\n  ingress:\n  - toPorts: [{ports: [{port: \"5432\", protocol: TCP}]}]\n\
                - nodeSelector: {matchLabels: {role: web}}\n  ingress:\n  - toPorts: [{ports: [{port: \"80\", protocol: TCP}]}]\n"
                .to_string(),
            ctx: same,
            flows: "
                in tcp 198.51.100.7 5432 allowed specs[0].ingress[0]
                in tcp 198.51.100.7 80 denied -
            ",
        },
    ]
}

#[test]
fn semantics_table() {
    for case in cases() {
        let mut ctx = context();
        (case.ctx)(&mut ctx);
        check(case.name, &lowered(&case.policies, &ctx), case.flows);
    }
}

/// Every lowered rule set of the table compiles to map contents, and the
/// model of the datapath's lookups over them decides each flow as the
/// reference evaluator does.
#[test]
fn lowered_policies_compile_and_the_map_model_agrees() {
    for case in cases() {
        let mut ctx = context();
        (case.ctx)(&mut ctx);
        let l = lowered(&case.policies, &ctx);
        let state =
            compile(&l.rules).unwrap_or_else(|e| panic!("{}: does not compile: {e}", case.name));
        let sim = Simulator::of(&state);
        for line in case.flows.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let pkt = packet(case.name, line);
            let (want, got) = (evaluate(&l.rules, &pkt), sim.evaluate(0, &pkt));
            assert_eq!(
                (got.verdict, got.rule_id),
                (want.verdict, want.rule_id),
                "{}: {line}",
                case.name
            );
        }
    }
}

#[test]
fn reports_say_what_became_of_each_policy() {
    let yaml = format!(
        "{}---\n{}---\n{}",
        host(
            "b-selected",
            "  ingress:\n  - fromCIDR: [10.0.0.0/8]\n  - {}\n  egressDeny:\n  - toEntities: [health]\n"
        ),
        host("a-other", "  ingress: [{}]\n").replace(
            "nodeSelector: {}",
            "nodeSelector: {matchLabels: {role: web}}"
        ),
        host("c-pods", "  ingress: [{}]\n").replace("nodeSelector", "endpointSelector"),
    );
    let mut ctx = context();
    ctx.failsafe = vec![hostfw::policy::FailsafeEntry {
        direction: Direction::Ingress,
        proto: proto::TCP,
        port: 22,
        cidr: None,
    }];
    let l = lowered(&yaml, &ctx);
    let names: Vec<&str> = l.report.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a-other", "b-selected", "c-pods"]);
    let [a, b, c] = &l.report.policies[..] else {
        panic!("three reports")
    };
    assert!(
        matches!(&a.selection, Selection::NotSelected { reason } if reason.contains("role=\"web\"") && reason.contains("role=\"db\"")),
        "{:?}",
        a.selection
    );
    assert!(
        matches!(&c.selection, Selection::Skipped { reason } if reason.contains("pod policy")),
        "{:?}",
        c.selection
    );
    assert_eq!(b.selection, Selection::Selected);
    assert_eq!((b.counts.ingress, b.counts.egress_deny), (2, 1));
    // Failsafe first (id 1), then b's rules: the empty rule has no id.
    assert_eq!(b.rule_ids, vec![2, 3]);
    assert_eq!(
        l.report.origin(1).map(|o| o.rule.as_str()),
        Some("failsafe inbound TCP/22")
    );
    let o = l.report.origin(2).expect("origin of rule 2");
    assert_eq!(
        (o.policy.as_deref(), o.rule.as_str()),
        (Some("b-selected"), "ingress[0]")
    );
    assert_eq!(o.pos.map(|p| p.line), Some(8));
    assert_eq!(
        l.report.origin(3).map(|o| o.rule.as_str()),
        Some("egressDeny[0]")
    );
    assert!(b.default_deny_ingress && b.default_deny_egress);
    assert_eq!(l.report.default_deny_ingress, ["b-selected"]);
    assert!(l.rules.default_deny_ingress && l.rules.default_deny_egress);
    let w = b.warnings.join("\n");
    assert!(w.contains("ingress[0]: 10.0.0.0/8 overlaps cluster addresses; not matched: 10.0.0.1 (this node), 10.0.0.2 (a node), 10.0.0.3 (a node)"), "{w}");
    assert!(
        w.contains("egressDeny[0]: entity health is no address here"),
        "{w}"
    );
    assert!(!a.default_deny_ingress && a.rule_ids.is_empty());
}

#[test]
fn ids_are_deterministic_and_follow_names() {
    let one = format!(
        "{}---\n{}",
        host("zeta", "  ingress:\n  - fromEntities: [world]\n"),
        host("alpha", "  egress:\n  - toEntities: [world]\n")
    );
    let two = format!(
        "{}---\n{}",
        host("alpha", "  egress:\n  - toEntities: [world]\n"),
        host("zeta", "  ingress:\n  - fromEntities: [world]\n")
    );
    let (l1, l2) = (lowered(&one, &context()), lowered(&two, &context()));
    assert_eq!(l1.rules, l2.rules);
    assert_eq!(l1.rules.rules[0].id, 1);
    assert_eq!(l1.rules.rules[0].direction, Direction::Egress);
    assert_eq!(
        l1.report.origin(2).and_then(|o| o.policy.as_deref()),
        Some("zeta")
    );
}

#[test]
fn toml_and_yaml_lower_alike() {
    let ctx = context();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/policy/testdata");
    let t = hostfw::policy::load_paths(&[dir.join("design.toml")]).expect("toml");
    let y = hostfw::policy::load_paths(&[dir.join("design.yaml")]).expect("yaml");
    let (lt, ly) = (lower(&t, &ctx), lower(&y, &ctx));
    assert_eq!(lt.rules, ly.rules);
    check(
        "design example",
        &lt,
        "
        in tcp 10.0.0.3 9999 allowed ingress[0]
        in tcp 10.50.0.7 22 allowed ingress[1]
        in tcp 10.50.0.7 6443 allowed ingress[1]
        in tcp 10.50.0.7 80 denied -
        ",
    );
}
