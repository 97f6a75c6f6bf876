//! The one trait every backend implements, the error a collector reports,
//! and the helpers collectors share: running blocking work off the async
//! runtime, reading a kernel file whole, and a lock that survives a
//! panicked holder.

use std::future::Future;
use std::io::Read as _;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};

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
    /// A backend could not be reached: refused, timed out, or the
    /// connection or its authentication failed.
    #[error("{0}")]
    Unreachable(String),
    /// A backend was reached but a query or command failed.
    #[error("{0}")]
    Query(String),
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

    /// The same error, its message prefixed with `target NAME: ` so logs and
    /// `/probe` answers say which of several targets failed.
    pub fn in_target(self, name: &str) -> Self {
        let prefixed = |message: String| format!("target {name}: {message}");
        match self {
            Self::Io { what, source } => Self::Io { what: prefixed(what), source },
            Self::Unreachable(m) => Self::Unreachable(prefixed(m)),
            Self::Query(m) => Self::Query(prefixed(m)),
            Self::Parse(m) => Self::Parse(prefixed(m)),
            Self::Task(m) => Self::Task(prefixed(m)),
        }
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

/// Runs blocking work (filesystem walks, /proc reads) on the blocking pool,
/// so it does not stall the async runtime.
pub async fn blocking<T, F>(work: F) -> Result<T, CollectError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(|e| CollectError::Task(e.to_string()))
}

/// Reads a /proc or /sys file whole. `std::fs::read_to_string` first asks the
/// file's size (one `statx`) and, told 0 as procfs always answers, starts with
/// a small probing read; a buffer of a page or more and plain reads need
/// neither, on the dozen such files every scrape reads.
pub fn read_kernel_file(path: &Path) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut text = String::with_capacity(8192);
    // Through `Take`, which has no size hint: `File`'s own `read_to_string` would ask.
    file.take(u64::MAX).read_to_string(&mut text)?;
    Ok(text)
}

/// Locks `mutex` even when a panicking holder poisoned it: collectors keep
/// caches and sessions there, and one panicked scrape (already reported as
/// that collector's failure) must not fail every scrape after it.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
