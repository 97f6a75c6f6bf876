//! Families of the accesslog collector: request counts and latencies derived
//! from nginx access logs, pattern counts over application logs, and the
//! tailer's own health. Request families carry no `file` label on purpose:
//! several access logs of one site add up to one traffic picture, and every
//! label value is bounded (methods, configured routes, 3-digit statuses).

use crate::MetricType::{Counter, Histogram};
use crate::Unit::{None, Seconds};
use crate::{MetricDef, MetricType, Unit};

const fn log(
    name: &'static str,
    metric_type: MetricType,
    unit: Unit,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricDef {
    MetricDef { name, metric_type, unit, help, labels, collector: "accesslog" }
}

const FILE: &[&str] = &["file"];

/// Requests read from access logs.
pub const HTTP_REQUESTS: MetricDef = log(
    "http_requests_total",
    Counter,
    None,
    &["method", "route", "status"],
    "HTTP requests read from the access logs, by method (standard methods, else OTHER), route (configured path prefix name, else other) and status code.",
);
/// `$request_time` of those requests.
pub const HTTP_REQUEST_DURATION: MetricDef = log(
    "http_request_duration_seconds",
    Histogram,
    Seconds,
    &["method", "route"],
    "Request processing time ($request_time) read from the access logs.",
);
/// Lines read per file.
pub const LINES: MetricDef =
    log("opsmon_accesslog_lines_total", Counter, None, FILE, "Complete lines read from the tailed log file.");
/// Lines that did not match the configured format.
pub const PARSE_ERRORS: MetricDef = log(
    "opsmon_accesslog_parse_errors_total",
    Counter,
    None,
    FILE,
    "Access-log lines that did not match the configured log format and were skipped.",
);
/// Rotations noticed per file and kind.
pub const ROTATIONS: MetricDef = log(
    "opsmon_accesslog_rotations_total",
    Counter,
    None,
    &["file", "kind"],
    "Rotations of the tailed log file noticed: kind=rename (a new file took the path) or truncate (copytruncate).",
);
/// Lines matching each configured pattern.
pub const LOG_MATCHES: MetricDef = log(
    "opsmon_log_matches_total",
    Counter,
    None,
    &["file", "pattern"],
    "Log lines matching the configured regex, by file and pattern name.",
);

/// All families of the accesslog collector.
pub const METRICS: &[MetricDef] =
    &[HTTP_REQUESTS, HTTP_REQUEST_DURATION, LINES, PARSE_ERRORS, ROTATIONS, LOG_MATCHES];
