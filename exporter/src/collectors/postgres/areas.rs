//! The areas the PostgreSQL collector reads on every scrape — settings,
//! activity, database, bgwriter, locks, archiver, replication, slots and the
//! configured tables — each one's statement and how its answer becomes
//! families.
//!
//! Every area's statement answers exactly one row: an area with a row per
//! database, lock mode or table folds them into one array per column. That is
//! what lets the areas run side by side as the columns of one statement
//! ([`AreaStatements::combined`]), so a scrape costs one round trip for all of
//! them instead of one each — on a loaded host the round trips, not
//! PostgreSQL's work, are most of the collector's time. Each area's
//! statement also runs alone, with the same decoder, when the combined one
//! fails: then a blocked area fails only itself.

use opsmon_catalog::MetricDef;
use opsmon_catalog::postgres as m;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row, SqlSafeStr, SqlStr};

use crate::metrics::{LabelValue, MetricSet};

/// One area: the label of `opsmon_pg_query_success` and `_duration_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Settings,
    Activity,
    Database,
    Bgwriter,
    Locks,
    Archiver,
    Replication,
    Slots,
    Tables,
}

impl Area {
    /// Every area, in the order they are read and reported.
    pub const ALL: [Area; 9] = [
        Area::Settings,
        Area::Activity,
        Area::Database,
        Area::Bgwriter,
        Area::Locks,
        Area::Archiver,
        Area::Replication,
        Area::Slots,
        Area::Tables,
    ];

