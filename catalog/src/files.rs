//! File-freshness families: one series per configured glob (`name` label).

use crate::MetricType::Gauge;
use crate::{MetricDef, MetricType, Unit};

const fn files(name: &'static str, metric_type: MetricType, unit: Unit, help: &'static str) -> MetricDef {
    MetricDef { name, metric_type, unit, help, labels: &["name"], collector: "files" }
}

/// Newest modification time among the matches.
pub const NEWEST_TIMESTAMP: MetricDef = files(
    "opsmon_files_newest_timestamp_seconds",
    Gauge,
    Unit::Seconds,
    "Modification time (Unix seconds) of the newest file matching the glob; 0 when nothing matches.",
);
/// Size of the newest match.
pub const NEWEST_SIZE: MetricDef =
    files("opsmon_files_newest_size_bytes", Gauge, Unit::Bytes, "Size of the newest file matching the glob.");
/// Total size of the matches.
pub const TOTAL_SIZE: MetricDef =
    files("opsmon_files_size_bytes", Gauge, Unit::Bytes, "Total size of the files matching the glob.");
/// Number of matches.
pub const COUNT: MetricDef =
    files("opsmon_files_matched", Gauge, Unit::None, "Number of regular files matching the glob.");

/// All families of the files collector.
pub const METRICS: &[MetricDef] = &[NEWEST_TIMESTAMP, NEWEST_SIZE, TOTAL_SIZE, COUNT];
