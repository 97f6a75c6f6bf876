//! Many hosts: with two exporters (two `instance`s of job `opsmon`), no
//! dashboard panel and no generated rule adds hosts together, and every panel
//! still shows data for one chosen instance.
//!
//! - `generated_rules_never_aggregate_across_instances` reads every rule of
//!   deploy/prometheus/rules.yml with promql-parser (not rulegen's own code)
//!   and fails on any aggregation, vector matching or label rewrite that loses
//!   `instance`, apart from a short list with reasons.
//! - `two_exporters_stay_apart_on_every_panel` runs scripts/demo.sh with two
//!   exporters and a second, real Prometheus loaded from the shipped
//!   deploy/prometheus/many-hosts.yml (file_sd for the hosts, /probe
//!   relabelling for the backends and URLs, the generated rules): the
//!   relabelling yields the expected targets and labels, and each panel query
//!   with the Instance variable set to one exporter returns only that
//!   instance's series, equal to that instance's series under "All".
//!
//! Wall time: about 70–100 s for the second test (demo start-up, data at a 2 s
//! scrape interval); the first is instant.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

#[path = "support/demo.rs"]
mod demo;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use demo::{Demo, Sample, may_be_empty, panel_queries, query, repo, wait_for_data};
use opsmon_e2e::{Process, free_port, require_tool};
use promql_parser::label::Labels;
use promql_parser::parser::{self, Expr, LabelModifier};

/// Rules allowed to produce series without `instance`, with the reason.
const INSTANCE_FREE_RULES: &[(&str, &str)] = &[
    (
        "ExporterTargetDown",
        "its `absent(up{job=\"opsmon\"})` branch fires when Prometheus has no target of the job at all: there is no instance to name",
    ),
    ("Watchdog", "the dead man's switch is one always-firing alert per Prometheus, not per host"),
];

fn has_instance(labels: &Labels) -> bool {
    labels.labels.iter().any(|l| l == "instance")
}

/// Every place in `expr` where the result loses (or rewrites) `instance`.
fn instance_losses(expr: &Expr, out: &mut Vec<String>) {
    match expr {
        Expr::Aggregate(agg) => {
            let keeps = match &agg.modifier {
                Some(LabelModifier::Include(labels)) => has_instance(labels),
                Some(LabelModifier::Exclude(labels)) => !has_instance(labels),
                None => false,
            };
            if !keeps {
                out.push(format!("aggregation `{}` drops instance", Expr::Aggregate(agg.clone())));
            }
            instance_losses(&agg.expr, out);
        }
        Expr::Binary(binary) => {
            if let Some(matching) = binary.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
                let keeps = match matching {
                    LabelModifier::Include(labels) => has_instance(labels),
                    LabelModifier::Exclude(labels) => !has_instance(labels),
                };
                if !keeps {
                    out.push(format!(
                        "vector matching in `{}` pairs different instances",
                        Expr::Binary(binary.clone())
                    ));
                }
            }
            instance_losses(&binary.lhs, out);
            instance_losses(&binary.rhs, out);
        }
        Expr::Call(call) => {
            let name = call.func.name;
            if matches!(name, "absent" | "absent_over_time" | "vector" | "scalar") {
                out.push(format!("`{name}(…)` has no instance"));
            }
            if matches!(name, "label_replace" | "label_join")
                && matches!(call.args.args.get(1).map(|a| a.as_ref()), Some(Expr::StringLiteral(s)) if s.val == "instance")
            {
                out.push(format!("`{name}` rewrites instance"));
            }
            for arg in &call.args.args {
                instance_losses(arg, out);
            }
        }
        Expr::Paren(paren) => instance_losses(&paren.expr, out),
        Expr::Subquery(sub) => instance_losses(&sub.expr, out),
        Expr::Unary(unary) => instance_losses(&unary.expr, out),
        Expr::MatrixSelector(_)
        | Expr::VectorSelector(_)
        | Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::Extension(_) => {}
    }
}

/// (name, expr) of every rule in the generated rule file.
fn generated_rules() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo("deploy/prometheus/rules.yml")).unwrap();
    let file: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let mut rules = Vec::new();
    for group in file["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let name = rule["alert"].as_str().or(rule["record"].as_str()).unwrap().to_owned();
            rules.push((name, rule["expr"].as_str().unwrap().to_owned()));
        }
    }
    assert!(rules.len() > 20, "only {} rules in deploy/prometheus/rules.yml", rules.len());
    rules
}

