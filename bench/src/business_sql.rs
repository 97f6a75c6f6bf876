//! `opsmon-bench business-sql`: the shipped default business queries at real
//! table sizes. Starts the bench's own PostgreSQL (or uses one given with
//! `--pg-port`), loads `deploy/sql/schema.sql` and fills `analytics_events`
//! with `deploy/sql/demo-data.sql` up to `--events` rows, then runs every query
//! of the config's `business:` section under `EXPLAIN (ANALYZE, BUFFERS)`
//! `--runs` times and prints, per query, the median and worst execution and
//! planning time against the goal, and the plan's scan and aggregate nodes.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use clap::Parser;

use crate::services::{Postgres, Psql, pg_bin_dir};
use crate::target::{Fleet, free_loopback_addr};

/// Events per demo user, as `demo-data.sql` generates them (measured: 6.6).
const EVENTS_PER_USER: f64 = 6.6;

#[derive(Debug, Parser)]
#[command(
    name = "opsmon-bench business-sql",
    about = "Default business queries at real sizes, EXPLAIN ANALYZE"
)]
pub struct Args {
    /// Rows in analytics_events (demo users are added until there are at least this many).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Measured runs per query (after one warm-up run).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Config whose `business:` section holds the queries.
    #[arg(long, default_value = "deploy/opsmon.yml")]
    config: PathBuf,
    /// Schema (tables and indexes) to load.
    #[arg(long, default_value = "deploy/sql/schema.sql")]
    schema: PathBuf,
    /// Data generator.
    #[arg(long, default_value = "deploy/sql/demo-data.sql")]
    demo_data: PathBuf,
    /// Goal per query in milliseconds (the issue: 50 at 1M events, 250 at 10M).
    #[arg(long)]
    goal_ms: Option<f64>,
    /// Use the server already listening on 127.0.0.1:PORT (trust auth as
    /// `postgres`) instead of starting one; its `--database` is seeded only
    /// when it has fewer than `--events` rows.
    #[arg(long)]
    pg_port: Option<u16>,
    /// Database to use with --pg-port.
    #[arg(long, default_value = "smartalk_db")]
    database: String,
    /// PostgreSQL's bin dir; default the newest /usr/lib/postgresql/<version>/bin.
    #[arg(long)]
    pg_bin: Option<PathBuf>,
}

/// One default query: its name and SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub name: String,
    pub sql: String,
}

/// The `name` and `sql: |` block of each query under `business:` in an
/// opsmon.yml, read by indentation (the bench carries no YAML parser; the
/// shipped file's layout is fixed by the business tests).
pub fn business_queries(config: &str) -> Vec<Query> {
    let mut queries = Vec::new();
    let Some(start) = config.find("\n  business:\n") else { return queries };
    let mut lines = config[start + 1..].lines().skip(1).peekable();
    let mut name = None;
    while let Some(line) = lines.next() {
        let indent = line.len() - line.trim_start().len();
        if !line.trim().is_empty() && indent <= 2 {
            break;
        }
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("- name:") {
            name = Some(rest.trim().to_owned());
        } else if trimmed == "sql: |"
            && let Some(name) = name.take()
        {
            let mut sql = String::new();
            while let Some(next) = lines.peek() {
                let next_indent = next.len() - next.trim_start().len();
                if !next.trim().is_empty() && next_indent <= indent {
                    break;
                }
                sql.push_str(next.get(indent + 2..).unwrap_or(next.trim()));
                sql.push('\n');
                lines.next();
            }
            queries.push(Query { name, sql });
        }
    }
    queries
}

/// Execution and planning time (ms) from `EXPLAIN ANALYZE` text output.
pub fn explain_times(plan: &str) -> Option<(f64, f64)> {
    let find = |label: &str| {
        plan.lines()
            .find_map(|l| l.trim().strip_prefix(label)?.trim().strip_suffix("ms")?.trim().parse().ok())
    };
    Some((find("Execution Time:")?, find("Planning Time:")?))
}

