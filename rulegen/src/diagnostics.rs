//! The diagnostics rulegen reports: a position, a field path and a message
//! with the likely fix (did-you-mean), collected so that every problem is
//! reported at once. Kept apart from the YAML tree so it can be shared with
//! the exporter's config errors.

/// A 1-based line and column in the source file (0:0 when unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

/// One problem: where, which field, what and (in the message) the likely fix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// Position in the file (0:0 when unknown).
    pub pos: Pos,
    /// Field path such as `alerts[3].threshold.above` (empty for the whole file).
    pub path: String,
    /// What is wrong, and the fix when one is likely.
    pub message: String,
}

impl Diagnostic {
    /// Renders as `file:line:column: path: message`.
    pub fn render(&self, file: &str) -> String {
        let location = if self.pos.line > 0 {
            format!("{file}:{}:{}", self.pos.line, self.pos.column)
        } else {
            file.to_owned()
        };
        if self.path.is_empty() {
            format!("{location}: {}", self.message)
        } else {
            format!("{location}: {}: {}", self.path, self.message)
        }
    }
}

/// The closest candidate to a misspelt `word`, if any is close enough.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, candidate)| {
            *distance > 0
                && (*distance <= 2.max(candidate.len() / 4)
                    || (word.len() >= 3 && candidate.starts_with(word)))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)))
        .map(|(_, candidate)| candidate)
}

/// `; did you mean `x`?` or nothing.
pub fn hint<'a, I>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    did_you_mean(word, candidates).map(|best| format!("; did you mean `{best}`?")).unwrap_or_default()
}

/// Collects diagnostics while a tree is decoded.
#[derive(Debug, Default)]
pub struct Problems {
    /// Everything found so far.
    pub list: Vec<Diagnostic>,
}

impl Problems {
    /// Records a problem.
    pub fn at(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.list.push(Diagnostic { pos, path: path.to_owned(), message: message.into() });
    }
}

/// serde-saphyr writes the position into its message; we print our own.
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
    fn did_you_mean_picks_close_names_only() {
        assert_eq!(
            did_you_mean(
                "node_memroy_MemAvailable_bytes",
                ["node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes"]
            ),
            Some("node_memory_MemAvailable_bytes")
        );
        assert_eq!(did_you_mean("xyz", ["enabled"]), None);
    }
}
