//! The envelopes around specs: Kubernetes objects in YAML (single,
//! multi-document, `kind: List`) and `[[policy]]` tables in TOML.

use std::path::Path;

use super::{
    decode::{self, child, index},
    error::{ErrorKind, Errors, PolicyError},
    model::{Format, Policy},
    toml,
    tree::{Entry, Node, Value},
    yaml,
};

const API_VERSION: &str = "cilium.io/v2";
const CCNP: &str = "CiliumClusterwideNetworkPolicy";

const NOT_CCNP: &str = "hostfw reads CiliumClusterwideNetworkPolicy objects with a \
    nodeSelector (alone, several in `---` documents, or in a List)";
const POD_POLICY: &str = "a CiliumNetworkPolicy is namespaced and selects pods; a host \
    policy is a CiliumClusterwideNetworkPolicy with a nodeSelector";

/// The policies of a YAML file; problems go to `out`.
pub(crate) fn from_yaml(text: &str, file: &Path, out: &mut Vec<PolicyError>) -> Vec<Policy> {
    let mut errs = Errors::new(file.to_path_buf(), out);
    let docs = match yaml::parse(text) {
        Ok(docs) => docs,
        Err(e) => {
            errs.push(
                Some(e.pos),
                "",
                ErrorKind::Syntax {
                    format: "YAML",
                    message: e.message,
                },
            );
            return Vec::new();
        }
    };
    let mut policies = Vec::new();
    let many = docs.iter().filter(|d| d.value != Value::Null).count() > 1;
    for (i, doc) in docs.iter().enumerate() {
        if doc.value == Value::Null {
            continue;
        }
        let path = if many {
            format!("document {}", i + 1)
        } else {
            String::new()
        };
        object(&mut errs, doc, &path, &mut policies);
    }
    policies
}

fn object(errs: &mut Errors<'_>, node: &Node, path: &str, out: &mut Vec<Policy>) {
    errs.set_policy(None);
    let Value::Map(entries) = &node.value else {
        errs.push(
            node.pos,
            path,
            ErrorKind::WrongType {
                expected: "a Kubernetes object (a map with apiVersion, kind, metadata and spec)",
                found: node.value.type_name(),
            },
        );
        return;
    };
    let Some(kind) = node.get("kind") else {
        errs.push(
            node.pos,
            path,
            ErrorKind::Missing {
                field: "kind",
                expected: format!("kind: {CCNP} (or List)"),
            },
        );
        return;
    };
    let Value::Str(kind_str) = &kind.value.value else {
        errs.push(
            kind.value.pos,
            &child(path, "kind"),
            ErrorKind::WrongType {
                expected: "a string",
                found: kind.value.value.type_name(),
            },
        );
        return;
    };
    match kind_str.as_str() {
        "List" | "CiliumClusterwideNetworkPolicyList" => {
            check_fields(
                errs,
                entries,
                path,
                &["apiVersion", "kind", "metadata", "items"],
            );
            match node.get("items").map(|e| &e.value) {
                None => {}
                Some(Node {
                    value: Value::Null, ..
                }) => {}
                Some(Node {
                    value: Value::Seq(items),
                    ..
                }) => {
                    for (i, item) in items.iter().enumerate() {
                        object(errs, item, &index(&child(path, "items"), i), out);
                    }
                }
                Some(other) => errs.push(
                    other.pos,
                    &child(path, "items"),
                    ErrorKind::WrongType {
                        expected: "a list of objects",
                        found: other.value.type_name(),
                    },
                ),
            }
        }
        CCNP => {
            if let Some(p) = ccnp(errs, node, entries, path) {
                out.push(p);
            }
        }
        "CiliumNetworkPolicy" | "CiliumNetworkPolicyList" => errs.push(
            kind.value.pos,
            &child(path, "kind"),
            ErrorKind::Kind {
                kind: kind_str.clone(),
                advice: POD_POLICY.into(),
            },
        ),
        _ => errs.push(
            kind.value.pos,
            &child(path, "kind"),
            ErrorKind::Kind {
                kind: kind_str.clone(),
                advice: NOT_CCNP.into(),
            },
        ),
    }
}

fn check_fields(errs: &mut Errors<'_>, entries: &[Entry], path: &str, allowed: &[&str]) {
    for e in entries
        .iter()
        .filter(|e| !allowed.contains(&e.key.as_str()))
    {
        errs.push(e.key_pos, path, ErrorKind::unknown_field(&e.key, allowed));
    }
}

