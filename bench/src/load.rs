//! `opsmon-bench load` and `opsmon-bench soak`: how opsmon-exporter holds up
//! under the shipped systemd unit's limits, measured from outside over raw
//! TCP (so malformed and unfinished requests can be sent at will).
//!
//! `load` runs three phases, each against a freshly started exporter (so each
//! phase's peak resident memory, `VmHWM`, is its own):
//! 1. `--scrapes` (1,500) concurrent `GET /metrics`, each on its own connection;
//! 2. slow-header flood: `--slow` (1,000) connections that send one header
//!    byte every `--drip` seconds, while a probe scrape runs once a second;
//! 3. big-header flood: `--big` (1,000) connections each sending an
//!    unfinished head of `--big-kib` (33) KiB, re-opened as the exporter
//!    closes them, while a probe scrape runs once a second.
//!
//! `soak` scrapes at `--rate` (10) per second for `--minutes` (10) and samples
//! RSS, open descriptors and threads every 10 s. It is opt-in: never part of
//! CI.
//!
//! The exporter runs with the default flags (the shipped limits:
//! `--web.max-requests=40`, `--web.max-connections=512`), the host collector
//! only, under `prlimit --nofile=N` with N read from `LimitNOFILE=` of
//! `deploy/systemd/opsmon-exporter.service`. `MemoryMax=` cannot be applied
//! without systemd, so the peak RSS is reported next to it instead.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Which mode `opsmon-bench load|soak …` asked for, or `None` for the
/// classic flags of the side-by-side benchmark.
pub fn requested() -> Option<Mode> {
    let mut args = std::env::args_os();
    let program = args.next()?;
    let mode = args.next()?;
    let rest = std::iter::once(program).chain(args);
    match mode.to_str()? {
        "load" => Some(Mode::Load(LoadArgs::parse_from(rest))),
        "soak" => Some(Mode::Soak(SoakArgs::parse_from(rest))),
        _ => None,
    }
}

/// A load or soak run.
#[derive(Debug)]
pub enum Mode {
    /// Concurrent scrapes and header floods.
    Load(LoadArgs),
    /// Long steady scraping.
    Soak(SoakArgs),
}

/// What both modes share.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// opsmon-exporter binary to start.
    #[arg(long, env = "OPSMON_BENCH_EXPORTER", default_value = "target/release/opsmon-exporter")]
    exporter: PathBuf,
    /// The systemd unit whose `LimitNOFILE=` and `MemoryMax=` apply.
    #[arg(long, default_value = "deploy/systemd/opsmon-exporter.service")]
    unit: PathBuf,
}

/// `opsmon-bench load`.
#[derive(Debug, Parser)]
#[command(
    name = "opsmon-bench load",
    bin_name = "opsmon-bench load",
    about = "Concurrent scrapes and header floods under the unit's limits"
)]
pub struct LoadArgs {
    #[command(flatten)]
    common: Common,
    /// Concurrent scrapes in phase 1.
    #[arg(long, default_value_t = 1500)]
    scrapes: usize,
    /// Slow-header connections in phase 2.
    #[arg(long, default_value_t = 1000)]
    slow: usize,
    /// Seconds between two header bytes of a slow connection.
    #[arg(long, default_value_t = 3.0)]
    drip: f64,
    /// Big-header connections in phase 3.
    #[arg(long, default_value_t = 1000)]
    big: usize,
    /// Size of each unfinished head in phase 3, KiB.
    #[arg(long, default_value_t = 33)]
    big_kib: usize,
    /// Seconds each flood lasts.
    #[arg(long, default_value_t = 30.0)]
    flood_seconds: f64,
}

/// `opsmon-bench soak`.
#[derive(Debug, Parser)]
#[command(
    name = "opsmon-bench soak",
    bin_name = "opsmon-bench soak",
    about = "Steady scraping; RSS, fds and threads every 10 s"
)]
pub struct SoakArgs {
    #[command(flatten)]
    common: Common,
    /// Scrapes per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Length of the soak in minutes.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
}

/// Deadline of every request the bench sends; a hang shows as an error.
const REQUEST_DEADLINE: Duration = Duration::from_secs(60);

/// Runs `mode` and returns the markdown report.
pub async fn run(mode: Mode) -> Result<String> {
    raise_own_fd_limit();
    match mode {
        Mode::Load(args) => load(&args).await,
        Mode::Soak(args) => soak(&args).await,
    }
}

