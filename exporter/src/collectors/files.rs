//! File freshness: for each configured glob (a backup directory, a job's
//! heartbeat file) the newest modification time and size, the total size
//! and the count of matching files. A glob that matches nothing is data —
//! count 0 and newest timestamp 0, so "backup too old" alerts fire — not a
//! failed scrape.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opsmon_catalog::files as m;
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;
use tokio::time::Instant;

use crate::collectors::collector::{BoxFuture, CollectError, Collected, Collector, blocking};
use crate::config::{Problem, position};
use crate::metrics::{LabelValue, MetricSet};

/// Settings of the files collector.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
    /// The watched globs.
    pub paths: Vec<FileGlobConfig>,
}

/// One watched glob.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileGlobConfig {
    /// The `name` label, e.g. `postgres_backup`.
    pub name: Spanned<String>,
    /// Absolute glob, e.g. `/var/backups/postgresql/*.dump` or one heartbeat file's path.
    pub glob: FileGlob,
    /// Stop after this many matches (the figures are then over the first ones).
    #[serde(default = "default_max_files")]
    pub max_files: usize,
}

fn default_max_files() -> usize {
    10_000
}

/// A validated absolute glob pattern.
#[derive(Debug, Clone)]
pub struct FileGlob(pub String);

impl<'de> Deserialize<'de> for FileGlob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if !text.starts_with('/') {
            return Err(serde::de::Error::custom(format!(
                "glob {text:?} is relative; use an absolute pattern such as /var/backups/postgresql/*.dump"
            )));
        }
        glob::Pattern::new(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid glob {text:?}: {e}; use *, ? and [...] as in the shell"
            ))
        })?;
        Ok(FileGlob(text))
    }
}

/// What one glob matched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GlobSummary {
    /// Matching regular files.
    pub count: u64,
    /// Their total size in bytes.
    pub total_bytes: u64,
    /// Newest modification time, Unix seconds (0 when nothing matched).
    pub newest_mtime: f64,
    /// Size of that newest file.
    pub newest_bytes: u64,
    /// The first matched path that is not a regular file, if any.
    pub problem: Option<String>,
}

/// Why a glob could not be summarised.
#[derive(Debug, thiserror::Error)]
pub enum GlobError {
    /// The pattern is invalid (the config check makes this rare).
    #[error("invalid glob: {0}")]
    Pattern(#[from] glob::PatternError),
    /// The scrape's deadline came before the last match.
    #[error("{pattern}: ran out of time after {count} files")]
    OutOfTime {
        /// The glob.
        pattern: String,
        /// Matches summarised by then.
        count: u64,
    },
}

/// Expands `pattern` and summarises the regular files it matches, stopping
/// after `max_files` or at `until`. Unreadable entries and directories are
/// skipped; a FIFO, device or socket is counted out and reported in
/// `problem` by path (files are only ever stat'ed, never opened).
pub fn summarise(
    pattern: &str,
    max_files: usize,
    until: std::time::Instant,
) -> Result<GlobSummary, GlobError> {
    let paths = glob::glob(pattern)?;
    let mut summary = GlobSummary::default();
    for path in paths.flatten().take(max_files) {
        if std::time::Instant::now() >= until {
            return Err(GlobError::OutOfTime { pattern: pattern.to_owned(), count: summary.count });
        }
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if meta.is_dir() {
            continue;
        }
        if !meta.is_file() {
            summary.problem.get_or_insert_with(|| {
                format!(
                    "{} is {}; files globs count only regular files",
                    path.display(),
                    crate::collectors::regular_file::kind_of(&meta.file_type())
                )
            });
            continue;
        }
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        summary.count += 1;
        summary.total_bytes += meta.len();
        if mtime > summary.newest_mtime || summary.count == 1 {
            summary.newest_mtime = mtime;
            summary.newest_bytes = meta.len();
        }
    }
    Ok(summary)
}

/// Picks one figure out of a summary.
type Figure = fn(&GlobSummary) -> f64;

/// Collects the configured globs.
#[derive(Debug)]
pub struct FilesCollector {
    globs: Arc<Vec<FileGlobConfig>>,
}

impl FilesConfig {
    /// What serde cannot check: unique names, bounded match counts.
    pub fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut names = HashSet::new();
        for (index, glob) in self.paths.iter().enumerate() {
            let field = format!("collectors.files.paths[{index}]");
            if !names.insert(glob.name.value.as_str()) {
                problems.push(Problem::new(
                    position(&glob.name.referenced),
                    format!("{field}.name"),
                    format!("duplicate name {:?}; names must be unique", glob.name.value),
                ));
            }
            if glob.max_files == 0 || glob.max_files > MAX_FILES_LIMIT {
                problems.push(Problem::new(
                    position(&glob.name.referenced),
                    format!("{field}.max_files"),
                    format!(
                        "{} is out of range: between 1 and {MAX_FILES_LIMIT}; narrow the glob instead",
                        glob.max_files
                    ),
                ));
            }
        }
        problems
    }
}