    /// The `query` label.
    pub fn name(self) -> &'static str {
        match self {
            Area::Settings => "settings",
            Area::Activity => "activity",
            Area::Database => "database",
            Area::Bgwriter => "bgwriter",
            Area::Locks => "locks",
            Area::Archiver => "archiver",
            Area::Replication => "replication",
            Area::Slots => "slots",
            Area::Tables => "tables",
        }
    }

    /// Columns of the area's one row.
    fn columns(self) -> usize {
        match self {
            Area::Settings => 4,
            Area::Activity => ACTIVITY.width(),
            Area::Database => DATABASE.width(),
            Area::Bgwriter => 11,
            Area::Locks => LOCKS.width(),
            Area::Archiver => 3,
            Area::Replication => 2,
            Area::Slots => SLOTS.width(),
            Area::Tables => TABLES.width(),
        }
    }

    /// The area's statement, answering one row, with every parameter written
    /// in as a literal so that the prepared statement has one plan, made once
    /// per connection.
    fn sql(self, server_version_num: u32, tables: &[String]) -> String {
        match self {
            Area::Settings => {
                SETTINGS_SQL.replace("$1", &text_array_literal(&SETTINGS.map(|(name, _)| name)))
            }
            Area::Activity => ACTIVITY.folded(ACTIVITY_SQL),
            Area::Database => DATABASE.folded(DATABASE_SQL),
            Area::Bgwriter => bgwriter_sql(server_version_num).to_owned(),
            Area::Locks => LOCKS.folded(LOCKS_SQL),
            Area::Archiver => ARCHIVER_SQL.to_owned(),
            Area::Replication => REPLICATION_SQL.to_owned(),
            Area::Slots => SLOTS.folded(SLOTS_SQL),
            Area::Tables => TABLES.folded(
                &TABLES_SQL
                    .replace("$1", &format!("{}::text[]", text_array_literal(tables)))
                    .replace("$2", &format!("{}::text[]", text_array_literal(&relation_names(tables)))),
            ),
        }
    }

    /// Adds the area's families from its columns in `row`, starting at `at`.
    /// The database sizes are not here: they are measured on their own interval.
    pub fn decode(
        self,
        row: &PgRow,
        at: usize,
        out: &mut MetricSet,
        server: &LabelValue,
    ) -> Result<(), sqlx::Error> {
        match self {
            Area::Settings => {
                let long_version: String = row.try_get(at)?;
                let number: i32 = row.try_get(at + 1)?;
                out.family(&m::MAX_CONNECTIONS).number(vec![server.clone()], row.try_get(at + 2)?);
                out.family(&m::STATIC)
                    .number(vec![server.clone(), short_version(number).into(), long_version.into()], 1.0);
                let shown: Vec<Option<String>> = row.try_get(at + 3)?;
                for ((_, def), shown) in SETTINGS.iter().zip(&shown) {
                    if let Some(value) = shown.as_deref().and_then(setting_value) {
                        out.family(def).number(vec![server.clone()], value);
                    }
                }
            }
            Area::Activity => {
                let rows = ACTIVITY.unfold(row, at)?;
                // datname, server, state
                let labels = |i: usize| vec![rows.label(0, i), server.clone(), rows.label(1, i)];
                rows.emit(out, &[&m::ACTIVITY_COUNT, &m::ACTIVITY_MAX_TX], labels);
            }
            Area::Database => {
                let rows = DATABASE.unfold(row, at)?;
                let families: [&'static MetricDef; 13] = [
                    &m::NUMBACKENDS,
                    &m::XACT_COMMIT,
                    &m::XACT_ROLLBACK,
                    &m::BLKS_READ,
                    &m::BLKS_HIT,
                    &m::DEADLOCKS,
                    &m::TEMP_BYTES,
                    &m::TUP_RETURNED,
                    &m::TUP_FETCHED,
                    &m::TUP_INSERTED,
                    &m::TUP_UPDATED,
                    &m::TUP_DELETED,
                    &m::CONFLICTS,
                ];
                // datid, datname, server
                rows.emit(out, &families, |i| vec![rows.label(0, i), rows.label(1, i), server.clone()]);
            }
            Area::Bgwriter => {
                let families = [
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
                for (column, def) in families.into_iter().enumerate() {
                    if let Some(value) = row.try_get::<Option<f64>, _>(at + column)? {
                        out.family(def).number(vec![server.clone()], value);
                    }
                }
            }
            Area::Locks => {
                let rows = LOCKS.unfold(row, at)?;
                // datname, mode, server
                rows.emit(out, &[&m::LOCKS], |i| vec![rows.label(0, i), rows.label(1, i), server.clone()]);
            }
            Area::Archiver => {
                out.family(&m::ARCHIVED).number(vec![server.clone()], row.try_get(at)?);
                out.family(&m::ARCHIVE_FAILED).number(vec![server.clone()], row.try_get(at + 1)?);
                out.family(&m::ARCHIVE_AGE).number(vec![server.clone()], row.try_get(at + 2)?);
            }
            Area::Replication => {
                let replica: bool = row.try_get(at)?;
                out.family(&m::IS_REPLICA).number(vec![server.clone()], if replica { 1.0 } else { 0.0 });
                let lag: f64 = row.try_get(at + 1)?;
                out.family(&m::REPLICATION_LAG).number(vec![server.clone()], lag);
                out.family(&m::REPLICATION_LAG_LEGACY).number(vec![server.clone()], lag);
            }
            Area::Slots => {
                let rows = SLOTS.unfold(row, at)?;
                // database, server, slot_name
                let labels = |i: usize| vec![rows.label(1, i), server.clone(), rows.label(0, i)];
                rows.emit(out, &[&m::SLOT_ACTIVE, &m::SLOT_WAL_LSN_DIFF], labels);
            }
            Area::Tables => {
                let rows = TABLES.unfold(row, at)?;
                let families: [&'static MetricDef; 7] = [
                    &m::TABLE_SEQ_SCAN,
                    &m::TABLE_IDX_SCAN,
                    &m::TABLE_LIVE,
                    &m::TABLE_DEAD,
                    &m::TABLE_AUTOVACUUM,
                    &m::TABLE_AUTOANALYZE,
                    &m::TABLE_SIZE,
                ];
                // datname, relname, schemaname, server
                let labels =
                    |i: usize| vec![rows.label(0, i), rows.label(2, i), rows.label(1, i), server.clone()];
                rows.emit(out, &families, labels);
            }
        }
        Ok(())
    }
}

/// The statements for one server version and list of tables: each area's
/// alone, and all of them as the columns of one.
#[derive(Debug)]
pub struct AreaStatements {
    /// The server version and tables these statements are for.
    pub server_version_num: u32,
    pub tables: Vec<String>,
    /// The areas read, in order, each with its own statement and where its
    /// columns start in the combined statement's row.
    pub areas: Vec<(Area, SqlStr, usize)>,
    /// Every area's statement side by side: one row, the areas' columns in order.
    pub combined: SqlStr,
}

