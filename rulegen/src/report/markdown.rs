//! The report as Markdown for a chat or a ticket: a table per checklist with
//! the status as a coloured mark, then the overnight look back.

use super::show::change_text;
use super::table::{clean, note};
use super::{Report, Status};

fn mark(status: Status) -> &'static str {
    match status {
        Status::Ok => "🟢 ok",
        Status::NoData => "⚪ no data",
        Status::Warning => "🟡 warning",
        Status::Critical => "🔴 critical",
    }
}

/// A table cell: no line breaks, no column breaks, no HTML tags (a
/// comparison such as `< 1` stays readable).
fn cell(text: &str) -> String {
    let flat = clean(&text.replace(['\n', '\r'], " ")).replace('\\', "\\\\").replace('|', "\\|");
    let mut out = String::with_capacity(flat.len());
    let mut chars = flat.chars().peekable();
    while let Some(c) = chars.next() {
        let tag =
            c == '<' && chars.peek().is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?'));
        if tag { out.push_str("&lt;") } else { out.push(c) }
    }
    out
}

/// The report as Markdown.
pub fn render(report: &Report) -> String {
    let mut out = format!(
        "# Daily checklist — {}\n\n{} critical · {} warning · {} no data · {} ok (Prometheus {})\n",
        report.at_text,
        report.count(Status::Critical),
        report.count(Status::Warning),
        report.count(Status::NoData),
        report.count(Status::Ok),
        cell(&report.prometheus),
    );
    for list in &report.checklists {
        out.push_str(&format!("\n## {}\n\n", list.heading));
        let compare = list.items.iter().any(|i| i.compare);
        if compare {
            out.push_str("| Status | Check | Value | Threshold | vs yesterday | vs last week | Note |\n");
            out.push_str("|---|---|---:|---|---:|---:|---|\n");
        } else {
            out.push_str("| Status | Check | Value | Threshold | Note |\n|---|---|---:|---|---|\n");
        }
        for item in &list.items {
            let mut cells = vec![
                mark(item.status).to_owned(),
                cell(&item.title),
                cell(&item.value_text),
                cell(&item.threshold_text),
            ];
            if compare {
                let change = |c| if item.compare { change_text(c) } else { String::new() };
                cells.push(change(item.change_day));
                cells.push(change(item.change_week));
            }
            cells.push(cell(&note(item)));
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
    }
    if let Some(night) = &report.overnight {
        out.push_str(&format!("\n## Overnight ({} → {})\n\n", night.from, night.to));
        if night.alerts.is_empty() {
            out.push_str("- No alert fired.\n");
        }
        for a in &night.alerts {
            let state = if a.resolved {
                format!("resolved (last seen {})", a.last)
            } else {
                "**still firing**".to_owned()
            };
            out.push_str(&format!(
                "- Alert `{}` ({}) fired {}, {state}\n",
                cell(&a.name),
                cell(&a.severity),
                a.first
            ));
        }
        if night.log_matches.is_empty() {
            out.push_str("- No error-log matches.\n");
        }
        for m in &night.log_matches {
            out.push_str(&format!("- {} × `{}` in `{}`\n", m.count, cell(&m.pattern), cell(&m.file)));
        }
        if let Some(note) = &night.note {
            out.push_str(&format!("- Note: {}\n", cell(note)));
        }
    }
    out
}