/// The plan's scan and aggregate nodes, one short line each, for the docs.
pub fn plan_summary(plan: &str) -> Vec<String> {
    plan.lines()
        .map(|l| l.trim().trim_start_matches("->").trim())
        .filter(|l| l.contains("Scan") || l.contains("Aggregate") || l.starts_with("Sort  ("))
        .map(|l| {
            let node = l.split("  (cost=").next().unwrap_or(l);
            let rows = l.split("(actual ").nth(1).and_then(|a| {
                let rows = a.split("rows=").nth(1)?.split_whitespace().next()?;
                let loops = a.split("loops=").nth(1)?.trim_end_matches(')');
                Some(format!("rows={rows} loops={loops}"))
            });
            match rows {
                Some(rows) => format!("{node} ({rows})"),
                None => node.to_owned(),
            }
        })
        .collect()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs the benchmark and returns the markdown report.
pub fn run(args: &Args, fleet: &mut Fleet) -> Result<String> {
    let config = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading {} (run from the repository root)", args.config.display()))?;
    let queries = business_queries(&config);
    ensure!(!queries.is_empty(), "{}: no business queries found", args.config.display());
    let schema = read(&args.schema)?;
    let demo_data = read(&args.demo_data)?;

    let (psql, _server) = match args.pg_port {
        Some(port) => {
            let bin = pg_bin_dir(args.pg_bin.as_deref())?;
            (Psql { program: bin.join("psql"), port, database: args.database.clone() }, None)
        }
        None => {
            let bin = pg_bin_dir(args.pg_bin.as_deref())?;
            let root = fleet.dir()?.join("pg");
            let server = Postgres::start(&bin, &root, free_loopback_addr()?.port())?;
            server.psql("postgres").query(&format!("CREATE DATABASE {}", args.database))?;
            (server.psql(&args.database), Some(server))
        }
    };
    psql.script(&schema).context("loading the schema")?;
    let mut rows = count(&psql)?;
    let started = std::time::Instant::now();
    while rows < args.events {
        let users = (((args.events - rows) as f64 / EVENTS_PER_USER).ceil() as u64).max(1);
        eprintln!("opsmon-bench: {rows} events; adding {users} demo users");
        psql.script(&format!("\\set users {users}\n{demo_data}")).context("generating demo data")?;
        rows = count(&psql)?;
    }
    if started.elapsed().as_secs() > 0 {
        eprintln!("opsmon-bench: generated in {:.0} s", started.elapsed().as_secs_f64());
    }
    // The whole database: the summary table too, so index-only scans skip the heap.
    psql.script("VACUUM ANALYZE;")?;
    let version = psql.query("SHOW server_version")?;
    let settings = psql.query(
        "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name) FROM pg_settings \
         WHERE name IN ('shared_buffers', 'work_mem', 'max_parallel_workers_per_gather', 'jit')",
    )?;

    let goal = args.goal_ms.unwrap_or(if args.events > 2_000_000 { 250.0 } else { 50.0 });
    let mut table = format!(
        "### {rows} events (PostgreSQL {}; {})\n\n\
         | query | median exec ms | worst exec ms | planning ms | goal ms | |\n|---|---:|---:|---:|---:|---|\n",
        version.trim(),
        settings.trim()
    );
    let mut plans = String::new();
    for query in &queries {
        let explain = format!("EXPLAIN (ANALYZE, BUFFERS) {}", query.sql);
        psql.query(&explain).with_context(|| format!("query {}", query.name))?;
        let mut exec = Vec::new();
        let mut planning = Vec::new();
        let mut last_plan = String::new();
        for _ in 0..args.runs {
            last_plan = psql.query(&explain)?;
            let Some((e, p)) = explain_times(&last_plan) else {
                bail!("query {}: no timing in the EXPLAIN output:\n{last_plan}", query.name);
            };
            exec.push(e);
            planning.push(p);
        }
        let worst = exec.iter().copied().fold(0.0, f64::max);
        let median_exec = median(&mut exec);
        let verdict = if median_exec < goal { "ok" } else { "**over**" };
        table.push_str(&format!(
            "| {} | {median_exec:.1} | {worst:.1} | {:.2} | {goal:.0} | {verdict} |\n",
            query.name,
            median(&mut planning)
        ));
        plans.push_str(&format!("- `{}`: {}\n", query.name, plan_summary(&last_plan).join("; ")));
        eprintln!("opsmon-bench: {} median {median_exec:.1} ms", query.name);
    }
    Ok(format!("{table}\nPlans (last run):\n\n{plans}\n"))
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("reading {} (run from the repository root)", path.display()))
}

fn count(psql: &Psql) -> Result<u64> {
    let text = psql.query("SELECT count(*) FROM analytics_events")?;
    text.trim().parse().with_context(|| format!("count(*) said {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_shipped_queries() {
        let config = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/opsmon.yml"))
            .expect("deploy/opsmon.yml");
        let queries = business_queries(&config);
        let names: Vec<&str> = queries.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["active_users", "activation", "funnel", "feedback", "busiest_users"]);
        for query in &queries {
            assert!(query.sql.contains("analytics_events"), "{query:?}");
            assert!(!query.sql.contains("metrics:"), "{query:?}");
        }
    }

    #[test]
    fn times_and_plan_nodes_from_explain() {
        let plan = "Aggregate  (cost=1.0..2.0 rows=1 width=8) (actual time=0.1..0.2 rows=1 loops=1)\n  \
                    ->  Index Only Scan using idx on analytics_events e  (cost=0.4..1.0 rows=9 width=4) (actual time=0.01..0.1 rows=12 loops=3)\n\
                    Planning Time: 0.512 ms\nExecution Time: 12.250 ms\n";
        assert_eq!(explain_times(plan), Some((12.25, 0.512)));
        assert_eq!(
            plan_summary(plan),
            [
                "Aggregate (rows=1 loops=1)",
                "Index Only Scan using idx on analytics_events e (rows=12 loops=3)"
            ]
        );
    }
}
