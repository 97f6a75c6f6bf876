//! `kind: staleness`: `time() - timestamp` above a maximum age.

use super::{Built, KindBuild};
use crate::diagnostics::Problems;
use crate::format::fmt_num;
use crate::known::{self, Known};
use crate::model::{Direction, Kind, Threshold};
use crate::promql;
use crate::spec::{AlertSpec, StalenessKind};
use crate::validate::expressions::{duration, reparse, signal};
use crate::validate::thresholds::operand;
use opsmon_catalog::Unit;

impl KindBuild for StalenessKind {
    const KIND: Kind = Kind::Staleness;

    fn build(&self, p: &mut Problems, a: &AlertSpec, known: &Known) -> Option<Built> {
        let ts = signal(p, &self.timestamp, known)?;
        let max_age = duration(p, &self.max_age)?;
        if let Some(unit) = promql::unit_of(&ts, known)
            && unit != Unit::Seconds
        {
            let at = &self.timestamp;
            p.at(
                at.pos,
                &at.path,
                format!("a timestamp is in seconds, but this signal is in {}", known::unit_word(unit)),
            );
            return None;
        }
        let sig = reparse(p, a, &format!("time() - {}", operand(&ts)), known)?;
        let threshold = Threshold {
            value: max_age.as_secs_f64(),
            direction: Direction::Above,
            unit: Unit::Seconds,
            inclusive: false,
            baseline: None,
        };
        let text = format!("{sig} > {}", fmt_num(threshold.value));
        let expr = reparse(p, a, &text, known)?;
        Some(Built::unguarded(expr, sig, threshold))
    }
}
