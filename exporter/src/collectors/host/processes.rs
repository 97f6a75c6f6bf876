//! Process groups: CPU seconds, resident memory and count of the processes
//! matching each configured group, like `top -p $(pgrep -f smartalk)`. The
//! exporter's own process is never counted, so a pattern that also matches
//! its command line does not make a dead backend look alive.

use std::path::Path;

use opsmon_catalog::host;

use super::ProcessGroupConfig;
use super::procfs::parse_pid_stat;
use crate::metrics::MetricSet;

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

/// One running process as the matcher sees it.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: u32,
    /// Name from /proc/PID/stat.
    pub comm: String,
    /// Arguments joined by spaces; empty for kernel threads.
    pub cmdline: String,
    /// CPU ticks so far.
    pub cpu_ticks: u64,
    /// Resident pages.
    pub rss_pages: u64,
}

/// Whether `process` belongs to `group`.
pub fn matches(group: &ProcessGroupConfig, process: &ProcessInfo) -> bool {
    let comm_ok = group.comm.as_ref().is_none_or(|comm| *comm == process.comm);
    let cmdline_ok = group
        .cmdline
        .as_ref()
        .is_none_or(|re| !process.cmdline.is_empty() && re.0.is_match(&process.cmdline));
    comm_ok && cmdline_ok
}

/// Totals per group over `processes`, skipping `own_pid`.
pub fn totals(groups: &[ProcessGroupConfig], processes: &[ProcessInfo], own_pid: u32) -> Vec<GroupTotals> {
    let mut totals = vec![GroupTotals::default(); groups.len()];
    for process in processes.iter().filter(|p| p.pid != own_pid) {
        for (group, total) in groups.iter().zip(totals.iter_mut()) {
            if matches(group, process) {
                total.cpu_ticks += process.cpu_ticks;
                total.rss_pages += process.rss_pages;
                total.count += 1;
            }
        }
    }
    totals
}

/// Reads every process from `procfs` (the host's /proc). Processes that exit
/// while being read are skipped. The command line is read only when some
/// group needs it.
pub fn read_processes(procfs: &Path, need_cmdline: bool) -> std::io::Result<Vec<ProcessInfo>> {
    let mut processes = Vec::new();
    for entry in std::fs::read_dir(procfs)? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat_text) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some(stat) = parse_pid_stat(&stat_text) else { continue };
        let cmdline = if need_cmdline {
            match std::fs::read(entry.path().join("cmdline")) {
                Ok(raw) => {
                    let trimmed = raw.strip_suffix(&[0]).unwrap_or(&raw);
                    String::from_utf8_lossy(trimmed).replace('\0', " ")
                }
                Err(_) => continue,
            }
        } else {
            String::new()
        };
        processes.push(ProcessInfo {
            pid,
            comm: stat.comm,
            cmdline,
            cpu_ticks: stat.cpu_ticks,
            rss_pages: stat.rss_pages,
        });
    }
    Ok(processes)
}

/// Adds the process-group families for `groups` to `out`.
pub fn collect(
    procfs: &Path,
    groups: &[ProcessGroupConfig],
    out: &mut MetricSet,
    ticks_per_second: f64,
    page_size: f64,
) -> std::io::Result<()> {
    if groups.is_empty() {
        return Ok(());
    }
    let need_cmdline = groups.iter().any(|g| g.cmdline.is_some());
    let processes = read_processes(procfs, need_cmdline)?;
    let totals = totals(groups, &processes, std::process::id());
    let label = |g: &ProcessGroupConfig| vec![g.name.value.clone().into()];
    let mut family = out.family(&host::PROCESS_CPU);
    for (group, total) in groups.iter().zip(&totals) {
        family.number(label(group), total.cpu_ticks as f64 / ticks_per_second);
    }
    let mut family = out.family(&host::PROCESS_RESIDENT);
    for (group, total) in groups.iter().zip(&totals) {
        family.number(label(group), total.rss_pages as f64 * page_size);
    }
    let mut family = out.family(&host::PROCESS_COUNT);
    for (group, total) in groups.iter().zip(&totals) {
        family.number(label(group), total.count as f64);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Config;

    fn groups() -> Vec<ProcessGroupConfig> {
        let config = Config::parse(
            Path::new("test.yml"),
            "collectors:\n  host:\n    process_groups:\n      - name: api\n        cmdline: 'node .*smartalk'\n      - name: pg\n        comm: postgres\n      - name: both\n        comm: node\n        cmdline: worker\n",
        )
        .expect("valid");
        config.collectors.host.process_groups
    }

    fn process(pid: u32, comm: &str, cmdline: &str, cpu_ticks: u64, rss_pages: u64) -> ProcessInfo {
        ProcessInfo { pid, comm: comm.into(), cmdline: cmdline.into(), cpu_ticks, rss_pages }
    }

    #[test]
    fn groups_sum_their_members_and_never_count_the_exporter() {
        let processes = vec![
            process(10, "node", "node /srv/smartalk/server.js", 100, 10),
            process(11, "node", "node /srv/smartalk/worker.js", 50, 5),
            process(12, "postgres", "postgres: checkpointer", 7, 3),
            process(13, "postgres", "postgres -D /var/lib/postgresql", 3, 1),
            process(99, "opsmon-exporter", "opsmon-exporter --match node smartalk", 1000, 1000),
            process(14, "kworker/0:1", "", 1, 0),
        ];
        let totals = totals(&groups(), &processes, 99);
        assert_eq!(totals[0], GroupTotals { cpu_ticks: 150, rss_pages: 15, count: 2 });
        assert_eq!(totals[1], GroupTotals { cpu_ticks: 10, rss_pages: 4, count: 2 });
        assert_eq!(
            totals[2],
            GroupTotals { cpu_ticks: 50, rss_pages: 5, count: 1 },
            "comm and cmdline both apply"
        );
    }

    #[test]
    fn reads_this_machines_processes() {
        let processes = read_processes(Path::new("/proc"), true).expect("/proc readable");
        let me = processes.iter().find(|p| p.pid == std::process::id()).expect("this test process is listed");
        assert!(me.rss_pages > 0);
        assert!(!me.cmdline.is_empty());
    }
}
