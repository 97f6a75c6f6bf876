//! The probe collector: HTTP and CDN probes with blackbox_exporter's family
//! names. Configured targets are probed concurrently on every scrape of the
//! telemetry path, each under min(its module's timeout, the scrape deadline);
//! `/probe?target=URL&module=NAME` runs one probe of a URL the allow-list
//! admits, as blackbox_exporter's `/probe` does.
//!
//! Configured targets are trusted (whoever writes the config file can reach
//! anything anyway); the allow-list guards only URLs that arrive in requests,
//! so the exporter is never an open proxy.
//!
//! A configured target with an `interval` is probed at most once per
//! interval; scrapes in between (of the telemetry path or of
//! `/probe?target=NAME`) get the last result unchanged, with its age in
//! `opsmon_probe_result_age_seconds`. Every configured target is probed by
//! one scrape at a time: a scrape that arrives while a probe runs waits for
//! that probe's result instead of starting a second one. `/probe?target=URL`
//! is never cached: the caller's scrape interval is its interval, as with
//! blackbox_exporter.
//!
//! Long-lived state: the CDN result counters and the last results of
//! configured targets, and the lazily built TLS client settings.

mod cache;
mod cdn;
mod config;
mod http;
mod x509;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use opsmon_catalog::probe as m;
use tokio::time::Instant;
use url::Url;

pub use cdn::{CacheResult, classify};
pub use config::{
    AllowedTarget, ByteRange, ByteSize, CDN, ConfigHeaderName, ConfigHeaderValue, ConfigHeaders,
    ConfigMethod, ConfigUrl, DEFAULT_CDN_MAX_BODY_BYTES, HTTP_2XX, MAX_INTERVAL, MIN_INTERVAL, ModuleConfig,
    ProbeConfig, StatusCode, TargetConfig, check_url,
};
pub use http::{CdnObservation, Outcome, PHASES, ReadPlan};

use crate::collectors::collector::{BoxFuture, CollectError, Collected, Collector};
use crate::config::Problem;
use crate::logging::RateLimiter;
use crate::metrics::{LabelValue, MetricSet};

/// Left between a probe's own deadline and the scrape's, so that a probe cut
/// off at its deadline still reports before the engine stops waiting.
const DEADLINE_MARGIN: Duration = Duration::from_millis(25);

/// The collector name (`opsmon_exporter_collector_*{collector="probe"}`).
pub const NAME: &str = "probe";

/// The probe collector: modules, configured targets, the allow-list for
/// `/probe?target=URL`, and the CDN counters.
#[derive(Debug)]
pub struct ProbeCollector {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    modules: BTreeMap<String, Arc<ModuleConfig>>,
    targets: Vec<Target>,
    allowed_targets: Vec<AllowedTarget>,
    tls: http::TlsConfigs,
    failure_log: RateLimiter,
}

#[derive(Debug)]
struct Target {
    /// The `target` label: the configured name, or the URL of a `/probe` request.
    label: String,
    url: Url,
    module: Arc<ModuleConfig>,
    /// Range header and read limit.
    plan: ReadPlan,
    /// Result counters of a configured CDN target; `/probe` requests have none.
    counters: Option<cdn::CacheCounters>,
    /// The last result and the single-flight lock of a configured target;
    /// `/probe?target=URL` requests have none.
    cache: Option<cache::ResultCache>,
}

/// One target's result as a scrape reports it.
#[derive(Debug)]
struct Report {
    outcome: Outcome,
    /// Seconds since the probe that produced `outcome` ended.
    age: f64,
    /// Whether this scrape ran the probe (and so counts and logs its result).
    probed_now: bool,
}

impl ProbeCollector {
    /// The collector for `config`, or every problem with it.
    pub fn new(config: &ProbeConfig) -> Result<Self, Vec<Problem>> {
        let problems = config.check();
        if !problems.is_empty() {
            return Err(problems);
        }
        let modules: BTreeMap<String, Arc<ModuleConfig>> =
            config.all_modules().into_iter().map(|(name, module)| (name, Arc::new(module))).collect();
        let mut targets = Vec::with_capacity(config.targets.len());
        for target in &config.targets {
            // check() has seen that every target's module exists.
            let Some(module) = modules.get(&target.module.value) else { continue };
            targets.push(Target {
                label: target.name.value.clone(),
                url: target.url.0.clone(),
                module: Arc::clone(module),
                plan: ReadPlan { read_limit: target.read_limit(module), range: target.range.clone() },
                counters: module.cache_status_header.as_ref().map(|_| cdn::CacheCounters::default()),
                cache: Some(cache::ResultCache::new(target.interval.as_ref().map(|i| i.value.0))),
            });
        }
        Ok(Self {
            shared: Arc::new(Shared {
                modules,
                targets,
                allowed_targets: config.allowed_targets.clone(),
                tls: http::TlsConfigs::default(),
                failure_log: RateLimiter::new(Duration::from_secs(60)),
            }),
        })
    }

