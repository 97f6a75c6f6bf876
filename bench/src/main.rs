//! `opsmon-bench`: side-by-side scrape benchmark of `opsmon-exporter` against
//! the peer exporters it replaces. Owns the command line and the order of the
//! measurement phases; prints two markdown tables on stdout, progress on stderr.
//!
//! Phases per run (all targets started before, stopped after):
//! 1. warm-up: `--warmup` scrapes per target, round-robin;
//! 2. sequential: `--scrapes` scrapes per target, interleaved one by one, timed;
//! 3. load: `--clients` keep-alive clients for `--duration` s, one target at a time;
//!    then RSS. CPU ticks are read around phases 2 and 3 only.

// A benchmark's whole job is printing: the report to stdout, progress to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod procfs;
mod report;
mod scrape;
mod stats;
mod target;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Parser;
use hyper::StatusCode;

use report::{Figures, Row};
use target::{Fleet, Launch, Target};

#[derive(Debug, Parser)]
#[command(
    name = "opsmon-bench",
    version,
    about = "Scrape benchmark: opsmon-exporter vs node_exporter (and any --target), as markdown tables"
)]
struct Args {
    /// opsmon-exporter binary to start.
    #[arg(long, env = "OPSMON_BENCH_EXPORTER", default_value = "target/release/opsmon-exporter")]
    exporter: PathBuf,
    /// node_exporter binary to start (Debian package prometheus-node-exporter).
    #[arg(long, default_value = "/usr/bin/prometheus-node-exporter")]
    node_exporter: PathBuf,
    /// Extra, externally started target: NAME=URL[#PID]. Without a path the URL
    /// gets /metrics; without PID its RSS and CPU are n/a. Repeatable.
    #[arg(long = "target", value_name = "NAME=URL[#PID]", value_parser = target::parse_target_spec)]
    targets: Vec<Target>,
    /// Do not start opsmon-exporter and node_exporter; bench only the --target ones.
    #[arg(long)]
    no_peers: bool,
    /// Sequential (latency) scrapes per target and run.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    scrapes: u32,
    /// Seconds of concurrent load per target and run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Concurrent clients in the load phase.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    clients: u32,
    /// Repeat the whole measurement; figures are the median across runs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Unmeasured warm-up scrapes per target at the start of each run.
    #[arg(long, default_value_t = 20)]
    warmup: u32,
    /// Target the ratio table compares against.
    #[arg(long, default_value = "node_exporter")]
    baseline: String,
    /// Per-scrape time-out in seconds (a time-out counts as an error).
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Seconds to wait for each target's /metrics to answer 200 at start-up.
    #[arg(long, default_value_t = 60.0)]
    ready_timeout: f64,
}

fn secs(v: f64, flag: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("--{flag} {v}: must be a positive number of seconds"))
}

