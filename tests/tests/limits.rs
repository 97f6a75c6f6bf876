//! The limits that keep the exporter standing, each tried the way an
//! attacker (or a stuck backend) would: slow probes against /metrics, a
//! nested self-probe, unfinished request heads, more connections than the
//! cap, and floods of rejected requests in the log.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use opsmon_e2e::{Process, get, get_with};

/// A TCP server that accepts connections and never answers: every probe of
/// it lasts until the probe's deadline.
struct Silent {
    port: u16,
    _thread: std::thread::JoinHandle<()>,
}

impl Silent {
    fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        Silent { port, _thread: thread }
    }
}

/// An exporter with a probe target `silent` that never answers, and `args`.
fn exporter_with_silent_target(silent: &Silent, args: &[&str]) -> (Process, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("opsmon.yml");
    std::fs::write(
        &config,
        format!(
            "collectors:\n  host: {{enabled: false}}\n  probe:\n    targets:\n      - {{name: silent, url: 'http://127.0.0.1:{}/'}}\n",
            silent.port
        ),
    )
    .unwrap();
    let mut all = vec!["--config.file", config.to_str().unwrap()];
    all.extend_from_slice(args);
    (Process::exporter(&all), dir)
}

/// Resident memory of `pid` in bytes, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Open descriptors of `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

/// A connection that sent part of a request head and nothing more.
fn unfinished_head(port: u16, filler: usize) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Filler: {}", "a".repeat(filler));
    // Whatever the socket takes without blocking: the exporter may stop
    // reading (and close) once the head passes its limit.
    stream.set_nonblocking(true).unwrap();
    let _ = stream.write(head.as_bytes());
    stream.set_nonblocking(false).unwrap();
    stream
}

/// Sends a whole GET for `path` on `stream` and reads the status line, or
/// `None` if nothing arrives within `wait`.
fn status_within(stream: &mut TcpStream, path: &str, wait: Duration) -> Option<String> {
    stream.set_read_timeout(Some(wait)).unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut buffer = [0_u8; 64];
    let read = stream.read(&mut buffer).ok()?;
    let text = String::from_utf8_lossy(&buffer[..read]).into_owned();
    text.lines().next().map(str::to_owned).filter(|line| !line.is_empty())
}

