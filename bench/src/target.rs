//! What is benchmarked: the [`Target`] list (name, metrics URL, optional PID),
//! parsing of `--target NAME=URL#PID`, the [`Launch`] recipes for the exporters
//! the bench starts itself, and the [`Fleet`] guard that owns those processes
//! and their temp dir and stops them on drop (also on error or Ctrl-C).

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail, ensure};
use hyper::Uri;

/// One exporter endpoint to scrape.
#[derive(Debug, Clone)]
pub struct Target {
    /// Name shown in the tables (and used by `--baseline`).
    pub name: String,
    /// Full URL scraped, e.g. `http://127.0.0.1:9100/metrics`.
    pub uri: Uri,
    /// Process to read CPU and RSS from; `None` leaves those columns `n/a`.
    pub pid: Option<u32>,
    /// Version string for the header line, if known.
    pub version: Option<String>,
}

/// Parses `NAME=URL` or `NAME=URL#PID`.
///
/// A URL without a path (or with just `/`) gets `/metrics`; any other path,
/// including a query (`/probe?target=…` for blackbox_exporter), is kept.
pub fn parse_target_spec(spec: &str) -> Result<Target> {
    let (name, rest) =
        spec.split_once('=').with_context(|| format!("--target {spec:?}: expected NAME=URL[#PID]"))?;
    let name = name.trim();
    ensure!(!name.is_empty(), "--target {spec:?}: empty NAME");
    ensure!(
        !name.contains('|') && !name.contains('`'),
        "--target {spec:?}: NAME must not contain '|' or '`' (it goes into a markdown table)"
    );
    let (url, pid) = match rest.rsplit_once('#') {
        Some((url, pid)) => {
            let pid: u32 = pid
                .trim()
                .parse()
                .with_context(|| format!("--target {spec:?}: PID {pid:?} is not a number"))?;
            ensure!(pid > 0, "--target {spec:?}: PID must be positive");
            (url, Some(pid))
        }
        None => (rest, None),
    };
    let uri: Uri = url.trim().parse().with_context(|| format!("--target {spec:?}: bad URL {url:?}"))?;
    ensure!(
        uri.scheme_str() == Some("http"),
        "--target {spec:?}: URL must start with http:// (no TLS support)"
    );
    ensure!(uri.authority().is_some(), "--target {spec:?}: URL has no host:port");
    let uri = with_default_path(uri, "/metrics")?;
    Ok(Target { name: name.to_owned(), uri, pid, version: None })
}

fn with_default_path(uri: Uri, default_path: &str) -> Result<Uri> {
    let bare = uri.path_and_query().is_none_or(|pq| pq.as_str() == "/");
    if !bare {
        return Ok(uri);
    }
    let mut parts = uri.into_parts();
    parts.path_and_query = Some(default_path.parse()?);
    Ok(Uri::from_parts(parts)?)
}

/// How to start one process the bench owns. In `args`, `{addr}` is replaced
/// by the `127.0.0.1:PORT` picked for it and `{port}` by the port alone.
#[derive(Debug, Clone)]
pub struct Launch {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Path (and query) scraped on the listen address.
    pub metrics_path: String,
}

impl Launch {
    /// An exporter with the usual Prometheus flag `--web.listen-address`.
    pub fn standard(name: &str, program: &Path) -> Self {
        Self {
            name: name.to_owned(),
            program: program.to_owned(),
            args: vec!["--web.listen-address={addr}".to_owned()],
            env: Vec::new(),
            metrics_path: "/metrics".to_owned(),
        }
    }

    fn args_for(&self, addr: SocketAddr) -> Vec<String> {
        let port = addr.port().to_string();
        let addr = addr.to_string();
        self.args.iter().map(|a| a.replace("{addr}", &addr).replace("{port}", &port)).collect()
    }

    /// First non-empty line of `PROGRAM --version` (stdout or stderr), if it works.
    pub fn version(&self) -> Option<String> {
        let out = Command::new(&self.program).arg("--version").stdin(Stdio::null()).output().ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        text.lines().map(str::trim).find(|l| !l.is_empty()).map(clean_version_line)
    }
}

