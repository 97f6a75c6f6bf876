//! The full benchmark (`--full`): the bench's own PostgreSQL and Redis, seeded;
//! opsmon-exporter once with a config covering host + postgres + redis; and the
//! three peers it replaces (node_exporter, postgres_exporter, redis_exporter),
//! each on a free loopback port. Also the isolated `pg_stat_statements` phase
//! that breaks each PostgreSQL exporter's cost down by statement.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use hyper::StatusCode;

use crate::pgcpu::{self, Statement};
use crate::scrape::{self, HttpClient};
use crate::services::{self, PG_DATABASE, Postgres, Psql};
use crate::target::{Fleet, Launch, Target, free_loopback_addr};
use crate::{Args, Plan, bring_up};

pub const OURS: &str = "opsmon-exporter";
pub const NODE: &str = "node_exporter";
pub const POSTGRES: &str = "postgres_exporter";
pub const REDIS: &str = "redis_exporter";

/// What [`setup`] started, ready to measure.
#[derive(Debug)]
pub struct Setup {
    /// opsmon-exporter first, then the peers.
    pub targets: Vec<Target>,
    pub psql: Psql,
    pub pg_port: u16,
    /// Whether Redis is part of the comparison (for ours and the peer alike).
    pub redis: bool,
    /// Lines for the report header (server versions, data sizes).
    pub header: Vec<String>,
    /// Lines for the report's notes (e.g. why Redis was left out).
    pub notes: Vec<String>,
}

/// opsmon-exporter's config for the bench's servers.
pub fn exporter_config(pg_port: u16, redis_port: Option<u16>) -> String {
    let mut cfg = format!(
        "collectors:\n  postgres:\n    targets:\n      - name: smartalk\n        \
         dsn: postgresql://postgres@127.0.0.1:{pg_port}/{PG_DATABASE}?sslmode=disable\n        \
         tables: [analytics_events]\n"
    );
    if let Some(port) = redis_port {
        cfg.push_str(&format!(
            "  redis:\n    targets:\n      - name: cache\n        address: redis://127.0.0.1:{port}\n"
        ));
    }
    cfg
}

/// Value of the first sample of `metric` (with or without labels) in a text exposition.
pub fn sample_value(body: &str, metric: &str) -> Option<f64> {
    body.lines().find_map(|line| {
        let rest = line.strip_prefix(metric)?;
        let value = if rest.starts_with('{') {
            rest.rsplit_once('}')?.1
        } else if rest.starts_with(' ') {
            rest
        } else {
            return None;
        };
        value.split_whitespace().next()?.parse().ok()
    })
}

