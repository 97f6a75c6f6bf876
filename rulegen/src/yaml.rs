//! The YAML source tree with a position on every node, and the decoding
//! helpers `spec` uses to collect every problem against it.
//!
//! serde stops at the first error, but the issue asks for every problem at
//! once; so the file is read into this tree (serde-saphyr does the YAML and
//! the positions) and `spec` decodes the tree by hand, collecting problems.

use crate::diagnostics::{Diagnostic, Pos, Problems, did_you_mean, strip_position};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

fn pos_of(location: &serde_saphyr::Location) -> Pos {
    Pos { line: location.line(), column: location.column() }
}

/// A YAML value.
#[derive(Debug, Clone)]
pub enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number with a fraction or exponent.
    Float(f64),
    /// A string (plain or quoted).
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order.
    Map(Vec<(Key, Node)>),
}

/// A value with its position.
#[derive(Debug, Clone)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it starts.
    pub pos: Pos,
    /// Characters the scalar spans in the file (for locating text inside it).
    pub span_len: usize,
}

/// A mapping key with its position.
#[derive(Debug, Clone)]
pub struct Key {
    /// The key text.
    pub name: String,
    /// Where it starts.
    pub pos: Pos,
}

impl Value {
    /// What the value is, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Parses YAML text into a tree, or returns the parser's error as a diagnostic.
pub fn parse(text: &str) -> Result<Node, Diagnostic> {
    if text.trim().is_empty() {
        return Ok(Node { value: Value::Null, pos: Pos { line: 1, column: 1 }, span_len: 0 });
    }
    match serde_saphyr::from_str::<Spanned<Raw>>(text) {
        Ok(root) => Ok(root.into_node()),
        Err(error) => {
            let pos = error.location().map(|l| pos_of(&l)).unwrap_or_default();
            Err(Diagnostic::new(pos, "", strip_position(&error.without_snippet().to_string())))
        }
    }
}

/// The tree as serde sees it; `Spanned` supplies positions.
enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<String>, Spanned<Raw>)>),
}

trait IntoNode {
    fn into_node(self) -> Node;
}

impl IntoNode for Spanned<Raw> {
    fn into_node(self) -> Node {
        let pos = pos_of(&self.referenced);
        let span_len = self.referenced.span().len() as usize;
        let value = match self.value {
            Raw::Null => Value::Null,
            Raw::Bool(b) => Value::Bool(b),
            Raw::Int(i) => Value::Int(i),
            Raw::Float(f) => Value::Float(f),
            Raw::Str(s) => Value::Str(s),
            Raw::Seq(items) => Value::Seq(items.into_iter().map(IntoNode::into_node).collect()),
            Raw::Map(entries) => Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (Key { name: k.value, pos: pos_of(&k.referenced) }, v.into_node()))
                    .collect(),
            ),
        };
        Node { value, pos, span_len }
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = Raw;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_none<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Raw, D::Error> {
                Raw::deserialize(deserializer)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
                Ok(Raw::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
                Ok(Raw::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
                Ok(i64::try_from(v).map_or(Raw::Float(v as f64), Raw::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
                Ok(Raw::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
                Ok(Raw::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Raw, E> {
                Ok(Raw::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Raw::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(Raw::Map(entries))
            }
        }
        deserializer.deserialize_any(RawVisitor)
    }
}

/// A mapping being decoded: checks its keys against the allowed ones.
#[derive(Debug)]
pub struct Fields<'a> {
    /// Field path of the mapping.
    pub path: String,
    /// Position of the mapping.
    pub pos: Pos,
    entries: &'a [(Key, Node)],
}

impl<'a> Fields<'a> {
    /// Opens `node` as a mapping with keys from `allowed`; reports a wrong type
    /// or unknown keys (with a did-you-mean). `None` when it is not a mapping.
    pub fn open(p: &mut Problems, node: &'a Node, path: &str, allowed: &[&str]) -> Option<Fields<'a>> {
        let Value::Map(entries) = &node.value else {
            p.at(node.pos, path, format!("expected a mapping, found {}", node.value.kind()));
            return None;
        };
        for (key, _) in entries {
            if !allowed.contains(&key.name.as_str()) {
                let field = join(path, &key.name);
                let message = match did_you_mean(&key.name, allowed.iter().copied()) {
                    Some(best) => format!("unknown field `{}`; did you mean `{best}`?", key.name),
                    None => format!("unknown field `{}`, expected one of {}", key.name, allowed.join(", ")),
                };
                p.at(key.pos, &field, message);
            }
        }
        Some(Fields { path: path.to_owned(), pos: node.pos, entries })
    }

    /// The value under `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
    }

    /// The value under `key`; reports it missing.
    pub fn req(&self, p: &mut Problems, key: &str) -> Option<&'a Node> {
        let found = self.get(key);
        if found.is_none() {
            p.at(self.pos, &self.path, format!("missing field `{key}`"));
        }
        found
    }

    /// The field path of `key` inside this mapping.
    pub fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> &'a [(Key, Node)] {
        self.entries
    }
}

/// `a.b`, or `b` at the top.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

/// A string scalar; numbers and booleans are refused (quote them).
pub fn string(p: &mut Problems, node: &Node, path: &str) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        other => {
            p.at(node.pos, path, format!("expected a string, found {}", other.kind()));
            None
        }
    }
}

