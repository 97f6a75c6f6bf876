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
const SLOT: &[&str] = &["database", "server", "slot_name"];

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
/// pg_stat_database.tup_returned.
pub const TUP_RETURNED: MetricDef = pg(
    "pg_stat_database_tup_returned",
    Counter,
    None,
    DB,
    "Number of rows returned by queries in this database",
);
/// pg_stat_database.tup_fetched.
pub const TUP_FETCHED: MetricDef = pg(
    "pg_stat_database_tup_fetched",
    Counter,
    None,
    DB,
    "Number of rows fetched by queries in this database",
);
/// pg_stat_database.tup_inserted.
pub const TUP_INSERTED: MetricDef = pg(
    "pg_stat_database_tup_inserted",
    Counter,
    None,
    DB,
    "Number of rows inserted by queries in this database",
);
/// pg_stat_database.tup_updated.
pub const TUP_UPDATED: MetricDef = pg(
    "pg_stat_database_tup_updated",
    Counter,
    None,
    DB,
    "Number of rows updated by queries in this database",
);
/// pg_stat_database.tup_deleted.
pub const TUP_DELETED: MetricDef = pg(
    "pg_stat_database_tup_deleted",
    Counter,
    None,
    DB,
    "Number of rows deleted by queries in this database",
);
/// pg_stat_database.conflicts.
pub const CONFLICTS: MetricDef = pg(
    "pg_stat_database_conflicts",
    Counter,
    None,
    DB,
    "Number of queries canceled due to conflicts with recovery in this database. (Conflicts occur only on standby servers; see pg_stat_database_conflicts for details.)",
);
/// pg_stat_bgwriter (pg_stat_checkpointer from PostgreSQL 17) checkpoints_timed.
pub const CHECKPOINTS_TIMED: MetricDef = pg(
    "pg_stat_bgwriter_checkpoints_timed_total",
    Counter,
    None,
    SERVER,
    "Number of scheduled checkpoints that have been performed",
);
/// pg_stat_bgwriter (pg_stat_checkpointer from PostgreSQL 17) checkpoints_req.
pub const CHECKPOINTS_REQ: MetricDef = pg(
    "pg_stat_bgwriter_checkpoints_req_total",
    Counter,
    None,
    SERVER,
    "Number of requested checkpoints that have been performed",
);
/// pg_stat_bgwriter (pg_stat_checkpointer from PostgreSQL 17) checkpoint_write_time.
pub const CHECKPOINT_WRITE_TIME: MetricDef = pg(
    "pg_stat_bgwriter_checkpoint_write_time_total",
    Counter,
    None,
    SERVER,
    "Total amount of time that has been spent in the portion of checkpoint processing where files are written to disk, in milliseconds",
);
/// pg_stat_bgwriter (pg_stat_checkpointer from PostgreSQL 17) checkpoint_sync_time.
pub const CHECKPOINT_SYNC_TIME: MetricDef = pg(
    "pg_stat_bgwriter_checkpoint_sync_time_total",
    Counter,
    None,
    SERVER,
    "Total amount of time that has been spent in the portion of checkpoint processing where files are synchronized to disk, in milliseconds",
);
/// pg_stat_bgwriter (pg_stat_checkpointer from PostgreSQL 17) buffers_checkpoint.
pub const BUFFERS_CHECKPOINT: MetricDef = pg(
    "pg_stat_bgwriter_buffers_checkpoint_total",
    Counter,
    None,
    SERVER,
    "Number of buffers written during checkpoints",
);
/// pg_stat_bgwriter (pg_stat_checkpointer from PostgreSQL 17) buffers_clean.
pub const BUFFERS_CLEAN: MetricDef = pg(
    "pg_stat_bgwriter_buffers_clean_total",
    Counter,
    None,
    SERVER,
    "Number of buffers written by the background writer",
);
/// pg_stat_bgwriter (pg_stat_checkpointer from PostgreSQL 17) maxwritten_clean.
pub const MAXWRITTEN_CLEAN: MetricDef = pg(
    "pg_stat_bgwriter_maxwritten_clean_total",
    Counter,
    None,
    SERVER,
    "Number of times the background writer stopped a cleaning scan because it had written too many buffers",
);
/// pg_stat_bgwriter (pg_stat_checkpointer from PostgreSQL 17) buffers_backend.
pub const BUFFERS_BACKEND: MetricDef = pg(
    "pg_stat_bgwriter_buffers_backend_total",
    Counter,
    None,
    SERVER,
    "Number of buffers written directly by a backend",
);
/// pg_stat_bgwriter (pg_stat_checkpointer from PostgreSQL 17) buffers_backend_fsync.
pub const BUFFERS_BACKEND_FSYNC: MetricDef = pg(
    "pg_stat_bgwriter_buffers_backend_fsync_total",
    Counter,
    None,
    SERVER,
    "Number of times a backend had to execute its own fsync call (normally the background writer handles those even when the backend does its own write)",
);
/// pg_stat_bgwriter (pg_stat_checkpointer from PostgreSQL 17) buffers_alloc.
pub const BUFFERS_ALLOC: MetricDef =
    pg("pg_stat_bgwriter_buffers_alloc_total", Counter, None, SERVER, "Number of buffers allocated");
