//! promtool unit tests, one test group per alert: the signal just on the
//! safe side of the threshold (silent), past it for less than `for`
//! (pending, not firing), then past it after `for` (firing, with the exact
//! labels and annotations). Relative kinds get a synthetic baseline phase
//! first. Every range window at a check time lies inside one linear phase
//! of the input, so no result depends on whether a sample sits exactly on
//! a window boundary (Prometheus 3 made windows left-open).

use crate::format::{format_duration, series_text};
use crate::model::{Alert, Model};
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

/// `deploy/prometheus/rules.test.yml`.
pub fn render(model: &Model) -> String {
    let mut out = format!(
        "# {}\n# Run: promtool test rules rules.test.yml\n# One group per alert: silent just on the safe side of the threshold, pending\n# (not firing; the ALERTS series pending where windows allow) before `for`,\n# firing after it. Range windows at every check lie inside one\n# linear phase of the input, so no result depends on a sample sitting exactly\n# on a window boundary.\n",
        super::header(&model.source)
    );
    let tests = model.alerts.iter().map(group).collect();
    out.push_str(&write(&map([
        ("rule_files", Y::Seq(vec![s("rules.yml")])),
        ("evaluation_interval", s("1m")),
        ("tests", Y::Seq(tests)),
    ])));
    out
}
