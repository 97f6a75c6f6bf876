//! Filesystem space per mount. Each statfs runs on its own blocking thread
//! under a timeout; a mount that does not answer (a dead NFS server) is
//! reported as `node_filesystem_device_error 1` and not asked again until its
//! stuck call returns, so one hung mount can never stall the scrape.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opsmon_catalog::host;
use tokio::time::Instant;

use super::FilesystemConfig;
use super::mount_table::MountTable;
use super::paths::HostPaths;
use super::procfs::Mount;
use crate::collectors::collector::{CollectError, lock};
use crate::metrics::{LabelValue, MetricSet};

/// Space figures of one filesystem, in bytes, and its inode counts.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Space {
    size: f64,
    free: f64,
    avail: f64,
    files: f64,
    files_free: f64,
}

/// How a mount's space is read; a plain function so tests can stand in a hung mount.
type StatFn = fn(&Path) -> std::io::Result<Space>;

fn statvfs(mount_point: &Path) -> std::io::Result<Space> {
    let stat = rustix::fs::statvfs(mount_point)?;
    let block = stat.f_frsize as f64;
    Ok(Space {
        size: stat.f_blocks as f64 * block,
        free: stat.f_bfree as f64 * block,
        avail: stat.f_bavail as f64 * block,
        files: stat.f_files as f64,
        files_free: stat.f_ffree as f64,
    })
}

/// Reads mounts and statfs results.
#[derive(Debug)]
pub struct Filesystems {
    config: FilesystemConfig,
    paths: HostPaths,
    stuck: Arc<Mutex<HashSet<String>>>,
    stat: StatFn,
    /// PID 1's mounts, read again when the kernel reports a change.
    mount_table: MountTable,
}

impl Filesystems {
    /// A reader with the given selection, of the host found at `paths`.
    pub fn new(config: FilesystemConfig, paths: HostPaths) -> Self {
        let mount_table = MountTable::new(paths.procfs.clone());
        Self { config, paths, stuck: Arc::default(), stat: statvfs, mount_table }
    }

    /// Mounts that pass the exclusion patterns, first occurrence of each
    /// (device, mount point, type) only, as node_exporter reports them, with
    /// mount points as the host names them (the rootfs prefix removed).
    pub fn select(&self, mounts: Vec<Mount>) -> Vec<Mount> {
        let mut seen = HashSet::new();
        mounts
            .into_iter()
            .map(|m| Mount { mount_point: self.paths.host_mount_point(&m.mount_point), ..m })
            .filter(|m| !self.config.mount_points_exclude.0.is_match(&m.mount_point))
            .filter(|m| !self.config.fs_types_exclude.0.is_match(&m.fs_type))
            .filter(|m| seen.insert((m.device.clone(), m.mount_point.clone(), m.fs_type.clone())))
            .collect()
    }

    /// Adds the filesystem families to `out`.
    pub async fn collect(&self, out: &mut MetricSet, deadline: Instant) -> Result<(), CollectError> {
        let mounts = self.mount_table.current(|mounts| self.select(mounts))?;
        self.collect_mounts(&mounts, out, deadline).await;
        Ok(())
    }

    /// Adds the filesystem families of `mounts` to `out`. Every mount is asked
    /// at once, each under its own timeout, so a hung one delays no other.
    async fn collect_mounts(&self, mounts: &[Mount], out: &mut MetricSet, deadline: Instant) {
        let timeout = self.config.statfs_timeout.0;
        let pending: Vec<_> = mounts
            .iter()
            .map(|mount| tokio::spawn(self.statfs(mount.mount_point.clone(), timeout, deadline)))
            .collect();
        let mut results = Vec::with_capacity(mounts.len());
        for call in pending {
            results.push(call.await.unwrap_or(None));
        }

        let labels = |m: &Mount| -> Vec<LabelValue> {
            vec![m.device.clone().into(), m.fs_type.clone().into(), m.mount_point.clone().into()]
        };
        let ok: Vec<(&Mount, Space)> =
            mounts.iter().zip(&results).filter_map(|(m, r)| r.map(|space| (m, space))).collect();
        let mut family = out.family(&host::FS_SIZE);
        for (mount, space) in &ok {
            family.number(labels(mount), space.size);
        }
        let mut family = out.family(&host::FS_FREE);
        for (mount, space) in &ok {
            family.number(labels(mount), space.free);
        }
        let mut family = out.family(&host::FS_AVAIL);
        for (mount, space) in &ok {
            family.number(labels(mount), space.avail);
        }
        let mut family = out.family(&host::FS_FILES);
        for (mount, space) in &ok {
            family.number(labels(mount), space.files);
        }
        let mut family = out.family(&host::FS_FILES_FREE);
        for (mount, space) in &ok {
            family.number(labels(mount), space.files_free);
        }
        let mut family = out.family(&host::FS_READONLY);
        for (mount, _) in &ok {
            family.number(labels(mount), if mount.read_only { 1.0 } else { 0.0 });
        }
        let mut family = out.family(&host::FS_DEVICE_ERROR);
        for (mount, result) in mounts.iter().zip(&results) {
            family.number(labels(mount), if result.is_some() { 0.0 } else { 1.0 });
        }
    }

