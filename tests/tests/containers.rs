//! Running in a container: the host collector reads a host mounted elsewhere
//! through `--path.procfs` and `--path.rootfs` (a fake procfs built from the
//! captured fixtures, a temp dir as rootfs), a missing mount leaves the node_*
//! families out with the collector's success 0 and a message naming the path,
//! `--no-collector.NAME` switches a collector off, and the Containerfile has
//! the shape the README promises. Wall time: about 2 s.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use opsmon_e2e::{Process, get, parse_exposition};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../exporter/tests/fixtures/proc");

fn workspace_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURES).join(name)).unwrap()
}

/// A host as a container sees it: `proc/` laid out like /proc from the
/// captured fixtures and `root/` with two mounted filesystems.
fn mounted_host(dir: &Path) -> (PathBuf, PathBuf) {
    let proc = dir.join("proc");
    let root = dir.join("root");
    for name in ["stat", "meminfo", "diskstats", "vmstat"] {
        write(&proc.join(name), &fixture(name));
    }
    write(&proc.join("net/dev"), &fixture("net_dev"));
    write(&proc.join("loadavg"), "1.25 0.75 0.50 3/1127 912881\n");
    write(&proc.join("sys/fs/file-nr"), "2048\t0\t9223372036854775807\n");
    // PID 1's mount table in the host's own names, plus one line as a
    // container's own table shows a bind mount (under the rootfs).
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::create_dir_all(root.join("srv")).unwrap();
    write(
        &proc.join("1/mounts"),
        &format!(
            "/dev/vda1 / ext4 rw,relatime 0 0\n/dev/vdb1 /data ext4 ro,relatime 0 0\n/dev/vdc1 {}/srv xfs rw 0 0\nproc /proc proc rw 0 0\n",
            root.display()
        ),
    );
    // One process of the host: a SmarTalk backend with 250+50 CPU ticks.
    write(
        &proc.join("4242/stat"),
        "4242 (node) S 1 4242 4242 0 -1 4194560 9186 0 0 0 250 50 0 0 20 0 11 0 1939 1193906176 12345 18446744073709551615 1 1 0 0 0 0 0 4096 134234626 0 0 0 17 1 0 0 0 0 0\n",
    );
    write(&proc.join("4242/cmdline"), "node\0/srv/smartalk/server.js\0");
    // The name as /proc/PID/comm gives it (every kernel since 2.6.33 has the file; the
    // process groups read it first and stat only for the processes that match).
    write(&proc.join("4242/comm"), "node\n");
    (proc, root)
}

const CONFIG: &str =
    "collectors:\n  host:\n    process_groups:\n      - name: api\n        cmdline: 'node .*smartalk'\n";

#[test]
fn the_host_collector_reads_a_mounted_host_through_the_path_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (proc, root) = mounted_host(dir.path());
    let config = dir.path().join("opsmon.yml");
    write(&config, CONFIG);
    let exporter = Process::exporter(&[
        &format!("--config.file={}", config.display()),
        &format!("--path.procfs={}", proc.display()),
        &format!("--path.sysfs={}", dir.path().join("sys").display()),
        &format!("--path.rootfs={}", root.display()),
    ]);
    let text = get(&exporter.url("/metrics")).unwrap().text();
    let families = parse_exposition(&text);
    let value = |name: &str, labels: &[(&str, &str)]| {
        families
            .get(name)
            .and_then(|f| f.value(labels))
            .unwrap_or_else(|| panic!("{name}{labels:?} missing:\n{text}"))
    };
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    assert_eq!(
        value("opsmon_exporter_collector_success", &[("collector", "host")]),
        1.0,
        "{}",
        exporter.log()
    );
    assert_eq!(value("node_cpu_seconds_total", &[("cpu", "0"), ("mode", "user")]), 31_226.0 / ticks);
    assert_eq!(value("node_boot_time_seconds", &[]), 1_764_093_226.0);
    assert_eq!(value("node_load1", &[]), 1.25);
    assert_eq!(value("node_memory_MemTotal_bytes", &[]), 24_614_008.0 * 1024.0);
    assert_eq!(value("node_network_receive_bytes_total", &[("device", "eth0")]), 1_572_869_455.0);
    assert!((value("node_disk_io_time_seconds_total", &[("device", "vda")]) - 11.396).abs() < 1e-9);
    assert_eq!(value("node_vmstat_pgmajfault", &[]), 3_339.0);
    assert_eq!(value("node_filefd_allocated", &[]), 2_048.0);
    assert_eq!(value("opsmon_processes", &[("group", "api")]), 1.0, "the fake host's process, not ours");
    assert_eq!(value("opsmon_process_cpu_seconds_total", &[("group", "api")]), 300.0 / ticks);

    // Mount points as the host names them; space measured under the rootfs.
    let mount_points: Vec<&str> = families["node_filesystem_size_bytes"]
        .samples
        .iter()
        .filter_map(|(_, labels, _)| labels.get("mountpoint").map(String::as_str))
        .collect();
    assert_eq!(mount_points.len(), 3, "{mount_points:?}");
    for expected in ["/", "/data", "/srv"] {
        assert!(mount_points.contains(&expected), "{expected} missing from {mount_points:?}");
    }
    assert_eq!(value("node_filesystem_readonly", &[("mountpoint", "/data")]), 1.0);
    assert_eq!(value("node_filesystem_device_error", &[("mountpoint", "/srv")]), 0.0);
    assert!(!text.contains(&root.display().to_string()), "the rootfs prefix is stripped:\n{text}");
}

