//! `opsmon-bench`: side-by-side scrape benchmark of `opsmon-exporter` against
//! the peer exporters it replaces. Owns the command line and the order of the
//! measurement phases; prints two markdown tables on stdout, progress on stderr.
//!
//! Phases per run (all targets started before, stopped after):
//! 1. warm-up: `--warmup` scrapes per target, round-robin;
//! 2. sequential: `--scrapes` scrapes per target, interleaved one by one, timed;
//! 3. load: `--clients` keep-alive clients for `--duration` s, one target at a time;
//!    then RSS. CPU ticks are read around phases 2 and 3 only.
//!
//! `--full` (see [`full`]) also starts the bench's own PostgreSQL and Redis and
//! the three peers opsmon-exporter replaces, measures the CPU of each
//! exporter's PostgreSQL backends around phases 2 and 3 (see [`pgcpu`]), and
//! ends with an isolated `pg_stat_statements` phase per PostgreSQL exporter.
//!
//! `--probe` (see [`probe`]) benchmarks `/probe?target=URL&module=http_2xx` of
//! opsmon-exporter against blackbox_exporter's, both probing a static HTTP
//! target the bench serves itself; every probe body must say `probe_success 1`.
//!
//! Two subcommands with flags of their own (issue 14): `business-sql` (see
//! [`business_sql`]) and `multitarget` (see [`multitarget`]).
//! `opsmon-bench load` and `opsmon-bench soak` (see [`load`]): concurrent
//! scrapes, header floods and a long soak under the shipped unit's limits.

// A benchmark's whole job is printing: the report to stdout, progress to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod business_sql;
mod chain;
mod full;
mod load;
mod multitarget;
mod pgcpu;
mod probe;
mod procfs;
mod report;
mod scrape;
mod services;
mod stats;
mod svg;
mod sweep;
mod target;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Parser;
use hyper::StatusCode;

use report::{Comparison, Figures, FullGoal, Row};
use target::{Fleet, Launch, Target};

