//! Filesystem space per mount. Each statfs has its own timeout: a mount that
//! does not answer in time (a dead NFS server) is reported as
//! `node_filesystem_device_error 1` and not asked again until its stuck call
//! returns, so one hung mount can never stall the scrape. Local filesystems
//! take their turns on one blocking thread, and the ones after a hung call go
//! on at once on another; network and FUSE filesystems, which may wait on a
//! server, have a thread each. One thread for the local mounts, not one per
//! mount: handing a call to a thread and back cost more than the call (6.5–7.4
//! against 7.4–9.6 µs of CPU per mount in `opsmon-bench --sweep mounts`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opsmon_catalog::host;
use tokio::sync::mpsc;
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

    /// Adds the filesystem families of `mounts` to `out`. Each mount's statfs
    /// has its own timeout, so a hung one delays no other.
    async fn collect_mounts(&self, mounts: &[Mount], out: &mut MetricSet, deadline: Instant) {
        let results = self.statfs_all(mounts, deadline).await;

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

    /// statfs of every mount, in order: `None` for a mount that failed, timed
    /// out or is still stuck from an earlier scrape. Local filesystems take
    /// their turns on one blocking thread; each network, FUSE or unknown one
    /// has a thread of its own, since a slow server should not make the
    /// mounts after it wait (see [`statfs_in_turn`]).
    async fn statfs_all(&self, mounts: &[Mount], deadline: Instant) -> Vec<Option<Space>> {
        let mut local = Vec::new();
        let mut turns = Vec::new();
        {
            let stuck = lock(&self.stuck);
            for (index, mount) in mounts.iter().enumerate() {
                if stuck.contains(&mount.mount_point) {
                    tracing::debug!(
                        mount_point = mount.mount_point,
                        "statfs still hanging from an earlier scrape; skipped"
                    );
                    continue;
                }
                let call = (index, mount.mount_point.clone(), self.paths.reachable(&mount.mount_point));
                if is_local(&mount.fs_type) { local.push(call) } else { turns.push(vec![call]) }
            }
        }
        if !local.is_empty() {
            turns.push(local);
        }
        let timeout = self.config.statfs_timeout.0;
        let mut running = tokio::task::JoinSet::new();
        for calls in turns {
            running.spawn(statfs_in_turn(calls, self.stat, Arc::clone(&self.stuck), timeout, deadline));
        }
        let mut results: Vec<Option<Space>> = vec![None; mounts.len()];
        while let Some(answered) = running.join_next().await {
            for (index, space) in answered.unwrap_or_default() {
                results[index] = space;
            }
        }
        results
    }
}

/// Filesystems whose statfs the kernel answers from memory: they share one
/// thread. Any other type (NFS, CIFS, FUSE, Ceph, one not listed) may wait on
/// a server and gets a thread of its own.
fn is_local(fs_type: &str) -> bool {
    matches!(
        fs_type,
        "ext2"
            | "ext3"
            | "ext4"
            | "xfs"
            | "btrfs"
            | "zfs"
            | "f2fs"
            | "jfs"
            | "reiserfs"
            | "bcachefs"
            | "vfat"
            | "exfat"
            | "ntfs"
            | "ntfs3"
            | "tmpfs"
            | "ramfs"
            | "squashfs"
            | "erofs"
            | "iso9660"
            | "udf"
            | "overlay"
            | "hugetlbfs"
    )
}

