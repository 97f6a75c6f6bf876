//! Tests of the accesslog collector: config errors with their exact texts,
//! and whole-collector runs over real files written by the test.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::metrics::Value;
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

#[test]
fn full_section_parses_and_enables_the_collector() {
    let config = parse(
        "collectors:\n  accesslog:\n    start_at: beginning\n    poll_interval: 250ms\n    files:\n      - path: /var/log/nginx/access.log\n      - path: /var/log/nginx/api.log\n        format: combined\n        start_at: end\n    routes:\n      - name: api\n        prefix: /api/\n    buckets: [0.1, 1, 2]\n    patterns:\n      - file: /var/log/app.log\n        name: error\n        regex: '\\bERROR\\b'\n",
    )
    .expect("valid");
    let section = &config.collectors.accesslog;
    assert!(section.is_enabled());
    assert_eq!(section.files.0.len(), 2);
    assert_eq!(section.files.0[0].format.source(), format::DEFAULT_FORMAT);
    assert!(!section.files.0[1].format.has_duration());
    assert_eq!(section.files.0[1].start_at, Some(StartAt::End));
    assert_eq!(section.start_at, StartAt::Beginning);
    assert_eq!(section.poll_interval.0, Duration::from_millis(250));
    assert_eq!(section.buckets.0, vec![0.1, 1.0, 2.0]);
    assert_eq!(section.routes.0[0].prefix, "/api/");
    assert!(section.patterns.0[0].regex.0.is_match("x ERROR y"));
    assert!(enabled_names(&config).contains(&"accesslog"));

    let defaults = parse("").expect("empty");
    assert!(!defaults.collectors.accesslog.is_enabled());
    assert!(!enabled_names(&defaults).contains(&"accesslog"));
    assert_eq!(defaults.collectors.accesslog.buckets.0, DEFAULT_BUCKETS);
    assert!(DEFAULT_BUCKETS.contains(&1.0) && DEFAULT_BUCKETS[0] < 1.0 && DEFAULT_BUCKETS[9] > 1.0);
}

#[test]
fn errors_name_file_line_column_and_fix() {
    let files = "collectors:\n  accesslog:\n    files:\n      - path: /var/log/a.log\n";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{files}        format: '$remote_addr \"$request\"'\n"),
            "/etc/opsmon.yml:5:17: invalid log format \"$remote_addr \\\"$request\\\"\": the format has no $status; expected nginx log_format syntax with $status and $request (or $request_method) separated by literal text, or `combined`",
        ),
        (
            format!("{files}        format: '$status$request'\n"),
            "/etc/opsmon.yml:5:17: invalid log format \"$status$request\": $status and $request are not separated by literal text, so their values cannot be told apart; expected nginx log_format syntax with $status and $request (or $request_method) separated by literal text, or `combined`",
        ),
        (
            format!("{files}        format: '$request $ status'\n"),
            "/etc/opsmon.yml:5:17: invalid log format \"$request $ status\": `$` at character 10 is not followed by a variable name (letters, digits, `_`, or `${name}`); expected nginx log_format syntax with $status and $request (or $request_method) separated by literal text, or `combined`",
        ),
        (
            format!("{files}        start_at: middle\n"),
            "/etc/opsmon.yml:5:19: unknown variant `middle`, expected one of end, beginning",
        ),
        (
            format!("{files}        fromat: combined\n"),
            "/etc/opsmon.yml:5:9: unknown field `fromat`, expected one of path, format, start_at; did you mean `format`?",
        ),
        (
            format!("{files}      - path: /var/log/a.log\n"),
            "/etc/opsmon.yml:4:7: access log /var/log/a.log is listed twice; list each file once",
        ),
        (
            "collectors:\n  accesslog:\n    files:\n      - path: var/log/a.log\n".into(),
            "/etc/opsmon.yml:4:15: log file path \"var/log/a.log\" is relative; use an absolute path such as /var/log/nginx/access.log",
        ),
        (
            "collectors:\n  accesslog:\n    buckets: [1, 0.5]\n".into(),
            "/etc/opsmon.yml:3:14: invalid buckets [1.0, 0.5]; expected 1 to 40 positive numbers of seconds in strictly increasing order, e.g. [0.1, 0.5, 1, 2.5]",
        ),
        (
            "collectors:\n  accesslog:\n    buckets: []\n".into(),
            "/etc/opsmon.yml:3:14: invalid buckets []; expected 1 to 40 positive numbers of seconds in strictly increasing order, e.g. [0.1, 0.5, 1, 2.5]",
        ),
        (
            "collectors:\n  accesslog:\n    routes:\n      - name: api\n        prefix: /api/\n      - name: api\n        prefix: /v2/\n".into(),
            "/etc/opsmon.yml:4:7: route name \"api\" is used twice; give each route its own name (several prefixes need several routes)",
        ),
        (
            "collectors:\n  accesslog:\n    routes:\n      - name: other\n        prefix: /x/\n".into(),
            "/etc/opsmon.yml:4:7: route name \"other\" is reserved or empty; `other` is what unmatched paths get, pick another name",
        ),
        (
            "collectors:\n  accesslog:\n    routes:\n      - name: api\n        prefix: api/\n".into(),
            "/etc/opsmon.yml:4:7: route \"api\" has prefix \"api/\"; expected a path prefix starting with /, e.g. /api/",
        ),
        (
            "collectors:\n  accesslog:\n    patterns:\n      - file: /var/log/app.log\n        name: error\n        regex: 'ERR('\n".into(),
            "/etc/opsmon.yml:6:16: invalid regex \"ERR(\": error: unclosed group; expected RE2-style syntax (escape literal brackets and dots with \\)",
        ),
        (
            "collectors:\n  accesslog:\n    patterns:\n      - file: /a.log\n        name: e\n        regex: x\n      - file: /a.log\n        name: e\n        regex: y\n".into(),
            "/etc/opsmon.yml:4:7: pattern \"e\" is defined twice for /a.log; pattern names must be unique per file",
        ),
        (
            "collectors:\n  accesslog:\n    poll_interval: 1ms\n".into(),
            "/etc/opsmon.yml:3:20: poll_interval 1ms is too short; expected at least 10ms, e.g. 1s",
        ),
    ];
    for (yaml, expected) in &cases {
        assert_eq!(&first_line(yaml), expected, "for input:\n{yaml}");
    }
}

