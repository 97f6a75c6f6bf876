//! Business gauges from configured SQL queries against a named PostgreSQL
//! target (active users, activation ratio, funnel, feedback sentiment…).
//!
//! Such queries can be expensive, so each runs at most once per configured
//! interval whatever the scrape rate: a scrape that finds the last result
//! fresh serves it; one that finds it stale starts a run in the background
//! (or joins the run already in flight) and waits for it until its own
//! deadline. Runs are read-only transactions with the query's own
//! `statement_timeout`, on a small pool of their own to the target's database
//! (never the connection the target's own scrape uses). Label sets missing from a
//! new result disappear; rows beyond `max_series` are dropped and counted.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use opsmon_catalog::business::{self as b, BusinessConfig, BusinessMetricKind, BusinessQuery};
use opsmon_catalog::{MetricDef, MetricType, Unit};
use sqlx::postgres::PgRow;
use sqlx::{Column, PgPool, Row, TypeInfo};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::collectors::collector::{BoxFuture, CollectError, Collected, Collector, lock};
use crate::config::{ConfigDuration, Problem, position};
use crate::metrics::{LabelValue, MetricSet};

/// A checked query: its SQL, families and limits.
#[derive(Debug)]
pub struct CheckedQuery {
    /// Query name (`query` label of the self metrics).
    pub name: String,
    sql: String,
    labels: Vec<String>,
    /// `(family, value column)` pairs.
    families: Vec<(&'static MetricDef, String)>,
    interval: Duration,
    timeout: Duration,
    max_series: usize,
    /// Where the SQL is in the config file, for start-up errors.
    pub sql_location: (u64, u64),
}

fn problem(location: &serde_saphyr::Location, message: String) -> Problem {
    Problem::new(position(location), "", message)
}

fn parse_duration(
    text: &serde_saphyr::Spanned<String>,
    field: &str,
    problems: &mut Vec<Problem>,
) -> Duration {
    match humantime::parse_duration(text.value.trim()) {
        Ok(duration) if duration > ConfigDuration::MAX => {
            problems.push(problem(
                &text.referenced,
                format!(
                    "{field}: duration {:?} is too long: at most 7d (168h); use a shorter duration, e.g. 30s, 5m or 1h",
                    text.value
                ),
            ));
            Duration::from_secs(60)
        }
        Ok(duration) if !duration.is_zero() => duration,
        _ => {
            problems.push(problem(
                &text.referenced,
                format!(
                    "{field}: invalid duration {:?}; expected a number with a unit, e.g. 30s, 5m",
                    text.value
                ),
            ));
            Duration::from_secs(60)
        }
    }
}

/// Checks `config` against naming rules and the known PostgreSQL targets and
/// turns it into queries whose families are leaked once (config-bound, so
/// bounded) to give them the `'static` lifetime every family has.
pub fn check(config: &BusinessConfig, pg_targets: &[&str]) -> Result<Vec<CheckedQuery>, Vec<Problem>> {
    let mut problems = Vec::new();
    if config.queries.is_empty() {
        return Ok(Vec::new());
    }
    match &config.target {
        None => problems.push(Problem::whole_file(
            "collectors.business.target: name the PostgreSQL target the queries run on",
        )),
        Some(target) if !pg_targets.contains(&target.value.as_str()) => problems.push(problem(
            &target.referenced,
            format!(
                "collectors.business.target: {:?} is not a PostgreSQL target; configured: {}",
                target.value,
                if pg_targets.is_empty() { "none".to_owned() } else { pg_targets.join(", ") }
            ),
        )),
        Some(_) => {}
    }
    if !b::valid_metric_name(&config.prefix) {
        problems.push(Problem::whole_file(format!(
            "collectors.business.prefix: {:?} is not a valid metric-name prefix",
            config.prefix
        )));
    }
    let mut query_names = HashSet::new();
    let mut metric_names = HashSet::new();
    let mut checked = Vec::new();
    for (index, query) in config.queries.iter().enumerate() {
        let field = format!("collectors.business.queries[{index}]");
        if !query_names.insert(query.name.value.clone()) {
            problems.push(problem(
                &query.name.referenced,
                format!("{field}.name: duplicate query {:?}", query.name.value),
            ));
        }
        if query.sql.value.trim().is_empty() {
            problems.push(problem(&query.sql.referenced, format!("{field}.sql: empty")));
        }
        let mut labels_seen = HashSet::new();
        for label in &query.labels {
            if !b::valid_metric_name(label) || label.starts_with("__") {
                problems.push(problem(
                    &query.name.referenced,
                    format!("{field}.labels: {label:?} is not a valid label name"),
                ));
            }
            if !labels_seen.insert(label) {
                problems.push(problem(
                    &query.name.referenced,
                    format!("{field}.labels: {label:?} is listed twice"),
                ));
            }
        }
        if query.max_series == 0 {
            problems.push(problem(&query.name.referenced, format!("{field}.max_series: must be at least 1")));
        }
        if query.metrics.is_empty() {
            problems
                .push(problem(&query.name.referenced, format!("{field}.metrics: list at least one metric")));
        }
        let interval = parse_duration(&query.interval, &format!("{field}.interval"), &mut problems);
        let timeout = parse_duration(&query.timeout, &format!("{field}.timeout"), &mut problems);
        let mut families = Vec::new();
        for (m_index, metric) in query.metrics.iter().enumerate() {
            let m_field = format!("{field}.metrics[{m_index}].name");
            let name = &metric.name.value;
            let mut fine = true;
            if !b::valid_metric_name(name) {
                problems.push(problem(&metric.name.referenced, format!(
                    "{m_field}: {name:?} is not a valid metric name (letters, digits and underscores, not starting with a digit)"
                )));
                fine = false;
            } else if !name.starts_with(&config.prefix) {
                problems.push(problem(
                    &metric.name.referenced,
                    format!(
                        "{m_field}: {name:?} must start with the prefix {:?} (collectors.business.prefix)",
                        config.prefix
                    ),
                ));
                fine = false;
            }
            if metric.kind == BusinessMetricKind::Counter && !name.ends_with("_total") {
                problems.push(problem(
                    &metric.name.referenced,
                    format!("{m_field}: a counter's name must end in _total"),
                ));
                fine = false;
            }
            if opsmon_catalog::find(name).is_some() || !metric_names.insert(name.clone()) {
                problems.push(problem(
                    &metric.name.referenced,
                    format!("{m_field}: {name:?} is already defined"),
                ));
                fine = false;
            }
            if query.labels.contains(&metric.column) {
                problems.push(problem(
                    &metric.name.referenced,
                    format!("{field}.metrics[{m_index}].column: {:?} is also a label column", metric.column),
                ));
                fine = false;
            }
            if fine {
                let labels: &'static [&'static str] =
                    Vec::leak(query.labels.iter().map(|l| &*String::leak(l.clone())).collect());
                let help = format!(
                    "{} (from SQL query {:?}, refreshed at most every {}; the value may be up to that old)",
                    metric.help.trim_end_matches('.'),
                    query.name.value,
                    humantime::format_duration(interval)
                );
                let def: &'static MetricDef = Box::leak(Box::new(MetricDef {
                    name: String::leak(name.clone()),
                    metric_type: match metric.kind {
                        BusinessMetricKind::Gauge => MetricType::Gauge,
                        BusinessMetricKind::Counter => MetricType::Counter,
                    },
                    unit: Unit::None,
                    help: String::leak(help),
                    labels,
                    collector: "business",
                }));
                families.push((def, metric.column.clone()));
            }
        }
        checked.push(CheckedQuery {
            name: query.name.value.clone(),
            sql: query.sql.value.clone(),
            labels: query.labels.clone(),
            families,
            interval,
            timeout,
            max_series: query.max_series,
            sql_location: sql_location(query),
        });
    }
    if problems.is_empty() { Ok(checked) } else { Err(problems) }
}

