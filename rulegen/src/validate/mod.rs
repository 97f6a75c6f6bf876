//! Spec → model. Every metric and label resolved against the known metrics,
//! every expression parsed and type-checked, units and directions checked,
//! names unique, durations valid, templates parsed, a promtool scenario
//! built for every alert, dashboards laid out — and every problem reported
//! at once with its position, field path and likely fix.
//!
//! - `routing`: severity tiers, Alertmanager and Kubernetes defaults, links
//! - `alerts`: what every alert has (names, labels, templates, runbook,
//!   recording rule, scenario); `kinds`: one file per kind
//! - `thresholds`: units and ranges, volume guards, record names;
//!   `expressions`: PromQL fields and durations
//! - `dashboards`: declared dashboards and placements, into layout plans
//! - `limits`: bounds on durations and expression size
//! - `checklists`: the daily checklists `rulegen report` answers
//! - `receivers`: the user's receivers file merged into the routing

mod alerts;
mod checklists;
mod dashboards;
mod expressions;
mod kinds;
mod limits;
pub mod receivers;
mod routing;
mod thresholds;

use crate::diagnostics::{Diagnostic, Problems, render};
use crate::known::Known;
use crate::model::Model;
use crate::spec::{self, Spec};
use crate::yaml;
use alerts::{Alerts, Checked};
use std::collections::BTreeSet;

/// Validation failed; every problem found.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render_all(.file, .problems, .also))]
pub struct Invalid {
    /// The threshold file as given.
    pub file: String,
    /// The problems, in file order.
    pub problems: Vec<Diagnostic>,
    /// Problems in files the threshold file names (the receivers file).
    pub also: Vec<(String, Vec<Diagnostic>)>,
}

fn render_all(file: &str, problems: &[Diagnostic], also: &[(String, Vec<Diagnostic>)]) -> String {
    let mut parts = Vec::new();
    if !problems.is_empty() {
        parts.push(render(file, problems));
    }
    parts.extend(also.iter().map(|(f, list)| render(f, list)));
    parts.join("\n")
}

/// Parses and validates threshold-file text against `known`, reading no
/// other file (a threshold file naming a receivers file is refused; see
/// [`validate_with`]).
pub fn validate(file: &str, text: &str, known: &Known) -> Result<Model, Invalid> {
    validate_with(file, text, known, &receivers::Files::default())
}

/// Parses and validates threshold-file text against `known`, reading the
/// files it names (the receivers file) through `files`.
pub fn validate_with(
    file: &str,
    text: &str,
    known: &Known,
    files: &receivers::Files,
) -> Result<Model, Invalid> {
    let root = yaml::parse(text).map_err(|d| Invalid {
        file: file.to_owned(),
        problems: vec![d],
        also: Vec::new(),
    })?;
    let mut p = Problems::default();
    let spec = spec::decode(&mut p, &root);
    let mut model = build(&mut p, file, &spec, known);
    let (merged, also) = receivers::load(&mut p, &spec, file, files, &model.alertmanager.default_receiver);
    model.alertmanager.receivers = merged;
    let mut problems = p.list;
    problems.sort();
    problems.dedup();
    let also: Vec<_> = also.into_iter().collect();
    if problems.is_empty() && also.is_empty() {
        Ok(model)
    } else {
        Err(Invalid { file: file.to_owned(), problems, also })
    }
}

fn build(p: &mut Problems, file: &str, spec: &Spec, known: &Known) -> Model {
    let severities = routing::severities(p, spec);
    let mut procedure_ids = BTreeSet::new();
    for proc_ in &spec.procedures {
        if !procedure_ids.insert(proc_.id.value.clone()) {
            p.at(proc_.id.pos, &proc_.id.path, format!("duplicate procedure `{}`", proc_.id.value));
        }
    }
    // Each alert's own checks and its promtool scenario are most of
    // validation's work and independent of the other alerts: every core
    // takes a share; what depends on the file order is checked after, in order.
    let examined = crate::parallel::map(&spec.alerts, |a| {
        let mut own = Problems::default();
        let pending = alerts::examine(&mut own, a, spec, known);
        let scenario = pending.as_ref().map(|alert| alert.scenario(known));
        (own.list, pending, scenario)
    });
    let mut checker = Alerts::new(known);
    let mut checked: Vec<Checked<'_>> = Vec::with_capacity(examined.len());
    for (a, (own, pending, scenario)) in spec.alerts.iter().zip(examined) {
        p.list.extend(own);
        checker.admit(p, a, pending.as_ref());
        if let (Some(pending), Some(scenario)) = (pending, scenario) {
            checked.extend(pending.finish(p, scenario));
        }
    }
    routing::alert_inhibitions(p, spec);

    let runbook_base = routing::runbook_base(spec);
    let grafana_base = routing::grafana_base(spec);
    let plotted: Vec<_> = checked.iter().map(Checked::plotted).collect();
    let placed: Vec<_> = checked.iter().filter_map(|c| c.spec().dashboard.as_ref()).collect();
    let plans = dashboards::plans(p, spec, &placed, &plotted, &checker.with_records);
    let layout = crate::layout::boards(p, &plans, &plotted, &severities, &grafana_base);
    let alerts: Vec<_> = checked
        .into_iter()
        .map(|c| {
            let link = layout.links.get(&c.spec().name.value);
            c.into_alert(&runbook_base, link)
        })
        .collect();
    let checklists = checklists::checklists(p, spec, &alerts, &checker.with_records);
    Model {
        source: file.to_owned(),
        alertmanager: routing::alertmanager(p, spec),
        kubernetes: routing::kubernetes(spec),
        runbook_base,
        grafana_base,
        severities,
        records: checker.records,
        alerts,
        boards: layout.boards,
        checklists,
    }
}
