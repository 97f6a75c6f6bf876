//! The exporter's YAML configuration: serde types that reject unknown keys,
//! defaults that work with no file at all, and errors that name the file,
//! line, column, the expected form and — for misspelt keys — the likely fix.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

use crate::secret::{Secret, SecretSource};

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
    /// PostgreSQL targets (none by default; `DATA_SOURCE_NAME` adds one).
    pub postgres: PostgresConfig,
    /// Redis targets (none by default; `REDIS_ADDR` adds one).
    pub redis: RedisConfig,
    /// HTTP/CDN probes.
    pub probe: crate::collectors::probe::ProbeConfig,
    /// nginx access logs and application-log pattern counts.
    pub accesslog: crate::collectors::accesslog::AccesslogConfig,
    /// File freshness for backups and job heartbeats.
    pub files: crate::collectors::files::FilesConfig,
    /// Business gauges from SQL.
    pub business: opsmon_catalog::business::BusinessConfig,
}

/// PostgreSQL collector settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// Databases to watch.
    pub targets: Vec<PostgresTargetConfig>,
}

/// One PostgreSQL server to watch. The connection string comes from exactly
/// one of `dsn` (without a password), `dsn_env` or `dsn_file`; a password may
/// come separately from `password_env` or `password_file`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresTargetConfig {
    /// Target name: `/probe?target=NAME` and log fields.
    pub name: Spanned<String>,
    /// `postgresql://user@host:port/db?sslmode=…` or `host=… user=… dbname=…`; no password.
    #[serde(default)]
    pub dsn: Option<Spanned<String>>,
    /// Environment variable holding the DSN (postgres_exporter uses `DATA_SOURCE_NAME`).
    #[serde(default)]
    pub dsn_env: Option<String>,
    /// File holding the DSN.
    #[serde(default)]
    pub dsn_file: Option<PathBuf>,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Serve this target on the telemetry path (default: when it is the only one).
    #[serde(default)]
    pub default: Option<bool>,
    /// TCP connect and authentication deadline.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: ConfigDuration,
    /// `statement_timeout` of the exporter's sessions.
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout: ConfigDuration,
    /// `lock_timeout` of the exporter's sessions.
    #[serde(default = "default_lock_timeout")]
    pub lock_timeout: ConfigDuration,
    /// Measure database sizes at most this often (`pg_database_size` reads every
    /// file of every database, the most expensive part of a scrape); `0s` = every scrape.
    #[serde(default = "default_database_size_interval")]
    pub database_size_interval: ConfigDuration,
    /// Tables (`name` or `schema.name`) to report scans, tuples, vacuum and size for.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Slowest statements from pg_stat_statements.
    #[serde(default)]
    pub stat_statements: StatStatementsConfig,
    /// The resolved connection string (set while loading).
    #[serde(skip)]
    pub resolved_dsn: Option<Secret>,
    /// The resolved separate password, if any (set while loading).
    #[serde(skip)]
    pub resolved_password: Option<Secret>,
}

/// pg_stat_statements top-N, opt-in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatStatementsConfig {
    /// Query pg_stat_statements at all.
    pub enabled: bool,
    /// How many statements, slowest mean time first (at most 100).
    pub limit: u32,
}

impl Default for StatStatementsConfig {
    fn default() -> Self {
        Self { enabled: false, limit: 20 }
    }
}

/// The most statements `stat_statements.limit` may ask for.
pub const STAT_STATEMENTS_MAX: u32 = 100;

/// Redis collector settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// Servers to watch.
    pub targets: Vec<RedisTargetConfig>,
}

