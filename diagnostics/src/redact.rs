//! What a rendered problem may show of the file it quotes: config errors go
//! to the journal (`ExecStartPre=… --config.check`, reload logs), so the
//! quoted source lines never show the value of a secret-bearing key (a
//! password, a DSN, an `Authorization` or any other request header, URL
//! credentials), and every quoted line, message and list of problems is cut
//! to a bounded length, whatever the file holds.

use std::borrow::Cow;

/// The longest source or annotation line shown under a problem, in characters.
pub const MAX_LINE_CHARS: usize = 200;
/// The longest message (or field path) shown, in characters.
pub const MAX_MESSAGE_CHARS: usize = 1000;
/// The most lines a snippet keeps.
pub const MAX_SNIPPET_LINES: usize = 16;
/// The most problems one rendering lists; the rest are counted.
pub const MAX_PROBLEMS: usize = 50;

/// Lines and messages are cut to this before they are searched for
/// credentials, then to their shown length.
const PRE_CLIP_CHARS: usize = 4096;

/// What a hidden value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Words that make a key secret-bearing, compared without case, `-` and `_`.
const SECRET_WORDS: [&str; 14] = [
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "auth",
    "dsn",
    "credential",
    "cookie",
    "apikey",
    "accesskey",
    "privatekey",
    "bearer",
    "session",
];

/// `text` cut to `max` characters, with `…` marking the cut.
pub fn clip(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
        None => Cow::Borrowed(text),
    }
}

/// Whether a key's value is a secret: its name holds one of the secret words
/// (`password`, `dsn`, `Authorization`, `X-Api-Key`, `client_secret` …).
pub fn is_secret_key(key: &str) -> bool {
    let normalized: String =
        key.chars().filter(|c| !matches!(c, '-' | '_' | ' ')).flat_map(char::to_lowercase).collect();
    normalized == "key" || SECRET_WORDS.iter().any(|word| normalized.contains(word))
}