/// Settings derived from [`Args`] for the measurement loop.
#[derive(Debug)]
struct Plan {
    warmup: u32,
    scrapes: u32,
    clients: usize,
    duration: Duration,
    timeout: Duration,
    clock_hz: f64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut fleet = Fleet::default();
    let result = tokio::select! {
        r = run(&args, &mut fleet) => r,
        r = interrupted() => r.and(Err(anyhow!("interrupted; stopping the exporters"))),
    };
    // Stop the exporters before printing, whatever happened.
    drop(fleet);
    match result {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("opsmon-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM, so the [`Fleet`] guard still runs.
async fn interrupted() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

async fn run(args: &Args, fleet: &mut Fleet) -> Result<String> {
    let plan = Plan {
        warmup: args.warmup,
        scrapes: args.scrapes,
        clients: args.clients as usize,
        duration: secs(args.duration, "duration")?,
        timeout: secs(args.timeout, "timeout")?,
        clock_hz: procfs::clock_ticks_per_second() as f64,
    };
    let ready_timeout = secs(args.ready_timeout, "ready-timeout")?;

    let mut targets = Vec::new();
    if !args.no_peers {
        // Later peers (postgres_exporter, redis_exporter, blackbox_exporter)
        // are one more Launch here, or a --target while they need setup.
        let launches = [
            Launch::standard("opsmon-exporter", &args.exporter),
            Launch::standard("node_exporter", &args.node_exporter),
        ];
        for launch in &launches {
            if !launch.program.exists() {
                bail!(
                    "{}: {} not found (build it, pass its path, or use --no-peers)",
                    launch.name,
                    launch.program.display()
                );
            }
            targets.push(fleet.spawn(launch)?);
        }
    }
    targets.extend(args.targets.iter().cloned());
    if targets.is_empty() {
        bail!("nothing to benchmark: --no-peers and no --target");
    }
    for (i, t) in targets.iter().enumerate() {
        if targets.iter().skip(i + 1).any(|o| o.name == t.name) {
            bail!("two targets are called {:?}", t.name);
        }
        if let Some(pid) = t.pid {
            procfs::cpu_ticks(pid).with_context(|| format!("{}: PID {pid}", t.name))?;
        }
    }

    let http = scrape::client();
    for t in &mut targets {
        let name = t.name.clone();
        let waited = scrape::wait_ready(&http, &t.uri, ready_timeout, || fleet.check_alive(&name))
            .await
            .map_err(|e| {
                // An exited process's error already carries its log tail.
                let tail = fleet.log_tail(&name, 20);
                if tail.is_empty() || fleet.check_alive(&name).is_err() {
                    e
                } else {
                    e.context(format!("{name} log tail:\n{tail}"))
                }
            })
            .with_context(|| format!("{name} did not come up"))?;
        if t.version.is_none() {
            let body = scrape::scrape(&http, &t.uri, plan.timeout).await?.body;
            t.version = stats::build_info_version(&String::from_utf8_lossy(&body));
        }
        eprintln!(
            "opsmon-bench: {name} ready at {} after {:.0} ms (pid {})",
            t.uri,
            waited.as_secs_f64() * 1000.0,
            t.pid.map_or_else(|| "n/a".to_owned(), |p| p.to_string())
        );
    }

    let header = header(args, &targets);
    eprintln!("{header}");

    let mut per_run: Vec<Vec<Figures>> = vec![Vec::new(); targets.len()];
    for run in 0..args.runs as usize {
        eprintln!("opsmon-bench: run {}/{}", run + 1, args.runs);
        let figures = measure(&targets, &plan, run, fleet).await?;
        if args.runs > 1 {
            let rows = rows(&targets, &figures);
            eprint!("{}", report::figures_table(&rows, plan.clients));
        }
        for (acc, f) in per_run.iter_mut().zip(figures) {
            acc.push(f);
        }
    }
    let medians: Vec<Figures> = per_run.iter().map(|runs| Figures::median(runs)).collect();
    let rows = rows(&targets, &medians);

    let mut out = header;
    out.push('\n');
    out.push_str(&report::figures_table(&rows, plan.clients));
    out.push('\n');
    match rows.iter().find(|r| r.name == args.baseline) {
        Some(base) => out.push_str(&report::ratio_table(&rows, base)),
        None => out
            .push_str(&format!("(no ratio table: baseline {:?} is not among the targets)\n", args.baseline)),
    }
    let loadgen: Vec<String> =
        rows.iter().filter_map(|r| Some(format!("{} {:.2}", r.name, r.figures.loadgen_cores?))).collect();
    if !loadgen.is_empty() {
        out.push_str(&format!(
            "\nLoad generator (this bench) CPU during each load phase, in cores of {}: {}\n",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            loadgen.join(", ")
        ));
    }
    let notes: Vec<String> = rows
        .iter()
        .filter(|r| r.figures.errors > 0)
        .map(|r| {
            format!(
                "- {}: {} failed scrapes; first: {}",
                r.name,
                r.figures.errors,
                r.figures.first_error.as_deref().unwrap_or("?")
            )
        })
        .collect();
    if !notes.is_empty() {
        out.push_str("\nErrors (not counted in latency, req/s or CPU/scrape):\n");
        out.push_str(&notes.join("\n"));
        out.push('\n');
    }
    Ok(out)
}

fn rows(targets: &[Target], figures: &[Figures]) -> Vec<Row> {
    targets.iter().zip(figures).map(|(t, f)| Row { name: t.name.clone(), figures: f.clone() }).collect()
}

/// Machine, date, versions and settings, as markdown lines.
fn header(args: &Args, targets: &[Target]) -> String {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".to_owned());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| report::cpu_model(&s))
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let versions: Vec<String> = targets
        .iter()
        .map(|t| format!("{}: `{}`", t.name, t.version.as_deref().unwrap_or("version unknown")))
        .collect();
    format!(
        "**Machine:** nproc {nproc} ({cpu}), kernel {kernel}, {date}  \n\
         **Exporters:** {versions}  \n\
         **Settings:** {warmup} warm-up + {scrapes} sequential scrapes per target, \
         {clients} clients × {duration} s load per target, {runs} run(s){median}, baseline {baseline}\n",
        date = report::format_utc(now),
        versions = versions.join("; "),
        warmup = args.warmup,
        scrapes = args.scrapes,
        clients = args.clients,
        duration = args.duration,
        runs = args.runs,
        median = if args.runs > 1 { " (medians)" } else { "" },
        baseline = args.baseline,
    )
}

fn ticks(t: &Target) -> Result<Option<u64>> {
    t.pid
        .map(procfs::cpu_ticks)
        .transpose()
        .with_context(|| format!("{}: reading CPU time (did it exit?)", t.name))
}

fn tick_delta(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    Some(after?.saturating_sub(before?))
}

fn check_all_alive(fleet: &mut Fleet, targets: &[Target]) -> Result<()> {
    targets.iter().try_for_each(|t| fleet.check_alive(&t.name))
}

/// One full run over all targets; returns figures in `targets` order.
async fn measure(targets: &[Target], plan: &Plan, run: usize, fleet: &mut Fleet) -> Result<Vec<Figures>> {
    let n = targets.len();
    let clients: Vec<scrape::HttpClient> = targets.iter().map(|_| scrape::client()).collect();
    let mut figures = vec![Figures::default(); n];

    // 1. Warm-up (also opens each keep-alive connection).
    for _ in 0..plan.warmup {
        for (t, c) in targets.iter().zip(&clients) {
            let _ = scrape::scrape(c, &t.uri, plan.timeout).await;
        }
    }
    check_all_alive(fleet, targets)?;

    // 2. Sequential scrapes, interleaved one by one between targets.
    eprintln!("opsmon-bench:   sequential: {} scrapes × {n} target(s), interleaved", plan.scrapes);
    let cpu_before = targets.iter().map(ticks).collect::<Result<Vec<_>>>()?;
    let mut latencies = vec![Vec::with_capacity(plan.scrapes as usize); n];
    let mut last_body = vec![None; n];
    for _ in 0..plan.scrapes {
        for i in 0..n {
            let (Some(t), Some(c), Some(f)) = (targets.get(i), clients.get(i), figures.get_mut(i)) else {
                continue;
            };
            let err = match scrape::scrape(c, &t.uri, plan.timeout).await {
                Ok(s) if s.status == StatusCode::OK => {
                    if let Some(l) = latencies.get_mut(i) {
                        l.push(s.elapsed.as_secs_f64() * 1000.0);
                    }
                    if let Some(b) = last_body.get_mut(i) {
                        *b = Some(s.body);
                    }
                    continue;
                }
                Ok(s) => format!("sequential: HTTP {}", s.status),
                Err(e) => format!("sequential: {e:#}"),
            };
            f.errors += 1;
            f.first_error.get_or_insert(err);
        }
    }
    let cpu_after = targets.iter().map(ticks).collect::<Result<Vec<_>>>()?;
    check_all_alive(fleet, targets)?;

    // 3. Concurrent load, one target at a time; rotate who goes first per run.
    for k in 0..n {
        let i = (k + run) % n;
        let (Some(t), Some(f)) = (targets.get(i), figures.get_mut(i)) else {
            continue;
        };
        eprintln!("opsmon-bench:   load: {} × {} clients for {:?}", t.name, plan.clients, plan.duration);
        let before = ticks(t)?;
        let own_before = procfs::cpu_ticks(std::process::id())?;
        let load = scrape::load(&t.uri, plan.clients, plan.duration, plan.timeout).await;
        let own_after = procfs::cpu_ticks(std::process::id())?;
        let after = ticks(t)?;
        let wall = load.elapsed.as_secs_f64();
        if wall > 0.0 {
            let cores = own_after.saturating_sub(own_before) as f64 / plan.clock_hz / wall;
            f.loadgen_cores = Some(cores);
        }
        fleet.check_alive(&t.name)?;
        f.rss_mib =
            t.pid.map(procfs::rss_mib).transpose().with_context(|| format!("{}: reading RSS", t.name))?;
        f.req_per_sec = Some(load.req_per_sec());
        f.errors += load.errors;
        if let Some(e) = load.first_error {
            f.first_error.get_or_insert(format!("load: {e}"));
        }

        let lat = latencies.get(i).map(Vec::as_slice).unwrap_or_default();
        f.p50_ms = stats::percentile(lat, 50.0);
        f.p90_ms = stats::percentile(lat, 90.0);
        f.p99_ms = stats::percentile(lat, 99.0);
        if let Some(Some(body)) = last_body.get(i) {
            f.bytes = Some(body.len() as f64);
            f.series = Some(stats::count_series(&String::from_utf8_lossy(body)) as f64);
        }
        let seq = tick_delta(cpu_before.get(i).copied().flatten(), cpu_after.get(i).copied().flatten());
        let scrapes = lat.len() as u64 + load.ok;
        f.cpu_ms_per_scrape = match (seq, tick_delta(before, after)) {
            (Some(a), Some(b)) if scrapes > 0 => {
                Some((a + b) as f64 * 1000.0 / plan.clock_hz / scrapes as f64)
            }
            _ => None,
        };
    }
    Ok(figures)
}
