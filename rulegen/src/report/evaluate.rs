//! Which queries a checklist needs ([`plan`]), and the report from their
//! answers ([`assemble`]) — both pure, so the verdicts are tested on
//! recorded Prometheus answers without a server.
//!
//! An item's status is the worst of: its alerts (`ALERTS` at the report's
//! instant: a critical one firing is critical, a warning or info one is a
//! warning) and its value against its own limits. An item whose value has
//! no data (or whose query failed) and no alert firing is "no data".

use super::client::{AskError, Query, Series};
use super::show;
use super::time;
use super::{ItemReport, ListReport, LogMatches, Overnight, OvernightAlert, Report, Status};
use crate::format::format_duration;
use crate::known::unit_word;
use crate::model::{Checklist, ChecklistItem, Checklists, Direction, Threshold};
use std::collections::{BTreeMap, BTreeSet};

const DAY: f64 = 86_400.0;
const WEEK: f64 = 7.0 * DAY;
/// Sparkline resolution: 24 h in 144 points of 10 minutes.
const SPARK_STEP: f64 = 600.0;
/// Most points the overnight `ALERTS` range asks for (Prometheus allows 11 000).
const OVERNIGHT_POINTS: f64 = 1000.0;

/// Alerts firing or pending now.
pub const ALERTS_NOW: &str = "ALERTS";

/// The queries of a report and which answer each item reads.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Queries in asking order; the first is `ALERTS` now.
    pub queries: Vec<Query>,
    /// The lists asked for, each with its items (indices into the model's items).
    pub lists: Vec<(Checklist, Vec<usize>)>,
    /// Per model item that is reported: its query indices.
    items: BTreeMap<usize, ItemQueries>,
    /// Overnight queries: (ALERTS range, log matches, range step).
    overnight: Option<(usize, usize, f64)>,
}

#[derive(Debug, Clone, Default)]
struct ItemQueries {
    now: Option<usize>,
    yesterday: Option<usize>,
    last_week: Option<usize>,
    spark: Option<usize>,
}

/// The queries answering `lists` at `at`.
pub fn plan(checklists: &Checklists, lists: &[Checklist], at: f64, sparklines: bool) -> Plan {
    let mut queries = vec![Query::Instant { expr: ALERTS_NOW.to_owned(), time: at }];
    let mut push = |q: Query| {
        queries.push(q);
        queries.len() - 1
    };
    let mut items = BTreeMap::new();
    let mut chosen = Vec::new();
    for &list in lists {
        let indices: Vec<usize> = checklists
            .items
            .iter()
            .enumerate()
            .filter(|(_, item)| item.checklists.contains(&list))
            .map(|(i, _)| i)
            .collect();
        for &i in &indices {
            if items.contains_key(&i) {
                continue;
            }
            let item = &checklists.items[i];
            let mut q = ItemQueries::default();
            if let Some(expr) = &item.value {
                let instant = |time: f64| Query::Instant { expr: expr.clone(), time };
                q.now = Some(push(instant(at)));
                if item.compare {
                    q.yesterday = Some(push(instant(at - DAY)));
                    q.last_week = Some(push(instant(at - WEEK)));
                }
                if sparklines {
                    q.spark = Some(push(Query::Range {
                        expr: expr.clone(),
                        start: at - DAY,
                        end: at,
                        step: SPARK_STEP,
                    }));
                }
            }
            items.insert(i, q);
        }
        chosen.push((list, indices));
    }
    let overnight = lists.contains(&Checklist::Morning).then(|| {
        let window = checklists.overnight.as_secs_f64();
        let step = (window / OVERNIGHT_POINTS).max(15.0).round();
        let alerts = push(Query::Range {
            expr: "ALERTS{alertstate=\"firing\"}".to_owned(),
            start: at - window,
            end: at,
            step,
        });
        let logs = push(Query::Instant {
            expr: format!(
                "sum by (file, pattern) (increase(opsmon_log_matches_total[{}]))",
                format_duration(checklists.overnight)
            ),
            time: at,
        });
        (alerts, logs, step)
    });
    Plan { queries, lists: chosen, items, overnight }
}

