//! The real definition: deploy/thresholds.yaml against the real catalog
//! and deploy/opsmon.yml, the SPEC §2 alert list, and the committed outputs.
//! These fail when a collector renames a metric the thresholds use — that is
//! the point: the catalog check says which names are missing.

use crate::dashboards::{check_dashboards, check_scoped_queries, type_check};
use crate::fixture;
use opsmon_rulegen::model::{Direction, Model};

fn real() -> Model {
    let root = fixture::repo_root();
    let known = opsmon_rulegen::known::Known::load(&root.join("deploy/opsmon.yml")).expect("exporter config");
    let text = std::fs::read_to_string(root.join("deploy/thresholds.yaml")).expect("thresholds");
    let files = opsmon_rulegen::validate::receivers::Files::beside(&root.join("deploy/thresholds.yaml"));
    match opsmon_rulegen::validate::validate_with("deploy/thresholds.yaml", &text, &known, &files) {
        Ok(model) => model,
        Err(e) => panic!("deploy/thresholds.yaml is invalid against the catalog:\n{e}"),
    }
}

/// SPEC.md §2, line by line: (guide line, severity, alerts that implement it).
const SPEC_ALERTS: &[(&str, &str, &[&str])] = &[
    (
        "system down / service unavailable",
        "critical",
        &[
            "ApiHealthProbeFailing",
            "BackendProcessNotRunning",
            "BackendPortNotListening",
            "ExporterTargetDown",
            "NginxNotRunning",
            "CdnProbeFailing",
        ],
    ),
    ("database connection failure: pg_up == 0", "critical", &["PostgresDown"]),
    (
        "API error rate > 5%: the guide's HighErrorRate as a 5xx share of API requests (volume-guarded)",
        "critical",
        &["HighErrorRate"],
    ),
    ("user activation rate down > 50% vs a week earlier", "critical", &["ActivationRateDropped"]),
    ("CPU > 80%", "warning", &["HostCpuHigh"]),
    ("memory > 85%", "warning", &["HostMemoryHigh"]),
    ("disk free < 20% plus a fill-up prediction", "warning", &["HostDiskSpaceLow", "HostDiskWillFillIn24h"]),
    (
        "API response time > 1 s: p95 and health-probe duration",
        "warning",
        &["ApiLatencyHigh", "ApiHealthProbeSlow"],
    ),
    ("activation below target: the guide's LowActivationRate", "warning", &["LowActivationRate"]),
    ("negative feedback rising", "info", &["NegativeFeedbackRising"]),
    (
        "funnel step down > 20%",
        "info",
        &[
            "FunnelActivationConversionDrop",
            "FunnelLessonStartConversionDrop",
            "FunnelLessonCompletionConversionDrop",
            "FunnelPurchaseConversionDrop",
        ],
    ),
    ("CDN cache hit rate < 90%", "info", &["CdnCacheHitRatioLow"]),
    ("backups, scheduled jobs", "warning", &["BackupTooOld", "JobHeartbeatStale"]),
    ("Redis down", "critical", &["RedisDown"]),
    (
        "Redis out of memory, certificate expiry",
        "warning",
        &["RedisOutOfMemory", "TlsCertificateExpiringSoon"],
    ),
];

#[test]
fn every_spec_alert_is_defined_with_its_severity() {
    let model = real();
    for (line, severity, names) in SPEC_ALERTS {
        for name in *names {
            let alert = model
                .alerts
                .iter()
                .find(|a| a.name == *name)
                .unwrap_or_else(|| panic!("{line}: {name} missing"));
            assert_eq!(alert.severity, *severity, "{line}: {name}");
        }
    }
}

