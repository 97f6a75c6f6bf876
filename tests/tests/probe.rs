//! The probe collector end to end: the real exporter binary probing a
//! stand-in API/CDN server that runs inside this test process (hyper on
//! loopback, plain and TLS with a self-signed rcgen certificate), plus a
//! socket that accepts and never answers. Checks the blackbox-compatible
//! families against Debian's prometheus-blackbox-exporter on the same URLs.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use opsmon_e2e::{
    FamilyInfo, Process, free_port, get, get_with, parse_exposition, promtool_problems, require_tool,
};

/// The test certificate's `notAfter`: 2031-05-17T00:00:00Z (`date -ud 2031-05-17 +%s`).
const CERT_NOT_AFTER: f64 = 1_936_742_400.0;
/// Gap in the middle of `/slow`'s body.
const SLOW_GAP: Duration = Duration::from_millis(400);
/// What `/huge` would send in full.
const HUGE_TOTAL: u64 = 64 << 20;
/// X-Cache values of `/cdn/seq`, one per request, repeating.
const CDN_SEQUENCE: [&str; 5] = [
    "Hit from cloudfront",
    "Miss from cloudfront",
    "HIT from cloudfront",
    "RefreshHit from cloudfront",
    "Hit from cloudfront",
];
const HEALTH_BODY: &str = r#"{"status":"ok"}"#;

/// An API and CDN stand-in: plain HTTP, TLS, and a port that never answers.
struct StandIn {
    /// Runs the servers; dropping it ends them and closes held sockets.
    _runtime: tokio::runtime::Runtime,
    http: SocketAddr,
    https: SocketAddr,
    hang: SocketAddr,
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    cdn_requests: AtomicUsize,
    huge_bytes_sent: AtomicU64,
    /// Requests of `/counted` and of `/counted/slow`.
    counted: AtomicUsize,
    slow_counted: AtomicUsize,
    /// The `Range` header of the last `/ranged` request.
    last_range: std::sync::Mutex<Option<String>>,
}

/// What `/ranged` sends without a `Range` header.
const RANGED_TOTAL: usize = 4 << 20;
/// How long `/counted/slow` takes to answer.
const SLOW_ANSWER: Duration = Duration::from_secs(1);

type Body = BoxBody<Bytes, Infallible>;

fn full(status: u16, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
}

async fn handle(
    request: Request<hyper::body::Incoming>,
    state: Arc<State>,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_owned();
    let response = match path.as_str() {
        "/api/v1/health" => {
            let mut response = full(200, HEALTH_BODY);
            response.headers_mut().insert("content-type", "application/json".parse().unwrap());
            response
        }
        "/api/v1/down" => full(503, r#"{"status":"down"}"#),
        "/slow" => {
            let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(1);
            tokio::spawn(async move {
                let _ = sender.send_data(Bytes::from(vec![b'a'; 1024])).await;
                tokio::time::sleep(SLOW_GAP).await;
                let _ = sender.send_data(Bytes::from(vec![b'b'; 1024])).await;
            });
            let mut response = Response::new(body.boxed());
            response.headers_mut().insert("content-length", "2048".parse().unwrap());
            response
        }
        "/huge" => {
            let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(1);
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let chunk = Bytes::from(vec![b'x'; 64 << 10]);
                let mut sent = 0;
                while sent < HUGE_TOTAL && sender.send_data(chunk.clone()).await.is_ok() {
                    sent += chunk.len() as u64;
                    state.huge_bytes_sent.store(sent, Ordering::Relaxed);
                }
            });
            Response::new(body.boxed())
        }
        "/cdn/seq" => {
            let index = state.cdn_requests.fetch_add(1, Ordering::Relaxed);
            let mut response = full(200, vec![0u8; 256 << 10]);
            let headers = response.headers_mut();
            headers.insert("x-cache", CDN_SEQUENCE[index % CDN_SEQUENCE.len()].parse().unwrap());
            headers.insert("age", "42".parse().unwrap());
            response
        }
        "/to-localhost" => {
            // Same server, but by a name a narrower allow-list may not cover.
            let host = request.headers().get("host").and_then(|h| h.to_str().ok()).unwrap_or_default();
            let port = host.rsplit(':').next().unwrap_or_default();
            let mut response = full(302, "");
            let location = format!("http://localhost:{port}/api/v1/health");
            response.headers_mut().insert("location", location.parse().unwrap());
            response
        }
        "/counted" => {
            state.counted.fetch_add(1, Ordering::SeqCst);
            full(200, "counted")
        }
        "/counted/slow" => {
            state.slow_counted.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(SLOW_ANSWER).await;
            full(200, "slow")
        }
        "/ranged" => {
            let range = request.headers().get("range").and_then(|v| v.to_str().ok()).map(str::to_owned);
            *state.last_range.lock().unwrap() = range.clone();
            // Only `bytes=0-N` is served as a range; anything else gets the whole object.
            let last = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes=0-"))
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n < RANGED_TOTAL);
            match last {
                Some(last) => {
                    let mut response = full(206, vec![b'r'; last + 1]);
                    let content_range = format!("bytes 0-{last}/{RANGED_TOTAL}");
                    response.headers_mut().insert("content-range", content_range.parse().unwrap());
                    response.headers_mut().insert("x-cache", "TCP_HIT".parse().unwrap());
                    response
                }
                None => full(200, vec![b'r'; RANGED_TOTAL]),
            }
        }
        "/cdn/cf" => {
            let mut response = full(200, vec![0u8; 64 << 10]);
            response.headers_mut().insert("cf-cache-status", "DYNAMIC".parse().unwrap());
            response
        }
        path => match path.strip_prefix("/redirect/").and_then(|n| n.parse::<u32>().ok()) {
            Some(0) => full(200, "landed"),
            Some(n) => {
                let mut response = full(302, "");
                response.headers_mut().insert("location", format!("/redirect/{}", n - 1).parse().unwrap());
                response
            }
            None => full(404, "not found"),
        },
    };
    Ok(response)
}

