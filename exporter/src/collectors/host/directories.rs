//! Directory sizes, like `du -s /var/log`: allocated bytes of everything
//! under a configured path, walked without following symlinks, hard links
//! counted once. Each walk has a time and an entry budget; a walk that hits
//! either reports what it saw with `opsmon_directory_scan_complete 0`.
//! Results are reused for `refresh_interval`, and concurrent scrapes wait for
//! one walk instead of starting their own.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opsmon_catalog::{MetricDef, host};

/// Picks one figure out of a walk result.
type ValueOf = fn(&WalkResult) -> f64;
use tokio::time::Instant;

use super::DirectoryConfig;
use crate::metrics::{LabelValue, MetricSet};

/// The outcome of one walk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WalkResult {
    /// Allocated bytes (`st_blocks * 512`).
    pub bytes: u64,
    /// Files and directories seen, the root excluded.
    pub entries: u64,
    /// False when a budget cut the walk short.
    pub complete: bool,
    /// When the walk started, as Unix seconds.
    pub timestamp: f64,
}

/// Walks `root` until done, `max_entries` entries or `until`.
pub fn walk(root: &Path, max_entries: u64, until: std::time::Instant) -> std::io::Result<WalkResult> {
    let timestamp =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    let root_meta = std::fs::symlink_metadata(root)?;
    let mut result = WalkResult { bytes: root_meta.blocks() * 512, entries: 0, complete: true, timestamp };
    if !root_meta.is_dir() {
        return Ok(result);
    }
    let mut hard_links = HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        // Unreadable subdirectories are skipped, as du does after complaining.
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            if result.entries >= max_entries || std::time::Instant::now() >= until {
                result.complete = false;
                return Ok(result);
            }
            let Ok(meta) = entry.metadata() else { continue };
            result.entries += 1;
            if meta.nlink() > 1 && !meta.is_dir() && !hard_links.insert((meta.dev(), meta.ino())) {
                continue;
            }
            result.bytes += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(result)
}

/// One configured directory and its last result.
#[derive(Debug)]
struct Tracked {
    config: DirectoryConfig,
    last: tokio::sync::Mutex<Option<(Instant, WalkResult)>>,
}

/// All configured directories.
#[derive(Debug)]
pub struct Directories {
    tracked: Vec<Arc<Tracked>>,
}

impl Directories {
    /// Tracks `configs`.
    pub fn new(configs: Vec<DirectoryConfig>) -> Self {
        Self {
            tracked: configs
                .into_iter()
                .map(|config| Arc::new(Tracked { config, last: tokio::sync::Mutex::new(None) }))
                .collect(),
        }
    }

    /// Adds the directory families to `out`; a directory that cannot be read
    /// at all is left out and reported as the returned error.
    pub async fn collect(&self, out: &mut MetricSet, deadline: Instant) -> Option<String> {
        if self.tracked.is_empty() {
            return None;
        }
        let mut rows: Vec<(LabelValue, WalkResult)> = Vec::with_capacity(self.tracked.len());
        let mut error = None;
        for tracked in &self.tracked {
            match tracked.current(deadline).await {
                Ok(result) => rows.push((tracked.config.path.value.display().to_string().into(), result)),
                Err(e) => {
                    error.get_or_insert_with(|| format!("{}: {e}", tracked.config.path.value.display()));
                }
            }
        }
        let families: [(&'static MetricDef, ValueOf); 4] = [
            (&host::DIR_SIZE, |r| r.bytes as f64),
            (&host::DIR_ENTRIES, |r| r.entries as f64),
            (&host::DIR_COMPLETE, |r| if r.complete { 1.0 } else { 0.0 }),
            (&host::DIR_SCAN_TIMESTAMP, |r| r.timestamp),
        ];
        for (def, value) in families {
            let mut family = out.family(def);
            for (path, result) in &rows {
                family.number(vec![path.clone()], value(result));
            }
        }
        error
    }
}

impl Tracked {
    async fn current(&self, deadline: Instant) -> std::io::Result<WalkResult> {
        let mut last = self.last.lock().await;
        if let Some((measured, result)) = *last
            && measured.elapsed() < self.config.refresh_interval.0
        {
            return Ok(result);
        }
        let path: PathBuf = self.config.path.value.clone();
        let max_entries = self.config.max_entries;
        let budget = self.config.timeout.0.min(deadline.saturating_duration_since(Instant::now()));
        let until = std::time::Instant::now() + budget.saturating_sub(Duration::from_millis(10));
        let result = crate::collectors::reader_thread::spawn_reader(move || walk(&path, max_entries, until))
            .await
            .map_err(std::io::Error::other)??;
        *last = Some((Instant::now(), result));
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree with two files and a hard link: `a/one`, `a/b/two`, `a/two-again`.
    fn scratch() -> tempfile::TempDir {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path();
        std::fs::create_dir_all(dir.join("a/b")).expect("mkdir");
        std::fs::write(dir.join("a/one"), vec![1u8; 10_000]).expect("write");
        std::fs::write(dir.join("a/b/two"), vec![2u8; 20_000]).expect("write");
        std::fs::hard_link(dir.join("a/b/two"), dir.join("a/two-again")).expect("link");
        temp
    }

    #[test]
    fn sizes_like_du_and_counts_hard_links_once() {
        let temp = scratch();
        let dir = temp.path();
        let far = std::time::Instant::now() + Duration::from_secs(10);
        let result = walk(dir, 1000, far).expect("walks");
        assert!(result.complete);
        assert_eq!(result.entries, 5, "a, b, one, two, two-again");
        let expected: u64 = ["", "a", "a/b", "a/one", "a/b/two"]
            .iter()
            .map(|p| std::fs::symlink_metadata(dir.join(p)).expect("stat").blocks() * 512)
            .sum();
        assert_eq!(result.bytes, expected);
    }

    #[test]
    fn entry_budget_marks_the_walk_incomplete() {
        let temp = scratch();
        let dir = temp.path();
        let far = std::time::Instant::now() + Duration::from_secs(10);
        let result = walk(dir, 2, far).expect("walks");
        assert!(!result.complete);
        assert_eq!(result.entries, 2);
        let past = std::time::Instant::now();
        assert!(!walk(dir, 1000, past).expect("walks").complete, "time budget");
    }

    #[test]
    fn missing_directory_is_an_error() {
        let far = std::time::Instant::now() + Duration::from_secs(1);
        assert!(walk(Path::new("/nonexistent/opsmon"), 10, far).is_err());
    }
}
