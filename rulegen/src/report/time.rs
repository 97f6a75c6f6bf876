//! The report's instant: `--at` parsed from RFC 3339 or unix seconds, and
//! formatted back as RFC 3339 UTC. Civil-date arithmetic is done here (a few
//! lines) rather than pulling in a date crate.

/// `--at` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--at {given:?}: {why}; give RFC 3339 (2026-05-04T09:00:00+08:00) or unix seconds (1777856400)")]
pub struct BadTime {
    /// What was given.
    pub given: String,
    /// What is wrong.
    pub why: String,
}

/// Unix seconds of `text`: RFC 3339 (`Z` or `±HH:MM`, optional fraction) or
/// plain unix seconds (optionally fractional).
pub fn parse(text: &str) -> Result<f64, BadTime> {
    let bad = |why: &str| BadTime { given: text.to_owned(), why: why.to_owned() };
    let t = text.trim();
    if t.is_empty() {
        return Err(bad("empty"));
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = t.parse().map_err(|_| bad("not a number"))?;
        // Prometheus' own range: far enough for any report, small enough to stay exact.
        if !(0.0..=253_402_300_799.0).contains(&secs) {
            return Err(bad("out of range"));
        }
        return Ok(secs);
    }
    rfc3339(t).ok_or_else(|| bad("not a date-time"))
}

fn rfc3339(t: &str) -> Option<f64> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num =
        |s: &str| -> Option<i64> { s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse().ok()).flatten() };
    let (year, month, day) = (num(t.get(0..4)?)?, num(t.get(5..7)?)?, num(t.get(8..10)?)?);
    let (hour, minute, second) = (num(t.get(11..13)?)?, num(t.get(14..16)?)?, num(t.get(17..19)?)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = t.get(19..)?;
    let mut fraction = 0.0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        fraction = format!("0.{}", &frac[..digits]).parse().ok()?;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let (h, m) = (num(rest.get(1..3)?)?, num(rest.get(4..6)?)?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset;
    (secs >= 0).then_some(secs as f64 + fraction)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (if month <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, month, day)
}

/// RFC 3339 UTC to the second (`2026-05-04T01:00:00Z`).
pub fn format(unix: f64) -> String {
    let secs = unix.floor() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// `HH:MM` UTC, for the overnight list.
pub fn clock(unix: f64) -> String {
    format(unix)[11..16].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rfc3339_and_unix_seconds() {
        assert_eq!(parse("1777856400"), Ok(1_777_856_400.0));
        assert_eq!(parse("1777856400.5"), Ok(1_777_856_400.5));
        assert_eq!(parse("2026-05-04T01:00:00Z"), Ok(1_777_856_400.0));
        assert_eq!(parse("2026-05-04T09:00:00+08:00"), Ok(1_777_856_400.0));
        assert_eq!(parse("2026-05-03T20:00:00.250-05:00"), Ok(1_777_856_400.25));
        assert_eq!(parse("2024-02-29T00:00:00Z"), Ok(1_709_164_800.0));
        assert_eq!(format(1_777_856_400.9), "2026-05-04T01:00:00Z");
        assert_eq!(format(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(clock(1_777_856_400.0), "01:00");
    }

    #[test]
    fn refuses_what_is_not_a_time_with_the_fix() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-05-04T25:00:00Z",
            "2026-05-04T09:00:00",
            "2026-05-04T09:00:00+8",
            "2026-05-04",
            "-5",
            "1e400",
            "99999999999999999999",
            "2026-05-04T09:00:00.Z",
            "2026-05-04T09:00:00＋08:00",
            "2026-05-04T09:00:0é",
            "2026-05-04T09:00€00Z",
        ] {
            let error = parse(bad).expect_err(bad);
            assert!(error.to_string().contains("give RFC 3339"), "{bad}: {error}");
        }
    }
}
