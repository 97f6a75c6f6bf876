//! Bounds on what `rulegen check` accepts, so that no threshold file makes
//! it (or the promtool tests it writes) run for minutes. An alert's promtool
//! scenario simulates its baseline offset, longest range window and `for`
//! at one sample a minute, and rulegen evaluates the alert at every minute
//! of the firing phase; checking an expression costs more than linear time
//! in its length. The bounds sit well above what alerting rules use.

use crate::diagnostics::{Pos, Problems};
use crate::format::format_duration;
use crate::promql;
use crate::spec::At;
use crate::yaml;
use promql_parser::parser::Expr;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

/// One bound on a duration.
pub struct Limit {
    /// What is bounded, for the message.
    what: &'static str,
    /// The bound.
    max: Duration,
    /// Why, and what to write instead.
    why: &'static str,
}

/// `for`: a condition that must hold longer than a day restarts on any
/// single false evaluation, so it rarely fires at all.
pub const FOR: Limit = Limit {
    what: "`for`",
    max: DAY,
    why: "a condition that must hold longer restarts on any single blip and rarely fires; average the signal over a longer range instead",
};

/// Range windows (`[5m]`, `window:`): a week covers multi-window burn-rate
/// alerts (1h to 3d windows).
pub const RANGE: Limit = Limit {
    what: "range window",
    max: Duration::from_secs(7 * 86_400),
    why: "the promtool test simulates every minute of it",
};

/// Offsets (`offset 1w`, `baseline.offset`): week over week is the longest
/// comparison alerting needs.
pub const OFFSET: Limit = Limit {
    what: "offset",
    max: Duration::from_secs(7 * 86_400),
    why: "the promtool test simulates every minute of it",
};

/// PromQL length in bytes; alerting expressions are a few hundred (the
/// longest in deploy/thresholds.yaml is 138).
pub const EXPRESSION_BYTES: usize = 4096;

/// Reports `value` (written as `shown`) at `pos` when it exceeds `limit`.
fn within(
    p: &mut Problems,
    pos: Pos,
    path: &str,
    value: Duration,
    shown: &str,
    limit: &Limit,
) -> Option<Duration> {
    if value <= limit.max {
        return Some(value);
    }
    let max = format_duration(limit.max);
    p.at(
        pos,
        path,
        format!(
            "{} {shown} is longer than rulegen's limit of {max}; use at most {max} ({})",
            limit.what, limit.why
        ),
    );
    None
}

/// Parses a duration field and bounds it.
pub fn duration_within(p: &mut Problems, at: &At<String>, limit: &Limit) -> Option<Duration> {
    let value = duration(p, at)?;
    within(p, at.pos, &at.path, value, &at.value, limit)
}

/// Bounds the longest range window and offset inside an expression,
/// pointing at the duration as written.
pub fn expression_spans(p: &mut Problems, at: &At<String>, expr: &Expr) -> bool {
    let spans =
        [(promql::max_range(expr), &RANGE, &['[', ':'][..]), (promql::max_offset(expr), &OFFSET, &[' '][..])];
    let mut ok = true;
    for (value, limit, openers) in spans {
        if value <= limit.max {
            continue;
        }
        let shown = written(&at.value, openers, value).unwrap_or_else(|| format_duration(value));
        let pos = yaml::pos_within(&at.node, &at.value, &shown);
        ok &= within(p, pos, &at.path, value, &shown, limit).is_some();
    }
    ok
}

/// The duration literal in `text` that means `value`, as written: the word
/// after one of `openers` (`[5m]`, `[1h:1m]`, `offset 1w`).
fn written(text: &str, openers: &[char], value: Duration) -> Option<String> {
    text.split(openers)
        .skip(1)
        .map(|rest| rest.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or_default())
        .find(|word| promql::parse_duration(word) == Ok(value))
        .map(str::to_owned)
}

/// Reports PromQL text longer than [`EXPRESSION_BYTES`]; `false` then.
pub fn expression_size(p: &mut Problems, at: &At<String>) -> bool {
    if at.value.len() <= EXPRESSION_BYTES {
        return true;
    }
    p.at(
        at.pos,
        &at.path,
        format!(
            "expression of {} bytes is longer than rulegen's limit of {EXPRESSION_BYTES}; record parts of it with recording rules or simplify it",
            at.value.len()
        ),
    );
    false
}

/// A Prometheus duration.
pub fn duration(p: &mut Problems, at: &At<String>) -> Option<Duration> {
    match promql::parse_duration(&at.value) {
        Ok(d) => Some(d),
        Err(e) => {
            p.at(at.pos, &at.path, e);
            None
        }
    }
}
