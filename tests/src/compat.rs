//! The families the peers' own mixins and dashboards read, written down as
//! facts: name, type and label names as the peer exporter installed here
//! emits them (node_exporter 1.5, postgres_exporter 0.11, redis_exporter 1.45,
//! Debian's builds), which file reads them, and whether this host and opsmon
//! can have them. `docs/compatibility.md` is the same table for people; the
//! mixin files themselves are other projects' code and are not copied here.
//!
//! Read from: node-mixin (prometheus/node_exporter `docs/node-mixin`, commit
//! a7dcc3a), postgres_mixin (prometheus-community/postgres_exporter, commit
//! dbb1987) and redis-mixin plus `contrib/grafana_prometheus_redis_dashboard.json`
//! (oliver006/redis_exporter). Recording-rule outputs (`instance:node_num_cpu:sum`,
//! `redis_memory_fragmentation_ratio`, …) are not families and are not listed;
//! their inputs are.

/// Which peer exporter a family belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// prometheus-node-exporter.
    Node,
    /// prometheus-postgres-exporter.
    Postgres,
    /// prometheus-redis-exporter.
    Redis,
}

/// Whether the family can be compared on this host, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Both the peer and opsmon emit it here: same stored name, type and labels.
    Both,
    /// opsmon emits it; the peer as Debian ships it does not by default (the reason says where it comes from).
    OursOnly(&'static str),
    /// Neither can have it on this host (the reason says why); the peer must not emit it either.
    HostCannotHave(&'static str),
    /// The peer emits it here and opsmon does not: a known, documented gap.
    NotImplemented(&'static str),
}

/// One family a mixin or dashboard reads.
#[derive(Debug, Clone, Copy)]
pub struct MixinFamily {
    /// The peer it comes from.
    pub peer: Peer,
    /// The name Prometheus stores (what the queries select).
    pub name: &'static str,
    /// `counter`, `gauge` or `untyped`, as the peer declares it.
    pub metric_type: &'static str,
    /// Label names, sorted, without `job`/`instance`.
    pub labels: &'static [&'static str],
    /// Which files read it: `rules`, `alerts`, `dashboards`.
    pub read_by: &'static str,
    /// Whether it can be compared here.
    pub presence: Presence,
}

use Peer::{Node, Postgres, Redis};
use Presence::{Both, HostCannotHave, NotImplemented, OursOnly};

const fn family(
    peer: Peer,
    name: &'static str,
    metric_type: &'static str,
    labels: &'static [&'static str],
    read_by: &'static str,
    presence: Presence,
) -> MixinFamily {
    MixinFamily { peer, name, metric_type, labels, read_by, presence }
}

const DEV: &[&str] = &["device"];
const FS: &[&str] = &["device", "fstype", "mountpoint"];
const SERVER: &[&str] = &["server"];
const PG_DB: &[&str] = &["datid", "datname", "server"];
const PG_TABLE: &[&str] = &["datname", "relname", "schemaname", "server"];
const CMD: &[&str] = &["cmd"];

const DARWIN: &str = "macOS (Darwin) only; the node dashboard shows these panels only for sysname=\"Darwin\"";
const DEBIAN_QUERIES_FILE: &str = "Debian's postgres_exporter 0.11 emits it only from the optional queries file \
                                   (--extend.query-path); upstream's built-in collectors emit it today";

