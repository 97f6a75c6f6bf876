//! PromQL analysis on promql-parser's AST: parsing, the metric/label/type
//! checks, and the static facts renderers and the test synthesizer need
//! (output labels, unit, range windows, offsets).

use crate::diagnostics::hint;
use crate::known::{Known, Part, TARGET_LABELS};
use opsmon_catalog::{MetricType, Unit};
use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::ast::{LabelModifier, Offset, VectorMatchCardinality};
use promql_parser::parser::{self, Expr, VectorSelector};
use std::collections::BTreeSet;
use std::time::Duration;

/// A problem found in an expression; `needle` is the text to point at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Text inside the expression the problem is about (for the column).
    pub needle: String,
    /// The message, with the fix when one is likely.
    pub message: String,
}

/// Parses PromQL. Validation and every renderer parse the same expressions
/// again, and each `=~` matcher compiles a regex: under callgrind, parsing
/// was 35 % of `rulegen bench --alerts 300`'s instructions, regex
/// compilation 28 %. A per-thread cache of the results parses each text
/// once; it is bounded, so no definition grows it without end.
pub fn parse(text: &str) -> Result<Expr, String> {
    const CACHE_ENTRIES: usize = 4096;
    thread_local! {
        static PARSED: std::cell::RefCell<std::collections::HashMap<String, Result<Expr, String>>> =
            std::cell::RefCell::default();
    }
    if let Some(hit) = PARSED.with_borrow(|cache| cache.get(text).cloned()) {
        return hit;
    }
    let parsed = parser::parse(text);
    PARSED.with_borrow_mut(|cache| {
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(text.to_owned(), parsed.clone());
    });
    parsed
}

/// The metric name of a selector (`name` or `{__name__="…"}`).
pub fn selector_name(vs: &VectorSelector) -> Option<String> {
    selector_name_ref(vs).map(str::to_owned)
}

/// [`selector_name`] without the copy, for the hot paths that only compare it.
pub fn selector_name_ref(vs: &VectorSelector) -> Option<&str> {
    vs.name.as_deref().or_else(|| {
        vs.matchers
            .matchers
            .iter()
            .find(|m| m.name == "__name__" && matches!(m.op, MatchOp::Equal))
            .map(|m| m.value.as_str())
    })
}

/// Functions whose range argument must be a counter.
const COUNTER_FUNCTIONS: &[&str] = &["rate", "irate", "increase", "resets"];

/// Checks metric names, labels and the counter/histogram rules.
pub fn check(expr: &Expr, known: &Known) -> Vec<Issue> {
    let mut issues = Vec::new();
    walk_check(expr, known, None, &mut issues);
    issues
}