async fn serve_connection<IO>(io: IO, state: Arc<State>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| handle(request, Arc::clone(&state)));
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service).await;
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2031, 5, 17);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

impl StandIn {
    fn start() -> StandIn {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let state = Arc::new(State::default());
        let bind = || runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let (http, https, hang) = (bind(), bind(), bind());
        let addresses = (http.local_addr().unwrap(), https.local_addr().unwrap(), hang.local_addr().unwrap());

        let shared = Arc::clone(&state);
        runtime.spawn(async move {
            while let Ok((stream, _)) = http.accept().await {
                tokio::spawn(serve_connection(stream, Arc::clone(&shared)));
            }
        });
        let shared = Arc::clone(&state);
        let acceptor = tls_acceptor();
        runtime.spawn(async move {
            while let Ok((stream, _)) = https.accept().await {
                let (acceptor, shared) = (acceptor.clone(), Arc::clone(&shared));
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve_connection(stream, shared).await;
                    }
                });
            }
        });
        // Accepts and holds every connection without reading or answering.
        runtime.spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = hang.accept().await {
                held.push(stream);
            }
        });
        StandIn { _runtime: runtime, http: addresses.0, https: addresses.1, hang: addresses.2, state }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    fn tls_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.https)
    }
}

/// The exporter with `config` as its config file.
fn exporter(config: &str) -> (Process, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opsmon.yml");
    std::fs::write(&path, config).unwrap();
    let process = Process::exporter(&["--config.file", path.to_str().unwrap(), "--log.level=debug"]);
    (process, dir)
}

fn scrape(exporter: &Process) -> BTreeMap<String, FamilyInfo> {
    let response = get(&exporter.url("/metrics")).unwrap();
    assert_eq!(response.status, 200);
    parse_exposition(&response.text())
}

fn value(families: &BTreeMap<String, FamilyInfo>, name: &str, labels: &[(&str, &str)]) -> f64 {
    families
        .get(name)
        .and_then(|family| family.value(labels))
        .unwrap_or_else(|| panic!("no {name}{labels:?} in the scrape"))
}

/// Families, types and label names agree with the catalog.
fn assert_matches_catalog(families: &BTreeMap<String, FamilyInfo>) {
    for (name, family) in families {
        let def =
            opsmon_catalog::find(name).unwrap_or_else(|| panic!("{name} is emitted but not in the catalog"));
        assert_eq!(family.metric_type, def.metric_type.as_str(), "{name}: type");
        let expected: std::collections::BTreeSet<String> =
            def.labels.iter().map(|l| (*l).to_owned()).collect();
        assert_eq!(family.label_names, expected, "{name}: label names");
    }
}

