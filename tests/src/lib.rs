//! The end-to-end harness: start the real exporter binary (and the real peer
//! exporters and tools) on free loopback ports, scrape them over HTTP, and read
//! the Prometheus text format back into families for comparison.
//!
//! Nothing here depends on services someone else left running: every process
//! is started by the test and killed when its handle drops.

#![allow(clippy::unwrap_used)] // test harness: a failed step must fail the test loudly
#![allow(clippy::print_stderr)] // shows child-process logs when a start-up fails

pub mod compat;
pub mod servers;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The exporter binary under test: `$OPSMON_EXPORTER_BIN`, or the one cargo
/// built next to this test binary (same profile).
pub fn exporter_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("OPSMON_EXPORTER_BIN") {
        return PathBuf::from(path);
    }
    let test_exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/opsmon-exporter
    let profile_dir = test_exe.parent().and_then(Path::parent).unwrap();
    let bin = profile_dir.join("opsmon-exporter");
    assert!(
        bin.exists(),
        "{} is missing: build it with the same profile first (scripts/test.sh does: cargo build --release --workspace)",
        bin.display()
    );
    bin
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Path of a required external tool, or a panic saying which package brings it.
pub fn require_tool(tool: &str, debian_package: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/sbin", "/usr/bin"]) {
        let candidate = Path::new(dir).join(tool);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{tool} not found: install the Debian package {debian_package} (scripts/test.sh installs it)");
}

/// A child process killed on drop, with its stderr captured to a file.
#[derive(Debug)]
pub struct Process {
    child: Option<Child>,
    /// Port it listens on.
    pub port: u16,
    log: tempfile::NamedTempFile,
}

impl Process {
    /// Starts `program args…` and waits until `http://127.0.0.1:port{ready_path}` answers 200.
    pub fn start(program: &Path, args: &[String], port: u16, ready_path: &str) -> Process {
        Self::start_with_env(program, args, &[], port, ready_path)
    }

