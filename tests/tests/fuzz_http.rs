//! Property/fuzz test of the exporter's HTTP request path, against the real
//! binary: request lines, targets and query strings (`/probe`), and the
//! headers the exporter reads (`X-Prometheus-Scrape-Timeout-Seconds`,
//! `Accept`, `Accept-Encoding`), mutated from `fuzz/corpus/http-request/` and
//! generated. Every request gets a 2xx, 4xx or 5xx answer or, for a head
//! that never ends, a closed connection; never a hang (a generous client
//! deadline, far above the exporter's 10 s header timeout) and never a panic
//! (the log is checked, and the exporter still answers at the end).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step must fail the test loudly

#[path = "../../fuzz/mutate.rs"]
mod mutate;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use opsmon_e2e::{Process, free_port, get};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

/// No answer and no close within this is a hang.
const HANG_LIMIT: Duration = Duration::from_secs(30);

/// The largest response read; a scrape of this config is a few KiB.
const MAX_RESPONSE: usize = 8 << 20;

const TOKENS: &[&str] = &[
    "\r\n",
    "\n",
    ": ",
    " ",
    "/",
    "?",
    "&",
    "=",
    "%",
    "%00",
    "%zz",
    "%2F",
    "+",
    "#",
    "..",
    "//",
    "\0",
    "\x7f",
    "é",
    "target=",
    "module=",
    "target=cache",
    "module=http_2xx",
    "target=http://127.0.0.1:1/",
    "target=http%3A%2F%2Flocalhost%3A1%2Fprobe%3Ftarget%3Dx",
    "/probe",
    "/metrics",
    "/-/reload",
    "/-/ready",
    "X-Prometheus-Scrape-Timeout-Seconds: ",
    "1e30",
    "-1",
    "NaN",
    "inf",
    "-0",
    "0.000000001",
    "18446744073709551616",
    "Accept: ",
    "application/openmetrics-text;version=1.0.0",
    ";q=0",
    ";q=NaN",
    ";q=1e99",
    ",",
    "Accept-Encoding: ",
    "gzip",
    "deflate, gzip;q=0.5",
    "Content-Length: 5\r\n",
    "Transfer-Encoding: chunked\r\n",
    "Connection: close\r\n",
    "Host: x\r\n",
    "HTTP/1.0",
    "HTTP/2.0",
    "HTTP/1.1",
    "POST",
    "HEAD",
    "OPTIONS",
    "CONNECT",
    "GET",
    "Authorization: Basic Og==\r\n",
    "User-Agent: opsmon-exporter/0.1\r\n",
];

/// The exporter under test: a Redis target on a closed port (fails fast),
/// the built-in probe modules, and the lifecycle API on.
fn start_exporter() -> (Process, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("opsmon.yml");
    std::fs::write(
        &config,
        format!(
            "collectors:\n  host:\n    enabled: false\n  redis:\n    targets:\n      - {{name: cache, address: 'redis://127.0.0.1:{}', timeout: 500ms}}\n  probe:\n    modules:\n      http_2xx: {{timeout: 500ms}}\n",
            free_port()
        ),
    )
    .unwrap();
    let exporter = Process::exporter(&["--config.file", config.to_str().unwrap(), "--web.enable-lifecycle"]);
    (exporter, dir)
}

/// What came back for one raw request.
#[derive(Debug)]
enum Outcome {
    /// A status line with this code.
    Status(u16),
    /// The exporter closed the connection without answering.
    Closed,
}

/// Sends `request` (then an empty line, so every head ends) and reads the
/// first response; `Err` on a hang or a malformed answer.
fn exchange(port: u16, request: &[u8]) -> Result<Outcome, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(HANG_LIMIT)).unwrap();
    stream.set_write_timeout(Some(HANG_LIMIT)).unwrap();
    let started = Instant::now();
    // The exporter may answer (431, 400) and close before taking it all.
    let _ = stream.write_all(request).and_then(|()| stream.write_all(b"\r\n\r\n"));
    let mut response = Vec::new();
    let mut buffer = [0_u8; 16 * 1024];
    loop {
        if let Some(outcome) = complete(&response, request)? {
            return Ok(outcome);
        }
        if started.elapsed() > HANG_LIMIT || response.len() > MAX_RESPONSE {
            return Err(format!(
                "no complete answer within {HANG_LIMIT:?}: {}",
                String::from_utf8_lossy(&response)
            ));
        }
        match stream.read(&mut buffer) {
            Ok(0) => {
                return if response.is_empty() {
                    Ok(Outcome::Closed)
                } else {
                    Err(format!("connection closed part-way through: {}", String::from_utf8_lossy(&response)))
                };
            }
            Ok(n) => response.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset) && response.is_empty() => {
                return Ok(Outcome::Closed);
            }
            Err(e) => return Err(format!("read after {:?}: {e}", started.elapsed())),
        }
    }
}