#[derive(Debug, Parser)]
#[command(
    name = "opsmon-bench",
    version,
    about = "Scrape benchmark: opsmon-exporter vs node_exporter (and any --target), as markdown tables; \
             --full: host + PostgreSQL + Redis vs node_exporter + postgres_exporter + redis_exporter; \
             --probe: /probe?module=http_2xx vs blackbox_exporter"
)]
struct Args {
    /// Full scrape: start an own PostgreSQL and Redis, opsmon-exporter with
    /// host + postgres + redis, and node_exporter, postgres_exporter and
    /// redis_exporter; also measure the CPU spent in PostgreSQL per scrape.
    #[arg(long, conflicts_with = "no_peers")]
    full: bool,
    /// HTTP probe: start a static HTTP target inside the bench, opsmon-exporter
    /// (host collector off) and blackbox_exporter, and scrape both on
    /// /probe?target=http://127.0.0.1:PORT/&module=http_2xx.
    #[arg(long, conflicts_with_all = ["no_peers", "full"])]
    probe: bool,
    /// opsmon-exporter binary to start.
    #[arg(long, env = "OPSMON_BENCH_EXPORTER", default_value = "target/release/opsmon-exporter")]
    exporter: PathBuf,
    /// node_exporter binary to start (Debian package prometheus-node-exporter).
    #[arg(long, default_value = "/usr/bin/prometheus-node-exporter")]
    node_exporter: PathBuf,
    /// --probe: blackbox_exporter binary (Debian package prometheus-blackbox-exporter).
    #[arg(long, default_value = "/usr/bin/prometheus-blackbox-exporter")]
    blackbox_exporter: PathBuf,
    /// --full: postgres_exporter binary (Debian package prometheus-postgres-exporter).
    #[arg(long, default_value = "/usr/bin/prometheus-postgres-exporter")]
    postgres_exporter: PathBuf,
    /// --full: redis_exporter binary (Debian package prometheus-redis-exporter).
    #[arg(long, default_value = "/usr/bin/prometheus-redis-exporter")]
    redis_exporter: PathBuf,
    /// --full: PostgreSQL's bin dir (initdb, pg_ctl, psql); default the newest
    /// /usr/lib/postgresql/<version>/bin.
    #[arg(long, value_name = "DIR")]
    pg_bin: Option<PathBuf>,
    /// --full: redis-server binary.
    #[arg(long, default_value = "/usr/bin/redis-server")]
    redis_server: PathBuf,
    /// --full: redis-cli binary (readiness check and seeding).
    #[arg(long, default_value = "/usr/bin/redis-cli")]
    redis_cli: PathBuf,
    /// --full: run opsmon-exporter with the shipped deploy/opsmon.yml (every
    /// collector: host, PostgreSQL with business queries, Redis, probe, access
    /// log, files) against node, postgres, redis and blackbox exporters.
    #[arg(long, requires = "full")]
    every_collector: bool,
    /// --full: leave Redis out (for opsmon-exporter and the peer alike).
    #[arg(long)]
    no_redis: bool,
    /// --full: rows in smartalk_db.analytics_events.
    #[arg(long, default_value_t = 50_000)]
    pg_rows: u64,
    /// --full: keys in the bench's Redis (db0 and db1).
    #[arg(long, default_value_t = 4_000, value_parser = clap::value_parser!(u32).range(1..))]
    redis_keys: u32,
    /// --full: scrapes of each PostgreSQL exporter alone in the pg_stat_statements phase (0 = skip it).
    #[arg(long, default_value_t = 50)]
    statement_scrapes: u32,
    /// --full: runs of the PostgreSQL statement chain alone through pgbench,
    /// the floor of any scrape that reads PostgreSQL over one connection (0 = skip it).
    #[arg(long, default_value_t = 1_000)]
    chain_runs: u32,
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
    /// Target the ratio table compares against (host mode; --full compares
    /// against the sum of its peers, --probe against blackbox_exporter).
    #[arg(long, default_value = "node_exporter")]
    baseline: String,
    /// Cost-growth sweeps instead of the side-by-side run: comma-separated
    /// dimensions (process-groups, mounts, listen-ports, connections, routes,
    /// dir-entries, business-series, rulegen) or `all`. business-series starts
    /// its own PostgreSQL (as root, like --full).
    #[arg(long, value_name = "DIMS", conflicts_with_all = ["full", "probe", "no_peers"])]
    sweep: Option<String>,
    /// --sweep: scrapes per exporter at each size.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    sweep_scrapes: u32,
    /// --sweep: write one SVG chart per dimension into this dir (sweep-DIM.svg).
    #[arg(long, value_name = "DIR")]
    plots: Option<PathBuf>,
    /// --sweep process-groups: the peer (Debian package prometheus-process-exporter).
    #[arg(long, default_value = "/usr/bin/prometheus-process-exporter")]
    process_exporter: PathBuf,
    /// --sweep routes: the peer (Debian package mtail), given a program
    /// counting the same routes and statuses.
    #[arg(long, default_value = "/usr/bin/mtail")]
    mtail: PathBuf,
    /// --sweep rulegen: the rulegen binary, run from the workspace root.
    #[arg(long, default_value = "target/release/rulegen")]
    rulegen: PathBuf,
    /// Measure every target a second time in each run with `Accept-Encoding:
    /// gzip` (what Prometheus sends), and compare each with itself.
    #[arg(long)]
    gzip: bool,
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
    ready_timeout: Duration,
    clock_hz: f64,
}

/// Full mode: where to find each watched exporter's PostgreSQL backends.
#[derive(Debug)]
struct PgAccounting<'a> {
    setup: &'a full::Setup,
    /// Indices into the targets of the exporters that talk to PostgreSQL.
    watched: Vec<usize>,
}

impl PgAccounting<'_> {
    /// Backends of the watched targets among `only` (all watched if `None`).
    fn snapshot(&self, targets: &[Target], only: Option<usize>) -> Result<BTreeMap<usize, pgcpu::Backends>> {
        let pids: Vec<(usize, u32)> = self
            .watched
            .iter()
            .filter(|&&i| only.is_none_or(|o| o == i))
            .filter_map(|&i| Some((i, targets.get(i)?.pid?)))
            .collect();
        if pids.is_empty() {
            return Ok(BTreeMap::new());
        }
        pgcpu::snapshot(&self.setup.psql, self.setup.pg_port, &pids)
    }
}