/// The report from the answers (in the plan's query order).
pub fn assemble(
    plan: &Plan,
    checklists: &Checklists,
    answers: &[Result<Vec<Series>, AskError>],
    at: f64,
) -> Report {
    let answer = |i: Option<usize>| i.and_then(|i| answers.get(i));
    let (firing, pending, alerts_note) = match answers.first() {
        Some(Ok(series)) => alert_states(series),
        Some(Err(e)) => (BTreeSet::new(), BTreeSet::new(), Some(format!("alert states unknown: {e}"))),
        None => (BTreeSet::new(), BTreeSet::new(), None),
    };
    let reported: BTreeMap<usize, ItemReport> = plan
        .items
        .iter()
        .map(|(&i, q)| {
            let item = &checklists.items[i];
            let mut report = item_report(item, q, &answer, &firing, &pending);
            if let Some(note) = &alerts_note
                && !item.alerts.is_empty()
            {
                report.note.get_or_insert_with(|| note.clone());
            }
            (i, report)
        })
        .collect();
    let lists = plan
        .lists
        .iter()
        .map(|(list, indices)| ListReport {
            checklist: list.as_str(),
            heading: list.heading(),
            items: indices.iter().filter_map(|i| reported.get(i).cloned()).collect(),
        })
        .collect();
    let overnight = plan
        .overnight
        .map(|(alerts, logs, step)| overnight(checklists, answers.get(alerts), answers.get(logs), at, step));
    Report {
        prometheus: String::new(),
        at,
        at_text: time::format(at),
        checklists: lists,
        overnight,
        queries: plan.queries.len(),
        elapsed_ms: 0,
    }
}

/// alertnames firing and pending now (from `ALERTS`), and a note when the
/// answer could not be read.
fn alert_states(series: &[Series]) -> (BTreeSet<String>, BTreeSet<String>, Option<String>) {
    let (mut firing, mut pending) = (BTreeSet::new(), BTreeSet::new());
    for s in series {
        let Some(name) = s.labels.get("alertname") else { continue };
        match s.labels.get("alertstate").map(String::as_str) {
            Some("firing") => firing.insert(name.clone()),
            Some("pending") => pending.insert(name.clone()),
            _ => false,
        };
    }
    (firing, pending, None)
}

fn item_report<'a>(
    item: &ChecklistItem,
    q: &ItemQueries,
    answer: &impl Fn(Option<usize>) -> Option<&'a Result<Vec<Series>, AskError>>,
    firing: &BTreeSet<String>,
    pending: &BTreeSet<String>,
) -> ItemReport {
    let direction = item
        .critical
        .or(item.warning)
        .or(item.alert_threshold)
        .map(|t| t.direction)
        .unwrap_or(Direction::Above);
    let mut status = Status::Ok;
    let mut fired = Vec::new();
    let mut waiting = Vec::new();
    for (name, severity) in &item.alerts {
        if firing.contains(name) {
            status = status.max(if severity == "critical" { Status::Critical } else { Status::Warning });
            fired.push(format!("{name} ({severity})"));
        } else if pending.contains(name) {
            waiting.push(name.clone());
        }
    }
    let mut note = None;
    let mut series = 0;
    let value = match (&item.value, answer(q.now)) {
        (None, _) => Some(fired.len() as f64),
        (Some(_), Some(Ok(answer))) => {
            series = answer.len();
            let v = worst(answer, direction);
            if v.is_none() {
                note = Some("no data at this time".to_owned());
            }
            v
        }
        (Some(_), Some(Err(e))) => {
            note = Some(e.to_string());
            None
        }
        (Some(_), None) => None,
    };
    if let Some(v) = value {
        for (limit, verdict) in [(item.critical, Status::Critical), (item.warning, Status::Warning)] {
            if limit.is_some_and(|l| crossed(v, l)) {
                status = status.max(verdict);
            }
        }
    } else if status == Status::Ok {
        status = Status::NoData;
    }
    if series > 1 {
        let which = if direction == Direction::Above { "highest" } else { "lowest" };
        note.get_or_insert_with(|| format!("{which} of {series} series"));
    }
    if !waiting.is_empty() {
        note = Some(format!("{}pending: {}", note.map(|n| n + "; ").unwrap_or_default(), waiting.join(", ")));
    }
    let then = |i: Option<usize>| match answer(i) {
        Some(Ok(s)) => worst(s, direction),
        _ => None,
    };
    let (yesterday, last_week) = (then(q.yesterday), then(q.last_week));
    let sparkline = match answer(q.spark) {
        Some(Ok(s)) => merge(s, direction),
        _ => Vec::new(),
    };
    ItemReport {
        title: item.title.clone(),
        status,
        value,
        value_text: match (value, &item.value) {
            (Some(v), None) => format!("{} firing", v as u64),
            (Some(v), Some(_)) => show::value(v, item.unit),
            (None, _) => "—".to_owned(),
        },
        threshold_text: show::limits(item),
        unit: unit_word(item.unit),
        series,
        firing: fired,
        pending: waiting,
        yesterday,
        last_week,
        change_day: value.zip(yesterday).and_then(|(n, t)| show::change(n, t)),
        change_week: value.zip(last_week).and_then(|(n, t)| show::change(n, t)),
        compare: item.compare,
        note,
        sparkline,
    }
}

