//! The config file as a file: reading it, decoding its YAML into the
//! sections' serde types (which reject unknown keys), the value types every
//! section shares ([`ConfigDuration`], [`ConfigRegex`], [`secret`]s), and
//! errors that name the file, line, column, field, the expected form and —
//! for misspelt keys — the likely fix.
//!
//! It knows no section: each collector owns its own (types, defaults,
//! checks) next to its code, and `settings` puts them together.

pub mod secret;
mod value;

use std::fmt;
use std::path::{Path, PathBuf};

use opsmon_diagnostics::redact;
pub use opsmon_diagnostics::{Position, Problem};
use serde::de::DeserializeOwned;
pub use value::{ConfigDuration, ConfigRegex, ValueError};

/// Where a YAML node was written, as a diagnostics position.
pub fn position(location: &serde_saphyr::Location) -> Position {
    Position::new(location.line(), location.column())
}

/// Every problem found in one config file, rendered as
/// `file:line:column: field: message`, one after the other.
#[derive(Debug)]
pub struct ConfigError {
    path: PathBuf,
    problems: Vec<Problem>,
}

impl ConfigError {
    /// The problems found in `path`.
    pub fn new(path: &Path, problems: Vec<Problem>) -> Self {
        Self { path: path.to_owned(), problems }
    }

    /// The problems, in the order found.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&opsmon_diagnostics::render(&self.path.display().to_string(), &self.problems))
    }
}

impl std::error::Error for ConfigError {}

/// Reads `path` and decodes it; an empty file is `T::default()`.
pub fn read<T: DeserializeOwned + Default>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(path, vec![Problem::whole_file(format!("cannot read config file: {e}"))])
    })?;
    decode(path, &text)
}

/// Decodes `text`, naming `path` in errors; an empty text is `T::default()`.
pub fn decode<T: DeserializeOwned + Default>(path: &Path, text: &str) -> Result<T, ConfigError> {
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    serde_saphyr::from_str(text).map_err(|e| ConfigError::new(path, vec![from_yaml_error(path, text, &e)]))
}

/// The parser's error as a problem. The message and the quoted lines are
/// redacted (see `opsmon_diagnostics::redact`): they go to the journal.
fn from_yaml_error(path: &Path, text: &str, error: &serde_saphyr::Error) -> Problem {
    let position = error.location().map_or(Position::UNKNOWN, |l| position(&l));
    let mut message = with_hint(&opsmon_diagnostics::strip_position(&error.without_snippet().to_string()));
    // A message about a value on a secret-bearing line (`Authorization: …`)
    // may quote the value itself.
    let line =
        usize::try_from(position.line).ok().and_then(|n| n.checked_sub(1)).and_then(|n| text.lines().nth(n));
    if let Some(line) = line {
        message = redact::mask_line_values(&message, line);
    }
    let rendered = error.to_string();
    let snippet = rendered
        .split_once('\n')
        .map(|(_, rest)| rest.replace("<input>", &path.display().to_string()))
        .filter(|s| !s.trim().is_empty());
    let problem = Problem::new(position, "", message);
    match snippet {
        Some(snippet) => problem.with_snippet_of(snippet, text),
        None => problem,
    }
}

/// Adds a did-you-mean for unknown keys and the expected form for bad scalars.
fn with_hint(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((unknown, tail)) = rest.split_once('`') {
            let candidates = tail
                .split(|c: char| c == ',' || c.is_whitespace() || c == '`')
                .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| !matches!(*w, "expected" | "one" | "of" | "or"));
            return format!("{message}{}", opsmon_diagnostics::hint(unknown, candidates));
        }
        return message.to_owned();
    }
    let expected = match message {
        m if m.starts_with("invalid boolean") => "expected true or false",
        m if m.starts_with("invalid u16") => "expected a whole number from 0 to 65535",
        m if m.starts_with("invalid u64") => "expected a non-negative whole number",
        m if m.contains("expected mapping") => "expected `key: value` entries indented under this key",
        m if m.contains("expected sequence") => "expected a list (`- item` lines or `[a, b]`)",
        _ => return message.to_owned(),
    };
    format!("{message}; {expected}")
}
