//! Spec → model. Every metric and label resolved against the known metrics,
//! every expression parsed and type-checked, units and directions checked,
//! names unique, durations valid, templates parsed, a promtool scenario
//! built for every alert, dashboards laid out — and every problem reported
//! at once with its position, field path and likely fix.

use crate::known::{self, Known, Metric, Source};
use crate::model::{
    Alert, Alertmanager, Direction, Kubernetes, Model, Record, Runbook, Severity, Step, Threshold,
};
use crate::promql::{self, Issue};
use crate::spec::{self, AlertSpec, At, Spec};
use crate::synth::{self, Plan};
use crate::template::Template;
use crate::yaml::{self, Diagnostic, Problems, hint};
use opsmon_catalog::{MetricType, Unit};
use promql_parser::parser::Expr;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Validation failed; every problem found.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render(.file, .problems))]
pub struct Invalid {
    /// The threshold file as given.
    pub file: String,
    /// The problems, in file order.
    pub problems: Vec<Diagnostic>,
}

fn render(file: &str, problems: &[Diagnostic]) -> String {
    problems.iter().map(|d| d.render(file)).collect::<Vec<_>>().join("\n")
}

/// Parses and validates threshold-file text against `known`.
pub fn validate(file: &str, text: &str, known: &Known) -> Result<Model, Invalid> {
    let root = yaml::parse(text).map_err(|d| Invalid { file: file.to_owned(), problems: vec![d] })?;
    let mut p = Problems::default();
    let spec = spec::decode(&mut p, &root);
    let model = build(&mut p, file, &spec, known);
    let mut problems = p.list;
    problems.sort();
    problems.dedup();
    if problems.is_empty() { Ok(model) } else { Err(Invalid { file: file.to_owned(), problems }) }
}

fn camel_case(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
        && name.chars().any(|c| c.is_ascii_lowercase())
}

fn identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn duration(p: &mut Problems, at: &At<String>) -> Option<Duration> {
    match promql::parse_duration(&at.value) {
        Ok(d) => Some(d),
        Err(e) => {
            p.at(at.pos, &at.path, e);
            None
        }
    }
}

/// Parses and checks an expression, pointing problems inside the scalar.
fn expression(p: &mut Problems, at: &At<String>, known: &Known) -> Option<Expr> {
    let expr = match promql::parse(&at.value) {
        Ok(e) => e,
        Err(e) => {
            p.at(at.pos, &at.path, format!("invalid PromQL: {e}"));
            return None;
        }
    };
    let issues = promql::check(&expr, known);
    let ok = issues.is_empty();
    for Issue { needle, message } in issues {
        p.at(yaml::pos_within(&at.node, &at.value, &needle), &at.path, message);
    }
    if promql::selectors(&expr).iter().any(|vs| {
        promql::selector_name(vs)
            .and_then(|n| known.resolve(&n))
            .is_some_and(|(m, _)| m.source == Source::Record)
    }) {
        p.at(at.pos, &at.path, "alert expressions must use exporter metrics, not recording rules (set `record:` to record a signal)");
        return None;
    }
    ok.then_some(expr)
}

/// A value expression (not a condition).
fn signal(p: &mut Problems, at: &At<String>, known: &Known) -> Option<Expr> {
    let expr = expression(p, at, known)?;
    if let Expr::Binary(b) = promql::strip(&expr)
        && (b.op.is_comparison_operator() || b.op.is_set_operator())
    {
        p.at(
            at.pos,
            &at.path,
            format!(
                "a signal is a value, but this is a condition (`{}`); give the value and put the limit in `threshold` (or use kind raw)",
                b.op
            ),
        );
        return None;
    }
    Some(expr)
}

/// Wraps in parentheses when `expr` would bind looser than `*`/`/`.
fn operand(expr: &Expr) -> String {
    match promql::strip(expr) {
        Expr::Binary(_) => format!("({})", promql::strip(expr)),
        other => other.to_string(),
    }
}

/// Wraps in parentheses when `expr` would bind looser than a comparison.
fn comparable(expr: &Expr) -> String {
    match promql::strip(expr) {
        Expr::Binary(b) if b.op.is_comparison_operator() || b.op.is_set_operator() => format!("({expr})"),
        other => other.to_string(),
    }
}

fn parse_unit(p: &mut Problems, at: &At<String>) -> Option<Unit> {
    let unit = known::parse_unit(&at.value);
    if unit.is_none() {
        p.at(
            at.pos,
            &at.path,
            format!(
                "unknown unit `{}`, expected one of {}{}",
                at.value,
                known::UNIT_WORDS.join(", "),
                hint(&at.value, known::UNIT_WORDS.iter().copied())
            ),
        );
    }
    unit
}

