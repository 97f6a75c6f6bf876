//! nginx `log_format` strings and access-log lines: compiling any format and
//! parsing any line against it never panics, and a line written from a format
//! with known values parses back to those values.

use opsmon_exporter::collectors::accesslog::format::{LogFormat, Method};
use proptest::prelude::*;

use crate::mutate;

const FORMAT_TOKENS: &[&str] = &[
    "$",
    "${",
    "}",
    "${status}",
    "$status",
    "$request",
    "$request_time",
    "$request_method",
    "$uri",
    "$request_uri",
    "$body_bytes_sent",
    "\"",
    " ",
    "[",
    "]",
    "|",
    "é",
    "$é",
    "${é}",
    "$$",
    "combined",
];

const LINE_TOKENS: &[&str] = &[
    "\"", " ", "\\x22", "-", "200", "999", "0.001", "1e9", "inf", "NaN", "..", "GET", "HTTP/1.1", "\r", "\t",
    "é", "\u{fffd}", "[", "]", "\"\"", "\" \"",
];

fn formats() -> Vec<LogFormat> {
    mutate::corpus("accesslog-format")
        .into_iter()
        .map(|(name, bytes)| {
            let text = String::from_utf8(bytes).expect("UTF-8 corpus");
            LogFormat::compile(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
        })
        .collect()
}

#[test]
fn corpus_access_logs_match_a_corpus_format() {
    let formats = formats();
    for (name, bytes) in mutate::corpus("accesslog-line") {
        let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
        let matched = lines.iter().filter(|line| formats.iter().any(|f| f.parse(line).is_some())).count();
        // The application log is not an access log; the access logs carry a
        // few junk lines on purpose.
        if name.contains("app.log") {
            assert_eq!(matched, 0, "{name}");
        } else {
            assert!(matched * 2 > lines.len(), "{name}: {matched} of {} lines", lines.len());
        }
    }
}

proptest! {
    #![proptest_config(mutate::config("accesslog-format", 512))]

    /// Any format either compiles or is refused with a message; a compiled
    /// one parses any line without panicking.
    #[test]
    fn mutated_formats_compile_or_refuse(
        (_seed, format) in mutate::mutated_text(mutate::corpus("accesslog-format"), FORMAT_TOKENS, 6),
        (_line_seed, lines) in mutate::mutated(mutate::corpus("accesslog-line"), LINE_TOKENS, 4),
    ) {
        match LogFormat::compile(&format) {
            Ok(compiled) => {
                for line in lines.split(|b| *b == b'\n') {
                    if let Some(request) = compiled.parse(line) {
                        prop_assert!(request.status <= 999);
                        prop_assert!(request.duration.is_none_or(|d| d.is_finite() && d >= 0.0));
                    }
                }
            }
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    /// Mutated lines against the shipped formats: never a panic, never a
    /// negative, infinite or NaN duration, and a status is three digits.
    #[test]
    fn mutated_lines_never_panic(
        (_seed, lines) in mutate::mutated(mutate::corpus("accesslog-line"), LINE_TOKENS, 10),
    ) {
        for format in formats() {
            for line in lines.split(|b| *b == b'\n') {
                if let Some(request) = format.parse(line) {
                    prop_assert!(request.status <= 999);
                    prop_assert!(request.duration.is_none_or(|d| d.is_finite() && d >= 0.0));
                }
            }
        }
    }

    /// A line written from the default format with generated values (quoted
    /// fields may contain quotes and spaces) parses back to those values.
    #[test]
    fn written_lines_parse_back(
        method in prop::sample::select(&["GET", "POST", "PUT", "DELETE", "PATCH", "BREW"][..]),
        path in "/[a-zA-Z0-9/_.?=&%-]{0,40}",
        status in 100_u16..=599,
        bytes_sent in 0_u64..10_000_000,
        referer in "[ -~]{0,30}",
        agent in "[ -~]{0,60}",
        millis in 0_u32..100_000,
    ) {
        let format = LogFormat::default();
        let line = format!(
            "10.0.0.1 - - [01/May/2024:10:00:00 +0000] \"{method} {path} HTTP/1.1\" {status} {bytes_sent} \"{referer}\" \"{agent}\" {}.{:03}",
            millis / 1000,
            millis % 1000
        );
        let parsed = format.parse(line.as_bytes());
        // A quote in the referer followed by ` "` can be read either way:
        // nginx escapes it (`\x22`), so only unambiguous lines must parse.
        if !referer.contains('"') && !agent.contains('"') {
            let request = parsed.expect("unambiguous line parses");
            prop_assert_eq!(request.method, Method::from_bytes(method.as_bytes()));
            prop_assert_eq!(request.path, path.as_bytes());
            prop_assert_eq!(request.status, status);
            prop_assert!((request.duration.expect("has $request_time") - f64::from(millis) / 1000.0).abs() < 1e-9);
        } else if let Some(request) = parsed {
            prop_assert_eq!(request.status, status);
        }
    }
}
