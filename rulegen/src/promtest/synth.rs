//! Builds the promtool unit-test scenario of one alert: synthetic input
//! series that hold the alert's signal just on the safe side of its
//! threshold, then just past it, with a synthetic baseline phase first for
//! relative kinds; and the check times and expected alert computed by the
//! evaluator in `eval`.
//!
//! The signal is "driven": each PromQL construct is inverted so that the
//! expression takes a chosen value (a gauge takes it, a counter grows at
//! it, `a / b` fixes `b` and solves for `a`, a sum adds a series that the
//! other side of a ratio does not see, …).

use super::eval::{EvalError, Labels, STEP, Sample, Seg, Series, Shape, Val, World};
use crate::format::{fmt_num, series_text};
use crate::known::{Known, Part, Source, TARGET_LABELS};
use crate::promql::{self, is_scalar, selector_name, strip};
use opsmon_catalog::MetricType;
use promql_parser::label::MatchOp;
use promql_parser::parser::{Expr, VectorSelector};

/// Why no test could be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SynthError {
    /// Evaluation failed.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// The construct cannot be inverted.
    #[error("cannot drive {0}")]
    Cannot(String),
    /// Two parts of the expression need one series to hold two values.
    #[error("series {0} would need two different values")]
    Conflict(String),
    /// The scenario does not behave as planned.
    #[error("{0}")]
    Check(String),
}

type R<T> = Result<T, SynthError>;

/// Default label values of synthetic series, by label name; realistic for
/// SmarTalk so that the expected annotations read well. Where the exporter
/// config bounds a label (routes, targets, groups, …) only its values are
/// used, this one first when it is among them.
fn default_value(label: &str) -> &'static str {
    match label {
        "job" => "opsmon",
        "instance" => "localhost:19100",
        "cpu" => "0",
        "mode" => "user",
        "device" => "sda1",
        "fstype" => "ext4",
        "mountpoint" => "/",
        "group" => "smartalk-backend",
        "port" => "3000",
        "path" => "/var/log",
        "datname" => "smartalk_db",
        "datid" => "16384",
        "server" => "127.0.0.1:5432",
        "state" => "active",
        "relname" => "analytics_events",
        "schemaname" => "public",
        "db" => "db0",
        "target" => "api_health",
        "phase" => "connect",
        "result" => "miss",
        "status" => "200",
        "method" => "GET",
        "route" => "api",
        "file" => "/var/log/nginx/access.log",
        "pattern" => "error",
        "name" => "postgres_backup",
        "query" => "activation",
        "collector" => "host",
        "window" => "1h",
        "stage" => "signup",
        "rank" => "1",
        "user_id" => "42",
        _ => "test",
    }
}

/// Other values to try when the default is taken or refused by a matcher.
const ALTERNATIVES: &[&str] = &["other", "b", "c", "d"];

/// Values a regex matcher might accept, derived from its text.
fn regex_candidates(re: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in re.split('|') {
        let piece = piece.trim_matches(|c| c == '(' || c == ')');
        out.push(piece.replace(".*", "").replace(".+", "x").replace('.', "0"));
    }
    out.extend(["500", "200", "hit", "miss", "other", "x"].iter().map(|s| (*s).to_owned()));
    out
}

/// Where a drive happens.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Phase index.
    pub phase: usize,
    /// A time inside the phase where every window is clean.
    pub anchor: f64,
    /// Labels every created series must carry (`le` for buckets).
    pub forced: Labels,
    /// Create a new series even if an equal one exists (for sums).
    pub fresh: bool,
    /// Make selected gauges follow the clock (`time() - x`).
    pub clock: bool,
}

/// The synthesizer state.
#[derive(Debug, Clone)]
pub struct Synth<'k> {
    known: &'k Known,
    /// The series built so far.
    pub world: World,
    /// Value used where any positive value will do.
    pub base: f64,
}