fn ccnp(errs: &mut Errors<'_>, node: &Node, entries: &[Entry], path: &str) -> Option<Policy> {
    let before = errs.count();
    // `metadata` and `status` are free-form and ignored, but for the name.
    let name = match node.get("metadata").map(|e| &e.value) {
        Some(
            m @ Node {
                value: Value::Map(_),
                ..
            },
        ) => match m.get("name").map(|e| &e.value) {
            Some(Node {
                value: Value::Str(n),
                ..
            }) if !n.is_empty() => Some(n.clone()),
            Some(other) => {
                errs.push(
                    other.pos,
                    &child(path, "metadata.name"),
                    ErrorKind::WrongType {
                        expected: "a non-empty string",
                        found: other.value.type_name(),
                    },
                );
                None
            }
            None => {
                errs.push(
                    m.pos,
                    &child(path, "metadata"),
                    ErrorKind::Missing {
                        field: "name",
                        expected: "metadata.name: the policy's name".into(),
                    },
                );
                None
            }
        },
        _ => {
            errs.push(
                node.pos,
                path,
                ErrorKind::Missing {
                    field: "metadata",
                    expected: "metadata with the policy's name".into(),
                },
            );
            None
        }
    };
    errs.set_policy(name.clone());
    // Inside a policy, paths are relative to it (`ingress[0]`, not
    // `items[2].spec.ingress[0]`).
    let top = if name.is_some() { "" } else { path };
    check_fields(
        errs,
        entries,
        top,
        &["apiVersion", "kind", "metadata", "spec", "specs", "status"],
    );
    match node.get("apiVersion") {
        Some(Entry {
            value: Node {
                value: Value::Str(v),
                ..
            },
            ..
        }) if v == API_VERSION => {}
        Some(e) => errs.push(
            e.value.pos,
            &child(top, "apiVersion"),
            ErrorKind::Invalid {
                value: match &e.value.value {
                    Value::Str(s) => s.clone(),
                    other => other.type_name().to_string(),
                },
                expected: format!("apiVersion: {API_VERSION}"),
            },
        ),
        None => errs.push(
            node.pos,
            top,
            ErrorKind::Missing {
                field: "apiVersion",
                expected: format!("apiVersion: {API_VERSION}"),
            },
        ),
    }

    let mut specs = Vec::new();
    let spec = node.get("spec").filter(|e| e.value.value != Value::Null);
    let many = node.get("specs").filter(|e| e.value.value != Value::Null);
    if spec.is_none() && many.is_none() {
        errs.push(
            node.pos,
            top,
            ErrorKind::Missing {
                field: "spec",
                expected: "the policy's rules in spec (or a list in specs)".into(),
            },
        );
    }
    if let Some(e) = spec
        && let Some(s) = decode::spec(errs, &e.value, "", &[])
    {
        specs.push(s);
    }
    if let Some(e) = many {
        match &e.value.value {
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(s) = decode::spec(errs, item, &index("specs", i), &[]) {
                        specs.push(s);
                    }
                }
            }
            other => errs.push(
                e.value.pos,
                "specs",
                ErrorKind::WrongType {
                    expected: "a list of specs",
                    found: other.type_name(),
                },
            ),
        }
    }
    let name = name?;
    (errs.count() == before).then(|| Policy {
        name,
        file: errs.file().to_path_buf(),
        pos: node.pos,
        format: Format::Yaml,
        specs,
    })
}

