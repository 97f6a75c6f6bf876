//! Process groups: CPU seconds, resident memory and count of the processes
//! matching each configured group, like `top -p $(pgrep -f smartalk)`. The
//! exporter's own process is never counted, so a pattern that also matches
//! its command line does not make a dead backend look alive.
//!
//! A scrape reads `/proc/PID/comm` of every process (the cheapest file that
//! names it), the command line only when a group's `cmdline` could still
//! match, and `/proc/PID/stat` (CPU and memory, which the kernel sums over
//! every thread) only for the processes that match. Comm files, and the stat
//! files of matching processes, stay open between scrapes (together up to a
//! quarter of the open-file limit, at most [`MAX_KEPT_COMM_FILES`]), so a
//! known process costs one `pread` per file instead of an open, a read and a
//! close; a file follows its process through an exec and fails once it is
//! reaped. Command lines are kept between scrapes per
//! PID and re-read when the process's name changes (an exec) or after
//! [`CMDLINE_REUSE`]: a process that rewrites its own title without exec, or
//! a reused PID under the same name, is seen at most that late. A procfs
//! without comm files names processes from stat.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use opsmon_catalog::host;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::ProcessGroupConfig;
use super::procfs::parse_pid_stat;
use crate::collectors::collector::lock;
use crate::metrics::MetricSet;

/// How long a command line read from /proc is trusted for the same PID and name.
pub const CMDLINE_REUSE: Duration = Duration::from_secs(60);

/// Totals for one group.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GroupTotals {
    /// Summed user+system CPU ticks.
    pub cpu_ticks: u64,
    /// Summed resident pages.
    pub rss_pages: u64,
    /// Matching processes.
    pub count: u64,
}

/// A command line as last read, with the name it was read under.
#[derive(Debug)]
struct KnownCmdline {
    comm: String,
    cmdline: String,
    read_at: Instant,
}

/// What is kept between scrapes, per PID.
#[derive(Debug, Default)]
struct Kept {
    /// Command lines as last read.
    cmdlines: HashMap<u32, KnownCmdline>,
    /// Open comm files: reading one again is one `pread`, where opening it is
    /// a path walk through procfs that costs seven times as much. The file
    /// belongs to the process, not the PID: once the process is reaped the
    /// read fails, so a reused PID is never read through a stale file.
    comm_files: HashMap<u32, OwnedFd>,
    /// Open stat files of the processes that matched a group, likewise.
    stat_files: HashMap<u32, OwnedFd>,
}

/// The configured groups and what is kept between scrapes.
#[derive(Debug, Default)]
pub struct ProcessGroups {
    groups: Vec<ProcessGroupConfig>,
    kept: Mutex<Kept>,
    /// At most this many comm and stat files stay open together (see
    /// [`comm_files_to_keep`]).
    keep_comm_files: usize,
}

/// The most comm and stat files kept open between scrapes.
pub const MAX_KEPT_COMM_FILES: usize = 1024;

/// How many comm files to keep open: a quarter of the open-file limit, so
/// that the exporter's sockets always have room (the shipped unit's
/// `LimitNOFILE=8192` → 1024; a shell's usual 1024 → 256). Processes beyond
/// that have their comm file opened and closed on each scrape.
fn comm_files_to_keep() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    limit
        .map_or(MAX_KEPT_COMM_FILES, |l| usize::try_from(l / 4).unwrap_or(MAX_KEPT_COMM_FILES))
        .min(MAX_KEPT_COMM_FILES)
}

impl ProcessGroups {
    /// Groups to total, in label order.
    pub fn new(groups: Vec<ProcessGroupConfig>) -> Self {
        Self { groups, kept: Mutex::default(), keep_comm_files: comm_files_to_keep() }
    }

