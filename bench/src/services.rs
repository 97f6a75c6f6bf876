//! The databases of the full benchmark, owned by the bench: a throw-away
//! PostgreSQL cluster (initdb into the fleet's temp dir as the `postgres` user,
//! trust auth, loopback only, `pg_stat_statements` preloaded) and a
//! `redis-server` without persistence, each on a free loopback port and seeded
//! with data. Nothing here touches a server the bench did not start: the
//! cluster is stopped through its own data dir, Redis through its child process.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

/// Database the bench creates and every exporter connects to.
pub const PG_DATABASE: &str = "smartalk_db";

/// The PostgreSQL bin dir: `--pg-bin` when given, else the newest installed
/// under `/usr/lib/postgresql`.
pub fn pg_bin_dir(given: Option<&Path>) -> Result<PathBuf> {
    match given {
        Some(dir) => Ok(dir.to_owned()),
        None => find_pg_bin_dir(Path::new("/usr/lib/postgresql")),
    }
}

/// Newest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
pub fn find_pg_bin_dir(root: &Path) -> Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .with_context(|| format!("reading {} (is the postgresql package installed?)", root.display()))?
        .filter_map(|e| {
            let e = e.ok()?;
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).with_context(|| format!("no {}/<version>/bin/initdb", root.display()))
}

fn check_output(what: &str, out: &Output) -> Result<String> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            stdout.trim()
        );
    }
    Ok(stdout)
}

fn run(what: &str, cmd: &mut Command) -> Result<String> {
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("starting {what}"))?;
    check_output(what, &out)
}

/// Runs `cmd` with `input` on its stdin.
fn run_with_input(what: &str, cmd: &mut Command, input: &[u8]) -> Result<String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    // Feed stdin from a thread so a child filling its stdout pipe cannot deadlock us.
    let mut stdin = child.stdin.take().context("child stdin")?;
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().with_context(|| format!("waiting for {what}"))?;
    let written = writer.join().map_err(|_| anyhow::anyhow!("{what}: stdin writer panicked"))?;
    let stdout = check_output(what, &out)?;
    written.with_context(|| format!("{what}: writing stdin"))?;
    Ok(stdout)
}

/// `psql` against the bench's cluster over TCP as `postgres` (trust auth),
/// unaligned, tuples only, tab-separated, no `.psqlrc`. Each call is a new
/// connection (application_name `opsmon-bench`), so its backend is never
/// one of the exporters'.
#[derive(Debug, Clone)]
pub struct Psql {
    pub program: PathBuf,
    pub port: u16,
    pub database: String,
}

impl Psql {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-F", "\t", "-h", "127.0.0.1", "-U"])
            .arg("postgres")
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(&self.database)
            .env("PGAPPNAME", "opsmon-bench")
            .env("PGCONNECT_TIMEOUT", "10");
        cmd
    }

    /// Output of one SQL command (`psql -c`).
    pub fn query(&self, sql: &str) -> Result<String> {
        run(&format!("psql -c {sql:?}"), self.command().arg("-c").arg(sql))
    }

    /// Runs a script statement by statement (`psql -f -`), so `VACUUM` works.
    pub fn script(&self, sql: &str) -> Result<String> {
        run_with_input("psql script", self.command().args(["-f", "-"]), sql.as_bytes())
    }
}

/// The bench's own PostgreSQL cluster. Dropping it stops the server
/// (`pg_ctl stop -m fast`, then an immediate shutdown of *our* postmaster).
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    pub port: u16,
    started: bool,
}

fn as_postgres(program: &Path) -> Command {
    let mut cmd = Command::new("runuser");
    // From "/", which postgres can enter wherever the checkout lives.
    cmd.args(["-u", "postgres", "--"]).arg(program).current_dir("/");
    cmd
}

