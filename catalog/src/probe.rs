//! Families of the probe collector: blackbox_exporter 0.23's HTTP prober
//! names, types and help texts (all gauges, as there), each with one extra
//! `target` label so that one scrape can carry many targets, plus opsmon's
//! CDN families (cache results, `Age`, download throughput) and the age of
//! a cached result.

use crate::MetricType::{Counter, Gauge};
use crate::Unit::{None, Seconds};
use crate::{MetricDef, MetricType, Unit};

const fn probe(
    name: &'static str,
    metric_type: MetricType,
    unit: Unit,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricDef {
    MetricDef { name, metric_type, unit, help, labels, collector: "probe" }
}

const TARGET: &[&str] = &["target"];

/// Whether the probe succeeded (status, regexes, body size, TLS all fine).
pub const SUCCESS: MetricDef =
    probe("probe_success", Gauge, None, TARGET, "Displays whether or not the probe was a success");
/// Wall time of the whole probe, redirects included.
pub const DURATION: MetricDef = probe(
    "probe_duration_seconds",
    Gauge,
    Seconds,
    TARGET,
    "Returns how long the probe took to complete in seconds",
);
/// Name resolution of the first request (0 for an IP address).
pub const DNS_LOOKUP: MetricDef = probe(
    "probe_dns_lookup_time_seconds",
    Gauge,
    Seconds,
    TARGET,
    "Returns the time taken for probe dns lookup in seconds",
);
/// Status code of the final response (0 without one).
pub const STATUS_CODE: MetricDef =
    probe("probe_http_status_code", Gauge, None, TARGET, "Response HTTP status code");
/// HTTP version of the final response (1.1, 1.0; 0 without one).
pub const HTTP_VERSION: MetricDef =
    probe("probe_http_version", Gauge, None, TARGET, "Returns the version of HTTP of the probe response");
/// `Content-Length` of the final response; -1 when it has none (chunked), as blackbox reports it.
pub const CONTENT_LENGTH: MetricDef =
    probe("probe_http_content_length", Gauge, None, TARGET, "Length of http content response");
/// Redirects followed (or the one refused when following is off).
pub const REDIRECTS: MetricDef =
    probe("probe_http_redirects", Gauge, None, TARGET, "The number of redirects");
/// 1 when a body regex made the probe fail.
pub const FAILED_DUE_TO_REGEX: MetricDef =
    probe("probe_failed_due_to_regex", Gauge, None, TARGET, "Indicates if probe failed due to regex");
/// Per phase, summed over redirects: resolve, connect, tls, processing, transfer.
pub const HTTP_DURATION: MetricDef = probe(
    "probe_http_duration_seconds",
    Gauge,
    Seconds,
    &["phase", "target"],
    "Duration of http request by phase, summed over all redirects",
);
/// Earliest `notAfter` of the certificates the server sent (Unix time); only over TLS.
pub const SSL_EARLIEST_CERT_EXPIRY: MetricDef = probe(
    "probe_ssl_earliest_cert_expiry",
    Gauge,
    None,
    TARGET,
    "Returns earliest SSL cert expiry in unixtime",
);
/// CDN responses by classified cache status; the hit ratio is `rate(hit) / rate(all)`.
pub const CDN_CACHE_REQUESTS: MetricDef = probe(
    "opsmon_cdn_cache_requests_total",
    Counter,
    None,
    &["result", "target"],
    "Probe responses of a CDN target by cache status header, classified as hit, miss, expired, stale, bypass or other.",
);
/// The classified cache status of the last CDN response: 1 for its result,
/// 0 for the other five. Unlike the counters, also on `/probe?module=cdn`.
pub const CDN_CACHE_RESULT: MetricDef = probe(
    "opsmon_cdn_cache_result",
    Gauge,
    None,
    &["result", "target"],
    "Cache status of the last probe response of a CDN target: 1 for its classified result (hit, miss, expired, stale, bypass, other), 0 for the others.",
);
/// The `Age` header of the last CDN response (0 when absent).
pub const CDN_AGE: MetricDef = probe(
    "opsmon_cdn_age_seconds",
    Gauge,
    Seconds,
    TARGET,
    "Age header of the last probe response of a CDN target (0 when the response had none).",
);
/// Body bytes over transfer time of the last CDN response.
pub const CDN_DOWNLOAD_THROUGHPUT: MetricDef = probe(
    "opsmon_cdn_download_bytes_per_second",
    Gauge,
    None,
    TARGET,
    "Download throughput of the last probe of a CDN target: body bytes divided by the transfer phase.",
);

/// Seconds since the probe whose result a configured target reports ended:
/// up to its `interval` when results are cached, about 0 otherwise.
pub const RESULT_AGE: MetricDef = probe(
    "opsmon_probe_result_age_seconds",
    Gauge,
    Seconds,
    TARGET,
    "Seconds since the probe whose result is reported ended (cached between probes when the target sets an interval).",
);

/// All families of the probe collector.
pub const METRICS: &[MetricDef] = &[
    SUCCESS,
    DURATION,
    DNS_LOOKUP,
    STATUS_CODE,
    HTTP_VERSION,
    CONTENT_LENGTH,
    REDIRECTS,
    FAILED_DUE_TO_REGEX,
    HTTP_DURATION,
    SSL_EARLIEST_CERT_EXPIRY,
    CDN_CACHE_REQUESTS,
    CDN_CACHE_RESULT,
    CDN_AGE,
    CDN_DOWNLOAD_THROUGHPUT,
    RESULT_AGE,
];
