//! The collectors, one module per backend, each with its config section
//! next to its code; the trait they implement and the helpers they share
//! ([`collector`]; blocking reads on batch threads: [`reader_thread`]); and
//! [`build`], the one way from a config to the running collectors: the
//! collectors the scrape engine runs on the telemetry path and the named
//! targets `/probe?target=NAME` serves.
//!
//! Nothing here knows the scrape engine or the server: they take what
//! [`build`] returns.

pub mod accesslog;
pub mod business;
pub mod collector;
pub mod files;
pub mod host;
pub mod postgres;
pub mod probe;
pub mod reader_thread;
pub mod redis;
pub mod regular_file;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

pub use collector::{BoxFuture, CollectError, Collected, Collector, blocking, lock, read_kernel_file};
use serde::Deserialize;

use crate::config::{Position, Problem, position};

/// One section per collector (`collectors:` in the config file).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorsConfig {
    /// The host collector (on by default).
    pub host: host::HostConfig,
    /// PostgreSQL targets (none by default; `DATA_SOURCE_NAME` adds one).
    pub postgres: postgres::PostgresConfig,
    /// Redis targets (none by default; `REDIS_ADDR` adds one).
    pub redis: redis::RedisConfig,
    /// HTTP/CDN probes.
    pub probe: probe::ProbeConfig,
    /// nginx access logs and application-log pattern counts.
    pub accesslog: accesslog::AccesslogConfig,
    /// File freshness for backups and job heartbeats.
    pub files: files::FilesConfig,
    /// Business gauges from SQL.
    pub business: opsmon_catalog::business::BusinessConfig,
}

impl CollectorsConfig {
    /// The peer exporters' environment conventions: postgres_exporter's
    /// `DATA_SOURCE_NAME` and redis_exporter's `REDIS_ADDR` (+ `REDIS_PASSWORD`)
    /// each add one target when the config names none.
    pub fn add_peer_environment_targets(&mut self) {
        self.postgres.add_peer_environment_target();
        self.redis.add_peer_environment_target();
    }
}

/// The collectors a config enables, built and owned: serving runs them, and
/// a reload builds a new set and swaps it in.
#[derive(Default)]
pub struct Enabled {
    /// Collectors run on every scrape of the telemetry path, in order.
    pub metrics: Vec<Arc<dyn Collector>>,
    /// Every named target (PostgreSQL, Redis), for `/probe?target=NAME`.
    pub targets: BTreeMap<String, Arc<dyn Collector>>,
    /// The probe collector's modules and allow-list, for `/probe?target=URL&module=NAME`
    /// (present even without configured probe targets).
    pub probe: Option<Arc<probe::ProbeCollector>>,
    /// The business collector, whose SQL is prepared at start-up.
    pub business: Option<Arc<business::BusinessCollector>>,
    /// Every PostgreSQL target, in config order, for what `--config.check` reports.
    pub postgres: Vec<Arc<postgres::PostgresCollector>>,
    /// Every Redis target, in config order, for what `--config.check` reports.
    pub redis: Vec<Arc<redis::RedisCollector>>,
    /// Names of the enabled collectors, in the config file's order.
    pub names: Vec<&'static str>,
}

impl std::fmt::Debug for Enabled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enabled")
            .field("metrics", &self.metrics.iter().map(|c| c.name()).collect::<Vec<_>>())
            .field("targets", &self.targets.keys().collect::<Vec<_>>())
            .field("names", &self.names)
            .finish()
    }
}