impl<'k> Synth<'k> {
    /// A synthesizer over a timeline with the given phase starts.
    pub fn new(known: &'k Known, starts: Vec<f64>, base: f64) -> Self {
        Synth { known, world: World::new(starts), base }
    }

    /// Makes `expr` evaluate to `target` in `ctx.phase`.
    pub fn drive(&mut self, expr: &Expr, target: f64, ctx: &Ctx) -> R<()> {
        match strip(expr) {
            Expr::NumberLiteral(n) => {
                if close(n.val, target) {
                    Ok(())
                } else {
                    Err(SynthError::Cannot(format!("the constant {}", n.val)))
                }
            }
            Expr::Unary(u) => self.drive(&u.expr, -target, ctx),
            Expr::VectorSelector(vs) => {
                let seg = if ctx.clock {
                    Seg { c: target - ctx.anchor, s: 1.0 }
                } else {
                    Seg { c: target, s: 0.0 }
                };
                self.set(vs, Shape::Gauge, seg, ctx)
            }
            Expr::Call(call) => {
                let args = &call.args.args;
                let name = call.func.name;
                let range = |i: usize| match args.get(i).map(|a| strip(a)) {
                    Some(Expr::MatrixSelector(ms)) => Ok((ms.vs.clone(), ms.range.as_secs_f64())),
                    _ => Err(SynthError::Cannot(format!("{name}() without a range selector"))),
                };
                match name {
                    "rate" | "irate" => {
                        let (vs, _) = range(0)?;
                        if target < 0.0 {
                            return Err(SynthError::Cannot(format!("a negative rate ({target})")));
                        }
                        self.set(&vs, Shape::Counter, Seg { c: 0.0, s: target }, ctx)
                    }
                    "increase" => {
                        let (vs, r) = range(0)?;
                        self.set(&vs, Shape::Counter, Seg { c: 0.0, s: target / r }, ctx)
                    }
                    "deriv" => {
                        let (vs, _) = range(0)?;
                        self.set(
                            &vs,
                            Shape::Gauge,
                            Seg { c: self.base - target * ctx.anchor, s: target },
                            ctx,
                        )
                    }
                    "delta" => {
                        let (vs, r) = range(0)?;
                        let s = target / r;
                        self.set(&vs, Shape::Gauge, Seg { c: self.base - s * ctx.anchor, s }, ctx)
                    }
                    "predict_linear" => {
                        let (vs, _) = range(0)?;
                        let Some(Val::Scalar(horizon)) =
                            args.get(1).map(|a| self.world.eval(a, ctx.anchor)).transpose()?
                        else {
                            return Err(SynthError::Cannot(
                                "predict_linear() without a number horizon".into(),
                            ));
                        };
                        // Now at twice the base level, heading for `target` at the horizon.
                        let now = 2.0 * self.base;
                        let s = (target - now) / horizon;
                        self.set(&vs, Shape::Gauge, Seg { c: now - s * ctx.anchor, s }, ctx)
                    }
                    // Within one phase the last sample of the window is the current one.
                    "last_over_time" => {
                        let (vs, _) = range(0)?;
                        self.drive(&Expr::VectorSelector(vs), target, ctx)
                    }
                    "abs" | "clamp_min" | "clamp_max" => {
                        let inner = args.first().ok_or_else(|| SynthError::Cannot(name.into()))?;
                        self.drive(inner, target, ctx)
                    }
                    "histogram_quantile" => {
                        let q = match args.first().map(|a| strip(a)) {
                            Some(Expr::NumberLiteral(n)) => n.val,
                            _ => {
                                return Err(SynthError::Cannot(
                                    "histogram_quantile() with a computed φ".into(),
                                ));
                            }
                        };
                        let inner = args.get(1).ok_or_else(|| SynthError::Cannot(name.into()))?;
                        if !(q > 0.0 && q <= 1.0) || target <= 0.0 {
                            return Err(SynthError::Cannot(format!("histogram_quantile({q}) at {target}")));
                        }
                        // All observations in one bucket (0, target/q]: the q-quantile
                        // interpolates to exactly `target`.
                        for le in [fmt_num(target / q), "+Inf".to_owned()] {
                            let mut sub = ctx.clone();
                            sub.forced.insert("le".into(), le);
                            self.drive(inner, self.base, &sub)?;
                        }
                        Ok(())
                    }
                    other => Err(SynthError::Cannot(format!("function {other}()"))),
                }
            }
            Expr::Aggregate(agg) => {
                let op = agg.op.to_string();
                let current = self.values(&agg.expr, ctx)?;
                match op.as_str() {
                    "sum" if !current.is_empty() => {
                        let mut sub = ctx.clone();
                        sub.fresh = true;
                        self.drive(&agg.expr, target - current.iter().sum::<f64>(), &sub)
                    }
                    "sum" | "avg" | "min" | "max" if current.is_empty() => self.drive(&agg.expr, target, ctx),
                    "avg" | "min" | "max" if current.iter().all(|v| close(*v, target)) => Ok(()),
                    _ => Err(SynthError::Cannot(format!("{op}() over series that already have values"))),
                }
            }
            Expr::Binary(b) => {
                let op = b.op.to_string();
                if b.op.is_comparison_operator() || b.op.is_set_operator() {
                    return Err(SynthError::Cannot(format!("the operator `{op}` inside a signal")));
                }
                if is_scalar(&b.rhs) {
                    let c = self.scalar(&b.rhs, ctx)?;
                    let mut sub = ctx.clone();
                    sub.clock |= is_time(&b.rhs);
                    let lhs = match op.as_str() {
                        "+" => target - c,
                        "-" => target + c,
                        "*" => target / c,
                        "/" => target * c,
                        _ => return Err(SynthError::Cannot(format!("the operator `{op}`"))),
                    };
                    return self.drive(&b.lhs, lhs, &sub);
                }
                if is_scalar(&b.lhs) {
                    let c = self.scalar(&b.lhs, ctx)?;
                    let mut sub = ctx.clone();
                    sub.clock |= is_time(&b.lhs);
                    let rhs = match op.as_str() {
                        "+" => target - c,
                        "-" => c - target,
                        "*" => target / c,
                        "/" => c / target,
                        _ => return Err(SynthError::Cannot(format!("the operator `{op}`"))),
                    };
                    return self.drive(&b.rhs, rhs, &sub);
                }
                if !self.determined(&b.rhs, ctx) && self.determined(&b.lhs, ctx) {
                    let l = self.one(&b.lhs, ctx)?;
                    let rhs = match op.as_str() {
                        "+" => target - l,
                        "-" => l - target,
                        "*" => target / l,
                        "/" => l / target,
                        _ => return Err(SynthError::Cannot(format!("the operator `{op}`"))),
                    };
                    return self.drive(&b.rhs, rhs, ctx);
                }
                if !self.determined(&b.rhs, ctx) {
                    self.drive(&b.rhs, self.base, ctx)?;
                }
                // The right side may see the series the left side adds (a
                // numerator that is part of its denominator): measure how it
                // moves with the left side, then solve.
                let probe = |x: f64| -> R<f64> {
                    let mut copy = self.clone();
                    copy.drive(&b.lhs, x, ctx)?;
                    copy.one(&b.rhs, ctx)
                };
                let (r1, r2) = (probe(1.0)?, probe(2.0)?);
                let k = r2 - r1;
                let r0 = r1 - k;
                let lhs = match op.as_str() {
                    "/" => target * r0 / (1.0 - target * k),
                    "-" => (target + r0) / (1.0 - k),
                    "+" => (target - r0) / (1.0 + k),
                    "*" if close(k, 0.0) => target / r0,
                    _ => return Err(SynthError::Cannot(format!("the operator `{op}` between two signals"))),
                };
                if !lhs.is_finite() {
                    return Err(SynthError::Cannot(format!("`{op}` to {target}")));
                }
                self.drive(&b.lhs, lhs, ctx)
            }
            Expr::MatrixSelector(_) => Err(SynthError::Cannot("a bare range selector".into())),
            Expr::Subquery(_) => Err(SynthError::Cannot("a subquery".into())),
            Expr::StringLiteral(_) | Expr::Extension(_) => Err(SynthError::Cannot("a string".into())),
            // `strip` removed every enclosing parenthesis already.
            Expr::Paren(p) => self.drive(&p.expr, target, ctx),
        }
    }