/// Whether `value` is past `limit`; an inclusive limit (an alert's `>=`/`<=`)
/// is crossed at the limit itself, as its alert fires there.
pub fn crossed(value: f64, limit: Threshold) -> bool {
    match (limit.direction, limit.inclusive) {
        (Direction::Above, false) => value > limit.value,
        (Direction::Above, true) => value >= limit.value,
        (Direction::Below, false) => value < limit.value,
        (Direction::Below, true) => value <= limit.value,
    }
}

/// The worst value of an instant answer: the highest when the limit is
/// above, the lowest when below. NaN is ignored.
fn worst(series: &[Series], direction: Direction) -> Option<f64> {
    let values = series.iter().filter_map(|s| s.points.last().map(|p| p.1)).filter(|v| !v.is_nan());
    match direction {
        Direction::Above => values.reduce(f64::max),
        Direction::Below => values.reduce(f64::min),
    }
}

/// One line from a range answer: the worst value at each time.
fn merge(series: &[Series], direction: Direction) -> Vec<(f64, f64)> {
    let mut by_time: BTreeMap<i64, f64> = BTreeMap::new();
    for (t, v) in series.iter().flat_map(|s| &s.points) {
        if !v.is_finite() {
            continue;
        }
        let key = (*t * 1000.0).round() as i64;
        by_time
            .entry(key)
            .and_modify(|w| {
                *w = match direction {
                    Direction::Above => w.max(*v),
                    Direction::Below => w.min(*v),
                }
            })
            .or_insert(*v);
    }
    by_time.into_iter().map(|(t, v)| (t as f64 / 1000.0, v)).collect()
}

