//! nginx `log_format` strings compiled into a matcher, and the pure line
//! parser that pulls method, path, status and `$request_time` out of a line.
//!
//! No regex on this path: a line is split at the literal text between the
//! variables, left to right. A quoted field (`"$http_user_agent"`) may contain
//! its closing literal when a writer did not escape quotes (nginx itself
//! writes `\x22`), so for quoted fields a failed match retries at the next
//! occurrence of the separator, within a small budget per line.

use std::fmt;

/// nginx's predefined `combined` format.
pub const COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

/// The default: `combined` plus `$request_time`, so latencies are available.
pub const DEFAULT_FORMAT: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time"#;

/// How many times one line may retry a quoted field at a later separator;
/// bounds the work a hostile line can cause.
const RETRY_BUDGET: u32 = 16;

/// The HTTP methods that get their own label value; anything else is `OTHER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// OPTIONS
    Options,
    /// CONNECT
    Connect,
    /// TRACE
    Trace,
    /// Anything else, including garbage in `$request`.
    Other,
}

impl Method {
    /// Every value, in label order.
    pub const ALL: [Method; 10] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
        Method::Connect,
        Method::Trace,
        Method::Other,
    ];

    /// The method named by `bytes` (case-sensitive, as HTTP defines it).
    pub fn from_bytes(bytes: &[u8]) -> Method {
        match bytes {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"PATCH" => Method::Patch,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"CONNECT" => Method::Connect,
            b"TRACE" => Method::Trace,
            _ => Method::Other,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Connect => "CONNECT",
            Method::Trace => "TRACE",
            Method::Other => "OTHER",
        }
    }

    /// Position in [`Method::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What one parsed line contributes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Request<'a> {
    /// The method, bounded.
    pub method: Method,
    /// The request target as logged (path and query), for route prefixes.
    pub path: &'a [u8],
    /// The 3-digit status code.
    pub status: u16,
    /// `$request_time` in seconds; `None` when the format lacks it or the line has `-`.
    pub duration: Option<f64>,
}

/// Why a `log_format` string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A `$` not followed by a variable name.
    #[error("`$` at character {0} is not followed by a variable name (letters, digits, `_`, or `${{name}}`)")]
    BadVariable(usize),
    /// `${name` without the closing brace.
    #[error("`${{` at character {0} has no closing `}}`")]
    Unclosed(usize),
    /// Two variables with nothing between them cannot be told apart.
    #[error("${0} and ${1} are not separated by literal text, so their values cannot be told apart")]
    Adjacent(String, String),
    /// A variable the metrics need is missing.
    #[error("the format has no {0}")]
    Missing(&'static str),
}

/// The variables the parser looks at; every other one is only skipped over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// `$request`: `METHOD target HTTP/x.y`.
    Request,
    /// `$request_method`.
    Method,
    /// `$uri`.
    Uri,
    /// `$request_uri`.
    RequestUri,
    /// `$status`.
    Status,
    /// `$request_time`.
    RequestTime,
    /// Byte counts, checked to be digits so a misaligned split is noticed.
    Digits,
    /// Anything else.
    Other,
}

impl Field {
    fn from_name(name: &str) -> Field {
        match name {
            "request" => Field::Request,
            "request_method" => Field::Method,
            "uri" => Field::Uri,
            "request_uri" => Field::RequestUri,
            "status" => Field::Status,
            "request_time" => Field::RequestTime,
            "body_bytes_sent" | "bytes_sent" => Field::Digits,
            _ => Field::Other,
        }
    }
}

/// One variable and the literal text that follows it (empty only for the
/// last variable of a format that ends with it).
#[derive(Debug, Clone)]
struct Step {
    field: Field,
    /// Whether the literals around it are quotes, so its value may contain them.
    quoted: bool,
    after: Box<[u8]>,
}

/// A compiled `log_format`.
#[derive(Clone)]
pub struct LogFormat {
    source: String,
    prefix: Box<[u8]>,
    steps: Vec<Step>,
    has_duration: bool,
    path_from: Field,
    method_from: Field,
}

impl fmt::Debug for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LogFormat").field(&self.source).finish()
    }
}

impl Default for LogFormat {
    fn default() -> Self {
        LogFormat::compile(DEFAULT_FORMAT).expect("the default format compiles")
    }
}

/// Captured field values of one line.
#[derive(Default)]
struct Captures<'a> {
    request: Option<&'a [u8]>,
    method: Option<&'a [u8]>,
    uri: Option<&'a [u8]>,
    request_uri: Option<&'a [u8]>,
    status: u16,
    duration: Option<f64>,
}

