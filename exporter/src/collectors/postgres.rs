//! The PostgreSQL collector: one instance per configured target. Each target
//! keeps at most one connection between scrapes, under its server's
//! [`connections::ServerGate`]: all targets on one `host:port` together hold
//! at most `connection_share` of its `max_connections`, and a connection
//! unused for `idle_timeout` is closed. Each session carries the configured
//! `statement_timeout` and `lock_timeout`; every step also runs under the
//! scrape deadline. A down server shows as `pg_up 0` and recovers by itself.
//!
//! Two round trips per scrape: `SELECT 1`, then every area (see [`areas`])
//! in one statement against the statistics views, prepared once per
//! connection (a new session reads statistics without a per-transaction
//! copy: see [`STATS_FETCH_CONSISTENCY`]). Each area is still its own sub-collector
//! (`opsmon_pg_query_success`): when the combined statement fails, the areas
//! are read one by one in the same scrape, so one slow or blocked area fails
//! alone, and stay so for [`COMBINED_RETRY_AFTER`].

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as StdInstant};

use opsmon_catalog::postgres as m;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow, PgSslMode};
use sqlx::{PgConnection, Row};
use tokio::time::Instant;

mod areas;
mod config;
pub mod connections;

use areas::{Area, AreaStatements};
pub use areas::{setting_value, short_version};
pub use config::{
    DEFAULT_CONNECTION_SHARE, MAX_CONNECTION_SHARE, PostgresConfig, PostgresTargetConfig,
    STAT_STATEMENTS_MAX, StatStatementsConfig,
};
use connections::{DatabaseSizes, Lease, LeaseError, ServerGate, ServerGates, Slot};

use crate::collectors::collector::{BoxFuture, CollectError, Collected, Collector, lock};
use crate::config::Problem;
use crate::config::secret::{Secret, scrub};
use crate::logging::RateLimiter;
use crate::metrics::{LabelValue, MetricSet};

/// Why a DSN cannot be used; never contains the DSN or password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DsnError(String);

/// Connection options from a DSN (URI or libpq `key=value` form) and an
/// optional separate password. Errors never contain the DSN or password.
pub fn connect_options(dsn: &Secret, password: Option<&Secret>) -> Result<PgConnectOptions, DsnError> {
    let text = dsn.expose().trim();
    let mut options = if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        PgConnectOptions::from_str(text).map_err(|e| {
            DsnError(format!(
                "the DSN is not a valid PostgreSQL URI ({}); expected postgresql://user@host:port/dbname?sslmode=disable",
                scrub(&e.to_string(), [dsn])
            ))
        })?
    } else {
        from_key_value(text).map_err(|e| {
            DsnError(format!(
                "{e}; expected postgresql://user@host:port/dbname or host=… port=… user=… dbname=…"
            ))
        })?
    };
    if let Some(password) = password {
        options = options.password(password.expose());
    }
    Ok(options.application_name("opsmon-exporter").statement_cache_capacity(32))
}

/// libpq's `key=value` connection string (values may be single-quoted).
fn from_key_value(text: &str) -> Result<PgConnectOptions, String> {
    let mut options = PgConnectOptions::new_without_pgpass();
    let mut chars = text.chars().peekable();
    let mut seen_any = false;
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect::<String>().trim().to_owned();
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(format!("the DSN has an unterminated quote in the value of {key}")),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        seen_any = true;
        options = match key.as_str() {
            "host" | "hostaddr" if value.starts_with('/') => options.socket(&value),
            "host" | "hostaddr" => options.host(&value),
            "port" => options.port(value.parse().map_err(|_| "the DSN's port is not a number".to_owned())?),
            "user" => options.username(&value),
            "password" => options.password(&value),
            "dbname" => options.database(&value),
            "sslmode" => options.ssl_mode(
                PgSslMode::from_str(&value).map_err(|_| format!("the DSN's sslmode {value:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"))?,
            ),
            "sslrootcert" => options.ssl_root_cert(&value),
            "application_name" | "connect_timeout" => options,
            "" => return Err("the DSN has a value without a key".into()),
            other => return Err(format!("the DSN has an unsupported key {other:?}")),
        };
    }
    if !seen_any {
        return Err("the DSN is empty".into());
    }
    Ok(options)
}