fn walk_check(expr: &Expr, known: &Known, function: Option<&str>, issues: &mut Vec<Issue>) {
    match expr {
        Expr::VectorSelector(vs) => check_selector(vs, known, function, issues),
        Expr::MatrixSelector(ms) => check_selector(&ms.vs, known, function, issues),
        Expr::Call(call) => {
            let name = call.func.name;
            if name == "histogram_quantile" {
                if let Some(arg) = call.args.args.get(1) {
                    check_quantile_arg(arg, known, issues);
                    walk_check(arg, known, Some(name), issues);
                }
                if let Some(q) = call.args.args.first() {
                    walk_check(q, known, None, issues);
                }
                return;
            }
            for arg in &call.args.args {
                walk_check(arg, known, Some(name), issues);
            }
        }
        Expr::Aggregate(agg) => {
            walk_check(&agg.expr, known, None, issues);
            if let Some(param) = &agg.param {
                walk_check(param, known, None, issues);
            }
            if let (Some(modifier), Some(inner)) = (&agg.modifier, labels_of(&agg.expr, known)) {
                for label in &modifier.labels().labels {
                    if !inner.contains(label) && label != "le" {
                        issues.push(Issue {
                            needle: label.clone(),
                            message: format!(
                                "`{}` label `{label}` is not a label of the aggregated series ({}){}",
                                if modifier.is_include() { "by" } else { "without" },
                                inner.iter().cloned().collect::<Vec<_>>().join(", "),
                                hint(label, inner.iter().map(String::as_str))
                            ),
                        });
                    }
                }
            }
        }
        Expr::Binary(b) => {
            walk_check(&b.lhs, known, None, issues);
            walk_check(&b.rhs, known, None, issues);
        }
        Expr::Paren(p) => walk_check(&p.expr, known, function, issues),
        Expr::Unary(u) => walk_check(&u.expr, known, function, issues),
        Expr::Subquery(s) => walk_check(&s.expr, known, None, issues),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn check_selector(vs: &VectorSelector, known: &Known, function: Option<&str>, issues: &mut Vec<Issue>) {
    let Some(name) = selector_name(vs) else {
        issues.push(Issue {
            needle: "{".into(),
            message: "selector without a metric name; name the metric so rulegen can check it".into(),
        });
        return;
    };
    let Some((metric, part)) = known.resolve(&name) else {
        let names = known.selectable_names();
        issues.push(Issue {
            needle: name.clone(),
            message: format!(
                "unknown metric `{name}`: not in the exporter catalog, the business metrics of the exporter config, `up` or this file's recording rules{}",
                hint(&name, names.iter().map(String::as_str))
            ),
        });
        return;
    };
    let mut allowed: Vec<&str> = metric.labels.iter().map(String::as_str).collect();
    allowed.extend(TARGET_LABELS);
    if part == Part::Bucket {
        allowed.push("le");
    }
    for matcher in &vs.matchers.matchers {
        if matcher.name == "__name__" {
            continue;
        }
        if allowed.contains(&matcher.name.as_str()) {
            if let Some(issue) = impossible_value(&metric.name, matcher, known) {
                issues.push(issue);
            }
            continue;
        }
        issues.push(Issue {
            needle: matcher.name.clone(),
            message: format!(
                "metric `{name}` has no label `{}` (its labels: {}){}",
                matcher.name,
                allowed.join(", "),
                hint(&matcher.name, allowed.iter().copied())
            ),
        });
    }
    if let Some(function) = function
        && COUNTER_FUNCTIONS.contains(&function)
    {
        let counter = metric.kind == MetricType::Counter
            || (metric.kind == MetricType::Histogram && part != Part::Plain);
        if !counter {
            let fix = if function == "increase" { "delta()" } else { "deriv() or delta()" };
            issues.push(Issue {
                needle: name.clone(),
                message: format!(
                    "{function}() needs a counter, but `{name}` is a {}; use {fix} for a gauge",
                    metric.kind
                ),
            });
        }
    }
}

/// A `=` or `=~` matcher on a bounded label that no value the exporter can
/// write satisfies. `!=` and `!~` are never reported: excluding a value that
/// cannot occur keeps every series, which is what the author wanted anyway.
fn impossible_value(family: &str, matcher: &Matcher, known: &Known) -> Option<Issue> {
    let bounded = known.label_values(family, &matcher.name)?;
    let possible = match &matcher.op {
        MatchOp::Equal => bounded.contains(&matcher.value),
        // A regex that names a URL may match an on-demand probe target.
        MatchOp::Re(_) => {
            bounded.values.iter().any(|v| matcher.is_match(v))
                || (bounded.urls && (matcher.value.contains("://") || matcher.value.starts_with("http")))
        }
        MatchOp::NotEqual | MatchOp::NotRe(_) => true,
    };
    if possible {
        return None;
    }
    let shown: Vec<String> = bounded.values.iter().map(|v| format!("`{v}`")).collect();
    let also = if bounded.urls { " (or the URL of an on-demand probe)" } else { "" };
    let op = if matches!(matcher.op, MatchOp::Equal) { "=" } else { "=~" };
    let suggestion =
        bounded.suggest(&matcher.value).map(|v| format!("; did you mean `{v}`?")).unwrap_or_default();
    Some(Issue {
        needle: matcher.value.clone(),
        message: format!(
            "`{}{op}\"{}\"` can never match: the exporter config gives `{family}` label `{}` only {}{also} ({}){suggestion}",
            matcher.name,
            matcher.value,
            matcher.name,
            if shown.is_empty() { "no value".to_owned() } else { shown.join(", ") },
            bounded.origin,
        ),
    })
}

fn check_quantile_arg(arg: &Expr, known: &Known, issues: &mut Vec<Issue>) {
    for vs in selectors(arg) {
        let Some(name) = selector_name(vs) else { continue };
        match known.resolve(&name) {
            Some((_, Part::Bucket)) => {}
            Some((metric, _)) => {
                let fix = if metric.kind == MetricType::Histogram {
                    format!("; use `{}_bucket`", metric.name)
                } else {
                    String::new()
                };
                issues.push(Issue {
                    needle: name.clone(),
                    message: format!(
                        "histogram_quantile() needs a histogram's `_bucket` series, but `{name}` is a {}{fix}",
                        metric.kind
                    ),
                });
            }
            None => {}
        }
    }
    if let Some(labels) = labels_of(arg, known)
        && !labels.contains("le")
    {
        issues.push(Issue {
            needle: "histogram_quantile".into(),
            message:
                "histogram_quantile() needs the `le` label; keep it in the aggregation (`sum by (le, …)`)"
                    .into(),
        });
    }
}

/// Every vector selector (also inside range selectors), in order.
pub fn selectors(expr: &Expr) -> Vec<&VectorSelector> {
    let mut out = Vec::new();
    collect_selectors(expr, &mut out);
    out
}

fn collect_selectors<'a>(expr: &'a Expr, out: &mut Vec<&'a VectorSelector>) {
    match expr {
        Expr::VectorSelector(vs) => out.push(vs),
        Expr::MatrixSelector(ms) => out.push(&ms.vs),
        Expr::Call(call) => call.args.args.iter().for_each(|a| collect_selectors(a, out)),
        Expr::Aggregate(agg) => {
            if let Some(param) = &agg.param {
                collect_selectors(param, out);
            }
            collect_selectors(&agg.expr, out);
        }
        Expr::Binary(b) => {
            collect_selectors(&b.lhs, out);
            collect_selectors(&b.rhs, out);
        }
        Expr::Paren(p) => collect_selectors(&p.expr, out),
        Expr::Unary(u) => collect_selectors(&u.expr, out),
        Expr::Subquery(s) => collect_selectors(&s.expr, out),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// The label names every output series is sure to carry (`None` when unknown).
pub fn labels_of(expr: &Expr, known: &Known) -> Option<BTreeSet<String>> {
    match expr {
        Expr::VectorSelector(vs) => selector_labels(vs, known),
        Expr::MatrixSelector(ms) => selector_labels(&ms.vs, known),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Some(BTreeSet::new()),
        Expr::Paren(p) => labels_of(&p.expr, known),
        Expr::Unary(u) => labels_of(&u.expr, known),
        Expr::Subquery(s) => labels_of(&s.expr, known),
        Expr::Extension(_) => None,
        Expr::Call(call) => {
            let args = &call.args.args;
            match call.func.name {
                "time" | "vector" | "scalar" | "pi" => Some(BTreeSet::new()),
                "absent" | "absent_over_time" => {
                    let vs = args.first().and_then(|a| selectors(a).into_iter().next())?;
                    Some(
                        vs.matchers
                            .matchers
                            .iter()
                            .filter(|m| matches!(m.op, MatchOp::Equal) && m.name != "__name__")
                            .map(|m| m.name.clone())
                            .collect(),
                    )
                }
                "histogram_quantile" => {
                    let mut labels = labels_of(args.get(1)?, known)?;
                    labels.remove("le");
                    Some(labels)
                }
                "label_replace" => {
                    let mut labels = labels_of(args.first()?, known)?;
                    if let Some(Expr::StringLiteral(dst)) = args.get(1).map(|b| b.as_ref()) {
                        labels.insert(dst.val.clone());
                    }
                    Some(labels)
                }
                _ => args
                    .iter()
                    .find(|a| !matches!(a.as_ref(), Expr::NumberLiteral(_) | Expr::StringLiteral(_)))
                    .map_or(Some(BTreeSet::new()), |a| labels_of(a, known)),
            }
        }
        Expr::Aggregate(agg) => {
            let op = agg.op.to_string();
            let inner = labels_of(&agg.expr, known);
            if matches!(op.as_str(), "topk" | "bottomk" | "limitk" | "limit_ratio") {
                return inner;
            }
            let mut out = match &agg.modifier {
                Some(LabelModifier::Include(by)) => by.labels.iter().cloned().collect(),
                Some(LabelModifier::Exclude(without)) => {
                    let mut inner = inner?;
                    for l in &without.labels {
                        inner.remove(l);
                    }
                    inner
                }
                None => BTreeSet::new(),
            };
            if op == "count_values"
                && let Some(Expr::StringLiteral(label)) = agg.param.as_deref()
            {
                out.insert(label.val.clone());
            }
            Some(out)
        }
        Expr::Binary(b) => {
            let lhs_scalar = is_scalar(&b.lhs);
            let rhs_scalar = is_scalar(&b.rhs);
            if lhs_scalar && rhs_scalar {
                return Some(BTreeSet::new());
            }
            if rhs_scalar {
                return labels_of(&b.lhs, known);
            }
            if lhs_scalar {
                return labels_of(&b.rhs, known);
            }
            let op = b.op.to_string();
            let lhs = labels_of(&b.lhs, known);
            let rhs = labels_of(&b.rhs, known);
            match op.as_str() {
                "and" | "unless" => lhs,
                "or" => Some(lhs?.intersection(&rhs?).cloned().collect()),
                _ => {
                    let modifier = b.modifier.as_ref();
                    let (keep_side, other) = match modifier.map(|m| &m.card) {
                        Some(VectorMatchCardinality::OneToMany(_)) => (rhs, lhs),
                        _ => (lhs, rhs),
                    };
                    let mut out = keep_side?;
                    match modifier.and_then(|m| m.matching.as_ref()) {
                        Some(LabelModifier::Include(on)) => {
                            let one_to_one = matches!(
                                modifier.map(|m| &m.card),
                                None | Some(VectorMatchCardinality::OneToOne)
                            );
                            if one_to_one {
                                out = on.labels.iter().cloned().collect();
                            }
                        }
                        Some(LabelModifier::Exclude(ignoring)) => {
                            let one_to_one = matches!(
                                modifier.map(|m| &m.card),
                                None | Some(VectorMatchCardinality::OneToOne)
                            );
                            if one_to_one {
                                for l in &ignoring.labels {
                                    out.remove(l);
                                }
                            }
                        }
                        None => {}
                    }
                    if let Some(extra) = modifier.and_then(|m| m.card.labels()) {
                        let other = other.unwrap_or_default();
                        for l in &extra.labels {
                            if other.contains(l) {
                                out.insert(l.clone());
                            }
                        }
                    }
                    Some(out)
                }
            }
        }
    }
}

fn selector_labels(vs: &VectorSelector, known: &Known) -> Option<BTreeSet<String>> {
    let (metric, part) = known.resolve(&selector_name(vs)?)?;
    let mut labels: BTreeSet<String> = metric.labels.iter().cloned().collect();
    if !matches!(metric.source, crate::known::Source::Record) {
        labels.extend(TARGET_LABELS.iter().map(|l| (*l).to_owned()));
    }
    if part == Part::Bucket {
        labels.insert("le".into());
    }
    Some(labels)
}

/// Whether the expression is a scalar (number, `time()`, scalar arithmetic).
pub fn is_scalar(expr: &Expr) -> bool {
    match expr {
        Expr::NumberLiteral(_) => true,
        Expr::Paren(p) => is_scalar(&p.expr),
        Expr::Unary(u) => is_scalar(&u.expr),
        Expr::Call(c) => matches!(c.func.name, "time" | "scalar" | "pi"),
        Expr::Binary(b) => is_scalar(&b.lhs) && is_scalar(&b.rhs),
        _ => false,
    }
}

/// The unit of an expression's value, when it can be told.
pub fn unit_of(expr: &Expr, known: &Known) -> Option<Unit> {
    match expr {
        Expr::VectorSelector(vs) => {
            let (metric, part) = known.resolve(&selector_name(vs)?)?;
            match part {
                Part::Plain | Part::Sum => Some(metric.unit),
                Part::Count | Part::Bucket => Some(Unit::None),
            }
        }
        Expr::MatrixSelector(ms) => unit_of(&Expr::VectorSelector(ms.vs.clone()), known),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => None,
        Expr::Paren(p) => unit_of(&p.expr, known),
        Expr::Unary(u) => unit_of(&u.expr, known),
        Expr::Subquery(s) => unit_of(&s.expr, known),
        Expr::Call(call) => {
            let first = call.args.args.first();
            match call.func.name {
                "time" | "timestamp" => Some(Unit::Seconds),
                "rate" | "irate" | "deriv" => match unit_of(first?, known)? {
                    Unit::Seconds => Some(Unit::Ratio),
                    Unit::None => Some(Unit::None),
                    _ => None,
                },
                "histogram_quantile" => {
                    let vs = selectors(call.args.args.get(1)?).into_iter().next()?;
                    let (metric, _) = known.resolve(&selector_name(vs)?)?;
                    Some(metric.unit)
                }
                "absent" | "absent_over_time" | "count_over_time" | "resets" | "changes" => Some(Unit::None),
                "predict_linear" | "increase" | "delta" | "abs" | "clamp_min" | "clamp_max" | "clamp"
                | "avg_over_time" | "max_over_time" | "min_over_time" | "last_over_time" | "ceil"
                | "floor" | "round" | "label_replace" => unit_of(first?, known),
                _ => None,
            }
        }
        Expr::Aggregate(agg) => match agg.op.to_string().as_str() {
            "count" | "count_values" | "group" => Some(Unit::None),
            _ => unit_of(&agg.expr, known),
        },
        Expr::Binary(b) => {
            let op = b.op.to_string();
            let lhs_lit = matches!(strip(&b.lhs), Expr::NumberLiteral(_));
            let rhs_lit = matches!(strip(&b.rhs), Expr::NumberLiteral(_));
            if b.op.is_comparison_operator() || b.op.is_set_operator() {
                return if lhs_lit { unit_of(&b.rhs, known) } else { unit_of(&b.lhs, known) };
            }
            match op.as_str() {
                "+" | "-" | "*" if rhs_lit => unit_of(&b.lhs, known),
                "+" | "-" | "*" if lhs_lit => unit_of(&b.rhs, known),
                "/" if rhs_lit => unit_of(&b.lhs, known),
                "+" | "-" => {
                    let (l, r) = (unit_of(&b.lhs, known)?, unit_of(&b.rhs, known)?);
                    (l == r).then_some(l)
                }
                "/" => {
                    let (l, r) = (unit_of(&b.lhs, known)?, unit_of(&b.rhs, known)?);
                    (l == r).then_some(Unit::Ratio)
                }
                _ => None,
            }
        }
    }
}

/// The expression without enclosing parentheses.
pub fn strip(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(p) => strip(&p.expr),
        other => other,
    }
}

/// The longest range window (`[5m]`) in the expression.
pub fn max_range(expr: &Expr) -> Duration {
    let mut max = Duration::ZERO;
    visit(expr, &mut |e| {
        if let Expr::MatrixSelector(ms) = e {
            max = max.max(ms.range);
        }
        if let Expr::Subquery(sq) = e {
            max = max.max(sq.range);
        }
    });
    max
}

/// The largest offset in the expression.
pub fn max_offset(expr: &Expr) -> Duration {
    let mut max = Duration::ZERO;
    visit(expr, &mut |e| {
        let offset = match e {
            Expr::VectorSelector(vs) => vs.offset.as_ref(),
            Expr::MatrixSelector(ms) => ms.vs.offset.as_ref(),
            _ => None,
        };
        if let Some(Offset::Pos(d)) = offset {
            max = max.max(*d);
        }
    });
    max
}

/// Whether any selector already has an offset or `@`.
pub fn has_offset_or_at(expr: &Expr) -> bool {
    selectors(expr).iter().any(|vs| vs.offset.is_some() || vs.at.is_some())
}

fn visit(expr: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(expr);
    match expr {
        Expr::Call(call) => call.args.args.iter().for_each(|a| visit(a, f)),
        Expr::Aggregate(agg) => {
            if let Some(param) = &agg.param {
                visit(param, f);
            }
            visit(&agg.expr, f);
        }
        Expr::Binary(b) => {
            visit(&b.lhs, f);
            visit(&b.rhs, f);
        }
        Expr::Paren(p) => visit(&p.expr, f),
        Expr::Unary(u) => visit(&u.expr, f),
        Expr::Subquery(s) => visit(&s.expr, f),
        _ => {}
    }
}

/// The expression with every selector shifted back by `offset`.
pub fn with_offset(expr: &Expr, offset: Duration) -> Expr {
    let mut out = expr.clone();
    shift(&mut out, offset);
    out
}

fn shift(expr: &mut Expr, offset: Duration) {
    match expr {
        Expr::VectorSelector(vs) => vs.offset = Some(Offset::Pos(offset)),
        Expr::MatrixSelector(ms) => ms.vs.offset = Some(Offset::Pos(offset)),
        Expr::Call(call) => call.args.args.iter_mut().for_each(|a| shift(a, offset)),
        Expr::Aggregate(agg) => shift(&mut agg.expr, offset),
        Expr::Binary(b) => {
            shift(&mut b.lhs, offset);
            shift(&mut b.rhs, offset);
        }
        Expr::Paren(p) => shift(&mut p.expr, offset),
        Expr::Unary(u) => shift(&mut u.expr, offset),
        Expr::Subquery(s) => s.offset = Some(Offset::Pos(offset)),
        _ => {}
    }
}

/// The expression with `extra` added to every selector (vector, range and
/// inside subqueries) that lacks an identical matcher; used to scope
/// dashboard queries to template variables on the AST, never by splicing
/// text.
pub fn with_matchers(expr: &Expr, extra: &[Matcher]) -> Expr {
    let mut out = expr.clone();
    add_matchers(&mut out, extra);
    out
}

fn add_to_selector(vs: &mut VectorSelector, extra: &[Matcher]) {
    for m in extra {
        if !vs.matchers.matchers.contains(m) {
            vs.matchers.matchers.push(m.clone());
        }
        for group in &mut vs.matchers.or_matchers {
            if !group.contains(m) {
                group.push(m.clone());
            }
        }
    }
}

fn add_matchers(expr: &mut Expr, extra: &[Matcher]) {
    match expr {
        Expr::VectorSelector(vs) => add_to_selector(vs, extra),
        Expr::MatrixSelector(ms) => add_to_selector(&mut ms.vs, extra),
        Expr::Call(call) => call.args.args.iter_mut().for_each(|a| add_matchers(a, extra)),
        Expr::Aggregate(agg) => {
            add_matchers(&mut agg.expr, extra);
            if let Some(param) = &mut agg.param {
                add_matchers(param, extra);
            }
        }
        Expr::Binary(b) => {
            add_matchers(&mut b.lhs, extra);
            add_matchers(&mut b.rhs, extra);
        }
        Expr::Paren(p) => add_matchers(&mut p.expr, extra),
        Expr::Unary(u) => add_matchers(&mut u.expr, extra),
        Expr::Subquery(s) => add_matchers(&mut s.expr, extra),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Whether a selector's matchers accept this label set.
pub fn matches(vs: &VectorSelector, labels: &std::collections::BTreeMap<String, String>) -> bool {
    if let Some(name) = selector_name_ref(vs)
        && labels.get("__name__").map(String::as_str) != Some(name)
    {
        return false;
    }
    vs.matchers.matchers.iter().all(|m: &Matcher| {
        let value = labels.get(&m.name).map(String::as_str).unwrap_or("");
        m.is_match(value)
    })
}

/// Parses a Prometheus duration (`30s`, `5m`, `1h30m`, `1w`); `0` is zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration {text:?}; expected a Prometheus duration such as 30s, 5m, 1h30m, 1d or 1w")
    };
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let units: [(&str, u64); 7] = [
        ("ms", 1),
        ("s", 1000),
        ("m", 60_000),
        ("h", 3_600_000),
        ("d", 86_400_000),
        ("w", 604_800_000),
        ("y", 31_536_000_000),
    ];
    let mut rest = text;
    let mut total: u64 = 0;
    let mut last_rank = usize::MAX;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (rank, (unit, ms)) = units
            .iter()
            .enumerate()
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())
            .ok_or_else(bad)?;
        // Prometheus wants units from largest to smallest (1h30m, not 30m1h).
        let order = [6usize, 5, 4, 3, 2, 1, 0];
        let position = order.iter().position(|r| *r == rank).unwrap_or(0);
        if last_rank != usize::MAX && position <= last_rank {
            return Err(bad());
        }
        last_rank = position;
        total = total.checked_add(number.checked_mul(*ms).ok_or_else(bad)?).ok_or_else(bad)?;
        rest = &rest[unit.len()..];
    }
    Ok(Duration::from_millis(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::format_duration;
    use crate::known::{Metric, Source};

    fn known() -> Known {
        let mut known = Known::catalog();
        known.insert(Metric {
            name: "http_request_duration_seconds".into(),
            kind: MetricType::Histogram,
            unit: Unit::Seconds,
            labels: vec!["method".into(), "route".into()],
            help: "h".into(),
            source: Source::Record,
        });
        known
    }

    fn issues(text: &str) -> Vec<String> {
        check(&parse(text).expect("parses"), &known()).into_iter().map(|i| i.message).collect()
    }

    #[test]
    fn unknown_metric_gets_a_suggestion() {
        assert_eq!(
            issues("node_memroy_MemAvailable_bytes / node_memory_MemTotal_bytes"),
            vec![
                "unknown metric `node_memroy_MemAvailable_bytes`: not in the exporter catalog, the business metrics of the exporter config, `up` or this file's recording rules; did you mean `node_memory_MemAvailable_bytes`?"
            ]
        );
    }

    #[test]
    fn rate_needs_counters_and_quantiles_need_buckets() {
        assert_eq!(
            issues("rate(node_load1[5m])"),
            vec!["rate() needs a counter, but `node_load1` is a gauge; use deriv() or delta() for a gauge"]
        );
        assert_eq!(
            issues("histogram_quantile(0.9, rate(http_request_duration_seconds_count[5m]))"),
            vec![
                "histogram_quantile() needs a histogram's `_bucket` series, but `http_request_duration_seconds_count` is a histogram; use `http_request_duration_seconds_bucket`",
                "histogram_quantile() needs the `le` label; keep it in the aggregation (`sum by (le, …)`)"
            ]
        );
        assert!(
            issues("histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))")
                .is_empty()
        );
    }

    #[test]
    fn labels_are_checked() {
        assert_eq!(
            issues("node_filesystem_avail_bytes{mountpont=\"/\"}"),
            vec![
                "metric `node_filesystem_avail_bytes` has no label `mountpont` (its labels: device, fstype, mountpoint, instance, job); did you mean `mountpoint`?"
            ]
        );
        assert_eq!(
            issues("sum by (instace) (node_load1)"),
            vec![
                "`by` label `instace` is not a label of the aggregated series (instance, job); did you mean `instance`?"
            ]
        );
    }

    #[test]
    fn output_labels_and_units() {
        let k = known();
        let e = parse("1 - avg by (job, instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))")
            .expect("ok");
        assert_eq!(
            labels_of(&e, &k).map(|l| l.into_iter().collect::<Vec<_>>()),
            Some(vec!["instance".into(), "job".into()])
        );
        assert_eq!(unit_of(&e, &k), Some(Unit::Ratio));
        let e = parse("node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes").expect("ok");
        assert_eq!(unit_of(&e, &k), Some(Unit::Ratio));
        let e = parse("time() - node_boot_time_seconds").expect("ok");
        assert_eq!(unit_of(&e, &k), Some(Unit::Seconds));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(604_800)));
        assert!(parse_duration("5 m").is_err());
        assert!(parse_duration("30m1h").is_err());
        assert!(parse_duration("5").is_err());
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn offsets_are_applied_to_every_selector() {
        let e = parse("a_total / ignoring(x) rate(b_total[5m])").expect("ok");
        assert_eq!(
            with_offset(&e, Duration::from_secs(86400)).to_string(),
            "a_total offset 1d / ignoring (x) rate(b_total[5m] offset 1d)"
        );
    }

    #[test]
    fn matchers_are_added_to_every_selector() {
        let scope = selectors(&parse("x{job=~\"$job\"}").expect("ok"))[0].matchers.matchers.clone();
        let e =
            parse("sum by (job) (rate(a_total{route=\"api\"}[5m])) / max_over_time(b[1h:1m]) or vector(1)")
                .expect("ok");
        assert_eq!(
            with_matchers(&e, &scope).to_string(),
            "sum by (job) (rate(a_total{job=~\"$job\",route=\"api\"}[5m])) / max_over_time(b{job=~\"$job\"}[1h:1m]) or vector(1)"
        );
        let twice = with_matchers(&with_matchers(&e, &scope), &scope);
        assert_eq!(twice.to_string(), with_matchers(&e, &scope).to_string());
    }
}
