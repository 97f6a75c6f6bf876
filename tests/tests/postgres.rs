//! The PostgreSQL collector against a real server started by the test:
//! values against psql, faults and recovery, deadlines, secrets, /probe and
//! compatibility beside Debian's prometheus-postgres-exporter.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use opsmon_e2e::servers::PgServer;
use opsmon_e2e::{
    FamilyInfo, Process, exporter_bin, free_port, get, get_with, parse_exposition, require_tool,
};

fn scrape(exporter: &Process, path: &str) -> BTreeMap<String, FamilyInfo> {
    parse_exposition(&get(&exporter.url(path)).unwrap().text())
}

/// A server with `smartalk_db` and a populated `analytics_events` table.
fn seeded_server(settings: &[&str]) -> PgServer {
    let pg = PgServer::start(settings);
    pg.psql("postgres", "CREATE DATABASE smartalk_db");
    pg.psql(
        "smartalk_db",
        "CREATE TABLE analytics_events (id bigserial PRIMARY KEY, user_id int NOT NULL, event_type text NOT NULL, \
         \"timestamp\" timestamptz NOT NULL DEFAULT now(), properties jsonb NOT NULL DEFAULT '{}');
         INSERT INTO analytics_events (user_id, event_type) SELECT g % 500, 'signup' FROM generate_series(1, 20000) g;
         ANALYZE analytics_events;",
    );
    pg
}

