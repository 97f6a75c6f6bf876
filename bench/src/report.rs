//! Presentation: the per-target [`Figures`], folding several runs into medians,
//! the machine/header line, and the two markdown tables (absolute figures and
//! ratios to the baseline, checked against the project's goals).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::chain::ChainFigures;
use crate::pgcpu::Statement;
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
    /// `RssAnon` after load: resident memory without the binaries' text.
    pub anon_mib: Option<f64>,
    pub cpu_ms_per_scrape: Option<f64>,
    /// 1 when the last sequential answer came gzipped, 0 when plain.
    pub gzipped: Option<f64>,
    /// Failed scrapes in the sequential and load phases (not a median: summed).
    pub errors: u64,
    pub first_error: Option<String>,
    /// CPU cores the bench itself (the load generator) used during this
    /// target's load phase: near the machine's core count means req/s is
    /// bounded by the client, not by the exporter.
    pub loadgen_cores: Option<f64>,
    /// Full mode: CPU of this exporter's PostgreSQL backends per scrape, over
    /// the same windows as `cpu_ms_per_scrape`.
    pub pg_cpu_ms_per_scrape: Option<f64>,
    /// Its PostgreSQL backends at the end of the run.
    pub pg_backends: Option<f64>,
    /// Backends that exited during a measured window (summed): the PostgreSQL
    /// CPU figure is then a lower bound.
    pub pg_backends_exited: u64,
    /// `application_name`s of its backends (union across runs).
    pub pg_app_names: BTreeSet<String>,
    /// Probe mode: requests the bench's static target answered per successful
    /// probe during this exporter's load phase (1.00 when every probe reached it once).
    pub static_requests_per_probe: Option<f64>,
    /// Probe mode: the static target's CPU per successful probe in that phase.
    pub static_cpu_ms_per_probe: Option<f64>,
    /// Probe mode: the static target's CPU in that phase, in cores (taken out
    /// of `loadgen_cores`, which is the same process).
    pub static_cores: Option<f64>,
    /// opsmon-exporter: p50, p90 and p99 ms of each collector's
    /// `opsmon_exporter_collector_duration_seconds` over the sequential scrapes.
    pub collector_ms: BTreeMap<String, [Option<f64>; 3]>,
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
            anon_mib: m(|r| r.anon_mib),
            cpu_ms_per_scrape: m(|r| r.cpu_ms_per_scrape),
            gzipped: m(|r| r.gzipped),
            errors: runs.iter().map(|r| r.errors).sum(),
            first_error: runs.iter().find_map(|r| r.first_error.clone()),
            loadgen_cores: m(|r| r.loadgen_cores),
            pg_cpu_ms_per_scrape: m(|r| r.pg_cpu_ms_per_scrape),
            pg_backends: m(|r| r.pg_backends),
            pg_backends_exited: runs.iter().map(|r| r.pg_backends_exited).sum(),
            pg_app_names: runs.iter().flat_map(|r| r.pg_app_names.iter().cloned()).collect(),
            static_requests_per_probe: m(|r| r.static_requests_per_probe),
            static_cpu_ms_per_probe: m(|r| r.static_cpu_ms_per_probe),
            static_cores: m(|r| r.static_cores),
            collector_ms: runs
                .iter()
                .flat_map(|r| r.collector_ms.keys().cloned())
                .collect::<BTreeSet<String>>()
                .into_iter()
                .map(|name| {
                    let of = |q: usize| median_of(runs.iter().map(|r| r.collector_ms.get(&name)?[q]));
                    let quantiles = [of(0), of(1), of(2)];
                    (name, quantiles)
                })
                .collect(),
        }
    }
}