/// A `--version` line as shown in the header. redis_exporter prints its
/// version as a logrus line (`time="…" level=info msg="Redis Metrics Exporter
/// 1.45.0 …"`): keep just the message, with runs of spaces collapsed.
pub fn clean_version_line(line: &str) -> String {
    let text = line
        .split_once("msg=\"")
        .and_then(|(_, rest)| rest.split_once('"').map(|(msg, _)| msg))
        .unwrap_or(line);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The child runs in its own work dir, so a relative program path
/// (`target/release/…`) is made absolute against `cwd`; a bare name
/// (`prometheus-node-exporter`) is left for the `PATH` lookup.
fn resolve_program(program: &Path, cwd: &Path) -> PathBuf {
    if program.is_relative() && program.components().count() > 1 {
        cwd.join(program)
    } else {
        program.to_owned()
    }
}

/// A free TCP port on 127.0.0.1: bind port 0, read it back, release it.
///
/// The port is handed to the child right away; another process grabbing it in
/// between is possible but unlikely, and shows up as a start-up failure.
pub fn free_loopback_addr() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

struct Member {
    name: String,
    child: Child,
    log: PathBuf,
}

/// The processes this bench started, plus their scratch dir. Dropping it stops
/// them, newest first (SIGTERM, then SIGKILL after a grace period), then drops
/// the [`Fleet::keep`] guards (e.g. the bench's own PostgreSQL, which lives in
/// the dir), newest first, and deletes the dir.
#[derive(Default)]
pub struct Fleet {
    dir: Option<PathBuf>,
    members: Vec<Member>,
    guards: Vec<Box<dyn Send>>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("dir", &self.dir)
            .field("members", &self.members.iter().map(|m| (&m.name, m.child.id())).collect::<Vec<_>>())
            .field("guards", &self.guards.len())
            .finish()
    }
}

impl Fleet {
    /// The fleet's scratch dir (created on first use, removed on drop).
    pub fn dir(&mut self) -> Result<PathBuf> {
        if let Some(dir) = &self.dir {
            return Ok(dir.clone());
        }
        let nanos =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("opsmon-bench-{}-{nanos:09}", std::process::id()));
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        self.dir = Some(dir.clone());
        Ok(dir)
    }

    /// Starts `launch` on a fresh loopback port, in the fleet's temp dir, with
    /// stdout and stderr going to `NAME.log` there. Returns the target to scrape
    /// (not yet known to be ready: see [`Fleet::check_alive`]).
    pub fn spawn(&mut self, launch: &Launch) -> Result<Target> {
        ensure!(launch.program.exists(), "{}: {} does not exist", launch.name, launch.program.display());
        let dir = self.dir()?;
        let workdir = dir.join(&launch.name);
        std::fs::create_dir_all(&workdir)?;
        let addr = free_loopback_addr()?;
        let log = dir.join(format!("{}.log", launch.name));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let program = resolve_program(&launch.program, &std::env::current_dir()?);
        let child = Command::new(&program)
            .args(launch.args_for(addr))
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&workdir)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let pid = child.id();
        self.members.push(Member { name: launch.name.clone(), child, log });
        let uri: Uri =
            format!("http://{addr}{}", launch.metrics_path).parse().context("building metrics URL")?;
        Ok(Target { name: launch.name.clone(), uri, pid: Some(pid), version: launch.version() })
    }

    /// Keeps `guard` alive until the fleet is dropped: after the members are
    /// stopped, before the dir is removed.
    pub fn keep(&mut self, guard: impl Send + 'static) {
        self.guards.push(Box::new(guard));
    }

    /// Stops the member called `name` now (e.g. to restart it with another config).
    pub fn stop_member(&mut self, name: &str) -> Result<()> {
        if let Some(i) = self.members.iter().position(|m| m.name == name) {
            let mut m = self.members.remove(i);
            stop(&mut m.child, Duration::from_secs(3)).with_context(|| format!("stopping {name}"))?;
        }
        Ok(())
    }

    /// Errors (with the tail of its log) if the member called `name` has exited.
    pub fn check_alive(&mut self, name: &str) -> Result<()> {
        let Some(m) = self.members.iter_mut().find(|m| m.name == name) else {
            return Ok(());
        };
        if let Some(status) = m.child.try_wait()? {
            bail!("{name} exited ({status}); last lines of its log:\n{}", log_tail(&m.log, 20));
        }
        Ok(())
    }

    /// Last lines of `name`'s log, for error messages.
    pub fn log_tail(&self, name: &str, lines: usize) -> String {
        self.members.iter().find(|m| m.name == name).map(|m| log_tail(&m.log, lines)).unwrap_or_default()
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all.get(start..).unwrap_or_default().join("\n")
}

