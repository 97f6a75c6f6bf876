//! The `checklists:` section of the real deploy/thresholds.yaml: valid, every
//! line of the guide's daily checklist covered, and one broken field per case
//! giving exactly the listed problem (position, field path, did-you-mean).

use crate::fixture;
use opsmon_rulegen::model::{Checklist, Model};

fn real_text() -> String {
    std::fs::read_to_string(fixture::repo_root().join("deploy/thresholds.yaml")).expect("thresholds")
}

fn validate(text: &str) -> Result<Model, String> {
    let known = opsmon_rulegen::known::Known::load(&fixture::repo_root().join("deploy/opsmon.yml"))
        .expect("exporter config");
    // The real file names deploy/alertmanager/receivers.yml: read it beside
    // the threshold file; its webhooks hold no secret files to check.
    let files = opsmon_rulegen::validate::receivers::Files {
        base: Some(fixture::repo_root().join("deploy")),
        check_secret_files: false,
    };
    opsmon_rulegen::validate::validate_with("thresholds.yaml", text, &known, &files)
        .map_err(|e| e.to_string())
}

/// Replaces exactly one occurrence of `from` in the real file.
fn broken(from: &str, to: &str) -> String {
    let text = real_text();
    assert_eq!(text.matches(from).count(), 1, "`{from}` must occur once in deploy/thresholds.yaml");
    text.replacen(from, to, 1)
}

/// Line of the first occurrence of `needle` (1-based).
fn line_of(needle: &str) -> usize {
    let text = real_text();
    text[..text.find(needle).expect("needle")].matches('\n').count() + 1
}

/// The guide's 日常运维检查清单, line by line (更新运维日志 is the operator's
/// own note, not a metric).
const GUIDE: &[(Checklist, &str)] = &[
    (Checklist::Morning, "检查系统整体健康状态"),
    (Checklist::Morning, "查看过夜错误日志和告警"),
    (Checklist::Morning, "验证关键服务可用性"),
    (Checklist::Morning, "检查数据库性能指标"),
    (Checklist::Morning, "查看CDN缓存命中率"),
    (Checklist::Morning, "确认备份任务执行状态"),
    (Checklist::Afternoon, "监控实时用户活跃度"),
    (Checklist::Afternoon, "检查API响应时间趋势"),
    (Checklist::Afternoon, "查看转化漏斗实时数据"),
    (Checklist::Afternoon, "分析用户反馈新增情况"),
    (Checklist::Afternoon, "检查服务器资源使用率"),
    (Checklist::Evening, "生成当日指标报告"),
    (Checklist::Evening, "检查异常用户行为模式"),
    (Checklist::Evening, "确认自动化任务调度正常"),
    (Checklist::Evening, "准备次日容量规划"),
];

#[test]
fn the_real_checklists_cover_the_guide() {
    let model = validate(&real_text()).unwrap_or_else(|e| panic!("{e}"));
    let items = &model.checklists.items;
    for (list, words) in GUIDE {
        assert!(
            items.iter().any(|i| i.checklists.contains(list) && i.title.starts_with(words)),
            "{} checklist lacks the guide's `{words}`",
            list.as_str()
        );
    }
    assert_eq!(model.checklists.overnight.as_secs(), 15 * 3600);
    // An item of one alert shows that alert's signal against its threshold.
    let cpu = items.iter().find(|i| i.title.contains("(CPU)")).expect("cpu item");
    assert_eq!(cpu.alerts, vec![("HostCpuHigh".to_owned(), "warning".to_owned())]);
    assert!(cpu.value.as_deref().is_some_and(|v| v.contains("node_cpu_seconds_total")));
    assert_eq!(cpu.alert_threshold.map(|t| t.value), Some(0.8));
    // Recording rules may be read (the alerts' own signals).
    let latency = items.iter().find(|i| i.title.contains("p95")).expect("latency item");
    assert_eq!(latency.value.as_deref(), Some("instance:api_http_request_duration_seconds:p95_rate5m"));
    // Several alerts and no expression: how many fire.
    let health = &items[0];
    assert!(health.value.is_none() && health.alerts.len() > 1);
}

#[test]
fn broken_checklists_say_where_and_how_to_fix() {
    let cases: &[(&str, &str, String)] = &[
        (
            "alerts: [PostgresDown]\n",
            "alerts: [PostgresDwn]\n",
            format!(
                "thresholds.yaml:{}:16: checklists.items[3].alerts[0]: unknown alert `PostgresDwn`; did you mean `PostgresDown`?",
                line_of("alerts: [PostgresDown]\n")
            ),
        ),
        (
            "expr: opsmon_pg_select1_duration_seconds\n",
            "expr: opsmon_pg_select1_duration_second\n",
            format!(
                "thresholds.yaml:{}:13: checklists.items[6].expr: unknown metric `opsmon_pg_select1_duration_second`: not in the exporter catalog, the business metrics of the exporter config, `up` or this file's recording rules; did you mean `opsmon_pg_select1_duration_seconds`?",
                line_of("expr: opsmon_pg_select1_duration_seconds\n")
            ),
        ),
        (
            "checklists: [evening]\n      alerts: [JobHeartbeatStale]",
            "checklists: [evenin]\n      alerts: [JobHeartbeatStale]",
            format!(
                "thresholds.yaml:{}:20: checklists.items[23].checklists[0]: unknown checklist `evenin`, expected one of morning, afternoon, evening; did you mean `evening`?",
                line_of("checklists: [evening]\n      alerts: [JobHeartbeatStale]")
            ),
        ),
        (
            "expr: smartalk_busiest_user_events_per_second\n",
            "expr: smartalk_busiest_user_events_per_second > 5\n",
            format!(
                "thresholds.yaml:{}:13: checklists.items[22].expr: an item shows a value, but this is a condition (`>`); put the limit in `warning`/`critical`",
                line_of("expr: smartalk_busiest_user_events_per_second\n")
            ),
        ),
        (
            "      unit: seconds\n      warning: {above: 0.1}\n",
            "      unit: second\n      warning: {above: 0.1}\n",
            format!(
                "thresholds.yaml:{}:13: checklists.items[6].unit: unknown unit `second`, expected one of ratio, seconds, bytes, none; did you mean `seconds`?",
                line_of("      unit: seconds\n      warning: {above: 0.1}\n")
            ),
        ),
        (
            "  overnight: 15h\n",
            "  overnight: 15 hours\n",
            format!("thresholds.yaml:{}:14: checklists.overnight: ", line_of("  overnight: 15h\n")),
        ),
        (
            "      warning: {above: 0.1}\n",
            "      warning: {abov: 0.1}\n",
            format!(
                "thresholds.yaml:{}:17: checklists.items[6].warning.abov: unknown field `abov`; did you mean `above`?",
                line_of("      warning: {above: 0.1}\n")
            ),
        ),
    ];
    for (from, to, expected) in cases {
        let error = validate(&broken(from, to)).expect_err(to);
        assert!(error.contains(expected.as_str()), "{to}:\nexpected {expected}\n     got {error}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = broken("alerts: [PostgresDown]\n", "alerts: [PostgresDwn]\n").replacen(
        "expr: opsmon_pg_select1_duration_seconds\n",
        "expr: opsmon_pg_select1_duration_second\n",
        1,
    );
    let error = validate(&text).expect_err("two problems");
    assert!(error.contains("PostgresDwn") && error.contains("opsmon_pg_select1_duration_second`"), "{error}");
}
