//! The terminal table: one block per checklist, columns aligned by display
//! width (the guide's Chinese titles take two columns a character), the
//! status coloured only when asked (the caller knows whether stdout is a
//! terminal).

use super::show::change_text;
use super::{ItemReport, Report, Status};

const RESET: &str = "\x1b[0m";

fn colour(status: Status) -> &'static str {
    match status {
        Status::Ok => "\x1b[32m",
        Status::NoData => "\x1b[2m",
        Status::Warning => "\x1b[33m",
        Status::Critical => "\x1b[1;31m",
    }
}

/// Columns a terminal gives `text` (East Asian wide characters take two).
pub fn width(text: &str) -> usize {
    text.chars().map(|c| if wide(c) { 2 } else { 1 }).sum()
}

fn wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6 | 0x1F300..=0x1F64F | 0x20000..=0x3FFFD)
}

/// Control characters (from label values or the threshold file) would
/// drive the terminal: shown as `?`.
pub fn clean(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

fn pad(text: &str, to: usize) -> String {
    format!("{text}{}", " ".repeat(to.saturating_sub(width(text))))
}

/// The report as a table; `color` adds ANSI colours to the status column.
pub fn render(report: &Report, color: bool) -> String {
    let mut out = format!("Checklist report — {} — {}\n", report.at_text, report.prometheus);
    for list in &report.checklists {
        out.push('\n');
        out.push_str(list.heading);
        out.push('\n');
        let header = ["STATUS", "CHECK", "VALUE", "THRESHOLD", "VS 1D", "VS 1W", "NOTE"];
        let rows: Vec<[String; 7]> = list.items.iter().map(row).collect();
        let mut widths = header.map(width);
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(width(cell));
            }
        }
        let line = |cells: &[String; 7], status: Option<Status>| {
            let mut text = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                let cell = if i + 1 == cells.len() { cell.clone() } else { pad(cell, w) };
                match (i, status, color) {
                    (0, Some(s), true) => text.push_str(&format!("{}{cell}{RESET}", colour(s))),
                    _ => text.push_str(&cell),
                }
                if i + 1 < cells.len() {
                    text.push_str("  ");
                }
            }
            text.trim_end().to_owned() + "\n"
        };
        out.push_str(&line(&header.map(str::to_owned), None));
        for (r, item) in rows.iter().zip(&list.items) {
            out.push_str(&line(r, Some(item.status)));
        }
    }
    if let Some(night) = &report.overnight {
        out.push_str(&format!("\nOvernight ({} → {}, {})\n", night.from, night.to, night.window));
        if night.alerts.is_empty() {
            out.push_str("  no alert fired\n");
        }
        for a in &night.alerts {
            let state = if a.resolved {
                format!("resolved, last seen {}", a.last)
            } else {
                "still firing".to_owned()
            };
            out.push_str(&clean(&format!("  alert {} ({}): fired {}, {state}", a.name, a.severity, a.first)));
            out.push('\n');
        }
        if night.log_matches.is_empty() {
            out.push_str("  no error-log matches\n");
        }
        for m in &night.log_matches {
            out.push_str(&clean(&format!("  {} × {} in {}", m.count, m.pattern, m.file)));
            out.push('\n');
        }
        if let Some(note) = &night.note {
            out.push_str(&clean(&format!("  note: {note}")));
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "\n{} critical, {} warning, {} no data, {} ok — {} queries in {} ms\n",
        report.count(Status::Critical),
        report.count(Status::Warning),
        report.count(Status::NoData),
        report.count(Status::Ok),
        report.queries,
        report.elapsed_ms
    ));
    out
}

fn row(item: &ItemReport) -> [String; 7] {
    let compare = |c: Option<f64>| if item.compare { change_text(c) } else { String::new() };
    let mut note = item.note.clone().unwrap_or_default();
    if !item.firing.is_empty() {
        note = format!(
            "firing: {}{}",
            item.firing.join(", "),
            if note.is_empty() { String::new() } else { format!("; {note}") }
        );
    }
    [
        item.status.word().to_owned(),
        item.title.clone(),
        item.value_text.clone(),
        item.threshold_text.clone(),
        compare(item.change_day),
        compare(item.change_week),
        note,
    ]
    .map(|cell| clean(&cell))
}

/// The note column shared by the markdown renderer.
pub fn note(item: &ItemReport) -> String {
    row(item)[6].clone()
}
