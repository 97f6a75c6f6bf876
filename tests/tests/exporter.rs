//! The built opsmon-exporter binary, end to end: HTTP endpoints and content
//! negotiation, promtool's verdict on the output, the catalog contract,
//! signals, and how bad flags and config files are reported.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use opsmon_e2e::{Process, exporter_bin, get, get_with, parse_exposition, promtool_problems};

fn workspace_file(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

#[test]
fn metrics_pass_promtool_check_metrics() {
    let exporter = Process::exporter(&[]);
    let text = get(&exporter.url("/metrics")).unwrap().text();
    let problems = promtool_problems(&text);
    assert!(problems.is_empty(), "promtool check metrics found problems:\n{}", problems.join("\n"));
}

/// Families whose source only exists on some hosts: connection tracking
/// needs the nf_conntrack module loaded.
fn absent_on_this_host(name: &str) -> bool {
    name.starts_with("node_nf_conntrack")
        && !std::path::Path::new("/proc/sys/net/netfilter/nf_conntrack_count").exists()
}

#[test]
fn emitted_families_match_the_catalog() {
    let exporter = Process::exporter(&[]);
    let families = parse_exposition(&get(&exporter.url("/metrics")).unwrap().text());
    for (name, family) in &families {
        let def =
            opsmon_catalog::find(name).unwrap_or_else(|| panic!("{name} is emitted but not in the catalog"));
        let expected_type = def.metric_type.as_str();
        assert_eq!(family.metric_type, expected_type, "{name}: type");
        let expected_labels: std::collections::BTreeSet<String> =
            def.labels.iter().map(|l| (*l).to_owned()).collect();
        assert_eq!(family.label_names, expected_labels, "{name}: label names");
    }
    // With no config the host collector runs with defaults: every host family
    // that needs no configuration must be there, and the self metrics.
    let needs_config = ["opsmon_process", "opsmon_tcp_port_", "opsmon_directory_"];
    for def in opsmon_catalog::for_collector("host").chain(opsmon_catalog::for_collector("exporter")) {
        if needs_config.iter().any(|prefix| def.name.starts_with(prefix)) || absent_on_this_host(def.name) {
            continue;
        }
        assert!(families.contains_key(def.name), "catalog entry {} is never emitted", def.name);
    }
    assert_eq!(families["opsmon_exporter_collector_success"].value(&[("collector", "host")]), Some(1.0));
}

#[test]
fn configured_host_features_are_emitted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.log"), vec![b'x'; 50_000]).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = dir.path().join("opsmon.yml");
    // Unique tokens: the exporter's own command line contains the temp dir's
    // name, and a child `sleep` gets an argument no other process has.
    let token = dir.path().file_name().unwrap().to_str().unwrap().to_owned();
    let nap = format!("{}.{}", 3000 + std::process::id() % 1000, port);
    let mut sleeper = Command::new("sleep").arg(&nap).spawn().unwrap();
    std::fs::write(
        &config,
        format!(
            "collectors:\n  host:\n    listen_ports: [{port}]\n    process_groups:\n      - name: itself\n        cmdline: '{token}'\n      - name: sleeper\n        comm: sleep\n        cmdline: '^sleep {nap}$'\n    directories:\n      - path: {}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let exporter = Process::exporter(&["--config.file", config.to_str().unwrap()]);
    let families = parse_exposition(&get(&exporter.url("/metrics")).unwrap().text());
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    for def in opsmon_catalog::for_collector("host").filter(|def| !absent_on_this_host(def.name)) {
        assert!(families.contains_key(def.name), "{} missing with a full host config", def.name);
    }
    assert_eq!(families["opsmon_tcp_port_listening"].value(&[("port", &port.to_string())]), Some(1.0));
    assert_eq!(families["opsmon_processes"].value(&[("group", "itself")]), Some(0.0), "never counts itself");
    assert_eq!(families["opsmon_processes"].value(&[("group", "sleeper")]), Some(1.0));
    let rss = families["opsmon_process_resident_memory_bytes"].value(&[("group", "sleeper")]).unwrap();
    assert!(rss > 100_000.0, "sleep has some resident memory: {rss}");
    let size = families["opsmon_directory_size_bytes"].value(&[]).unwrap();
    assert!(size >= 49_152.0, "directory holds a 50 kB file: {size}");
    drop(listener);
}

#[test]
fn content_negotiation_and_compression() {
    let exporter = Process::exporter(&[]);
    let url = exporter.url("/metrics");

    let plain = get(&url).unwrap();
    assert_eq!(plain.status, 200);
    assert_eq!(plain.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    assert!(!plain.headers.contains_key("content-encoding"));
    assert!(!plain.text().contains("# EOF"));

    // Prometheus' own Accept header: text 0.0.4 all the same, as the Go
    // exporters answer, so counters keep the peers' names.
    let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let asked = get_with(&url, &[("Accept", accept)]).unwrap();
    assert_eq!(asked.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = asked.text();
    assert!(!text.contains("# EOF") && text.contains("\nnode_cpu_seconds_total{"), "{text}");

    let with_flag = Process::exporter(&["--web.enable-openmetrics"]);
    let open = get_with(&with_flag.url("/metrics"), &[("Accept", accept)]).unwrap();
    assert_eq!(open.headers["content-type"], "application/openmetrics-text; version=1.0.0; charset=utf-8");
    let text = open.text();
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    assert!(text.contains("# UNIT node_memory_MemTotal_bytes bytes"), "{text}");
    assert_eq!(
        get(&with_flag.url("/metrics")).unwrap().headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );

    let zipped = get_with(&url, &[("Accept-Encoding", "gzip")]).unwrap();
    assert_eq!(zipped.headers["content-encoding"], "gzip");
    assert!(zipped.body.len() * 3 < plain.body.len(), "gzip shrinks the payload");
    assert!(zipped.text().contains("node_load1 "));
}

#[test]
fn landing_health_ready_and_unknown_paths() {
    let exporter = Process::exporter(&["--web.telemetry-path=/custom"]);
    let landing = get(&exporter.url("/")).unwrap();
    assert_eq!(landing.status, 200);
    let page = landing.text();
    assert!(page.contains("href=\"/custom\""), "{page}");
    assert!(page.contains("<li>host</li>"), "lists enabled collectors: {page}");
    assert_eq!(get(&exporter.url("/-/healthy")).unwrap().status, 200);
    assert_eq!(get(&exporter.url("/-/ready")).unwrap().status, 200);
    assert_eq!(get(&exporter.url("/custom")).unwrap().status, 200);
    assert_eq!(get(&exporter.url("/metrics")).unwrap().status, 404);
}

#[test]
fn scrape_timeout_header_bounds_the_scrape() {
    let exporter = Process::exporter(&[]);
    let started = Instant::now();
    let response =
        get_with(&exporter.url("/metrics"), &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")]).unwrap();
    assert_eq!(response.status, 200);
    assert!(started.elapsed() < Duration::from_secs(2), "answered within the scrape timeout");
}

#[test]
fn hostile_scrape_timeout_headers_never_panic() {
    let exporter = Process::exporter(&[]);
    for hostile in
        ["1e30", "1e308", "NaN", "-1", "inf", "-inf", "0", "1e-300", "garbage", "99999999999999999999999"]
    {
        let response =
            get_with(&exporter.url("/metrics"), &[("X-Prometheus-Scrape-Timeout-Seconds", hostile)])
                .unwrap_or_else(|e| panic!("{hostile}: no answer ({e}):\n{}", exporter.log()));
        assert_eq!(response.status, 200, "{hostile}");
    }
    let log = exporter.log();
    assert!(!log.contains("panic"), "{log}");
}

#[test]
fn sigterm_and_sigint_stop_gracefully() {
    for signal in [rustix::process::Signal::TERM, rustix::process::Signal::INT] {
        let mut exporter = Process::exporter(&[]);
        assert_eq!(get(&exporter.url("/metrics")).unwrap().status, 200);
        let status =
            exporter.signal_and_wait(signal, Duration::from_secs(10)).expect("exits after the signal");
        assert!(status.success(), "{signal:?}: {status}\n{}", exporter.log());
        assert!(exporter.log().contains("shutting down"), "{}", exporter.log());
    }
}

/// The NUL-separated `/proc/PID/FILE` (environ, cmdline) of `pid`, as strings.
fn proc_strings(pid: u32, file: &str) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/{file}")).unwrap();
    raw.split(|byte| *byte == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

#[test]
fn restarts_itself_once_without_glibcs_thread_caches_unless_tunables_are_set() {
    let tunables = |pid: u32| -> Vec<String> {
        proc_strings(pid, "environ").into_iter().filter(|v| v.starts_with("GLIBC_TUNABLES=")).collect()
    };
    assert!(
        std::env::var_os("GLIBC_TUNABLES").is_none(),
        "run the tests without GLIBC_TUNABLES: the exporters they start inherit it"
    );
    // The process the test started is the one serving (execve keeps the
    // PID), with its arguments and glibc's per-thread caches off.
    let exporter = Process::exporter(&["--log.format=json"]);
    assert_eq!(tunables(exporter.pid()), ["GLIBC_TUNABLES=glibc.malloc.tcache_count=0"]);
    let cmdline = proc_strings(exporter.pid(), "cmdline");
    assert_eq!(cmdline[0], exporter_bin().to_string_lossy(), "{cmdline:?}");
    assert!(cmdline.contains(&"--log.format=json".to_owned()), "{cmdline:?}");
    assert_eq!(get(&exporter.url("/metrics")).unwrap().status, 200);
    drop(exporter);
    // The operator's tunables stand, even empty: no restart.
    for operator in ["glibc.malloc.tcache_count=3", ""] {
        let exporter = Process::exporter_with_env(&[], &[("GLIBC_TUNABLES", operator)]);
        assert_eq!(tunables(exporter.pid()), [format!("GLIBC_TUNABLES={operator}")]);
    }
}

#[test]
fn logs_are_logfmt_or_json() {
    let exporter = Process::exporter(&["--log.format=json"]);
    let log = exporter.log();
    let first = log.lines().next().unwrap_or_default();
    assert!(first.starts_with('{') && first.contains("\"message\":\"listening\""), "{log}");
    drop(exporter);
    let exporter = Process::exporter(&[]);
    let log = exporter.log();
    assert!(log.contains("level=info") && log.contains("message=listening"), "{log}");
}

/// Runs the binary to completion (it must not serve) and returns (code, stdout+stderr).
fn run_exporter(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(exporter_bin()).args(args).output().unwrap();
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code(), text)
}

#[test]
fn bad_input_exits_2_with_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let typo = write("typo.yml", "collectors:\n  host:\n    listen_port: [3000]\n");
    let wrong_type = write("type.yml", "collectors:\n  host:\n    enabled: maybe\n");
    let bad_regex = write(
        "regex.yml",
        "collectors:\n  host:\n    process_groups:\n      - name: api\n        cmdline: 'node ('\n",
    );
    let unreadable = dir.path().join("missing.yml").to_str().unwrap().to_owned();

    let cases: Vec<(Vec<String>, String)> = vec![
        (vec![format!("--config.file={typo}")], format!("{typo}:3:5: unknown field `listen_port`")),
        (vec![format!("--config.file={typo}")], "did you mean `listen_ports`?".into()),
        (
            vec![format!("--config.file={wrong_type}")],
            format!("{wrong_type}:3:14: invalid boolean; expected true or false"),
        ),
        (vec![format!("--config.file={bad_regex}")], format!("{bad_regex}:5:18: invalid regex \"node (\"")),
        (vec![format!("--config.file={unreadable}")], format!("{unreadable}: cannot read config file")),
        (vec!["--web.listen-address=nowhere".into()], "--web.listen-address".into()),
        (vec!["--no-such-flag".into()], "unexpected argument '--no-such-flag'".into()),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, output) = run_exporter(&args);
        assert_eq!(code, Some(2), "{args:?}: {output}");
        assert!(output.contains(&expected), "{args:?}: expected {expected:?} in:\n{output}");
        assert!(!output.contains("panicked") && !output.contains("RUST_BACKTRACE"), "{output}");
    }
}

#[test]
fn address_in_use_exits_2_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (code, output) = run_exporter(&[&format!("--web.listen-address={address}")]);
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains(&format!("cannot listen on {address}")) && output.contains("in use"), "{output}");
}

#[test]
fn config_check_validates_the_shipped_example() {
    let example = workspace_file("deploy/opsmon.yml");
    let output = Command::new(exporter_bin())
        .args(["--config.check", &format!("--config.file={}", example.display())])
        .env("DATA_SOURCE_NAME", "postgresql://opsmon@127.0.0.1:5432/smartalk_db?sslmode=disable")
        .output()
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("configuration OK"), "{text}");
    assert!(text.contains("collectors enabled: host, postgres, redis, "), "{text}");
    for collector in ["probe", "accesslog", "files", "business"] {
        assert!(
            text.lines().any(|l| l.starts_with("collectors enabled:") && l.contains(collector)),
            "{text}"
        );
    }

    // The example needs DATA_SOURCE_NAME, and says so by name.
    let output = Command::new(exporter_bin())
        .args(["--config.check", &format!("--config.file={}", example.display())])
        .env_remove("DATA_SOURCE_NAME")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("environment variable DATA_SOURCE_NAME is not set"), "{text}");

    let (code, output) = run_exporter(&["--config.check"]);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("built-in defaults"), "{output}");
}

