//! The threshold file's dashboards checked into plain layout plans: ids and
//! uids, every alert's placement, declared panels with their PromQL and the
//! alert signals they plot.

use super::limits;
use crate::diagnostics::{Problems, hint};
use crate::known::Known;
use crate::layout::{
    BoardPlan, PANEL_TYPES, PANEL_UNITS, PanelPlan, Placement, Plotted, RowPlan, Spot, factor, signal_query,
};
use crate::model::Query;
use crate::promql;
use crate::spec::{At, PanelSpec, PlacementSpec, Spec};
use crate::yaml;

fn spot<T>(at: &At<T>) -> Spot {
    Spot { pos: at.pos, path: at.path.clone() }
}

/// An alert's placement as layout reads it.
pub fn placement(place: &PlacementSpec) -> Placement {
    Placement {
        board: place.board.value.clone(),
        row: place.row.value.clone(),
        panel: place.panel.value.clone(),
        unit: place.unit.as_ref().map(|u| u.value.clone()),
        at: spot(&place.panel),
    }
}

/// Checks the declared dashboards, and the placements of the alerts that
/// validated (`placed`) against them.
pub fn plans(
    p: &mut Problems,
    spec: &Spec,
    placed: &[&PlacementSpec],
    alerts: &[Plotted],
    known: &Known,
) -> Vec<BoardPlan> {
    let alert_names: Vec<String> = spec.alerts.iter().map(|a| a.name.value.clone()).collect();
    let board_ids: Vec<&str> = spec.dashboards.iter().map(|b| b.id.value.as_str()).collect();
    let mut uids = Vec::new();
    for (i, b) in spec.dashboards.iter().enumerate() {
        if board_ids[..i].contains(&b.id.value.as_str()) {
            p.at(b.id.pos, &b.id.path, format!("duplicate dashboard id `{}`", b.id.value));
        }
        let uid_ok = !b.uid.value.is_empty()
            && b.uid.value.len() <= 40
            && b.uid.value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !uid_ok || uids.contains(&b.uid.value) {
            p.at(
                b.uid.pos,
                &b.uid.path,
                "uid must be unique, at most 40 characters of letters, digits, - and _",
            );
        }
        uids.push(b.uid.value.clone());
    }
    for place in placed {
        check_placement(p, spec, place, &board_ids);
    }
    spec.dashboards
        .iter()
        .map(|board| BoardPlan {
            id: board.id.value.clone(),
            uid: board.uid.value.clone(),
            title: board.title.clone(),
            tags: board.tags.clone(),
            rows: board
                .rows
                .iter()
                .map(|row| RowPlan {
                    id: row.id.value.clone(),
                    title: row.title.clone(),
                    at: spot(&row.id),
                    panels: row
                        .panels
                        .iter()
                        .filter_map(|panel| declared(p, panel, known, alerts, &alert_names))
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// Checks are made before layout, so every unknown board or row is reported.
fn check_placement(p: &mut Problems, spec: &Spec, place: &PlacementSpec, board_ids: &[&str]) {
    let Some(board) = spec.dashboards.iter().find(|b| b.id.value == place.board.value) else {
        p.at(
            place.board.pos,
            &place.board.path,
            format!(
                "unknown dashboard `{}`, expected one of {}{}",
                place.board.value,
                board_ids.join(", "),
                hint(&place.board.value, board_ids.iter().copied())
            ),
        );
        return;
    };
    let rows: Vec<&str> = board.rows.iter().map(|r| r.id.value.as_str()).collect();
    if !rows.contains(&place.row.value.as_str()) {
        p.at(
            place.row.pos,
            &place.row.path,
            format!(
                "dashboard `{}` has no row `{}` (rows: {}){}",
                board.id.value,
                place.row.value,
                rows.join(", "),
                hint(&place.row.value, rows.iter().copied())
            ),
        );
    }
    if let Some(u) = &place.unit
        && !PANEL_UNITS.contains(&u.value.as_str())
    {
        p.at(
            u.pos,
            &u.path,
            format!(
                "unsupported panel unit `{}`, expected one of {}{}",
                u.value,
                PANEL_UNITS.join(", "),
                hint(&u.value, PANEL_UNITS.iter().copied())
            ),
        );
    }
}

/// A declared panel, when it checks out.
fn declared(
    p: &mut Problems,
    panel: &PanelSpec,
    known: &Known,
    alerts: &[Plotted],
    names: &[String],
) -> Option<PanelPlan> {
    let mut ok = true;
    if !PANEL_TYPES.contains(&panel.kind.value.as_str()) {
        p.at(
            panel.kind.pos,
            &panel.kind.path,
            format!(
                "unknown panel type `{}`, expected one of {}{}",
                panel.kind.value,
                PANEL_TYPES.join(", "),
                hint(&panel.kind.value, PANEL_TYPES.iter().copied())
            ),
        );
        ok = false;
    }
    let unit = panel.unit.as_ref().map_or("short".to_owned(), |u| u.value.clone());
    if !PANEL_UNITS.contains(&unit.as_str()) {
        if let Some(u) = &panel.unit {
            p.at(
                u.pos,
                &u.path,
                format!(
                    "unsupported panel unit `{}`, expected one of {}{}",
                    u.value,
                    PANEL_UNITS.join(", "),
                    hint(&u.value, PANEL_UNITS.iter().copied())
                ),
            );
        }
        ok = false;
    }
    let width = match &panel.width {
        Some(w) if !(w.value >= 1.0 && w.value <= 24.0 && w.value.fract() == 0.0) => {
            p.at(w.pos, &w.path, "width must be a whole number of columns from 1 to 24");
            ok = false;
            0
        }
        Some(w) => w.value as u32,
        None => 0,
    };
    let mut queries = Vec::new();
    let mut attached = Vec::new();
    for q in &panel.queries {
        if let Some(e) = &q.expr {
            if !limits::expression_size(p, e) {
                ok = false;
                continue;
            }
            match promql::parse(&e.value) {
                Ok(expr) => {
                    for issue in promql::check(&expr, known) {
                        p.at(yaml::pos_within(&e.node, &e.value, &issue.needle), &e.path, issue.message);
                        ok = false;
                    }
                    queries
                        .push(Query { expr: expr.to_string(), legend: q.legend.clone().unwrap_or_default() });
                }
                Err(err) => {
                    p.at(e.pos, &e.path, format!("invalid PromQL: {err}"));
                    ok = false;
                }
            }
        }
        if let Some(name) = &q.alert {
            match alerts.iter().find(|a| a.name == name.value) {
                Some(alert) => match factor(alert.threshold.unit, &alert.kind, &unit) {
                    Some(f) => {
                        let mut query = signal_query(alert, f);
                        if let Some(l) = &q.legend {
                            query.legend = l.clone();
                        }
                        queries.push(query);
                        attached.push(alert.name.clone());
                    }
                    None => {
                        p.at(
                            name.pos,
                            &name.path,
                            format!(
                                "panel unit {unit} cannot show `{}` ({})",
                                name.value,
                                crate::known::unit_word(alert.threshold.unit)
                            ),
                        );
                        ok = false;
                    }
                },
                None => {
                    if !names.contains(&name.value) {
                        p.at(
                            name.pos,
                            &name.path,
                            format!(
                                "unknown alert `{}`{}",
                                name.value,
                                hint(&name.value, names.iter().map(String::as_str))
                            ),
                        );
                    }
                    ok = false;
                }
            }
        }
    }
    ok.then(|| PanelPlan {
        title: panel.title.value.clone(),
        kind: panel.kind.value.clone(),
        unit,
        width,
        description: panel.description.clone().unwrap_or_default(),
        queries,
        alerts: attached,
    })
}
