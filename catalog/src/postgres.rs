//! PostgreSQL families: postgres_exporter's names, types and label names
//! (Debian's 0.11 adds `server="host:port"` to every query-derived family,
//! so we do too), plus opsmon's round-trip, per-query and statement figures.

use crate::MetricType::{Counter, Gauge, Untyped};
use crate::Unit::{Bytes, None, Seconds};
use crate::{MetricDef, MetricType, Unit};

const fn pg(
    name: &'static str,
    metric_type: MetricType,
    unit: Unit,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricDef {
    MetricDef { name, metric_type, unit, help, labels, collector: "postgres" }
}

const SERVER: &[&str] = &["server"];
const DB: &[&str] = &["datid", "datname", "server"];
const ACTIVITY: &[&str] = &["datname", "server", "state"];
const TABLE: &[&str] = &["datname", "relname", "schemaname", "server"];
const STATEMENT: &[&str] = &["datname", "queryid", "server", "user"];
const QUERY: &[&str] = &["query", "server"];

/// Whether the last connection attempt and `SELECT 1` succeeded.
pub const UP: MetricDef = pg(
    "pg_up",
    Gauge,
    None,
    &[],
    "Whether the last scrape of metrics from PostgreSQL was able to connect to the server (1 for yes, 0 for no).",
);
/// Server version as labels.
pub const STATIC: MetricDef = pg(
    "pg_static",
    Untyped,
    None,
    &["server", "short_version", "version"],
    "Version string as reported by postgres.",
);
/// `max_connections`.
pub const MAX_CONNECTIONS: MetricDef =
    pg("pg_settings_max_connections", Gauge, None, SERVER, "Server Parameter: max_connections.");
/// Backends per database and state.
pub const ACTIVITY_COUNT: MetricDef =
    pg("pg_stat_activity_count", Gauge, None, ACTIVITY, "number of connections in this state");
/// Oldest transaction per database and state.
pub const ACTIVITY_MAX_TX: MetricDef = pg(
    "pg_stat_activity_max_tx_duration",
    Gauge,
    None,
    ACTIVITY,
    "max duration in seconds any active transaction has been running",
);
/// Database size.
pub const DATABASE_SIZE: MetricDef =
    pg("pg_database_size_bytes", Gauge, Bytes, &["datname", "server"], "Disk space used by the database");
/// Backends connected to the database.
pub const NUMBACKENDS: MetricDef = pg(
    "pg_stat_database_numbackends",
    Gauge,
    None,
    DB,
    "Number of backends currently connected to this database.",
);
/// Committed transactions.
pub const XACT_COMMIT: MetricDef = pg(
    "pg_stat_database_xact_commit",
    Counter,
    None,
    DB,
    "Number of transactions in this database that have been committed",
);
/// Rolled-back transactions.
pub const XACT_ROLLBACK: MetricDef = pg(
    "pg_stat_database_xact_rollback",
    Counter,
    None,
    DB,
    "Number of transactions in this database that have been rolled back",
);
/// Blocks read from disk.
pub const BLKS_READ: MetricDef =
    pg("pg_stat_database_blks_read", Counter, None, DB, "Number of disk blocks read in this database");
/// Blocks found in shared buffers.
pub const BLKS_HIT: MetricDef = pg(
    "pg_stat_database_blks_hit",
    Counter,
    None,
    DB,
    "Number of times disk blocks were found already in the buffer cache",
);
/// Deadlocks detected.
pub const DEADLOCKS: MetricDef =
    pg("pg_stat_database_deadlocks", Counter, None, DB, "Number of deadlocks detected in this database");
/// Temporary file bytes.
pub const TEMP_BYTES: MetricDef = pg(
    "pg_stat_database_temp_bytes",
    Counter,
    None,
    DB,
    "Total amount of data written to temporary files by queries in this database.",
);
/// Locks per database and mode.
pub const LOCKS: MetricDef =
    pg("pg_locks_count", Gauge, None, &["datname", "mode", "server"], "Number of locks");
/// WAL files archived.
pub const ARCHIVED: MetricDef = pg(
    "pg_stat_archiver_archived_count",
    Counter,
    None,
    SERVER,
    "Number of WAL files that have been successfully archived",
);
/// Failed archive attempts.
pub const ARCHIVE_FAILED: MetricDef = pg(
    "pg_stat_archiver_failed_count",
    Counter,
    None,
    SERVER,
    "Number of failed attempts for archiving WAL files",
);
/// Seconds since the last archived WAL file (NaN when none).
pub const ARCHIVE_AGE: MetricDef = pg(
    "pg_stat_archiver_last_archive_age",
    Gauge,
    None,
    SERVER,
    "Time in seconds since last WAL segment was successfully archived",
);
/// Whether the server is a standby.
pub const IS_REPLICA: MetricDef =
    pg("pg_replication_is_replica", Gauge, None, SERVER, "Indicates if the server is a replica");
/// Replay lag on a standby (0 on a primary).
pub const REPLICATION_LAG: MetricDef =
    pg("pg_replication_lag_seconds", Gauge, Seconds, SERVER, "Replication lag behind master in seconds");
/// Sequential scans of a configured table.
pub const TABLE_SEQ_SCAN: MetricDef = pg(
    "pg_stat_user_tables_seq_scan",
    Counter,
    None,
    TABLE,
    "Number of sequential scans initiated on this table",
);
/// Index scans of a configured table.
pub const TABLE_IDX_SCAN: MetricDef =
    pg("pg_stat_user_tables_idx_scan", Counter, None, TABLE, "Number of index scans initiated on this table");
/// Live rows of a configured table.
pub const TABLE_LIVE: MetricDef =
    pg("pg_stat_user_tables_n_live_tup", Gauge, None, TABLE, "Estimated number of live rows");
/// Dead rows of a configured table.
pub const TABLE_DEAD: MetricDef =
    pg("pg_stat_user_tables_n_dead_tup", Gauge, None, TABLE, "Estimated number of dead rows");
/// Last autovacuum of a configured table.
pub const TABLE_AUTOVACUUM: MetricDef = pg(
    "pg_stat_user_tables_last_autovacuum",
    Gauge,
    None,
    TABLE,
    "Last time at which this table was vacuumed by the autovacuum daemon (Unix seconds, 0 if never)",
);
/// Last autoanalyze of a configured table.
pub const TABLE_AUTOANALYZE: MetricDef = pg(
    "pg_stat_user_tables_last_autoanalyze",
    Gauge,
    None,
    TABLE,
    "Last time at which this table was analyzed by the autovacuum daemon (Unix seconds, 0 if never)",
);
/// Total size (with indexes and TOAST) of a configured table.
pub const TABLE_SIZE: MetricDef = pg(
    "pg_stat_user_tables_size_bytes",
    Gauge,
    Bytes,
    TABLE,
    "Total disk space used by this table, including indexes and TOAST, in bytes",
);
/// Calls of a top-N statement.
pub const STATEMENT_CALLS: MetricDef = pg(
    "pg_stat_statements_calls_total",
    Counter,
    None,
    STATEMENT,
    "Number of times the statement was executed (top statements by mean time)",
);
/// Execution time of a top-N statement.
pub const STATEMENT_SECONDS: MetricDef = pg(
    "pg_stat_statements_seconds_total",
    Counter,
    Seconds,
    STATEMENT,
    "Total time spent executing the statement, in seconds (top statements by mean time)",
);
/// Rows of a top-N statement.
pub const STATEMENT_ROWS: MetricDef = pg(
    "pg_stat_statements_rows_total",
    Counter,
    None,
    STATEMENT,
    "Total number of rows retrieved or affected by the statement (top statements by mean time)",
);
/// Mean time of a top-N statement, with its (normalised, truncated) text.
pub const STATEMENT_MEAN: MetricDef = pg(
    "opsmon_pg_statement_mean_seconds",
    Gauge,
    Seconds,
    &["datname", "query", "queryid", "server", "user"],
    "Mean execution time of the statement; the N slowest by mean, query text normalised by pg_stat_statements and cut to 120 characters.",
);
/// `SELECT 1` round trip.
pub const SELECT1: MetricDef = pg(
    "opsmon_pg_select1_duration_seconds",
    Gauge,
    Seconds,
    SERVER,
    "Round trip of SELECT 1 over a pooled connection, as the guide's `psql -c 'SELECT 1'` check.",
);
/// Per-query outcome.
pub const QUERY_SUCCESS: MetricDef = pg(
    "opsmon_pg_query_success",
    Gauge,
    None,
    QUERY,
    "1 when this monitoring query succeeded in this scrape, 0 when it failed or timed out.",
);
/// Per-query duration.
pub const QUERY_DURATION: MetricDef = pg(
    "opsmon_pg_query_duration_seconds",
    Gauge,
    Seconds,
    QUERY,
    "Duration of this monitoring query in this scrape.",
);

/// All PostgreSQL families.
pub const METRICS: &[MetricDef] = &[
    UP,
    STATIC,
    MAX_CONNECTIONS,
    ACTIVITY_COUNT,
    ACTIVITY_MAX_TX,
    DATABASE_SIZE,
    NUMBACKENDS,
    XACT_COMMIT,
    XACT_ROLLBACK,
    BLKS_READ,
    BLKS_HIT,
    DEADLOCKS,
    TEMP_BYTES,
    LOCKS,
    ARCHIVED,
    ARCHIVE_FAILED,
    ARCHIVE_AGE,
    IS_REPLICA,
    REPLICATION_LAG,
    TABLE_SEQ_SCAN,
    TABLE_IDX_SCAN,
    TABLE_LIVE,
    TABLE_DEAD,
    TABLE_AUTOVACUUM,
    TABLE_AUTOANALYZE,
    TABLE_SIZE,
    STATEMENT_CALLS,
    STATEMENT_SECONDS,
    STATEMENT_ROWS,
    STATEMENT_MEAN,
    SELECT1,
    QUERY_SUCCESS,
    QUERY_DURATION,
];
