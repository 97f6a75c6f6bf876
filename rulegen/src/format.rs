//! Number, duration and label-set formatting shared by the checker, the
//! promtool scenario builder and the renderers, so that a value reads the
//! same in an error message, a rule file and a test.

use std::collections::BTreeMap;
use std::time::Duration;

/// Shortest round-trip decimal form of a number (`0.05`, `1`, `1e-7`).
pub fn fmt_num(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let plain = format!("{v}");
        let exp = format!("{v:e}");
        if exp.len() < plain.len() { exp } else { plain }
    }
}

/// Formats a duration the way Prometheus does (`1h30m`, `90s` → `1m30s`).
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in
        [("w", 604_800_000u64), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)]
    {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// `name{a="1",b="2"}` as promtool reads it.
pub fn series_text(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").cloned().unwrap_or_default();
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{name}{{{}}}", rest.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_shortest() {
        assert_eq!(fmt_num(0.05), "0.05");
        assert_eq!(fmt_num(86400.0), "86400");
        assert_eq!(fmt_num(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(fmt_num(1e-7), "1e-7");
    }

    #[test]
    fn durations_print_like_prometheus() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn series_quote_their_label_values() {
        let labels: BTreeMap<String, String> =
            [("__name__", "up"), ("job", "a\"b")].map(|(k, v)| (k.to_owned(), v.to_owned())).into();
        assert_eq!(series_text(&labels), "up{job=\"a\\\"b\"}");
    }
}