/// The outcome once `response` holds a whole first response (head and
/// `Content-Length` body; none for a HEAD request), or `None` to read on.
fn complete(response: &[u8], request: &[u8]) -> Result<Option<Outcome>, String> {
    let Some(head_end) = response.windows(4).position(|w| w == b"\r\n\r\n") else { return Ok(None) };
    let head = String::from_utf8_lossy(&response[..head_end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP/1.x status line: {status_line:?}"))?;
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map_or(Ok(0), |(_, value)| {
            value.trim().parse().map_err(|_| format!("bad Content-Length in {head}"))
        })?;
    let no_body = request.starts_with(b"HEAD ");
    let have = response.len() - head_end - 4;
    Ok((no_body || have >= length).then_some(Outcome::Status(status)))
}

/// The property every request must keep.
fn answered_properly(port: u16, request: &[u8]) -> Result<(), TestCaseError> {
    match exchange(port, request) {
        Ok(Outcome::Status(code)) => prop_assert!(
            matches!(code, 200..=299 | 400..=599),
            "status {code} for {:?}",
            String::from_utf8_lossy(request)
        ),
        Ok(Outcome::Closed) => {}
        Err(problem) => prop_assert!(false, "{problem} for {:?}", String::from_utf8_lossy(request)),
    }
    Ok(())
}

/// `?key=value&…` from generated pairs, percent-encoded or not.
fn query() -> impl Strategy<Value = String> {
    let key =
        prop_oneof![Just("target".to_owned()), Just("module".to_owned()), "[a-z%0-9]{0,8}".prop_map(|s| s),];
    let value = prop_oneof![
        Just("cache".to_owned()),
        Just("http_2xx".to_owned()),
        Just("http://127.0.0.1:1/".to_owned()),
        Just("http://u:p@127.0.0.1:1/".to_owned()),
        "[ -~&&[^ #]]{0,40}",
        "(%[0-9A-Fa-f]{2}|[a-z:/.]){0,30}",
    ];
    prop::collection::vec((key, value), 0..4)
        .prop_map(|pairs| pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"))
}

/// A header the exporter reads, with a generated value.
fn header() -> impl Strategy<Value = String> {
    let name = prop::sample::select(
        &["X-Prometheus-Scrape-Timeout-Seconds", "Accept", "Accept-Encoding", "User-Agent", "Authorization"]
            [..],
    );
    let value = prop_oneof![
        "-?[0-9]{0,30}(\\.[0-9]{0,20})?(e-?[0-9]{1,4})?",
        "(NaN|inf|-inf|\\+Inf|0x10|1_000|1e309)",
        "([a-z/*+.-]{0,30}(;q=[-0-9.eNaIf]{0,6})?, ?){0,5}",
        "[ -~]{0,64}",
    ];
    (name, value).prop_map(|(name, value)| format!("{name}: {value}"))
}

/// A request built from parts: method, path, query string and headers.
fn generated_request() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(&["GET", "HEAD", "POST", "PUT", "OPTIONS"][..]),
        prop::sample::select(
            &["/metrics", "/probe", "/", "/-/healthy", "/-/ready", "/-/reload", "/nope", "//metrics"][..],
        ),
        query(),
        prop::collection::vec(header(), 0..5),
    )
        .prop_map(|(method, path, query, headers)| {
            let target = if query.is_empty() { path.to_owned() } else { format!("{path}?{query}") };
            let mut request = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
            for header in &headers {
                request.push_str(header);
                request.push_str("\r\n");
            }
            request.into_bytes()
        })
}

/// One test, so the checks of the exporter's log and health run after every
/// request: the corpus, then mutated and generated requests.
#[test]
fn requests_are_answered_never_hang_never_panic() {
    let (exporter, _dir) = start_exporter();
    let port = exporter.port;
    for (name, bytes) in mutate::corpus("http-request") {
        match exchange(port, &bytes) {
            Ok(Outcome::Status(code)) => assert!(matches!(code, 200..=299 | 400..=599), "{name}: {code}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    let mut mutated = TestRunner::new(mutate::config("http-request", 256));
    let strategy = mutate::mutated(mutate::corpus("http-request"), TOKENS, 6);
    if let Err(failure) = mutated.run(&strategy, |(_seed, request)| answered_properly(port, &request)) {
        panic!("mutated request: {failure}");
    }
    let mut generated = TestRunner::new(mutate::config("http-request-generated", 256));
    if let Err(failure) = generated.run(&generated_request(), |request| answered_properly(port, &request)) {
        panic!("generated request: {failure}");
    }
    let healthy = get(&exporter.url("/-/healthy")).expect("the exporter still answers");
    assert_eq!(healthy.status, 200);
    let log = exporter.log();
    assert!(!log.contains("panicked") && !log.contains("msg=panic"), "the exporter panicked:\n{log}");
}