#[test]
fn generated_rules_never_aggregate_across_instances() {
    let mut problems = Vec::new();
    let mut excused = BTreeSet::new();
    for (name, expr) in generated_rules() {
        let parsed = parser::parse(&expr).unwrap_or_else(|e| panic!("{name}: {e}: {expr}"));
        let mut losses = Vec::new();
        instance_losses(&parsed, &mut losses);
        if losses.is_empty() {
            continue;
        }
        if INSTANCE_FREE_RULES.iter().any(|(rule, _)| *rule == name) {
            excused.insert(name);
        } else {
            problems.push(format!("{name}: {}", losses.join("; ")));
        }
    }
    assert!(problems.is_empty(), "rules that add up hosts:\n{}", problems.join("\n"));
    // Each excuse is still needed: a rule that no longer loses instance must
    // leave the list.
    for (rule, _) in INSTANCE_FREE_RULES {
        assert!(excused.contains(*rule), "{rule} keeps instance now: remove it from INSTANCE_FREE_RULES");
    }

    // The walker itself catches the mistakes it is for.
    for (bad, what) in [
        ("sum(rate(redis_keyspace_hits_total[5m]))", "aggregation"),
        ("avg by (job) (node_load1)", "aggregation"),
        ("sum without (instance) (up)", "aggregation"),
        ("x > 0.05 and on (job) sum by (job, instance) (y)", "vector matching"),
        ("x / ignoring (instance) y", "vector matching"),
        ("label_replace(up, \"instance\", \"all\", \"\", \"\")", "rewrites instance"),
    ] {
        let mut losses = Vec::new();
        instance_losses(&parser::parse(bad).unwrap(), &mut losses);
        assert!(losses.iter().any(|l| l.contains(what)), "{bad}: {losses:?}");
    }
    let mut losses = Vec::new();
    instance_losses(
        &parser::parse("sum by (job, instance) (rate(x[5m])) / on (job, instance) y").unwrap(),
        &mut losses,
    );
    assert!(losses.is_empty(), "{losses:?}");
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn same(a: &[Sample], b: &[Sample]) -> bool {
    // NaNs compare equal to each other.
    let key = |samples: &[Sample]| -> BTreeSet<(BTreeMap<String, String>, u64)> {
        samples
            .iter()
            .map(|s| (s.labels.clone(), if s.value.is_nan() { u64::MAX } else { s.value.to_bits() }))
            .collect()
    };
    key(a) == key(b)
}

#[test]
fn two_exporters_stay_apart_on_every_panel() {
    let prometheus_bin = require_tool("prometheus", "prometheus");
    let demo = Demo::start(2, Duration::from_secs(150));
    let (host_a, host_b) = (demo.exporters[0].clone(), demo.exporters[1].clone());

    // A second Prometheus from the shipped many-hosts config: the hosts through
    // file_sd, the demo's PostgreSQL and Redis through exporter A's /probe, the
    // demo's API health URL through exporter B's /probe.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("targets")).unwrap();
    std::fs::write(
        dir.path().join("targets/opsmon-hosts.yml"),
        format!("- targets: ['{host_a}', '{host_b}']\n  labels:\n    env: test\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("targets/opsmon-backends.yml"),
        format!("- targets: [smartalk, cache]\n  labels:\n    __exporter: '{host_a}'\n"),
    )
    .unwrap();
    let health_url = format!("http://{}/api/v1/health", demo.api);
    std::fs::write(
        dir.path().join("targets/opsmon-http.yml"),
        format!("- targets: ['{health_url}']\n  labels:\n    __param_module: http_2xx\n    __exporter: '{host_b}'\n"),
    )
    .unwrap();
    let mut config = std::fs::read_to_string(repo("deploy/prometheus/many-hosts.yml")).unwrap();
    for (from, to) in [
        ("scrape_interval: 15s", "scrape_interval: 2s".to_owned()),
        ("scrape_timeout: 10s", "scrape_timeout: 2s".to_owned()),
        ("evaluation_interval: 15s", "evaluation_interval: 2s".to_owned()),
        ("  - rules.yml", format!("  - {}", repo("deploy/prometheus/rules.yml").display())),
        // No Alertmanager: this test looks at series, not notifications.
        (
            "        - targets: ['127.0.0.1:9093']",
            format!("        - targets: ['127.0.0.1:{}']", free_port()),
        ),
    ] {
        assert!(config.contains(from), "deploy/prometheus/many-hosts.yml no longer contains {from:?}");
        config = config.replace(from, &to);
    }
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let port = free_port();
    let _prometheus = Process::start(
        &prometheus_bin,
        &[
            format!("--config.file={}", dir.path().join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        port,
        "/-/ready",
    );
    let prometheus = format!("http://127.0.0.1:{port}");

    // The relabelling: hosts keep their address as instance (plus the file_sd
    // label), backends and URLs become the instance while the scrape goes to
    // the exporter named in __exporter.
    let expected_targets: BTreeSet<(String, String)> = [
        ("opsmon", host_a.as_str()),
        ("opsmon", host_b.as_str()),
        ("opsmon-backends", "smartalk"),
        ("opsmon-backends", "cache"),
        ("opsmon-http", health_url.as_str()),
    ]
    .iter()
    .map(|(j, i)| ((*j).to_owned(), (*i).to_owned()))
    .collect();
    let started = std::time::Instant::now();
    loop {
        let up = query(&prometheus, "up == 1", None).unwrap_or_default();
        let seen: BTreeSet<(String, String)> =
            up.iter().map(|s| (s.labels["job"].clone(), s.labels["instance"].clone())).collect();
        if seen == expected_targets {
            assert!(
                up.iter().filter(|s| s.labels["job"] == "opsmon").all(|s| s
                    .labels
                    .get("env")
                    .map(String::as_str)
                    == Some("test"))
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "targets up: {seen:?}, expected {expected_targets:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    for (expr, what) in [
        (
            "pg_up{job=\"opsmon-backends\",instance=\"smartalk\"} == 1",
            "PostgreSQL through /probe?target=smartalk",
        ),
        ("redis_up{job=\"opsmon-backends\",instance=\"cache\"} == 1", "Redis through /probe?target=cache"),
        (
            "probe_success{job=\"opsmon-http\"} == 1",
            "the API's health URL through /probe?target=URL&module=http_2xx",
        ),
    ] {
        let samples = query(&prometheus, expr, None).unwrap();
        assert_eq!(samples.len(), 1, "{what}: {expr} gave {samples:?}");
    }

    // Every panel shows data for host A alone.
    let queries = panel_queries();
    let expected: Vec<(String, String)> = queries
        .iter()
        .filter(|q| may_be_empty(q).is_none())
        .map(|q| (q.name(), q.resolved(&host_a, ".*")))
        .collect();
    let empty = wait_for_data(&prometheus, &expected, Duration::from_secs(75));
    assert!(
        empty.is_empty(),
        "panels without data for instance {host_a}:\n{}\nwarnings of the exporters:\n{}",
        empty.join("\n"),
        demo.exporter_warnings()
    );
    // Host B has caught up too (the "All" comparison below needs both).
    let both: Vec<(String, String)> = queries
        .iter()
        .filter(|q| may_be_empty(q).is_none())
        .map(|q| (q.name(), q.resolved(&host_b, ".*")))
        .collect();
    let empty = wait_for_data(&prometheus, &both, Duration::from_secs(30));
    assert!(
        empty.is_empty(),
        "panels without data for instance {host_b}:\n{}\nwarnings of the exporters:\n{}",
        empty.join("\n"),
        demo.exporter_warnings()
    );

    // One instant for both evaluations of a query, so values compare exactly.
    // It lies a second in the past, and host B's second sample (which its
    // rate() panels need) may have arrived within that second: wait one
    // scrape interval (2s) so the instant is after what the wait above saw.
    std::thread::sleep(Duration::from_secs(2));
    let at = now() - 1.0;
    let mut problems = Vec::new();
    for panel in &queries {
        let one = query(&prometheus, &panel.resolved(&host_a, ".*"), Some(at)).unwrap();
        let all = query(&prometheus, &panel.resolved(".*", ".*"), Some(at)).unwrap();
        let stray: Vec<_> = one.iter().filter(|s| s.labels.get("instance") != Some(&host_a)).collect();
        if !stray.is_empty() {
            problems.push(format!("{}: with instance {host_a} it returns {stray:?}", panel.name()));
        }
        let unattributed: Vec<_> = all.iter().filter(|s| !s.labels.contains_key("instance")).collect();
        if !unattributed.is_empty() {
            problems.push(format!("{}: under All, series without instance {unattributed:?}", panel.name()));
        }
        let all_of_a: Vec<Sample> =
            all.iter().filter(|s| s.labels.get("instance") == Some(&host_a)).cloned().collect();
        if !same(&one, &all_of_a) {
            problems.push(format!(
                "{}: instance {host_a} alone {one:?} differs from its series under All {all_of_a:?}",
                panel.name()
            ));
        }
        if !one.is_empty() && !all.iter().any(|s| s.labels.get("instance") == Some(&host_b)) {
            problems.push(format!("{}: under All, nothing for {host_b}", panel.name()));
        }
    }
    assert!(problems.is_empty(), "panels that mix hosts:\n{}", problems.join("\n"));

    // The recorded series of the generated rules stay per instance. A rule
    // over rate() records only once two scrapes and an evaluation have passed
    // since its input appeared, so each gets a moment to show both hosts.
    let apart = |instances: &BTreeSet<String>| {
        instances.contains(&host_a) && instances.contains(&host_b) && !instances.contains("<none>")
    };
    let mut recorded = BTreeMap::new();
    let started = std::time::Instant::now();
    for (name, _) in generated_rules().into_iter().filter(|(n, _)| n.contains(':')) {
        let instances = loop {
            let samples = query(&prometheus, &name, None).unwrap();
            let instances: BTreeSet<String> = samples
                .iter()
                .map(|s| s.labels.get("instance").cloned().unwrap_or_else(|| "<none>".into()))
                .collect();
            if apart(&instances) || started.elapsed() > Duration::from_secs(30) {
                break instances;
            }
            std::thread::sleep(Duration::from_secs(1));
        };
        recorded.insert(name, instances);
    }
    for (name, instances) in &recorded {
        assert!(
            apart(instances),
            "{name} is recorded for {instances:?}, expected {host_a} and {host_b} apart"
        );
    }
    eprintln!(
        "many hosts: {} panel queries and {} recording rules checked per instance",
        queries.len(),
        recorded.len()
    );
    drop(demo);
}
