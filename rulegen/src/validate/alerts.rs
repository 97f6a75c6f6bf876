//! One alert: its name, severity, component, labels, templates and runbook
//! checked and its kind built (`kinds`) on their own, then its name and
//! recording rule checked against the alerts before it, and its promtool
//! scenario built. It becomes a model alert once layout has told
//! which panel shows it.

use super::kinds::{self, Built};
use super::limits;
use super::routing::identifier;
use crate::diagnostics::{Problems, hint};
use crate::known::{Known, Metric, Source};
use crate::layout::{PanelLink, Plotted};
use crate::model::{Alert, Kind, Record, Runbook, Scenario, Step};
use crate::promql;
use crate::promtest::{self, Plan};
use crate::spec::{self, AlertSpec, At, Spec};
use crate::template::Template;
use opsmon_catalog::MetricType;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// An alert that validated, before its promtool scenario is built.
pub struct Pending<'s> {
    spec: &'s AlertSpec,
    kind: Kind,
    for_: Duration,
    built: Built,
    labels: BTreeMap<String, String>,
    series_labels: Option<Vec<String>>,
    summary: Template,
    description: Template,
    runbook: Runbook,
}

impl<'s> Pending<'s> {
    /// Its promtool scenario, built and checked against `known`. It needs
    /// nothing but the alert itself, so the alerts' scenarios are built on
    /// every core.
    pub fn scenario(&self, known: &Known) -> Result<Scenario, promtest::SynthError> {
        let built = &self.built;
        let plan = Plan {
            alert: &built.expr,
            driven: &built.driven,
            baseline_level: built.levels.0,
            silent_level: built.levels.1,
            firing_level: built.levels.2,
            guard: built.guard.as_ref().map(|(e, m)| (e, *m)),
            for_secs: self.for_.as_secs_f64(),
            base: super::thresholds::guard_base(built.guard.as_ref()),
        };
        promtest::scenario(known, &plan)
    }

    /// The validated alert with its scenario, or `None` when no promtool
    /// test can be built for it (reported).
    pub fn finish(
        self,
        p: &mut Problems,
        scenario: Result<Scenario, promtest::SynthError>,
    ) -> Option<Checked<'s>> {
        match scenario {
            Ok(scenario) => Some(Checked { pending: self, scenario }),
            Err(e) => {
                let a = self.spec;
                p.at(
                    a.pos,
                    &a.path,
                    format!(
                        "cannot build a promtool test for `{}`: {e}; simplify the signal (gauges, rate() of counters, sums, ratios, time() - x, histogram_quantile, predict_linear)",
                        a.name.value
                    ),
                );
                None
            }
        }
    }
}

/// An alert that validated, with its scenario, before layout.
pub struct Checked<'s> {
    pending: Pending<'s>,
    scenario: Scenario,
}

impl<'s> Checked<'s> {
    /// Its spec.
    pub fn spec(&self) -> &'s AlertSpec {
        self.pending.spec
    }

    /// What layout reads of it.
    pub fn plotted(&self) -> Plotted {
        let alert = &self.pending;
        Plotted {
            name: alert.spec.name.value.clone(),
            kind: alert.kind,
            severity: alert.spec.severity.value.clone(),
            threshold: alert.built.threshold,
            signal: alert.built.signal.clone(),
            series_labels: alert.series_labels.clone(),
            placement: alert.spec.dashboard.as_ref().map(super::dashboards::placement),
        }
    }

    /// The model alert, linked to its runbook page and its first panel.
    pub fn into_alert(self, runbook_base: &str, panel: Option<&PanelLink>) -> Alert {
        let Checked { pending, scenario } = self;
        let a = pending.spec;
        Alert {
            runbook_url: format!("{runbook_base}/{}.md", a.name.value),
            dashboard_url: panel.map(|l| l.url.clone()).unwrap_or_default(),
            dashboard_place: panel.map(|l| (l.board.clone(), l.panel.clone())).unwrap_or_default(),
            name: a.name.value.clone(),
            kind: pending.kind,
            severity: a.severity.value.clone(),
            component: a.component.value.clone(),
            for_: pending.for_,
            expr: pending.built.rendered,
            signal: pending.built.signal,
            threshold: pending.built.threshold,
            guard: pending.built.guard.map(|(e, m)| (e.to_string(), m)),
            labels: pending.labels,
            series_labels: pending.series_labels,
            summary: pending.summary,
            summary_text: a.summary.value.clone(),
            description: pending.description,
            description_text: a.description.value.clone(),
            runbook: pending.runbook,
            scenario,
            inhibits: a.inhibits.iter().map(|i| i.value.clone()).collect(),
        }
    }
}

