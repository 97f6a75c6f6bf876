//! The exporter's YAML configuration: serde types that reject unknown keys,
//! defaults that work with no file at all, and errors that name the file,
//! line, column, the expected form and — for misspelt keys — the likely fix.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

/// Everything the exporter reads from `--config.file`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Scrape-budget settings.
    pub scrape: ScrapeConfig,
    /// Per-collector settings.
    pub collectors: CollectorsConfig,
}

/// How long a scrape may take.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeConfig {
    /// Subtracted from Prometheus' `X-Prometheus-Scrape-Timeout-Seconds`.
    pub timeout_offset: ConfigDuration,
    /// Budget without that header, and its cap.
    pub max_timeout: ConfigDuration,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        Self {
            timeout_offset: ConfigDuration(Duration::from_millis(500)),
            max_timeout: ConfigDuration(Duration::from_secs(10)),
        }
    }
}

/// One section per collector.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorsConfig {
    /// The host collector (on by default).
    pub host: HostConfig,
}

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
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            filesystem: FilesystemConfig::default(),
            process_groups: Vec::new(),
            listen_ports: Vec::new(),
            directories: Vec::new(),
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

fn default_max_entries() -> u64 {
    100_000
}
fn default_walk_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(2))
}
fn default_refresh_interval() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(60))
}

/// A duration written as in Prometheus configs: `500ms`, `10s`, `5m`, `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(text.trim()).map(ConfigDuration).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?} ({e}); expected a number with a unit, e.g. 500ms, 10s, 5m"
            ))
        })
    }
}

/// A regular expression, compiled (and so checked) while the file is read.
#[derive(Debug, Clone)]
pub struct ConfigRegex(pub regex::Regex);

impl ConfigRegex {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        regex::Regex::new(pattern).map(ConfigRegex)
    }
}

impl<'de> Deserialize<'de> for ConfigRegex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ConfigRegex::new(&text).map_err(|e| {
            let detail = e.to_string().lines().last().unwrap_or_default().trim().to_owned();
            serde::de::Error::custom(format!(
                "invalid regex {text:?}: {detail}; expected RE2-style syntax (escape literal brackets and dots with \\)"
            ))
        })
    }
}

/// A configuration problem, rendered as `file:line:column: message` plus a
/// hint and the offending lines.
#[derive(Debug)]
pub struct ConfigError {
    path: PathBuf,
    problems: Vec<Problem>,
}

#[derive(Debug)]
struct Problem {
    line: u64,
    column: u64,
    message: String,
    snippet: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let path = self.path.display();
            if problem.line > 0 {
                write!(f, "{path}:{}:{}: {}", problem.line, problem.column, problem.message)?;
            } else {
                write!(f, "{path}: {}", problem.message)?;
            }
            if let Some(snippet) = &problem.snippet {
                write!(f, "\n{snippet}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    fn single(path: &Path, message: String) -> Self {
        Self { path: path.to_owned(), problems: vec![Problem { line: 0, column: 0, message, snippet: None }] }
    }
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::single(path, format!("cannot read config file: {e}")))?;
        Self::parse(path, &text)
    }

    /// Parses and validates `text`, naming `path` in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| from_yaml_error(path, &e))?
        };
        let problems = config.semantic_problems();
        if problems.is_empty() { Ok(config) } else { Err(ConfigError { path: path.to_owned(), problems }) }
    }

    fn semantic_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut at = |location: &serde_saphyr::Location, message: String| {
            problems.push(Problem {
                line: location.line(),
                column: location.column(),
                message,
                snippet: None,
            });
        };
        let host = &self.collectors.host;
        let mut names = std::collections::HashSet::new();
        for (index, group) in host.process_groups.iter().enumerate() {
            let field = format!("collectors.host.process_groups[{index}]");
            if !names.insert(group.name.value.as_str()) {
                at(
                    &group.name.referenced,
                    format!(
                        "{field}.name: duplicate process group {:?}; names must be unique",
                        group.name.value
                    ),
                );
            }
            if group.name.value.is_empty() {
                at(&group.name.referenced, format!("{field}.name: must not be empty"));
            }
            if group.comm.is_none() && group.cmdline.is_none() {
                at(
                    &group.name.referenced,
                    format!(
                        "{field}: set `comm` (exact process name) or `cmdline` (regex over the command line)"
                    ),
                );
            }
        }
        for (index, dir) in host.directories.iter().enumerate() {
            if !dir.path.value.is_absolute() {
                at(
                    &dir.path.referenced,
                    format!(
                        "collectors.host.directories[{index}].path: {:?} is relative; use an absolute path such as /var/log",
                        dir.path.value
                    ),
                );
            }
        }
        let mut ports = std::collections::HashSet::new();
        for port in &host.listen_ports {
            if !ports.insert(port) || *port == 0 {
                problems.push(Problem {
                    line: 0,
                    column: 0,
                    message: format!("collectors.host.listen_ports: port {port} is zero or listed twice"),
                    snippet: None,
                });
            }
        }
        if self.scrape.max_timeout.0.is_zero() {
            problems.push(Problem {
                line: 0,
                column: 0,
                message: "scrape.max_timeout: must be greater than 0s".into(),
                snippet: None,
            });
        }
        problems
    }

    /// Names of the collectors this config enables, in scrape order.
    pub fn enabled_collectors(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.collectors.host.enabled {
            names.push("host");
        }
        names
    }
}

