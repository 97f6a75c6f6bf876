//! The Kubernetes manifests (deploy/kubernetes): rendered as `kubectl apply -k`
//! would, validated offline against the Kubernetes schemas (kubernetes-validate
//! from PyPI, strict) and the prometheus-operator models
//! (@kubernetes-models/prometheus-operator from npm, type-checked with
//! TypeScript and validated at run time), both installed from their registry
//! into `target/kubernetes-validate/` on first use. Also: the alert rules'
//! `job` matchers name the job the ServiceMonitors give, the ConfigMaps pass
//! `--config.check` with the workloads' own flags, and they carry
//! deploy/opsmon.yml's sections unchanged.
//!
//! Wall time: about 1 minute on first run (installs), 10–30 s after.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use opsmon_e2e::exporter_bin;
use serde_json::Value;

/// The Kubernetes version whose schemas the manifests must satisfy.
const KUBERNETES_VERSION: &str = "1.33.0";

fn workspace_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

/// The validators, installed once per target directory.
struct Validators {
    python: PathBuf,
    node_dir: PathBuf,
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn validators() -> &'static Validators {
    static VALIDATORS: OnceLock<Validators> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        // target/<profile>/deps/<test> → target/kubernetes-validate
        let exe = std::env::current_exe().unwrap();
        let target = exe.ancestors().nth(3).unwrap().to_path_buf();
        let cache = target.join("kubernetes-validate");
        std::fs::create_dir_all(&cache).unwrap();

        let venv = cache.join("venv");
        let python = venv.join("bin/python");
        let ready = Command::new(&python)
            .args(["-c", "import kubernetes_validate, yaml"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ready {
            let python3 = opsmon_e2e::require_tool("python3", "python3-venv");
            run(Command::new(python3).arg("-m").arg("venv").arg(&venv), "python3 -m venv");
            run(
                Command::new(&python).args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "kubernetes-validate",
                    "PyYAML",
                ]),
                "pip install kubernetes-validate (PyPI)",
            );
        }

        let node_dir = cache.join("node");
        let model = node_dir.join("node_modules/@kubernetes-models/prometheus-operator/package.json");
        let tsc = node_dir.join("node_modules/.bin/tsc");
        if !model.exists() || !tsc.exists() {
            std::fs::create_dir_all(&node_dir).unwrap();
            let npm = opsmon_e2e::require_tool("npm", "npm");
            std::fs::write(node_dir.join("package.json"), "{\"private\": true, \"type\": \"module\"}\n")
                .unwrap();
            run(
                Command::new(npm).current_dir(&node_dir).args([
                    "install",
                    "--silent",
                    "--no-audit",
                    "--no-fund",
                    "@kubernetes-models/prometheus-operator@6",
                    "typescript@5",
                ]),
                "npm install @kubernetes-models/prometheus-operator typescript (npm)",
            );
        }
        Validators { python, node_dir }
    })
}

/// Renders and validates the kustomization in `dir`: the objects, and every
/// problem the two validators report (empty when all is valid).
fn validate(dir: &Path) -> (Vec<Value>, Vec<String>) {
    let validators = validators();
    let work = tempfile::tempdir().unwrap();
    let rendered = work.path().join("rendered.json");
    let core = Command::new(&validators.python)
        .arg(workspace_file("tests/kubernetes/render_and_validate.py"))
        .arg(dir)
        .arg(KUBERNETES_VERSION)
        .arg(&rendered)
        .output()
        .unwrap();
    let mut problems: Vec<String> =
        String::from_utf8_lossy(&core.stdout).lines().map(str::to_owned).collect();
    assert!(
        core.status.success() || !problems.is_empty(),
        "render_and_validate.py failed without naming a problem:\n{}",
        String::from_utf8_lossy(&core.stderr)
    );
    let rendered_text = std::fs::read_to_string(&rendered).unwrap();

    // The CRD check runs in a copy of the script next to the installed models.
    let node_work = tempfile::Builder::new().prefix("run-").tempdir_in(&validators.node_dir).unwrap();
    let node_work = node_work.path();
    let script = validators.node_dir.join("validate_crds.mjs");
    std::fs::copy(workspace_file("tests/kubernetes/validate_crds.mjs"), &script).unwrap();
    // tsc resolves the models from the work dir's node_modules.
    let link = node_work.join("node_modules");
    if !link.exists() {
        std::os::unix::fs::symlink(validators.node_dir.join("node_modules"), &link).unwrap();
    }
    let crds = Command::new("node").arg(&script).arg(&rendered).arg(node_work).output().unwrap();
    let crd_problems: Vec<String> =
        String::from_utf8_lossy(&crds.stdout).lines().map(str::to_owned).collect();
    assert!(
        crds.status.success() || !crd_problems.is_empty(),
        "validate_crds.mjs failed without naming a problem:\n{}",
        String::from_utf8_lossy(&crds.stderr)
    );
    problems.extend(crd_problems);

    let items: Vec<Value> = serde_json::from_str(&rendered_text).unwrap();
    (items.into_iter().map(|item| item["doc"].clone()).collect(), problems)
}