struct Built {
    expr: Expr,
    driven: Expr,
    signal: String,
    threshold: Threshold,
    guard: Option<(Expr, f64)>,
    record: Option<(String, String)>,
    levels: (Option<f64>, f64, f64),
    rendered: Option<String>,
}

impl Built {
    /// An alert on `signal` alone: no volume guard, no recording rule, test
    /// levels on either side of the threshold.
    fn unguarded(expr: Expr, signal: Expr, threshold: Threshold) -> Built {
        let (safe, past) = levels(threshold, 100.0);
        Built {
            expr,
            signal: signal.to_string(),
            driven: signal,
            threshold,
            guard: None,
            record: None,
            levels: (None, safe, past),
            rendered: None,
        }
    }
}

fn build(p: &mut Problems, file: &str, spec: &Spec, known: &Known) -> Model {
    // Severity tiers.
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
        if let Some(e) = &s.escalate_after {
            duration(p, e);
        }
        severities.push(Severity {
            name: s.name.value.clone(),
            respond: s.respond.value.clone(),
            escalate_after: s.escalate_after.as_ref().map(|e| e.value.clone()),
            receiver: s.receiver.value.clone(),
            group_wait: s.group_wait.value.clone(),
            group_interval: s.group_interval.value.clone(),
            repeat_interval: s.repeat_interval.value.clone(),
            inhibits: s.inhibits.iter().map(|i| i.value.clone()).collect(),
            color: s.color.value.clone(),
        });
    }
    let severity_names: Vec<&str> = spec.severities.iter().map(|s| s.name.value.as_str()).collect();
    for s in &spec.severities {
        for i in &s.inhibits {
            if !severity_names.contains(&i.value.as_str()) || i.value == s.name.value {
                p.at(
                    i.pos,
                    &i.path,
                    format!(
                        "`{}` is not another severity ({}){}",
                        i.value,
                        severity_names.join(", "),
                        hint(&i.value, severity_names.iter().copied())
                    ),
                );
            }
        }
    }
    if spec.severities.is_empty() {
        p.at(yaml::Pos::default(), "severities", "declare at least one severity tier");
    }

    // Procedures.
    let mut procedure_ids = BTreeSet::new();
    for proc_ in &spec.procedures {
        if !procedure_ids.insert(proc_.id.value.clone()) {
            p.at(proc_.id.pos, &proc_.id.path, format!("duplicate procedure `{}`", proc_.id.value));
        }
    }

    // Alerts.
    let mut names = BTreeSet::new();
    let mut records: Vec<Record> = Vec::new();
    let mut record_exprs: BTreeMap<String, (String, yaml::Pos)> = BTreeMap::new();
    let mut alerts = Vec::new();
    let mut extra_known = known.clone();
    for a in &spec.alerts {
        let name = &a.name;
        if !camel_case(&name.value) {
            p.at(
                name.pos,
                &name.path,
                format!("alert name `{}` must be CamelCase (e.g. HostCpuHigh)", name.value),
            );
        }
        if !names.insert(name.value.clone()) {
            p.at(name.pos, &name.path, format!("duplicate alert name `{}`", name.value));
        }
        if !severity_names.contains(&a.severity.value.as_str()) {
            p.at(
                a.severity.pos,
                &a.severity.path,
                format!(
                    "unknown severity `{}`, expected one of {}{}",
                    a.severity.value,
                    severity_names.join(", "),
                    hint(&a.severity.value, severity_names.iter().copied())
                ),
            );
        }
        if !identifier(&a.component.value) {
            p.at(
                a.component.pos,
                &a.component.path,
                "component must be a lowercase identifier such as api or host",
            );
        }
        let for_ = a.for_.as_ref().map_or(Some(Duration::ZERO), |f| duration(p, f));
        let built = build_kind(p, a, known);
        let labels_static = static_labels(p, a);
        let summary = template(p, &a.summary);
        let description = template(p, &a.description);
        let runbook = runbook(p, a, spec);
        let (Some(for_), Some(built), Some(summary), Some(description)) = (for_, built, summary, description)
        else {
            continue;
        };
        let series_labels = promql::labels_of(&built.expr, known);
        if let Some(carried) = &series_labels {
            for (t, at) in [(&summary, &a.summary), (&description, &a.description)] {
                for label in t.labels() {
                    if !carried.contains(label) {
                        p.at(
                            at.pos,
                            &at.path,
                            format!(
                                "the alert's series do not carry label `{label}` (they carry: {}){}",
                                carried.iter().cloned().collect::<Vec<_>>().join(", "),
                                hint(label, carried.iter().map(String::as_str))
                            ),
                        );
                    }
                }
            }
        }
        if let Some((record, expr)) = &built.record {
            match record_exprs.get(record) {
                Some((existing, _)) if existing != expr => {
                    if let Some(r) = &a.record {
                        p.at(
                            r.pos,
                            &r.path,
                            format!("recording rule `{record}` is already defined with another expression"),
                        );
                    }
                }
                Some(_) => {}
                None => {
                    record_exprs.insert(record.clone(), (expr.clone(), a.pos));
                    records.push(Record {
                        name: record.clone(),
                        expr: expr.clone(),
                        component: a.component.value.clone(),
                    });
                    extra_known.insert(Metric {
                        name: record.clone(),
                        kind: MetricType::Gauge,
                        unit: built.threshold.unit,
                        labels: series_labels.clone().unwrap_or_default().into_iter().collect(),
                        help: format!("Recorded by rulegen for {}.", name.value),
                        source: Source::Record,
                    });
                }
            }
        }
        let base = built.guard.as_ref().map_or(100.0, |(_, min)| (min * 10.0).max(100.0));
        let plan = Plan {
            alert: &built.expr,
            driven: &built.driven,
            baseline_level: built.levels.0,
            silent_level: built.levels.1,
            firing_level: built.levels.2,
            guard: built.guard.as_ref().map(|(e, m)| (e, *m)),
            for_secs: for_.as_secs_f64(),
            base,
        };
        let scenario = match synth::scenario(known, &plan) {
            Ok(s) => s,
            Err(e) => {
                p.at(
                    a.pos,
                    &a.path,
                    format!(
                        "cannot build a promtool test for `{}`: {e}; simplify the signal (gauges, rate() of counters, sums, ratios, time() - x, histogram_quantile, predict_linear)",
                        name.value
                    ),
                );
                continue;
            }
        };
        let mut labels = labels_static;
        labels.insert("severity".into(), a.severity.value.clone());
        labels.insert("component".into(), a.component.value.clone());
        alerts.push((
            a,
            Alert {
                name: name.value.clone(),
                kind: a.kind.value.clone(),
                severity: a.severity.value.clone(),
                component: a.component.value.clone(),
                for_,
                expr: built.rendered.clone().unwrap_or_else(|| built.expr.to_string()),
                signal: built.signal,
                threshold: built.threshold,
                guard: built.guard.map(|(e, m)| (e.to_string(), m)),
                labels,
                series_labels: series_labels.map(|l| l.into_iter().collect()),
                summary,
                summary_text: a.summary.value.clone(),
                description,
                description_text: a.description.value.clone(),
                runbook,
                runbook_url: String::new(),
                dashboard_url: String::new(),
                dashboard_place: (String::new(), String::new()),
                scenario,
            },
        ));
    }

    let runbook_base = spec
        .links
        .runbooks
        .as_ref()
        .map_or("https://github.com/opsmon/opsmon/blob/main/docs/runbooks".to_owned(), |l| {
            l.value.trim_end_matches('/').to_owned()
        });
    let grafana_base = spec
        .links
        .grafana
        .as_ref()
        .map_or("http://localhost:3000".to_owned(), |l| l.value.trim_end_matches('/').to_owned());
    let spec_names: Vec<String> = spec.alerts.iter().map(|a| a.name.value.clone()).collect();
    let boards =
        crate::layout::boards(p, spec, &mut alerts, &extra_known, &severities, &grafana_base, &spec_names);
    let alerts: Vec<Alert> = alerts
        .into_iter()
        .map(|(_, mut alert)| {
            alert.runbook_url = format!("{runbook_base}/{}.md", alert.name);
            alert
        })
        .collect();

    let am = &spec.alertmanager;
    let alertmanager = Alertmanager {
        group_by: if am.group_by.is_empty() {
            vec!["alertname".into(), "component".into(), "instance".into()]
        } else {
            am.group_by.clone()
        },
        default_receiver: am.default_receiver.as_ref().map_or("default".into(), |r| r.value.clone()),
        resolve_timeout: am.resolve_timeout.as_ref().map_or("5m".into(), |r| r.value.clone()),
    };
    if let Some(r) = &am.resolve_timeout {
        duration(p, r);
    }
    let k = &spec.kubernetes;
    let mut k8s_labels: Vec<(String, String)> =
        k.labels.iter().map(|(key, value)| (key.value.clone(), value.value.clone())).collect();
    k8s_labels.sort();
    let kubernetes = Kubernetes {
        name: k.name.as_ref().map_or("opsmon".into(), |n| n.value.clone()),
        namespace: k.namespace.as_ref().map_or("monitoring".into(), |n| n.value.clone()),
        labels: k8s_labels,
    };
    Model {
        source: file.to_owned(),
        runbook_base,
        grafana_base,
        alertmanager,
        kubernetes,
        severities,
        records,
        alerts,
        boards,
    }
}

