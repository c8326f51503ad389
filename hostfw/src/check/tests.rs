//! Check: the summary of files and policies, errors in their format.

use std::{
    fs,
    path::{Path, PathBuf},
};

use super::*;

/// A fresh directory with these files.
fn dir_with(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hostfw-check-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    for (file, text) in files {
        fs::write(dir.join(file), text).expect("write");
    }
    dir
}

fn ccnp(name: &str, selector: &str, body: &str) -> String {
    format!(
        "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {{name: {name}}}\n\
         spec:\n  {selector}\n{body}"
    )
}

fn config() -> Config {
    Config::parse(
        "mode = \"enforce\"\n[node]\nlabels = { role = \"db\" }\naddresses = [\"10.0.0.1\"]\n\
         [cluster]\nnodes = [\"10.0.0.1\", \"10.0.0.2\"]\n",
        Path::new("h.toml"),
    )
    .expect("config")
}

#[test]
fn the_summary_says_what_each_file_and_policy_becomes() {
    let dir = dir_with(
        "summary",
        &[
            (
                "a.yaml",
                &ccnp(
                    "base",
                    "nodeSelector: {}",
                    "  ingress:\n  - fromEntities: [cluster]\n  - fromCIDR: [10.0.0.0/8]\n  \
                     ingressDeny:\n  - fromCIDR: [198.51.100.0/24]\n",
                ),
            ),
            (
                "b.yaml",
                &format!(
                    "{}---\n{}",
                    ccnp(
                        "web-only",
                        "nodeSelector: {matchLabels: {role: web}}",
                        "  egress:\n  - toEntities: [world]\n",
                    ),
                    ccnp(
                        "open-egress",
                        "nodeSelector: {}",
                        "  enableDefaultDeny: {egress: false}\n  egressDeny:\n  - toCIDR: [203.0.113.0/24]\n",
                    )
                ),
            ),
            (
                "c.yaml",
                &ccnp("pods", "endpointSelector: {}", "  ingress:\n  - {}\n"),
            ),
            ("README.md", "not a policy"),
        ],
    );
    let report = check(&config(), std::slice::from_ref(&dir)).expect("checks");
    assert!(report.is_ok(), "{:?}", report.errors);
    let s = report.summary();
    let has = |needle: &str| assert!(s.contains(needle), "{needle:?} in\n{s}");
    has("README.md: ignored: not a .yaml, .yml or .toml file\n");
    has("a.yaml: 1 policy\n");
    has("b.yaml: 2 policies\n");
    has("policy base (");
    has("a.yaml): selected; ingress 2, ingressDeny 1; makes ingress default-deny\n");
    has("  warning: ingress[1]: 10.0.0.0/8 overlaps cluster addresses");
    has("policy web-only (");
    has("): not selected: nodeSelector does not match this node");
    has("): selected; egressDeny 1; egress not default-deny (enableDefaultDeny.egress: false)\n");
    has("policy pods (");
    has("): skipped: endpointSelector makes it a pod policy");
    has(
        "this node: ingress default-deny (base); egress not default-deny \
         (enableDefaultDeny.egress: false in open-egress); mode enforce\n",
    );
    assert!(s.ends_with("ok: 4 policies, 2 selected\n"), "{s}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn errors_are_listed_with_file_line_column_policy_and_rule() {
    let dir = dir_with(
        "errors",
        &[
            (
                "good.yaml",
                &ccnp("good", "nodeSelector: {}", "  ingress:\n  - {}\n"),
            ),
            (
                "bad.yaml",
                &ccnp(
                    "bad",
                    "nodeSelector: {}",
                    "  ingress:\n  - fromEntities: [world]\n    toPort: []\n",
                ),
            ),
        ],
    );
    let report = check(&config(), std::slice::from_ref(&dir)).expect("checks");
    assert!(!report.is_ok());
    let errors = render_errors(&report.errors);
    let bad = dir.join("bad.yaml");
    assert!(
        errors.starts_with(&format!(
            "{}:8:5: policy bad, ingress[0]: unknown field `toPort`",
            bad.display()
        )),
        "{errors}"
    );
    assert_eq!(errors.lines().count(), report.errors.len());
    let s = report.summary();
    assert!(s.contains("bad.yaml: not valid (errors below)\n"), "{s}");
    assert!(!s.contains("ok:"), "{s}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn no_direction_rules_means_no_default_deny_and_an_empty_path_is_said() {
    let dir = dir_with("empty", &[]);
    let report = check(&Config::default(), std::slice::from_ref(&dir)).expect("checks");
    let s = report.summary();
    assert!(s.starts_with("no policy file found\n"), "{s}");
    assert!(
        s.contains(
            "this node: ingress not default-deny (no selected policy has ingress rules); \
             egress not default-deny (no selected policy has egress rules); mode audit"
        ),
        "{s}"
    );
    let _ = fs::remove_dir_all(&dir);
}