    /// Whether any target is configured (then the collector runs on the telemetry path).
    pub fn has_targets(&self) -> bool {
        !self.shared.targets.is_empty()
    }

    /// Names of the configured targets, in order.
    pub fn target_names(&self) -> Vec<&str> {
        self.shared.targets.iter().map(|t| t.label.as_str()).collect()
    }

    /// A collector of one configured target, for `/probe?target=NAME`: the
    /// same cached result, interval and single flight as the telemetry path.
    pub fn named_targets(&self) -> Vec<(String, Arc<dyn Collector>)> {
        (0..self.shared.targets.len())
            .map(|index| {
                let collector: Arc<dyn Collector> =
                    Arc::new(Named { shared: Arc::clone(&self.shared), index });
                (self.shared.targets[index].label.clone(), collector)
            })
            .collect()
    }

    /// Names of the modules, sorted.
    pub fn module_names(&self) -> Vec<&str> {
        self.shared.modules.keys().map(String::as_str).collect()
    }

    /// A one-off collector for `/probe?target=URL&module=NAME`, or why the
    /// request is refused (a line for a `400` body). A URL outside
    /// `allowed_targets` is refused here, before anything is sent to it.
    pub fn one_off(&self, target: &str, module: &str) -> Result<Arc<dyn Collector>, String> {
        let Some(module) = self.shared.modules.get(module) else {
            return Err(format!(
                "unknown module {module:?}; configured modules: {}\n",
                self.module_names().join(", ")
            ));
        };
        let target = target.trim();
        // blackbox_exporter takes `host:port/path` as http://host:port/path.
        let text = if target.contains("://") { target.to_owned() } else { format!("http://{target}") };
        let url = check_url(&text).map_err(|e| format!("{e}\n"))?;
        if !config::allowed(&self.shared.allowed_targets, &url) {
            let list: Vec<String> = self.shared.allowed_targets.iter().map(ToString::to_string).collect();
            return Err(format!(
                "target not allowed by collectors.probe.allowed_targets (allowed: {})\n",
                if list.is_empty() { "nothing".to_owned() } else { list.join(", ") }
            ));
        }
        let plan = ReadPlan { read_limit: module.default_read_limit(), range: None };
        Ok(Arc::new(OneOff {
            shared: Arc::clone(&self.shared),
            target: Target {
                label: target.to_owned(),
                url,
                module: Arc::clone(module),
                plan,
                counters: None,
                cache: None,
            },
        }))
    }
}

impl Collector for ProbeCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn collect(&self, deadline: Instant) -> BoxFuture<'_, Collected> {
        let indices: Vec<usize> = (0..self.shared.targets.len()).collect();
        collect_configured(Arc::clone(&self.shared), indices, deadline)
    }
}

/// One configured target, for `/probe?target=NAME`.
#[derive(Debug)]
struct Named {
    shared: Arc<Shared>,
    index: usize,
}

impl Collector for Named {
    fn name(&self) -> &'static str {
        NAME
    }

    fn collect(&self, deadline: Instant) -> BoxFuture<'_, Collected> {
        collect_configured(Arc::clone(&self.shared), vec![self.index], deadline)
    }
}

/// Probes (or takes the cached results of) the configured targets at
/// `indices` concurrently; counts and logs the results probed now.
fn collect_configured(
    shared: Arc<Shared>,
    indices: Vec<usize>,
    deadline: Instant,
) -> BoxFuture<'static, Collected> {
    Box::pin(async move {
        let probe_deadline = deadline.checked_sub(DEADLINE_MARGIN).unwrap_or(deadline);
        let mut tasks = tokio::task::JoinSet::new();
        for (slot, &index) in indices.iter().enumerate() {
            let shared = Arc::clone(&shared);
            tasks.spawn(async move {
                let target = &shared.targets[index];
                let report = match &target.cache {
                    Some(cache) => {
                        cache
                            .get_or_probe(probe_deadline, || {
                                probe_target(&shared, target, None, probe_deadline)
                            })
                            .await
                    }
                    None => Report {
                        outcome: probe_target(&shared, target, None, probe_deadline).await,
                        age: 0.0,
                        probed_now: true,
                    },
                };
                (slot, report)
            });
        }
        let mut reports: Vec<Option<Report>> = indices.iter().map(|_| None).collect();
        let mut error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((slot, report)) => reports[slot] = Some(report),
                Err(join_error) => error = Some(CollectError::Task(join_error.to_string())),
            }
        }
        let results: Vec<(&Target, Report)> = indices
            .iter()
            .zip(reports)
            .map(|(&index, report)| {
                let target = &shared.targets[index];
                let report = report.unwrap_or_else(|| Report {
                    outcome: Outcome { error: Some("the probe task panicked".into()), ..Outcome::default() },
                    age: 0.0,
                    probed_now: true,
                });
                if report.probed_now {
                    if let (Some(counters), Some(cdn)) = (&target.counters, &report.outcome.cdn) {
                        counters.count(classify(cdn.cache_status.as_deref()));
                    }
                    if let Some(why) = &report.outcome.error
                        && let Some(suppressed) = shared.failure_log.allow(&target.label)
                    {
                        tracing::warn!(target_name = %target.label, url = %target.url, error = %why, suppressed_since_last = suppressed, "probe failed");
                    }
                }
                (target, report)
            })
            .collect();
        Collected { metrics: encode(&results), error }
    })
}