/// Issue 10: a duration or size that would fail or panic at run time is
/// refused by `--config.check` (exit 2) with file, line, column, limit and fix.
#[test]
fn config_check_refuses_values_that_fail_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opsmon.yml");
    for (yaml, expected) in [
        (
            "scrape:\n  max_timeout: 5124095576030431h\n",
            ":2:16: duration \"5124095576030431h\" is too long: at most 7d",
        ),
        (
            "collectors:\n  probe:\n    modules:\n      big: {body_size_limit: 100GiB}\n",
            ":4:30: invalid size \"100GiB\": at most 64MiB",
        ),
    ] {
        std::fs::write(&path, yaml).unwrap();
        let (code, output) = run_exporter(&["--config.check", &format!("--config.file={}", path.display())]);
        assert_eq!(code, Some(2), "{output}");
        assert!(output.contains(&format!("{}{expected}", path.display())), "{output}");
        assert!(!output.contains("panicked"), "{output}");
    }
}

#[test]
fn every_catalog_name_passes_promtools_lints() {
    // One sample per declared family, so names only configured collectors
    // emit are linted too.
    let mut set = opsmon_exporter::metrics::MetricSet::new();
    for def in opsmon_catalog::all() {
        let labels = def.labels.iter().map(|_| "x".into()).collect::<Vec<_>>();
        match def.metric_type {
            opsmon_catalog::MetricType::Histogram => {
                set.family(def).histogram(labels, 1.0, 1, vec![(1.0, 1)]);
            }
            _ => {
                set.family(def).number(labels, 1.0);
            }
        }
    }
    let problems = promtool_problems(&set.encode_text());
    assert!(problems.is_empty(), "promtool lints on catalog names:\n{}", problems.join("\n"));
}

#[test]
fn systemd_unit_verifies() {
    let analyze = opsmon_e2e::require_tool("systemd-analyze", "systemd");
    let unit = std::fs::read_to_string(workspace_file("deploy/systemd/opsmon-exporter.service")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opsmon-exporter.service");
    std::fs::write(&path, unit.replace("/usr/bin/opsmon-exporter", exporter_bin().to_str().unwrap()))
        .unwrap();
    let output = Command::new(analyze).arg("verify").arg(&path).output().unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && text.trim().is_empty(), "systemd-analyze verify:\n{text}");
}
