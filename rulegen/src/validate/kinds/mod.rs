//! One file per alert kind, each turning its spec fields into the alerting
//! expression, the plotted signal, the threshold and the promtool test
//! levels behind one signature ([`KindBuild`]), like one collector per
//! file. The kinds that compare a value with a threshold share their end
//! ([`Comparison::finish`]).

mod change;
mod predict;
mod quantile;
mod ratio;
mod raw;
mod staleness;
mod threshold;
mod up;

use super::expressions::reparse;
use super::thresholds::{comparable, guard_base, guarded};
use crate::diagnostics::Problems;
use crate::format::fmt_num;
use crate::known::Known;
use crate::model::{Kind, Threshold};
use crate::promtest::levels;
use crate::spec::{AlertKind, AlertSpec};
use promql_parser::parser::Expr;

/// What a kind builds.
pub struct Built {
    /// The alerting expression the scenario evaluates (inlined form).
    pub expr: Expr,
    /// The expression the scenario drives to its levels.
    pub driven: Expr,
    /// What dashboards plot (a record name or an expression).
    pub signal: String,
    /// Threshold on `signal`.
    pub threshold: Threshold,
    /// Volume guard and its minimum.
    pub guard: Option<(Expr, f64)>,
    /// Recording rule name and expression.
    pub record: Option<(String, String)>,
    /// Test levels: baseline (relative kinds), safe side, past the threshold.
    pub levels: (Option<f64>, f64, f64),
    /// The rule file's form of the expression: with a record, the record's
    /// name stands for the signal (the scenario still evaluates the inlined
    /// form, which Prometheus computes identically).
    pub rendered: String,
}

impl Built {
    /// An alert on `signal` alone: no volume guard, no recording rule, test
    /// levels on either side of the threshold.
    fn unguarded(expr: Expr, signal: Expr, threshold: Threshold) -> Built {
        let (safe, past) = levels(threshold, 100.0);
        Built {
            rendered: expr.to_string(),
            expr,
            signal: signal.to_string(),
            driven: signal,
            threshold,
            guard: None,
            record: None,
            levels: (None, safe, past),
        }
    }
}

/// One kind's build: problems go to `p`, pointing into the alert `a`.
trait KindBuild {
    /// The model's word for it.
    const KIND: Kind;
    fn build(&self, p: &mut Problems, a: &AlertSpec, known: &Known) -> Option<Built>;
}

/// Builds the alert's kind.
pub fn build(p: &mut Problems, a: &AlertSpec, kind: &AlertKind, known: &Known) -> Option<(Kind, Built)> {
    fn run<K: KindBuild>(p: &mut Problems, a: &AlertSpec, k: &K, known: &Known) -> Option<(Kind, Built)> {
        k.build(p, a, known).map(|built| (K::KIND, built))
    }
    match kind {
        AlertKind::Threshold(k) => run(p, a, k, known),
        AlertKind::Ratio(k) => run(p, a, k, known),
        AlertKind::Change(k) => run(p, a, k, known),
        AlertKind::Quantile(k) => run(p, a, k.as_ref(), known),
        AlertKind::Up(k) => run(p, a, k, known),
        AlertKind::Predict(k) => run(p, a, k, known),
        AlertKind::Staleness(k) => run(p, a, k, known),
        AlertKind::Raw(k) => run(p, a, k, known),
    }
}

/// A value compared with a threshold, optionally guarded and recorded.
struct Comparison {
    /// The compared value (inlined).
    value: Expr,
    /// What the scenario drives.
    driven: Expr,
    threshold: Threshold,
    guard: Option<(Expr, f64)>,
    record: Option<String>,
    /// Level of the baseline phase (relative kinds).
    baseline: Option<f64>,
    /// Compare with `>=`/`<=`: the threshold itself fires.
    inclusive: bool,
}

impl Comparison {
    /// An absolute comparison: the value itself is driven, no baseline,
    /// strict `>`/`<`.
    fn direct(value: Expr, threshold: Threshold, guard: Option<(Expr, f64)>, record: Option<String>) -> Self {
        Comparison {
            driven: value.clone(),
            value,
            threshold,
            guard,
            record,
            baseline: None,
            inclusive: false,
        }
    }

    /// The shared end of the comparing kinds: the alerting expression
    /// (through the recording rule when there is one, guarded), what
    /// dashboards plot, and the test levels.
    fn finish(self, p: &mut Problems, a: &AlertSpec, known: &Known) -> Option<Built> {
        let Comparison { value, driven, threshold, guard, record, baseline, inclusive } = self;
        let threshold = Threshold { inclusive, ..threshold };
        let plotted = record.clone().unwrap_or_else(|| value.to_string());
        let op = match (threshold.direction.op(), inclusive) {
            (op, false) => op.to_owned(),
            (op, true) => format!("{op}="),
        };
        let limit = fmt_num(threshold.value);
        let shown = if record.is_some() { plotted.clone() } else { comparable(&value) };
        let text = guarded(format!("{shown} {op} {limit}"), &value, guard.as_ref(), known);
        let check_text =
            guarded(format!("{} {op} {limit}", comparable(&value)), &value, guard.as_ref(), known);
        let expr = reparse(p, a, &check_text, known)?;
        let rendered = if record.is_some() { text } else { expr.to_string() };
        let levels = match baseline {
            Some(level) => {
                let (safe, past) = levels(threshold, 1.0);
                (Some(level), level * safe, level * past)
            }
            None => {
                let (safe, past) = levels(threshold, guard_base(guard.as_ref()));
                (None, safe, past)
            }
        };
        Some(Built {
            expr,
            driven,
            signal: plotted,
            threshold,
            guard,
            record: record.map(|r| (r, value.to_string())),
            levels,
            rendered,
        })
    }
}