impl LogFormat {
    /// Compiles an nginx `log_format` string; `combined` names nginx's predefined format.
    pub fn compile(format: &str) -> Result<LogFormat, FormatError> {
        let source = if format.trim() == "combined" { COMBINED } else { format };
        let bytes = source.as_bytes();
        let mut prefix = Vec::new();
        let mut steps: Vec<Step> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        let mut literal = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'$' {
                literal.push(bytes[i]);
                i += 1;
                continue;
            }
            let at = source[..i].chars().count() + 1;
            let (name, next) = if bytes.get(i + 1) == Some(&b'{') {
                let close = source[i + 2..].find('}').ok_or(FormatError::Unclosed(at))? + i + 2;
                (&source[i + 2..close], close + 1)
            } else {
                let len =
                    bytes[i + 1..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_').count();
                (&source[i + 1..i + 1 + len], i + 1 + len)
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(FormatError::BadVariable(at));
            }
            match steps.last_mut() {
                None => prefix = std::mem::take(&mut literal),
                Some(_) if literal.is_empty() => {
                    let previous = names.last().cloned().unwrap_or_default();
                    return Err(FormatError::Adjacent(previous, name.to_owned()));
                }
                Some(last) => last.after = std::mem::take(&mut literal).into_boxed_slice(),
            }
            let opens_quote = steps.last().map_or(&prefix[..], |s| &s.after[..]).ends_with(b"\"");
            steps.push(Step { field: Field::from_name(name), quoted: opens_quote, after: Box::default() });
            names.push(name.to_owned());
            i = next;
        }
        match steps.last_mut() {
            Some(last) => last.after = literal.into_boxed_slice(),
            None => return Err(FormatError::Missing("variables at all; expected nginx `$name` variables")),
        }
        for step in &mut steps {
            step.quoted &= step.after.starts_with(b"\"");
        }
        let has = |field: Field| steps.iter().any(|s| s.field == field);
        if !has(Field::Status) {
            return Err(FormatError::Missing("$status"));
        }
        let method_from = if has(Field::Method) {
            Field::Method
        } else if has(Field::Request) {
            Field::Request
        } else {
            return Err(FormatError::Missing("$request (or $request_method)"));
        };
        let path_from = [Field::RequestUri, Field::Uri, Field::Request]
            .into_iter()
            .find(|f| has(*f))
            .unwrap_or(Field::Other);
        Ok(LogFormat {
            source: source.to_owned(),
            prefix: prefix.into_boxed_slice(),
            has_duration: has(Field::RequestTime),
            steps,
            path_from,
            method_from,
        })
    }

    /// The format string (after expanding `combined`).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether lines carry `$request_time`, i.e. whether durations are observed.
    pub fn has_duration(&self) -> bool {
        self.has_duration
    }

    /// Parses one line (without its newline); `None` when it does not match.
    pub fn parse<'a>(&self, line: &'a [u8]) -> Option<Request<'a>> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let start = line.strip_prefix(&*self.prefix).map(|_| self.prefix.len())?;
        let mut captures = Captures::default();
        let mut budget = RETRY_BUDGET;
        if !self.match_from(0, line, start, &mut captures, &mut budget) {
            return None;
        }
        let request = captures.request.unwrap_or_default();
        let (request_method, request_target) = split_request(request);
        let method = match self.method_from {
            Field::Method => captures.method.unwrap_or_default(),
            _ => request_method,
        };
        let path = match self.path_from {
            Field::RequestUri => captures.request_uri.unwrap_or_default(),
            Field::Uri => captures.uri.unwrap_or_default(),
            _ => request_target,
        };
        Some(Request {
            method: Method::from_bytes(method),
            path,
            status: captures.status,
            duration: captures.duration,
        })
    }

    fn match_from<'a>(
        &self,
        index: usize,
        line: &'a [u8],
        pos: usize,
        captures: &mut Captures<'a>,
        budget: &mut u32,
    ) -> bool {
        let Some(step) = self.steps.get(index) else {
            return pos == line.len();
        };
        let last = index + 1 == self.steps.len();
        if last {
            // The rest of the line belongs to the last variable, less the
            // format's closing literal.
            let Some(end) = line.len().checked_sub(step.after.len()).filter(|end| *end >= pos) else {
                return false;
            };
            return line[end..] == *step.after && capture(step.field, &line[pos..end], captures);
        }
        let mut from = pos;
        loop {
            let Some(found) = find(&line[from..], &step.after).map(|at| at + from) else {
                return false;
            };
            if capture(step.field, &line[pos..found], captures)
                && self.match_from(index + 1, line, found + step.after.len(), captures, budget)
            {
                return true;
            }
            if !step.quoted || *budget == 0 {
                return false;
            }
            *budget -= 1;
            from = found + 1;
        }
    }
}