/// Appends `text` to `path`, creating it.
pub(super) fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("open");
    file.write_all(text.as_bytes()).expect("write");
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/accesslog").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn value(set: &MetricSet, name: &str, labels: &[&str]) -> Option<f64> {
    let family = set.families().iter().find(|f| f.def.name == name)?;
    family.samples.iter().find(|s| s.label_values.iter().map(|v| v.as_ref()).eq(labels.iter().copied())).map(
        |s| match &s.value {
            Value::Number(v) => *v,
            Value::Histogram { count, .. } => *count as f64,
        },
    )
}

fn config(yaml: &str) -> AccesslogConfig {
    parse(yaml).expect("valid config").collectors.accesslog
}

async fn scrape(collector: &AccesslogCollector) -> MetricSet {
    let collected = collector.collect(Instant::now() + Duration::from_secs(5)).await;
    assert!(collected.error.is_none(), "{:?}", collected.error);
    collected.metrics
}

#[tokio::test]
async fn fixture_lines_are_counted_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let access = dir.path().join("access.log");
    let app = dir.path().join("app.log");
    append(&access, "existing line before start-up is not counted\n");
    let collector = AccesslogCollector::new(&config(&format!(
        "collectors:\n  accesslog:\n    files:\n      - path: {}\n    routes:\n      - name: api\n        prefix: /api/\n      - name: video\n        prefix: /videos/\n    buckets: [0.01, 0.1, 1, 2]\n    patterns:\n      - file: {}\n        name: error\n        regex: '\\bERROR\\b'\n      - file: {}\n        name: fatal\n        regex: 'FATAL'\n",
        access.display(),
        app.display(),
        app.display()
    )))
    .expect("collector");
    append(&access, &fixture("default.log"));
    append(&app, &fixture("app.log"));
    let set = scrape(&collector).await;
    let file = access.display().to_string();
    let app_file = app.display().to_string();

    assert_eq!(value(&set, "opsmon_accesslog_lines_total", &[&file]), Some(19.0));
    assert_eq!(value(&set, "opsmon_accesslog_parse_errors_total", &[&file]), Some(7.0));
    let requests = |method: &str, route: &str, status: &str| {
        value(&set, "http_requests_total", &[method, route, status]).unwrap_or(0.0)
    };
    assert_eq!(requests("GET", "api", "200"), 1.0);
    assert_eq!(requests("POST", "api", "401"), 1.0);
    assert_eq!(requests("GET", "video", "206"), 1.0);
    assert_eq!(requests("GET", "other", "304"), 1.0);
    assert_eq!(requests("OTHER", "other", "400"), 2.0);
    assert_eq!(requests("DELETE", "api", "204"), 1.0);
    assert_eq!(requests("PUT", "api", "200"), 1.0);
    let total: f64 = set
        .families()
        .iter()
        .filter(|f| f.def.name == "http_requests_total")
        .flat_map(|f| &f.samples)
        .map(|s| match s.value {
            Value::Number(v) => v,
            Value::Histogram { .. } => 0.0,
        })
        .sum();
    assert_eq!(total, 12.0, "19 lines - 7 errors");
    // The DELETE line has `-` as its time: counted, not observed.
    assert_eq!(value(&set, "http_request_duration_seconds", &["DELETE", "api"]), None);
    assert_eq!(value(&set, "http_request_duration_seconds", &["OTHER", "other"]), Some(4.0));
    assert_eq!(value(&set, "opsmon_log_matches_total", &[&app_file, "error"]), Some(2.0));
    assert_eq!(value(&set, "opsmon_log_matches_total", &[&app_file, "fatal"]), Some(2.0));
    assert_eq!(value(&set, "opsmon_accesslog_lines_total", &[&app_file]), Some(7.0));
    assert_eq!(value(&set, "opsmon_accesslog_parse_errors_total", &[&app_file]), None, "not an access log");

    // Nothing new: the same totals, not double counts.
    let again = scrape(&collector).await;
    assert_eq!(again.encode_text(), set.encode_text());
}

