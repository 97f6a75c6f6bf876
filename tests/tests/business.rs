//! The business collector against a real PostgreSQL with the SmarTalk schema
//! and generated demo data: the shipped default queries' values against an
//! independent computation, index use, one run per interval whatever the
//! scrape rate, statement timeouts, series caps and start-up SQL checks.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use opsmon_e2e::servers::PgServer;
use opsmon_e2e::{FamilyInfo, Process, exporter_bin, get, parse_exposition, promtool_problems};

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

/// The `business:` section of the shipped example config, verbatim.
fn shipped_business_section() -> String {
    let text = std::fs::read_to_string(repo("deploy/opsmon.yml")).unwrap();
    let start = text.find("\n  business:\n").expect("deploy/opsmon.yml has a business section") + 1;
    let mut lines = text[start..].lines();
    let mut section = vec![lines.next().unwrap()];
    for line in lines {
        let indent = line.len() - line.trim_start().len();
        if !line.trim().is_empty() && indent <= 2 {
            break;
        }
        section.push(line);
    }
    section.join("\n") + "\n"
}

fn readable_copy(path: &Path) -> tempfile::NamedTempFile {
    let copy = tempfile::NamedTempFile::new().unwrap();
    std::fs::copy(path, copy.path()).unwrap();
    std::fs::set_permissions(copy.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    copy
}

/// smartalk_db with the schema, demo data for `users` users, and no event
/// within a minute of any window's edge, so that windows cannot gain or lose
/// events while the test runs and the expected figures stay exact.
fn demo_server(users: u32, settings: &[&str]) -> PgServer {
    let pg = PgServer::start(settings);
    pg.psql("postgres", "CREATE DATABASE smartalk_db");
    pg.psql_file("smartalk_db", readable_copy(&repo("deploy/sql/schema.sql")).path(), &[]);
    pg.psql_file(
        "smartalk_db",
        readable_copy(&repo("deploy/sql/demo-data.sql")).path(),
        &[("users", &users.to_string())],
    );
    pg.psql(
        "smartalk_db",
        "DELETE FROM analytics_events e USING (VALUES (interval '5 minutes'), (interval '1 hour'), \
         (interval '24 hours'), (interval '7 days')) AS w(span) \
         WHERE e.\"timestamp\" BETWEEN now() - w.span - interval '1 minute' AND now() - w.span + interval '2 minutes'",
    );
    pg.psql("smartalk_db", "VACUUM ANALYZE analytics_events");
    pg
}

fn config_with(dir: &tempfile::TempDir, pg: &PgServer, business: &str) -> String {
    let path = dir.path().join("opsmon.yml");
    std::fs::write(
        &path,
        format!(
            "collectors:\n  host:\n    enabled: false\n  postgres:\n    targets:\n      - name: smartalk\n        dsn: {}\n        password_env: OPSMON_TEST_PG_PASSWORD\n{business}",
            pg.url_without_password("smartalk_db")
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

fn exporter(config: &str, pg: &PgServer) -> Process {
    Process::exporter_with_env(&["--config.file", config], &[("OPSMON_TEST_PG_PASSWORD", &pg.password)])
}

/// One event as the test reads it back.
struct Event {
    user: i64,
    kind: String,
    age_seconds: f64,
    rating: Option<i64>,
}

fn events(pg: &PgServer) -> Vec<Event> {
    let rows = pg.psql(
        "smartalk_db",
        "SELECT user_id, event_type, extract(epoch FROM now() - \"timestamp\"), coalesce(properties ->> 'rating', '') \
         FROM analytics_events",
    );
    rows.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('|').collect();
            Event {
                user: fields[0].parse().unwrap(),
                kind: fields[1].to_owned(),
                age_seconds: fields[2].parse().unwrap(),
                rating: fields[3].parse().ok(),
            }
        })
        .collect()
}

fn distinct_users<'a>(events: impl Iterator<Item = &'a Event>) -> f64 {
    events.map(|e| e.user).collect::<HashSet<_>>().len() as f64
}

#[test]
fn default_queries_equal_an_independent_computation() {
    let pg = demo_server(3000, &[]);
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(&dir, &pg, &shipped_business_section());
    let exporter = exporter(&config, &pg);
    let text = get(&exporter.url("/metrics")).unwrap().text();
    let problems = promtool_problems(&text);
    assert!(problems.is_empty(), "{problems:?}");
    let families = parse_exposition(&text);
    let all = events(&pg);

    let windows = [("5m", 300.0), ("1h", 3600.0), ("24h", 86_400.0), ("7d", 604_800.0)];
    let span = |label: &str| windows.iter().find(|(l, _)| *l == label).unwrap().1;
    let within = |label: &'static str| {
        let span = span(label);
        all.iter().filter(move |e| e.age_seconds < span)
    };
    let value = |family: &str, labels: &[(&str, &str)]| -> f64 {
        families
            .get(family)
            .unwrap_or_else(|| panic!("{family} missing:\n{text}"))
            .value(labels)
            .unwrap_or_else(|| panic!("{family}{labels:?} missing"))
    };

    for window in ["5m", "1h", "24h"] {
        let expected = distinct_users(within(window));
        assert!(expected > 0.0, "demo data has activity in {window}");
        assert_eq!(value("smartalk_active_users", &[("window", window)]), expected, "active users {window}");
    }
    for window in ["1h", "24h"] {
        let signups = distinct_users(within(window).filter(|e| e.kind == "signup"));
        let activations = distinct_users(within(window).filter(|e| e.kind == "activation"));
        assert_eq!(value("smartalk_signups", &[("window", window)]), signups, "signups {window}");
        assert_eq!(value("smartalk_activations", &[("window", window)]), activations, "activations {window}");
        if signups > 0.0 {
            let ratio = value("smartalk_activation_ratio", &[("window", window)]);
            assert!((ratio - activations / signups).abs() < 1e-12, "ratio {window}");
        }
        let feedback: Vec<&Event> = within(window).filter(|e| e.kind == "feedback").collect();
        assert_eq!(
            value("smartalk_feedback", &[("window", window)]),
            feedback.len() as f64,
            "feedback {window}"
        );
        if !feedback.is_empty() {
            let negative = feedback.iter().filter(|e| e.rating.unwrap() <= 2).count() as f64;
            let ratio = value("smartalk_feedback_negative_ratio", &[("window", window)]);
            assert!((ratio - negative / feedback.len() as f64).abs() < 1e-12, "negative ratio {window}");
        }
    }
    for window in ["24h", "7d"] {
        for stage in ["signup", "activation", "lesson_started", "lesson_completed", "purchase"] {
            let expected = distinct_users(within(window).filter(|e| e.kind == stage));
            assert_eq!(
                value("smartalk_funnel_users", &[("stage", stage), ("window", window)]),
                expected,
                "funnel {stage} {window}"
            );
        }
    }
    let mut per_user: BTreeMap<i64, usize> = BTreeMap::new();
    for event in within("1h") {
        *per_user.entry(event.user).or_default() += 1;
    }
    let mut ranked: Vec<(i64, usize)> = per_user.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let busiest = &families["smartalk_busiest_user_events_per_second"];
    assert_eq!(busiest.samples.len(), 5);
    for (rank, (user, count)) in ranked.iter().take(5).enumerate() {
        let rank = (rank + 1).to_string();
        let user = user.to_string();
        assert_eq!(
            busiest.value(&[("rank", &rank), ("user_id", &user)]),
            Some(*count as f64 / 3600.0),
            "rank {rank}"
        );
    }
    for (_, labels, ok) in &families["opsmon_business_query_success"].samples {
        assert_eq!(*ok, 1.0, "{labels:?}");
    }
    let help = text.lines().find(|l| l.starts_with("# HELP smartalk_funnel_users ")).unwrap();
    assert!(help.contains("refreshed at most every 5m; the value may be up to that old"), "{help}");
}

