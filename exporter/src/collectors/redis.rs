//! The Redis collector: one instance per configured target. It keeps one
//! multiplexed connection per target between scrapes and, when that
//! connection turns out closed, retries once on a fresh one in the same
//! scrape, so a restarted server shows `redis_up 1` on the very next scrape.
//! Every step (connect, PING, INFO) runs under the target's `timeout` and the
//! scrape deadline. A down, hung or refusing server shows as `redis_up 0`,
//! logged at most once a minute per target.
//!
//! INFO is parsed by [`parse_info`], a pure function: the redis crate's
//! `InfoDict` drops section names and the nested `db0:keys=..` values.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant as StdInstant};

use opsmon_catalog::MetricDef;
use opsmon_catalog::redis as m;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo};
use tokio::time::Instant;

mod config;

pub use config::{RedisConfig, RedisTargetConfig};

use crate::collectors::collector::{BoxFuture, CollectError, Collected, Collector, lock};
use crate::config::Problem;
use crate::config::secret::{Secret, scrub};
use crate::logging::RateLimiter;
use crate::metrics::{LabelValue, MetricSet};

/// Why an `INFO` reply could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InfoError(String);

/// Why an address cannot be used; never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AddressError(String);

/// One parsed `INFO` reply: `field: value` per section, and the keyspace.
/// Fields and values borrow the reply's text, in the server's order: a
/// reply has a few hundred lines, and copying and sorting each was most of a
/// probe's work, while only a few dozen fields are ever looked up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Info<'a> {
    /// Section name (lowercase, e.g. `memory`) → its `field: raw value` lines.
    pub sections: BTreeMap<String, Vec<(&'a str, &'a str)>>,
    /// The `# Keyspace` lines, by database number.
    pub keyspace: BTreeMap<u32, DbKeys>,
}

/// One `dbN:keys=..,expires=..,avg_ttl=..` line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DbKeys {
    /// Keys in the database.
    pub keys: f64,
    /// Keys with an expiry set.
    pub expires: f64,
}

impl<'a> Info<'a> {
    /// The raw value of `field` in `section` (lowercase, as in `INFO memory`);
    /// the last one when a field repeats.
    pub fn get(&self, section: &str, field: &str) -> Option<&'a str> {
        self.sections.get(section)?.iter().rev().find(|(name, _)| *name == field).map(|(_, value)| *value)
    }

    /// `field` in `section` as a number, when present and numeric.
    pub fn number(&self, section: &str, field: &str) -> Option<f64> {
        self.get(section, field)?.trim().parse().ok()
    }

    /// Files the fields read under one section header.
    fn file(&mut self, section: String, fields: Vec<(&'a str, &'a str)>) {
        if !fields.is_empty() {
            self.sections.entry(section).or_default().extend(fields);
        }
    }
}

/// Parses the text of an `INFO` reply (CRLF or LF line ends). Fails when the
/// text is not INFO output at all or a keyspace line is malformed; other
/// unknown lines are kept as raw fields or skipped, so new server versions
/// and forks still parse.
pub fn parse_info(text: &str) -> Result<Info<'_>, InfoError> {
    let mut info = Info::default();
    let mut section = String::new();
    let mut fields = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(name) = line.strip_prefix('#') {
            info.file(std::mem::take(&mut section), std::mem::take(&mut fields));
            section = name.trim().to_ascii_lowercase();
            continue;
        }
        let Some((field, value)) = line.split_once(':') else {
            continue;
        };
        if section == "keyspace"
            && let Some(number) = field.strip_prefix("db")
        {
            let malformed = || InfoError(format!("INFO keyspace: malformed line {line:?}"));
            let db = number.parse().map_err(|_| malformed())?;
            info.keyspace.insert(db, parse_db_keys(value).ok_or_else(malformed)?);
            continue;
        }
        fields.push((field, value));
    }
    info.file(section, fields);
    if info.get("server", "redis_version").is_none() {
        return Err(InfoError("the INFO reply has no server section with redis_version".into()));
    }
    Ok(info)
}

/// `keys=6,expires=1,avg_ttl=923793[,subexpiry=0]`.
fn parse_db_keys(value: &str) -> Option<DbKeys> {
    let mut keys = None;
    let mut expires = None;
    for pair in value.split(',') {
        let (name, number) = pair.split_once('=')?;
        match name {
            "keys" => keys = Some(number.parse().ok()?),
            "expires" => expires = Some(number.parse().ok()?),
            _ => {}
        }
    }
    Some(DbKeys { keys: keys?, expires: expires.unwrap_or(0.0) })
}