fn rendered() -> &'static Vec<Value> {
    static RENDERED: OnceLock<Vec<Value>> = OnceLock::new();
    RENDERED.get_or_init(|| {
        let (objects, problems) = validate(&workspace_file("deploy/kubernetes"));
        assert!(problems.is_empty(), "deploy/kubernetes is not valid:\n{}", problems.join("\n"));
        objects
    })
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name} in deploy/kubernetes"))
}

/// Whether every `key: value` of `selector` is among `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|wanted| !wanted.is_empty() && wanted.iter().all(|(k, v)| &labels[k] == v))
}

#[test]
fn manifests_validate_against_the_kubernetes_schemas_and_prometheus_operator_models() {
    let objects = rendered();
    let kinds: BTreeSet<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    for kind in ["DaemonSet", "Deployment", "Service", "ServiceMonitor", "PrometheusRule", "ConfigMap"] {
        assert!(kinds.contains(kind), "no {kind} rendered: {kinds:?}");
    }
    for object in objects {
        assert_eq!(object["metadata"]["namespace"], "monitoring", "{}", object["metadata"]["name"]);
    }
}

#[test]
fn a_wrong_kind_or_field_fails_naming_it() {
    let copy = tempfile::tempdir().unwrap();
    let root = copy.path().join("kubernetes");
    std::fs::create_dir_all(root.join("base")).unwrap();
    for entry in std::fs::read_dir(workspace_file("deploy/kubernetes")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, root.join(path.file_name().unwrap())).unwrap();
        }
    }
    for entry in std::fs::read_dir(workspace_file("deploy/kubernetes/base")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, root.join("base").join(path.file_name().unwrap())).unwrap();
    }
    let mutate = |file: &str, from: &str, to: &str| {
        let path = root.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no {from:?} to mutate");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    mutate("base/daemonset.yaml", "kind: DaemonSet\n", "kind: DaemonSett\n");
    mutate("base/deployment.yaml", "          image: ", "          imagee: ");
    mutate("base/servicemonitor-backends.yaml", "    - port: metrics", "    - prot: metrics");

    let (_, problems) = validate(&root);
    let text = problems.join("\n");
    let expect = |file: &str, words: &[&str]| {
        let found = problems.iter().any(|p| p.contains(file) && words.iter().all(|w| p.contains(w)));
        assert!(found, "no problem naming {file} and {words:?}:\n{text}");
    };
    expect("base/daemonset.yaml", &["DaemonSett", "wrong kind"]);
    expect("base/deployment.yaml", &["Deployment/opsmon-exporter-backends", "imagee"]);
    expect("base/servicemonitor-backends.yaml", &["ServiceMonitor/opsmon-exporter-backends", "prot"]);
    assert_eq!(problems.len(), 3, "only the three mutations are problems:\n{text}");
}

