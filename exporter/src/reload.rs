//! Live reload: re-reading `--config.file` (or, without one, the environment)
//! through the same load, build and business-SQL preparation as start-up, and
//! the `opsmon_exporter_config_last_reload_*` gauges. [`crate::server::App`]
//! swaps the result in; this module owns turning a config into an
//! [`Active`] set and keeping reloads one at a time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use opsmon_catalog::selfmon;
use opsmon_diagnostics::Problem;

use crate::config::ConfigError;
use crate::metrics::MetricSet;
use crate::overrides::Overrides;
use crate::scrape::ScrapeEngine;
use crate::settings::{Built, Config};

/// The part of [`crate::server::App`] a config reload replaces: each request takes the set
/// in force when it starts and keeps it to the end, so in-flight scrapes
/// finish on the old collectors while new ones see the new set.
pub struct Active {
    /// The collectors `/metrics` runs.
    pub engine: ScrapeEngine,
    /// The named targets `/probe?target=NAME` serves.
    pub targets: std::collections::BTreeMap<String, Arc<dyn crate::collectors::Collector>>,
    /// The probe modules `/probe?target=URL&module=NAME` uses.
    pub prober: Option<Arc<crate::collectors::probe::ProbeCollector>>,
}

impl std::fmt::Debug for Active {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Active")
            .field("engine", &self.engine)
            .field("targets", &self.targets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Where reloads read from, whether the last one worked, and the lock that
/// keeps two reloads (SIGHUP and `/-/reload` at once) from interleaving.
#[derive(Debug)]
pub struct Reloader {
    config_file: Option<PathBuf>,
    overrides: Overrides,
    serial: tokio::sync::Mutex<()>,
    last_successful: AtomicBool,
    last_success_seconds: AtomicU64,
}

impl Default for Reloader {
    /// Reloads the environment defaults; the start-up config counts as the
    /// first successful load, as in Prometheus.
    fn default() -> Self {
        Self::new(None)
    }
}

impl Reloader {
    /// Reloads from `config_file`, or from the environment without one.
    pub fn new(config_file: Option<PathBuf>) -> Self {
        Self {
            config_file,
            overrides: Overrides::default(),
            serial: tokio::sync::Mutex::new(()),
            last_successful: AtomicBool::new(true),
            last_success_seconds: AtomicU64::new(now_seconds().to_bits()),
        }
    }

    /// The same reloader, applying the command line's `overrides` to every
    /// configuration it loads, as start-up does.
    pub fn with_overrides(mut self, overrides: Overrides) -> Self {
        self.overrides = overrides;
        self
    }

    /// Loads and builds the configuration and hands it to `swap`, all under
    /// the reload lock; on any problem logs it, records the failure and
    /// returns the problems (file:line:column, never a secret).
    pub async fn run(&self, swap: impl FnOnce(Active)) -> Result<(), String> {
        let _one_at_a_time = self.serial.lock().await;
        let source = self.config_file.clone().unwrap_or_else(|| PathBuf::from(Config::DEFAULTS_SOURCE));
        match load_and_build(self.config_file.as_deref(), &self.overrides, &source).await {
            Ok(active) => {
                let collectors = active.engine.collector_names().join(",");
                let targets = active.targets.keys().cloned().collect::<Vec<_>>().join(",");
                swap(active);
                self.last_successful.store(true, Ordering::Relaxed);
                self.last_success_seconds.store(now_seconds().to_bits(), Ordering::Relaxed);
                tracing::info!(source = %source.display(), %collectors, %targets, "configuration reloaded");
                Ok(())
            }
            Err(error) => {
                self.last_successful.store(false, Ordering::Relaxed);
                tracing::error!(source = %source.display(), %error, "configuration reload failed; the previous configuration stays in force");
                Err(error)
            }
        }
    }

    /// Adds the reload gauges to a `/metrics` answer.
    pub fn collect(&self, out: &mut MetricSet) {
        let successful = if self.last_successful.load(Ordering::Relaxed) { 1.0 } else { 0.0 };
        out.single(&selfmon::CONFIG_LAST_RELOAD_SUCCESSFUL, successful);
        out.single(
            &selfmon::CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP,
            f64::from_bits(self.last_success_seconds.load(Ordering::Relaxed)),
        );
    }
}

/// Reads the config as start-up does: the file, or the environment defaults.
async fn load_and_build(
    config_file: Option<&Path>,
    overrides: &Overrides,
    source: &Path,
) -> Result<Active, String> {
    let mut config = match config_file {
        Some(path) => Config::load(path),
        None => Config::from_defaults(),
    }
    .map_err(|error| without_snippets(&error, source))?;
    overrides.apply(&mut config)?;
    let built = config.build(source).map_err(|error| without_snippets(&error, source))?;
    prepare_business(&built, source).await?;
    Ok(into_active(built))
}

/// The problems as `file:line:column: field: message` lines, leaving out the
/// quoted neighbouring lines of the file: they may hold a password or an
/// `Authorization` header, and a reload's error goes to the journal and to
/// the `/-/reload` caller.
fn without_snippets(error: &ConfigError, source: &Path) -> String {
    let file = source.display().to_string();
    let lines: Vec<String> = error
        .problems()
        .iter()
        .map(|problem| Problem { snippet: None, ..problem.clone() }.render(&file))
        .collect();
    lines.join("\n")
}

/// Prepares the business SQL on the database, as start-up does: SQL the
/// server refuses is a configuration error naming file:line:column; an
/// unreachable database only defers the check to the first run.
pub async fn prepare_business(built: &Built, source: &Path) -> Result<(), String> {
    let Some(business) = &built.collectors.business else { return Ok(()) };
    match business.prepare().await {
        Ok(true) => tracing::info!("business queries prepared on the database"),
        Ok(false) => {
            tracing::warn!("database unreachable; business SQL will be checked on first run");
        }
        Err(problems) => {
            let lines: Vec<String> = problems
                .iter()
                .map(|(query, problem)| {
                    let (line, column) = query.sql_location;
                    format!(
                        "{}:{line}:{column}: collectors.business query {:?}: {problem}",
                        source.display(),
                        query.name
                    )
                })
                .collect();
            return Err(lines.join("\n"));
        }
    }
    Ok(())
}

/// The running parts of a built config.
pub fn into_active(built: Built) -> Active {
    let Built { policy, collectors } = built;
    Active {
        engine: ScrapeEngine::new(collectors.metrics, policy),
        targets: collectors.targets,
        prober: collectors.probe,
    }
}

fn now_seconds() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64())
}
