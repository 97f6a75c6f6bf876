//! The PostgreSQL collector: one instance per configured target. Each target
//! keeps at most one connection between scrapes, under its server's
//! [`connections::ServerGate`]: all targets on one `host:port` together hold
//! at most `connection_share` of its `max_connections`, and a connection
//! unused for `idle_timeout` is closed. Each session carries the configured
//! `statement_timeout` and `lock_timeout`; every step also runs under the
//! scrape deadline. A down server shows as `pg_up 0` and recovers by itself.
//!
//! Few, cheap queries: one per area, the same on every scrape, all against
//! statistics views. Each is its own sub-collector (`opsmon_pg_query_success`),
//! so one slow or blocked query fails alone.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant as StdInstant};

use opsmon_catalog::MetricDef;
use opsmon_catalog::postgres as m;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow, PgSslMode};
use sqlx::{PgConnection, Row};
use tokio::time::Instant;

mod config;
pub mod connections;

pub use config::{
    DEFAULT_CONNECTION_SHARE, MAX_CONNECTION_SHARE, PostgresConfig, PostgresTargetConfig,
    STAT_STATEMENTS_MAX, StatStatementsConfig,
};
use connections::{DatabaseSizes, Lease, LeaseError, ServerGate, ServerGates, Slot};

use crate::collectors::collector::{BoxFuture, CollectError, Collected, Collector};
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

/// The areas queried every scrape, in order; the label of `opsmon_pg_query_*`.
const QUERIES: [&str; 10] = [
    "settings",
    "activity",
    "database",
    "bgwriter",
    "locks",
    "archiver",
    "replication",
    "slots",
    "tables",
    "statements",
];

/// The health check each scrape opens with once the server's gate has learnt
/// its `max_connections`.
const SELECT1_SQL: &str = "SELECT 1::float8";

/// The statements one scrape of a target sends over its connection when all
/// goes well, in order — the health check, then each area's one statement
/// (see `PostgresCollector::run`) — with their parameters written in as SQL
/// literals, for a server of `server_version_num` with `tables` configured and
/// pg_stat_statements read with `statements_limit` (or not). Database sizes,
/// measured once per `database_size_interval`, are not among them.
/// `opsmon-bench` runs these through pgbench: the same chain with a C client.
pub fn scrape_statements(
    server_version_num: i32,
    tables: &[String],
    statements_limit: Option<u32>,
) -> Vec<String> {
    let names = SETTINGS.map(|(name, _)| name);
    let mut statements = vec![SELECT1_SQL.to_owned()];
    for area in QUERIES {
        let statement = match area {
            "settings" => SETTINGS_SQL.replace("$1", &text_array_literal(&names)),
            "activity" => ACTIVITY_SQL.to_owned(),
            "database" => DATABASE_SQL.to_owned(),
            "bgwriter" => bgwriter_sql(server_version_num).to_owned(),
            "locks" => LOCKS_SQL.to_owned(),
            "archiver" => ARCHIVER_SQL.to_owned(),
            "replication" => REPLICATION_SQL.to_owned(),
            "slots" => SLOTS_SQL.to_owned(),
            "tables" if !tables.is_empty() => {
                TABLES_SQL.replace("$1", &format!("{}::text[]", text_array_literal(tables)))
            }
            "statements" => match statements_limit {
                Some(limit) => STATEMENTS_SQL.replace("$1", &limit.to_string()),
                None => continue,
            },
            _ => continue,
        };
        statements.push(statement);
    }
    statements
}

