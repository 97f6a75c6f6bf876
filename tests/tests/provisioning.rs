//! The provisioning files under deploy/: Prometheus configs for many hosts
//! (file_sd), backends through /probe and a hashmod-sharded setup, each judged
//! by `promtool check config` (which also reads the file_sd files and the rule
//! files they load); the Grafana data source and dashboard provider read
//! against the committed dashboards/. (The relabelling itself runs in a real
//! Prometheus in many_hosts.rs.) Wall time: about 2 s.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use opsmon_e2e::require_tool;
use serde_json::Value;

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `promtool check config FILE`: (success, stdout + stderr).
fn promtool_check_config(file: &Path) -> (bool, String) {
    let output = Command::new(require_tool("promtool", "prometheus"))
        .args(["check", "config"])
        .arg(file)
        .output()
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

const PROMETHEUS_CONFIGS: &[&str] = &[
    "deploy/prometheus/prometheus.yml",
    "deploy/prometheus/many-hosts.yml",
    "deploy/prometheus/sharded/shard-0.yml",
    "deploy/prometheus/sharded/shard-1.yml",
    "deploy/prometheus/sharded/federate.yml",
];

#[test]
fn every_prometheus_config_passes_promtool_and_loads_the_generated_rules_unchanged() {
    let rules = repo("deploy/prometheus/rules.yml").canonicalize().unwrap();
    for config in PROMETHEUS_CONFIGS {
        let path = repo(config);
        let (ok, text) = promtool_check_config(&path);
        assert!(ok, "promtool check config {config}:\n{text}");
        let parsed = yaml(&path);
        let rule_files: Vec<PathBuf> = parsed["rule_files"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| path.parent().unwrap().join(f.as_str().unwrap()).canonicalize().unwrap())
            .collect();
        if config.ends_with("federate.yml") {
            // The global view must not evaluate the shards' rules a second time.
            assert!(rule_files.is_empty(), "{config} loads rules: {rule_files:?}");
        } else {
            assert_eq!(rule_files, vec![rules.clone()], "{config} must load the generated rules.yml itself");
            assert!(text.contains("rules found"), "promtool did not read the rules of {config}:\n{text}");
        }
    }
}

#[test]
fn file_sd_and_probe_jobs_relabel_like_blackbox() {
    let config = yaml(&repo("deploy/prometheus/many-hosts.yml"));
    let jobs = config["scrape_configs"].as_array().unwrap();
    let job =
        |name: &str| jobs.iter().find(|j| j["job_name"] == name).unwrap_or_else(|| panic!("no job {name}"));
    // Hosts: file_sd, keeping the address as instance (no relabelling).
    assert!(job("opsmon")["file_sd_configs"][0]["files"].as_array().is_some());
    assert!(job("opsmon")["relabel_configs"].is_null());
    for name in ["opsmon-backends", "opsmon-http"] {
        let job = job(name);
        assert_eq!(job["metrics_path"], "/probe", "{name}");
        let steps: Vec<(String, String)> = job["relabel_configs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["source_labels"][0].as_str().unwrap().to_owned(),
                    r["target_label"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected = [
            ("__address__", "__param_target"),
            ("__param_target", "instance"),
            ("__exporter", "__address__"),
        ];
        let expected: Vec<(String, String)> =
            expected.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
        assert_eq!(steps, expected, "{name}");
    }
    // Every file_sd file is a list of groups with targets, and every /probe
    // group names the exporter that serves it.
    for file in ["opsmon-hosts.yml", "opsmon-backends.yml", "opsmon-http.yml"] {
        let groups = yaml(&repo(&format!("deploy/prometheus/targets/{file}")));
        for group in groups.as_array().unwrap() {
            assert!(!group["targets"].as_array().unwrap().is_empty(), "{file}: a group without targets");
            if file != "opsmon-hosts.yml" {
                assert!(group["labels"]["__exporter"].is_string(), "{file}: a group without __exporter");
            }
        }
    }
}

#[test]
fn shards_split_every_job_by_hashmod_and_cover_the_same_targets() {
    let many = yaml(&repo("deploy/prometheus/many-hosts.yml"));
    let job_files = |config: &Value| -> BTreeSet<(String, String)> {
        config["scrape_configs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| {
                let file = j["file_sd_configs"][0]["files"][0].as_str().unwrap();
                (
                    j["job_name"].as_str().unwrap().to_owned(),
                    Path::new(file).file_name().unwrap().to_string_lossy().into(),
                )
            })
            .collect()
    };
    for shard in 0..2 {
        let path = repo(&format!("deploy/prometheus/sharded/shard-{shard}.yml"));
        let config = yaml(&path);
        assert_eq!(
            job_files(&config),
            job_files(&many),
            "shard {shard} scrapes other jobs than many-hosts.yml"
        );
        assert_eq!(config["global"]["external_labels"]["shard"], shard.to_string().as_str());
        for job in config["scrape_configs"].as_array().unwrap() {
            let relabel = job["relabel_configs"].as_array().unwrap();
            // The split comes first, on the address every target has.
            assert_eq!(relabel[0]["action"], "hashmod", "{}", job["job_name"]);
            assert_eq!(relabel[0]["modulus"], 2);
            assert_eq!(relabel[0]["source_labels"][0], "__address__");
            assert_eq!(relabel[1]["action"], "keep");
            assert_eq!(relabel[1]["regex"], shard.to_string().as_str());
            assert_eq!(relabel[1]["source_labels"][0], relabel[0]["target_label"]);
            let file = job["file_sd_configs"][0]["files"][0].as_str().unwrap();
            assert!(path.parent().unwrap().join(file).is_file(), "shard {shard}: {file} missing");
        }
    }
}

#[test]
fn promtool_rejects_a_broken_targets_file() {
    // The other direction: a typo in a file_sd file fails the check, naming it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("targets")).unwrap();
    for file in ["opsmon-backends.yml", "opsmon-http.yml"] {
        std::fs::copy(
            repo(&format!("deploy/prometheus/targets/{file}")),
            dir.path().join("targets").join(file),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("targets/opsmon-hosts.yml"), "- tragets: ['127.0.0.1:19100']\n").unwrap();
    std::fs::copy(repo("deploy/prometheus/rules.yml"), dir.path().join("rules.yml")).unwrap();
    std::fs::copy(repo("deploy/prometheus/many-hosts.yml"), dir.path().join("many-hosts.yml")).unwrap();
    let (ok, text) = promtool_check_config(&dir.path().join("many-hosts.yml"));
    assert!(!ok, "promtool accepted a broken targets file:\n{text}");
    assert!(text.contains("opsmon-hosts.yml") && text.contains("tragets"), "{text}");
}

fn dashboards() -> Vec<(PathBuf, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("dashboards"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let board = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p, board)
        })
        .collect()
}

/// Every `datasource` object anywhere in a dashboard.
fn datasources<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "datasource" {
                    out.push(inner);
                }
                datasources(inner, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| datasources(v, out)),
        _ => {}
    }
}

