//! File freshness: newest modification time, size and count for configured globs (backups, job heartbeats).

use serde::Deserialize;

/// Settings of the files collector.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {}