/// A number scalar.
pub fn number(p: &mut Problems, node: &Node, path: &str) -> Option<f64> {
    match &node.value {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) if f.is_finite() => Some(*f),
        Value::Str(s) if s.trim_end().ends_with('%') => {
            let hint = s.trim_end().trim_end_matches('%').trim().parse::<f64>().ok().map(|v| v / 100.0);
            let fix = hint
                .map(|v| format!("; write {} with unit ratio", crate::format::fmt_num(v)))
                .unwrap_or_default();
            p.at(node.pos, path, format!("expected a number, found the string {s:?}{fix}"));
            None
        }
        other => {
            p.at(node.pos, path, format!("expected a number, found {}", other.kind()));
            None
        }
    }
}

/// A boolean scalar.
pub fn boolean(p: &mut Problems, node: &Node, path: &str) -> Option<bool> {
    match &node.value {
        Value::Bool(b) => Some(*b),
        other => {
            p.at(node.pos, path, format!("expected true or false, found {}", other.kind()));
            None
        }
    }
}

/// A list; each item is handed to `item` with its path.
pub fn list<'a, T>(
    p: &mut Problems,
    node: &'a Node,
    path: &str,
    mut item: impl FnMut(&mut Problems, &'a Node, &str) -> Option<T>,
) -> Vec<T> {
    match &node.value {
        Value::Seq(items) => {
            items.iter().enumerate().filter_map(|(i, node)| item(p, node, &format!("{path}[{i}]"))).collect()
        }
        other => {
            p.at(node.pos, path, format!("expected a list, found {}", other.kind()));
            Vec::new()
        }
    }
}

/// A list of strings.
pub fn strings(p: &mut Problems, node: &Node, path: &str) -> Vec<String> {
    list(p, node, path, string)
}

/// Column of `needle` inside a single-line scalar at `node`, for pointing at
/// a metric name inside an expression; the scalar's own position otherwise.
pub fn pos_within(node: &Node, text: &str, needle: &str) -> Pos {
    let chars = text.chars().count();
    let Some(byte) = text.find(needle) else { return node.pos };
    if text.contains('\n') {
        return node.pos;
    }
    // Quoted scalars span two more characters than their text.
    let quote = match node.span_len {
        n if n == chars => 0,
        n if n == chars + 2 => 1,
        _ => return node.pos,
    };
    let offset = text[..byte].chars().count() as u64;
    Pos { line: node.pos.line, column: node.pos.column + quote + offset }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_keeps_positions_and_types() {
        let node = parse("a: 1\nb: [x, 2.5, '5m']\n").expect("parses");
        let Value::Map(entries) = &node.value else { panic!("map") };
        assert_eq!(entries[0].0.name, "a");
        assert_eq!(entries[1].1.pos, Pos { line: 2, column: 4 });
        let Value::Seq(items) = &entries[1].1.value else { panic!("seq") };
        assert!(matches!(items[1].value, Value::Float(f) if f == 2.5));
        assert!(matches!(&items[2].value, Value::Str(s) if s == "5m"));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let error = parse("a: [1, 2\nb: c").expect_err("bad yaml");
        assert_eq!(error.position.line, 2);
        assert!(!error.message.contains("line 2"), "{}", error.message);
    }

    #[test]
    fn positions_inside_expressions() {
        let node = parse("signal: 'rate(foo[5m])'\n").expect("parses");
        let Value::Map(entries) = &node.value else { panic!("map") };
        let pos = pos_within(&entries[0].1, "rate(foo[5m])", "foo");
        assert_eq!(pos, Pos { line: 1, column: 15 });
    }
}
