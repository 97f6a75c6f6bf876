//! The collectors, one module per backend, and how the config turns into the
//! collectors the scrape engine runs on the telemetry path and the named
//! targets `/probe?target=NAME` serves.

pub mod accesslog;
pub mod business;
pub mod files;
pub mod host;
pub mod postgres;
pub mod probe;
pub mod redis;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::collector::Collector;
use crate::config::Config;

/// What the config enables.
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
}

impl std::fmt::Debug for Enabled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enabled")
            .field("metrics", &self.metrics.iter().map(|c| c.name()).collect::<Vec<_>>())
            .field("targets", &self.targets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Builds the collectors for a validated `config`. Must run inside the tokio
/// runtime (database pools start their maintenance tasks there).
pub fn from_config(config: &Config) -> Result<Enabled, String> {
    let mut enabled = Enabled::default();
    if config.collectors.host.enabled {
        enabled.metrics.push(Arc::new(host::HostCollector::new(config.collectors.host.clone())));
    }
    if !config.collectors.files.paths.is_empty() {
        enabled.metrics.push(Arc::new(files::FilesCollector::new(config.collectors.files.clone())));
    }
    if config.collectors.accesslog.is_enabled() {
        enabled.metrics.push(Arc::new(accesslog::AccesslogCollector::new(&config.collectors.accesslog)?));
    }
    let pg_targets = &config.collectors.postgres.targets;
    let mut pg_pools = BTreeMap::new();
    for target in pg_targets {
        let pg = postgres::PostgresTarget::new(target)
            .map_err(|e| format!("postgres target {}: {e}", target.name.value))?;
        let pool = pg.pool().clone();
        let collector: Arc<dyn Collector> = Arc::new(pg);
        if target.default.unwrap_or(pg_targets.len() == 1) {
            enabled.metrics.push(Arc::clone(&collector));
        }
        enabled.targets.insert(target.name.value.clone(), collector);
        pg_pools.insert(target.name.value.clone(), pool);
    }
    if !config.collectors.business.queries.is_empty() {
        let names: Vec<&str> = pg_targets.iter().map(|t| t.name.value.as_str()).collect();
        let queries = business::check(&config.collectors.business, &names)
            .map_err(|problems| problems.into_iter().map(|p| p.message).collect::<Vec<_>>().join("; "))?;
        let target = config.collectors.business.target.as_ref().map(|t| t.value.clone()).unwrap_or_default();
        let pool = pg_pools
            .get(&target)
            .cloned()
            .ok_or_else(|| format!("business target {target:?} is not configured"))?;
        let collector = Arc::new(business::BusinessCollector::new(pool, queries));
        enabled.business = Some(Arc::clone(&collector));
        enabled.metrics.push(collector);
    }
    let redis_targets = &config.collectors.redis.targets;
    for target in redis_targets {
        let collector: Arc<dyn Collector> = Arc::new(
            redis::RedisTarget::new(target)
                .map_err(|e| format!("redis target {}: {e}", target.name.value))?,
        );
        if target.default.unwrap_or(redis_targets.len() == 1) {
            enabled.metrics.push(Arc::clone(&collector));
        }
        enabled.targets.insert(target.name.value.clone(), collector);
    }
    let prober = Arc::new(probe::ProbeCollector::new(&config.collectors.probe)?);
    if prober.has_targets() {
        enabled.metrics.push(Arc::clone(&prober) as Arc<dyn Collector>);
    }
    enabled.probe = Some(prober);
    Ok(enabled)
}