#[test]
fn http_targets_report_status_regex_redirects_and_caps() {
    let stand_in = StandIn::start();
    let (exporter, _dir) = exporter(&format!(
        "collectors:
  host: {{enabled: false}}
  probe:
    modules:
      healthy_body:
        fail_if_body_not_matches_regexp: ['\"status\":\\s*\"healthy\"']
      not_down:
        fail_if_body_matches_regexp: ['down']
        valid_status_codes: [503]
      no_follow:
        follow_redirects: false
      small:
        body_size_limit: 1MiB
    targets:
      - {{name: health, url: '{health}'}}
      - {{name: health_by_name, url: 'http://localhost:{port}/api/v1/health', module: http_2xx}}
      - {{name: down, url: '{down}'}}
      - {{name: regex, url: '{health}', module: healthy_body}}
      - {{name: regex_on_503, url: '{down}', module: not_down}}
      - {{name: redirected, url: '{redirect}'}}
      - {{name: not_followed, url: '{redirect}', module: no_follow}}
      - {{name: too_many, url: '{eleven}'}}
      - {{name: huge, url: '{huge}', module: small}}
",
        health = stand_in.url("/api/v1/health"),
        port = stand_in.http.port(),
        down = stand_in.url("/api/v1/down"),
        redirect = stand_in.url("/redirect/3"),
        eleven = stand_in.url("/redirect/11"),
        huge = stand_in.url("/huge"),
    ));
    let started = Instant::now();
    let families = scrape(&exporter);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    let v = |name: &str, target: &str| value(&families, name, &[("target", target)]);

    assert_eq!(v("probe_success", "health"), 1.0);
    assert_eq!(v("probe_http_status_code", "health"), 200.0);
    assert_eq!(v("probe_http_version", "health"), 1.1);
    assert_eq!(v("probe_http_content_length", "health"), HEALTH_BODY.len() as f64);
    assert_eq!(v("probe_http_redirects", "health"), 0.0);
    assert_eq!(v("probe_failed_due_to_regex", "health"), 0.0);
    assert_eq!(v("probe_dns_lookup_time_seconds", "health"), 0.0, "an IP address needs no lookup");
    assert!(v("probe_duration_seconds", "health") > 0.0);
    for phase in ["connect", "processing"] {
        let seconds =
            value(&families, "probe_http_duration_seconds", &[("phase", phase), ("target", "health")]);
        assert!(seconds > 0.0 && seconds < 1.0, "{phase}: {seconds}");
    }
    assert_eq!(
        value(&families, "probe_http_duration_seconds", &[("phase", "tls"), ("target", "health")]),
        0.0
    );
    assert!(!families.contains_key("probe_ssl_earliest_cert_expiry"), "no TLS, no expiry");

    assert_eq!(v("probe_success", "health_by_name"), 1.0, "{}", exporter.log());
    assert!(v("probe_dns_lookup_time_seconds", "health_by_name") > 0.0, "localhost is looked up");
    let resolve = value(
        &families,
        "probe_http_duration_seconds",
        &[("phase", "resolve"), ("target", "health_by_name")],
    );
    assert_eq!(resolve, v("probe_dns_lookup_time_seconds", "health_by_name"));

    assert_eq!(v("probe_success", "down"), 0.0);
    assert_eq!(v("probe_http_status_code", "down"), 503.0);
    assert_eq!(v("probe_failed_due_to_regex", "down"), 0.0);

    assert_eq!(v("probe_success", "regex"), 0.0);
    assert_eq!(v("probe_http_status_code", "regex"), 200.0);
    assert_eq!(v("probe_failed_due_to_regex", "regex"), 1.0);
    assert_eq!(v("probe_success", "regex_on_503"), 0.0, "503 is valid here, but the body says down");
    assert_eq!(v("probe_failed_due_to_regex", "regex_on_503"), 1.0);

    assert_eq!(v("probe_success", "redirected"), 1.0);
    assert_eq!(v("probe_http_redirects", "redirected"), 3.0);
    assert_eq!(v("probe_http_status_code", "redirected"), 200.0);
    assert_eq!(v("probe_success", "not_followed"), 0.0);
    assert_eq!(v("probe_http_status_code", "not_followed"), 302.0);
    assert_eq!(v("probe_http_redirects", "not_followed"), 1.0, "counted like blackbox");
    assert_eq!(v("probe_success", "too_many"), 0.0, "at most 10 redirects are followed");
    assert_eq!(v("probe_http_status_code", "too_many"), 302.0);
    assert_eq!(v("probe_http_redirects", "too_many"), 11.0);

    assert_eq!(v("probe_success", "huge"), 0.0);
    assert_eq!(v("probe_http_status_code", "huge"), 200.0);
    assert_eq!(v("probe_http_content_length", "huge"), -1.0, "chunked: unknown length, as Go reports it");
    std::thread::sleep(Duration::from_millis(200));
    let sent = stand_in.state.huge_bytes_sent.load(Ordering::Relaxed);
    assert!(sent < 16 << 20, "stopped reading near the 1 MiB cap; the server sent {sent} bytes");
    assert!(exporter.log().contains("larger than body_size_limit"), "{}", exporter.log());

    assert_eq!(value(&families, "opsmon_exporter_collector_success", &[("collector", "probe")]), 1.0);
    assert_matches_catalog(&families);
    let text = get(&exporter.url("/metrics")).unwrap().text();
    let problems = promtool_problems(&text);
    assert!(problems.is_empty(), "promtool check metrics:\n{}", problems.join("\n"));
}