/// The `server` label: `host:port`, as postgres_exporter writes it.
pub fn server_label(options: &PgConnectOptions) -> String {
    match options.get_socket() {
        Some(socket) => format!("{}:{}", socket.display(), options.get_port()),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    }
}

/// One watched PostgreSQL server.
pub struct PostgresCollector {
    name: String,
    server: String,
    /// Where each connection goes, with the session's timeouts.
    options: PgConnectOptions,
    /// `options` asking for [`STATS_FETCH_CONSISTENCY`] at startup, for a
    /// server known to have it.
    reading_stats_directly: PgConnectOptions,
    connect_timeout: Duration,
    /// The connections of every target on this server.
    gate: Arc<ServerGate>,
    /// This target's connection kept between scrapes.
    slot: Arc<Slot>,
    secrets: Vec<Secret>,
    tables: Vec<String>,
    statements_limit: Option<u32>,
    statements_missing_logged: AtomicBool,
    failure_log: RateLimiter,
    size_interval: Duration,
    /// When the areas' combined statement last failed (see [`COMBINED_RETRY_AFTER`]).
    combined_failed_at: Mutex<Option<StdInstant>>,
}

impl std::fmt::Debug for PostgresCollector {
    // PgConnectOptions (inside the pool) prints its password in Debug; never show it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresCollector")
            .field("name", &self.name)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// The health check each scrape opens with once the server's gate has learnt
/// its `max_connections`.
const SELECT1_SQL: &str = "SELECT 1::float8";

/// How the exporter's sessions read statistics, from PostgreSQL 15 (the
/// first with the setting). Its default, `cache`, sets up a cache for each
/// transaction and copies every statistics entry read into it; a scrape's one
/// statement is one transaction, so that set-up is paid on every scrape.
/// `none` reads shared memory directly (again for each column a view reads),
/// the setting PostgreSQL's documentation names as the one for monitoring.
/// It took the combined area statement from 0.70 to 0.51 ms of the server's
/// time with a few databases; with a hundred the two cost the same. A session learns the
/// server's version as it starts: the first session on a server sets this
/// with a statement ([`SESSION_SQL`]), later ones ask for it at startup and
/// cost no round trip more. Older servers lack the setting; nothing is set.
pub const STATS_FETCH_CONSISTENCY: (&str, &str) = ("stats_fetch_consistency", "none");

/// The first server version with [`STATS_FETCH_CONSISTENCY`].
pub const STATS_FETCH_CONSISTENCY_SINCE: u32 = 150_000;

/// [`STATS_FETCH_CONSISTENCY`] as a statement, for a new session that did not
/// ask for it at startup.
pub const SESSION_SQL: &str = "SET stats_fetch_consistency = none";

/// After the combined statement failed (a table locked, say), how long the
/// areas run one by one before it is tried again: a lasting fault then costs
/// one statement per area, not that and a failed combined one every scrape.
const COMBINED_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The statements one scrape of a target sends over its connection when all
/// goes well, in order — the health check, then every area in one statement
/// ([`AreaStatements::combined`]), then pg_stat_statements when it is read —
/// with their parameters written in as SQL literals, for a server of
/// `server_version_num` with `tables` configured and pg_stat_statements read
/// with `statements_limit` (or not). Database sizes, measured once per
/// `database_size_interval`, are not among them.
/// `opsmon-bench` runs these through pgbench: the same chain with a C client.
pub fn scrape_statements(
    server_version_num: i32,
    tables: &[String],
    statements_limit: Option<u32>,
) -> Vec<String> {
    let version = u32::try_from(server_version_num).unwrap_or(0);
    let mut statements =
        vec![SELECT1_SQL.to_owned(), AreaStatements::new(version, tables).combined.as_str().to_owned()];
    if let Some(limit) = statements_limit {
        statements.push(STATEMENTS_SQL.replace("$1", &limit.to_string()));
    }
    statements
}

impl PostgresCollector {
    /// The collector for target `index` of the config: reads its secrets and
    /// parses its DSN (once); connects on its first scrape, under the gate
    /// `gates` holds for its server (a new gate needs a tokio runtime).
    /// Errors never contain the DSN or password.
    pub fn new(
        index: usize,
        config: &PostgresTargetConfig,
        gates: &ServerGates,
    ) -> Result<Self, Vec<Problem>> {
        let mut problems = config.check(index);
        let parsed = match config.secrets(index) {
            Ok((dsn, password)) => match connect_options(&dsn, password.as_ref()) {
                Ok(options) => Some((options, dsn, password)),
                Err(e) => {
                    problems.push(config.problem(index, e.to_string()));
                    None
                }
            },
            Err(problem) => {
                problems.push(problem);
                None
            }
        };
        let Some((options, dsn, password)) = parsed.filter(|_| problems.is_empty()) else {
            return Err(problems);
        };
        let statement_timeout = format!("{}ms", config.statement_timeout.0.as_millis());
        let lock_timeout = format!("{}ms", config.lock_timeout.0.as_millis());
        let options = options.options([
            ("statement_timeout", statement_timeout.as_str()),
            ("lock_timeout", lock_timeout.as_str()),
        ]);
        let reading_stats_directly = options.clone().options([STATS_FETCH_CONSISTENCY]);
        let server = server_label(&options);
        let gate = gates.gate(&server);
        let slot = gate.slot();
        let mut secrets = vec![dsn];
        secrets.extend(password);
        Ok(Self {
            name: config.name.value.clone(),
            server,
            options,
            reading_stats_directly,
            connect_timeout: config.connect_timeout.0,
            gate,
            slot,
            secrets,
            tables: config.tables.clone(),
            statements_limit: config.stat_statements.enabled.then_some(config.stat_statements.limit),
            statements_missing_logged: AtomicBool::new(false),
            failure_log: RateLimiter::new(Duration::from_secs(60)),
            size_interval: config.database_size_interval.0,
            combined_failed_at: Mutex::new(None),
        })
    }

