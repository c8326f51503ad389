//! YAML text → [`Node`] trees, one per document, with positions
//! (saphyr's marked loader: YAML 1.2, so `yes`/`no`/`on` stay strings).
//!
//! Nesting is limited to [`MAX_DEPTH`] lists and maps, aliases expanded:
//! loading recurses once per level, and a file of a few kilobytes of
//! `- - - …` would otherwise overflow the stack and abort the process.

use std::collections::BTreeMap;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use saphyr_parser::{Event, Marker, Parser, ScanError};

use super::{
    error::Pos,
    tree::{Entry, Node, Value},
};

/// The deepest nesting of lists and maps accepted. A policy needs about a
/// dozen levels (a `List` of objects with their `managedFields`).
pub(crate) const MAX_DEPTH: usize = 64;

/// A YAML syntax error: where and what.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

impl From<&ScanError> for SyntaxError {
    fn from(e: &ScanError) -> Self {
        Self {
            pos: marker_pos(e.marker()),
            message: e.info().to_string(),
        }
    }
}

fn marker_pos(m: &Marker) -> Pos {
    Pos {
        line: m.line(),
        column: m.col() + 1,
    }
}

/// Parses every document of `text`. Empty documents come back as
/// [`Value::Null`].
pub(crate) fn parse(text: &str) -> Result<Vec<Node>, SyntaxError> {
    check_depth(text)?;
    let docs = MarkedYaml::load_from_str(text).map_err(|e| SyntaxError::from(&e))?;
    Ok(docs.iter().map(convert).collect())
}

/// Refuses nesting deeper than [`MAX_DEPTH`], reading the parser's events
/// in a loop (saphyr's loader recurses once per level; so do the loader's
/// copies of aliased nodes, [`convert`] and dropping the trees). An alias
/// counts at the depth of the copy the loader makes. Syntax errors come
/// out as the loader would report them.
fn check_depth(text: &str) -> Result<(), SyntaxError> {
    // The lists and maps being read: anchor id (0 = none), height of the
    // tallest child so far.
    let mut open: Vec<(usize, usize)> = Vec::new();
    // Anchor id -> height of its node (a scalar 0, a list of scalars 1).
    let mut heights: BTreeMap<usize, usize> = BTreeMap::new();
    for event in Parser::new_from_str(text) {
        let (ev, span) = event.map_err(|e| SyntaxError::from(&e))?;
        // The height of a node this event completes.
        let done = match ev {
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                open.push((anchor, 0));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => open.pop().map(|(anchor, tallest)| {
                if anchor != 0 {
                    heights.insert(anchor, tallest + 1);
                }
                tallest + 1
            }),
            Event::Scalar(_, _, anchor, _) => {
                if anchor != 0 {
                    heights.insert(anchor, 0);
                }
                Some(0)
            }
            Event::Alias(id) => Some(heights.get(&id).copied().unwrap_or(0)),
            _ => None,
        };
        if let Some(height) = done
            && let Some(parent) = open.last_mut()
        {
            parent.1 = parent.1.max(height);
        }
        if open.len() + done.unwrap_or(0) > MAX_DEPTH {
            return Err(SyntaxError {
                pos: marker_pos(&span.start),
                message: format!(
                    "lists and maps nested more than {MAX_DEPTH} levels deep (counting the \
                     copies that aliases make); a policy needs about a dozen"
                ),
            });
        }
    }
    Ok(())
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

    /// Regression (found by tests/fuzz_smoke.rs): 1,000 nested block
    /// lists overflowed a 2 MiB thread stack, aborting the process.
    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let too_deep = |text: &str| {
            let err = parse(text).expect_err("too deep");
            assert!(err.message.contains("more than 64 levels"), "{err:?}");
            err
        };
        let err = too_deep(&"- ".repeat(100_000));
        assert_eq!(
            err.pos,
            Pos {
                line: 1,
                column: 129
            },
            "the 65th list"
        );
        let mut indented = String::new();
        for i in 0..2_000 {
            indented.push_str(&" ".repeat(i));
            indented.push_str("a:\n");
        }
        too_deep(&indented);
        too_deep(&format!("{}{}", "[".repeat(200), "]".repeat(200)));
        too_deep(&format!("{}x{}", "{a: ".repeat(100), "}".repeat(100)));
        // As deep as allowed.
        let docs = parse(&format!("{}x", "- ".repeat(MAX_DEPTH))).expect("64 levels");
        assert_eq!(docs.len(), 1);
    }

    #[test]
    fn aliases_count_at_their_expanded_depth() {
        // Each anchor nests the previous one a level deeper: 70 levels
        // once expanded, though no line is more than 2 deep.
        let mut text = "a0: &a0 [x]\n".to_string();
        for i in 1..70 {
            text.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
        }
        let err = parse(&text).expect_err("too deep once expanded");
        assert!(err.message.contains("aliases"), "{err:?}");
        assert_eq!(err.pos.line, 64, "{err:?}");
        parse("a: &a [[x]]\nb: [*a, *a]\nc: &c x\nd: *c\n").expect("shallow aliases");
    }
}
