//! `opsmon-bench multitarget`: one exporter watching many backends through
//! `/probe?target=NAME`, side by side with the peers. Starts the bench's own
//! PostgreSQL (`--targets` databases, one target each) and Redis (`--targets`
//! targets on the one server), then:
//!
//! - `opsmon-pg`: opsmon-exporter with every PostgreSQL target, host collector off;
//! - `opsmon-redis`: opsmon-exporter with every Redis target;
//! - `opsmon-empty`: opsmon-exporter with nothing, the RSS baseline;
//! - `redis_exporter` on `/scrape?target=redis://…` (its multi-target mode);
//! - `--pg-peers` postgres_exporters, one per database (the packaged one has
//!   no `/probe`): a sample of the databases, so the per-probe figures are
//!   theirs and the totals are scaled to `--targets` (the report says so).
//!
//! Each round probes every target once, spread evenly over `--interval`
//! seconds as Prometheus spreads its targets; CPU ticks and RSS of each
//! exporter are read around the rounds, every probe's wall time is kept, and
//! PostgreSQL's `pg_stat_activity` is counted at the end of every round and
//! again after the idle timeout.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use clap::Parser;
use hyper::{StatusCode, Uri};

use crate::procfs;
use crate::scrape::{self, HttpClient};
use crate::services::{self, Postgres, Psql};
use crate::stats::percentile;
use crate::target::{Fleet, Launch, Target, free_loopback_addr};

#[derive(Debug, Parser)]
#[command(
    name = "opsmon-bench multitarget",
    about = "Many PostgreSQL and Redis targets in one exporter vs the peers"
)]
pub struct Args {
    /// PostgreSQL targets (databases) and Redis targets.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=500))]
    targets: u32,
    /// Rounds of probing every target once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Seconds one round is spread over (Prometheus' scrape interval); 0 = back to back.
    #[arg(long, default_value_t = 15.0)]
    interval: f64,
    /// postgres_exporter instances (one per database) measured and scaled.
    #[arg(long, default_value_t = 10)]
    pg_peers: u32,
    /// `collectors.postgres.idle_timeout` of opsmon-pg, and how long after the
    /// last round the idle connections are counted again (plus the reaper's period).
    #[arg(long, default_value_t = 20.0)]
    idle_timeout: f64,
    /// `collectors.postgres.connection_share` of opsmon-pg (default: the exporter's).
    #[arg(long)]
    connection_share: Option<f64>,
    /// opsmon-exporter binary.
    #[arg(long, env = "OPSMON_BENCH_EXPORTER", default_value = "target/release/opsmon-exporter")]
    exporter: PathBuf,
    /// postgres_exporter binary (Debian package prometheus-postgres-exporter).
    #[arg(long, default_value = "/usr/bin/prometheus-postgres-exporter")]
    postgres_exporter: PathBuf,
    /// redis_exporter binary (Debian package prometheus-redis-exporter).
    #[arg(long, default_value = "/usr/bin/prometheus-redis-exporter")]
    redis_exporter: PathBuf,
    /// redis-server binary.
    #[arg(long, default_value = "/usr/bin/redis-server")]
    redis_server: PathBuf,
    /// redis-cli binary.
    #[arg(long, default_value = "/usr/bin/redis-cli")]
    redis_cli: PathBuf,
    /// PostgreSQL's bin dir; default the newest /usr/lib/postgresql/<version>/bin.
    #[arg(long)]
    pg_bin: Option<PathBuf>,
    /// Per-probe time-out in seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
}

/// One exporter measured: where to probe each target, and its process(es).
struct Subject {
    name: String,
    /// One URL per target probed.
    urls: Vec<Uri>,
    /// Processes whose CPU and RSS count (several for one-per-database peers).
    pids: Vec<u32>,
    /// Targets the figures stand for (the sample size for the peers).
    targets: u32,
    /// What the body of a good probe contains.
    up: &'static str,
}

/// What the rounds measured for one subject.
#[derive(Debug, Default)]
struct Measured {
    probes: u64,
    failed: u64,
    cpu_ms: f64,
    walls_ms: Vec<f64>,
    rss_kib: f64,
}