    /// The target's name.
    pub fn target_name(&self) -> &str {
        &self.name
    }

    /// The `server` label: `host:port` or the socket path and port.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// A separate lazy pool of at most two connections to this target's
    /// database, for the business queries: sessions carry the target's
    /// statement and lock timeouts, and a slow business query never holds a
    /// connection this target's own scrape waits for. Needs a tokio runtime.
    pub fn business_pool(&self, idle_timeout: Duration) -> PgPool {
        PgPoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .acquire_timeout(self.connect_timeout)
            .idle_timeout(idle_timeout)
            .connect_lazy_with(self.options.clone())
    }

    /// The gate of this target's server (connections held across its targets).
    pub fn gate(&self) -> &ServerGate {
        &self.gate
    }

    fn scrubbed(&self, error: &sqlx::Error) -> String {
        scrub(&error.to_string(), &self.secrets)
    }

    async fn scrape(&self, deadline: Instant) -> Collected {
        let mut out = MetricSet::new();
        let (mut lease, round_trip) = match self.connect(deadline).await {
            Ok(leased) => leased,
            Err(why) => return self.down(out, &why),
        };
        out.single(&m::UP, 1.0);
        out.family(&m::SELECT1).number(vec![self.server.clone().into()], round_trip);

        let mut outcomes = Outcomes::default();
        match areas::server_version(lease.connection()).await {
            Ok(version) => {
                let statements = self.gate.area_statements(version, &self.tables);
                self.read_areas(&statements, lease.connection(), deadline, &mut out, &mut outcomes).await;
            }
            Err(error) => {
                let why = self.scrubbed(&error);
                for area in Area::ALL {
                    outcomes.failed(area.name(), &why, 0.0);
                }
            }
        }
        if outcomes.ok("database") && deadline > Instant::now() {
            let started = StdInstant::now();
            match tokio::time::timeout_at(deadline, self.database_sizes(lease.connection())).await {
                Ok(Ok(sizes)) => {
                    let server: LabelValue = self.server.clone().into();
                    let mut family = out.family(&m::DATABASE_SIZE);
                    for (datname, bytes) in sizes.iter() {
                        family.number(vec![datname.clone().into(), server.clone()], *bytes);
                    }
                    outcomes.add_time("database", started.elapsed().as_secs_f64());
                }
                Ok(Err(error)) => outcomes.failed("database", &self.scrubbed(&error), 0.0),
                Err(_) => outcomes.failed("database", "missed the scrape deadline", 0.0),
            }
        }
        if deadline <= Instant::now() {
            outcomes.unreached("statements");
        } else {
            let started = StdInstant::now();
            let read = async {
                match self.statements_limit {
                    Some(limit) => self.statements(limit, lease.connection(), &mut out).await,
                    None => Ok(()),
                }
            };
            let result = tokio::time::timeout_at(deadline, read).await;
            let seconds = started.elapsed().as_secs_f64();
            match result {
                Ok(Ok(())) => outcomes.succeeded("statements", seconds),
                Ok(Err(error)) => outcomes.failed("statements", &self.scrubbed(&error), seconds),
                Err(_) => outcomes.failed("statements", "missed the scrape deadline", seconds),
            }
        }
        let first_error = outcomes.first_error.take();
        // A connection a query failed on may be mid-statement or broken:
        // close it rather than hand it to the next scrape.
        if first_error.is_none() {
            self.gate.give_back(&self.slot, lease);
        } else {
            lease.close();
        }
        out.single(&m::LAST_SCRAPE_ERROR, if first_error.is_some() { 1.0 } else { 0.0 });
        // The areas, then pg_stat_statements (read on its own, when enabled).
        let reported = || {
            Area::ALL
                .map(Area::name)
                .into_iter()
                .chain(["statements"])
                .filter_map(|query| outcomes.of(query).map(|outcome| (query, outcome)))
        };
        let mut family = out.family(&m::QUERY_SUCCESS);
        for (query, (ok, _)) in reported() {
            family.number(vec![query.into(), self.server.clone().into()], if ok { 1.0 } else { 0.0 });
        }
        let mut family = out.family(&m::QUERY_DURATION);
        for (query, (_, seconds)) in reported() {
            family.number(vec![query.into(), self.server.clone().into()], seconds);
        }
        if let Some(error) = &first_error
            && let Some(suppressed) = self.failure_log.allow("query")
        {
            tracing::warn!(target_name = %self.name, server = %self.server, %error, suppressed_since_last = suppressed, "postgres query failed");
        }
        Collected {
            metrics: out,
            error: first_error.map(|e| CollectError::Query(format!("target {}: {e}", self.name))),
        }
    }

