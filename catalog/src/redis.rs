//! Redis families: redis_exporter's names, types and label names (checked
//! against Debian's redis_exporter 1.45 beside ours), plus opsmon's PING
//! latency.

use crate::MetricType::{Counter, Gauge};
use crate::Unit::{Bytes, None, Seconds};
use crate::{MetricDef, MetricType, Unit};

const fn redis(
    name: &'static str,
    metric_type: MetricType,
    unit: Unit,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricDef {
    MetricDef { name, metric_type, unit, help, labels, collector: "redis" }
}

const DB: &[&str] = &["db"];
const CMD: &[&str] = &["cmd"];

/// Whether the last scrape could connect and read INFO.
pub const UP: MetricDef = redis(
    "redis_up",
    Gauge,
    None,
    &[],
    "Whether the last scrape could connect to Redis and read INFO (1 for yes, 0 for no).",
);
/// Server identity as labels.
pub const INSTANCE_INFO: MetricDef = redis(
    "redis_instance_info",
    Gauge,
    None,
    &[
        "maxmemory_policy",
        "os",
        "process_id",
        "redis_build_id",
        "redis_mode",
        "redis_version",
        "role",
        "run_id",
        "tcp_port",
    ],
    "Information about the Redis instance",
);
/// `uptime_in_seconds`.
pub const UPTIME: MetricDef =
    redis("redis_uptime_in_seconds", Gauge, Seconds, &[], "Seconds since the Redis server started.");
/// `connected_clients`.
pub const CONNECTED_CLIENTS: MetricDef =
    redis("redis_connected_clients", Gauge, None, &[], "Client connections, excluding those from replicas.");
/// `blocked_clients`.
pub const BLOCKED_CLIENTS: MetricDef = redis(
    "redis_blocked_clients",
    Gauge,
    None,
    &[],
    "Clients pending on a blocking call (BLPOP, BRPOP, BLMOVE, WAIT, …).",
);
/// `used_memory`.
pub const MEMORY_USED: MetricDef = redis(
    "redis_memory_used_bytes",
    Gauge,
    Bytes,
    &[],
    "Bytes allocated by Redis using its allocator (INFO used_memory).",
);
/// `maxmemory`.
pub const MEMORY_MAX: MetricDef =
    redis("redis_memory_max_bytes", Gauge, Bytes, &[], "The maxmemory setting in bytes; 0 means no limit.");
/// `mem_fragmentation_ratio` (RSS over used memory, usually above 1, so not a 0..1 ratio).
pub const MEM_FRAGMENTATION: MetricDef = redis(
    "redis_mem_fragmentation_ratio",
    Gauge,
    None,
    &[],
    "Resident set size divided by used memory (INFO mem_fragmentation_ratio).",
);
/// `total_commands_processed`.
pub const COMMANDS_PROCESSED: MetricDef = redis(
    "redis_commands_processed_total",
    Counter,
    None,
    &[],
    "Commands processed by the server since it started.",
);
/// `keyspace_hits`.
pub const KEYSPACE_HITS: MetricDef = redis(
    "redis_keyspace_hits_total",
    Counter,
    None,
    &[],
    "Successful lookups of keys in the main dictionary.",
);
/// `keyspace_misses`.
pub const KEYSPACE_MISSES: MetricDef = redis(
    "redis_keyspace_misses_total",
    Counter,
    None,
    &[],
    "Failed lookups of keys in the main dictionary.",
);
/// `evicted_keys`.
pub const EVICTED_KEYS: MetricDef =
    redis("redis_evicted_keys_total", Counter, None, &[], "Keys evicted because of the maxmemory limit.");
/// `expired_keys`.
pub const EXPIRED_KEYS: MetricDef =
    redis("redis_expired_keys_total", Counter, None, &[], "Key expiration events.");
/// Keys per database, from INFO keyspace (0 for empty databases).
pub const DB_KEYS: MetricDef = redis("redis_db_keys", Gauge, None, DB, "Total number of keys by DB");
/// Keys with an expiry per database.
pub const DB_KEYS_EXPIRING: MetricDef =
    redis("redis_db_keys_expiring", Gauge, None, DB, "Total number of expiring keys by DB");
/// `rdb_last_save_time`.
pub const RDB_LAST_SAVE: MetricDef = redis(
    "redis_rdb_last_save_timestamp_seconds",
    Gauge,
    Seconds,
    &[],
    "Unix time of the last successful RDB save (server start when it never saved).",
);
/// `rdb_last_bgsave_status`.
pub const RDB_LAST_BGSAVE_STATUS: MetricDef = redis(
    "redis_rdb_last_bgsave_status",
    Gauge,
    None,
    &[],
    "1 when the last RDB background save succeeded (or none ran yet), 0 when it failed.",
);
/// `connected_slaves`.
pub const CONNECTED_SLAVES: MetricDef =
    redis("redis_connected_slaves", Gauge, None, &[], "Replicas connected to this server.");
/// `used_memory_rss`.
pub const MEMORY_USED_RSS: MetricDef = redis(
    "redis_memory_used_rss_bytes",
    Gauge,
    Bytes,
    &[],
    "Resident set size of the Redis process as the OS sees it (INFO used_memory_rss).",
);
/// `total_system_memory`: redis_exporter reports it only with
/// `--include-system-metrics`; the redis-mixin's memory alert divides by it.
pub const TOTAL_SYSTEM_MEMORY: MetricDef = redis(
    "redis_total_system_memory_bytes",
    Gauge,
    Bytes,
    &[],
    "Total memory of the host Redis runs on (INFO total_system_memory).",
);
/// `total_net_input_bytes`.
pub const NET_INPUT: MetricDef = redis(
    "redis_net_input_bytes_total",
    Counter,
    Bytes,
    &[],
    "Bytes read from the network by the server (INFO total_net_input_bytes).",
);
/// `total_net_output_bytes`.
pub const NET_OUTPUT: MetricDef = redis(
    "redis_net_output_bytes_total",
    Counter,
    Bytes,
    &[],
    "Bytes written to the network by the server (INFO total_net_output_bytes).",
);
/// `master_last_io_seconds_ago`, only on a replica.
pub const MASTER_LAST_IO: MetricDef = redis(
    "redis_master_last_io_seconds_ago",
    Gauge,
    None,
    &[],
    "Seconds since the replica last heard from its master (replicas only).",
);
/// Calls per command, from INFO commandstats.
pub const COMMANDS: MetricDef =
    redis("redis_commands_total", Counter, None, CMD, "Total number of calls per command");
/// Time spent per command, from INFO commandstats.
pub const COMMANDS_DURATION: MetricDef = redis(
    "redis_commands_duration_seconds_total",
    Counter,
    Seconds,
    CMD,
    "Total amount of time in seconds spent per command",
);
/// Rejected calls per command (Redis 6.2+).
pub const COMMANDS_REJECTED: MetricDef = redis(
    "redis_commands_rejected_calls_total",
    Counter,
    None,
    CMD,
    "Total number of errors prior command execution per command",
);
/// Failed calls per command (Redis 6.2+).
pub const COMMANDS_FAILED: MetricDef = redis(
    "redis_commands_failed_calls_total",
    Counter,
    None,
    CMD,
    "Total number of errors within command execution per command",
);
/// PING round trip.
pub const PING_DURATION: MetricDef = redis(
    "opsmon_redis_ping_duration_seconds",
    Gauge,
    Seconds,
    &[],
    "Round trip of PING over the exporter's connection, as the guide's `redis-cli ping` check (sent together with INFO, answered first).",
);

/// All Redis families.
pub const METRICS: &[MetricDef] = &[
    UP,
    PING_DURATION,
    INSTANCE_INFO,
    UPTIME,
    CONNECTED_CLIENTS,
    BLOCKED_CLIENTS,
    MEMORY_USED,
    MEMORY_MAX,
    MEM_FRAGMENTATION,
    COMMANDS_PROCESSED,
    KEYSPACE_HITS,
    KEYSPACE_MISSES,
    EVICTED_KEYS,
    EXPIRED_KEYS,
    DB_KEYS,
    DB_KEYS_EXPIRING,
    RDB_LAST_SAVE,
    RDB_LAST_BGSAVE_STATUS,
    CONNECTED_SLAVES,
    MEMORY_USED_RSS,
    TOTAL_SYSTEM_MEMORY,
    NET_INPUT,
    NET_OUTPUT,
    COMMANDS,
    COMMANDS_DURATION,
    COMMANDS_REJECTED,
    COMMANDS_FAILED,
    MASTER_LAST_IO,
];
