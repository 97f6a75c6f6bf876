//! Unit tests of the probe collector: configuration and its exact error
//! texts, the allow-list, `/probe` refusals, and probes of local sockets that
//! misbehave. Full HTTP behaviour is tested end to end in `tests/tests/probe.rs`.

use std::path::Path;

use super::*;
use crate::settings::Config;

fn parse(text: &str) -> Result<Config, String> {
    crate::settings::checked(Path::new("/etc/opsmon.yml"), text)
        .map(|(config, _)| config)
        .map_err(|e| e.to_string())
}

/// Names of the collectors `config` enables, as start-up builds them.
fn enabled_names(config: &Config) -> Vec<&'static str> {
    crate::settings::in_runtime(|| crate::collectors::build(&config.collectors).expect("builds").names)
}

fn first_line(text: &str) -> String {
    let error = parse(text).expect_err("must be rejected");
    error.lines().next().unwrap_or_default().to_owned()
}

const FULL: &str = "\
collectors:
  probe:
    allowed_targets: ['127.0.0.0/8', '::1/128', localhost, '*.example.com', 10.1.2.3]
    modules:
      http_2xx:
        method: get
        timeout: 3s
        valid_status_codes: [200, 204]
        headers: {User-Agent: opsmon, X-Api-Key: abc}
        fail_if_body_matches_regexp: ['\"status\":\\s*\"down\"']
        fail_if_body_not_matches_regexp: ['ok']
        follow_redirects: false
        body_size_limit: 1MiB
        insecure_skip_verify: true
      cdn:
        cache_status_header: CF-Cache-Status
        timeout: 10s
        body_size_limit: 4096
    targets:
      - name: api_health
        url: http://127.0.0.1:3000/api/v1/health
        module: http_2xx
      - name: cdn_sample
        url: https://cdn.example.com/sample.mp4#ignored
        module: cdn
      - name: plain
        url: http://localhost:8080
";

#[test]
fn full_section_parses() {
    let config = parse(FULL).expect("valid");
    let probe = &config.collectors.probe;
    assert_eq!(probe.allowed_targets.len(), 5);
    let modules = probe.all_modules();
    let api = &modules["http_2xx"];
    assert_eq!(api.method.0, hyper::Method::GET);
    assert_eq!(api.timeout.0, Duration::from_secs(3));
    assert_eq!(api.valid_status_codes, vec![StatusCode(200), StatusCode(204)]);
    assert_eq!(api.headers.0.len(), 2);
    assert_eq!(api.headers.0[1].0.as_str(), "x-api-key");
    assert!(api.fail_if_body_matches_regexp[0].0.is_match("{\"status\": \"down\"}"));
    assert!(!api.follow_redirects);
    assert_eq!(api.body_size_limit, ByteSize(1 << 20));
    assert!(api.insecure_skip_verify);
    let cdn = &modules["cdn"];
    assert_eq!(cdn.cache_status_header.as_ref().map(|h| h.0.as_str()), Some("cf-cache-status"));
    assert_eq!(cdn.body_size_limit, ByteSize(4096));
    assert!(cdn.follow_redirects, "defaults fill what the file leaves out");
    assert_eq!(probe.targets[1].url.0.as_str(), "https://cdn.example.com/sample.mp4", "no fragment");
    assert_eq!(probe.targets[2].module.value, "http_2xx", "default module");
    assert_eq!(enabled_names(&config).last(), Some(&"probe"));

    let collector = ProbeCollector::new(probe).expect("builds");
    assert_eq!(collector.target_names(), ["api_health", "cdn_sample", "plain"]);
    assert!(collector.shared.targets[1].counters.is_some(), "a CDN target counts cache results");
    assert!(collector.shared.targets[0].counters.is_none());
}

