//! `nodeSelector` against this node's labels, with Kubernetes label
//! selector semantics (`NotIn` also matches an absent key).

use std::collections::BTreeMap;

use super::model::{Operator, Selector};

/// Whether `sel` selects a node with `labels`.
#[must_use]
pub fn matches(sel: &Selector, labels: &BTreeMap<String, String>) -> bool {
    mismatch(sel, labels).is_none()
}

/// Why `sel` does not select a node with `labels`, or `None` when it does.
#[must_use]
pub fn mismatch(sel: &Selector, labels: &BTreeMap<String, String>) -> Option<String> {
    for (key, want) in &sel.match_labels {
        match labels.get(key) {
            Some(have) if have == want => {}
            Some(have) => {
                return Some(format!(
                    "matchLabels {key}={want:?}: the node has {key}={have:?}"
                ));
            }
            None => {
                return Some(format!(
                    "matchLabels {key}={want:?}: the node has no label {key}"
                ));
            }
        }
    }
    for r in &sel.match_expressions {
        let have = labels.get(&r.key);
        let ok = match r.operator {
            Operator::In => have.is_some_and(|v| r.values.contains(v)),
            Operator::NotIn => have.is_none_or(|v| !r.values.contains(v)),
            Operator::Exists => have.is_some(),
            Operator::DoesNotExist => have.is_none(),
        };
        if !ok {
            let node = match have {
                Some(v) => format!("the node has {}={v:?}", r.key),
                None => format!("the node has no label {}", r.key),
            };
            let op = match r.operator {
                Operator::In => format!("{} In {:?}", r.key, r.values),
                Operator::NotIn => format!("{} NotIn {:?}", r.key, r.values),
                Operator::Exists => format!("{} Exists", r.key),
                Operator::DoesNotExist => format!("{} DoesNotExist", r.key),
            };
            return Some(format!("matchExpressions {op}: {node}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::Requirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn req(key: &str, operator: Operator, values: &[&str]) -> Requirement {
        Requirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| (*v).to_string()).collect(),
        }
    }

    #[test]
    fn empty_selector_selects_every_node() {
        assert!(matches(&Selector::default(), &labels(&[])));
        assert!(matches(&Selector::default(), &labels(&[("a", "b")])));
    }

    #[test]
    fn match_labels_needs_every_pair() {
        let sel = Selector {
            match_labels: labels(&[("node-role.kubernetes.io/control-plane", ""), ("zone", "a")]),
            match_expressions: vec![],
        };
        let node = labels(&[
            ("node-role.kubernetes.io/control-plane", ""),
            ("zone", "a"),
            ("x", "y"),
        ]);
        assert!(matches(&sel, &node));
        let node = labels(&[("node-role.kubernetes.io/control-plane", ""), ("zone", "b")]);
        let why = mismatch(&sel, &node).expect("zone differs");
        assert!(why.contains("zone=\"b\""), "{why}");
        let why = mismatch(&sel, &labels(&[])).expect("no labels");
        assert!(
            why.contains("has no label node-role.kubernetes.io/control-plane"),
            "{why}"
        );
    }

    #[test]
    fn expressions_follow_kubernetes() {
        let sel = |r| Selector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![r],
        };
        let node = labels(&[("tier", "db"), ("kubernetes.io/os", "linux")]);
        assert!(matches(
            &sel(req("tier", Operator::In, &["db", "web"])),
            &node
        ));
        assert!(!matches(&sel(req("tier", Operator::In, &["web"])), &node));
        assert!(!matches(&sel(req("zone", Operator::In, &["a"])), &node));
        assert!(matches(&sel(req("tier", Operator::NotIn, &["web"])), &node));
        assert!(!matches(&sel(req("tier", Operator::NotIn, &["db"])), &node));
        // NotIn matches a node without the key.
        assert!(matches(&sel(req("zone", Operator::NotIn, &["a"])), &node));
        assert!(matches(&sel(req("tier", Operator::Exists, &[])), &node));
        assert!(!matches(&sel(req("zone", Operator::Exists, &[])), &node));
        assert!(matches(
            &sel(req("zone", Operator::DoesNotExist, &[])),
            &node
        ));
        assert!(!matches(
            &sel(req("tier", Operator::DoesNotExist, &[])),
            &node
        ));
        // hostfw matches kubernetes.io/* labels (a documented difference).
        assert!(matches(
            &sel(req("kubernetes.io/os", Operator::In, &["linux"])),
            &node
        ));
    }
}
