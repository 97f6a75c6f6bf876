//! `kind: predict`: `predict_linear` of a gauge over `window`, `horizon`
//! ahead, compared with a threshold (which may be negative: a prediction
//! crosses zero).

use super::{Built, KindBuild};
use crate::diagnostics::Problems;
use crate::format::{fmt_num, format_duration};
use crate::known::Known;
use crate::model::Kind;
use crate::promql;
use crate::spec::{AlertSpec, PredictKind};
use crate::validate::expressions::{duration, reparse, signal};
use crate::validate::limits;
use crate::validate::thresholds::threshold_of;
use opsmon_catalog::MetricType;
use promql_parser::parser::Expr;

impl KindBuild for PredictKind {
    const KIND: Kind = Kind::Predict;

    fn build(&self, p: &mut Problems, a: &AlertSpec, known: &Known) -> Option<Built> {
        let s = &self.signal;
        let sig = signal(p, s, known)?;
        let window = limits::duration_within(p, &self.window, &limits::RANGE)?;
        let horizon = duration(p, &self.horizon)?;
        let Expr::VectorSelector(vs) = promql::strip(&sig) else {
            p.at(
                s.pos,
                &s.path,
                "predict needs a plain gauge selector such as node_filesystem_avail_bytes{fstype!=\"tmpfs\"}",
            );
            return None;
        };
        let name = promql::selector_name(vs)?;
        if let Some((m, _)) = known.resolve(&name)
            && m.kind != MetricType::Gauge
        {
            p.at(s.pos, &s.path, format!("predict_linear() needs a gauge, but `{name}` is a {}", m.kind));
            return None;
        }
        let sig_text = format!("predict_linear({vs}[{}], {})", format_duration(window), horizon.as_secs());
        let sig = reparse(p, a, &sig_text, known)?;
        let threshold = threshold_of(p, a, &self.threshold, promql::unit_of(&sig, known), None, true)?;
        let text = format!("{sig} {} {}", threshold.direction.op(), fmt_num(threshold.value));
        let expr = reparse(p, a, &text, known)?;
        Some(Built::unguarded(expr, sig, threshold))
    }
}
