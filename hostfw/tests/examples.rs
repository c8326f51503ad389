//! The shipped examples work: every `examples/<role>/` configuration loads,
//! its policy (CCNP YAML in `policies/`, TOML in `policies-toml/`) parses
//! without errors and selects that node, the two forms lower to the same
//! rules, and a few flows per role get the verdict the policy's comments
//! promise. `examples/hostfw.toml` (what `scripts/setup.sh` runs) loads too.
//!
//! Flows are written `DIR PROTO PEER PORT|TYPE VERDICT RULE`, e.g.
//! `in tcp 198.51.100.7 31000 allowed ingress[1]`: VERDICT is `allowed` or
//! `denied` (the examples are in audit mode, where a denied flow passes as
//! `audit`; the table checks the policy's decision), RULE the deciding
//! rule's label as reported (`ingressDeny[0]`,
//! `failsafe inbound TCP/22 from 10.0.2.0/28`), or `-` for the direction's
//! default.

use std::{
    fs,
    net::IpAddr,
    path::{Path, PathBuf},
};

use hostfw::{
    config::Config,
    policy::{Format, LowerContext, Lowered, Selection, format_of, load, lower},
    refeval::{Packet, Verdict, evaluate},
    ruleset::{Direction, Mode},
};
use hostfw_common::{event::Reason, proto};

const ROLES: [&str; 4] = ["control-plane", "worker", "etcd", "bastion"];

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// One role's configuration and its policy lowered from each form.
struct Role {
    name: &'static str,
    cfg: Config,
    yaml: Lowered,
    toml: Lowered,
}

/// Loads `dir` as the daemon would and lowers it for `cfg`'s node; panics
/// with every error.
fn lower_dir(cfg: &Config, dir: &Path, format: Format) -> Lowered {
    let loaded = load(&[dir.to_path_buf()]);
    let errors: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "{}: {errors:#?}", dir.display());
    assert_eq!(
        loaded.policies.len(),
        1,
        "{}: one policy per form",
        dir.display()
    );
    assert!(
        loaded.policies.iter().all(|p| p.format == format),
        "{}: only {format:?} files",
        dir.display()
    );
    let ctx = LowerContext::from_config(cfg, &[]).expect("the example's failsafe entries");
    lower(&loaded.policies, &ctx)
}

fn role(name: &'static str) -> Role {
    let dir = examples().join(name);
    let cfg = Config::load(&dir.join("hostfw.toml")).expect("example configuration");
    assert_eq!(cfg.policies.paths, vec![dir.join("policies")], "{name}");
    let yaml = lower_dir(&cfg, &cfg.policies.paths[0], Format::Yaml);
    let toml = lower_dir(&cfg, &dir.join("policies-toml"), Format::Toml);
    Role {
        name,
        cfg,
        yaml,
        toml,
    }
}

#[test]
fn every_role_loads_and_selects_its_node() {
    for name in ROLES {
        let r = role(name);
        assert_eq!(
            r.cfg.mode,
            Mode::Audit,
            "{name}: examples ship in audit mode"
        );
        assert_eq!(r.cfg.node.name.as_deref(), Some(name_of_node(name)));
        for l in [&r.yaml, &r.toml] {
            let [p] = l.report.policies.as_slice() else {
                panic!("{name}: one policy: {:#?}", l.report.policies)
            };
            assert_eq!(p.name, format!("host-fw-{name}"));
            assert_eq!(p.selection, Selection::Selected, "{name}");
            assert!(p.default_deny_ingress, "{name}: ingress is default deny");
            assert!(!p.rule_ids.is_empty(), "{name}");
            // Failsafe entries first, then the policy's rules.
            let failsafe = r.cfg.failsafe.inbound.len() + r.cfg.failsafe.outbound.len();
            assert_eq!(l.rules.rules.len(), failsafe + p.rule_ids.len(), "{name}");
        }
    }
}

fn name_of_node(role: &str) -> &'static str {
    match role {
        "control-plane" => "cp-1",
        "worker" => "worker-1",
        "etcd" => "etcd-1",
        _ => "bastion-1",
    }
}