/// `items` as a quoted SQL array literal, `'{"a","b"}'`.
fn text_array_literal<S: AsRef<str>>(items: &[S]) -> String {
    let elements: Vec<String> = items
        .iter()
        .map(|item| format!("\"{}\"", item.as_ref().replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("'{{{}}}'", elements.join(",").replace('\'', "''"))
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
        let server = server_label(&options);
        let gate = gates.gate(&server);
        let slot = gate.slot();
        let mut secrets = vec![dsn];
        secrets.extend(password);
        Ok(Self {
            name: config.name.value.clone(),
            server,
            options,
            connect_timeout: config.connect_timeout.0,
            gate,
            slot,
            secrets,
            tables: config.tables.clone(),
            statements_limit: config.stat_statements.enabled.then_some(config.stat_statements.limit),
            statements_missing_logged: AtomicBool::new(false),
            failure_log: RateLimiter::new(Duration::from_secs(60)),
            size_interval: config.database_size_interval.0,
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

        let mut outcomes = Vec::with_capacity(QUERIES.len());
        let mut first_error = None;
        let mut version = None;
        for query in QUERIES {
            let started = StdInstant::now();
            let run = self.run(query, lease.connection(), &mut out, &mut version);
            let result = tokio::time::timeout_at(deadline, run).await;
            let ok = match result {
                Ok(Ok(())) => true,
                Ok(Err(error)) => {
                    first_error.get_or_insert_with(|| format!("{query}: {}", self.scrubbed(&error)));
                    false
                }
                Err(_) => {
                    first_error.get_or_insert_with(|| format!("{query}: missed the scrape deadline"));
                    false
                }
            };
            outcomes.push((query, ok, started.elapsed().as_secs_f64()));
            if !ok && deadline <= Instant::now() {
                break;
            }
        }
        // A connection a query failed on may be mid-statement or broken:
        // close it rather than hand it to the next scrape.
        if first_error.is_none() {
            self.gate.give_back(&self.slot, lease);
        } else {
            lease.close();
        }
        out.single(&m::LAST_SCRAPE_ERROR, if first_error.is_some() { 1.0 } else { 0.0 });
        let mut family = out.family(&m::QUERY_SUCCESS);
        for (query, ok, _) in &outcomes {
            family.number(vec![(*query).into(), self.server.clone().into()], if *ok { 1.0 } else { 0.0 });
        }
        let mut family = out.family(&m::QUERY_DURATION);
        for (query, _, seconds) in &outcomes {
            family.number(vec![(*query).into(), self.server.clone().into()], *seconds);
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

    /// A working connection and the round trip that proved it: the kept one
    /// if it still answers, else a fresh one (a restarted server shows
    /// `pg_up 1` on the very next scrape). Connecting waits at most the
    /// connect timeout and `deadline`; the error says why, without secrets.
    async fn connect(&self, deadline: Instant) -> Result<(Lease, f64), String> {
        for _ in 0..2 {
            let connect_deadline = deadline.min(Instant::now() + self.connect_timeout);
            let mut lease = match self.gate.lease(&self.slot, &self.options, connect_deadline).await {
                Ok(lease) => lease,
                Err(LeaseError::Connect(error)) => return Err(self.scrubbed(&error)),
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
            let started = StdInstant::now();
            // One round trip that also reads what the gate must learn once.
            let probe = if self.gate.has_learnt() {
                sqlx::query_scalar::<_, f64>(SELECT1_SQL)
            } else {
                sqlx::query_scalar::<_, f64>("SELECT current_setting('max_connections')::float8")
            };
            match tokio::time::timeout_at(deadline, probe.fetch_one(lease.connection())).await {
                Ok(Ok(value)) => {
                    if !self.gate.has_learnt() {
                        self.gate.learn(value);
                    }
                    return Ok((lease, started.elapsed().as_secs_f64()));
                }
                // A kept connection the server closed meanwhile: try a fresh one.
                Ok(Err(_)) if !lease.fresh => lease.close(),
                Ok(Err(error)) => {
                    lease.close();
                    return Err(self.scrubbed(&error));
                }
                Err(_) => {
                    lease.close();
                    return Err("SELECT 1 missed the scrape deadline".into());
                }
            }
        }
        Err("the server closed two connections in a row".into())
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

    /// One area's statements; `version` is the `server_version_num` the
    /// settings area read this scrape, which bgwriter needs too.
    async fn run(
        &self,
        query: &str,
        conn: &mut PgConnection,
        out: &mut MetricSet,
        version: &mut Option<i32>,
    ) -> Result<(), sqlx::Error> {
        let server: LabelValue = self.server.clone().into();
        match query {
            "settings" => *version = Some(settings(conn, out, &server).await?),
            "activity" => {
                let rows = sqlx::query(ACTIVITY_SQL).fetch_all(conn).await?;
                let mut count = out.family(&m::ACTIVITY_COUNT);
                for row in &rows {
                    count.number(vec![text(row, 0)?, server.clone(), text(row, 1)?], row.try_get(2)?);
                }
                let mut oldest = out.family(&m::ACTIVITY_MAX_TX);
                for row in &rows {
                    oldest.number(vec![text(row, 0)?, server.clone(), text(row, 1)?], row.try_get(3)?);
                }
            }
            "database" => {
                let rows = sqlx::query(DATABASE_SQL).fetch_all(&mut *conn).await?;
                let sizes = self.database_sizes(conn).await?;
                let mut size = out.family(&m::DATABASE_SIZE);
                for (datname, bytes) in sizes.iter() {
                    size.number(vec![datname.clone().into(), server.clone()], *bytes);
                }
                let columns = [
                    (&m::NUMBACKENDS, 2),
                    (&m::XACT_COMMIT, 3),
                    (&m::XACT_ROLLBACK, 4),
                    (&m::BLKS_READ, 5),
                    (&m::BLKS_HIT, 6),
                    (&m::DEADLOCKS, 7),
                    (&m::TEMP_BYTES, 8),
                    (&m::TUP_RETURNED, 9),
                    (&m::TUP_FETCHED, 10),
                    (&m::TUP_INSERTED, 11),
                    (&m::TUP_UPDATED, 12),
                    (&m::TUP_DELETED, 13),
                    (&m::CONFLICTS, 14),
                ];
                for (def, column) in columns {
                    let mut family = out.family(def);
                    for row in &rows {
                        family
                            .number(vec![text(row, 0)?, text(row, 1)?, server.clone()], row.try_get(column)?);
                    }
                }
            }
            "locks" => {
                let rows = sqlx::query(LOCKS_SQL).fetch_all(conn).await?;
                let mut family = out.family(&m::LOCKS);
                for row in &rows {
                    family.number(vec![text(row, 0)?, text(row, 1)?, server.clone()], row.try_get(2)?);
                }
            }
            "archiver" => {
                let row = sqlx::query(ARCHIVER_SQL).fetch_one(conn).await?;
                out.family(&m::ARCHIVED).number(vec![server.clone()], row.try_get(0)?);
                out.family(&m::ARCHIVE_FAILED).number(vec![server.clone()], row.try_get(1)?);
                out.family(&m::ARCHIVE_AGE).number(vec![server], row.try_get(2)?);
            }
            "replication" => {
                let row = sqlx::query(REPLICATION_SQL).fetch_one(conn).await?;
                let replica: bool = row.try_get(0)?;
                out.family(&m::IS_REPLICA).number(vec![server.clone()], if replica { 1.0 } else { 0.0 });
                let lag: f64 = row.try_get(1)?;
                out.family(&m::REPLICATION_LAG).number(vec![server.clone()], lag);
                out.family(&m::REPLICATION_LAG_LEGACY).number(vec![server], lag);
            }
            "bgwriter" => bgwriter(conn, out, &server, *version).await?,
            "slots" => {
                let rows = sqlx::query(SLOTS_SQL).fetch_all(conn).await?;
                for (def, column) in [(&m::SLOT_ACTIVE, 2), (&m::SLOT_WAL_LSN_DIFF, 3)] {
                    let mut family = out.family(def);
                    for row in &rows {
                        family
                            .number(vec![text(row, 1)?, server.clone(), text(row, 0)?], row.try_get(column)?);
                    }
                }
            }
            "tables" if !self.tables.is_empty() => {
                let rows = sqlx::query(TABLES_SQL).bind(&self.tables).fetch_all(conn).await?;
                let columns = [
                    (&m::TABLE_SEQ_SCAN, 3),
                    (&m::TABLE_IDX_SCAN, 4),
                    (&m::TABLE_LIVE, 5),
                    (&m::TABLE_DEAD, 6),
                    (&m::TABLE_AUTOVACUUM, 7),
                    (&m::TABLE_AUTOANALYZE, 8),
                    (&m::TABLE_SIZE, 9),
                ];
                for (def, column) in columns {
                    let mut family = out.family(def);
                    for row in &rows {
                        family.number(
                            vec![text(row, 0)?, text(row, 2)?, text(row, 1)?, server.clone()],
                            row.try_get(column)?,
                        );
                    }
                }
            }
            "statements" => {
                if let Some(limit) = self.statements_limit {
                    self.statements(limit, conn, out).await?;
                }
            }
            _ => {}
        }
        Ok(())
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

/// The server parameters reported, as postgres_exporter names them. A
/// parameter this server version does not have is left out.
const SETTINGS: [(&str, &MetricDef); 21] = [
    ("superuser_reserved_connections", &m::SETTING_SUPERUSER_RESERVED),
    ("max_locks_per_transaction", &m::SETTING_MAX_LOCKS_PER_TRANSACTION),
    ("autovacuum_vacuum_scale_factor", &m::SETTING_AUTOVACUUM_VACUUM_SCALE_FACTOR),
    ("autovacuum_vacuum_threshold", &m::SETTING_AUTOVACUUM_VACUUM_THRESHOLD),
    ("autovacuum_analyze_scale_factor", &m::SETTING_AUTOVACUUM_ANALYZE_SCALE_FACTOR),
    ("autovacuum_analyze_threshold", &m::SETTING_AUTOVACUUM_ANALYZE_THRESHOLD),
    ("autovacuum_max_workers", &m::SETTING_AUTOVACUUM_MAX_WORKERS),
    ("max_worker_processes", &m::SETTING_MAX_WORKER_PROCESSES),
    ("max_parallel_workers", &m::SETTING_MAX_PARALLEL_WORKERS),
    ("max_wal_senders", &m::SETTING_MAX_WAL_SENDERS),
    ("max_replication_slots", &m::SETTING_MAX_REPLICATION_SLOTS),
    ("random_page_cost", &m::SETTING_RANDOM_PAGE_COST),
    ("seq_page_cost", &m::SETTING_SEQ_PAGE_COST),
    ("shared_buffers", &m::SETTING_SHARED_BUFFERS),
    ("effective_cache_size", &m::SETTING_EFFECTIVE_CACHE_SIZE),
    ("work_mem", &m::SETTING_WORK_MEM),
    ("maintenance_work_mem", &m::SETTING_MAINTENANCE_WORK_MEM),
    ("max_wal_size", &m::SETTING_MAX_WAL_SIZE),
    ("min_wal_size", &m::SETTING_MIN_WAL_SIZE),
    ("checkpoint_timeout", &m::SETTING_CHECKPOINT_TIMEOUT),
    ("autovacuum", &m::SETTING_AUTOVACUUM),
];

/// The settings area in one statement: the server's version (long and as a
/// number, which bgwriter needs too), `max_connections`, and `current_setting`
/// of each wanted parameter in the order asked, NULL for one this version
/// lacks. Far cheaper than reading the `pg_settings` view, which builds every
/// column of all ~350 parameters on each call.
const SETTINGS_SQL: &str = "\
SELECT version(), current_setting('server_version_num')::int, current_setting('max_connections')::float8,
       array_agg(current_setting(u.name, true) ORDER BY u.position)
FROM unnest($1::text[]) WITH ORDINALITY AS u(name, position)";

/// Adds the settings area's families; returns the server's `server_version_num`.
async fn settings(
    conn: &mut PgConnection,
    out: &mut MetricSet,
    server: &LabelValue,
) -> Result<i32, sqlx::Error> {
    let names = SETTINGS.map(|(name, _)| name);
    let row = sqlx::query(SETTINGS_SQL).bind(&names[..]).fetch_one(conn).await?;
    let long_version: String = row.try_get(0)?;
    let number: i32 = row.try_get(1)?;
    out.family(&m::MAX_CONNECTIONS).number(vec![server.clone()], row.try_get(2)?);
    out.family(&m::STATIC)
        .number(vec![server.clone(), short_version(number).into(), long_version.into()], 1.0);
    let shown: Vec<Option<String>> = row.try_get(3)?;
    for ((_, def), shown) in SETTINGS.iter().zip(&shown) {
        if let Some(value) = shown.as_deref().and_then(setting_value) {
            out.family(def).number(vec![server.clone()], value);
        }
    }
    Ok(number)
}

/// A parameter as `current_setting` shows it (`128MB`, `5min`, `0.2`, `on`)
/// in base units, as postgres_exporter reports it: time in seconds, sizes in
/// bytes (1 kB = 1024 B), `on`/`off` as 1/0. `None` for anything else.
pub fn setting_value(shown: &str) -> Option<f64> {
    let shown = shown.trim();
    match shown {
        "on" => return Some(1.0),
        "off" => return Some(0.0),
        _ => {}
    }
    let bytes = shown.as_bytes();
    // The number ends where the unit starts; an `e` followed by a digit or
    // sign is an exponent (`1e-05`), not a unit.
    let mut end = 0;
    while end < bytes.len() {
        let c = bytes[end];
        let exponent = (c == b'e' || c == b'E')
            && bytes.get(end + 1).is_some_and(|n| n.is_ascii_digit() || *n == b'-' || *n == b'+');
        if c.is_ascii_digit() || c == b'.' || c == b'-' || c == b'+' || exponent {
            end += 1;
        } else {
            break;
        }
    }
    let value: f64 = shown[..end].parse().ok().filter(|v: &f64| v.is_finite())?;
    let factor = match shown[end..].trim() {
        "" | "B" | "s" => 1.0,
        "us" => 1e-6,
        "ms" => 1e-3,
        "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "kB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        "TB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(value * factor)
}

/// pg_stat_bgwriter; from PostgreSQL 17 the checkpoint columns moved to
/// pg_stat_checkpointer and the backend-write ones to pg_stat_io, so those
/// two families are left out there. The server's version comes from the
/// settings area of the same scrape, or is asked for when that failed.
async fn bgwriter(
    conn: &mut PgConnection,
    out: &mut MetricSet,
    server: &LabelValue,
    version: Option<i32>,
) -> Result<(), sqlx::Error> {
    let version: i32 = match version {
        Some(version) => version,
        None => {
            sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
                .fetch_one(&mut *conn)
                .await?
        }
    };
    let row = sqlx::query(bgwriter_sql(version)).fetch_one(conn).await?;
    let columns = [
        &m::CHECKPOINTS_TIMED,
        &m::CHECKPOINTS_REQ,
        &m::CHECKPOINT_WRITE_TIME,
        &m::CHECKPOINT_SYNC_TIME,
        &m::BUFFERS_CHECKPOINT,
        &m::BUFFERS_CLEAN,
        &m::MAXWRITTEN_CLEAN,
        &m::BUFFERS_BACKEND,
        &m::BUFFERS_BACKEND_FSYNC,
        &m::BUFFERS_ALLOC,
        &m::BGWRITER_STATS_RESET,
    ];
    for (column, def) in columns.into_iter().enumerate() {
        if let Some(value) = row.try_get::<Option<f64>, _>(column)? {
            out.family(def).number(vec![server.clone()], value);
        }
    }
    Ok(())
}

/// The statement for a server's `server_version_num`: pg_stat_checkpointer
/// exists from PostgreSQL 17, and pg_stat_bgwriter lost its checkpoint and
/// backend columns there; naming a missing view or column would fail the query.
fn bgwriter_sql(server_version_num: i32) -> &'static str {
    if server_version_num >= 170_000 { CHECKPOINTER_SQL } else { BGWRITER_SQL }
}

const BGWRITER_SQL: &str = "\
SELECT checkpoints_timed::float8, checkpoints_req::float8, checkpoint_write_time::float8,
       checkpoint_sync_time::float8, buffers_checkpoint::float8, buffers_clean::float8,
       maxwritten_clean::float8, buffers_backend::float8, buffers_backend_fsync::float8,
       buffers_alloc::float8, COALESCE(extract(epoch FROM stats_reset), 0)::float8
FROM pg_stat_bgwriter";

const CHECKPOINTER_SQL: &str = "\
SELECT c.num_timed::float8, c.num_requested::float8, c.write_time::float8, c.sync_time::float8,
       c.buffers_written::float8, b.buffers_clean::float8, b.maxwritten_clean::float8,
       NULL::float8, NULL::float8, b.buffers_alloc::float8,
       COALESCE(extract(epoch FROM b.stats_reset), 0)::float8
FROM pg_stat_bgwriter b, pg_stat_checkpointer c";

/// Every slot; the WAL it retains is NaN until it has reserved any, as
/// postgres_exporter reports it.
const SLOTS_SQL: &str = "\
SELECT slot_name::text, COALESCE(database::text, ''), CASE WHEN active THEN 1 ELSE 0 END::float8,
       COALESCE(pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()
                                     ELSE pg_current_wal_lsn() END, restart_lsn)::float8, 'NaN'::float8)
FROM pg_replication_slots
ORDER BY 1";

const ARCHIVER_SQL: &str = "\
SELECT archived_count::float8, failed_count::float8,
       COALESCE(extract(epoch FROM now() - last_archived_time)::float8, 'NaN'::float8)
FROM pg_stat_archiver";

/// Replay lag is 0 on a primary, as postgres_exporter reports it.
const REPLICATION_SQL: &str = "\
SELECT pg_is_in_recovery(),
       CASE WHEN NOT pg_is_in_recovery() THEN 0
            ELSE GREATEST(0, COALESCE(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0))::float8 END";

fn text(row: &PgRow, index: usize) -> Result<LabelValue, sqlx::Error> {
    Ok(row.try_get::<Option<String>, _>(index)?.unwrap_or_default().into())
}

/// postgres_exporter's `short_version`: `150020` → `15.20.0`, `90624` → `9.6.24`.
pub fn short_version(server_version_num: i32) -> String {
    if server_version_num >= 100_000 {
        format!("{}.{}.0", server_version_num / 10_000, server_version_num % 10_000)
    } else {
        format!(
            "{}.{}.{}",
            server_version_num / 10_000,
            server_version_num / 100 % 100,
            server_version_num % 100
        )
    }
}

/// Every database × state, so series do not come and go with activity.
const ACTIVITY_SQL: &str = "\
SELECT d.datname, s.state, COALESCE(a.count, 0)::float8, COALESCE(a.max_tx, 0)::float8
FROM pg_database d
CROSS JOIN (VALUES ('active'), ('idle'), ('idle in transaction'), ('idle in transaction (aborted)'),
                   ('fastpath function call'), ('disabled')) AS s(state)
LEFT JOIN (SELECT datname, state, count(*) AS count,
                  max(GREATEST(0, extract(epoch FROM now() - xact_start))) AS max_tx
           FROM pg_stat_activity WHERE datname IS NOT NULL GROUP BY datname, state) a
       ON a.datname = d.datname AND a.state = s.state
ORDER BY 1, 2";

const DATABASE_SQL: &str = "\
SELECT s.datid::text, s.datname, s.numbackends::float8, s.xact_commit::float8, s.xact_rollback::float8,
       s.blks_read::float8, s.blks_hit::float8, s.deadlocks::float8, s.temp_bytes::float8,
       s.tup_returned::float8, s.tup_fetched::float8, s.tup_inserted::float8, s.tup_updated::float8,
       s.tup_deleted::float8, s.conflicts::float8
FROM pg_stat_database s WHERE s.datname IS NOT NULL
ORDER BY s.datname";

/// `pg_database_size` stats every file of a database: cached per `database_size_interval`.
const SIZES_SQL: &str =
    "SELECT datname::text, pg_database_size(oid)::float8 FROM pg_database ORDER BY datname";

/// Every database × lock mode, as postgres_exporter reports them.
const LOCKS_SQL: &str = "\
SELECT d.datname, m.mode, COALESCE(l.count, 0)::float8
FROM pg_database d
CROSS JOIN (VALUES ('accesssharelock'), ('rowsharelock'), ('rowexclusivelock'), ('shareupdateexclusivelock'),
                   ('sharelock'), ('sharerowexclusivelock'), ('exclusivelock'), ('accessexclusivelock'),
                   ('sireadlock')) AS m(mode)
LEFT JOIN (SELECT database, lower(mode) AS mode, count(*) AS count FROM pg_locks
           WHERE database IS NOT NULL GROUP BY database, lower(mode)) l
       ON l.database = d.oid AND l.mode = m.mode
ORDER BY 1, 2";

/// Configured tables, by `name` (any schema) or `schema.name`.
const TABLES_SQL: &str = "\
SELECT current_database(), t.schemaname::text, t.relname::text, t.seq_scan::float8, COALESCE(t.idx_scan, 0)::float8,
       t.n_live_tup::float8, t.n_dead_tup::float8,
       COALESCE(extract(epoch FROM t.last_autovacuum), 0)::float8,
       COALESCE(extract(epoch FROM t.last_autoanalyze), 0)::float8,
       pg_total_relation_size(t.relid)::float8
FROM pg_stat_user_tables t
WHERE t.relname = ANY($1) OR (t.schemaname || '.' || t.relname) = ANY($1)
ORDER BY 2, 3";

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

    /// Conversions checked against postgres_exporter 0.11 on PostgreSQL 15
    /// (`pg_settings_shared_buffers_bytes 1.34217728e+08` for `128MB`, …).
    #[test]
    fn settings_in_base_units_like_postgres_exporter() {
        assert_eq!(setting_value("128MB"), Some(134_217_728.0));
        assert_eq!(setting_value("4GB"), Some(4_294_967_296.0));
        assert_eq!(setting_value("80MB"), Some(83_886_080.0));
        assert_eq!(setting_value("4096kB"), Some(4_194_304.0));
        assert_eq!(setting_value("5min"), Some(300.0));
        assert_eq!(setting_value("200ms"), Some(0.2));
        assert_eq!(setting_value("1d"), Some(86_400.0));
        assert_eq!(setting_value("0.2"), Some(0.2));
        assert_eq!(setting_value("1e-05"), Some(1e-5));
        assert_eq!(setting_value("50"), Some(50.0));
        assert_eq!(setting_value("-1"), Some(-1.0), "-1 means unlimited or disabled");
        assert_eq!(setting_value("on"), Some(1.0));
        assert_eq!(setting_value("off"), Some(0.0));
        assert_eq!(setting_value("replica"), None);
        assert_eq!(setting_value("12parsecs"), None, "an unknown unit is left out");
        assert_eq!(setting_value(""), None);
    }

    #[test]
    fn checkpointer_view_from_postgresql_17() {
        assert!(bgwriter_sql(150_020).contains("FROM pg_stat_bgwriter"));
        assert!(!bgwriter_sql(160_004).contains("pg_stat_checkpointer"), "absent before 17");
        let v17 = bgwriter_sql(170_000);
        assert!(v17.contains("pg_stat_checkpointer") && !v17.contains("buffers_backend"), "{v17}");
        // Same column count either way: the families map by position.
        let columns = |sql: &str| sql.matches("::float8").count();
        assert_eq!(columns(bgwriter_sql(150_020)), 11);
        assert_eq!(columns(v17), 11);
    }

    #[test]
    fn a_scrape_sends_the_health_check_then_one_statement_per_area() {
        let tables = vec!["analytics_events".to_owned(), "o'neil.\"odd\"".to_owned()];
        let statements = scrape_statements(150_020, &tables, None);
        // SELECT 1 and settings … tables; no pg_stat_statements when it is off.
        assert_eq!(statements.len(), 10, "{statements:#?}");
        assert_eq!(statements[0], SELECT1_SQL);
        assert!(statements[1].contains(r#"unnest('{"superuser_reserved_connections","#), "{}", statements[1]);
        assert!(statements.iter().all(|s| !s.contains('$')), "every parameter is a literal: {statements:#?}");
        assert!(
            statements
                .iter()
                .any(|s| s.contains("FROM pg_stat_bgwriter\"") || s.ends_with("FROM pg_stat_bgwriter"))
        );
        assert!(
            statements[9].contains(r#"ANY('{"analytics_events","o''neil.\"odd\""}'::text[])"#),
            "{}",
            statements[9]
        );
        let newer = scrape_statements(170_002, &[], Some(20));
        assert_eq!(newer.len(), 10, "no tables area, a statements one: {newer:#?}");
        assert!(newer.iter().any(|s| s.contains("pg_stat_checkpointer")));
        assert!(newer[9].ends_with("LIMIT 20"), "{}", newer[9]);
    }

    #[test]
    fn short_versions_like_postgres_exporter() {
        assert_eq!(short_version(150_020), "15.20.0");
        assert_eq!(short_version(120_003), "12.3.0");
        assert_eq!(short_version(90_624), "9.6.24");
    }
}