/// statfs of `calls` (index, mount point, path to ask) in turn on one blocking
/// thread, each under `timeout` and the scrape's `deadline`: the spaces found,
/// by index (`None` for a failure). When a call outlives its time, its mount
/// is marked stuck and the calls after it are handed to a new thread; a stuck
/// call clears its mark when it returns.
async fn statfs_in_turn(
    mut calls: Vec<(usize, String, PathBuf)>,
    stat: StatFn,
    stuck: Arc<Mutex<HashSet<String>>>,
    timeout: Duration,
    deadline: Instant,
) -> Vec<(usize, Option<Space>)> {
    let mut found = Vec::with_capacity(calls.len());
    while !calls.is_empty() {
        let (answers, mut received) = mpsc::unbounded_channel();
        let (set, batch) = (Arc::clone(&stuck), calls.clone());
        // The thread is not awaited: a stuck one is left to finish alone.
        drop(crate::collectors::reader_thread::spawn_reader(move || {
            for (index, mount_point, reachable) in batch {
                let result = stat(&reachable);
                // Under the stuck set's lock, so that the waiting side sees
                // either this answer or, having given up, a closed channel.
                let mut stuck = lock(&set);
                stuck.remove(&mount_point);
                if answers.send((index, mount_point, result)).is_err() {
                    return;
                }
            }
        }));
        let mut answered = 0;
        let mut take = |(index, mount_point, result): (usize, String, std::io::Result<Space>)| {
            let space = result.map_err(|error| tracing::debug!(mount_point, %error, "statfs failed")).ok();
            found.push((index, space));
            answered += 1;
        };
        let timed_out = loop {
            let limit = (Instant::now() + timeout).min(deadline);
            match tokio::time::timeout_at(limit, received.recv()).await {
                Ok(Some(answer)) => take(answer),
                Ok(None) => break false,
                Err(_elapsed) => break true,
            }
        };
        if !timed_out {
            break;
        }
        // Take what arrived meanwhile; the first call still unanswered is the
        // one that hangs.
        let mut marked = lock(&stuck);
        while let Ok(answer) = received.try_recv() {
            take(answer);
        }
        received.close();
        let Some((_, mount_point, _)) = calls.get(answered) else { break };
        marked.insert(mount_point.clone());
        drop(marked);
        tracing::warn!(mount_point, ?timeout, "statfs timed out; mount skipped until it answers");
        calls.drain(..=answered);
        if Instant::now() >= deadline {
            break;
        }
    }
    found
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

    /// Threads that ran a statfs of a mount `/one-thread/mN` (only one test
    /// mounts those, so tests running at once do not mix their records).
    static STAT_THREADS: Mutex<Vec<std::thread::ThreadId>> = Mutex::new(Vec::new());

    fn recording_stand_in(mount_point: &Path) -> std::io::Result<Space> {
        let mount_point = mount_point.to_string_lossy();
        if mount_point.starts_with("/one-thread/m") {
            lock(&STAT_THREADS).push(std::thread::current().id());
        }
        if mount_point.starts_with("/one-thread/hung") {
            std::thread::sleep(Duration::from_millis(1500));
        }
        if mount_point.starts_with("/one-thread/slow") {
            std::thread::sleep(Duration::from_millis(300));
        }
        if mount_point.starts_with("/one-thread/gone") {
            return Err(std::io::Error::from_raw_os_error(libc::ENOENT));
        }
        Ok(Space { size: 100.0, free: 40.0, avail: 30.0, files: 10.0, files_free: 4.0 })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn healthy_mounts_share_one_thread_and_each_hung_one_costs_one_timeout() {
        let mut config = FilesystemConfig::default();
        config.statfs_timeout = crate::config::ConfigDuration(Duration::from_millis(100));
        let fs = Filesystems { stat: recording_stand_in, ..Filesystems::new(config, HostPaths::default()) };
        let table: String = (0..20).map(|i| format!("/dev/d{i} /one-thread/m{i} ext4 rw 0 0\n")).collect();
        let mounts = parse_mounts(&table);
        let mut out = MetricSet::new();
        fs.collect_mounts(&mounts, &mut out, Instant::now() + Duration::from_secs(5)).await;
        let threads = std::mem::take(&mut *lock(&STAT_THREADS));
        assert_eq!(threads.len(), 20);
        assert!(threads.iter().all(|id| *id == threads[0]), "one thread for the scrape's calls");
        assert_eq!(
            value(&out.encode_text(), "node_filesystem_size_bytes", "/one-thread/m19").as_deref(),
            Some("100")
        );

        // Two hung local mounts in a row (a failing disk), a failing one and
        // healthy ones around them, all taking turns on one thread.
        let mounts = parse_mounts(
            "/dev/a /one-thread/a ext4 rw 0 0\n/dev/x /one-thread/hung1 xfs rw 0 0\n\
             /dev/y /one-thread/hung2 ext4 rw 0 0\n/dev/g /one-thread/gone ext4 rw 0 0\n/dev/b /one-thread/b ext4 rw 0 0\n",
        );
        let started = std::time::Instant::now();
        let mut out = MetricSet::new();
        fs.collect_mounts(&mounts, &mut out, Instant::now() + Duration::from_secs(5)).await;
        let elapsed = started.elapsed();
        // One timeout (100 ms) per hung mount, not its 1.5 s.
        assert!(elapsed >= Duration::from_millis(200) && elapsed < Duration::from_millis(900), "{elapsed:?}");
        let text = out.encode_text();
        for (mount_point, error) in [("a", "0"), ("hung1", "1"), ("hung2", "1"), ("gone", "1"), ("b", "0")] {
            let mount_point = format!("/one-thread/{mount_point}");
            assert_eq!(
                value(&text, "node_filesystem_device_error", &mount_point).as_deref(),
                Some(error),
                "{text}"
            );
        }
        let stuck = lock(&fs.stuck).clone();
        assert_eq!(stuck, HashSet::from(["/one-thread/hung1".to_owned(), "/one-thread/hung2".to_owned()]));
        assert_eq!(value(&text, "node_filesystem_size_bytes", "/one-thread/b").as_deref(), Some("100"));
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert!(lock(&fs.stuck).is_empty(), "both stuck calls returned and cleared their marks");
        lock(&STAT_THREADS).clear();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn network_mounts_do_not_wait_for_each_other() {
        let fs = Filesystems {
            stat: recording_stand_in,
            ..Filesystems::new(FilesystemConfig::default(), HostPaths::default())
        };
        // Two NFS servers answering in 300 ms each, and a local disk.
        let mounts = parse_mounts(
            "nfs:/x /one-thread/slow1 nfs4 rw 0 0\nnfs:/y /one-thread/slow2 nfs4 rw 0 0\n/dev/c /one-thread/c ext4 rw 0 0\n",
        );
        let started = std::time::Instant::now();
        let mut out = MetricSet::new();
        fs.collect_mounts(&mounts, &mut out, Instant::now() + Duration::from_secs(5)).await;
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_millis(550), "in turn they would take 600 ms: {elapsed:?}");
        let text = out.encode_text();
        for mount_point in ["/one-thread/slow1", "/one-thread/slow2", "/one-thread/c"] {
            assert_eq!(
                value(&text, "node_filesystem_size_bytes", mount_point).as_deref(),
                Some("100"),
                "{text}"
            );
        }
        assert!(lock(&fs.stuck).is_empty());
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