/// The most matches one glob may summarise per scrape: each is a stat on
/// the scrape's path.
pub const MAX_FILES_LIMIT: usize = 1_000_000;

impl FilesCollector {
    /// A collector for `config`, or every problem with it.
    pub fn new(config: FilesConfig) -> Result<Self, Vec<Problem>> {
        let problems = config.check();
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self { globs: Arc::new(config.paths) })
    }
}

impl Collector for FilesCollector {
    fn name(&self) -> &'static str {
        "files"
    }

    fn reads_locally(&self) -> bool {
        true
    }

    fn collect(&self, deadline: Instant) -> BoxFuture<'_, Collected> {
        let globs = Arc::clone(&self.globs);
        Box::pin(async move {
            let budget =
                deadline.saturating_duration_since(Instant::now()).saturating_sub(Duration::from_millis(20));
            let until = std::time::Instant::now() + budget;
            let summaries = blocking(move || {
                globs
                    .iter()
                    .map(|g| (g.name.value.clone(), summarise(&g.glob.0, g.max_files, until)))
                    .collect::<Vec<_>>()
            })
            .await;
            let summaries = match summaries {
                Ok(summaries) => summaries,
                Err(error) => return Collected { metrics: MetricSet::new(), error: Some(error) },
            };
            let mut error = None;
            let rows: Vec<(LabelValue, GlobSummary)> = summaries
                .into_iter()
                .filter_map(|(name, result)| match result {
                    Ok(summary) => {
                        if let Some(problem) = &summary.problem {
                            error.get_or_insert_with(|| CollectError::Parse(problem.clone()));
                        }
                        Some((name.into(), summary))
                    }
                    Err(e) => {
                        error.get_or_insert(CollectError::Parse(e.to_string()));
                        None
                    }
                })
                .collect();
            let mut out = MetricSet::new();
            let columns: [(&'static opsmon_catalog::MetricDef, Figure); 4] = [
                (&m::NEWEST_TIMESTAMP, |s| s.newest_mtime),
                (&m::NEWEST_SIZE, |s| s.newest_bytes as f64),
                (&m::TOTAL_SIZE, |s| s.total_bytes as f64),
                (&m::COUNT, |s| s.count as f64),
            ];
            for (def, value) in columns {
                let mut family = out.family(def);
                for (name, summary) in &rows {
                    family.number(vec![name.clone()], value(summary));
                }
            }
            Collected { metrics: out, error }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn set_mtime(path: &std::path::Path, unix: u64) {
        let file = std::fs::File::options().write(true).open(path).expect("open");
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(unix)).expect("set mtime");
    }

    #[test]
    fn newest_file_total_size_and_count() {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path();
        for (name, size, mtime) in
            [("a.dump", 100, 1_700_000_000), ("b.dump", 300, 1_700_000_500), ("c.log", 7, 1_800_000_000)]
        {
            std::fs::write(dir.join(name), vec![0u8; size]).expect("write");
            set_mtime(&dir.join(name), mtime);
        }
        std::fs::create_dir(dir.join("d.dump")).expect("a directory is not a file");
        let far = std::time::Instant::now() + Duration::from_secs(10);
        let summary = summarise(&format!("{}/*.dump", dir.display()), 100, far).expect("globs");
        assert_eq!(
            summary,
            GlobSummary {
                count: 2,
                total_bytes: 400,
                newest_mtime: 1_700_000_500.0,
                newest_bytes: 300,
                problem: None
            }
        );
    }

    #[test]
    fn nothing_matching_is_data_not_an_error() {
        let far = std::time::Instant::now() + Duration::from_secs(10);
        let summary = summarise("/nonexistent/opsmon/*.dump", 100, far).expect("no error");
        assert_eq!(summary, GlobSummary::default());
    }

    #[test]
    fn globs_are_validated_with_their_location() {
        let error = crate::settings::Config::parse(
            std::path::Path::new("f.yml"),
            "collectors:\n  files:\n    paths:\n      - name: backup\n        glob: backups/*.dump\n",
        )
        .expect_err("relative")
        .to_string();
        assert!(error.starts_with("f.yml:5:15: glob \"backups/*.dump\" is relative"), "{error}");
        let error = crate::settings::Config::parse(
            std::path::Path::new("f.yml"),
            "collectors:\n  files:\n    paths:\n      - name: backup\n        glob: '/b/[*.dump'\n",
        )
        .expect_err("bad pattern")
        .to_string();
        assert!(error.contains("invalid glob \"/b/[*.dump\""), "{error}");
    }
}
