//! Grafana dashboards in the classic JSON model (schemaVersion 39): a
//! `datasource` template variable (file provisioning cannot resolve
//! `${DS_…}` inputs) followed by `job` and `instance` variables that every
//! panel query is scoped to (so several hosts never add up), stable uids and
//! panel ids, rows and panels laid out by `layout`, and each alerting
//! panel's threshold steps (raw values in the panel's unit, coloured by
//! severity in the direction that alerts).

use crate::model::{Board, Model, Panel};
use crate::promql;
use promql_parser::label::Matcher;
use serde_json::{Value, json};

/// The template variables every panel query is scoped to, in order.
pub const SCOPE_VARIABLES: &[&str] = &["job", "instance"];

/// `job=~"$job"`, `instance=~"$instance"` as matchers.
fn scope_matchers() -> Vec<Matcher> {
    let text = format!(
        "up{{{}}}",
        SCOPE_VARIABLES.iter().map(|v| format!("{v}=~\"${v}\"")).collect::<Vec<_>>().join(",")
    );
    promql::parse(&text)
        .ok()
        .and_then(|e| promql::selectors(&e).first().map(|vs| vs.matchers.matchers.clone()))
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.name != "__name__")
        .collect()
}

/// A panel query with `job=~"$job", instance=~"$instance"` on every
/// selector, rewritten on the PromQL AST. Alert rules never get these.
pub fn scoped(expr: &str) -> String {
    match promql::parse(expr) {
        Ok(parsed) => promql::with_matchers(&parsed, &scope_matchers()).to_string(),
        // Validation parsed every query already; keep the text if not.
        Err(_) => expr.to_owned(),
    }
}

/// A multi-select query variable over `up` (every scraped target has it),
/// with All matching any value, even an absent label.
fn scope_variable(name: &str, label: &str, query: &str) -> Value {
    json!({
        "allValue": ".*",
        "current": {"selected": true, "text": ["All"], "value": ["$__all"]},
        "datasource": datasource(),
        "definition": query,
        "hide": 0,
        "includeAll": true,
        "label": label,
        "multi": true,
        "name": name,
        "options": [],
        "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "regex": "",
        "skipUrlSync": false,
        "sort": 1,
        "type": "query"
    })
}

/// Schema version of the classic model written here (≤ 42).
pub const SCHEMA_VERSION: u64 = 39;

/// A threshold value without float noise (`0.85 * 100` is 85.00000000000001).
fn clean(v: f64) -> Value {
    let rounded: f64 = format!("{v:.12e}").parse().unwrap_or(v);
    if rounded == rounded.trunc() && rounded.abs() < 1e15 { json!(rounded as i64) } else { json!(rounded) }
}

fn datasource() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

fn reduce() -> Value {
    json!({"calcs": ["lastNotNull"], "fields": "", "values": false})
}

fn legend() -> Value {
    json!({"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": true})
}

/// The panel's `options` for its type.
pub fn options(panel: &Panel) -> Value {
    match panel.kind.as_str() {
        "stat" => json!({
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "percentChangeColorMode": "standard",
            "reduceOptions": reduce(),
            "showPercentChange": false,
            "textMode": "value_and_name",
            "wideLayout": true
        }),
        "gauge" => json!({
            "minVizHeight": 75,
            "minVizWidth": 75,
            "orientation": "auto",
            "reduceOptions": reduce(),
            "showThresholdLabels": false,
            "showThresholdMarkers": true,
            "sizing": "auto"
        }),
        "bargauge" => json!({
            "displayMode": "gradient",
            "legend": legend(),
            "maxVizHeight": 300,
            "minVizHeight": 16,
            "minVizWidth": 8,
            "namePlacement": "auto",
            "orientation": "horizontal",
            "reduceOptions": reduce(),
            "showUnfilled": true,
            "sizing": "auto",
            "valueMode": "color"
        }),
        _ => json!({
            "legend": legend(),
            "tooltip": {"mode": "multi", "sort": "none"}
        }),
    }
}