    /// Totals per group over the processes in `procfs` (the host's /proc),
    /// skipping `own_pid`. Processes that exit while being read are skipped.
    pub fn totals(&self, procfs: &Path, own_pid: u32) -> std::io::Result<Vec<GroupTotals>> {
        let mut totals = vec![GroupTotals::default(); self.groups.len()];
        let mut kept = lock(&self.kept);
        let Kept { cmdlines, comm_files, stat_files } = &mut *kept;
        let mut seen = Vec::new();
        let mut matching = Vec::new();
        let now = Instant::now();
        let dir =
            rustix::fs::open(procfs, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        let open_files = Cell::new(comm_files.len() + stat_files.len());
        let room = KeptRoom { open: &open_files, keep: self.keep_comm_files };
        let mut names = KeptFiles::<COMM_BUF>::new(procfs, &dir, "comm", comm_files, room);
        let mut stats = KeptFiles::<STAT_BUF>::new(procfs, &dir, "stat", stat_files, room);
        for entry in std::fs::read_dir(procfs)? {
            let Ok(entry) = entry else { continue };
            let file_name = entry.file_name();
            let Some(pid_text) = file_name.to_str() else { continue };
            let Ok(pid) = pid_text.parse::<u32>() else { continue };
            if pid == own_pid {
                continue;
            }
            let Some(comm) = process_name(&mut names, pid, pid_text) else { continue };
            let comm = &*comm;
            seen.push(pid);
            let by_name = |group: &&ProcessGroupConfig| group.comm.as_ref().is_none_or(|c| c == comm);
            let mut candidates = self.groups.iter().enumerate().filter(|(_, g)| by_name(g)).peekable();
            if candidates.peek().is_none() {
                continue;
            }
            let cmdline = if self.groups.iter().filter(by_name).any(|g| g.cmdline.is_some()) {
                match known_cmdline(cmdlines, &entry.path(), pid, comm, now) {
                    Some(cmdline) => cmdline,
                    None => continue,
                }
            } else {
                ""
            };
            let matched: Vec<usize> = candidates
                .filter(|(_, g)| {
                    g.cmdline.as_ref().is_none_or(|re| !cmdline.is_empty() && re.0.is_match(cmdline))
                })
                .map(|(index, _)| index)
                .collect();
            if matched.is_empty() {
                continue;
            }
            matching.push(pid);
            // A different name means the PID was reused between the reads.
            let Some(stat) = stats.read(pid, pid_text).ok().and_then(|line| parse_pid_stat(&line)) else {
                continue;
            };
            if stat.comm != comm {
                continue;
            }
            for index in matched {
                let total = &mut totals[index];
                total.cpu_ticks += stat.cpu_ticks;
                total.rss_pages += stat.rss_pages;
                total.count += 1;
            }
        }
        // Forget the processes that are gone, so the map stays the size of the
        // process table.
        seen.sort_unstable();
        cmdlines.retain(|pid, _| seen.binary_search(pid).is_ok());
        names.files.retain(|pid, _| seen.binary_search(pid).is_ok());
        // Stat files only while their process still matches a group.
        matching.sort_unstable();
        stats.files.retain(|pid, _| matching.binary_search(pid).is_ok());
        Ok(totals)
    }

    /// Adds the process-group families to `out`.
    pub fn collect(
        &self,
        procfs: &Path,
        out: &mut MetricSet,
        ticks_per_second: f64,
        page_size: f64,
    ) -> std::io::Result<()> {
        if self.groups.is_empty() {
            return Ok(());
        }
        let totals = self.totals(procfs, std::process::id())?;
        let label = |g: &ProcessGroupConfig| vec![g.name.value.clone().into()];
        let mut family = out.family(&host::PROCESS_CPU);
        for (group, total) in self.groups.iter().zip(&totals) {
            family.number(label(group), total.cpu_ticks as f64 / ticks_per_second);
        }
        let mut family = out.family(&host::PROCESS_RESIDENT);
        for (group, total) in self.groups.iter().zip(&totals) {
            family.number(label(group), total.rss_pages as f64 * page_size);
        }
        let mut family = out.family(&host::PROCESS_COUNT);
        for (group, total) in self.groups.iter().zip(&totals) {
            family.number(label(group), total.count as f64);
        }
        Ok(())
    }
}

/// Room for a process's comm file: 16 bytes on most kernels, up to 64 for
/// kernel workers on newer ones.
const COMM_BUF: usize = 128;

/// Room for a stat line: about 300 bytes; a longer one is read whole.
const STAT_BUF: usize = 1024;

/// How many comm and stat files are open between them during one scrape,
/// and how many may be.
#[derive(Clone, Copy)]
struct KeptRoom<'a> {
    open: &'a Cell<usize>,
    keep: usize,
}