/// INFO fields reported as they are, redis_exporter's way.
const NUMBERS: [(&str, &str, &MetricDef); 18] = [
    ("server", "uptime_in_seconds", &m::UPTIME),
    ("clients", "connected_clients", &m::CONNECTED_CLIENTS),
    ("clients", "blocked_clients", &m::BLOCKED_CLIENTS),
    ("memory", "used_memory", &m::MEMORY_USED),
    ("memory", "maxmemory", &m::MEMORY_MAX),
    ("memory", "mem_fragmentation_ratio", &m::MEM_FRAGMENTATION),
    ("memory", "used_memory_rss", &m::MEMORY_USED_RSS),
    ("memory", "total_system_memory", &m::TOTAL_SYSTEM_MEMORY),
    ("stats", "total_net_input_bytes", &m::NET_INPUT),
    ("stats", "total_net_output_bytes", &m::NET_OUTPUT),
    ("stats", "total_commands_processed", &m::COMMANDS_PROCESSED),
    ("stats", "keyspace_hits", &m::KEYSPACE_HITS),
    ("stats", "keyspace_misses", &m::KEYSPACE_MISSES),
    ("stats", "evicted_keys", &m::EVICTED_KEYS),
    ("stats", "expired_keys", &m::EXPIRED_KEYS),
    ("persistence", "rdb_last_save_time", &m::RDB_LAST_SAVE),
    ("replication", "connected_slaves", &m::CONNECTED_SLAVES),
    ("replication", "master_last_io_seconds_ago", &m::MASTER_LAST_IO),
];

/// `redis_instance_info` labels in catalog order, with the section each comes from.
const INSTANCE_LABELS: [(&str, &str); 9] = [
    ("memory", "maxmemory_policy"),
    ("server", "os"),
    ("server", "process_id"),
    ("server", "redis_build_id"),
    ("server", "redis_mode"),
    ("server", "redis_version"),
    ("replication", "role"),
    ("server", "run_id"),
    ("server", "tcp_port"),
];

/// At most this many commands are reported from INFO commandstats (Redis 7
/// knows about 400 commands and subcommands), so a hostile or broken server
/// cannot flood the scrape.
const MAX_COMMANDS: usize = 2048;

/// One `cmdstat_NAME:calls=…,usec=…[,rejected_calls=…,failed_calls=…]` line.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandStats {
    /// The command as redis_exporter labels it (`get`, `config|get`).
    pub cmd: String,
    /// Calls since the server started or `CONFIG RESETSTAT`.
    pub calls: f64,
    /// Total time in seconds (INFO gives microseconds).
    pub seconds: f64,
    /// Calls rejected before execution; Redis 6.2 and later only.
    pub rejected: Option<f64>,
    /// Calls that failed during execution; Redis 6.2 and later only.
    pub failed: Option<f64>,
}

/// The commands of INFO commandstats, by name (the first [`MAX_COMMANDS`]
/// of them, whatever order the server lists them in). Lines without `calls`
/// or `usec` are skipped (a fork or future version may add others); a reply
/// without the section (plain `INFO`) gives none.
pub fn command_stats(info: &Info<'_>) -> Vec<CommandStats> {
    let Some(section) = info.sections.get("commandstats") else { return Vec::new() };
    let mut lines: BTreeMap<&str, &str> = BTreeMap::new();
    lines.extend(section.iter().copied());
    lines
        .into_iter()
        .filter_map(|(field, value)| {
            let cmd = field.strip_prefix("cmdstat_")?;
            let (mut calls, mut usec, mut rejected, mut failed) = (None, None, None, None);
            for pair in value.split(',') {
                let (key, number) = pair.split_once('=')?;
                let number = number.trim().parse::<f64>().ok().filter(|n| n.is_finite());
                match key.trim() {
                    "calls" => calls = number,
                    "usec" => usec = number,
                    "rejected_calls" => rejected = number,
                    "failed_calls" => failed = number,
                    _ => {}
                }
            }
            Some(CommandStats { cmd: cmd.to_owned(), calls: calls?, seconds: usec? / 1e6, rejected, failed })
        })
        .take(MAX_COMMANDS)
        .collect()
}

/// Reads one figure of a command's statistics.
type CommandColumn = fn(&CommandStats) -> Option<f64>;

