use std::collections::BTreeMap;

use hostfw_common::stats::STAT_NAMES;

use crate::datapath::counters::{ConntrackUsage, TableUsage};

use super::*;

/// One sample line: name, labels in order, value.
type Sample = (String, Vec<(String, String)>, u64);

/// A strict reader of what [`render`] writes: every line is a `# HELP`, a
/// `# TYPE` or a sample `name{labels} value`; a family's HELP precedes its
/// TYPE, which precedes its samples, which are contiguous. Returns the
/// families' types and the samples with label values unescaped.
fn parse(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    assert!(text.ends_with('\n'), "text ends with a newline");
    let mut types = BTreeMap::new();
    let mut help: Option<String> = None;
    let mut current: Option<String> = None;
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').expect("HELP name text");
            assert!(!text.is_empty(), "{line}");
            assert!(!types.contains_key(name), "family {name} twice");
            help = Some(name.to_owned());
            current = None;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert_eq!(help.as_deref(), Some(name), "HELP before TYPE: {line}");
            assert!(matches!(kind, "counter" | "gauge"), "{line}");
            assert!(kind != "counter" || name.ends_with("_total"), "{line}");
            types.insert(name.to_owned(), kind.to_owned());
            current = Some(name.to_owned());
        } else {
            let sample = parse_sample(line);
            assert_eq!(current.as_deref(), Some(&*sample.0), "TYPE before {line}");
            samples.push(sample);
        }
    }
    (types, samples)
}