    /// As [`Process::start`], with extra environment variables.
    pub fn start_with_env(
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        port: u16,
        ready_path: &str,
    ) -> Process {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let mut process = Process { child: Some(child), port, log };
        let url = process.url(ready_path);
        let started = Instant::now();
        loop {
            if let Some(status) = process.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("{} exited early with {status}:\n{}", program.display(), process.log());
            }
            if get(&url).map(|r| r.status == 200).unwrap_or(false) {
                return process;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{} not ready on {url}:\n{}",
                program.display(),
                process.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts opsmon-exporter on a free port with extra `args`.
    pub fn exporter(args: &[&str]) -> Process {
        Self::exporter_with_env(args, &[])
    }

    /// Starts opsmon-exporter on a free port with extra `args` and environment.
    pub fn exporter_with_env(args: &[&str], env: &[(&str, &str)]) -> Process {
        let port = free_port();
        let mut all = vec![format!("--web.listen-address=127.0.0.1:{port}")];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        Self::start_with_env(&exporter_bin(), &all, env, port, "/-/ready")
    }

    /// Starts a real Prometheus on a free port with `config` written to
    /// `dir/prometheus.yml`, its TSDB in `dir/tsdb`, and `extra` flags; ready
    /// when `/-/ready` answers.
    pub fn prometheus(dir: &Path, config: &str, extra: &[&str]) -> Process {
        let bin = require_tool("prometheus", "prometheus");
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let port = free_port();
        let mut args = vec![
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        Self::start(&bin, &args, port, "/-/ready")
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// What the process wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Sends `signal` and waits up to `limit` for the exit.
    pub fn signal_and_wait(
        &mut self,
        signal: rustix::process::Signal,
        limit: Duration,
    ) -> Option<ExitStatus> {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP response, body undecoded.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// Raw body bytes (still gzip-compressed if the server compressed them).
    pub body: Vec<u8>,
}

impl Response {
    /// The body as UTF-8 text, gunzipped when `Content-Encoding: gzip`.
    pub fn text(&self) -> String {
        if self.headers.get("content-encoding").map(String::as_str) == Some("gzip") {
            let mut out = String::new();
            flate2::read::GzDecoder::new(&self.body[..]).read_to_string(&mut out).unwrap();
            out
        } else {
            String::from_utf8(self.body.clone()).unwrap()
        }
    }
}

/// GET `url` with no extra headers.
pub fn get(url: &str) -> Result<Response, ureq::Error> {
    get_with(url, &[])
}

/// GET `url` with `headers`; any status is returned, not turned into an error.
pub fn get_with(url: &str, headers: &[(&str, &str)]) -> Result<Response, ureq::Error> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut request = agent.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.call()?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let body = response.body_mut().with_config().limit(64 << 20).read_to_vec()?;
    Ok(Response { status, headers, body })
}

/// One family read back from an exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FamilyInfo {
    /// `counter`, `gauge`, `histogram`, `summary` or `untyped`.
    pub metric_type: String,
    /// Label names over all samples (without `le`/`quantile`).
    pub label_names: BTreeSet<String>,
    /// Samples: full sample name, labels, value.
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl FamilyInfo {
    /// The value of the sample whose labels include all of `labels`.
    pub fn value(&self, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|(_, l, _)| labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
            .map(|(_, _, v)| *v)
    }
}

/// Families by name from a Prometheus text 0.0.4 exposition.
pub fn parse_exposition(text: &str) -> BTreeMap<String, FamilyInfo> {
    let mut families: BTreeMap<String, FamilyInfo> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            families.entry(name.to_owned()).or_default().metric_type = kind.to_owned();
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, labels, value) =
            parse_sample(line).unwrap_or_else(|| panic!("unparsable sample line: {line}"));
        let family_name = [name.as_str()]
            .into_iter()
            .chain(["_bucket", "_sum", "_count"].iter().filter_map(|s| name.strip_suffix(s)))
            .find(|candidate| families.contains_key(*candidate))
            .unwrap_or(&name)
            .to_owned();
        let family = families.entry(family_name).or_default();
        if family.metric_type.is_empty() {
            family.metric_type = "untyped".into();
        }
        family.label_names.extend(labels.keys().filter(|k| *k != "le" && *k != "quantile").cloned());
        family.samples.push((name, labels, value));
    }
    families
}

/// Splits `name{a="x",b="y\"z"} value [timestamp]`.
pub fn parse_sample(line: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let mut end = None;
        while let Some((start, c)) = chars.next() {
            if c == '}' {
                end = Some(start + 1);
                break;
            }
            if c == ',' || c == ' ' {
                continue;
            }
            let eq = inner[start..].find('=')? + start;
            let key = inner[start..eq].to_owned();
            while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                chars.next();
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => break,
                    other => value.push(other),
                }
            }
            labels.insert(key, value);
        }
        rest = &inner[end?..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    Some((name, labels, value))
}

/// What `promtool check metrics` finds in `exposition`, except its naming
/// lints on names a peer exporter dictates and compatibility requires us to
/// keep: node_exporter's camelCase `node_memory_<Field>_bytes` and
/// postgres_exporter's counters without `_total` and gauges ending in `_count`.
/// Any finding on one of our own names, or of another kind, is returned.
pub fn promtool_problems(exposition: &str) -> Vec<String> {
    const PEER_NAMING_LINTS: [(&str, &str); 3] = [
        ("node_memory_", "metric names should be written in 'snake_case' not 'camelCase'"),
        ("pg_", "counter metrics should have \"_total\" suffix"),
        ("pg_", "non-histogram and non-summary metrics should not have \"_count\" suffix"),
    ];
    let promtool = require_tool("promtool", "prometheus");
    let (_status, output) = run_with_stdin(&promtool, &["check", "metrics"], exposition);
    output
        .lines()
        .filter(|line| !line.trim().is_empty())
        .filter(|line| {
            !PEER_NAMING_LINTS.iter().any(|(prefix, lint)| line.starts_with(prefix) && line.ends_with(lint))
        })
        .map(str::to_owned)
        .collect()
}

/// Runs `program args` with `stdin` and returns (exit status, stdout+stderr).
pub fn run_with_stdin(program: &Path, args: &[&str], stdin: &str) -> (ExitStatus, String) {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_lines_with_escapes() {
        let (name, labels, value) =
            parse_sample(r##"node_uname_info{version="#1 SMP, \"x\"",nodename="a=b"} 1"##).unwrap();
        assert_eq!(name, "node_uname_info");
        assert_eq!(labels["version"], "#1 SMP, \"x\"");
        assert_eq!(labels["nodename"], "a=b");
        assert_eq!(value, 1.0);
        assert_eq!(parse_sample("node_load1 0.5").unwrap().2, 0.5);
        assert!(parse_sample("garbage").is_none());
    }

    #[test]
    fn families_group_histogram_samples() {
        let families = parse_exposition(
            "# TYPE h histogram\nh_bucket{le=\"1\",m=\"GET\"} 1\nh_bucket{le=\"+Inf\",m=\"GET\"} 2\nh_sum{m=\"GET\"} 3\nh_count{m=\"GET\"} 2\n# TYPE c_total counter\nc_total 4\n",
        );
        assert_eq!(families["h"].metric_type, "histogram");
        assert_eq!(families["h"].label_names, BTreeSet::from(["m".to_owned()]));
        assert_eq!(families["h"].samples.len(), 4);
        assert_eq!(families["c_total"].value(&[]), Some(4.0));
    }
}
