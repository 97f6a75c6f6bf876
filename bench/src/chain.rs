//! The PostgreSQL statement chain on its own: the statements one scrape of
//! opsmon-exporter sends over its connection
//! (`opsmon_exporter::collectors::postgres::scrape_statements`), run back to
//! back on one connection by pgbench — libpq, prepared statements, nothing
//! else in the process. Its latency is a floor for any exporter that reads
//! the same areas over one connection: such a scrape cannot be quicker than
//! this chain.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use opsmon_exporter::collectors::postgres;

use crate::services::Psql;
use crate::stats;

/// The tables the bench's exporter configs name (`tables: [analytics_events]`).
const TABLES: [&str; 1] = ["analytics_events"];

/// Transactions pgbench runs before the measured ones: the first prepares
/// every statement on the connection.
const WARMUP: u32 = 20;

/// Latency of the chain, one pgbench transaction per scrape's worth.
#[derive(Debug, Clone)]
pub struct ChainFigures {
    pub statements: usize,
    pub runs: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
}

/// Runs the chain `runs` times (after [`WARMUP`]) with pgbench from the
/// cluster's own bin dir, against `psql`'s database over TCP, with its
/// script and per-transaction log in `dir`.
pub fn measure(psql: &Psql, runs: u32, dir: &Path) -> Result<ChainFigures> {
    let version: i32 = psql
        .query("SHOW server_version_num")?
        .trim()
        .parse()
        .context("server_version_num is not a number")?;
    let tables: Vec<String> = TABLES.iter().map(|t| (*t).to_owned()).collect();
    let statements = postgres::scrape_statements(version, &tables, None);
    let script = dir.join("chain.sql");
    std::fs::write(&script, pgbench_script(&statements))?;
    let pgbench = psql.program.with_file_name("pgbench");
    ensure!(
        pgbench.exists(),
        "{} not found (it comes with the PostgreSQL server package)",
        pgbench.display()
    );
    let log_prefix = dir.join("chain-log");
    let mut command = Command::new(&pgbench);
    if u32::try_from(version).is_ok_and(|v| v >= postgres::STATS_FETCH_CONSISTENCY_SINCE) {
        // As the exporter's sessions read statistics.
        let (setting, value) = postgres::STATS_FETCH_CONSISTENCY;
        command.env("PGOPTIONS", format!("-c {setting}={value}"));
    }
    let out = command
        .args(["-n", "-M", "prepared", "-c", "1", "-h", "127.0.0.1", "-U", "postgres"])
        .arg("-p")
        .arg(psql.port.to_string())
        .arg("-t")
        .arg(runs.saturating_add(WARMUP).to_string())
        .arg("-f")
        .arg(&script)
        .arg("-l")
        .arg("--log-prefix")
        .arg(&log_prefix)
        .arg(&psql.database)
        .current_dir(dir)
        .env("PGAPPNAME", "opsmon-bench-chain")
        .output()
        .with_context(|| format!("running {}", pgbench.display()))?;
    ensure!(
        out.status.success(),
        "pgbench failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let log = find_log(dir)?;
    let mut latencies = transaction_latencies_ms(&std::fs::read_to_string(&log)?)?;
    std::fs::remove_file(&log)?;
    ensure!(latencies.len() > WARMUP as usize, "pgbench logged {} transactions", latencies.len());
    let measured = latencies.split_off(WARMUP as usize);
    let at = |p: f64| stats::percentile(&measured, p).unwrap_or(f64::NAN);
    Ok(ChainFigures {
        statements: statements.len(),
        runs: measured.len(),
        p50_ms: at(50.0),
        p90_ms: at(90.0),
        p99_ms: at(99.0),
    })
}

/// One pgbench transaction: every statement, each ended by `;` (pgbench
/// reads a statement over several lines up to its semicolon).
fn pgbench_script(statements: &[String]) -> String {
    statements.iter().map(|s| format!("{};\n", s.trim_end())).collect()
}

/// pgbench names its log `PREFIX.PID`.
fn find_log(dir: &Path) -> Result<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("chain-log.")) {
            return Ok(path);
        }
    }
    anyhow::bail!("pgbench left no chain-log.* in {}", dir.display())
}

/// The third field of each line of pgbench's per-transaction log
/// (`client transaction latency_us script epoch epoch_us`), in ms.
fn transaction_latencies_ms(log: &str) -> Result<Vec<f64>> {
    log.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let micros: f64 = line
                .split_whitespace()
                .nth(2)
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("unexpected pgbench log line {line:?}"))?;
            Ok(micros / 1000.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pgbench_transaction_log() -> Result<()> {
        let log = "0 0 3126 0 1764500000 123456\n0 1 2500 0 1764500000 126000\n";
        assert_eq!(transaction_latencies_ms(log)?, vec![3.126, 2.5]);
        assert!(transaction_latencies_ms("0 0 x 0\n").is_err());
        Ok(())
    }

    #[test]
    fn script_ends_every_statement() {
        let script = pgbench_script(&["SELECT 1".to_owned(), "SELECT 2\nFROM t".to_owned()]);
        assert_eq!(script, "SELECT 1;\nSELECT 2\nFROM t;\n");
    }
}
