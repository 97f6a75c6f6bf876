//! The accesslog collector end to end: real nginx-format files written by
//! the test while the exporter tails them, rotated by rename and by
//! copytruncate, with exact counts; pattern matches over an application log;
//! bounded labels; promtool and the catalog as judges; bad config rejected
//! with `file:line:column`.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::Command;

use opsmon_e2e::{FamilyInfo, Process, exporter_bin, get, parse_exposition, promtool_problems};

const METHODS: [&str; 10] =
    ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "get", "PROPFIND", "BREW"];
const STATUSES: [u16; 10] = [200, 201, 204, 301, 304, 400, 404, 499, 500, 502];

/// What the exporter must report, computed by the test from what it wrote.
#[derive(Debug, Default)]
struct Expected {
    requests: BTreeMap<(String, String, String), f64>,
    /// (method, route) → (observations, observations ≤ 1 s).
    durations: BTreeMap<(String, String), (f64, f64)>,
    lines: f64,
    parse_errors: f64,
}

impl Expected {
    /// Line `i` of a deterministic mix of methods, routes, statuses and times;
    /// every 37th line is garbage.
    fn line(&mut self, i: usize) -> String {
        self.lines += 1.0;
        if i % 37 == 36 {
            self.parse_errors += 1.0;
            return format!("garbage line {i} \"GET / HTTP/1.1\" 2x0\n");
        }
        let method = METHODS[i % METHODS.len()];
        let path = match i % 5 {
            0 => format!("/api/v1/items/{i}?q=1"),
            1 => format!("/videos/{i}.mp4"),
            2 => format!("/static/{i}.css"),
            3 => "/".to_owned(),
            _ => "/apiary".to_owned(),
        };
        let status = STATUSES[(i / 3) % STATUSES.len()];
        let millis = (i * 7) % 3000;
        let client = if i.is_multiple_of(4) {
            format!("2001:db8::{:x}", i % 65536)
        } else {
            format!("10.1.{}.{}", i / 256 % 256, i % 256)
        };
        let agent = if i.is_multiple_of(6) { "Mozilla/5.0 \\x22quoted\\x22 (X11)" } else { "okhttp/4.12.0" };
        let label = match method {
            "GET" | "POST" | "PUT" | "DELETE" | "HEAD" | "PATCH" | "OPTIONS" => method,
            _ => "OTHER",
        };
        let route = if path.starts_with("/api/") {
            "api"
        } else if path.starts_with("/videos/") {
            "video"
        } else {
            "other"
        };
        *self.requests.entry((label.into(), route.into(), status.to_string())).or_default() += 1.0;
        let histogram = self.durations.entry((label.into(), route.into())).or_default();
        histogram.0 += 1.0;
        if millis <= 1000 {
            histogram.1 += 1.0;
        }
        format!(
            "{client} - - [01/May/2024:10:{:02}:{:02} +0000] \"{method} {path} HTTP/1.1\" {status} {} \"https://smartalk.example/\" \"{agent}\" {}.{:03}\n",
            i / 60 % 60,
            i % 60,
            i * 13 % 100_000,
            millis / 1000,
            millis % 1000
        )
    }

    fn write(&mut self, path: &Path, lines: std::ops::Range<usize>) {
        let text: String = lines.map(|i| self.line(i)).collect();
        append(path, &text);
    }
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn scrape(exporter: &Process) -> (String, BTreeMap<String, FamilyInfo>) {
    let text = get(&exporter.url("/metrics")).unwrap().text();
    let families = parse_exposition(&text);
    (text, families)
}

fn label<'a>(labels: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    labels.get(name).map_or("", String::as_str)
}

fn requests(families: &BTreeMap<String, FamilyInfo>) -> BTreeMap<(String, String, String), f64> {
    families.get("http_requests_total").map_or_else(BTreeMap::new, |family| {
        family
            .samples
            .iter()
            .map(|(_, l, v)| {
                ((label(l, "method").into(), label(l, "route").into(), label(l, "status").into()), *v)
            })
            .collect()
    })
}

fn single(families: &BTreeMap<String, FamilyInfo>, name: &str, labels: &[(&str, &str)]) -> f64 {
    families.get(name).and_then(|f| f.value(labels)).unwrap_or_else(|| panic!("{name}{labels:?} missing"))
}

