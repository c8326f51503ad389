//! What every fuzz target does with its input: parse it as a policy file
//! of one format and, when it is valid, lower it for two nodes (one that
//! knows nothing of its cluster, one with addresses in every set), so that
//! both the parsers and the prefix arithmetic of lowering see it. Error
//! messages and reports are formatted too: they are part of the output.

use std::{net::IpAddr, path::Path};

use hostfw::policy::{Format, LowerContext, lower, parse_str};

/// Runs one input through the policy front end. Bytes that are not UTF-8
/// are skipped: policy files are read as UTF-8 text, and a file that is not
/// never reaches the parsers.
pub fn run(data: &[u8], format: Format) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new(match format {
        Format::Yaml => "fuzz.yaml",
        Format::Toml => "fuzz.toml",
    });
    match parse_str(text, file, format) {
        Ok(policies) => {
            for ctx in [LowerContext::default(), populated()] {
                let lowered = lower(&policies, &ctx);
                std::hint::black_box(format!("{lowered:?}"));
            }
        }
        Err(errors) => {
            for e in errors {
                std::hint::black_box(e.to_string());
            }
        }
    }
}

/// A node with addresses in every entity's set.
fn populated() -> LowerContext {
    let ip = |s: &str| s.parse::<IpAddr>().ok();
    LowerContext {
        node_labels: [
            ("node-role.kubernetes.io/control-plane", ""),
            ("role", "etcd"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        host_addresses: ["10.0.0.11", "2001:db8:0:1::11"]
            .into_iter()
            .filter_map(ip)
            .collect(),
        cluster_nodes: ["10.0.0.11", "10.0.0.12", "10.0.0.21", "2001:db8:0:1::21"]
            .into_iter()
            .filter_map(ip)
            .collect(),
        pod_cidrs: ["10.244.0.0/16", "2001:db8:244::/56"]
            .into_iter()
            .filter_map(|s| s.parse().ok())
            .collect(),
        apiservers: ["10.0.0.11", "192.0.2.10"]
            .into_iter()
            .filter_map(ip)
            .collect(),
        ..LowerContext::default()
    }
}