#[test]
fn default_queries_use_the_indexes_at_100k_rows() {
    let pg = demo_server(16_000, &[]);
    let rows: f64 = pg.psql("smartalk_db", "SELECT count(*) FROM analytics_events").parse().unwrap();
    assert!(rows >= 100_000.0, "only {rows} rows");
    let section = shipped_business_section();
    #[derive(serde::Deserialize)]
    struct Wrapper {
        business: opsmon_catalog::business::BusinessConfig,
    }
    let unindented: String =
        section.lines().map(|l| l.strip_prefix("  ").unwrap_or(l)).collect::<Vec<_>>().join("\n");
    let business = serde_saphyr::from_str::<Wrapper>(&unindented).unwrap().business;
    assert_eq!(business.queries.len(), 5);
    for query in &business.queries {
        let plan = pg.psql("smartalk_db", &format!("EXPLAIN {}", query.sql.value));
        assert!(
            !plan.contains("Seq Scan on analytics_events"),
            "query {} scans the table:\n{plan}",
            query.name.value
        );
        assert!(plan.contains("analytics_events_"), "query {} uses an index:\n{plan}", query.name.value);
    }
}

fn runs(families: &BTreeMap<String, FamilyInfo>, query: &str) -> f64 {
    families["opsmon_business_query_runs_total"].value(&[("query", query)]).unwrap()
}

