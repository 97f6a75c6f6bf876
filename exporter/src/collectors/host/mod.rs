//! The host collector: CPU, load, memory, filesystems, network, block
//! devices, vmstat, file handles, connection tracking, boot time, clock and
//! uname and the kernel clock (timex) with node_exporter's names, plus
//! opsmon's process groups, listening ports and directory sizes. Reads /proc
//! and statfs directly, under the `--path.*` prefixes ([`paths`]) so that it
//! can watch a host mounted into a container.

mod config;
pub mod directories;
pub mod filesystem;
pub mod kernel_files;
pub mod mount_table;
pub mod paths;
pub mod processes;
pub mod procfs;
pub mod sockdiag;
pub mod timex;

use std::collections::BTreeSet;
use std::time::SystemTime;

use opsmon_catalog::host;
use tokio::time::Instant;

pub use config::{
    DEFAULT_FS_TYPES_EXCLUDE, DEFAULT_MOUNT_POINTS_EXCLUDE, DirectoryConfig, FilesystemConfig, HostConfig,
    MAX_ENTRIES_LIMIT, ProcessGroupConfig,
};
pub use paths::HostPaths;

use crate::collectors::collector::{
    BoxFuture, CollectError, Collected, Collector, blocking, read_kernel_file,
};
use crate::config::Problem;
use crate::metrics::MetricSet;
use kernel_files::KernelFiles;

/// Collects host metrics.
#[derive(Debug)]
pub struct HostCollector {
    filesystems: filesystem::Filesystems,
    directories: directories::Directories,
    process_groups: std::sync::Arc<processes::ProcessGroups>,
    listen_ports: std::sync::Arc<Vec<u16>>,
    paths: std::sync::Arc<HostPaths>,
    kernel_files: std::sync::Arc<KernelFiles>,
    ticks_per_second: f64,
    page_size: f64,
}

impl HostCollector {
    /// A collector for `config`, or every problem with it.
    pub fn new(config: HostConfig) -> Result<Self, Vec<Problem>> {
        let problems = config.check();
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            filesystems: filesystem::Filesystems::new(config.filesystem, config.paths.clone()),
            directories: directories::Directories::new(config.directories),
            process_groups: std::sync::Arc::new(processes::ProcessGroups::new(config.process_groups)),
            listen_ports: std::sync::Arc::new(config.listen_ports),
            kernel_files: std::sync::Arc::new(KernelFiles::new(config.paths.procfs.clone())),
            paths: std::sync::Arc::new(config.paths),
            ticks_per_second: rustix::param::clock_ticks_per_second() as f64,
            page_size: rustix::param::page_size() as f64,
        })
    }
}

impl Collector for HostCollector {
    fn name(&self) -> &'static str {
        "host"
    }

    fn reads_locally(&self) -> bool {
        true
    }

    fn collect(&self, deadline: Instant) -> BoxFuture<'_, Collected> {
        Box::pin(async move {
            // A host that is not where the flags say (a container started
            // without its mounts) yields no families at all: half a host read
            // from the container's own /proc and / would look healthy.
            if let Err(missing) = self.host_is_mounted() {
                return Collected { metrics: MetricSet::new(), error: Some(missing) };
            }
            let groups = std::sync::Arc::clone(&self.process_groups);
            let ports = std::sync::Arc::clone(&self.listen_ports);
            let paths = std::sync::Arc::clone(&self.paths);
            let files = std::sync::Arc::clone(&self.kernel_files);
            let (ticks, page) = (self.ticks_per_second, self.page_size);
            let proc_files = blocking(move || read_proc_files(&paths, &files, &groups, &ports, ticks, page));
            let mut fs_metrics = MetricSet::new();
            let filesystems = self.filesystems.collect(&mut fs_metrics, deadline);
            let mut dir_metrics = MetricSet::new();
            let dirs = self.directories.collect(&mut dir_metrics, deadline);
            let (proc_result, fs_result, dir_error) = tokio::join!(proc_files, filesystems, dirs);

            let mut collected = Collected::default();
            match proc_result {
                Ok((metrics, error)) => {
                    collected.metrics = metrics;
                    collected.error = error;
                }
                Err(e) => collected.error = Some(e),
            }
            collected.metrics.extend(fs_metrics);
            collected.metrics.extend(dir_metrics);
            if let Err(e) = fs_result {
                collected.error.get_or_insert(e);
            }
            if let Some(e) = dir_error {
                collected.error.get_or_insert(CollectError::Parse(format!("directory size: {e}")));
            }
            collected
        })
    }
}