/// One `/probe?target=URL&module=NAME` request.
#[derive(Debug)]
struct OneOff {
    shared: Arc<Shared>,
    target: Target,
}

impl Collector for OneOff {
    fn name(&self) -> &'static str {
        NAME
    }

    fn collect(&self, deadline: Instant) -> BoxFuture<'_, Collected> {
        Box::pin(async move {
            let probe_deadline = deadline.checked_sub(DEADLINE_MARGIN).unwrap_or(deadline);
            let allowed = Some(self.shared.allowed_targets.as_slice());
            let outcome = probe_target(&self.shared, &self.target, allowed, probe_deadline).await;
            if let Some(error) = &outcome.error {
                tracing::debug!(url = %self.target.url, %error, "probe failed");
            }
            encode(&[(&self.target, Report { outcome, age: 0.0, probed_now: true })]).into()
        })
    }
}

async fn probe_target(
    shared: &Shared,
    target: &Target,
    allowed: Option<&[AllowedTarget]>,
    scrape_deadline: Instant,
) -> Outcome {
    let deadline = (Instant::now() + target.module.timeout.0).min(scrape_deadline);
    http::probe(&shared.tls, &target.url, &target.module, &target.plan, allowed, deadline).await
}

/// A one-sample-per-target family and how to read its value from an outcome.
type OutcomeGauge = (&'static opsmon_catalog::MetricDef, fn(&Outcome) -> f64);

/// The families for `results`, in catalog order.
fn encode(results: &[(&Target, Report)]) -> MetricSet {
    let mut out = MetricSet::new();
    let label = |target: &Target| -> LabelValue { target.label.clone().into() };
    let gauges: [OutcomeGauge; 8] = [
        (&m::SUCCESS, |o| f64::from(u8::from(o.success))),
        (&m::DURATION, |o| o.duration),
        (&m::DNS_LOOKUP, |o| o.dns_lookup),
        (&m::STATUS_CODE, |o| f64::from(o.status)),
        (&m::HTTP_VERSION, |o| o.version),
        (&m::CONTENT_LENGTH, |o| o.content_length),
        (&m::REDIRECTS, |o| f64::from(o.redirects)),
        (&m::FAILED_DUE_TO_REGEX, |o| f64::from(u8::from(o.failed_due_to_regex))),
    ];
    for (def, value) in gauges {
        let mut family = out.family(def);
        for (target, report) in results {
            family.number(vec![label(target)], value(&report.outcome));
        }
    }
    let mut family = out.family(&m::HTTP_DURATION);
    for (target, report) in results {
        for (phase, seconds) in PHASES.iter().zip(report.outcome.phases) {
            family.number(vec![(*phase).into(), label(target)], seconds);
        }
    }
    let mut family = out.family(&m::SSL_EARLIEST_CERT_EXPIRY);
    for (target, report) in results {
        if let Some(expiry) = report.outcome.cert_expiry {
            family.number(vec![label(target)], expiry);
        }
    }
    let mut family = out.family(&m::CDN_CACHE_REQUESTS);
    for (target, _) in results {
        if let Some(counters) = &target.counters {
            for (result, count) in counters.snapshot() {
                family.number(vec![result.as_str().into(), label(target)], count as f64);
            }
        }
    }
    let mut family = out.family(&m::CDN_CACHE_RESULT);
    for (target, report) in results {
        if let Some(cdn) = &report.outcome.cdn {
            let found = classify(cdn.cache_status.as_deref());
            for result in CacheResult::ALL {
                family.number(
                    vec![result.as_str().into(), label(target)],
                    f64::from(u8::from(result == found)),
                );
            }
        }
    }
    let mut family = out.family(&m::CDN_AGE);
    for (target, report) in results {
        if let Some(cdn) = &report.outcome.cdn {
            family.number(vec![label(target)], cdn.age.unwrap_or(0.0));
        }
    }
    let mut family = out.family(&m::CDN_DOWNLOAD_THROUGHPUT);
    for (target, report) in results {
        if let Some(throughput) = report.outcome.cdn.as_ref().and_then(|cdn| cdn.throughput) {
            family.number(vec![label(target)], throughput);
        }
    }
    let mut family = out.family(&m::RESULT_AGE);
    for (target, report) in results {
        if target.cache.is_some() {
            family.number(vec![label(target)], report.age);
        }
    }
    out
}

#[cfg(test)]
mod tests;