#[tokio::test]
async fn rotation_by_rename_and_copytruncate_keeps_exact_totals() {
    let dir = tempfile::tempdir().expect("temp dir");
    let access = dir.path().join("access.log");
    let collector = AccesslogCollector::new(&config(&format!(
        "collectors:\n  accesslog:\n    files:\n      - path: {}\n",
        access.display()
    )))
    .expect("collector");
    let line = |i: usize| {
        format!(
            "10.0.0.{} - - [01/May/2024:10:00:00 +0000] \"GET /item/{i} HTTP/1.1\" 200 {i} \"-\" \"test\" 0.{:03}\n",
            i % 250,
            i % 1000
        )
    };
    let write = |path: &Path, range: std::ops::Range<usize>| {
        append(path, &range.map(line).collect::<String>());
    };
    let count = |set: &MetricSet| value(set, "http_requests_total", &["GET", "other", "200"]).unwrap_or(0.0);

    // The file does not exist yet: it is new when it appears, so read from its start.
    write(&access, 0..100);
    assert_eq!(count(&scrape(&collector).await), 100.0);

    // Rename: the rest of the old file, then all of the new one.
    write(&access, 100..150);
    std::fs::rename(&access, dir.path().join("access.log.1")).expect("mv");
    write(&dir.path().join("access.log.1"), 150..160);
    write(&access, 160..200);
    let set = scrape(&collector).await;
    assert_eq!(count(&set), 200.0);
    assert_eq!(
        value(&set, "opsmon_accesslog_rotations_total", &[&access.display().to_string(), "rename"]),
        Some(1.0)
    );

    // copytruncate: copy, truncate in place, write more.
    std::fs::copy(&access, dir.path().join("access.log.2")).expect("cp");
    std::fs::OpenOptions::new().write(true).open(&access).expect("open").set_len(0).expect("truncate");
    write(&access, 200..210);
    let set = scrape(&collector).await;
    assert_eq!(count(&set), 210.0);
    assert_eq!(
        value(&set, "opsmon_accesslog_rotations_total", &[&access.display().to_string(), "truncate"]),
        Some(1.0)
    );
    assert_eq!(
        value(&set, "opsmon_accesslog_parse_errors_total", &[&access.display().to_string()]),
        Some(0.0)
    );
}

