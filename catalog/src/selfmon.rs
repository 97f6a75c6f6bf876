//! The exporter's own health: per-collector duration and success, build info.

use crate::MetricType::Gauge;
use crate::{MetricDef, Unit};

/// How long each collector took in this scrape.
pub const COLLECTOR_DURATION: MetricDef = MetricDef {
    name: "opsmon_exporter_collector_duration_seconds",
    metric_type: Gauge,
    unit: Unit::Seconds,
    help: "Duration of the collector's part of this scrape.",
    labels: &["collector"],
    collector: "exporter",
};
/// Whether each collector succeeded within its deadline in this scrape.
pub const COLLECTOR_SUCCESS: MetricDef = MetricDef {
    name: "opsmon_exporter_collector_success",
    metric_type: Gauge,
    unit: Unit::None,
    help: "1 when the collector finished without error within the scrape deadline, else 0.",
    labels: &["collector"],
    collector: "exporter",
};
/// Constant 1 carrying the build's version.
pub const BUILD_INFO: MetricDef = MetricDef {
    name: "opsmon_exporter_build_info",
    metric_type: Gauge,
    unit: Unit::None,
    help: "A metric with a constant '1' value labeled by version and the Rust compiler the exporter was built with.",
    labels: &["version", "rustc_version"],
    collector: "exporter",
};

/// All self-monitoring families.
pub const METRICS: &[MetricDef] = &[COLLECTOR_DURATION, COLLECTOR_SUCCESS, BUILD_INFO];
