//! `kind: quantile`: `histogram_quantile` over a histogram family's
//! buckets, compared with a threshold in the histogram's unit.

use super::{Built, Comparison, KindBuild};
use crate::diagnostics::{Problems, hint};
use crate::format::{fmt_num, format_duration};
use crate::known::{self, Known};
use crate::model::Kind;
use crate::promql;
use crate::spec::{AlertSpec, At, QuantileKind};
use crate::validate::expressions::expression;
use crate::validate::limits;
use crate::validate::thresholds::{guard_of, record_name, threshold_of};
use crate::yaml;
use opsmon_catalog::MetricType;
use promql_parser::parser::Expr;

impl KindBuild for QuantileKind {
    const KIND: Kind = Kind::Quantile;

    fn build(&self, p: &mut Problems, a: &AlertSpec, known: &Known) -> Option<Built> {
        let record = record_name(p, self.record.as_ref())?;
        let (h, q) = (&self.histogram, &self.quantile);
        let window = limits::duration_within(p, &self.window, &limits::RANGE)?;
        if !(q.value > 0.0 && q.value < 1.0) {
            p.at(
                q.pos,
                &q.path,
                format!("quantile {} must be between 0 and 1 (exclusive)", fmt_num(q.value)),
            );
            return None;
        }
        if !limits::expression_size(p, h) {
            return None;
        }
        let Ok(Expr::VectorSelector(vs)) = promql::parse(&h.value) else {
            p.at(
                h.pos,
                &h.path,
                "expected a histogram selector such as http_request_duration_seconds{route!=\"/health\"}",
            );
            return None;
        };
        let name = promql::selector_name(&vs)?;
        let metric = match known.resolve(&name) {
            Some((m, known::Part::Plain)) if m.kind == MetricType::Histogram => m.clone(),
            Some((m, _)) => {
                p.at(
                    h.pos,
                    &h.path,
                    format!(
                        "`{name}` is a {}, not a histogram family (name the family without _bucket)",
                        m.kind
                    ),
                );
                return None;
            }
            None => {
                let names: Vec<String> = known
                    .iter()
                    .filter(|m| m.kind == MetricType::Histogram)
                    .map(|m| m.name.clone())
                    .collect();
                p.at(
                    yaml::pos_within(&h.node, &h.value, &name),
                    &h.path,
                    format!("unknown histogram `{name}`{}", hint(&name, names.iter().map(String::as_str))),
                );
                return None;
            }
        };
        let by = self
            .by
            .as_ref()
            .map_or_else(|| vec!["job".to_owned(), "instance".to_owned()], |b| b.value.clone());
        let mut bucket = vs;
        bucket.name = Some(format!("{name}_bucket"));
        let sig_text = format!(
            "histogram_quantile({}, sum by (le{}) (rate({}[{}])))",
            fmt_num(q.value),
            by.iter().map(|l| format!(", {l}")).collect::<String>(),
            bucket,
            format_duration(window)
        );
        let at = At { value: sig_text, pos: h.pos, path: h.path.clone(), node: h.node.clone() };
        let sig = expression(p, &at, known)?;
        let threshold = threshold_of(p, a, &self.threshold, Some(metric.unit), None, false)?;
        let guard = guard_of(p, a, self.volume_guard.as_ref(), None, known)?;
        Comparison::direct(sig, threshold, guard, record).finish(p, a, known)
    }
}
