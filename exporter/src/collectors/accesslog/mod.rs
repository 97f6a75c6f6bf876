//! The accesslog collector: request counts and latency histograms from nginx
//! access logs, and regex match counts over application logs. Owns its config
//! section (`collectors.accesslog`), the per-file tailing state and the
//! counters derived from the lines, which live as long as the process.
//!
//! Each file is followed by a [`tail::Tailer`]. A background task polls every
//! `poll_interval`, so rotations are noticed promptly and no backlog builds up
//! between scrapes; every scrape also catches up to end of file (bounded in
//! time) before it reads the counters, so a scrape right after lines were
//! written already counts all of them.

pub mod format;
pub mod stats;
pub mod tail;

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant as StdInstant};

use opsmon_catalog::accesslog as m;
use serde::{Deserialize, Deserializer};
use tokio::time::Instant;

use crate::collectors::collector::{BoxFuture, CollectError, Collected, Collector, blocking, lock};
use crate::config::{ConfigDuration, ConfigRegex, Position, Problem};
use crate::metrics::{LabelValue, MetricSet};
use format::LogFormat;
use stats::{Layout, RequestStats};
pub use tail::StartAt;
use tail::{Rotation, Sink, Tailer};

/// The duration buckets used when none are configured; they bracket the 1 s
/// latency threshold closely on both sides.
pub const DEFAULT_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0];

/// More routes than this would multiply the series count past what a
/// dashboard can use (routes × methods × statuses).
pub const MAX_ROUTES: usize = 100;

/// More buckets than this cost more series than they add resolution.
pub const MAX_BUCKETS: usize = 40;

/// Bytes read per lock hold, so a scrape never waits long for the background task.
const STEP_BYTES: usize = 1 << 20;

/// The background task works in slices this long, so shutdown never waits on it.
const BACKGROUND_SLICE: Duration = Duration::from_millis(250);

/// The longest a scrape spends catching up; the rest is left to the background task.
const CATCH_UP_MAX: Duration = Duration::from_secs(1);

/// Settings of the accesslog collector.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccesslogConfig {
    /// nginx access logs to tail.
    pub files: AccessFiles,
    /// Named path prefixes for the `route` label; the first match wins.
    pub routes: Routes,
    /// Upper bounds of `http_request_duration_seconds`' buckets.
    pub buckets: Buckets,
    /// Regexes counted over application logs.
    pub patterns: Patterns,
    /// Where to start in files that exist at start-up, unless a file says otherwise.
    pub start_at: StartAt,
    /// How often the files are checked for new lines and rotation.
    pub poll_interval: PollInterval,
}

impl AccesslogConfig {
    /// Whether anything is configured, i.e. whether the collector runs.
    pub fn is_enabled(&self) -> bool {
        !self.files.0.is_empty() || !self.patterns.0.is_empty()
    }
}

/// One access log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessFileConfig {
    /// Absolute path of the log; the `file` label value.
    pub path: LogPath,
    /// nginx `log_format` string the file is written with.
    #[serde(default)]
    pub format: LogFormat,
    /// Overrides `collectors.accesslog.start_at` for this file.
    #[serde(default)]
    pub start_at: Option<StartAt>,
}

/// A named path prefix.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The `route` label value.
    pub name: String,
    /// Request paths starting with this (e.g. `/api/`) get the route.
    pub prefix: String,
}

/// A regex counted over a log file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    /// Absolute path of the log; the `file` label value.
    pub file: LogPath,
    /// The `pattern` label value.
    pub name: String,
    /// Lines matching this (anywhere in the line) are counted.
    pub regex: ConfigRegex,
}

/// An absolute path (the exporter's working directory is nobody's business).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogPath(pub PathBuf);

impl<'de> Deserialize<'de> for LogPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if !Path::new(&text).is_absolute() {
            return Err(serde::de::Error::custom(format!(
                "log file path {text:?} is relative; use an absolute path such as /var/log/nginx/access.log"
            )));
        }
        Ok(LogPath(PathBuf::from(text)))
    }
}

impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        LogFormat::compile(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid log format {text:?}: {e}; expected nginx log_format syntax with $status and $request (or $request_method) separated by literal text, or `combined`"
            ))
        })
    }
}

/// `files`, with unique paths.
#[derive(Debug, Clone, Default)]
pub struct AccessFiles(pub Vec<AccessFileConfig>);

