//! The catalog: every metric family opsmon-exporter can emit, declared once.
//!
//! The exporter encodes from these declarations, rulegen resolves alert
//! expressions against them, and the end-to-end tests scrape the real exporter
//! and compare what it emits with this list. Nothing here does I/O.
//!
//! ```
//! use opsmon_catalog::{find, MetricType};
//!
//! let cpu = find("node_cpu_seconds_total").expect("declared");
//! assert_eq!(cpu.metric_type, MetricType::Counter);
//! assert_eq!(cpu.labels, &["cpu", "mode"]);
//! ```

pub mod accesslog;
pub mod business;
pub mod files;
pub mod host;
pub mod postgres;
pub mod probe;
pub mod redis;
pub mod selfmon;

use std::fmt;

/// The Prometheus type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// A monotonically increasing value; the name ends in `_total`.
    Counter,
    /// A value that can go up and down.
    Gauge,
    /// Cumulative buckets plus `_sum` and `_count`.
    Histogram,
    /// No declared type; only where a peer exporter emits its metric that way
    /// (postgres_exporter's `pg_static`), so that its consumers see the same.
    Untyped,
}

impl MetricType {
    /// The word Prometheus uses in `# TYPE` lines.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Untyped => "untyped",
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The base unit of a metric's value, following the Prometheus naming guide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Seconds (durations and timestamps).
    Seconds,
    /// Bytes.
    Bytes,
    /// A ratio between 0 and 1.
    Ratio,
    /// A plain count or a 0/1 state.
    None,
}

impl Unit {
    /// The unit's name as used in metric-name suffixes and `# UNIT` lines,
    /// or `None` for dimensionless values.
    pub fn suffix(self) -> Option<&'static str> {
        match self {
            Unit::Seconds => Some("seconds"),
            Unit::Bytes => Some("bytes"),
            Unit::Ratio => Some("ratio"),
            Unit::None => None,
        }
    }
}

/// One metric family: what a scrape of the exporter may contain under this name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    /// Full exposition name; counters include their `_total` suffix.
    pub name: &'static str,
    /// Prometheus type.
    pub metric_type: MetricType,
    /// Base unit of the value.
    pub unit: Unit,
    /// HELP text.
    pub help: &'static str,
    /// Label names, in the order the exporter emits them.
    pub labels: &'static [&'static str],
    /// The collector that emits this family (`host`, `exporter`, …).
    pub collector: &'static str,
}

/// Every metric family the exporter can emit, grouped by collector.
pub fn all() -> impl Iterator<Item = &'static MetricDef> {
    [
        host::METRICS,
        postgres::METRICS,
        redis::METRICS,
        probe::METRICS,
        accesslog::METRICS,
        files::METRICS,
        business::METRICS,
        selfmon::METRICS,
    ]
    .into_iter()
    .flatten()
}

/// The families one collector emits.
pub fn for_collector(collector: &str) -> impl Iterator<Item = &'static MetricDef> + '_ {
    all().filter(move |def| def.collector == collector)
}

/// Looks up a family by its exposition name.
pub fn find(name: &str) -> Option<&'static MetricDef> {
    all().find(|def| def.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// postgres_exporter's counters that predate the `_total` convention; their
    /// names are kept for compatibility.
    const PEER_COUNTERS_WITHOUT_TOTAL: &[&str] = &[
        "pg_stat_database_",
        "pg_stat_archiver_",
        "pg_stat_user_tables_seq_scan",
        "pg_stat_user_tables_idx_scan",
    ];

    fn valid_metric_name(name: &str) -> bool {
        let mut chars = name.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    }

    #[test]
    fn names_are_unique_and_valid() {
        let mut seen = HashSet::new();
        for def in all() {
            assert!(seen.insert(def.name), "duplicate family {}", def.name);
            assert!(valid_metric_name(def.name), "invalid name {}", def.name);
            assert!(!def.help.is_empty(), "{} has no help", def.name);
            for label in def.labels {
                assert!(valid_metric_name(label), "{}: bad label {label}", def.name);
                assert!(!label.starts_with("__"), "{}: reserved label {label}", def.name);
            }
        }
    }

    #[test]
    fn names_follow_type_and_unit_conventions() {
        for def in all() {
            match def.metric_type {
                MetricType::Counter
                    if PEER_COUNTERS_WITHOUT_TOTAL.iter().any(|p| def.name.starts_with(p)) => {}
                MetricType::Counter => {
                    assert!(def.name.ends_with("_total"), "{} counter without _total", def.name);
                }
                _ => assert!(!def.name.ends_with("_total"), "{} is not a counter", def.name),
            }
            if let Some(unit) = def.unit.suffix() {
                let stem = def.name.strip_suffix("_total").unwrap_or(def.name);
                assert!(
                    stem.ends_with(unit) || stem.contains(&format!("_{unit}_")),
                    "{} does not carry its unit {unit}",
                    def.name
                );
            }
        }
    }

    #[test]
    fn lookup_by_collector() {
        assert!(for_collector("host").any(|d| d.name == "node_load1"));
        assert!(for_collector("exporter").any(|d| d.name == "opsmon_exporter_build_info"));
        assert!(find("node_memroy_MemAvailable_bytes").is_none());
    }
}