/// Each collector's duration inside one exporter's sequential scrapes, as it
/// reports them: which part of a scrape is the long one.
pub fn collectors_table(row: &Row) -> String {
    let mut out = format!(
        "\n**Inside {}'s sequential scrapes** — each collector's `opsmon_exporter_collector_duration_seconds` \
         (the collectors run concurrently; the scrape ends with the longest):\n\n\
         | collector | p50 ms | p90 ms | p99 ms |\n|---|--:|--:|--:|\n",
        row.name
    );
    for (name, [p50, p90, p99]) in &row.figures.collector_ms {
        let _ = writeln!(out, "| {name} | {} | {} | {} |", fmt(*p50, 2), fmt(*p90, 2), fmt(*p99, 2));
    }
    out
}

/// What asking for gzip changes, per exporter: its figures with
/// `Accept-Encoding: gzip` against its own plain ones from the same run.
pub fn gzip_table(plain: &[Row], gzip: &[Row]) -> String {
    let mut out = String::from(
        "| exporter | answered gzip | bytes plain → gzip | CPU ms/scrape plain → gzip | p50 ms plain → gzip | p99 ms plain → gzip | req/s plain → gzip |\n\
         |---|:-:|--:|--:|--:|--:|--:|\n",
    );
    let pair = |a: Option<f64>, b: Option<f64>, decimals: usize| match (a, b) {
        (Some(a), Some(b)) if a > 0.0 => format!("{a:.decimals$} → {b:.decimals$} ({:.2}×)", b / a),
        (a, b) => format!("{} → {}", fmt(a, decimals), fmt(b, decimals)),
    };
    for row in plain {
        let Some(g) = gzip.iter().find(|g| g.name == row.name) else { continue };
        let (p, g) = (&row.figures, &g.figures);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            row.name,
            match g.gzipped {
                Some(v) if v > 0.5 => "yes",
                Some(_) => "**no**",
                None => "n/a",
            },
            pair(p.bytes, g.bytes, 0),
            pair(p.cpu_ms_per_scrape, g.cpu_ms_per_scrape, 3),
            pair(p.p50_ms, g.p50_ms, 2),
            pair(p.p99_ms, g.p99_ms, 2),
            pair(p.req_per_sec, g.req_per_sec, 1),
        ));
    }
    out
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

/// A ratio as the tables print it (`0.42×`), or `n/a`.
fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.2}×"))
}

