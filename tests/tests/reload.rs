//! Live reload end to end (issue 10): SIGHUP and `POST /-/reload` re-read
//! the config file through start-up's checks; a good file swaps the
//! collectors for the next scrape, a bad one is logged with file:line and
//! the old collectors keep serving; the reload gauges say which happened;
//! a password in the bad file shows nowhere.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use opsmon_e2e::{Process, Response, get, parse_exposition};

const PASSWORD: &str = "reload-hunter2-Secret";

/// POST `url` with an empty body; any status is returned.
fn post(url: &str) -> Response {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut response = agent.post(url).send_empty().unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_vec().unwrap();
    Response { status, headers: Default::default(), body }
}

/// A files section with one entry per name, each over its own glob.
fn files_config(dir: &Path, names: &[&str]) -> String {
    let mut yaml = String::from("collectors:\n  files:\n    paths:\n");
    for name in names {
        yaml.push_str(&format!("      - name: {name}\n        glob: {}/{name}.dump\n", dir.display()));
    }
    yaml
}

/// Valid YAML with an unknown field on line 12, right after a DSN carrying a password.
fn broken_config(dir: &Path) -> String {
    format!(
        "{}  postgres:\n    targets:\n      - name: db\n        dsn: postgresql://app:{PASSWORD}@127.0.0.1:1/x\n        statment_timeout: 1s\n",
        files_config(dir, &["first", "second"]).trim_end_matches('\n').to_owned() + "\n"
    )
}

fn scrape(exporter: &Process) -> std::collections::BTreeMap<String, opsmon_e2e::FamilyInfo> {
    parse_exposition(&get(&exporter.url("/metrics")).unwrap().text())
}

fn reload_successful(exporter: &Process) -> f64 {
    scrape(exporter)["opsmon_exporter_config_last_reload_successful"].value(&[]).unwrap()
}

fn files_matched(exporter: &Process, name: &str) -> Option<f64> {
    scrape(exporter).get("opsmon_files_matched").and_then(|family| family.value(&[("name", name)]))
}

/// Waits (bounded) for an asynchronous SIGHUP reload to show in the metrics.
fn wait_for(what: &str, exporter: &Process, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}:\n{}",
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sighup(exporter: &Process) {
    let pid = rustix::process::Pid::from_raw(exporter.pid() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
}

#[test]
fn sighup_swaps_a_good_file_in_and_keeps_the_old_one_on_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["first", "second"] {
        std::fs::write(dir.path().join(format!("{name}.dump")), b"x").unwrap();
    }
    let config = dir.path().join("opsmon.yml");
    std::fs::write(&config, files_config(dir.path(), &["first"])).unwrap();
    let exporter = Process::exporter(&["--config.file", config.to_str().unwrap()]);

    let families = scrape(&exporter);
    assert_eq!(
        families["opsmon_exporter_config_last_reload_successful"].value(&[]),
        Some(1.0),
        "start-up counts"
    );
    let started_at =
        families["opsmon_exporter_config_last_reload_success_timestamp_seconds"].value(&[]).unwrap();
    assert!(started_at > 1.7e9, "{started_at}");
    assert_eq!(files_matched(&exporter, "first"), Some(1.0));
    assert_eq!(files_matched(&exporter, "second"), None);

    // A new files target appears on the next scrapes after SIGHUP.
    std::fs::write(&config, files_config(dir.path(), &["first", "second"])).unwrap();
    sighup(&exporter);
    wait_for("the new target", &exporter, || files_matched(&exporter, "second") == Some(1.0));
    let families = scrape(&exporter);
    assert_eq!(families["opsmon_exporter_config_last_reload_successful"].value(&[]), Some(1.0));
    let reloaded_at =
        families["opsmon_exporter_config_last_reload_success_timestamp_seconds"].value(&[]).unwrap();
    assert!(reloaded_at >= started_at, "{reloaded_at} < {started_at}");
    assert_eq!(families["opsmon_exporter_collector_success"].value(&[("collector", "files")]), Some(1.0));
    assert!(exporter.log().contains("configuration reloaded"), "{}", exporter.log());

    // A bad file: logged with file:line, the old collectors keep serving.
    std::fs::write(&config, broken_config(dir.path())).unwrap();
    sighup(&exporter);
    wait_for("the failed reload", &exporter, || reload_successful(&exporter) == 0.0);
    let families = scrape(&exporter);
    assert_eq!(files_matched(&exporter, "second"), Some(1.0), "the old configuration stays");
    assert_eq!(
        families["opsmon_exporter_config_last_reload_success_timestamp_seconds"].value(&[]),
        Some(reloaded_at),
        "only a success moves the timestamp"
    );
    assert!(!families.contains_key("pg_up"), "nothing of the bad file is in force");
    let log = exporter.log();
    assert!(log.contains(&format!("{}:12:9", config.display())), "file:line:column of the typo:\n{log}");
    assert!(log.contains("statment_timeout"), "{log}");
    assert!(!log.contains(PASSWORD), "the password leaked into the log:\n{log}");
    assert!(!get(&exporter.url("/metrics")).unwrap().text().contains(PASSWORD));

    // Fixing the file recovers on the next SIGHUP.
    std::fs::write(&config, files_config(dir.path(), &["second"])).unwrap();
    sighup(&exporter);
    wait_for("the recovery", &exporter, || reload_successful(&exporter) == 1.0);
    assert_eq!(files_matched(&exporter, "first"), None, "a removed target goes");
    assert_eq!(files_matched(&exporter, "second"), Some(1.0));
}