impl<'de> Deserialize<'de> for AccessFiles {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let files = Vec::<AccessFileConfig>::deserialize(deserializer)?;
        let mut seen = HashSet::new();
        for file in &files {
            if !seen.insert(&file.path) {
                return Err(serde::de::Error::custom(format!(
                    "access log {} is listed twice; list each file once",
                    file.path.0.display()
                )));
            }
        }
        Ok(AccessFiles(files))
    }
}

/// `routes`, with unique, non-empty names and `/`-prefixes.
#[derive(Debug, Clone, Default)]
pub struct Routes(pub Vec<RouteConfig>);

impl<'de> Deserialize<'de> for Routes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let routes = Vec::<RouteConfig>::deserialize(deserializer)?;
        let fail = |message: String| Err(serde::de::Error::custom(message));
        if routes.len() > MAX_ROUTES {
            return fail(format!(
                "{} routes; at most {MAX_ROUTES} are allowed, group paths under shorter prefixes",
                routes.len()
            ));
        }
        let mut names = HashSet::new();
        for route in &routes {
            if route.name.is_empty() || route.name == stats::OTHER_ROUTE {
                return fail(format!(
                    "route name {:?} is reserved or empty; `{}` is what unmatched paths get, pick another name",
                    route.name,
                    stats::OTHER_ROUTE
                ));
            }
            if !names.insert(route.name.as_str()) {
                return fail(format!(
                    "route name {:?} is used twice; give each route its own name (several prefixes need several routes)",
                    route.name
                ));
            }
            if !route.prefix.starts_with('/') {
                return fail(format!(
                    "route {:?} has prefix {:?}; expected a path prefix starting with /, e.g. /api/",
                    route.name, route.prefix
                ));
            }
        }
        Ok(Routes(routes))
    }
}

/// Histogram bucket upper bounds in seconds: finite, positive, strictly increasing.
#[derive(Debug, Clone)]
pub struct Buckets(pub Vec<f64>);

impl Default for Buckets {
    fn default() -> Self {
        Buckets(DEFAULT_BUCKETS.to_vec())
    }
}

impl<'de> Deserialize<'de> for Buckets {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bounds = Vec::<f64>::deserialize(deserializer)?;
        let valid = !bounds.is_empty()
            && bounds.len() <= MAX_BUCKETS
            && bounds.iter().all(|b| b.is_finite() && *b > 0.0)
            && bounds.windows(2).all(|w| w[0] < w[1]);
        if !valid {
            return Err(serde::de::Error::custom(format!(
                "invalid buckets {bounds:?}; expected 1 to {MAX_BUCKETS} positive numbers of seconds in strictly increasing order, e.g. [0.1, 0.5, 1, 2.5]"
            )));
        }
        Ok(Buckets(bounds))
    }
}

/// `patterns`, with unique names per file.
#[derive(Debug, Clone, Default)]
pub struct Patterns(pub Vec<PatternConfig>);

impl<'de> Deserialize<'de> for Patterns {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let patterns = Vec::<PatternConfig>::deserialize(deserializer)?;
        let mut seen = HashSet::new();
        for pattern in &patterns {
            if pattern.name.is_empty() {
                return Err(serde::de::Error::custom(
                    "pattern name must not be empty; it is the `pattern` label",
                ));
            }
            if !seen.insert((&pattern.file, pattern.name.as_str())) {
                return Err(serde::de::Error::custom(format!(
                    "pattern {:?} is defined twice for {}; pattern names must be unique per file",
                    pattern.name,
                    pattern.file.0.display()
                )));
            }
        }
        Ok(Patterns(patterns))
    }
}

/// The background poll interval: at least 10 ms, so the task cannot spin.
#[derive(Debug, Clone, Copy)]
pub struct PollInterval(pub Duration);

impl Default for PollInterval {
    fn default() -> Self {
        PollInterval(Duration::from_secs(1))
    }
}

impl<'de> Deserialize<'de> for PollInterval {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ConfigDuration(interval) = ConfigDuration::deserialize(deserializer)?;
        if interval < Duration::from_millis(10) {
            return Err(serde::de::Error::custom(format!(
                "poll_interval {interval:?} is too short; expected at least 10ms, e.g. 1s"
            )));
        }
        Ok(PollInterval(interval))
    }
}

/// The patterns of one file, matched in one pass.
#[derive(Debug)]
struct PatternSet {
    names: Vec<String>,
    set: regex::bytes::RegexSet,
}

/// Totals of one file since start-up.
#[derive(Debug, Default)]
struct FileCounts {
    lines: u64,
    parse_errors: u64,
    renames: u64,
    truncations: u64,
    matches: Vec<u64>,
    requests: RequestStats,
}