/// Waits until `t` answers 200 (naming it, with its log tail, if not), fills
/// in its version from `*_build_info` if `--version` gave none, and returns
/// the body of one scrape.
async fn bring_up(
    http: &scrape::HttpClient,
    t: &mut Target,
    fleet: &mut Fleet,
    plan: &Plan,
) -> Result<String> {
    let name = t.name.clone();
    let waited = scrape::wait_ready(http, &t.uri, plan.ready_timeout, || fleet.check_alive(&name))
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
    let body = String::from_utf8_lossy(&scrape::scrape(http, &t.uri, plan.timeout).await?.body).into_owned();
    if t.version.is_none() {
        t.version = stats::build_info_version(&body);
    }
    eprintln!(
        "opsmon-bench: {name} ready at {} after {:.0} ms (pid {})",
        t.uri,
        waited.as_secs_f64() * 1000.0,
        t.pid.map_or_else(|| "n/a".to_owned(), |p| p.to_string())
    );
    Ok(body)
}

#[tokio::main]
async fn main() -> ExitCode {
    // `opsmon-bench load|soak …`: floods and the soak (see [`load`]).
    if let Some(mode) = load::requested() {
        return finish(load::run(mode).await);
    }
    let mut fleet = Fleet::default();
    // Subcommands of their own (issue 14); without one, the flags below.
    let mode = std::env::args().nth(1);
    let result = match mode.as_deref() {
        Some("business-sql") => {
            let args = business_sql::Args::parse_from(std::env::args().skip(1));
            business_sql::run(&args, &mut fleet)
        }
        Some("multitarget") => {
            let args = multitarget::Args::parse_from(std::env::args().skip(1));
            tokio::select! {
                r = multitarget::run(&args, &mut fleet) => r,
                r = interrupted() => r.and(Err(anyhow!("interrupted; stopping the servers and exporters"))),
            }
        }
        _ => run_flags(&mut fleet).await,
    };
    // Stop the exporters before printing, whatever happened.
    drop(fleet);
    finish(result)
}

