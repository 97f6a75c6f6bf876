//! Severity tiers and the routing defaults: each tier's Alertmanager
//! timings and inhibitions, the Alertmanager and Kubernetes settings with
//! their defaults, and the base URLs of runbooks and dashboards.

use super::expressions::duration;
use crate::diagnostics::{Pos, Problems, hint};
use crate::format::format_duration;
use crate::model::{Alertmanager, Escalation, Kubernetes, Severity};
use crate::spec::{SeveritySpec, Spec};
use std::collections::BTreeSet;
use std::time::Duration;

/// Where runbooks are published when `links.runbooks` is not set.
const DEFAULT_RUNBOOKS: &str = "https://github.com/opsmon/opsmon/blob/main/docs/runbooks";
/// Where Grafana runs when `links.grafana` is not set.
const DEFAULT_GRAFANA: &str = "http://localhost:3000";

/// A lowercase identifier (`critical`, `api`, `host-io`).
pub fn identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// The severity tiers in declared order.
pub fn severities(p: &mut Problems, spec: &Spec) -> Vec<Severity> {
    let mut severities = Vec::new();
    let mut seen = BTreeSet::new();
    for s in &spec.severities {
        if !identifier(&s.name.value) {
            p.at(
                s.name.pos,
                &s.name.path,
                format!("severity `{}` must be a lowercase identifier", s.name.value),
            );
        }
        if !seen.insert(s.name.value.clone()) {
            p.at(s.name.pos, &s.name.path, format!("duplicate severity `{}`", s.name.value));
        }
        for t in [&s.group_wait, &s.group_interval, &s.repeat_interval] {
            duration(p, t);
        }
        let repeat = duration(p, &s.repeat_interval);
        if let Some(e) = &s.escalate_after {
            duration(p, e);
        }
        let escalation = escalation(p, s, repeat);
        severities.push(Severity {
            name: s.name.value.clone(),
            respond: s.respond.value.clone(),
            escalate_after: s.escalate_after.as_ref().map(|e| e.value.clone()),
            escalation,
            receiver: s.receiver.value.clone(),
            group_wait: s.group_wait.value.clone(),
            group_interval: s.group_interval.value.clone(),
            repeat_interval: s.repeat_interval.value.clone(),
            inhibits: s.inhibits.iter().map(|i| i.value.clone()).collect(),
            color: s.color.value.clone(),
        });
    }
    let names: Vec<&str> = spec.severities.iter().map(|s| s.name.value.as_str()).collect();
    for s in &spec.severities {
        for i in &s.inhibits {
            if !names.contains(&i.value.as_str()) || i.value == s.name.value {
                p.at(
                    i.pos,
                    &i.path,
                    format!(
                        "`{}` is not another severity ({}){}",
                        i.value,
                        names.join(", "),
                        hint(&i.value, names.iter().copied())
                    ),
                );
            }
        }
    }
    if spec.severities.is_empty() {
        p.at(Pos::default(), "severities", "declare at least one severity tier");
    }
    severities
}

/// A tier's escalation steps: each at least the tier's repeat interval
/// (a shorter step would escalate before L1 was even paged again), later
/// than the one before, with a distinct level.
fn escalation(p: &mut Problems, s: &SeveritySpec, repeat: Option<Duration>) -> Vec<Escalation> {
    let mut steps: Vec<Escalation> = Vec::new();
    for step in &s.escalation {
        let Some(after) = duration(p, &step.after) else { continue };
        if let Some(repeat) = repeat
            && after < repeat
        {
            p.at(
                step.after.pos,
                &step.after.path,
                format!(
                    "escalation step {} is shorter than the tier's repeat_interval {}; escalate after at least {}",
                    step.after.value, s.repeat_interval.value, s.repeat_interval.value
                ),
            );
            continue;
        }
        if let Some(previous) = steps.last()
            && after <= previous.after
        {
            p.at(
                step.after.pos,
                &step.after.path,
                format!(
                    "escalation step {} is not later than the step before ({}); list the steps in increasing order",
                    step.after.value,
                    format_duration(previous.after)
                ),
            );
            continue;
        }
        if !step.level.value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            || step.level.value.is_empty()
            || steps.iter().any(|e| e.level == step.level.value)
        {
            p.at(
                step.level.pos,
                &step.level.path,
                format!(
                    "escalation level `{}` is used by an earlier step or is not a word of letters, digits, `-` and `_`; give each step its own level such as L3",
                    step.level.value
                ),
            );
            continue;
        }
        steps.push(Escalation {
            after,
            level: step.level.value.clone(),
            receiver: step.receiver.value.clone(),
        });
    }
    steps
}