fn static_labels(p: &mut Problems, a: &AlertSpec) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, value) in &a.labels {
        if matches!(key.value.as_str(), "severity" | "component" | "alertname") {
            p.at(key.pos, &key.path, format!("label `{}` is set by rulegen", key.value));
            continue;
        }
        if !opsmon_catalog::business::valid_metric_name(&key.value) || key.value.starts_with("__") {
            p.at(key.pos, &key.path, format!("invalid label name `{}`", key.value));
            continue;
        }
        out.insert(key.value.clone(), value.value.clone());
    }
    out
}

fn template(p: &mut Problems, at: &At<String>) -> Option<Template> {
    match Template::parse(&at.value) {
        Ok(t) => Some(t),
        Err(e) => {
            p.at(at.pos, &at.path, e);
            None
        }
    }
}

fn steps(list: &[spec::StepSpec]) -> Vec<Step> {
    list.iter().map(|s| Step { title: s.title.clone(), commands: s.commands.clone() }).collect()
}

fn runbook(p: &mut Problems, a: &AlertSpec, spec: &Spec) -> Runbook {
    let mut out = Runbook { first: steps(&a.runbook.steps), ..Runbook::default() };
    if let Some(id) = &a.runbook.procedure {
        match spec.procedures.iter().find(|pr| pr.id.value == id.value) {
            Some(pr) => {
                out.procedure = Some(pr.title.clone());
                out.source = pr.source.clone();
                out.symptoms = pr.symptoms.clone();
                out.diagnosis = steps(&pr.diagnosis);
                out.resolution = steps(&pr.resolution);
            }
            None => {
                let ids: Vec<&str> = spec.procedures.iter().map(|pr| pr.id.value.as_str()).collect();
                p.at(
                    id.pos,
                    &id.path,
                    format!("unknown procedure `{}`{}", id.value, hint(&id.value, ids.iter().copied())),
                );
            }
        }
    }
    out
}