#[test]
fn a_missing_host_mount_leaves_node_families_out_and_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let (proc, root) = mounted_host(dir.path());
    let missing_proc = dir.path().join("not-mounted/proc");
    let missing_root = dir.path().join("not-mounted/root");
    for (args, named, flag) in [
        (
            vec![
                format!("--path.procfs={}", missing_proc.display()),
                format!("--path.rootfs={}", root.display()),
            ],
            &missing_proc,
            "--path.procfs",
        ),
        (
            vec![
                format!("--path.procfs={}", proc.display()),
                format!("--path.rootfs={}", missing_root.display()),
            ],
            &missing_root,
            "--path.rootfs",
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let exporter = Process::exporter(&args);
        let text = get(&exporter.url("/metrics")).unwrap().text();
        let node_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("node_")).collect();
        assert!(node_lines.is_empty(), "{flag}: no node_* family without the host: {node_lines:?}");
        let families = parse_exposition(&text);
        assert_eq!(
            families["opsmon_exporter_collector_success"].value(&[("collector", "host")]),
            Some(0.0),
            "{text}"
        );
        assert!(text.contains("opsmon_exporter_build_info"), "the rest of the scrape is served");
        let log = exporter.log();
        assert!(
            log.contains(&named.display().to_string()) && log.contains(flag),
            "the log names {} and {flag}:\n{log}",
            named.display()
        );
        assert!(!log.contains("panicked"), "{log}");
    }
}

#[test]
fn no_collector_flag_switches_the_host_collector_off_over_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("opsmon.yml");
    write(&config, CONFIG);
    let exporter =
        Process::exporter(&[&format!("--config.file={}", config.display()), "--no-collector.host"]);
    let text = get(&exporter.url("/metrics")).unwrap().text();
    assert!(!text.lines().any(|l| l.starts_with("node_")), "{text}");
    assert!(!text.contains("collector=\"host\""), "{text}");

    // Switching on what has nothing to collect is a usage error naming the flag.
    let output = std::process::Command::new(opsmon_e2e::exporter_bin())
        .args([&format!("--config.file={}", config.display()), "--collector.redis", "--config.check"])
        .env_remove("REDIS_ADDR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--collector.redis") && stderr.contains("REDIS_ADDR"), "{stderr}");
}

#[test]
fn containerfile_is_multi_stage_non_root_and_exposes_the_port() {
    let text = std::fs::read_to_string(workspace_file("Containerfile")).unwrap();
    let instructions: Vec<&str> =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let from: Vec<&&str> = instructions.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(from.len(), 2, "a build stage and a runtime stage: {from:?}");
    assert!(from[0].contains("rust") && from[0].ends_with(" AS build"), "{from:?}");
    assert!(from[1].contains("debian:bookworm-slim"), "{from:?}");
    assert!(
        instructions.iter().any(|l| l.starts_with("COPY --from=build ")),
        "the binary comes from the build stage"
    );
    let user = instructions.iter().rev().find(|l| l.starts_with("USER ")).expect("a USER");
    assert!(!user.contains("root") && !user.starts_with("USER 0"), "{user}");
    assert!(instructions.contains(&"EXPOSE 19100"), "{instructions:?}");
    assert!(
        !instructions.iter().any(|l| l.starts_with("HEALTHCHECK")),
        "no HEALTHCHECK: orchestrators probe /-/ready"
    );
}
