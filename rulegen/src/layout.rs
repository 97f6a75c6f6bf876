//! Dashboard layout: declared rows and panels plus one panel per alert
//! placement, each alerting panel carrying its alerts' thresholds converted
//! to the panel's unit; panels flow left to right on Grafana's 24-column
//! grid, so none overlap and x + w never exceeds 24.

use crate::known::Known;
use crate::model::{Alert, Board, Direction, Panel, Query, Row, Severity};
use crate::promql;
use crate::spec::{AlertSpec, PanelSpec, Spec};
use crate::yaml::{self, Problems, hint};
use opsmon_catalog::Unit;

/// Panel types rulegen renders.
pub const PANEL_TYPES: &[&str] = &["timeseries", "stat", "gauge", "bargauge"];

/// Grafana units rulegen knows how to convert thresholds into.
pub const PANEL_UNITS: &[&str] = &[
    "percentunit",
    "percent",
    "s",
    "ms",
    "dtdurations",
    "bytes",
    "decbytes",
    "Bps",
    "short",
    "none",
    "reqps",
];

/// Factor from an alert's unit to a panel unit, if they are compatible.
pub fn factor(unit: Unit, kind: &str, panel_unit: &str) -> Option<f64> {
    let relative = kind == "change";
    match (unit, panel_unit) {
        (Unit::Ratio, "percentunit") => Some(1.0),
        (Unit::Ratio, "percent") => Some(100.0),
        (Unit::None, "percentunit") if relative => Some(1.0),
        (Unit::None, "percent") if relative => Some(100.0),
        (Unit::Seconds, "s" | "dtdurations") => Some(1.0),
        (Unit::Seconds, "ms") => Some(1000.0),
        (Unit::Bytes, "bytes" | "decbytes") => Some(1.0),
        (Unit::None, "short" | "none" | "reqps") => Some(1.0),
        _ => None,
    }
}

/// Default panel unit for an alert's signal.
pub fn default_unit(unit: Unit, kind: &str) -> &'static str {
    match unit {
        Unit::Ratio => "percentunit",
        Unit::None if kind == "change" => "percentunit",
        Unit::Seconds => "s",
        Unit::Bytes => "bytes",
        Unit::None => "short",
    }
}

fn width_of(kind: &str) -> u32 {
    match kind {
        "stat" => 4,
        "gauge" => 6,
        "bargauge" => 12,
        _ => 8,
    }
}

/// Panel height (all panels alike, so lines stay aligned).
pub const PANEL_HEIGHT: u32 = 8;

struct Draft {
    title: String,
    kind: String,
    unit: String,
    width: u32,
    description: String,
    queries: Vec<Query>,
    alerts: Vec<String>,
}

