//! Presentation: the per-target [`Figures`], folding several runs into medians,
//! the machine/header line, and the two markdown tables (absolute figures and
//! ratios to the baseline, checked against the project's goals).

use std::fmt::Write as _;

use crate::stats::median_of;

/// Everything measured for one target in one run. `None` = not measurable
/// (e.g. no PID given, or every scrape failed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub series: Option<f64>,
    pub bytes: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub req_per_sec: Option<f64>,
    pub rss_mib: Option<f64>,
    pub cpu_ms_per_scrape: Option<f64>,
    /// Failed scrapes in the sequential and load phases (not a median: summed).
    pub errors: u64,
    pub first_error: Option<String>,
    /// CPU cores the bench itself (the load generator) used during this
    /// target's load phase: near the machine's core count means req/s is
    /// bounded by the client, not by the exporter.
    pub loadgen_cores: Option<f64>,
}

impl Figures {
    /// Median of each figure across runs; errors are summed.
    pub fn median(runs: &[Figures]) -> Figures {
        let m = |f: fn(&Figures) -> Option<f64>| median_of(runs.iter().map(f));
        Figures {
            series: m(|r| r.series),
            bytes: m(|r| r.bytes),
            p50_ms: m(|r| r.p50_ms),
            p90_ms: m(|r| r.p90_ms),
            p99_ms: m(|r| r.p99_ms),
            req_per_sec: m(|r| r.req_per_sec),
            rss_mib: m(|r| r.rss_mib),
            cpu_ms_per_scrape: m(|r| r.cpu_ms_per_scrape),
            errors: runs.iter().map(|r| r.errors).sum(),
            first_error: runs.iter().find_map(|r| r.first_error.clone()),
            loadgen_cores: m(|r| r.loadgen_cores),
        }
    }
}

/// One row of the report.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub figures: Figures,
}

fn fmt(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) => format!("{v:.decimals$}"),
        None => "n/a".to_owned(),
    }
}

/// The absolute-figures table.
pub fn figures_table(rows: &[Row], clients: usize) -> String {
    let mut out = format!(
        "| exporter | series | bytes | p50 ms | p90 ms | p99 ms | req/s @{clients} | RSS MiB | CPU ms/scrape |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|--:|\n"
    );
    for r in rows {
        let f = &r.figures;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            fmt(f.series, 0),
            fmt(f.bytes, 0),
            fmt(f.p50_ms, 2),
            fmt(f.p90_ms, 2),
            fmt(f.p99_ms, 2),
            fmt(f.req_per_sec, 1),
            fmt(f.rss_mib, 1),
            fmt(f.cpu_ms_per_scrape, 2),
        );
    }
    out
}

/// A figure compared against the baseline, with the project's goal for it.
struct Goal {
    header: &'static str,
    get: fn(&Figures) -> Option<f64>,
    /// The ratio must be at most (`true`) or at least (`false`) `limit`.
    at_most: bool,
    limit: f64,
}

const GOALS: [Goal; 4] = [
    Goal { header: "CPU/scrape", get: |f| f.cpu_ms_per_scrape, at_most: true, limit: 0.3 },
    Goal { header: "RSS", get: |f| f.rss_mib, at_most: true, limit: 0.5 },
    Goal { header: "p99", get: |f| f.p99_ms, at_most: true, limit: 0.5 },
    Goal { header: "req/s", get: |f| f.req_per_sec, at_most: false, limit: 3.0 },
];

/// `value / base`, or `None` if either is missing or the base is zero.
pub fn ratio(value: Option<f64>, base: Option<f64>) -> Option<f64> {
    match (value, base) {
        (Some(v), Some(b)) if b > 0.0 => Some(v / b),
        _ => None,
    }
}

