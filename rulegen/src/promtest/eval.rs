//! A small PromQL evaluator over synthetic, piecewise-linear series: enough
//! of Prometheus' semantics (selectors, rate-like functions, aggregations,
//! vector matching, histogram_quantile, absent, last_over_time) to predict what promtool
//! will compute for a generated unit test, so that the expected labels and
//! annotation values in the test are known before promtool runs.
//!
//! Each series is linear inside each phase of the test timeline; range
//! functions are only evaluated with their window inside one phase, where
//! the result does not depend on whether a sample sits on the window edge.

use crate::promql::{matches, selector_name};
use promql_parser::label::MatchOp;
use promql_parser::parser::ast::{LabelModifier, Offset, VectorMatchCardinality};
use promql_parser::parser::{Expr, VectorSelector};
use std::collections::BTreeMap;

/// Label set of a series, with `__name__`.
pub type Labels = BTreeMap<String, String>;

/// Sample spacing of generated input series and rule evaluation, seconds.
pub const STEP: f64 = 60.0;

/// How a series accumulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Value is `c + s·t` inside a phase.
    Gauge,
    /// Cumulative: grows by `s` per second inside a phase, continuous across phases.
    Counter,
}

/// A series' behaviour in one phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seg {
    /// Level at t = 0 (gauges).
    pub c: f64,
    /// Slope per second.
    pub s: f64,
}

/// One synthetic series.
#[derive(Debug, Clone)]
pub struct Series {
    /// Labels with `__name__`.
    pub labels: Labels,
    /// Gauge or counter.
    pub shape: Shape,
    /// Behaviour per phase; `None` means no samples in that phase.
    pub segs: Vec<Option<Seg>>,
}

/// The test timeline and its series.
#[derive(Debug, Clone)]
pub struct World {
    /// Start of each phase in seconds (the first is 0).
    pub starts: Vec<f64>,
    /// The series.
    pub series: Vec<Series>,
    /// While set, every phase but this one reads as having no samples (what
    /// one phase sets alone), without copying the series.
    only_phase: std::cell::Cell<Option<usize>>,
}

/// A sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Labels (with `__name__` while the name survives).
    pub labels: Labels,
    /// Value.
    pub value: f64,
}

/// An expression's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// A scalar.
    Scalar(f64),
    /// An instant vector.
    Vector(Vec<Sample>),
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// Outside the supported subset.
    #[error("{0} is not supported by rulegen's test synthesizer")]
    Unsupported(String),
    /// A range window crosses a phase boundary (a synthesizer bug).
    #[error("range window of `{0}` crosses a phase boundary")]
    Boundary(String),
}

type R<T> = Result<T, EvalError>;

impl World {
    /// A world with `phases` phases starting at `starts`.
    pub fn new(starts: Vec<f64>) -> World {
        World { starts, series: Vec::new(), only_phase: std::cell::Cell::new(None) }
    }

    /// The phase containing `t`.
    pub fn phase_at(&self, t: f64) -> usize {
        self.starts.iter().rposition(|s| *s <= t).unwrap_or(0)
    }

    /// Evaluates `expr` at `t` as if only `phase` had samples.
    pub fn eval_in_phase(&self, expr: &Expr, t: f64, phase: usize) -> R<Val> {
        let outer = self.only_phase.replace(Some(phase));
        let result = self.eval(expr, t);
        self.only_phase.set(outer);
        result
    }

    /// Series `series`' behaviour in `phase`, `None` outside the phase being
    /// evaluated alone.
    fn seg(&self, series: &Series, phase: usize) -> Option<Seg> {
        match self.only_phase.get() {
            Some(only) if only != phase => None,
            _ => series.segs.get(phase).copied().flatten(),
        }
    }

    /// Value of series `i` at a sample time `t`.
    pub fn value_at(&self, i: usize, t: f64) -> Option<f64> {
        let series = &self.series[i];
        let phase = self.phase_at(t);
        let seg = self.seg(series, phase)?;
        Some(match series.shape {
            Shape::Gauge => seg.c + seg.s * t,
            Shape::Counter => {
                let mut total = 0.0;
                for p in 0..phase {
                    if let Some(prev) = self.seg(series, p) {
                        let end = self.starts.get(p + 1).copied().unwrap_or(t);
                        total += prev.s * (end - self.starts[p]);
                    }
                }
                total + seg.s * (t - self.starts[phase])
            }
        })
    }

