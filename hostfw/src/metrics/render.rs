//! The Prometheus text exposition format (version 0.0.4).

use std::{collections::HashMap, fmt::Write as _};

/// `Content-Type` of the rendered text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Everything the metrics show, filled in by the daemon.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Datapath packet counters, `(name, value)` as from
    /// [`crate::datapath::counters::Counters::iter`].
    pub counters: Vec<(&'static str, u64)>,
    /// Flows matched per rule.
    pub rules: Vec<RuleSample>,
    /// Interfaces the programs are attached to.
    pub interfaces: Vec<InterfaceSample>,
    /// The connection trackers' use.
    pub conntrack: crate::datapath::counters::ConntrackUsage,
    /// Reloads that applied a policy.
    pub reloads_ok: u64,
    /// Reloads that failed.
    pub reloads_failed: u64,
    /// Trials started.
    pub trials_started: u64,
    /// Trials confirmed.
    pub trials_confirmed: u64,
    /// Trials reverted (rollback or timeout).
    pub trials_reverted: u64,
    /// Revision of the policy in force.
    pub policy_revision: u32,
    /// Enforce mode (`false`: audit).
    pub mode_enforce: bool,
    /// The Kubernetes source, when configured.
    pub kubernetes: Option<crate::control::KubeStatus>,
}

/// One rule's flow counter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSample {
    /// Policy name; `None` for failsafe rules.
    pub policy: Option<String>,
    /// Rule label, `ingress[0]` style.
    pub rule: String,
    /// Flows the rule decided.
    pub packets: u64,
}

/// One attached interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterfaceSample {
    /// Interface name.
    pub name: String,
    /// XDP attach mode (`native`, `generic`…).
    pub xdp: String,
    /// TC attach mode (`tcx`, `clsact`…).
    pub tc: String,
    /// Packets passed (audited ones included).
    pub passed: u64,
    /// Packets dropped.
    pub dropped: u64,
    /// Packets that would have been dropped, passed in audit mode.
    pub audited: u64,
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// The exposition text being written.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                self.0.push_str(key);
                self.0.push_str("=\"");
                escape_into(&mut self.0, val);
                self.0.push('"');
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// Appends a label value escaped per the format: `\`, `"` and newline.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Renders `s` in the text exposition format 0.0.4: every family with its
/// `# HELP` and `# TYPE` lines, even when it has no samples.
#[must_use]
pub fn render(s: &Snapshot) -> String {
    let mut out = Out(String::with_capacity(2048 + 64 * s.rules.len()));

    let name = "hostfw_packets_total";
    out.family(name, Kind::Counter, "Packets by datapath verdict kind.");
    for (kind, value) in &s.counters {
        out.sample(name, &[("kind", kind)], *value);
    }

    let name = "hostfw_rule_flows_total";
    out.family(name, Kind::Counter, "Flows decided per policy rule.");
    for (policy, rule, packets) in merged_rules(&s.rules) {
        out.sample(name, &[("policy", policy), ("rule", rule)], packets);
    }

    let name = "hostfw_interface_info";
    out.family(
        name,
        Kind::Gauge,
        "Attached interfaces, with XDP and TC modes.",
    );
    for i in &s.interfaces {
        let labels = [("interface", &*i.name), ("xdp", &*i.xdp), ("tc", &*i.tc)];
        out.sample(name, &labels, 1);
    }

    let name = "hostfw_interface_packets_total";
    out.family(
        name,
        Kind::Counter,
        "Packets per interface by outcome (passed includes audited).",
    );
    for i in &s.interfaces {
        for (outcome, value) in [
            ("passed", i.passed),
            ("dropped", i.dropped),
            ("audited", i.audited),
        ] {
            out.sample(
                name,
                &[("interface", &*i.name), ("outcome", outcome)],
                value,
            );
        }
    }

    let tables = [
        ("established", &s.conntrack.established),
        ("new", &s.conntrack.new),
    ];
    type Field = fn(&crate::datapath::counters::TableUsage) -> u64;
    let families: [(&str, Kind, &str, Field); 3] = [
        (
            "hostfw_conntrack_entries",
            Kind::Gauge,
            "Connections tracked, by table.",
            |u| u.used,
        ),
        (
            "hostfw_conntrack_capacity",
            Kind::Gauge,
            "Size of the connection tracker, by table.",
            |u| u.capacity,
        ),
        (
            "hostfw_conntrack_evictions_total",
            Kind::Counter,
            "Tracked connections evicted to make room, by table.",
            |u| u.evicted,
        ),
    ];
    for (name, kind, help, field) in families {
        out.family(name, kind, help);
        for (table, u) in tables {
            out.sample(name, &[("table", table)], field(u));
        }
    }

    let name = "hostfw_reloads_total";
    out.family(name, Kind::Counter, "Policy reloads by result.");
    out.sample(name, &[("result", "ok")], s.reloads_ok);
    out.sample(name, &[("result", "error")], s.reloads_failed);

    let name = "hostfw_trials_total";
    out.family(name, Kind::Counter, "Trial applies by event.");
    out.sample(name, &[("event", "started")], s.trials_started);
    out.sample(name, &[("event", "confirmed")], s.trials_confirmed);
    out.sample(name, &[("event", "reverted")], s.trials_reverted);

    let name = "hostfw_policy_revision";
    out.family(name, Kind::Gauge, "Revision of the policy in force.");
    out.sample(name, &[], u64::from(s.policy_revision));

    let name = "hostfw_mode_enforce";
    out.family(name, Kind::Gauge, "1 in enforce mode, 0 in audit mode.");
    out.sample(name, &[], u64::from(s.mode_enforce));

    if let Some(k) = &s.kubernetes {
        kubernetes(&mut out, k);
    }

    out.0
}

/// The Kubernetes source's families (only when `[kubernetes]` is set).
fn kubernetes(out: &mut Out, k: &crate::control::KubeStatus) {
    let families = [
        (
            "hostfw_kubernetes_synced",
            Kind::Gauge,
            "1 while every watch of the API server is current, 0 otherwise.",
            u64::from(k.state == "synced"),
        ),
        (
            "hostfw_kubernetes_data_age_seconds",
            Kind::Gauge,
            "Seconds since the cluster data in force was last known current.",
            k.data_age_secs,
        ),
        (
            "hostfw_kubernetes_watch_restarts_total",
            Kind::Counter,
            "Watches of the API server restarted (errors, relists after 410 Gone).",
            k.watch_restarts,
        ),
        (
            "hostfw_kubernetes_invalid_policies",
            Kind::Gauge,
            "CCNPs in the cluster left out as invalid.",
            k.invalid_policies.len() as u64,
        ),
    ];
    for (name, kind, help, value) in families {
        out.family(name, kind, help);
        out.sample(name, &[], value);
    }
}

/// Rule samples with duplicate `(policy, rule)` pairs summed (a series may
/// appear only once), in first-seen order; a failsafe rule's policy is `""`.
fn merged_rules(rules: &[RuleSample]) -> Vec<(&str, &str, u64)> {
    let mut merged: Vec<(&str, &str, u64)> = Vec::with_capacity(rules.len());
    let mut index: HashMap<(&str, &str), usize> = HashMap::with_capacity(rules.len());
    for r in rules {
        let key = (r.policy.as_deref().unwrap_or(""), r.rule.as_str());
        match index.get(&key) {
            Some(&i) => merged[i].2 = merged[i].2.saturating_add(r.packets),
            None => {
                index.insert(key, merged.len());
                merged.push((key.0, key.1, r.packets));
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests;
