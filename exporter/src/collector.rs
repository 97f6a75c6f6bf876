//! The one trait every backend implements, and the error a collector reports.

use std::future::Future;
use std::pin::Pin;

use tokio::time::Instant;

use crate::metrics::MetricSet;

/// A boxed, sendable future; collectors are stored as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a collector produced nothing (or only part of its families).
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// Reading a local source (a /proc file, a directory) failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being read, e.g. `/proc/stat`.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A source answered with something we could not understand.
    #[error("{0}")]
    Parse(String),
    /// A blocking task could not be joined (it panicked or was cancelled).
    #[error("background task failed: {0}")]
    Task(String),
}

impl CollectError {
    /// Wraps an I/O error with the path or thing being read.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { what: what.into(), source }
    }
}

/// What a collector returns: the families it gathered plus an error if part
/// of its work failed. A partial result still counts as failure for
/// `opsmon_exporter_collector_success`, but its families are still served.
#[derive(Debug, Default)]
pub struct Collected {
    /// The families gathered.
    pub metrics: MetricSet,
    /// The first error met, if any.
    pub error: Option<CollectError>,
}

impl From<MetricSet> for Collected {
    fn from(metrics: MetricSet) -> Self {
        Self { metrics, error: None }
    }
}

/// A source of metrics, asked for fresh values on every scrape.
pub trait Collector: Send + Sync + 'static {
    /// Stable name, used as the `collector` label.
    fn name(&self) -> &'static str;

    /// Gathers this scrape's values. `deadline` is when the scrape engine
    /// stops waiting; a collector should give up on its own network or
    /// blocking calls before then so that it can still report partial data.
    fn collect(&self, deadline: Instant) -> BoxFuture<'_, Collected>;
}