fn command_metrics(info: &Info<'_>, out: &mut MetricSet) {
    let commands = command_stats(info);
    if commands.is_empty() {
        return;
    }
    let columns: [(&'static MetricDef, CommandColumn); 4] = [
        (&m::COMMANDS, |c| Some(c.calls)),
        (&m::COMMANDS_DURATION, |c| Some(c.seconds)),
        (&m::COMMANDS_REJECTED, |c| c.rejected),
        (&m::COMMANDS_FAILED, |c| c.failed),
    ];
    for (def, value) in columns {
        // Families a server version does not report (rejected/failed before 6.2) stay out.
        if commands.iter().all(|c| value(c).is_none()) {
            continue;
        }
        let mut family = out.family(def);
        for command in &commands {
            if let Some(number) = value(command) {
                family.number(vec![command.cmd.clone().into()], number);
            }
        }
    }
}

/// Empty databases get a 0 sample (as redis_exporter does) only up to this
/// many, so a server configured with a huge `databases` cannot flood the
/// scrape; non-empty databases are always reported.
const MAX_ZERO_FILLED_DATABASES: u32 = 256;

/// The families one INFO reply gives. `databases` (from `CONFIG GET
/// databases`) fills in empty databases with 0; fields a server does not
/// report are left out, as redis_exporter does.
pub fn info_metrics(info: &Info<'_>, databases: Option<u32>, out: &mut MetricSet) {
    let labels = INSTANCE_LABELS
        .iter()
        .map(|(section, field)| LabelValue::from(info.get(section, field).unwrap_or_default().to_owned()))
        .collect();
    out.family(&m::INSTANCE_INFO).number(labels, 1.0);
    for (section, field, def) in NUMBERS {
        if let Some(value) = info.number(section, field) {
            out.single(def, value);
        }
    }
    command_metrics(info, out);
    if let Some(status) = info.get("persistence", "rdb_last_bgsave_status") {
        out.single(&m::RDB_LAST_BGSAVE_STATUS, if status == "ok" { 1.0 } else { 0.0 });
    }
    let mut dbs = info.keyspace.clone();
    for db in 0..databases.unwrap_or(0).min(MAX_ZERO_FILLED_DATABASES) {
        dbs.entry(db).or_default();
    }
    let mut keys = out.family(&m::DB_KEYS);
    for (db, counts) in &dbs {
        keys.number(vec![format!("db{db}").into()], counts.keys);
    }
    let mut expiring = out.family(&m::DB_KEYS_EXPIRING);
    for (db, counts) in &dbs {
        expiring.number(vec![format!("db{db}").into()], counts.expires);
    }
}

/// Connection settings from an address (`redis://`, `rediss://` or
/// `unix://`, without a password) and the separately resolved credentials.
/// Errors never contain the password.
pub fn connection_info(
    address: &str,
    username: Option<&str>,
    password: Option<&Secret>,
) -> Result<ConnectionInfo, AddressError> {
    let info: ConnectionInfo = address.into_connection_info().map_err(|e| {
        AddressError(format!(
            "the address is not a valid Redis URL ({}); expected redis://host:port[/db], rediss://host:port or unix:///path/to/redis.sock",
            scrub(&e.to_string(), password)
        ))
    })?;
    // The socket form carries a password as `?pass=`, which the section's URL check does not see.
    if info.redis_settings().password().is_some() {
        return Err(AddressError(
            "the address contains a password; move it to password_env or password_file".into(),
        ));
    }
    // CLIENT SETINFO is unknown before Redis 7.2: every connection would add
    // to the watched server's error counts.
    let mut settings = info.redis_settings().clone().set_skip_set_lib_name();
    match (username, password) {
        (Some(_), None) => {
            return Err(AddressError(
                "username is set but no password; set password_env or password_file".into(),
            ));
        }
        (Some(username), Some(password)) => {
            settings = settings.set_username(username).set_password(password.expose());
        }
        (None, Some(password)) => settings = settings.set_password(password.expose()),
        (None, None) => {}
    }
    Ok(info.set_redis_settings(settings))
}

/// The address as logs and messages show it: `host:port`, `host:port (TLS)`
/// or the socket path (never user or password).
pub fn address_label(info: &ConnectionInfo) -> String {
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("{host}:{port} (TLS)"),
        ConnectionAddr::Unix(path) => path.display().to_string(),
        other => other.to_string(),
    }
}

/// A connection kept between scrapes, with what was learnt once on it.
#[derive(Clone)]
struct Session {
    connection: MultiplexedConnection,
    databases: Option<u32>,
}

/// What one successful exchange brought back.
struct Reply {
    ping_seconds: f64,
    info: String,
    databases: Option<u32>,
}

/// Why an exchange failed, and whether a fresh connection may fix it.
struct Failure {
    message: String,
    /// The connection was closed under us, unlike a timeout or an error reply.
    reconnect: bool,
}

/// One watched Redis server.
pub struct RedisCollector {
    name: String,
    /// `host:port`, `host:port (TLS)` or the socket path: for logs and messages.
    address: String,
    client: Client,
    timeout: Duration,
    tls: bool,
    username: bool,
    secrets: Vec<Secret>,
    session: Mutex<Option<Session>>,
    config_denied_logged: AtomicBool,
    failure_log: RateLimiter,
}

