//! Shared by `demo.rs` and `many_hosts.rs`: runs `scripts/demo.sh` as a user
//! would (its own process group, stopped with Ctrl-C's SIGINT), reads the URLs
//! it prints, asks a Prometheus instant queries, and reads every panel query
//! out of the committed dashboards with Grafana's variables substituted.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use opsmon_e2e::{exporter_bin, get};

pub fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

/// A running `scripts/demo.sh`, stopped (and its leftovers killed) on drop.
#[derive(Debug)]
pub struct Demo {
    child: Child,
    stderr: tempfile::NamedTempFile,
    /// Every line it printed on stdout.
    pub stdout: Vec<String>,
    /// `http://127.0.0.1:PORT` of the demo's Prometheus.
    pub prometheus: String,
    /// `127.0.0.1:PORT` of each exporter, in order.
    pub exporters: Vec<String>,
    /// `127.0.0.1:PORT` of the stand-in API.
    pub api: String,
    /// The temp dir holding everything.
    pub tmp: PathBuf,
    /// Every port the demo printed.
    pub ports: Vec<u16>,
    stopped: bool,
}

fn port_of(text: &str) -> Option<u16> {
    let (_, rest) = text.split_once("127.0.0.1:")?;
    rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}

/// A base for `DEMO_PORT_BASE` whose next `span` ports are free, below the
/// kernel's ephemeral range (32768 and up): a port picked there can be taken
/// by any outgoing connection's local end before the demo's server binds it
/// (PostgreSQL's set-up takes seconds), which made Redis or the CDN fail to
/// start. Bases differ per process and per call, as demos in one test binary
/// run at the same time.
pub fn quiet_port_base(span: u16) -> u16 {
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    const LOW: u32 = 20_000;
    const SLOTS: u32 = (32_000 - LOW) / 32;
    let start =
        std::process::id().wrapping_mul(7919) + CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) * 97;
    for attempt in 0..SLOTS {
        let base = (LOW + ((start + attempt) % SLOTS) * 32) as u16;
        let free = (base..base + span).all(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no {span} free ports in a row between {LOW} and 32000");
}

impl Demo {
    /// Starts `scripts/demo.sh --exporters N` from a port base near a free port
    /// and waits (up to `limit`) until it printed its URLs.
    pub fn start(exporters: usize, limit: Duration) -> Demo {
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let mut command = Command::new("bash");
        command
            .arg(repo("scripts/demo.sh"))
            .args(["--exporters", &exporters.to_string()])
            .env("DEMO_PORT_BASE", quiet_port_base(16).to_string())
            .env("OPSMON_EXPORTER_BIN", exporter_bin())
            .env("DEMO_USERS", "2000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().unwrap());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().unwrap();
        let (sender, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut demo = Demo {
            child,
            stderr,
            stdout: Vec::new(),
            prometheus: String::new(),
            exporters: Vec::new(),
            api: String::new(),
            tmp: PathBuf::new(),
            ports: Vec::new(),
            stopped: false,
        };
        let started = Instant::now();
        loop {
            let left = limit.saturating_sub(started.elapsed());
            let Ok(line) = lines.recv_timeout(left) else {
                panic!(
                    "scripts/demo.sh printed no URLs within {limit:?}; stdout:\n{}\nstderr:\n{}",
                    demo.stdout.join("\n"),
                    demo.stderr()
                )
            };
            let trimmed = line.trim_start().to_owned();
            if let Some(port) = port_of(&trimmed) {
                demo.ports.push(port);
                let address = format!("127.0.0.1:{port}");
                if trimmed.starts_with("Prometheus ") {
                    demo.prometheus = format!("http://{address}");
                } else if trimmed.starts_with("exporter ") {
                    demo.exporters.push(address);
                } else if trimmed.starts_with("stand-in API ") {
                    demo.api = address;
                }
            }
            if let Some(dir) = trimmed.strip_prefix("temp dir") {
                demo.tmp = PathBuf::from(dir.trim());
            }
            let done = trimmed.starts_with("Press Ctrl-C") || trimmed.starts_with("Stopping in");
            demo.stdout.push(line);
            if done {
                break;
            }
        }
        assert!(
            !demo.prometheus.is_empty() && !demo.api.is_empty(),
            "URLs missing in:\n{}",
            demo.stdout.join("\n")
        );
        assert_eq!(demo.exporters.len(), exporters, "exporter URLs in:\n{}", demo.stdout.join("\n"));
        assert!(
            demo.tmp.is_dir(),
            "temp dir {} missing; stdout:\n{}",
            demo.tmp.display(),
            demo.stdout.join("\n")
        );
        demo
    }

    /// What the script wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    /// The warnings and errors the exporters logged so far (logs/exporter-N.log),
    /// the last 20 of each: why a panel has no data is usually there.
    pub fn exporter_warnings(&self) -> String {
        let mut out = String::new();
        for number in 1..=self.exporters.len() {
            let log = std::fs::read_to_string(self.tmp.join(format!("logs/exporter-{number}.log")))
                .unwrap_or_default();
            let lines: Vec<&str> =
                log.lines().filter(|l| l.contains("level=warn") || l.contains("level=error")).collect();
            out.push_str(&format!("exporter {number}:\n"));
            for line in &lines[lines.len().saturating_sub(20)..] {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    fn group(&self) -> rustix::process::Pid {
        rustix::process::Pid::from_raw(self.child.id() as i32).unwrap()
    }

    /// Ctrl-C: SIGINT to the script's whole process group, as a terminal sends
    /// it; waits up to `limit` for the script to exit and returns how long it took.
    pub fn interrupt(&mut self, limit: Duration) -> Duration {
        let started = Instant::now();
        rustix::process::kill_process_group(self.group(), rustix::process::Signal::INT).unwrap();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.stopped = true;
                assert!(
                    status.code() == Some(130) || status.success(),
                    "scripts/demo.sh ended with {status} on Ctrl-C:\n{}",
                    self.stderr()
                );
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "scripts/demo.sh still running {limit:?} after Ctrl-C:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// After a stop: nothing the demo started is left — no process in its
    /// group, none whose command line names its temp dir (PostgreSQL runs in a
    /// session of its own), no printed port still answering — and the temp
    /// dir is gone.
    pub fn assert_nothing_left(&self) {
        assert!(!self.tmp.exists(), "{} still exists after the stop", self.tmp.display());
        let group_alive = rustix::process::test_kill_process_group(self.group()).is_ok();
        assert!(!group_alive, "processes of the demo's group survive the stop: {:#?}", self.group_members());
        let needle = self.tmp.to_string_lossy().into_owned();
        let mut survivors = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if cmdline.contains(&needle) {
                    survivors.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
                }
            }
        }
        assert!(survivors.is_empty(), "still running after the stop: {survivors:#?}");
        for port in &self.ports {
            let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            assert!(
                TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_err(),
                "port {port} still answers after the stop"
            );
        }
    }
}

impl Demo {
    /// `pid: command line` of every process in the script's process group.
    fn group_members(&self) -> Vec<String> {
        let group = self.child.id().to_string();
        let mut members = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // pid (comm) state ppid pgrp …: comm may hold spaces, so split after ')'.
            let pgrp =
                stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(2).map(str::to_owned));
            if pgrp.as_deref() == Some(group.as_str()) {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                members.push(format!(
                    "{}: {}",
                    entry.file_name().to_string_lossy(),
                    String::from_utf8_lossy(&cmdline).replace('\0', " ")
                ));
            }
        }
        members
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = rustix::process::kill_process_group(self.group(), rustix::process::Signal::INT);
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = rustix::process::kill_process_group(self.group(), rustix::process::Signal::KILL);
            let _ = self.child.wait();
        }
    }
}

/// One series of an instant query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Evaluates `query` at `time` (unix seconds; now when `None`) on the
/// Prometheus at `base`; vectors become samples, a scalar one unlabelled sample.
pub fn query(base: &str, query: &str, time: Option<f64>) -> Result<Vec<Sample>, String> {
    let mut url = format!("{base}/api/v1/query?query={}", percent_encode(query));
    if let Some(time) = time {
        url.push_str(&format!("&time={time:.3}"));
    }
    let body = get(&url).map_err(|e| e.to_string())?.text();
    let answer: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if answer["status"] != "success" {
        return Err(format!("{query}: {body}"));
    }
    let number =
        |v: &serde_json::Value| v[1].as_str().and_then(|s| s.parse::<f64>().ok()).unwrap_or(f64::NAN);
    let data = &answer["data"];
    Ok(match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|series| Sample {
                labels: series["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect(),
                value: number(&series["value"]),
            })
            .collect(),
        Some("scalar") => vec![Sample { labels: BTreeMap::new(), value: number(&data["result"]) }],
        other => return Err(format!("{query}: unexpected result type {other:?}")),
    })
}

/// One panel query of a committed dashboard.
#[derive(Debug, Clone)]
pub struct PanelQuery {
    pub dashboard: String,
    pub panel: String,
    /// The expression as committed, variables unresolved.
    pub expr: String,
}

impl PanelQuery {
    /// The expression with Grafana's variables resolved: `instance` and `job`
    /// as given (regexes, as the dashboards use `=~`), the interval variables
    /// as Grafana would for a 15 s scrape interval.
    pub fn resolved(&self, instance: &str, job: &str) -> String {
        let mut expr = self.expr.clone();
        for (name, value) in [
            ("instance", instance),
            ("job", job),
            ("__rate_interval", "1m"),
            ("__interval", "15s"),
            ("__range", "1h"),
        ] {
            expr = expr.replace(&format!("${{{name}}}"), value).replace(&format!("${name}"), value);
        }
        let leftover = expr.char_indices().any(|(i, c)| {
            c == '$'
                && expr[i + 1..]
                    .chars()
                    .next()
                    .is_some_and(|n| n.is_ascii_alphabetic() || n == '_' || n == '{')
        });
        assert!(!leftover, "{} / {}: unresolved variable in {expr}", self.dashboard, self.panel);
        expr
    }

    pub fn name(&self) -> String {
        format!("{} / {}: {}", self.dashboard, self.panel, self.expr)
    }
}

/// Every `targets[].expr` of every panel (rows' nested panels too) of
/// `dashboards/*.json`.
pub fn panel_queries() -> Vec<PanelQuery> {
    fn walk(dashboard: &str, panels: &serde_json::Value, out: &mut Vec<PanelQuery>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or_default().to_owned();
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push(PanelQuery {
                        dashboard: dashboard.to_owned(),
                        panel: title.clone(),
                        expr: expr.to_owned(),
                    });
                }
            }
            walk(dashboard, &panel["panels"], out);
        }
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("dashboards"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let board: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let name = board["title"].as_str().unwrap_or_default().to_owned();
        walk(&name, &board["panels"], &mut out);
    }
    assert!(out.len() > 20, "only {} panel queries found in dashboards/", out.len());
    out
}