/// The absolute-figures table; `with_pg` adds the PostgreSQL CPU column of
/// the full mode (`≥` marks a lower bound: a backend exited mid-window).
pub fn figures_table(rows: &[Row], clients: usize, with_pg: bool) -> String {
    let mut out = format!(
        "| exporter | series | bytes | p50 ms | p90 ms | p99 ms | req/s @{clients} | RSS MiB | CPU ms/scrape |"
    );
    out.push_str(if with_pg { " PG CPU ms/scrape |\n" } else { "\n" });
    out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    out.push_str(if with_pg { "--:|\n" } else { "\n" });
    for r in rows {
        let f = &r.figures;
        let _ = write!(
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
        if with_pg {
            let bound =
                if f.pg_backends_exited > 0 && f.pg_cpu_ms_per_scrape.is_some() { "≥ " } else { "" };
            let _ = write!(out, " {bound}{} |", fmt(f.pg_cpu_ms_per_scrape, 2));
        }
        out.push('\n');
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

/// Sum of the figures, or `None` if any is missing (a partial sum would
/// flatter the ratio).
pub fn sum_all(values: &[Option<f64>]) -> Option<f64> {
    values.iter().try_fold(0.0, |acc, v| Some(acc + (*v)?))
}

/// `PASS` / `MISS` for a ratio that must be at most `limit`.
pub fn verdict(ratio: Option<f64>, limit: f64) -> &'static str {
    match ratio {
        Some(x) if x <= limit => "✅ PASS",
        Some(_) => "❌ MISS",
        None => "n/a",
    }
}

/// One line of the full-mode ratio table: our figure against the peers'
/// (summed when there are several), with the goal `≤ limit×`.
#[derive(Debug, Clone)]
pub struct FullGoal {
    pub figure: &'static str,
    pub get: fn(&Figures) -> Option<f64>,
    pub limit: f64,
    /// Names of the peer rows compared against (summed).
    pub peers: Vec<String>,
}

/// The full-mode ratio table: `ours` against the sum of the named peers for
/// each goal, with the peers' parts spelled out and PASS/MISS.
pub fn full_ratio_table(rows: &[Row], ours: &str, goals: &[FullGoal]) -> String {
    let mut out =
        format!("| figure | {ours} | peers | ratio | goal | verdict |\n|---|--:|---|--:|--:|---|\n");
    let ours_row = rows.iter().find(|r| r.name == ours);
    for g in goals {
        let mine = ours_row.and_then(|r| (g.get)(&r.figures));
        let parts: Vec<(String, Option<f64>)> = g
            .peers
            .iter()
            .map(|p| (p.clone(), rows.iter().find(|r| &r.name == p).and_then(|r| (g.get)(&r.figures))))
            .collect();
        let values: Vec<Option<f64>> = parts.iter().map(|(_, v)| *v).collect();
        let peers = sum_all(&values);
        let spelled: Vec<String> = parts.iter().map(|(n, v)| format!("{n} {}", fmt(*v, 2))).collect();
        let peers_cell = if parts.len() > 1 {
            format!("{} = {}", fmt(peers, 2), spelled.join(" + "))
        } else {
            spelled.join("")
        };
        let r = ratio(mine, peers);
        let _ = writeln!(
            out,
            "| {} | {} | {peers_cell} | {} | ≤ {}× | {} |",
            g.figure,
            fmt(mine, 2),
            fmt_ratio(r),
            g.limit,
            verdict(r, g.limit),
        );
    }
    out
}

/// One line of [`pair_table`]: a figure of two exporters, their ratio, and
/// optionally a goal on it.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub figure: &'static str,
    pub get: fn(&Figures) -> Option<f64>,
    /// Decimals of the two absolute figures.
    pub decimals: usize,
    /// The ratio must be at most (`true`) or at least (`false`) the limit;
    /// `None`: shown for information, without a verdict.
    pub goal: Option<(bool, f64)>,
}

/// `PASS` / `MISS` for a ratio against a goal `at_most` (or at least) `limit`.
pub fn goal_verdict(ratio: Option<f64>, at_most: bool, limit: f64) -> &'static str {
    match ratio {
        Some(x) if (at_most && x <= limit) || (!at_most && x >= limit) => "✅ PASS",
        Some(_) => "❌ MISS",
        None => "n/a",
    }
}

/// `ours` against one peer, figure by figure: both values, `ours ÷ peer`, and
/// the goal and verdict where there is one.
pub fn pair_table(rows: &[Row], ours: &str, peer: &str, comparisons: &[Comparison]) -> String {
    let mut out =
        format!("| figure | {ours} | {peer} | ratio | goal | verdict |\n|---|--:|--:|--:|--:|---|\n");
    let get =
        |name: &str, c: &Comparison| rows.iter().find(|r| r.name == name).and_then(|r| (c.get)(&r.figures));
    for c in comparisons {
        let (mine, theirs) = (get(ours, c), get(peer, c));
        let r = ratio(mine, theirs);
        let (goal, verdict) = match c.goal {
            Some((at_most, limit)) => {
                (format!("{} {limit}×", if at_most { "≤" } else { "≥" }), goal_verdict(r, at_most, limit))
            }
            None => ("—".to_owned(), "—"),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {goal} | {verdict} |",
            c.figure,
            fmt(mine, c.decimals),
            fmt(theirs, c.decimals),
            fmt_ratio(r),
        );
    }
    out
}

