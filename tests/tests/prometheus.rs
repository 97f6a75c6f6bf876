//! The whole chain with real servers: Prometheus scrapes the exporter with
//! the shipped scrape settings, evaluates the rules rulegen generated, and
//! sends a firing alert to a real Alertmanager running the generated config.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use opsmon_e2e::{Process, free_port, get, require_tool};

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

#[test]
fn prometheus_scrapes_evaluates_the_generated_rules_and_alertmanager_receives() {
    let prometheus_bin = require_tool("prometheus", "prometheus");
    let alertmanager_bin = require_tool("prometheus-alertmanager", "prometheus-alertmanager");
    let dir = tempfile::tempdir().unwrap();

    // The exporter watches a backend that is not running, so the generated
    // BackendProcessNotRunning alert must go pending and then fire.
    let config = dir.path().join("opsmon.yml");
    std::fs::write(
        &config,
        "collectors:\n  host:\n    process_groups:\n      - name: smartalk-backend\n        cmdline: 'node .*smartalk-no-such-backend-4242'\n",
    )
    .unwrap();
    let exporter = Process::exporter(&["--config.file", config.to_str().unwrap()]);

    // Alertmanager with the generated routing; its receivers are empty, which is
    // valid: the alert is still accepted, grouped and listed.
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
    let prom_path = dir.path().join("prometheus.yml");
    std::fs::write(&prom_path, prom_config).unwrap();
    let prom_port = free_port();
    let prometheus = Process::start(
        &prometheus_bin,
        &[
            format!("--config.file={}", prom_path.display()),
            format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        prom_port,
        "/-/ready",
    );
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
    drop((prometheus, alertmanager, exporter));
}