/// The unit's limits as written in it.
#[derive(Debug, Clone)]
struct UnitLimits {
    nofile: u64,
    memory_max: String,
    memory_max_mib: f64,
}

/// Reads `LimitNOFILE=` and `MemoryMax=` (`128M` style) from a unit file.
fn unit_limits(path: &Path) -> Result<UnitLimits> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value = |key: &str| {
        text.lines().filter(|l| !l.trim_start().starts_with('#')).find_map(|l| l.trim().strip_prefix(key))
    };
    let nofile = value("LimitNOFILE=")
        .with_context(|| format!("{}: no LimitNOFILE=", path.display()))?
        .trim()
        .parse::<u64>()
        .with_context(|| format!("{}: LimitNOFILE= is not a number", path.display()))?;
    let memory_max =
        value("MemoryMax=").with_context(|| format!("{}: no MemoryMax=", path.display()))?.trim();
    let (number, unit) = memory_max.split_at(memory_max.trim_end_matches(char::is_alphabetic).len());
    let number: f64 = number.parse().with_context(|| format!("MemoryMax={memory_max}"))?;
    let mib = match unit {
        "K" => number / 1024.0,
        "M" => number,
        "G" => number * 1024.0,
        _ => bail!("{}: MemoryMax={memory_max}: unit K, M or G expected", path.display()),
    };
    Ok(UnitLimits { nofile, memory_max: memory_max.to_owned(), memory_max_mib: mib })
}

/// The bench opens thousands of sockets itself.
fn raise_own_fd_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let wanted = limit.maximum.unwrap_or(65_536).min(65_536);
    let _ = setrlimit(Resource::Nofile, Rlimit { current: Some(wanted), maximum: limit.maximum });
}

/// One exporter under `prlimit`, killed on drop.
struct Exporter {
    child: Child,
    port: u16,
    _dir: tempfile_dir::TempDir,
}

/// A tiny temp dir (the bench has no tempfile dependency).
mod tempfile_dir {
    use std::path::{Path, PathBuf};