/// The YAML location of a query, for start-up errors about its SQL.
pub fn sql_location(query: &BusinessQuery) -> (u64, u64) {
    (query.sql.referenced.line(), query.sql.referenced.column())
}

/// Prepares each query's SQL on the database (without running it) and checks
/// that it returns every label and value column. `Ok(false)` when the database
/// is unreachable: the check is then left to the first run. Errors are
/// `(query, problem)` pairs.
pub async fn prepare_all(
    pool: &PgPool,
    queries: &[Arc<CheckedQuery>],
) -> Result<bool, Vec<(Arc<CheckedQuery>, String)>> {
    let Ok(Ok(mut conn)) = tokio::time::timeout(Duration::from_secs(5), pool.acquire()).await else {
        return Ok(false);
    };
    let mut problems = Vec::new();
    for query in queries {
        let prepared = sqlx::Executor::prepare(
            &mut *conn,
            sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(query.sql.clone())),
        )
        .await;
        let statement = match prepared {
            Ok(statement) => statement,
            Err(error) => {
                problems.push((
                    Arc::clone(query),
                    format!("the SQL does not prepare: {}", database_message(&error)),
                ));
                continue;
            }
        };
        let columns: Vec<&str> = sqlx::Statement::columns(&statement).iter().map(|c| c.name()).collect();
        for wanted in query.labels.iter().chain(query.families.iter().map(|(_, column)| column)) {
            if !columns.contains(&wanted.as_str()) {
                problems.push((
                    Arc::clone(query),
                    format!("the SQL returns no column {wanted:?}; it returns {}", columns.join(", ")),
                ));
            }
        }
    }
    if problems.is_empty() { Ok(true) } else { Err(problems) }
}