impl Postgres {
    /// initdb into `root/data` (`root` is created, owned by `postgres`; it is
    /// also the socket dir) and start the server on `127.0.0.1:port`.
    pub fn start(bin: &Path, root: &Path, port: u16) -> Result<Self> {
        ensure!(
            rustix::process::getuid().is_root(),
            "--full must run as root: the bench runs initdb and pg_ctl as the postgres user via runuser"
        );
        run(
            "install -d -o postgres",
            Command::new("install").args(["-d", "-o", "postgres", "-g", "postgres", "-m", "700"]).arg(root),
        )?;
        let data = root.join("data");
        run(
            "initdb",
            as_postgres(&bin.join("initdb")).arg("-D").arg(&data).args([
                "--auth=trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ]),
        )?;
        let log = root.join("postgresql.log");
        let mut pg = Self { bin: bin.to_owned(), data, log, port, started: false };
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c shared_preload_libraries=pg_stat_statements \
             -c pg_stat_statements.track_planning=on",
            root.display()
        );
        // From here on a failure may leave a server behind: drop must stop it.
        pg.started = true;
        run(
            "pg_ctl start",
            as_postgres(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(&pg.data)
                .arg("-l")
                .arg(&pg.log)
                .args(["-w", "-t", "60", "-o", &options, "start"]),
        )
        .with_context(|| format!("log tail:\n{}", tail(&pg.log, 20)))?;
        Ok(pg)
    }

    /// A psql client for database `database` of this cluster.
    pub fn psql(&self, database: &str) -> Psql {
        Psql { program: self.bin.join("psql"), port: self.port, database: database.to_owned() }
    }

    /// Creates [`PG_DATABASE`] with `analytics_events` (`rows` rows, an index on
    /// `user_id`) and the `pg_stat_statements` extension, vacuumed and analyzed
    /// so autovacuum has nothing to do during the measurement.
    pub fn seed(&self, rows: u64) -> Result<()> {
        self.psql("postgres").query(&format!("CREATE DATABASE {PG_DATABASE}"))?;
        self.psql(PG_DATABASE).script(&seed_sql(rows))?;
        Ok(())
    }

    /// PID of the postmaster from `postmaster.pid` (first line), if it names our data dir.
    fn postmaster_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        let mut lines = text.lines();
        let pid: i32 = lines.next()?.trim().parse().ok()?;
        (Path::new(lines.next()?.trim()) == self.data).then_some(pid)
    }

    fn stop(&mut self) -> Result<()> {
        if !self.started {
            return Ok(());
        }
        self.started = false;
        if self.postmaster_pid().is_none() {
            return Ok(()); // never came up, or already gone
        }
        let stopped = run(
            "pg_ctl stop",
            as_postgres(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "fast", "-w", "-t", "20", "stop"]),
        );
        if let Err(e) = stopped {
            // SIGQUIT = immediate shutdown, to our postmaster only.
            if let Some(pid) = self.postmaster_pid().and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::QUIT);
            }
            return Err(e);
        }
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("opsmon-bench: stopping the bench's PostgreSQL: {e:#}");
            }
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all.get(all.len().saturating_sub(lines)..).unwrap_or_default().join("\n")
}