#[test]
fn slow_transfer_is_timed_as_transfer() {
    let stand_in = StandIn::start();
    let (exporter, _dir) = exporter(&format!(
        "collectors:\n  host: {{enabled: false}}\n  probe:\n    targets:\n      - {{name: slow, url: '{}'}}\n",
        stand_in.url("/slow")
    ));
    let families = scrape(&exporter);
    let phase = |phase: &str| {
        value(&families, "probe_http_duration_seconds", &[("phase", phase), ("target", "slow")])
    };
    assert_eq!(value(&families, "probe_success", &[("target", "slow")]), 1.0, "{}", exporter.log());
    assert_eq!(value(&families, "probe_http_content_length", &[("target", "slow")]), 2048.0);
    assert!(phase("transfer") >= SLOW_GAP.as_secs_f64(), "transfer {}", phase("transfer"));
    assert!(phase("processing") < SLOW_GAP.as_secs_f64(), "processing {}", phase("processing"));
}

#[test]
fn a_target_that_never_answers_fails_within_its_timeout() {
    let stand_in = StandIn::start();
    let (exporter, _dir) = exporter(&format!(
        "collectors:
  host: {{enabled: false}}
  probe:
    modules:
      quick: {{timeout: 1s}}
    targets:
      - {{name: hangs, url: 'http://{hang}/api/v1/health', module: quick}}
      - {{name: hangs_long, url: 'http://{hang}/', module: http_2xx}}
      - {{name: health, url: '{health}'}}
",
        hang = stand_in.hang,
        health = stand_in.url("/api/v1/health"),
    ));
    let started = Instant::now();
    let response =
        get_with(&exporter.url("/metrics"), &[("X-Prometheus-Scrape-Timeout-Seconds", "3")]).unwrap();
    let took = started.elapsed();
    let families = parse_exposition(&response.text());
    let v = |name: &str, target: &str| value(&families, name, &[("target", target)]);
    // The 5 s module timeout of http_2xx is cut to the scrape budget (3 s - 0.5 s offset).
    assert!(took >= Duration::from_millis(2400) && took < Duration::from_millis(3000), "took {took:?}");
    assert_eq!(v("probe_success", "hangs"), 0.0);
    let duration = v("probe_duration_seconds", "hangs");
    assert!((0.95..1.5).contains(&duration), "fails at its 1 s timeout: {duration}");
    assert_eq!(v("probe_http_status_code", "hangs"), 0.0);
    assert_eq!(v("probe_success", "hangs_long"), 0.0);
    let duration = v("probe_duration_seconds", "hangs_long");
    assert!((2.3..2.5).contains(&duration), "fails at the scrape deadline: {duration}");
    assert_eq!(v("probe_success", "health"), 1.0, "one hanging target does not hold back the others");
    assert_eq!(value(&families, "opsmon_exporter_collector_success", &[("collector", "probe")]), 1.0);
    assert!(exporter.log().contains("while waiting for the response"), "{}", exporter.log());
}

#[test]
fn tls_with_a_self_signed_certificate() {
    let stand_in = StandIn::start();
    let (exporter, _dir) = exporter(&format!(
        "collectors:
  host: {{enabled: false}}
  probe:
    modules:
      insecure: {{insecure_skip_verify: true}}
    targets:
      - {{name: verified, url: '{ip}'}}
      - {{name: insecure, url: '{ip}', module: insecure}}
      - {{name: insecure_by_name, url: 'https://localhost:{port}/api/v1/health', module: insecure}}
      - {{name: plain_to_tls_port, url: 'http://127.0.0.1:{port}/api/v1/health'}}
",
        ip = stand_in.tls_url("/api/v1/health"),
        port = stand_in.https.port(),
    ));
    let families = scrape(&exporter);
    let v = |name: &str, target: &str| value(&families, name, &[("target", target)]);
    let tls_phase = |target: &str| {
        value(&families, "probe_http_duration_seconds", &[("phase", "tls"), ("target", target)])
    };

    assert_eq!(v("probe_success", "verified"), 0.0, "a self-signed certificate fails verification");
    assert_eq!(v("probe_http_status_code", "verified"), 0.0);
    assert!(exporter.log().contains("TLS handshake with 127.0.0.1"), "{}", exporter.log());
    assert_eq!(families["probe_ssl_earliest_cert_expiry"].value(&[("target", "verified")]), None);

    for target in ["insecure", "insecure_by_name"] {
        assert_eq!(v("probe_success", target), 1.0, "{target}: {}", exporter.log());
        assert_eq!(v("probe_http_status_code", target), 200.0);
        assert_eq!(v("probe_ssl_earliest_cert_expiry", target), CERT_NOT_AFTER, "{target}");
        assert!(tls_phase(target) > 0.0, "{target}: handshake timed");
    }
    assert_eq!(v("probe_success", "plain_to_tls_port"), 0.0);
    assert_matches_catalog(&families);
}

