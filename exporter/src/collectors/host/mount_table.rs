//! The host's mount table, read again only when it has changed.
//!
//! procfs tells whoever holds `/proc/PID/mounts` open when a filesystem is
//! mounted or unmounted in that process's mount namespace: `poll` reports
//! `POLLPRI` once per change (proc(5); systemd and util-linux's `findmnt
//! --poll` watch mounts this way). So the file stays open between scrapes,
//! and a scrape costs one `poll` with no wait instead of the kernel printing
//! every mount and the exporter parsing and filtering them; a host with
//! hundreds of container mounts pays that on every scrape otherwise. Where
//! the file is not on a procfs (a copy in tests) it cannot say, and is read
//! on every scrape.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rustix::event::{PollFd, PollFlags, Timespec};

use super::procfs::{Mount, parse_mounts};
use crate::collectors::collector::{CollectError, lock, read_from_start};

/// The open mount table and the mounts last kept from it.
#[derive(Debug)]
struct Watched {
    file: File,
    /// The path `file` was opened at, for errors.
    path: PathBuf,
    /// Whether `poll` on `file` reports changes (it is on a procfs).
    reports_changes: bool,
    /// The selected mounts as of the last read; `None` until a read succeeds.
    selected: Option<Arc<Vec<Mount>>>,
}

/// PID 1's mount table (the host's view) under one procfs, or our own where
/// PID 1's is not readable.
#[derive(Debug)]
pub struct MountTable {
    procfs: PathBuf,
    watched: Mutex<Option<Watched>>,
}

impl MountTable {
    /// The table under `procfs`, not open yet.
    pub fn new(procfs: PathBuf) -> Self {
        Self { procfs, watched: Mutex::default() }
    }

    /// The mounts `select` keeps of the current table: the last result again
    /// while the kernel reports no change, else `select` over a fresh read.
    pub fn current(
        &self,
        select: impl FnOnce(Vec<Mount>) -> Vec<Mount>,
    ) -> Result<Arc<Vec<Mount>>, CollectError> {
        let mut guard = lock(&self.watched);
        let watched = match &mut *guard {
            Some(watched) => watched,
            empty => empty.insert(self.open()?),
        };
        if let Some(selected) = &watched.selected
            && watched.reports_changes
            && !changed(&watched.file)
        {
            return Ok(Arc::clone(selected));
        }
        // A failed read forgets the file, so the next scrape opens it again.
        let text = match read_from_start(&watched.file) {
            Ok(text) => text,
            Err(e) => {
                let path = watched.path.display().to_string();
                *guard = None;
                return Err(CollectError::io(path, e));
            }
        };
        let selected = Arc::new(select(parse_mounts(&text)));
        watched.selected = Some(Arc::clone(&selected));
        Ok(selected)
    }

    fn open(&self) -> Result<Watched, CollectError> {
        let host = self.procfs.join("1/mounts");
        let (file, path) = match File::open(&host) {
            Ok(file) => (file, host),
            // PID 1's mounts are the host's view; without access, ours will do.
            Err(_) => {
                let own = self.procfs.join("self/mounts");
                let file = File::open(&own).map_err(|e| CollectError::io(own.display().to_string(), e))?;
                (file, own)
            }
        };
        let reports_changes = is_procfs(&file);
        Ok(Watched { file, path, reports_changes, selected: None })
    }
}

// `f_type` and the magic number have different widths on different targets.
#[allow(clippy::unnecessary_cast)]
fn is_procfs(file: &File) -> bool {
    rustix::fs::fstatfs(file).is_ok_and(|fs| fs.f_type as i64 == libc::PROC_SUPER_MAGIC as i64)
}

