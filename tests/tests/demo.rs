//! `scripts/demo.sh`, the whole stack in one command, as a new user runs it:
//! it comes up with nothing but the Debian packages scripts/test.sh installs,
//! every panel of the committed dashboards shows data through the demo's
//! Prometheus within about a minute (the few that cannot, listed with the
//! reason), and Ctrl-C stops everything and removes the temp dir.
//!
//! Wall time: about 60–90 s (PostgreSQL with demo data, then data for every
//! panel at the demo's 5 s scrape interval).

#![allow(clippy::unwrap_used, clippy::print_stderr)]

#[path = "support/demo.rs"]
mod demo;

use std::time::{Duration, Instant};

use demo::{Demo, may_be_empty, panel_queries, wait_for_data};

#[test]
fn the_demo_shows_data_on_every_panel_and_ctrl_c_leaves_nothing_behind() {
    let started = Instant::now();
    let mut demo = Demo::start(1, Duration::from_secs(150));
    let up_after = started.elapsed();

    // The ports the script prints are where things answer.
    let health = opsmon_e2e::get(&format!("http://{}/api/v1/health", demo.api)).unwrap();
    assert_eq!(health.status, 200);
    let metrics = opsmon_e2e::get(&format!("http://{}/metrics", demo.exporters[0])).unwrap().text();
    assert!(metrics.contains("\npg_up 1\n"), "the exporter reaches the demo's PostgreSQL:\n{metrics}");
    // The database password reaches the exporter through the environment only.
    let password = std::fs::read_to_string(demo.tmp.join("secrets/pg-password")).unwrap();
    let password = password.trim();
    assert!(password.len() >= 16);
    let config = std::fs::read_to_string(demo.tmp.join("opsmon.yml")).unwrap();
    assert!(!config.contains(password), "the demo's config holds the database password");
    assert!(!demo.stdout.join("\n").contains(password) && !demo.stderr().contains(password));
    assert!(!metrics.contains(password));

    let queries = panel_queries();
    let mut expected = Vec::new();
    let mut excused = Vec::new();
    for query in &queries {
        let expr = query.resolved(".*", ".*");
        match may_be_empty(query) {
            Some(why) => excused.push(format!("{} — {why}", query.name())),
            None => expected.push((query.name(), expr)),
        }
    }
    let empty = wait_for_data(&demo.prometheus, &expected, Duration::from_secs(75));
    let data_after = started.elapsed();
    assert!(
        empty.is_empty(),
        "{} of {} panel queries show no data in the demo:\n{}\nstderr of the demo:\n{}\nwarnings of the exporter:\n{}",
        empty.len(),
        expected.len(),
        empty.join("\n"),
        demo.stderr(),
        demo.exporter_warnings()
    );
    // Every excuse still names a real panel, so the list cannot rot.
    for (panel, _) in demo::NO_DATA_IN_A_FRESH_PROMETHEUS {
        assert!(queries.iter().any(|q| q.panel == *panel), "excused panel {panel:?} no longer exists");
    }

    // The generated rules are loaded and evaluated.
    let recorded =
        demo::query(&demo.prometheus, "instance:api_http_requests_5xx:ratio_rate5m", None).unwrap();
    assert!(!recorded.is_empty(), "the generated recording rules are not evaluated");

    let stop_took = demo.interrupt(Duration::from_secs(45));
    demo.assert_nothing_left();
    assert!(demo.stderr().contains("stopped everything"), "{}", demo.stderr());
    eprintln!(
        "demo: URLs after {up_after:.1?}, data on {} panel queries after {data_after:.1?} ({} excused: {excused:#?}), stopped in {stop_took:.1?}",
        expected.len(),
        excused.len()
    );
}

#[test]
fn a_taken_port_is_replaced_by_a_free_one_and_said_so() {
    // Something already listens where the stand-in API would go: the demo must
    // say so and use another port, not fail or share it.
    let base = demo::quiet_port_base(16);
    let taken = std::net::TcpListener::bind(("127.0.0.1", base)).unwrap();
    let output = std::process::Command::new("bash")
        .arg(demo::repo("scripts/demo.sh"))
        .args(["--exporters", "9"])
        .env("DEMO_PORT_BASE", base.to_string())
        .output()
        .unwrap();
    // --exporters 9 is refused before anything starts: the argument check runs first.
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--exporters takes 1 to 8"));

    let mut demo_cmd = std::process::Command::new("bash");
    demo_cmd
        .arg(demo::repo("scripts/demo.sh"))
        .args(["--for", "1"])
        .env("DEMO_PORT_BASE", base.to_string())
        .env("OPSMON_EXPORTER_BIN", opsmon_e2e::exporter_bin())
        .env("DEMO_USERS", "10");
    let output = demo_cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo --for 1 failed:\n{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("port {base} (stand-in API) is taken, using ")),
        "no word about the taken port:\n{stderr}"
    );
    let api_line = stdout.lines().find(|l| l.trim_start().starts_with("stand-in API")).unwrap();
    assert!(!api_line.contains(&format!(":{base}/")), "the API took the taken port: {api_line}");
    assert!(stderr.contains("stopped everything"), "{stderr}");
    drop(taken);
}