impl KeptRoom<'_> {
    /// Keeps `file` for `pid` in `files` if there is room; closes it otherwise.
    fn offer(self, files: &mut HashMap<u32, OwnedFd>, pid: u32, file: OwnedFd) {
        if self.open.get() < self.keep && files.insert(pid, file).is_none() {
            self.open.set(self.open.get() + 1);
        }
    }

    /// Closes the kept file of `pid`, whose process is gone.
    fn drop_file(self, files: &mut HashMap<u32, OwnedFd>, pid: u32) {
        if files.remove(&pid).is_some() {
            self.open.set(self.open.get().saturating_sub(1));
        }
    }
}

/// One kind of `/proc/PID/` file (`comm`, `stat`) read during one scrape:
/// again through the file kept open for the process, else from a newly opened
/// one (kept while there is room). `N` bytes are read in place; a longer file
/// is read whole.
struct KeptFiles<'a, const N: usize> {
    procfs: &'a Path,
    /// `procfs`, open: the files are opened relative to it.
    dir: &'a OwnedFd,
    /// The file's name under `PID/`.
    name: &'static str,
    /// The files kept open, by PID.
    files: &'a mut HashMap<u32, OwnedFd>,
    room: KeptRoom<'a>,
    /// Scratch space for `PID/name`.
    path: String,
    buf: [u8; N],
}

impl<'a, const N: usize> KeptFiles<'a, N> {
    fn new(
        procfs: &'a Path,
        dir: &'a OwnedFd,
        name: &'static str,
        files: &'a mut HashMap<u32, OwnedFd>,
        room: KeptRoom<'a>,
    ) -> Self {
        Self { procfs, dir, name, files, room, path: String::with_capacity(24), buf: [0; N] }
    }

    /// The file of process `pid` (`pid_text` as procfs lists it); the error
    /// of opening it (`NOENT` once the process is gone), or `INVAL` for text
    /// that is not UTF-8.
    fn read(&mut self, pid: u32, pid_text: &str) -> Result<Cow<'_, str>, Errno> {
        let mut read = None;
        if let Some(file) = self.files.get(&pid) {
            match rustix::io::pread(file, &mut self.buf, 0) {
                Ok(length) if length < N => read = Some(length),
                // The process is gone (ESRCH), whatever now has its PID, or
                // the file outgrew the buffer: read it afresh.
                _ => self.room.drop_file(self.files, pid),
            }
        }
        let length = match read {
            Some(length) => length,
            None => {
                self.path.clear();
                self.path.push_str(pid_text);
                self.path.push('/');
                self.path.push_str(self.name);
                let flags = OFlags::RDONLY | OFlags::CLOEXEC;
                let file = rustix::fs::openat(self.dir, self.path.as_str(), flags, Mode::empty())?;
                let length = rustix::io::read(&file, &mut self.buf)?;
                if length == N {
                    let whole =
                        std::fs::read_to_string(self.procfs.join(&self.path)).map_err(|_| Errno::INVAL)?;
                    return Ok(Cow::Owned(whole));
                }
                self.room.offer(self.files, pid, file);
                length
            }
        };
        std::str::from_utf8(&self.buf[..length]).map(Cow::Borrowed).map_err(|_| Errno::INVAL)
    }
}