/// Whether the mount table behind `file` changed since the last call (or
/// since it was opened); reading the event clears it. An error counts as a
/// change, so the table is read rather than trusted.
fn changed(file: &File) -> bool {
    let mut fds = [PollFd::new(file, PollFlags::PRI)];
    let no_wait = Timespec { tv_sec: 0, tv_nsec: 0 };
    match rustix::event::poll(&mut fds, Some(&no_wait)) {
        Ok(0) => false,
        Ok(_) => !fds[0].revents().is_empty(),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn everything(mounts: Vec<Mount>) -> Vec<Mount> {
        mounts
    }

    #[test]
    fn a_copy_of_procfs_is_read_on_every_call() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("1")).expect("pid dir");
        let mounts = dir.path().join("1/mounts");
        std::fs::write(&mounts, "/dev/vda1 / ext4 rw 0 0\n").expect("write");
        let table = MountTable::new(dir.path().to_path_buf());
        assert_eq!(table.current(everything).expect("read").len(), 1);
        std::fs::write(&mounts, "/dev/vda1 / ext4 rw 0 0\n/dev/vdb1 /data xfs ro 0 0\n").expect("rewrite");
        let now = table.current(everything).expect("read again");
        assert_eq!(now.len(), 2, "a file that cannot report changes is not trusted");
        assert!(now[1].read_only);
    }

    #[test]
    fn without_pid_1_our_own_table_is_read_and_errors_name_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let table = MountTable::new(dir.path().to_path_buf());
        let error = table.current(everything).expect_err("nothing there").to_string();
        assert!(error.contains("self/mounts"), "{error}");
        std::fs::create_dir_all(dir.path().join("self")).expect("self dir");
        std::fs::write(dir.path().join("self/mounts"), "tmpfs /run tmpfs rw 0 0\n").expect("write");
        assert_eq!(table.current(everything).expect("own table")[0].mount_point, "/run");
    }

    #[test]
    fn the_real_table_is_read_again_only_after_a_mount() {
        use std::io::{BufRead, BufReader, Write};
        use std::process::{Command, Stdio};
        // A shell in a mount namespace of its own stands in for the host: the
        // table is watched through a fake procfs whose "1" is that shell.
        let scratch = tempfile::tempdir().expect("tempdir");
        let target = scratch.path().join("mnt");
        std::fs::create_dir(&target).expect("mount point");
        let script = format!(
            "echo ready; read _; mount -t tmpfs opsmon-mount-test {0} && echo mounted; read _",
            target.display()
        );
        // Needs util-linux's unshare(1) and CAP_SYS_ADMIN, as the suite runs.
        let mut shell = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("unshare(1) from util-linux");
        let mut stdin = shell.stdin.take().expect("stdin");
        let mut lines = BufReader::new(shell.stdout.take().expect("stdout")).lines();
        let ready = lines.next().and_then(Result::ok);
        assert_eq!(ready.as_deref(), Some("ready"), "a mount namespace of its own (needs CAP_SYS_ADMIN)");
        let procfs = scratch.path().join("procfs");
        std::fs::create_dir(&procfs).expect("fake procfs");
        std::os::unix::fs::symlink(format!("/proc/{}", shell.id()), procfs.join("1")).expect("link");

        let table = MountTable::new(procfs);
        let reads = std::cell::Cell::new(0);
        let counting = |mounts: Vec<Mount>| {
            reads.set(reads.get() + 1);
            mounts
        };
        let before = table.current(counting).expect("the shell's table");
        for _ in 0..3 {
            assert_eq!(table.current(counting).expect("again").len(), before.len());
        }
        assert_eq!(reads.get(), 1, "unchanged: kept, not read again");

        writeln!(stdin, "mount").expect("to the shell");
        assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("mounted"));
        let after = table.current(counting).expect("after the mount");
        assert_eq!(reads.get(), 2, "the mount was reported and the table read again");
        assert_eq!(after.len(), before.len() + 1);
        assert!(
            after
                .iter()
                .any(|m| m.device == "opsmon-mount-test" && m.mount_point == target.to_string_lossy())
        );
        assert_eq!(table.current(counting).expect("then kept").len(), after.len());
        assert_eq!(reads.get(), 2);

        drop(stdin);
        let _ = shell.wait();
    }
}
