//! The collectors, one module per backend, and how the config turns into the
//! collectors the scrape engine runs on the telemetry path and the named
//! targets `/probe?target=NAME` serves.

pub mod accesslog;
pub mod business;
pub mod files;
pub mod host;
pub mod postgres;
pub mod probe;

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
    let pg_targets = &config.collectors.postgres.targets;
    for target in pg_targets {
        let collector: Arc<dyn Collector> = Arc::new(
            postgres::PostgresTarget::new(target)
                .map_err(|e| format!("postgres target {}: {e}", target.name.value))?,
        );
        if target.default.unwrap_or(pg_targets.len() == 1) {
            enabled.metrics.push(Arc::clone(&collector));
        }
        enabled.targets.insert(target.name.value.clone(), collector);
    }
    Ok(enabled)
}
