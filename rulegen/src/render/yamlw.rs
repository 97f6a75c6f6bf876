//! A small block-style YAML writer: byte-stable output, strings quoted only
//! when YAML would read them as something else.

/// A YAML value to write.
#[derive(Debug, Clone)]
pub enum Y {
    /// A string.
    Str(String),
    /// A number (written in its shortest round-trip form).
    Num(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `null` (a key given without a value).
    Null,
    /// A list.
    Seq(Vec<Y>),
    /// A mapping, in the given order.
    Map(Vec<(String, Y)>),
}

/// `Y::Str`.
pub fn s(text: impl Into<String>) -> Y {
    Y::Str(text.into())
}

/// A mapping from pairs.
pub fn map<const N: usize>(pairs: [(&str, Y); N]) -> Y {
    Y::Map(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Writes `value` as a document body (no `---`).
pub fn write(value: &Y) -> String {
    let mut out = String::new();
    match value {
        Y::Map(entries) if !entries.is_empty() => write_map(entries, 0, &mut out),
        Y::Seq(items) if !items.is_empty() => write_seq(items, 0, &mut out),
        other => {
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
    out
}

fn inline(value: &Y) -> String {
    match value {
        Y::Str(text) => quote(text),
        Y::Num(v) => num(*v),
        Y::Bool(b) => b.to_string(),
        Y::Null => "null".into(),
        Y::Seq(_) => "[]".into(),
        Y::Map(_) => "{}".into(),
    }
}

fn is_block(value: &Y) -> bool {
    matches!(value, Y::Seq(items) if !items.is_empty())
        || matches!(value, Y::Map(entries) if !entries.is_empty())
}

fn write_map(entries: &[(String, Y)], indent: usize, out: &mut String) {
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 || indent > 0 {
            out.push_str(&" ".repeat(indent));
        }
        write_entry(key, value, indent, out);
    }
}

fn write_entry(key: &str, value: &Y, indent: usize, out: &mut String) {
    out.push_str(&quote(key));
    out.push(':');
    if is_block(value) {
        out.push('\n');
        match value {
            Y::Map(entries) => write_map(entries, indent + 2, out),
            Y::Seq(items) => write_seq(items, indent + 2, out),
            _ => {}
        }
    } else {
        out.push(' ');
        out.push_str(&inline(value));
        out.push('\n');
    }
}

fn write_seq(items: &[Y], indent: usize, out: &mut String) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push_str("- ");
        match item {
            Y::Map(entries) if !entries.is_empty() => {
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&" ".repeat(indent + 2));
                    }
                    write_entry(key, value, indent + 2, out);
                }
            }
            Y::Seq(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(inner, indent + 2, out);
            }
            other => {
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }
}

/// Shortest round-trip form, never in exponent notation.
pub fn num(v: f64) -> String {
    format!("{v}")
}

/// A scalar as YAML text: plain when unambiguous, else single- or double-quoted.
pub fn quote(text: &str) -> String {
    if plain_ok(text) {
        return text.to_owned();
    }
    if !text.chars().any(|c| c.is_control()) {
        return format!("'{}'", text.replace('\'', "''"));
    }
    serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
}

fn plain_ok(text: &str) -> bool {
    let Some(first) = text.chars().next() else { return false };
    let reserved = ["true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"];
    if reserved.contains(&text.to_ascii_lowercase().as_str()) {
        return false;
    }
    if text.parse::<f64>().is_ok()
        || text.starts_with('.')
        || text.starts_with("0x")
        || text.starts_with("0o")
    {
        return false;
    }
    (first.is_ascii_alphanumeric() || first == '/' || first == '_')
        && !text.ends_with(':')
        && !text.ends_with(' ')
        && !text.contains(": ")
        && !text.contains(" #")
        && text.chars().all(|c| c.is_ascii_alphanumeric() || " _./:@+-()".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_nested_blocks() {
        let doc = map([
            (
                "groups",
                Y::Seq(vec![map([
                    ("name", s("a")),
                    ("rules", Y::Seq(vec![map([("expr", s("up{job=\"x\"} < 1")), ("for", s("5m"))])])),
                ])]),
            ),
            ("empty", Y::Seq(vec![])),
            ("port", s("3000")),
        ]);
        assert_eq!(
            write(&doc),
            "groups:\n  - name: a\n    rules:\n      - expr: 'up{job=\"x\"} < 1'\n        for: 5m\nempty: []\nport: '3000'\n"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("true"), "'true'");
        assert_eq!(quote("it's"), "'it''s'");
        assert_eq!(quote("a: b"), "'a: b'");
        assert_eq!(quote("line\nbreak"), "\"line\\nbreak\"");
        assert_eq!(quote("https://x.org/a-b"), "https://x.org/a-b");
    }
}