    /// Every area, in one statement when it may (see [`COMBINED_RETRY_AFTER`]);
    /// when that fails, one statement per area, so that a blocked area fails
    /// alone. In one statement each area reports that statement's time.
    async fn read_areas(
        &self,
        statements: &AreaStatements,
        conn: &mut PgConnection,
        deadline: Instant,
        out: &mut MetricSet,
        outcomes: &mut Outcomes,
    ) {
        let server: LabelValue = self.server.clone().into();
        let combined_allowed =
            lock(&self.combined_failed_at).is_none_or(|at| at.elapsed() >= COMBINED_RETRY_AFTER);
        if combined_allowed {
            let started = StdInstant::now();
            let read = sqlx::query(statements.combined.clone()).fetch_one(&mut *conn);
            match tokio::time::timeout_at(deadline, read).await {
                Ok(Ok(row)) => {
                    let seconds = started.elapsed().as_secs_f64();
                    for (area, _, at) in &statements.areas {
                        match area.decode(&row, *at, out, &server) {
                            Ok(()) => outcomes.succeeded(area.name(), seconds),
                            Err(error) => outcomes.failed(area.name(), &self.scrubbed(&error), seconds),
                        }
                    }
                    if self.tables.is_empty() {
                        outcomes.succeeded("tables", seconds);
                    }
                    *lock(&self.combined_failed_at) = None;
                    return;
                }
                // The server refused or cancelled it (a lock or statement
                // timeout, a permission): one area's fault, found by reading
                // them one by one.
                Ok(Err(error @ sqlx::Error::Database(_))) => {
                    *lock(&self.combined_failed_at) = Some(StdInstant::now());
                    tracing::debug!(
                        target_name = %self.name,
                        error = %self.scrubbed(&error),
                        "the areas' combined statement failed; reading them one by one"
                    );
                }
                // The connection broke: no area can be read on it.
                Ok(Err(error)) => {
                    let (why, seconds) = (self.scrubbed(&error), started.elapsed().as_secs_f64());
                    for area in Area::ALL {
                        outcomes.failed(area.name(), &why, seconds);
                    }
                    return;
                }
                Err(_) => {
                    let seconds = started.elapsed().as_secs_f64();
                    for area in Area::ALL {
                        outcomes.failed(area.name(), "missed the scrape deadline", seconds);
                    }
                    return;
                }
            }
        }
        for (area, sql, _) in &statements.areas {
            let started = StdInstant::now();
            let read = async {
                let row = sqlx::query(sql.clone()).fetch_one(&mut *conn).await?;
                area.decode(&row, 0, out, &server)
            };
            let result = tokio::time::timeout_at(deadline, read).await;
            let seconds = started.elapsed().as_secs_f64();
            match result {
                Ok(Ok(())) => outcomes.succeeded(area.name(), seconds),
                Ok(Err(error)) => outcomes.failed(area.name(), &self.scrubbed(&error), seconds),
                Err(_) => {
                    outcomes.failed(area.name(), "missed the scrape deadline", seconds);
                    break;
                }
            }
        }
        if self.tables.is_empty() {
            outcomes.succeeded("tables", 0.0);
        }
        for area in Area::ALL {
            outcomes.unreached(area.name());
        }
    }