#[test]
fn yaml_and_toml_forms_lower_to_the_same_rules() {
    for name in ROLES {
        let r = role(name);
        assert_eq!(
            r.yaml.rules.rules.len(),
            r.toml.rules.rules.len(),
            "{name}: rule counts"
        );
        for (y, t) in r.yaml.rules.rules.iter().zip(&r.toml.rules.rules) {
            assert_eq!(y, t, "{name}: rule {}", y.id);
            let label = |l: &Lowered| l.report.origin(y.id).map(|o| o.rule.clone());
            assert_eq!(label(&r.yaml), label(&r.toml), "{name}: rule {}", y.id);
        }
        assert_eq!(r.yaml.rules, r.toml.rules, "{name}");
        let (py, pt) = (&r.yaml.report.policies[0], &r.toml.report.policies[0]);
        assert_eq!(py.counts, pt.counts, "{name}");
        assert_eq!(py.warnings, pt.warnings, "{name}");
        assert_eq!(
            (py.default_deny_ingress, py.default_deny_egress),
            (pt.default_deny_ingress, pt.default_deny_egress),
            "{name}"
        );
    }
}

#[test]
fn each_policy_selects_only_its_own_role() {
    let roles: Vec<Role> = ROLES.into_iter().map(role).collect();
    for node in &roles {
        let ctx = LowerContext::from_config(&node.cfg, &[]).expect("context");
        for other in roles.iter().filter(|o| o.name != node.name) {
            let dir = examples().join(other.name).join("policies");
            let policies = hostfw::policy::load_paths(&[dir]).expect("valid policy");
            let l = lower(&policies, &ctx);
            assert!(
                matches!(
                    l.report.policies[0].selection,
                    Selection::NotSelected { .. }
                ),
                "{}'s policy must not select {}: {:?}",
                other.name,
                node.name,
                l.report.policies[0].selection
            );
        }
    }
}

#[test]
fn every_example_file_starts_with_a_comment_on_its_intent() {
    let mut files = vec![examples().join("hostfw.toml")];
    for name in ROLES {
        let dir = examples().join(name);
        files.push(dir.join("hostfw.toml"));
        for sub in ["policies", "policies-toml"] {
            let entries = fs::read_dir(dir.join(sub)).expect("policy directory");
            for e in entries {
                let path = e.expect("directory entry").path();
                assert!(format_of(&path).is_some(), "{}", path.display());
                files.push(path);
            }
        }
    }
    for f in files {
        let text = fs::read_to_string(&f).expect("example file");
        assert!(
            text.starts_with("# "),
            "{}: starts with a comment",
            f.display()
        );
    }
}

#[test]
fn the_default_example_loads() {
    let cfg = Config::load(&examples().join("hostfw.toml")).expect("examples/hostfw.toml");
    let loaded = load(&cfg.policies.paths);
    let errors: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(!loaded.policies.is_empty(), "policies.d holds policies");
    let ctx = LowerContext::from_config(&cfg, &[]).expect("context");
    let l = lower(&loaded.policies, &ctx);
    assert!(
        l.report
            .policies
            .iter()
            .all(|p| p.selection == Selection::Selected),
        "{:#?}",
        l.report.policies
    );
}

/// Checks each line of `flows` against the rules of both forms of `role`.
fn flows(role: &'static str, flows: &str) {
    let r = self::role(role);
    for l in [&r.yaml, &r.toml] {
        for line in flows.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [dir, prot, peer, port, verdict, rule @ ..] = f.as_slice() else {
                panic!("bad flow line: {line}")
            };
            let direction = match *dir {
                "in" => Direction::Ingress,
                "out" => Direction::Egress,
                other => panic!("direction {other}: {line}"),
            };
            let remote: IpAddr = peer.parse().expect("peer address");
            let number: u16 = port.parse().expect("port or ICMP type");
            let (proto, port, icmp) = match *prot {
                "tcp" => (proto::TCP, Some(number), None),
                "udp" => (proto::UDP, Some(number), None),
                "icmp" => (proto::ICMP, None, Some((type_of(number), 0))),
                "icmpv6" => (proto::ICMPV6, None, Some((type_of(number), 0))),
                other => panic!("protocol {other}: {line}"),
            };
            let out = evaluate(
                &l.rules,
                &Packet {
                    direction,
                    remote,
                    proto,
                    port,
                    icmp,
                },
            );
            let got = match out.verdict {
                Verdict::Allowed => "allowed",
                // Audit mode: denied by the policy, passed.
                Verdict::Audit | Verdict::Denied => "denied",
            };
            let decided = if out.rule_id == 0 {
                "-".to_string()
            } else {
                l.report
                    .origin(out.rule_id)
                    .map_or_else(|| format!("#{}", out.rule_id), |o| o.rule.clone())
            };
            let rule = rule.join(" ");
            assert_eq!(
                (got, decided.as_str()),
                (*verdict, rule.as_str()),
                "{role}: {line} ({:?})",
                out.reason
            );
            if out.rule_id == 0 && got == "denied" {
                assert_eq!(out.reason, Reason::DefaultDeny, "{role}: {line}");
            }
        }
    }
}

