//! A plain tree of values with their positions: what YAML and TOML files
//! are both turned into, so that one strict decoder reads both formats.

use super::error::Pos;

/// A value and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    /// Where the value starts, when the format tells.
    pub pos: Option<Pos>,
    /// The value.
    pub value: Value,
}

/// A value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in the order written.
    Map(Vec<Entry>),
    /// Something no field takes (a TOML date, a YAML alias, …), named.
    Other(&'static str),
}

/// One key of a map.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_pos: Option<Pos>,
    pub value: Node,
}

impl Value {
    /// What the value is, for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "a boolean",
            Self::Int(_) => "an integer",
            Self::Float(_) => "a float",
            Self::Str(_) => "a string",
            Self::Seq(_) => "a list",
            Self::Map(_) => "a map",
            Self::Other(what) => what,
        }
    }
}

impl Node {
    /// The entry `key` of a map node.
    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    /// The string value of the entry `key` of a map node, if it is one.
    #[cfg(test)]
    pub(crate) fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key).map(|e| &e.value.value) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
}

/// Turns byte offsets of a text into line and column (in characters).
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset of the start of each line.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    /// The position of byte `offset`.
    pub(crate) fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Pos { line, column }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_counts_lines_and_characters() {
        let idx = LineIndex::new("ab\nçd\n\nx");
        assert_eq!(idx.pos(0), Pos { line: 1, column: 1 });
        assert_eq!(idx.pos(1), Pos { line: 1, column: 2 });
        assert_eq!(idx.pos(3), Pos { line: 2, column: 1 });
        // 'ç' is two bytes: 'd' is the second character.
        assert_eq!(idx.pos(5), Pos { line: 2, column: 2 });
        assert_eq!(idx.pos(7), Pos { line: 3, column: 1 });
        assert_eq!(idx.pos(8), Pos { line: 4, column: 1 });
        assert_eq!(idx.pos(100), Pos { line: 4, column: 2 });
    }
}