fn check(families: &BTreeMap<String, FamilyInfo>, expected: &Expected, file: &str, stage: &str) {
    assert_eq!(requests(families), expected.requests, "{stage}: http_requests_total");
    let histogram = &families["http_request_duration_seconds"];
    for ((method, route), (count, within_1s)) in &expected.durations {
        let sample = |name: &str, le: Option<&str>| {
            histogram
                .samples
                .iter()
                .find(|(n, l, _)| {
                    n == name
                        && label(l, "method") == method
                        && label(l, "route") == route
                        && le.is_none_or(|le| label(l, "le") == le)
                })
                .map(|(_, _, v)| *v)
        };
        assert_eq!(
            sample("http_request_duration_seconds_count", None),
            Some(*count),
            "{stage}: {method} {route}"
        );
        assert_eq!(
            sample("http_request_duration_seconds_bucket", Some("1")),
            Some(*within_1s),
            "{stage}: {method} {route} le=1"
        );
    }
    assert_eq!(
        single(families, "opsmon_accesslog_lines_total", &[("file", file)]),
        expected.lines,
        "{stage}"
    );
    assert_eq!(
        single(families, "opsmon_accesslog_parse_errors_total", &[("file", file)]),
        expected.parse_errors,
        "{stage}"
    );
}

fn write_config(dir: &Path, body: &str) -> String {
    let config = dir.join("opsmon.yml");
    std::fs::write(&config, format!("collectors:\n  host:\n    enabled: false\n  accesslog:\n{body}"))
        .unwrap();
    config.to_str().unwrap().to_owned()
}

#[test]
fn tails_rotates_and_truncates_with_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    let access = dir.path().join("access.log");
    let app = dir.path().join("app.log");
    let file = access.to_str().unwrap();
    let app_file = app.to_str().unwrap();
    // Present before start-up: skipped, as the default start is the end.
    let mut before = Expected::default();
    before.write(&access, 0..500);
    append(&app, "ERROR before start-up, not counted\n");
    let config = write_config(
        dir.path(),
        &format!(
            "    poll_interval: 100ms\n    files:\n      - path: {file}\n    routes:\n      - name: api\n        prefix: /api/\n      - name: video\n        prefix: /videos/\n    patterns:\n      - file: {app_file}\n        name: error\n        regex: '\\bERROR\\b'\n      - file: {app_file}\n        name: oom\n        regex: 'out of memory|OOM'\n"
        ),
    );
    let exporter = Process::exporter(&["--config.file", &config]);

    let mut expected = Expected::default();
    expected.write(&access, 1_000..4_000);
    let (text, families) = scrape(&exporter);
    check(&families, &expected, file, "after the first writes");
    let problems = promtool_problems(&text);
    assert!(problems.is_empty(), "promtool check metrics:\n{}", problems.join("\n"));
    assert_eq!(single(&families, "opsmon_exporter_collector_success", &[("collector", "accesslog")]), 1.0);

    // Rotation by rename: logrotate moves the file; nginx writes a little
    // more to the old one until it reopens, then to a new file.
    expected.write(&access, 4_000..4_500);
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&access, &rotated).unwrap();
    expected.write(&rotated, 4_500..4_600);
    expected.write(&access, 4_600..6_000);
    let (_, families) = scrape(&exporter);
    check(&families, &expected, file, "after rename rotation");
    assert_eq!(
        single(&families, "opsmon_accesslog_rotations_total", &[("file", file), ("kind", "rename")]),
        1.0
    );

    // copytruncate: copy, truncate in place, nginx keeps appending.
    std::fs::copy(&access, dir.path().join("access.log.2")).unwrap();
    std::fs::OpenOptions::new().write(true).open(&access).unwrap().set_len(0).unwrap();
    expected.write(&access, 6_000..6_700);
    let (_, families) = scrape(&exporter);
    check(&families, &expected, file, "after copytruncate");
    assert_eq!(
        single(&families, "opsmon_accesslog_rotations_total", &[("file", file), ("kind", "truncate")]),
        1.0
    );

    // Application log patterns: counted by name, one count per matching line.
    append(
        &app,
        "2024-05-01T02:13:07Z ERROR payment webhook failed\n2024-05-01T02:13:08Z INFO ERRORS=0\n2024-05-01T02:14:00Z ERROR worker OOM killed\n2024-05-01T02:15:00Z FATAL out of memory\n",
    );
    let (text, families) = scrape(&exporter);
    assert_eq!(
        single(&families, "opsmon_log_matches_total", &[("file", app_file), ("pattern", "error")]),
        2.0
    );
    assert_eq!(single(&families, "opsmon_log_matches_total", &[("file", app_file), ("pattern", "oom")]), 2.0);
    assert_eq!(single(&families, "opsmon_accesslog_lines_total", &[("file", app_file)]), 4.0);
    check(&families, &expected, file, "unchanged by later scrapes");

    // The catalog contract: every accesslog family is emitted, as declared.
    for def in opsmon_catalog::for_collector("accesslog") {
        let family = families.get(def.name).unwrap_or_else(|| panic!("{} is never emitted", def.name));
        assert_eq!(family.metric_type, def.metric_type.as_str(), "{}", def.name);
        let labels: BTreeSet<String> = def.labels.iter().map(|l| (*l).to_owned()).collect();
        assert_eq!(family.label_names, labels, "{}", def.name);
    }
    for name in families.keys() {
        assert!(opsmon_catalog::find(name).is_some(), "{name} is emitted but not in the catalog");
    }
    let problems = promtool_problems(&text);
    assert!(problems.is_empty(), "promtool check metrics:\n{}", problems.join("\n"));
}

