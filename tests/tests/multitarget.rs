//! Many PostgreSQL targets in one exporter (issue 14), against real servers:
//! targets sharing a server hold together at most their share of its
//! `max_connections`, let go of idle connections and measure the database
//! sizes once for all of them; a hung server never delays the targets on
//! another one.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use opsmon_e2e::servers::PgServer;
use opsmon_e2e::{Process, get_with, parse_exposition};

/// A config with one target per `(name, server, database)`.
fn config(dir: &tempfile::TempDir, postgres: &str, targets: &[(&str, &PgServer, &str)]) -> String {
    let mut text = format!("collectors:\n  host:\n    enabled: false\n  postgres:\n{postgres}    targets:\n");
    for (name, pg, database) in targets {
        text.push_str(&format!(
            "      - name: {name}\n        dsn: {}\n        password_env: OPSMON_TEST_PG_PASSWORD\n",
            pg.url_without_password(database)
        ));
    }
    let path = dir.path().join("opsmon.yml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `pg_up` of one `/probe?target=NAME` with a scrape budget, and its wall time.
fn probe(exporter: &Process, target: &str, budget_seconds: &str) -> (Option<f64>, Duration) {
    let started = Instant::now();
    let response = get_with(
        &exporter.url(&format!("/probe?target={target}")),
        &[("X-Prometheus-Scrape-Timeout-Seconds", budget_seconds)],
    )
    .unwrap();
    let up = parse_exposition(&response.text()).get("pg_up").and_then(|f| f.value(&[]));
    (up, started.elapsed())
}

fn exporter_connections(pg: &PgServer) -> u32 {
    pg.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'opsmon-exporter'")
        .parse()
        .unwrap()
}

#[test]
fn targets_on_one_server_hold_at_most_their_share_and_release_idle_connections() {
    // 0.1 × 40 = 4 connections for 12 targets (12 databases).
    let pg = PgServer::start(&["max_connections=40", "shared_preload_libraries=pg_stat_statements"]);
    pg.psql("postgres", "CREATE EXTENSION pg_stat_statements");
    let names: Vec<String> = (0..12).map(|i| format!("db{i:02}")).collect();
    let mut create = String::new();
    for name in &names {
        create.push_str(&format!("CREATE DATABASE {name};"));
    }
    for statement in create.split_terminator(';') {
        pg.psql("postgres", statement);
    }
    let dir = tempfile::tempdir().unwrap();
    let targets: Vec<(&str, &PgServer, &str)> = names.iter().map(|n| (n.as_str(), &pg, n.as_str())).collect();
    let config = config(&dir, "    connection_share: 0.1\n    idle_timeout: 2s\n", &targets);
    let exporter = Arc::new(Process::exporter_with_env(
        &["--config.file", &config],
        &[("OPSMON_TEST_PG_PASSWORD", &pg.password)],
    ));

    // The first probe measures the database sizes for every target on the server.
    assert_eq!(probe(&exporter, "db00", "5").0, Some(1.0), "{}", exporter.log());

    // Count the exporter's sessions all along while every target is probed,
    // six at a time, three rounds.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = Arc::clone(&done);
        let (port, password) = (pg.port, pg.password.clone());
        let sample = move || exporter_connections_on(port, &password);
        std::thread::spawn(move || {
            let mut most = 0;
            while !done.load(Ordering::Relaxed) {
                most = most.max(sample());
                std::thread::sleep(Duration::from_millis(20));
            }
            most
        })
    };
    for _ in 0..3 {
        for chunk in names.chunks(6) {
            let probes: Vec<_> = chunk
                .iter()
                .map(|name| {
                    let (exporter, name) = (Arc::clone(&exporter), name.clone());
                    std::thread::spawn(move || probe(&exporter, &name, "5"))
                })
                .collect();
            for (name, handle) in chunk.iter().zip(probes) {
                let (up, _) = handle.join().unwrap();
                assert_eq!(up, Some(1.0), "{name}: {}", exporter.log());
            }
        }
    }
    done.store(true, Ordering::Relaxed);
    let most = watcher.join().unwrap();
    assert!((1..=4).contains(&most), "at most 4 sessions at any time, saw {most}");
    assert!(exporter_connections(&pg) <= 4);
    let measured: f64 = pg
        .psql(
            "postgres",
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE '%pg_database_size%'",
        )
        .parse()
        .unwrap();
    assert_eq!(measured, 1.0, "12 targets on one server measure the database sizes once per interval");

    // Idle for longer than idle_timeout (2 s, reaper every 0.5 s): all closed.
    let started = Instant::now();
    while exporter_connections(&pg) > 0 {
        assert!(started.elapsed() < Duration::from_secs(6), "idle connections are closed after idle_timeout");
        std::thread::sleep(Duration::from_millis(200));
    }
    // … and the targets still answer afterwards.
    assert_eq!(probe(&exporter, "db07", "5").0, Some(1.0));
}

/// The exporter's sessions on the server at `port`, through `psql` over TCP
/// (the watcher thread cannot borrow the server).
fn exporter_connections_on(port: u16, password: &str) -> u32 {
    let output = std::process::Command::new("runuser")
        .args(["-u", "postgres", "--", "psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-U", "postgres", "-d", "postgres", "-c"])
        .arg("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'opsmon-exporter'")
        .env("PGPASSWORD", password)
        .current_dir("/")
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().parse().unwrap_or(0)
}

#[test]
fn a_hung_server_never_delays_targets_on_another() {
    let hung = PgServer::start(&[]);
    let healthy = PgServer::start(&[]);
    assert_eq!(hung.password, healthy.password, "one password for both servers");
    healthy.psql("postgres", "CREATE DATABASE app");
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        &dir,
        "",
        &[("stuck", &hung, "postgres"), ("fine", &healthy, "postgres"), ("also_fine", &healthy, "app")],
    );
    let exporter = Arc::new(Process::exporter_with_env(
        &["--config.file", &config],
        &[("OPSMON_TEST_PG_PASSWORD", &hung.password)],
    ));
    for target in ["stuck", "fine", "also_fine"] {
        assert_eq!(probe(&exporter, target, "5").0, Some(1.0), "{target}");
    }

    let paused = hung.pause();
    // The stuck target's probes hang until their budget (3 s) runs out …
    let stuck: Vec<_> = (0..2)
        .map(|_| {
            let exporter = Arc::clone(&exporter);
            std::thread::spawn(move || probe(&exporter, "stuck", "3"))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // … while the other server's targets answer as fast as before.
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        for target in ["fine", "also_fine"] {
            let (up, took) = probe(&exporter, target, "3");
            assert_eq!(up, Some(1.0), "{target}");
            slowest = slowest.max(took);
        }
    }
    assert!(slowest < Duration::from_millis(1000), "a healthy target waited {slowest:?}");
    for handle in stuck {
        let (up, took) = handle.join().unwrap();
        assert_eq!(up, Some(0.0), "the hung server is down");
        assert!(took < Duration::from_millis(3500), "answered within its budget: {took:?}");
    }
    drop(paused);
    // Resumed: the stuck target recovers without a restart.
    let started = Instant::now();
    while probe(&exporter, "stuck", "5").0 != Some(1.0) {
        assert!(started.elapsed() < Duration::from_secs(10), "{}", exporter.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}