#[test]
fn cdn_results_are_counted_exactly_with_age_and_throughput() {
    let stand_in = StandIn::start();
    let (exporter, _dir) = exporter(&format!(
        "collectors:
  host: {{enabled: false}}
  probe:
    modules:
      cloudflare: {{cache_status_header: CF-Cache-Status}}
    targets:
      - {{name: cdn_sample, url: '{seq}', module: cdn}}
      - {{name: cf_sample, url: '{cf}', module: cloudflare}}
      - {{name: api, url: '{health}'}}
",
        seq = stand_in.url("/cdn/seq"),
        cf = stand_in.url("/cdn/cf"),
        health = stand_in.url("/api/v1/health"),
    ));
    let count = |families: &BTreeMap<String, FamilyInfo>, target: &str, result: &str| {
        value(families, "opsmon_cdn_cache_requests_total", &[("result", result), ("target", target)])
    };
    let first = scrape(&exporter);
    assert_eq!(first["opsmon_cdn_cache_requests_total"].metric_type, "counter");
    for result in ["miss", "expired", "stale", "bypass", "other"] {
        assert_eq!(count(&first, "cdn_sample", result), 0.0, "{result} starts at 0");
    }
    assert_eq!(count(&first, "cdn_sample", "hit"), 1.0);
    assert_eq!(
        first["opsmon_cdn_cache_requests_total"]
            .samples
            .iter()
            .filter(|(_, l, _)| l["target"] == "api")
            .count(),
        0,
        "no CDN families for a target without a cache header"
    );

    let mut last = first;
    for _ in 1..CDN_SEQUENCE.len() {
        last = scrape(&exporter);
    }
    let expected =
        [("hit", 3.0), ("miss", 1.0), ("expired", 1.0), ("stale", 0.0), ("bypass", 0.0), ("other", 0.0)];
    for (result, n) in expected {
        assert_eq!(count(&last, "cdn_sample", result), n, "cdn_sample {result}");
    }
    assert_eq!(count(&last, "cf_sample", "bypass"), 5.0, "DYNAMIC is bypass");
    assert_eq!(count(&last, "cf_sample", "hit"), 0.0);

    let v = |name: &str, target: &str| value(&last, name, &[("target", target)]);
    assert_eq!(v("opsmon_cdn_age_seconds", "cdn_sample"), 42.0);
    assert_eq!(v("opsmon_cdn_age_seconds", "cf_sample"), 0.0, "no Age header");
    assert!(v("opsmon_cdn_download_bytes_per_second", "cdn_sample") > 0.0);
    assert!(v("opsmon_cdn_download_bytes_per_second", "cf_sample") > 0.0);
    assert_eq!(last["opsmon_cdn_age_seconds"].value(&[("target", "api")]), None);
    assert_matches_catalog(&last);
    let problems = promtool_problems(&get(&exporter.url("/metrics")).unwrap().text());
    assert!(problems.is_empty(), "promtool check metrics:\n{}", problems.join("\n"));
}

fn probe_url(exporter: &Process, target: &str, module: &str) -> String {
    let query: String = form_urlencoded_pairs(&[("target", target), ("module", module)]);
    exporter.url(&format!("/probe?{query}"))
}