fn from_yaml_error(path: &Path, error: &serde_saphyr::Error) -> ConfigError {
    let (line, column) = error.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
    let message = with_hint(&strip_position(&error.without_snippet().to_string()));
    let rendered = error.to_string();
    let snippet = rendered
        .split_once('\n')
        .map(|(_, rest)| rest.replace("<input>", &path.display().to_string()))
        .filter(|s| !s.trim().is_empty());
    ConfigError { path: path.to_owned(), problems: vec![Problem { line, column, message, snippet }] }
}

/// serde-saphyr writes the position into its message ("error: line L column
/// C: …" or "… at line L, column C"); we print our own `file:line:column`.
fn strip_position(message: &str) -> String {
    let mut message = message.trim();
    if let Some((_, rest)) = message.strip_prefix("error: line ").and_then(|r| r.split_once(": ")) {
        message = rest;
    }
    if let Some(at) = message.rfind(" at line ")
        && message[at..].contains(", column ")
    {
        message = &message[..at];
    }
    message.to_owned()
}

/// Adds a did-you-mean for unknown keys and the expected form for bad scalars.
fn with_hint(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((unknown, tail)) = rest.split_once('`') {
            let candidates: Vec<&str> = tail
                .split(|c: char| c == ',' || c.is_whitespace() || c == '`')
                .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| !matches!(*w, "expected" | "one" | "of" | "or"))
                .collect();
            if let Some(best) = did_you_mean(unknown, &candidates) {
                return format!("{message}; did you mean `{best}`?");
            }
        }
        return message.to_owned();
    }
    let expected = match message {
        m if m.starts_with("invalid boolean") => "expected true or false",
        m if m.starts_with("invalid u16") => "expected a whole number from 0 to 65535",
        m if m.starts_with("invalid u64") => "expected a non-negative whole number",
        m if m.contains("expected mapping") => "expected `key: value` entries indented under this key",
        m if m.contains("expected sequence") => "expected a list (`- item` lines or `[a, b]`)",
        _ => return message.to_owned(),
    };
    format!("{message}; {expected}")
}

