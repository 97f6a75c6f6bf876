//! Pure number crunching on scrape results: percentiles, medians across runs,
//! counting series in an exposition payload, reading opsmon-exporter's
//! collector durations and the version out of a `*_build_info` series. No
//! I/O here, so every function is unit-tested.

/// `(collector, seconds)` of each `opsmon_exporter_collector_duration_seconds`
/// sample in an exposition.
pub fn collector_durations(text: &str) -> impl Iterator<Item = (&str, f64)> {
    const PREFIX: &str = "opsmon_exporter_collector_duration_seconds{collector=\"";
    text.lines().filter_map(|line| {
        let rest = line.strip_prefix(PREFIX)?;
        let (name, value) = rest.split_once("\"} ")?;
        Some((name, value.split_whitespace().next()?.parse().ok()?))
    })
}

/// Nearest-rank percentile (`p` in 0..=100) of `values`; `None` when empty.
///
/// Nearest-rank always returns one of the observed values: for 200 samples
/// p99 is the 198th smallest, p50 the 100th.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    // rank = ceil(p/100 * n), clamped to 1..=n, then 0-based.
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    let idx = rank.clamp(1, n) - 1;
    sorted.get(idx).copied()
}

/// Median of the values (mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let mid = n / 2;
    if n % 2 == 1 { sorted.get(mid).copied() } else { Some((sorted.get(mid - 1)? + sorted.get(mid)?) / 2.0) }
}

/// Median of the `Some` values, ignoring runs where a figure was unavailable.
pub fn median_of(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    let present: Vec<f64> = values.into_iter().flatten().collect();
    median(&present)
}

/// Number of series in a Prometheus text exposition: lines that are neither
/// empty (after trimming) nor comments (`# HELP`, `# TYPE`, `# EOF`, …).
pub fn count_series(body: &str) -> u64 {
    body.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).count() as u64
}

/// The `version` label of the first `*_build_info{…}` series, if any, e.g.
/// `node_exporter_build_info{…,version="1.5.0"} 1` → `node_exporter 1.5.0`.
pub fn build_info_version(body: &str) -> Option<String> {
    body.lines().find_map(|line| {
        if line.starts_with('#') {
            return None;
        }
        let (metric, rest) = line.split_once('{')?;
        let program = metric.strip_suffix("_build_info")?;
        let labels = rest.split_once('}')?.0;
        let version = label_value(labels, "version")?;
        Some(format!("{program} {version}"))
    })
}

/// Value of label `name` in a `a="x",b="y"` label set (no escape handling beyond `\"`).
fn label_value(labels: &str, name: &str) -> Option<String> {
    let mut rest = labels;
    loop {
        let (key, after) = rest.split_once('=')?;
        let after = after.strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => {
                    let (_, escaped) = chars.next()?;
                    value.push(escaped);
                }
                '"' => break i,
                _ => value.push(c),
            }
        };
        if key.trim().trim_start_matches(',').trim() == name {
            return Some(value);
        }
        rest = after.get(end + 1..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 90.0), Some(90.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
    }

    #[test]
    fn percentile_is_order_independent_and_picks_observed_values() {
        let v = [9.0, 1.0, 5.0, 3.0, 7.0];
        assert_eq!(percentile(&v, 50.0), Some(5.0));
        assert_eq!(percentile(&v, 99.0), Some(9.0));
        assert_eq!(percentile(&v, 20.0), Some(1.0));
        assert_eq!(percentile(&v, 21.0), Some(3.0));
        // 200 samples: p99 is the 198th smallest.
        let v: Vec<f64> = (1..=200).rev().map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), Some(198.0));
    }

    #[test]
    fn percentile_edge_cases() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[4.2], 99.0), Some(4.2));
        assert_eq!(percentile(&[1.0, 2.0], 101.0), None);
    }

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median_of([Some(5.0), None, Some(1.0), Some(3.0)]), Some(3.0));
        assert_eq!(median_of([None, None]), None);
    }

    #[test]
    fn counts_series_not_comments_or_blank_lines() {
        let body = "# HELP up Whether up.\n# TYPE up gauge\nup 1\n\n  \nfoo{a=\"b\"} 2\n# EOF\n";
        assert_eq!(count_series(body), 2);
        assert_eq!(count_series(""), 0);
        assert_eq!(count_series("a 1\r\nb 2\r\n"), 2);
    }

    #[test]
    fn reads_build_info_version() {
        let body = "# HELP node_exporter_build_info x\n\
            node_exporter_build_info{branch=\"debian/sid\",goversion=\"go1.19.8\",revision=\"1.5.0-1\",version=\"1.5.0\"} 1\n";
        assert_eq!(build_info_version(body).as_deref(), Some("node_exporter 1.5.0"));
        let body = "opsmon_build_info{note=\"a \\\"q\\\" version=x\",version=\"0.1.0\"} 1\n";
        assert_eq!(build_info_version(body).as_deref(), Some("opsmon 0.1.0"));
        assert_eq!(build_info_version("up 1\nfoo_info{version=\"1\"} 1\n"), None);
    }

    #[test]
    fn reads_the_collector_durations() {
        let text = "# TYPE opsmon_exporter_collector_duration_seconds gauge\n\
                    opsmon_exporter_collector_duration_seconds{collector=\"host\"} 0.0012\n\
                    opsmon_exporter_collector_duration_seconds{collector=\"postgres\"} 1e-3\n\
                    opsmon_exporter_collector_success{collector=\"host\"} 1\n";
        let read: Vec<(&str, f64)> = collector_durations(text).collect();
        assert_eq!(read, vec![("host", 0.0012), ("postgres", 0.001)]);
    }
}