    /// Evaluates `expr` at `t` (a multiple of [`STEP`]).
    pub fn eval(&self, expr: &Expr, t: f64) -> R<Val> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(n.val)),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => Ok(match self.eval(&u.expr, t)? {
                Val::Scalar(v) => Val::Scalar(-v),
                Val::Vector(samples) => Val::Vector(
                    samples
                        .into_iter()
                        .map(|s| Sample { labels: drop_name(s.labels), value: -s.value })
                        .collect(),
                ),
            }),
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.instant(vs, t))),
            Expr::MatrixSelector(_) => Err(EvalError::Unsupported("a bare range selector".into())),
            Expr::Call(call) => self.call(call.func.name, &call.args.args, t),
            Expr::Aggregate(agg) => {
                let op = agg.op.to_string();
                let Val::Vector(samples) = self.eval(&agg.expr, t)? else {
                    return Err(EvalError::Unsupported(format!("{op} over a scalar")));
                };
                aggregate(&op, agg.modifier.as_ref(), samples)
            }
            Expr::Binary(b) => {
                let lhs = self.eval(&b.lhs, t)?;
                let rhs = self.eval(&b.rhs, t)?;
                binary(b, lhs, rhs)
            }
            Expr::Subquery(_) => Err(EvalError::Unsupported("a subquery".into())),
            Expr::StringLiteral(_) | Expr::Extension(_) => Err(EvalError::Unsupported("a string".into())),
        }
    }

    fn shifted(vs: &VectorSelector, t: f64) -> f64 {
        match &vs.offset {
            Some(Offset::Pos(d)) => t - d.as_secs_f64(),
            Some(Offset::Neg(d)) => t + d.as_secs_f64(),
            None => t,
        }
    }

    /// Series matching `vs` with their latest sample within the 5m lookback.
    fn instant(&self, vs: &VectorSelector, t: f64) -> Vec<Sample> {
        let t = Self::shifted(vs, t);
        let mut out = Vec::new();
        for (i, series) in self.series.iter().enumerate() {
            if !matches(vs, &series.labels) || t < 0.0 {
                continue;
            }
            // Latest sample at or before t, at most 5 minutes old.
            let mut sample_t = (t / STEP).floor() * STEP;
            while sample_t >= 0.0 && t - sample_t <= 300.0 {
                if let Some(value) = self.value_at(i, sample_t) {
                    out.push(Sample { labels: series.labels.clone(), value });
                    break;
                }
                sample_t -= STEP;
            }
        }
        out
    }

    /// Per matching series: slope and value at the end of a window that lies
    /// inside one phase.
    fn range(&self, vs: &VectorSelector, range: f64, t: f64) -> R<Vec<(Labels, Seg, f64)>> {
        let t = Self::shifted(vs, t);
        let start = t - range;
        let phase = self.phase_at(t);
        let mut out = Vec::new();
        for (i, series) in self.series.iter().enumerate() {
            if !matches(vs, &series.labels) || start < 0.0 {
                continue;
            }
            if start < self.starts[phase] {
                return Err(EvalError::Boundary(selector_name(vs).unwrap_or_default()));
            }
            let Some(seg) = self.seg(series, phase) else { continue };
            let value = self.value_at(i, t).unwrap_or(0.0);
            out.push((series.labels.clone(), seg, value));
        }
        Ok(out)
    }

    fn call(&self, name: &str, args: &[Box<Expr>], t: f64) -> R<Val> {
        let range_arg = |i: usize| -> R<(VectorSelector, f64)> {
            match args.get(i).map(|a| crate::promql::strip(a)) {
                Some(Expr::MatrixSelector(ms)) => Ok((ms.vs.clone(), ms.range.as_secs_f64())),
                _ => Err(EvalError::Unsupported(format!("{name}() over anything but a range selector"))),
            }
        };
        let scalar_arg = |i: usize| -> R<f64> {
            match args.get(i).map(|a| self.eval(a, t)).transpose()? {
                Some(Val::Scalar(v)) => Ok(v),
                _ => Err(EvalError::Unsupported(format!("{name}() with a non-scalar parameter"))),
            }
        };
        let vector_arg = |i: usize| -> R<Vec<Sample>> {
            match args.get(i).map(|a| self.eval(a, t)).transpose()? {
                Some(Val::Vector(v)) => Ok(v),
                _ => Err(EvalError::Unsupported(format!("{name}() over a scalar"))),
            }
        };
        let per_series = |f: &dyn Fn(Seg, f64, f64) -> f64| -> R<Val> {
            let (vs, range) = range_arg(0)?;
            Ok(Val::Vector(
                self.range(&vs, range, t)?
                    .into_iter()
                    .map(|(labels, seg, value)| Sample {
                        labels: drop_name(labels),
                        value: f(seg, value, range),
                    })
                    .collect(),
            ))
        };
        match name {
            "time" => Ok(Val::Scalar(t)),
            "rate" | "irate" | "deriv" => per_series(&|seg, _, _| seg.s),
            "increase" | "delta" => per_series(&|seg, _, range| seg.s * range),
            "last_over_time" => per_series(&|_, value, _| value),
            "predict_linear" => {
                let horizon = scalar_arg(1)?;
                per_series(&|seg, value, _| value + seg.s * horizon)
            }
            "abs" => Ok(map_vector(vector_arg(0)?, f64::abs)),
            "clamp_min" => {
                let min = scalar_arg(1)?;
                Ok(map_vector(vector_arg(0)?, |v| v.max(min)))
            }
            "clamp_max" => {
                let max = scalar_arg(1)?;
                Ok(map_vector(vector_arg(0)?, |v| v.min(max)))
            }
            "absent" => {
                let samples = vector_arg(0)?;
                if !samples.is_empty() {
                    return Ok(Val::Vector(Vec::new()));
                }
                let mut labels = Labels::new();
                if let Some(vs) = args.first().and_then(|a| crate::promql::selectors(a).into_iter().next()) {
                    for m in &vs.matchers.matchers {
                        if matches!(m.op, MatchOp::Equal) && m.name != "__name__" {
                            labels.insert(m.name.clone(), m.value.clone());
                        }
                    }
                }
                Ok(Val::Vector(vec![Sample { labels, value: 1.0 }]))
            }
            "histogram_quantile" => {
                let q = scalar_arg(0)?;
                Ok(Val::Vector(histogram_quantile(q, vector_arg(1)?)))
            }
            other => Err(EvalError::Unsupported(format!("function {other}()"))),
        }
    }
}