/// The name of process `pid` from its comm file, else from its stat line
/// where the procfs has no comm files (kernels before 2.6.33, copies of a
/// procfs); `None` when the process is gone.
fn process_name<'a>(
    names: &'a mut KeptFiles<'_, COMM_BUF>,
    pid: u32,
    pid_text: &str,
) -> Option<Cow<'a, str>> {
    let procfs = names.procfs;
    match names.read(pid, pid_text) {
        Ok(Cow::Borrowed(text)) => Some(Cow::Borrowed(text.strip_suffix('\n').unwrap_or(text))),
        Ok(Cow::Owned(text)) => Some(Cow::Owned(text.trim_end_matches('\n').to_owned())),
        Err(Errno::NOENT) if procfs.join(pid_text).exists() => {
            let stat = std::fs::read_to_string(procfs.join(pid_text).join("stat")).ok()?;
            parse_pid_stat(&stat).map(|stat| Cow::Owned(stat.comm))
        }
        Err(_) => None,
    }
}

/// The command line of `pid` (arguments joined by spaces, empty for kernel
/// threads), from `known` while its name and age allow, else from
/// `process_dir`/cmdline; `None` when the process is gone.
fn known_cmdline<'a>(
    known: &'a mut HashMap<u32, KnownCmdline>,
    process_dir: &Path,
    pid: u32,
    comm: &str,
    now: Instant,
) -> Option<&'a str> {
    let fresh = known
        .get(&pid)
        .is_some_and(|k| k.comm == comm && now.saturating_duration_since(k.read_at) < CMDLINE_REUSE);
    if !fresh {
        let raw = std::fs::read(process_dir.join("cmdline")).ok()?;
        let trimmed = raw.strip_suffix(&[0]).unwrap_or(&raw);
        let cmdline = String::from_utf8_lossy(trimmed).replace('\0', " ");
        known.insert(pid, KnownCmdline { comm: comm.to_owned(), cmdline, read_at: now });
    }
    known.get(&pid).map(|k| k.cmdline.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Config;

    /// Process groups from the YAML list under `process_groups:`.
    fn configured(groups_yaml: &str) -> ProcessGroups {
        let config = Config::parse(
            Path::new("test.yml"),
            &format!("collectors:\n  host:\n    process_groups:\n{groups_yaml}"),
        )
        .expect("valid");
        ProcessGroups::new(config.collectors.host.process_groups)
    }

    fn groups() -> ProcessGroups {
        configured(
            "      - name: api\n        cmdline: 'node .*smartalk'\n      - name: pg\n        comm: postgres\n      - name: both\n        comm: node\n        cmdline: worker\n",
        )
    }

    /// A fake /proc entry: comm, NUL-separated cmdline and a stat line with
    /// `cpu_ticks` split over utime/stime and `rss_pages`.
    fn process(procfs: &Path, pid: u32, comm: &str, cmdline: &str, cpu_ticks: u64, rss_pages: u64) {
        let dir = procfs.join(pid.to_string());
        std::fs::create_dir_all(&dir).expect("pid dir");
        std::fs::write(dir.join("comm"), format!("{comm}\n")).expect("comm");
        let mut raw: Vec<u8> = cmdline
            .split(' ')
            .filter(|a| !a.is_empty())
            .flat_map(|a| [a.as_bytes(), b"\0"].concat())
            .collect();
        if cmdline.is_empty() {
            raw.clear();
        }
        std::fs::write(dir.join("cmdline"), raw).expect("cmdline");
        let (utime, stime) = (cpu_ticks - cpu_ticks / 3, cpu_ticks / 3);
        std::fs::write(
            dir.join("stat"),
            format!("{pid} ({comm}) S 1 {pid} {pid} 0 -1 4194560 100 0 0 0 {utime} {stime} 0 0 20 0 1 0 100 1000000 {rss_pages} 0\n"),
        )
        .expect("stat");
    }

    #[test]
    fn groups_sum_their_members_and_never_count_the_exporter() {
        let procfs = tempfile::tempdir().expect("tempdir");
        let p = procfs.path();
        process(p, 10, "node", "node /srv/smartalk/server.js", 100, 10);
        process(p, 11, "node", "node /srv/smartalk/worker.js", 50, 5);
        process(p, 12, "postgres", "postgres: checkpointer", 7, 3);
        process(p, 13, "postgres", "postgres -D /var/lib/postgresql", 3, 1);
        process(p, 99, "opsmon-exporter", "opsmon-exporter --match node smartalk", 1000, 1000);
        process(p, 14, "kworker/0:1", "", 1, 0);
        std::fs::write(p.join("stat"), "cpu 1 2 3\n").expect("a file that is no process");
        let totals = groups().totals(p, 99).expect("totals");
        assert_eq!(totals[0], GroupTotals { cpu_ticks: 150, rss_pages: 15, count: 2 });
        assert_eq!(totals[1], GroupTotals { cpu_ticks: 10, rss_pages: 4, count: 2 });
        assert_eq!(
            totals[2],
            GroupTotals { cpu_ticks: 50, rss_pages: 5, count: 1 },
            "comm and cmdline both apply"
        );
    }

    #[test]
    fn command_lines_are_reread_after_an_exec_and_forgotten_with_their_process() {
        let procfs = tempfile::tempdir().expect("tempdir");
        let p = procfs.path();
        let groups = groups();
        // A launcher that will exec the API under the same PID.
        process(p, 20, "sh", "sh -c exec node /srv/app.js", 1, 1);
        assert_eq!(groups.totals(p, 1).expect("totals")[0].count, 0);
        process(p, 20, "node", "node /srv/smartalk/server.js", 5, 2);
        assert_eq!(
            groups.totals(p, 1).expect("totals")[0].count,
            1,
            "the exec changed the name: cmdline re-read"
        );
        // Counters come from stat on every scrape, never from the cache.
        process(p, 20, "node", "node /srv/smartalk/server.js", 9, 4);
        assert_eq!(
            groups.totals(p, 1).expect("totals")[0],
            GroupTotals { cpu_ticks: 9, rss_pages: 4, count: 1 }
        );
        assert_eq!(lock(&groups.kept).stat_files.len(), 1, "the matching process's stat file is kept");
        process(p, 20, "bash", "bash", 9, 4);
        assert_eq!(groups.totals(p, 1).expect("totals")[0].count, 0);
        assert!(lock(&groups.kept).stat_files.is_empty(), "closed once the process no longer matches");
        process(p, 20, "node", "node /srv/smartalk/server.js", 9, 4);
        assert_eq!(groups.totals(p, 1).expect("totals")[0].count, 1);
        std::fs::remove_dir_all(p.join("20")).expect("exit");
        assert_eq!(groups.totals(p, 1).expect("totals")[0].count, 0);
        let kept = lock(&groups.kept);
        assert!(kept.cmdlines.is_empty(), "a gone process's command line is forgotten");
        assert!(kept.comm_files.is_empty(), "and its comm file closed");
        assert!(kept.stat_files.is_empty(), "and its stat file");
    }

    #[test]
    fn a_reused_pid_under_another_name_is_not_counted_from_stale_files() {
        let procfs = tempfile::tempdir().expect("tempdir");
        let p = procfs.path();
        // comm says postgres, but by the time stat is read the PID is another process.
        process(p, 30, "postgres", "postgres", 5, 5);
        std::fs::write(p.join("30/stat"), "30 (bash) S 1 30 30 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 100 1 1 0\n")
            .expect("stat");
        assert_eq!(groups().totals(p, 1).expect("totals")[1].count, 0);
    }

    #[test]
    fn a_procfs_without_comm_files_names_processes_from_stat() {
        let procfs = tempfile::tempdir().expect("tempdir");
        let p = procfs.path();
        process(p, 40, "node", "node /srv/smartalk/server.js", 30, 3);
        process(p, 41, "postgres", "postgres: walwriter", 2, 1);
        for pid in [40, 41] {
            std::fs::remove_file(p.join(format!("{pid}/comm"))).expect("no comm");
        }
        let totals = groups().totals(p, 1).expect("totals");
        assert_eq!(totals[0], GroupTotals { cpu_ticks: 30, rss_pages: 3, count: 1 });
        assert_eq!(totals[1], GroupTotals { cpu_ticks: 2, rss_pages: 1, count: 1 });
    }

    #[test]
    fn a_name_longer_than_the_buffer_is_read_whole() {
        let procfs = tempfile::tempdir().expect("tempdir");
        let p = procfs.path();
        let long = "w".repeat(COMM_BUF + 40);
        process(p, 50, &long, "", 4, 2);
        let groups = configured(&format!("      - name: long\n        comm: {long}\n"));
        assert_eq!(
            groups.totals(p, 1).expect("totals")[0],
            GroupTotals { cpu_ticks: 4, rss_pages: 2, count: 1 }
        );
    }

    #[test]
    fn comm_files_beyond_the_cap_are_read_and_closed() {
        let procfs = tempfile::tempdir().expect("tempdir");
        let p = procfs.path();
        for pid in [60, 61, 62] {
            process(p, pid, "postgres", "postgres", 1, 1);
        }
        let mut groups = groups();
        groups.keep_comm_files = 2;
        for _ in 0..2 {
            assert_eq!(groups.totals(p, 1).expect("totals")[1].count, 3, "every process counted");
            let kept = lock(&groups.kept);
            assert_eq!(kept.comm_files.len() + kept.stat_files.len(), 2, "comm and stat files share the cap");
            assert!(!kept.comm_files.is_empty() && !kept.stat_files.is_empty(), "both kinds kept");
        }
        assert!((1..=MAX_KEPT_COMM_FILES).contains(&comm_files_to_keep()));
    }

    /// A real process: its comm file, kept open after the first scrape, shows
    /// the new name after an exec, and is dropped once the process is reaped.
    #[test]
    fn a_kept_comm_file_follows_its_process_through_an_exec_and_its_end() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let program = dir.path().join("opsmon-t-sleep");
        std::fs::copy("/bin/sleep", &program).expect("a copy of sleep with a name of its own");
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", &format!("read line; exec {} 100", program.display())])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let pid = child.id();
        let groups = configured("      - name: t\n        comm: opsmon-t-sleep\n");
        let proc_ = Path::new("/proc");
        assert_eq!(groups.totals(proc_, 0).expect("totals")[0].count, 0, "still sh");
        assert!(lock(&groups.kept).comm_files.contains_key(&pid), "its comm file is kept open");
        writeln!(child.stdin.as_mut().expect("stdin"), "go").expect("write");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{pid}/comm")).expect("comm") != "opsmon-t-sleep\n" {
            assert!(Instant::now() < deadline, "the exec happened");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(groups.totals(proc_, 0).expect("totals")[0].count, 1, "the kept file shows the new name");
        assert!(lock(&groups.kept).comm_files.contains_key(&pid));
        assert!(lock(&groups.kept).stat_files.contains_key(&pid), "a matching process's stat file is kept");
        let first = groups.totals(proc_, 0).expect("totals")[0];
        assert_eq!(first.count, 1, "read again through the kept stat file");
        assert!(first.rss_pages > 0);
        child.kill().expect("kill");
        child.wait().expect("reaped");
        assert_eq!(groups.totals(proc_, 0).expect("totals")[0].count, 0);
        assert!(!lock(&groups.kept).comm_files.contains_key(&pid), "closed with its process");
        assert!(!lock(&groups.kept).stat_files.contains_key(&pid), "both files");
    }

    #[test]
    fn reads_this_machines_processes() {
        let groups = configured("      - name: all\n        cmdline: '.'\n");
        let totals = groups.totals(Path::new("/proc"), 0).expect("/proc readable");
        assert!(totals[0].count >= 1, "this test process is listed");
        assert!(totals[0].rss_pages > 0);
    }
}
