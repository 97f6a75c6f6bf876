//! FIFOs and devices where a log or a file glob expects regular files: an
//! error naming the path, the other files still read, and no thread ever
//! blocked in `open` (so SIGTERM still stops the exporter at once).

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::Duration;

use opsmon_e2e::{Process, parse_exposition};

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn a_fifo_at_a_log_path_or_in_a_glob_is_refused_by_name_and_blocks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fifo_log = dir.path().join("fifo-access.log");
    mkfifo(&fifo_log);
    let good_log = dir.path().join("access.log");
    std::fs::write(&good_log, "").unwrap();
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    std::fs::write(backups.join("db.dump"), vec![1_u8; 100]).unwrap();
    mkfifo(&backups.join("pipe.dump"));

    let config = dir.path().join("opsmon.yml");
    std::fs::write(
        &config,
        format!(
            "collectors:\n  host: {{enabled: false}}\n  accesslog:\n    poll_interval: 100ms\n    start_at: beginning\n    files:\n      - path: {fifo}\n      - path: {good}\n  files:\n    paths:\n      - name: backups\n        glob: {backups}/*.dump\n",
            fifo = fifo_log.display(),
            good = good_log.display(),
            backups = backups.display(),
        ),
    )
    .unwrap();
    let mut exporter = Process::exporter(&["--config.file", config.to_str().unwrap()]);
    let mut log = std::fs::OpenOptions::new().append(true).open(&good_log).unwrap();
    writeln!(log, "127.0.0.1 - - [29/Nov/2026:10:00:00 +0000] \"GET /api/x HTTP/1.1\" 200 5 \"-\" \"curl\"")
        .unwrap();

    for _ in 0..3 {
        let response = get_with_timeout(&exporter);
        let families = parse_exposition(&response);
        let success = |collector: &str| {
            families["opsmon_exporter_collector_success"].value(&[("collector", collector)]).unwrap()
        };
        assert_eq!(success("accesslog"), 0.0, "the FIFO is an error");
        assert_eq!(success("files"), 0.0, "the FIFO in the glob is an error");
        // Only that file: the regular log and the regular dump are still read.
        let good = good_log.display().to_string();
        assert_eq!(families["opsmon_accesslog_lines_total"].value(&[("file", &good)]), Some(1.0));
        assert_eq!(families["opsmon_files_matched"].value(&[("name", "backups")]), Some(1.0));
        assert_eq!(families["opsmon_files_size_bytes"].value(&[("name", "backups")]), Some(100.0));
    }
    let output = exporter.log();
    assert!(output.contains("fifo-access.log is a FIFO; only regular files are read"), "{output}");
    assert!(output.contains("pipe.dump is a FIFO; files globs count only regular files"), "{output}");

    let status = exporter.signal_and_wait(rustix::process::Signal::TERM, Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "stopped at once on SIGTERM: {status:?}\n{}",
        exporter.log()
    );
}

/// A scrape that must answer within its budget even with a FIFO configured.
fn get_with_timeout(exporter: &Process) -> String {
    let response =
        opsmon_e2e::get_with(&exporter.url("/metrics"), &[("X-Prometheus-Scrape-Timeout-Seconds", "3")])
            .unwrap_or_else(|e| panic!("no answer: {e}\n{}", exporter.log()));
    assert_eq!(response.status, 200);
    response.text()
}
