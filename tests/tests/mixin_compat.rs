//! The peers' mixins and dashboards work unchanged on opsmon: one real
//! Prometheus scrapes opsmon-exporter and the three peer exporters
//! (node_exporter, postgres_exporter, redis_exporter) on this machine, watching
//! the same PostgreSQL and Redis, and every family of the compatibility table
//! (`opsmon_e2e::compat`) must be stored for opsmon under the same name, with
//! the same type and label names as for the peer — unless the table says why
//! this host cannot have it. A few values are compared too, within a tolerance
//! for counters that move between the two scrapes.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use opsmon_e2e::compat::{MIXIN_FAMILIES, MixinFamily, Peer, Presence};
use opsmon_e2e::servers::{PgServer, RedisServer};
use opsmon_e2e::{Process, free_port, get, require_tool};

const OPSMON: &str = "opsmon";

fn peer_job(peer: Peer) -> &'static str {
    match peer {
        Peer::Node => "node",
        Peer::Postgres => "postgres",
        Peer::Redis => "redis",
    }
}

/// The exporters and the Prometheus scraping them; dropped together.
struct Setup {
    prometheus: Process,
    _exporters: Vec<Process>,
    _pg: PgServer,
    _redis: RedisServer,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn api(&self, path_and_query: &str) -> serde_json::Value {
        let body = get(&self.prometheus.url(&format!("/api/v1/{path_and_query}"))).unwrap().text();
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["status"], "success", "{path_and_query}: {body}");
        value["data"].clone()
    }

    /// The label sets Prometheus stored under `name` for `job`.
    fn series(&self, job: &str, name: &str) -> Vec<BTreeMap<String, String>> {
        let selector = encode(&format!("{{__name__=\"{name}\",job=\"{job}\"}}"));
        let data = self.api(&format!("series?match[]={selector}"));
        data.as_array()
            .unwrap()
            .iter()
            .map(|series| {
                series
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .collect()
    }

    /// The type the target of `job` declared for the family of `name`
    /// (`unknown` for untyped). OpenMetrics declares counters without
    /// `_total`, so that name is asked too.
    fn metric_type(&self, job: &str, name: &str) -> Option<String> {
        let target = encode(&format!("{{job=\"{job}\"}}"));
        for family in [Some(name), name.strip_suffix("_total")].into_iter().flatten() {
            let data = self.api(&format!("targets/metadata?match_target={target}&metric={family}"));
            if let Some(entry) = data.as_array().and_then(|a| a.first()) {
                return entry["type"].as_str().map(str::to_owned);
            }
        }
        None
    }

    /// `sum(expr{job=…})` now.
    fn sum(&self, job: &str, name: &str, matchers: &str) -> Option<f64> {
        let query = encode(&format!("sum({name}{{job=\"{job}\"{matchers}}})"));
        let data = self.api(&format!("query?query={query}"));
        let value = data["result"].as_array()?.first()?["value"][1].as_str()?.to_owned();
        value.parse().ok()
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn start() -> Setup {
    let dir = tempfile::tempdir().unwrap();

    // A logical slot, so its `database` label is not empty (Prometheus drops empty labels).
    let pg = PgServer::start(&["wal_level=logical"]);
    pg.psql(
        "postgres",
        "CREATE TABLE mixin_events (id int); INSERT INTO mixin_events SELECT generate_series(1, 1000)",
    );
    pg.psql("postgres", "SELECT pg_create_logical_replication_slot('opsmon_compat_slot', 'test_decoding')");
    let redis = RedisServer::start(None, &[]);
    for i in 0..7 {
        redis.cli(&["SET", &format!("k{i}"), "v"]).unwrap();
    }
    redis.cli(&["SET", "session", "v", "EX", "3600"]).unwrap();

    let mut exporters = Vec::new();
    let node_port = free_port();
    exporters.push(Process::start(
        &require_tool("prometheus-node-exporter", "prometheus-node-exporter"),
        &[
            format!("--web.listen-address=127.0.0.1:{node_port}"),
            format!(
                "--collector.filesystem.mount-points-exclude={}",
                opsmon_exporter::collectors::host::DEFAULT_MOUNT_POINTS_EXCLUDE
            ),
        ],
        node_port,
        "/metrics",
    ));
    let pg_port = free_port();
    exporters.push(Process::start_with_env(
        &require_tool("prometheus-postgres-exporter", "prometheus-postgres-exporter"),
        &[format!("--web.listen-address=127.0.0.1:{pg_port}")],
        &[("DATA_SOURCE_NAME", &pg.url("postgres"))],
        pg_port,
        "/metrics",
    ));
    let redis_port = free_port();
    exporters.push(Process::start(
        &require_tool("prometheus-redis-exporter", "prometheus-redis-exporter"),
        &[
            "-redis.addr".into(),
            redis.address(),
            "-web.listen-address".into(),
            format!("127.0.0.1:{redis_port}"),
            // redis_total_system_memory_bytes, which the redis-mixin's memory alert reads.
            "-include-system-metrics".into(),
        ],
        redis_port,
        "/metrics",
    ));
    let config = dir.path().join("opsmon.yml");
    std::fs::write(
        &config,
        format!(
            "collectors:\n  postgres:\n    targets:\n      - name: db\n        dsn: {}\n        password_env: OPSMON_TEST_PG_PASSWORD\n        tables: [mixin_events]\n  redis:\n    targets:\n      - name: cache\n        address: {}\n",
            pg.url_without_password("postgres"),
            redis.address()
        ),
    )
    .unwrap();
    let ours = Process::exporter_with_env(
        &["--config.file", config.to_str().unwrap()],
        &[("OPSMON_TEST_PG_PASSWORD", &pg.password)],
    );
    let jobs = [("node", node_port), ("postgres", pg_port), ("redis", redis_port), (OPSMON, ours.port)];
    exporters.push(ours);

    let mut prom_config =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for (job, port) in jobs {
        prom_config.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ));
    }
    let prom_path = dir.path().join("prometheus.yml");
    std::fs::write(&prom_path, prom_config).unwrap();
    let prom_port = free_port();
    let prometheus = Process::start(
        &require_tool("prometheus", "prometheus"),
        &[
            format!("--config.file={}", prom_path.display()),
            format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        prom_port,
        "/-/ready",
    );
    let setup = Setup { prometheus, _exporters: exporters, _pg: pg, _redis: redis, _dir: dir };

    // Every target up for a few scrapes.
    let started = Instant::now();
    loop {
        let healthy = ["node", "postgres", "redis", OPSMON]
            .iter()
            .all(|job| setup.sum(job, "up", "").is_some_and(|v| v == 1.0));
        if healthy {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "targets not up: {:?}", setup.api("targets"));
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_secs(3));
    setup
}

fn label_names(series: &[BTreeMap<String, String>]) -> BTreeSet<String> {
    series
        .iter()
        .flat_map(|labels| labels.keys())
        .filter(|name| !["__name__", "job", "instance"].contains(&name.as_str()))
        .cloned()
        .collect()
}

fn table_labels(family: &MixinFamily) -> BTreeSet<String> {
    family.labels.iter().map(|l| (*l).to_owned()).collect()
}

/// What is wrong with one table row on this machine, if anything.
fn check(setup: &Setup, family: &MixinFamily) -> Option<String> {
    let name = family.name;
    let peer_job = peer_job(family.peer);
    let theirs = setup.series(peer_job, name);
    let ours = setup.series(OPSMON, name);
    let stored_elsewhere = || {
        let suffixed = setup.series(OPSMON, &format!("{name}_total"));
        if suffixed.is_empty() { String::new() } else { format!(" (opsmon's is stored as {name}_total)") }
    };
    match family.presence {
        Presence::Both => {
            if theirs.is_empty() {
                return Some(format!("{name}: the peer ({peer_job}) stores no series; the table is wrong"));
            }
            if ours.is_empty() {
                return Some(format!("{name}: missing for opsmon{}", stored_elsewhere()));
            }
            let expected = table_labels(family);
            if label_names(&theirs) != expected {
                return Some(format!(
                    "{name}: the peer's labels {:?} differ from the table",
                    label_names(&theirs)
                ));
            }
            if label_names(&ours) != expected {
                return Some(format!(
                    "{name}: opsmon's labels {:?}, the peer's {expected:?}",
                    label_names(&ours)
                ));
            }
            let (their_type, our_type) = (setup.metric_type(peer_job, name), setup.metric_type(OPSMON, name));
            if their_type != our_type {
                return Some(format!("{name}: type {our_type:?} for opsmon, {their_type:?} for the peer"));
            }
        }
        Presence::OursOnly(_) => {
            if !theirs.is_empty() {
                return Some(format!("{name}: the peer emits it now; make it `Both` in the table"));
            }
            if ours.is_empty() {
                return Some(format!("{name}: missing for opsmon{}", stored_elsewhere()));
            }
            if label_names(&ours) != table_labels(family) {
                return Some(format!(
                    "{name}: opsmon's labels {:?} differ from the table",
                    label_names(&ours)
                ));
            }
        }
        Presence::HostCannotHave(_) => {
            if !theirs.is_empty() || !ours.is_empty() {
                return Some(format!("{name}: the table says this host cannot have it, but it is stored"));
            }
        }
        Presence::NotImplemented(_) => {
            if theirs.is_empty() {
                return Some(format!("{name}: the peer stores no series; the table is wrong"));
            }
            if !ours.is_empty() {
                return Some(format!("{name}: opsmon emits it now; make it `Both` in the table"));
            }
        }
    }
    None
}

#[test]
fn every_family_the_mixins_read_is_stored_alike_for_opsmon_and_the_peer() {
    let setup = start();
    let mut problems: Vec<String> =
        MIXIN_FAMILIES.iter().filter_map(|family| check(&setup, family)).collect();

    // Values: exact where nothing moves between two scrapes, within a
    // tolerance for counters that do.
    let compare = |peer: Peer, name: &str, matchers: &str, tolerance: f64| -> Option<String> {
        let Some(theirs) = setup.sum(peer_job(peer), name, matchers) else {
            return Some(format!("{name}{{{matchers}}}: no value for the peer"));
        };
        let Some(ours) = setup.sum(OPSMON, name, matchers) else {
            return Some(format!("{name}{{{matchers}}}: no value for opsmon"));
        };
        let allowed = tolerance * theirs.abs().max(1.0);
        ((ours - theirs).abs() > allowed)
            .then(|| format!("{name}{{{matchers}}}: opsmon {ours}, peer {theirs}"))
    };
    problems.extend(
        [
            compare(Peer::Node, "node_filefd_maximum", "", 0.0),
            compare(Peer::Node, "node_filesystem_files", "", 0.0),
            compare(Peer::Node, "node_disk_read_bytes_total", "", 0.05),
            compare(Peer::Node, "node_disk_io_time_seconds_total", "", 0.05),
            compare(Peer::Node, "node_vmstat_pgmajfault", "", 0.05),
            compare(Peer::Postgres, "pg_settings_max_locks_per_transaction", "", 0.0),
            compare(Peer::Postgres, "pg_settings_autovacuum_vacuum_scale_factor", "", 0.0),
            compare(Peer::Postgres, "pg_stat_database_tup_inserted", ",datname=\"postgres\"", 0.05),
            compare(Peer::Postgres, "pg_replication_slots_active", "", 0.0),
            compare(Peer::Redis, "redis_commands_total", ",cmd=\"set\"", 0.0),
            compare(Peer::Redis, "redis_total_system_memory_bytes", "", 0.0),
            compare(Peer::Redis, "redis_db_keys", "", 0.0),
        ]
        .into_iter()
        .flatten(),
    );
    if setup.sum(OPSMON, "redis_commands_total", ",cmd=\"set\"") != Some(8.0) {
        problems.push("redis_commands_total{cmd=\"set\"}: the test sent 8 SETs".into());
    }
    if setup.sum(OPSMON, "pg_exporter_last_scrape_error", "") != Some(0.0) {
        problems.push("pg_exporter_last_scrape_error: not 0 for opsmon".into());
    }
    assert!(
        problems.is_empty(),
        "{} problems over {} rows:\n{}",
        problems.len(),
        MIXIN_FAMILIES.len(),
        problems.join("\n")
    );
}
