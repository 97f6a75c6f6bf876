//! `rulegen report`: the guide's daily checklists (日常运维检查清单) answered
//! by a live Prometheus — each item's value, threshold and status, the change
//! against yesterday and last week for business items, and for the morning
//! list what happened overnight.
//!
//! - `time`: `--at` (RFC 3339 or unix seconds)
//! - `client`: the HTTP API, one deadline per request, answers parsed purely
//! - `evaluate`: which queries a checklist needs, and the report from their
//!   answers (pure, tested on recorded answers)
//! - `show`: how values, limits and changes read
//! - `table`, `markdown`, `json`, `html`: the renderers

pub mod client;
pub mod evaluate;
pub mod html;
pub mod json;
pub mod markdown;
pub mod show;
pub mod table;
pub mod time;

use crate::model::{Checklist, Checklists};
use client::{AskError, Client, Series};
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How many queries are in flight at once: enough to finish a checklist
/// in one round trip or two, few enough not to load Prometheus.
pub const CONCURRENCY: usize = 8;

/// An item's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Status {
    /// Within its limits, no alert firing.
    #[serde(rename = "ok")]
    Ok,
    /// No value for its whole window (or its query failed).
    #[serde(rename = "no data")]
    NoData,
    /// A warning limit crossed or a warning/info alert firing.
    #[serde(rename = "warning")]
    Warning,
    /// A critical limit crossed or a critical alert firing.
    #[serde(rename = "critical")]
    Critical,
}

impl Status {
    /// The word shown.
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::NoData => "no data",
            Status::Warning => "warning",
            Status::Critical => "critical",
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The server asked (credentials removed).
    pub prometheus: String,
    /// Evaluation time, unix seconds.
    pub at: f64,
    /// Evaluation time, RFC 3339 UTC.
    pub at_text: String,
    /// The lists, in the order of the day.
    pub checklists: Vec<ListReport>,
    /// What happened overnight (with the morning list).
    pub overnight: Option<Overnight>,
    /// Queries asked.
    pub queries: usize,
    /// Wall time of asking them, milliseconds.
    pub elapsed_ms: u64,
}

impl Report {
    /// Every item of every list.
    pub fn items(&self) -> impl Iterator<Item = &ItemReport> {
        self.checklists.iter().flat_map(|l| &l.items)
    }

    /// The worst status of all items.
    pub fn worst(&self) -> Status {
        self.items().map(|i| i.status).max().unwrap_or(Status::Ok)
    }

    /// How many items have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.items().filter(|i| i.status == status).count()
    }
}

/// One checklist.
#[derive(Debug, Clone, Serialize)]
pub struct ListReport {
    /// `morning`, `afternoon`, `evening`.
    pub checklist: &'static str,
    /// The guide's heading.
    pub heading: &'static str,
    /// Its items.
    pub items: Vec<ItemReport>,
}

/// One answered item.
#[derive(Debug, Clone, Serialize)]
pub struct ItemReport {
    /// The guide's words.
    pub title: String,
    /// Verdict.
    pub status: Status,
    /// The value (the worst series when several answer).
    pub value: Option<f64>,
    /// The value as shown.
    pub value_text: String,
    /// The limits as shown.
    pub threshold_text: String,
    /// `ratio`, `seconds`, `bytes`, `none`.
    pub unit: &'static str,
    /// How many series answered.
    pub series: usize,
    /// Alerts firing now: `Name (severity)`.
    pub firing: Vec<String>,
    /// Alerts pending now.
    pub pending: Vec<String>,
    /// The value 24 h earlier (business items).
    pub yesterday: Option<f64>,
    /// The value 7 days earlier (business items).
    pub last_week: Option<f64>,
    /// Relative change against yesterday (0.1 = +10 %).
    pub change_day: Option<f64>,
    /// Relative change against last week.
    pub change_week: Option<f64>,
    /// Whether this item compares with yesterday and last week.
    pub compare: bool,
    /// Why there is no value, or what else to know.
    pub note: Option<String>,
    /// The last 24 h (html only), (unix seconds, value).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sparkline: Vec<(f64, f64)>,
}

