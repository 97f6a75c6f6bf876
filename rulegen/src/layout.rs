//! Dashboard layout: declared rows and panels (checked by validation) plus
//! one panel per alert placement, each alerting panel carrying its alerts'
//! thresholds converted to the panel's unit; panels flow left to right on
//! Grafana's 24-column grid, so none overlap and x + w never exceeds 24.
//! Takes plain plans, returns the boards and each alert's panel link.

use crate::diagnostics::{Pos, Problems};
use crate::format::fmt_num;
use crate::model::{Board, Direction, Kind, Panel, Query, Row, Severity, Threshold};
use crate::promql;
use opsmon_catalog::Unit;
use std::collections::BTreeMap;

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
pub fn factor(unit: Unit, kind: &Kind, panel_unit: &str) -> Option<f64> {
    let relative = kind.is_relative();
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
pub fn default_unit(unit: Unit, kind: Kind) -> &'static str {
    match unit {
        Unit::Ratio => "percentunit",
        Unit::None if kind.is_relative() => "percentunit",
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

/// Where in the threshold file a layout problem points.
#[derive(Debug, Clone)]
pub struct Spot {
    /// Position.
    pub pos: Pos,
    /// Field path.
    pub path: String,
}

/// What layout needs of a validated alert.
#[derive(Debug, Clone)]
pub struct Plotted {
    /// Alert name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// Severity tier name.
    pub severity: String,
    /// Threshold on `signal`.
    pub threshold: Threshold,
    /// What dashboards plot.
    pub signal: String,
    /// Labels its series carry, when known.
    pub series_labels: Option<Vec<String>>,
    /// Where it asked to be shown.
    pub placement: Option<Placement>,
}

/// An alert's `dashboard: {board, row, panel, unit}`.
#[derive(Debug, Clone)]
pub struct Placement {
    /// Dashboard id.
    pub board: String,
    /// Row id.
    pub row: String,
    /// Panel title (a declared panel or a new one).
    pub panel: String,
    /// Grafana unit of a new panel.
    pub unit: Option<String>,
    /// The `panel` field.
    pub at: Spot,
}

/// A declared dashboard, checked.
#[derive(Debug, Clone)]
pub struct BoardPlan {
    /// Identifier alerts refer to.
    pub id: String,
    /// Grafana uid.
    pub uid: String,
    /// Title.
    pub title: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Rows in order.
    pub rows: Vec<RowPlan>,
}

/// A declared row, checked.
#[derive(Debug, Clone)]
pub struct RowPlan {
    /// Identifier alerts refer to.
    pub id: String,
    /// Title.
    pub title: String,
    /// The row's `id` field.
    pub at: Spot,
    /// Its declared panels that checked out.
    pub panels: Vec<PanelPlan>,
}

/// A panel before layout.
#[derive(Debug, Clone)]
pub struct PanelPlan {
    /// Title.
    pub title: String,
    /// Grafana panel type.
    pub kind: String,
    /// Grafana unit.
    pub unit: String,
    /// Width in columns; 0 = the type's default.
    pub width: u32,
    /// Description.
    pub description: String,
    /// Queries.
    pub queries: Vec<Query>,
    /// Alerts whose thresholds it shows.
    pub alerts: Vec<String>,
}

/// The first panel that shows an alert.
#[derive(Debug, Clone)]
pub struct PanelLink {
    /// `<grafana>/d/<uid>/<slug>?viewPanel=<id>`.
    pub url: String,
    /// Dashboard title.
    pub board: String,
    /// Panel title.
    pub panel: String,
}

/// Laid-out dashboards and, per alert name, the first panel showing it.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Dashboards in declared order.
    pub boards: Vec<Board>,
    /// Alert name → its panel.
    pub links: BTreeMap<String, PanelLink>,
}

/// Lays out every dashboard.
pub fn boards(
    p: &mut Problems,
    plans: &[BoardPlan],
    alerts: &[Plotted],
    severities: &[Severity],
    grafana: &str,
) -> Layout {
    let mut out = Vec::new();
    let mut links = BTreeMap::new();
    for board in plans {
        let mut rows_out = Vec::new();
        let mut next_id = 1u32;
        let mut y = 0u32;
        for row in &board.rows {
            let mut drafts = row.panels.clone();
            for alert in alerts {
                let Some(place) = &alert.placement else { continue };
                if place.board != board.id || place.row != row.id {
                    continue;
                }
                let unit = place
                    .unit
                    .clone()
                    .unwrap_or_else(|| default_unit(alert.threshold.unit, alert.kind).to_owned());
                let i = match drafts.iter().position(|d| d.title == place.panel) {
                    Some(i) => i,
                    None => {
                        drafts.push(PanelPlan {
                            title: place.panel.clone(),
                            kind: if alert.kind == Kind::Up { "stat".into() } else { "timeseries".into() },
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
                        place.at.pos,
                        &place.at.path,
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
                    && d.alerts
                        .iter()
                        .all(|n| alerts.iter().any(|a| &a.name == n && a.threshold.unit == Unit::Ratio))
                    && !d.alerts.is_empty())
                .then_some((0.0, 1.0));
                for name in &d.alerts {
                    links.entry(name.clone()).or_insert_with(|| PanelLink {
                        url: format!("{grafana}/d/{}/{}?viewPanel={id}", board.uid, slug(&board.title)),
                        board: board.title.clone(),
                        panel: d.title.clone(),
                    });
                }
                panels.push(Panel {
                    id,
                    title: d.title,
                    kind: d.kind,
                    unit: d.unit,
                    description: d.description,
                    queries: d.queries,
                    steps: thresholds.0,
                    base: thresholds.1,
                    alerts: d.alerts,
                    x,
                    y,
                    w,
                    h: PANEL_HEIGHT,
                    range,
                });
                x += w;
                line_h = line_h.max(PANEL_HEIGHT);
            }
            if !panels.is_empty() {
                y += line_h;
            }
            rows_out.push(Row { id: row_id, title: row.title.clone(), y: row_y, panels });
        }
        out.push(Board {
            id: board.id.clone(),
            uid: board.uid.clone(),
            title: board.title.clone(),
            tags: board.tags.clone(),
            rows: rows_out,
        });
    }
    Layout { boards: out, links }
}

/// The query that plots an alert's signal scaled to a panel's unit.
pub fn signal_query(alert: &Plotted, factor: f64) -> Query {
    let expr = if factor == 1.0 {
        alert.signal.clone()
    } else {
        let text = format!("{} * ({})", fmt_num(factor), alert.signal);
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

/// Threshold steps of a panel: ascending values in the panel's unit, each
/// coloured by the severity it reaches; the base colour is the healthy one
/// for "above" alerts and the worst one for "below" alerts (red for health
/// signals of kind up, so a failing collector or query never shows orange).
fn steps(
    p: &mut Problems,
    d: &PanelPlan,
    alerts: &[Plotted],
    severities: &[Severity],
    row: &RowPlan,
    board: &BoardPlan,
) -> (Vec<(f64, String)>, String) {
    let mut marks: Vec<(f64, usize, Direction)> = Vec::new();
    for name in &d.alerts {
        let Some(alert) = alerts.iter().find(|a| &a.name == name) else { continue };
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
            row.at.pos,
            &row.at.path,
            format!(
                "panel `{}` on dashboard `{}` mixes alerts that fire above and below their thresholds; give them separate panels",
                d.title, board.id
            ),
        );
    }
    // A health signal (kind up: collector success, query success, a probe)
    // at 0 means something is broken, whatever tier pages for it: red.
    let health = d.alerts.iter().all(|n| alerts.iter().any(|a| &a.name == n && a.kind == Kind::Up));
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
            (steps, if health { "red".to_owned() } else { color(marks[0].1) })
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