fn map_vector(samples: Vec<Sample>, f: impl Fn(f64) -> f64) -> Val {
    Val::Vector(
        samples.into_iter().map(|s| Sample { labels: drop_name(s.labels), value: f(s.value) }).collect(),
    )
}

fn drop_name(mut labels: Labels) -> Labels {
    labels.remove("__name__");
    labels
}

fn aggregate(op: &str, modifier: Option<&LabelModifier>, samples: Vec<Sample>) -> R<Val> {
    let mut groups: BTreeMap<Labels, Vec<f64>> = BTreeMap::new();
    for sample in samples {
        let key: Labels = match modifier {
            Some(LabelModifier::Include(by)) => {
                sample.labels.into_iter().filter(|(k, _)| by.labels.contains(k)).collect()
            }
            Some(LabelModifier::Exclude(without)) => sample
                .labels
                .into_iter()
                .filter(|(k, _)| !without.labels.contains(k) && k != "__name__")
                .collect(),
            None => Labels::new(),
        };
        groups.entry(key).or_default().push(sample.value);
    }
    let mut out = Vec::new();
    for (labels, values) in groups {
        let n = values.len() as f64;
        let value = match op {
            "sum" => values.iter().sum(),
            "avg" => values.iter().sum::<f64>() / n,
            "min" => values.iter().copied().fold(f64::INFINITY, f64::min),
            "max" => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            "count" => n,
            "group" => 1.0,
            other => return Err(EvalError::Unsupported(format!("aggregation {other}"))),
        };
        out.push(Sample { labels, value });
    }
    Ok(Val::Vector(out))
}