#[test]
fn spec_thresholds_are_the_guides() {
    let model = real();
    let get = |name: &str| model.alerts.iter().find(|a| a.name == name).expect("alert");
    let expect = |name: &str, kind: &str, value: f64, direction: Direction| {
        let a = get(name);
        assert_eq!(a.kind, kind, "{name}");
        assert_eq!(a.threshold.value, value, "{name}");
        assert_eq!(a.threshold.direction, direction, "{name}");
    };
    expect("HighErrorRate", "ratio", 0.05, Direction::Above);
    assert!(get("HighErrorRate").guard.is_some(), "volume-guarded");
    assert_eq!(get("HighErrorRate").for_.as_secs(), 120);
    expect("ActivationRateDropped", "change", 0.5, Direction::Below);
    assert!(get("ActivationRateDropped").expr.contains("offset 1w"));
    assert!(get("ActivationRateDropped").guard.is_some(), "volume-guarded");
    expect("HostCpuHigh", "threshold", 0.8, Direction::Above);
    expect("HostMemoryHigh", "threshold", 0.85, Direction::Above);
    expect("HostDiskSpaceLow", "ratio", 0.2, Direction::Below);
    expect("HostDiskWillFillIn24h", "predict", 0.0, Direction::Below);
    expect("ApiLatencyHigh", "quantile", 1.0, Direction::Above);
    expect("ApiHealthProbeSlow", "threshold", 1.0, Direction::Above);
    expect("LowActivationRate", "threshold", 0.4, Direction::Below);
    assert_eq!(get("LowActivationRate").for_.as_secs(), 600);
    expect("NegativeFeedbackRising", "change", 1.5, Direction::Above);
    for funnel in SPEC_ALERTS[10].2 {
        expect(funnel, "change", 0.8, Direction::Below);
    }
    expect("CdnCacheHitRatioLow", "ratio", 0.9, Direction::Below);
    let tiers: Vec<(&str, &str)> =
        model.severities.iter().map(|s| (s.name.as_str(), s.repeat_interval.as_str())).collect();
    assert_eq!(tiers, [("critical", "15m"), ("warning", "1h"), ("info", "4h")]);
}

#[test]
fn committed_outputs_match_a_fresh_generation() {
    let model = real();
    let outputs = opsmon_rulegen::render::all(&model);
    let differences = opsmon_rulegen::output::diff(&fixture::repo_root(), &outputs);
    assert!(
        differences.is_empty(),
        "generated files are out of date; run `cargo run -p opsmon-rulegen -- generate`:\n{}",
        differences.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn committed_rules_pass_promtool_and_routing_passes_amtool() {
    let root = fixture::repo_root();
    fixture::promtool(&root);
    fixture::amtool(&root);
}

#[test]
fn real_dashboards_hold_the_invariants_and_type_check() {
    let model = real();
    let boards = check_dashboards(&model);
    check_scoped_queries(&boards);
    let titles: Vec<String> = model.boards.iter().map(|b| b.title.clone()).collect();
    assert!(
        titles.iter().any(|t| t.contains("System")) && titles.iter().any(|t| t.contains("Business")),
        "{titles:?}"
    );
    let business = model.boards.iter().find(|b| b.id == "business").expect("business board");
    assert!(
        business
            .rows
            .iter()
            .flat_map(|r| &r.panels)
            .any(|p| p.kind == "bargauge" && p.title.contains("Funnel")),
        "the funnel is a bar gauge"
    );
    // Collector and business-query health read red at 0 (their alerts are
    // warnings, whose tier colour would be orange).
    for title in ["Collector success", "Business query success"] {
        let panel = boards
            .iter()
            .flat_map(|(_, json)| json["panels"].as_array().expect("panels"))
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("no panel {title}"));
        let steps = &panel["fieldConfig"]["defaults"]["thresholds"]["steps"];
        assert_eq!(steps[0]["color"], "red", "{title} at 0");
        assert_eq!(steps[1]["value"], 1, "{title} turns green at 1");
        assert_eq!(steps[1]["color"], "green", "{title} at 1");
    }
    let dir = tempfile::tempdir().expect("tmp");
    type_check(&boards, dir.path());
}

#[test]
fn nginx_down_silences_the_api_symptoms_and_their_escalations_on_the_same_instance() {
    let model = real();
    let am = opsmon_rulegen::render::alertmanager::render(&model);
    for target in ["alertname", "escalated_alertname"] {
        let rule = format!(
            "  - source_matchers:\n      - 'alertname=\"NginxNotRunning\"'\n    target_matchers:\n      - '{target}=~\"ApiHealthProbeFailing|HighErrorRate\"'\n    equal:\n      - instance\n"
        );
        assert!(am.contains(&rule), "missing:\n{rule}\nin:\n{am}");
    }
    let nginx = model.alerts.iter().find(|a| a.name == "NginxNotRunning").expect("nginx alert");
    assert_eq!((nginx.component.as_str(), nginx.severity.as_str()), ("web", "critical"));
    // The receivers are the user's, merged: every routed receiver delivers.
    let receivers = model.alertmanager.receivers.as_ref().expect("the shipped file names its receivers");
    assert_eq!(receivers.source, "deploy/alertmanager/receivers.yml");
    for name in opsmon_rulegen::render::alertmanager::receivers(&model) {
        let (_, fields) = receivers.list.iter().find(|(n, _)| *n == name).expect("routed receiver defined");
        assert!(!fields.is_empty(), "{name} delivers nowhere");
    }
}