/// The policies of a TOML file; problems go to `out`.
pub(crate) fn from_toml(text: &str, file: &Path, out: &mut Vec<PolicyError>) -> Vec<Policy> {
    let mut errs = Errors::new(file.to_path_buf(), out);
    let root = match toml::parse(text) {
        Ok(root) => root,
        Err(e) => {
            errs.push(
                e.pos,
                "",
                ErrorKind::Syntax {
                    format: "TOML",
                    message: e.message,
                },
            );
            return Vec::new();
        }
    };
    let Value::Map(entries) = &root.value else {
        return Vec::new();
    };
    for e in entries.iter().filter(|e| e.key != "policy") {
        let hint = if e.key.eq_ignore_ascii_case("policy") || e.key == "policies" {
            "; did you mean `[[policy]]`?".to_string()
        } else {
            String::new()
        };
        errs.push(
            e.key_pos,
            "",
            ErrorKind::UnknownField {
                field: e.key.clone(),
                expected: "`policy` (each policy is a [[policy]] table)".into(),
                hint,
            },
        );
    }
    let Some(list) = root.get("policy") else {
        return Vec::new();
    };
    let Value::Seq(items) = &list.value.value else {
        errs.push(
            list.key_pos,
            "policy",
            ErrorKind::WrongType {
                expected: "an array of tables: write [[policy]], not [policy]",
                found: list.value.value.type_name(),
            },
        );
        return Vec::new();
    };
    let mut policies = Vec::new();
    for (i, item) in items.iter().enumerate() {
        errs.set_policy(None);
        let before = errs.count();
        let name = match item.get("name").map(|e| &e.value) {
            Some(Node {
                value: Value::Str(n),
                ..
            }) if !n.is_empty() => Some(n.clone()),
            Some(other) => {
                errs.push(
                    other.pos,
                    &index("policy", i),
                    ErrorKind::WrongType {
                        expected: "a non-empty string for `name`",
                        found: other.value.type_name(),
                    },
                );
                None
            }
            None => {
                errs.push(
                    item.pos,
                    &index("policy", i),
                    ErrorKind::Missing {
                        field: "name",
                        expected: "name = \"…\": the policy's name".into(),
                    },
                );
                None
            }
        };
        errs.set_policy(name.clone());
        let path = if name.is_some() {
            String::new()
        } else {
            index("policy", i)
        };
        let spec = decode::spec(&mut errs, item, &path, &["name"]);
        if let (Some(name), Some(mut spec), true) = (name, spec, errs.count() == before) {
            // Rule labels are relative to the policy.
            spec.prefix.clear();
            policies.push(Policy {
                name,
                file: file.to_path_buf(),
                pos: item.pos,
                format: Format::Toml,
                specs: vec![spec],
            });
        }
    }
    policies
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn yaml(text: &str) -> (Vec<Policy>, Vec<String>) {
        let mut errs = Vec::new();
        let p = from_yaml(text, &PathBuf::from("p.yaml"), &mut errs);
        (p, errs.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn kinds_other_than_ccnp_are_refused_with_advice() {
        let (p, e) =
            yaml("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x}\n");
        assert!(p.is_empty());
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("p.yaml:2:7: kind: kind \"CiliumNetworkPolicy\""),
            "{e:?}"
        );
        assert!(e[0].contains("namespaced and selects pods"), "{e:?}");
        let (_, e) = yaml("apiVersion: v1\nkind: ConfigMap\n");
        assert!(
            e[0].contains("hostfw reads CiliumClusterwideNetworkPolicy"),
            "{e:?}"
        );
        let (_, e) = yaml("- a\n- b\n");
        assert!(e[0].contains("expected a Kubernetes object"), "{e:?}");
        let (_, e) = yaml("apiVersion: cilium.io/v2\nmetadata: {name: x}\n");
        assert!(e[0].contains("missing field `kind`"), "{e:?}");
    }

    #[test]
    fn api_version_and_name_are_required() {
        let (_, e) = yaml(
            "apiVersion: cilium.io/v1\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: x}\n\
             spec: {nodeSelector: {}, ingress: [{}]}\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("policy x, apiVersion: invalid value \"cilium.io/v1\": expected apiVersion: cilium.io/v2"), "{e:?}");
        let (_, e) = yaml(
            "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {}\n\
             spec: {nodeSelector: {}, ingress: [{}]}\n",
        );
        assert!(e[0].contains("missing field `name`"), "{e:?}");
    }

    /// The first error of a TOML text.
    fn toml_error(text: &str) -> String {
        let mut errs = Vec::new();
        from_toml(text, &PathBuf::from("p.toml"), &mut errs);
        errs.first().map(ToString::to_string).unwrap_or_default()
    }

    #[test]
    fn toml_needs_arrays_of_tables_and_names() {
        let mut errs = Vec::new();
        let p = from_toml(
            "[policy]\nname = \"a\"\n",
            &PathBuf::from("p.toml"),
            &mut errs,
        );
        assert!(p.is_empty(), "nothing parsed from a bad file");
        let e = toml_error("[policy]\nname = \"a\"\n");
        assert!(e.contains("write [[policy]], not [policy]"), "{e}");
        let e = toml_error("[[policy]]\nnodeSelector = {}\n[[policy.ingress]]\n");
        assert!(
            e.contains("p.toml:1:1: policy[0]: missing field `name`"),
            "{e}"
        );
        let e = toml_error("[[policies]]\nname = \"a\"\n");
        assert!(e.contains("did you mean `[[policy]]`"), "{e}");
    }
}