/// Ratios of every target to `baseline`, each marked against the goal (the
/// baseline's own row is all `1.00×`, unmarked).
pub fn ratio_table(rows: &[Row], baseline: &Row) -> String {
    let mut out = format!("| exporter ÷ {} |", baseline.name);
    for g in &GOALS {
        let _ = write!(out, " {} |", g.header);
    }
    out.push_str("\n|---|");
    out.push_str(&"--:|".repeat(GOALS.len()));
    out.push_str("\n| *goal* |");
    for g in &GOALS {
        let op = if g.at_most { "≤" } else { "≥" };
        let _ = write!(out, " *{op} {}×* |", g.limit);
    }
    out.push('\n');
    for r in rows {
        let is_base = r.name == baseline.name;
        let _ = write!(out, "| {} |", r.name);
        for g in &GOALS {
            let cell = match ratio((g.get)(&r.figures), (g.get)(&baseline.figures)) {
                None => "n/a".to_owned(),
                Some(x) if is_base => format!("{x:.2}×"),
                Some(x) => {
                    let met = if g.at_most { x <= g.limit } else { x >= g.limit };
                    format!("{x:.2}× {}", if met { "✅" } else { "❌" })
                }
            };
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS UTC` for seconds since the Unix epoch.
pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `model name` from `/proc/cpuinfo` text.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "model name").then(|| v.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, cpu: f64, rss: f64, p99: f64, rps: f64) -> Row {
        Row {
            name: name.to_owned(),
            figures: Figures {
                cpu_ms_per_scrape: Some(cpu),
                rss_mib: Some(rss),
                p99_ms: Some(p99),
                req_per_sec: Some(rps),
                ..Figures::default()
            },
        }
    }

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_709_210_096), "2024-02-29 12:34:56 UTC");
        assert_eq!(format_utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
    }

    #[test]
    fn median_across_runs() {
        let runs = [
            Figures { p99_ms: Some(10.0), errors: 1, ..Figures::default() },
            Figures { p99_ms: Some(30.0), first_error: Some("boom".into()), ..Figures::default() },
            Figures { p99_ms: Some(20.0), rss_mib: Some(5.0), errors: 2, ..Figures::default() },
        ];
        let m = Figures::median(&runs);
        assert_eq!(m.p99_ms, Some(20.0));
        assert_eq!(m.rss_mib, Some(5.0));
        assert_eq!(m.cpu_ms_per_scrape, None);
        assert_eq!(m.errors, 3);
        assert_eq!(m.first_error.as_deref(), Some("boom"));
    }

    #[test]
    fn ratio_table_marks_goals() {
        let base = row("node_exporter", 9.0, 22.0, 16.0, 109.0);
        let good = row("opsmon", 1.8, 8.8, 4.0, 436.0);
        let bad = row("slow", 9.0, 22.0, 16.0, 109.0);
        let t = ratio_table(&[good, bad, base.clone()], &base);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines.first().copied(),
            Some("| exporter ÷ node_exporter | CPU/scrape | RSS | p99 | req/s |")
        );
        assert_eq!(lines.get(3).copied(), Some("| opsmon | 0.20× ✅ | 0.40× ✅ | 0.25× ✅ | 4.00× ✅ |"));
        assert_eq!(lines.get(4).copied(), Some("| slow | 1.00× ❌ | 1.00× ❌ | 1.00× ❌ | 1.00× ❌ |"));
        assert_eq!(lines.get(5).copied(), Some("| node_exporter | 1.00× | 1.00× | 1.00× | 1.00× |"));
    }

    #[test]
    fn ratio_handles_missing_and_zero() {
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(2.0)), None);
        assert_eq!(ratio(Some(1.0), Some(4.0)), Some(0.25));
    }

    #[test]
    fn figures_table_formats_and_marks_missing() {
        let mut r = row("x", 1.234, 5.0, 6.0, 7.0);
        r.figures.series = Some(1500.0);
        let t = figures_table(&[r], 8);
        assert!(t.starts_with("| exporter | series | bytes | p50 ms | p90 ms | p99 ms | req/s @8 |"));
        assert!(t.contains("| x | 1500 | n/a | n/a | n/a | 6.00 | 7.0 | 5.0 | 1.23 |"), "{t}");
    }

    #[test]
    fn reads_cpu_model() {
        let info =
            "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n";
        assert_eq!(cpu_model(info).as_deref(), Some("Intel(R) Xeon(R) CPU @ 2.20GHz"));
        assert_eq!(cpu_model("processor : 0\n"), None);
    }
}