/// Checks and stores one field's value; `false` when it cannot be that field.
fn capture<'a>(field: Field, value: &'a [u8], captures: &mut Captures<'a>) -> bool {
    match field {
        Field::Other => true,
        Field::Request => {
            captures.request = Some(value);
            true
        }
        Field::Method => {
            captures.method = Some(value);
            true
        }
        Field::Uri => {
            captures.uri = Some(value);
            true
        }
        Field::RequestUri => {
            captures.request_uri = Some(value);
            true
        }
        Field::Status => match value {
            [a, b, c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
                captures.status = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
                true
            }
            _ => false,
        },
        Field::RequestTime => {
            if value == b"-" {
                captures.duration = None;
                return true;
            }
            match parse_seconds(value) {
                Some(seconds) => {
                    captures.duration = Some(seconds);
                    true
                }
                None => false,
            }
        }
        Field::Digits => !value.is_empty() && (value.iter().all(u8::is_ascii_digit) || value == b"-"),
    }
}

/// nginx writes `$request_time` as seconds with millisecond resolution
/// (`0.123`); plain digits and a dot only, so exponents, signs, `inf` and
/// `nan` are rejected.
fn parse_seconds(value: &[u8]) -> Option<f64> {
    if value.is_empty() || value.len() > 24 || !value.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse::<f64>().ok()
}

/// `GET /path HTTP/1.1` → (`GET`, `/path`). Garbage requests (`-`, TLS
/// handshakes sent to a plain-HTTP port) still count, as method `OTHER`.
fn split_request(request: &[u8]) -> (&[u8], &[u8]) {
    let Some(space) = request.iter().position(|b| *b == b' ') else {
        return (request, &[]);
    };
    let rest = &request[space + 1..];
    let end = rest.iter().position(|b| *b == b' ').unwrap_or(rest.len());
    (&request[..space], &rest[..end])
}

