//! `rulegen report` against real servers: Prometheus scrapes the real
//! exporter (watching a real PostgreSQL, a real Redis and a backup
//! directory) and evaluates the generated rules; then Redis is stopped and
//! the backup is stale, and the report must mark exactly those two items
//! critical. The HTML report is parsed (well-formed, self-contained) and
//! screenshotted with headless Chromium; bad input (unreachable server,
//! HTTP 500, bad --at) gives a clear message and exit 2, never a panic; the
//! shipped systemd timer and service verify.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

use opsmon_e2e::servers::{PgServer, RedisServer};
use opsmon_e2e::{Process, exporter_bin, free_port, get, require_tool};

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

/// The rulegen binary built beside the exporter (same profile).
fn rulegen_bin() -> PathBuf {
    let bin = exporter_bin().with_file_name("rulegen");
    assert!(bin.exists(), "{} is missing: cargo build --release --workspace", bin.display());
    bin
}

/// deploy/thresholds.yaml with its `checklists:` replaced by `checklists`
/// (the alerts and the known metrics stay the shipped ones).
fn thresholds_with(dir: &Path, checklists: &str) -> PathBuf {
    let shipped = std::fs::read_to_string(repo("deploy/thresholds.yaml")).unwrap();
    let (alerts, _) = shipped.split_once("\nchecklists:\n").expect("a checklists section");
    let path = dir.join("thresholds.yaml");
    std::fs::write(&path, format!("{alerts}\n{checklists}")).unwrap();
    // The receivers file it names, relative to it.
    std::fs::create_dir_all(dir.join("alertmanager")).unwrap();
    std::fs::copy(repo("deploy/alertmanager/receivers.yml"), dir.join("alertmanager/receivers.yml")).unwrap();
    path
}

fn rulegen(thresholds: &Path, args: &[&str]) -> Output {
    Command::new(rulegen_bin())
        .arg(format!("--thresholds={}", thresholds.display()))
        .arg(format!("--exporter-config={}", repo("deploy/opsmon.yml").display()))
        .args(args)
        .output()
        .unwrap()
}