fn form_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let encoded: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={encoded}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[test]
fn probe_endpoint_runs_modules_on_allowed_urls_only() {
    let stand_in = StandIn::start();
    // No config file: the built-in http_2xx and cdn modules and the loopback allow-list.
    let exporter = Process::exporter(&["--log.level=debug"]);
    let health = stand_in.url("/api/v1/health");

    let response = get(&probe_url(&exporter, &health, "http_2xx")).unwrap();
    assert_eq!(response.status, 200);
    let families = parse_exposition(&response.text());
    assert_eq!(value(&families, "probe_success", &[("target", &health)]), 1.0);
    assert_eq!(value(&families, "probe_http_status_code", &[("target", &health)]), 200.0);
    assert_eq!(value(&families, "opsmon_exporter_collector_success", &[("collector", "probe")]), 1.0);
    assert!(!families.contains_key("node_load1"), "only the probe and the self metrics");
    assert_matches_catalog(&families);

    let cdn = stand_in.url("/cdn/seq");
    let families = parse_exposition(&get(&probe_url(&exporter, &cdn, "cdn")).unwrap().text());
    assert_eq!(value(&families, "opsmon_cdn_age_seconds", &[("target", &cdn)]), 42.0);
    assert!(!families.contains_key("opsmon_cdn_cache_requests_total"), "no counters for one-off probes");

    // Never connected to: refused before anything is sent (192.0.2.0/24 is TEST-NET-1).
    let response = get(&probe_url(&exporter, "http://192.0.2.1/", "http_2xx")).unwrap();
    assert_eq!(response.status, 400);
    assert!(
        response.text().starts_with("target not allowed by collectors.probe.allowed_targets"),
        "{}",
        response.text()
    );
    let response = get(&probe_url(&exporter, &health, "http_3xx")).unwrap();
    assert_eq!(response.status, 400);
    assert_eq!(response.text(), "unknown module \"http_3xx\"; configured modules: cdn, http_2xx\n");
    let response = get(&exporter.url("/probe?module=http_2xx")).unwrap();
    assert_eq!(response.status, 400);
    assert!(response.text().starts_with("missing target=URL"), "{}", response.text());
    let response = get(&probe_url(&exporter, "http://user:pw-9876@127.0.0.1/", "http_2xx")).unwrap();
    assert_eq!(response.status, 400);
    assert!(!response.text().contains("pw-9876"), "{}", response.text());
    // Without a module, target is still a configured target's name.
    let response =
        get(&exporter.url(&format!("/probe?{}", form_urlencoded_pairs(&[("target", &health)])))).unwrap();
    assert_eq!(response.status, 400);
    assert!(response.text().contains("name of a configured target"), "{}", response.text());

    // A redirect may not lead a request-supplied probe off the allow-list.
    let (narrow, _dir) = exporter_with_allow_list(&stand_in);
    let same_host = stand_in.url("/redirect/1");
    let families = parse_exposition(&get(&probe_url(&narrow, &same_host, "http_2xx")).unwrap().text());
    assert_eq!(value(&families, "probe_success", &[("target", &same_host)]), 1.0);
    assert_eq!(value(&families, "probe_http_redirects", &[("target", &same_host)]), 1.0);
    let elsewhere = stand_in.url("/to-localhost");
    let families = parse_exposition(&get(&probe_url(&narrow, &elsewhere, "http_2xx")).unwrap().text());
    assert_eq!(value(&families, "probe_success", &[("target", &elsewhere)]), 0.0);
    assert!(narrow.log().contains("redirected to a target not allowed"), "{}", narrow.log());
    let response =
        get(&probe_url(&narrow, &format!("http://localhost:{}/", stand_in.http.port()), "http_2xx")).unwrap();
    assert_eq!(response.status, 400, "localhost is not on this list");

    // The scrape timeout header bounds a /probe request too.
    let hang = format!("http://{}/", stand_in.hang);
    let started = Instant::now();
    let response =
        get_with(&probe_url(&exporter, &hang, "http_2xx"), &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")])
            .unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_millis(1500), "took {took:?}");
    let families = parse_exposition(&response.text());
    assert_eq!(value(&families, "probe_success", &[("target", &hang)]), 0.0);
    assert!(!exporter.log().contains("192.0.2.1"), "never logged, never probed: {}", exporter.log());
}

fn exporter_with_allow_list(stand_in: &StandIn) -> (Process, tempfile::TempDir) {
    exporter(&format!(
        "collectors:\n  host: {{enabled: false}}\n  probe:\n    allowed_targets: ['{}/32']\n",
        stand_in.http.ip()
    ))
}

#[test]
fn bad_probe_config_is_a_startup_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "collectors:\n  probe:\n    modules:\n      api:\n        fail_if_body_matches_regexp: ['(down']\n",
            ":5:39: invalid regex \"(down\"",
        ),
        (
            "collectors:\n  probe:\n    modules:\n      api:\n        headers: {'X Api': abc}\n",
            ":5:19: invalid HTTP header name \"X Api\"",
        ),
        (
            "collectors:\n  probe:\n    targets:\n      - name: api\n        url: http://127.0.0.1:3000/\n        module: htp_2xx\n",
            ":6:17: collectors.probe.targets[0].module: unknown module \"htp_2xx\"; configured modules: cdn, http_2xx; did you mean `http_2xx`?",
        ),
    ];
    for (index, (yaml, expected)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{index}.yml"));
        std::fs::write(&path, yaml).unwrap();
        let output = std::process::Command::new(opsmon_e2e::exporter_bin())
            .args(["--config.check", &format!("--config.file={}", path.display())])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(2), "{text}");
        assert!(text.contains(&format!("{}{expected}", path.display())), "expected {expected:?} in:\n{text}");
    }
}

/// Families `/probe` of both exporters report for `target` with their module.
fn both_probes(
    ours: &Process,
    blackbox: &Process,
    target: &str,
    module: &str,
) -> (BTreeMap<String, FamilyInfo>, BTreeMap<String, FamilyInfo>) {
    let our_text = get(&probe_url(ours, target, module)).unwrap().text();
    let their_text = get(&probe_url(blackbox, target, module)).unwrap().text();
    let ours: BTreeMap<String, FamilyInfo> =
        parse_exposition(&our_text).into_iter().filter(|(name, _)| name.starts_with("probe_")).collect();
    (ours, parse_exposition(&their_text))
}