fn stop(child: &mut Child, grace: Duration) -> Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    let pid = i32::try_from(child.id()).ok().and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        // Ask politely first, so the exporter's own shutdown path runs.
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("opsmon-bench: pid {} did not exit within {grace:?} of SIGTERM; killing it", child.id());
    }
    child.kill()?;
    Ok(child.wait()?)
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Newest first: exporters before the databases they watch.
        for m in self.members.iter_mut().rev() {
            if let Err(e) = stop(&mut m.child, Duration::from_secs(3)) {
                eprintln!("opsmon-bench: stopping {}: {e:#}", m.name);
            }
        }
        while let Some(guard) = self.guards.pop() {
            drop(guard);
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `opsmon-exporter --config.file=CFG --config.check`: `Ok(Err(output))` when the config is rejected.
pub fn config_check(exporter: &Path, config: &Path) -> Result<Result<(), String>> {
    let out = Command::new(exporter)
        .arg(format!("--config.file={}", config.display()))
        .arg("--config.check")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} --config.check", exporter.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Ok(if out.status.success() { Ok(()) } else { Err(text.trim().to_owned()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_spec() -> Result<()> {
        let t = parse_target_spec("node=http://127.0.0.1:9100/metrics#1234")?;
        assert_eq!(t.name, "node");
        assert_eq!(t.uri.to_string(), "http://127.0.0.1:9100/metrics");
        assert_eq!(t.pid, Some(1234));
        Ok(())
    }

    #[test]
    fn pid_is_optional_and_path_defaults_to_metrics() -> Result<()> {
        let t = parse_target_spec("redis=http://127.0.0.1:9121")?;
        assert_eq!(t.pid, None);
        assert_eq!(t.uri.to_string(), "http://127.0.0.1:9121/metrics");
        let t = parse_target_spec("x=http://localhost:1/#7")?;
        assert_eq!(t.uri.path(), "/metrics");
        assert_eq!(t.pid, Some(7));
        Ok(())
    }

    #[test]
    fn keeps_custom_path_and_query() -> Result<()> {
        let t = parse_target_spec("blackbox=http://127.0.0.1:9115/probe?module=http_2xx&target=a=b#99")?;
        assert_eq!(t.name, "blackbox");
        assert_eq!(t.uri.path(), "/probe");
        assert_eq!(t.uri.query(), Some("module=http_2xx&target=a=b"));
        assert_eq!(t.pid, Some(99));
        Ok(())
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "no-equals-sign",
            "=http://127.0.0.1:1/metrics",
            "a=http://127.0.0.1:1/metrics#notapid",
            "a=http://127.0.0.1:1/metrics#0",
            "a=https://127.0.0.1:1/metrics",
            "a=/metrics",
            "a|b=http://127.0.0.1:1/metrics",
        ] {
            assert!(parse_target_spec(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn substitutes_listen_address() -> Result<()> {
        let l = Launch::standard("n", Path::new("/bin/true"));
        let addr: SocketAddr = "127.0.0.1:4567".parse()?;
        assert_eq!(l.args_for(addr), vec!["--web.listen-address=127.0.0.1:4567"]);
        let mut redis = Launch::standard("redis", Path::new("/usr/bin/redis-server"));
        redis.args = vec!["--port".into(), "{port}".into(), "--bind".into(), "127.0.0.1".into()];
        assert_eq!(redis.args_for(addr), vec!["--port", "4567", "--bind", "127.0.0.1"]);
        Ok(())
    }

    #[test]
    fn version_lines_are_cleaned() {
        assert_eq!(
            clean_version_line(
                "time=\"2026-11-25T20:26:59Z\" level=info msg=\"Redis Metrics Exporter 1.45.0-2+b4    build date: 20230409\""
            ),
            "Redis Metrics Exporter 1.45.0-2+b4 build date: 20230409"
        );
        assert_eq!(
            clean_version_line("postgres_exporter, version 0.11.1 (branch: debian/sid)"),
            "postgres_exporter, version 0.11.1 (branch: debian/sid)"
        );
    }

    #[test]
    fn fleet_stops_members_by_name_and_drops_guards() -> Result<()> {
        struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut fleet = Fleet::default();
        fleet.keep(Flag(std::sync::Arc::clone(&dropped)));
        let mut launch = Launch::standard("sleeper", Path::new("/bin/sleep"));
        launch.args = vec!["30".to_owned()];
        let pid = fleet.spawn(&launch)?.pid.context("pid")?;
        fleet.stop_member("sleeper")?;
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        fleet.check_alive("sleeper")?; // no longer a member: nothing to check
        assert!(!dropped.load(std::sync::atomic::Ordering::SeqCst));
        drop(fleet);
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
        Ok(())
    }

    #[test]
    fn relative_programs_resolve_against_the_callers_dir() {
        let cwd = Path::new("/work/main");
        assert_eq!(
            resolve_program(Path::new("target/release/opsmon-exporter"), cwd),
            Path::new("/work/main/target/release/opsmon-exporter")
        );
        assert_eq!(resolve_program(Path::new("./x"), cwd), Path::new("/work/main/./x"));
        assert_eq!(
            resolve_program(Path::new("/usr/bin/prometheus-node-exporter"), cwd),
            Path::new("/usr/bin/prometheus-node-exporter")
        );
        assert_eq!(
            resolve_program(Path::new("prometheus-node-exporter"), cwd),
            Path::new("prometheus-node-exporter")
        );
    }

    #[test]
    fn fleet_stops_children_on_drop() -> Result<()> {
        let mut fleet = Fleet::default();
        let mut launch = Launch::standard("sleeper", Path::new("/bin/sleep"));
        launch.args = vec!["30".to_owned()];
        let t = fleet.spawn(&launch)?;
        let pid = t.pid.context("spawned target has a pid")?;
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        fleet.check_alive("sleeper")?;
        drop(fleet);
        // Reaped by stop(), so the /proc entry is gone.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        Ok(())
    }
}