/// The PostgreSQL statement chain alone, beside node_exporter's p99 of the
/// same run (when it was measured): the every-collector p99 goal is ≤ 0.3×
/// node_exporter's, and no scrape that reads PostgreSQL over one connection
/// beats this chain.
pub fn chain_section(chain: &ChainFigures, node: Option<&Row>) -> String {
    let mut out = format!(
        "\n**The PostgreSQL statement chain alone** — the {} statements one scrape of opsmon-exporter sends, \
         run back to back on one connection by pgbench (libpq, prepared), {} runs, nothing else scraped meanwhile:\n\n\
         | p50 ms | p90 ms | p99 ms | p99 ÷ node_exporter's p99 |\n|--:|--:|--:|--:|\n",
        chain.statements, chain.runs
    );
    let ratio = node
        .and_then(|n| n.figures.p99_ms)
        .filter(|p99| *p99 > 0.0)
        .map_or_else(|| "n/a".to_owned(), |p99| format!("{:.2}× (of {p99:.2} ms)", chain.p99_ms / p99));
    let _ = writeln!(out, "| {:.2} | {:.2} | {:.2} | {ratio} |", chain.p50_ms, chain.p90_ms, chain.p99_ms);
    out
}

/// Every exporter's p99 measured with the every-collector goal's yardstick
/// (÷ `baseline`'s p99 in the same pass, at most `limit`), with its spread
/// p99 − p50. The smallest scrape of the run (blackbox_exporter's one HTTP
/// GET, 17 series) shows where the machine's own tail puts any scrape against
/// that goal.
pub fn tail_yardstick(rows: &[Row], baseline: &str, limit: f64) -> String {
    let Some(base) =
        rows.iter().find(|r| r.name == baseline).and_then(|r| r.figures.p99_ms).filter(|p| *p > 0.0)
    else {
        return String::new();
    };
    let mut out = format!(
        "\n**Every exporter's p99 against {baseline}'s** — the every-collector p99 goal's yardstick \
         (≤ {limit}× {baseline}'s {base:.2} ms) applied to each exporter of this pass; p99 − p50 is the \
         tail a scrape gets on top of its typical time:\n\n\
         | exporter | series | CPU ms/scrape | p50 ms | p99 ms | p99 − p50 ms | p99 ÷ {baseline}'s |\n\
         |---|--:|--:|--:|--:|--:|--:|\n"
    );
    for r in rows {
        let f = &r.figures;
        let spread = f.p99_ms.zip(f.p50_ms).map(|(p99, p50)| p99 - p50);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            fmt(f.series, 0),
            fmt(f.cpu_ms_per_scrape, 2),
            fmt(f.p50_ms, 2),
            fmt(f.p99_ms, 2),
            fmt(spread, 2),
            fmt_ratio(ratio(f.p99_ms, Some(base))),
        );
    }
    out
}

/// The heaviest statements one exporter ran during the isolated statements
/// phase, per scrape: calls, executor and planner ms, rows, query text.
pub fn statements_table(statements: &[Statement], scrapes: u32, top: usize) -> String {
    let per = |v: f64| if scrapes > 0 { v / f64::from(scrapes) } else { f64::NAN };
    let mut out = String::from(
        "| calls/scrape | exec ms/scrape | plan ms/scrape | rows/scrape | query |\n|--:|--:|--:|--:|---|\n",
    );
    for s in statements.iter().take(top) {
        let query = shorten(&s.query, 110).replace('|', "\\|").replace('`', "'");
        let _ = writeln!(
            out,
            "| {:.2} | {:.3} | {:.3} | {:.1} | `{query}` |",
            per(s.calls),
            per(s.exec_ms),
            per(s.plan_ms),
            per(s.rows)
        );
    }
    let (calls, exec, plan) =
        statements.iter().fold((0.0, 0.0, 0.0), |(c, e, p), s| (c + s.calls, e + s.exec_ms, p + s.plan_ms));
    if statements.len() > top {
        let _ = writeln!(out, "| … | | | | ({} more statements) |", statements.len() - top);
    }
    let _ = writeln!(
        out,
        "| **{:.2}** | **{:.3}** | **{:.3}** | | **all {} statements** |",
        per(calls),
        per(exec),
        per(plan),
        statements.len()
    );
    out
}

