//! Fixture catalog, exporter config and threshold file, and helpers to run
//! the external tools the tests need.

use opsmon_catalog::MetricType::{Counter, Gauge, Histogram};
use opsmon_catalog::Unit::{Bytes, None, Ratio, Seconds};
use opsmon_catalog::{MetricDef, MetricType, Unit};
use opsmon_rulegen::known::Known;
use opsmon_rulegen::model::Model;
use opsmon_rulegen::render::Output;
use std::path::{Path, PathBuf};
use std::process::Command;

const fn def(
    name: &'static str,
    metric_type: MetricType,
    unit: Unit,
    labels: &'static [&'static str],
    collector: &'static str,
) -> MetricDef {
    MetricDef { name, metric_type, unit, help: "fixture", labels, collector }
}

/// The families the fixture threshold file may use.
pub const CATALOG: &[MetricDef] = &[
    def("node_cpu_seconds_total", Counter, Seconds, &["cpu", "mode"], "host"),
    def("node_load1", Gauge, None, &[], "host"),
    def("node_memory_MemAvailable_bytes", Gauge, Bytes, &[], "host"),
    def("node_memory_MemTotal_bytes", Gauge, Bytes, &[], "host"),
    def("node_filesystem_avail_bytes", Gauge, Bytes, &["device", "fstype", "mountpoint"], "host"),
    def("node_filesystem_size_bytes", Gauge, Bytes, &["device", "fstype", "mountpoint"], "host"),
    def("pg_up", Gauge, None, &[], "postgres"),
    def("http_requests_total", Counter, None, &["method", "route", "status"], "accesslog"),
    def("http_request_duration_seconds", Histogram, Seconds, &["method", "route"], "accesslog"),
    def("opsmon_files_newest_timestamp_seconds", Gauge, Seconds, &["name"], "files"),
    def("probe_success", Gauge, None, &["target"], "probe"),
    def("unused_ratio", Gauge, Ratio, &[], "probe"),
];

/// This crate's directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    crate_dir().parent().expect("workspace root").to_owned()
}

/// A fixture file's path.
pub fn path(name: &str) -> PathBuf {
    crate_dir().join("tests/integration/fixtures").join(name)
}

/// A fixture file's text.
pub fn text(name: &str) -> String {
    std::fs::read_to_string(path(name)).expect("fixture readable")
}

/// Fixture catalog plus the fixture exporter config's business metrics.
pub fn known() -> Known {
    let mut known = Known::from_defs(CATALOG);
    known.add_exporter_config("exporter.yml", &text("exporter.yml")).expect("fixture exporter config");
    known
}

/// Name the fixture is reported under (as `rulegen` would with its default path).
pub const SOURCE: &str = "thresholds.yaml";

/// Validates threshold text against the fixture catalog.
pub fn validate(text: &str) -> Result<Model, String> {
    opsmon_rulegen::validate::validate(SOURCE, text, &known()).map_err(|e| e.to_string())
}

/// The fixture's model.
pub fn model() -> Model {
    match validate(&text("thresholds.yaml")) {
        Ok(model) => model,
        Err(e) => panic!("fixture invalid:\n{e}"),
    }
}

/// The fixture's outputs.
pub fn outputs() -> Vec<Output> {
    opsmon_rulegen::render::all(&model())
}

/// Writes outputs under a fresh temporary directory.
pub fn write(outputs: &[Output]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for o in outputs {
        let p = dir.path().join(&o.path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, &o.content).expect("write");
    }
    dir
}

/// The path of `tool`, or a failure saying how to install it.
pub fn require(tool: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(tool)).find(|p| p.is_file()));
    let Some(p) = found else {
        panic!(
            "`{tool}` is not installed; install Debian's `{package}` (apt-get install {package}), or run scripts/test.sh which installs it"
        )
    };
    p
}

/// Runs a command; panics with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{text}", out.status);
    text
}

/// Runs promtool check and test over a directory holding deploy/prometheus.
pub fn promtool(root: &Path) {
    let promtool = require("promtool", "prometheus");
    let dir = root.join("deploy/prometheus");
    let check = run(Command::new(&promtool).current_dir(&dir).args(["check", "rules", "rules.yml"]));
    assert!(check.contains("SUCCESS"), "{check}");
    let test = run(Command::new(&promtool).current_dir(&dir).args(["test", "rules", "rules.test.yml"]));
    assert!(test.contains("SUCCESS"), "{test}");
}

/// Runs amtool check-config and the generated routes test over a directory.
pub fn amtool(root: &Path) {
    let amtool = require("amtool", "prometheus-alertmanager");
    let dir = root.join("deploy/alertmanager");
    let check = run(Command::new(&amtool).current_dir(&dir).args(["check-config", "alertmanager.yml"]));
    assert!(check.contains("SUCCESS"), "{check}");
    let routes = run(Command::new("sh").current_dir(&dir).arg("routes-test.sh"));
    assert!(!routes.contains("FAIL"), "{routes}");
}