/// Every family the three mixins and the Redis dashboard read.
pub const MIXIN_FAMILIES: &[MixinFamily] = &[
    // node-mixin: rules, alerts, the USE and nodes dashboards.
    family(Node, "node_cpu_seconds_total", "counter", &["cpu", "mode"], "rules alerts dashboards", Both),
    family(Node, "node_load1", "gauge", &[], "rules alerts dashboards", Both),
    family(Node, "node_load5", "gauge", &[], "dashboards", Both),
    family(Node, "node_load15", "gauge", &[], "dashboards", Both),
    family(Node, "node_memory_MemTotal_bytes", "gauge", &[], "rules alerts dashboards", Both),
    family(Node, "node_memory_MemAvailable_bytes", "gauge", &[], "rules alerts dashboards", Both),
    family(Node, "node_memory_MemFree_bytes", "gauge", &[], "rules dashboards", Both),
    family(Node, "node_memory_Buffers_bytes", "gauge", &[], "rules dashboards", Both),
    family(Node, "node_memory_Cached_bytes", "gauge", &[], "rules dashboards", Both),
    family(Node, "node_memory_Slab_bytes", "gauge", &[], "rules", Both),
    family(Node, "node_vmstat_pgmajfault", "untyped", &[], "rules alerts dashboards", Both),
    family(Node, "node_disk_io_time_seconds_total", "counter", DEV, "rules dashboards", Both),
    family(Node, "node_disk_io_time_weighted_seconds_total", "counter", DEV, "rules alerts", Both),
    family(Node, "node_disk_read_bytes_total", "counter", DEV, "dashboards", Both),
    family(Node, "node_disk_written_bytes_total", "counter", DEV, "dashboards", Both),
    family(Node, "node_network_receive_bytes_total", "counter", DEV, "rules dashboards", Both),
    family(Node, "node_network_transmit_bytes_total", "counter", DEV, "rules dashboards", Both),
    family(Node, "node_network_receive_drop_total", "counter", DEV, "rules", Both),
    family(Node, "node_network_transmit_drop_total", "counter", DEV, "rules", Both),
    family(Node, "node_network_receive_errs_total", "counter", DEV, "alerts", Both),
    family(Node, "node_network_transmit_errs_total", "counter", DEV, "alerts", Both),
    family(Node, "node_network_receive_packets_total", "counter", DEV, "alerts", Both),
    family(Node, "node_network_transmit_packets_total", "counter", DEV, "alerts", Both),
    family(Node, "node_filesystem_avail_bytes", "gauge", FS, "alerts dashboards", Both),
    family(Node, "node_filesystem_size_bytes", "gauge", FS, "alerts dashboards", Both),
    family(Node, "node_filesystem_readonly", "gauge", FS, "alerts", Both),
    family(Node, "node_filesystem_files", "gauge", FS, "alerts", Both),
    family(Node, "node_filesystem_files_free", "gauge", FS, "alerts", Both),
    family(Node, "node_filefd_allocated", "gauge", &[], "alerts", Both),
    family(Node, "node_filefd_maximum", "gauge", &[], "alerts", Both),
    family(Node, "node_nf_conntrack_entries", "gauge", &[], "alerts", Both),
    family(Node, "node_nf_conntrack_entries_limit", "gauge", &[], "alerts", Both),
    family(Node, "node_time_seconds", "gauge", &[], "dashboards", Both),
    family(
        Node,
        "node_uname_info",
        "gauge",
        &["domainname", "machine", "nodename", "release", "sysname", "version"],
        "dashboards",
        Both,
    ),
    family(Node, "node_timex_offset_seconds", "gauge", &[], "alerts", Both),
    family(Node, "node_timex_maxerror_seconds", "gauge", &[], "alerts", Both),
    family(Node, "node_timex_sync_status", "gauge", &[], "alerts", Both),
    family(
        Node,
        "node_textfile_scrape_error",
        "gauge",
        &[],
        "alerts",
        NotImplemented("opsmon has no textfile collector; the alert fires only when the value is 1"),
    ),
    family(
        Node,
        "node_exporter_build_info",
        "gauge",
        &["branch", "goarch", "goos", "goversion", "revision", "version"],
        "dashboards",
        NotImplemented(
            "describes node_exporter's own build, which opsmon is not (it emits opsmon_exporter_build_info); \
             the per-node USE dashboard's instance variable reads it",
        ),
    ),
    family(
        Node,
        "node_md_disks",
        "gauge",
        &["device", "state"],
        "alerts",
        HostCannotHave("no software RAID arrays in /proc/mdstat on this host"),
    ),
    family(
        Node,
        "node_md_disks_required",
        "gauge",
        &["device"],
        "alerts",
        HostCannotHave("no software RAID arrays in /proc/mdstat on this host"),
    ),
    family(
        Node,
        "node_bonding_active",
        "gauge",
        &["master"],
        "alerts",
        HostCannotHave("no bonding interfaces on this host"),
    ),
    family(
        Node,
        "node_bonding_slaves",
        "gauge",
        &["master"],
        "alerts",
        HostCannotHave("no bonding interfaces on this host"),
    ),
    family(
        Node,
        "node_systemd_unit_state",
        "gauge",
        &["name", "state", "type"],
        "alerts",
        HostCannotHave(
            "node_exporter's systemd collector is off by default (it needs systemd over D-Bus), so the peer emits none; opsmon has no systemd collector",
        ),
    ),
    family(
        Node,
        "node_systemd_service_restart_total",
        "counter",
        &["name"],
        "alerts",
        HostCannotHave(
            "node_exporter's systemd collector is off by default (it needs systemd over D-Bus), so the peer emits none; opsmon has no systemd collector",
        ),
    ),
    family(Node, "node_memory_total_bytes", "gauge", &[], "dashboards", HostCannotHave(DARWIN)),
    family(Node, "node_memory_available_bytes", "gauge", &[], "dashboards", HostCannotHave(DARWIN)),
    family(Node, "node_memory_wired_bytes", "gauge", &[], "dashboards", HostCannotHave(DARWIN)),
    family(Node, "node_memory_compressed_bytes", "gauge", &[], "dashboards", HostCannotHave(DARWIN)),
    family(Node, "node_memory_internal_bytes", "gauge", &[], "dashboards", HostCannotHave(DARWIN)),
    family(Node, "node_memory_purgeable_bytes", "gauge", &[], "dashboards", HostCannotHave(DARWIN)),
    // postgres_mixin: alerts and the overview dashboard.
    family(Postgres, "pg_up", "gauge", &[], "alerts dashboards", Both),
    family(Postgres, "pg_exporter_last_scrape_error", "gauge", &[], "alerts", Both),
    family(Postgres, "pg_stat_activity_count", "gauge", &["datname", "server", "state"], "alerts", Both),
    family(
        Postgres,
        "pg_stat_activity_max_tx_duration",
        "gauge",
        &["datname", "server", "state"],
        "alerts",
        Both,
    ),
    family(Postgres, "pg_settings_max_connections", "gauge", SERVER, "alerts", Both),
    family(Postgres, "pg_settings_superuser_reserved_connections", "gauge", SERVER, "alerts", Both),
    family(Postgres, "pg_settings_max_locks_per_transaction", "gauge", SERVER, "alerts", Both),
    family(Postgres, "pg_settings_autovacuum_vacuum_scale_factor", "gauge", SERVER, "alerts", Both),
    family(Postgres, "pg_settings_autovacuum_vacuum_threshold", "gauge", SERVER, "alerts", Both),
    family(Postgres, "pg_stat_database_xact_commit", "counter", PG_DB, "alerts dashboards", Both),
    family(Postgres, "pg_stat_database_xact_rollback", "counter", PG_DB, "alerts dashboards", Both),
    family(Postgres, "pg_stat_database_blks_hit", "counter", PG_DB, "alerts dashboards", Both),
    family(Postgres, "pg_stat_database_blks_read", "counter", PG_DB, "alerts dashboards", Both),
    family(Postgres, "pg_stat_database_deadlocks", "counter", PG_DB, "alerts dashboards", Both),
    family(Postgres, "pg_stat_database_numbackends", "gauge", PG_DB, "dashboards", Both),
    family(Postgres, "pg_stat_database_tup_returned", "counter", PG_DB, "dashboards", Both),
    family(Postgres, "pg_stat_database_tup_fetched", "counter", PG_DB, "dashboards", Both),
    family(Postgres, "pg_stat_database_tup_inserted", "counter", PG_DB, "dashboards", Both),
    family(Postgres, "pg_stat_database_tup_updated", "counter", PG_DB, "dashboards", Both),
    family(Postgres, "pg_stat_database_tup_deleted", "counter", PG_DB, "dashboards", Both),
    family(Postgres, "pg_stat_database_conflicts", "counter", PG_DB, "dashboards", Both),
    family(Postgres, "pg_locks_count", "gauge", &["datname", "mode", "server"], "alerts", Both),
    family(Postgres, "pg_stat_bgwriter_checkpoints_timed_total", "counter", SERVER, "alerts", Both),
    family(Postgres, "pg_stat_bgwriter_checkpoints_req_total", "counter", SERVER, "alerts", Both),
    family(Postgres, "pg_stat_bgwriter_buffers_alloc_total", "counter", SERVER, "dashboards", Both),
    family(Postgres, "pg_stat_bgwriter_buffers_backend_total", "counter", SERVER, "dashboards", Both),
    family(Postgres, "pg_stat_bgwriter_buffers_backend_fsync_total", "counter", SERVER, "dashboards", Both),
    family(Postgres, "pg_stat_bgwriter_buffers_checkpoint_total", "counter", SERVER, "dashboards", Both),
    family(Postgres, "pg_stat_bgwriter_buffers_clean_total", "counter", SERVER, "dashboards", Both),
    family(
        Postgres,
        "pg_replication_slots_active",
        "gauge",
        &["database", "server", "slot_name"],
        "alerts",
        Both,
    ),
    family(Postgres, "pg_replication_is_replica", "gauge", SERVER, "alerts", OursOnly(DEBIAN_QUERIES_FILE)),
    family(Postgres, "pg_replication_lag", "gauge", SERVER, "alerts", OursOnly(DEBIAN_QUERIES_FILE)),
    family(
        Postgres,
        "pg_stat_user_tables_n_dead_tup",
        "gauge",
        PG_TABLE,
        "alerts",
        OursOnly(DEBIAN_QUERIES_FILE),
    ),
    family(
        Postgres,
        "pg_stat_user_tables_n_live_tup",
        "gauge",
        PG_TABLE,
        "alerts",
        OursOnly(DEBIAN_QUERIES_FILE),
    ),
    // redis-mixin and grafana_prometheus_redis_dashboard.json.
    family(Redis, "redis_up", "gauge", &[], "alerts dashboards", Both),
    family(Redis, "redis_uptime_in_seconds", "gauge", &[], "dashboards", Both),
    family(Redis, "redis_connected_clients", "gauge", &[], "alerts dashboards", Both),
    family(Redis, "redis_blocked_clients", "gauge", &[], "dashboards", Both),
    family(Redis, "redis_connected_slaves", "gauge", &[], "dashboards", Both),
    family(Redis, "redis_memory_used_bytes", "gauge", &[], "rules alerts dashboards", Both),
    family(Redis, "redis_memory_max_bytes", "gauge", &[], "dashboards", Both),
    family(Redis, "redis_memory_used_rss_bytes", "gauge", &[], "rules dashboards", Both),
    family(Redis, "redis_total_system_memory_bytes", "gauge", &[], "alerts", Both),
    family(Redis, "redis_commands_total", "counter", CMD, "dashboards", Both),
    family(Redis, "redis_commands_duration_seconds_total", "counter", CMD, "dashboards", Both),
    family(Redis, "redis_keyspace_hits_total", "counter", &[], "dashboards", Both),
    family(Redis, "redis_keyspace_misses_total", "counter", &[], "dashboards", Both),
    family(Redis, "redis_evicted_keys_total", "counter", &[], "dashboards", Both),
    family(Redis, "redis_expired_keys_total", "counter", &[], "dashboards", Both),
    family(Redis, "redis_db_keys", "gauge", &["db"], "dashboards", Both),
    family(Redis, "redis_db_keys_expiring", "gauge", &["db"], "dashboards", Both),
    family(Redis, "redis_net_input_bytes_total", "counter", &[], "dashboards", Both),
    family(Redis, "redis_net_output_bytes_total", "counter", &[], "dashboards", Both),
    family(
        Redis,
        "redis_master_last_io_seconds_ago",
        "gauge",
        &[],
        "dashboards",
        HostCannotHave("replicas only; the server here is a primary (opsmon emits it on replicas)"),
    ),
    family(
        Redis,
        "redis_cluster_state",
        "gauge",
        &[],
        "alerts",
        HostCannotHave(
            "Redis Cluster only (CLUSTER INFO); the server here is standalone and opsmon does not ask CLUSTER INFO",
        ),
    ),
    family(
        Redis,
        "redis_cluster_slots_fail",
        "gauge",
        &[],
        "alerts",
        HostCannotHave(
            "Redis Cluster only (CLUSTER INFO); the server here is standalone and opsmon does not ask CLUSTER INFO",
        ),
    ),
    family(
        Redis,
        "redis_cluster_slots_pfail",
        "gauge",
        &[],
        "alerts",
        HostCannotHave(
            "Redis Cluster only (CLUSTER INFO); the server here is standalone and opsmon does not ask CLUSTER INFO",
        ),
    ),
];

