//! How a checklist value, its limits and its change read: ratios as
//! percentages, seconds as a duration, bytes in IEC units, counts plainly —
//! the same in every renderer.

use crate::model::{ChecklistItem, Direction, Threshold};
use opsmon_catalog::Unit;

/// A value in its unit (`83.2%`, `1.5 s`, `26h 0m`, `1.2 GiB`, `1 234`).
pub fn value(v: f64, unit: Unit) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".to_owned()
        } else if v > 0.0 {
            "+Inf".to_owned()
        } else {
            "-Inf".to_owned()
        };
    }
    match unit {
        Unit::Ratio => format!("{}%", trim(v * 100.0, 1)),
        Unit::Seconds => seconds(v),
        Unit::Bytes => bytes(v),
        Unit::None => number(v),
    }
}

fn seconds(v: f64) -> String {
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    if a < 1.0 {
        format!("{sign}{} ms", trim(a * 1000.0, 0))
    } else if a < 120.0 {
        format!("{sign}{} s", trim(a, 1))
    } else if a < 7200.0 {
        format!("{sign}{}m {}s", (a / 60.0) as u64, (a % 60.0) as u64)
    } else if a < 2.0 * 86_400.0 {
        format!("{sign}{}h {}m", (a / 3600.0) as u64, (a % 3600.0 / 60.0) as u64)
    } else {
        format!("{sign}{}d {}h", (a / 86_400.0) as u64, (a % 86_400.0 / 3600.0) as u64)
    }
}

fn bytes(v: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut x = v;
    let mut i = 0;
    while x.abs() >= 1024.0 && i + 1 < units.len() {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{} B", trim(x, 0)) } else { format!("{} {}", trim(x, 1), units[i]) }
}

fn number(v: f64) -> String {
    if v.abs() >= 1000.0 { trim(v, 0) } else { trim(v, 2) }
}

/// `v` with at most `decimals` decimals, trailing zeros dropped.
fn trim(v: f64, decimals: usize) -> String {
    let text = format!("{v:.decimals$}");
    let text =
        if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text };
    if text == "-0" { "0".to_owned() } else { text }
}

/// `> 85%`.
pub fn limit(t: Threshold) -> String {
    let op = match t.direction {
        Direction::Above => ">",
        Direction::Below => "<",
    };
    format!("{op} {}", value(t.value, t.unit))
}

/// The limits an item is judged by, as one cell.
pub fn limits(item: &ChecklistItem) -> String {
    let mut parts = Vec::new();
    if let Some(w) = item.warning {
        parts.push(format!("warning {}", limit(w)));
    }
    if let Some(c) = item.critical {
        parts.push(format!("critical {}", limit(c)));
    }
    if let (Some(t), Some((name, severity))) = (item.alert_threshold, item.alerts.first()) {
        parts.push(format!("{severity} {} ({name})", limit(t)));
    } else if item.value.is_none() {
        parts.push("none firing".to_owned());
    } else if !item.alerts.is_empty() {
        let names: Vec<&str> = item.alerts.iter().map(|(n, _)| n.as_str()).collect();
        parts.push(format!("alerts {}", names.join(", ")));
    }
    if parts.is_empty() { "—".to_owned() } else { parts.join("; ") }
}

/// Relative change from `then` to `now`; none when `then` is zero.
pub fn change(now: f64, then: f64) -> Option<f64> {
    (then != 0.0 && now.is_finite() && then.is_finite()).then(|| (now - then) / then.abs())
}

/// `+12.5%`, `-3%`, or `—`.
pub fn change_text(change: Option<f64>) -> String {
    match change {
        Some(c) => format!("{}{}%", if c >= 0.0 { "+" } else { "" }, trim(c * 100.0, 1)),
        None => "—".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_in_their_units() {
        assert_eq!(value(0.8326, Unit::Ratio), "83.3%");
        assert_eq!(value(1.0, Unit::Ratio), "100%");
        assert_eq!(value(0.0123, Unit::Seconds), "12 ms");
        assert_eq!(value(1.5, Unit::Seconds), "1.5 s");
        assert_eq!(value(93_600.0, Unit::Seconds), "26h 0m");
        assert_eq!(value(3.0 * 86_400.0 + 7200.0, Unit::Seconds), "3d 2h");
        assert_eq!(value(1_288_490_188.8, Unit::Bytes), "1.2 GiB");
        assert_eq!(value(512.0, Unit::Bytes), "512 B");
        assert_eq!(value(1234.4, Unit::None), "1234");
        assert_eq!(value(2.0, Unit::None), "2");
        assert_eq!(value(f64::NAN, Unit::None), "NaN");
        assert_eq!(change_text(change(110.0, 100.0)), "+10%");
        assert_eq!(change_text(change(50.0, 100.0)), "-50%");
        assert_eq!(change_text(change(5.0, 0.0)), "—");
    }
}