/// Whether `key` is spelt like one of opsmon's own keys (`snake_case`). Any
/// other key — a header name (`User-Agent`), a quoted key — names user
/// data, whose value is not shown.
fn is_config_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `text` with the credentials of every URL (`scheme://user:pass@host`) and
/// every `password=…` (a keyword DSN) replaced by [`REDACTED`].
pub fn mask_credentials(text: &str) -> Cow<'_, str> {
    let lower = text.to_ascii_lowercase();
    let has_userinfo = lower.contains("://") && text.contains('@');
    if !has_userinfo && !lower.contains("password=") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let authority_start = at + 3;
        out.push_str(&rest[..authority_start]);
        let tail = &rest[authority_start..];
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '`' | ',' | '}' | ']') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(user_end) => {
                out.push_str(REDACTED);
                out.push_str(&authority[user_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    mask_keyword_passwords(&out).into_owned().into()
}

/// `password=secret` (libpq keyword form) → `password=<redacted>`.
fn mask_keyword_passwords(text: &str) -> Cow<'_, str> {
    const KEY: &str = "password=";
    if !text.to_ascii_lowercase().contains(KEY) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.to_ascii_lowercase().find(KEY) {
        let value_start = at + KEY.len();
        out.push_str(&rest[..value_start]);
        let tail = &rest[value_start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | ',' | '}' | ']'))
            .unwrap_or(tail.len());
        out.push_str(REDACTED);
        rest = &tail[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// A message that may quote a value from the file: credentials masked, cut
/// to [`MAX_MESSAGE_CHARS`].
pub fn message(text: &str) -> String {
    clip(&mask_credentials(&clip(text, PRE_CLIP_CHARS)), MAX_MESSAGE_CHARS).into_owned()
}

/// A parser's `message` about something written on `line`: when the line
/// holds a secret value, every double-quoted string in the message except
/// the line's keys (a header name is no secret) becomes `"<redacted>"`.
pub fn mask_line_values(message: &str, line: &str) -> String {
    if !line_holds_secret(line) {
        return message.to_owned();
    }
    let keys = line_keys(line);
    mask_quoted_except(message, &keys)
}

/// The keys written on a YAML line, flow-mapping keys included, unquoted.
fn line_keys(line: &str) -> Vec<&str> {
    let mut rest = line.trim_start();
    while let Some(item) = rest.strip_prefix("- ") {
        rest = item.trim_start();
    }
    let mut keys = Vec::new();
    if let Some((key, value)) = split_key(rest) {
        keys.push(key.trim().trim_matches(|c| c == '\'' || c == '"'));
        if let Some(inner) = value.trim().strip_prefix('{') {
            for entry in inner.trim_end_matches('}').split(',') {
                if let Some((key, _)) = split_key(entry.trim()) {
                    keys.push(key.trim().trim_matches(|c| c == '\'' || c == '"'));
                }
            }
        }
    }
    keys
}

/// `text` with every double-quoted string replaced by `"<redacted>"`: for a
/// parser's message about a value written on a secret-bearing line.
pub fn mask_quoted(text: &str) -> String {
    mask_quoted_except(text, &[])
}

/// [`mask_quoted`], keeping the quoted strings equal to one of `keep`.
fn mask_quoted_except(text: &str, keep: &[&str]) -> String {
    let mut out = String::with_capacity(text.len().min(4096));
    let mut quoted: Option<String> = None;
    let mut escaped = false;
    for c in text.chars() {
        match &mut quoted {
            Some(content) => match (escaped, c) {
                (false, '"') => {
                    let kept = keep.contains(&content.as_str());
                    out.push_str(if kept { content.as_str() } else { REDACTED });
                    out.push('"');
                    quoted = None;
                }
                (false, '\\') => {
                    escaped = true;
                    content.push(c);
                }
                _ => {
                    escaped = false;
                    content.push(c);
                }
            },
            None => {
                out.push(c);
                if c == '"' {
                    quoted = Some(String::new());
                }
            }
        }
    }
    if quoted.is_some() {
        out.push_str(REDACTED);
    }
    out
}

/// Whether a YAML source line writes a value that [`redact_snippet`] hides.
pub fn line_holds_secret(line: &str) -> bool {
    redact_line(line, false).0 != line
}

/// A parser's snippet (annotate-snippets style: ` --> file:L:C`, `L | source`,
/// `  |   ^ label`) with secret values hidden, every line cut to
/// [`MAX_LINE_CHARS`] and at most [`MAX_SNIPPET_LINES`] lines.
///
/// With the whole `source` the snippet was taken from, a quoted line inside
/// a hidden block (`headers:`, `password: |`) is known to be one even when
/// the line opening the block is outside the snippet's few lines.
pub fn redact_snippet(snippet: &str, source: Option<&str>) -> String {
    let hidden_lines: Vec<bool> = source.map(hidden_lines).unwrap_or_default();
    let mut blocks = Blocks::default();
    let mut lines = Vec::new();
    for line in snippet.lines() {
        if lines.len() == MAX_SNIPPET_LINES {
            lines.push("   …".to_owned());
            break;
        }
        let shown = match source_part(line) {
            Some((gutter, number, source)) => {
                let source = clip(source, PRE_CLIP_CHARS);
                let inside_here = blocks.enter(&source);
                let inside = number
                    .checked_sub(1)
                    .and_then(|index| hidden_lines.get(index).copied())
                    .map_or(inside_here, |known| known || inside_here);
                format!("{gutter}{}", redact_line(&source, inside).0)
            }
            // Cut first (generously, so that a URL's credentials stay whole
            // within what is shown): a parser's label may repeat a 10 MB key.
            None => mask_credentials(&clip(line, PRE_CLIP_CHARS)).into_owned(),
        };
        lines.push(clip(&shown, MAX_LINE_CHARS).into_owned());
    }
    lines.join("\n")
}

/// For each line of `source`, whether it lies inside a hidden block.
fn hidden_lines(source: &str) -> Vec<bool> {
    let mut blocks = Blocks::default();
    source.lines().map(|line| blocks.enter(line)).collect()
}

/// Tracks blocks whose every value is hidden: the lines indented deeper
/// than a `headers:` or a secret-bearing key with no value on its line.
#[derive(Debug, Default)]
struct Blocks {
    hide_below: Option<usize>,
}

impl Blocks {
    /// Whether `line`, the next line of the file, lies inside a hidden block.
    fn enter(&mut self, line: &str) -> bool {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return self.hide_below.is_some();
        }
        let indent = line.len() - trimmed.len();
        let inside = self.hide_below.is_some_and(|level| indent > level);
        if !inside {
            self.hide_below = redact_line(line, false).1.then_some(indent);
        }
        inside
    }
}

/// A snippet line's gutter (`12 | `), line number and the source after it,
/// if it quotes source.
fn source_part(line: &str) -> Option<(&str, usize, &str)> {
    let bar = line.find('|')?;
    let number = line[..bar].trim();
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = number.parse().ok()?;
    let source_start = if line[bar + 1..].starts_with(' ') { bar + 2 } else { bar + 1 };
    Some((&line[..source_start], number, &line[source_start..]))
}

/// One YAML line with secret values hidden (all values when `hide_all`),
/// and whether it opens a block whose values must all be hidden.
fn redact_line(line: &str, hide_all: bool) -> (String, bool) {
    let indent_len = line.len() - line.trim_start().len();
    let (indent, mut rest) = line.split_at(indent_len);
    let mut out = indent.to_owned();
    while let Some(after) = rest.strip_prefix("- ") {
        let item = after.trim_start_matches(' ');
        out.push_str(&rest[..rest.len() - item.len()]);
        rest = item;
    }
    let Some((key, value)) = split_key(rest) else {
        // A list item, a block-scalar line or a continuation: no key to judge by.
        if hide_all && !rest.trim().is_empty() && !rest.trim_start().starts_with('#') {
            out.push_str(REDACTED);
        } else {
            out.push_str(&mask_credentials(rest));
        }
        return (out, false);
    };
    out.push_str(key);
    out.push(':');
    let bare_key = key.trim().trim_matches(|c| c == '\'' || c == '"');
    let hide = hide_all || is_secret_key(bare_key) || !is_config_key(bare_key);
    let trimmed = value.trim();
    let opens_block = trimmed.is_empty() || trimmed.starts_with('|') || trimmed.starts_with('>');
    if opens_block {
        out.push_str(value);
        return (out, hide || bare_key == "headers");
    }
    out.push_str(&value[..value.len() - value.trim_start().len()]);
    if hide {
        out.push_str(REDACTED);
    } else if let Some(inner) = trimmed.strip_prefix('{') {
        out.push_str(&redact_flow_mapping(inner.strip_suffix('}').unwrap_or(inner), bare_key == "headers"));
    } else {
        out.push_str(&mask_credentials(value.trim_start()));
    }
    (out, false)
}

/// `{a: 1, Authorization: x}` → `{a: 1, Authorization: <redacted>}`.
fn redact_flow_mapping(inner: &str, hide_all: bool) -> String {
    let entries: Vec<String> = inner
        .split(',')
        .map(|entry| {
            let lead = &entry[..entry.len() - entry.trim_start().len()];
            format!("{lead}{}", redact_line(entry.trim_start(), hide_all).0)
        })
        .collect();
    format!("{{{}}}", entries.join(","))
}

/// `key: value` → (`key`, ` value`), the colon outside quotes and followed
/// by a space or the end; `None` for a line without a key.
fn split_key(text: &str) -> Option<(&str, &str)> {
    let mut quote = None;
    for (at, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') if at == 0 => quote = Some(c),
            (None, '#') if at == 0 || text[..at].ends_with(' ') => return None,
            (None, ':') => {
                let value = &text[at + 1..];
                if value.is_empty() || value.starts_with(' ') {
                    let key = &text[..at];
                    if key.is_empty() || key.starts_with(['{', '[']) {
                        return None;
                    }
                    return Some((key, value));
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_recognised_without_case_dashes_or_underscores() {
        for key in
            ["password", "Authorization", "X-Api-Key", "client_secret", "dsn", "Cookie", "api_token", "key"]
        {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["name", "url", "timeout", "cache_status_header", "monkey"] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn url_credentials_and_keyword_passwords_are_masked() {
        assert_eq!(
            mask_credentials("url: https://user:hunter2@cdn.example.com/a.mp4"),
            "url: https://<redacted>@cdn.example.com/a.mp4"
        );
        assert_eq!(mask_credentials("redis://:s3cret@10.0.0.1:6379/0"), "redis://<redacted>@10.0.0.1:6379/0");
        assert_eq!(
            mask_credentials("dsn: host=db user=app PASSWORD=pw1 dbname=x"),
            "dsn: host=db user=app PASSWORD=<redacted> dbname=x"
        );
        assert_eq!(mask_credentials("http://example.com/a@b"), "http://example.com/a@b", "@ in the path");
        assert_eq!(mask_credentials("no url here"), "no url here");
    }

    #[test]
    fn source_lines_hide_secret_and_user_data_values() {
        let cases = [
            ("        Authorization: Bearer abc.def", "        Authorization: <redacted>"),
            ("        x-api-key: k-123", "        x-api-key: <redacted>"),
            ("    password: hunter2", "    password: <redacted>"),
            ("      - dsn: postgres://app:pw@db/x", "      - dsn: <redacted>"),
            ("        url: http://u:pw@127.0.0.1/", "        url: http://<redacted>@127.0.0.1/"),
            (
                "        headers: {User-Agent: opsmon, authorization: Basic eA==}",
                "        headers: {User-Agent: <redacted>, authorization: <redacted>}",
            ),
            ("      - {name: api, url: 'http://a:b@h/'}", "      - {name: api, url: 'http://<redacted>@h/'}"),
            ("        timeout: 5s", "        timeout: 5s"),
            ("        enabeld: true", "        enabeld: true"),
            ("    # a comment: with colon", "    # a comment: with colon"),
        ];
        for (line, expected) in cases {
            assert_eq!(redact_line(line, false).0, expected, "{line}");
        }
        assert!(line_holds_secret("  password: x"));
        assert!(!line_holds_secret("  timeout: 5s"));
    }

    #[test]
    fn snippets_hide_values_inside_header_blocks_and_cap_lines() {
        let long = "y".repeat(10_000);
        let snippet = format!(
            " --> /etc/opsmon.yml:6:9\n  |\n4 |       api:\n5 |         headers:\n6 |           x_custom: tok-1\n7 |           Authorization: Bearer tok-2\n8 |         timeout: 5s\n9 |         bogus: {long}\n  |         ^ unknown field `bogus`"
        );
        let shown = redact_snippet(&snippet, None);
        assert!(!shown.contains("tok-1") && !shown.contains("tok-2"), "{shown}");
        assert!(shown.contains("8 |         timeout: 5s"), "values outside the block stay: {shown}");
        assert!(shown.contains(" --> /etc/opsmon.yml:6:9"), "{shown}");
        assert!(shown.lines().all(|l| l.chars().count() <= MAX_LINE_CHARS + 1), "{shown}");
        let many: String = (1..100).map(|n| format!("{n} | a: b\n")).collect();
        assert_eq!(redact_snippet(&many, None).lines().count(), MAX_SNIPPET_LINES + 1);

        // The block opens outside the snippet's window: the whole file says so.
        let source = "a:\n  headers:\n    one: 1\n    two: 2\n    x_custom: tok-3\n  timeout: 5s\n";
        let window = "4 |     two: 2\n5 |     x_custom: tok-3\n6 |   timeout: 5s";
        let shown = redact_snippet(window, Some(source));
        assert!(!shown.contains("tok-3"), "{shown}");
        assert!(shown.contains("6 |   timeout: 5s"), "{shown}");
        assert!(redact_snippet(window, None).contains("tok-3"), "the window alone cannot know");
    }

    #[test]
    fn quoted_values_in_messages_can_be_masked() {
        assert_eq!(
            mask_quoted(r#"invalid type: string "Bearer \"x\"", expected a map"#),
            r#"invalid type: string "<redacted>", expected a map"#
        );
        assert_eq!(
            mask_line_values(r#"invalid header name "X Api" or value "abc""#, "  headers: {X Api: abc}"),
            r#"invalid header name "X Api" or value "<redacted>""#
        );
        assert_eq!(mask_line_values(r#"bad "5x""#, "  timeout: 5x"), r#"bad "5x""#, "nothing secret here");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(message(&"z".repeat(5000)).chars().count(), MAX_MESSAGE_CHARS + 1);
    }
}
