//! The Prometheus rule file: one group per component (recording rules
//! first), alerts with `severity`/`component` labels and the summary,
//! description, runbook_url and dashboard_url annotations. Valid for
//! Prometheus 2.42: no group-level `labels`, no `query_offset`.

use crate::format::format_duration;
use crate::model::{Alert, Model};
use crate::render::yamlw::{Y, s, write};

/// The rule groups, shared with the PrometheusRule renderer.
pub fn groups(model: &Model) -> Y {
    let mut components: Vec<&str> = Vec::new();
    for alert in &model.alerts {
        if !components.contains(&alert.component.as_str()) {
            components.push(&alert.component);
        }
    }
    let groups = components
        .iter()
        .map(|component| {
            let mut rules = Vec::new();
            for record in model.records.iter().filter(|r| r.component == *component) {
                rules
                    .push(Y::Map(vec![("record".into(), s(&record.name)), ("expr".into(), s(&record.expr))]));
            }
            for alert in model.alerts.iter().filter(|a| a.component == *component) {
                rules.push(alert_rule(alert));
            }
            Y::Map(vec![("name".into(), s(format!("opsmon-{component}"))), ("rules".into(), Y::Seq(rules))])
        })
        .collect();
    Y::Seq(groups)
}

fn alert_rule(alert: &Alert) -> Y {
    let mut rule = vec![("alert".to_owned(), s(&alert.name)), ("expr".into(), s(&alert.expr))];
    if !alert.for_.is_zero() {
        rule.push(("for".into(), s(format_duration(alert.for_))));
    }
    rule.push(("labels".into(), Y::Map(alert.labels.iter().map(|(k, v)| (k.clone(), s(v))).collect())));
    rule.push((
        "annotations".into(),
        Y::Map(annotations(alert).into_iter().map(|(k, v)| (k.to_owned(), s(v))).collect()),
    ));
    Y::Map(rule)
}

/// Annotation templates, in output order.
pub fn annotations(alert: &Alert) -> Vec<(&'static str, String)> {
    vec![
        ("summary", alert.summary_text.clone()),
        ("description", alert.description_text.clone()),
        ("runbook_url", alert.runbook_url.clone()),
        ("dashboard_url", alert.dashboard_url.clone()),
    ]
}

/// `deploy/prometheus/rules.yml`.
pub fn render(model: &Model) -> String {
    let mut out = format!(
        "# {}\n# Check: promtool check rules rules.yml; test: promtool test rules rules.test.yml\n",
        super::header(&model.source)
    );
    out.push_str(&write(&Y::Map(vec![("groups".into(), groups(model))])));
    out
}
