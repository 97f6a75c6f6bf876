//! `kind: up`: a target that stopped answering (`signal < 1`), or whose
//! series vanished (`absent: true`).

use super::{Built, KindBuild};
use crate::diagnostics::Problems;
use crate::known::Known;
use crate::model::{Direction, Kind, Threshold};
use crate::promql;
use crate::spec::{AlertSpec, UpKind};
use crate::validate::expressions::{reparse, signal};
use crate::validate::thresholds::comparable;
use opsmon_catalog::Unit;
use promql_parser::parser::Expr;

impl KindBuild for UpKind {
    const KIND: Kind = Kind::Up;

    fn build(&self, p: &mut Problems, a: &AlertSpec, known: &Known) -> Option<Built> {
        let s = &self.signal;
        let sig = signal(p, s, known)?;
        let absent = self.absent.as_ref().is_some_and(|b| b.value);
        let text = if absent {
            format!("{} < 1 or absent({sig})", comparable(&sig))
        } else {
            format!("{} < 1", comparable(&sig))
        };
        let expr = reparse(p, a, &text, known)?;
        if absent && !matches!(promql::strip(&sig), Expr::VectorSelector(_)) {
            p.at(s.pos, &s.path, "`absent: true` needs a plain selector as the signal");
            return None;
        }
        let threshold = Threshold {
            value: 1.0,
            direction: Direction::Below,
            unit: Unit::None,
            inclusive: false,
            baseline: None,
        };
        Some(Built {
            rendered: expr.to_string(),
            expr,
            driven: sig.clone(),
            signal: sig.to_string(),
            threshold,
            guard: None,
            record: None,
            levels: (None, 1.0, 0.0),
        })
    }
}
