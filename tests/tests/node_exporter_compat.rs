//! Compatibility with Debian's prometheus-node-exporter on the same machine:
//! every `node_*` family we emit exists there with the same type and label
//! names, and the values that cannot drift between two scrapes agree.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use opsmon_e2e::{FamilyInfo, Process, free_port, get, parse_exposition, require_tool};

fn scrape_both() -> (BTreeMap<String, FamilyInfo>, BTreeMap<String, FamilyInfo>) {
    let node_exporter = require_tool("prometheus-node-exporter", "prometheus-node-exporter");
    let port = free_port();
    // Debian patches node_exporter's default to also skip /run, /mnt and
    // /media; we keep upstream's default, so give the peer the same selection.
    let node = Process::start(
        &node_exporter,
        &[
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!(
                "--collector.filesystem.mount-points-exclude={}",
                opsmon_exporter::collectors::host::DEFAULT_MOUNT_POINTS_EXCLUDE
            ),
        ],
        port,
        "/metrics",
    );
    let ours = Process::exporter(&[]);
    let theirs = parse_exposition(&get(&node.url("/metrics")).unwrap().text());
    let mine = parse_exposition(&get(&ours.url("/metrics")).unwrap().text());
    (mine, theirs)
}

#[test]
fn node_families_match_node_exporter() {
    let (mine, theirs) = scrape_both();
    let node_families: Vec<&String> = mine.keys().filter(|name| name.starts_with("node_")).collect();
    assert!(node_families.len() >= 25, "expected the host families, got {node_families:?}");
    for name in node_families {
        let ours = &mine[name];
        let peer = theirs.get(name).unwrap_or_else(|| panic!("{name} is not emitted by node_exporter"));
        assert_eq!(ours.metric_type, peer.metric_type, "{name}: type differs");
        assert_eq!(ours.label_names, peer.label_names, "{name}: label names differ");
    }
}

#[test]
fn memory_cpus_and_filesystem_sizes_agree() {
    let (mine, theirs) = scrape_both();

    let total =
        |families: &BTreeMap<String, FamilyInfo>| families["node_memory_MemTotal_bytes"].value(&[]).unwrap();
    assert_eq!(total(&mine), total(&theirs), "MemTotal");

    let cpus = |families: &BTreeMap<String, FamilyInfo>| -> BTreeSet<String> {
        families["node_cpu_seconds_total"]
            .samples
            .iter()
            .map(|(_, labels, _)| labels["cpu"].clone())
            .collect()
    };
    assert_eq!(cpus(&mine), cpus(&theirs), "cpu count");
    assert_eq!(cpus(&mine).len(), std::thread::available_parallelism().unwrap().get());

    let modes = |families: &BTreeMap<String, FamilyInfo>| -> BTreeSet<String> {
        families["node_cpu_seconds_total"]
            .samples
            .iter()
            .map(|(_, labels, _)| labels["mode"].clone())
            .collect()
    };
    assert_eq!(modes(&mine), modes(&theirs), "cpu modes");

    let sizes = |families: &BTreeMap<String, FamilyInfo>| -> BTreeMap<(String, String, String), f64> {
        families["node_filesystem_size_bytes"]
            .samples
            .iter()
            .map(|(_, l, v)| ((l["mountpoint"].clone(), l["device"].clone(), l["fstype"].clone()), *v))
            .collect()
    };
    let (my_sizes, peer_sizes) = (sizes(&mine), sizes(&theirs));
    assert!(!my_sizes.is_empty());
    assert_eq!(
        my_sizes.keys().collect::<Vec<_>>(),
        peer_sizes.keys().collect::<Vec<_>>(),
        "the same mounts are reported"
    );
    for (mount, size) in &my_sizes {
        assert_eq!(Some(size), peer_sizes.get(mount), "size of {mount:?}");
    }

    let boot =
        |families: &BTreeMap<String, FamilyInfo>| families["node_boot_time_seconds"].value(&[]).unwrap();
    assert!((boot(&mine) - boot(&theirs)).abs() <= 1.0, "boot time");
    let uname = |families: &BTreeMap<String, FamilyInfo>| families["node_uname_info"].samples[0].1.clone();
    assert_eq!(uname(&mine), uname(&theirs), "uname labels");

    // The kernel clock, read by both through adjtimex(2) milliseconds apart.
    let timex = |families: &BTreeMap<String, FamilyInfo>, name: &str| {
        families.get(name).and_then(|f| f.value(&[])).unwrap_or_else(|| panic!("{name} missing"))
    };
    for name in ["node_timex_sync_status", "node_timex_tick_seconds", "node_timex_tai_offset_seconds"] {
        assert_eq!(timex(&mine, name), timex(&theirs, name), "{name}");
    }
    // maxerror grows by 500 µs per second between NTP updates; the offset
    // moves by at most the slew rate.
    for (name, tolerance) in [("node_timex_maxerror_seconds", 0.01), ("node_timex_offset_seconds", 0.01)] {
        let (ours, peer) = (timex(&mine, name), timex(&theirs, name));
        assert!((ours - peer).abs() <= tolerance, "{name}: {ours} vs node_exporter's {peer}");
    }
    let ratio = timex(&mine, "node_timex_frequency_adjustment_ratio");
    assert!((ratio - timex(&theirs, "node_timex_frequency_adjustment_ratio")).abs() < 1e-6, "frequency");
}
