//! TOML text → a [`Node`] tree with positions (the `toml` crate's spanned
//! document parser).

use ::toml::{
    Spanned,
    de::{DeTable, DeValue},
};

use super::{
    error::Pos,
    tree::{Entry, LineIndex, Node, Value},
};

/// A TOML syntax error: where (when known) and what.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub pos: Option<Pos>,
    pub message: String,
}

/// Parses a TOML document into a map node.
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    let index = LineIndex::new(text);
    let table = DeTable::parse(text).map_err(|e| SyntaxError {
        pos: e.span().map(|s| index.pos(s.start)),
        message: e.message().trim().to_string(),
    })?;
    Ok(Node {
        pos: Some(Pos { line: 1, column: 1 }),
        value: table_value(table.get_ref(), &index),
    })
}

fn table_value(table: &DeTable<'_>, index: &LineIndex<'_>) -> Value {
    let mut entries: Vec<(usize, Entry)> = table
        .iter()
        .map(|(k, v)| {
            (
                k.span().start,
                Entry {
                    key: k.get_ref().to_string(),
                    key_pos: Some(index.pos(k.span().start)),
                    value: convert(v, index),
                },
            )
        })
        .collect();
    // The parser keeps keys sorted by name; report in the order written.
    entries.sort_by_key(|(start, _)| *start);
    Value::Map(entries.into_iter().map(|(_, e)| e).collect())
}

fn convert(v: &Spanned<DeValue<'_>>, index: &LineIndex<'_>) -> Node {
    let value = match v.get_ref() {
        DeValue::String(s) => Value::Str(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map_or(Value::Other("an integer out of range"), Value::Int),
        DeValue::Float(f) => f
            .as_str()
            .parse::<f64>()
            .map_or(Value::Other("a float"), Value::Float),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(_) => Value::Other("a date-time"),
        DeValue::Array(items) => Value::Seq(items.iter().map(|i| convert(i, index)).collect()),
        DeValue::Table(t) => table_value(t, index),
    };
    Node {
        pos: Some(index.pos(v.span().start)),
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_arrays_and_positions() {
        let node = parse(
            "[[policy]]\nname = \"a\"\nnodeSelector.matchLabels = { \"k\" = \"\" }\n\
             [[policy.ingress]]\nfromCIDR = [\"10.0.0.0/8\"]\n",
        )
        .expect("valid TOML");
        let Some(Entry {
            value:
                Node {
                    value: Value::Seq(policies),
                    ..
                },
            ..
        }) = node.get("policy")
        else {
            panic!("policy is an array: {node:?}")
        };
        let p = &policies[0];
        assert_eq!(p.get_str("name"), Some("a"));
        let name = p.get("name").expect("name");
        assert_eq!(name.key_pos, Some(Pos { line: 2, column: 1 }));
        let ingress = p.get("ingress").expect("ingress");
        let Value::Seq(rules) = &ingress.value.value else {
            panic!("ingress is an array")
        };
        let cidr = rules[0].get("fromCIDR").expect("fromCIDR");
        assert_eq!(cidr.key_pos, Some(Pos { line: 5, column: 1 }));
        // Keys come in the order written, not sorted.
        let Value::Map(entries) = &p.value else {
            panic!("map")
        };
        let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["name", "nodeSelector", "ingress"]);
    }

    #[test]
    fn syntax_error_has_a_position() {
        let err = parse("[[policy]]\nname = \n").expect_err("missing value");
        assert_eq!(err.pos.map(|p| p.line), Some(2), "{err:?}");
    }
}
