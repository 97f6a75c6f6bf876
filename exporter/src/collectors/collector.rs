//! The one trait every backend implements, the error a collector reports,
//! and the helpers collectors share: running blocking work off the async
//! runtime, reading a kernel file whole, and a lock that survives a
//! panicked holder.

use std::fs::File;
use std::future::Future;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
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

    /// Whether the work is reading local sources on the blocking pool
    /// (procfs, a directory, a log file) rather than waiting on a backend.
    /// The scrape engine starts these after the others have sent their
    /// first requests: woken blocking threads would otherwise take the
    /// cores from the one async worker before it has written them.
    fn reads_locally(&self) -> bool {
        false
    }
}

/// Runs blocking work (filesystem walks, /proc reads) on the blocking pool,
/// so it does not stall the async runtime (see [`super::reader_thread`]).
pub async fn blocking<T, F>(work: F) -> Result<T, CollectError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    super::reader_thread::spawn_reader(work).await.map_err(|e| CollectError::Task(e.to_string()))
}

/// Reads a /proc or /sys file whole. `std::fs::read_to_string` first asks the
/// file's size (one `statx`) and, told 0 as procfs always answers, starts with
/// a small probing read; a buffer of a page or more needs neither, on the
/// dozen such files every scrape reads.
pub fn read_kernel_file(path: &Path) -> std::io::Result<String> {
    read_from_start(&File::open(path)?)
}

/// Room reserved for a kernel file's text: a page or two covers every file
/// read on a small host, and a longer file grows the buffer.
const KERNEL_FILE_CAPACITY: usize = 8192;

/// `file`'s whole text from offset 0, by positional reads (a kernel file
/// regenerates its text when read from 0 again).
pub fn read_from_start(file: &File) -> std::io::Result<String> {
    let mut bytes = Vec::with_capacity(KERNEL_FILE_CAPACITY);
    loop {
        if bytes.len() == bytes.capacity() {
            bytes.reserve(bytes.capacity());
        }
        let filled = bytes.len();
        bytes.resize(bytes.capacity(), 0);
        let read = file.read_at(&mut bytes[filled..], filled as u64);
        match read {
            Ok(0) => {
                bytes.truncate(filled);
                break;
            }
            Ok(length) => bytes.truncate(filled + length),
            Err(e) if e.kind() == ErrorKind::Interrupted => bytes.truncate(filled),
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))
}

/// Locks `mutex` even when a panicking holder poisoned it: collectors keep
/// caches and sessions there, and one panicked scrape (already reported as
/// that collector's failure) must not fail every scrape after it.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
