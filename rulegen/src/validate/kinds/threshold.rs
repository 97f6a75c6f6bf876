//! `kind: threshold`: a signal compared with a threshold in its own unit.

use super::{Built, Comparison, KindBuild};
use crate::diagnostics::Problems;
use crate::known::Known;
use crate::model::Kind;
use crate::promql;
use crate::spec::{AlertSpec, ThresholdKind};
use crate::validate::expressions::signal;
use crate::validate::thresholds::{guard_of, record_name, threshold_of};
use opsmon_catalog::Unit;

impl KindBuild for ThresholdKind {
    const KIND: Kind = Kind::Threshold;

    fn build(&self, p: &mut Problems, a: &AlertSpec, known: &Known) -> Option<Built> {
        let record = record_name(p, self.record.as_ref())?;
        // Every part is checked even when an earlier one failed, so all
        // problems of the alert are reported at once.
        let sig = signal(p, &self.signal, known);
        let inferred = sig.as_ref().and_then(|s| promql::unit_of(s, known));
        // No signal to infer the unit from: check the rest without it.
        let fixed = (sig.is_none() && self.threshold.unit.is_none()).then_some(Unit::None);
        let threshold = threshold_of(p, a, &self.threshold, inferred, fixed, false);
        let guard = guard_of(p, a, self.volume_guard.as_ref(), None, known);
        let (value, threshold, guard) = (sig?, threshold?, guard?);
        Comparison::direct(value, threshold, guard, record).finish(p, a, known)
    }
}