/// The job each ServiceMonitor gives its targets: the selected Service's
/// `jobLabel` label, or the Service's name (prometheus-operator's rule).
fn service_monitor_jobs(objects: &[Value]) -> BTreeSet<String> {
    let services = of_kind(objects, "Service");
    let mut jobs = BTreeSet::new();
    for monitor in of_kind(objects, "ServiceMonitor") {
        let name = &monitor["metadata"]["name"];
        let selected: Vec<&&Value> = services
            .iter()
            .filter(|s| selects(&monitor["spec"]["selector"]["matchLabels"], &s["metadata"]["labels"]))
            .collect();
        assert_eq!(selected.len(), 1, "ServiceMonitor {name} must select exactly one Service");
        let service = selected[0];
        let port_names: BTreeSet<&str> =
            service["spec"]["ports"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
        for endpoint in monitor["spec"]["endpoints"].as_array().unwrap() {
            let port = endpoint["port"].as_str().unwrap();
            assert!(
                port_names.contains(port),
                "ServiceMonitor {name} scrapes port {port:?}, the Service has {port_names:?}"
            );
        }
        let job = match monitor["spec"]["jobLabel"].as_str() {
            Some(label) => service["metadata"]["labels"][label].as_str().unwrap_or_else(|| {
                panic!("Service {} lacks the jobLabel {label}", service["metadata"]["name"])
            }),
            None => service["metadata"]["name"].as_str().unwrap(),
        };
        jobs.insert(job.to_owned());
    }
    jobs
}

#[test]
fn alert_job_matchers_name_the_job_the_service_monitors_give() {
    let objects = rendered();
    let jobs = service_monitor_jobs(objects);
    assert_eq!(jobs.len(), 1, "both workloads are one job, as the rules expect: {jobs:?}");

    // Every Service reaches the pods of a workload.
    for service in of_kind(objects, "Service") {
        let selector = &service["spec"]["selector"];
        let reached = of_kind(objects, "DaemonSet")
            .into_iter()
            .chain(of_kind(objects, "Deployment"))
            .any(|w| selects(selector, &w["spec"]["template"]["metadata"]["labels"]));
        assert!(reached, "Service {} selects no workload's pods", service["metadata"]["name"]);
    }

    let thresholds: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(workspace_file("deploy/thresholds.yaml")).unwrap())
            .unwrap();
    let job = thresholds["kubernetes"]["job"].as_str().unwrap();
    assert!(
        jobs.contains(job),
        "deploy/thresholds.yaml kubernetes.job is {job:?}; the ServiceMonitors give {jobs:?}"
    );

    let matcher = regex::Regex::new(r#"\bjob\s*(=~|!~|!=|=)\s*"([^"]*)""#).unwrap();
    let mut matched = 0;
    for rule_object in of_kind(objects, "PrometheusRule") {
        for group in rule_object["spec"]["groups"].as_array().unwrap() {
            for rule in group["rules"].as_array().unwrap() {
                let expr = rule["expr"].as_str().unwrap_or_default();
                for capture in matcher.captures_iter(expr) {
                    let (op, value) = (&capture[1], &capture[2]);
                    match op {
                        "=" => assert!(
                            jobs.contains(value),
                            "rule {}: job=\"{value}\" names no ServiceMonitor job {jobs:?}",
                            rule["alert"]
                        ),
                        "=~" => {
                            let re = regex::Regex::new(&format!("^(?:{value})$")).unwrap();
                            assert!(
                                jobs.iter().any(|j| re.is_match(j)),
                                "rule {}: job=~\"{value}\" matches no job {jobs:?}",
                                rule["alert"]
                            );
                        }
                        _ => {}
                    }
                    matched += 1;
                }
            }
        }
    }
    assert!(matched > 0, "the PrometheusRule has no job matcher to check");
}

/// The workload's container arguments, without the listen address.
fn container_args(workload: &Value) -> Vec<String> {
    workload["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .filter(|a| !a.starts_with("--web.listen-address") && !a.starts_with("--config.file"))
        .collect()
}

fn config_map_text<'a>(objects: &'a [Value], name: &str) -> &'a str {
    named(objects, "ConfigMap", name)["data"]["opsmon.yml"].as_str().unwrap()
}

#[test]
fn config_maps_pass_config_check_with_the_workloads_flags() {
    let objects = rendered();
    let dir = tempfile::tempdir().unwrap();
    for (kind, workload, config_map, expected) in [
        (
            "DaemonSet",
            "opsmon-exporter-node",
            "opsmon-exporter-node",
            "collectors enabled: host, files, accesslog",
        ),
        (
            "Deployment",
            "opsmon-exporter-backends",
            "opsmon-exporter-backends",
            "collectors enabled: postgres, redis, probe, business",
        ),
    ] {
        let workload = named(objects, kind, workload);
        let mounted = &workload["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"];
        assert_eq!(mounted, config_map, "{kind} mounts its ConfigMap");
        let path = dir.path().join(format!("{config_map}.yml"));
        std::fs::write(&path, config_map_text(objects, config_map)).unwrap();
        let output = Command::new(exporter_bin())
            .arg(format!("--config.file={}", path.display()))
            .arg("--config.check")
            .args(container_args(workload))
            // What the Secret provides; the check reads but does not connect.
            .env("DATA_SOURCE_NAME", "postgresql://opsmon@127.0.0.1:1/smartalk_db?sslmode=disable")
            .env("REDIS_ADDR", "redis://127.0.0.1:1")
            .env("REDIS_PASSWORD", "not-a-real-password")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{kind}'s config fails --config.check:\n{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains(expected), "{kind}: {stdout}");
        assert!(!stdout.contains("not-a-real-password"), "{stdout}");
    }
}

#[test]
fn config_maps_carry_deploy_opsmon_yml_sections_unchanged() {
    let objects = rendered();
    let parse = |text: &str| -> Value { serde_saphyr::from_str(text).unwrap() };
    let shipped = parse(&std::fs::read_to_string(workspace_file("deploy/opsmon.yml")).unwrap());
    for (config_map, sections) in [
        ("opsmon-exporter-node", &["host", "accesslog", "files"][..]),
        ("opsmon-exporter-backends", &["business"][..]),
    ] {
        let config = parse(config_map_text(objects, config_map));
        for section in sections {
            assert_eq!(
                config["collectors"][section], shipped["collectors"][section],
                "ConfigMap {config_map}: collectors.{section} differs from deploy/opsmon.yml; copy it over"
            );
        }
    }
}
