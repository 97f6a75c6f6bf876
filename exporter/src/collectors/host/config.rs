//! The host collector's section (`collectors.host`): which mounts, process
//! groups, listening ports and directories, with node_exporter's defaults,
//! and the checks serde cannot make.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::paths::HostPaths;
use crate::config::{ConfigDuration, ConfigRegex, Position, Problem, position};

/// Host collector settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Which mounts are reported and how long statfs may take.
    pub filesystem: FilesystemConfig,
    /// Named groups of processes to account CPU, memory and count for.
    pub process_groups: Vec<ProcessGroupConfig>,
    /// TCP ports that must have a listening socket.
    pub listen_ports: Vec<u16>,
    /// Directories whose size to report, like `du -s`.
    pub directories: Vec<DirectoryConfig>,
    /// Where the host's /proc, /sys and / are: set by `--path.*` flags, never
    /// by the file, so one config serves a host and a container alike.
    #[serde(skip)]
    pub paths: HostPaths,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            filesystem: FilesystemConfig::default(),
            process_groups: Vec::new(),
            listen_ports: Vec::new(),
            directories: Vec::new(),
            paths: HostPaths::default(),
        }
    }
}

/// node_exporter's defaults, so the same mounts are reported.
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// node_exporter's defaults: pseudo and read-only image filesystems.
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";

/// Filesystem selection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemConfig {
    /// Mount points matching this are skipped.
    pub mount_points_exclude: ConfigRegex,
    /// Filesystem types matching this are skipped.
    pub fs_types_exclude: ConfigRegex,
    /// How long one statfs may take before the mount is reported as
    /// `node_filesystem_device_error 1` and skipped until it answers again.
    pub statfs_timeout: ConfigDuration,
}

impl Default for FilesystemConfig {
    fn default() -> Self {
        Self {
            mount_points_exclude: ConfigRegex::new(DEFAULT_MOUNT_POINTS_EXCLUDE).expect("valid default"),
            fs_types_exclude: ConfigRegex::new(DEFAULT_FS_TYPES_EXCLUDE).expect("valid default"),
            statfs_timeout: ConfigDuration(Duration::from_secs(2)),
        }
    }
}

/// A named group of processes, selected like `pgrep NAME` or `pgrep -f REGEX`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessGroupConfig {
    /// The `group` label value.
    pub name: Spanned<String>,
    /// Exact process name (`/proc/PID/comm`, at most 15 characters).
    #[serde(default)]
    pub comm: Option<String>,
    /// Regex searched in the full command line (arguments joined by spaces).
    #[serde(default)]
    pub cmdline: Option<ConfigRegex>,
}

/// A directory to size.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// Absolute path; the `path` label value.
    pub path: Spanned<PathBuf>,
    /// Stop after this many entries; the size is then a lower bound.
    #[serde(default = "default_max_entries")]
    pub max_entries: u64,
    /// Stop after this long; the size is then a lower bound.
    #[serde(default = "default_walk_timeout")]
    pub timeout: ConfigDuration,
    /// Walk at most this often; scrapes in between reuse the last result.
    #[serde(default = "default_refresh_interval")]
    pub refresh_interval: ConfigDuration,
}

/// The most entries one directory walk may visit: the walk runs on every
/// refresh, so more would hold a blocking thread for minutes.
pub const MAX_ENTRIES_LIMIT: u64 = 10_000_000;

fn default_max_entries() -> u64 {
    100_000
}
fn default_walk_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(2))
}
fn default_refresh_interval() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(60))
}

impl HostConfig {
    /// What serde cannot check: unique, non-empty group names with a
    /// selector, absolute directories, bounded walks, distinct non-zero ports.
    pub fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut names = HashSet::new();
        for (index, group) in self.process_groups.iter().enumerate() {
            let field = format!("collectors.host.process_groups[{index}]");
            let at = position(&group.name.referenced);
            if !names.insert(group.name.value.as_str()) {
                problems.push(Problem::new(
                    at,
                    format!("{field}.name"),
                    format!("duplicate process group {:?}; names must be unique", group.name.value),
                ));
            }
            if group.name.value.is_empty() {
                problems.push(Problem::new(at, format!("{field}.name"), "must not be empty"));
            }
            if group.comm.is_none() && group.cmdline.is_none() {
                problems.push(Problem::new(
                    at,
                    field,
                    "set `comm` (exact process name) or `cmdline` (regex over the command line)",
                ));
            }
        }
        for (index, dir) in self.directories.iter().enumerate() {
            let field = format!("collectors.host.directories[{index}]");
            let at = position(&dir.path.referenced);
            if !dir.path.value.is_absolute() {
                problems.push(Problem::new(
                    at,
                    format!("{field}.path"),
                    format!("{:?} is relative; use an absolute path such as /var/log", dir.path.value),
                ));
            }
            if dir.max_entries == 0 || dir.max_entries > MAX_ENTRIES_LIMIT {
                problems.push(Problem::new(
                    at,
                    format!("{field}.max_entries"),
                    format!(
                        "{} is out of range: between 1 and {MAX_ENTRIES_LIMIT}; size a deeper tree with a longer refresh_interval instead",
                        dir.max_entries
                    ),
                ));
            }
        }
        let mut ports = HashSet::new();
        for port in &self.listen_ports {
            if !ports.insert(port) || *port == 0 {
                problems.push(Problem::new(
                    Position::UNKNOWN,
                    "collectors.host.listen_ports",
                    format!("port {port} is zero or listed twice"),
                ));
            }
        }
        problems
    }
}