fn database_message(error: &sqlx::Error) -> String {
    match error.as_database_error() {
        Some(db) => db.message().to_owned(),
        None => error.to_string(),
    }
}

/// One run's outcome.
#[derive(Debug, Clone, Default)]
struct RunResult {
    /// Per family: rows of (label values, value).
    series: Vec<Vec<(Vec<LabelValue>, f64)>>,
    dropped: usize,
    duration: f64,
    error: Option<String>,
    finished: Option<SystemTime>,
}

#[derive(Debug, Default)]
struct QueryState {
    /// Last successful result and when it finished (monotonic).
    last_good: Option<(std::time::Instant, Arc<RunResult>)>,
    /// Last run, good or not (for success/duration).
    last_run: Option<(std::time::Instant, Arc<RunResult>)>,
    /// The run in flight.
    running: Option<watch::Receiver<Option<Arc<RunResult>>>>,
    runs: u64,
    last_success_unix: f64,
}

/// Runs the business queries.
pub struct BusinessCollector {
    pool: PgPool,
    queries: Vec<Arc<CheckedQuery>>,
    states: Vec<Arc<Mutex<QueryState>>>,
}

impl std::fmt::Debug for BusinessCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusinessCollector").field("queries", &self.queries).finish_non_exhaustive()
    }
}

impl BusinessCollector {
    /// A collector running `queries` on `pool` (its own, to the target's database).
    pub fn new(pool: PgPool, queries: Vec<CheckedQuery>) -> Self {
        let states = queries.iter().map(|_| Arc::default()).collect();
        Self { pool, queries: queries.into_iter().map(Arc::new).collect(), states }
    }

    /// Prepares every query on the database (see [`prepare_all`]).
    pub async fn prepare(&self) -> Result<bool, Vec<(Arc<CheckedQuery>, String)>> {
        prepare_all(&self.pool, &self.queries).await
    }

    /// Starts a run of query `index` unless its last run is fresh or one is
    /// already in flight; returns the run to wait for, if any.
    fn begin(&self, index: usize) -> Option<watch::Receiver<Option<Arc<RunResult>>>> {
        let query = &self.queries[index];
        let state = &self.states[index];
        let mut guard = lock(state);
        if guard.last_run.as_ref().is_some_and(|(at, _)| at.elapsed() < query.interval) {
            return None;
        }
        if let Some(receiver) = &guard.running {
            return Some(receiver.clone());
        }
        let (sender, receiver) = watch::channel(None);
        guard.running = Some(receiver.clone());
        guard.runs += 1;
        let (pool, query, state) = (self.pool.clone(), Arc::clone(query), Arc::clone(state));
        tokio::spawn(async move {
            let result = Arc::new(run(&pool, &query).await);
            let mut guard = lock(&state);
            let now = std::time::Instant::now();
            match &result.error {
                None => {
                    guard.last_good = Some((now, Arc::clone(&result)));
                    guard.last_success_unix = unix_now();
                }
                Some(error) => tracing::warn!(query = %query.name, %error, "business query failed"),
            }
            guard.last_run = Some((now, Arc::clone(&result)));
            guard.running = None;
            drop(guard);
            let _ = sender.send(Some(result));
        });
        Some(receiver)
    }

