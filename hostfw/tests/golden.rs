//! Golden files: the rule set and the compiled map contents of every
//! example. A change to lowering or compiling shows here as a diff to
//! review. `HOSTFW_UPDATE_GOLDEN=1 cargo test --test golden` rewrites them.

use std::{fmt::Write as _, path::Path};

use hostfw::{
    config::Config,
    mapstate::{self, MapState},
    policy::{self, LowerContext},
    ruleset::RuleSet,
};

fn render(rules: &RuleSet, state: &MapState) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# mode {:?}, default deny: ingress {}, egress {}",
        rules.mode, rules.default_deny_ingress, rules.default_deny_egress
    );
    for r in &rules.rules {
        let _ = writeln!(
            out,
            "rule {} {:?} {:?} peers {:?} l4 {:?}",
            r.id, r.direction, r.action, r.peers, r.l4
        );
    }
    for (net, id) in &state.ident_v4 {
        let _ = writeln!(out, "ident {net} -> {id}");
    }
    for (net, id) in &state.ident_v6 {
        let _ = writeln!(out, "ident {net} -> {id}");
    }
    for (e, v) in &state.policy {
        let _ = writeln!(
            out,
            "policy id {} dir {} proto {:?} port {}/{} -> action {} rule {}",
            e.identity, e.direction, e.proto, e.port, e.port_prefix, v.action, v.rule_id
        );
    }
    out
}

#[test]
fn examples_compile_to_their_golden_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let update = std::env::var_os("HOSTFW_UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for role in ["control-plane", "worker", "etcd", "bastion"] {
        let cfg = Config::load(&root.join("../examples").join(role).join("hostfw.toml"))
            .unwrap_or_else(|e| panic!("{role}: {e}"));
        let loaded = policy::load(&cfg.policies.paths);
        assert!(loaded.errors.is_empty(), "{role}: {:?}", loaded.errors);
        let ctx = LowerContext::from_config(&cfg, &[]).expect("context");
        let lowered = policy::lower(&loaded.policies, &ctx);
        let state = mapstate::compile(&lowered.rules).expect("compiles");
        let got = render(&lowered.rules, &state);
        let file = root.join("tests/golden").join(format!("{role}.txt"));
        if update {
            std::fs::write(&file, &got).expect("write golden file");
            continue;
        }
        let want = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (HOSTFW_UPDATE_GOLDEN=1 creates it)",
                file.display()
            )
        });
        if got != want {
            mismatches.push(format!("{} differs:\n{got}", file.display()));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
