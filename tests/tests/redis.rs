//! The Redis collector against real servers started by the test: values
//! against redis-cli, a stopped and a hung server, recovery without
//! restarting the exporter, secrets, /probe, bad targets, and compatibility
//! beside Debian's prometheus-redis-exporter.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use opsmon_catalog::MetricType;
use opsmon_e2e::servers::RedisServer;
use opsmon_e2e::{
    FamilyInfo, Process, exporter_bin, free_port, get, get_with, parse_exposition, require_tool,
};

const PASSWORD: &str = "r3dis-Secr3t-pw-7781";

fn scrape(exporter: &Process, path: &str) -> BTreeMap<String, FamilyInfo> {
    parse_exposition(&get(&exporter.url(path)).unwrap().text())
}

/// A config file for one target named `cache`; `extra` goes under the target.
fn config_file(dir: &tempfile::TempDir, redis: &RedisServer, extra: &str) -> String {
    let path = dir.path().join("opsmon.yml");
    std::fs::write(
        &path,
        format!(
            "collectors:\n  redis:\n    targets:\n      - name: cache\n        address: {}\n{extra}",
            redis.address()
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// A few keys in databases 0 and 3, some with an expiry.
fn seed(redis: &RedisServer) {
    for i in 0..5 {
        redis.cli(&["SET", &format!("user:{i}"), "x"]).unwrap();
    }
    redis.cli(&["SET", "session:a", "x", "EX", "3600"]).unwrap();
    redis.cli(&["SET", "session:b", "x", "EX", "7200"]).unwrap();
    redis.cli(&["-n", "3", "SET", "queue", "x"]).unwrap();
    redis.cli(&["-n", "3", "SET", "lock", "x", "PX", "600000"]).unwrap();
}

/// `(keys, expires)` of database `db` as redis-cli reports them.
fn cli_keyspace(redis: &RedisServer, db: u32) -> (f64, f64) {
    let keys: f64 = redis.cli(&["-n", &db.to_string(), "DBSIZE"]).unwrap().parse().unwrap();
    let info = redis.cli(&["INFO", "keyspace"]).unwrap();
    let expires = info
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("db{db}:")).map(str::to_owned))
        .and_then(|fields| {
            fields.split(',').find_map(|f| f.strip_prefix("expires=").map(|n| n.parse().unwrap()))
        })
        .unwrap_or(0.0);
    (keys, expires)
}

fn pid_of(redis: &RedisServer) -> i32 {
    let info = redis.cli(&["INFO", "server"]).unwrap();
    info.lines().find_map(|l| l.trim().strip_prefix("process_id:")).unwrap().parse().unwrap()
}

fn signal(pid: i32, signal: rustix::process::Signal) {
    rustix::process::kill_process(rustix::process::Pid::from_raw(pid).unwrap(), signal).unwrap();
}

#[test]
fn values_match_what_redis_cli_reports() {
    let redis = RedisServer::start(None, &["--maxmemory", "64mb"]);
    seed(&redis);
    let dir = tempfile::tempdir().unwrap();
    let exporter = Process::exporter(&["--config.file", &config_file(&dir, &redis, "")]);
    let families = scrape(&exporter, "/metrics");

    assert_eq!(families["redis_up"].value(&[]), Some(1.0), "{}", exporter.log());
    assert_eq!(families["opsmon_exporter_collector_success"].value(&[("collector", "redis")]), Some(1.0));
    let databases: u32 =
        redis.cli(&["CONFIG", "GET", "databases"]).unwrap().lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(
        families["redis_db_keys"].samples.len(),
        databases as usize,
        "every database, empty ones as 0"
    );
    for db in 0..databases {
        let label = format!("db{db}");
        let (keys, expires) = cli_keyspace(&redis, db);
        assert_eq!(families["redis_db_keys"].value(&[("db", &label)]), Some(keys), "{label} keys");
        assert_eq!(
            families["redis_db_keys_expiring"].value(&[("db", &label)]),
            Some(expires),
            "{label} expiring"
        );
    }
    assert_eq!(families["redis_db_keys"].value(&[("db", "db0")]), Some(7.0));
    assert_eq!(families["redis_db_keys_expiring"].value(&[("db", "db3")]), Some(1.0));
    let maxmemory: f64 =
        redis.cli(&["CONFIG", "GET", "maxmemory"]).unwrap().lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(maxmemory, 64.0 * 1024.0 * 1024.0);
    assert_eq!(families["redis_memory_max_bytes"].value(&[]), Some(maxmemory));
    let version = redis
        .cli(&["INFO", "server"])
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("redis_version:").map(str::to_owned))
        .unwrap();
    let port = redis.port.to_string();
    assert_eq!(
        families["redis_instance_info"].value(&[
            ("role", "master"),
            ("redis_version", &version),
            ("tcp_port", &port)
        ]),
        Some(1.0)
    );
    let ping = families["opsmon_redis_ping_duration_seconds"].value(&[]).unwrap();
    assert!(ping > 0.0 && ping < 1.0, "{ping}");

    // The catalog contract for this collector: every family, its type and labels.
    for def in opsmon_catalog::for_collector("redis") {
        if def.name == opsmon_catalog::redis::MASTER_LAST_IO.name {
            continue; // replicas only; this server is a primary
        }
        let family = families.get(def.name).unwrap_or_else(|| panic!("{} is never emitted", def.name));
        let expected_type = match def.metric_type {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            other => panic!("{}: unexpected type {other}", def.name),
        };
        assert_eq!(family.metric_type, expected_type, "{}: type", def.name);
        let labels: std::collections::BTreeSet<String> = def.labels.iter().map(|l| (*l).to_owned()).collect();
        assert_eq!(family.label_names, labels, "{}: label names", def.name);
    }
    for name in families.keys().filter(|n| n.starts_with("redis_") || n.starts_with("opsmon_redis_")) {
        assert!(opsmon_catalog::find(name).is_some(), "{name} is emitted but not in the catalog");
    }
}

