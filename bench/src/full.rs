//! The full benchmark (`--full`): the bench's own PostgreSQL and Redis, seeded;
//! opsmon-exporter once with a config covering host + postgres + redis; and the
//! three peers it replaces (node_exporter, postgres_exporter, redis_exporter),
//! each on a free loopback port. Also the isolated `pg_stat_statements` phase
//! that breaks each PostgreSQL exporter's cost down by statement.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use hyper::StatusCode;

use crate::pgcpu::{self, Statement};
use crate::scrape::{self, HttpClient, sample_value};
use crate::services::{self, PG_DATABASE, Postgres, Psql};
use crate::target::{Fleet, Launch, Target, config_check, free_loopback_addr};
use crate::{Args, Plan, bring_up};

pub const OURS: &str = "opsmon-exporter";
pub const NODE: &str = "node_exporter";
pub const POSTGRES: &str = "postgres_exporter";
pub const REDIS: &str = "redis_exporter";
pub const BLACKBOX: &str = "blackbox_exporter";
/// The shipped config `--every-collector` starts opsmon-exporter with.
pub const SHIPPED_CONFIG: &str = "deploy/opsmon.yml";

/// What [`setup`] started, ready to measure.
#[derive(Debug)]
pub struct Setup {
    /// opsmon-exporter first, then the peers.
    pub targets: Vec<Target>,
    pub psql: Psql,
    pub pg_port: u16,
    /// Whether Redis is part of the comparison (for ours and the peer alike).
    pub redis: bool,
    /// `--every-collector`: ours runs the shipped config, blackbox_exporter is a fourth peer.
    pub every_collector: bool,
    /// Lines for the report header (server versions, data sizes).
    pub header: Vec<String>,
    /// Lines for the report's notes (e.g. why Redis was left out).
    pub notes: Vec<String>,
    /// The run's temp dir (removed with the fleet).
    pub dir: PathBuf,
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

fn require(program: &Path, what: &str, flag: &str) -> Result<()> {
    ensure!(
        program.exists(),
        "{what}: {} not found (install it — bench/run.sh --full does — or pass {flag})",
        program.display()
    );
    Ok(())
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
    let pg_bin = services::pg_bin_dir(args.pg_bin.as_deref())?;
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

    if args.every_collector {
        let port = redis_port.context("--every-collector needs Redis (drop --no-redis)")?;
        return every_collector(args, fleet, http, plan, &exporter, (psql, pg_port), port, header).await;
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
    Ok(Setup { targets, psql, pg_port, redis, every_collector: false, header, notes, dir })
}

/// The shipped config with the machine-specific parts pointed at the
/// bench's own servers and files: Redis' port, the probe targets (both at
/// the bench's static HTTP server: no internet here), the access and
/// application logs and the file globs under `dir`. Everything else — host
/// process groups, listening ports, `/var/log` walk, PostgreSQL (its DSN
/// from `DATA_SOURCE_NAME`), the five business queries — is as shipped.
pub fn shipped_config(shipped: &str, redis_port: u16, static_addr: &str, dir: &Path) -> Result<String> {
    let d = dir.display();
    let replacements = [
        ("redis://127.0.0.1:6379", format!("redis://127.0.0.1:{redis_port}")),
        ("http://127.0.0.1:3000/api/v1/health", format!("http://{static_addr}/api/v1/health")),
        ("https://cdn.smartalk.com/videos/sample.mp4", format!("http://{static_addr}/videos/sample.mp4")),
        ("/var/log/nginx/access.log", format!("{d}/access.log")),
        ("/var/log/smartalk/application.log", format!("{d}/application.log")),
        ("/var/backups/postgresql/*.dump", format!("{d}/backups/*.dump")),
        ("/var/lib/smartalk/heartbeats/daily-report", format!("{d}/heartbeats/daily-report")),
    ];
    let mut text = shipped.to_owned();
    for (from, to) in replacements {
        ensure!(
            text.contains(from),
            "{SHIPPED_CONFIG} no longer contains {from:?}: update the bench's replacements"
        );
        text = text.replace(from, &to);
    }
    Ok(text)
}

/// A day of plausible access-log lines over the shipped routes.
fn access_log_lines(lines: usize) -> String {
    let paths = ["/api/v1/lessons", "/api/v1/health", "/videos/intro.mp4", "/", "/api/v1/users/42"];
    let statuses = [200, 200, 200, 304, 404, 500];
    (0..lines)
        .map(|i| {
            format!(
                "10.0.{}.{} - - [01/May/2024:10:{:02}:{:02} +0000] \"GET {} HTTP/1.1\" {} {} \"-\" \"bench\" 0.{:03}\n",
                i % 7,
                i % 250,
                (i / 60) % 60,
                i % 60,
                paths[i % paths.len()],
                statuses[i % statuses.len()],
                200 + i % 5000,
                (i * 37) % 1000
            )
        })
        .collect()
}

/// `--every-collector`: opsmon-exporter with the shipped config (see
/// [`shipped_config`]) against node_exporter, postgres_exporter,
/// redis_exporter and blackbox_exporter probing the same static target.
#[allow(clippy::too_many_arguments)]
async fn every_collector(
    args: &Args,
    fleet: &mut Fleet,
    http: &HttpClient,
    plan: &Plan,
    exporter: &Path,
    pg: (Psql, u16),
    redis_port: u16,
    mut header: Vec<String>,
) -> Result<Setup> {
    let (psql, pg_port) = pg;
    require(&args.blackbox_exporter, BLACKBOX, "--blackbox-exporter")?;
    let dir = fleet.dir()?;
    let (server, static_target) = crate::probe::start_static_server(bytes::Bytes::from(
        crate::probe::static_page(crate::probe::PAGE_BYTES),
    ))?;
    fleet.keep(server);
    let static_addr = static_target.addr.to_string();
    let files = dir.join("shipped");
    std::fs::create_dir_all(files.join("backups"))?;
    std::fs::create_dir_all(files.join("heartbeats"))?;
    std::fs::write(files.join("backups/smartalk-2026-11-29.dump"), vec![0u8; 64 * 1024])?;
    std::fs::write(files.join("heartbeats/daily-report"), b"ok\n")?;
    std::fs::write(files.join("access.log"), "")?;
    std::fs::write(files.join("application.log"), "")?;
    let shipped = std::fs::read_to_string(SHIPPED_CONFIG)
        .with_context(|| format!("reading {SHIPPED_CONFIG} (run from the workspace root)"))?;
    let config = dir.join("opsmon-shipped.yml");
    std::fs::write(&config, shipped_config(&shipped, redis_port, &static_addr, &files)?)?;
    let dsn = format!("postgresql://postgres@127.0.0.1:{pg_port}/{PG_DATABASE}?sslmode=disable");
    let mut ours_launch = Launch::standard(OURS, exporter);
    ours_launch.args.push(format!("--config.file={}", config.display()));
    ours_launch.env.push(("DATA_SOURCE_NAME".into(), dsn.clone()));
    let mut ours = fleet.spawn(&ours_launch)?;
    bring_up(http, &mut ours, fleet, plan).await?;
    // The tailer starts at the end of the log: append once it runs, then
    // wait until the scrape shows the lines.
    std::fs::write(files.join("access.log"), access_log_lines(20_000))?;
    std::fs::write(files.join("application.log"), "2026-11-29 ERROR payment timeout\n".repeat(50))?;
    let start = std::time::Instant::now();
    let body = loop {
        let body = scrape::scrape(http, &ours.uri, plan.timeout).await?.text()?;
        if sample_value(&body, "http_requests_total").is_some() || start.elapsed() > plan.ready_timeout {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for metric in ["pg_up", "redis_up", "probe_success", "http_requests_total", "smartalk_active_users"] {
        ensure!(
            sample_value(&body, metric).is_some(),
            "{OURS} with the shipped config: no {metric} in its scrape (log: {})",
            fleet.log_tail(OURS, 10)
        );
    }
    check_up(&body, OURS, "pg_up")?;
    check_up(&body, OURS, "redis_up")?;

    let mut postgres = Launch::standard(POSTGRES, &args.postgres_exporter);
    postgres.env.push(("DATA_SOURCE_NAME".into(), dsn));
    let mut redis = Launch::standard(REDIS, &args.redis_exporter);
    redis.args = vec![
        "-redis.addr".into(),
        format!("redis://127.0.0.1:{redis_port}"),
        "-web.listen-address".into(),
        "{addr}".into(),
    ];
    let blackbox_config = dir.join("blackbox.yml");
    std::fs::write(&blackbox_config, crate::probe::BLACKBOX_CONFIG)?;
    let mut blackbox = Launch::standard(BLACKBOX, &args.blackbox_exporter);
    blackbox.args.push(format!("--config.file={}", blackbox_config.display()));
    blackbox.metrics_path = crate::probe::probe_path(static_target.addr);
    let mut targets = vec![ours];
    for launch in [Launch::standard(NODE, &args.node_exporter), postgres, redis, blackbox] {
        let mut t = fleet.spawn(&launch)?;
        let body = bring_up(http, &mut t, fleet, plan).await?;
        match launch.name.as_str() {
            POSTGRES => check_up(&body, POSTGRES, "pg_up")?,
            REDIS => check_up(&body, REDIS, "redis_up")?,
            BLACKBOX => check_up(&body, BLACKBOX, "probe_success")?,
            _ => {}
        }
        targets.push(t);
    }
    header.push(format!(
        "**{OURS} config:** the shipped `{SHIPPED_CONFIG}` (host with its process groups, ports and `/var/log` \
         walk; PostgreSQL with the five business queries; Redis; both probe targets and the access log, \
         application log and file globs pointed at the bench's static server `{static_addr}` and temp files); \
         **{BLACKBOX}** scraped on `{}`",
        crate::probe::probe_path(static_target.addr)
    ));
    Ok(Setup { targets, psql, pg_port, redis: true, every_collector: true, header, notes: Vec::new(), dir })
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
    fn shipped_config_points_at_the_benchs_servers() -> Result<()> {
        let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/opsmon.yml"))?;
        let cfg = shipped_config(&shipped, 6390, "127.0.0.1:8081", Path::new("/tmp/x"))?;
        assert!(cfg.contains("redis://127.0.0.1:6390") && !cfg.contains(":6379\n"));
        assert!(cfg.contains("http://127.0.0.1:8081/videos/sample.mp4") && !cfg.contains("cdn.smartalk.com"));
        assert!(cfg.contains("/tmp/x/access.log") && cfg.contains("/tmp/x/backups/*.dump"));
        // The rest as shipped: the business queries and the /var/log walk.
        assert!(cfg.contains("name: funnel") && cfg.contains("- path: /var/log\n"));
        assert!(shipped_config("collectors: {}\n", 1, "a:1", Path::new("/d")).is_err());
        Ok(())
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