fn type_of(n: u16) -> u8 {
    u8::try_from(n).expect("an ICMP type fits in a byte")
}

#[test]
fn control_plane_flows() {
    flows(
        "control-plane",
        "
        in tcp 10.0.0.21 6443 allowed ingress[0]
        in tcp 10.244.3.7 10250 allowed ingress[0]
        in tcp 2001:db8:0:1::22 6443 allowed ingress[0]
        in tcp 192.0.2.10 6443 allowed ingress[1]
        in tcp 192.0.2.200 6443 denied -
        in tcp 198.51.100.7 6443 denied -
        in tcp 10.0.0.12 2379 allowed ingress[2]
        in tcp 10.0.0.13 2380 allowed ingress[2]
        in tcp 10.0.0.21 2379 denied -
        in tcp 198.51.100.7 2380 denied ingressDeny[0]
        in tcp 192.0.2.10 10250 denied ingressDeny[0]
        in udp 10.0.0.22 8472 allowed ingress[3]
        in udp 198.51.100.7 8472 denied -
        in tcp 10.0.2.5 22 allowed failsafe inbound TCP/22 from 10.0.2.0/28
        in tcp 2001:db8:0:2::5 22 allowed failsafe inbound TCP/22 from 2001:db8:0:2::/64
        in tcp 192.0.2.10 22 denied -
        in icmp 10.0.0.22 8 allowed ingress[5]
        in icmpv6 2001:db8:0:1::21 128 allowed ingress[5]
        in icmp 198.51.100.7 8 denied -
        out tcp 198.51.100.7 443 allowed egress[0]
        out udp 10.0.0.12 8472 allowed egress[0]
        ",
    );
}

#[test]
fn worker_flows() {
    flows(
        "worker",
        "
        in tcp 198.51.100.7 31000 allowed ingress[1]
        in udp 2001:db8:ffff::7 32767 allowed ingress[1]
        in tcp 10.0.0.11 30000 allowed ingress[1]
        in tcp 198.51.100.7 29999 denied -
        in tcp 198.51.100.7 10250 denied -
        in tcp 10.0.0.11 10250 allowed ingress[0]
        in tcp 10.244.1.9 10250 allowed ingress[0]
        in udp 10.0.0.22 8472 allowed ingress[2]
        in udp 198.51.100.7 8472 denied -
        in tcp 10.0.2.5 22 allowed failsafe inbound TCP/22 from 10.0.2.0/28
        in tcp 203.0.113.9 22 denied -
        in icmp 10.0.0.11 8 allowed ingress[4]
        in icmp 203.0.113.9 8 denied -
        out tcp 203.0.113.9 443 allowed -
        ",
    );
}

#[test]
fn etcd_flows() {
    flows(
        "etcd",
        "
        in tcp 10.0.0.12 2379 allowed ingress[0]
        in tcp 10.0.0.21 2379 denied -
        in tcp 10.0.0.34 2380 allowed ingress[1]
        in tcp 10.0.0.35 2379 allowed ingress[1]
        in tcp 10.244.2.4 2381 allowed ingress[2]
        in tcp 198.51.100.7 2379 denied ingressDeny[0]
        in tcp 2001:db8:ffff::7 2380 denied ingressDeny[0]
        in tcp 10.0.0.34 2381 denied -
        in tcp 10.0.2.5 22 allowed failsafe inbound TCP/22 from 10.0.2.0/28
        in tcp 198.51.100.7 22 denied -
        in icmp 10.0.0.34 8 allowed ingress[4]
        in icmp 10.0.2.5 8 allowed ingress[4]
        in icmp 10.0.0.21 8 denied -
        out tcp 10.0.0.34 2380 allowed egress[0]
        out udp 10.0.3.2 53 allowed failsafe outbound UDP/53
        out udp 10.0.3.3 123 allowed egress[2]
        out udp 10.0.3.4 123 denied -
        out tcp 10.0.0.11 6443 denied -
        out tcp 198.51.100.7 443 denied egressDeny[0]
        out tcp 2001:db8:ffff::7 443 denied egressDeny[0]
        out udp 198.51.100.7 53 allowed failsafe outbound UDP/53
        ",
    );
}

