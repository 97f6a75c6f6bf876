//! The `checklists:` section → [`Checklists`]: every item names real
//! checklists and alerts (did-you-mean otherwise), its expression parses and
//! reads known metrics or the file's own recording rules, its unit and
//! limits make sense — and what the report shows when the item gives only
//! alerts is resolved here (the only alert's signal and threshold, or how
//! many of its alerts fire).

use super::thresholds::{direction, parse_unit};
use super::{expressions, limits};
use crate::diagnostics::{Problems, hint};
use crate::known::Known;
use crate::model::{Alert, Checklist, ChecklistItem, Checklists, Direction, Threshold};
use crate::promql;
use crate::spec::{At, ChecklistItemSpec, Spec};
use opsmon_catalog::Unit;
use std::time::Duration;

/// Longest overnight window: a weekend (Friday evening to Monday morning).
const OVERNIGHT_MAX: Duration = Duration::from_secs(3 * 86_400);

/// Validates the section (absent: no checklists) against the validated
/// alerts and the known metrics plus recording rules.
pub fn checklists(p: &mut Problems, spec: &Spec, alerts: &[Alert], known: &Known) -> Checklists {
    let mut out = Checklists::default();
    let Some(section) = &spec.checklists else { return out };
    if let Some(at) = &section.overnight
        && let Some(d) = limits::duration(p, at)
    {
        if d.is_zero() || d > OVERNIGHT_MAX {
            p.at(
                at.pos,
                &at.path,
                "overnight window must be between 1m and 3d (e.g. 15h for 18:00 to 09:00)",
            );
        } else {
            out.overnight = d;
        }
    }
    let names: Vec<&str> = spec.alerts.iter().map(|a| a.name.value.as_str()).collect();
    for item in &section.items {
        if let Some(checked) = check_item(p, item, &names, alerts, known) {
            out.items.push(checked);
        }
    }
    for list in Checklist::ALL {
        if !out.items.is_empty() && !out.items.iter().any(|i| i.checklists.contains(&list)) {
            p.at(section.pos, "checklists.items", format!("no item is on the {} checklist", list.as_str()));
        }
    }
    out
}

fn check_item(
    p: &mut Problems,
    item: &ChecklistItemSpec,
    names: &[&str],
    alerts: &[Alert],
    known: &Known,
) -> Option<ChecklistItem> {
    let before = p.list.len();
    if item.title.value.trim().is_empty() {
        p.at(item.title.pos, &item.title.path, "title must not be empty (use the guide's words)");
    }
    let mut lists = Vec::new();
    for word in &item.checklists {
        match Checklist::parse(&word.value) {
            Some(c) if !lists.contains(&c) => lists.push(c),
            Some(_) => p.at(word.pos, &word.path, format!("checklist `{}` listed twice", word.value)),
            None => p.at(
                word.pos,
                &word.path,
                format!(
                    "unknown checklist `{}`, expected one of {}{}",
                    word.value,
                    Checklist::WORDS.join(", "),
                    hint(&word.value, Checklist::WORDS)
                ),
            ),
        }
    }
    let mut read = Vec::new();
    for name in &item.alerts {
        if !names.contains(&name.value.as_str()) {
            p.at(
                name.pos,
                &name.path,
                format!("unknown alert `{}`{}", name.value, hint(&name.value, names.iter().copied())),
            );
        } else if let Some(alert) = alerts.iter().find(|a| a.name == name.value) {
            read.push(alert);
        }
    }
    let expr = item.expr.as_ref().and_then(|at| value_expression(p, at, known));
    let mut unit = item.unit.as_ref().and_then(|u| parse_unit(p, u));
    let limit = |(word, value): &(At<String>, At<f64>), unit: Unit| Threshold {
        value: value.value,
        direction: direction(word),
        unit,
        // An item's own `{above: N}` is strict, like the alerts' `>`.
        inclusive: false,
        baseline: None,
    };
    let (value, alert_threshold) = match (&item.expr, read.as_slice()) {
        (Some(_), _) => {
            let inferred = expr.as_ref().and_then(|e| promql::unit_of(e, known));
            unit = unit.or(inferred);
            (expr.map(|e| e.to_string()), None)
        }
        (None, [only]) => {
            unit = unit.or(Some(only.threshold.unit));
            (Some(only.signal.clone()), (!only.kind.is_relative()).then_some(only.threshold))
        }
        (None, _) => {
            if item.warning.is_some()
                || item.critical.is_some()
                || item.compare.as_ref().is_some_and(|c| c.value)
            {
                p.at(
                    item.pos,
                    &item.path,
                    "an item with several alerts and no `expr` shows how many fire; give an `expr` to set limits or `compare`",
                );
            }
            (None, None)
        }
    };
    let unit = unit.unwrap_or(Unit::None);
    let warning = item.warning.as_ref().map(|l| limit(l, unit));
    let critical = item.critical.as_ref().map(|l| limit(l, unit));
    if let (Some(w), Some(c)) = (&warning, &critical)
        && (w.direction != c.direction
            || match c.direction {
                Direction::Above => c.value < w.value,
                Direction::Below => c.value > w.value,
            })
    {
        let (_, at) = item.critical.as_ref()?;
        p.at(
            at.pos,
            &at.path,
            "the critical limit must point the same way as the warning limit and lie beyond it",
        );
    }
    if p.list.len() > before {
        return None;
    }
    Some(ChecklistItem {
        title: item.title.value.trim().to_owned(),
        checklists: lists,
        alerts: read.iter().map(|a| (a.name.clone(), a.severity.clone())).collect(),
        value,
        unit,
        alert_threshold,
        warning,
        critical,
        compare: item.compare.as_ref().is_some_and(|c| c.value),
    })
}

/// A value expression: [`expressions::checked`] (recording rules allowed),
/// and a value rather than a condition.
fn value_expression(p: &mut Problems, at: &At<String>, known: &Known) -> Option<promql_parser::parser::Expr> {
    let (expr, ok) = expressions::checked(p, at, known)?;
    if let Some(op) = expressions::condition_operator(&expr) {
        p.at(
            at.pos,
            &at.path,
            format!("an item shows a value, but this is a condition (`{op}`); put the limit in `warning`/`critical`"),
        );
        return None;
    }
    ok.then_some(expr)
}