#[test]
fn grafana_provisioning_serves_the_committed_dashboards() {
    let base = repo("deploy/grafana/provisioning");
    let sources = yaml(&base.join("datasources/opsmon.yml"));
    assert_eq!(sources["apiVersion"], 1);
    let list = sources["datasources"].as_array().unwrap();
    assert_eq!(list.len(), 1, "one data source: {list:?}");
    let source = &list[0];
    assert_eq!(source["type"], "prometheus");
    assert_eq!(source["access"], "proxy");
    // The dashboards' datasource variable falls back to the default source.
    assert_eq!(source["isDefault"], true);
    assert!(source["url"].as_str().unwrap().starts_with("http"), "{source:?}");
    assert!(source["uid"].is_string());

    let providers = yaml(&base.join("dashboards/opsmon.yml"));
    assert_eq!(providers["apiVersion"], 1);
    let provider = &providers["providers"][0];
    assert_eq!(provider["type"], "file");
    assert!(provider["options"]["path"].as_str().unwrap().starts_with('/'), "Grafana wants an absolute path");
    assert_eq!(provider["allowUiUpdates"], false, "generated dashboards are not edited in the UI");

    // What the provider will load: the committed dashboards, each provisionable
    // (a unique uid, no import-wizard inputs, every query through the
    // `datasource` variable of the provisioned type).
    let boards = dashboards();
    assert!(boards.len() >= 2, "dashboards/ holds {} dashboards", boards.len());
    let mut uids = BTreeSet::new();
    for (path, board) in &boards {
        let name = path.display();
        let uid = board["uid"].as_str().unwrap_or_else(|| panic!("{name}: no uid"));
        assert!(uids.insert(uid.to_owned()), "{name}: uid {uid} used twice");
        assert!(board.get("__inputs").is_none(), "{name}: __inputs only resolve in the import wizard");
        let text = serde_json::to_string(board).unwrap();
        assert!(!text.contains("${DS_"), "{name}: ${{DS_…}} only resolves in the import wizard");
        let variables = board["templating"]["list"].as_array().unwrap();
        let datasource = variables
            .iter()
            .find(|v| v["type"] == "datasource")
            .unwrap_or_else(|| panic!("{name}: no datasource variable"));
        assert_eq!(datasource["query"], source["type"], "{name}: the datasource variable wants another type");
        let variable = format!("${{{}}}", datasource["name"].as_str().unwrap());
        let mut refs = Vec::new();
        datasources(board, &mut refs);
        assert!(!refs.is_empty());
        // Grafana's built-in annotation source is the only other reference.
        for reference in refs.into_iter().filter(|r| r["type"] != "grafana") {
            assert_eq!(
                reference["uid"],
                variable.as_str(),
                "{name}: a data source other than {variable}: {reference}"
            );
        }
    }
}