    /// A working connection and the round trip that proved it: the kept one
    /// if it still answers, else a fresh one (a restarted server shows
    /// `pg_up 1` on the very next scrape). Connecting waits at most the
    /// connect timeout and `deadline`; the error says why, without secrets.
    async fn connect(&self, deadline: Instant) -> Result<(Lease, f64), String> {
        for _ in 0..2 {
            let connect_deadline = deadline.min(Instant::now() + self.connect_timeout);
            let asks_at_startup =
                self.gate.server_version().is_some_and(|version| version >= STATS_FETCH_CONSISTENCY_SINCE);
            let options = if asks_at_startup { &self.reading_stats_directly } else { &self.options };
            let mut lease = match self.gate.lease(&self.slot, options, connect_deadline).await {
                Ok(lease) => lease,
                Err(LeaseError::Connect(error)) => {
                    // Perhaps no longer the server whose version said it has
                    // the setting (an older one restored in its place): the
                    // next session asks without it and learns again.
                    self.gate.learn_version(0);
                    return Err(self.scrubbed(&error));
                }
                Err(LeaseError::ConnectTimeout) => {
                    return Err(format!(
                        "connect missed the deadline (connect_timeout {:?} or the scrape's)",
                        self.connect_timeout
                    ));
                }
                Err(LeaseError::Busy { server, held }) => {
                    return Err(format!(
                        "all {held} connection(s) the exporter may hold to {server} stayed busy until the deadline; \
                         raise collectors.postgres.connection_share or spread the scrapes"
                    ));
                }
            };
            if lease.fresh
                && let Some(version) = lease.connection().server_version_num()
            {
                self.gate.learn_version(version);
                if !asks_at_startup && version >= STATS_FETCH_CONSISTENCY_SINCE {
                    // The simple protocol: one round trip, nothing prepared.
                    let set = tokio::time::timeout_at(
                        deadline,
                        sqlx::raw_sql(SESSION_SQL).execute(lease.connection()),
                    )
                    .await;
                    if let Err(why) = self.answer(set, "setting up the new session") {
                        lease.close();
                        return Err(why);
                    }
                }
            }
            let started = StdInstant::now();
            // One round trip that also reads what the gate must learn once.
            let probe = if self.gate.has_learnt() {
                sqlx::query_scalar::<_, f64>(SELECT1_SQL)
            } else {
                sqlx::query_scalar::<_, f64>("SELECT current_setting('max_connections')::float8")
            };
            match tokio::time::timeout_at(deadline, probe.fetch_one(lease.connection())).await {
                // A kept connection the server closed meanwhile: try a fresh one.
                Ok(Err(_)) if !lease.fresh => lease.close(),
                answered => match self.answer(answered, "SELECT 1") {
                    Ok(value) => {
                        if !self.gate.has_learnt() {
                            self.gate.learn(value);
                        }
                        return Ok((lease, started.elapsed().as_secs_f64()));
                    }
                    Err(why) => {
                        lease.close();
                        return Err(why);
                    }
                },
            }
        }
        Err("the server closed two connections in a row".into())
    }