/// An alert's `inhibits`: other alerts, silenced on the same instance (and
/// component, when they share it) while it fires. Another component's
/// alerts are allowed for a cause upstream of them (nginx down → the API's
/// symptoms).
pub fn alert_inhibitions(p: &mut Problems, spec: &Spec) {
    for a in &spec.alerts {
        for target in &a.inhibits {
            let found = spec.alerts.iter().find(|b| b.name.value == target.value);
            match found {
                Some(b) if b.name.value == a.name.value => {
                    p.at(target.pos, &target.path, format!("`{}` cannot inhibit itself", target.value));
                }
                Some(_) => {}
                None => {
                    let names: Vec<&str> = spec.alerts.iter().map(|b| b.name.value.as_str()).collect();
                    p.at(
                        target.pos,
                        &target.path,
                        format!(
                            "unknown alert `{}` in inhibits{}",
                            target.value,
                            hint(&target.value, names.iter().copied())
                        ),
                    );
                }
            }
        }
    }
}

/// Alertmanager settings beyond the tiers, with defaults.
pub fn alertmanager(p: &mut Problems, spec: &Spec) -> Alertmanager {
    let am = &spec.alertmanager;
    if let Some(r) = &am.resolve_timeout {
        duration(p, r);
    }
    if let Some(w) = &am.watchdog {
        duration(p, &w.repeat_interval);
    }
    Alertmanager {
        group_by: if am.group_by.is_empty() {
            vec!["alertname".into(), "component".into(), "instance".into()]
        } else {
            am.group_by.clone()
        },
        default_receiver: am.default_receiver.as_ref().map_or("default".into(), |r| r.value.clone()),
        resolve_timeout: am.resolve_timeout.as_ref().map_or("5m".into(), |r| r.value.clone()),
        watchdog: am.watchdog.as_ref().map(|w| (w.receiver.value.clone(), w.repeat_interval.value.clone())),
        receivers: None,
    }
}

/// PrometheusRule metadata, with defaults; labels sorted.
pub fn kubernetes(spec: &Spec) -> Kubernetes {
    let k = &spec.kubernetes;
    let exporter_job = spec.exporter_job.as_ref().map_or("opsmon".to_owned(), |j| j.value.clone());
    let mut labels: Vec<(String, String)> =
        k.labels.iter().map(|(key, value)| (key.value.clone(), value.value.clone())).collect();
    labels.sort();
    Kubernetes {
        name: k.name.as_ref().map_or("opsmon".into(), |n| n.value.clone()),
        namespace: k.namespace.as_ref().map_or("monitoring".into(), |n| n.value.clone()),
        labels,
        exporter_job: exporter_job.clone(),
        job: k.job.as_ref().map_or(exporter_job, |j| j.value.clone()),
    }
}

/// Base URL of runbook pages, without a trailing slash.
pub fn runbook_base(spec: &Spec) -> String {
    spec.links
        .runbooks
        .as_ref()
        .map_or(DEFAULT_RUNBOOKS.to_owned(), |l| l.value.trim_end_matches('/').to_owned())
}

/// Base URL of Grafana, without a trailing slash.
pub fn grafana_base(spec: &Spec) -> String {
    spec.links
        .grafana
        .as_ref()
        .map_or(DEFAULT_GRAFANA.to_owned(), |l| l.value.trim_end_matches('/').to_owned())
}