/// The panel's `fieldConfig.defaults.custom` (timeseries only).
pub fn custom(panel: &Panel) -> Option<Value> {
    (panel.kind == "timeseries").then(|| {
        json!({
            "drawStyle": "line",
            "fillOpacity": 10,
            "lineWidth": 1,
            "showPoints": "never",
            "spanNulls": false,
            "thresholdsStyle": {"mode": if panel.steps.is_empty() { "off" } else { "line+area" }}
        })
    })
}

fn panel_json(panel: &Panel) -> Value {
    let instant = panel.kind != "timeseries";
    let targets: Vec<Value> = panel
        .queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let ref_id = ref_id(i);
            json!({
                "datasource": datasource(),
                "editorMode": "code",
                "expr": scoped(&q.expr),
                "instant": instant,
                "legendFormat": q.legend,
                "range": !instant,
                "refId": ref_id
            })
        })
        .collect();
    let mut steps = vec![json!({"color": panel.base, "value": null})];
    steps.extend(panel.steps.iter().map(|(v, c)| json!({"color": c, "value": clean(*v)})));
    let mut defaults = json!({
        "color": {"mode": if panel.kind == "timeseries" { "palette-classic" } else { "thresholds" }},
        "mappings": [],
        "thresholds": {"mode": "absolute", "steps": steps},
        "unit": panel.unit
    });
    if let Some(custom) = custom(panel) {
        defaults["custom"] = custom;
    }
    if let Some((min, max)) = panel.range {
        let factor = if panel.unit == "percent" { 100.0 } else { 1.0 };
        defaults["min"] = clean(min * factor);
        defaults["max"] = clean(max * factor);
    }
    let mut description = panel.description.clone();
    if !panel.alerts.is_empty() {
        if !description.is_empty() {
            description.push(' ');
        }
        description.push_str(&format!("Threshold steps from the alerts: {}.", panel.alerts.join(", ")));
    }
    json!({
        "datasource": datasource(),
        "description": description,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "gridPos": {"h": panel.h, "w": panel.w, "x": panel.x, "y": panel.y},
        "id": panel.id,
        "options": options(panel),
        "targets": targets,
        "title": panel.title,
        "type": panel.kind
    })
}

fn ref_id(i: usize) -> String {
    let letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = String::new();
    let mut n = i;
    loop {
        out.insert(0, letters[n % 26] as char);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    out
}

/// One dashboard as JSON.
pub fn dashboard(model: &Model, board: &Board) -> Value {
    let mut panels = Vec::new();
    for row in &board.rows {
        panels.push(json!({
            "collapsed": false,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": row.y},
            "id": row.id,
            "panels": [],
            "title": row.title,
            "type": "row"
        }));
        panels.extend(row.panels.iter().map(panel_json));
    }
    json!({
        "annotations": {"list": [{
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": true,
            "hide": true,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard"
        }]},
        "description": super::header(&model.source),
        "editable": true,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": null,
        "links": [],
        "panels": panels,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": board.tags,
        "templating": {"list": [
            {
                "hide": 0,
                "includeAll": false,
                "label": "Data source",
                "multi": false,
                "name": "datasource",
                "options": [],
                "query": "prometheus",
                "refresh": 1,
                "regex": "",
                "type": "datasource"
            },
            scope_variable("job", "Job", "label_values(up, job)"),
            scope_variable("instance", "Instance", "label_values(up{job=~\"$job\"}, instance)")
        ]},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": board.title,
        "uid": board.uid,
        "version": 1
    })
}

/// `dashboards/<id>.json`.
pub fn render(model: &Model, board: &Board) -> String {
    let mut text = serde_json::to_string_pretty(&dashboard(model, board)).unwrap_or_default();
    text.push('\n');
    text
}