#[test]
fn slow_probes_do_not_starve_metrics() {
    let silent = Silent::start();
    let (exporter, _dir) = exporter_with_silent_target(&silent, &["--web.max-probe-requests=3"]);
    let probes: Vec<_> = (0..12)
        .map(|_| {
            let target = form_encode(&format!("http://127.0.0.1:{}/", silent.port));
            let url = exporter.url(&format!("/probe?target={target}&module=http_2xx"));
            std::thread::spawn(move || {
                get_with(&url, &[("X-Prometheus-Scrape-Timeout-Seconds", "4")]).unwrap().status
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // Every probe slot is taken by a probe waiting on the silent target;
    // /metrics has slots of its own.
    for _ in 0..5 {
        let metrics = get(&exporter.url("/metrics")).unwrap();
        assert_eq!(metrics.status, 200, "{}", metrics.text());
    }
    let statuses: Vec<u16> = probes.into_iter().map(|p| p.join().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 9, "{statuses:?}");
    // Nine 503s, one log line saying so.
    let log = exporter.log();
    assert_eq!(log.matches("answered 503").count(), 1, "{log}");
    assert!(log.contains("--web.max-probe-requests"), "{log}");
}

#[test]
fn probe_refuses_the_exporters_own_addresses() {
    let silent = Silent::start();
    let (exporter, _dir) = exporter_with_silent_target(&silent, &[]);
    let port = exporter.port;
    let nested = format!(
        "http://127.0.0.1:{port}/probe?target=http://127.0.0.1:{port}/probe?target=x%26module=http_2xx&module=http_2xx"
    );
    for target in [
        nested,
        format!("http://localhost:{port}/metrics"),
        format!("127.0.0.1:{port}/probe"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://127.0.0.2:{port}/"),
    ] {
        let query: String = form_encode(&target);
        let response = get(&exporter.url(&format!("/probe?target={query}&module=http_2xx"))).unwrap();
        assert_eq!(response.status, 400, "{target}: {}", response.text());
        assert!(response.text().contains("own listen address"), "{target}: {}", response.text());
    }
    // Another address of this host reaches /probe only once: the nested
    // request carries the probe's User-Agent and is refused.
    let from_a_probe = get_with(
        &exporter.url(&format!("/probe?target={}&module=http_2xx", form_encode("http://example.invalid/"))),
        &[("User-Agent", "opsmon-exporter/9.9.9")],
    )
    .unwrap();
    assert_eq!(from_a_probe.status, 400, "{}", from_a_probe.text());
    // Other loopback ports stay allowed (the default allow-list is loopback).
    let other = get_with(
        &exporter.url(&format!(
            "/probe?target={}&module=http_2xx",
            form_encode(&format!("http://127.0.0.1:{}/", silent.port))
        )),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "2")],
    )
    .unwrap();
    assert_eq!(other.status, 200, "{}", other.text());
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[test]
fn unfinished_request_heads_keep_memory_bounded() {
    let exporter = Process::exporter(&["--web.max-connections=1000"]);
    let pid = exporter.pid();
    // Warm up: a few scrapes so the baseline includes the collectors' memory.
    for _ in 0..3 {
        assert_eq!(get(&exporter.url("/metrics")).unwrap().status, 200);
    }
    let before = rss_bytes(pid);
    // 300 connections each holding 30 KiB of an unfinished head, and 300 more
    // sending 256 KiB: with hyper's default buffer (~400 KB each) such heads
    // cost 143 MB, past the unit's MemoryMax=128M.
    let held: Vec<TcpStream> = (0..300).map(|_| unfinished_head(exporter.port, 30 * 1024)).collect();
    let big: Vec<TcpStream> = (0..300).map(|_| unfinished_head(exporter.port, 256 * 1024)).collect();
    std::thread::sleep(Duration::from_millis(1500));
    let growth = rss_bytes(pid).saturating_sub(before);
    assert!(growth < 40 << 20, "600 unfinished heads grew RSS by {} MiB", growth >> 20);
    assert_eq!(get(&exporter.url("/metrics")).unwrap().status, 200, "still serving");
    // A head beyond the buffer is refused, not buffered.
    let mut too_big = big.into_iter().next().unwrap();
    too_big.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = Vec::new();
    let _ = too_big.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{answer}");
    drop(held);
}

#[test]
fn connection_cap_is_enforced() {
    let exporter = Process::exporter(&["--web.max-connections=5"]);
    let pid = exporter.pid();
    let fds_before = open_fds(pid);
    let mut held: Vec<TcpStream> = (0..5).map(|_| unfinished_head(exporter.port, 10)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut waiting = TcpStream::connect(("127.0.0.1", exporter.port)).unwrap();
    assert_eq!(
        status_within(&mut waiting, "/-/healthy", Duration::from_millis(1500)),
        None,
        "a sixth connection waits while five are open"
    );
    assert!(open_fds(pid) <= fds_before + 5, "at most five connection descriptors");
    held.truncate(4);
    std::thread::sleep(Duration::from_millis(200));
    let mut buffer = [0_u8; 64];
    waiting.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let read = waiting.read(&mut buffer).unwrap();
    let status = String::from_utf8_lossy(&buffer[..read]).into_owned();
    assert!(status.starts_with("HTTP/1.1 200"), "accepted once a slot frees: {status}");
}

#[test]
fn accept_failures_are_logged_once_a_minute_with_a_count() {
    // 32 descriptors: the connections below run the exporter out of
    // them, so accept() fails with EMFILE again and again.
    let prlimit = opsmon_e2e::require_tool("prlimit", "util-linux");
    let port = opsmon_e2e::free_port();
    let exporter = Process::start(
        &prlimit,
        &[
            "--nofile=32:32".to_owned(),
            opsmon_e2e::exporter_bin().display().to_string(),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--web.max-connections=0".to_owned(),
        ],
        port,
        "/-/ready",
    );
    let held: Vec<TcpStream> = (0..60).filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok()).collect();
    std::thread::sleep(Duration::from_millis(1500));
    let log = exporter.log();
    assert_eq!(log.matches("accept failed").count(), 1, "{log}");
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(&exporter.url("/-/healthy")).unwrap().status, 200, "serves again once descriptors free");
}
