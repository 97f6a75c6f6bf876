//! The whole chain with real servers: Prometheus scrapes the exporter with
//! the shipped scrape settings, evaluates the rules rulegen generated, and
//! sends a firing alert to a real Alertmanager running the generated config.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use opsmon_e2e::servers::{PgServer, RedisServer};
use opsmon_e2e::{Process, free_port, get, parse_exposition, require_tool};

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

/// Polls `url` until `check` accepts its body or `limit` passes.
fn wait_for(url: &str, limit: Duration, check: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let body = get(url).map(|r| r.text()).unwrap_or_default();
        if check(&body) {
            return body;
        }
        assert!(started.elapsed() < limit, "gave up waiting on {url}; last answer:\n{body}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The first sample value of an instant query's answer.
fn query_value(url: &str) -> Option<f64> {
    let body = get(url).ok()?.text();
    let (_, rest) = body.split_once("\"value\":[")?;
    let (_, value) = rest.split_once(",\"")?;
    value.split('"').next()?.parse().ok()
}

#[test]
fn prometheus_scrapes_evaluates_the_generated_rules_and_alertmanager_receives() {
    let alertmanager_bin = require_tool("prometheus-alertmanager", "prometheus-alertmanager");
    let dir = tempfile::tempdir().unwrap();

    // Alertmanager with the generated routing; its receivers are empty, which is
    // valid: the alert is still accepted, grouped and listed. Started first so
    // that the exporter can probe it, blackbox-style.
    let am_port = free_port();
    let am_cluster_port = free_port();
    let alertmanager = Process::start(
        &alertmanager_bin,
        &[
            format!("--config.file={}", repo("deploy/alertmanager/alertmanager.yml").display()),
            format!("--storage.path={}", dir.path().join("am").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            format!("--cluster.listen-address=127.0.0.1:{am_cluster_port}"),
        ],
        am_port,
        "/-/ready",
    );

    // The exporter watches a backend that is not running, so the generated
    // BackendProcessNotRunning alert must go pending and then fire; it also
    // watches a real PostgreSQL and Redis and probes Alertmanager, so that
    // every peer family set goes through Prometheus' ingestion.
    let pg = PgServer::start(&[]);
    let redis = RedisServer::start(None, &[]);
    let config = dir.path().join("opsmon.yml");
    std::fs::write(
        &config,
        format!(
            "collectors:\n  host:\n    process_groups:\n      - name: smartalk-backend\n        cmdline: 'node .*smartalk-no-such-backend-4242'\n\
             \x20 postgres:\n    targets:\n      - name: main\n        dsn: {dsn}\n        password_env: OPSMON_TEST_PG_PASSWORD\n\
             \x20 redis:\n    targets:\n      - name: cache\n        address: {redis}\n\
             \x20 probe:\n    targets:\n      - {{name: alertmanager, url: 'http://127.0.0.1:{am_port}/-/healthy'}}\n",
            dsn = pg.url_without_password("postgres"),
            redis = redis.address(),
        ),
    )
    .unwrap();
    let exporter = Process::exporter_with_env(
        &["--config.file", config.to_str().unwrap()],
        &[("OPSMON_TEST_PG_PASSWORD", &pg.password)],
    );

    // Prometheus: the shipped config with fast intervals and our ports.
    let shipped = std::fs::read_to_string(repo("deploy/prometheus/prometheus.yml")).unwrap();
    let prom_config = shipped
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("scrape_timeout: 10s", "scrape_timeout: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
        .replace("127.0.0.1:19100", &format!("127.0.0.1:{}", exporter.port))
        .replace("127.0.0.1:9093", &format!("127.0.0.1:{am_port}"))
        .replace("  - rules.yml", &format!("  - {}", repo("deploy/prometheus/rules.yml").display()));
    // A copy of the rules whose `for` is short enough for a test: the real
    // durations are checked by promtool's unit tests.
    let rules = std::fs::read_to_string(repo("deploy/prometheus/rules.yml")).unwrap();
    let fast_rules = dir.path().join("rules.yml");
    std::fs::write(&fast_rules, rules.replace("for: 1m", "for: 2s")).unwrap();
    let prom_config = prom_config
        .replace(&repo("deploy/prometheus/rules.yml").display().to_string(), fast_rules.to_str().unwrap());
    let prometheus = Process::prometheus(dir.path(), &prom_config, &[]);
    let prom_port = prometheus.port;
    let api = |path: &str| format!("http://127.0.0.1:{prom_port}/api/v1/{path}");

    // Scraped and healthy, with the exporter's own series ingested.
    wait_for(&api("query?query=up%7Bjob%3D%22opsmon%22%7D"), Duration::from_secs(20), |body| {
        body.contains("\"value\":[") && body.contains("\"1\"]")
    });
    let memory = wait_for(&api("query?query=node_memory_MemTotal_bytes"), Duration::from_secs(10), |body| {
        body.contains("\"job\":\"opsmon\"")
    });
    assert!(memory.contains("\"status\":\"success\""), "{memory}");
    let targets = get(&api("targets")).unwrap().text();
    assert!(targets.contains("\"health\":\"up\"") && targets.contains("\"lastError\":\"\""), "{targets}");

    // What Prometheus stores carries the peers' names: a counter and a gauge
    // of each peer family set, queried by name (blackbox_exporter's probe
    // families are all gauges).
    for name in [
        "node_cpu_seconds_total",
        "node_memory_MemTotal_bytes",
        "pg_stat_database_xact_commit",
        "pg_stat_database_blks_hit",
        "pg_up",
        "redis_commands_processed_total",
        "redis_connected_clients",
        "probe_success",
        "probe_http_status_code",
    ] {
        let body = wait_for(&api(&format!("query?query={name}")), Duration::from_secs(10), |body| {
            body.contains("\"result\":[{")
        });
        assert!(body.contains(&format!("\"__name__\":\"{name}\"")), "{name}: {body}");
    }
    assert!(
        query_value(&api("query?query=pg_up")) == Some(1.0)
            && query_value(&api("query?query=redis_up")) == Some(1.0)
            && query_value(&api("query?query=probe_success")) == Some(1.0),
        "backends reachable:\n{}",
        exporter.log()
    );
    // Every family the exporter emits is stored under exactly its own name:
    // nothing renamed (OpenMetrics would add `_total` to pg_stat_database_xact_commit).
    let emitted = parse_exposition(&get(&exporter.url("/metrics")).unwrap().text());
    let stored = get(&api("label/__name__/values")).unwrap().text();
    let stored: std::collections::BTreeSet<String> = stored
        .split_once("\"data\":[")
        .map(|(_, rest)| rest.trim_end_matches(['}', ']']))
        .unwrap_or_default()
        .split(',')
        .map(|name| name.trim_matches('"').to_owned())
        .collect();
    for (name, family) in emitted.iter().filter(|(_, family)| !family.samples.is_empty()) {
        let expected: Vec<String> = match family.metric_type.as_str() {
            "histogram" => vec![format!("{name}_bucket"), format!("{name}_sum"), format!("{name}_count")],
            _ => vec![name.clone()],
        };
        for series in expected {
            assert!(stored.contains(&series), "{series} is emitted but Prometheus stored no such name");
        }
        if family.metric_type == "counter" && !name.ends_with("_total") {
            assert!(!stored.contains(&format!("{name}_total")), "{name} was stored renamed as {name}_total");
        }
    }
    assert!(!stored.contains("pg_stat_database_xact_commit_total"), "renamed series stored");

    // Every generated rule group loads and evaluates without errors.
    let rules = wait_for(&api("rules"), Duration::from_secs(10), |body| body.contains("opsmon-api"));
    assert!(!rules.contains("\"health\":\"err\""), "rule evaluation errors:\n{rules}");

    // The alert fires in Prometheus and reaches Alertmanager with its labels.
    wait_for(&api("alerts"), Duration::from_secs(30), |body| {
        body.contains("\"alertname\":\"BackendProcessNotRunning\"") && body.contains("\"state\":\"firing\"")
    });
    let received =
        wait_for(&format!("http://127.0.0.1:{am_port}/api/v2/alerts"), Duration::from_secs(30), |body| {
            body.contains("BackendProcessNotRunning")
        });
    assert!(received.contains("\"severity\":\"critical\""), "{received}");
    assert!(received.contains("\"runbook_url\":\"https://github.com/opsmon/opsmon/blob/main/docs/runbooks/BackendProcessNotRunning.md\""), "{received}");
    drop((prometheus, alertmanager, exporter, pg, redis));
}