impl HostCollector {
    /// Whether the host's procfs and rootfs are where `--path.procfs` and
    /// `--path.rootfs` say; the error names the path and the flag.
    fn host_is_mounted(&self) -> Result<(), CollectError> {
        let stat = self.paths.proc("stat");
        if let Err(e) = std::fs::metadata(&stat) {
            return Err(CollectError::io(
                format!(
                    "host procfs not found at {} (--path.procfs); mount the host's /proc there read-only or point the flag at it",
                    self.paths.procfs.display()
                ),
                e,
            ));
        }
        match std::fs::metadata(&self.paths.rootfs) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(CollectError::io(
                format!("host rootfs {} (--path.rootfs)", self.paths.rootfs.display()),
                std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            )),
            Err(e) => Err(CollectError::io(
                format!(
                    "host rootfs not found at {} (--path.rootfs); mount the host's / there read-only or point the flag at it",
                    self.paths.rootfs.display()
                ),
                e,
            )),
        }
    }
}

/// Reads every /proc source on a blocking thread. Each source fails alone:
/// its families are left out and the first error is returned beside the rest.
fn read_proc_files(
    paths: &HostPaths,
    files: &KernelFiles,
    groups: &processes::ProcessGroups,
    ports: &[u16],
    ticks_per_second: f64,
    page_size: f64,
) -> (MetricSet, Option<CollectError>) {
    let mut out = MetricSet::new();
    let mut first_error = None;
    let mut note = |result: Result<(), CollectError>| {
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    };
    note(cpu_and_boot_time(files, &mut out, ticks_per_second));
    note(load(files, &mut out));
    note(memory(files, &mut out));
    note(network(files, &mut out));
    note(disks(files, &mut out));
    vmstat(files, &mut out);
    note(file_handles(files, &mut out));
    conntrack(files, &mut out);
    uname_and_time(&mut out);
    note(timex::collect(&mut out));
    note(
        groups
            .collect(&paths.procfs, &mut out, ticks_per_second, page_size)
            .map_err(|e| CollectError::io(paths.procfs.display().to_string(), e)),
    );
    note(listening(paths, &mut out, ports));
    (out, first_error)
}

fn cpu_and_boot_time(
    files: &KernelFiles,
    out: &mut MetricSet,
    ticks_per_second: f64,
) -> Result<(), CollectError> {
    let stat = procfs::parse_stat(&files.read("stat")?).map_err(CollectError::Parse)?;
    let mut family = out.family(&host::CPU_SECONDS);
    for cpu in stat.cpus {
        let label: crate::metrics::LabelValue = cpu.cpu.into();
        for (mode, ticks) in procfs::CPU_MODES.iter().zip(cpu.ticks) {
            family.number(vec![label.clone(), (*mode).into()], ticks as f64 / ticks_per_second);
        }
    }
    if let Some(boot_time) = stat.boot_time {
        out.single(&host::BOOT_TIME, boot_time as f64);
    }
    Ok(())
}

fn load(files: &KernelFiles, out: &mut MetricSet) -> Result<(), CollectError> {
    let [one, five, fifteen] = procfs::parse_loadavg(&files.read("loadavg")?).map_err(CollectError::Parse)?;
    out.single(&host::LOAD1, one);
    out.single(&host::LOAD5, five);
    out.single(&host::LOAD15, fifteen);
    Ok(())
}

fn memory(files: &KernelFiles, out: &mut MetricSet) -> Result<(), CollectError> {
    let text = files.read("meminfo")?;
    let fields = procfs::parse_meminfo(&text);
    let wanted = [
        ("MemTotal", &host::MEM_TOTAL),
        ("MemAvailable", &host::MEM_AVAILABLE),
        ("MemFree", &host::MEM_FREE),
        ("Buffers", &host::MEM_BUFFERS),
        ("Cached", &host::MEM_CACHED),
        ("SwapTotal", &host::SWAP_TOTAL),
        ("SwapFree", &host::SWAP_FREE),
        ("Slab", &host::MEM_SLAB),
    ];
    for (field, def) in wanted {
        if let Some((_, bytes)) = fields.iter().find(|(key, _)| *key == field) {
            out.single(def, *bytes);
        }
    }
    Ok(())
}