    /// Last good and last (good or failed) result of query `index`.
    fn results(&self, index: usize) -> (Option<Arc<RunResult>>, Option<Arc<RunResult>>) {
        let guard = lock(&self.states[index]);
        (
            guard.last_good.as_ref().map(|(_, r)| Arc::clone(r)),
            guard.last_run.as_ref().map(|(_, r)| Arc::clone(r)),
        )
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

/// One run: a read-only transaction with the query's statement timeout.
async fn run(pool: &PgPool, query: &CheckedQuery) -> RunResult {
    let started = std::time::Instant::now();
    let outcome = async {
        let mut tx = pool.begin_with("BEGIN READ ONLY").await?;
        let timeout_ms = query.timeout.as_millis();
        sqlx::query(sqlx::AssertSqlSafe(format!("SET LOCAL statement_timeout = {timeout_ms}")))
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(query.sql.clone())).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(rows)
    };
    // The statement timeout bounds the query itself; this bounds waiting for a
    // pooled connection and the round trips around it.
    let rows = match tokio::time::timeout(query.timeout + Duration::from_secs(5), outcome).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(error)) => {
            return RunResult {
                error: Some(database_message(&error)),
                duration: started.elapsed().as_secs_f64(),
                ..Default::default()
            };
        }
        Err(_) => {
            return RunResult {
                error: Some("timed out waiting for the database".into()),
                duration: started.elapsed().as_secs_f64(),
                ..Default::default()
            };
        }
    };
    let mut result = RunResult { series: vec![Vec::new(); query.families.len()], ..Default::default() };
    let kept = rows.len().min(query.max_series);
    result.dropped = rows.len() - kept;
    let mut label_sets = Vec::with_capacity(kept);
    for row in &rows[..kept] {
        match query.labels.iter().map(|l| label_value(row, l)).collect::<Result<Vec<_>, _>>() {
            Ok(labels) => label_sets.push(labels),
            Err(error) => return RunResult { error: Some(error), ..Default::default() },
        }
    }
    // Each row's labels are copied once per family it has a value for, and
    // not for the duplicate check, which borrows them.
    let mut seen = HashSet::with_capacity(kept);
    let unique: Vec<bool> = label_sets.iter().map(|labels| seen.insert(labels.as_slice())).collect();
    if let Some(index) = unique.iter().position(|first| !first) {
        result.error = Some(format!(
            "two rows have the same labels {:?}; make the label columns unique",
            label_sets[index]
        ));
    }
    drop(seen);
    for ((row, mut labels), first) in rows[..kept].iter().zip(label_sets).zip(unique) {
        if !first {
            continue;
        }
        let mut values = Vec::with_capacity(query.families.len());
        for (_, column) in &query.families {
            match number(row, column) {
                Ok(value) => values.push(value),
                Err(error) => return RunResult { error: Some(error), ..Default::default() },
            }
        }
        // NULL: no sample for this label set (e.g. a ratio over zero signups).
        let last = values.iter().rposition(Option::is_some);
        for (slot, value) in values.into_iter().enumerate() {
            let Some(value) = value else { continue };
            let labels = if Some(slot) == last { std::mem::take(&mut labels) } else { labels.clone() };
            result.series[slot].push((labels, value));
        }
    }
    result.duration = started.elapsed().as_secs_f64();
    result.finished = Some(SystemTime::now());
    result
}

fn label_value(row: &PgRow, column: &str) -> Result<LabelValue, String> {
    if let Ok(value) = row.try_get::<Option<String>, _>(column) {
        return Ok(value.unwrap_or_default().into());
    }
    if let Ok(value) = row.try_get::<Option<i64>, _>(column) {
        return Ok(value.map(|v| v.to_string()).unwrap_or_default().into());
    }
    if let Ok(value) = row.try_get::<Option<i32>, _>(column) {
        return Ok(value.map(|v| v.to_string()).unwrap_or_default().into());
    }
    Err(format!("label column {column:?} is {}; cast it to text in the SQL", column_type(row, column)))
}

fn number(row: &PgRow, column: &str) -> Result<Option<f64>, String> {
    if let Ok(value) = row.try_get::<Option<f64>, _>(column) {
        return Ok(value);
    }
    if let Ok(value) = row.try_get::<Option<i64>, _>(column) {
        return Ok(value.map(|v| v as f64));
    }
    if let Ok(value) = row.try_get::<Option<i32>, _>(column) {
        return Ok(value.map(f64::from));
    }
    if let Ok(value) = row.try_get::<Option<f32>, _>(column) {
        return Ok(value.map(f64::from));
    }
    Err(format!("value column {column:?} is {}; cast it to float8 in the SQL", column_type(row, column)))
}

fn column_type(row: &PgRow, column: &str) -> String {
    row.columns()
        .iter()
        .find(|c| c.name() == column)
        .map_or_else(|| "missing".to_owned(), |c| c.type_info().name().to_owned())
}