impl AreaStatements {
    /// The statements for a server of `server_version_num`, with the
    /// `tables` area only when tables are configured.
    pub fn new(server_version_num: u32, tables: &[String]) -> Self {
        let mut areas = Vec::with_capacity(Area::ALL.len());
        let mut at = 0;
        let mut sources = Vec::with_capacity(Area::ALL.len());
        for area in Area::ALL {
            if area == Area::Tables && tables.is_empty() {
                continue;
            }
            let sql = area.sql(server_version_num, tables);
            sources.push(format!("({sql}) AS {}", area.name()));
            areas.push((area, sql_str(sql), at));
            at += area.columns();
        }
        // Each source answers exactly one row, so their cross product is one row.
        let combined = sql_str(format!("SELECT *\nFROM {}", sources.join(",\n     ")));
        Self { server_version_num, tables: tables.to_vec(), areas, combined }
    }

    /// Columns of the combined statement's row.
    #[cfg(test)]
    fn width(&self) -> usize {
        self.areas.iter().map(|(area, _, _)| area.columns()).sum()
    }
}

/// A statement built here: from the constants above, the server's version and
/// the configured table names, written in by [`text_array_literal`].
fn sql_str(sql: String) -> SqlStr {
    AssertSqlSafe(sql).into_sql_str()
}

/// The server's `server_version_num`, as the connection learnt it at start-up
/// (or asked, should the server not have reported it).
pub async fn server_version(conn: &mut PgConnection) -> Result<u32, sqlx::Error> {
    if let Some(version) = conn.server_version_num() {
        return Ok(version);
    }
    let version: i32 =
        sqlx::query_scalar("SELECT current_setting('server_version_num')::int").fetch_one(conn).await?;
    Ok(u32::try_from(version).unwrap_or(0))
}

/// The shape of an area with a row per item: its first `labels` columns are
/// text, the other `values` are float8.
struct Shape {
    labels: usize,
    values: usize,
}

impl Shape {
    const fn width(&self) -> usize {
        self.labels + self.values
    }

    /// `sql` folded into one row: an array per column, in the rows' order (one
    /// aggregate pass builds every array, so element `i` of each is row `i`).
    /// With no rows the arrays are NULL, read as empty.
    fn folded(&self, sql: &str) -> String {
        let names: Vec<String> = (0..self.width()).map(|c| format!("c{c}")).collect();
        let columns: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(c, name)| {
                if c < self.labels {
                    format!("array_agg(q.{name}::text)")
                } else {
                    format!("array_agg(q.{name})")
                }
            })
            .collect();
        format!("SELECT {}\nFROM ({sql}) AS q({})", columns.join(", "), names.join(", "))
    }

    /// The arrays of a folded row, starting at column `at`.
    fn unfold(&self, row: &PgRow, at: usize) -> Result<Unfolded, sqlx::Error> {
        let mut labels = Vec::with_capacity(self.labels);
        for column in at..at + self.labels {
            let texts: Option<Vec<Option<String>>> = row.try_get(column)?;
            labels.push(texts.unwrap_or_default());
        }
        let mut values = Vec::with_capacity(self.values);
        for column in at + self.labels..at + self.width() {
            let numbers: Option<Vec<f64>> = row.try_get(column)?;
            values.push(numbers.unwrap_or_default());
        }
        let rows = labels.iter().map(Vec::len).chain(values.iter().map(Vec::len)).min().unwrap_or(0);
        Ok(Unfolded { labels, values, rows })
    }
}

/// An area's rows, back from their arrays.
struct Unfolded {
    labels: Vec<Vec<Option<String>>>,
    values: Vec<Vec<f64>>,
    rows: usize,
}

impl Unfolded {
    /// Label column `column` of row `row`; NULL is the empty label.
    fn label(&self, column: usize, row: usize) -> LabelValue {
        self.labels[column][row].clone().unwrap_or_default().into()
    }