fn require(program: &Path, what: &str, flag: &str) -> Result<()> {
    ensure!(
        program.exists(),
        "{what}: {} not found (install it — bench/run.sh --full does — or pass {flag})",
        program.display()
    );
    Ok(())
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

/// Starts the databases, seeds them, and starts and checks every exporter.
pub async fn setup(args: &Args, fleet: &mut Fleet, http: &HttpClient, plan: &Plan) -> Result<Setup> {
    let exporter = std::env::current_dir()?.join(&args.exporter);
    require(&exporter, OURS, "--exporter")?;
    require(&args.node_exporter, NODE, "--node-exporter")?;
    require(&args.postgres_exporter, POSTGRES, "--postgres-exporter")?;
    let mut redis = !args.no_redis;
    if redis {
        require(&args.redis_exporter, REDIS, "--redis-exporter")?;
        require(&args.redis_server, "redis-server", "--redis-server")?;
        require(&args.redis_cli, "redis-cli", "--redis-cli")?;
    }
    let pg_bin = match &args.pg_bin {
        Some(dir) => dir.clone(),
        None => services::find_pg_bin_dir(Path::new("/usr/lib/postgresql"))?,
    };
    let mut notes = Vec::new();
    let mut header = Vec::new();
    let dir = fleet.dir()?;
    // The postgres user must reach its data dir inside ours.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;

    // PostgreSQL.
    let pg_port = free_loopback_addr()?.port();
    eprintln!("opsmon-bench: initdb + PostgreSQL on 127.0.0.1:{pg_port} ({})", pg_bin.display());
    let pg = Postgres::start(&pg_bin, &dir.join("pg"), pg_port)?;
    let psql = pg.psql(PG_DATABASE);
    let seeded = pg.seed(args.pg_rows);
    fleet.keep(pg);
    seeded.context("seeding PostgreSQL")?;
    let version = psql.query("SHOW server_version")?;
    let size = psql.query("SELECT pg_size_pretty(pg_total_relation_size('analytics_events'))")?;
    header.push(format!(
        "**PostgreSQL:** {} (own cluster, trust auth, pg_stat_statements with track_planning), \
         `{PG_DATABASE}.analytics_events` {} rows, {}",
        version.trim(),
        args.pg_rows,
        size.trim()
    ));

    // Redis.
    let mut redis_port = None;
    if redis {
        let launch = Launch {
            name: "redis-server".into(),
            program: args.redis_server.clone(),
            args: ["--port", "{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
                .map(String::from)
                .to_vec(),
            env: Vec::new(),
            metrics_path: "/".into(),
        };
        let t = fleet.spawn(&launch)?;
        let port = t.uri.port_u16().context("redis port")?;
        services::wait_redis(&args.redis_cli, port, plan.ready_timeout, || {
            fleet.check_alive("redis-server")
        })?;
        services::seed_redis(&args.redis_cli, port, args.redis_keys).context("seeding Redis")?;
        eprintln!("opsmon-bench: redis-server on 127.0.0.1:{port}, {} keys", args.redis_keys);
        header.push(format!(
            "**Redis:** {} (own server, no persistence), {} keys in db0/db1, a third with a TTL",
            t.version.as_deref().unwrap_or("version unknown"),
            args.redis_keys
        ));
        redis_port = Some(port);
    }

    // opsmon-exporter, with Redis if its config and collector take it.
    let config = dir.join("opsmon.yml");
    std::fs::write(&config, exporter_config(pg_port, redis_port))?;
    if let Err(rejected) = config_check(&exporter, &config)? {
        if !redis {
            bail!("{OURS} rejects the bench's config:\n{rejected}");
        }
        notes.push(format!(
            "Redis left out for {OURS} and {REDIS}: `--config.check` rejected the redis section ({})",
            rejected.lines().last().unwrap_or_default()
        ));
        redis = false;
        std::fs::write(&config, exporter_config(pg_port, None))?;
        if let Err(rejected) = config_check(&exporter, &config)? {
            bail!("{OURS} rejects the bench's config even without redis:\n{rejected}");
        }
    }
    let mut ours_launch = Launch::standard(OURS, &exporter);
    ours_launch.args.push(format!("--config.file={}", config.display()));
    let mut ours = fleet.spawn(&ours_launch)?;
    let mut body = bring_up(http, &mut ours, fleet, plan).await?;
    if redis && sample_value(&body, "redis_up").is_none() {
        notes.push(format!(
            "Redis left out for {OURS} and {REDIS}: {OURS} accepts the redis config but its scrape has no \
             `redis_up` (no redis collector in this build)"
        ));
        redis = false;
        fleet.stop_member(OURS)?;
        fleet.stop_member("redis-server")?;
        std::fs::write(&config, exporter_config(pg_port, None))?;
        ours = fleet.spawn(&ours_launch)?;
        body = bring_up(http, &mut ours, fleet, plan).await?;
    }
    check_up(&body, OURS, "pg_up")?;
    if redis {
        check_up(&body, OURS, "redis_up")?;
    }

    // The peers.
    let mut launches = vec![Launch::standard(NODE, &args.node_exporter), {
        let mut l = Launch::standard(POSTGRES, &args.postgres_exporter);
        l.env.push((
            "DATA_SOURCE_NAME".into(),
            format!("postgresql://postgres@127.0.0.1:{pg_port}/{PG_DATABASE}?sslmode=disable"),
        ));
        l
    }];
    if let (true, Some(port)) = (redis, redis_port) {
        let mut l = Launch::standard(REDIS, &args.redis_exporter);
        l.args = vec![
            "-redis.addr".into(),
            format!("redis://127.0.0.1:{port}"),
            "-web.listen-address".into(),
            "{addr}".into(),
        ];
        launches.push(l);
    }
    let mut targets = vec![ours];
    for launch in &launches {
        let mut t = fleet.spawn(launch)?;
        let body = bring_up(http, &mut t, fleet, plan).await?;
        match launch.name.as_str() {
            POSTGRES => check_up(&body, POSTGRES, "pg_up")?,
            REDIS => check_up(&body, REDIS, "redis_up")?,
            _ => {}
        }
        targets.push(t);
    }
    Ok(Setup { targets, psql, pg_port, redis, header, notes })
}

fn check_up(body: &str, who: &str, metric: &str) -> Result<()> {
    match sample_value(body, metric) {
        Some(1.0) => Ok(()),
        Some(v) => bail!("{who}: {metric} is {v}, not 1: it cannot reach the bench's server"),
        None => bail!("{who}: its scrape has no {metric}"),
    }
}

/// Result of the isolated statements phase for one exporter.
#[derive(Debug)]
pub struct StatementsPhase {
    pub scrapes: u32,
    pub statements: Vec<Statement>,
    /// Its backends' CPU over the phase, by /proc (the main method), per scrape.
    pub backend_cpu_ms_per_scrape: Option<f64>,
    pub backends_exited: usize,
}

/// Scrapes `target` alone `scrapes` times between a `pg_stat_statements_reset()`
/// and a read of `pg_stat_statements`, so every statement recorded is its own.
pub async fn statements_phase(
    setup: &Setup,
    target: &Target,
    scrapes: u32,
    plan: &Plan,
) -> Result<StatementsPhase> {
    let http = scrape::client();
    // Open the keep-alive connection outside the window.
    let _ = scrape::scrape(&http, &target.uri, plan.timeout).await;
    let pids: Vec<(usize, u32)> = target.pid.map(|p| (0, p)).into_iter().collect();
    let before = pgcpu::snapshot(&setup.psql, setup.pg_port, &pids)?;
    setup.psql.query("SELECT pg_stat_statements_reset()")?;
    let mut ok = 0;
    for _ in 0..scrapes {
        if let Ok(s) = scrape::scrape(&http, &target.uri, plan.timeout).await
            && s.status == StatusCode::OK
        {
            ok += 1;
        }
    }
    let statements = pgcpu::parse_statements(&setup.psql.query(pgcpu::STATEMENTS_SQL)?)?;
    let after = pgcpu::snapshot(&setup.psql, setup.pg_port, &pids)?;
    let d = match (before.get(&0), after.get(&0)) {
        (Some(b), Some(a)) => Some(pgcpu::delta(b, a)),
        _ => None,
    };
    Ok(StatementsPhase {
        scrapes: ok,
        statements,
        backend_cpu_ms_per_scrape: d
            .filter(|_| ok > 0)
            .map(|d| d.ticks as f64 * 1000.0 / plan.clock_hz / f64::from(ok)),
        backends_exited: d.map_or(0, |d| d.exited),
    })
}

/// Sleeps briefly so the servers settle after seeding and start-up
/// (autovacuum's first look, the exporters' first scrapes) before measuring.
pub async fn settle() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_the_issue_shape() {
        let cfg = exporter_config(5433, Some(6380));
        assert_eq!(
            cfg,
            "collectors:\n  postgres:\n    targets:\n      - name: smartalk\n        \
             dsn: postgresql://postgres@127.0.0.1:5433/smartalk_db?sslmode=disable\n        \
             tables: [analytics_events]\n  redis:\n    targets:\n      - name: cache\n        \
             address: redis://127.0.0.1:6380\n"
        );
        assert!(!exporter_config(5433, None).contains("redis"));
    }

    #[test]
    fn reads_sample_values() {
        let body = "# HELP pg_up x\n# TYPE pg_up gauge\npg_up 1\npg_up_extra 7\n\
                    redis_up{addr=\"a}b\"} 0\nnode_time_seconds 1.7e9 1700000000000\n";
        assert_eq!(sample_value(body, "pg_up"), Some(1.0));
        assert_eq!(sample_value(body, "redis_up"), Some(0.0));
        assert_eq!(sample_value(body, "node_time_seconds"), Some(1.7e9));
        assert_eq!(sample_value(body, "pg"), None);
        assert_eq!(sample_value(body, "redis_up_missing"), None);
    }
}