/// The table as Markdown rows, for `docs/compatibility.md` (a test keeps the
/// document equal to this table).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| peer | family | type | labels | read by | on this host |\n|---|---|---|---|---|---|\n",
    );
    for family in MIXIN_FAMILIES {
        let peer = match family.peer {
            Node => "node_exporter",
            Postgres => "postgres_exporter",
            Redis => "redis_exporter",
        };
        let presence = match family.presence {
            Both => "both emit it; compared".to_owned(),
            OursOnly(why) => format!("opsmon only: {why}"),
            HostCannotHave(why) => format!("neither: {why}"),
            NotImplemented(why) => format!("**not in opsmon**: {why}"),
        };
        let labels = if family.labels.is_empty() { "—".to_owned() } else { family.labels.join(", ") };
        out.push_str(&format!(
            "| {peer} | `{}` | {} | {labels} | {} | {presence} |\n",
            family.name, family.metric_type, family.read_by
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_document_shows_this_table() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/compatibility.md"))
            .unwrap_or_default();
        let table = markdown_table();
        assert!(doc.contains(&table), "docs/compatibility.md must contain this table verbatim:\n{table}");
    }

    #[test]
    fn names_unique_and_labels_sorted() {
        let mut seen = HashSet::new();
        for family in MIXIN_FAMILIES {
            assert!(seen.insert(family.name), "{} listed twice", family.name);
            assert!(family.labels.windows(2).all(|w| w[0] < w[1]), "{}: labels not sorted", family.name);
            assert!(["counter", "gauge", "untyped"].contains(&family.metric_type), "{}", family.name);
        }
    }

    /// Every family the table says opsmon emits is declared in the catalog
    /// with the same type and labels.
    #[test]
    fn families_we_emit_are_in_the_catalog() {
        for family in MIXIN_FAMILIES {
            if matches!(family.presence, Both | OursOnly(_)) {
                let def = opsmon_catalog::find(family.name)
                    .unwrap_or_else(|| panic!("{} is not in the catalog", family.name));
                assert_eq!(def.metric_type.as_str(), family.metric_type, "{}", family.name);
                let mut labels = def.labels.to_vec();
                labels.sort_unstable();
                assert_eq!(labels, family.labels, "{}", family.name);
            }
        }
    }
}
