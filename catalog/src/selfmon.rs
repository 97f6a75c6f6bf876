//! The exporter's own health: per-collector duration and success, build info,
//! and the `process_*` families every Go exporter has (same names and help).

use crate::MetricType::{Counter, Gauge};
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

/// Whether the last configuration reload (or the start-up load) succeeded.
pub const CONFIG_LAST_RELOAD_SUCCESSFUL: MetricDef = MetricDef {
    name: "opsmon_exporter_config_last_reload_successful",
    metric_type: Gauge,
    unit: Unit::None,
    help: "Whether the last configuration reload attempt was successful.",
    labels: &[],
    collector: "exporter",
};
/// When the configuration was last loaded successfully.
pub const CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP: MetricDef = MetricDef {
    name: "opsmon_exporter_config_last_reload_success_timestamp_seconds",
    metric_type: Gauge,
    unit: Unit::Seconds,
    help: "Timestamp of the last successful configuration reload.",
    labels: &[],
    collector: "exporter",
};

const fn process(
    name: &'static str,
    metric_type: crate::MetricType,
    unit: Unit,
    help: &'static str,
) -> MetricDef {
    MetricDef { name, metric_type, unit, help, labels: &[], collector: "exporter" }
}

/// User and system CPU time of the exporter process.
pub const PROCESS_CPU: MetricDef = process(
    "process_cpu_seconds_total",
    Counter,
    Unit::Seconds,
    "Total user and system CPU time spent in seconds.",
);
/// Resident memory of the exporter process.
pub const PROCESS_RESIDENT_MEMORY: MetricDef =
    process("process_resident_memory_bytes", Gauge, Unit::Bytes, "Resident memory size in bytes.");
/// Virtual memory of the exporter process.
pub const PROCESS_VIRTUAL_MEMORY: MetricDef =
    process("process_virtual_memory_bytes", Gauge, Unit::Bytes, "Virtual memory size in bytes.");
/// Open file descriptors of the exporter process.
pub const PROCESS_OPEN_FDS: MetricDef =
    process("process_open_fds", Gauge, Unit::None, "Number of open file descriptors.");
/// The soft limit on open file descriptors.
pub const PROCESS_MAX_FDS: MetricDef =
    process("process_max_fds", Gauge, Unit::None, "Maximum number of open file descriptors.");
/// Start time of the exporter process.
pub const PROCESS_START_TIME: MetricDef = process(
    "process_start_time_seconds",
    Gauge,
    Unit::Seconds,
    "Start time of the process since unix epoch in seconds.",
);

/// All self-monitoring families.
pub const METRICS: &[MetricDef] = &[
    COLLECTOR_DURATION,
    COLLECTOR_SUCCESS,
    BUILD_INFO,
    CONFIG_LAST_RELOAD_SUCCESSFUL,
    CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP,
    PROCESS_CPU,
    PROCESS_RESIDENT_MEMORY,
    PROCESS_VIRTUAL_MEMORY,
    PROCESS_OPEN_FDS,
    PROCESS_MAX_FDS,
    PROCESS_START_TIME,
];