/// The alerts admitted so far, in file order: their names and the recording
/// rules they declared (which dashboards may then plot).
pub struct Alerts {
    names: BTreeSet<String>,
    /// Recording rules, in first-use order.
    pub records: Vec<Record>,
    record_exprs: BTreeMap<String, String>,
    /// The known metrics plus the recording rules.
    pub with_records: Known,
}

impl Alerts {
    /// Nothing checked yet.
    pub fn new(known: &Known) -> Self {
        Alerts {
            names: BTreeSet::new(),
            records: Vec::new(),
            record_exprs: BTreeMap::new(),
            with_records: known.clone(),
        }
    }

    /// Takes the alerts' examinations in file order: names must be unique
    /// and a recording rule keeps its first expression, which only the
    /// order of the file decides.
    pub fn admit(&mut self, p: &mut Problems, a: &AlertSpec, examined: Option<&Pending<'_>>) {
        let name = &a.name;
        if !self.names.insert(name.value.clone()) {
            p.at(name.pos, &name.path, format!("duplicate alert name `{}`", name.value));
        }
        if let Some(pending) = examined
            && let Some((record, expr)) = &pending.built.record
        {
            self.register(p, a, record, expr, &pending.built, pending.series_labels.as_deref());
        }
    }

    /// Records the alert's recording rule once; the same name with another
    /// expression is a problem.
    fn register(
        &mut self,
        p: &mut Problems,
        a: &AlertSpec,
        record: &str,
        expr: &str,
        built: &Built,
        series_labels: Option<&[String]>,
    ) {
        match self.record_exprs.get(record) {
            Some(existing) if existing != expr => {
                if let Some(r) = a.kind.as_ref().and_then(spec::AlertKind::record) {
                    p.at(
                        r.pos,
                        &r.path,
                        format!("recording rule `{record}` is already defined with another expression"),
                    );
                }
            }
            Some(_) => {}
            None => {
                self.record_exprs.insert(record.to_owned(), expr.to_owned());
                self.records.push(Record {
                    name: record.to_owned(),
                    expr: expr.to_owned(),
                    component: a.component.value.clone(),
                });
                self.with_records.insert(Metric {
                    name: record.to_owned(),
                    kind: MetricType::Gauge,
                    unit: built.threshold.unit,
                    labels: series_labels.map(<[String]>::to_vec).unwrap_or_default(),
                    help: format!("Recorded by rulegen for {}.", a.name.value),
                    source: Source::Record,
                });
            }
        }
    }
}

/// Checks what one alert says on its own — name, severity, component,
/// `for`, kind, labels, templates, runbook — without the other alerts, so
/// the alerts are examined on every core; `None` when it has problems (all
/// reported). [`Alerts::admit`] then checks what depends on the file order.
pub fn examine<'s>(p: &mut Problems, a: &'s AlertSpec, spec: &Spec, known: &Known) -> Option<Pending<'s>> {
    let name = &a.name;
    if !camel_case(&name.value) {
        p.at(
            name.pos,
            &name.path,
            format!("alert name `{}` must be CamelCase (e.g. HostCpuHigh)", name.value),
        );
    }
    let severity_names: Vec<&str> = spec.severities.iter().map(|s| s.name.value.as_str()).collect();
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
    let for_ = a.for_.as_ref().map_or(Some(Duration::ZERO), |f| limits::duration_within(p, f, &limits::FOR));
    let built = a.kind.as_ref().and_then(|kind| kinds::build(p, a, kind, known));
    let mut labels = static_labels(p, a);
    let summary = template(p, &a.summary);
    let description = template(p, &a.description);
    let runbook = runbook(p, a, spec);
    let (for_, (kind, built), summary, description) = (for_?, built?, summary?, description?);
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
    labels.insert("severity".into(), a.severity.value.clone());
    labels.insert("component".into(), a.component.value.clone());
    Some(Pending {
        spec: a,
        kind,
        for_,
        built,
        labels,
        series_labels: series_labels.map(|l| l.into_iter().collect()),
        summary,
        description,
        runbook,
    })
}

fn camel_case(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
        && name.chars().any(|c| c.is_ascii_lowercase())
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