/// First occurrence of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(at) = haystack[from..].iter().position(|b| *b == first) {
        let at = from + at;
        if haystack[at + 1..].starts_with(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/accesslog").join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    type Fields<'a> = (Method, &'a str, u16, Option<f64>);
    type Parsed = Option<(Method, String, u16, Option<f64>)>;

    fn parse<'a>(format: &LogFormat, line: &'a str) -> Option<Request<'a>> {
        format.parse(line.as_bytes())
    }

    #[test]
    fn compiles_the_default_and_combined() {
        let format = LogFormat::default();
        assert!(format.has_duration());
        assert_eq!(format.source(), DEFAULT_FORMAT);
        let combined = LogFormat::compile("combined").expect("predefined name");
        assert!(!combined.has_duration());
        assert_eq!(combined.source(), COMBINED);
        let braces = LogFormat::compile("${status}|${request}|$request_time").expect("braces");
        assert!(braces.has_duration());
        let request = braces.parse(b"200|GET / HTTP/1.1|0.5").expect("matches");
        assert_eq!((request.status, request.duration), (200, Some(0.5)));
    }

    #[test]
    fn rejects_formats_that_cannot_work() {
        let cases: &[(&str, FormatError)] = &[
            ("$remote_addr \"$request\" $body_bytes_sent", FormatError::Missing("$status")),
            ("$remote_addr $status", FormatError::Missing("$request (or $request_method)")),
            ("$status$request", FormatError::Adjacent("status".into(), "request".into())),
            ("$request $ status", FormatError::BadVariable(10)),
            ("$request $status $", FormatError::BadVariable(18)),
            ("$request ${status", FormatError::Unclosed(10)),
            ("$request ${sta tus}", FormatError::BadVariable(10)),
            ("no variables here", FormatError::Missing("variables at all; expected nginx `$name` variables")),
        ];
        for (format, expected) in cases {
            assert_eq!(LogFormat::compile(format).expect_err(format), *expected, "{format}");
        }
    }

    #[test]
    fn parses_the_fixture_lines() {
        let format = LogFormat::default();
        let text = fixture("default.log");
        // Split on `\n` only: `str::lines` would hide the CRLF line from the parser.
        let lines: Vec<&str> = text.strip_suffix('\n').unwrap_or(&text).split('\n').collect();
        let parsed: Vec<Parsed> = lines
            .iter()
            .map(|line| {
                parse(&format, line)
                    .map(|r| (r.method, String::from_utf8_lossy(r.path).into_owned(), r.status, r.duration))
            })
            .collect();
        let expected: Vec<Option<Fields<'_>>> = vec![
            Some((Method::Get, "/api/v1/users?page=2", 200, Some(0.012))),
            Some((Method::Post, "/api/v1/login", 401, Some(0.104))),
            Some((Method::Get, "/videos/intro.mp4", 206, Some(1.734))),
            // IPv6 client, escaped quotes in the user agent (nginx writes \x22).
            Some((Method::Get, "/", 304, Some(0.0))),
            // TLS handshake sent to the HTTP port: nginx logs 400 with a binary request.
            Some((Method::Other, "", 400, Some(0.001))),
            // Client closed the connection before sending a request.
            Some((Method::Other, "", 408, Some(60.001))),
            // `-` request time (e.g. a line written by a module without timing).
            Some((Method::Delete, "/api/v1/sessions/42", 204, None)),
            // Raw quotes in the user agent, written by a proxy that does not escape.
            Some((Method::Get, "/robots.txt", 404, Some(0.002))),
            // JSON-style escaped quotes in the referer.
            Some((Method::Head, "/health", 200, Some(0.0))),
            // Lower-case and invented methods are OTHER.
            Some((Method::Other, "/", 405, Some(0.0))),
            Some((Method::Other, "/x", 400, Some(0.0))),
            // CRLF line end.
            Some((Method::Put, "/api/v1/users/7", 200, Some(0.25))),
            // Garbage: no status, text, truncated, 4-digit status, plain combined (no time), empty.
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ];
        let expected: Vec<_> =
            expected.into_iter().map(|e| e.map(|(m, p, s, d)| (m, p.to_owned(), s, d))).collect();
        assert_eq!(parsed.len(), expected.len(), "fixture line count");
        for (i, (got, want)) in parsed.iter().zip(&expected).enumerate() {
            assert_eq!(got, want, "line {} of default.log: {}", i + 1, lines[i]);
        }
    }

    #[test]
    fn combined_lines_parse_with_the_combined_format() {
        let format = LogFormat::compile("combined").expect("predefined");
        let text = fixture("combined.log");
        let mut statuses = Vec::new();
        let mut errors = 0;
        for line in text.lines() {
            match parse(&format, line) {
                Some(request) => {
                    assert_eq!(request.duration, None);
                    statuses.push(request.status);
                }
                None => errors += 1,
            }
        }
        assert_eq!(statuses, vec![200, 301, 500, 499]);
        assert_eq!(errors, 1, "the line with a trailing request time does not match plain combined");
    }

    #[test]
    fn custom_formats_use_request_method_and_uri() {
        let format = LogFormat::compile(
            r#"$time_iso8601 $request_method $uri $status $request_time $upstream_response_time "$http_user_agent""#,
        )
        .expect("valid");
        let request = parse(
            &format,
            r#"2024-05-01T10:00:00+00:00 PATCH /api/items/3 200 0.310 0.309, 0.001 "curl/8.5.0""#,
        )
        .expect("matches");
        assert_eq!(request.method, Method::Patch);
        assert_eq!(request.path, b"/api/items/3");
        assert_eq!(request.duration, Some(0.31));

        let json = LogFormat::compile(r#"{"status":"$status","request":"$request","rt":$request_time}"#)
            .expect("json-like formats work");
        let request =
            parse(&json, r#"{"status":"503","request":"GET /a HTTP/2.0","rt":2.5}"#).expect("matches");
        assert_eq!((request.method, request.path, request.status), (Method::Get, &b"/a"[..], 503));
        assert!(parse(&json, r#"{"status":"503","request":"GET /a HTTP/2.0","rt":2.5} trailing"#).is_none());
    }

    #[test]
    fn status_and_time_are_validated() {
        let format = LogFormat::compile("$request|$status|$request_time").expect("valid");
        assert!(format.parse(b"GET / HTTP/1.1|200|0.1").is_some());
        for bad in ["GET / HTTP/1.1|20|0.1", "GET / HTTP/1.1|2000|0.1", "GET / HTTP/1.1|2x0|0.1"] {
            assert!(format.parse(bad.as_bytes()).is_none(), "{bad}");
        }
        for bad in ["inf", "nan", "-1", "1e3", "", "0.1s"] {
            let line = format!("GET / HTTP/1.1|200|{bad}");
            assert!(format.parse(line.as_bytes()).is_none(), "{line}");
        }
        assert_eq!(format.parse(b"GET / HTTP/1.1|200|-").expect("dash").duration, None);
    }

    #[test]
    fn hostile_lines_are_bounded() {
        let format = LogFormat::default();
        let line = format!(
            "1.2.3.4 - - [01/May/2024:10:00:00 +0000] \"GET /{} HTTP/1.1\" 200 5 \"-\" \"{}\" x",
            "\" ".repeat(500),
            "\" ".repeat(500)
        );
        let started = std::time::Instant::now();
        assert!(format.parse(line.as_bytes()).is_none());
        assert!(started.elapsed() < std::time::Duration::from_millis(50), "{:?}", started.elapsed());
    }
}