#[test]
fn built_in_modules_and_loopback_by_default() {
    let config = parse("").expect("empty is fine");
    let probe = &config.collectors.probe;
    assert!(!enabled_names(&config).contains(&"probe"), "no targets, no collector on /metrics");
    let modules = probe.all_modules();
    assert_eq!(modules.keys().collect::<Vec<_>>(), ["cdn", "http_2xx"]);
    assert_eq!(modules["http_2xx"].method.0, hyper::Method::GET);
    assert_eq!(modules["http_2xx"].timeout.0, Duration::from_secs(5));
    assert!(modules["http_2xx"].valid_status_codes.is_empty(), "2xx");
    assert_eq!(modules["http_2xx"].body_size_limit, ByteSize(10 << 20));
    assert_eq!(modules["cdn"].cache_status_header.as_ref().map(|h| h.0.as_str()), Some("x-cache"));
    let listed: Vec<String> = probe.allowed_targets.iter().map(ToString::to_string).collect();
    assert_eq!(listed, ["127.0.0.0/8", "::1/128", "localhost"]);
}

#[test]
fn errors_name_file_line_column_and_fix() {
    let module = |body: &str| format!("collectors:\n  probe:\n    modules:\n      api:\n{body}");
    let target = |body: &str| format!("collectors:\n  probe:\n    targets:\n      - name: api\n{body}");
    let cases: Vec<(String, &str)> = vec![
        (
            module("        fail_if_body_matches_regexp: ['(down']\n"),
            "/etc/opsmon.yml:5:39: invalid regex \"(down\": error: unclosed group; expected RE2-style syntax (escape literal brackets and dots with \\)",
        ),
        (
            module("        headers: {X Api: abc}\n"),
            "/etc/opsmon.yml:5:19: invalid HTTP header name \"X Api\"; a name is letters, digits and !#$%&'*+-.^_`|~ only (no spaces or colons), e.g. X-Cache",
        ),
        (
            module("        headers: {X-Api: \"a\\nb\"}\n"),
            "/etc/opsmon.yml:5:26: invalid HTTP header value; a value must not contain control characters such as newlines",
        ),
        (
            module("        cache_status_header: 'X-Cache:'\n"),
            "/etc/opsmon.yml:5:30: invalid HTTP header name \"X-Cache:\"; a name is letters, digits and !#$%&'*+-.^_`|~ only (no spaces or colons), e.g. X-Cache",
        ),
        (
            module("        method: FETCH\n"),
            "/etc/opsmon.yml:5:17: invalid method \"FETCH\"; expected one of GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH",
        ),
        (
            module("        valid_status_codes: [200, 700]\n"),
            "/etc/opsmon.yml:5:35: invalid status code 700; expected 100 to 599",
        ),
        (
            module("        body_size_limit: 10XB\n"),
            "/etc/opsmon.yml:5:26: invalid size \"10XB\"; expected a number of bytes or a number with a unit: 512KiB, 10MiB, 1GiB (KB, MB, GB are powers of 1000)",
        ),
        (
            module("        timeout: soon\n"),
            "/etc/opsmon.yml:5:18: invalid duration \"soon\" (expected number at 0); expected a number with a unit, e.g. 500ms, 10s, 5m",
        ),
        (
            module("        timout: 5s\n"),
            "/etc/opsmon.yml:5:9: unknown field `timout`, expected one of method, timeout, valid_status_codes, headers, fail_if_body_matches_regexp, fail_if_body_not_matches_regexp, follow_redirects, body_size_limit, insecure_skip_verify, cache_status_header; did you mean `timeout`?",
        ),
        (
            target("        url: ftp://127.0.0.1/x\n"),
            "/etc/opsmon.yml:5:14: invalid URL \"ftp://127.0.0.1/x\": scheme \"ftp\" is not supported; expected http://host[:port]/path or https://host[:port]/path",
        ),
        (
            target("        url: /api/v1/health\n"),
            "/etc/opsmon.yml:5:14: invalid URL \"/api/v1/health\" (relative URL without a base); expected http://host[:port]/path or https://host[:port]/path",
        ),
        (
            target("        url: http://user:hunter2@127.0.0.1/\n"),
            "/etc/opsmon.yml:5:14: invalid URL: it contains credentials (user:password@), which would show in labels and logs; send an Authorization header from the module's `headers` instead",
        ),
        (
            target("        url: http://127.0.0.1:3000/\n        interval: 500ms\n"),
            "/etc/opsmon.yml:6:19: collectors.probe.targets[0].interval: 500ms is out of range: between 1s and 24h; leave it out to probe on every scrape",
        ),
        (
            target("        url: http://127.0.0.1:3000/\n        interval: 2d\n"),
            "/etc/opsmon.yml:6:19: collectors.probe.targets[0].interval: 172800s is out of range: between 1s and 24h; leave it out to probe on every scrape",
        ),
        (
            target("        url: http://127.0.0.1:3000/\n        range: bytes=100-1\n"),
            "/etc/opsmon.yml:6:16: invalid range \"bytes=100-1\": the last byte comes before the first; expected one range of bytes such as bytes=0-65535 or bytes=1024-",
        ),
        (
            target("        url: http://127.0.0.1:3000/\n        range: 0-100\n"),
            "/etc/opsmon.yml:6:16: invalid range \"0-100\"; expected one range of bytes such as bytes=0-65535 or bytes=1024-",
        ),
        (
            target("        url: http://127.0.0.1:3000/\n        max_body_bytes: 1TB\n"),
            "/etc/opsmon.yml:6:25: invalid size \"1TB\"; expected a number of bytes or a number with a unit: 512KiB, 10MiB, 1GiB (KB, MB, GB are powers of 1000)",
        ),
        (
            target("        url: http://127.0.0.1:3000/\n        module: htp_2xx\n"),
            "/etc/opsmon.yml:6:17: collectors.probe.targets[0].module: unknown module \"htp_2xx\"; configured modules: cdn, http_2xx; did you mean `http_2xx`?",
        ),
        (
            format!(
                "{}      - name: api\n        url: http://127.0.0.1:3001/\n",
                target("        url: http://127.0.0.1:3000/\n")
            ),
            "/etc/opsmon.yml:6:15: collectors.probe.targets[1].name: duplicate probe target \"api\"; names must be unique",
        ),
        (
            "collectors:\n  probe:\n    allowed_targets: ['10.0.0.0/33']\n".into(),
            "/etc/opsmon.yml:3:23: invalid allowed target \"10.0.0.0/33\": the prefix length must be 0 to 32",
        ),
        (
            "collectors:\n  probe:\n    allowed_targets: ['http://example.com']\n".into(),
            "/etc/opsmon.yml:3:23: invalid allowed target \"http://example.com\"; expected a CIDR (127.0.0.0/8, ::1/128), an IP address, a host name (localhost) or a domain wildcard (*.example.com)",
        ),
        (
            module("        timeout: 0s\n"),
            "/etc/opsmon.yml: collectors.probe.modules.api.timeout: must be greater than 0s",
        ),
    ];
    for (yaml, expected) in &cases {
        assert_eq!(&first_line(yaml), expected, "for input:\n{yaml}");
    }
    // The message never repeats it (the snippet below it quotes the file itself).
    let message = first_line(&target("        url: http://user:hunter2@127.0.0.1/\n"));
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn byte_sizes() {
    assert_eq!(ByteSize::parse("10MiB"), Ok(ByteSize(10 << 20)));
    assert_eq!(ByteSize::parse("1.5 KiB"), Ok(ByteSize(1536)));
    assert_eq!(ByteSize::parse("2MB"), Ok(ByteSize(2_000_000)));
    assert_eq!(ByteSize::parse("1gib"), Ok(ByteSize(1 << 30)));
    assert_eq!(ByteSize::parse("512B"), Ok(ByteSize(512)));
    assert_eq!(ByteSize::parse("4096"), Ok(ByteSize(4096)));
    assert!(ByteSize::parse("0").is_err());
    assert!(ByteSize::parse("-1").is_err());
    assert!(ByteSize::parse("MiB").is_err());
}

fn url(text: &str) -> Url {
    Url::parse(text).expect("valid URL")
}

#[test]
fn default_allow_list_is_loopback_only() {
    let list = ProbeConfig::default().allowed_targets;
    for allowed in [
        "http://127.0.0.1:3000/api/v1/health",
        "http://127.200.1.1/",
        "https://[::1]:8443/",
        "http://localhost:3000/",
        "http://LocalHost./",
        "http://[::ffff:127.0.0.1]/",
        "http://0x7f.1/",
    ] {
        assert!(config::allowed(&list, &url(allowed)), "{allowed} must be allowed");
    }
    for refused in [
        "http://192.0.2.1/",
        "http://10.0.0.1/",
        "http://[::2]/",
        "http://[::ffff:192.0.2.1]/",
        "http://localhost.evil.example/",
        "http://example.com/",
        "http://169.254.169.254/latest/meta-data/",
    ] {
        assert!(!config::allowed(&list, &url(refused)), "{refused} must be refused");
    }
}

#[test]
fn allow_list_forms() {
    let list: Vec<AllowedTarget> = ["10.0.0.0/8", "*.example.com", "api.internal", "192.0.2.7", "fd00::/8"]
        .iter()
        .map(|entry| AllowedTarget::parse(entry).expect("valid entry"))
        .collect();
    for allowed in [
        "http://10.20.30.40/",
        "https://cdn.example.com/x",
        "https://a.b.example.com/",
        "http://API.internal/",
        "http://192.0.2.7:8080/",
        "http://[fd12::1]/",
    ] {
        assert!(config::allowed(&list, &url(allowed)), "{allowed} must be allowed");
    }
    for refused in [
        "http://11.0.0.1/",
        "https://example.com/",
        "https://badexample.com/",
        "http://x.api.internal/",
        "http://192.0.2.8/",
        "http://127.0.0.1/",
    ] {
        assert!(!config::allowed(&list, &url(refused)), "{refused} must be refused");
    }
    assert!(config::allowed(&[AllowedTarget::parse("0.0.0.0/0").expect("valid")], &url("http://8.8.8.8/")));
}

#[test]
fn one_off_probes_are_refused_before_anything_is_sent() {
    let collector = ProbeCollector::new(&ProbeConfig::default()).expect("builds");
    let refused = |target: &str, module: &str| collector.one_off(target, module).err().unwrap_or_default();
    assert_eq!(
        refused("http://127.0.0.1:3000/", "http_3xx"),
        "unknown module \"http_3xx\"; configured modules: cdn, http_2xx\n"
    );
    assert_eq!(
        refused("http://192.0.2.1/", "http_2xx"),
        "target not allowed by collectors.probe.allowed_targets (allowed: 127.0.0.0/8, ::1/128, localhost)\n"
    );
    assert!(
        refused("http://user:pw-123@127.0.0.1/", "http_2xx")
            .starts_with("invalid URL: it contains credentials")
    );
    assert!(refused("ftp://127.0.0.1/", "http_2xx").contains("scheme \"ftp\" is not supported"));
    assert!(collector.one_off("http://127.0.0.1:3000/api/v1/health", "http_2xx").is_ok());
    assert!(collector.one_off("127.0.0.1:3000/api/v1/health", "http_2xx").is_ok(), "http:// is implied");
    assert!(collector.one_off("http://localhost:3000/", "cdn").is_ok());
}

fn module(timeout: Duration) -> ModuleConfig {
    ModuleConfig { timeout: crate::config::ConfigDuration(timeout), ..ModuleConfig::default() }
}

#[tokio::test]
async fn a_target_that_never_answers_fails_at_its_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    // Accept and hold the connection without ever answering.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let tls = http::TlsConfigs::default();
    let started = Instant::now();
    let deadline = started + Duration::from_millis(400);
    let outcome = http::probe(
        &tls,
        &url(&format!("http://{address}/")),
        &module(Duration::from_secs(5)),
        &ReadPlan::default(),
        None,
        deadline,
    )
    .await;
    let took = started.elapsed();
    assert!(!outcome.success);
    assert!(took >= Duration::from_millis(390) && took < Duration::from_millis(900), "{took:?}");
    assert_eq!(outcome.status, 0);
    assert!(outcome.phases[1] > 0.0, "connected: {outcome:?}");
    assert_eq!(outcome.phases[3], 0.0, "processing never completed: {outcome:?}");
    let error = outcome.error.unwrap_or_default();
    assert!(
        error.starts_with("timed out after 0.4") && error.ends_with("while waiting for the response"),
        "{error}"
    );
    holder.abort();
}