#[test]
fn bastion_flows() {
    flows(
        "bastion",
        "
        in tcp 2001:db8:ffff::7 22 allowed ingress[0]
        in tcp 192.0.2.200 22 allowed ingress[0]
        in tcp 192.0.2.10 22 allowed failsafe inbound TCP/22 from 192.0.2.0/25
        in tcp 198.51.100.7 22 denied ingressDeny[0]
        in tcp 198.51.100.70 22 allowed ingress[0]
        in tcp 203.0.113.9 22 denied ingressDeny[1]
        in tcp 2001:db8:bad::1 22 denied ingressDeny[1]
        in icmp 203.0.113.9 8 denied ingressDeny[1]
        in icmpv6 2001:db8:ffff::7 128 allowed ingress[1]
        in tcp 10.0.0.21 22 denied -
        in tcp 192.0.2.200 443 denied -
        out tcp 10.0.0.21 22 allowed egress[0]
        out tcp 2001:db8:0:1::13 22 allowed egress[0]
        out tcp 10.0.0.11 6443 allowed egress[1]
        out tcp 10.0.0.21 6443 denied -
        out tcp 10.0.0.21 10250 denied -
        out icmp 10.0.0.21 8 allowed egress[2]
        out udp 10.0.3.3 123 allowed egress[3]
        out tcp 192.0.2.80 443 denied -
        out udp 192.0.2.80 53 allowed failsafe outbound UDP/53
        ",
    );
}

/// `examples/kubernetes/staged-rollout`: v1 selects every node but the
/// canary, v2 only the canary, so each node has exactly one of them.
#[test]
fn staged_rollout_selects_one_version_per_node() {
    let dir = examples().join("kubernetes/staged-rollout");
    let loaded = load(std::slice::from_ref(&dir));
    let errors: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(loaded.policies.len(), 2, "{}", dir.display());
    for (labels, want) in [
        ("", "node-baseline-v1"),
        (
            "labels = { \"hostfw.example.com/stage\" = \"canary\" }",
            "node-baseline-v2",
        ),
        (
            "labels = { \"hostfw.example.com/stage\" = \"done\" }",
            "node-baseline-v1",
        ),
    ] {
        let cfg =
            Config::parse(&format!("[node]\n{labels}\n"), Path::new("h.toml")).expect("config");
        let ctx = LowerContext::from_config(&cfg, &[]).expect("context");
        let l = lower(&loaded.policies, &ctx);
        let selected: Vec<&str> = l
            .report
            .policies
            .iter()
            .filter(|p| p.selection == Selection::Selected)
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(selected, [want], "node with {labels:?}");
    }
}

/// The manifests in `examples/kubernetes/` are the kinds the README says,
/// and the ClusterRole grants no write.
#[test]
fn kubernetes_manifests_hold_what_the_readme_says() {
    let rbac = fs::read_to_string(examples().join("kubernetes/rbac.yaml")).expect("rbac.yaml");
    for kind in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ] {
        assert!(
            rbac.contains(&format!("kind: {kind}\n")),
            "rbac.yaml has no {kind}"
        );
    }
    for resource in [
        "ciliumclusterwidenetworkpolicies",
        "nodes",
        "endpointslices",
        "events",
    ] {
        assert!(
            rbac.contains(resource),
            "rbac.yaml does not mention {resource}"
        );
    }
    for verb in ["\"update\"", "\"delete\"", "\"patch\"", "\"*\""] {
        assert!(!rbac.contains(verb), "rbac.yaml grants {verb}");
    }
    let crd = fs::read_to_string(
        examples().join("kubernetes/ciliumclusterwidenetworkpolicies.cilium.io.yaml"),
    )
    .expect("CRD");
    assert!(crd.contains("kind: CustomResourceDefinition"));
    assert!(crd.contains("name: ciliumclusterwidenetworkpolicies.cilium.io"));
}