/// Checks `config` and builds every collector it enables, or returns every
/// problem found (each value — DSN, address, regex, format — is parsed here,
/// once). Must run inside a tokio runtime: database pools and the access-log
/// poll start their tasks there. Holds no global state, so a reload can call
/// it again and swap the result in.
pub fn build(config: &CollectorsConfig) -> Result<Enabled, Vec<Problem>> {
    let mut problems = target_name_problems(config);
    let mut enabled = Enabled::default();

    if !config.host.enabled {
        // Not run, but still checked: `enabled: false` must not hide a mistake.
        problems.extend(config.host.check());
    } else if let Some(host) = built(host::HostCollector::new(config.host.clone()), &mut problems) {
        enabled.metrics.push(host);
    }
    if !config.files.paths.is_empty()
        && let Some(files) = built(files::FilesCollector::new(config.files.clone()), &mut problems)
    {
        enabled.metrics.push(files);
    }
    if config.accesslog.is_enabled()
        && let Some(accesslog) = built(accesslog::AccesslogCollector::new(&config.accesslog), &mut problems)
    {
        enabled.metrics.push(accesslog);
    }

    let pg_targets = &config.postgres.targets;
    problems.extend(config.postgres.check());
    let gates = postgres::connections::ServerGates::new(
        config.postgres.connection_share,
        config.postgres.idle_timeout.0,
    );
    let mut pg_by_name = BTreeMap::new();
    for (index, target) in pg_targets.iter().enumerate() {
        match postgres::PostgresCollector::new(index, target, &gates) {
            Ok(pg) => {
                let pg = Arc::new(pg);
                pg_by_name.insert(target.name.value.clone(), Arc::clone(&pg));
                if target.default.unwrap_or(pg_targets.len() == 1) {
                    enabled.metrics.push(Arc::clone(&pg) as Arc<dyn Collector>);
                }
                enabled.targets.insert(target.name.value.clone(), Arc::clone(&pg) as Arc<dyn Collector>);
                enabled.postgres.push(pg);
            }
            Err(found) => problems.extend(found),
        }
    }
    if !config.business.queries.is_empty() {
        let names: Vec<&str> = pg_targets.iter().map(|t| t.name.value.as_str()).collect();
        match business::check(&config.business, &names) {
            Ok(queries) => {
                let target = config.business.target.as_ref().map(|t| t.value.as_str()).unwrap_or_default();
                // A target that failed to build has its own problem already.
                if let Some(pg) = pg_by_name.get(target) {
                    let pool = pg.business_pool(config.postgres.idle_timeout.0);
                    let collector = Arc::new(business::BusinessCollector::new(pool, queries));
                    enabled.business = Some(Arc::clone(&collector));
                    enabled.metrics.push(collector);
                }
            }
            Err(found) => problems.extend(found),
        }
    }
    let redis_targets = &config.redis.targets;
    for (index, target) in redis_targets.iter().enumerate() {
        match redis::RedisCollector::new(index, target) {
            Ok(collector) => {
                let collector = Arc::new(collector);
                if target.default.unwrap_or(redis_targets.len() == 1) {
                    enabled.metrics.push(Arc::clone(&collector) as Arc<dyn Collector>);
                }
                enabled
                    .targets
                    .insert(target.name.value.clone(), Arc::clone(&collector) as Arc<dyn Collector>);
                enabled.redis.push(collector);
            }
            Err(found) => problems.extend(found),
        }
    }
    match probe::ProbeCollector::new(&config.probe) {
        Ok(prober) => {
            let prober = Arc::new(prober);
            if prober.has_targets() {
                enabled.metrics.push(Arc::clone(&prober) as Arc<dyn Collector>);
            }
            // `/probe?target=NAME` serves a probe target's cached result too.
            for (name, collector) in prober.named_targets() {
                enabled.targets.entry(name).or_insert(collector);
            }
            enabled.probe = Some(prober);
        }
        Err(found) => problems.extend(found),
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    let sections = [
        ("host", config.host.enabled),
        ("postgres", !pg_targets.is_empty()),
        ("redis", !redis_targets.is_empty()),
        ("probe", !config.probe.targets.is_empty()),
        ("files", !config.files.paths.is_empty()),
        ("accesslog", config.accesslog.is_enabled()),
        ("business", !config.business.queries.is_empty()),
    ];
    enabled.names = sections.into_iter().filter(|(_, on)| *on).map(|(name, _)| name).collect();
    Ok(enabled)
}

/// The collector, shared, or `None` with its problems added to `problems`.
fn built<C: Collector>(
    result: Result<C, Vec<Problem>>,
    problems: &mut Vec<Problem>,
) -> Option<Arc<dyn Collector>> {
    match result {
        Ok(collector) => Some(Arc::new(collector)),
        Err(found) => {
            problems.extend(found);
            None
        }
    }
}

/// Target names are shared by PostgreSQL, Redis and probe targets (`/probe?target=NAME`),
/// and each backend serves at most one target on the telemetry path.
fn target_name_problems(config: &CollectorsConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut names = HashSet::new();
    let backends = [
        ("postgres", config.postgres.targets.iter().map(|t| (&t.name, t.default)).collect::<Vec<_>>()),
        ("redis", config.redis.targets.iter().map(|t| (&t.name, t.default)).collect()),
    ];
    for (backend, targets) in backends {
        let mut defaults = 0;
        for (index, (name, default)) in targets.iter().enumerate() {
            if !names.insert(name.value.as_str()) {
                problems.push(Problem::new(
                    position(&name.referenced),
                    format!("collectors.{backend}.targets[{index}].name"),
                    format!("duplicate target {:?}; target names must be unique", name.value),
                ));
            }
            if default.unwrap_or(targets.len() == 1) {
                defaults += 1;
            }
        }
        if defaults > 1 {
            problems.push(Problem::new(
                Position::UNKNOWN,
                format!("collectors.{backend}.targets"),
                "more than one target has `default: true`; /metrics serves at most one per backend, scrape the others with /probe?target=NAME",
            ));
        }
    }
    // Probe targets are served by `/probe?target=NAME` too; their own
    // duplicates are the probe section's problem.
    for (index, target) in config.probe.targets.iter().enumerate() {
        let name = &target.name;
        let taken = config.postgres.targets.iter().map(|t| &t.name.value);
        if taken.chain(config.redis.targets.iter().map(|t| &t.name.value)).any(|n| *n == name.value) {
            problems.push(Problem::new(
                position(&name.referenced),
                format!("collectors.probe.targets[{index}].name"),
                format!(
                    "duplicate target {:?}; a probe target's name must differ from the PostgreSQL and Redis targets' (all are served by /probe?target=NAME)",
                    name.value
                ),
            ));
        }
    }
    problems
}