/// The opsmon-exporter config with `pg` PostgreSQL and `redis` Redis targets.
pub fn config(
    pg: Option<(u16, u32)>,
    redis: Option<(u16, u32)>,
    idle_timeout: f64,
    share: Option<f64>,
) -> String {
    let mut text = String::from("collectors:\n  host:\n    enabled: false\n");
    if let Some((port, count)) = pg {
        text.push_str(&format!("  postgres:\n    idle_timeout: {}ms\n", (idle_timeout * 1000.0) as u64));
        if let Some(share) = share {
            text.push_str(&format!("    connection_share: {share}\n"));
        }
        text.push_str("    targets:\n");
        for i in 0..count {
            text.push_str(&format!(
                "      - name: {}\n        dsn: postgresql://postgres@127.0.0.1:{port}/{}?sslmode=disable\n",
                pg_target(i),
                database(i)
            ));
        }
    }
    if let Some((port, count)) = redis {
        text.push_str("  redis:\n    targets:\n");
        for i in 0..count {
            text.push_str(&format!(
                "      - name: cache{i:03}\n        address: redis://127.0.0.1:{port}/{}\n",
                i % 16
            ));
        }
    }
    text
}

fn pg_target(i: u32) -> String {
    format!("db{i:03}")
}

fn database(i: u32) -> String {
    format!("bench_{i:03}")
}

/// Runs the benchmark and returns the markdown report.
pub async fn run(args: &Args, fleet: &mut Fleet) -> Result<String> {
    for (path, what) in [
        (&args.exporter, "opsmon-exporter (cargo build --release)"),
        (&args.postgres_exporter, "postgres_exporter"),
        (&args.redis_exporter, "redis_exporter"),
        (&args.redis_server, "redis-server"),
        (&args.redis_cli, "redis-cli"),
    ] {
        ensure!(path.exists(), "{what}: {} not found", path.display());
    }
    ensure!(args.pg_peers <= args.targets, "--pg-peers must be at most --targets");
    let pg_bin = services::pg_bin_dir(args.pg_bin.as_deref())?;
    let dir = fleet.dir()?;
    let pg = Postgres::start(&pg_bin, &dir.join("pg"), free_loopback_addr()?.port())?;
    let admin = pg.psql("postgres");
    let max_connections = admin.query("SHOW max_connections")?.trim().to_owned();
    let mut create = String::new();
    for i in 0..args.targets {
        create.push_str(&format!("CREATE DATABASE {};\n", database(i)));
    }
    admin.script(&create).context("creating the databases")?;
    let pg_port = pg.port;
    fleet.keep(pg);
    let version = admin.query("SHOW server_version")?;

    let redis = fleet.spawn(&Launch {
        name: "redis-server".into(),
        program: args.redis_server.clone(),
        args: [
            "--port",
            "{port}",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxclients",
            "2000",
        ]
        .map(String::from)
        .to_vec(),
        env: Vec::new(),
        metrics_path: "/".into(),
    })?;
    let redis_port = redis.uri.port_u16().context("redis port")?;
    services::wait_redis(&args.redis_cli, redis_port, Duration::from_secs(30), || {
        fleet.check_alive("redis-server")
    })?;
    services::seed_redis(&args.redis_cli, redis_port, 4_000)?;

    let http = scrape::client();
    let n = args.targets;
    let mut subjects = Vec::new();
    let configs = [
        ("opsmon-pg", config(Some((pg_port, n)), None, args.idle_timeout, args.connection_share)),
        ("opsmon-redis", config(None, Some((redis_port, n)), args.idle_timeout, None)),
        ("opsmon-empty", config(None, None, args.idle_timeout, None)),
    ];
    let mut empty_pid = None;
    for (name, text) in configs {
        let path = dir.join(format!("{name}.yml"));
        std::fs::write(&path, text)?;
        let mut launch = Launch::standard(name, &args.exporter);
        launch.args.extend(["--config.file".to_owned(), path.display().to_string()]);
        let target = fleet.spawn(&launch)?;
        wait(&http, &target, fleet).await?;
        let base = format!("http://{}", target.uri.authority().context("authority")?);
        let pid = target.pid.context("pid")?;
        match name {
            "opsmon-pg" => subjects.push(Subject {
                name: name.into(),
                urls: (0..n)
                    .map(|i| format!("{base}/probe?target={}", pg_target(i)).parse())
                    .collect::<Result<_, _>>()?,
                pids: vec![pid],
                targets: n,
                up: "pg_up 1",
            }),
            "opsmon-redis" => subjects.push(Subject {
                name: name.into(),
                urls: (0..n)
                    .map(|i| format!("{base}/probe?target=cache{i:03}").parse())
                    .collect::<Result<_, _>>()?,
                pids: vec![pid],
                targets: n,
                up: "redis_up 1",
            }),
            _ => empty_pid = Some(pid),
        }
    }

    let mut redis_peer = Launch::standard("redis_exporter", &args.redis_exporter);
    redis_peer.args = vec!["-web.listen-address".into(), "{addr}".into()];
    redis_peer.metrics_path = "/metrics".into();
    let peer = fleet.spawn(&redis_peer)?;
    wait(&http, &peer, fleet).await?;
    let base = format!("http://{}", peer.uri.authority().context("authority")?);
    subjects.push(Subject {
        name: "redis_exporter /scrape".into(),
        urls: (0..n)
            .map(|i| format!("{base}/scrape?target=redis://127.0.0.1:{redis_port}/{}", i % 16).parse())
            .collect::<Result<_, _>>()?,
        pids: vec![peer.pid.context("pid")?],
        targets: n,
        up: "redis_up 1",
    });

    let mut pg_urls = Vec::new();
    let mut pg_pids = Vec::new();
    for i in 0..args.pg_peers {
        let mut launch = Launch::standard(&format!("postgres_exporter-{i:03}"), &args.postgres_exporter);
        launch.env.push((
            "DATA_SOURCE_NAME".into(),
            format!("postgresql://postgres@127.0.0.1:{pg_port}/{}?sslmode=disable", database(i)),
        ));
        let peer = fleet.spawn(&launch)?;
        wait(&http, &peer, fleet).await?;
        pg_urls.push(peer.uri.clone());
        pg_pids.push(peer.pid.context("pid")?);
    }
    if !pg_urls.is_empty() {
        subjects.push(Subject {
            name: format!("postgres_exporter ×{}", args.pg_peers),
            urls: pg_urls,
            pids: pg_pids,
            targets: args.pg_peers,
            up: "pg_up 1",
        });
    }

    // One unmeasured round each: first connections, caches.
    for subject in &subjects {
        round(&http, subject, 0.0, args.timeout, &mut Measured::default()).await;
    }
    let clock = procfs::clock_ticks_per_second() as f64;
    let mut results = Vec::new();
    let mut pg_connections = Vec::new();
    for subject in &subjects {
        let mut measured = Measured::default();
        let before = ticks(&subject.pids)?;
        for _ in 0..args.rounds {
            round(&http, subject, args.interval, args.timeout, &mut measured).await;
            if subject.name == "opsmon-pg" {
                pg_connections.push(connections(&admin, "opsmon-exporter")?);
            }
        }
        measured.cpu_ms = (ticks(&subject.pids)? - before) as f64 * 1000.0 / clock;
        measured.rss_kib = subject.pids.iter().map(|p| procfs::rss_mib(*p).unwrap_or(0.0) * 1024.0).sum();
        eprintln!(
            "opsmon-bench: {}: {} probes, {} failed, {:.0} ms CPU",
            subject.name, measured.probes, measured.failed, measured.cpu_ms
        );
        results.push(measured);
    }
    let held_max = pg_connections.iter().copied().max().unwrap_or(0);
    let peer_connections = connections(&admin, "")?;
    let settle = Duration::from_secs_f64(args.idle_timeout) + Duration::from_secs(6);
    eprintln!("opsmon-bench: waiting {settle:?} for idle connections to be closed");
    tokio::time::sleep(settle).await;
    let held_after_idle = connections(&admin, "opsmon-exporter")?;
    let empty_kib = empty_pid.map_or(0.0, |p| procfs::rss_mib(p).unwrap_or(0.0) * 1024.0);

    Ok(report(ReportInput {
        args,
        version: version.trim(),
        max_connections: &max_connections,
        subjects: &subjects,
        results: &results,
        empty_kib,
        held_max,
        held_after_idle,
        peer_connections,
    }))
}

