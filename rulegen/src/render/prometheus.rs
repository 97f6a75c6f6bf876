//! The Prometheus rule file: one group per component (recording rules
//! first), alerts with `severity`/`component` labels and the summary,
//! description, runbook_url and dashboard_url annotations. Valid for
//! Prometheus 2.42: no group-level `labels`, no `query_offset`.

use crate::format::format_duration;
use crate::model::{Alert, Escalation, Model};
use crate::render::yamlw::{Y, s, write};
use std::time::Duration;

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
        .collect::<Vec<Y>>();
    let mut groups = groups;
    let delivery = delivery_rules(model);
    if !delivery.is_empty() {
        let rules = delivery.iter().map(DeliveryRule::to_yaml).collect();
        groups.push(Y::Map(vec![("name".into(), s("opsmon-delivery")), ("rules".into(), Y::Seq(rules))]));
    }
    Y::Seq(groups)
}

/// A rule about delivery rather than a fault: the Watchdog and the
/// escalation steps.
#[derive(Debug, Clone)]
pub struct DeliveryRule {
    /// Alert name.
    pub name: String,
    /// Expression.
    pub expr: String,
    /// `for`.
    pub for_: Duration,
    /// Static labels.
    pub labels: Vec<(String, String)>,
    /// Annotations (templates).
    pub annotations: Vec<(String, String)>,
    /// The tier escalated and the step (for escalation rules).
    pub escalation: Option<(String, Escalation)>,
}

impl DeliveryRule {
    fn to_yaml(&self) -> Y {
        let mut rule = vec![("alert".to_owned(), s(&self.name)), ("expr".into(), s(&self.expr))];
        if !self.for_.is_zero() {
            rule.push(("for".into(), s(format_duration(self.for_))));
        }
        rule.push(("labels".into(), Y::Map(self.labels.iter().map(|(k, v)| (k.clone(), s(v))).collect())));
        rule.push((
            "annotations".into(),
            Y::Map(self.annotations.iter().map(|(k, v)| (k.clone(), s(v))).collect()),
        ));
        Y::Map(rule)
    }
}

/// Name of the alert of an escalation step (`EscalatedToL2`; with several
/// escalating tiers, the tier is part of it).
pub fn escalation_alert(model: &Model, tier: &str, level: &str) -> String {
    let escalating = model.severities.iter().filter(|t| !t.escalation.is_empty()).count();
    if escalating > 1 {
        let mut t = tier.to_owned();
        if let Some(first) = t.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        format!("{t}EscalatedTo{level}")
    } else {
        format!("EscalatedTo{level}")
    }
}

/// The Watchdog (always firing, for a dead-man's switch) and one alert per
/// escalation step: the tier's firing alerts that have not resolved for
/// the step's time, relabelled `escalation`, with the original name kept
/// in `escalated_alertname`.
pub fn delivery_rules(model: &Model) -> Vec<DeliveryRule> {
    let mut out = Vec::new();
    if model.alertmanager.watchdog.is_some() {
        out.push(DeliveryRule {
            name: "Watchdog".into(),
            expr: "vector(1)".into(),
            for_: Duration::ZERO,
            labels: vec![("component".into(), "monitoring".into()), ("severity".into(), "none".into())],
            annotations: vec![
                ("summary".into(), "Alerting pipeline is alive (always firing)".into()),
                (
                    "description".into(),
                    "This alert always fires so that an external dead-man's switch notices when Prometheus, Alertmanager or the whole host stops sending it.".into(),
                ),
            ],
            escalation: None,
        });
    }
    for tier in &model.severities {
        for step in &tier.escalation {
            let after = format_duration(step.after);
            out.push(DeliveryRule {
                name: escalation_alert(model, &tier.name, &step.level),
                expr: format!(
                    "label_replace(max without (alertstate) (ALERTS{{alertstate=\"firing\",severity=\"{}\",escalation=\"\"}}), \"escalated_alertname\", \"$1\", \"alertname\", \"(.*)\")",
                    tier.name
                ),
                for_: step.after,
                labels: vec![("escalation".into(), step.level.clone())],
                annotations: vec![
                    (
                        "summary".into(),
                        format!("{{{{ $labels.escalated_alertname }}}} unresolved for {after}: escalated to {}", step.level),
                    ),
                    (
                        "description".into(),
                        format!(
                            "The {} alert {{{{ $labels.escalated_alertname }}}} on {{{{ $labels.instance }}}} has been firing for {after} without being resolved; escalation level {} (故障升级流程) is called.",
                            tier.name, step.level
                        ),
                    ),
                    ("runbook_url".into(), format!("{}/{{{{ $labels.escalated_alertname }}}}.md", model.runbook_base)),
                ],
                escalation: Some((tier.name.clone(), step.clone())),
            });
        }
    }
    out
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
