//! The hand-written scenario tests in `tests/scenarios/` (one file per area
//! of the ops guide: host, API, dependencies, business, delivery) run with
//! the real `promtool test rules` against the generated
//! `deploy/prometheus/rules.yml`. Unlike the generated promtool tests, they
//! are written from the guide, so they catch a rule that watches the wrong
//! thing.

use opsmon_e2e::require_tool;
use std::path::PathBuf;
use std::process::Command;

/// The areas the issue asks a scenario file for; each must exist.
const AREAS: &[&str] = &["api", "business", "delivery", "dependencies", "host"];

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn scenario_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("tests/scenarios is readable")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".test.yml")))
        .collect();
    files.sort();
    files
}

#[test]
fn every_area_has_a_scenario_file() {
    let names: Vec<String> = scenario_files()
        .iter()
        .filter_map(|p| p.file_name()?.to_str()?.strip_suffix(".test.yml").map(str::to_owned))
        .collect();
    for area in AREAS {
        assert!(
            names.iter().any(|n| n == area),
            "tests/scenarios/{area}.test.yml is missing (found {names:?})"
        );
    }
}

#[test]
fn every_scenario_passes_promtool() {
    let promtool = require_tool("promtool", "prometheus");
    let mut failures = Vec::new();
    for file in scenario_files() {
        let text = std::fs::read_to_string(&file).expect("scenario readable");
        // A scenario must test the generated rules, not rules of its own.
        assert!(
            text.contains("rule_files: [../../deploy/prometheus/rules.yml]"),
            "{} must test ../../deploy/prometheus/rules.yml",
            file.display()
        );
        // promtool resolves rule_files relative to the test file's directory.
        let output = Command::new(&promtool)
            .args(["test", "rules"])
            .arg(file.file_name().expect("file name"))
            .current_dir(scenarios_dir())
            .output()
            .expect("promtool runs");
        if !output.status.success() {
            failures.push(format!(
                "{}:\n{}{}",
                file.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "scenario failures:\n{}", failures.join("\n"));
}