fn network(files: &KernelFiles, out: &mut MetricSet) -> Result<(), CollectError> {
    let devices = procfs::parse_net_dev(&files.read("net/dev")?).map_err(CollectError::Parse)?;
    let defs = [
        [&host::NET_RX_BYTES, &host::NET_RX_PACKETS, &host::NET_RX_ERRS, &host::NET_RX_DROP],
        [&host::NET_TX_BYTES, &host::NET_TX_PACKETS, &host::NET_TX_ERRS, &host::NET_TX_DROP],
    ];
    for (direction, defs) in defs.iter().enumerate() {
        for (column, def) in defs.iter().enumerate() {
            let mut family = out.family(def);
            for device in &devices {
                let counters = if direction == 0 { &device.receive } else { &device.transmit };
                family.number(vec![device.device.clone().into()], counters[column] as f64);
            }
        }
    }
    Ok(())
}

/// The /proc/diskstats columns node_exporter reports, in the kernel's order,
/// with the factor from the kernel's unit (sectors of 512 bytes, milliseconds).
const DISK_COLUMNS: [(&opsmon_catalog::MetricDef, f64); 17] = [
    (&host::DISK_READS_COMPLETED, 1.0),
    (&host::DISK_READS_MERGED, 1.0),
    (&host::DISK_READ_BYTES, 512.0),
    (&host::DISK_READ_TIME, 0.001),
    (&host::DISK_WRITES_COMPLETED, 1.0),
    (&host::DISK_WRITES_MERGED, 1.0),
    (&host::DISK_WRITTEN_BYTES, 512.0),
    (&host::DISK_WRITE_TIME, 0.001),
    (&host::DISK_IO_NOW, 1.0),
    (&host::DISK_IO_TIME, 0.001),
    (&host::DISK_IO_TIME_WEIGHTED, 0.001),
    (&host::DISK_DISCARDS_COMPLETED, 1.0),
    (&host::DISK_DISCARDS_MERGED, 1.0),
    (&host::DISK_DISCARDED_SECTORS, 1.0),
    (&host::DISK_DISCARD_TIME, 0.001),
    (&host::DISK_FLUSH_REQUESTS, 1.0),
    (&host::DISK_FLUSH_TIME, 0.001),
];

/// Block devices; columns an older kernel lacks leave their families out.
fn disks(files: &KernelFiles, out: &mut MetricSet) -> Result<(), CollectError> {
    let devices = procfs::parse_diskstats(&files.read("diskstats")?);
    for (column, (def, factor)) in DISK_COLUMNS.iter().enumerate() {
        if !devices.iter().any(|d| d.counters.len() > column) {
            continue;
        }
        let mut family = out.family(def);
        for device in &devices {
            if let Some(value) = device.counters.get(column) {
                family.number(vec![device.device.clone().into()], *value as f64 * factor);
            }
        }
    }
    Ok(())
}

/// node_exporter's default vmstat fields (`^(oom_kill|pgpg|pswp|pg.*fault).*`)
/// that this kernel has. A kernel without /proc/vmstat has none of them.
fn vmstat(files: &KernelFiles, out: &mut MetricSet) {
    let Ok(text) = files.read("vmstat") else { return };
    let wanted = [
        ("pgpgin", &host::VMSTAT_PGPGIN),
        ("pgpgout", &host::VMSTAT_PGPGOUT),
        ("pswpin", &host::VMSTAT_PSWPIN),
        ("pswpout", &host::VMSTAT_PSWPOUT),
        ("pgfault", &host::VMSTAT_PGFAULT),
        ("pgmajfault", &host::VMSTAT_PGMAJFAULT),
        ("oom_kill", &host::VMSTAT_OOM_KILL),
    ];
    let fields = procfs::parse_vmstat(&text);
    for (field, def) in wanted {
        if let Some((_, value)) = fields.iter().find(|(key, _)| *key == field) {
            out.single(def, *value);
        }
    }
}

fn file_handles(files: &KernelFiles, out: &mut MetricSet) -> Result<(), CollectError> {
    let (allocated, maximum) =
        procfs::parse_file_nr(&files.read("sys/fs/file-nr")?).map_err(CollectError::Parse)?;
    out.single(&host::FILEFD_ALLOCATED, allocated);
    out.single(&host::FILEFD_MAXIMUM, maximum);
    Ok(())
}