#[test]
fn labels_stay_bounded_whatever_the_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let access = dir.path().join("access.log");
    let file = access.to_str().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "    start_at: beginning\n    files:\n      - path: {file}\n    routes:\n      - name: api\n        prefix: /api/\n"
        ),
    );
    let mut text = String::new();
    for i in 0..5_000 {
        let method = if i % 2 == 0 { format!("M{i}") } else { "GET".to_owned() };
        text.push_str(&format!(
            "10.0.0.1 - - [01/May/2024:10:00:00 +0000] \"{method} /{}/{i}/{i} HTTP/1.1\" {} 1 \"-\" \"agent {i}\" 0.{:03}\n",
            if i % 3 == 0 { "api" } else { "u" },
            200 + i % 300,
            i % 1000
        ));
    }
    append(&access, &text);
    let exporter = Process::exporter(&["--config.file", &config]);
    let (_, families) = scrape(&exporter);
    let counted = requests(&families);
    assert_eq!(counted.values().sum::<f64>(), 5_000.0, "start_at: beginning reads what was there");
    let methods: BTreeSet<&str> = counted.keys().map(|(m, _, _)| m.as_str()).collect();
    let routes: BTreeSet<&str> = counted.keys().map(|(_, r, _)| r.as_str()).collect();
    assert_eq!(methods, BTreeSet::from(["GET", "OTHER"]));
    assert_eq!(routes, BTreeSet::from(["api", "other"]));
    assert!(counted.keys().all(|(_, _, s)| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit())));
    assert!(counted.len() <= 2 * 2 * 300, "{} series", counted.len());
    let histograms = families["http_request_duration_seconds"]
        .samples
        .iter()
        .filter(|(n, _, _)| n.ends_with("_count"))
        .count();
    assert_eq!(histograms, 4, "one histogram per method × route");
}

#[test]
fn bad_format_and_regex_are_startup_errors_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "    files:\n      - path: /var/log/nginx/access.log\n        format: '$remote_addr \"$request\" $body_bytes_sent'\n",
            ":7:17: invalid log format",
            "the format has no $status",
        ),
        (
            "    patterns:\n      - file: /var/log/app.log\n        name: error\n        regex: '(ERROR'\n",
            ":8:16: invalid regex \"(ERROR\"",
            "expected RE2-style syntax",
        ),
        ("    buckets: [2, 1]\n", ":5:14: invalid buckets [2.0, 1.0]", "strictly increasing order"),
    ];
    for (body, position, fix) in cases {
        let config = write_config(dir.path(), body);
        let output = Command::new(exporter_bin()).args(["--config.file", &config]).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&format!("{config}{position}")), "{position} in:\n{stderr}");
        assert!(stderr.contains(fix), "{fix} in:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