#[tokio::test]
async fn a_refused_connection_fails_at_once() {
    let address = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    };
    let tls = http::TlsConfigs::default();
    let deadline = Instant::now() + Duration::from_secs(5);
    let outcome = http::probe(
        &tls,
        &url(&format!("http://{address}/")),
        &module(Duration::from_secs(5)),
        &ReadPlan::default(),
        None,
        deadline,
    )
    .await;
    assert!(!outcome.success);
    assert!(outcome.duration < 1.0, "{outcome:?}");
    let error = outcome.error.unwrap_or_default();
    assert!(error.starts_with(&format!("connecting to {address}: Connection refused")), "{error}");
}

#[tokio::test]
async fn collector_reports_every_family_for_a_failed_target() {
    let address = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    };
    let config = parse(&format!(
        "collectors:\n  probe:\n    targets:\n      - {{name: down, url: 'http://{address}/', module: cdn}}\n"
    ))
    .expect("valid");
    let collector = ProbeCollector::new(&config.collectors.probe).expect("builds");
    let collected = collector.collect(Instant::now() + Duration::from_secs(2)).await;
    assert!(collected.error.is_none(), "a failed probe is data, not a collector failure");
    let text = collected.metrics.encode_text();
    for line in [
        "probe_success{target=\"down\"} 0\n",
        "probe_http_status_code{target=\"down\"} 0\n",
        "probe_http_duration_seconds{phase=\"transfer\",target=\"down\"} 0\n",
        "opsmon_cdn_cache_requests_total{result=\"hit\",target=\"down\"} 0\n",
        "opsmon_cdn_cache_requests_total{result=\"other\",target=\"down\"} 0\n",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
    assert!(!text.contains("opsmon_cdn_age_seconds"), "no response, no Age: {text}");
    assert!(!text.contains("probe_ssl_earliest_cert_expiry"), "{text}");
}