fn parse_sample(line: &str) -> Sample {
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .expect("a name and a value");
    let (name, mut rest) = line.split_at(end);
    assert!(name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'));
    let mut labels = Vec::new();
    if let Some(mut r) = rest.strip_prefix('{') {
        loop {
            let (key, after) = r.split_once("=\"").expect("label=\"value\"");
            assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            let mut value = String::new();
            let mut chars = after.char_indices();
            let close = loop {
                match chars.next().expect("closing quote") {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next().expect("escaped char").1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        c => panic!("bad escape \\{c} in {line}"),
                    },
                    (_, '\n') => panic!("raw newline in {line}"),
                    (_, c) => value.push(c),
                }
            };
            labels.push((key.to_owned(), value));
            r = &after[close + 1..];
            if let Some(next) = r.strip_prefix(',') {
                r = next;
            } else {
                rest = r.strip_prefix('}').expect("} after labels");
                break;
            }
        }
    }
    let value = rest.strip_prefix(' ').expect("space before value");
    let value = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
    (name.to_owned(), labels, value)
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The value of the one sample `name` with exactly `pairs`.
fn value(samples: &[Sample], name: &str, pairs: &[(&str, &str)]) -> u64 {
    let want = labels(pairs);
    let found: Vec<_> = samples
        .iter()
        .filter(|s| s.0 == name && s.1 == want)
        .collect();
    assert_eq!(found.len(), 1, "{name} {pairs:?}: {found:?}");
    found[0].2
}

fn rule(policy: Option<&str>, rule: &str, packets: u64) -> RuleSample {
    RuleSample {
        policy: policy.map(str::to_owned),
        rule: rule.to_owned(),
        packets,
    }
}

fn full() -> Snapshot {
    Snapshot {
        counters: STAT_NAMES.iter().copied().zip(100..).collect(),
        rules: vec![
            rule(None, "failsafe inbound TCP/22", 7),
            rule(Some("allow-ssh"), "ingress[0]", 3),
            rule(Some("allow-ssh"), "ingress[1]", 0),
        ],
        interfaces: vec![InterfaceSample {
            name: "eth0".into(),
            xdp: "native".into(),
            tc: "tcx".into(),
            ..InterfaceSample::default()
        }],
        conntrack: ConntrackUsage {
            established: TableUsage {
                used: 42,
                capacity: 262_144,
                evicted: 0,
            },
            new: TableUsage {
                used: 65_000,
                capacity: 65_536,
                evicted: 12,
            },
        },
        reloads_ok: 5,
        reloads_failed: 1,
        trials_started: 3,
        trials_confirmed: 2,
        trials_reverted: 1,
        policy_revision: 9,
        mode_enforce: true,
        kubernetes: None,
    }
}

const FAMILIES: [(&str, &str); 11] = [
    ("hostfw_packets_total", "counter"),
    ("hostfw_interface_packets_total", "counter"),
    ("hostfw_rule_flows_total", "counter"),
    ("hostfw_interface_info", "gauge"),
    ("hostfw_conntrack_entries", "gauge"),
    ("hostfw_conntrack_capacity", "gauge"),
    ("hostfw_conntrack_evictions_total", "counter"),
    ("hostfw_reloads_total", "counter"),
    ("hostfw_trials_total", "counter"),
    ("hostfw_policy_revision", "gauge"),
    ("hostfw_mode_enforce", "gauge"),
];

#[test]
fn every_family_has_help_and_type() {
    for snapshot in [Snapshot::default(), full()] {
        let (types, _) = parse(&render(&snapshot));
        let want: BTreeMap<String, String> = FAMILIES
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        assert_eq!(types, want);
    }
}

#[test]
fn values_of_a_full_snapshot() {
    let (_, samples) = parse(&render(&full()));
    for (i, name) in STAT_NAMES.iter().enumerate() {
        let want = 100 + u64::try_from(i).expect("small");
        assert_eq!(
            value(&samples, "hostfw_packets_total", &[("kind", name)]),
            want
        );
    }
    let flows = "hostfw_rule_flows_total";
    let failsafe = [("policy", ""), ("rule", "failsafe inbound TCP/22")];
    assert_eq!(value(&samples, flows, &failsafe), 7);
    let ssh0 = [("policy", "allow-ssh"), ("rule", "ingress[0]")];
    assert_eq!(value(&samples, flows, &ssh0), 3);
    let ssh1 = [("policy", "allow-ssh"), ("rule", "ingress[1]")];
    assert_eq!(value(&samples, flows, &ssh1), 0);
    let eth0 = [("interface", "eth0"), ("xdp", "native"), ("tc", "tcx")];
    assert_eq!(value(&samples, "hostfw_interface_info", &eth0), 1);
    let est = [("table", "established")];
    let new = [("table", "new")];
    assert_eq!(value(&samples, "hostfw_conntrack_entries", &est), 42);
    assert_eq!(value(&samples, "hostfw_conntrack_capacity", &est), 262_144);
    assert_eq!(value(&samples, "hostfw_conntrack_evictions_total", &est), 0);
    assert_eq!(value(&samples, "hostfw_conntrack_entries", &new), 65_000);
    assert_eq!(value(&samples, "hostfw_conntrack_capacity", &new), 65_536);
    assert_eq!(
        value(&samples, "hostfw_conntrack_evictions_total", &new),
        12
    );
    assert_eq!(
        value(&samples, "hostfw_reloads_total", &[("result", "ok")]),
        5
    );
    assert_eq!(
        value(&samples, "hostfw_reloads_total", &[("result", "error")]),
        1
    );
    let trials = "hostfw_trials_total";
    assert_eq!(value(&samples, trials, &[("event", "started")]), 3);
    assert_eq!(value(&samples, trials, &[("event", "confirmed")]), 2);
    assert_eq!(value(&samples, trials, &[("event", "reverted")]), 1);
    assert_eq!(value(&samples, "hostfw_policy_revision", &[]), 9);
    assert_eq!(value(&samples, "hostfw_mode_enforce", &[]), 1);
    let eth0_passed = [("interface", "eth0"), ("outcome", "passed")];
    assert_eq!(
        value(&samples, "hostfw_interface_packets_total", &eth0_passed),
        0
    );
    // Counters, 3 rules, 1 interface (info + 3 outcomes), 3 conntrack
    // families of 2 tables, 2 reloads, 3 trials, revision, mode.
    assert_eq!(
        samples.len(),
        STAT_NAMES.len() + 3 + 1 + 3 + 6 + 2 + 3 + 1 + 1
    );
}

#[test]
fn empty_snapshot_has_fixed_samples_only() {
    let (_, samples) = parse(&render(&Snapshot::default()));
    let names: Vec<&str> = samples.iter().map(|s| &*s.0).collect();
    assert_eq!(
        names,
        [
            "hostfw_conntrack_entries",
            "hostfw_conntrack_entries",
            "hostfw_conntrack_capacity",
            "hostfw_conntrack_capacity",
            "hostfw_conntrack_evictions_total",
            "hostfw_conntrack_evictions_total",
            "hostfw_reloads_total",
            "hostfw_reloads_total",
            "hostfw_trials_total",
            "hostfw_trials_total",
            "hostfw_trials_total",
            "hostfw_policy_revision",
            "hostfw_mode_enforce",
        ]
    );
    assert_eq!(value(&samples, "hostfw_mode_enforce", &[]), 0);
}

#[test]
fn label_values_are_escaped() {
    let nasty = "a\"b\\c\nd}e,f=g";
    let snapshot = Snapshot {
        rules: vec![rule(Some(nasty), "ingress[0]", 1)],
        interfaces: vec![InterfaceSample {
            name: "we\"ird\\".into(),
            xdp: "x\ny".into(),
            tc: String::new(),
            ..InterfaceSample::default()
        }],
        ..Snapshot::default()
    };
    let text = render(&snapshot);
    assert!(
        text.contains(r#"hostfw_rule_flows_total{policy="a\"b\\c\nd}e,f=g",rule="ingress[0]"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"hostfw_interface_info{interface="we\"ird\\",xdp="x\ny",tc=""} 1"#),
        "{text}"
    );
    let (_, samples) = parse(&text);
    let flows = [("policy", nasty), ("rule", "ingress[0]")];
    assert_eq!(value(&samples, "hostfw_rule_flows_total", &flows), 1);
    let iface = [("interface", "we\"ird\\"), ("xdp", "x\ny"), ("tc", "")];
    assert_eq!(value(&samples, "hostfw_interface_info", &iface), 1);
}

#[test]
fn duplicate_rules_are_summed_in_first_seen_order() {
    let snapshot = Snapshot {
        rules: vec![
            rule(Some("p"), "egress[0]", 2),
            rule(None, "failsafe", 1),
            rule(Some("p"), "egress[0]", 5),
            rule(Some(""), "failsafe", 1),
            rule(Some("p"), "egress[1]", u64::MAX),
            rule(Some("p"), "egress[1]", 1),
        ],
        ..Snapshot::default()
    };
    let (_, samples) = parse(&render(&snapshot));
    let flows: Vec<_> = samples
        .iter()
        .filter(|s| s.0 == "hostfw_rule_flows_total")
        .map(|s| (s.1[0].1.as_str(), s.1[1].1.as_str(), s.2))
        .collect();
    assert_eq!(
        flows,
        [
            ("p", "egress[0]", 7),
            ("", "failsafe", 2),
            ("p", "egress[1]", u64::MAX)
        ]
    );
}

#[test]
fn large_values_are_exact() {
    let snapshot = Snapshot {
        counters: vec![("dropped", u64::MAX)],
        policy_revision: u32::MAX,
        ..Snapshot::default()
    };
    let text = render(&snapshot);
    assert!(text.contains("hostfw_packets_total{kind=\"dropped\"} 18446744073709551615\n"));
    assert!(text.contains("\nhostfw_policy_revision 4294967295\n"));
}

#[test]
fn kubernetes_families_only_with_the_source() {
    assert!(!render(&Snapshot::default()).contains("hostfw_kubernetes_"));
    let text = render(&Snapshot {
        kubernetes: Some(crate::control::KubeStatus {
            state: "stale".into(),
            data_age_secs: 42,
            watch_restarts: 3,
            invalid_policies: vec![("bad".into(), "ccnp/bad: x".into())],
            ..crate::control::KubeStatus::default()
        }),
        ..Snapshot::default()
    });
    for line in [
        "hostfw_kubernetes_synced 0",
        "hostfw_kubernetes_data_age_seconds 42",
        "hostfw_kubernetes_watch_restarts_total 3",
        "hostfw_kubernetes_invalid_policies 1",
        "# TYPE hostfw_kubernetes_watch_restarts_total counter",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
}
