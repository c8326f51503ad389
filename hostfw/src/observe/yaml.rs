//! Bits of YAML for the suggested policy.

/// `s` as a double-quoted YAML scalar (JSON string syntax, which YAML
/// reads the same).
pub(super) fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{}\"", s.escape_default()))
}

/// `text` as `# ` comment lines, indented by `indent`, of at most `width`
/// characters (a longer word makes a longer line).
pub(super) fn comment(out: &mut String, indent: &str, text: &str, width: usize) {
    let room = width.saturating_sub(indent.len() + 2);
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > room {
            out.push_str(&format!("{indent}# {line}\n"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!("{indent}# {line}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_wraps() {
        assert_eq!(
            quote("node-role.kubernetes.io/control-plane"),
            "\"node-role.kubernetes.io/control-plane\""
        );
        assert_eq!(quote("a\"b\n"), "\"a\\\"b\\n\"");
        let mut out = String::new();
        comment(&mut out, "  ", "one two three four", 13);
        assert_eq!(out, "  # one two\n  # three\n  # four\n");
    }
}