/// Builds every dashboard; fills each alert's dashboard URL and place.
pub fn boards(
    p: &mut Problems,
    spec: &Spec,
    alerts: &mut [(&AlertSpec, Alert)],
    known: &Known,
    severities: &[Severity],
    grafana: &str,
    alert_names: &[String],
) -> Vec<Board> {
    let mut out = Vec::new();
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
    // Check placements first, so every unknown board or row is reported.
    for (a, _) in alerts.iter() {
        let Some(place) = &a.dashboard else { continue };
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
            continue;
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
    for board in &spec.dashboards {
        let mut rows_out = Vec::new();
        let mut next_id = 1u32;
        let mut y = 0u32;
        for row in &board.rows {
            let mut drafts: Vec<Draft> = Vec::new();
            for panel in &row.panels {
                if let Some(d) = declared(p, panel, known, alerts, alert_names) {
                    drafts.push(d);
                }
            }
            for (a, alert) in alerts.iter() {
                let Some(place) = &a.dashboard else { continue };
                if place.board.value != board.id.value || place.row.value != row.id.value {
                    continue;
                }
                let unit = place.unit.as_ref().map_or_else(
                    || default_unit(alert.threshold.unit, &alert.kind).to_owned(),
                    |u| u.value.clone(),
                );
                let i = match drafts.iter().position(|d| d.title == place.panel.value) {
                    Some(i) => i,
                    None => {
                        drafts.push(Draft {
                            title: place.panel.value.clone(),
                            kind: if alert.kind == "up" { "stat".into() } else { "timeseries".into() },
                            unit,
                            width: 0,
                            description: String::new(),
                            queries: Vec::new(),
                            alerts: Vec::new(),
                        });
                        drafts.len() - 1
                    }
                };
                let draft = &mut drafts[i];
                let Some(f) = factor(alert.threshold.unit, &alert.kind, &draft.unit) else {
                    p.at(
                        place.panel.pos,
                        &place.panel.path,
                        format!(
                            "panel `{}` shows {}, which cannot carry `{}`'s threshold in {}",
                            draft.title,
                            draft.unit,
                            alert.name,
                            crate::known::unit_word(alert.threshold.unit)
                        ),
                    );
                    continue;
                };
                let query = signal_query(alert, f);
                if !draft.queries.iter().any(|q| q.expr == query.expr) {
                    draft.queries.push(query);
                }
                if !draft.alerts.contains(&alert.name) {
                    draft.alerts.push(alert.name.clone());
                }
            }
            // Lay out.
            let row_id = next_id;
            next_id += 1;
            let row_y = y;
            y += 1;
            let (mut x, mut line_h) = (0u32, 0u32);
            let mut panels = Vec::new();
            for d in drafts {
                let w = if d.width == 0 { width_of(&d.kind) } else { d.width };
                if x + w > 24 {
                    y += line_h;
                    x = 0;
                }
                let thresholds = steps(p, &d, alerts, severities, row, board);
                let id = next_id;
                next_id += 1;
                let range = ((d.unit == "percentunit" || d.unit == "percent")
                    && d.alerts.iter().all(|n| {
                        alerts.iter().any(|(_, a)| &a.name == n && a.threshold.unit == Unit::Ratio)
                    })
                    && !d.alerts.is_empty())
                .then_some((0.0, 1.0));
                panels.push(Panel {
                    id,
                    title: d.title.clone(),
                    kind: d.kind.clone(),
                    unit: d.unit.clone(),
                    description: d.description.clone(),
                    queries: d.queries,
                    steps: thresholds.0,
                    base: thresholds.1,
                    alerts: d.alerts.clone(),
                    x,
                    y,
                    w,
                    h: PANEL_HEIGHT,
                    range,
                });
                for name in &d.alerts {
                    if let Some((_, alert)) = alerts.iter_mut().find(|(_, a)| &a.name == name)
                        && alert.dashboard_url.is_empty()
                    {
                        alert.dashboard_url =
                            format!("{grafana}/d/{}/{}?viewPanel={id}", board.uid.value, slug(&board.title));
                        alert.dashboard_place = (board.title.clone(), d.title.clone());
                    }
                }
                x += w;
                line_h = line_h.max(PANEL_HEIGHT);
            }
            if !panels.is_empty() {
                y += line_h;
            }
            rows_out.push(Row { id: row_id, title: row.title.clone(), y: row_y, panels });
        }
        out.push(Board {
            id: board.id.value.clone(),
            uid: board.uid.value.clone(),
            title: board.title.clone(),
            tags: board.tags.clone(),
            rows: rows_out,
        });
    }
    out
}

fn signal_query(alert: &Alert, factor: f64) -> Query {
    let expr = if factor == 1.0 {
        alert.signal.clone()
    } else {
        let text = format!("{} * ({})", yaml::fmt_num(factor), alert.signal);
        promql::parse(&text).map_or(text, |e| e.to_string())
    };
    let legend = match &alert.series_labels {
        Some(labels) => {
            let shown: Vec<String> =
                labels.iter().filter(|l| *l != "job").map(|l| format!("{{{{{l}}}}}")).collect();
            if shown.is_empty() { alert.name.clone() } else { shown.join(" ") }
        }
        None => alert.name.clone(),
    };
    Query { expr, legend }
}

fn declared(
    p: &mut Problems,
    panel: &PanelSpec,
    known: &Known,
    alerts: &[(&AlertSpec, Alert)],
    names: &[String],
) -> Option<Draft> {
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
            match alerts.iter().find(|(_, a)| a.name == name.value) {
                Some((_, alert)) => match factor(alert.threshold.unit, &alert.kind, &unit) {
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
    ok.then(|| Draft {
        title: panel.title.value.clone(),
        kind: panel.kind.value.clone(),
        unit,
        width,
        description: panel.description.clone().unwrap_or_default(),
        queries,
        alerts: attached,
    })
}

/// Threshold steps of a panel: ascending values in the panel's unit, each
/// coloured by the severity it reaches; the base colour is the healthy one
/// for "above" alerts and the worst one for "below" alerts.
fn steps(
    p: &mut Problems,
    d: &Draft,
    alerts: &[(&AlertSpec, Alert)],
    severities: &[Severity],
    row: &crate::spec::RowSpec,
    board: &crate::spec::BoardSpec,
) -> (Vec<(f64, String)>, String) {
    let mut marks: Vec<(f64, usize, Direction)> = Vec::new();
    for name in &d.alerts {
        let Some((_, alert)) = alerts.iter().find(|(_, a)| &a.name == name) else { continue };
        let Some(f) = factor(alert.threshold.unit, &alert.kind, &d.unit) else { continue };
        let rank = severities.iter().position(|s| s.name == alert.severity).unwrap_or(severities.len());
        marks.push((alert.threshold.value * f, rank, alert.threshold.direction));
    }
    if marks.is_empty() {
        return (Vec::new(), "green".into());
    }
    let direction = marks[0].2;
    if marks.iter().any(|m| m.2 != direction) {
        p.at(
            row.id.pos,
            &row.id.path,
            format!(
                "panel `{}` on dashboard `{}` mixes alerts that fire above and below their thresholds; give them separate panels",
                d.title, board.id.value
            ),
        );
    }
    marks.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    marks.dedup_by(|b, a| a.0 == b.0);
    let color = |rank: usize| severities.get(rank).map_or("red".to_owned(), |s| s.color.clone());
    // Several alerts on one panel: the lowest threshold of "below" alerts
    // colours the base, and each step takes the colour of what lies above it.
    match direction {
        Direction::Above => (marks.iter().map(|m| (m.0, color(m.1))).collect(), "green".into()),
        Direction::Below => {
            let steps = marks
                .iter()
                .enumerate()
                .map(|(i, m)| (m.0, marks.get(i + 1).map_or("green".to_owned(), |n| color(n.1))))
                .collect();
            (steps, color(marks[0].1))
        }
    }
}

/// Grafana's URL slug of a title.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}