/// A config file for one target whose password comes from `password_env`.
fn config_file(dir: &tempfile::TempDir, pg: &PgServer, extra: &str) -> String {
    let path = dir.path().join("opsmon.yml");
    std::fs::write(
        &path,
        format!(
            "collectors:\n  postgres:\n    targets:\n      - name: smartalk\n        dsn: {}\n        password_env: OPSMON_TEST_PG_PASSWORD\n        tables: [analytics_events]\n{extra}",
            pg.url_without_password("smartalk_db")
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

fn start_exporter(config: &str, pg: &PgServer, extra_args: &[&str]) -> Process {
    let mut args = vec!["--config.file", config];
    args.extend_from_slice(extra_args);
    Process::exporter_with_env(&args, &[("OPSMON_TEST_PG_PASSWORD", &pg.password)])
}

/// A psql session in smartalk_db running `sql` in the background, returned
/// once `ready` (a count, run in `ready_database`) is at least 1; killed on drop.
fn background_session(pg: &PgServer, sql: &str, ready_database: &str, ready: &str) -> KillOnDrop {
    let child = Command::new("runuser")
        .args(["-u", "postgres", "--", "psql", "-h", "127.0.0.1", "-p", &pg.port.to_string()])
        .args(["-U", "postgres", "-d", "smartalk_db", "-c", sql])
        .env("PGPASSWORD", &pg.password)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let session = KillOnDrop(child);
    let started = Instant::now();
    while psql_number(pg, ready_database, ready) < 1.0 {
        assert!(started.elapsed() < Duration::from_secs(10), "background session not ready: {ready}");
        std::thread::sleep(Duration::from_millis(50));
    }
    session
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn psql_number(pg: &PgServer, database: &str, sql: &str) -> f64 {
    pg.psql(database, sql).parse().unwrap()
}

#[test]
fn values_match_what_psql_reports() {
    let pg = seeded_server(&["max_connections=37"]);
    let dir = tempfile::tempdir().unwrap();
    let exporter = start_exporter(&config_file(&dir, &pg, ""), &pg, &[]);

    // An active backend in smartalk_db for the activity figures.
    let sleeper = background_session(
        &pg,
        "SELECT pg_sleep(30)",
        "postgres",
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'",
    );

    let text = get(&exporter.url("/metrics")).unwrap().text();
    let families = parse_exposition(&text);
    drop(sleeper);
    let problems = opsmon_e2e::promtool_problems(&text);
    assert!(problems.is_empty(), "promtool check metrics:\n{}", problems.join("\n"));
    let server = format!("127.0.0.1:{}", pg.port);

    assert_eq!(families["pg_up"].value(&[]), Some(1.0));
    assert_eq!(families["opsmon_exporter_collector_success"].value(&[("collector", "postgres")]), Some(1.0));
    assert_eq!(families["pg_settings_max_connections"].value(&[("server", &server)]), Some(37.0));

    let size = families["pg_database_size_bytes"].value(&[("datname", "smartalk_db")]).unwrap();
    let expected = psql_number(&pg, "postgres", "SELECT pg_database_size('smartalk_db')");
    assert!((size - expected).abs() / expected < 0.01, "database size {size} vs {expected}");

    let active = families["pg_stat_activity_count"].value(&[("datname", "smartalk_db"), ("state", "active")]);
    assert!(active.unwrap() >= 1.0, "the pg_sleep backend is active: {active:?}");
    let max_tx = families["pg_stat_activity_max_tx_duration"]
        .value(&[("datname", "smartalk_db"), ("state", "active")]);
    assert!(max_tx.unwrap() > 0.0);
    assert_eq!(
        families["pg_stat_activity_count"].samples.len(),
        families["pg_database_size_bytes"].samples.len() * 6,
        "every database × state is reported, also zeros"
    );

    let table = [("relname", "analytics_events"), ("schemaname", "public"), ("datname", "smartalk_db")];
    assert_eq!(families["pg_stat_user_tables_n_live_tup"].value(&table), Some(20_000.0));
    let table_size = families["pg_stat_user_tables_size_bytes"].value(&table).unwrap();
    assert_eq!(
        table_size,
        psql_number(&pg, "smartalk_db", "SELECT pg_total_relation_size('analytics_events')"),
        "table size"
    );
    assert!(families["pg_stat_user_tables_last_autoanalyze"].value(&table).is_some());
    assert!(
        families["pg_locks_count"]
            .value(&[("datname", "smartalk_db"), ("mode", "accesssharelock")])
            .is_some()
    );
    assert_eq!(families["pg_replication_is_replica"].value(&[]), Some(0.0));
    let version = &families["pg_static"].samples[0].1;
    assert!(version["version"].starts_with("PostgreSQL "), "{version:?}");
    assert!(families["opsmon_pg_select1_duration_seconds"].value(&[]).unwrap() > 0.0);
    for (_, labels, ok) in &families["opsmon_pg_query_success"].samples {
        assert_eq!(*ok, 1.0, "query {labels:?}");
    }
}

#[test]
fn tables_are_found_by_name_in_any_schema_or_by_schema_and_name() {
    let pg = seeded_server(&[]);
    pg.psql(
        "smartalk_db",
        "CREATE SCHEMA ops; CREATE TABLE ops.events (id int); CREATE TABLE public.events (id int);
         CREATE SCHEMA archive; CREATE TABLE archive.analytics_events (id int);
         CREATE TABLE \"dotted.name\" (id int);",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("opsmon.yml");
    std::fs::write(
        &config,
        format!(
            "collectors:\n  postgres:\n    targets:\n      - name: smartalk\n        dsn: {}\n        password_env: OPSMON_TEST_PG_PASSWORD\n        \
             tables: [analytics_events, ops.events, dotted.name, missing.table]\n",
            pg.url_without_password("smartalk_db")
        ),
    )
    .unwrap();
    let exporter = start_exporter(config.to_str().unwrap(), &pg, &[]);
    let families = scrape(&exporter, "/metrics");
    let found: BTreeSet<(String, String)> = families["pg_stat_user_tables_n_live_tup"]
        .samples
        .iter()
        .map(|(_, labels, _)| {
            assert_eq!(labels["datname"], "smartalk_db");
            (labels["schemaname"].clone(), labels["relname"].clone())
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("archive", "analytics_events"),
        ("ops", "events"),
        ("public", "analytics_events"),
        ("public", "dotted.name"),
    ]
    .into_iter()
    .map(|(schema, table)| (schema.to_owned(), table.to_owned()))
    .collect();
    assert_eq!(
        found, expected,
        "a plain name in every schema, schema.name only there (or a relation of that name); public.events is not asked for"
    );
    assert_eq!(families["opsmon_pg_query_success"].value(&[("query", "tables")]), Some(1.0));
}

#[test]
fn stopped_server_means_pg_up_0_in_budget_and_recovers_without_restart() {
    let pg = seeded_server(&[]);
    let dir = tempfile::tempdir().unwrap();
    let exporter = start_exporter(&config_file(&dir, &pg, ""), &pg, &[]);
    assert_eq!(scrape(&exporter, "/metrics")["pg_up"].value(&[]), Some(1.0));

    pg.stop();
    let started = Instant::now();
    let response =
        get_with(&exporter.url("/metrics"), &[("X-Prometheus-Scrape-Timeout-Seconds", "3")]).unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "answered within the scrape budget");
    let families = parse_exposition(&response.text());
    assert_eq!(families["pg_up"].value(&[]), Some(0.0));
    assert_eq!(families["opsmon_exporter_collector_success"].value(&[("collector", "postgres")]), Some(0.0));
    assert_eq!(families["opsmon_exporter_collector_success"].value(&[("collector", "host")]), Some(1.0));
    assert!(families.contains_key("node_load1"), "other collectors are intact");
    assert!(!families.contains_key("pg_settings_max_connections"), "no stale values while down");
    assert_logs_the_real_connection_error(&exporter);

    pg.start_again();
    let families = scrape(&exporter, "/metrics");
    assert_eq!(families["pg_up"].value(&[]), Some(1.0), "{}", exporter.log());
    assert!(exporter.log().contains("postgres is unreachable"), "{}", exporter.log());
}

/// Issue 10: sqlx retries a refused connection until its pool times out;
/// the log must say why the server is unreachable, not "pool timed out".
fn assert_logs_the_real_connection_error(exporter: &Process) {
    let log = exporter.log();
    let line = log.lines().find(|l| l.contains("postgres is unreachable")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.to_lowercase().contains("connection refused"), "{line}");
    assert!(!line.contains("pool timed out"), "{line}");
}

#[test]
fn a_server_that_never_answered_is_reported_with_its_connection_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opsmon.yml");
    std::fs::write(
        &path,
        format!(
            "collectors:\n  postgres:\n    targets:\n      - name: gone\n        dsn: postgresql://opsmon@127.0.0.1:{}/postgres?sslmode=disable\n",
            free_port()
        ),
    )
    .unwrap();
    let exporter = Process::exporter(&["--config.file", path.to_str().unwrap()]);
    let started = Instant::now();
    let response =
        get_with(&exporter.url("/metrics"), &[("X-Prometheus-Scrape-Timeout-Seconds", "3")]).unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "answered within the scrape budget");
    assert_eq!(parse_exposition(&response.text())["pg_up"].value(&[]), Some(0.0));
    assert_logs_the_real_connection_error(&exporter);
}

/// The series of the PostgreSQL areas (not their values): what one scrape
/// reads, whichever way its statements went.
fn area_series(families: &BTreeMap<String, FamilyInfo>) -> BTreeSet<(String, Vec<(String, String)>)> {
    families
        .iter()
        .filter(|(name, _)| name.starts_with("pg_") && !name.starts_with("pg_stat_user_tables"))
        .flat_map(|(_, family)| {
            family
                .samples
                .iter()
                .map(|(name, labels, _)| (name.clone(), labels.clone().into_iter().collect()))
        })
        .collect()
}

#[test]
fn a_blocked_query_fails_only_its_own_sub_collector() {
    let pg = seeded_server(&[]);
    let dir = tempfile::tempdir().unwrap();
    let exporter = start_exporter(&config_file(&dir, &pg, "        lock_timeout: 300ms\n"), &pg, &[]);
    // All areas in their one statement.
    let before = scrape(&exporter, "/metrics");
    let first = &before["opsmon_pg_query_success"];
    assert!(first.samples.iter().all(|(_, _, ok)| *ok == 1.0), "{first:?}");
    let combined = &before["opsmon_pg_query_duration_seconds"];
    assert_eq!(
        combined.value(&[("query", "settings")]),
        combined.value(&[("query", "locks")]),
        "read together, the areas share their statement's time"
    );

    // Hold an ACCESS EXCLUSIVE lock: sizing the table must wait for it and
    // give up after lock_timeout, which fails the combined statement; the
    // areas are then read one by one, and every other one goes through.
    let holder = background_session(
        &pg,
        "BEGIN; LOCK TABLE analytics_events IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(30);",
        "smartalk_db",
        "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND granted \
         AND relation = (SELECT oid FROM pg_class WHERE relname = 'analytics_events')",
    );
    let started = Instant::now();
    let families = scrape(&exporter, "/metrics");
    assert!(started.elapsed() < Duration::from_secs(5), "two lock waits of 300 ms, not more");
    drop(holder);
    // The server does not notice the gone client while it sleeps: end its session.
    pg.psql(
        "smartalk_db",
        "SELECT pg_terminate_backend(pid) FROM pg_locks \
         WHERE mode = 'AccessExclusiveLock' AND relation = 'analytics_events'::regclass",
    );
    let released = Instant::now();
    while pg
        .psql("smartalk_db", "SELECT count(*) FROM pg_locks WHERE relation = 'analytics_events'::regclass")
        != "0"
    {
        assert!(released.elapsed() < Duration::from_secs(10), "the lock holder ended");
        std::thread::sleep(Duration::from_millis(50));
    }

    let success = &families["opsmon_pg_query_success"];
    assert_eq!(success.value(&[("query", "tables")]), Some(0.0), "{success:?}");
    for query in [
        "settings",
        "activity",
        "database",
        "bgwriter",
        "locks",
        "archiver",
        "replication",
        "slots",
        "statements",
    ] {
        assert_eq!(success.value(&[("query", query)]), Some(1.0), "{query}");
    }
    assert_eq!(families["pg_up"].value(&[]), Some(1.0));
    assert_eq!(families["opsmon_exporter_collector_success"].value(&[("collector", "postgres")]), Some(0.0));
    assert!(families.contains_key("pg_database_size_bytes"));
    assert!(!families.contains_key("pg_stat_user_tables_size_bytes"));
    assert_eq!(area_series(&families), area_series(&before), "one by one, the areas read the same series");

    // Lock released: every area succeeds again (still one by one for a while,
    // so that a lasting fault does not cost a failed statement every scrape).
    let after = scrape(&exporter, "/metrics");
    let again = &after["opsmon_pg_query_success"];
    assert!(again.samples.iter().all(|(_, _, ok)| *ok == 1.0), "{again:?}");
    assert!(after.contains_key("pg_stat_user_tables_size_bytes"));
    let one_by_one = &after["opsmon_pg_query_duration_seconds"];
    assert_ne!(
        one_by_one.value(&[("query", "settings")]),
        one_by_one.value(&[("query", "locks")]),
        "read one by one, each area has its own time"
    );
}

#[test]
fn sessions_carry_the_statement_timeout() {
    let pg = seeded_server(&[]);
    let yaml = format!(
        "collectors:\n  postgres:\n    targets:\n      - name: db\n        dsn: {}\n        statement_timeout: 400ms\n",
        pg.url("smartalk_db").replace(&pg.password, "PASSWORD")
    );
    // The inline DSN must not carry a password: the config check refuses it.
    let path = std::path::Path::new("pg.yml");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = opsmon_exporter::settings::Config::parse(path, &yaml).unwrap();
    let refused = runtime.block_on(async { config.build(path) }).expect_err("inline password");
    assert!(refused.to_string().contains("contains a password; move it to password_env"), "{refused}");
    assert!(!refused.to_string().contains("PASSWORD"), "{refused}");

    // Removed when the test ends: a kept file would leave the password in /tmp.
    let password_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(password_file.path(), &pg.password).unwrap();
    let yaml = format!(
        "collectors:\n  postgres:\n    targets:\n      - name: db\n        dsn: {}\n        password_file: {}\n        statement_timeout: 400ms\n",
        pg.url_without_password("smartalk_db"),
        password_file.path().display()
    );
    let config = opsmon_exporter::settings::Config::parse(path, &yaml).unwrap();
    runtime.block_on(async {
        let target = opsmon_exporter::collectors::postgres::PostgresCollector::new(
            0,
            &config.collectors.postgres.targets[0],
            &opsmon_exporter::collectors::postgres::connections::ServerGates::new(
                0.1,
                Duration::from_secs(60),
            ),
        )
        .unwrap();
        let pool = target.business_pool(Duration::from_secs(60));
        let started = Instant::now();
        let error = sqlx::query("SELECT pg_sleep(5)").execute(&pool).await.expect_err("cancelled");
        assert!(error.to_string().contains("statement timeout"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        let lock: (String,) = sqlx::query_as("SHOW lock_timeout").fetch_one(&pool).await.unwrap();
        assert_eq!(lock.0, "1s");
    });
}

#[test]
fn passwords_never_appear_in_logs_metrics_errors_or_config_check() {
    let pg = seeded_server(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, &pg, "");
    let exporter = start_exporter(&config, &pg, &["--log.level=debug"]);
    let metrics = get(&exporter.url("/metrics")).unwrap().text();
    assert!(metrics.contains("pg_up 1"), "{metrics}");

    // Peer convention: the whole DSN, password included, in DATA_SOURCE_NAME.
    let dsn_exporter =
        Process::exporter_with_env(&["--log.level=debug"], &[("DATA_SOURCE_NAME", &pg.url("smartalk_db"))]);
    let dsn_metrics = get(&dsn_exporter.url("/metrics")).unwrap().text();
    assert!(dsn_metrics.contains("pg_up 1"), "DATA_SOURCE_NAME enables the collector: {dsn_metrics}");
    let landing = get(&dsn_exporter.url("/")).unwrap().text();

    // A wrong password: pg_up 0 and a log line naming the target, not the secret.
    let wrong = Process::exporter_with_env(
        &["--config.file", &config, "--log.level=debug"],
        &[("OPSMON_TEST_PG_PASSWORD", "wrong-password-1234")],
    );
    let wrong_metrics = get(&wrong.url("/metrics")).unwrap().text();
    assert!(wrong_metrics.contains("pg_up 0"), "{wrong_metrics}");
    assert!(wrong.log().contains("target_name=smartalk"), "{}", wrong.log());
    assert!(wrong.log().contains("password authentication failed"), "{}", wrong.log());
    assert!(!wrong.log().contains("wrong-password-1234"), "{}", wrong.log());

    let check = Command::new(exporter_bin())
        .args(["--config.check", "--config.file", &config])
        .env("OPSMON_TEST_PG_PASSWORD", &pg.password)
        .output()
        .unwrap();
    let check_text =
        format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
    assert!(check.status.success(), "{check_text}");
    assert!(
        check_text.contains(&format!("postgres target smartalk: server 127.0.0.1:{}", pg.port)),
        "{check_text}"
    );

    let bad_dsn = Command::new(exporter_bin())
        .arg("--config.check")
        .env("DATA_SOURCE_NAME", format!("postgresql://postgres:{}@127.0.0.1:notaport/db", pg.password))
        .output()
        .unwrap();
    let bad_text =
        format!("{}{}", String::from_utf8_lossy(&bad_dsn.stdout), String::from_utf8_lossy(&bad_dsn.stderr));
    assert_eq!(bad_dsn.status.code(), Some(2), "{bad_text}");
    assert!(bad_text.contains("not a valid PostgreSQL URI"), "{bad_text}");

    for (what, text) in [
        ("exporter log", exporter.log()),
        ("metrics", metrics),
        ("DATA_SOURCE_NAME exporter log", dsn_exporter.log()),
        ("DATA_SOURCE_NAME metrics", dsn_metrics),
        ("landing page", landing),
        ("config check", check_text),
        ("bad DSN error", bad_text),
    ] {
        assert!(!text.contains(&pg.password), "the password leaked into the {what}:\n{text}");
    }
    assert!(
        exporter.log().contains("level=debug") || exporter.log().contains("level=info"),
        "logging was on"
    );
}

#[test]
fn probe_serves_one_named_target() {
    let pg = seeded_server(&[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.yml");
    std::fs::write(
        &path,
        format!(
            "collectors:\n  host:\n    enabled: false\n  postgres:\n    targets:\n      - name: main\n        dsn: {0}\n        password_env: OPSMON_TEST_PG_PASSWORD\n      - name: other\n        dsn: {1}\n        password_env: OPSMON_TEST_PG_PASSWORD\n",
            pg.url_without_password("smartalk_db"),
            pg.url_without_password("postgres")
        ),
    )
    .unwrap();
    let exporter = start_exporter(path.to_str().unwrap(), &pg, &[]);
    let probe = scrape(&exporter, "/probe?target=other");
    assert_eq!(probe["pg_up"].value(&[]), Some(1.0));
    assert!(!probe.contains_key("node_load1"));
    let metrics = scrape(&exporter, "/metrics");
    assert!(!metrics.contains_key("pg_up"), "with two targets and no default, /metrics serves neither");

    let unknown = get(&exporter.url("/probe?target=nope")).unwrap();
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.text(), "unknown target \"nope\"; configured targets: main, other\n");
    let credentials = get(&exporter.url("/probe?target=postgresql://u:p@h/db")).unwrap();
    assert_eq!(credentials.status, 400);
    assert!(credentials.text().contains("credentials are never accepted in the URL"));
    assert!(!credentials.text().contains("u:p@h"));
}

#[test]
fn stat_statements_top_n_when_the_extension_exists() {
    let pg = seeded_server(&["shared_preload_libraries=pg_stat_statements"]);
    pg.psql("smartalk_db", "CREATE EXTENSION pg_stat_statements");
    for i in 0..8 {
        pg.psql("smartalk_db", &format!("SELECT count(*) FROM analytics_events WHERE user_id > {i}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let with = start_exporter(
        &config_file(&dir, &pg, "        stat_statements: {enabled: true, limit: 3}\n"),
        &pg,
        &[],
    );
    let families = scrape(&with, "/metrics");
    let mean = &families["opsmon_pg_statement_mean_seconds"];
    assert_eq!(mean.samples.len(), 3, "limited to 3");
    assert!(families["pg_stat_statements_calls_total"].samples.iter().all(|(_, _, v)| *v >= 1.0));

    // Without the extension in the database: logged once, the query still succeeds.
    pg.psql("smartalk_db", "DROP EXTENSION pg_stat_statements");
    let families = scrape(&with, "/metrics");
    let _ = scrape(&with, "/metrics");
    assert!(!families.contains_key("opsmon_pg_statement_mean_seconds"));
    assert_eq!(families["opsmon_pg_query_success"].value(&[("query", "statements")]), Some(1.0));
    assert_eq!(
        with.log().matches("pg_stat_statements extension is not installed").count(),
        1,
        "{}",
        with.log()
    );
}

/// Each new session reads statistics straight from shared memory
/// (`stats_fetch_consistency = none`, PostgreSQL 15+): the first on a server
/// sets it with a statement, later ones ask for it at startup.
#[test]
fn a_new_session_reads_statistics_without_a_per_transaction_copy() {
    use opsmon_exporter::collectors::postgres::SESSION_SQL;
    let pg = seeded_server(&["shared_preload_libraries=pg_stat_statements"]);
    pg.psql("smartalk_db", "CREATE EXTENSION pg_stat_statements");
    let in_a_session = pg.psql("smartalk_db", &format!("{SESSION_SQL}; SHOW stats_fetch_consistency"));
    assert_eq!(in_a_session.lines().last(), Some("none"), "the statement sets it: {in_a_session}");
    let sets = || {
        pg.psql(
            "smartalk_db",
            "SELECT COALESCE(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE 'SET stats_fetch_consistency%'",
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let exporter = start_exporter(&config_file(&dir, &pg, ""), &pg, &[]);
    for _ in 0..3 {
        assert_eq!(scrape(&exporter, "/metrics")["pg_up"].samples[0].2, 1.0);
    }
    assert_eq!(sets(), "2", "once by psql above, once by the exporter's first session, not once per scrape");

    // A new session, now that the server's version is known: the setting
    // comes with the startup packet (which this server accepts), not as a statement.
    let ended = pg.psql(
        "postgres",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'opsmon-exporter'",
    );
    assert_eq!(ended, "1", "the exporter's one session");
    let families = scrape(&exporter, "/metrics");
    assert_eq!(families["pg_up"].samples[0].2, 1.0);
    assert_eq!(families["opsmon_pg_query_success"].value(&[("query", "database")]), Some(1.0));
    let sessions = pg
        .psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'opsmon-exporter'");
    assert_eq!(sessions, "1", "a new session replaced the ended one");
    assert_eq!(sets(), "2", "the new session did not need the statement");

    // A connect that fails forgets the version (the server may come back
    // older): the first session after it sets the value with the statement again.
    pg.stop();
    assert_eq!(scrape(&exporter, "/metrics")["pg_up"].samples[0].2, 0.0);
    pg.start_again();
    assert_eq!(scrape(&exporter, "/metrics")["pg_up"].samples[0].2, 1.0);
    assert_eq!(sets(), "3", "the session after the failed connect sent the statement");
}

/// What `scrape_statements` lists — the chain the bench runs through pgbench
/// to measure it with a C client — is what a scrape really sends: each runs
/// as written, and pg_stat_statements counts exactly those, once per scrape.
#[test]
fn a_scrape_sends_exactly_the_listed_statements() {
    let pg = seeded_server(&["shared_preload_libraries=pg_stat_statements"]);
    pg.psql("smartalk_db", "CREATE EXTENSION pg_stat_statements");
    let version: i32 = pg.psql("smartalk_db", "SHOW server_version_num").parse().unwrap();
    let listed = opsmon_exporter::collectors::postgres::scrape_statements(
        version,
        &["analytics_events".to_owned()],
        None,
    );
    for statement in &listed {
        pg.psql("smartalk_db", statement);
    }
    let dir = tempfile::tempdir().unwrap();
    let exporter = start_exporter(&config_file(&dir, &pg, ""), &pg, &[]);
    // The first scrape also learns max_connections and measures database sizes.
    let _ = scrape(&exporter, "/metrics");
    pg.psql("smartalk_db", "SELECT pg_stat_statements_reset()");
    let scrapes = 4;
    for _ in 0..scrapes {
        let families = scrape(&exporter, "/metrics");
        assert_eq!(families["pg_up"].samples[0].2, 1.0);
    }
    let seen = pg.psql(
        "smartalk_db",
        "SELECT string_agg(calls || ' ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 60), E'\\n' ORDER BY query) \
         FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'",
    );
    let calls: Vec<&str> = seen.lines().collect();
    assert_eq!(calls.len(), listed.len(), "statements per scrape:\n{seen}\nlisted:\n{listed:#?}");
    assert!(
        calls.iter().all(|line| line.starts_with(&format!("{scrapes} "))),
        "each once per scrape:\n{seen}"
    );
}

#[test]
fn shared_families_match_postgres_exporter() {
    let peer_bin = require_tool("prometheus-postgres-exporter", "prometheus-postgres-exporter");
    let pg = seeded_server(&[]);
    let port = free_port();
    let peer = Process::start_with_env(
        &peer_bin,
        &[format!("--web.listen-address=127.0.0.1:{port}")],
        &[("DATA_SOURCE_NAME", &pg.url("smartalk_db"))],
        port,
        "/metrics",
    );
    let dir = tempfile::tempdir().unwrap();
    let ours = start_exporter(&config_file(&dir, &pg, ""), &pg, &[]);
    let theirs = scrape(&peer, "/metrics");
    let mine = scrape(&ours, "/metrics");
    assert_eq!(theirs["pg_up"].value(&[]), Some(1.0), "the peer reached the server");

    let shared: Vec<&String> = mine.keys().filter(|name| theirs.contains_key(*name)).collect();
    for required in [
        "pg_up",
        "pg_static",
        "pg_settings_max_connections",
        "pg_stat_activity_count",
        "pg_stat_activity_max_tx_duration",
        "pg_database_size_bytes",
        "pg_stat_database_xact_commit",
        "pg_stat_database_blks_hit",
        "pg_stat_database_deadlocks",
        "pg_stat_database_temp_bytes",
        "pg_locks_count",
        "pg_stat_archiver_archived_count",
        "pg_stat_archiver_failed_count",
        "pg_stat_archiver_last_archive_age",
        "pg_stat_database_tup_fetched",
        "pg_stat_database_conflicts",
        "pg_stat_bgwriter_checkpoints_timed_total",
        "pg_stat_bgwriter_buffers_alloc_total",
        "pg_settings_superuser_reserved_connections",
        "pg_settings_shared_buffers_bytes",
        "pg_settings_autovacuum",
        "pg_exporter_last_scrape_error",
    ] {
        assert!(shared.iter().any(|s| *s == required), "{required} is not shared");
    }
    for name in shared {
        assert_eq!(mine[name].metric_type, theirs[name].metric_type, "{name}: type");
        assert_eq!(mine[name].label_names, theirs[name].label_names, "{name}: label names");
    }
    for (name, family) in &mine {
        if name.starts_with("pg_settings_") {
            let peer = theirs.get(name).unwrap_or_else(|| panic!("{name} is not emitted by the peer"));
            assert_eq!(family.value(&[]), peer.value(&[]), "{name}: the same parameter, the same value");
        }
    }
    assert_eq!(mine["pg_exporter_last_scrape_error"].value(&[]), Some(0.0));
    let size = |f: &BTreeMap<String, FamilyInfo>| {
        f["pg_database_size_bytes"].value(&[("datname", "smartalk_db")]).unwrap()
    };
    assert!(
        (size(&mine) - size(&theirs)).abs() / size(&theirs) < 0.01,
        "{} vs {}",
        size(&mine),
        size(&theirs)
    );
}

#[test]
fn the_shipped_monitoring_role_is_enough() {
    let pg = seeded_server(&["shared_preload_libraries=pg_stat_statements"]);
    pg.psql("smartalk_db", "CREATE EXTENSION pg_stat_statements");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/sql/monitoring-role.sql");
    let copy = tempfile::NamedTempFile::new().unwrap();
    std::fs::copy(&script, copy.path()).unwrap();
    std::fs::set_permissions(copy.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let password = "monitor-pw-5678";
    pg.psql_file("postgres", copy.path(), &[("password", password)]);
    pg.psql_file("postgres", copy.path(), &[("password", password)]); // idempotent

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opsmon.yml");
    std::fs::write(
        &path,
        format!(
            "collectors:\n  postgres:\n    targets:\n      - name: smartalk\n        dsn: postgresql://opsmon@127.0.0.1:{}/smartalk_db?sslmode=disable\n        password_env: OPSMON_TEST_MONITOR_PASSWORD\n        tables: [analytics_events]\n        stat_statements: {{enabled: true}}\n",
            pg.port
        ),
    )
    .unwrap();
    let exporter = Process::exporter_with_env(
        &["--config.file", path.to_str().unwrap()],
        &[("OPSMON_TEST_MONITOR_PASSWORD", password)],
    );
    let families = scrape(&exporter, "/metrics");
    assert_eq!(families["pg_up"].value(&[]), Some(1.0), "{}", exporter.log());
    for (_, labels, ok) in &families["opsmon_pg_query_success"].samples {
        assert_eq!(*ok, 1.0, "query {labels:?} as the pg_monitor role: {}", exporter.log());
    }
    assert!(families.contains_key("pg_stat_user_tables_size_bytes"));
    assert!(families.contains_key("opsmon_pg_statement_mean_seconds"));
    assert_eq!(pg.psql("postgres", "SELECT rolsuper FROM pg_roles WHERE rolname = 'opsmon'"), "f");
}

#[test]
fn tls_required_against_a_plain_server_is_named_and_bounded() {
    let pg = seeded_server(&[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tls.yml");
    std::fs::write(
        &path,
        format!(
            "collectors:\n  postgres:\n    targets:\n      - name: needs_tls\n        dsn: postgresql://postgres@127.0.0.1:{}/smartalk_db?sslmode=require\n        password_env: OPSMON_TEST_PG_PASSWORD\n",
            pg.port
        ),
    )
    .unwrap();
    let exporter = start_exporter(path.to_str().unwrap(), &pg, &[]);
    let started = Instant::now();
    let families = scrape(&exporter, "/metrics");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(families["pg_up"].value(&[]), Some(0.0));
    let log = exporter.log();
    assert!(log.contains("target_name=needs_tls") && log.contains("postgres is unreachable"), "{log}");
    assert!(log.to_lowercase().contains("tls") || log.to_lowercase().contains("ssl"), "{log}");
    assert!(!log.contains(&pg.password), "{log}");
}

#[test]
fn database_sizes_are_measured_at_most_once_per_interval() {
    let pg = seeded_server(&[]);
    let dir = tempfile::tempdir().unwrap();
    let cached = start_exporter(&config_file(&dir, &pg, ""), &pg, &[]);
    let dir_live = tempfile::tempdir().unwrap();
    let live = start_exporter(&config_file(&dir_live, &pg, "        database_size_interval: 0s\n"), &pg, &[]);
    let size = |exporter: &Process| {
        scrape(exporter, "/metrics")["pg_database_size_bytes"].value(&[("datname", "smartalk_db")]).unwrap()
    };
    let (cached_before, live_before) = (size(&cached), size(&live));
    pg.psql(
        "smartalk_db",
        "CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 50000) g",
    );
    assert_eq!(size(&cached), cached_before, "the default 60s interval serves the measured size");
    assert!(size(&live) > live_before + 5_000_000.0, "0s measures on every scrape");
}
