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
//! Long-lived state: the CDN result counters of configured targets (so that
//! `rate()` works) and the lazily built TLS client settings.

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
    AllowedTarget, ByteSize, CDN, ConfigHeaderName, ConfigHeaderValue, ConfigHeaders, ConfigMethod,
    ConfigUrl, HTTP_2XX, ModuleConfig, ProbeConfig, StatusCode, TargetConfig, check_url,
};
pub use http::{CdnObservation, Outcome, PHASES};

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
    /// Result counters of a configured CDN target; `/probe` requests have none.
    counters: Option<cdn::CacheCounters>,
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
                counters: module.cache_status_header.as_ref().map(|_| cdn::CacheCounters::default()),
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
        Ok(Arc::new(OneOff {
            shared: Arc::clone(&self.shared),
            target: Target { label: target.to_owned(), url, module: Arc::clone(module), counters: None },
        }))
    }
}

impl Collector for ProbeCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn collect(&self, deadline: Instant) -> BoxFuture<'_, Collected> {
        Box::pin(async move {
            let shared = &self.shared;
            let probe_deadline = deadline.checked_sub(DEADLINE_MARGIN).unwrap_or(deadline);
            let mut tasks = tokio::task::JoinSet::new();
            for index in 0..shared.targets.len() {
                let shared = Arc::clone(shared);
                tasks.spawn(async move {
                    let target = &shared.targets[index];
                    let outcome = probe_target(&shared, target, None, probe_deadline).await;
                    (index, outcome)
                });
            }
            let mut outcomes: Vec<Option<Outcome>> = vec![None; shared.targets.len()];
            let mut error = None;
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok((index, outcome)) => outcomes[index] = Some(outcome),
                    Err(join_error) => error = Some(CollectError::Task(join_error.to_string())),
                }
            }
            let results: Vec<(&Target, Outcome)> = shared
                .targets
                .iter()
                .zip(outcomes)
                .map(|(target, outcome)| {
                    let outcome = outcome.unwrap_or_else(|| Outcome {
                        error: Some("the probe task panicked".into()),
                        ..Outcome::default()
                    });
                    if let (Some(counters), Some(cdn)) = (&target.counters, &outcome.cdn) {
                        counters.count(classify(cdn.cache_status.as_deref()));
                    }
                    if let Some(why) = &outcome.error
                        && let Some(suppressed) = shared.failure_log.allow(&target.label)
                    {
                        tracing::warn!(target_name = %target.label, url = %target.url, error = %why, suppressed_since_last = suppressed, "probe failed");
                    }
                    (target, outcome)
                })
                .collect();
            Collected { metrics: encode(&results), error }
        })
    }
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
            encode(&[(&self.target, outcome)]).into()
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
    http::probe(&shared.tls, &target.url, &target.module, allowed, deadline).await
}

/// A one-sample-per-target family and how to read its value from an outcome.
type OutcomeGauge = (&'static opsmon_catalog::MetricDef, fn(&Outcome) -> f64);

/// The families for `results`, in catalog order.
fn encode(results: &[(&Target, Outcome)]) -> MetricSet {
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
        for (target, outcome) in results {
            family.number(vec![label(target)], value(outcome));
        }
    }
    let mut family = out.family(&m::HTTP_DURATION);
    for (target, outcome) in results {
        for (phase, seconds) in PHASES.iter().zip(outcome.phases) {
            family.number(vec![(*phase).into(), label(target)], seconds);
        }
    }
    let mut family = out.family(&m::SSL_EARLIEST_CERT_EXPIRY);
    for (target, outcome) in results {
        if let Some(expiry) = outcome.cert_expiry {
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
    let mut family = out.family(&m::CDN_AGE);
    for (target, outcome) in results {
        if let Some(cdn) = &outcome.cdn {
            family.number(vec![label(target)], cdn.age.unwrap_or(0.0));
        }
    }
    let mut family = out.family(&m::CDN_DOWNLOAD_THROUGHPUT);
    for (target, outcome) in results {
        if let Some(throughput) = outcome.cdn.as_ref().and_then(|cdn| cdn.throughput) {
            family.number(vec![label(target)], throughput);
        }
    }
    out
}

#[cfg(test)]
mod tests;