    /// statfs of one mount point, or `None` when it failed, timed out or is
    /// still stuck from an earlier scrape.
    fn statfs(
        &self,
        mount_point: String,
        timeout: Duration,
        deadline: Instant,
    ) -> impl Future<Output = Option<Space>> + use<> {
        let stuck = Arc::clone(&self.stuck);
        let stat = self.stat;
        let reachable = self.paths.reachable(&mount_point);
        async move {
            if lock(&stuck).contains(&mount_point) {
                tracing::debug!(mount_point, "statfs still hanging from an earlier scrape; skipped");
                return None;
            }
            // `done` and the stuck set change only under the set's lock, so a call
            // that returns just as its timeout fires is never marked stuck forever.
            let done = Arc::new(AtomicBool::new(false));
            let (path, set, finished) = (mount_point.clone(), Arc::clone(&stuck), Arc::clone(&done));
            let call = tokio::task::spawn_blocking(move || {
                let result = stat(&reachable);
                let mut stuck = lock(&set);
                finished.store(true, Ordering::Relaxed);
                stuck.remove(&path);
                result
            });
            let limit = (Instant::now() + timeout).min(deadline);
            match tokio::time::timeout_at(limit, call).await {
                Ok(Ok(Ok(space))) => Some(space),
                Ok(Ok(Err(errno))) => {
                    tracing::debug!(mount_point, error = %errno, "statfs failed");
                    None
                }
                Ok(Err(_join)) => None,
                Err(_elapsed) => {
                    let mut set = lock(&stuck);
                    if !done.load(Ordering::Relaxed) {
                        set.insert(mount_point.clone());
                    }
                    tracing::warn!(mount_point, ?timeout, "statfs timed out; mount skipped until it answers");
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::host::procfs::parse_mounts;

    #[test]
    fn pseudo_filesystems_and_duplicates_are_excluded_by_default() {
        let fs = Filesystems::new(FilesystemConfig::default(), HostPaths::default());
        let mounts = parse_mounts(
            "proc /proc proc rw 0 0\n/dev/vda1 / ext4 rw 0 0\n/dev/vda1 / ext4 rw 0 0\ntmpfs /run tmpfs rw 0 0\n\
             tmpfs /dev/shm tmpfs rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw 0 0\noverlay /var/lib/docker/overlay2/x/merged overlay rw 0 0\n",
        );
        let kept: Vec<String> = fs.select(mounts).into_iter().map(|m| m.mount_point).collect();
        assert_eq!(kept, vec!["/", "/run"]);
    }

    fn stand_in(mount_point: &Path) -> std::io::Result<Space> {
        if mount_point == Path::new("/hung") {
            // A dead NFS server: the call returns only much later.
            std::thread::sleep(Duration::from_millis(800));
        }
        Ok(Space { size: 100.0, free: 40.0, avail: 30.0, files: 10.0, files_free: 4.0 })
    }

    fn value(text: &str, family: &str, mount_point: &str) -> Option<String> {
        text.lines()
            .find(|l| l.starts_with(family) && l.contains(&format!("mountpoint=\"{mount_point}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hung_mount_delays_no_other_and_is_skipped_until_it_answers() {
        let mut config = FilesystemConfig::default();
        config.statfs_timeout = crate::config::ConfigDuration(Duration::from_millis(100));
        let fs = Filesystems { stat: stand_in, ..Filesystems::new(config, HostPaths::default()) };
        let mounts =
            parse_mounts("/dev/a /a ext4 rw 0 0\nserver:/x /hung nfs rw 0 0\n/dev/b /b ext4 ro 0 0\n");

        let started = std::time::Instant::now();
        let mut out = MetricSet::new();
        fs.collect_mounts(&mounts, &mut out, Instant::now() + Duration::from_secs(5)).await;
        assert!(started.elapsed() < Duration::from_millis(400), "{:?}", started.elapsed());
        let text = out.encode_text();
        assert_eq!(value(&text, "node_filesystem_size_bytes", "/a").as_deref(), Some("100"), "{text}");
        assert_eq!(value(&text, "node_filesystem_size_bytes", "/b").as_deref(), Some("100"), "{text}");
        assert_eq!(value(&text, "node_filesystem_readonly", "/b").as_deref(), Some("1"), "{text}");
        assert_eq!(value(&text, "node_filesystem_size_bytes", "/hung"), None, "{text}");
        assert_eq!(value(&text, "node_filesystem_device_error", "/hung").as_deref(), Some("1"), "{text}");

        // Still hanging: skipped at once instead of stacking another blocked call.
        let started = std::time::Instant::now();
        let mut out = MetricSet::new();
        fs.collect_mounts(&mounts, &mut out, Instant::now() + Duration::from_secs(5)).await;
        assert!(started.elapsed() < Duration::from_millis(50), "{:?}", started.elapsed());
        assert_eq!(value(&out.encode_text(), "node_filesystem_device_error", "/hung").as_deref(), Some("1"));

        // Once the stuck call returns, the mount is asked again.
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(lock(&fs.stuck).is_empty(), "the returning call clears the mark");
    }

    #[tokio::test]
    async fn root_filesystem_has_space() {
        let fs = Filesystems::new(FilesystemConfig::default(), HostPaths::default());
        let mut out = MetricSet::new();
        fs.collect(&mut out, Instant::now() + Duration::from_secs(5)).await.expect("collects");
        let text = out.encode_text();
        assert!(text.contains("node_filesystem_size_bytes{device="), "{text}");
        assert!(text.contains("mountpoint=\"/\"}"), "{text}");
    }
}