fn histogram_quantile(q: f64, samples: Vec<Sample>) -> Vec<Sample> {
    let mut groups: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
    for sample in samples {
        let mut labels = drop_name(sample.labels);
        let Some(le) = labels.remove("le") else { continue };
        let upper = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::NAN) };
        groups.entry(labels).or_default().push((upper, sample.value));
    }
    let mut out = Vec::new();
    for (labels, mut buckets) in groups {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        out.push(Sample { labels, value: bucket_quantile(q, &buckets) });
    }
    out
}

/// Prometheus' `bucketQuantile` for classic histograms.
fn bucket_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let Some(last) = buckets.last() else { return f64::NAN };
    if buckets.len() < 2 || last.0 != f64::INFINITY {
        return f64::NAN;
    }
    let total = last.1;
    if total == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * total;
    let b = buckets.iter().position(|(_, count)| *count >= rank).unwrap_or(buckets.len() - 1);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

fn arith(op: &str, a: f64, b: f64) -> R<f64> {
    Ok(match op {
        "+" => a + b,
        "-" => a - b,
        "*" => a * b,
        "/" => a / b,
        "%" => a % b,
        "^" => a.powf(b),
        other => return Err(EvalError::Unsupported(format!("operator {other}"))),
    })
}

fn compare(op: &str, a: f64, b: f64) -> bool {
    match op {
        ">" => a > b,
        "<" => a < b,
        ">=" => a >= b,
        "<=" => a <= b,
        "==" => a == b,
        "!=" => a != b,
        _ => false,
    }
}

/// The labels two samples must share to match, borrowed and in label order.
type Signature<'a> = Vec<(&'a str, &'a str)>;

