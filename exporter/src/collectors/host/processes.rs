//! Process groups: CPU seconds, resident memory and count of the processes
//! matching each configured group, like `top -p $(pgrep -f smartalk)`. The
//! exporter's own process is never counted, so a pattern that also matches
//! its command line does not make a dead backend look alive.
//!
//! A scrape reads `/proc/PID/comm` of every process (the cheapest file that
//! names it), the command line only when a group's `cmdline` could still
//! match, and `/proc/PID/stat` (CPU and memory, which the kernel sums over
//! every thread) only for the processes that match. Command lines are kept
//! between scrapes per PID and re-read when the process's name changes (an
//! exec) or after [`CMDLINE_REUSE`]: a process that rewrites its own title
//! without exec, or a reused PID under the same name, is seen at most that
//! late. On the shipped config this is one small read per process instead of
//! two to three. A procfs without comm files names processes from stat.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use opsmon_catalog::host;

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

/// The configured groups and the command lines remembered between scrapes.
#[derive(Debug, Default)]
pub struct ProcessGroups {
    groups: Vec<ProcessGroupConfig>,
    cmdlines: Mutex<HashMap<u32, KnownCmdline>>,
}

impl ProcessGroups {
    /// Groups to total, in label order.
    pub fn new(groups: Vec<ProcessGroupConfig>) -> Self {
        Self { groups, cmdlines: Mutex::default() }
    }

    /// Totals per group over the processes in `procfs` (the host's /proc),
    /// skipping `own_pid`. Processes that exit while being read are skipped.
    pub fn totals(&self, procfs: &Path, own_pid: u32) -> std::io::Result<Vec<GroupTotals>> {
        let mut totals = vec![GroupTotals::default(); self.groups.len()];
        let mut cmdlines = lock(&self.cmdlines);
        let mut seen = Vec::new();
        let now = Instant::now();
        for entry in std::fs::read_dir(procfs)? {
            let Ok(entry) = entry else { continue };
            let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
                continue;
            };
            if pid == own_pid {
                continue;
            }
            let Some(comm) = process_name(&entry.path()) else { continue };
            seen.push(pid);
            let by_name = |group: &&ProcessGroupConfig| group.comm.as_ref().is_none_or(|c| *c == comm);
            let mut candidates = self.groups.iter().enumerate().filter(|(_, g)| by_name(g)).peekable();
            if candidates.peek().is_none() {
                continue;
            }
            let cmdline = if self.groups.iter().filter(by_name).any(|g| g.cmdline.is_some()) {
                match known_cmdline(&mut cmdlines, &entry.path(), pid, &comm, now) {
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
            let Ok(stat_text) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // A different name means the PID was reused between the reads.
            let Some(stat) = parse_pid_stat(&stat_text).filter(|stat| stat.comm == comm) else { continue };
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

/// The process's name from `process_dir`/comm, or from its stat line where
/// the procfs has no comm file (kernels before 2.6.33, copies of a procfs);
/// `None` when the process is gone.
fn process_name(process_dir: &Path) -> Option<String> {
    match std::fs::read_to_string(process_dir.join("comm")) {
        Ok(mut comm) => {
            if comm.ends_with('\n') {
                comm.pop();
            }
            Some(comm)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && process_dir.exists() => {
            let stat = std::fs::read_to_string(process_dir.join("stat")).ok()?;
            parse_pid_stat(&stat).map(|stat| stat.comm)
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

    fn groups() -> ProcessGroups {
        let config = Config::parse(
            Path::new("test.yml"),
            "collectors:\n  host:\n    process_groups:\n      - name: api\n        cmdline: 'node .*smartalk'\n      - name: pg\n        comm: postgres\n      - name: both\n        comm: node\n        cmdline: worker\n",
        )
        .expect("valid");
        ProcessGroups::new(config.collectors.host.process_groups)
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
        std::fs::remove_dir_all(p.join("20")).expect("exit");
        assert_eq!(groups.totals(p, 1).expect("totals")[0].count, 0);
        assert!(lock(&groups.cmdlines).is_empty(), "a gone process's command line is forgotten");
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
    fn reads_this_machines_processes() {
        let groups = ProcessGroups::new(
            Config::parse(
                Path::new("t.yml"),
                "collectors:\n  host:\n    process_groups:\n      - name: all\n        cmdline: '.'\n",
            )
            .expect("valid")
            .collectors
            .host
            .process_groups,
        );
        let totals = groups.totals(Path::new("/proc"), 0).expect("/proc readable");
        assert!(totals[0].count >= 1, "this test process is listed");
        assert!(totals[0].rss_pages > 0);
    }
}
