//! YAML text → [`Node`] trees, one per document, with positions
//! (saphyr's marked loader: YAML 1.2, so `yes`/`no`/`on` stay strings).

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use super::{
    error::Pos,
    tree::{Entry, Node, Value},
};

/// A YAML syntax error: where and what.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Parses every document of `text`. Empty documents come back as
/// [`Value::Null`].
pub(crate) fn parse(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let docs = MarkedYaml::load_from_str(text).map_err(|e| SyntaxError {
        pos: Pos {
            line: e.marker().line(),
            column: e.marker().col() + 1,
        },
        message: e.info().to_string(),
    })?;
    Ok(docs.iter().map(convert).collect())
}

fn pos_of(y: &MarkedYaml<'_>) -> Option<Pos> {
    let m = y.span.start;
    // A default span (line 0) carries no position.
    (m.line() > 0).then(|| Pos {
        line: m.line(),
        column: m.col() + 1,
    })
}

fn convert(y: &MarkedYaml<'_>) -> Node {
    let pos = pos_of(y);
    let value = match &y.data {
        YamlData::Value(s) => scalar(s),
        YamlData::Representation(s, _, _) => Value::Str(s.to_string()),
        YamlData::Sequence(items) => Value::Seq(items.iter().map(convert).collect()),
        YamlData::Mapping(map) => Value::Map(
            map.iter()
                .map(|(k, v)| Entry {
                    key: key_string(k),
                    key_pos: pos_of(k),
                    value: convert(v),
                })
                .collect(),
        ),
        // Tags (`!!str`, `!custom`) do not change what a field means here.
        YamlData::Tagged(_, inner) => return convert(inner),
        YamlData::Alias(_) => Value::Other("an unresolved alias"),
        YamlData::BadValue => Value::Other("a value that does not match its tag"),
    };
    Node { pos, value }
}

fn scalar(s: &Scalar<'_>) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Int(*i),
        Scalar::FloatingPoint(f) => Value::Float(f.into_inner()),
        Scalar::String(s) => Value::Str(s.to_string()),
    }
}

/// Map keys are field names or label keys: scalars, written as text.
fn key_string(k: &MarkedYaml<'_>) -> String {
    match &k.data {
        YamlData::Value(Scalar::String(s)) | YamlData::Representation(s, _, _) => s.to_string(),
        YamlData::Value(Scalar::Integer(i)) => i.to_string(),
        YamlData::Value(Scalar::Boolean(b)) => b.to_string(),
        YamlData::Value(Scalar::Null) => "null".into(),
        YamlData::Value(Scalar::FloatingPoint(f)) => f.to_string(),
        YamlData::Tagged(_, inner) => key_string(inner),
        _ => "<complex key>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_with_positions() {
        let docs = parse("a: 1\nb:\n  - x\n  - \"22\"\n---\n---\nc: yes\n").expect("valid YAML");
        assert_eq!(docs.len(), 3);
        let a = docs[0].get("a").expect("a");
        assert_eq!(a.key_pos, Some(Pos { line: 1, column: 1 }));
        assert_eq!(a.value.value, Value::Int(1));
        let b = docs[0].get("b").expect("b");
        let Value::Seq(items) = &b.value.value else {
            panic!("b is a list: {b:?}")
        };
        assert_eq!(items[1].value, Value::Str("22".into()));
        assert_eq!(items[1].pos, Some(Pos { line: 4, column: 5 }));
        assert_eq!(docs[1].value, Value::Null);
        // YAML 1.2: `yes` is a string.
        assert_eq!(docs[2].get_str("c"), Some("yes"));
    }

    #[test]
    fn syntax_error_has_a_position() {
        let err = parse("a: 1\nb: [1, 2\n").expect_err("unclosed flow sequence");
        assert!(err.pos.line >= 2, "{err:?}");
        let err = parse("a: 1\na: 2\n").expect_err("duplicate key");
        assert_eq!(err.pos.line, 2, "{err:?}");
    }
}
