//! The files collector end to end: backup directories and heartbeat files
//! as the exporter reports them, including paths that do not exist.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use opsmon_e2e::{Process, get, parse_exposition, promtool_problems};

fn set_mtime(path: &std::path::Path, unix: u64) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(unix)).unwrap();
}

#[test]
fn backups_heartbeats_and_missing_paths() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    for (name, size, mtime) in [("db-1.dump", 1000, 1_764_000_000), ("db-2.dump", 2500, 1_764_086_400)] {
        std::fs::write(backups.join(name), vec![1u8; size]).unwrap();
        set_mtime(&backups.join(name), mtime);
    }
    let heartbeat = dir.path().join("daily-report.ok");
    std::fs::write(&heartbeat, "").unwrap();
    set_mtime(&heartbeat, 1_764_090_000);

    let config = dir.path().join("opsmon.yml");
    std::fs::write(
        &config,
        format!(
            "collectors:\n  files:\n    paths:\n      - name: postgres_backup\n        glob: {}/*.dump\n      - name: heartbeat_daily_report\n        glob: {}\n      - name: missing\n        glob: /nonexistent/opsmon/*.tar\n",
            backups.display(),
            heartbeat.display()
        ),
    )
    .unwrap();
    let exporter = Process::exporter(&["--config.file", config.to_str().unwrap()]);
    let text = get(&exporter.url("/metrics")).unwrap().text();
    let problems = promtool_problems(&text);
    assert!(problems.is_empty(), "{problems:?}");
    let families = parse_exposition(&text);

    let value = |family: &str, name: &str| families[family].value(&[("name", name)]).unwrap();
    assert_eq!(value("opsmon_files_matched", "postgres_backup"), 2.0);
    assert_eq!(value("opsmon_files_newest_timestamp_seconds", "postgres_backup"), 1_764_086_400.0);
    assert_eq!(value("opsmon_files_newest_size_bytes", "postgres_backup"), 2500.0);
    assert_eq!(value("opsmon_files_size_bytes", "postgres_backup"), 3500.0);
    assert_eq!(value("opsmon_files_newest_timestamp_seconds", "heartbeat_daily_report"), 1_764_090_000.0);
    assert_eq!(value("opsmon_files_matched", "missing"), 0.0);
    assert_eq!(value("opsmon_files_newest_timestamp_seconds", "missing"), 0.0);
    assert_eq!(families["opsmon_exporter_collector_success"].value(&[("collector", "files")]), Some(1.0));

    // A job touching its heartbeat shows on the next scrape.
    set_mtime(&heartbeat, 1_764_100_000);
    let families = parse_exposition(&get(&exporter.url("/metrics")).unwrap().text());
    assert_eq!(
        families["opsmon_files_newest_timestamp_seconds"].value(&[("name", "heartbeat_daily_report")]),
        Some(1_764_100_000.0)
    );
}
