//! The PostgreSQL collector's section (`collectors.postgres`): targets, where
//! each one's DSN and password come from, its session timeouts, and the
//! checks serde cannot make. Secrets are read, and the DSN parsed, once, by
//! the collector's constructor.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::secret::{Secret, SecretSource, optional_password};
use crate::config::{ConfigDuration, Problem, position};

/// PostgreSQL collector settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// Databases to watch.
    pub targets: Vec<PostgresTargetConfig>,
    /// Share of a server's `max_connections` that all targets on that server
    /// (same `host:port`) may hold together, idle or busy.
    pub connection_share: f64,
    /// Close a target's kept connection after this long unused.
    pub idle_timeout: ConfigDuration,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            targets: Vec::new(),
            connection_share: DEFAULT_CONNECTION_SHARE,
            idle_timeout: ConfigDuration(Duration::from_secs(60)),
        }
    }
}

/// Default `connection_share`: 10 connections of PostgreSQL's default 100.
pub const DEFAULT_CONNECTION_SHARE: f64 = 0.1;

/// The largest `connection_share`: the exporter never takes more than half a
/// server's connections from the applications it watches.
pub const MAX_CONNECTION_SHARE: f64 = 0.5;

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

impl PostgresConfig {
    /// The section-wide settings serde cannot check.
    pub fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let share = self.connection_share;
        if !(share > 0.0 && share <= MAX_CONNECTION_SHARE) {
            problems.push(Problem::new(
                crate::config::Position::UNKNOWN,
                "collectors.postgres.connection_share",
                format!(
                    "{share} is not a share between 0 and {MAX_CONNECTION_SHARE} of the server's max_connections; \
                     e.g. {DEFAULT_CONNECTION_SHARE} (the default)"
                ),
            ));
        }
        if self.idle_timeout.0.is_zero() {
            problems.push(Problem::new(
                crate::config::Position::UNKNOWN,
                "collectors.postgres.idle_timeout",
                "must be greater than 0s; e.g. 60s (longer than the scrape interval, so scrapes reuse the connection)",
            ));
        }
        problems
    }

    /// postgres_exporter's `DATA_SOURCE_NAME`: one target when the config
    /// names none and the variable is set, so the exporter swaps in for the
    /// peer without a config file.
    pub fn add_peer_environment_target(&mut self) {
        if !self.targets.is_empty() || std::env::var_os("DATA_SOURCE_NAME").is_none() {
            return;
        }
        let unknown = serde_saphyr::Location::UNKNOWN;
        self.targets.push(PostgresTargetConfig {
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
        });
    }
}

impl PostgresTargetConfig {
    /// The field path of target `index` as errors show it.
    pub fn field(&self, index: usize) -> String {
        format!("collectors.postgres.targets[{index}]")
    }

    /// What serde cannot check, short of reading secrets: the statement limit,
    /// table names, a usable connect timeout.
    pub fn check(&self, index: usize) -> Vec<Problem> {
        let field = self.field(index);
        let at = position(&self.name.referenced);
        let mut problems = Vec::new();
        if self.stat_statements.limit == 0 || self.stat_statements.limit > STAT_STATEMENTS_MAX {
            problems.push(Problem::new(
                at,
                format!("{field}.stat_statements.limit"),
                format!("must be between 1 and {STAT_STATEMENTS_MAX}"),
            ));
        }
        for table in &self.tables {
            if table.is_empty() || table.split('.').count() > 2 {
                problems.push(Problem::new(
                    at,
                    format!("{field}.tables"),
                    format!("{table:?} is not `table` or `schema.table`"),
                ));
            }
        }
        if self.connect_timeout.0.is_zero() {
            problems.push(Problem::new(
                at,
                format!("{field}.connect_timeout"),
                "must be greater than 0s; e.g. 3s",
            ));
        }
        problems
    }

    /// A problem with target `index`, shown as `collectors.postgres.targets[i] (name)`.
    pub fn problem(&self, index: usize, message: impl Into<String>) -> Problem {
        Problem::new(
            position(&self.name.referenced),
            format!("{} ({})", self.field(index), self.name.value),
            message,
        )
    }

    /// Reads the DSN and the separate password, if any, from where the config
    /// says. Errors name the field, variable or file, never a value.
    pub fn secrets(&self, index: usize) -> Result<(Secret, Option<Secret>), Problem> {
        let field = self.field(index);
        let failed = |message: String| self.problem(index, message);
        let dsn = match (&self.dsn, &self.dsn_env, &self.dsn_file) {
            (Some(inline), None, None) if dsn_has_password(&inline.value) => {
                return Err(Problem::new(
                    position(&inline.referenced),
                    format!("{field}.dsn"),
                    "contains a password; move it to password_env or password_file (or the whole DSN to dsn_env or dsn_file)",
                ));
            }
            (Some(inline), None, None) => Secret::new(inline.value.clone()),
            (None, Some(env), None) => {
                SecretSource::Env(env.clone()).resolve().map_err(|e| failed(e.to_string()))?
            }
            (None, None, Some(file)) => {
                SecretSource::File(file.clone()).resolve().map_err(|e| failed(e.to_string()))?
            }
            (None, None, None) => return Err(failed("set one of dsn, dsn_env or dsn_file".into())),
            _ => return Err(failed("set only one of dsn, dsn_env and dsn_file".into())),
        };
        let password =
            optional_password(self.password_env.as_ref(), self.password_file.as_ref()).map_err(failed)?;
        Ok((dsn, password))
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
