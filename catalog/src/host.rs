//! Host metrics: node_exporter-compatible families (same names, types, labels
//! and units) plus opsmon's process groups, listening ports and directory sizes.

use crate::MetricType::{Counter, Gauge, Untyped};
use crate::Unit::{Bytes, None, Seconds};
use crate::{MetricDef, MetricType, Unit};

const fn host(
    name: &'static str,
    metric_type: MetricType,
    unit: Unit,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricDef {
    MetricDef { name, metric_type, unit, help, labels, collector: "host" }
}

const FS: &[&str] = &["device", "fstype", "mountpoint"];
const DEV: &[&str] = &["device"];
const GROUP: &[&str] = &["group"];
const DIR: &[&str] = &["path"];

/// Seconds each CPU spent in each mode, from /proc/stat.
pub const CPU_SECONDS: MetricDef = host(
    "node_cpu_seconds_total",
    Counter,
    Seconds,
    &["cpu", "mode"],
    "Seconds the CPUs spent in each mode.",
);
/// 1-minute load average.
pub const LOAD1: MetricDef = host("node_load1", Gauge, None, &[], "1m load average.");
/// 5-minute load average.
pub const LOAD5: MetricDef = host("node_load5", Gauge, None, &[], "5m load average.");
/// 15-minute load average.
pub const LOAD15: MetricDef = host("node_load15", Gauge, None, &[], "15m load average.");
/// /proc/meminfo MemTotal.
pub const MEM_TOTAL: MetricDef =
    host("node_memory_MemTotal_bytes", Gauge, Bytes, &[], "Memory information field MemTotal_bytes.");
/// /proc/meminfo MemAvailable.
pub const MEM_AVAILABLE: MetricDef =
    host("node_memory_MemAvailable_bytes", Gauge, Bytes, &[], "Memory information field MemAvailable_bytes.");
/// /proc/meminfo MemFree.
pub const MEM_FREE: MetricDef =
    host("node_memory_MemFree_bytes", Gauge, Bytes, &[], "Memory information field MemFree_bytes.");
/// /proc/meminfo Buffers.
pub const MEM_BUFFERS: MetricDef =
    host("node_memory_Buffers_bytes", Gauge, Bytes, &[], "Memory information field Buffers_bytes.");
/// /proc/meminfo Cached.
pub const MEM_CACHED: MetricDef =
    host("node_memory_Cached_bytes", Gauge, Bytes, &[], "Memory information field Cached_bytes.");
/// /proc/meminfo SwapTotal.
pub const SWAP_TOTAL: MetricDef =
    host("node_memory_SwapTotal_bytes", Gauge, Bytes, &[], "Memory information field SwapTotal_bytes.");
/// /proc/meminfo SwapFree.
pub const SWAP_FREE: MetricDef =
    host("node_memory_SwapFree_bytes", Gauge, Bytes, &[], "Memory information field SwapFree_bytes.");
/// /proc/meminfo Slab.
pub const MEM_SLAB: MetricDef =
    host("node_memory_Slab_bytes", Gauge, Bytes, &[], "Memory information field Slab_bytes.");
/// Inodes of a filesystem.
pub const FS_FILES: MetricDef =
    host("node_filesystem_files", Gauge, None, FS, "Filesystem total file nodes.");
/// Free inodes of a filesystem.
pub const FS_FILES_FREE: MetricDef =
    host("node_filesystem_files_free", Gauge, None, FS, "Filesystem total free file nodes.");
/// /proc/diskstats, per block device.
pub const DISK_READS_COMPLETED: MetricDef = host(
    "node_disk_reads_completed_total",
    Counter,
    None,
    DEV,
    "The total number of reads completed successfully.",
);
/// /proc/diskstats, per block device.
pub const DISK_READS_MERGED: MetricDef =
    host("node_disk_reads_merged_total", Counter, None, DEV, "The total number of reads merged.");
/// /proc/diskstats, per block device.
pub const DISK_READ_BYTES: MetricDef =
    host("node_disk_read_bytes_total", Counter, Bytes, DEV, "The total number of bytes read successfully.");
/// /proc/diskstats, per block device.
pub const DISK_READ_TIME: MetricDef = host(
    "node_disk_read_time_seconds_total",
    Counter,
    Seconds,
    DEV,
    "The total number of seconds spent by all reads.",
);
/// /proc/diskstats, per block device.
pub const DISK_WRITES_COMPLETED: MetricDef = host(
    "node_disk_writes_completed_total",
    Counter,
    None,
    DEV,
    "The total number of writes completed successfully.",
);
/// /proc/diskstats, per block device.
pub const DISK_WRITES_MERGED: MetricDef =
    host("node_disk_writes_merged_total", Counter, None, DEV, "The number of writes merged.");
/// /proc/diskstats, per block device.
pub const DISK_WRITTEN_BYTES: MetricDef = host(
    "node_disk_written_bytes_total",
    Counter,
    Bytes,
    DEV,
    "The total number of bytes written successfully.",
);
/// /proc/diskstats, per block device.
pub const DISK_WRITE_TIME: MetricDef = host(
    "node_disk_write_time_seconds_total",
    Counter,
    Seconds,
    DEV,
    "This is the total number of seconds spent by all writes.",
);
/// /proc/diskstats, per block device.
pub const DISK_IO_NOW: MetricDef =
    host("node_disk_io_now", Gauge, None, DEV, "The number of I/Os currently in progress.");
/// /proc/diskstats, per block device.
pub const DISK_IO_TIME: MetricDef =
    host("node_disk_io_time_seconds_total", Counter, Seconds, DEV, "Total seconds spent doing I/Os.");
/// /proc/diskstats, per block device.
pub const DISK_IO_TIME_WEIGHTED: MetricDef = host(
    "node_disk_io_time_weighted_seconds_total",
    Counter,
    Seconds,
    DEV,
    "The weighted # of seconds spent doing I/Os.",
);
/// /proc/diskstats, per block device.
pub const DISK_DISCARDS_COMPLETED: MetricDef = host(
    "node_disk_discards_completed_total",
    Counter,
    None,
    DEV,
    "The total number of discards completed successfully.",
);
/// /proc/diskstats, per block device.
pub const DISK_DISCARDS_MERGED: MetricDef =
    host("node_disk_discards_merged_total", Counter, None, DEV, "The total number of discards merged.");
/// /proc/diskstats, per block device.
pub const DISK_DISCARDED_SECTORS: MetricDef = host(
    "node_disk_discarded_sectors_total",
    Counter,
    None,
    DEV,
    "The total number of sectors discarded successfully.",
);
/// /proc/diskstats, per block device.
pub const DISK_DISCARD_TIME: MetricDef = host(
    "node_disk_discard_time_seconds_total",
    Counter,
    Seconds,
    DEV,
    "This is the total number of seconds spent by all discards.",
);
/// /proc/diskstats, per block device.
pub const DISK_FLUSH_REQUESTS: MetricDef = host(
    "node_disk_flush_requests_total",
    Counter,
    None,
    DEV,
    "The total number of flush requests completed successfully",
);
/// /proc/diskstats, per block device.
pub const DISK_FLUSH_TIME: MetricDef = host(
    "node_disk_flush_requests_time_seconds_total",
    Counter,
    Seconds,
    DEV,
    "This is the total number of seconds spent by all flush requests.",
);
/// /proc/vmstat pgpgin (untyped, as node_exporter emits it).
pub const VMSTAT_PGPGIN: MetricDef =
    host("node_vmstat_pgpgin", Untyped, None, &[], "/proc/vmstat information field pgpgin.");
/// /proc/vmstat pgpgout (untyped, as node_exporter emits it).
pub const VMSTAT_PGPGOUT: MetricDef =
    host("node_vmstat_pgpgout", Untyped, None, &[], "/proc/vmstat information field pgpgout.");
/// /proc/vmstat pswpin (untyped, as node_exporter emits it).
pub const VMSTAT_PSWPIN: MetricDef =
    host("node_vmstat_pswpin", Untyped, None, &[], "/proc/vmstat information field pswpin.");
/// /proc/vmstat pswpout (untyped, as node_exporter emits it).
pub const VMSTAT_PSWPOUT: MetricDef =
    host("node_vmstat_pswpout", Untyped, None, &[], "/proc/vmstat information field pswpout.");
/// /proc/vmstat pgfault (untyped, as node_exporter emits it).
pub const VMSTAT_PGFAULT: MetricDef =
    host("node_vmstat_pgfault", Untyped, None, &[], "/proc/vmstat information field pgfault.");
/// /proc/vmstat pgmajfault (untyped, as node_exporter emits it).
pub const VMSTAT_PGMAJFAULT: MetricDef =
    host("node_vmstat_pgmajfault", Untyped, None, &[], "/proc/vmstat information field pgmajfault.");
/// /proc/vmstat oom_kill (untyped, as node_exporter emits it).
pub const VMSTAT_OOM_KILL: MetricDef =
    host("node_vmstat_oom_kill", Untyped, None, &[], "/proc/vmstat information field oom_kill.");
/// Allocated file handles, from /proc/sys/fs/file-nr.
pub const FILEFD_ALLOCATED: MetricDef =
    host("node_filefd_allocated", Gauge, None, &[], "File descriptor statistics: allocated.");
/// Maximum file handles, from /proc/sys/fs/file-nr.
pub const FILEFD_MAXIMUM: MetricDef =
    host("node_filefd_maximum", Gauge, None, &[], "File descriptor statistics: maximum.");
/// Tracked connections (only while nf_conntrack is loaded).
pub const CONNTRACK_ENTRIES: MetricDef = host(
    "node_nf_conntrack_entries",
    Gauge,
    None,
    &[],
    "Number of currently allocated flow entries for connection tracking.",
);
/// Connection-tracking table size (only while nf_conntrack is loaded).
pub const CONNTRACK_LIMIT: MetricDef =
    host("node_nf_conntrack_entries_limit", Gauge, None, &[], "Maximum size of connection tracking table.");
/// Filesystem size.
pub const FS_SIZE: MetricDef =
    host("node_filesystem_size_bytes", Gauge, Bytes, FS, "Filesystem size in bytes.");
/// Space available to unprivileged users.
pub const FS_AVAIL: MetricDef = host(
    "node_filesystem_avail_bytes",
    Gauge,
    Bytes,
    FS,
    "Filesystem space available to non-root users in bytes.",
);
/// Free space including root-reserved blocks.
pub const FS_FREE: MetricDef =
    host("node_filesystem_free_bytes", Gauge, Bytes, FS, "Filesystem free space in bytes.");
/// 1 when mounted read-only.
pub const FS_READONLY: MetricDef =
    host("node_filesystem_readonly", Gauge, None, FS, "Filesystem read-only status.");
/// 1 when statfs failed or timed out for the mount.
pub const FS_DEVICE_ERROR: MetricDef = host(
    "node_filesystem_device_error",
    Gauge,
    None,
    FS,
    "Whether an error occurred while getting statistics for the given device.",
);
/// Bytes received per interface.
pub const NET_RX_BYTES: MetricDef =
    host("node_network_receive_bytes_total", Counter, Bytes, DEV, "Network device statistic receive_bytes.");
/// Packets received per interface.
pub const NET_RX_PACKETS: MetricDef = host(
    "node_network_receive_packets_total",
    Counter,
    None,
    DEV,
    "Network device statistic receive_packets.",
);
/// Receive errors per interface.
pub const NET_RX_ERRS: MetricDef =
    host("node_network_receive_errs_total", Counter, None, DEV, "Network device statistic receive_errs.");
/// Received packets dropped per interface.
pub const NET_RX_DROP: MetricDef =
    host("node_network_receive_drop_total", Counter, None, DEV, "Network device statistic receive_drop.");
/// Bytes transmitted per interface.
pub const NET_TX_BYTES: MetricDef = host(
    "node_network_transmit_bytes_total",
    Counter,
    Bytes,
    DEV,
    "Network device statistic transmit_bytes.",
);
/// Packets transmitted per interface.
pub const NET_TX_PACKETS: MetricDef = host(
    "node_network_transmit_packets_total",
    Counter,
    None,
    DEV,
    "Network device statistic transmit_packets.",
);
/// Transmit errors per interface.
pub const NET_TX_ERRS: MetricDef =
    host("node_network_transmit_errs_total", Counter, None, DEV, "Network device statistic transmit_errs.");
/// Transmitted packets dropped per interface.
pub const NET_TX_DROP: MetricDef =
    host("node_network_transmit_drop_total", Counter, None, DEV, "Network device statistic transmit_drop.");
/// Boot time as a Unix timestamp.
pub const BOOT_TIME: MetricDef =
    host("node_boot_time_seconds", Gauge, Seconds, &[], "Node boot time, in unixtime.");
/// The host's clock.
pub const TIME: MetricDef =
    host("node_time_seconds", Gauge, Seconds, &[], "System time in seconds since epoch (1970).");
/// uname(2) fields.
pub const UNAME_INFO: MetricDef = host(
    "node_uname_info",
    Gauge,
    None,
    &["domainname", "machine", "nodename", "release", "sysname", "version"],
    "Labeled system information as provided by the uname system call.",
);
/// adjtimex(2): 1 unless the kernel reports the clock unsynchronised (TIME_ERROR).
pub const TIMEX_SYNC_STATUS: MetricDef = host(
    "node_timex_sync_status",
    Gauge,
    None,
    &[],
    "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
);
/// adjtimex(2) offset from the reference clock.
pub const TIMEX_OFFSET: MetricDef = host(
    "node_timex_offset_seconds",
    Gauge,
    Seconds,
    &[],
    "Time offset in between local system and reference clock.",
);
/// adjtimex(2) maximum error.
pub const TIMEX_MAXERROR: MetricDef =
    host("node_timex_maxerror_seconds", Gauge, Seconds, &[], "Maximum error in seconds.");
/// adjtimex(2) estimated error.
pub const TIMEX_ESTERROR: MetricDef =
    host("node_timex_estimated_error_seconds", Gauge, Seconds, &[], "Estimated error in seconds.");
/// adjtimex(2) frequency adjustment as a ratio (1 = none).
pub const TIMEX_FREQUENCY: MetricDef =
    host("node_timex_frequency_adjustment_ratio", Gauge, None, &[], "Local clock frequency adjustment.");
/// adjtimex(2) status bits.
pub const TIMEX_STATUS: MetricDef =
    host("node_timex_status", Gauge, None, &[], "Value of the status array bits.");
/// adjtimex(2) PLL time constant.
pub const TIMEX_LOOP_TIME_CONSTANT: MetricDef =
    host("node_timex_loop_time_constant", Gauge, None, &[], "Phase-locked loop time constant.");
/// adjtimex(2) tick length.
pub const TIMEX_TICK: MetricDef =
    host("node_timex_tick_seconds", Gauge, Seconds, &[], "Seconds between clock ticks.");
/// adjtimex(2) TAI offset.
pub const TIMEX_TAI_OFFSET: MetricDef =
    host("node_timex_tai_offset_seconds", Gauge, Seconds, &[], "International Atomic Time (TAI) offset.");
/// CPU seconds of a configured process group.
pub const PROCESS_CPU: MetricDef = host(
    "opsmon_process_cpu_seconds_total",
    Counter,
    Seconds,
    GROUP,
    "User and system CPU seconds of the processes currently in the group; drops when a member exits.",
);
/// Resident memory of a configured process group.
pub const PROCESS_RESIDENT: MetricDef = host(
    "opsmon_process_resident_memory_bytes",
    Gauge,
    Bytes,
    GROUP,
    "Resident memory of the processes in the group.",
);
/// Number of processes in a configured group.
pub const PROCESS_COUNT: MetricDef = host(
    "opsmon_processes",
    Gauge,
    None,
    GROUP,
    "Number of running processes matching the group (the exporter never counts itself).",
);
/// Whether a configured TCP port has a listening socket.
pub const PORT_LISTENING: MetricDef = host(
    "opsmon_tcp_port_listening",
    Gauge,
    None,
    &["port"],
    "1 when a socket listens on the configured TCP port (IPv4 or IPv6), else 0.",
);
/// Allocated size of a configured directory tree.
pub const DIR_SIZE: MetricDef = host(
    "opsmon_directory_size_bytes",
    Gauge,
    Bytes,
    DIR,
    "Disk space allocated to the files under the configured directory, like du.",
);
/// Entries seen while sizing a configured directory.
pub const DIR_ENTRIES: MetricDef = host(
    "opsmon_directory_entries",
    Gauge,
    None,
    DIR,
    "Files and directories seen under the configured directory.",
);
/// Whether the last directory walk finished within its budgets.
pub const DIR_COMPLETE: MetricDef = host(
    "opsmon_directory_scan_complete",
    Gauge,
    None,
    DIR,
    "1 when the last walk finished within its time and entry budgets; 0 means the size is a lower bound.",
);
/// When the directory was last measured.
pub const DIR_SCAN_TIMESTAMP: MetricDef = host(
    "opsmon_directory_scan_timestamp_seconds",
    Gauge,
    Seconds,
    DIR,
    "Unix time of the walk the size comes from.",
);

/// All host families.
pub const METRICS: &[MetricDef] = &[
    CPU_SECONDS,
    LOAD1,
    LOAD5,
    LOAD15,
    MEM_TOTAL,
    MEM_AVAILABLE,
    MEM_FREE,
    MEM_BUFFERS,
    MEM_CACHED,
    SWAP_TOTAL,
    SWAP_FREE,
    FS_SIZE,
    FS_AVAIL,
    FS_FREE,
    FS_READONLY,
    FS_DEVICE_ERROR,
    NET_RX_BYTES,
    NET_RX_PACKETS,
    NET_RX_ERRS,
    NET_RX_DROP,
    NET_TX_BYTES,
    NET_TX_PACKETS,
    NET_TX_ERRS,
    NET_TX_DROP,
    BOOT_TIME,
    TIME,
    UNAME_INFO,
    PROCESS_CPU,
    PROCESS_RESIDENT,
    PROCESS_COUNT,
    PORT_LISTENING,
    DIR_SIZE,
    DIR_ENTRIES,
    DIR_COMPLETE,
    DIR_SCAN_TIMESTAMP,
    MEM_SLAB,
    FS_FILES,
    FS_FILES_FREE,
    DISK_READS_COMPLETED,
    DISK_READS_MERGED,
    DISK_READ_BYTES,
    DISK_READ_TIME,
    DISK_WRITES_COMPLETED,
    DISK_WRITES_MERGED,
    DISK_WRITTEN_BYTES,
    DISK_WRITE_TIME,
    DISK_IO_NOW,
    DISK_IO_TIME,
    DISK_IO_TIME_WEIGHTED,
    DISK_DISCARDS_COMPLETED,
    DISK_DISCARDS_MERGED,
    DISK_DISCARDED_SECTORS,
    DISK_DISCARD_TIME,
    DISK_FLUSH_REQUESTS,
    DISK_FLUSH_TIME,
    VMSTAT_PGPGIN,
    VMSTAT_PGPGOUT,
    VMSTAT_PSWPIN,
    VMSTAT_PSWPOUT,
    VMSTAT_PGFAULT,
    VMSTAT_PGMAJFAULT,
    VMSTAT_OOM_KILL,
    FILEFD_ALLOCATED,
    FILEFD_MAXIMUM,
    CONNTRACK_ENTRIES,
    TIMEX_SYNC_STATUS,
    TIMEX_OFFSET,
    TIMEX_MAXERROR,
    TIMEX_ESTERROR,
    TIMEX_FREQUENCY,
    TIMEX_STATUS,
    TIMEX_LOOP_TIME_CONSTANT,
    TIMEX_TICK,
    TIMEX_TAI_OFFSET,
    CONNTRACK_LIMIT,
];