/// Levels just on the safe side of the threshold and just past it.
fn levels(t: Threshold, base: f64) -> (f64, f64) {
    let delta = if t.value == 0.0 { base } else { synth::nice(t.value.abs() * 0.1) };
    let (mut safe, mut past) = match t.direction {
        Direction::Above => (t.value - delta, t.value + delta),
        Direction::Below => (t.value + delta, t.value - delta),
    };
    if t.unit == Unit::Ratio {
        if past > 1.0 {
            past = (t.value + 1.0) / 2.0;
        }
        if safe > 1.0 {
            safe = (t.value + 1.0) / 2.0;
        }
    }
    (synth::nice(safe), synth::nice(past))
}

fn threshold_of(
    p: &mut Problems,
    a: &AlertSpec,
    inferred: Option<Unit>,
    fixed: Option<Unit>,
) -> Option<Threshold> {
    let Some(t) = &a.threshold else {
        p.at(
            a.pos,
            &a.path,
            format!(
                "missing field `threshold` (kind {} needs `threshold: {{above|below: N, unit: U}}`)",
                a.kind.value
            ),
        );
        return None;
    };
    let direction = if t.direction.value == "above" { Direction::Above } else { Direction::Below };
    let declared = match &t.unit {
        Some(u) => Some(parse_unit(p, u)?),
        None => None,
    };
    let unit = match (declared, inferred.or(fixed)) {
        (Some(d), Some(i)) if d != i => {
            let at = t.unit.as_ref().map_or(&t.value.pos, |u| &u.pos);
            p.at(
                *at,
                &format!("{}.threshold.unit", a.path),
                format!(
                    "the signal is in {} but the threshold unit is {}; use unit {}",
                    known::unit_word(i),
                    known::unit_word(d),
                    known::unit_word(i)
                ),
            );
            return None;
        }
        (Some(d), _) => d,
        (None, Some(i)) => i,
        (None, None) => {
            p.at(
                t.value.pos,
                &format!("{}.threshold", a.path),
                format!(
                    "give the signal's unit (`unit: {}`); it cannot be told from the expression",
                    known::UNIT_WORDS.join("|")
                ),
            );
            return None;
        }
    };
    if unit == Unit::Ratio && !(0.0..=1.0).contains(&t.value.value) {
        let fix = if t.value.value > 1.0 && t.value.value <= 100.0 {
            format!(
                "; did you mean {} ({}%)?",
                yaml::fmt_num(t.value.value / 100.0),
                yaml::fmt_num(t.value.value)
            )
        } else {
            String::new()
        };
        p.at(
            t.value.pos,
            &t.value.path,
            format!("threshold {} is out of range for unit ratio (0..1){fix}", yaml::fmt_num(t.value.value)),
        );
        return None;
    }
    if matches!(unit, Unit::Seconds | Unit::Bytes) && t.value.value < 0.0 && a.kind.value != "predict" {
        p.at(
            t.value.pos,
            &t.value.path,
            format!("a negative threshold makes no sense for {}", known::unit_word(unit)),
        );
        return None;
    }
    Some(Threshold { value: t.value.value, direction, unit })
}

