//! Configuration problems as opsmon's tools report them: where (line and
//! column), which field, what is wrong and the likely fix, rendered as
//! `file:line:column: field: message`. Shared by the exporter's config and
//! rulegen's spec, so both speak the same way.
//!
//! I/O-free and parser-free: a caller turns its parser's positions into a
//! [`Position`], collects [`Problem`]s and renders them with the file name
//! it read. Rendering is bounded and never shows a secret from the file:
//! see [`redact`].

pub mod redact;

use std::fmt;

/// A 1-based line and column in a source file; `0:0` when unknown (a value
/// from the environment, or a problem about the whole file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

impl Position {
    /// No position: the problem is rendered against the file alone.
    pub const UNKNOWN: Position = Position { line: 0, column: 0 };

    /// Line `line`, column `column` (both from 1).
    pub const fn new(line: u64, column: u64) -> Self {
        Self { line, column }
    }

    /// Whether the position points into the file.
    pub const fn is_known(&self) -> bool {
        self.line > 0
    }
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// Where in the file.
    pub position: Position,
    /// Field path such as `collectors.postgres.targets[0].dsn` or
    /// `alerts[3].threshold.above`; empty for the whole file.
    pub field: String,
    /// What is wrong and, when one is likely, the fix.
    pub message: String,
    /// Source lines shown under the message (a parser's excerpt), if any.
    pub snippet: Option<String>,
}

impl Problem {
    /// A problem with `field` at `position`.
    pub fn new(position: Position, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { position, field: field.into(), message: message.into(), snippet: None }
    }

    /// A problem about the whole file (no position, no field).
    pub fn whole_file(message: impl Into<String>) -> Self {
        Self::new(Position::UNKNOWN, "", message)
    }

    /// The same problem with `; did you mean `x`?` appended to its message
    /// when one of `candidates` is close to the misspelt `word`.
    pub fn suggesting<'a>(mut self, word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        self.message.push_str(&hint(word, candidates));
        self
    }

    /// The same problem with source lines shown under it, secret values
    /// hidden and lines cut short ([`redact::redact_snippet`]).
    pub fn with_snippet(mut self, snippet: impl AsRef<str>) -> Self {
        self.snippet = Some(redact::redact_snippet(snippet.as_ref(), None));
        self
    }

    /// [`Problem::with_snippet`] for a snippet of `source`, the whole file:
    /// a quoted line inside a block of secrets is hidden even when the
    /// block's first line is not quoted.
    pub fn with_snippet_of(mut self, snippet: impl AsRef<str>, source: &str) -> Self {
        self.snippet = Some(redact::redact_snippet(snippet.as_ref(), Some(source)));
        self
    }

    /// Renders as `file:line:column: field: message` (position and field
    /// left out when unknown), the snippet on the lines after.
    pub fn render(&self, file: &str) -> String {
        Rendered { file, problem: self }.to_string()
    }
}

/// Every problem, one after the other, as [`Problem::render`] writes them;
/// past [`redact::MAX_PROBLEMS`] only their number.
pub fn render(file: &str, problems: &[Problem]) -> String {
    let mut lines: Vec<String> = problems.iter().take(redact::MAX_PROBLEMS).map(|p| p.render(file)).collect();
    if problems.len() > redact::MAX_PROBLEMS {
        lines.push(format!(
            "{file}: … and {} more problems; fix the ones above first",
            problems.len() - redact::MAX_PROBLEMS
        ));
    }
    lines.join("\n")
}

struct Rendered<'a> {
    file: &'a str,
    problem: &'a Problem,
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Problem { position, field, message, snippet } = self.problem;
        write!(f, "{}", redact::clip(self.file, redact::MAX_LINE_CHARS))?;
        if position.is_known() {
            write!(f, ":{}:{}", position.line, position.column)?;
        }
        if !field.is_empty() {
            write!(f, ": {}", redact::message(field))?;
        }
        write!(f, ": {}", redact::message(message))?;
        if let Some(snippet) = snippet {
            // Already redacted by `with_snippet`; bounded again for a snippet set directly.
            let lines = snippet.lines().take(redact::MAX_SNIPPET_LINES + 1);
            for line in lines {
                write!(f, "\n{}", redact::clip(line, redact::MAX_LINE_CHARS))?;
            }
        }
        Ok(())
    }
}