#[test]
fn target_interval_range_and_read_limit() {
    let config = parse(
        "collectors:\n  probe:\n    targets:\n      - {name: video, url: 'https://cdn.example.com/v.mp4', module: cdn, interval: 1m, range: bytes=0-65535}\n      - {name: api, url: 'http://127.0.0.1/', max_body_bytes: 4KiB, interval: 24h}\n      - {name: plain, url: 'http://127.0.0.1/'}\n      - {name: sample, url: 'https://cdn.example.com/s', module: cdn, max_body_bytes: 10MiB}\n",
    )
    .expect("valid");
    let probe = &config.collectors.probe;
    let modules = probe.all_modules();
    let [video, api, plain, sample] = &probe.targets[..] else { panic!("four targets") };
    assert_eq!(video.interval.as_ref().map(|i| i.value.0), Some(Duration::from_secs(60)));
    assert_eq!(video.range.as_ref().map(|r| r.0.to_str().unwrap_or_default()), Some("bytes=0-65535"));
    assert_eq!(
        video.read_limit(&modules["cdn"]),
        Some(DEFAULT_CDN_MAX_BODY_BYTES),
        "a CDN sample is capped by default"
    );
    assert_eq!(api.read_limit(&modules["http_2xx"]), Some(4096));
    assert_eq!(api.interval.as_ref().map(|i| i.value.0), Some(MAX_INTERVAL));
    assert_eq!(plain.read_limit(&modules["http_2xx"]), None, "blackbox's body_size_limit applies");
    assert!(plain.interval.is_none() && plain.range.is_none());
    assert_eq!(sample.read_limit(&modules["cdn"]), Some(10 << 20));

    let collector = ProbeCollector::new(probe).expect("builds");
    let named: Vec<String> = collector.named_targets().into_iter().map(|(name, _)| name).collect();
    assert_eq!(named, ["video", "api", "plain", "sample"], "/probe?target=NAME serves each");

    assert_eq!(
        ByteRange::parse("bytes=1024-").map(|r| r.0),
        Ok(hyper::header::HeaderValue::from_static("bytes=1024-"))
    );
    assert!(ByteRange::parse("bytes=-500").is_err(), "suffix ranges are not a sample of the start");
    assert!(ByteRange::parse("bytes=0-1,5-9").is_err(), "one range only");
    assert!(ByteRange::parse("bytes=99999999999999999999-").is_err());
}