    /// Makes `expr` at least `min` (a volume guard), driving it if nothing sets it yet.
    pub fn ensure_at_least(&mut self, expr: &Expr, min: f64, ctx: &Ctx) -> R<()> {
        if self.determined(expr, ctx) {
            let value = self.one(expr, ctx)?;
            if value < min {
                return Err(SynthError::Check(format!(
                    "the volume guard is {value} in the scenario, below its minimum {min}"
                )));
            }
            return Ok(());
        }
        let level = if min > 0.0 { nice(min * 2.0) } else { 1.0 };
        self.drive(expr, level, ctx)
    }

    fn scalar(&self, expr: &Expr, ctx: &Ctx) -> R<f64> {
        match self.world.eval(expr, ctx.anchor)? {
            Val::Scalar(v) => Ok(v),
            Val::Vector(_) => Err(SynthError::Cannot("a vector where a scalar was expected".into())),
        }
    }

    /// Values of the series an expression returns now (only those that
    /// carry the forced labels, e.g. one `le` bucket).
    fn values(&self, expr: &Expr, ctx: &Ctx) -> R<Vec<f64>> {
        // What the phase itself sets: the 5-minute lookback must not pick up
        // the previous phase's samples when the anchor sits early in a phase
        // (an offset reads earlier phases on purpose, so keep them then).
        let value = if promql::max_offset(expr).is_zero() {
            self.world.eval_in_phase(expr, ctx.anchor, ctx.phase)?
        } else {
            self.world.eval(expr, ctx.anchor)?
        };
        Ok(match value {
            Val::Scalar(v) => vec![v],
            Val::Vector(samples) => samples
                .into_iter()
                .filter(|s| ctx.forced.iter().all(|(k, v)| s.labels.get(k).is_none_or(|x| x == v)))
                .map(|s| s.value)
                .collect(),
        })
    }

