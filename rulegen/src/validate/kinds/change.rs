//! `kind: change`: the signal relative to itself `offset` ago, compared
//! with a factor (0.5 = dropped by half).

use super::{Built, Comparison, KindBuild};
use crate::diagnostics::Problems;
use crate::format::fmt_num;
use crate::known::Known;
use crate::model::{Baseline, Direction, Kind, Threshold};
use crate::promql;
use crate::spec::{AlertSpec, At, ChangeKind};
use crate::validate::expressions::{reparse, signal};
use crate::validate::limits;
use crate::validate::thresholds::{direction, guard_base, guard_of, operand, record_name};
use opsmon_catalog::Unit;

impl KindBuild for ChangeKind {
    const KIND: Kind = Kind::Change;

    fn build(&self, p: &mut Problems, a: &AlertSpec, known: &Known) -> Option<Built> {
        let record = record_name(p, self.record.as_ref())?;
        let s = &self.signal;
        let sig = signal(p, s, known)?;
        if promql::has_offset_or_at(&sig) {
            p.at(
                s.pos,
                &s.path,
                "the signal must not use `offset` or `@`; the baseline offset is applied by rulegen",
            );
            return None;
        }
        let b = &self.baseline;
        let offset = limits::duration_within(p, &b.offset, &limits::OFFSET)?;
        if offset.is_zero() {
            p.at(b.offset.pos, &b.offset.path, "the baseline offset must be longer than zero");
            return None;
        }
        let direction = direction(&b.direction);
        let factor = b.factor.value;
        let sensible = match direction {
            Direction::Below => factor > 0.0 && factor < 1.0,
            Direction::Above => factor > 1.0,
        };
        if !sensible {
            let range = if direction == Direction::Below {
                "between 0 and 1 (0.5 = dropped by half)"
            } else {
                "above 1 (1.5 = up by half)"
            };
            p.at(b.factor.pos, &b.factor.path, format!("factor {} must be {range}", fmt_num(factor)));
            return None;
        }
        let fallback = positive(
            p,
            b.fallback.as_ref(),
            "fallback",
            "the baseline assumed before the offset has data, e.g. the target",
        );
        let floor = positive(
            p,
            b.floor.as_ref(),
            "floor",
            "the smallest baseline, e.g. 0.05 for a share that may be 0",
        );
        let (fallback, floor) = (fallback?, floor?);
        let past = operand(&promql::with_offset(&sig, offset));
        // Without history (the first week after launch) the offset returns
        // nothing; the fallback stands in, with the signal's own labels.
        let inner = match fallback {
            Some(level) => format!("{past} or {} * 0 + {}", operand(&sig), fmt_num(level)),
            None => past,
        };
        // A baseline of 0 would make any value an infinite change.
        let base = match floor {
            Some(level) => format!("clamp_min({inner}, {})", fmt_num(level)),
            None if fallback.is_some() => format!("({inner})"),
            None => inner,
        };
        let ratio = reparse(p, a, &format!("{} / {base}", operand(&sig)), known)?;
        let guard = guard_of(p, a, self.volume_guard.as_ref(), None, known)?;
        let threshold = Threshold {
            value: factor,
            direction,
            unit: Unit::None,
            inclusive: false,
            baseline: Some(Baseline { offset, fallback, floor }),
        };
        // The baseline phase holds the signal at a level the factor scales.
        let level =
            if promql::unit_of(&sig, known) == Some(Unit::Ratio) { 0.5 } else { guard_base(guard.as_ref()) };
        let inclusive = b.inclusive.as_ref().is_some_and(|i| i.value);
        Comparison { value: ratio, driven: sig, threshold, guard, record, baseline: Some(level), inclusive }
            .finish(p, a, known)
    }
}

/// An optional baseline level that must be above zero.
fn positive(p: &mut Problems, value: Option<&At<f64>>, field: &str, meaning: &str) -> Option<Option<f64>> {
    let Some(v) = value else { return Some(None) };
    if v.value <= 0.0 || !v.value.is_finite() {
        p.at(v.pos, &v.path, format!("baseline {field} {} must be above 0 ({meaning})", fmt_num(v.value)));
        return None;
    }
    Some(Some(v.value))
}