    /// The value of a statement run under the scrape deadline, or why there
    /// is none: the server's error (secrets scrubbed), or that `step` missed
    /// the deadline.
    fn answer<T>(
        &self,
        outcome: Result<Result<T, sqlx::Error>, tokio::time::error::Elapsed>,
        step: &str,
    ) -> Result<T, String> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.scrubbed(&error)),
            Err(_) => Err(format!("{step} missed the scrape deadline")),
        }
    }

    fn down(&self, mut out: MetricSet, error: &str) -> Collected {
        out.single(&m::UP, 0.0);
        out.single(&m::LAST_SCRAPE_ERROR, 1.0);
        if let Some(suppressed) = self.failure_log.allow("connect") {
            tracing::warn!(target_name = %self.name, server = %self.server, %error, suppressed_since_last = suppressed, "postgres is unreachable");
        }
        Collected {
            metrics: out,
            error: Some(CollectError::Unreachable(format!("target {}: {error}", self.name))),
        }
    }

    /// Sizes of every database, measured at most once per
    /// `database_size_interval` by all the targets on this server together.
    async fn database_sizes(&self, conn: &mut PgConnection) -> Result<Arc<DatabaseSizes>, sqlx::Error> {
        let role = self.options.get_username();
        if let Some(sizes) = self.gate.sizes(role, self.size_interval) {
            return Ok(sizes);
        }
        let sizes: Arc<DatabaseSizes> = Arc::new(sqlx::query_as(SIZES_SQL).fetch_all(conn).await?);
        self.gate.store_sizes(role, Arc::clone(&sizes));
        Ok(sizes)
    }

    async fn statements(
        &self,
        limit: u32,
        conn: &mut PgConnection,
        out: &mut MetricSet,
    ) -> Result<(), sqlx::Error> {
        let installed: Option<(i32,)> =
            sqlx::query_as("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
                .fetch_optional(&mut *conn)
                .await?;
        if installed.is_none() {
            if !self.statements_missing_logged.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    target_name = %self.name,
                    "stat_statements is enabled but the pg_stat_statements extension is not installed in this database; \
                     add it to shared_preload_libraries and run CREATE EXTENSION pg_stat_statements (skipping until then)"
                );
            }
            return Ok(());
        }
        let rows = sqlx::query(STATEMENTS_SQL).bind(i64::from(limit)).fetch_all(conn).await?;
        let server: LabelValue = self.server.clone().into();
        let labels = |row: &PgRow| -> Result<Vec<LabelValue>, sqlx::Error> {
            Ok(vec![text(row, 1)?, text(row, 0)?, server.clone(), text(row, 2)?])
        };
        for (def, column) in [(&m::STATEMENT_CALLS, 4), (&m::STATEMENT_SECONDS, 5), (&m::STATEMENT_ROWS, 7)] {
            let mut family = out.family(def);
            for row in &rows {
                family.number(labels(row)?, row.try_get(column)?);
            }
        }
        let mut family = out.family(&m::STATEMENT_MEAN);
        for row in &rows {
            family.number(
                vec![text(row, 1)?, text(row, 3)?, text(row, 0)?, server.clone(), text(row, 2)?],
                row.try_get(6)?,
            );
        }
        Ok(())
    }
}

/// `pg_database_size` stats every file of a database: cached per `database_size_interval`.
const SIZES_SQL: &str =
    "SELECT datname::text, pg_database_size(oid)::float8 FROM pg_database ORDER BY datname";

/// Top statements by mean time (PostgreSQL 13+ column names).
const STATEMENTS_SQL: &str = "\
SELECT s.queryid::text, d.datname::text, r.rolname::text,
       left(regexp_replace(s.query, '\\s+', ' ', 'g'), 120),
       s.calls::float8, (s.total_exec_time / 1000)::float8, (s.mean_exec_time / 1000)::float8, s.rows::float8