#[test]
fn twenty_scrapes_in_one_interval_run_each_query_once() {
    let pg = demo_server(500, &["shared_preload_libraries=pg_stat_statements"]);
    pg.psql("smartalk_db", "CREATE EXTENSION pg_stat_statements; SELECT pg_stat_statements_reset()");
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(&dir, &pg, &shipped_business_section());
    let exporter = exporter(&config, &pg);
    // Concurrent scrapes too: they must share the run in flight.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = exporter.url("/metrics");
            std::thread::spawn(move || get(&url).unwrap().text())
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let mut last = BTreeMap::new();
    for _ in 0..16 {
        last = parse_exposition(&get(&exporter.url("/metrics")).unwrap().text());
    }
    for query in ["active_users", "activation", "funnel", "feedback", "busiest_users"] {
        assert_eq!(runs(&last, query), 1.0, "{query} ran once");
    }
    let calls: f64 = pg
        .psql(
            "smartalk_db",
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE '%FROM analytics_events%' AND query NOT LIKE '%pg_stat_statements%'",
        )
        .parse()
        .unwrap();
    // Five default queries read analytics_events: one execution each.
    assert_eq!(calls, 5.0, "pg_stat_statements counts one execution per query");
}

#[test]
fn slow_query_fails_alone_and_caps_drop_series() {
    let pg = demo_server(200, &[]);
    let dir = tempfile::tempdir().unwrap();
    let business = "  business:\n    target: smartalk\n    queries:\n      - name: slow\n        timeout: 300ms\n        sql: SELECT pg_sleep(3), 1::float8 AS v\n        metrics:\n          - {name: smartalk_slow, help: Never arrives, column: v}\n      - name: many\n        max_series: 3\n        labels: [n]\n        sql: SELECT g::text AS n, g::float8 AS v FROM generate_series(1, 10) g\n        metrics:\n          - {name: smartalk_many, help: Ten rows, column: v}\n";
    let config = config_with(&dir, &pg, business);
    let exporter = exporter(&config, &pg);
    let families = parse_exposition(&get(&exporter.url("/metrics")).unwrap().text());
    assert_eq!(families["opsmon_business_query_success"].value(&[("query", "slow")]), Some(0.0));
    assert_eq!(families["opsmon_business_query_success"].value(&[("query", "many")]), Some(1.0));
    assert!(!families.contains_key("smartalk_slow"));
    assert_eq!(families["smartalk_many"].samples.len(), 3);
    assert_eq!(families["opsmon_business_query_series_dropped"].value(&[("query", "many")]), Some(7.0));
    assert_eq!(families["pg_up"].value(&[]), Some(1.0));
    assert!(exporter.log().contains("canceling statement due to statement timeout"), "{}", exporter.log());
}

#[test]
fn each_family_gets_its_rows_values_and_duplicate_label_sets_fail_the_run() {
    let pg = demo_server(10, &[]);
    let dir = tempfile::tempdir().unwrap();
    let business = "  business:\n    target: smartalk\n    queries:\n      - name: pairs\n        labels: [k]\n        \
        sql: \"SELECT * FROM (VALUES ('a', 1::float8, NULL::float8), ('b', 2, 20), ('c', NULL, 30)) AS t(k, first, second)\"\n        \
        metrics:\n          - {name: smartalk_first, help: First column, column: first}\n          \
        - {name: smartalk_second, help: Second column, column: second}\n      - name: dupes\n        labels: [k]\n        \
        sql: \"SELECT * FROM (VALUES ('a', 1::float8), ('a', 2), ('b', 3)) AS t(k, v)\"\n        \
        metrics:\n          - {name: smartalk_dupes, help: Two rows share a label set, column: v}\n";
    let config = config_with(&dir, &pg, business);
    let exporter = exporter(&config, &pg);
    let families = parse_exposition(&get(&exporter.url("/metrics")).unwrap().text());
    let samples = |name: &str| -> Vec<(String, f64)> {
        let mut found: Vec<(String, f64)> = families[name]
            .samples
            .iter()
            .map(|(_, labels, value)| (labels.get("k").cloned().unwrap_or_default(), *value))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    };
    // A NULL is no sample for that family; the row's other values stand.
    assert_eq!(samples("smartalk_first"), vec![("a".to_owned(), 1.0), ("b".to_owned(), 2.0)]);
    assert_eq!(samples("smartalk_second"), vec![("b".to_owned(), 20.0), ("c".to_owned(), 30.0)]);
    assert_eq!(families["opsmon_business_query_success"].value(&[("query", "pairs")]), Some(1.0));
    // Two rows with one label set would be two samples of one series.
    assert_eq!(families["opsmon_business_query_success"].value(&[("query", "dupes")]), Some(0.0));
    assert!(!families.contains_key("smartalk_dupes"));
    assert!(exporter.log().contains(r#"two rows have the same labels [\"a\"]"#), "{}", exporter.log());
}

#[test]
fn bad_sql_and_names_stop_the_start_with_file_and_line() {
    let pg = demo_server(10, &[]);
    let dir = tempfile::tempdir().unwrap();
    let business = "  business:\n    target: smartalk\n    queries:\n      - name: broken\n        sql: SELECT nope::float8 AS v FROM analytics_events\n        metrics:\n          - {name: smartalk_broken, help: Broken, column: v}\n";
    let config = config_with(&dir, &pg, business);
    let output = std::process::Command::new(exporter_bin())
        .args(["--config.file", &config, "--web.listen-address=127.0.0.1:0"])
        .env("OPSMON_TEST_PG_PASSWORD", &pg.password)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{config}:13:14: collectors.business query \"broken\": the SQL does not prepare: column \"nope\" does not exist")),
        "{stderr}"
    );

    let bad_name = business.replace("smartalk_broken", "broken-metric");
    let config = config_with(&dir, &pg, &bad_name);
    let output = std::process::Command::new(exporter_bin())
        .args(["--config.check", "--config.file", &config])
        .env("OPSMON_TEST_PG_PASSWORD", &pg.password)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "collectors.business.queries[0].metrics[0].name: \"broken-metric\" is not a valid metric name"
        ),
        "{stderr}"
    );
}

