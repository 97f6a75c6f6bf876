//! Access-log ingest throughput, measured by hand (never run by the tests):
//! writes N realistic nginx lines (default format) into a temp file, then
//! times (1) parse only, (2) parse + counting into the request families, and
//! (3) the collector's real path: tail the file from its beginning, split,
//! parse, count, as a scrape's catch-up does. One thread throughout, so the
//! figures are per core.
//!
//! ```sh
//! cargo run --release -p opsmon-exporter --example accesslog_throughput -- 2000000
//! ```

#![allow(clippy::print_stdout)] // a measurement tool reports on stdout

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use opsmon_exporter::collectors::accesslog::AccesslogCollector;
use opsmon_exporter::collectors::accesslog::format::LogFormat;
use opsmon_exporter::collectors::accesslog::stats::{Layout, RequestStats};
use opsmon_exporter::settings::Config;

const METHODS: [&str; 6] = ["GET", "GET", "GET", "POST", "PUT", "DELETE"];
const STATUSES: [u16; 8] = [200, 200, 200, 304, 404, 500, 201, 499];

fn line(i: usize, out: &mut String) {
    use std::fmt::Write as _;
    let method = METHODS[i % METHODS.len()];
    let path = match i % 4 {
        0 => "/api/v1/conversations",
        1 => "/videos/lesson-12/segment-004.ts",
        2 => "/static/js/app.3f9a1c.js",
        _ => "/",
    };
    let status = STATUSES[i % STATUSES.len()];
    let millis = (i * 37) % 2500;
    let _ = writeln!(
        out,
        "203.0.113.{} - - [01/May/2024:10:{:02}:{:02} +0000] \"{method} {path}?page={} HTTP/1.1\" {status} {} \"https://smartalk.example/app/home\" \"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\" {}.{:03}",
        i % 256,
        i / 60 % 60,
        i % 60,
        i % 50,
        1000 + i % 90_000,
        millis / 1000,
        millis % 1000
    );
}

fn rate(lines: usize, took: Duration) -> String {
    format!(
        "{:>10.0} lines/s  ({lines} lines in {:.3} s)",
        lines as f64 / took.as_secs_f64(),
        took.as_secs_f64()
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lines: usize = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(1_000_000);
    let path = std::env::temp_dir().join(format!("opsmon-accesslog-throughput-{}.log", std::process::id()));
    let result = run(lines, &path);
    let _ = std::fs::remove_file(&path);
    result
}

fn run(lines: usize, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut text = String::with_capacity(lines * 260);
    for i in 0..lines {
        line(i, &mut text);
    }
    std::fs::File::create(path)?.write_all(text.as_bytes())?;
    println!(
        "{lines} lines, {:.1} MiB, average {} bytes/line",
        text.len() as f64 / 1048576.0,
        text.len() / lines
    );

    let format = LogFormat::default();
    let started = Instant::now();
    let mut parsed = 0usize;
    for line in text.as_bytes().split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        parsed += usize::from(format.parse(line).is_some());
    }
    let took = started.elapsed();
    assert_eq!(parsed, lines, "every generated line parses");
    println!("parse only:          {}", rate(lines, took));

    let layout = Layout::new(
        vec![("api".into(), "/api/".into()), ("video".into(), "/videos/".into())],
        opsmon_exporter::collectors::accesslog::DEFAULT_BUCKETS.to_vec(),
    );
    let mut stats = RequestStats::default();
    let started = Instant::now();
    for line in text.as_bytes().split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if let Some(request) = format.parse(line) {
            stats.observe(&request, &layout);
        }
    }
    let took = started.elapsed();
    assert_eq!(stats.total(), lines as u64);
    println!("parse + count:       {}", rate(lines, took));
    drop(text);

    let yaml = format!(
        "collectors:\n  accesslog:\n    start_at: beginning\n    files:\n      - path: {}\n    routes:\n      - name: api\n        prefix: /api/\n      - name: video\n        prefix: /videos/\n",
        path.display()
    );
    let config = Config::parse(Path::new("<throughput>"), &yaml)?;
    // Outside a tokio runtime no background task starts: this thread does all the work.
    let collector = AccesslogCollector::new(&config.collectors.accesslog)
        .map_err(|problems| opsmon_diagnostics::render(&path.display().to_string(), &problems))?;
    let started = Instant::now();
    let caught_up = collector.catch_up(Instant::now() + Duration::from_secs(3600));
    let took = started.elapsed();
    assert!(caught_up);
    let text = collector.snapshot().metrics.encode_text();
    let counted: f64 = text
        .lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(counted, lines as f64, "the collector counted every line");
    println!("tail + parse + count: {}", rate(lines, took));
    Ok(())
}