    fn one(&self, expr: &Expr, ctx: &Ctx) -> R<f64> {
        match self.values(expr, ctx)?.as_slice() {
            [v] => Ok(*v),
            [] => Err(SynthError::Cannot(format!("`{expr}`: it returns nothing"))),
            _ => Err(SynthError::Cannot(format!("`{expr}`: it returns several series; aggregate it"))),
        }
    }

    /// Whether every selector of `expr` already has a series in this phase.
    fn determined(&self, expr: &Expr, ctx: &Ctx) -> bool {
        promql::selectors(expr).iter().all(|vs| {
            self.world.series.iter().any(|s| {
                promql::matches(&plain(vs), &s.labels) && s.segs.get(ctx.phase).copied().flatten().is_some()
            })
        })
    }

    fn set(&mut self, vs: &VectorSelector, shape: Shape, seg: Seg, ctx: &Ctx) -> R<()> {
        let index = self.series_for(vs, shape, ctx)?;
        let series = &mut self.world.series[index];
        match series.segs[ctx.phase] {
            Some(existing) if !(close(existing.c, seg.c) && close(existing.s, seg.s)) => {
                Err(SynthError::Conflict(series_text(&series.labels)))
            }
            _ => {
                series.segs[ctx.phase] = Some(seg);
                Ok(())
            }
        }
    }