fn overnight(
    checklists: &Checklists,
    alerts: Option<&Result<Vec<Series>, AskError>>,
    logs: Option<&Result<Vec<Series>, AskError>>,
    at: f64,
    step: f64,
) -> Overnight {
    let window = checklists.overnight.as_secs_f64();
    let mut notes = Vec::new();
    let mut fired: BTreeMap<String, OvernightAlert> = BTreeMap::new();
    let mut span: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    match alerts {
        Some(Ok(series)) => {
            for s in series {
                let (Some(name), Some(first), Some(last)) =
                    (s.labels.get("alertname"), s.points.first(), s.points.last())
                else {
                    continue;
                };
                // The always-firing dead-man's switch (severity none) is no news.
                if s.labels.get("severity").is_some_and(|v| v == "none") {
                    continue;
                }
                let entry = span.entry(name.clone()).or_insert((first.0, last.0));
                entry.0 = entry.0.min(first.0);
                entry.1 = entry.1.max(last.0);
                fired.entry(name.clone()).or_insert_with(|| OvernightAlert {
                    name: name.clone(),
                    severity: s.labels.get("severity").cloned().unwrap_or_default(),
                    first: String::new(),
                    last: String::new(),
                    resolved: false,
                });
            }
        }
        Some(Err(e)) => notes.push(format!("alert history unknown: {e}")),
        None => {}
    }
    let mut alerts: Vec<OvernightAlert> = fired
        .into_values()
        .map(|mut a| {
            let (first, last) = span[&a.name];
            a.first = time::format(first);
            a.last = time::format(last);
            // Still firing at the last step means not resolved.
            a.resolved = last < at - step * 1.5;
            a
        })
        .collect();
    alerts.sort_by(|a, b| a.first.cmp(&b.first).then(a.name.cmp(&b.name)));
    let mut log_matches = Vec::new();
    match logs {
        Some(Ok(series)) => {
            for s in series {
                let count = s.points.last().map(|p| p.1).unwrap_or(0.0);
                if count.is_finite() && count >= 0.5 {
                    let label = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
                    log_matches.push(LogMatches {
                        file: label("file"),
                        pattern: label("pattern"),
                        count: count.round(),
                    });
                }
            }
        }
        Some(Err(e)) => notes.push(format!("error-log matches unknown: {e}")),
        None => {}
    }
    log_matches.sort_by(|a, b| b.count.total_cmp(&a.count).then(a.file.cmp(&b.file)));
    Overnight {
        window: format_duration(checklists.overnight),
        from: time::format(at - window),
        to: time::format(at),
        log_matches,
        alerts,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::client::{Failure, parse_answer};
    use opsmon_catalog::Unit;
    use std::time::Duration;

    const AT: f64 = 1_777_856_400.0;

    fn fixture(name: &str) -> Result<Vec<Series>, AskError> {
        let path = format!("{}/tests/fixtures/prometheus/{name}", env!("CARGO_MANIFEST_DIR"));
        let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        parse_answer(&body).map_err(|f| match f {
            Failure::Refused { kind, message } => AskError::Query { kind, message },
            Failure::NotAnAnswer(why) => AskError::Malformed { url: "fixture".into(), why },
        })
    }

    fn item(title: &str, lists: &[Checklist]) -> ChecklistItem {
        ChecklistItem {
            title: title.into(),
            checklists: lists.to_vec(),
            alerts: Vec::new(),
            value: None,
            unit: Unit::None,
            alert_threshold: None,
            warning: None,
            critical: None,
            compare: false,
        }
    }

    fn alerts(names: &[(&str, &str)]) -> Vec<(String, String)> {
        names.iter().map(|(n, s)| ((*n).to_owned(), (*s).to_owned())).collect()
    }

    /// The morning list of the guide with a Redis outage and a stale
    /// backup, from recorded answers.
    fn morning() -> Checklists {
        let above = |value, unit| Threshold {
            value,
            direction: Direction::Above,
            unit,
            inclusive: false,
            baseline: None,
        };
        Checklists {
            overnight: Duration::from_secs(15 * 3600),
            items: vec![
                ChecklistItem {
                    alerts: alerts(&[("RedisDown", "critical"), ("RedisOutOfMemory", "warning")]),
                    ..item("验证关键服务可用性 (Redis)", &[Checklist::Morning])
                },
                ChecklistItem {
                    alerts: alerts(&[("BackupTooOld", "warning")]),
                    value: Some(
                        "time() - opsmon_files_newest_timestamp_seconds{name=\"postgres_backup\"}".into(),
                    ),
                    unit: Unit::Seconds,
                    alert_threshold: Some(above(93_600.0, Unit::Seconds)),
                    critical: Some(above(172_800.0, Unit::Seconds)),
                    ..item("确认备份任务执行状态", &[Checklist::Morning])
                },
                ChecklistItem {
                    alerts: alerts(&[("HostCpuHigh", "warning")]),
                    value: Some("cpu".into()),
                    unit: Unit::Ratio,
                    ..item("检查服务器资源使用率 (CPU)", &[Checklist::Morning, Checklist::Afternoon])
                },
                ChecklistItem {
                    value: Some("sum(smartalk_active_users{window=\"5m\"})".into()),
                    compare: true,
                    ..item("监控实时用户活跃度", &[Checklist::Morning])
                },
                ChecklistItem { value: Some("bad".into()), ..item("a refused query", &[Checklist::Morning]) },
                item("evening only", &[Checklist::Evening]),
            ],
        }
    }

    #[test]
    fn plans_one_query_per_value_and_comparison_plus_alerts_and_the_night() {
        let lists = morning();
        let plan = plan(&lists, &[Checklist::Morning], AT, false);
        // ALERTS; backup, cpu, users now/1d/1w, refused; overnight alerts and logs.
        assert_eq!(plan.queries.len(), 1 + 1 + 1 + 3 + 1 + 2);
        assert_eq!(plan.queries[0], Query::Instant { expr: "ALERTS".into(), time: AT });
        assert!(plan.queries.contains(&Query::Instant {
            expr: "sum(smartalk_active_users{window=\"5m\"})".into(),
            time: AT - WEEK
        }));
        assert!(plan.queries.contains(&Query::Instant {
            expr: "sum by (file, pattern) (increase(opsmon_log_matches_total[15h]))".into(),
            time: AT
        }));
        let with_lines = super::plan(&lists, &Checklist::ALL, AT, true);
        assert_eq!(with_lines.lists.len(), 3);
        assert!(
            with_lines.queries.iter().any(|q| matches!(q, Query::Range { step, .. } if *step == SPARK_STEP))
        );
    }

    #[test]
    fn exactly_the_faulty_items_are_critical_from_recorded_answers() {
        let lists = morning();
        let plan = plan(&lists, &[Checklist::Morning], AT, false);
        let answers: Vec<_> = plan
            .queries
            .iter()
            .map(|q| match q {
                Query::Instant { expr, .. } if expr == "ALERTS" => fixture("alerts.json"),
                Query::Instant { expr, .. } if expr.contains("postgres_backup") => fixture("backup_age.json"),
                Query::Instant { expr, .. } if expr == "cpu" => fixture("empty.json"),
                Query::Instant { expr, time } if expr.contains("active_users") && *time == AT => {
                    fixture("active_users.json")
                }
                Query::Instant { expr, time } if expr.contains("active_users") && *time == AT - DAY => {
                    fixture("active_users_yesterday.json")
                }
                Query::Instant { expr, .. } if expr.contains("active_users") => fixture("empty.json"),
                Query::Instant { expr, .. } if expr == "bad" => fixture("execution_error.json"),
                Query::Instant { expr, .. } if expr.contains("log_matches") => fixture("log_matches.json"),
                Query::Range { .. } => fixture("overnight.json"),
                other => panic!("unplanned {other:?}"),
            })
            .collect();
        let report = assemble(&plan, &lists, &answers, AT);
        let items = &report.checklists[0].items;
        let status: Vec<(&str, Status)> = items.iter().map(|i| (i.title.as_str(), i.status)).collect();
        assert_eq!(
            status,
            vec![
                ("验证关键服务可用性 (Redis)", Status::Critical),
                ("确认备份任务执行状态", Status::Critical),
                ("检查服务器资源使用率 (CPU)", Status::NoData),
                ("监控实时用户活跃度", Status::Ok),
                ("a refused query", Status::NoData),
            ]
        );
        assert_eq!(items[0].value_text, "1 firing");
        assert_eq!(items[0].firing, vec!["RedisDown (critical)".to_owned()]);
        assert_eq!(items[1].value_text, "2d 2h");
        assert_eq!(items[1].threshold_text, "critical > 2d 0h; warning > 26h 0m (BackupTooOld)");
        assert_eq!(items[2].pending, vec!["HostCpuHigh".to_owned()]);
        assert_eq!(items[2].note.as_deref(), Some("no data at this time; pending: HostCpuHigh"));
        assert_eq!(items[3].value, Some(132.0));
        assert_eq!(items[3].change_day, Some(0.1));
        assert_eq!(items[3].change_week, None);
        assert_eq!(
            items[4].note.as_deref(),
            Some(
                "query failed (execution): query processing would load too many samples into memory in query execution"
            )
        );
        assert_eq!(report.worst(), Status::Critical);

        let night = report.overnight.expect("morning has the night");
        assert_eq!(
            (night.from.as_str(), night.to.as_str()),
            ("2026-05-03T10:00:00Z", "2026-05-04T01:00:00Z")
        );
        let fired: Vec<(&str, bool)> = night.alerts.iter().map(|a| (a.name.as_str(), a.resolved)).collect();
        assert_eq!(fired, vec![("PostgresDown", true), ("RedisDown", false)]);
        assert_eq!(night.alerts[0].first, "2026-05-03T12:30:00Z");
        assert_eq!(night.log_matches.len(), 1, "zero-match series are left out");
        assert_eq!(night.log_matches[0].count, 12.0);
    }

    #[test]
    fn a_quiet_morning_is_all_ok_and_worst_series_is_shown() {
        let lists = Checklists {
            overnight: Duration::from_secs(3600),
            items: vec![ChecklistItem {
                value: Some("redis_up".into()),
                warning: Some(Threshold {
                    value: 1.0,
                    direction: Direction::Below,
                    unit: Unit::None,
                    inclusive: false,
                    baseline: None,
                }),
                ..item("Redis up", &[Checklist::Afternoon])
            }],
        };
        let plan = plan(&lists, &[Checklist::Afternoon], AT, false);
        assert!(plan.overnight.is_none());
        let answers = vec![fixture("empty.json"), fixture("vector.json")];
        let report = assemble(&plan, &lists, &answers, AT);
        let only = &report.checklists[0].items[0];
        // Two series answer 0 and 1; the lower one is judged against `below`.
        assert_eq!((only.value, only.status, only.series), (Some(0.0), Status::Warning, 2));
        assert_eq!(only.note.as_deref(), Some("lowest of 2 series"));
    }
}