impl std::fmt::Debug for RedisCollector {
    // The client holds the password; show only what identifies the target.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCollector")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisCollector {
    /// The collector for target `index` of the config: reads its address and
    /// password and parses them (once). Errors never contain the password.
    pub fn new(index: usize, config: &RedisTargetConfig) -> Result<Self, Vec<Problem>> {
        let (address, password) = config.secrets(index).map_err(|problem| vec![problem])?;
        Self::connecting_to(config, &address, password.as_ref())
            .map_err(|e| vec![config.problem(index, e.to_string())])
    }

    /// The collector for `config` with its address and password already read.
    fn connecting_to(
        config: &RedisTargetConfig,
        address: &str,
        password: Option<&Secret>,
    ) -> Result<Self, AddressError> {
        let secrets: Vec<Secret> = password.into_iter().cloned().collect();
        let info = connection_info(address, config.username.as_deref(), password)?;
        let address = address_label(&info);
        let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        let client = Client::open(info).map_err(|e| {
            AddressError(format!("cannot use the address: {}", scrub(&e.to_string(), &secrets)))
        })?;
        Ok(Self {
            name: config.name.value.clone(),
            address,
            client,
            timeout: config.timeout.0,
            tls,
            username: config.username.is_some(),
            secrets,
            session: Mutex::new(None),
            config_denied_logged: AtomicBool::new(false),
            failure_log: RateLimiter::new(Duration::from_secs(60)),
        })
    }

    /// How logs and messages show the server: `host:port`, `host:port (TLS)`
    /// or the socket path (never user or password).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Whether a password is sent.
    pub fn has_password(&self) -> bool {
        !self.secrets.is_empty()
    }

    async fn scrape(&self, deadline: Instant) -> Collected {
        let mut out = MetricSet::new();
        let reply = match self.exchange(deadline).await {
            Ok(reply) => reply,
            Err(error) => return self.down(out, error),
        };
        out.single(&m::UP, 1.0);
        out.single(&m::PING_DURATION, reply.ping_seconds);
        match parse_info(&reply.info) {
            Ok(info) => {
                info_metrics(&info, reply.databases, &mut out);
                Collected { metrics: out, error: None }
            }
            Err(error) => {
                if let Some(suppressed) = self.failure_log.allow("parse") {
                    tracing::warn!(target_name = %self.name, address = %self.address, %error, suppressed_since_last = suppressed, "redis INFO could not be read");
                }
                Collected {
                    metrics: out,
                    error: Some(CollectError::Parse(error.to_string()).in_target(&self.name)),
                }
            }
        }
    }

    fn down(&self, mut out: MetricSet, error: CollectError) -> Collected {
        out.single(&m::UP, 0.0);
        if let Some(suppressed) = self.failure_log.allow("connect") {
            tracing::warn!(target_name = %self.name, address = %self.address, %error, suppressed_since_last = suppressed, "redis scrape failed");
        }
        Collected { metrics: out, error: Some(error.in_target(&self.name)) }
    }

    /// PING and INFO on the kept connection; when that connection turns out
    /// closed (the server restarted, or dropped an idle client), once more on
    /// a fresh one. A timeout is not retried: a hung server would only eat
    /// the budget twice.
    /// Connection failures are [`CollectError::Unreachable`], failed or
    /// unanswered commands [`CollectError::Query`].
    async fn exchange(&self, deadline: Instant) -> Result<Reply, CollectError> {
        let kept = lock(&self.session).clone();
        if let Some(session) = kept {
            match self.ask(session, deadline).await {
                Ok(reply) => return Ok(reply),
                Err(failure) => {
                    self.forget();
                    if !failure.reconnect {
                        return Err(CollectError::Query(failure.message));
                    }
                    tracing::debug!(target_name = %self.name, address = %self.address, error = %failure.message, "kept redis connection is closed; reconnecting");
                }
            }
        }
        let session = self.connect(deadline).await.map_err(|f| CollectError::Unreachable(f.message))?;
        let reply = self.ask(session.clone(), deadline).await.map_err(|f| CollectError::Query(f.message))?;
        *lock(&self.session) = Some(session);
        Ok(reply)
    }

    fn forget(&self) {
        *lock(&self.session) = None;
    }