    fn series_for(&mut self, vs: &VectorSelector, shape: Shape, ctx: &Ctx) -> R<usize> {
        let name = selector_name(vs).ok_or_else(|| SynthError::Cannot("a selector without a name".into()))?;
        let (metric, part) =
            self.known.resolve(&name).ok_or_else(|| SynthError::Cannot(format!("unknown metric {name}")))?;
        if metric.source == Source::Record {
            return Err(SynthError::Cannot(format!("the recording rule {name}")));
        }
        // Every scraped series (and Prometheus' own `up`) carries job and instance.
        let mut names: Vec<String> = metric.labels.clone();
        names.extend(TARGET_LABELS.iter().map(|l| (*l).to_owned()));
        if part == Part::Bucket {
            names.push("le".into());
        }
        let shape =
            if metric.kind == MetricType::Counter || part != Part::Plain { Shape::Counter } else { shape };
        // Fixed labels (forced or `=` matchers) and the free ones.
        let mut fixed = Labels::new();
        fixed.insert("__name__".into(), name.clone());
        let mut free: Vec<(String, Vec<String>)> = Vec::new();
        for label in &names {
            if let Some(v) = ctx.forced.get(label) {
                fixed.insert(label.clone(), v.clone());
                continue;
            }
            let matchers: Vec<_> = vs.matchers.matchers.iter().filter(|m| &m.name == label).collect();
            if let Some(eq) = matchers.iter().find(|m| matches!(m.op, MatchOp::Equal)) {
                fixed.insert(label.clone(), eq.value.clone());
                continue;
            }
            let mut candidates: Vec<String> = Vec::new();
            if let Some(bounded) = self.known.label_values(&metric.name, label) {
                // Only values the exporter really writes, the usual one first.
                let usual = default_value(label);
                candidates.extend(bounded.values.iter().filter(|v| *v == usual).cloned());
                candidates.extend(bounded.values.iter().filter(|v| *v != usual).cloned());
            } else {
                for m in &matchers {
                    if let MatchOp::Re(_) = m.op {
                        candidates.extend(regex_candidates(&m.value));
                    }
                }
                candidates.push(default_value(label).to_owned());
                candidates.extend(ALTERNATIVES.iter().map(|s| (*s).to_owned()));
            }
            let accepted: Vec<String> =
                candidates.into_iter().filter(|c| matchers.iter().all(|m| m.is_match(c))).collect();
            let mut unique = Vec::new();
            for c in accepted {
                if !unique.contains(&c) {
                    unique.push(c);
                }
            }
            if unique.is_empty() {
                return Err(SynthError::Cannot(format!("a value for label {label} of {name}")));
            }
            free.push((label.clone(), unique));
        }
        // Try the first candidate of every free label, then vary one at a time.
        // Built one at a time: the first attempt nearly always succeeds.
        let first: Labels =
            fixed.into_iter().chain(free.iter().map(|(l, c)| (l.clone(), c[0].clone()))).collect();
        let variations = free.iter().flat_map(|(label, candidates)| {
            candidates.iter().skip(1).map(|c| {
                let mut labels = first.clone();
                labels.insert(label.clone(), c.clone());
                labels
            })
        });
        for labels in std::iter::once(first.clone()).chain(variations) {
            let existing = self.world.series.iter().position(|s| s.labels == labels);
            match existing {
                Some(i) if !ctx.fresh => return Ok(i),
                Some(i) if self.world.series[i].segs[ctx.phase].is_none() => return Ok(i),
                Some(_) => continue,
                None => {
                    let phases = self.world.starts.len();
                    self.world.series.push(Series { labels, shape, segs: vec![None; phases] });
                    return Ok(self.world.series.len() - 1);
                }
            }
        }
        Err(SynthError::Cannot(format!("another distinct series of {name}")))
    }
}

/// The selector without offset (the series, not the time it is read at).
fn plain(vs: &VectorSelector) -> VectorSelector {
    let mut vs = vs.clone();
    vs.offset = None;
    vs.at = None;
    vs
}

