//! `kind: ratio`: numerator / denominator compared with a ratio threshold;
//! the volume guard defaults to the denominator.

use super::{Built, Comparison, KindBuild};
use crate::diagnostics::Problems;
use crate::known::Known;
use crate::model::Kind;
use crate::promql;
use crate::spec::{AlertSpec, RatioKind};
use crate::validate::expressions::{reparse, signal};
use crate::validate::thresholds::{guard_of, operand, record_name, threshold_of};
use opsmon_catalog::Unit;
use promql_parser::parser::Expr;

impl KindBuild for RatioKind {
    const KIND: Kind = Kind::Ratio;

    fn build(&self, p: &mut Problems, a: &AlertSpec, known: &Known) -> Option<Built> {
        let record = record_name(p, self.record.as_ref())?;
        // Every part is checked even when an earlier one failed, so all
        // problems of the alert are reported at once.
        let n = signal(p, &self.numerator, known);
        let d = signal(p, &self.denominator, known);
        let ratio = match (n, d) {
            (Some(n), Some(d)) => reparse(p, a, &format!("{} / {}", operand(&n), operand(&d)), known),
            _ => None,
        };
        let threshold = threshold_of(p, a, &self.threshold, None, Some(Unit::Ratio), false);
        let denominator = match ratio.as_ref().map(promql::strip) {
            Some(Expr::Binary(b)) => Some((*b.rhs).clone()),
            _ => None,
        };
        // Without a ratio there is no denominator to default the guard to.
        let guard = if ratio.is_none() && self.volume_guard.as_ref().is_some_and(|g| g.signal.is_none()) {
            None
        } else {
            guard_of(p, a, self.volume_guard.as_ref(), denominator.as_ref(), known)
        };
        let (value, threshold, guard) = (ratio?, threshold?, guard?);
        Comparison::direct(value, threshold, guard, record).finish(p, a, known)
    }
}