#[test]
fn stopped_server_means_redis_up_0_in_budget_and_recovers_without_restart() {
    let mut redis = RedisServer::start(None, &[]);
    let dir = tempfile::tempdir().unwrap();
    let exporter = Process::exporter(&["--config.file", &config_file(&dir, &redis, "")]);
    let pid = exporter.pid();
    assert_eq!(scrape(&exporter, "/metrics")["redis_up"].value(&[]), Some(1.0));

    redis.stop();
    let started = Instant::now();
    let response =
        get_with(&exporter.url("/metrics"), &[("X-Prometheus-Scrape-Timeout-Seconds", "3")]).unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "answered within the scrape budget");
    let families = parse_exposition(&response.text());
    assert_eq!(families["redis_up"].value(&[]), Some(0.0));
    assert_eq!(families["opsmon_exporter_collector_success"].value(&[("collector", "redis")]), Some(0.0));
    assert_eq!(families["opsmon_exporter_collector_success"].value(&[("collector", "host")]), Some(1.0));
    assert!(families.contains_key("node_load1"), "other collectors are intact");
    assert!(!families.contains_key("redis_db_keys"), "no stale values while down");

    redis.start_again();
    let families = scrape(&exporter, "/metrics");
    assert_eq!(families["redis_up"].value(&[]), Some(1.0), "{}", exporter.log());
    assert_eq!(exporter.pid(), pid, "the same exporter process");
    let log = exporter.log();
    assert!(log.contains("redis scrape failed") && log.contains("target_name=cache"), "{log}");
    assert!(log.contains("Connection refused"), "{log}");

    // Failures are logged at most once a minute per target.
    redis.stop();
    for _ in 0..3 {
        assert_eq!(scrape(&exporter, "/metrics")["redis_up"].value(&[]), Some(0.0));
    }
    assert_eq!(exporter.log().matches("redis scrape failed").count(), 1, "{}", exporter.log());
}