/// Panels that legitimately show nothing on a Prometheus that started
/// minutes ago, with the reason. Everything else must show data.
pub const NO_DATA_IN_A_FRESH_PROMETHEUS: &[(&str, &str)] = &[
    (
        "Step conversion vs previous day",
        "divides by the same step one day earlier (offset 1d): a fresh Prometheus has no day-old samples",
    ),
    (
        "Negative feedback vs previous day",
        "divides by the share one day earlier (offset 1d): a fresh Prometheus has no day-old samples",
    ),
];

/// Why `query` may have no data, if it is one of the listed panels.
pub fn may_be_empty(query: &PanelQuery) -> Option<&'static str> {
    NO_DATA_IN_A_FRESH_PROMETHEUS.iter().find(|(panel, _)| query.panel == *panel).map(|(_, why)| *why)
}

/// Polls until every query returns at least one series or `limit` passes;
/// returns the ones still empty (with the last error, if any).
pub fn wait_for_data(base: &str, queries: &[(String, String)], limit: Duration) -> Vec<String> {
    let started = Instant::now();
    let mut pending: Vec<&(String, String)> = queries.iter().collect();
    let mut last_error = BTreeMap::new();
    loop {
        pending.retain(|(name, expr)| match query(base, expr, None) {
            Ok(samples) => samples.is_empty(),
            Err(e) => {
                last_error.insert(name.clone(), e);
                true
            }
        });
        if pending.is_empty() || started.elapsed() > limit {
            return pending
                .iter()
                .map(|(name, _)| match last_error.get(name) {
                    Some(e) => format!("{name} ({e})"),
                    None => name.clone(),
                })
                .collect();
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}
