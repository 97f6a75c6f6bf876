//! The report as one self-contained HTML page: inline CSS, an inline SVG
//! sparkline of the last 24 h per item, no JavaScript and no external
//! asset, written as well-formed XML (every element closed, every
//! attribute quoted, all text escaped) so that any parser reads it.

use super::show::{change_text, value};
use super::table::note;
use super::{ItemReport, Report, Status};
use crate::known::parse_unit;
use opsmon_catalog::Unit;

const WIDTH: f64 = 160.0;
const HEIGHT: f64 = 28.0;

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#1d1d1f;background:#fff}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}\
table{border-collapse:collapse;width:100%}th,td{padding:.35em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}\
th{background:#f4f4f6}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.status{font-weight:600;border-radius:4px;padding:.1em .5em;white-space:nowrap}\
.ok{background:#e3f6e8;color:#17642e}.warning{background:#fff4d6;color:#7a5200}\
.critical{background:#fde2e1;color:#9b1c1c}.nodata{background:#eee;color:#555}\
svg .line{fill:none;stroke:#3a6fd8;stroke-width:1.5}svg .limit{stroke:#d33;stroke-dasharray:3 2;stroke-width:1}\
.muted{color:#666}";

/// `&`, `<`, `>`, quotes escaped; control characters dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => {}
            c => out.push(c),
        }
    }
    out
}

fn class(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::NoData => "nodata",
        Status::Warning => "warning",
        Status::Critical => "critical",
    }
}

/// The page.
pub fn render(report: &Report) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    out.push_str(&format!("<title>Daily checklist — {}</title>\n", escape(&report.at_text)));
    out.push_str(&format!("<style>{STYLE}</style>\n</head>\n<body>\n"));
    out.push_str(&format!("<h1>Daily checklist — {}</h1>\n", escape(&report.at_text)));
    out.push_str(&format!(
        "<p><span class=\"status critical\">{} critical</span> <span class=\"status warning\">{} warning</span> \
         <span class=\"status nodata\">{} no data</span> <span class=\"status ok\">{} ok</span> \
         <span class=\"muted\">Prometheus {} · {} queries in {} ms</span></p>\n",
        report.count(Status::Critical),
        report.count(Status::Warning),
        report.count(Status::NoData),
        report.count(Status::Ok),
        escape(&report.prometheus),
        report.queries,
        report.elapsed_ms
    ));
    for list in &report.checklists {
        out.push_str(&format!("<h2>{}</h2>\n<table>\n", escape(list.heading)));
        out.push_str("<tr><th>Status</th><th>Check</th><th>Value</th><th>Threshold</th><th>vs yesterday</th><th>vs last week</th><th>Last 24 h</th><th>Note</th></tr>\n");
        for item in &list.items {
            out.push_str(&row(item));
        }
        out.push_str("</table>\n");
    }
    if let Some(night) = &report.overnight {
        out.push_str(&format!(
            "<h2>Overnight ({} → {})</h2>\n<ul>\n",
            escape(&night.from),
            escape(&night.to)
        ));
        if night.alerts.is_empty() {
            out.push_str("<li>No alert fired.</li>\n");
        }
        for a in &night.alerts {
            let state = if a.resolved {
                format!("resolved (last seen {})", escape(&a.last))
            } else {
                "<strong>still firing</strong>".to_owned()
            };
            out.push_str(&format!(
                "<li>Alert <code>{}</code> ({}) fired {}, {state}</li>\n",
                escape(&a.name),
                escape(&a.severity),
                escape(&a.first)
            ));
        }
        if night.log_matches.is_empty() {
            out.push_str("<li>No error-log matches.</li>\n");
        }
        for m in &night.log_matches {
            out.push_str(&format!(
                "<li>{} × <code>{}</code> in <code>{}</code></li>\n",
                m.count,
                escape(&m.pattern),
                escape(&m.file)
            ));
        }
        if let Some(note) = &night.note {
            out.push_str(&format!("<li>Note: {}</li>\n", escape(note)));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn row(item: &ItemReport) -> String {
    let compare = |c| if item.compare { change_text(c) } else { String::new() };
    format!(
        "<tr><td><span class=\"status {}\">{}</span></td><td>{}</td><td class=\"num\">{}</td><td>{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>\n",
        class(item.status),
        item.status.word(),
        escape(&item.title),
        escape(&item.value_text),
        escape(&item.threshold_text),
        compare(item.change_day),
        compare(item.change_week),
        sparkline(item),
        escape(&note(item))
    )
}

/// A small inline SVG of the item's last 24 h; an empty frame without data.
pub fn sparkline(item: &ItemReport) -> String {
    let unit = parse_unit(item.unit).unwrap_or(Unit::None);
    let points: Vec<(f64, f64)> =
        item.sparkline.iter().copied().filter(|(t, v)| t.is_finite() && v.is_finite()).collect();
    let mut svg =
        format!("<svg width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\">");
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        svg.push_str("<title>no data in the last 24 h</title></svg>");
        return svg;
    };
    let (lo, hi) =
        points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, v)| (lo.min(*v), hi.max(*v)));
    let span_t = (last.0 - first.0).max(1.0);
    let span_v = if hi > lo { hi - lo } else { 1.0 };
    let x = |t: f64| 1.0 + (t - first.0) / span_t * (WIDTH - 2.0);
    let y = |v: f64| HEIGHT - 2.0 - (v - lo) / span_v * (HEIGHT - 4.0);
    svg.push_str(&format!(
        "<title>last 24 h: {} to {}</title>",
        escape(&value(lo, unit)),
        escape(&value(hi, unit))
    ));
    if points.len() == 1 {
        svg.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"#3a6fd8\"/>",
            x(first.0),
            y(first.1)
        ));
    } else {
        let path: Vec<String> = points.iter().map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v))).collect();
        svg.push_str(&format!("<polyline class=\"line\" points=\"{}\"/>", path.join(" ")));
    }
    svg.push_str("</svg>");
    svg
}