#[test]
fn blackbox_exporter_agrees_on_names_types_labels_and_values() {
    let stand_in = StandIn::start();
    let blackbox_bin = require_tool("prometheus-blackbox-exporter", "prometheus-blackbox-exporter");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("blackbox.yml");
    std::fs::write(
        &config,
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n  insecure:\n    prober: http\n    timeout: 5s\n    http:\n      tls_config:\n        insecure_skip_verify: true\n",
    )
    .unwrap();
    let port = free_port();
    let blackbox = Process::start(
        &blackbox_bin,
        &[format!("--config.file={}", config.display()), format!("--web.listen-address=127.0.0.1:{port}")],
        port,
        "/-/healthy",
    );
    let (ours, _our_dir) = exporter(
        "collectors:\n  host: {enabled: false}\n  probe:\n    modules:\n      insecure: {insecure_skip_verify: true}\n",
    );

    let cases = [
        (stand_in.url("/api/v1/health"), "http_2xx"),
        (stand_in.url("/api/v1/down"), "http_2xx"),
        (stand_in.url("/redirect/2"), "http_2xx"),
        (stand_in.tls_url("/api/v1/health"), "insecure"),
    ];
    for (target, module) in &cases {
        let (our_families, their_families) = both_probes(&ours, &blackbox, target, module);
        assert!(our_families.len() >= 9, "{target}: {our_families:?}");
        for (name, ours) in &our_families {
            let theirs = their_families
                .get(name)
                .unwrap_or_else(|| panic!("{target}: {name} is not emitted by blackbox_exporter"));
            assert_eq!(ours.metric_type, theirs.metric_type, "{target}: {name} type");
            let mut labels = ours.label_names.clone();
            assert!(labels.remove("target"), "{name} carries target");
            assert_eq!(labels, theirs.label_names, "{target}: {name} label names apart from target");
        }
        let ours_value = |name: &str| our_families[name].value(&[("target", target)]).unwrap();
        let theirs_value = |name: &str| their_families[name].value(&[]).unwrap();
        for name in [
            "probe_success",
            "probe_http_status_code",
            "probe_http_content_length",
            "probe_http_version",
            "probe_http_redirects",
            "probe_failed_due_to_regex",
        ] {
            assert_eq!(ours_value(name), theirs_value(name), "{target}: {name}");
        }
        if target.starts_with("https") {
            assert_eq!(ours_value("probe_ssl_earliest_cert_expiry"), CERT_NOT_AFTER);
            assert_eq!(theirs_value("probe_ssl_earliest_cert_expiry"), CERT_NOT_AFTER, "{target}");
        }
        let phases = |families: &BTreeMap<String, FamilyInfo>| -> std::collections::BTreeSet<String> {
            families["probe_http_duration_seconds"]
                .samples
                .iter()
                .map(|(_, l, _)| l["phase"].clone())
                .collect()
        };
        assert_eq!(phases(&our_families), phases(&their_families), "{target}: phases");
    }
}

#[test]
fn an_interval_serves_the_cached_result_and_one_probe_serves_concurrent_scrapes() {
    let stand_in = StandIn::start();
    let (exporter, _dir) = exporter(&format!(
        "collectors:
  host: {{enabled: false}}
  probe:
    targets:
      - {{name: cached, url: '{counted}', interval: 1m}}
      - {{name: slow, url: '{slow}'}}
",
        counted = stand_in.url("/counted"),
        slow = stand_in.url("/counted/slow"),
    ));
    let first = scrape(&exporter);
    let v = |families: &BTreeMap<String, FamilyInfo>, name: &str, target: &str| {
        value(families, name, &[("target", target)])
    };
    assert_eq!(v(&first, "probe_success", "cached"), 1.0);
    assert!(v(&first, "opsmon_probe_result_age_seconds", "cached") < 0.5, "probed by this scrape");
    std::thread::sleep(Duration::from_millis(300));
    let second = scrape(&exporter);
    assert_eq!(stand_in.state.counted.load(Ordering::SeqCst), 1, "within the interval: no second request");
    assert_eq!(
        v(&second, "probe_duration_seconds", "cached"),
        v(&first, "probe_duration_seconds", "cached"),
        "the cached result keeps its own duration"
    );
    let age = v(&second, "opsmon_probe_result_age_seconds", "cached");
    assert!((0.3..5.0).contains(&age), "age {age}");
    // The named /probe form serves the same cached result.
    let named = parse_exposition(
        &get(&exporter.url(&format!("/probe?{}", form_urlencoded_pairs(&[("target", "cached")]))))
            .unwrap()
            .text(),
    );
    assert_eq!(v(&named, "probe_success", "cached"), 1.0);
    assert_eq!(v(&named, "probe_duration_seconds", "cached"), v(&first, "probe_duration_seconds", "cached"));
    assert_eq!(stand_in.state.counted.load(Ordering::SeqCst), 1, "/probe?target=NAME is cached too");
    // /metrics probed the slow target twice so far (no interval: every scrape).
    assert_eq!(stand_in.state.slow_counted.load(Ordering::SeqCst), 2);

    // Three scrapes at once while the slow target answers: one request.
    let slow_url = exporter.url(&format!("/probe?{}", form_urlencoded_pairs(&[("target", "slow")])));
    let scrapes: Vec<_> = (0..3)
        .map(|_| {
            let url = slow_url.clone();
            std::thread::spawn(move || parse_exposition(&get(&url).unwrap().text()))
        })
        .collect();
    for scrape in scrapes {
        let families = scrape.join().unwrap();
        assert_eq!(v(&families, "probe_success", "slow"), 1.0);
    }
    assert_eq!(
        stand_in.state.slow_counted.load(Ordering::SeqCst),
        3,
        "single flight: one request for three scrapes"
    );
    assert_matches_catalog(&second);
}