    /// One family per value column, `families` in the columns' order, a
    /// sample per row labelled by `labels(row)`.
    fn emit(
        &self,
        out: &mut MetricSet,
        families: &[&'static MetricDef],
        labels: impl Fn(usize) -> Vec<LabelValue>,
    ) {
        for (def, values) in families.iter().zip(&self.values) {
            let mut family = out.family(def);
            for (row, value) in values.iter().enumerate().take(self.rows) {
                family.number(labels(row), *value);
            }
        }
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

/// The settings area: the server's version (long and as a number),
/// `max_connections`, and `current_setting` of each wanted parameter in the
/// order asked, NULL for one this version lacks. Far cheaper than reading the
/// `pg_settings` view, which builds every column of all ~350 parameters.
const SETTINGS_SQL: &str = "\
SELECT version(), current_setting('server_version_num')::int, current_setting('max_connections')::float8,
       array_agg(current_setting(u.name, true) ORDER BY u.position)
FROM unnest($1::text[]) WITH ORDINALITY AS u(name, position)";

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

/// pg_stat_bgwriter; from PostgreSQL 17 the checkpoint columns moved to
/// pg_stat_checkpointer and the backend-write ones to pg_stat_io, so those
/// two families are left out there (NULL columns): naming a missing view or
/// column would fail the statement.
fn bgwriter_sql(server_version_num: u32) -> &'static str {
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

/// Every slot: slot name, database; active, WAL retained. The WAL is NaN until
/// the slot has reserved any, as postgres_exporter reports it.
const SLOTS: Shape = Shape { labels: 2, values: 2 };
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

/// Every database × state (so series do not come and go with activity):
/// datname, state; sessions, longest transaction.
const ACTIVITY: Shape = Shape { labels: 2, values: 2 };
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

/// datid, datname; then the 13 counters in the order `Area::decode` names them.
const DATABASE: Shape = Shape { labels: 2, values: 13 };
const DATABASE_SQL: &str = "\
SELECT s.datid::text, s.datname, s.numbackends::float8, s.xact_commit::float8, s.xact_rollback::float8,
       s.blks_read::float8, s.blks_hit::float8, s.deadlocks::float8, s.temp_bytes::float8,
       s.tup_returned::float8, s.tup_fetched::float8, s.tup_inserted::float8, s.tup_updated::float8,
       s.tup_deleted::float8, s.conflicts::float8
FROM pg_stat_database s WHERE s.datname IS NOT NULL
ORDER BY s.datname";

/// Every database × lock mode, as postgres_exporter reports them: datname, mode; count.
const LOCKS: Shape = Shape { labels: 2, values: 1 };
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

/// Configured tables, by `name` (any schema) or `schema.name`: datname,
/// schema, table; then the 7 figures in the order `Area::decode` names them.
/// `$2` ([`relation_names`]) is what lets PostgreSQL find them by
/// `pg_class`'s index on the name: without it the whole catalog is read on
/// every scrape, 2 ms of the server's time with 2,000 tables.
const TABLES: Shape = Shape { labels: 3, values: 7 };
const TABLES_SQL: &str = "\
SELECT current_database(), t.schemaname::text, t.relname::text, t.seq_scan::float8, COALESCE(t.idx_scan, 0)::float8,
       t.n_live_tup::float8, t.n_dead_tup::float8,
       COALESCE(extract(epoch FROM t.last_autovacuum), 0)::float8,
       COALESCE(extract(epoch FROM t.last_autoanalyze), 0)::float8,
       pg_total_relation_size(t.relid)::float8
FROM pg_stat_user_tables t
WHERE t.relname = ANY($2) AND (t.relname = ANY($1) OR (t.schemaname || '.' || t.relname) = ANY($1))
ORDER BY 2, 3";

/// Every relation name a configured table can have: the name as written
/// (matched in any schema) and, for a `schema.name`, the part after the dot.
/// Sorted and without repeats, so the statement is the same for the same tables.
fn relation_names(tables: &[String]) -> Vec<&str> {
    let mut names = std::collections::BTreeSet::new();
    for table in tables {
        names.insert(table.as_str());
        names.extend(table.split_once('.').map(|(_, name)| name));
    }
    names.into_iter().collect()
}

/// `items` as an SQL literal of a text array, `E'{"a","b"}'`: each element
/// quoted for the array's syntax, then the whole escaped as an `E''` string,
/// whose backslashes mean the same whatever `standard_conforming_strings` is.
/// Table names come from the config file and are written into the statement
/// (see [`Area::sql`]), so nothing in one can end the literal.
pub fn text_array_literal<S: AsRef<str>>(items: &[S]) -> String {
    let elements: Vec<String> = items
        .iter()
        .map(|item| format!("\"{}\"", item.as_ref().replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("E'{{{}}}'", elements.join(",").replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(columns(bgwriter_sql(150_020)), Area::Bgwriter.columns());
        assert_eq!(columns(v17), Area::Bgwriter.columns());
    }

    #[test]
    fn every_area_row_has_the_columns_its_decoder_reads() {
        // The one-row areas by their select lists, the folded ones by their shape.
        let commas_before_from = |sql: &str| {
            let select = &sql[..sql.find("\nFROM").unwrap_or(sql.len())];
            let mut depth = 0i32;
            let mut columns = 1;
            for c in select.chars() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    ',' if depth == 0 => columns += 1,
                    _ => {}
                }
            }
            columns
        };
        let tables = ["analytics_events".to_owned()];
        for area in Area::ALL {
            let sql = area.sql(150_020, &tables);
            assert_eq!(commas_before_from(&sql), area.columns(), "{}: {sql}", area.name());
        }
        for (shape, sql) in [
            (&ACTIVITY, ACTIVITY_SQL),
            (&DATABASE, DATABASE_SQL),
            (&LOCKS, LOCKS_SQL),
            (&SLOTS, SLOTS_SQL),
            (&TABLES, TABLES_SQL),
        ] {
            assert_eq!(commas_before_from(sql), shape.width(), "{sql}");
        }
    }

    #[test]
    fn the_combined_statement_puts_the_areas_side_by_side() {
        let tables = vec!["analytics_events".to_owned(), "o'neil.\"odd\"".to_owned()];
        let statements = AreaStatements::new(150_020, &tables);
        let names: Vec<&str> = statements.areas.iter().map(|(area, _, _)| area.name()).collect();
        assert_eq!(names, Area::ALL.map(Area::name));
        let mut at = 0;
        for (area, sql, start) in &statements.areas {
            assert_eq!(*start, at, "{}", area.name());
            assert!(statements.combined.as_str().contains(&format!("({}) AS {}", sql.as_str(), area.name())));
            at += area.columns();
        }
        assert_eq!(statements.width(), at);
        let combined = statements.combined.as_str();
        assert!(!combined.contains('$'), "every parameter is a literal");
        assert!(combined.contains(r#"ANY(E'{"analytics_events","o''neil.\\"odd\\""}'::text[])"#));
        assert!(combined.contains(r#"unnest(E'{"superuser_reserved_connections","#));

        let untabled = AreaStatements::new(170_002, &[]);
        assert!(untabled.areas.iter().all(|(area, _, _)| *area != Area::Tables));
        assert!(untabled.combined.as_str().contains("pg_stat_checkpointer"));
    }

    #[test]
    fn a_table_is_looked_up_by_every_name_its_relation_can_have() {
        let tables = ["analytics_events", "ops.events", "archive.analytics_events", "analytics_events"]
            .map(String::from);
        assert_eq!(
            relation_names(&tables),
            ["analytics_events", "archive.analytics_events", "events", "ops.events"]
        );
        assert!(relation_names(&[]).is_empty());
        let sql = Area::Tables.sql(150_020, &tables);
        assert!(
            sql.contains(r#"t.relname = ANY(E'{"analytics_events","archive.analytics_events","events","ops.events"}'::text[]) AND"#),
            "{sql}"
        );
    }

    #[test]
    fn short_versions_like_postgres_exporter() {
        assert_eq!(short_version(150_020), "15.20.0");
        assert_eq!(short_version(120_003), "12.3.0");
        assert_eq!(short_version(90_624), "9.6.24");
    }
}
