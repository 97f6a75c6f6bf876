//! Thresholds and guards: units and ranges of a threshold, the volume guard
//! that keeps an alert quiet on too little traffic, recording-rule names,
//! and the operator precedence of the expressions built around them.

use super::expressions::signal;
use crate::diagnostics::{Problems, hint};
use crate::format::fmt_num;
use crate::known::{self, Known};
use crate::model::{Direction, Threshold};
use crate::promql;
use crate::spec::{AlertSpec, At, GuardSpec, ThresholdSpec};
use opsmon_catalog::Unit;
use promql_parser::parser::Expr;

/// Wraps in parentheses when `expr` would bind looser than `*`/`/`.
pub fn operand(expr: &Expr) -> String {
    match promql::strip(expr) {
        Expr::Binary(_) => format!("({})", promql::strip(expr)),
        other => other.to_string(),
    }
}

/// Wraps in parentheses when `expr` would bind looser than a comparison.
pub fn comparable(expr: &Expr) -> String {
    match promql::strip(expr) {
        Expr::Binary(b) if b.op.is_comparison_operator() || b.op.is_set_operator() => format!("({expr})"),
        other => other.to_string(),
    }
}

/// A unit word.
pub fn parse_unit(p: &mut Problems, at: &At<String>) -> Option<Unit> {
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

/// The direction word of `above: N` / `below: N`.
pub fn direction(word: &At<String>) -> Direction {
    if word.value == "above" { Direction::Above } else { Direction::Below }
}

/// Checks a threshold against the signal's unit: `inferred` from the
/// signal, else `fixed` by the kind; a negative value is refused for
/// seconds and bytes unless `negative_ok` (a prediction may cross zero).
pub fn threshold_of(
    p: &mut Problems,
    a: &AlertSpec,
    t: &ThresholdSpec,
    inferred: Option<Unit>,
    fixed: Option<Unit>,
    negative_ok: bool,
) -> Option<Threshold> {
    let direction = direction(&t.direction);
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
            format!("; did you mean {} ({}%)?", fmt_num(t.value.value / 100.0), fmt_num(t.value.value))
        } else {
            String::new()
        };
        p.at(
            t.value.pos,
            &t.value.path,
            format!("threshold {} is out of range for unit ratio (0..1){fix}", fmt_num(t.value.value)),
        );
        return None;
    }
    if matches!(unit, Unit::Seconds | Unit::Bytes) && t.value.value < 0.0 && !negative_ok {
        p.at(
            t.value.pos,
            &t.value.path,
            format!("a negative threshold makes no sense for {}", known::unit_word(unit)),
        );
        return None;
    }
    Some(Threshold { value: t.value.value, direction, unit, inclusive: false, baseline: None })
}

/// The volume guard: its signal (or `default`, a ratio's denominator) and
/// minimum. `Some(None)` when there is none.
pub fn guard_of(
    p: &mut Problems,
    a: &AlertSpec,
    guard: Option<&GuardSpec>,
    default: Option<&Expr>,
    known: &Known,
) -> Option<Option<(Expr, f64)>> {
    let Some(g) = guard else { return Some(None) };
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

/// A positive level well above the guard's minimum, for the test scenario.
pub fn guard_base(guard: Option<&(Expr, f64)>) -> f64 {
    guard.map_or(100.0, |(_, min)| (min * 10.0).max(100.0))
}

/// `cond and on(common) guard >= min`.
pub fn guarded(cond: String, signal: &Expr, guard: Option<&(Expr, f64)>, known: &Known) -> String {
    let Some((g, min)) = guard else { return cond };
    let matching = match (promql::labels_of(signal, known), promql::labels_of(g, known)) {
        (Some(a), Some(b)) if a != b => {
            let common: Vec<String> = a.intersection(&b).cloned().collect();
            format!(" on ({})", common.join(", "))
        }
        _ => String::new(),
    };
    format!("{cond} and{matching} {} >= {}", comparable(g), fmt_num(*min))
}

/// A recording rule name (`level:metric:operations`); `Some(None)` when
/// there is none.
pub fn record_name(p: &mut Problems, record: Option<&At<String>>) -> Option<Option<String>> {
    let Some(r) = record else { return Some(None) };
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