#[tokio::test]
async fn the_background_task_follows_without_scrapes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let access = dir.path().join("access.log");
    append(&access, "");
    let collector = AccesslogCollector::new(&config(&format!(
        "collectors:\n  accesslog:\n    poll_interval: 20ms\n    files:\n      - path: {}\n",
        access.display()
    )))
    .expect("collector");
    append(&access, "1.2.3.4 - - [01/May/2024:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\" 0.1\n");
    let started = std::time::Instant::now();
    loop {
        let read = lock(&collector.inner.files[0]).counts.lines;
        if read == 1 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the background task did not read the line");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn unreadable_files_fail_the_collector_but_keep_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let not_a_file = dir.path().join("a-directory");
    std::fs::create_dir(&not_a_file).expect("mkdir");
    let access = dir.path().join("access.log");
    let collector = AccesslogCollector::new(&config(&format!(
        "collectors:\n  accesslog:\n    files:\n      - path: {}\n      - path: {}\n",
        not_a_file.display(),
        access.display()
    )))
    .expect("collector");
    append(&access, "1.2.3.4 - - [01/May/2024:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\" 0.1\n");
    let collected = collector.collect(Instant::now() + Duration::from_secs(5)).await;
    let error = collected.error.expect("the directory cannot be read").to_string();
    assert!(error.starts_with(&not_a_file.display().to_string()), "{error}");
    assert_eq!(value(&collected.metrics, "http_requests_total", &["GET", "other", "200"]), Some(1.0));
}

#[tokio::test]
async fn formats_without_request_time_export_no_histogram() {
    let dir = tempfile::tempdir().expect("temp dir");
    let access = dir.path().join("access.log");
    let collector = AccesslogCollector::new(&config(&format!(
        "collectors:\n  accesslog:\n    files:\n      - path: {}\n        format: combined\n",
        access.display()
    )))
    .expect("collector");
    append(&access, &fixture("combined.log"));
    let set = scrape(&collector).await;
    assert!(set.families().iter().all(|f| f.def.name != "http_request_duration_seconds"));
    assert_eq!(value(&set, "http_requests_total", &["POST", "other", "500"]), Some(1.0));
    assert_eq!(
        value(&set, "opsmon_accesslog_parse_errors_total", &[&access.display().to_string()]),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_writer_with_torn_writes_is_counted_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let access = dir.path().join("access.log");
    let collector = AccesslogCollector::new(&config(&format!(
        "collectors:\n  accesslog:\n    poll_interval: 10ms\n    files:\n      - path: {}\n",
        access.display()
    )))
    .expect("collector");
    let writer = {
        let access = access.clone();
        let rotated = dir.path().join("access.log.1");
        std::thread::spawn(move || {
            let mut text = String::new();
            for i in 0..20_000 {
                text.push_str(&format!(
                    "10.0.0.1 - - [01/May/2024:10:00:00 +0000] \"GET /{i} HTTP/1.1\" 200 {i} \"-\" \"w\" 0.{:03}\n",
                    i % 1000
                ));
            }
            let (first, second) = text.split_at(text.len() / 2);
            let cut = first.rfind('\n').map_or(0, |at| at + 1);
            let (first, second) = (&text[..cut], format!("{}{second}", &first[cut..]));
            // Writes of odd sizes tear lines; the tailer must join them.
            let mut file = std::fs::File::create(&access).expect("create");
            for chunk in first.as_bytes().chunks(997) {
                file.write_all(chunk).expect("write");
                std::thread::sleep(Duration::from_micros(50));
            }
            std::fs::rename(&access, &rotated).expect("mv");
            let mut file = std::fs::File::create(&access).expect("create");
            for chunk in second.as_bytes().chunks(1499) {
                file.write_all(chunk).expect("write");
                std::thread::sleep(Duration::from_micros(50));
            }
        })
    };
    writer.join().expect("writer");
    let set = scrape(&collector).await;
    let file = access.display().to_string();
    assert_eq!(value(&set, "http_requests_total", &["GET", "other", "200"]), Some(20_000.0));
    assert_eq!(value(&set, "opsmon_accesslog_parse_errors_total", &[&file]), Some(0.0));
    assert_eq!(value(&set, "opsmon_accesslog_rotations_total", &[&file, "rename"]), Some(1.0));
}