/// The closest candidate to a misspelt `word`, if any is close enough.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("/etc/opsmon.yml"), text).map_err(|e| e.to_string())
    }

    fn first_line(text: &str) -> String {
        let error = parse(text).expect_err("must be rejected");
        error.lines().next().unwrap_or_default().to_owned()
    }

    #[test]
    fn empty_file_means_defaults() {
        let config = parse("").expect("empty is fine");
        assert!(config.collectors.host.enabled);
        assert_eq!(config.scrape.max_timeout.0, Duration::from_secs(10));
        assert_eq!(config.enabled_collectors(), vec!["host"]);
    }

    #[test]
    fn full_host_section_parses() {
        let config = parse(
            "scrape:\n  timeout_offset: 250ms\n  max_timeout: 20s\ncollectors:\n  host:\n    listen_ports: [3000, 5432]\n    process_groups:\n      - name: api\n        cmdline: 'node .*server\\.js'\n      - name: pg\n        comm: postgres\n    directories:\n      - path: /var/log\n        max_entries: 10\n",
        )
        .expect("valid");
        let host = &config.collectors.host;
        assert_eq!(host.listen_ports, vec![3000, 5432]);
        assert_eq!(host.process_groups[1].comm.as_deref(), Some("postgres"));
        assert!(host.process_groups[0].cmdline.as_ref().expect("regex").0.is_match("node /srv/server.js"));
        assert_eq!(host.directories[0].max_entries, 10);
        assert_eq!(host.directories[0].refresh_interval.0, Duration::from_secs(60));
        assert_eq!(config.scrape.timeout_offset.0, Duration::from_millis(250));
    }

    #[test]
    fn errors_name_file_line_column_and_fix() {
        let cases: &[(&str, &str)] = &[
            (
                "collectors:\n  host:\n    listen_port: [3000]\n",
                "/etc/opsmon.yml:3:5: unknown field `listen_port`, expected one of enabled, filesystem, process_groups, listen_ports, directories; did you mean `listen_ports`?",
            ),
            (
                "colectors: {}\n",
                "/etc/opsmon.yml:1:1: unknown field `colectors`, expected one of scrape, collectors; did you mean `collectors`?",
            ),
            (
                "collectors:\n  host:\n    enabled: 3\n",
                "/etc/opsmon.yml:3:14: invalid boolean; expected true or false",
            ),
            (
                "collectors:\n  host:\n    listen_ports: [70000]\n",
                "/etc/opsmon.yml:3:20: invalid u16; expected a whole number from 0 to 65535",
            ),
            (
                "collectors:\n  host:\n    filesystem:\n      fs_types_exclude: '^(tmpfs'\n",
                "/etc/opsmon.yml:4:25: invalid regex \"^(tmpfs\": error: unclosed group; expected RE2-style syntax (escape literal brackets and dots with \\)",
            ),
            (
                "scrape:\n  max_timeout: ten\n",
                "/etc/opsmon.yml:2:16: invalid duration \"ten\" (expected number at 0); expected a number with a unit, e.g. 500ms, 10s, 5m",
            ),
            (
                "collectors:\n  host:\n    process_groups:\n      - name: api\n",
                "/etc/opsmon.yml:4:15: collectors.host.process_groups[0]: set `comm` (exact process name) or `cmdline` (regex over the command line)",
            ),
            (
                "collectors:\n  host:\n    directories:\n      - path: var/log\n",
                "/etc/opsmon.yml:4:15: collectors.host.directories[0].path: \"var/log\" is relative; use an absolute path such as /var/log",
            ),
        ];
        for (yaml, expected) in cases {
            assert_eq!(&first_line(yaml), expected, "for input:\n{yaml}");
        }
    }

    #[test]
    fn snippet_points_at_the_file() {
        let error = parse("collectors:\n  host:\n    enabeld: true\n").expect_err("typo");
        assert!(error.contains("--> /etc/opsmon.yml:3:5"), "{error}");
        assert!(error.contains("did you mean `enabled`?"), "{error}");
    }

    #[test]
    fn unreadable_file_is_named() {
        let error = Config::load(Path::new("/nonexistent/opsmon.yml")).expect_err("missing").to_string();
        assert!(
            error.starts_with("/nonexistent/opsmon.yml: cannot read config file: No such file"),
            "{error}"
        );
    }

    #[test]
    fn did_you_mean_picks_close_names_only() {
        assert_eq!(did_you_mean("enabeld", &["enabled", "filesystem"]), Some("enabled"));
        assert_eq!(did_you_mean("xyz", &["enabled", "filesystem"]), None);
    }
}