/// Issue 14: a business query that turns slow (here: blocked behind an
/// ACCESS EXCLUSIVE lock, as behind a long migration) fails alone within its
/// timeout and says so in its own metrics. Two of them hold both business
/// connections, yet the PostgreSQL collector, on its own connection, is not
/// delayed, and a query reading no table is still served.
#[test]
fn blocked_business_queries_fail_alone_and_never_delay_the_postgres_collector() {
    let pg = demo_server(200, &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut business = String::from("  business:\n    target: smartalk\n    queries:\n");
    for name in ["blocked_a", "blocked_b"] {
        business.push_str(&format!(
            "      - name: {name}\n        timeout: 1s\n        sql: SELECT count(*)::float8 AS v FROM analytics_events\n        metrics:\n          - {{name: smartalk_{name}, help: Blocked, column: v}}\n"
        ));
    }
    business.push_str(
        "      - name: free\n        sql: SELECT 1::float8 AS v\n        metrics:\n          - {name: smartalk_free, help: Reads no table, column: v}\n",
    );
    let config = config_with(&dir, &pg, &business);
    let exporter = exporter(&config, &pg);

    let mut holder = std::process::Command::new("runuser")
        .args(["-u", "postgres", "--", "psql", "-X", "-h", "127.0.0.1", "-p", &pg.port.to_string()])
        .args(["-U", "postgres", "-d", "smartalk_db", "-c"])
        .arg("BEGIN; LOCK TABLE analytics_events IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60);")
        .env("PGPASSWORD", &pg.password)
        .current_dir("/")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let locked = "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND granted \
                  AND relation = 'analytics_events'::regclass";
    let started = std::time::Instant::now();
    while pg.psql("smartalk_db", locked) != "1" {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "lock not taken");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let started = std::time::Instant::now();
    let text =
        opsmon_e2e::get_with(&exporter.url("/metrics"), &[("X-Prometheus-Scrape-Timeout-Seconds", "8")])
            .unwrap()
            .text();
    let took = started.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    let families = parse_exposition(&text);

    let success = &families["opsmon_business_query_success"];
    let duration = &families["opsmon_business_query_duration_seconds"];
    for name in ["blocked_a", "blocked_b"] {
        assert_eq!(success.value(&[("query", name)]), Some(0.0), "{name}");
        let seconds = duration.value(&[("query", name)]).unwrap();
        assert!((0.9..2.5).contains(&seconds), "{name} gave up after its 1 s timeout, not {seconds} s");
        assert!(!families.contains_key(&format!("smartalk_{name}")), "{name} has no value");
    }
    assert_eq!(success.value(&[("query", "free")]), Some(1.0));
    assert_eq!(families["smartalk_free"].value(&[]), Some(1.0));
    assert!(took < std::time::Duration::from_secs(5), "the scrape took {took:?}");

    assert_eq!(families["pg_up"].value(&[]), Some(1.0));
    for (_, labels, ok) in &families["opsmon_pg_query_success"].samples {
        assert_eq!(*ok, 1.0, "{labels:?}");
    }
    let collector = &families["opsmon_exporter_collector_duration_seconds"];
    let postgres = collector.value(&[("collector", "postgres")]).unwrap();
    let business = collector.value(&[("collector", "business")]).unwrap();
    assert!(business >= 0.9, "business waited for its blocked queries: {business} s");
    assert!(postgres < 0.8, "the postgres collector was delayed: {postgres} s (business {business} s)");
    let log = exporter.log();
    assert!(log.contains("business query failed") && log.contains("blocked_a"), "{log}");
}