#[derive(Clone, Copy)]
struct ReportInput<'a> {
    args: &'a Args,
    version: &'a str,
    max_connections: &'a str,
    subjects: &'a [Subject],
    results: &'a [Measured],
    empty_kib: f64,
    held_max: u64,
    held_after_idle: u64,
    peer_connections: u64,
}

fn report(input: ReportInput<'_>) -> String {
    let ReportInput {
        args,
        version,
        max_connections,
        subjects,
        results,
        empty_kib,
        held_max,
        held_after_idle,
        peer_connections,
    } = input;
    let mut out = format!(
        "### {} PostgreSQL + {} Redis targets, {} round(s) every {} s\n\n\
         PostgreSQL {version} (own cluster, trust auth, max_connections {max_connections}, one database per target); \
         one redis-server, targets spread over db0–db15. postgres_exporter: {} instance(s), one per database, \
         measured and scaled to {} targets where marked. RSS per target: opsmon minus an exporter with no \
         target ({:.0} KiB); the peers' whole RSS over the targets it serves.\n\n\
         | exporter | probes | failed | CPU ms/probe | wall p50 ms | wall p99 ms | RSS KiB/target |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        args.targets, args.targets, args.rounds, args.interval, args.pg_peers, args.targets, empty_kib
    );
    let mut per_probe = BTreeMap::new();
    for (subject, m) in subjects.iter().zip(results) {
        let cpu = if m.probes > 0 { m.cpu_ms / m.probes as f64 } else { f64::NAN };
        per_probe.insert(subject.name.clone(), cpu);
        let rss = if subject.name.starts_with("opsmon") {
            (m.rss_kib - empty_kib) / f64::from(subject.targets)
        } else {
            m.rss_kib / f64::from(subject.targets)
        };
        out.push_str(&format!(
            "| {} | {} | {} | {cpu:.3} | {:.2} | {:.2} | {rss:.1} |\n",
            subject.name,
            m.probes,
            m.failed,
            percentile(&m.walls_ms, 50.0).unwrap_or(f64::NAN),
            percentile(&m.walls_ms, 99.0).unwrap_or(f64::NAN),
        ));
    }
    let ratio = |ours: &str, peer_prefix: &str| {
        let ours = per_probe.get(ours).copied().unwrap_or(f64::NAN);
        let peer = per_probe.iter().find(|(k, _)| k.starts_with(peer_prefix)).map_or(f64::NAN, |(_, v)| *v);
        ours / peer
    };
    out.push_str(&format!(
        "\nCPU per probe, opsmon ÷ peer: PostgreSQL {:.2}× (goal ≤ 0.2×), Redis {:.2}× (goal ≤ 0.2×).\n\n\
         PostgreSQL connections held by opsmon-pg (pg_stat_activity, application_name opsmon-exporter): \
         at most {held_max} at the end of a round, {held_after_idle} after {} s idle; \
         the {} postgres_exporter(s) held {peer_connections} ({:.0} scaled to {} databases).\n",
        ratio("opsmon-pg", "postgres_exporter"),
        ratio("opsmon-redis", "redis_exporter"),
        args.idle_timeout + 6.0,
        args.pg_peers,
        f64::from(peer_connections as u32) * f64::from(args.targets) / f64::from(args.pg_peers.max(1)),
        args.targets,
    ));
    out
}