#[test]
fn hung_server_misses_no_deadline() {
    let redis = RedisServer::start(None, &[]);
    let dir = tempfile::tempdir().unwrap();
    let exporter =
        Process::exporter(&["--config.file", &config_file(&dir, &redis, "        timeout: 700ms\n")]);
    assert_eq!(scrape(&exporter, "/metrics")["redis_up"].value(&[]), Some(1.0));

    // SIGSTOP: the kernel still accepts connections, but nothing answers.
    let pid = pid_of(&redis);
    signal(pid, rustix::process::Signal::STOP);
    let started = Instant::now();
    let response =
        get_with(&exporter.url("/metrics"), &[("X-Prometheus-Scrape-Timeout-Seconds", "2.5")]).unwrap();
    let elapsed = started.elapsed();
    signal(pid, rustix::process::Signal::CONT);
    assert!(elapsed < Duration::from_millis(2500), "answered within the scrape budget: {elapsed:?}");
    let families = parse_exposition(&response.text());
    assert_eq!(families["redis_up"].value(&[]), Some(0.0));
    assert!(families.contains_key("node_load1"));
    assert!(exporter.log().contains("no answer within the timeout of 700ms"), "{}", exporter.log());

    assert_eq!(scrape(&exporter, "/metrics")["redis_up"].value(&[]), Some(1.0), "{}", exporter.log());
}

fn run_exporter(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = Command::new(exporter_bin()).args(args).envs(env.iter().copied()).output().unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code(), text)
}