    #[derive(Debug)]
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> std::io::Result<TempDir> {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let dir = std::env::temp_dir().join(format!("opsmon-bench-{tag}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            Ok(TempDir(dir))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Exporter {
    async fn start(common: &Common, limits: &UnitLimits) -> Result<Exporter> {
        let dir = tempfile_dir::TempDir::new("load")?;
        let config = dir.path().join("opsmon.yml");
        // The host collector only: the floods are about the HTTP side.
        std::fs::write(&config, "collectors:\n  host:\n    enabled: true\n")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::fs::File::create(dir.path().join("exporter.log"))?;
        let child = Command::new("prlimit")
            .arg(format!("--nofile={0}:{0}", limits.nofile))
            .arg("--")
            .arg(&common.exporter)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .env_remove("DATA_SOURCE_NAME")
            .env_remove("REDIS_ADDR")
            .env_remove("REDIS_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting prlimit -- {}", common.exporter.display()))?;
        let exporter = Exporter { child, port, _dir: dir };
        let started = Instant::now();
        loop {
            if let Ok(answer) = request(port, "/-/ready", Duration::from_secs(2)).await
                && answer.status == 200
            {
                return Ok(exporter);
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("{} did not answer /-/ready within 30 s", common.exporter.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pid(&self) -> u32 {
        // prlimit execs the exporter: same pid.
        self.child.id()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS`, `VmHWM` (MiB), threads and open descriptors of `pid`.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    rss_mib: f64,
    peak_mib: f64,
    threads: u64,
    fds: u64,
}

fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    Usage {
        rss_mib: field("VmRSS:") as f64 / 1024.0,
        peak_mib: field("VmHWM:") as f64 / 1024.0,
        threads: field("Threads:"),
        fds,
    }
}

/// What came back for one request.
#[derive(Debug, Clone, Copy)]
struct Answer {
    /// HTTP status; 0 when the connection closed without a status line.
    status: u16,
    elapsed: Duration,
}

/// One `GET path` on a fresh connection, read to the end (`Connection: close`).
async fn request(port: u16, path: &str, deadline: Duration) -> Result<Answer> {
    let started = Instant::now();
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        anyhow::Ok(response)
    };
    let response = tokio::time::timeout(deadline, exchange)
        .await
        .with_context(|| format!("GET {path}: no answer within {deadline:?}"))??;
    Ok(Answer { status: status_of(&response), elapsed: started.elapsed() })
}

fn status_of(response: &[u8]) -> u16 {
    let line = response.split(|b| *b == b'\n').next().unwrap_or_default();
    std::str::from_utf8(line)
        .ok()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// `q`-quantile (0..=1) of sorted `values`, in ms.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Samples `pid` every `every` until `stop`; returns the highest RSS and fds seen.
fn sampler(pid: u32, every: Duration, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Usage> {
    tokio::spawn(async move {
        let mut highest = Usage::default();
        while !stop.load(Ordering::Relaxed) {
            let now = usage(pid);
            highest.rss_mib = highest.rss_mib.max(now.rss_mib);
            highest.peak_mib = highest.peak_mib.max(now.peak_mib);
            highest.fds = highest.fds.max(now.fds);
            highest.threads = highest.threads.max(now.threads);
            tokio::time::sleep(every).await;
        }
        highest
    })
}

/// Status counts and latencies of a set of answers.
#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    unavailable: usize,
    other: usize,
    failed: usize,
    latencies: Vec<Duration>,
    /// Why requests got no answer, with counts.
    failures: std::collections::BTreeMap<String, usize>,
}

impl Tally {
    fn add(&mut self, answer: Result<Answer>) {
        match answer {
            Ok(answer) => {
                match answer.status {
                    200 => self.ok += 1,
                    503 => self.unavailable += 1,
                    _ => self.other += 1,
                }
                self.latencies.push(answer.elapsed);
            }
            Err(error) => {
                self.failed += 1;
                *self.failures.entry(format!("{error:#}")).or_default() += 1;
            }
        }
    }

    /// `reason ×count; …`, or nothing when every request was answered.
    fn failure_note(&self) -> String {
        if self.failures.is_empty() {
            return String::new();
        }
        let reasons: Vec<String> = self.failures.iter().map(|(why, n)| format!("{why} ×{n}")).collect();
        format!("No answer: {}.\n\n", reasons.join("; "))
    }

    fn row(&mut self) -> String {
        self.latencies.sort();
        format!(
            "{} | {} | {} | {} | {:.1} | {:.1} | {:.1}",
            self.ok,
            self.unavailable,
            self.other,
            self.failed,
            quantile_ms(&self.latencies, 0.5),
            quantile_ms(&self.latencies, 0.99),
            quantile_ms(&self.latencies, 1.0),
        )
    }
}

async fn load(args: &LoadArgs) -> Result<String> {
    let limits = unit_limits(&args.common.unit)?;
    let flood = Duration::try_from_secs_f64(args.flood_seconds).context("--flood-seconds")?;
    let drip = Duration::try_from_secs_f64(args.drip).context("--drip")?;
    let mut report = format!(
        "Exporter under `prlimit --nofile={0}:{0}` (LimitNOFILE of {1}); MemoryMax={2} is not enforced here, \
         peak RSS (VmHWM) is compared with it.\n\n",
        limits.nofile,
        args.common.unit.display(),
        limits.memory_max
    );

    // Phase 1: concurrent scrapes.
    eprintln!("opsmon-bench load: {} concurrent scrapes", args.scrapes);
    let exporter = Exporter::start(&args.common, &limits).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let watch = sampler(exporter.pid(), Duration::from_millis(20), Arc::clone(&stop));
    let started = Instant::now();
    let mut scrapes = tokio::task::JoinSet::new();
    for _ in 0..args.scrapes {
        let port = exporter.port;
        scrapes.spawn(async move { request(port, "/metrics", REQUEST_DEADLINE).await });
    }
    let mut tally = Tally::default();
    while let Some(answer) = scrapes.join_next().await {
        tally.add(answer.context("scrape task")?);
    }
    let wall = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let highest = watch.await?;
    let peak = usage(exporter.pid()).peak_mib.max(highest.peak_mib);
    drop(exporter);
    report.push_str(&format!(
        "### {} concurrent scrapes of /metrics\n\n\
         | 200 | 503 | other status | no answer | p50 ms | p99 ms | max ms | wall s | peak RSS MiB | peak fds |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n\
         | {} | {:.1} | {:.1} | {} |\n\n",
        args.scrapes,
        tally.row(),
        wall.as_secs_f64(),
        peak,
        highest.fds
    ));
    report.push_str(&tally.failure_note());

    // Phase 2: slow-header flood.
    eprintln!("opsmon-bench load: slow-header flood, {} connections", args.slow);
    let (row, notes) = flood_phase(&args.common, &limits, args.slow, flood, move |port, stop, opened| {
        tokio::spawn(slow_header_connection(port, drip, stop, opened))
    })
    .await?;
    report.push_str(&format!(
        "### Slow-header flood: {} connections, one header byte every {:.0} s, for {:.0} s\n\n{}{}\n",
        args.slow,
        drip.as_secs_f64(),
        flood.as_secs_f64(),
        FLOOD_HEADER,
        row
    ));
    report.push_str(&notes);

    // Phase 3: big-header flood.
    eprintln!("opsmon-bench load: big-header flood, {} connections of {} KiB", args.big, args.big_kib);
    let head_bytes = args.big_kib * 1024;
    let (row, notes) = flood_phase(&args.common, &limits, args.big, flood, move |port, stop, opened| {
        tokio::spawn(big_header_connection(port, head_bytes, stop, opened))
    })
    .await?;
    report.push_str(&format!(
        "### Big-header flood: {} connections, each an unfinished {} KiB head, re-opened when closed, for {:.0} s\n\n{}{}\n",
        args.big,
        args.big_kib,
        flood.as_secs_f64(),
        FLOOD_HEADER,
        row
    ));
    report.push_str(&notes);
    report.push_str(&format!(
        "MemoryMax={} ({:.0} MiB): every peak RSS above is to be read against it.\n",
        limits.memory_max, limits.memory_max_mib
    ));
    Ok(report)
}

const FLOOD_HEADER: &str = "| flood connections opened | probe scrapes 200 | 503 | other | no answer | p50 ms | p99 ms | max ms | peak RSS MiB | peak fds | threads |\n\
                            |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";

/// Runs `connections` flood connections (made by `open`) for `length` while
/// one probe scrape of /metrics is sent every second; returns the table row
/// and a note on the exporter's log.
async fn flood_phase(
    common: &Common,
    limits: &UnitLimits,
    connections: usize,
    length: Duration,
    open: impl Fn(u16, Arc<AtomicBool>, Arc<AtomicU64>) -> tokio::task::JoinHandle<()>,
) -> Result<(String, String)> {
    let exporter = Exporter::start(common, limits).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicU64::new(0));
    let watch = sampler(exporter.pid(), Duration::from_millis(100), Arc::clone(&stop));
    let mut flood = Vec::with_capacity(connections);
    for _ in 0..connections {
        flood.push(open(exporter.port, Arc::clone(&stop), Arc::clone(&opened)));
    }
    // Let the flood build up before the first probe.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let mut probes = tokio::task::JoinSet::new();
    while started.elapsed() < length {
        let port = exporter.port;
        probes.spawn(async move { request(port, "/metrics", REQUEST_DEADLINE).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut tally = Tally::default();
    while let Some(answer) = probes.join_next().await {
        tally.add(answer.context("probe task")?);
    }
    stop.store(true, Ordering::Relaxed);
    for connection in flood {
        connection.abort();
    }
    let highest = watch.await?;
    let peak = usage(exporter.pid()).peak_mib.max(highest.peak_mib);
    let log = std::fs::read_to_string(exporter._dir.path().join("exporter.log")).unwrap_or_default();
    drop(exporter);
    let accept_failures = log.lines().filter(|l| l.contains("accept failed")).count();
    let row = format!(
        "| {} | {} | {:.1} | {} | {} |\n",
        opened.load(Ordering::Relaxed),
        tally.row(),
        peak,
        highest.fds,
        highest.threads
    );
    let notes = format!(
        "{}Exporter log: {} lines, {accept_failures} \"accept failed\".\n\n",
        tally.failure_note(),
        log.lines().count()
    );
    Ok((row, notes))
}

/// Sends `GET /metrics HTTP/1.1` and then one header byte every `drip`,
/// reconnecting whenever the exporter closes the connection.
async fn slow_header_connection(port: u16, drip: Duration, stop: Arc<AtomicBool>, opened: Arc<AtomicU64>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        opened.fetch_add(1, Ordering::Relaxed);
        if stream.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ").await.is_err() {
            continue;
        }
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(drip).await;
            if stream.write_all(b"a").await.is_err() {
                break;
            }
        }
    }
}

/// Sends an unfinished head of `head_bytes` and holds the connection until
/// the exporter closes it, then opens the next one.
async fn big_header_connection(port: u16, head_bytes: usize, stop: Arc<AtomicBool>, opened: Arc<AtomicU64>) {
    let mut head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    head.resize(head_bytes, b'a');
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        opened.fetch_add(1, Ordering::Relaxed);
        // The exporter may answer 431 and close part-way: that is the point.
        let _ = stream.write_all(&head).await;
        let mut sink = [0_u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut sink)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(_)) => {}
                Err(_) if stop.load(Ordering::Relaxed) => return,
                Err(_) => {}
            }
        }
    }
}

async fn soak(args: &SoakArgs) -> Result<String> {
    let limits = unit_limits(&args.common.unit)?;
    if !(args.rate > 0.0 && args.rate <= 1000.0) {
        bail!("--rate {}: between 0 and 1000 scrapes per second", args.rate);
    }
    let length = Duration::try_from_secs_f64(args.minutes * 60.0).context("--minutes")?;
    let exporter = Exporter::start(&args.common, &limits).await?;
    let pid = exporter.pid();
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let started = Instant::now();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_sample = Duration::ZERO;
    let mut rows = String::new();
    let mut samples: Vec<(f64, Usage)> = Vec::new();
    let mut tally = Tally::default();
    let mut in_flight = tokio::task::JoinSet::new();
    eprintln!("opsmon-bench soak: {:.1} scrapes/s for {:.1} min", args.rate, args.minutes);
    while started.elapsed() < length {
        ticker.tick().await;
        let port = exporter.port;
        in_flight.spawn(async move { request(port, "/metrics", REQUEST_DEADLINE).await });
        while let Some(done) = in_flight.try_join_next() {
            tally.add(done.context("scrape task")?);
        }
        if started.elapsed() >= next_sample {
            let now = usage(pid);
            let t = started.elapsed().as_secs_f64();
            rows.push_str(&format!(
                "| {t:.0} | {:.2} | {:.2} | {} | {} | {} |\n",
                now.rss_mib,
                now.peak_mib,
                now.fds,
                now.threads,
                tally.ok + tally.unavailable + tally.other + tally.failed
            ));
            eprintln!(
                "opsmon-bench soak: t={t:.0}s rss={:.2}MiB fds={} threads={}",
                now.rss_mib, now.fds, now.threads
            );
            samples.push((t, now));
            next_sample += Duration::from_secs(10);
        }
    }
    while let Some(done) = in_flight.join_next().await {
        tally.add(done.context("scrape task")?);
    }
    let last = usage(pid);
    drop(exporter);
    // Growth is measured after the first minute: allocator arenas and the
    // blocking pool settle during it.
    let settled =
        samples.iter().find(|(t, _)| *t >= 60.0).or(samples.first()).map(|(_, u)| *u).unwrap_or_default();
    let first = samples.first().map(|(_, u)| *u).unwrap_or_default();
    let summary_row = tally.row();
    let failures = tally.failure_note();
    Ok(format!(
        "### Soak: {:.0} scrapes/s for {:.0} min\n\n\
         | t s | RSS MiB | peak RSS MiB | open fds | threads | scrapes sent |\n|---:|---:|---:|---:|---:|---:|\n{rows}\n\
         | 200 | 503 | other status | no answer | p50 ms | p99 ms | max ms |\n|---:|---:|---:|---:|---:|---:|---:|\n| {summary_row} |\n\n{failures}\
         RSS: {:.2} MiB at start, {:.2} MiB after 1 min, {:.2} MiB at the end (growth after the first minute {:+.2} MiB); \
         peak {:.2} MiB (MemoryMax={}). Open fds {} → {}, threads {} → {}.\n",
        args.rate,
        args.minutes,
        first.rss_mib,
        settled.rss_mib,
        last.rss_mib,
        last.rss_mib - settled.rss_mib,
        last.peak_mib,
        limits.memory_max,
        first.fds,
        last.fds,
        first.threads,
        last.threads,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_shipped_units_limits() -> Result<()> {
        let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd/opsmon-exporter.service");
        let limits = unit_limits(&unit)?;
        assert!(limits.nofile >= 1024, "{limits:?}");
        assert!((limits.memory_max_mib - 128.0).abs() < f64::EPSILON, "{limits:?}");
        Ok(())
    }

    #[test]
    fn status_line_is_read() {
        assert_eq!(status_of(b"HTTP/1.1 503 Service Unavailable\r\n"), 503);
        assert_eq!(status_of(b""), 0);
    }

    #[test]
    fn quantiles_of_sorted_latencies() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert!((quantile_ms(&values, 0.5) - 51.0).abs() < 1e-9);
        assert!((quantile_ms(&values, 1.0) - 100.0).abs() < 1e-9);
    }
}