#[test]
fn a_probe_target_name_may_not_shadow_a_backend_target() {
    let error = parse(
        "collectors:\n  redis:\n    targets:\n      - {name: cache, address: 'redis://127.0.0.1:6379'}\n  probe:\n    targets:\n      - {name: cache, url: 'http://127.0.0.1/'}\n",
    )
    .expect_err("shadowed");
    assert_eq!(
        error,
        "/etc/opsmon.yml:7:16: collectors.probe.targets[0].name: duplicate target \"cache\"; a probe target's name must differ from the PostgreSQL and Redis targets' (all are served by /probe?target=NAME)"
    );
}

/// A server that answers every request on one connection with `response`
/// and records the request heads it read.
async fn one_answer_server(response: Vec<u8>) -> (std::net::SocketAddr, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut head = Vec::new();
        let mut buffer = [0u8; 1024];
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut buffer).await.expect("read");
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buffer[..n]);
        }
        // The client may close early (read limit): a failed write is expected.
        let _ = stream.write_all(&response).await;
        String::from_utf8_lossy(&head).into_owned()
    });
    (address, server)
}

#[tokio::test]
async fn a_read_limit_stops_reading_and_a_range_accepts_206() {
    let body = vec![b'v'; 256 << 10];
    let mut response = format!(
        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes 0-{}/99999999\r\nX-Cache: HIT\r\n\r\n",
        body.len(),
        body.len() - 1
    )
    .into_bytes();
    response.extend_from_slice(&body);
    let (address, server) = one_answer_server(response).await;
    let plan = ReadPlan {
        read_limit: Some(10_000),
        range: Some(ByteRange::parse("bytes=0-262143").expect("valid")),
    };
    let module = ModuleConfig { valid_status_codes: vec![StatusCode(200)], ..ModuleConfig::cdn() };
    let outcome = http::probe(
        &http::TlsConfigs::default(),
        &url(&format!("http://{address}/video.mp4")),
        &module,
        &plan,
        None,
        Instant::now() + Duration::from_secs(5),
    )
    .await;
    let head = server.await.expect("joins");
    assert!(head.to_ascii_lowercase().contains("\r\nrange: bytes=0-262143\r\n"), "{head}");
    assert!(outcome.success, "206 answers a range request: {outcome:?}");
    assert_eq!(outcome.status, 206);
    assert_eq!(outcome.body_bytes, 10_000, "read up to the limit, not a byte more");
    assert!(outcome.body_truncated);
    assert_eq!(outcome.content_length, (256 << 10) as f64, "the header as sent");
    assert_eq!(classify(outcome.cdn.as_ref().and_then(|c| c.cache_status.as_deref())), CacheResult::Hit);

    // Without a range, 206 is not in this module's valid_status_codes.
    let response = b"HTTP/1.1 206 Partial Content\r\nContent-Length: 3\r\n\r\nabc".to_vec();
    let (address, _server) = one_answer_server(response).await;
    let outcome = http::probe(
        &http::TlsConfigs::default(),
        &url(&format!("http://{address}/")),
        &module,
        &ReadPlan { read_limit: Some(10_000), range: None },
        None,
        Instant::now() + Duration::from_secs(5),
    )
    .await;
    assert!(!outcome.success);
    assert_eq!((outcome.body_bytes, outcome.body_truncated), (3, false), "a short body is read whole");
}