/// Prints the report, or the error.
fn finish(result: Result<String>) -> ExitCode {
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

async fn run_flags(fleet: &mut Fleet) -> Result<String> {
    let args = Args::parse();
    tokio::select! {
        r = run(&args, fleet) => r,
        r = interrupted() => r.and(Err(anyhow!("interrupted; stopping the exporters"))),
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
        ready_timeout: secs(args.ready_timeout, "ready-timeout")?,
        clock_hz: procfs::clock_ticks_per_second() as f64,
    };

    if let Some(dims) = &args.sweep {
        let dims = sweep::parse_dims(dims)?;
        let mut out = header(args, &[], &[]);
        out.push_str(&sweep::run(args, fleet, &plan, &dims, args.plots.as_deref()).await?);
        return Ok(out);
    }
    let http = scrape::client();
    let mut targets = Vec::new();
    let mut setup = None;
    let mut probe_setup = None;
    if args.full {
        let s = full::setup(args, fleet, &http, &plan).await?;
        targets.clone_from(&s.targets);
        setup = Some(s);
    } else if args.probe {
        let s = probe::setup(args, fleet, &http, &plan).await?;
        targets.clone_from(&s.targets);
        probe_setup = Some(s);
    } else if !args.no_peers {
        // A peer that needs no setup is one more Launch here; one that does
        // gets a mode of its own (see full and probe) or starts as a --target.
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
    // Full and probe modes brought their own targets up already.
    let already_up = targets.len() * usize::from(args.full || args.probe);
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

    for t in targets.iter_mut().skip(already_up) {
        bring_up(&http, t, fleet, &plan).await?;
    }

    let extra_header = match (&setup, &probe_setup) {
        (Some(s), _) => &s.header[..],
        (_, Some(s)) => &s.header[..],
        _ => &[],
    };
    let header = header(args, &targets, extra_header);
    eprintln!("{header}");

    let pg = setup.as_ref().map(|s| PgAccounting {
        setup: s,
        watched: targets
            .iter()
            .enumerate()
            .filter(|(_, t)| t.name == full::OURS || t.name == full::POSTGRES)
            .map(|(i, _)| i)
            .collect(),
    });
    if setup.is_some() {
        full::settle().await;
    }
    let static_target = probe_setup.as_ref().map(|s| &s.target);
    let encodings: &[scrape::Encoding] = if args.gzip {
        &[scrape::Encoding::Plain, scrape::Encoding::Gzip]
    } else {
        &[scrape::Encoding::Plain]
    };
    // Per encoding, per target, per run.
    let mut per_run: Vec<Vec<Vec<Figures>>> = vec![vec![Vec::new(); targets.len()]; encodings.len()];
    for run in 0..args.runs as usize {
        for (&encoding, acc) in encodings.iter().zip(&mut per_run) {
            eprintln!("opsmon-bench: run {}/{} ({})", run + 1, args.runs, encoding.label());
            let figures = measure(&targets, &plan, run, fleet, pg.as_ref(), static_target, encoding).await?;
            if args.runs > 1 {
                let rows = rows(&targets, &figures);
                eprint!("{}", report::figures_table(&rows, plan.clients, args.full));
            }
            for (acc, f) in acc.iter_mut().zip(figures) {
                acc.push(f);
            }
        }
    }
    let mut by_encoding = per_run.iter().map(|per_target| {
        let medians: Vec<Figures> = per_target.iter().map(|runs| Figures::median(runs)).collect();
        rows(&targets, &medians)
    });
    let rows = by_encoding.next().unwrap_or_default();
    let gzip_rows = by_encoding.next();

    let mut out = header;
    out.push('\n');
    out.push_str(&report::figures_table(&rows, plan.clients, args.full));
    if let Some(ours) = rows.iter().find(|r| r.name == full::OURS && !r.figures.collector_ms.is_empty()) {
        out.push_str(&report::collectors_table(ours));
    }
    out.push('\n');
    if let Some(setup) = &setup {
        out.push_str(&full_report(args, setup, &targets, &rows, &plan).await?);
    } else if probe_setup.is_some() {
        out.push_str(&probe_report(&rows));
    } else {
        match rows.iter().find(|r| r.name == args.baseline) {
            Some(base) => out.push_str(&report::ratio_table(&rows, base)),
            None => out.push_str(&format!(
                "(no ratio table: baseline {:?} is not among the targets)\n",
                args.baseline
            )),
        }
    }
    if let Some(gzip_rows) = &gzip_rows {
        out.push_str(&gzip_section(args, setup.as_ref(), &rows, gzip_rows, plan.clients));
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
        .chain(gzip_rows.iter().flatten())
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

/// `--gzip`: the same run's figures with `Accept-Encoding: gzip`, the mode's
/// ratio table over them, and each exporter against its own plain figures.
fn gzip_section(
    args: &Args,
    setup: Option<&full::Setup>,
    plain: &[Row],
    gzip: &[Row],
    clients: usize,
) -> String {
    let mut out = String::from(
        "\n#### With `Accept-Encoding: gzip` (what Prometheus sends), same processes, same run\n\n\
         bytes are on the wire (compressed when the answer was gzipped); series are counted after decompressing.\n\n",
    );
    out.push_str(&report::figures_table(gzip, clients, args.full));
    out.push('\n');
    if let Some(setup) = setup {
        out.push_str(&report::full_ratio_table(gzip, full::OURS, &full_goals(setup)));
        out.push_str(&p99_yardstick(setup, gzip));
    } else if args.probe {
        out.push_str(&probe_report(gzip));
    } else if let Some(base) = gzip.iter().find(|r| r.name == args.baseline) {
        out.push_str(&report::ratio_table(gzip, base));
    }
    out.push_str("\n#### gzip against plain, each exporter against itself\n\n");
    out.push_str(&report::gzip_table(plain, gzip));
    out
}

/// The probe mode's part of the report: ours against blackbox_exporter, and
/// what the static target saw of each.
fn probe_report(rows: &[Row]) -> String {
    let comparisons = [
        Comparison {
            figure: "CPU ms/probe",
            get: |f| f.cpu_ms_per_scrape,
            decimals: 3,
            goal: Some((true, 0.5)),
        },
        Comparison { figure: "RSS MiB (after load)", get: |f| f.rss_mib, decimals: 1, goal: None },
        Comparison { figure: "p50 ms", get: |f| f.p50_ms, decimals: 2, goal: None },
        Comparison { figure: "p99 ms", get: |f| f.p99_ms, decimals: 2, goal: None },
        Comparison { figure: "req/s", get: |f| f.req_per_sec, decimals: 1, goal: None },
    ];
    let mut out = report::pair_table(rows, probe::OURS, probe::BLACKBOX, &comparisons);
    out.push_str(
        "
Static target (the bench's own HTTP server thread; counted for neither exporter), \
         during each exporter's load phase: requests it answered per successful probe, its CPU per probe, \
         and its CPU in cores:\n",
    );
    for r in rows {
        let f = &r.figures;
        if f.static_requests_per_probe.is_none() {
            continue;
        }
        out.push_str(&format!(
            "- {}: {} requests/probe, {} ms CPU/probe, {} cores\n",
            r.name,
            f.static_requests_per_probe.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}")),
            f.static_cpu_ms_per_probe.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3}")),
            f.static_cores.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}")),
        ));
    }
    out
}

fn rows(targets: &[Target], figures: &[Figures]) -> Vec<Row> {
    targets.iter().zip(figures).map(|(t, f)| Row { name: t.name.clone(), figures: f.clone() }).collect()
}

/// The full mode's p99 goal's figure (`--every-collector` only).
const P99_GOAL: &str = "p99 ms (sequential)";

/// Every exporter of the pass against the p99 goal's yardstick, when the run
/// has that goal.
fn p99_yardstick(setup: &full::Setup, rows: &[Row]) -> String {
    full_goals(setup)
        .into_iter()
        .find(|goal| goal.figure == P99_GOAL)
        .and_then(|goal| Some(report::tail_yardstick(rows, goal.peers.first()?, goal.limit)))
        .unwrap_or_default()
}

/// The full mode's goals: each figure of ours against the peers' sum.
fn full_goals(setup: &full::Setup) -> Vec<FullGoal> {
    let mut peers: Vec<String> = vec![full::NODE.into(), full::POSTGRES.into()];
    if setup.redis {
        peers.push(full::REDIS.into());
    }
    if setup.every_collector {
        // Issue 14's goals for the shipped config against all four peers.
        peers.push(full::BLACKBOX.into());
        return vec![
            FullGoal {
                figure: "exporter CPU ms/scrape",
                get: |f| f.cpu_ms_per_scrape,
                limit: 0.3,
                peers: peers.clone(),
            },
            FullGoal {
                figure: "RSS MiB (after load)",
                get: |f| f.rss_mib,
                limit: 0.15,
                peers: peers.clone(),
            },
            // The same without the binaries' text (clean, shared file pages):
            // what each exporter allocates, and what grows.
            FullGoal { figure: "RssAnon MiB (after load)", get: |f| f.anon_mib, limit: 0.15, peers },
            FullGoal { figure: P99_GOAL, get: |f| f.p99_ms, limit: 0.3, peers: vec![full::NODE.into()] },
        ];
    }
    vec![
        FullGoal {
            figure: "exporter CPU ms/scrape",
            get: |f| f.cpu_ms_per_scrape,
            limit: 0.3,
            peers: peers.clone(),
        },
        FullGoal {
            figure: "PostgreSQL CPU ms/scrape",
            get: |f| f.pg_cpu_ms_per_scrape,
            limit: 0.5,
            peers: vec![full::POSTGRES.into()],
        },
        FullGoal { figure: "RSS MiB (after load)", get: |f| f.rss_mib, limit: 0.3, peers },
    ]
}

/// The full mode's part of the report: the ratio table against the peers,
/// how PostgreSQL CPU was attributed, and the isolated statements phase.
async fn full_report(
    args: &Args,
    setup: &full::Setup,
    targets: &[Target],
    rows: &[Row],
    plan: &Plan,
) -> Result<String> {
    let mut out = report::full_ratio_table(rows, full::OURS, &full_goals(setup));
    out.push_str(&p99_yardstick(setup, rows));
    out.push_str(
        "\nPostgreSQL CPU: utime+stime (/proc/PID/stat) of the backends serving each exporter — \
         the pg_stat_activity rows whose client_port is a socket the exporter process holds — \
         read before and after the sequential phase and the exporter's own load phase, \
         divided by the scrapes in those windows.\n",
    );
    for r in rows.iter().filter(|r| r.figures.pg_backends.is_some()) {
        let f = &r.figures;
        let apps: Vec<String> = f
            .pg_app_names
            .iter()
            .map(|a| if a.is_empty() { "(none)".to_owned() } else { format!("`{a}`") })
            .collect();
        out.push_str(&format!(
            "- {}: {} backend(s) at the end, application_name {}{}\n",
            r.name,
            f.pg_backends.map_or_else(|| "?".to_owned(), |n| format!("{n:.0}")),
            apps.join(", "),
            if f.pg_backends_exited > 0 {
                format!(
                    "; {} backend(s) exited mid-window, so its figure is a lower bound",
                    f.pg_backends_exited
                )
            } else {
                String::new()
            }
        ));
    }
    for note in &setup.notes {
        out.push_str(&format!("- {note}\n"));
    }
    if args.chain_runs > 0 {
        eprintln!("opsmon-bench: the PostgreSQL statement chain alone through pgbench × {}", args.chain_runs);
        let chain = chain::measure(&setup.psql, args.chain_runs, &setup.dir)?;
        out.push_str(&report::chain_section(&chain, rows.iter().find(|r| r.name == full::NODE)));
    }
    if args.statement_scrapes > 0 {
        for name in [full::OURS, full::POSTGRES] {
            let Some(t) = targets.iter().find(|t| t.name == name) else { continue };
            eprintln!("opsmon-bench: pg_stat_statements phase: {name} alone × {}", args.statement_scrapes);
            let phase = full::statements_phase(setup, t, args.statement_scrapes, plan).await?;
            let total: f64 = phase.statements.iter().map(pgcpu::Statement::total_ms).sum();
            out.push_str(&format!(
                "\n**{name} alone, {} scrapes** — pg_stat_statements exec+plan {:.3} ms/scrape; \
                 its backends' CPU {} ms/scrape{}\n\n",
                phase.scrapes,
                if phase.scrapes > 0 { total / f64::from(phase.scrapes) } else { f64::NAN },
                phase.backend_cpu_ms_per_scrape.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}")),
                if phase.backends_exited > 0 { " (lower bound: a backend exited)" } else { "" },
            ));
            out.push_str(&report::statements_table(&phase.statements, phase.scrapes, 12));
        }
    }
    Ok(out)
}

/// Machine, date, versions and settings, as markdown lines.
fn header(args: &Args, targets: &[Target], extra: &[String]) -> String {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".to_owned());
    // Other work on the machine skews absolute figures (ratios less so).
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
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
    let extra: String = extra.iter().map(|l| format!("{l}  \n")).collect();
    let baseline = if args.full {
        "ratios against the peers' sum".to_owned()
    } else if args.probe {
        format!("ratios against {}", probe::BLACKBOX)
    } else {
        format!("baseline {}", args.baseline)
    };
    format!(
        "**Machine:** nproc {nproc} ({cpu}), kernel {kernel}, {date}, load average {load} before measuring  \n\
         **Exporters:** {versions}  \n\
         {extra}\
         **Settings:** {warmup} warm-up + {scrapes} sequential scrapes per target, \
         {clients} clients × {duration} s load per target, {runs} run(s){median}, {baseline}\n",
        date = report::format_utc(now),
        versions = versions.join("; "),
        warmup = args.warmup,
        scrapes = args.scrapes,
        clients = args.clients,
        duration = args.duration,
        runs = args.runs,
        median = if args.runs > 1 { " (medians)" } else { "" },
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

/// One full run over all targets, every scrape asking for `encoding`;
/// returns figures in `targets` order.
async fn measure(
    targets: &[Target],
    plan: &Plan,
    run: usize,
    fleet: &mut Fleet,
    pg: Option<&PgAccounting<'_>>,
    static_target: Option<&probe::StaticTarget>,
    encoding: scrape::Encoding,
) -> Result<Vec<Figures>> {
    let n = targets.len();
    let clients: Vec<scrape::HttpClient> = targets.iter().map(|_| scrape::client()).collect();
    let mut figures = vec![Figures::default(); n];

    // 1. Warm-up (also opens each keep-alive connection).
    for _ in 0..plan.warmup {
        for (t, c) in targets.iter().zip(&clients) {
            let _ = scrape::scrape_as(c, &t.uri, plan.timeout, encoding).await;
        }
    }
    check_all_alive(fleet, targets)?;

    // 2. Sequential scrapes, interleaved one by one between targets.
    eprintln!("opsmon-bench:   sequential: {} scrapes × {n} target(s), interleaved", plan.scrapes);
    // PostgreSQL snapshots go outside the exporter CPU windows: psql is ours.
    let pg_seq_before = pg.map(|p| p.snapshot(targets, None)).transpose()?;
    let cpu_before = targets.iter().map(ticks).collect::<Result<Vec<_>>>()?;
    let mut latencies = vec![Vec::with_capacity(plan.scrapes as usize); n];
    let mut collector_ms: Vec<BTreeMap<String, Vec<f64>>> = vec![BTreeMap::new(); n];
    let mut last_body: Vec<Option<scrape::Scrape>> = (0..n).map(|_| None).collect();
    for _ in 0..plan.scrapes {
        for i in 0..n {
            let (Some(t), Some(c), Some(f)) = (targets.get(i), clients.get(i), figures.get_mut(i)) else {
                continue;
            };
            let err = match scrape::scrape_as(c, &t.uri, plan.timeout, encoding).await {
                // Probe mode: an answered probe that failed is a failed scrape.
                Ok(s)
                    if s.status == StatusCode::OK
                        && static_target.is_some()
                        && t.uri.path() == "/probe"
                        && !s.text().is_ok_and(|text| probe::succeeded(text.as_bytes())) =>
                {
                    "sequential: the probe failed (probe_success is not 1)".to_owned()
                }
                Ok(s) if s.status == StatusCode::OK => {
                    if let Some(l) = latencies.get_mut(i) {
                        l.push(s.elapsed.as_secs_f64() * 1000.0);
                    }
                    // Read after the clock stopped: not part of the latency.
                    if t.name == full::OURS
                        && let (Ok(text), Some(durations)) = (s.text(), collector_ms.get_mut(i))
                    {
                        for (collector, seconds) in stats::collector_durations(&text) {
                            durations.entry(collector.to_owned()).or_default().push(seconds * 1000.0);
                        }
                    }
                    if let Some(b) = last_body.get_mut(i) {
                        *b = Some(s);
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
    let pg_seq_after = pg.map(|p| p.snapshot(targets, None)).transpose()?;
    check_all_alive(fleet, targets)?;

    // 3. Concurrent load, one target at a time; rotate who goes first per run.
    for k in 0..n {
        let i = (k + run) % n;
        let (Some(t), Some(f)) = (targets.get(i), figures.get_mut(i)) else {
            continue;
        };
        eprintln!("opsmon-bench:   load: {} × {} clients for {:?}", t.name, plan.clients, plan.duration);
        let watched = pg.filter(|p| p.watched.contains(&i));
        let pg_before = watched.map(|p| p.snapshot(targets, Some(i))).transpose()?;
        let static_before = static_target.map(|s| anyhow::Ok((s.cpu_ticks()?, s.requests()))).transpose()?;
        let before = ticks(t)?;
        let own_before = procfs::cpu_ticks(std::process::id())?;
        let load = scrape::load(&t.uri, plan.clients, plan.duration, plan.timeout, encoding).await;
        let own_after = procfs::cpu_ticks(std::process::id())?;
        let after = ticks(t)?;
        let static_after = static_target.map(|s| anyhow::Ok((s.cpu_ticks()?, s.requests()))).transpose()?;
        // The static target's thread is part of this process: not load generation.
        let static_ticks = match (static_before, static_after) {
            (Some((cpu_b, req_b)), Some((cpu_a, req_a))) => {
                let ticks = cpu_a.saturating_sub(cpu_b);
                if load.ok > 0 {
                    f.static_requests_per_probe = Some(req_a.saturating_sub(req_b) as f64 / load.ok as f64);
                    f.static_cpu_ms_per_probe = Some(ticks as f64 * 1000.0 / plan.clock_hz / load.ok as f64);
                }
                ticks
            }
            _ => 0,
        };
        let pg_after = watched.map(|p| p.snapshot(targets, Some(i))).transpose()?;
        let wall = load.elapsed.as_secs_f64();
        if wall > 0.0 {
            let own = own_after.saturating_sub(own_before).saturating_sub(static_ticks);
            f.loadgen_cores = Some(own as f64 / plan.clock_hz / wall);
            if static_target.is_some() {
                f.static_cores = Some(static_ticks as f64 / plan.clock_hz / wall);
            }
        }
        fleet.check_alive(&t.name)?;
        f.rss_mib =
            t.pid.map(procfs::rss_mib).transpose().with_context(|| format!("{}: reading RSS", t.name))?;
        f.anon_mib = t
            .pid
            .map(procfs::anon_mib)
            .transpose()
            .with_context(|| format!("{}: reading RssAnon", t.name))?;
        f.req_per_sec = Some(load.req_per_sec());
        f.errors += load.errors;
        if let Some(e) = load.first_error {
            f.first_error.get_or_insert(format!("load: {e}"));
        }

        if let Some(durations) = collector_ms.get(i) {
            f.collector_ms = durations
                .iter()
                .map(|(name, ms)| {
                    let quantiles = [50.0, 90.0, 99.0].map(|p| stats::percentile(ms, p));
                    (name.clone(), quantiles)
                })
                .collect();
        }
        let lat = latencies.get(i).map(Vec::as_slice).unwrap_or_default();
        f.p50_ms = stats::percentile(lat, 50.0);
        f.p90_ms = stats::percentile(lat, 90.0);
        f.p99_ms = stats::percentile(lat, 99.0);
        if let Some(Some(last)) = last_body.get(i) {
            // On the wire: compressed when the answer was gzipped.
            f.bytes = Some(last.body.len() as f64);
            f.gzipped = Some(if last.gzipped { 1.0 } else { 0.0 });
            match last.text() {
                Ok(text) => f.series = Some(stats::count_series(&text) as f64),
                Err(e) => {
                    f.errors += 1;
                    f.first_error.get_or_insert(format!("{e:#}"));
                }
            }
        }
        let seq = tick_delta(cpu_before.get(i).copied().flatten(), cpu_after.get(i).copied().flatten());
        let scrapes = lat.len() as u64 + load.ok;
        f.cpu_ms_per_scrape = match (seq, tick_delta(before, after)) {
            (Some(a), Some(b)) if scrapes > 0 => {
                Some((a + b) as f64 * 1000.0 / plan.clock_hz / scrapes as f64)
            }
            _ => None,
        };
        if watched.is_some() {
            let delta = |b: &Option<BTreeMap<usize, pgcpu::Backends>>,
                         a: &Option<BTreeMap<usize, pgcpu::Backends>>| {
                Some(pgcpu::delta(b.as_ref()?.get(&i)?, a.as_ref()?.get(&i)?))
            };
            let (seq, load) = (delta(&pg_seq_before, &pg_seq_after), delta(&pg_before, &pg_after));
            if let (Some(seq), Some(load)) = (seq, load) {
                f.pg_backends_exited = (seq.exited + load.exited) as u64;
                f.pg_backends = Some(load.backends as f64);
                f.pg_cpu_ms_per_scrape = (scrapes > 0)
                    .then(|| (seq.ticks + load.ticks) as f64 * 1000.0 / plan.clock_hz / scrapes as f64);
            }
            if let Some(b) = pg_after.as_ref().and_then(|a| a.get(&i)) {
                f.pg_app_names.clone_from(&b.app_names);
            }
        }
    }
    Ok(figures)
}