    async fn connect(&self, deadline: Instant) -> Result<Session, Failure> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let what = format!("connect to {}", self.address);
        let mut connection = self
            .step(&what, deadline, self.client.get_multiplexed_async_connection_with_config(&config))
            .await?;
        // What is learnt once per connection, in one round trip. SETNAME
        // shows who we are in CLIENT LIST, as redis_exporter does; `CONFIG GET
        // databases` lets empty databases be reported as 0. A server that
        // renamed CONFIG, or an ACL user without it, is still watched.
        let mut setup = redis::pipe();
        setup
            .ignore_errors()
            .cmd("CLIENT")
            .arg("SETNAME")
            .arg("opsmon-exporter")
            .cmd("CONFIG")
            .arg("GET")
            .arg("databases");
        let replies: Vec<redis::RedisResult<redis::Value>> = self
            .step("CLIENT SETNAME and CONFIG GET databases", deadline, setup.query_async(&mut connection))
            .await?;
        let databases = match replies.into_iter().nth(1) {
            Some(Ok(value)) => redis::from_redis_value::<Vec<String>>(value)
                .ok()
                .and_then(|pair| pair.get(1).and_then(|n| n.parse().ok())),
            Some(Err(error)) => {
                if !self.config_denied_logged.swap(true, Ordering::Relaxed) {
                    tracing::info!(target_name = %self.name, address = %self.address, error = %self.describe("CONFIG GET databases", &error), "redis refuses CONFIG GET; empty databases will not be reported as 0");
                }
                None
            }
            None => None,
        };
        tracing::debug!(target_name = %self.name, address = %self.address, databases = ?databases, "connected to redis");
        Ok(Session { connection, databases })
    }

    /// PING and INFO are sent together, PING first, and answered in one
    /// round trip: one wake-up of the exporter instead of two, which is most
    /// of a probe's cost when probes are spread out. PING's reply is timed
    /// on its own; the server answers it before it runs INFO, though the two
    /// replies usually share one read.
    async fn ask(&self, mut session: Session, deadline: Instant) -> Result<Reply, Failure> {
        let mut ping_connection = session.connection.clone();
        let started = StdInstant::now();
        let ping = async {
            let pong: String =
                self.step("PING", deadline, redis::cmd("PING").query_async(&mut ping_connection)).await?;
            Ok::<_, Failure>((pong, started.elapsed().as_secs_f64()))
        };
        let mut info_command = redis::cmd("INFO");
        info_command.arg("ALL");
        let info = self.step("INFO", deadline, info_command.query_async::<String>(&mut session.connection));
        let (ping, info) = tokio::join!(ping, info);
        let (pong, ping_seconds) = ping?;
        if pong != "PONG" {
            return Err(Failure {
                message: format!("PING: unexpected reply {:?}", scrub(&pong, &self.secrets)),
                reconnect: false,
            });
        }
        Ok(Reply { ping_seconds, info: info?, databases: session.databases })
    }

    /// Runs one network step under the target's timeout and the scrape deadline.
    async fn step<T>(
        &self,
        what: &str,
        deadline: Instant,
        future: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Failure> {
        let limit = self.limit(deadline);
        match tokio::time::timeout_at(limit, future).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Failure {
                message: self.describe(what, &error),
                reconnect: !error.is_timeout() && (error.is_io_error() || error.is_connection_dropped()),
            }),
            Err(_) => Err(Failure {
                message: format!("{}{}", self.late(what, limit, deadline), self.tls_hint(what)),
                reconnect: false,
            }),
        }
    }

    fn limit(&self, deadline: Instant) -> Instant {
        deadline.min(Instant::now() + self.timeout)
    }

    fn late(&self, what: &str, limit: Instant, deadline: Instant) -> String {
        if limit < deadline {
            format!("{what}: no answer within the timeout of {:?}", self.timeout)
        } else {
            format!("{what}: no answer before the scrape deadline")
        }
    }

    /// A driver error as a message that says what to fix, never the password.
    fn describe(&self, what: &str, error: &redis::RedisError) -> String {
        if error.kind() == ErrorKind::AuthenticationFailed || error.code() == Some("WRONGPASS") {
            return format!(
                "{what}: authentication failed: the server rejected the {}; check password_env or password_file",
                if self.username { "username and password" } else { "password" }
            );
        }
        if error.is_timeout() {
            return format!(
                "{what}: no answer within the timeout of {:?}{}",
                self.timeout,
                self.tls_hint(what)
            );
        }
        let text = match (error.code(), error.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            _ => error.to_string(),
        };
        let hint = match error.code() {
            Some("NOAUTH") => "; the server requires a password: set password_env or password_file",
            Some("NOPERM") => "; the ACL user lacks this permission",
            _ => self.tls_hint(what),
        };
        format!("{what}: {}{hint}", scrub(text.trim_end_matches('.'), &self.secrets))
    }

    /// A TLS handshake with a server that does not speak TLS just hangs or
    /// fails with a framing error; say what to check.
    fn tls_hint(&self, what: &str) -> &'static str {
        if self.tls && what.starts_with("connect") {
            "; TLS: check that the server serves TLS on this port and that its certificate is trusted"
        } else {
            ""
        }
    }
}

