//! Real PostgreSQL and Redis servers for the tests, each in its own temp dir on
//! a free loopback port, stopped when the handle drops. Nothing here talks to
//! the servers a machine may already be running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

fn pg_bin(tool: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: install the Debian package postgresql (scripts/test.sh does)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    versions.pop().expect("no /usr/lib/postgresql/*/bin/initdb").join(tool)
}

/// Runs `command` as the `postgres` user when we are root (initdb refuses root),
/// from `workdir`: the server's own temp dir, which that user can enter even when
/// the checkout (the test's working directory) sits in a private directory.
fn as_postgres(workdir: &Path, program: &Path) -> Command {
    let mut command = if rustix::process::geteuid().is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    command.current_dir(workdir);
    command
}

/// Runs `command` and returns its stdout alone: stderr carries notices and
/// warnings, never data, and is only shown when the command fails.
fn check(mut command: Command, what: &str) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{what} failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// A PostgreSQL cluster of our own. TCP connections need a password
/// (scram-sha-256); the Unix socket in the temp dir is trusted, for set-up.
#[derive(Debug)]
pub struct PgServer {
    dir: tempfile::TempDir,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Password of the `postgres` superuser over TCP.
    pub password: String,
}

impl PgServer {
    /// initdb + start. `settings` are extra `-c name=value` server options.
    pub fn start(settings: &[&str]) -> PgServer {
        let dir = tempfile::Builder::new().prefix("opsmon-pg-").tempdir().unwrap();
        if rustix::process::geteuid().is_root() {
            check(
                {
                    let mut c = Command::new("chown");
                    c.args(["postgres:postgres"]).arg(dir.path());
                    c
                },
                "chown",
            );
        }
        let data = dir.path().join("data");
        let mut initdb = as_postgres(dir.path(), &pg_bin("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8"])
            .args(["--locale=C.UTF-8", "--no-sync"]);
        check(initdb, "initdb");
        let server = PgServer { dir, port: free_port(), password: "s3cr3t-Pg-pw-4242".into() };
        let mut options = vec![
            format!("-p {}", server.port),
            "-c listen_addresses=127.0.0.1".into(),
            format!("-k {}", server.dir.path().display()),
            "-c fsync=off".into(),
        ];
        options.extend(settings.iter().map(|s| format!("-c {s}")));
        std::fs::write(data.join("opsmon-test-options"), options.join(" ")).unwrap();
        server.start_again();
        server.psql("postgres", &format!("ALTER USER postgres PASSWORD '{}'", server.password));
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the (stopped) server again on the same port.
    pub fn start_again(&self) {
        let options = std::fs::read_to_string(self.data().join("opsmon-test-options")).unwrap();
        let mut start = as_postgres(self.dir.path(), &pg_bin("pg_ctl"));
        start
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]);
        check(start, "pg_ctl start");
    }

    /// Stops the server at once (`-m immediate`).
    pub fn stop(&self) {
        let mut stop = as_postgres(self.dir.path(), &pg_bin("pg_ctl"));
        stop.arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"]);
        check(stop, "pg_ctl stop");
    }

    /// Runs SQL through the trusted socket as `postgres` and returns psql's
    /// unaligned, tuples-only output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let mut psql = as_postgres(self.dir.path(), &pg_bin("psql"));
        psql.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]).arg("-h").arg(self.dir.path()).args([
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-d",
            database,
            "-c",
            sql,
        ]);
        check(psql, &format!("psql {sql:?}")).trim().to_owned()
    }

    /// Runs an SQL file through psql as `postgres`, with `-v name=value` variables.
    pub fn psql_file(&self, database: &str, file: &Path, variables: &[(&str, &str)]) -> String {
        let mut psql = as_postgres(self.dir.path(), &pg_bin("psql"));
        psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1"]).arg("-h").arg(self.dir.path()).args([
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-d",
            database,
        ]);
        for (name, value) in variables {
            psql.arg("-v").arg(format!("{name}={value}"));
        }
        psql.arg("-f").arg(file);
        check(psql, &format!("psql -f {}", file.display()))
    }

    /// `postgresql://postgres:PASSWORD@127.0.0.1:PORT/DATABASE?sslmode=disable`.
    pub fn url(&self, database: &str) -> String {
        format!("postgresql://postgres:{}@127.0.0.1:{}/{database}?sslmode=disable", self.password, self.port)
    }

    /// The URL without the password.
    pub fn url_without_password(&self, database: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{database}?sslmode=disable", self.port)
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut stop = as_postgres(self.dir.path(), &pg_bin("pg_ctl"));
        stop.arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"]);
        let _ = stop.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// A Redis server of our own, without persistence.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// `requirepass`, if set.
    pub password: Option<String>,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts `redis-server --port N --save ''` with `extra` arguments.
    pub fn start(password: Option<&str>, extra: &[&str]) -> RedisServer {
        crate::require_tool("redis-server", "redis-server");
        let mut server = RedisServer {
            child: None,
            dir: tempfile::Builder::new().prefix("opsmon-redis-").tempdir().unwrap(),
            port: free_port(),
            password: password.map(str::to_owned),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        server.start_again();
        server
    }

    /// Starts the (stopped) server again on the same port.
    pub fn start_again(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra);
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        self.child = Some(child);
        let started = Instant::now();
        while self.cli(&["PING"]).map(|r| !r.contains("PONG")).unwrap_or(true) {
            assert!(started.elapsed() < Duration::from_secs(10), "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `redis-cli` against this server; `None` when it cannot connect.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let mut command = Command::new("redis-cli");
        command.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if let Some(password) = &self.password {
            command.env("REDISCLI_AUTH", password);
        }
        let output = command.args(args).output().ok()?;
        let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        (output.status.success() && !text.starts_with("Could not connect")).then_some(text)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