/// pg_stat_bgwriter (pg_stat_checkpointer from PostgreSQL 17) stats_reset.
pub const BGWRITER_STATS_RESET: MetricDef = pg(
    "pg_stat_bgwriter_stats_reset_total",
    Counter,
    None,
    SERVER,
    "Time at which these statistics were last reset",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_SUPERUSER_RESERVED: MetricDef = pg(
    "pg_settings_superuser_reserved_connections",
    Gauge,
    None,
    SERVER,
    "Sets the number of connection slots reserved for superusers.",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_MAX_LOCKS_PER_TRANSACTION: MetricDef = pg(
    "pg_settings_max_locks_per_transaction",
    Gauge,
    None,
    SERVER,
    "Sets the maximum number of locks per transaction.",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_AUTOVACUUM_VACUUM_SCALE_FACTOR: MetricDef = pg(
    "pg_settings_autovacuum_vacuum_scale_factor",
    Gauge,
    None,
    SERVER,
    "Number of tuple updates or deletes prior to vacuum as a fraction of reltuples.",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_AUTOVACUUM_VACUUM_THRESHOLD: MetricDef = pg(
    "pg_settings_autovacuum_vacuum_threshold",
    Gauge,
    None,
    SERVER,
    "Minimum number of tuple updates or deletes prior to vacuum.",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_AUTOVACUUM_ANALYZE_SCALE_FACTOR: MetricDef = pg(
    "pg_settings_autovacuum_analyze_scale_factor",
    Gauge,
    None,
    SERVER,
    "Number of tuple inserts, updates, or deletes prior to analyze as a fraction of reltuples.",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_AUTOVACUUM_ANALYZE_THRESHOLD: MetricDef = pg(
    "pg_settings_autovacuum_analyze_threshold",
    Gauge,
    None,
    SERVER,
    "Minimum number of tuple inserts, updates, or deletes prior to analyze.",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_AUTOVACUUM_MAX_WORKERS: MetricDef = pg(
    "pg_settings_autovacuum_max_workers",
    Gauge,
    None,
    SERVER,
    "Sets the maximum number of simultaneously running autovacuum worker processes.",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_MAX_WORKER_PROCESSES: MetricDef = pg(
    "pg_settings_max_worker_processes",
    Gauge,
    None,
    SERVER,
    "Maximum number of concurrent worker processes.",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_MAX_PARALLEL_WORKERS: MetricDef = pg(
    "pg_settings_max_parallel_workers",
    Gauge,
    None,
    SERVER,
    "Sets the maximum number of parallel workers that can be active at one time.",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_MAX_WAL_SENDERS: MetricDef = pg(
    "pg_settings_max_wal_senders",
    Gauge,
    None,
    SERVER,
    "Sets the maximum number of simultaneously running WAL sender processes.",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_MAX_REPLICATION_SLOTS: MetricDef = pg(
    "pg_settings_max_replication_slots",
    Gauge,
    None,
    SERVER,
    "Sets the maximum number of simultaneously defined replication slots.",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_RANDOM_PAGE_COST: MetricDef = pg(
    "pg_settings_random_page_cost",
    Gauge,
    None,
    SERVER,
    "Sets the planner's estimate of the cost of a nonsequentially fetched disk page.",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_SEQ_PAGE_COST: MetricDef = pg(
    "pg_settings_seq_page_cost",
    Gauge,
    None,
    SERVER,
    "Sets the planner's estimate of the cost of a sequentially fetched disk page.",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_SHARED_BUFFERS: MetricDef = pg(
    "pg_settings_shared_buffers_bytes",
    Gauge,
    Bytes,
    SERVER,
    "Sets the number of shared memory buffers used by the server. [Units converted to bytes.]",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_EFFECTIVE_CACHE_SIZE: MetricDef = pg(
    "pg_settings_effective_cache_size_bytes",
    Gauge,
    Bytes,
    SERVER,
    "Sets the planner's assumption about the total size of the data caches. [Units converted to bytes.]",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_WORK_MEM: MetricDef = pg(
    "pg_settings_work_mem_bytes",
    Gauge,
    Bytes,
    SERVER,
    "Sets the maximum memory to be used for query workspaces. [Units converted to bytes.]",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_MAINTENANCE_WORK_MEM: MetricDef = pg(
    "pg_settings_maintenance_work_mem_bytes",
    Gauge,
    Bytes,
    SERVER,
    "Sets the maximum memory to be used for maintenance operations. [Units converted to bytes.]",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_MAX_WAL_SIZE: MetricDef = pg(
    "pg_settings_max_wal_size_bytes",
    Gauge,
    Bytes,
    SERVER,
    "Sets the WAL size that triggers a checkpoint. [Units converted to bytes.]",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_MIN_WAL_SIZE: MetricDef = pg(
    "pg_settings_min_wal_size_bytes",
    Gauge,
    Bytes,
    SERVER,
    "Sets the minimum size to shrink the WAL to. [Units converted to bytes.]",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_CHECKPOINT_TIMEOUT: MetricDef = pg(
    "pg_settings_checkpoint_timeout_seconds",
    Gauge,
    Seconds,
    SERVER,
    "Sets the maximum time between automatic WAL checkpoints. [Units converted to seconds.]",
);
/// Server parameter, as postgres_exporter's pg_settings collector names it.
pub const SETTING_AUTOVACUUM: MetricDef =
    pg("pg_settings_autovacuum", Gauge, None, SERVER, "Starts the autovacuum subprocess.");
/// Whether a replication slot is in use.
pub const SLOT_ACTIVE: MetricDef =
    pg("pg_replication_slots_active", Gauge, None, SLOT, "Flag indicating if the slot is active");
/// WAL a slot retains, in bytes (NaN while the slot has never reserved WAL).
pub const SLOT_WAL_LSN_DIFF: MetricDef =
    pg("pg_replication_slots_pg_wal_lsn_diff", Gauge, None, SLOT, "Replication lag in bytes");
/// Replay lag as postgres_exporter's bundled `pg_replication` query names it
/// (the postgres_mixin's alert reads this name; `pg_replication_lag_seconds` is upstream's).
pub const REPLICATION_LAG_LEGACY: MetricDef =
    pg("pg_replication_lag", Gauge, None, SERVER, "Replication lag behind master in seconds");
/// Whether the last scrape of this target met an error.
pub const LAST_SCRAPE_ERROR: MetricDef = pg(
    "pg_exporter_last_scrape_error",
    Gauge,
    None,
    &[],
    "Whether the last scrape of metrics from PostgreSQL resulted in an error (1 for error, 0 for success).",
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
    "Duration of this monitoring query in this scrape; the areas read together in one statement each show that statement's time.",
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
    TUP_RETURNED,
    TUP_FETCHED,
    TUP_INSERTED,
    TUP_UPDATED,
    TUP_DELETED,
    CONFLICTS,
    CHECKPOINTS_TIMED,
    CHECKPOINTS_REQ,
    CHECKPOINT_WRITE_TIME,
    CHECKPOINT_SYNC_TIME,
    BUFFERS_CHECKPOINT,
    BUFFERS_CLEAN,
    MAXWRITTEN_CLEAN,
    BUFFERS_BACKEND,
    BUFFERS_BACKEND_FSYNC,
    BUFFERS_ALLOC,
    BGWRITER_STATS_RESET,
    SETTING_SUPERUSER_RESERVED,
    SETTING_MAX_LOCKS_PER_TRANSACTION,
    SETTING_AUTOVACUUM_VACUUM_SCALE_FACTOR,
    SETTING_AUTOVACUUM_VACUUM_THRESHOLD,
    SETTING_AUTOVACUUM_ANALYZE_SCALE_FACTOR,
    SETTING_AUTOVACUUM_ANALYZE_THRESHOLD,
    SETTING_AUTOVACUUM_MAX_WORKERS,
    SETTING_MAX_WORKER_PROCESSES,
    SETTING_MAX_PARALLEL_WORKERS,
    SETTING_MAX_WAL_SENDERS,
    SETTING_MAX_REPLICATION_SLOTS,
    SETTING_RANDOM_PAGE_COST,
    SETTING_SEQ_PAGE_COST,
    SETTING_SHARED_BUFFERS,
    SETTING_EFFECTIVE_CACHE_SIZE,
    SETTING_WORK_MEM,
    SETTING_MAINTENANCE_WORK_MEM,
    SETTING_MAX_WAL_SIZE,
    SETTING_MIN_WAL_SIZE,
    SETTING_CHECKPOINT_TIMEOUT,
    SETTING_AUTOVACUUM,
    SLOT_ACTIVE,
    SLOT_WAL_LSN_DIFF,
    REPLICATION_LAG_LEGACY,
    LAST_SCRAPE_ERROR,
];