#[test]
fn reload_endpoint_needs_the_lifecycle_flag_and_reports_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("first.dump"), b"x").unwrap();
    std::fs::write(dir.path().join("second.dump"), b"x").unwrap();
    let config = dir.path().join("opsmon.yml");
    std::fs::write(&config, files_config(dir.path(), &["first"])).unwrap();

    let locked = Process::exporter(&["--config.file", config.to_str().unwrap()]);
    let refused = post(&locked.url("/-/reload"));
    assert_eq!(refused.status, 403);
    assert!(refused.text().contains("--web.enable-lifecycle"), "{}", refused.text());
    assert_eq!(get(&locked.url("/-/reload")).unwrap().status, 405);
    drop(locked);

    let exporter = Process::exporter(&["--config.file", config.to_str().unwrap(), "--web.enable-lifecycle"]);
    assert_eq!(get(&exporter.url("/-/reload")).unwrap().status, 405, "GET never reloads");
    std::fs::write(&config, files_config(dir.path(), &["first", "second"])).unwrap();
    let reloaded = post(&exporter.url("/-/reload"));
    assert_eq!(reloaded.status, 200, "{}", reloaded.text());
    // The endpoint answers after the swap: the very next scrape has the target.
    assert_eq!(files_matched(&exporter, "second"), Some(1.0));

    std::fs::write(&config, broken_config(dir.path())).unwrap();
    let failed = post(&exporter.url("/-/reload"));
    assert_eq!(failed.status, 500);
    let body = failed.text();
    assert!(body.contains(&format!("{}:12:9", config.display())), "{body}");
    assert!(!body.contains(PASSWORD), "the password leaked into the response:\n{body}");
    assert!(!exporter.log().contains(PASSWORD), "the password leaked into the log");
    assert_eq!(reload_successful(&exporter), 0.0);
    assert_eq!(files_matched(&exporter, "second"), Some(1.0), "the old configuration stays");

    // Reloads never interleave: several at once each finish with an answer
    // and the last good file wins.
    std::fs::write(&config, files_config(dir.path(), &["second"])).unwrap();
    let answers: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..4).map(|_| scope.spawn(|| post(&exporter.url("/-/reload")).status)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(answers, vec![200; 4]);
    assert_eq!(reload_successful(&exporter), 1.0);
    assert_eq!(files_matched(&exporter, "first"), None);
}

#[test]
fn without_a_config_file_a_reload_rereads_the_environment() {
    let exporter = Process::exporter(&["--web.enable-lifecycle"]);
    let reloaded = post(&exporter.url("/-/reload"));
    assert_eq!(reloaded.status, 200, "{}", reloaded.text());
    let families = scrape(&exporter);
    assert_eq!(families["opsmon_exporter_config_last_reload_successful"].value(&[]), Some(1.0));
    assert_eq!(families["opsmon_exporter_collector_success"].value(&[("collector", "host")]), Some(1.0));
}