impl Collector for RedisCollector {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn collect(&self, deadline: Instant) -> BoxFuture<'_, Collected> {
        Box::pin(self.scrape(deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO_7: &str = include_str!("../../tests/fixtures/redis/info-7.txt");
    const INFO_6: &str = include_str!("../../tests/fixtures/redis/info-6.txt");
    const INFO_ALL_7: &str = include_str!("../../tests/fixtures/redis/info-all-7.txt");

    fn sample(text: &str, name: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn redis_7_info() {
        let info = parse_info(INFO_7).expect("parses");
        assert_eq!(info.get("server", "redis_version"), Some("7.0.15"));
        assert_eq!(
            info.get("server", "executable"),
            Some("/tmp/rx/redis-server"),
            "values keep their colons"
        );
        assert_eq!(info.get("server", "config_file"), Some(""));
        assert_eq!(info.number("memory", "maxmemory"), Some(67_108_864.0));
        assert_eq!(info.get("memory", "maxmemory_policy"), Some("noeviction"));
        assert_eq!(info.number("stats", "keyspace_hits"), Some(2.0));
        assert_eq!(info.get("replication", "role"), Some("master"));
        assert_eq!(
            info.keyspace,
            BTreeMap::from([
                (0, DbKeys { keys: 6.0, expires: 1.0 }),
                (2, DbKeys { keys: 2.0, expires: 1.0 }),
                (5, DbKeys { keys: 1.0, expires: 0.0 }),
            ])
        );
        assert!(info.get("keyspace", "db0").is_none(), "keyspace lines are parsed, not kept raw");
    }

    /// A field given twice, or a section whose header repeats, reads as the
    /// last value, as when every line was inserted into a map; commands are
    /// reported by name whatever order the server lists them in.
    #[test]
    fn repeated_fields_and_sections_read_as_the_last_value() {
        let text = "# Server\r\nredis_version:7.2.4\r\nuptime_in_seconds:5\r\n# Memory\r\nused_memory:10\r\n\
                    # Server\r\nuptime_in_seconds:9\r\n# Commandstats\r\n\
                    cmdstat_set:calls=2,usec=4,usec_per_call=2.00\r\ncmdstat_get:calls=3,usec=6,usec_per_call=2.00\r\n\
                    cmdstat_get:calls=5,usec=10,usec_per_call=2.00\r\n";
        let info = parse_info(text).expect("parses");
        assert_eq!(info.number("server", "uptime_in_seconds"), Some(9.0));
        assert_eq!(info.get("server", "redis_version"), Some("7.2.4"));
        assert_eq!(info.number("memory", "used_memory"), Some(10.0));
        assert_eq!(info.get("memory", "uptime_in_seconds"), None, "fields stay in their section");
        let commands: Vec<(String, f64)> =
            command_stats(&info).into_iter().map(|c| (c.cmd, c.calls)).collect();
        assert_eq!(commands, vec![("get".to_owned(), 5.0), ("set".to_owned(), 2.0)]);
    }

    #[test]
    fn redis_6_info() {
        let info = parse_info(INFO_6).expect("parses");
        assert_eq!(info.get("server", "redis_version"), Some("6.2.5"));
        assert_eq!(info.number("memory", "maxmemory"), Some(104_857_600.0));
        assert_eq!(info.get("memory", "maxmemory_policy"), Some("allkeys-lru"));
        assert_eq!(info.number("stats", "keyspace_misses"), Some(2.0));
        assert_eq!(info.number("persistence", "rdb_last_save_time"), Some(1_795_638_276.0));
        assert_eq!(
            info.keyspace,
            BTreeMap::from([
                (0, DbKeys { keys: 9.0, expires: 2.0 }),
                (1, DbKeys { keys: 3.0, expires: 1.0 }),
                (4, DbKeys { keys: 1.0, expires: 0.0 }),
            ])
        );
    }

    /// The values redis_exporter 1.45 reported for the server the Redis 6
    /// fixture was captured from.
    #[test]
    fn redis_6_metrics_match_redis_exporter() {
        let mut out = MetricSet::new();
        info_metrics(&parse_info(INFO_6).expect("parses"), Some(16), &mut out);
        let text = out.encode_text();
        for expected in [
            "redis_blocked_clients 0",
            "redis_connected_clients 1",
            "redis_connected_slaves 0",
            "redis_db_keys{db=\"db0\"} 9",
            "redis_db_keys{db=\"db1\"} 3",
            "redis_db_keys{db=\"db4\"} 1",
            "redis_db_keys{db=\"db15\"} 0",
            "redis_db_keys_expiring{db=\"db0\"} 2",
            "redis_db_keys_expiring{db=\"db1\"} 1",
            "redis_db_keys_expiring{db=\"db4\"} 0",
            "redis_evicted_keys_total 0",
            "redis_expired_keys_total 0",
            "redis_keyspace_hits_total 3",
            "redis_keyspace_misses_total 2",
            "redis_memory_max_bytes 104857600",
            "redis_rdb_last_bgsave_status 1",
            "redis_rdb_last_save_timestamp_seconds 1795638276",
        ] {
            assert!(text.lines().any(|l| l == expected), "missing {expected:?} in\n{text}");
        }
        assert_eq!(sample(&text, "redis_db_keys").len(), 16, "db0..db15, as redis_exporter");
        assert_eq!(
            sample(&text, "redis_instance_info"),
            [
                "redis_instance_info{maxmemory_policy=\"allkeys-lru\",os=\"Linux 6.18.44-fc-v669 x86_64\",process_id=\"8564\",redis_build_id=\"135cf79b58e84c2a\",redis_mode=\"standalone\",redis_version=\"6.2.5\",role=\"master\",run_id=\"2fc66cc2fccc338594410bf8e57db95e3afbaaf0\",tcp_port=\"16380\"} 1"
            ]
        );
    }

    /// Plain `INFO` (the older fixtures) has no commandstats; `INFO ALL`,
    /// which the collector sends, has every family.
    #[test]
    fn every_info_family_comes_from_the_fixtures() {
        let commands = [&m::COMMANDS, &m::COMMANDS_DURATION, &m::COMMANDS_REJECTED, &m::COMMANDS_FAILED];
        for (fixture, databases, has_commandstats) in
            [(INFO_6, 3, false), (INFO_7, 3, false), (INFO_ALL_7, 1, true)]
        {
            let mut out = MetricSet::new();
            info_metrics(&parse_info(fixture).expect("parses"), None, &mut out);
            let emitted: Vec<&str> = out.families().iter().map(|f| f.def.name).collect();
            for def in m::METRICS {
                if def.name == m::UP.name || def.name == m::PING_DURATION.name {
                    continue;
                }
                // The fixtures are primaries; the replica-only field is tested below.
                let expected = def.name != m::MASTER_LAST_IO.name
                    && (has_commandstats || !commands.iter().any(|c| c.name == def.name));
                assert_eq!(emitted.contains(&def.name), expected, "{}", def.name);
            }
            let text = out.encode_text();
            assert_eq!(
                sample(&text, "redis_db_keys").len(),
                databases,
                "without CONFIG GET: the listed databases only"
            );
        }
    }

    /// Values read from the Redis 7.0 `INFO ALL` fixture, named as
    /// redis_exporter 1.45 names them (checked beside it on the same server).
    #[test]
    fn commandstats_memory_and_network_from_info_all() {
        let mut out = MetricSet::new();
        info_metrics(&parse_info(INFO_ALL_7).expect("parses"), None, &mut out);
        let text = out.encode_text();
        for expected in [
            "redis_commands_total{cmd=\"config|get\"} 2",
            "redis_commands_total{cmd=\"lpush\"} 1",
            "redis_commands_duration_seconds_total{cmd=\"info\"} 0.000231",
            "redis_commands_failed_calls_total{cmd=\"lpush\"} 1",
            "redis_commands_rejected_calls_total{cmd=\"get\"} 0",
            "redis_memory_used_rss_bytes 12349440",
            "redis_total_system_memory_bytes 25276059648",
            "redis_net_input_bytes_total 420",
            "redis_net_output_bytes_total 17759",
        ] {
            assert!(text.lines().any(|l| l == expected), "missing {expected:?} in\n{text}");
        }
        assert_eq!(sample(&text, "redis_commands_total").len(), 10);
    }

    /// Before Redis 6.2 commandstats has no rejected/failed counts: those
    /// families are left out, the others stay; malformed lines are skipped.
    #[test]
    fn older_and_malformed_commandstats() {
        let text = "# Server\nredis_version:5.0.14\n# Commandstats\ncmdstat_get:calls=7,usec=21,usec_per_call=3.00\ncmdstat_set:calls=x,usec=1\ncmdstat_del:usec=5\nnot_a_cmdstat:calls=1,usec=1\n";
        let info = parse_info(text).expect("parses");
        assert_eq!(
            command_stats(&info),
            [CommandStats { cmd: "get".into(), calls: 7.0, seconds: 21e-6, rejected: None, failed: None }]
        );
        let mut out = MetricSet::new();
        info_metrics(&info, None, &mut out);
        let emitted: Vec<&str> = out.families().iter().map(|f| f.def.name).collect();
        assert!(emitted.contains(&"redis_commands_total"));
        assert!(emitted.contains(&"redis_commands_duration_seconds_total"));
        assert!(!emitted.contains(&"redis_commands_failed_calls_total"), "{emitted:?}");
        assert!(!emitted.contains(&"redis_net_input_bytes_total"), "absent INFO fields stay out");
    }

    #[test]
    fn replica_reports_master_last_io() {
        let text = "# Server\r\nredis_version:7.0.15\r\n# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_last_io_seconds_ago:3\r\n";
        let mut out = MetricSet::new();
        info_metrics(&parse_info(text).expect("parses"), None, &mut out);
        assert!(out.encode_text().lines().any(|l| l == "redis_master_last_io_seconds_ago 3"));
    }

    #[test]
    fn bgsave_failure_and_newer_keyspace_fields() {
        let text = "# Server\r\nredis_version:7.4.0\r\n\r\n# Persistence\r\nrdb_last_bgsave_status:err\r\n\r\n# Keyspace\r\ndb3:keys=10,expires=4,avg_ttl=0,subexpiry=0\r\n";
        let info = parse_info(text).expect("parses");
        assert_eq!(info.keyspace[&3], DbKeys { keys: 10.0, expires: 4.0 });
        let mut out = MetricSet::new();
        info_metrics(&info, Some(1_000_000), &mut out);
        let text = out.encode_text();
        assert!(text.contains("redis_rdb_last_bgsave_status 0\n"), "{text}");
        assert_eq!(sample(&text, "redis_db_keys").len(), MAX_ZERO_FILLED_DATABASES as usize);
        assert!(!text.contains("redis_memory_max_bytes"), "missing fields are left out: {text}");
    }

    #[test]
    fn malformed_replies_are_errors() {
        assert_eq!(
            parse_info("ERR unknown command").map_err(|e| e.to_string()),
            Err("the INFO reply has no server section with redis_version".into())
        );
        let error = parse_info("# Server\nredis_version:7.0.0\n# Keyspace\ndb0:keys=x,expires=0\n")
            .expect_err("bad number")
            .to_string();
        assert!(error.contains("malformed line \"db0:keys=x,expires=0\""), "{error}");
        let error = parse_info("# Server\nredis_version:7.0.0\n# Keyspace\ndbX:keys=1\n")
            .expect_err("bad db")
            .to_string();
        assert!(error.contains("malformed"), "{error}");
    }

    fn target_config(yaml_target: &str) -> RedisTargetConfig {
        let yaml = format!("collectors:\n  redis:\n    targets:\n      - name: cache\n{yaml_target}");
        match crate::settings::Config::parse(std::path::Path::new("t.yml"), &yaml) {
            Ok(config) => config.collectors.redis.targets[0].clone(),
            Err(e) => panic!("{e}"),
        }
    }

    /// The collector for `config`'s own address and an injected password.
    fn with_password(config: &RedisTargetConfig, password: &str) -> RedisCollector {
        let address = config.address.as_ref().expect("address").value.clone();
        RedisCollector::connecting_to(config, &address, Some(&Secret::new(password))).expect("target")
    }

    #[test]
    fn addresses_and_passwords() {
        let config = target_config("        address: redis://127.0.0.1:6390/2\n");
        let target = with_password(&config, "hunter2-redis-password");
        assert_eq!(target.address, "127.0.0.1:6390");
        let shown = format!("{target:?} {config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");

        let config = target_config("        address: rediss://cache.example:6380\n");
        assert_eq!(RedisCollector::new(0, &config).expect("target").address, "cache.example:6380 (TLS)");
        let config = target_config("        address: unix:///run/redis/redis.sock\n");
        assert_eq!(RedisCollector::new(0, &config).expect("target").address, "/run/redis/redis.sock");

        // The section only looks at URL user info; the socket form's `pass=` is caught here.
        let config = target_config("        address: unix:///run/redis/redis.sock\n");
        let error =
            RedisCollector::connecting_to(&config, "unix:///run/redis/redis.sock?pass=hunter2-in-url", None)
                .expect_err("password in URL")
                .to_string();
        assert!(error.contains("contains a password") && !error.contains("hunter2"), "{error}");

        // A user name without a password is refused while the config is checked.
        let config = target_config("        address: redis://127.0.0.1:6390\n        username: app\n");
        let error =
            opsmon_diagnostics::render("t.yml", &RedisCollector::new(0, &config).expect_err("no password"));
        assert!(error.contains("username is set but no password"), "{error}");

        let error = RedisCollector::connecting_to(&config, "redis://127.0.0.1:notaport", None)
            .expect_err("bad port")
            .to_string();
        assert!(error.contains("not a valid Redis URL"), "{error}");
    }

    #[tokio::test]
    async fn unreachable_server_is_down_within_the_deadline() {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let config = target_config(&format!("        address: redis://127.0.0.1:{port}\n"));
        let target = with_password(&config, "hunter2-redis-password");
        let started = Instant::now();
        let collected = target.collect(started + Duration::from_millis(500)).await;
        assert!(started.elapsed() < Duration::from_millis(600));
        assert!(collected.metrics.encode_text().contains("redis_up 0\n"));
        let error = collected.error.expect("an error").to_string();
        assert!(error.starts_with(&format!("target cache: connect to 127.0.0.1:{port}: ")), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}
