//! promtool unit tests, one test group per alert: the signal just on the
//! safe side of the threshold (silent), past it for less than `for`
//! (pending, not firing), then past it after `for` (firing, with the exact
//! labels and annotations). Relative kinds get a synthetic baseline phase
//! first. Every range window at a check time lies inside one linear phase
//! of the input, so no result depends on whether a sample sits exactly on
//! a window boundary (Prometheus 3 made windows left-open). The Watchdog
//! and each escalation step get their own groups (escalation from an input
//! ALERTS series: not before the step, after it, never once resolved).

use crate::format::{format_duration, series_text};
use crate::model::{Alert, Model};
use crate::render::prometheus::{DeliveryRule, delivery_rules};
use crate::render::yamlw::{Y, map, s, write};
use std::collections::BTreeMap;
use std::time::Duration;

type Labels = BTreeMap<String, String>;

fn at(t: Duration) -> Y {
    s(format_duration(t))
}

fn exp_labels(alert: &Alert, labels: &Labels) -> Y {
    let mut all = labels.clone();
    for (k, v) in &alert.labels {
        all.insert(k.clone(), v.clone());
    }
    Y::Map(all.into_iter().map(|(k, v)| (k, s(v))).collect())
}

fn group(alert: &Alert) -> Y {
    let sc = &alert.scenario;
    let series =
        sc.series.iter().map(|i| map([("series", s(&i.series)), ("values", s(&i.values))])).collect();
    let name = || s(&alert.name);
    let mut checks =
        vec![map([("alertname", name()), ("eval_time", at(sc.silent_at)), ("exp_alerts", Y::Seq(vec![]))])];
    if let Some(p) = sc.pending_at {
        checks.push(map([("alertname", name()), ("eval_time", at(p)), ("exp_alerts", Y::Seq(vec![]))]));
    }
    let firing = sc
        .firing
        .iter()
        .map(|sample| {
            let labels = &sample.labels;
            let annotations = vec![
                ("summary".to_owned(), s(alert.summary.render(labels, sample.value))),
                ("description".to_owned(), s(alert.description.render(labels, sample.value))),
                ("runbook_url".to_owned(), s(&alert.runbook_url)),
                ("dashboard_url".to_owned(), s(&alert.dashboard_url)),
            ];
            map([("exp_labels", exp_labels(alert, &sample.labels)), ("exp_annotations", Y::Map(annotations))])
        })
        .collect();
    checks.push(map([
        ("alertname", name()),
        ("eval_time", at(sc.firing_at)),
        ("exp_alerts", Y::Seq(firing)),
    ]));
    let mut group = vec![
        ("interval".to_owned(), s("1m")),
        ("input_series".to_owned(), Y::Seq(series)),
        ("alert_rule_test".to_owned(), Y::Seq(checks)),
    ];
    if let (Some(p), false) = (sc.pending_at, sc.pending.is_empty()) {
        let samples = sc
            .pending
            .iter()
            .map(|sample| {
                let mut labels = sample.labels.clone();
                labels.extend(alert.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                labels.insert("__name__".into(), "ALERTS".into());
                labels.insert("alertname".into(), alert.name.clone());
                labels.insert("alertstate".into(), "pending".into());
                map([("labels", s(series_text(&labels))), ("value", Y::Num(1.0))])
            })
            .collect();
        let query = format!("ALERTS{{alertname=\"{}\",alertstate=\"pending\"}}", alert.name);
        group.push((
            "promql_expr_test".to_owned(),
            Y::Seq(vec![map([("expr", s(query)), ("eval_time", at(p)), ("exp_samples", Y::Seq(samples))])]),
        ));
    }
    Y::Map(group)
}

/// The instance of the hand-made input series of the delivery tests.
const INSTANCE: &str = "localhost:19100";

/// The Watchdog fires from the first evaluation, with nothing else in input.
fn watchdog_group(rule: &DeliveryRule) -> Y {
    let labels = Y::Map(rule.labels.iter().map(|(k, v)| (k.clone(), s(v))).collect());
    let annotations = Y::Map(rule.annotations.iter().map(|(k, v)| (k.clone(), s(v))).collect());
    map([
        ("interval", s("1m")),
        (
            "input_series",
            Y::Seq(vec![map([
                ("series", s(format!("up{{job=\"opsmon\",instance=\"{INSTANCE}\"}}"))),
                ("values", s("1x5")),
            ])]),
        ),
        (
            "alert_rule_test",
            Y::Seq(vec![map([
                ("alertname", s(&rule.name)),
                ("eval_time", s("1m")),
                ("exp_alerts", Y::Seq(vec![map([("exp_labels", labels), ("exp_annotations", annotations)])])),
            ])]),
        ),
    ])
}

/// An escalation step, from the ALERTS series of one of the tier's alerts:
/// not yet escalated just before the step, escalated after it, and never
/// when the alert resolved before the step.
fn escalation_groups(model: &Model, rule: &DeliveryRule) -> Vec<Y> {
    let Some((tier, step)) = &rule.escalation else { return Vec::new() };
    let Some(alert) = model.alerts.iter().find(|a| &a.severity == tier) else { return Vec::new() };
    let minutes = step.after.as_secs().div_ceil(60);
    let series = format!(
        "ALERTS{{alertname=\"{}\",alertstate=\"firing\",component=\"{}\",instance=\"{INSTANCE}\",job=\"opsmon\",severity=\"{tier}\"}}",
        alert.name, alert.component
    );
    let up = map([
        ("series", s(format!("up{{job=\"opsmon\",instance=\"{INSTANCE}\"}}"))),
        ("values", s(format!("1x{}", minutes + 10))),
    ]);
    let after = format_duration(step.after);
    let labels = Y::Map(
        [
            ("component", alert.component.clone()),
            ("escalated_alertname", alert.name.clone()),
            ("escalation", step.level.clone()),
            ("instance", INSTANCE.to_owned()),
            ("job", "opsmon".to_owned()),
            ("severity", tier.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), s(v)))
        .collect(),
    );
    let annotations = Y::Map(vec![
        ("summary".into(), s(format!("{} unresolved for {after}: escalated to {}", alert.name, step.level))),
        (
            "description".into(),
            s(format!(
                "The {tier} alert {} on {INSTANCE} has been firing for {after} without being resolved; escalation level {} (故障升级流程) is called.",
                alert.name, step.level
            )),
        ),
        ("runbook_url".into(), s(format!("{}/{}.md", model.runbook_base, alert.name))),
    ]);
    let check = |t: u64, exp: Vec<Y>| {
        map([("alertname", s(&rule.name)), ("eval_time", s(format!("{t}m"))), ("exp_alerts", Y::Seq(exp))])
    };
    let unresolved = map([
        ("interval", s("1m")),
        (
            "input_series",
            Y::Seq(vec![
                up.clone(),
                map([("series", s(&series)), ("values", s(format!("1x{}", minutes + 10)))]),
            ]),
        ),
        (
            "alert_rule_test",
            Y::Seq(vec![
                check(minutes - 1, vec![]),
                check(minutes + 2, vec![map([("exp_labels", labels), ("exp_annotations", annotations)])]),
            ]),
        ),
    ]);
    // Firing for all but the last 5 minutes before the step, then resolved.
    let short = minutes.saturating_sub(5).max(1);
    let resolved = map([
        ("interval", s("1m")),
        (
            "input_series",
            Y::Seq(vec![
                up,
                map([("series", s(&series)), ("values", s(format!("1x{short} _x{}", minutes + 10 - short)))]),
            ]),
        ),
        ("alert_rule_test", Y::Seq(vec![check(minutes + 2, vec![])])),
    ]);
    vec![unresolved, resolved]
}

/// `deploy/prometheus/rules.test.yml`.
pub fn render(model: &Model) -> String {
    let mut out = format!(
        "# {}\n# Run: promtool test rules rules.test.yml\n# One group per alert: silent just on the safe side of the threshold, pending\n# (not firing; the ALERTS series pending where windows allow) before `for`,\n# firing after it. Range windows at every check lie inside one\n# linear phase of the input, so no result depends on a sample sitting exactly\n# on a window boundary.\n",
        super::header(&model.source)
    );
    let mut tests: Vec<Y> = model.alerts.iter().map(group).collect();
    for rule in delivery_rules(model) {
        if rule.escalation.is_some() {
            tests.extend(escalation_groups(model, &rule));
        } else {
            tests.push(watchdog_group(&rule));
        }
    }
    out.push_str(&write(&map([
        ("rule_files", Y::Seq(vec![s("rules.yml")])),
        ("evaluation_interval", s("1m")),
        ("tests", Y::Seq(tests)),
    ])));
    out
}