/// The seed script for [`PG_DATABASE`]: the shipped schema
/// (`deploy/sql/schema.sql`: `analytics_events`, its indexes and the
/// `analytics_events_last_seen` summary the shipped business queries read),
/// `rows` rows of plausible events of the schema's types, and
/// `pg_stat_statements`.
pub fn seed_sql(rows: u64) -> String {
    format!(
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;\n\
         {SHIPPED_SCHEMA}\n\
         INSERT INTO analytics_events (user_id, event_type, \"timestamp\", properties)\n\
         SELECT 1 + (g * 7919) % 5000,\n\
         \x20      (ARRAY['signup', 'activation', 'lesson_started', 'lesson_completed', 'purchase', 'feedback'])[1 + g % 6],\n\
         \x20      now() - make_interval(secs => g * 13),\n\
         \x20      jsonb_build_object('path', '/p/' || (g % 100), 'ms', g % 1000, 'rating', 1 + g % 5)\n\
         FROM generate_series(1, {rows}) AS g;\n\
         VACUUM ANALYZE;\n"
    )
}

/// The schema the shipped config's business queries are written against.
const SHIPPED_SCHEMA: &str = include_str!("../../deploy/sql/schema.sql");

/// One command in the Redis protocol (RESP array of bulk strings), as
/// `redis-cli --pipe` wants it.
pub fn resp(args: &[&str]) -> String {
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    out
}

/// The Redis seed: `keys` keys, three quarters in db0 and the rest in db1,
/// mostly strings with some hashes and lists; every third key expires in an
/// hour (so `db0:keys=…,expires=…` is non-trivial). Returns the commands and
/// how many there are (= replies `--pipe` must report).
pub fn redis_seed(keys: u32) -> (String, u32) {
    let mut out = String::new();
    let mut commands = 0;
    let db0 = keys - keys / 4;
    for i in 0..keys {
        if i == 0 || i == db0 {
            out.push_str(&resp(&["SELECT", if i == 0 { "0" } else { "1" }]));
            commands += 1;
        }
        let (db, n) = if i < db0 { (0, i) } else { (1, i - db0) };
        let key = format!("db{db}:key:{n}");
        match i % 10 {
            0 => out.push_str(&resp(&["HSET", &key, "user", &n.to_string(), "plan", "pro"])),
            1 => out.push_str(&resp(&["RPUSH", &key, "a", "b", "c"])),
            _ => out.push_str(&resp(&["SET", &key, &format!("value-{n}-{}", "x".repeat((n % 64) as usize))])),
        }
        commands += 1;
        if i % 3 == 0 {
            out.push_str(&resp(&["EXPIRE", &key, "3600"]));
            commands += 1;
        }
    }
    (out, commands)
}

/// Polls `redis-cli PING` until it answers `PONG`.
pub fn wait_redis(
    cli: &Path,
    port: u16,
    limit: Duration,
    mut alive: impl FnMut() -> Result<()>,
) -> Result<()> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        alive()?;
        match run("redis-cli ping", redis_cli(cli, port).arg("PING")) {
            Ok(out) if out.trim() == "PONG" => return Ok(()),
            Ok(out) => last = out.trim().to_owned(),
            Err(e) => last = format!("{e:#}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("redis on port {port} not ready after {limit:?}: {last}")
}

fn redis_cli(cli: &Path, port: u16) -> Command {
    let mut cmd = Command::new(cli);
    cmd.args(["-h", "127.0.0.1", "-p"]).arg(port.to_string());
    cmd
}

/// Loads [`redis_seed`] through `redis-cli --pipe` and checks every command succeeded.
pub fn seed_redis(cli: &Path, port: u16, keys: u32) -> Result<()> {
    let (commands, count) = redis_seed(keys);
    let out = run_with_input("redis-cli --pipe", redis_cli(cli, port).arg("--pipe"), commands.as_bytes())?;
    ensure!(
        out.contains(&format!("errors: 0, replies: {count}")),
        "redis-cli --pipe did not confirm {count} error-free replies: {}",
        out.trim()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_encodes_bulk_strings() {
        assert_eq!(resp(&["SET", "k", "vé"]), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nvé\r\n");
        assert_eq!(resp(&[]), "*0\r\n");
    }

    #[test]
    fn redis_seed_splits_dbs_and_counts_commands() {
        let (text, count) = redis_seed(8);
        // 6 keys in db0, 2 in db1; SELECT twice; EXPIRE on keys 0, 3, 6.
        assert_eq!(count, 2 + 8 + 3);
        assert_eq!(text.matches("*2\r\n$6\r\nSELECT\r\n").count(), 2);
        assert_eq!(text.matches("EXPIRE").count(), 3);
        assert!(text.contains("db0:key:5") && text.contains("db1:key:1") && !text.contains("db0:key:6"));
        // Every command is well-formed: the count of array headers matches.
        assert_eq!(text.lines().filter(|l| l.starts_with('*')).count() as u32, count);
    }

    #[test]
    fn seed_sql_has_the_issue_schema() {
        let sql = seed_sql(12345);
        assert!(sql.contains("generate_series(1, 12345)"));
        assert!(sql.contains("properties  jsonb") && sql.contains("\"timestamp\" timestamptz"));
        assert!(sql.contains("analytics_events_last_seen"), "the summary the shipped business queries read");
        assert!(sql.starts_with("CREATE EXTENSION IF NOT EXISTS pg_stat_statements;"));
    }

    #[test]
    fn finds_newest_pg_bin_dir() -> Result<()> {
        let root = std::env::temp_dir().join(format!("opsmon-bench-pgbin-{}", std::process::id()));
        for (v, with_initdb) in [("13", true), ("15", true), ("16", false), ("x", true)] {
            let bin = root.join(v).join("bin");
            std::fs::create_dir_all(&bin)?;
            if with_initdb {
                std::fs::write(bin.join("initdb"), "")?;
            }
        }
        let found = find_pg_bin_dir(&root);
        std::fs::remove_dir_all(&root)?;
        assert_eq!(found?, root.join("15").join("bin"));
        assert!(find_pg_bin_dir(Path::new("/nonexistent/postgresql")).is_err());
        Ok(())
    }
}