fn required<'a>(
    p: &mut Problems,
    a: &AlertSpec,
    field: &'a Option<At<String>>,
    key: &str,
) -> Option<&'a At<String>> {
    if field.is_none() {
        p.at(a.pos, &a.path, format!("missing field `{key}` (kind {} needs it)", a.kind.value));
    }
    field.as_ref()
}

fn guard_of(
    p: &mut Problems,
    a: &AlertSpec,
    default: Option<&Expr>,
    known: &Known,
) -> Option<Option<(Expr, f64)>> {
    let Some(g) = &a.volume_guard else { return Some(None) };
    let expr = match (&g.signal, default) {
        (Some(s), _) => signal(p, s, known)?,
        (None, Some(d)) => d.clone(),
        (None, None) => {
            p.at(
                g.min.pos,
                &format!("{}.volume_guard", a.path),
                "missing field `signal` (only ratio alerts default to their denominator)",
            );
            return None;
        }
    };
    if g.min.value < 0.0 {
        p.at(g.min.pos, &g.min.path, "the minimum volume must not be negative");
        return None;
    }
    Some(Some((expr, g.min.value)))
}

/// `cond and on(common) guard >= min`.
fn guarded(cond: String, signal: &Expr, guard: Option<&(Expr, f64)>, known: &Known) -> String {
    let Some((g, min)) = guard else { return cond };
    let matching = match (promql::labels_of(signal, known), promql::labels_of(g, known)) {
        (Some(a), Some(b)) if a != b => {
            let common: Vec<String> = a.intersection(&b).cloned().collect();
            format!(" on ({})", common.join(", "))
        }
        _ => String::new(),
    };
    format!("{cond} and{matching} {} >= {}", comparable(g), yaml::fmt_num(*min))
}

fn reparse(p: &mut Problems, a: &AlertSpec, text: &str, known: &Known) -> Option<Expr> {
    match promql::parse(text) {
        Ok(e) => {
            let issues = promql::check(&e, known);
            for i in &issues {
                p.at(a.pos, &a.path, format!("generated expression `{text}`: {}", i.message));
            }
            issues.is_empty().then_some(e)
        }
        Err(e) => {
            p.at(a.pos, &a.path, format!("generated expression `{text}` does not parse: {e}"));
            None
        }
    }
}

fn record_name(p: &mut Problems, a: &AlertSpec) -> Option<Option<String>> {
    let Some(r) = &a.record else { return Some(None) };
    let valid = r.value.contains(':')
        && r.value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        && !r.value.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        p.at(
            r.pos,
            &r.path,
            format!("recording rule name `{}` must look like level:metric:operations", r.value),
        );
        return None;
    }
    Some(Some(r.value.clone()))
}