/// Connection tracking, only while the nf_conntrack module is loaded (its
/// files are absent otherwise, which is no error).
fn conntrack(files: &KernelFiles, out: &mut MetricSet) {
    let number = |file: &'static str| files.read(file).ok()?.trim().parse::<f64>().ok();
    if let Some(entries) = number("sys/net/netfilter/nf_conntrack_count") {
        out.single(&host::CONNTRACK_ENTRIES, entries);
    }
    if let Some(limit) = number("sys/net/netfilter/nf_conntrack_max") {
        out.single(&host::CONNTRACK_LIMIT, limit);
    }
}

fn uname_and_time(out: &mut MetricSet) {
    let uname = rustix::system::uname();
    let field = |value: &std::ffi::CStr| value.to_string_lossy().into_owned().into();
    out.family(&host::UNAME_INFO).number(
        vec![
            field(uname.domainname()),
            field(uname.machine()),
            field(uname.nodename()),
            field(uname.release()),
            field(uname.sysname()),
            field(uname.version()),
        ],
        1.0,
    );
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    out.single(&host::TIME, now.as_secs_f64());
}

/// How long the kernel may take to list its listening sockets.
const SOCK_DIAG_BUDGET: std::time::Duration = std::time::Duration::from_secs(1);

fn listening(paths: &HostPaths, out: &mut MetricSet, ports: &[u16]) -> Result<(), CollectError> {
    if ports.is_empty() {
        return Ok(());
    }
    let mut error = None;
    let listening = match sockdiag::listening_ports(SOCK_DIAG_BUDGET) {
        Ok(listening) => listening,
        Err(netlink_error) => {
            static LOGGED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
            if !LOGGED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::info!(error = %netlink_error, "sock_diag netlink refused; listening ports come from /proc/net/tcp (slower on hosts with many connections; allow AF_NETLINK)");
            }
            let mut listening = BTreeSet::new();
            for file in ["net/tcp", "net/tcp6"] {
                let path = paths.proc(file);
                match read_kernel_file(&path) {
                    Ok(text) => procfs::parse_listening_ports(&text, &mut listening),
                    // A host without IPv6 has no tcp6 file; that is not an error.
                    Err(e) if file.ends_with('6') && e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => error = Some(CollectError::io(path.display().to_string(), e)),
                }
            }
            listening
        }
    };
    let mut family = out.family(&host::PORT_LISTENING);
    for port in ports {
        family.number(vec![port.to_string().into()], if listening.contains(port) { 1.0 } else { 0.0 });
    }
    error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Config;
    use std::path::Path;
    use std::time::Duration;

    #[tokio::test]
    async fn collects_every_host_family_on_this_machine() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let open = listener.local_addr().expect("addr").port();
        let closed =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let dir = std::env::temp_dir();
        // Only this test binary runs from its own file name; it must not count itself.
        let exe = std::env::current_exe().expect("exe");
        let me = regex::escape(&exe.file_name().expect("name").to_string_lossy());
        let yaml = format!(
            "collectors:\n  host:\n    listen_ports: [{open}, {closed}]\n    process_groups:\n      - name: me\n        cmdline: '{me}'\n    directories:\n      - path: {}\n        max_entries: 50\n",
            dir.display()
        );
        let config = Config::parse(Path::new("test.yml"), &yaml).expect("valid");
        let collector = HostCollector::new(config.collectors.host).expect("valid");
        let collected = collector.collect(Instant::now() + Duration::from_secs(5)).await;
        assert!(collected.error.is_none(), "{:?}", collected.error);
        let text = collected.metrics.encode_text();
        let conntrack_loaded = Path::new("/proc/sys/net/netfilter/nf_conntrack_count").exists();
        for def in opsmon_catalog::for_collector("host") {
            if def.name.starts_with("node_nf_conntrack") && !conntrack_loaded {
                continue;
            }
            assert!(text.contains(&format!("\n{}", def.name)), "{} missing from:\n{text}", def.name);
        }
        assert!(text.contains(&format!("opsmon_tcp_port_listening{{port=\"{open}\"}} 1")), "{text}");
        assert!(text.contains(&format!("opsmon_tcp_port_listening{{port=\"{closed}\"}} 0")), "{text}");
        assert!(
            text.contains("opsmon_processes{group=\"me\"} 0\n"),
            "the test binary is never its own group: {text}"
        );
        drop(listener);
    }
}
