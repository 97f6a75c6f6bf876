//! The subset of Prometheus' alert templating that summaries and
//! descriptions may use — `{{ $labels.NAME }}` and `{{ $value | FN }}` with
//! FN one of humanize, humanize1024, humanizePercentage, humanizeDuration —
//! parsed at validation time and rendered exactly like Prometheus does, so
//! that generated promtool tests can state the expected annotations.

use std::collections::BTreeMap;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Label(String),
    Value(Humanize),
}

/// How `$value` is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Humanize {
    /// `humanize`: SI prefixes.
    Si,
    /// `humanize1024`: binary prefixes.
    Binary,
    /// `humanizePercentage`.
    Percentage,
    /// `humanizeDuration`.
    Duration,
}

/// The functions, for messages.
pub const FUNCTIONS: &[&str] = &["humanize", "humanize1024", "humanizePercentage", "humanizeDuration"];

impl Template {
    /// Parses `text`; the error names the construct and the supported forms.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| "unclosed `{{`".to_owned())?;
            let action = after[..close].trim().trim_start_matches('-').trim_end_matches('-').trim();
            parts.push(parse_action(action)?);
            rest = &after[close + 2..];
        }
        if rest.contains("}}") {
            return Err("`}}` without `{{`".into());
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// Label names the template reads.
    pub fn labels(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Label(l) => Some(l.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Renders for people reading docs: `{label}` and `{value}` placeholders
    /// (angle brackets would vanish as HTML in Markdown).
    pub fn placeholders(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Label(l) => out.push_str(&format!("{{{l}}}")),
                Part::Value(_) => out.push_str("{value}"),
            }
        }
        out
    }

    /// Renders with the alert's labels and value, as Prometheus would.
    pub fn render(&self, labels: &BTreeMap<String, String>, value: f64) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Label(l) => out.push_str(labels.get(l).map(String::as_str).unwrap_or("<no value>")),
                Part::Value(h) => out.push_str(&humanize(*h, value)),
            }
        }
        out
    }
}

fn parse_action(action: &str) -> Result<Part, String> {
    let supported = "supported: {{ $labels.NAME }} and {{ $value | humanize }} (or humanize1024, humanizePercentage, humanizeDuration)";
    if let Some(label) = action.strip_prefix("$labels.") {
        if !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Ok(Part::Label(label.to_owned()));
        }
        return Err(format!("invalid label reference `{{{{ {action} }}}}`; {supported}"));
    }
    if let Some(function) = action.strip_prefix("$value").map(str::trim) {
        let function = function.strip_prefix('|').map(str::trim);
        return match function {
            Some("humanize") => Ok(Part::Value(Humanize::Si)),
            Some("humanize1024") => Ok(Part::Value(Humanize::Binary)),
            Some("humanizePercentage") => Ok(Part::Value(Humanize::Percentage)),
            Some("humanizeDuration") => Ok(Part::Value(Humanize::Duration)),
            None => Err(format!(
                "`{{{{ $value }}}}` prints every digit of a float; pipe it through a humanize function; {supported}"
            )),
            Some(other) => Err(format!(
                "unsupported function `{other}`{}; {supported}",
                crate::diagnostics::hint(other, FUNCTIONS.iter().copied())
            )),
        };
    }
    Err(format!("unsupported template action `{{{{ {action} }}}}`; {supported}"))
}

/// Prometheus' humanize functions.
pub fn humanize(kind: Humanize, v: f64) -> String {
    match kind {
        Humanize::Si => si(v, 1000.0, &["k", "M", "G", "T", "P", "E", "Z", "Y"], true),
        Humanize::Binary => {
            if v.abs() <= 1.0 || !v.is_finite() {
                return go_g4(v);
            }
            si(v, 1024.0, &["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"], false)
        }
        Humanize::Percentage => format!("{}%", go_g4(v * 100.0)),
        Humanize::Duration => duration(v),
    }
}

fn si(v: f64, base: f64, big: &[&str], small: bool) -> String {
    if v == 0.0 || !v.is_finite() {
        return go_g4(v);
    }
    let mut v = v;
    let mut prefix = "";
    if v.abs() >= 1.0 || !small {
        for p in big {
            if v.abs() < base {
                break;
            }
            prefix = p;
            v /= base;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", go_g4(v))
}

fn duration(v: f64) -> String {
    if !v.is_finite() {
        return go_g4(v);
    }
    if v == 0.0 {
        return format!("{}s", go_g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let v = v.abs();
        let total = v as i64;
        let (seconds, minutes, hours, days) =
            (total % 60, (total / 60) % 60, (total / 3600) % 24, total / 86400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", go_g4(v));
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", go_g4(v))
}

/// Go's `fmt.Sprintf("%.4g", v)`.
pub fn go_g4(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // Round to 4 significant digits first; the exponent is the rounded one's.
    let sci = format!("{v:.3e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..4).contains(&exp) {
        let mantissa = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let decimals = (3 - exp).max(0) as usize;
    trim_zeros(&format!("{v:.decimals$}"))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_g_formatting() {
        assert_eq!(go_g4(95.0), "95");
        assert_eq!(go_g4(0.95), "0.95");
        assert_eq!(go_g4(123456.0), "1.235e+05");
        assert_eq!(go_g4(0.000012345), "1.234e-05");
        assert_eq!(go_g4(9999.5), "1e+04");
        assert_eq!(go_g4(5.5), "5.5");
        assert_eq!(go_g4(1.0), "1");
    }

    #[test]
    fn humanize_like_prometheus() {
        assert_eq!(humanize(Humanize::Percentage, 0.055), "5.5%");
        assert_eq!(humanize(Humanize::Si, 1234567.0), "1.235M");
        assert_eq!(humanize(Humanize::Si, 0.012), "12m");
        assert_eq!(humanize(Humanize::Binary, 2048.0), "2ki");
        assert_eq!(humanize(Humanize::Duration, 1.1), "1.1s");
        assert_eq!(humanize(Humanize::Duration, 102960.0), "1d 4h 36m 0s");
        assert_eq!(humanize(Humanize::Duration, 0.25), "250ms");
    }

    #[test]
    fn templates() {
        let t =
            Template::parse("CPU {{ $value | humanizePercentage }} on {{ $labels.instance }}").expect("ok");
        let mut labels = BTreeMap::new();
        labels.insert("instance".to_owned(), "h1".to_owned());
        assert_eq!(t.render(&labels, 0.88), "CPU 88% on h1");
        assert_eq!(t.labels(), vec!["instance"]);
        assert!(Template::parse("{{ $value }}").is_err());
        assert!(
            Template::parse("{{ $value | humanise }}")
                .expect_err("typo")
                .contains("did you mean `humanize`?")
        );
    }
}