#[allow(clippy::too_many_lines)]
fn build_kind(p: &mut Problems, a: &AlertSpec, known: &Known) -> Option<Built> {
    let kind = a.kind.value.as_str();
    spec::kind_keys(kind)?;
    let record = record_name(p, a)?;
    match kind {
        "threshold" | "ratio" => {
            // Every part is checked even when an earlier one failed, so all
            // problems of the alert are reported at once.
            let sig = if kind == "threshold" {
                required(p, a, &a.signal, "signal").and_then(|s| signal(p, s, known))
            } else {
                let n = required(p, a, &a.numerator, "numerator").and_then(|n| signal(p, n, known));
                let d = required(p, a, &a.denominator, "denominator").and_then(|d| signal(p, d, known));
                match (n, d) {
                    (Some(n), Some(d)) => reparse(p, a, &format!("{} / {}", operand(&n), operand(&d)), known),
                    _ => None,
                }
            };
            let inferred =
                if kind == "ratio" { None } else { sig.as_ref().and_then(|s| promql::unit_of(s, known)) };
            let fixed = if kind == "ratio" {
                Some(Unit::Ratio)
            } else if sig.is_none() && a.threshold.as_ref().is_some_and(|t| t.unit.is_none()) {
                // No signal to infer the unit from: check the rest without it.
                Some(Unit::None)
            } else {
                None
            };
            let threshold = threshold_of(p, a, inferred, fixed);
            let default_guard = match sig.as_ref().map(promql::strip) {
                Some(Expr::Binary(b)) if kind == "ratio" => Some((*b.rhs).clone()),
                _ => None,
            };
            let guard = if sig.is_none()
                && kind == "ratio"
                && a.volume_guard.as_ref().is_some_and(|g| g.signal.is_none())
            {
                None
            } else {
                guard_of(p, a, default_guard.as_ref(), known)
            };
            let (sig, threshold, guard) = (sig?, threshold?, guard?);
            let plotted = record.clone().unwrap_or_else(|| sig.to_string());
            let cond = format!(
                "{} {} {}",
                comparable_text(&plotted, &sig, record.is_some()),
                threshold.direction.op(),
                yaml::fmt_num(threshold.value)
            );
            let text = guarded(cond, &sig, guard.as_ref(), known);
            let check_text = guarded(
                format!(
                    "{} {} {}",
                    comparable(&sig),
                    threshold.direction.op(),
                    yaml::fmt_num(threshold.value)
                ),
                &sig,
                guard.as_ref(),
                known,
            );
            let expr = reparse(p, a, &check_text, known)?;
            let rendered = if record.is_some() { text } else { expr.to_string() };
            let (safe, past) = levels(threshold, guard_base(guard.as_ref()));
            Some(Built {
                expr,
                driven: sig.clone(),
                signal: plotted,
                threshold,
                guard,
                record: record.map(|r| (r, sig.to_string())),
                levels: (None, safe, past),
                rendered: None,
            })
            .map(|b| with_text(b, rendered))
        }
        "change" => {
            let s = required(p, a, &a.signal, "signal")?;
            let sig = signal(p, s, known)?;
            if promql::has_offset_or_at(&sig) {
                p.at(
                    s.pos,
                    &s.path,
                    "the signal must not use `offset` or `@`; the baseline offset is applied by rulegen",
                );
                return None;
            }
            let Some(b) = &a.baseline else {
                p.at(a.pos, &a.path, "missing field `baseline` (kind change needs `baseline: {offset: 1w, below|above: FACTOR}`)");
                return None;
            };
            let offset = duration(p, &b.offset)?;
            if offset.is_zero() {
                p.at(b.offset.pos, &b.offset.path, "the baseline offset must be longer than zero");
                return None;
            }
            let direction = if b.direction.value == "above" { Direction::Above } else { Direction::Below };
            let factor = b.factor.value;
            let sensible = match direction {
                Direction::Below => factor > 0.0 && factor < 1.0,
                Direction::Above => factor > 1.0,
            };
            if !sensible {
                let range = if direction == Direction::Below {
                    "between 0 and 1 (0.5 = dropped by half)"
                } else {
                    "above 1 (1.5 = up by half)"
                };
                p.at(
                    b.factor.pos,
                    &b.factor.path,
                    format!("factor {} must be {range}", yaml::fmt_num(factor)),
                );
                return None;
            }
            let base_expr = promql::with_offset(&sig, offset);
            let ratio_text = format!("{} / {}", operand(&sig), operand(&base_expr));
            let ratio = reparse(p, a, &ratio_text, known)?;
            let guard = guard_of(p, a, None, known)?;
            let threshold = Threshold { value: factor, direction, unit: Unit::None };
            let plotted = record.clone().unwrap_or_else(|| ratio.to_string());
            let cond = format!(
                "{} {} {}",
                comparable_text(&plotted, &ratio, record.is_some()),
                direction.op(),
                yaml::fmt_num(factor)
            );
            let text = guarded(cond, &ratio, guard.as_ref(), known);
            let check_text = guarded(
                format!("{} {} {}", comparable(&ratio), direction.op(), yaml::fmt_num(factor)),
                &ratio,
                guard.as_ref(),
                known,
            );
            let expr = reparse(p, a, &check_text, known)?;
            let rendered = if record.is_some() { text } else { expr.to_string() };
            let (rel_safe, rel_past) = levels(threshold, 1.0);
            let level = if promql::unit_of(&sig, known) == Some(Unit::Ratio) {
                0.5
            } else {
                guard_base(guard.as_ref())
            };
            Some(with_text(
                Built {
                    expr,
                    driven: sig,
                    signal: plotted,
                    threshold,
                    guard,
                    record: record.map(|r| (r, ratio.to_string())),
                    levels: (Some(level), level * rel_safe, level * rel_past),
                    rendered: None,
                },
                rendered,
            ))
        }
        "quantile" => {
            let h = required(p, a, &a.histogram, "histogram")?;
            let q = a.quantile.as_ref().or_else(|| {
                p.at(a.pos, &a.path, "missing field `quantile` (e.g. 0.95)");
                None
            })?;
            let window = required(p, a, &a.window, "window")?;
            let window_d = duration(p, window)?;
            if !(q.value > 0.0 && q.value < 1.0) {
                p.at(
                    q.pos,
                    &q.path,
                    format!("quantile {} must be between 0 and 1 (exclusive)", yaml::fmt_num(q.value)),
                );
                return None;
            }
            let Ok(Expr::VectorSelector(vs)) = promql::parse(&h.value) else {
                p.at(
                    h.pos,
                    &h.path,
                    "expected a histogram selector such as http_request_duration_seconds{route!=\"/health\"}",
                );
                return None;
            };
            let name = promql::selector_name(&vs)?;
            let metric = match known.resolve(&name) {
                Some((m, known::Part::Plain)) if m.kind == MetricType::Histogram => m.clone(),
                Some((m, _)) => {
                    p.at(
                        h.pos,
                        &h.path,
                        format!(
                            "`{name}` is a {}, not a histogram family (name the family without _bucket)",
                            m.kind
                        ),
                    );
                    return None;
                }
                None => {
                    let names: Vec<String> = known
                        .iter()
                        .filter(|m| m.kind == MetricType::Histogram)
                        .map(|m| m.name.clone())
                        .collect();
                    p.at(
                        yaml::pos_within(&h.node, &h.value, &name),
                        &h.path,
                        format!(
                            "unknown histogram `{name}`{}",
                            hint(&name, names.iter().map(String::as_str))
                        ),
                    );
                    return None;
                }
            };
            let by =
                a.by.as_ref()
                    .map_or_else(|| vec!["job".to_owned(), "instance".to_owned()], |b| b.value.clone());
            let mut bucket = vs;
            bucket.name = Some(format!("{name}_bucket"));
            let sig_text = format!(
                "histogram_quantile({}, sum by (le{}) (rate({}[{}])))",
                yaml::fmt_num(q.value),
                by.iter().map(|l| format!(", {l}")).collect::<String>(),
                bucket,
                promql::format_duration(window_d)
            );
            let at = At { value: sig_text, pos: h.pos, path: h.path.clone(), node: h.node.clone() };
            let sig = expression(p, &at, known)?;
            let threshold = threshold_of(p, a, Some(metric.unit), None)?;
            let guard = guard_of(p, a, None, known)?;
            let plotted = record.clone().unwrap_or_else(|| sig.to_string());
            let cond = format!(
                "{} {} {}",
                comparable_text(&plotted, &sig, record.is_some()),
                threshold.direction.op(),
                yaml::fmt_num(threshold.value)
            );
            let text = guarded(cond, &sig, guard.as_ref(), known);
            let check_text = guarded(
                format!("{} {} {}", sig, threshold.direction.op(), yaml::fmt_num(threshold.value)),
                &sig,
                guard.as_ref(),
                known,
            );
            let expr = reparse(p, a, &check_text, known)?;
            let rendered = if record.is_some() { text } else { expr.to_string() };
            let (safe, past) = levels(threshold, guard_base(guard.as_ref()));
            Some(with_text(
                Built {
                    expr,
                    driven: sig.clone(),
                    signal: plotted,
                    threshold,
                    guard,
                    record: record.map(|r| (r, sig.to_string())),
                    levels: (None, safe, past),
                    rendered: None,
                },
                rendered,
            ))
        }
        "up" => {
            let s = required(p, a, &a.signal, "signal")?;
            let sig = signal(p, s, known)?;
            let absent = a.absent.as_ref().is_some_and(|b| b.value);
            let text = if absent {
                format!("{} < 1 or absent({sig})", comparable(&sig))
            } else {
                format!("{} < 1", comparable(&sig))
            };
            let expr = reparse(p, a, &text, known)?;
            if absent && !matches!(promql::strip(&sig), Expr::VectorSelector(_)) {
                p.at(s.pos, &s.path, "`absent: true` needs a plain selector as the signal");
                return None;
            }
            let threshold = Threshold { value: 1.0, direction: Direction::Below, unit: Unit::None };
            Some(Built {
                expr,
                driven: sig.clone(),
                signal: sig.to_string(),
                threshold,
                guard: None,
                record: None,
                levels: (None, 1.0, 0.0),
                rendered: None,
            })
        }
        "predict" => {
            let s = required(p, a, &a.signal, "signal")?;
            let window = required(p, a, &a.window, "window");
            let horizon = required(p, a, &a.horizon, "horizon");
            let sig = signal(p, s, known)?;
            let (window, horizon) = (duration(p, window?)?, duration(p, horizon?)?);
            let Expr::VectorSelector(vs) = promql::strip(&sig) else {
                p.at(s.pos, &s.path, "predict needs a plain gauge selector such as node_filesystem_avail_bytes{fstype!=\"tmpfs\"}");
                return None;
            };
            let name = promql::selector_name(vs)?;
            if let Some((m, _)) = known.resolve(&name)
                && m.kind != MetricType::Gauge
            {
                p.at(s.pos, &s.path, format!("predict_linear() needs a gauge, but `{name}` is a {}", m.kind));
                return None;
            }
            let sig_text =
                format!("predict_linear({vs}[{}], {})", promql::format_duration(window), horizon.as_secs());
            let sig = reparse(p, a, &sig_text, known)?;
            let threshold = threshold_of(p, a, promql::unit_of(&sig, known), None)?;
            let text = format!("{sig} {} {}", threshold.direction.op(), yaml::fmt_num(threshold.value));
            let expr = reparse(p, a, &text, known)?;
            Some(Built::unguarded(expr, sig, threshold))
        }
        "staleness" => {
            let ts = required(p, a, &a.timestamp, "timestamp");
            let max_age = required(p, a, &a.max_age, "max_age");
            let ts = signal(p, ts?, known)?;
            let max_age = duration(p, max_age?)?;
            if let Some(unit) = promql::unit_of(&ts, known)
                && unit != Unit::Seconds
                && let Some(at) = &a.timestamp
            {
                p.at(
                    at.pos,
                    &at.path,
                    format!("a timestamp is in seconds, but this signal is in {}", known::unit_word(unit)),
                );
                return None;
            }
            let sig_text = format!("time() - {}", operand(&ts));
            let sig = reparse(p, a, &sig_text, known)?;
            let threshold =
                Threshold { value: max_age.as_secs_f64(), direction: Direction::Above, unit: Unit::Seconds };
            let text = format!("{sig} > {}", yaml::fmt_num(threshold.value));
            let expr = reparse(p, a, &text, known)?;
            Some(Built::unguarded(expr, sig, threshold))
        }
        "raw" => {
            let e = required(p, a, &a.expr, "expr")?;
            let expr = expression(p, e, known)?;
            let Expr::Binary(b) = promql::strip(&expr) else {
                p.at(e.pos, &e.path, "a raw expression must compare a value with a number at the top (`… > 0.05`), so rulegen can plot and test it");
                return None;
            };
            let op = b.op.to_string();
            let value = match promql::strip(&b.rhs) {
                Expr::NumberLiteral(n) if matches!(op.as_str(), ">" | ">=" | "<" | "<=") => n.val,
                _ => {
                    p.at(e.pos, &e.path, "a raw expression must compare a value with a number at the top (`… > 0.05`), so rulegen can plot and test it");
                    return None;
                }
            };
            let lhs = (*b.lhs).clone();
            let direction = if op.starts_with('>') { Direction::Above } else { Direction::Below };
            let declared = match &a.unit {
                Some(u) => Some(parse_unit(p, u)?),
                None => None,
            };
            let inferred = promql::unit_of(&lhs, known);
            let unit = match (declared, inferred) {
                (Some(d), Some(i)) if d != i => {
                    p.at(
                        e.pos,
                        &e.path,
                        format!(
                            "the compared value is in {} but `unit` says {}",
                            known::unit_word(i),
                            known::unit_word(d)
                        ),
                    );
                    return None;
                }
                (Some(u), _) | (None, Some(u)) => u,
                (None, None) => {
                    p.at(e.pos, &e.path, "give the compared value's unit (`unit: ratio|seconds|bytes|none`)");
                    return None;
                }
            };
            let threshold = Threshold { value, direction, unit };
            Some(Built::unguarded(expr.clone(), lhs, threshold))
        }
        _ => None,
    }
}

fn guard_base(guard: Option<&(Expr, f64)>) -> f64 {
    guard.map_or(100.0, |(_, min)| (min * 10.0).max(100.0))
}

/// Keeps the rule file's form of the expression: with a record, the
/// record's name stands for the signal (the scenario still evaluates the
/// inlined form, which Prometheus computes identically).
fn with_text(mut built: Built, rendered: String) -> Built {
    built.rendered = Some(rendered);
    built
}

fn comparable_text(plotted: &str, sig: &Expr, is_record: bool) -> String {
    if is_record { plotted.to_owned() } else { comparable(sig) }
}
