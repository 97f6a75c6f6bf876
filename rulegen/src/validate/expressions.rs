//! PromQL fields checked against the known metrics, with problems pointed
//! inside the scalar; durations; the expressions rulegen writes itself.

use super::limits;
pub use super::limits::duration;
use crate::diagnostics::Problems;
use crate::known::{Known, Source};
use crate::promql::{self, Issue};
use crate::spec::{AlertSpec, At};
use crate::yaml;
use promql_parser::parser::Expr;

/// Parses and checks an expression, pointing problems inside the scalar;
/// its size, range windows and offsets are bounded ([`limits`]). The
/// expression comes back whenever it parses, with whether it named only
/// known series, so that callers add their own checks to the same report.
pub fn checked(p: &mut Problems, at: &At<String>, known: &Known) -> Option<(Expr, bool)> {
    if !limits::expression_size(p, at) {
        return None;
    }
    let expr = match promql::parse(&at.value) {
        Ok(e) => e,
        Err(e) => {
            p.at(at.pos, &at.path, format!("invalid PromQL: {e}"));
            return None;
        }
    };
    if !limits::expression_spans(p, at, &expr) {
        return None;
    }
    let issues = promql::check(&expr, known);
    let ok = issues.is_empty();
    for Issue { needle, message } in issues {
        p.at(yaml::pos_within(&at.node, &at.value, &needle), &at.path, message);
    }
    Some((expr, ok))
}

/// An alert's expression: [`checked`], over exporter metrics only.
pub fn expression(p: &mut Problems, at: &At<String>, known: &Known) -> Option<Expr> {
    let (expr, ok) = checked(p, at, known)?;
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

/// The operator that makes `expr` a condition (a comparison or a set
/// operation at its top) rather than a value.
pub fn condition_operator(expr: &Expr) -> Option<String> {
    match promql::strip(expr) {
        Expr::Binary(b) if b.op.is_comparison_operator() || b.op.is_set_operator() => Some(b.op.to_string()),
        _ => None,
    }
}

/// A value expression (not a condition).
pub fn signal(p: &mut Problems, at: &At<String>, known: &Known) -> Option<Expr> {
    let expr = expression(p, at, known)?;
    if let Some(op) = condition_operator(&expr) {
        p.at(
            at.pos,
            &at.path,
            format!(
                "a signal is a value, but this is a condition (`{op}`); give the value and put the limit in `threshold` (or use kind raw)"
            ),
        );
        return None;
    }
    Some(expr)
}

/// Parses and checks an expression rulegen wrote from the alert's fields.
pub fn reparse(p: &mut Problems, a: &AlertSpec, text: &str, known: &Known) -> Option<Expr> {
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