fn is_time(expr: &Expr) -> bool {
    matches!(strip(expr), Expr::Call(c) if c.func.name == "time")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Rounds to three significant digits, so that test values read well.
pub fn nice(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    format!("{v:.2e}").parse().unwrap_or(v)
}

/// What a generated test checks, and the evaluator's world it runs on.
#[derive(Debug, Clone)]
pub struct Run {
    /// Input series.
    pub world: World,
    /// Last sample time.
    pub end: f64,
    /// No alert (signal just on the safe side).
    pub silent_at: f64,
    /// Condition true but `for` not yet elapsed.
    pub pending_at: Option<f64>,
    /// The alert's series at `pending_at`, when its windows are clean there
    /// (then the test also asserts the ALERTS series in state pending).
    pub pending: Vec<Sample>,
    /// Firing.
    pub firing_at: f64,
    /// The alert's series at `firing_at`.
    pub firing: Vec<Sample>,
}

/// The inputs of one alert's scenario.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// The full alert expression.
    pub alert: &'a Expr,
    /// The expression driven to the levels below.
    pub driven: &'a Expr,
    /// Level before the silent phase (relative kinds' baseline).
    pub baseline_level: Option<f64>,
    /// Level in the silent phase.
    pub silent_level: f64,
    /// Level in the firing phase.
    pub firing_level: f64,
    /// Volume guard.
    pub guard: Option<(&'a Expr, f64)>,
    /// `for` in seconds.
    pub for_secs: f64,
    /// Positive value to use where any will do.
    pub base: f64,
}

/// Builds and checks the scenario.
pub fn run(known: &Known, plan: &Plan<'_>) -> R<Run> {
    let w = promql::max_range(plan.alert).as_secs_f64();
    let o = promql::max_offset(plan.alert).as_secs_f64();
    let warmup = (w + 2.0 * STEP).max(3.0 * STEP);
    let f = plan.for_secs;
    let mut starts = Vec::new();
    let mut levels = Vec::new();
    let mut anchors = Vec::new();
    if let Some(b) = plan.baseline_level {
        if o <= 0.0 {
            return Err(SynthError::Check("a baseline level without an offset".into()));
        }
        starts.push(0.0);
        levels.push(b);
        anchors.push(o - STEP);
    }
    let t0 = if plan.baseline_level.is_some() { o } else { 0.0 };
    let t1 = t0 + warmup;
    let silent_at = t1 - STEP;
    let firing_at = minute_ceil(t1 + w + f + 2.0 * STEP);
    let pending_at = (f >= STEP).then_some(t1 + f - STEP);
    starts.push(t0);
    levels.push(plan.silent_level);
    anchors.push(silent_at);
    starts.push(t1);
    levels.push(plan.firing_level);
    anchors.push(firing_at);
    let mut synth = Synth::new(known, starts, plan.base);
    for (phase, (&level, &anchor)) in levels.iter().zip(&anchors).enumerate() {
        let ctx = Ctx { phase, anchor, forced: Labels::new(), fresh: false, clock: false };
        synth.drive(plan.driven, level, &ctx)?;
        if let Some((guard, min)) = plan.guard {
            synth.ensure_at_least(guard, min, &ctx)?;
        }
    }
    let world = synth.world;
    let fires = |t: f64| -> R<Vec<Sample>> {
        match world.eval(plan.alert, t)? {
            Val::Vector(v) => Ok(v),
            Val::Scalar(_) => Err(SynthError::Check("the alert expression is a scalar".into())),
        }
    };
    if !fires(silent_at)?.is_empty() {
        return Err(SynthError::Check(format!(
            "the alert condition holds in the silent phase (at {}s)",
            silent_at
        )));
    }
    // The condition must hold at every evaluation from the first clean
    // window of the firing phase to the firing check, so `for` elapses.
    for t in firing_checks(minute_ceil(t1 + w), firing_at) {
        if fires(t)?.is_empty() {
            return Err(SynthError::Check(format!(
                "the alert condition does not hold in the firing phase (at {t}s)"
            )));
        }
    }
    if let Some(p) = pending_at
        && p - t1 >= f
    {
        return Err(SynthError::Check("pending check after `for`".into()));
    }
    let firing = fires(firing_at)?;
    // Windows crossing into the silent phase cannot be predicted exactly:
    // assert the pending state only where they are clean.
    let pending = pending_at.and_then(|p| fires(p).ok()).unwrap_or_default();
    Ok(Run { world, end: firing_at + STEP, silent_at, pending_at, pending, firing_at, firing })
}

/// Evaluations checked at each end of the firing phase, and in between.
const EDGE_CHECKS: u64 = 16;
const INNER_CHECKS: u64 = 32;

/// The evaluation times from `first` to `last` (minutes) at which the
/// firing condition is checked: every one while there are few, else the
/// first and last [`EDGE_CHECKS`] and [`INNER_CHECKS`] evenly spaced
/// between. Every input series is linear throughout the firing phase, so
/// the condition does not flicker between checks; and promtool, which
/// evaluates every minute, runs the test anyway. This keeps the check
/// independent of `for` (a `for: 1d` alert has 1,440 evaluations).
fn firing_checks(first: f64, last: f64) -> Vec<f64> {
    if last < first {
        return Vec::new();
    }
    let steps = ((last - first) / STEP).round() as u64;
    let at = |i: u64| first + i as f64 * STEP;
    if steps < 2 * EDGE_CHECKS + INNER_CHECKS {
        return (0..=steps).map(at).collect();
    }
    let mut times: Vec<u64> = (0..EDGE_CHECKS).chain(steps + 1 - EDGE_CHECKS..=steps).collect();
    let span = steps - 2 * EDGE_CHECKS;
    times.extend((1..=INNER_CHECKS).map(|i| EDGE_CHECKS + i * span / (INNER_CHECKS + 1)));
    times.sort_unstable();
    times.dedup();
    times.into_iter().map(at).collect()
}

fn minute_ceil(t: f64) -> f64 {
    (t / STEP).ceil() * STEP
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::parse;

    fn drive(expr: &str, target: f64) -> World {
        let known = Known::catalog();
        let mut synth = Synth::new(&known, vec![0.0], 100.0);
        let e = parse(expr).expect("parses");
        let ctx = Ctx { phase: 0, anchor: 600.0, forced: Labels::new(), fresh: false, clock: false };
        synth.drive(&e, target, &ctx).expect("drives");
        let value = match synth.world.eval(&e, 600.0).expect("evaluates") {
            Val::Vector(v) => v[0].value,
            Val::Scalar(v) => v,
        };
        assert!(close(value, target), "{expr}: {value} != {target}");
        synth.world
    }

    #[test]
    fn firing_checks_are_bounded_and_cover_both_ends() {
        assert_eq!(firing_checks(120.0, 300.0), vec![120.0, 180.0, 240.0, 300.0]);
        assert!(firing_checks(300.0, 240.0).is_empty());
        let day = firing_checks(600.0, 600.0 + 86_400.0);
        assert_eq!(day.len() as u64, 2 * EDGE_CHECKS + INNER_CHECKS);
        assert_eq!(day.first(), Some(&600.0));
        assert_eq!(day.last(), Some(&(600.0 + 86_400.0)));
        assert!(day.windows(2).all(|w| w[0] < w[1] && (w[1] - w[0]) % STEP == 0.0));
        let year = firing_checks(600.0, 600.0 + 365.0 * 86_400.0);
        assert_eq!(year.len(), day.len(), "independent of `for`");
    }

    #[test]
    fn drives_the_usual_shapes() {
        drive("1 - avg by (job, instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))", 0.88);
        drive("1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", 0.9);
        drive("time() - opsmon_directory_scan_timestamp_seconds", 7200.0);
        let world = drive(
            "sum by (job, instance) (rate(node_network_receive_errs_total{device=~\"eth.*\"}[5m])) / sum by (job, instance) (rate(node_network_receive_errs_total[5m]))",
            0.06,
        );
        assert_eq!(world.series.len(), 2, "the numerator's series is part of the denominator");
    }
}