#[test]
fn a_large_cdn_object_is_sampled_not_downloaded() {
    let stand_in = StandIn::start();
    let (exporter, _dir) = exporter(&format!(
        "collectors:
  host: {{enabled: false}}
  probe:
    targets:
      - {{name: video, url: '{huge}', module: cdn}}
      - {{name: first_kib, url: '{ranged}', module: cdn, range: bytes=0-1023}}
      - {{name: whole, url: '{ranged}', module: cdn, max_body_bytes: 8KiB}}
      - {{name: health, url: '{health}'}}
",
        huge = stand_in.url("/huge"),
        ranged = stand_in.url("/ranged"),
        health = stand_in.url("/api/v1/health"),
    ));
    let families = scrape(&exporter);
    let v = |name: &str, target: &str| value(&families, name, &[("target", target)]);
    assert_eq!(v("probe_success", "video"), 1.0, "1 MiB read, then stopped: {}", exporter.log());
    assert!(v("opsmon_cdn_download_bytes_per_second", "video") > 0.0);
    std::thread::sleep(Duration::from_millis(200));
    let sent = stand_in.state.huge_bytes_sent.load(Ordering::Relaxed);
    assert!(sent < 16 << 20, "the exporter stopped near 1 MiB of 64 MiB; the server sent {sent} bytes");

    assert_eq!(v("probe_success", "first_kib"), 1.0);
    assert_eq!(v("probe_http_status_code", "first_kib"), 206.0);
    assert_eq!(v("probe_http_content_length", "first_kib"), 1024.0);
    assert_eq!(
        value(&families, "opsmon_cdn_cache_result", &[("result", "hit"), ("target", "first_kib")]),
        1.0
    );
    assert_eq!(v("probe_success", "whole"), 1.0, "8 KiB of 4 MiB read: still a success");
    assert_eq!(v("probe_http_status_code", "whole"), 200.0);
    assert_eq!(v("probe_success", "health"), 1.0);
    assert!(!exporter.log().contains("larger than body_size_limit"), "{}", exporter.log());

    // The stand-in saw our Range header (the two /ranged targets run concurrently: check one alone).
    let families = parse_exposition(
        &get(&exporter.url(&format!("/probe?{}", form_urlencoded_pairs(&[("target", "first_kib")]))))
            .unwrap()
            .text(),
    );
    assert_eq!(value(&families, "probe_http_status_code", &[("target", "first_kib")]), 206.0);
    assert_eq!(stand_in.state.last_range.lock().unwrap().as_deref(), Some("bytes=0-1023"));
}

#[test]
fn an_ad_hoc_cdn_probe_reports_its_cache_result() {
    let stand_in = StandIn::start();
    let exporter = Process::exporter(&["--log.level=debug"]);
    let cdn = stand_in.url("/cdn/seq");
    let result = |families: &BTreeMap<String, FamilyInfo>, result: &str| {
        value(families, "opsmon_cdn_cache_result", &[("result", result), ("target", &cdn)])
    };
    // CDN_SEQUENCE: a hit, then a miss, then a refresh (expired).
    for expected in ["hit", "miss", "hit", "expired"] {
        let families = parse_exposition(&get(&probe_url(&exporter, &cdn, "cdn")).unwrap().text());
        assert_eq!(families["opsmon_cdn_cache_result"].metric_type, "gauge");
        for other in ["hit", "miss", "expired", "stale", "bypass", "other"] {
            assert_eq!(
                result(&families, other),
                f64::from(u8::from(other == expected)),
                "{expected}: {other}"
            );
        }
        assert!(!families.contains_key("opsmon_probe_result_age_seconds"), "one-off probes are never cached");
        assert_matches_catalog(&families);
    }
    assert_eq!(stand_in.state.cdn_requests.load(Ordering::SeqCst), 4, "every ad-hoc request probes");
    let health = stand_in.url("/api/v1/health");
    let families = parse_exposition(&get(&probe_url(&exporter, &health, "http_2xx")).unwrap().text());
    assert!(!families.contains_key("opsmon_cdn_cache_result"), "not a CDN module");
}