/// One Redis server to watch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisTargetConfig {
    /// Target name: `/probe?target=NAME` and log fields.
    pub name: Spanned<String>,
    /// `redis://host:port[/db]`, `rediss://host:port` (TLS) or `unix:///path/to/socket`; no password.
    #[serde(default)]
    pub address: Option<Spanned<String>>,
    /// Environment variable holding the address (redis_exporter uses `REDIS_ADDR`).
    #[serde(default)]
    pub address_env: Option<String>,
    /// Environment variable holding the password (redis_exporter uses `REDIS_PASSWORD`).
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// ACL user name (Redis 6+), when not the default user.
    #[serde(default)]
    pub username: Option<String>,
    /// Serve this target on the telemetry path (default: when it is the only one).
    #[serde(default)]
    pub default: Option<bool>,
    /// Deadline for connecting and for each command.
    #[serde(default = "default_redis_timeout")]
    pub timeout: ConfigDuration,
    /// The resolved address (set while loading).
    #[serde(skip)]
    pub resolved_address: Option<String>,
    /// The resolved password, if any (set while loading).
    #[serde(skip)]
    pub resolved_password: Option<Secret>,
}

fn default_connect_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(3))
}
fn default_statement_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(5))
}
fn default_lock_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(1))
}
fn default_database_size_interval() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(60))
}
fn default_redis_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(2))
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
        let mut config = config;
        config.add_peer_environment_targets();
        let mut problems = config.semantic_problems();
        problems.extend(config.resolve_targets());
        let pg_names: Vec<&str> =
            config.collectors.postgres.targets.iter().map(|t| t.name.value.as_str()).collect();
        if let Err(business) = crate::collectors::business::check(&config.collectors.business, &pg_names) {
            problems.extend(business.into_iter().map(|p| Problem {
                line: p.line,
                column: p.column,
                message: p.message,
                snippet: None,
            }));
        }
        if problems.is_empty() { Ok(config) } else { Err(ConfigError { path: path.to_owned(), problems }) }
    }

    /// The configuration used without `--config.file`: defaults plus the peer
    /// exporters' environment conventions.
    pub fn from_defaults() -> Result<Config, ConfigError> {
        Self::parse(Path::new("<built-in defaults>"), "")
    }

    /// postgres_exporter's `DATA_SOURCE_NAME` and redis_exporter's `REDIS_ADDR`
    /// (+ `REDIS_PASSWORD`) each add one target when the config names none, so
    /// the exporter swaps in for the peers without a config file.
    fn add_peer_environment_targets(&mut self) {
        let unknown = serde_saphyr::Location::UNKNOWN;
        if self.collectors.postgres.targets.is_empty() && std::env::var_os("DATA_SOURCE_NAME").is_some() {
            self.collectors.postgres.targets.push(PostgresTargetConfig {
                name: Spanned::new("postgres".into(), unknown, unknown),
                dsn: None,
                dsn_env: Some("DATA_SOURCE_NAME".into()),
                dsn_file: None,
                password_env: None,
                password_file: None,
                default: Some(true),
                connect_timeout: default_connect_timeout(),
                statement_timeout: default_statement_timeout(),
                lock_timeout: default_lock_timeout(),
                database_size_interval: default_database_size_interval(),
                tables: Vec::new(),
                stat_statements: StatStatementsConfig::default(),
                resolved_dsn: None,
                resolved_password: None,
            });
        }
        if self.collectors.redis.targets.is_empty() && std::env::var_os("REDIS_ADDR").is_some() {
            let password_env = std::env::var_os("REDIS_PASSWORD").map(|_| "REDIS_PASSWORD".to_owned());
            self.collectors.redis.targets.push(RedisTargetConfig {
                name: Spanned::new("redis".into(), unknown, unknown),
                address: None,
                address_env: Some("REDIS_ADDR".into()),
                password_env,
                password_file: None,
                username: None,
                default: Some(true),
                timeout: default_redis_timeout(),
                resolved_address: None,
                resolved_password: None,
            });
        }
    }

    /// Reads every target's secrets and checks addresses and defaults.
    fn resolve_targets(&mut self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut at = |location: &serde_saphyr::Location, message: String| {
            problems.push(Problem {
                line: location.line(),
                column: location.column(),
                message,
                snippet: None,
            });
        };
        let mut names = std::collections::HashSet::new();

        let pg_count = self.collectors.postgres.targets.len();
        let mut pg_defaults = 0;
        for (index, target) in self.collectors.postgres.targets.iter_mut().enumerate() {
            let field = format!("collectors.postgres.targets[{index}]");
            let location = target.name.referenced;
            if !names.insert(target.name.value.clone()) {
                at(
                    &location,
                    format!(
                        "{field}.name: duplicate target {:?}; target names must be unique",
                        target.name.value
                    ),
                );
            }
            if target.default.unwrap_or(pg_count == 1) {
                pg_defaults += 1;
            }
            let sources = [target.dsn.is_some(), target.dsn_env.is_some(), target.dsn_file.is_some()];
            let dsn = match sources.iter().filter(|s| **s).count() {
                1 => match (&target.dsn, &target.dsn_env, &target.dsn_file) {
                    (Some(inline), _, _) => {
                        if dsn_has_password(&inline.value) {
                            at(
                                &inline.referenced,
                                format!(
                                    "{field}.dsn: contains a password; move it to password_env or password_file (or the whole DSN to dsn_env or dsn_file)"
                                ),
                            );
                            continue;
                        }
                        Ok(Secret::new(inline.value.clone()))
                    }
                    (_, Some(env), _) => SecretSource::Env(env.clone()).resolve(),
                    (_, _, Some(file)) => SecretSource::File(file.clone()).resolve(),
                    _ => unreachable!("exactly one source is set"),
                },
                0 => Err("set one of dsn, dsn_env or dsn_file".into()),
                _ => Err("set only one of dsn, dsn_env and dsn_file".into()),
            };
            let password = resolve_password(target.password_env.as_ref(), target.password_file.as_ref());
            match (dsn, password) {
                (Ok(dsn), Ok(password)) => {
                    if let Err(e) = crate::collectors::postgres::connect_options(&dsn, password.as_ref()) {
                        at(&location, format!("{field} ({}): {e}", target.name.value));
                    }
                    target.resolved_dsn = Some(dsn);
                    target.resolved_password = password;
                }
                (Err(e), _) | (_, Err(e)) => at(&location, format!("{field} ({}): {e}", target.name.value)),
            }
            if target.stat_statements.limit == 0 || target.stat_statements.limit > STAT_STATEMENTS_MAX {
                at(
                    &location,
                    format!("{field}.stat_statements.limit: must be between 1 and {STAT_STATEMENTS_MAX}"),
                );
            }
            for table in &target.tables {
                if table.is_empty() || table.split('.').count() > 2 {
                    at(&location, format!("{field}.tables: {table:?} is not `table` or `schema.table`"));
                }
            }
        }
        if pg_defaults > 1 {
            problems.push(Problem {
                line: 0,
                column: 0,
                message: "collectors.postgres.targets: more than one target has `default: true`; /metrics serves at most one per backend, scrape the others with /probe?target=NAME".into(),
                snippet: None,
            });
        }

        let mut at = |location: &serde_saphyr::Location, message: String| {
            problems.push(Problem {
                line: location.line(),
                column: location.column(),
                message,
                snippet: None,
            });
        };
        let redis_count = self.collectors.redis.targets.len();
        let mut redis_defaults = 0;
        for (index, target) in self.collectors.redis.targets.iter_mut().enumerate() {
            let field = format!("collectors.redis.targets[{index}]");
            let location = target.name.referenced;
            if !names.insert(target.name.value.clone()) {
                at(
                    &location,
                    format!(
                        "{field}.name: duplicate target {:?}; target names must be unique",
                        target.name.value
                    ),
                );
            }
            if target.default.unwrap_or(redis_count == 1) {
                redis_defaults += 1;
            }
            let address = match (&target.address, &target.address_env) {
                (Some(address), None) => Ok(address.value.clone()),
                (None, Some(env)) => SecretSource::Env(env.clone()).resolve().map(|s| s.expose().to_owned()),
                (None, None) => Err("set address or address_env".into()),
                (Some(_), Some(_)) => Err("set only one of address and address_env".into()),
            };
            let password = resolve_password(target.password_env.as_ref(), target.password_file.as_ref());
            match (address, password) {
                (Ok(address), Ok(password)) => match check_redis_address(&address).and_then(|()| {
                    crate::collectors::redis::connection_info(
                        &address,
                        target.username.as_deref(),
                        password.as_ref(),
                    )
                    .map(|_| ())
                }) {
                    Ok(()) => {
                        target.resolved_address = Some(address);
                        target.resolved_password = password;
                    }
                    Err(e) => at(&location, format!("{field} ({}): {e}", target.name.value)),
                },
                (Err(e), _) | (_, Err(e)) => at(&location, format!("{field} ({}): {e}", target.name.value)),
            }
        }
        if redis_defaults > 1 {
            problems.push(Problem {
                line: 0,
                column: 0,
                message: "collectors.redis.targets: more than one target has `default: true`; /metrics serves at most one per backend, scrape the others with /probe?target=NAME".into(),
                snippet: None,
            });
        }
        problems
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
        let mut file_names = std::collections::HashSet::new();
        for (index, glob) in self.collectors.files.paths.iter().enumerate() {
            if !file_names.insert(glob.name.value.as_str()) {
                at(
                    &glob.name.referenced,
                    format!(
                        "collectors.files.paths[{index}].name: duplicate name {:?}; names must be unique",
                        glob.name.value
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
        for (location, message) in self.collectors.probe.problems() {
            problems.push(Problem {
                line: location.line(),
                column: location.column(),
                message,
                snippet: None,
            });
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
        if !self.collectors.postgres.targets.is_empty() {
            names.push("postgres");
        }
        if !self.collectors.redis.targets.is_empty() {
            names.push("redis");
        }
        if !self.collectors.probe.targets.is_empty() {
            names.push("probe");
        }
        if !self.collectors.files.paths.is_empty() {
            names.push("files");
        }
        if self.collectors.accesslog.is_enabled() {
            names.push("accesslog");
        }
        if !self.collectors.business.queries.is_empty() {
            names.push("business");
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

/// A target's optional password from `password_env` or `password_file`.
fn resolve_password(env: Option<&String>, file: Option<&PathBuf>) -> Result<Option<Secret>, String> {
    match (env, file) {
        (Some(env), None) => SecretSource::Env(env.clone()).resolve().map(Some),
        (None, Some(file)) => SecretSource::File(file.clone()).resolve().map(Some),
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err("set only one of password_env and password_file".into()),
    }
}

/// Whether a PostgreSQL connection string carries a password inline.
fn dsn_has_password(dsn: &str) -> bool {
    if let Some(rest) = dsn.strip_prefix("postgresql://").or_else(|| dsn.strip_prefix("postgres://")) {
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        return authority.rsplit_once('@').is_some_and(|(userinfo, _)| userinfo.contains(':'))
            || dsn.contains("password=");
    }
    dsn.split_whitespace().any(|pair| pair.trim_start().starts_with("password"))
}

/// Checks a Redis address: scheme, host, and no password in it. The message
/// never repeats the address, which could hold a password.
fn check_redis_address(address: &str) -> Result<(), String> {
    let expected = "expected redis://host:port[/db], rediss://host:port or unix:///path/to/redis.sock";
    let Some((scheme, rest)) = address.split_once("://") else {
        return Err(format!("address has no scheme; {expected}"));
    };
    match scheme {
        "redis" | "rediss" => {
            let authority = rest.split(['/', '?']).next().unwrap_or_default();
            if let Some((userinfo, _)) = authority.rsplit_once('@')
                && userinfo.contains(':')
            {
                return Err("address contains a password; move it to password_env or password_file".into());
            }
            if authority.rsplit_once('@').map_or(authority, |(_, host)| host).is_empty() {
                return Err(format!("address has no host; {expected}"));
            }
            Ok(())
        }
        "unix" | "redis+unix" if rest.starts_with('/') => Ok(()),
        _ => Err(format!("unsupported address scheme {scheme:?}; {expected}")),
    }
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