/// One followed file: its tailer, what to do with its lines, and the totals.
#[derive(Debug)]
struct TailedFile {
    label: String,
    tailer: Tailer,
    format: Option<LogFormat>,
    patterns: Option<PatternSet>,
    counts: FileCounts,
    error: Option<io::Error>,
}

/// Hands each line to the parser and the patterns.
struct Ingest<'a> {
    label: &'a str,
    format: Option<&'a LogFormat>,
    patterns: Option<&'a PatternSet>,
    layout: &'a Layout,
    counts: &'a mut FileCounts,
}

impl Sink for Ingest<'_> {
    fn line(&mut self, line: &[u8], cut: bool) {
        self.counts.lines += 1;
        if let Some(patterns) = self.patterns {
            if patterns.names.len() == 1 {
                if patterns.set.is_match(line) {
                    self.counts.matches[0] += 1;
                }
            } else {
                for index in patterns.set.matches(line).iter() {
                    self.counts.matches[index] += 1;
                }
            }
        }
        if let Some(format) = self.format {
            match format.parse(line).filter(|_| !cut) {
                Some(request) => self.counts.requests.observe(&request, self.layout),
                None => self.counts.parse_errors += 1,
            }
        }
    }

    fn rotated(&mut self, kind: Rotation) {
        match kind {
            Rotation::Rename => self.counts.renames += 1,
            Rotation::Truncate => self.counts.truncations += 1,
        }
        tracing::debug!(file = self.label, rotation = ?kind, "log file rotated");
    }
}

impl TailedFile {
    /// Reads up to [`STEP_BYTES`]; returns whether the file is caught up.
    fn step(&mut self, layout: &Layout) -> bool {
        let mut ingest = Ingest {
            label: &self.label,
            format: self.format.as_ref(),
            patterns: self.patterns.as_ref(),
            layout,
            counts: &mut self.counts,
        };
        match self.tailer.poll(STEP_BYTES, &mut ingest) {
            Ok(caught_up) => {
                self.error = None;
                caught_up
            }
            Err(error) => {
                self.error = Some(error);
                true
            }
        }
    }
}

#[derive(Debug)]
struct Inner {
    files: Vec<Mutex<TailedFile>>,
    layout: Layout,
    with_durations: bool,
    poll_interval: Duration,
}

impl Inner {
    /// Reads every file until caught up or `stop_at`; returns whether all are caught up.
    fn poll_all(&self, stop_at: StdInstant) -> bool {
        let mut all = true;
        for file in &self.files {
            loop {
                // The lock is taken per step so the scrape and the background
                // task interleave instead of one waiting for a whole backlog.
                if lock(file).step(&self.layout) {
                    break;
                }
                if StdInstant::now() >= stop_at {
                    all = false;
                    break;
                }
            }
        }
        all
    }

    fn snapshot(&self) -> Collected {
        let mut total = RequestStats::default();
        let mut lines = Vec::new();
        let mut parse_errors = Vec::new();
        let mut rotations = Vec::new();
        let mut matches = Vec::new();
        let mut error = None;
        for file in &self.files {
            let file = lock(file);
            let label: LabelValue = file.label.clone().into();
            total.merge(&file.counts.requests);
            lines.push((label.clone(), file.counts.lines));
            if file.format.is_some() {
                parse_errors.push((label.clone(), file.counts.parse_errors));
            }
            rotations.push((label.clone(), "rename", file.counts.renames));
            rotations.push((label.clone(), "truncate", file.counts.truncations));
            if let Some(patterns) = &file.patterns {
                for (name, count) in patterns.names.iter().zip(&file.counts.matches) {
                    matches.push((label.clone(), name.clone(), *count));
                }
            }
            if let (None, Some(e)) = (&error, &file.error) {
                error = Some(CollectError::io(file.label.clone(), io::Error::new(e.kind(), e.to_string())));
            }
        }
        let mut out = MetricSet::new();
        total.encode(&mut out, &self.layout, self.with_durations);
        let mut family = out.family(&m::LINES);
        for (label, count) in lines {
            family.number(vec![label], count as f64);
        }
        let mut family = out.family(&m::PARSE_ERRORS);
        for (label, count) in parse_errors {
            family.number(vec![label], count as f64);
        }
        let mut family = out.family(&m::ROTATIONS);
        for (label, kind, count) in rotations {
            family.number(vec![label, kind.into()], count as f64);
        }
        let mut family = out.family(&m::LOG_MATCHES);
        for (label, name, count) in matches {
            family.number(vec![label, name.into()], count as f64);
        }
        Collected { metrics: out, error }
    }
}