#[test]
fn passwords_never_appear_in_logs_metrics_errors_or_config_check() {
    let redis = RedisServer::start(Some(PASSWORD), &[]);
    seed(&redis);
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("redis.pw");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let config = dir.path().join("opsmon.yml");
    std::fs::write(
        &config,
        format!(
            "collectors:\n  redis:\n    targets:\n      - name: cache\n        address: {0}\n        password_env: OPSMON_TEST_REDIS_PASSWORD\n        default: true\n      - name: cache-file\n        address: {0}\n        password_file: {1}\n",
            redis.address(),
            password_file.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let env = [("OPSMON_TEST_REDIS_PASSWORD", PASSWORD)];
    let exporter = Process::exporter_with_env(&["--config.file", config, "--log.level=debug"], &env);
    let metrics = get(&exporter.url("/metrics")).unwrap().text();
    assert!(metrics.contains("redis_up 1"), "password_env: {metrics}");
    let probe = get(&exporter.url("/probe?target=cache-file")).unwrap().text();
    assert!(probe.contains("redis_up 1"), "password_file: {probe}");
    let landing = get(&exporter.url("/")).unwrap().text();

    // Peer convention: REDIS_ADDR and REDIS_PASSWORD, no config file.
    let peer_style = Process::exporter_with_env(
        &["--log.level=debug"],
        &[("REDIS_ADDR", &redis.address()), ("REDIS_PASSWORD", PASSWORD)],
    );
    let peer_metrics = get(&peer_style.url("/metrics")).unwrap().text();
    assert!(peer_metrics.contains("redis_up 1"), "REDIS_ADDR enables the collector: {peer_metrics}");
    assert!(peer_metrics.contains("redis_db_keys{db=\"db0\"} 7"), "{peer_metrics}");

    // A wrong password: redis_up 0 and a log line naming the target, not the secret.
    let wrong = Process::exporter_with_env(
        &["--config.file", config, "--log.level=debug"],
        &[("OPSMON_TEST_REDIS_PASSWORD", "wrong-redis-password-99")],
    );
    let wrong_metrics = get(&wrong.url("/metrics")).unwrap().text();
    assert!(wrong_metrics.contains("redis_up 0"), "{wrong_metrics}");
    let wrong_log = wrong.log();
    assert!(wrong_log.contains("target_name=cache"), "{wrong_log}");
    assert!(wrong_log.contains("authentication failed: the server rejected the password"), "{wrong_log}");
    assert!(!wrong_log.contains("wrong-redis-password-99"), "{wrong_log}");
    assert!(!wrong_metrics.contains("wrong-redis-password-99"), "{wrong_metrics}");

    // No password at all: the server says so, and the message says what to set.
    let none = Process::exporter_with_env(&[], &[("REDIS_ADDR", &redis.address())]);
    assert!(get(&none.url("/metrics")).unwrap().text().contains("redis_up 0"));
    assert!(none.log().contains("the server requires a password"), "{}", none.log());

    let (code, check_text) = run_exporter(&["--config.check", "--config.file", config], &env);
    assert_eq!(code, Some(0), "{check_text}");
    assert!(check_text.contains("redis"), "{check_text}");

    // A password inside REDIS_ADDR is refused without repeating it.
    let in_url = format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port);
    let (code, in_url_text) = run_exporter(&["--config.check"], &[("REDIS_ADDR", &in_url)]);
    assert_eq!(code, Some(2), "{in_url_text}");
    assert!(in_url_text.contains("contains a password"), "{in_url_text}");

    // A malformed URL stops the start with a message naming the target.
    let listen = format!("--web.listen-address=127.0.0.1:{}", free_port());
    let (code, malformed_text) = run_exporter(
        &[&listen],
        &[("REDIS_ADDR", "redis://127.0.0.1:notaport"), ("REDIS_PASSWORD", PASSWORD)],
    );
    assert_eq!(code, Some(2), "{malformed_text}");
    assert!(
        malformed_text.contains("collectors.redis.targets[0] (redis): the address is not a valid Redis URL"),
        "{malformed_text}"
    );

    for (what, text) in [
        ("exporter log", exporter.log()),
        ("metrics", metrics),
        ("probe", probe),
        ("landing page", landing),
        ("REDIS_ADDR exporter log", peer_style.log()),
        ("REDIS_ADDR metrics", peer_metrics),
        ("wrong-password log", wrong_log),
        ("config check", check_text),
        ("password-in-URL error", in_url_text),
        ("malformed-URL error", malformed_text),
    ] {
        assert!(!text.contains(PASSWORD), "the password leaked into the {what}:\n{text}");
    }
    assert!(exporter.log().contains("level=debug"), "debug logging was on: {}", exporter.log());
}

#[test]
fn probe_serves_one_named_target() {
    let main = RedisServer::start(None, &[]);
    let other = RedisServer::start(None, &[]);
    other.cli(&["SET", "only-in-other", "x"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.yml");
    std::fs::write(
        &path,
        format!(
            "collectors:\n  host:\n    enabled: false\n  redis:\n    targets:\n      - name: main\n        address: {}\n      - name: other\n        address: {}\n",
            main.address(),
            other.address()
        ),
    )
    .unwrap();
    let exporter = Process::exporter(&["--config.file", path.to_str().unwrap()]);
    let response = get(&exporter.url("/probe?target=other")).unwrap();
    assert_eq!(response.status, 200);
    let probe = parse_exposition(&response.text());
    assert_eq!(probe["redis_up"].value(&[]), Some(1.0));
    assert_eq!(probe["redis_db_keys"].value(&[("db", "db0")]), Some(1.0), "the other server's keys");
    assert!(!probe.contains_key("node_load1"));
    let metrics = scrape(&exporter, "/metrics");
    assert!(!metrics.contains_key("redis_up"), "with two targets and no default, /metrics serves neither");

    let unknown = get(&exporter.url("/probe?target=nope")).unwrap();
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.text(), "unknown target \"nope\"; configured targets: main, other\n");
    let address = get(&exporter.url(&format!("/probe?target=redis://:pw@127.0.0.1:{}", main.port))).unwrap();
    assert_eq!(address.status, 400);
    assert!(address.text().contains("credentials are never accepted in the URL"), "{}", address.text());
}

#[test]
fn tls_failure_is_named_and_bounded() {
    let plain = RedisServer::start(None, &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tls.yml");
    std::fs::write(
        &path,
        format!(
            "collectors:\n  redis:\n    targets:\n      - name: secure-cache\n        address: rediss://127.0.0.1:{}\n        timeout: 500ms\n",
            plain.port
        ),
    )
    .unwrap();
    let exporter = Process::exporter(&["--config.file", path.to_str().unwrap()]);
    let started = Instant::now();
    let families = scrape(&exporter, "/metrics");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(families["redis_up"].value(&[]), Some(0.0));
    assert!(families.contains_key("node_load1"));
    let log = exporter.log();
    assert!(log.contains("target_name=secure-cache"), "{log}");
    assert!(log.contains(&format!("connect to 127.0.0.1:{} (TLS)", plain.port)), "{log}");
    assert!(log.contains("check that the server serves TLS on this port"), "{log}");
}

#[test]
fn shared_families_match_redis_exporter() {
    let peer_bin = require_tool("prometheus-redis-exporter", "prometheus-redis-exporter");
    let redis = RedisServer::start(None, &["--maxmemory", "64mb"]);
    seed(&redis);
    let port = free_port();
    let peer = Process::start(
        &peer_bin,
        &[
            "-redis.addr".into(),
            redis.address(),
            "-web.listen-address".into(),
            format!("127.0.0.1:{port}"),
            // redis_total_system_memory_bytes, which the redis-mixin's memory alert reads.
            "-include-system-metrics".into(),
        ],
        port,
        "/metrics",
    );
    let dir = tempfile::tempdir().unwrap();
    let ours = Process::exporter(&["--config.file", &config_file(&dir, &redis, "")]);
    let theirs = scrape(&peer, "/metrics");
    let mine = scrape(&ours, "/metrics");
    assert_eq!(theirs["redis_up"].value(&[]), Some(1.0), "the peer reached the server");

    let emitted: Vec<&String> = mine.keys().filter(|name| name.starts_with("redis_")).collect();
    assert_eq!(emitted.len(), 26, "{emitted:?}");
    for name in emitted {
        let peer = theirs.get(name).unwrap_or_else(|| panic!("{name} is not emitted by redis_exporter"));
        assert_eq!(mine[name].metric_type, peer.metric_type, "{name}: type");
        assert_eq!(mine[name].label_names, peer.label_names, "{name}: label names");
    }
    for name in ["redis_db_keys", "redis_db_keys_expiring"] {
        let samples = |f: &BTreeMap<String, FamilyInfo>| {
            let mut s: Vec<_> = f[name].samples.iter().map(|(_, l, v)| (l["db"].clone(), *v)).collect();
            s.sort_by(|a, b| a.0.cmp(&b.0));
            s
        };
        assert_eq!(samples(&mine), samples(&theirs), "{name}");
    }
    let max = |f: &BTreeMap<String, FamilyInfo>| f["redis_memory_max_bytes"].value(&[]).unwrap();
    assert_eq!(max(&mine), max(&theirs));
    assert_eq!(max(&mine), 64.0 * 1024.0 * 1024.0);
    let info = |f: &BTreeMap<String, FamilyInfo>| f["redis_instance_info"].samples[0].1.clone();
    assert_eq!(info(&mine), info(&theirs), "the same server, the same identity labels");
    // Only seed() ran SET; neither exporter sends it.
    let sets = |f: &BTreeMap<String, FamilyInfo>| f["redis_commands_total"].value(&[("cmd", "set")]).unwrap();
    assert_eq!(sets(&mine), 9.0);
    assert_eq!(sets(&mine), sets(&theirs));
    let system = |f: &BTreeMap<String, FamilyInfo>| f["redis_total_system_memory_bytes"].value(&[]).unwrap();
    assert_eq!(system(&mine), system(&theirs));
}