/// The morning's look back.
#[derive(Debug, Clone, Serialize)]
pub struct Overnight {
    /// Window length as written (`15h`).
    pub window: String,
    /// Start, RFC 3339 UTC.
    pub from: String,
    /// End, RFC 3339 UTC.
    pub to: String,
    /// Error-log pattern matches in the window, most first.
    pub log_matches: Vec<LogMatches>,
    /// Alerts that fired in the window.
    pub alerts: Vec<OvernightAlert>,
    /// A query that failed.
    pub note: Option<String>,
}

/// Matches of one pattern in one file.
#[derive(Debug, Clone, Serialize)]
pub struct LogMatches {
    /// Log file.
    pub file: String,
    /// Pattern name.
    pub pattern: String,
    /// Matches in the window.
    pub count: f64,
}

/// An alert that fired in the window.
#[derive(Debug, Clone, Serialize)]
pub struct OvernightAlert {
    /// alertname.
    pub name: String,
    /// severity label.
    pub severity: String,
    /// First seen firing, RFC 3339 UTC.
    pub first: String,
    /// Last seen firing, RFC 3339 UTC.
    pub last: String,
    /// Resolved before the end of the window.
    pub resolved: bool,
}

/// What to report.
#[derive(Debug, Clone)]
pub struct Options {
    /// Prometheus' base URL.
    pub prometheus: String,
    /// The lists to answer.
    pub lists: Vec<Checklist>,
    /// Evaluation time, unix seconds.
    pub at: f64,
    /// Ask for 24 h sparklines (html).
    pub sparklines: bool,
    /// Deadline of each request.
    pub timeout: Duration,
}

/// One query's answer: its series, or why there are none.
pub type Answer = Result<Vec<Series>, AskError>;

/// Prometheus could not be asked at all.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub AskError);

/// Asks Prometheus everything the lists need, `CONCURRENCY` at a time;
/// `progress(done, total)` is called as answers come in. Fails only when
/// Prometheus cannot be asked at all; a refused or empty query is the
/// item's "no data".
pub fn run(
    checklists: &Checklists,
    options: &Options,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Report, Unavailable> {
    let client = Client::new(&options.prometheus, options.timeout).map_err(Unavailable)?;
    let plan = evaluate::plan(checklists, &options.lists, options.at, options.sparklines);
    let started = Instant::now();
    let total = plan.queries.len();
    progress(0, total);
    // The first query (alerts firing now) doubles as the check that
    // Prometheus answers at all, before the rest are sent.
    let first = client.ask(&plan.queries[0]);
    if let Err(e) = &first
        && e.is_unavailable()
    {
        return Err(Unavailable(e.clone()));
    }
    let done = AtomicUsize::new(1);
    progress(1, total);
    let mut answers = vec![first];
    answers.extend(ask_all(&client, &plan.queries[1..], &|| {
        progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
    }));
    let elapsed = started.elapsed();
    let mut report = evaluate::assemble(&plan, checklists, &answers, options.at);
    report.prometheus = client.shown_url();
    report.queries = total;
    report.elapsed_ms = elapsed.as_millis().try_into().unwrap_or(u64::MAX);
    Ok(report)
}

/// Asks every query, at most `CONCURRENCY` at once, answers in query order.
fn ask_all(client: &Client, queries: &[client::Query], answered: &(dyn Fn() + Sync)) -> Vec<Answer> {
    let next = AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Answer>>> =
        queries.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..CONCURRENCY.min(queries.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(query) = queries.get(i) else { break };
                    let answer = client.ask(query);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(answer);
                    }
                    answered();
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner().ok().flatten().unwrap_or_else(|| {
                Err(AskError::Malformed { url: client.shown_url(), why: "no answer recorded".to_owned() })
            })
        })
        .collect()
}