fn wait_for(url: &str, limit: Duration, check: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let body = get(url).map(|r| r.text()).unwrap_or_default();
        if check(&body) {
            return body;
        }
        assert!(started.elapsed() < limit, "gave up waiting on {url}; last answer:\n{body}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

const CHECKLISTS: &str = "checklists:
  overnight: 1h
  items:
    - title: 验证关键服务可用性 (PostgreSQL)
      checklists: [morning]
      alerts: [PostgresDown]
    - title: 验证关键服务可用性 (Redis)
      checklists: [morning]
      alerts: [RedisDown]
    - title: 确认备份任务执行状态 (newest backup age)
      checklists: [morning]
      alerts: [BackupTooOld]
      expr: 'time() - opsmon_files_newest_timestamp_seconds{name=\"postgres_backup\"}'
      unit: seconds
      critical: {above: 172800}
    - title: 检查系统整体健康状态 (exporter scraped)
      checklists: [morning, evening]
      alerts: [ExporterTargetDown]
    - title: 检查数据库性能指标 (SELECT 1 round trip)
      checklists: [afternoon]
      expr: opsmon_pg_select1_duration_seconds
      unit: seconds
      critical: {above: 5}
    - title: 监控实时用户活跃度 (no business collector here)
      checklists: [afternoon]
      expr: 'sum(smartalk_active_users{window=\"5m\"})'
      compare: true
";

#[test]
fn report_marks_exactly_the_faulty_items_critical() {
    let dir = tempfile::tempdir().unwrap();

    // A backup three days old: stale past BackupTooOld (26 h) and the item's own 2 d.
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let dump = std::fs::File::create(backups.join("smartalk.dump")).unwrap();
    dump.set_modified(SystemTime::now() - Duration::from_secs(3 * 86_400)).unwrap();

    let pg = PgServer::start(&[]);
    let mut redis = RedisServer::start(None, &[]);
    let config = dir.path().join("opsmon.yml");
    std::fs::write(
        &config,
        format!(
            "collectors:\n  postgres:\n    targets:\n      - name: main\n        dsn: {dsn}\n        password_env: OPSMON_TEST_PG_PASSWORD\n\
             \x20 redis:\n    targets:\n      - name: cache\n        address: {redis}\n\
             \x20 files:\n    paths:\n      - name: postgres_backup\n        glob: {backups}/*.dump\n",
            dsn = pg.url_without_password("postgres"),
            redis = redis.address(),
            backups = backups.display(),
        ),
    )
    .unwrap();
    let exporter = Process::exporter_with_env(
        &["--config.file", config.to_str().unwrap()],
        &[("OPSMON_TEST_PG_PASSWORD", &pg.password)],
    );

    // Prometheus: the shipped config and generated rules, every `for` cut to
    // 1s (promtool's unit tests check the real durations).
    let rules: String = std::fs::read_to_string(repo("deploy/prometheus/rules.yml"))
        .unwrap()
        .lines()
        .map(|line| match line.split_once("for: ") {
            Some((indent, _)) if indent.trim().is_empty() => format!("{indent}for: 1s\n"),
            _ => format!("{line}\n"),
        })
        .collect();
    let fast_rules = dir.path().join("rules.yml");
    std::fs::write(&fast_rules, rules).unwrap();
    let prom_config = std::fs::read_to_string(repo("deploy/prometheus/prometheus.yml"))
        .unwrap()
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("scrape_timeout: 10s", "scrape_timeout: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
        .replace("127.0.0.1:19100", &format!("127.0.0.1:{}", exporter.port))
        .replace("  - rules.yml", &format!("  - {}", fast_rules.display()));
    let prometheus = Process::prometheus(dir.path(), &prom_config, &[]);
    let prom_port = prometheus.port;
    let base = format!("http://127.0.0.1:{prom_port}");
    let api = |query: &str| format!("{base}/api/v1/query?query={query}");

    // Healthy first: both backends answer through Prometheus.
    wait_for(&api("min(pg_up)%2Bmin(redis_up)"), Duration::from_secs(30), |b| b.contains("\"2\"]"));
    // The fault: Redis stops; its alert and the backup's fire.
    redis.stop();
    wait_for(
        &api("ALERTS%7Balertname%3D%22RedisDown%22%2Calertstate%3D%22firing%22%7D"),
        Duration::from_secs(30),
        |b| b.contains("RedisDown"),
    );
    wait_for(
        &api("ALERTS%7Balertname%3D%22BackupTooOld%22%2Calertstate%3D%22firing%22%7D"),
        Duration::from_secs(30),
        |b| b.contains("BackupTooOld"),
    );

    let thresholds = thresholds_with(dir.path(), CHECKLISTS);
    let started = Instant::now();
    let json = rulegen(&thresholds, &["report", "--prometheus", &base, "--format", "json"]);
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&json.stdout);
    let stderr = String::from_utf8_lossy(&json.stderr);
    assert_eq!(json.status.code(), Some(1), "a critical item exits 1:\n{stdout}\n{stderr}");
    assert!(stderr.contains(&format!("asking {base}")), "progress line on stderr: {stderr}");
    eprintln!("report over the whole checklist (3 lists, 6 items): {} ms wall", wall.as_millis());

    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let mut status = std::collections::BTreeMap::new();
    for list in report["checklists"].as_array().unwrap() {
        for item in list["items"].as_array().unwrap() {
            status.insert(
                item["title"].as_str().unwrap().to_owned(),
                item["status"].as_str().unwrap().to_owned(),
            );
        }
    }
    let critical: Vec<&String> = status.iter().filter(|(_, s)| *s == "critical").map(|(t, _)| t).collect();
    assert_eq!(
        critical,
        vec!["确认备份任务执行状态 (newest backup age)", "验证关键服务可用性 (Redis)"],
        "exactly the faulty items are critical: {status:#?}"
    );
    assert_eq!(status["验证关键服务可用性 (PostgreSQL)"], "ok", "{status:#?}");
    assert_eq!(status["检查系统整体健康状态 (exporter scraped)"], "ok", "{status:#?}");
    assert_eq!(status["检查数据库性能指标 (SELECT 1 round trip)"], "ok", "{status:#?}");
    assert_eq!(status["监控实时用户活跃度 (no business collector here)"], "no data", "{status:#?}");
    // The overnight look back saw RedisDown fire (and it is still firing).
    let fired = report["overnight"]["alerts"].as_array().unwrap();
    let redis_down = fired.iter().find(|a| a["name"] == "RedisDown").expect("RedisDown in the night");
    assert_eq!(redis_down["resolved"], false);
    assert_eq!(redis_down["severity"], "critical");

    // Markdown and table say the same; the table has no colour off a terminal.
    let markdown = rulegen(
        &thresholds,
        &["report", "--prometheus", &base, "--checklist", "morning", "--format", "markdown"],
    );
    let text = String::from_utf8_lossy(&markdown.stdout);
    assert_eq!(markdown.status.code(), Some(1), "{text}");
    assert!(text.contains("| 🔴 critical | 验证关键服务可用性 (Redis) | 0 | critical < 1 (RedisDown) | firing: RedisDown (critical) |"), "{text}");
    assert!(text.contains("## Overnight") && !text.contains("下午检查"), "{text}");
    let table = rulegen(&thresholds, &["report", "--prometheus", &base, "--checklist", "afternoon"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert_eq!(table.status.code(), Some(0), "no critical item in the afternoon:\n{text}");
    assert!(text.contains("no data") && !text.contains('\x1b'), "{text}");

    // HTML: one self-contained, well-formed file that Chromium renders.
    let html_path = dir.path().join("report.html");
    let html = rulegen(
        &thresholds,
        &["report", "--prometheus", &base, "--format", "html", "--output", html_path.to_str().unwrap()],
    );
    assert_eq!(html.status.code(), Some(1), "{}", String::from_utf8_lossy(&html.stderr));
    assert!(html.stdout.is_empty(), "--output leaves stdout empty");
    let page = std::fs::read_to_string(&html_path).unwrap();
    check_html(&page);
    screenshot(&html_path, dir.path());

    // The shipped checklists run whole against the same Prometheus: every
    // query is one Prometheus accepts (the rest may have no data here).
    let shipped = repo("deploy/thresholds.yaml");
    for format in ["json", "markdown"] {
        let output = rulegen(&shipped, &["report", "--prometheus", &base, "--format", format]);
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "{format}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!text.contains("query failed") && !text.contains("unexpected answer"), "{text}");
        if format == "markdown"
            && let Some(keep) = std::env::var_os("OPSMON_KEEP_REPORT")
        {
            std::fs::write(keep, text.as_bytes()).unwrap();
        }
    }
}

/// Well-formed (an XML parser reads it whole), sparklines inline, nothing
/// loaded from elsewhere, no script.
fn check_html(page: &str) {
    let body = page.strip_prefix("<!DOCTYPE html>\n").expect("doctype first");
    let doc = roxmltree::Document::parse(body).unwrap_or_else(|e| panic!("not well-formed: {e}\n{page}"));
    let mut svgs = 0;
    for node in doc.descendants().filter(roxmltree::Node::is_element) {
        let name = node.tag_name().name().to_ascii_lowercase();
        assert!(
            !["script", "link", "img", "iframe", "object", "embed"].contains(&name.as_str()),
            "<{name}> in the page"
        );
        for attr in node.attributes() {
            let key = attr.name().to_ascii_lowercase();
            assert!(!key.starts_with("on"), "event handler {key}");
            if ["src", "href", "xlink:href", "action"].contains(&key.as_str()) {
                panic!("external reference {key}={}", attr.value());
            }
        }
        if name == "svg" {
            svgs += 1;
        }
    }
    assert!(svgs >= 6, "one sparkline per item: {svgs}");
    assert!(page.contains("<polyline") || page.contains("<circle"), "at least one sparkline has data");
    assert!(!page.contains("url("), "no CSS fetch");
}

fn screenshot(html: &Path, dir: &Path) {
    let chromium = require_tool("chromium", "chromium");
    let png = dir.join("report.png");
    let output = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,900"])
        .arg(format!("--user-data-dir={}", dir.join("chromium").display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let bytes = std::fs::read(&png).unwrap_or_else(|e| {
        panic!("no screenshot ({e}):\n{}", String::from_utf8_lossy(&output.stderr));
    });
    assert!(
        bytes.len() > 1000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "screenshot is a PNG: {} bytes",
        bytes.len()
    );
    if let Some(keep) = std::env::var_os("OPSMON_KEEP_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }
}

/// A one-shot HTTP server answering every request with `response`.
fn answering(response: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buffer = [0u8; 4096];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    format!("http://{address}")
}

#[test]
fn bad_input_gives_a_clear_message_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let thresholds = thresholds_with(dir.path(), CHECKLISTS);
    let cases: Vec<(Vec<String>, String)> = {
        let nobody = format!("http://127.0.0.1:{}", free_port());
        let failing = answering(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops",
        );
        let not_prometheus = answering(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 6\r\nConnection: close\r\n\r\n<html>",
        );
        vec![
            (
                vec!["--prometheus".into(), nobody.clone()],
                format!("cannot reach Prometheus at {nobody}/api/v1/query"),
            ),
            (
                vec!["--prometheus".into(), failing.clone()],
                format!("Prometheus at {failing}/api/v1/query answered HTTP 500: oops"),
            ),
            (
                vec!["--prometheus".into(), not_prometheus.clone()],
                format!("Prometheus at {not_prometheus}/api/v1/query gave an unexpected answer: not JSON"),
            ),
            (
                vec!["--prometheus".into(), "https://ops:s3cret@prometheus.example".into()],
                "cannot reach Prometheus at https://***@prometheus.example: https is not supported".into(),
            ),
            (
                vec!["--prometheus".into(), nobody.clone(), "--at".into(), "yesterday morning".into()],
                "--at \"yesterday morning\": not a date-time; give RFC 3339".into(),
            ),
            (
                vec!["--prometheus".into(), nobody, "--at".into(), "2026-02-30T09:00:00+08:00".into()],
                "--at \"2026-02-30T09:00:00+08:00\": not a date-time".into(),
            ),
        ]
    };
    for (args, expected) in cases {
        let mut all = vec!["report".to_owned()];
        all.extend(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let output = rulegen(&thresholds, &refs);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{refs:?}: {stderr}");
        assert!(stderr.contains(&expected), "{refs:?}:\nexpected {expected}\n     got {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("s3cret"), "{stderr}");
        assert!(output.stdout.is_empty(), "nothing on stdout when it cannot ask");
    }
}

#[test]
fn the_shipped_timer_and_service_verify() {
    let analyze = require_tool("systemd-analyze", "systemd");
    let dir = tempfile::tempdir().unwrap();
    for unit in ["opsmon-report.service", "opsmon-report.timer"] {
        let text = std::fs::read_to_string(repo(&format!("deploy/systemd/{unit}"))).unwrap();
        std::fs::write(
            dir.path().join(unit),
            text.replace("/usr/local/bin/rulegen", rulegen_bin().to_str().unwrap()),
        )
        .unwrap();
    }
    let output = Command::new(analyze)
        .arg("verify")
        .arg(dir.path().join("opsmon-report.timer"))
        .arg(dir.path().join("opsmon-report.service"))
        .output()
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && text.trim().is_empty(), "systemd-analyze verify:\n{text}");
}
