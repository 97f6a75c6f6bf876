//! Business metrics: the configured SQL queries' families are declared in the
//! exporter config (`collectors.business`), not here, so this module holds
//! the config types both the exporter (which runs the queries) and rulegen
//! (which resolves alert expressions against them) read, plus the business
//! collector's own self-monitoring families.

use crate::MetricType::{Counter, Gauge};
use crate::{MetricDef, Unit};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

/// `collectors.business` in the exporter config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusinessConfig {
    /// Name of the PostgreSQL target (under `collectors.postgres.targets`) the queries run on.
    pub target: Option<Spanned<String>>,
    /// Every business metric name must start with this.
    pub prefix: String,
    /// The queries.
    pub queries: Vec<BusinessQuery>,
}

impl Default for BusinessConfig {
    fn default() -> Self {
        Self { target: None, prefix: "smartalk_".into(), queries: Vec::new() }
    }
}

/// One SQL query and the metric families it fills.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessQuery {
    /// Query name: the `query` label of the self metrics.
    pub name: Spanned<String>,
    /// The SQL; it must return the label columns (text) and the value columns (numbers).
    pub sql: Spanned<String>,
    /// Columns whose values become labels, in this order.
    #[serde(default)]
    pub labels: Vec<String>,
    /// The families this query fills, one per value column.
    pub metrics: Vec<BusinessMetric>,
    /// Run at most this often (e.g. `60s`); scrapes in between reuse the result.
    #[serde(default = "default_interval")]
    pub interval: Spanned<String>,
    /// `statement_timeout` for this query (e.g. `10s`).
    #[serde(default = "default_timeout")]
    pub timeout: Spanned<String>,
    /// At most this many rows become series; the rest are dropped and counted.
    #[serde(default = "default_max_series")]
    pub max_series: usize,
    /// Optional: every value a label column can take (e.g. `{window: [5m, 1h, 24h]}`),
    /// so rulegen can reject alert and panel matchers that can never match. A
    /// label not listed here is open. The exporter ignores this field.
    #[serde(default = "no_label_values")]
    pub label_values: Spanned<BTreeMap<String, Vec<String>>>,
}

/// One family filled from a value column.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessMetric {
    /// Metric name (Prometheus naming rules, the configured prefix).
    pub name: Spanned<String>,
    /// HELP text; the exporter appends how old the value may be.
    pub help: String,
    /// The value column.
    pub column: String,
    /// `gauge` (default) or `counter`.
    #[serde(default)]
    pub kind: BusinessMetricKind,
}

/// The type of a business family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusinessMetricKind {
    /// A value that can go up and down (the usual case: counts over a window, ratios).
    #[default]
    Gauge,
    /// A monotonically increasing total; the name must end in `_total`.
    Counter,
}

fn default_interval() -> Spanned<String> {
    unlocated("60s")
}
fn default_timeout() -> Spanned<String> {
    unlocated("10s")
}
fn default_max_series() -> usize {
    100
}
fn no_label_values() -> Spanned<BTreeMap<String, Vec<String>>> {
    Spanned::new(BTreeMap::new(), serde_saphyr::Location::UNKNOWN, serde_saphyr::Location::UNKNOWN)
}
fn unlocated(value: &str) -> Spanned<String> {
    Spanned::new(value.to_owned(), serde_saphyr::Location::UNKNOWN, serde_saphyr::Location::UNKNOWN)
}

/// Whether `name` is a valid Prometheus metric name without colons (colons
/// are reserved for recording rules).
pub fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

const QUERY: &[&str] = &["query"];

/// How long each business query's last run took.
pub const QUERY_DURATION: MetricDef = MetricDef {
    name: "opsmon_business_query_duration_seconds",
    metric_type: Gauge,
    unit: Unit::Seconds,
    help: "Duration of the business query's last run.",
    labels: QUERY,
    collector: "business",
};
/// Whether the last run succeeded.
pub const QUERY_SUCCESS: MetricDef = MetricDef {
    name: "opsmon_business_query_success",
    metric_type: Gauge,
    unit: Unit::None,
    help: "1 when the business query's last run succeeded, else 0 (its families then keep the last good values).",
    labels: QUERY,
    collector: "business",
};
/// When the last successful run finished.
pub const QUERY_LAST_SUCCESS: MetricDef = MetricDef {
    name: "opsmon_business_query_last_success_timestamp_seconds",
    metric_type: Gauge,
    unit: Unit::Seconds,
    help: "Unix time of the business query's last successful run.",
    labels: QUERY,
    collector: "business",
};
/// Rows beyond `max_series`.
pub const QUERY_SERIES_DROPPED: MetricDef = MetricDef {
    name: "opsmon_business_query_series_dropped",
    metric_type: Gauge,
    unit: Unit::None,
    help: "Rows of the business query's last run dropped by its max_series cap.",
    labels: QUERY,
    collector: "business",
};
/// Runs of each business query.
pub const QUERY_RUNS: MetricDef = MetricDef {
    name: "opsmon_business_query_runs_total",
    metric_type: Counter,
    unit: Unit::None,
    help: "Times the business query ran against the database (at most once per interval, whatever the scrape rate).",
    labels: QUERY,
    collector: "business",
};

/// The business collector's own families (the configured ones live in the config).
pub const METRICS: &[MetricDef] =
    &[QUERY_DURATION, QUERY_SUCCESS, QUERY_LAST_SUCCESS, QUERY_SERIES_DROPPED, QUERY_RUNS];
