//! The facts hostfw takes from each kind of object it watches.

use std::{collections::BTreeMap, net::IpAddr};

use k8s_openapi::api::{core::v1::Node, discovery::v1::EndpointSlice};
use kube::{
    ResourceExt,
    api::{ApiResource, DynamicObject},
};

use super::view::{ClusterView, NodeFacts};

/// `cilium.io/v2` `CiliumClusterwideNetworkPolicy`, which hostfw reads
/// without Cilium's Rust types.
#[must_use]
pub fn ccnp_resource() -> ApiResource {
    ApiResource {
        group: "cilium.io".into(),
        version: "v2".into(),
        api_version: "cilium.io/v2".into(),
        kind: "CiliumClusterwideNetworkPolicy".into(),
        plural: "ciliumclusterwidenetworkpolicies".into(),
    }
}

/// The label of the `default/kubernetes` Service's EndpointSlices.
pub const APISERVER_SLICES: &str = "kubernetes.io/service-name=kubernetes";

/// A node's addresses (InternalIP, ExternalIP) and pod CIDRs. Addresses
/// that do not parse (a hostname in an address field) are left out.
#[must_use]
pub fn node_facts(node: &Node) -> NodeFacts {
    let mut facts = NodeFacts::default();
    if let Some(status) = &node.status {
        for a in status.addresses.iter().flatten() {
            if (a.type_ == "InternalIP" || a.type_ == "ExternalIP")
                && let Ok(ip) = a.address.parse::<IpAddr>()
            {
                facts.addresses.insert(ip);
            }
        }
    }
    if let Some(spec) = &node.spec {
        let cidrs = spec.pod_cidrs.iter().flatten().chain(spec.pod_cidr.iter());
        facts.pod_cidrs.extend(
            cidrs
                .filter_map(|c| c.parse::<ipnet::IpNet>().ok())
                .map(|n| n.trunc()),
        );
    }
    facts
}

/// A node's labels.
#[must_use]
pub fn node_labels(node: &Node) -> BTreeMap<String, String> {
    node.labels().clone()
}

/// The addresses of an EndpointSlice's endpoints that are not known to be
/// unready (`conditions.ready` absent counts as ready, as the API says).
#[must_use]
pub fn slice_addresses(slice: &EndpointSlice) -> Vec<IpAddr> {
    slice
        .endpoints
        .iter()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
        .flat_map(|e| e.addresses.iter())
        .filter_map(|a| a.parse().ok())
        .collect()
}

/// A CCNP as the text hostfw parses: the object's JSON without the
/// server's bookkeeping (managedFields, status), pretty-printed so that
/// errors point at a line of `kubectl get ccnp NAME -o json`.
#[must_use]
pub fn ccnp_text(obj: &DynamicObject) -> String {
    let mut meta = serde_json::Map::new();
    meta.insert("name".into(), obj.name_any().into());
    if let Some(rv) = &obj.metadata.resource_version {
        meta.insert("resourceVersion".into(), rv.clone().into());
    }
    let mut doc = serde_json::Map::new();
    doc.insert("apiVersion".into(), "cilium.io/v2".into());
    doc.insert("kind".into(), "CiliumClusterwideNetworkPolicy".into());
    doc.insert("metadata".into(), meta.into());
    if let serde_json::Value::Object(data) = &obj.data {
        for (k, v) in data {
            if k != "status" {
                doc.insert(k.clone(), v.clone());
            }
        }
    }
    serde_json::to_string_pretty(&serde_json::Value::Object(doc)).unwrap_or_default()
}

/// Checks a CCNP: the text for the view, or every error, one per line,
/// as `hostfw check` prints them.
pub fn validate_ccnp(obj: &DynamicObject) -> Result<String, String> {
    let name = obj.name_any();
    let text = ccnp_text(obj);
    match ClusterView::parse_policy(&name, &text) {
        Ok(_) => Ok(text),
        Err(errors) => Err(errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_facts_take_internal_and_external_ips_and_pod_cidrs() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "labels": {"a": "b"}},
            "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24", "fd00:1::/64"]},
            "status": {"addresses": [
                {"type": "InternalIP", "address": "10.0.0.1"},
                {"type": "ExternalIP", "address": "2001:db8::1"},
                {"type": "Hostname", "address": "n1"},
                {"type": "InternalDNS", "address": "10.9.9.9"}
            ]}
        }))
        .expect("node");
        let f = node_facts(&node);
        let addrs: Vec<String> = f.addresses.iter().map(ToString::to_string).collect();
        assert_eq!(addrs, ["10.0.0.1", "2001:db8::1"]);
        assert_eq!(f.pod_cidrs.len(), 2);
        assert_eq!(node_labels(&node).get("a").map(String::as_str), Some("b"));
    }

    #[test]
    fn unready_endpoints_are_not_api_servers() {
        let s: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "kubernetes", "namespace": "default"},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.0.0.10"]},
                {"addresses": ["10.0.0.11"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.12"], "conditions": {"ready": false}}
            ]
        }))
        .expect("slice");
        let got: Vec<String> = slice_addresses(&s)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["10.0.0.10", "10.0.0.11"]);
    }

    #[test]
    fn a_ccnp_object_validates_or_names_its_errors() {
        let mut obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
            "metadata": {"name": "p", "resourceVersion": "4",
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"nodeSelector": {}, "ingress": [{"fromEntities": ["cluster"]}]},
            "status": {"conditions": []}
        }))
        .expect("object");
        let text = validate_ccnp(&obj).expect("valid");
        assert!(
            !text.contains("managedFields") && !text.contains("status"),
            "{text}"
        );
        obj.data["spec"]["ingress"][0]["fromEntities"] = serde_json::json!(["clustr"]);
        let err = validate_ccnp(&obj).expect_err("invalid entity");
        assert!(
            err.starts_with("ccnp/p:") && err.contains("clustr"),
            "{err}"
        );
    }
}