FROM pg_stat_statements s
JOIN pg_database d ON d.oid = s.dbid
JOIN pg_roles r ON r.oid = s.userid
WHERE s.queryid IS NOT NULL
ORDER BY s.mean_exec_time DESC
LIMIT $1";

/// What each query did this scrape, for `opsmon_pg_query_success` and
/// `_duration_seconds`, and the first error, for the log and the collector's
/// own success.
#[derive(Debug, Default)]
struct Outcomes {
    /// Query, succeeded, seconds.
    seen: Vec<(&'static str, bool, f64)>,
    first_error: Option<String>,
}

impl Outcomes {
    fn of(&self, query: &str) -> Option<(bool, f64)> {
        self.seen.iter().find(|(name, _, _)| *name == query).map(|(_, ok, seconds)| (*ok, *seconds))
    }

    fn ok(&self, query: &str) -> bool {
        self.of(query).is_some_and(|(ok, _)| ok)
    }

    /// Records a success, unless the query already has an outcome.
    fn succeeded(&mut self, query: &'static str, seconds: f64) {
        if self.of(query).is_none() {
            self.seen.push((query, true, seconds));
        }
    }

    /// Records a failure, also over an earlier success (the database area's
    /// sizes are read after its statistics).
    fn failed(&mut self, query: &'static str, why: &str, seconds: f64) {
        self.first_error.get_or_insert_with(|| format!("{query}: {why}"));
        match self.seen.iter_mut().find(|(name, _, _)| *name == query) {
            Some(seen) => {
                seen.1 = false;
                seen.2 += seconds;
            }
            None => self.seen.push((query, false, seconds)),
        }
    }

    /// A query the scrape's deadline came before: failed, if nothing else.
    fn unreached(&mut self, query: &'static str) {
        if self.of(query).is_none() {
            self.failed(query, "not reached before the scrape deadline", 0.0);
        }
    }