/// Tails the configured files; cheap to scrape.
#[derive(Debug)]
pub struct AccesslogCollector {
    inner: Arc<Inner>,
}

impl AccesslogCollector {
    /// Opens the configured files (missing ones are waited for) and, inside a
    /// tokio runtime, starts the background poll.
    pub fn new(config: &AccesslogConfig) -> Result<Self, Vec<Problem>> {
        let default_start = config.start_at;
        let mut files: Vec<TailedFile> = Vec::new();
        let tailed = |path: &Path, start_at: StartAt, files: &mut Vec<TailedFile>| -> usize {
            if let Some(index) = files.iter().position(|f| f.tailer.path() == path) {
                return index;
            }
            files.push(TailedFile {
                label: path.display().to_string(),
                tailer: Tailer::new(path, start_at),
                format: None,
                patterns: None,
                counts: FileCounts::default(),
                error: None,
            });
            files.len() - 1
        };
        for file in &config.files.0 {
            let index = tailed(&file.path.0, file.start_at.unwrap_or(default_start), &mut files);
            files[index].format = Some(file.format.clone());
        }
        let mut by_file: Vec<(usize, Vec<&PatternConfig>)> = Vec::new();
        for pattern in &config.patterns.0 {
            let index = tailed(&pattern.file.0, default_start, &mut files);
            match by_file.iter_mut().find(|(i, _)| *i == index) {
                Some((_, list)) => list.push(pattern),
                None => by_file.push((index, vec![pattern])),
            }
        }
        for (index, patterns) in by_file {
            let set =
                regex::bytes::RegexSet::new(patterns.iter().map(|p| p.regex.0.as_str())).map_err(|e| {
                    vec![Problem::new(
                        Position::UNKNOWN,
                        "collectors.accesslog.patterns",
                        format!("the patterns for {} cannot be combined: {e}", files[index].label),
                    )]
                })?;
            files[index].counts.matches = vec![0; patterns.len()];
            files[index].patterns =
                Some(PatternSet { names: patterns.iter().map(|p| p.name.clone()).collect(), set });
        }
        let inner = Arc::new(Inner {
            with_durations: files.iter().any(|f| f.format.as_ref().is_some_and(LogFormat::has_duration)),
            files: files.into_iter().map(Mutex::new).collect(),
            layout: Layout::new(
                config.routes.0.iter().map(|r| (r.name.clone(), r.prefix.clone())).collect(),
                config.buckets.0.clone(),
            ),
            poll_interval: config.poll_interval.0,
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(background(Arc::downgrade(&inner)));
        }
        Ok(Self { inner })
    }
}

impl AccesslogCollector {
    /// Reads every file until caught up or `stop_at`, as a scrape does before
    /// it reads the counters; returns whether all files are caught up.
    /// Blocking: call it from a blocking thread (tools and benchmarks).
    pub fn catch_up(&self, stop_at: StdInstant) -> bool {
        self.inner.poll_all(stop_at)
    }

    /// This moment's families, without reading anything new.
    pub fn snapshot(&self) -> Collected {
        self.inner.snapshot()
    }
}

/// Polls until the collector is dropped: right away again while a backlog
/// remains, else after `poll_interval`.
async fn background(inner: Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let interval = strong.poll_interval;
        let caught_up =
            blocking(move || strong.poll_all(StdInstant::now() + BACKGROUND_SLICE)).await.unwrap_or(true);
        if caught_up {
            tokio::time::sleep(interval).await;
        }
    }
}

impl Collector for AccesslogCollector {
    fn name(&self) -> &'static str {
        "accesslog"
    }

    fn reads_locally(&self) -> bool {
        true
    }

    fn collect(&self, deadline: Instant) -> BoxFuture<'_, Collected> {
        Box::pin(async move {
            let inner = Arc::clone(&self.inner);
            let budget = deadline.saturating_duration_since(Instant::now()) / 2;
            let stop_at = StdInstant::now() + budget.min(CATCH_UP_MAX);
            blocking(move || {
                inner.poll_all(stop_at);
                inner.snapshot()
            })
            .await
            .unwrap_or_else(|error| Collected { metrics: MetricSet::new(), error: Some(error) })
        })
    }
}

#[cfg(test)]
mod tests;