impl Collector for BusinessCollector {
    fn name(&self) -> &'static str {
        "business"
    }

    fn collect(&self, deadline: Instant) -> BoxFuture<'_, Collected> {
        Box::pin(async move {
            // Start every stale query first so they run side by side, then wait
            // for each until this scrape's deadline (the runs go on regardless).
            let pending: Vec<_> = (0..self.queries.len()).filter_map(|i| self.begin(i)).collect();
            for mut receiver in pending {
                let _ = tokio::time::timeout_at(deadline, receiver.wait_for(Option::is_some)).await;
            }
            let results: Vec<_> = (0..self.queries.len()).map(|i| self.results(i)).collect();
            let mut out = MetricSet::new();
            let mut first_error = None;
            let mut self_rows: BTreeMap<&str, [f64; 5]> = BTreeMap::new();
            for ((query, state), (good, last)) in self.queries.iter().zip(&self.states).zip(&results) {
                if let Some(good) = good {
                    for ((def, _), series) in query.families.iter().zip(&good.series) {
                        let mut family = out.family(def);
                        for (labels, value) in series {
                            family.number(labels.clone(), *value);
                        }
                    }
                }
                let (runs, last_success) = {
                    let guard = lock(state);
                    (guard.runs as f64, guard.last_success_unix)
                };
                let (success, duration, dropped) = match last {
                    Some(run) => {
                        (if run.error.is_none() { 1.0 } else { 0.0 }, run.duration, run.dropped as f64)
                    }
                    // Still running past this scrape's deadline.
                    None => (0.0, 0.0, 0.0),
                };
                if success == 0.0 {
                    let why =
                        last.as_ref().and_then(|r| r.error.clone()).unwrap_or_else(|| "still running".into());
                    first_error
                        .get_or_insert_with(|| CollectError::Query(format!("query {}: {why}", query.name)));
                }
                self_rows.insert(&query.name, [duration, success, last_success, dropped, runs]);
            }
            let defs: [&'static MetricDef; 5] = [
                &b::QUERY_DURATION,
                &b::QUERY_SUCCESS,
                &b::QUERY_LAST_SUCCESS,
                &b::QUERY_SERIES_DROPPED,
                &b::QUERY_RUNS,
            ];
            for (column, def) in defs.into_iter().enumerate() {
                let mut family = out.family(def);
                for (name, values) in &self_rows {
                    family.number(vec![(*name).to_owned().into()], values[column]);
                }
            }
            Collected { metrics: out, error: first_error }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> BusinessConfig {
        #[derive(serde::Deserialize)]
        struct Wrapper {
            business: BusinessConfig,
        }
        serde_saphyr::from_str::<Wrapper>(yaml).expect("parses").business
    }

    const GOOD: &str = "business:\n  target: db\n  queries:\n    - name: active\n      sql: SELECT '5m' AS \"window\", 3::float8 AS users\n      labels: [window]\n      metrics:\n        - name: smartalk_active_users\n          help: Distinct active users.\n          column: users\n";

    #[test]
    fn a_good_query_becomes_a_family_with_its_age_in_the_help() {
        let checked = check(&config(GOOD), &["db"]).expect("valid");
        let (def, column) = &checked[0].families[0];
        assert_eq!(def.name, "smartalk_active_users");
        assert_eq!(def.labels, &["window"]);
        assert_eq!(column, "users");
        assert_eq!(
            def.help,
            "Distinct active users (from SQL query \"active\", refreshed at most every 1m; the value may be up to that old)"
        );
    }

    #[test]
    fn problems_carry_locations_and_fixes() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "target: db",
                "target: nope",
                "collectors.business.target: \"nope\" is not a PostgreSQL target; configured: db",
            ),
            (
                "smartalk_active_users",
                "active_users",
                "collectors.business.queries[0].metrics[0].name: \"active_users\" must start with the prefix \"smartalk_\"",
            ),
            ("smartalk_active_users", "smartalk-active", "is not a valid metric name"),
            ("smartalk_active_users", "node_load1", "must start with the prefix"),
            ("labels: [window]", "labels: [window, window]", "\"window\" is listed twice"),
            ("column: users", "column: window", "\"window\" is also a label column"),
        ];
        for (from, to, expected) in cases {
            let yaml = GOOD.replace(from, to);
            let problems = check(&config(&yaml), &["db"]).expect_err(to);
            let text: Vec<String> = problems
                .iter()
                .map(|p| format!("{}:{}: {}", p.position.line, p.position.column, p.message))
                .collect();
            assert!(text.iter().any(|t| t.contains(expected)), "{to}: {text:?}");
            assert!(
                problems.iter().all(|p| p.position.line > 0
                    || p.message.contains("target")
                    || p.message.contains("prefix")),
                "{text:?}"
            );
        }
        let yaml = GOOD.replace("      labels:", "      interval: soon\n      labels:");
        let problems = check(&config(&yaml), &["db"]).expect_err("bad interval");
        assert_eq!(
            problems[0].message,
            "collectors.business.queries[0].interval: invalid duration \"soon\"; expected a number with a unit, e.g. 30s, 5m"
        );
        assert_eq!(problems[0].position.line, 6);
    }
}
