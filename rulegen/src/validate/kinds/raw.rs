//! `kind: raw`: a hand-written `value > N` (or <, >=, <=); rulegen still
//! plots the value and tests the comparison.

use super::{Built, KindBuild};
use crate::diagnostics::Problems;
use crate::known::{self, Known};
use crate::model::{Direction, Kind, Threshold};
use crate::promql;
use crate::spec::{AlertSpec, RawKind};
use crate::validate::expressions::expression;
use crate::validate::thresholds::parse_unit;
use promql_parser::parser::Expr;

const NOT_A_COMPARISON: &str = "a raw expression must compare a value with a number at the top (`… > 0.05`), so rulegen can plot and test it";

impl KindBuild for RawKind {
    const KIND: Kind = Kind::Raw;

    fn build(&self, p: &mut Problems, _a: &AlertSpec, known: &Known) -> Option<Built> {
        let e = &self.expr;
        let expr = expression(p, e, known)?;
        let Expr::Binary(b) = promql::strip(&expr) else {
            p.at(e.pos, &e.path, NOT_A_COMPARISON);
            return None;
        };
        let op = b.op.to_string();
        let value = match promql::strip(&b.rhs) {
            Expr::NumberLiteral(n) if matches!(op.as_str(), ">" | ">=" | "<" | "<=") => n.val,
            _ => {
                p.at(e.pos, &e.path, NOT_A_COMPARISON);
                return None;
            }
        };
        let lhs = (*b.lhs).clone();
        let direction = if op.starts_with('>') { Direction::Above } else { Direction::Below };
        let declared = match &self.unit {
            Some(u) => Some(parse_unit(p, u)?),
            None => None,
        };
        let inferred = promql::unit_of(&lhs, known);
        let unit = match (declared, inferred) {
            (Some(d), Some(i)) if d != i => {
                p.at(
                    e.pos,
                    &e.path,
                    format!(
                        "the compared value is in {} but `unit` says {}",
                        known::unit_word(i),
                        known::unit_word(d)
                    ),
                );
                return None;
            }
            (Some(u), _) | (None, Some(u)) => u,
            (None, None) => {
                p.at(e.pos, &e.path, "give the compared value's unit (`unit: ratio|seconds|bytes|none`)");
                return None;
            }
        };
        let threshold = Threshold { value, direction, unit, inclusive: op.ends_with('='), baseline: None };
        Some(Built::unguarded(expr.clone(), lhs, threshold))
    }
}