/// Waits until `target` answers on its metrics path.
async fn wait(http: &HttpClient, target: &Target, fleet: &mut Fleet) -> Result<()> {
    let name = target.name.clone();
    scrape::wait_ready(http, &target.uri, Duration::from_secs(60), || fleet.check_alive(&name))
        .await
        .with_context(|| format!("{name} did not come up"))?;
    Ok(())
}

/// Probes every URL of `subject` once, spread over `interval` seconds.
async fn round(http: &HttpClient, subject: &Subject, interval: f64, timeout: f64, measured: &mut Measured) {
    let gap = Duration::from_secs_f64(interval / subject.urls.len() as f64);
    let start = Instant::now();
    for (i, url) in subject.urls.iter().enumerate() {
        let due = start + gap * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let began = Instant::now();
        let ok = match scrape::scrape(http, url, Duration::from_secs_f64(timeout)).await {
            Ok(s) => s.status == StatusCode::OK && String::from_utf8_lossy(&s.body).contains(subject.up),
            Err(_) => false,
        };
        measured.walls_ms.push(began.elapsed().as_secs_f64() * 1000.0);
        measured.probes += 1;
        if !ok {
            measured.failed += 1;
        }
    }
}

fn ticks(pids: &[u32]) -> Result<u64> {
    pids.iter().map(|p| procfs::cpu_ticks(*p)).sum()
}

/// Client backends whose application_name is `name` (`""`: the peers, which set none).
fn connections(admin: &Psql, name: &str) -> Result<u64> {
    let text = admin.query(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND application_name = '{name}'"
    ))?;
    text.trim().parse().with_context(|| format!("count said {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_every_target() {
        let text = config(Some((5432, 3)), Some((6379, 2)), 20.0, Some(0.05));
        assert!(text.contains("idle_timeout: 20000ms\n    connection_share: 0.05\n"), "{text}");
        assert_eq!(text.matches("dsn: postgresql://postgres@127.0.0.1:5432/bench_").count(), 3);
        assert!(text.contains("- name: db002\n"), "{text}");
        assert!(text.contains("- name: cache001\n        address: redis://127.0.0.1:6379/1\n"), "{text}");
    }
}