fn signature<'a>(labels: &'a Labels, matching: Option<&LabelModifier>) -> Signature<'a> {
    let keep = |k: &String| match matching {
        Some(LabelModifier::Include(on)) => on.labels.contains(k),
        Some(LabelModifier::Exclude(ignoring)) => !ignoring.labels.contains(k) && k != "__name__",
        None => k != "__name__",
    };
    labels.iter().filter(|(k, _)| keep(k)).map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn binary(b: &promql_parser::parser::BinaryExpr, lhs: Val, rhs: Val) -> R<Val> {
    let op = b.op.to_string();
    let comparison = b.op.is_comparison_operator();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let matching = b.modifier.as_ref().and_then(|m| m.matching.as_ref());
    let apply = |a: f64, c: f64| -> R<Option<f64>> {
        if comparison {
            let hit = compare(&op, a, c);
            Ok(if return_bool { Some(if hit { 1.0 } else { 0.0 }) } else { hit.then_some(a) })
        } else {
            arith(&op, a, c).map(Some)
        }
    };
    let keep_name = comparison && !return_bool;
    match (lhs, rhs) {
        (Val::Scalar(a), Val::Scalar(c)) => {
            if comparison && !return_bool {
                return Err(EvalError::Unsupported("scalar comparison without bool".into()));
            }
            Ok(Val::Scalar(apply(a, c)?.unwrap_or(f64::NAN)))
        }
        (Val::Vector(v), Val::Scalar(c)) => {
            let mut out = Vec::new();
            for s in v {
                if let Some(value) = apply(s.value, c)? {
                    let labels = if keep_name { s.labels } else { drop_name(s.labels) };
                    out.push(Sample { labels, value });
                }
            }
            Ok(Val::Vector(out))
        }
        (Val::Scalar(a), Val::Vector(v)) => {
            let mut out = Vec::new();
            for s in v {
                let result = apply(a, s.value)?;
                if let Some(value) = result {
                    // A filter keeps the vector's value, not the scalar's.
                    let value = if comparison && !return_bool { s.value } else { value };
                    let labels = if keep_name { s.labels } else { drop_name(s.labels) };
                    out.push(Sample { labels, value });
                }
            }
            Ok(Val::Vector(out))
        }
        (Val::Vector(l), Val::Vector(r)) => {
            let r_sigs: Vec<Signature<'_>> = r.iter().map(|s| signature(&s.labels, matching)).collect();
            match op.as_str() {
                "and" => Ok(Val::Vector(
                    l.into_iter().filter(|s| r_sigs.contains(&signature(&s.labels, matching))).collect(),
                )),
                "unless" => Ok(Val::Vector(
                    l.into_iter().filter(|s| !r_sigs.contains(&signature(&s.labels, matching))).collect(),
                )),
                "or" => {
                    let l_sigs: Vec<Signature<'_>> =
                        l.iter().map(|s| signature(&s.labels, matching)).collect();
                    let unmatched: Vec<bool> =
                        r.iter().map(|s| !l_sigs.contains(&signature(&s.labels, matching))).collect();
                    drop(l_sigs);
                    drop(r_sigs);
                    let mut out = l;
                    out.extend(r.into_iter().zip(unmatched).filter(|(_, keep)| *keep).map(|(s, _)| s));
                    Ok(Val::Vector(out))
                }
                _ => {
                    let card = b.modifier.as_ref().map(|m| &m.card);
                    if matches!(card, Some(VectorMatchCardinality::OneToMany(_))) {
                        return Err(EvalError::Unsupported("group_right".into()));
                    }
                    let mut out = Vec::new();
                    for s in l {
                        let sig = signature(&s.labels, matching);
                        let Some(j) = r_sigs.iter().position(|x| *x == sig) else { continue };
                        let Some(value) = apply(s.value, r[j].value)? else { continue };
                        let mut labels = if keep_name { s.labels } else { drop_name(s.labels) };
                        match (card, matching) {
                            (
                                None | Some(VectorMatchCardinality::OneToOne),
                                Some(LabelModifier::Include(on)),
                            ) => {
                                labels.retain(|k, _| on.labels.contains(k));
                            }
                            (
                                None | Some(VectorMatchCardinality::OneToOne),
                                Some(LabelModifier::Exclude(ig)),
                            ) => {
                                labels.retain(|k, _| !ig.labels.contains(k));
                            }
                            (Some(VectorMatchCardinality::ManyToOne(extra)), _) => {
                                for l in &extra.labels {
                                    if let Some(v) = r[j].labels.get(l) {
                                        labels.insert(l.clone(), v.clone());
                                    }
                                }
                            }
                            _ => {}
                        }
                        out.push(Sample { labels, value });
                    }
                    Ok(Val::Vector(out))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::parse;

    fn series(name: &str, extra: &[(&str, &str)], shape: Shape, segs: Vec<Option<Seg>>) -> Series {
        let mut labels = Labels::new();
        labels.insert("__name__".into(), name.into());
        for (k, v) in extra {
            labels.insert((*k).into(), (*v).into());
        }
        Series { labels, shape, segs }
    }

    #[test]
    fn rate_ratio_and_matching() {
        let mut w = World::new(vec![0.0]);
        w.series.push(series(
            "req_total",
            &[("status", "500")],
            Shape::Counter,
            vec![Some(Seg { c: 0.0, s: 1.0 })],
        ));
        w.series.push(series(
            "req_total",
            &[("status", "200")],
            Shape::Counter,
            vec![Some(Seg { c: 0.0, s: 3.0 })],
        ));
        let e =
            parse("sum(rate(req_total{status=~\"5..\"}[5m])) / sum(rate(req_total[5m])) > 0.2").expect("ok");
        assert_eq!(w.eval(&e, 600.0), Ok(Val::Vector(vec![Sample { labels: Labels::new(), value: 0.25 }])));
    }

    #[test]
    fn quantile_interpolates_like_prometheus() {
        let buckets = [(0.5, 0.0), (1.0, 10.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.5, &buckets), 0.75);
    }

    #[test]
    fn counters_continue_across_phases() {
        let mut w = World::new(vec![0.0, 600.0]);
        w.series.push(series(
            "c_total",
            &[],
            Shape::Counter,
            vec![Some(Seg { c: 0.0, s: 1.0 }), Some(Seg { c: 0.0, s: 2.0 })],
        ));
        assert_eq!(w.value_at(0, 660.0), Some(720.0));
        let e = parse("rate(c_total[5m])").expect("ok");
        assert!(matches!(w.eval(&e, 660.0), Err(EvalError::Boundary(_))));
        assert!(matches!(w.eval(&e, 900.0), Ok(Val::Vector(v)) if v[0].value == 2.0));
    }
}