    fn add_time(&mut self, query: &str, seconds: f64) {
        if let Some(seen) = self.seen.iter_mut().find(|(name, _, _)| *name == query) {
            seen.2 += seconds;
        }
    }
}

fn text(row: &PgRow, index: usize) -> Result<LabelValue, sqlx::Error> {
    Ok(row.try_get::<Option<String>, _>(index)?.unwrap_or_default().into())
}

impl Collector for PostgresCollector {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn collect(&self, deadline: Instant) -> BoxFuture<'_, Collected> {
        Box::pin(self.scrape(deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gates() -> ServerGates {
        ServerGates::new(DEFAULT_CONNECTION_SHARE, Duration::from_secs(60))
    }

    #[test]
    fn uri_and_key_value_dsns() {
        let uri = connect_options(
            &Secret::new("postgresql://app@db.example:6543/smartalk_db?sslmode=disable"),
            None,
        )
        .expect("valid URI");
        assert_eq!(server_label(&uri), "db.example:6543");
        assert_eq!(uri.get_database(), Some("smartalk_db"));
        assert_eq!(uri.get_username(), "app");

        let kv = connect_options(
            &Secret::new("host=127.0.0.1 port=5433 user=smartalk_user dbname='smartalk db' sslmode=disable"),
            None,
        )
        .expect("valid key=value");
        assert_eq!(server_label(&kv), "127.0.0.1:5433");
        assert_eq!(kv.get_database(), Some("smartalk db"));
        assert!(matches!(kv.get_ssl_mode(), PgSslMode::Disable));
    }

    #[test]
    fn bad_dsns_are_explained_without_the_secret() {
        let secret = Secret::new("postgresql://app:topsecretpw@db:notaport/x");
        let error = connect_options(&secret, None).expect_err("bad port").to_string();
        assert!(error.contains("not a valid PostgreSQL URI"), "{error}");
        assert!(!error.contains("topsecretpw"), "{error}");
        let error = connect_options(&Secret::new("host=h port=x password=topsecretpw"), None)
            .expect_err("bad port")
            .to_string();
        assert!(error.contains("port is not a number") && !error.contains("topsecretpw"), "{error}");
        let error =
            connect_options(&Secret::new("host=h colour=blue"), None).expect_err("bad key").to_string();
        assert!(error.contains("unsupported key \"colour\""), "{error}");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let config = crate::settings::Config::parse(
            std::path::Path::new("t.yml"),
            "collectors:\n  postgres:\n    targets:\n      - name: db\n        dsn_env: OPSMON_TEST_PG_DSN_DEBUG\n",
        )
        .expect("valid YAML");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let _guard = rt.enter();
        // The variable is unset in this test: resolution fails, naming the variable only.
        let problems = PostgresCollector::new(0, &config.collectors.postgres.targets[0], &gates())
            .expect_err("unset variable");
        let error = opsmon_diagnostics::render("t.yml", &problems);
        assert!(error.contains("environment variable OPSMON_TEST_PG_DSN_DEBUG is not set"), "{error}");

        let dir = tempfile::tempdir().expect("tempdir");
        let password_file = dir.path().join("pw");
        std::fs::write(&password_file, "hunter2-pg-password\n").expect("write");
        let config = crate::settings::Config::parse(
            std::path::Path::new("t.yml"),
            &format!(
                "collectors:\n  postgres:\n    targets:\n      - name: db\n        dsn: postgresql://app@127.0.0.1:1/x\n        password_file: {}\n",
                password_file.display()
            ),
        )
        .expect("valid YAML");
        let target_config = &config.collectors.postgres.targets[0];
        let target = PostgresCollector::new(0, target_config, &gates()).expect("target");
        let shown = format!("{target:?} {target_config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[tokio::test]
    async fn sessions_ask_for_direct_statistics_at_startup_only_once_the_server_is_known_to_have_them() {
        let config = crate::settings::Config::parse(
            std::path::Path::new("t.yml"),
            "collectors:\n  postgres:\n    targets:\n      - name: db\n        dsn: postgresql://app@127.0.0.1:1/x\n",
        )
        .expect("valid YAML");
        let target =
            PostgresCollector::new(0, &config.collectors.postgres.targets[0], &gates()).expect("target");
        let plain = target.options.get_options().unwrap_or_default();
        let direct = target.reading_stats_directly.get_options().unwrap_or_default();
        assert!(!plain.contains("stats_fetch_consistency"), "{plain}");
        assert!(direct.contains("-c stats_fetch_consistency=none"), "{direct}");
        assert!(
            direct.contains("-c statement_timeout=5000ms") && direct.contains("lock_timeout"),
            "{direct}"
        );
        assert_eq!(target.gate.server_version(), None, "unknown until a session reports it");
        target.gate.learn_version(150_020);
        assert_eq!(target.gate.server_version(), Some(150_020));
        target.gate.learn_version(0);
        assert_eq!(target.gate.server_version(), None);
    }

    #[test]
    fn a_scrape_sends_the_health_check_then_every_area_in_one_statement() {
        let tables = vec!["analytics_events".to_owned()];
        let statements = scrape_statements(150_020, &tables, None);
        assert_eq!(
            statements.len(),
            2,
            "SELECT 1 and the areas; no pg_stat_statements when it is off: {statements:#?}"
        );
        assert_eq!(statements[0], SELECT1_SQL);
        for view in [
            "pg_stat_activity",
            "pg_stat_database",
            "pg_stat_bgwriter",
            "pg_locks",
            "pg_stat_archiver",
            "pg_replication_slots",
            "pg_stat_user_tables",
        ] {
            assert!(statements[1].contains(view), "{view}: {}", statements[1]);
        }
        assert!(statements.iter().all(|s| !s.contains('$')), "every parameter is a literal: {statements:#?}");
        let newer = scrape_statements(170_002, &[], Some(20));
        assert_eq!(newer.len(), 3, "the areas without tables, then pg_stat_statements: {newer:#?}");
        assert!(newer[1].contains("pg_stat_checkpointer") && !newer[1].contains("pg_stat_user_tables"));
        assert!(newer[2].ends_with("LIMIT 20"), "{}", newer[2]);
    }
}
