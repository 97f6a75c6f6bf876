//! The report as JSON for tools: the [`Report`] structure itself, stable
//! field names, statuses as `ok`/`warning`/`critical`/`no data`, numbers
//! that are not finite (NaN, ±Inf) as null.

use super::Report;

/// Pretty-printed JSON with a trailing newline.
pub fn render(report: &Report) -> String {
    // serde_json writes non-finite floats as null; a Report holds nothing
    // else that can fail to serialise.
    let mut text = serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    text.push('\n');
    text
}