/// The longest word (or candidate) [`did_you_mean`] compares, in bytes.
const MAX_TYPO_LEN: usize = 256;

/// The closest candidate to a misspelt `word`, if any is close enough: at
/// most two edits (a quarter of the candidate's length for long names), or
/// a candidate that `word` (three characters or more) begins. Ties go to the
/// alphabetically first candidate, so the hint never depends on order.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    // The edit distance costs time and memory in the product of the lengths:
    // a 10 MB key is no typo of anything.
    if word.len() > MAX_TYPO_LEN {
        return None;
    }
    candidates
        .into_iter()
        .filter(|c| c.len() <= MAX_TYPO_LEN)
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, candidate)| {
            *distance > 0
                && (*distance <= 2.max(candidate.len() / 4)
                    || (word.len() >= 3 && candidate.starts_with(word)))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)))
        .map(|(_, candidate)| candidate)
}

/// `; did you mean `x`?` for the closest candidate, or nothing.
pub fn hint<'a, I>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    did_you_mean(word, candidates).map(|best| format!("; did you mean `{best}`?")).unwrap_or_default()
}

/// A YAML parser's message without the position it wrote into it
/// (serde-saphyr: "error: line L column C: …" or "… at line L, column C"),
/// since [`Problem::render`] prints its own `file:line:column`.
pub fn strip_position(message: &str) -> String {
    let mut message = message.trim();
    if let Some((_, rest)) = message.strip_prefix("error: line ").and_then(|r| r.split_once(": ")) {
        message = rest;
    }
    if let Some(at) = message.rfind(" at line ")
        && message[at..].contains(", column ")
    {
        message = &message[..at];
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_position_field_and_message() {
        let problem = Problem::new(Position::new(3, 5), "collectors.host", "unknown field `enabeld`");
        assert_eq!(
            problem.render("/etc/opsmon.yml"),
            "/etc/opsmon.yml:3:5: collectors.host: unknown field `enabeld`"
        );
        let problem = Problem::new(Position::UNKNOWN, "", "cannot read config file: denied");
        assert_eq!(problem.render("a.yml"), "a.yml: cannot read config file: denied");
        let with_snippet = Problem::new(Position::new(1, 1), "", "bad").with_snippet(" --> a.yml:1:1");
        assert_eq!(
            render("a.yml", &[with_snippet.clone(), with_snippet]),
            "a.yml:1:1: bad\n --> a.yml:1:1\na.yml:1:1: bad\n --> a.yml:1:1"
        );
    }

    #[test]
    fn did_you_mean_picks_close_names_only() {
        assert_eq!(did_you_mean("enabeld", ["enabled", "filesystem"]), Some("enabled"));
        assert_eq!(did_you_mean("xyz", ["enabled", "filesystem"]), None);
        assert_eq!(did_you_mean("enabled", ["enabled"]), None, "an exact match is no typo");
        assert_eq!(
            did_you_mean("node_mem", ["node_memory_MemAvailable_bytes"]),
            Some("node_memory_MemAvailable_bytes")
        );
        // rulegen's case: a transposed letter in a long metric name.
        assert_eq!(
            did_you_mean(
                "node_memroy_MemAvailable_bytes",
                ["node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes"]
            ),
            Some("node_memory_MemAvailable_bytes")
        );
        assert_eq!(hint("lisen_ports", ["listen_ports"]), "; did you mean `listen_ports`?");
        assert_eq!(hint("xyz", ["listen_ports"]), "");
        let problem = Problem::new(Position::new(2, 3), "a.module", "unknown module \"htp\"")
            .suggesting("htp", ["http", "cdn"]);
        assert_eq!(problem.message, "unknown module \"htp\"; did you mean `http`?");
    }

    #[test]
    fn strip_position_removes_both_forms() {
        assert_eq!(strip_position("error: line 3 column 5: unknown field `a`"), "unknown field `a`");
        assert_eq!(strip_position("invalid type at line 2, column 7"), "invalid type");
        assert_eq!(strip_position("plain"), "plain");
    }
}