/// At most `max` characters of `text`, ending in `…` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
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

    #[test]
    fn collectors_by_their_medians_across_runs() {
        let run = |host: f64| Figures {
            collector_ms: BTreeMap::from([
                ("host".to_owned(), [Some(host), Some(host * 2.0), Some(host * 3.0)]),
                ("postgres".to_owned(), [Some(1.0), None, Some(2.0)]),
            ]),
            ..Figures::default()
        };
        let median = Figures::median(&[run(1.0), run(3.0), run(2.0)]);
        assert_eq!(median.collector_ms["host"], [Some(2.0), Some(4.0), Some(6.0)]);
        assert_eq!(median.collector_ms["postgres"], [Some(1.0), None, Some(2.0)]);
        let table = collectors_table(&Row { name: "opsmon-exporter".into(), figures: median });
        assert!(table.contains("| host | 2.00 | 4.00 | 6.00 |"), "{table}");
        assert!(table.contains("| postgres | 1.00 | n/a | 2.00 |"), "{table}");
    }

    #[test]
    fn chain_against_node_exporters_p99() {
        let chain = ChainFigures { statements: 10, runs: 1000, p50_ms: 1.5, p90_ms: 2.0, p99_ms: 3.0 };
        let node = Row {
            name: "node_exporter".into(),
            figures: Figures { p99_ms: Some(10.0), ..Figures::default() },
        };
        let text = chain_section(&chain, Some(&node));
        assert!(text.contains("the 10 statements"), "{text}");
        assert!(text.contains("| 1.50 | 2.00 | 3.00 | 0.30× (of 10.00 ms) |"), "{text}");
        assert!(chain_section(&chain, None).contains("| n/a |"));
    }

    #[test]
    fn every_exporters_p99_against_the_baseline_with_its_spread() {
        let with = |name: &str, p50: f64, p99: f64| Row {
            name: name.to_owned(),
            figures: Figures {
                series: Some(17.0),
                cpu_ms_per_scrape: Some(1.0),
                p50_ms: Some(p50),
                p99_ms: Some(p99),
                ..Figures::default()
            },
        };
        let rows = [
            with("opsmon-exporter", 3.0, 7.5),
            with("node_exporter", 9.0, 15.0),
            with("blackbox_exporter", 1.5, 4.5),
        ];
        let text = tail_yardstick(&rows, "node_exporter", 0.3);
        assert!(text.contains("≤ 0.3× node_exporter's 15.00 ms"), "{text}");
        assert!(text.contains("| opsmon-exporter | 17 | 1.00 | 3.00 | 7.50 | 4.50 | 0.50× |"), "{text}");
        assert!(text.contains("| node_exporter | 17 | 1.00 | 9.00 | 15.00 | 6.00 | 1.00× |"), "{text}");
        assert!(text.contains("| blackbox_exporter | 17 | 1.00 | 1.50 | 4.50 | 3.00 | 0.30× |"), "{text}");
        assert_eq!(tail_yardstick(&rows, "absent", 0.3), "", "no baseline, no table");
    }

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
        let t = figures_table(std::slice::from_ref(&r), 8, false);
        assert!(t.starts_with("| exporter | series | bytes | p50 ms | p90 ms | p99 ms | req/s @8 |"));
        assert!(t.contains("| x | 1500 | n/a | n/a | n/a | 6.00 | 7.0 | 5.0 | 1.23 |\n"), "{t}");

        r.figures.pg_cpu_ms_per_scrape = Some(2.5);
        let t = figures_table(std::slice::from_ref(&r), 8, true);
        assert!(
            t.contains("| CPU ms/scrape | PG CPU ms/scrape |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"),
            "{t}"
        );
        assert!(t.contains("| 1.23 | 2.50 |\n"), "{t}");
        r.figures.pg_backends_exited = 1;
        let t = figures_table(&[r], 8, true);
        assert!(t.contains("| 1.23 | ≥ 2.50 |\n"), "{t}");
    }

    #[test]
    fn sums_and_verdicts() {
        assert_eq!(sum_all(&[Some(1.0), Some(2.5)]), Some(3.5));
        assert_eq!(sum_all(&[Some(1.0), None]), None);
        assert_eq!(sum_all(&[]), Some(0.0));
        assert_eq!(verdict(Some(0.3), 0.3), "✅ PASS");
        assert_eq!(verdict(Some(0.31), 0.3), "❌ MISS");
        assert_eq!(verdict(None, 0.3), "n/a");
    }

    #[test]
    fn full_ratio_table_sums_peers() {
        let mut ours = row("opsmon-exporter", 1.5, 12.0, 1.0, 1.0);
        ours.figures.pg_cpu_ms_per_scrape = Some(6.0);
        let node = row("node_exporter", 5.0, 22.0, 1.0, 1.0);
        let mut pg = row("postgres_exporter", 7.0, 18.0, 1.0, 1.0);
        pg.figures.pg_cpu_ms_per_scrape = Some(9.0);
        let redis = row("redis_exporter", 2.5, 16.0, 1.0, 1.0);
        let peers: Vec<String> =
            ["node_exporter", "postgres_exporter", "redis_exporter"].map(String::from).to_vec();
        let goals = [
            FullGoal {
                figure: "exporter CPU ms/scrape",
                get: |f| f.cpu_ms_per_scrape,
                limit: 0.3,
                peers: peers.clone(),
            },
            FullGoal {
                figure: "PostgreSQL CPU ms/scrape",
                get: |f| f.pg_cpu_ms_per_scrape,
                limit: 0.5,
                peers: vec!["postgres_exporter".into()],
            },
            FullGoal { figure: "RSS MiB", get: |f| f.rss_mib, limit: 0.3, peers },
        ];
        let t = full_ratio_table(&[ours, node, pg, redis], "opsmon-exporter", &goals);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "| figure | opsmon-exporter | peers | ratio | goal | verdict |");
        assert_eq!(
            lines[2],
            "| exporter CPU ms/scrape | 1.50 | 14.50 = node_exporter 5.00 + postgres_exporter 7.00 + redis_exporter 2.50 | 0.10× | ≤ 0.3× | ✅ PASS |"
        );
        assert_eq!(
            lines[3],
            "| PostgreSQL CPU ms/scrape | 6.00 | postgres_exporter 9.00 | 0.67× | ≤ 0.5× | ❌ MISS |"
        );
        assert!(
            lines[4].starts_with("| RSS MiB | 12.00 | 56.00 = ")
                && lines[4].ends_with("| 0.21× | ≤ 0.3× | ✅ PASS |")
        );
    }

    #[test]
    fn full_ratio_table_without_a_peer_is_na() {
        let ours = row("opsmon-exporter", 1.5, 12.0, 1.0, 1.0);
        let goals = [FullGoal {
            figure: "RSS MiB",
            get: |f| f.rss_mib,
            limit: 0.3,
            peers: vec!["node_exporter".into(), "missing".into()],
        }];
        let t =
            full_ratio_table(&[ours, row("node_exporter", 1.0, 22.0, 1.0, 1.0)], "opsmon-exporter", &goals);
        assert!(
            t.contains("| RSS MiB | 12.00 | n/a = node_exporter 22.00 + missing n/a | n/a | ≤ 0.3× | n/a |"),
            "{t}"
        );
    }

    #[test]
    fn pair_table_compares_two_rows() {
        let ours = row("opsmon-exporter", 0.25, 8.0, 2.0, 900.0);
        let peer = row("blackbox_exporter", 1.0, 20.0, 4.0, 300.0);
        let comparisons = [
            Comparison {
                figure: "CPU ms/probe",
                get: |f| f.cpu_ms_per_scrape,
                decimals: 3,
                goal: Some((true, 0.5)),
            },
            Comparison { figure: "RSS MiB", get: |f| f.rss_mib, decimals: 1, goal: None },
            Comparison { figure: "req/s", get: |f| f.req_per_sec, decimals: 1, goal: Some((false, 4.0)) },
            Comparison { figure: "series", get: |f| f.series, decimals: 0, goal: Some((true, 1.0)) },
        ];
        let t = pair_table(&[peer, ours], "opsmon-exporter", "blackbox_exporter", &comparisons);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "| figure | opsmon-exporter | blackbox_exporter | ratio | goal | verdict |");
        assert_eq!(lines[1], "|---|--:|--:|--:|--:|---|");
        assert_eq!(lines[2], "| CPU ms/probe | 0.250 | 1.000 | 0.25× | ≤ 0.5× | ✅ PASS |");
        assert_eq!(lines[3], "| RSS MiB | 8.0 | 20.0 | 0.40× | — | — |");
        assert_eq!(lines[4], "| req/s | 900.0 | 300.0 | 3.00× | ≥ 4× | ❌ MISS |");
        assert_eq!(lines[5], "| series | n/a | n/a | n/a | ≤ 1× | n/a |");
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn gzip_table_compares_each_exporter_with_itself() {
        let mut plain = row("opsmon-exporter", 0.2, 8.0, 1.0, 900.0);
        plain.figures.bytes = Some(10_000.0);
        let mut gz = row("opsmon-exporter", 0.3, 8.0, 1.5, 600.0);
        gz.figures.bytes = Some(2_000.0);
        gz.figures.gzipped = Some(1.0);
        let mut peer_gz = row("peer", 1.0, 20.0, 4.0, 300.0);
        peer_gz.figures.gzipped = Some(0.0);
        let t = gzip_table(&[plain, row("peer", 1.0, 20.0, 4.0, 300.0)], &[peer_gz, gz]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[2],
            "| opsmon-exporter | yes | 10000 → 2000 (0.20×) | 0.200 → 0.300 (1.50×) | n/a → n/a | 1.00 → 1.50 (1.50×) | 900.0 → 600.0 (0.67×) |"
        );
        assert!(lines[3].starts_with("| peer | **no** | n/a → n/a | 1.000 → 1.000 (1.00×)"), "{}", lines[3]);
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn goal_verdicts_both_ways() {
        assert_eq!(goal_verdict(Some(0.5), true, 0.5), "✅ PASS");
        assert_eq!(goal_verdict(Some(0.51), true, 0.5), "❌ MISS");
        assert_eq!(goal_verdict(Some(3.0), false, 3.0), "✅ PASS");
        assert_eq!(goal_verdict(Some(2.9), false, 3.0), "❌ MISS");
        assert_eq!(goal_verdict(None, false, 3.0), "n/a");
    }

    #[test]
    fn median_keeps_static_target_figures() {
        let run = |v: f64| Figures {
            static_cpu_ms_per_probe: Some(v),
            static_requests_per_probe: Some(1.0),
            ..Figures::default()
        };
        let m = Figures::median(&[run(0.3), run(0.1), run(0.2)]);
        assert_eq!(m.static_cpu_ms_per_probe, Some(0.2));
        assert_eq!(m.static_requests_per_probe, Some(1.0));
        assert_eq!(m.static_cores, None);
    }

    #[test]
    fn shortens_on_char_boundaries() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "ab…");
        assert_eq!(shorten("ééééé", 4), "ééé…");
    }

    #[test]
    fn statements_table_per_scrape_and_escaped() {
        let st = |calls: f64, exec: f64, q: &str| Statement {
            calls,
            exec_ms: exec,
            plan_ms: 1.0,
            rows: 10.0,
            query: q.into(),
        };
        let t = statements_table(
            &[st(100.0, 50.0, "SELECT a || b"), st(100.0, 5.0, "SELECT 1"), st(1.0, 0.1, "x")],
            100,
            2,
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[2], "| 1.00 | 0.500 | 0.010 | 0.1 | `SELECT a \\|\\| b` |");
        assert_eq!(lines[4], "| … | | | | (1 more statements) |");
        assert_eq!(lines[5], "| **2.01** | **0.551** | **0.030** | | **all 3 statements** |");
    }

    #[test]
    fn reads_cpu_model() {
        let info =
            "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n";
        assert_eq!(cpu_model(info).as_deref(), Some("Intel(R) Xeon(R) CPU @ 2.20GHz"));
        assert_eq!(cpu_model("processor : 0\n"), None);
    }
}
