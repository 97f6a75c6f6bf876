//! Reading a process's resource use from `/proc`: CPU time (utime + stime from
//! `/proc/PID/stat`) and resident memory (`VmRSS` from `/proc/PID/status`).
//! Parsing is split from reading so it can be tested on fixed strings.

use anyhow::{Context as _, Result, bail};

/// `utime + stime` of a process, in clock ticks, from the text of `/proc/PID/stat`.
///
/// The second field, `comm`, is in parentheses and may itself contain spaces
/// and parentheses (`(my (odd) name)`), so fields are counted from the *last*
/// `)`: after it come `state` (field 3) … `utime` (field 14), `stime` (field 15).
pub fn parse_stat_cpu_ticks(stat: &str) -> Result<u64> {
    let close = stat.rfind(')').context("/proc/PID/stat has no ')' closing the comm field")?;
    let rest = stat.get(close + 1..).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state), so field N is fields[N - 3].
    let (Some(utime), Some(stime)) = (fields.get(14 - 3), fields.get(15 - 3)) else {
        bail!("/proc/PID/stat has too few fields after comm: {}", fields.len());
    };
    let utime: u64 = utime.parse().with_context(|| format!("bad utime {utime:?}"))?;
    let stime: u64 = stime.parse().with_context(|| format!("bad stime {stime:?}"))?;
    Ok(utime + stime)
}

/// `VmRSS` in KiB from the text of `/proc/PID/status`.
pub fn parse_vmrss_kib(status: &str) -> Result<u64> {
    parse_status_kib(status, "VmRSS")
}

/// A `NAME:   N kB` field of `/proc/PID/status`, in KiB.
pub fn parse_status_kib(status: &str, name: &str) -> Result<u64> {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')))
        .with_context(|| format!("no {name} line in /proc/PID/status (kernel thread or zombie?)"))?;
    let mut parts = line.split_whitespace();
    let value = parts.next().with_context(|| format!("empty {name} line"))?;
    match parts.next() {
        Some("kB") | None => {}
        Some(unit) => bail!("unexpected {name} unit {unit:?}"),
    }
    value.parse().with_context(|| format!("bad {name} value {value:?}"))
}

/// CPU ticks (user + system) consumed so far by `pid`.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat_cpu_ticks(&text).with_context(|| format!("parsing {path}"))
}

/// CPU ticks (user + system) consumed so far by thread `tid` of this process.
pub fn thread_cpu_ticks(tid: u32) -> Result<u64> {
    let path = format!("/proc/self/task/{tid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat_cpu_ticks(&text).with_context(|| format!("parsing {path}"))
}

/// CPU time in nanoseconds that the live threads of `pid` have run so far:
/// the first field of each `/proc/PID/task/TID/schedstat`, summed. Exact
/// where ticks are 10 ms, so a sweep needs few scrapes per point; a thread
/// that exited in between is not counted (the exporters keep their workers).
pub fn cpu_ns(pid: u32) -> Result<u64> {
    let dir = format!("/proc/{pid}/task");
    let mut total = 0u64;
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let path = entry?.path().join("schedstat");
        // A thread may exit between the listing and the read.
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        total += parse_schedstat_ns(&text).with_context(|| format!("parsing {}", path.display()))?;
    }
    Ok(total)
}

/// The run time in nanoseconds from a `schedstat` line (`run wait slices`).
pub fn parse_schedstat_ns(text: &str) -> Result<u64> {
    let field = text.split_whitespace().next().context("empty schedstat")?;
    field.parse().with_context(|| format!("bad schedstat run time {field:?}"))
}

/// Resident set size of `pid` in MiB.
pub fn rss_mib(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib = parse_vmrss_kib(&text).with_context(|| format!("parsing {path}"))?;
    Ok(kib as f64 / 1024.0)
}

/// Anonymous resident memory of `pid` in MiB (`RssAnon`: heap, stacks,
/// private data), without the binary's and libraries' text that `VmRSS` also
/// counts (clean file pages, shared and dropped under memory pressure).
pub fn anon_mib(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib = parse_status_kib(&text, "RssAnon").with_context(|| format!("parsing {path}"))?;
    Ok(kib as f64 / 1024.0)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux in practice).
pub fn clock_ticks_per_second() -> u64 {
    match rustix::param::clock_ticks_per_second() {
        0 => 100,
        hz => hz,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedstat_run_time_and_own_threads() -> Result<()> {
        assert_eq!(parse_schedstat_ns("123456789 42 7\n")?, 123_456_789);
        assert!(parse_schedstat_ns("").is_err());
        assert!(parse_schedstat_ns("x 1 2").is_err());
        // This thread's own run time: the process-wide sum can shrink while
        // the test harness's other threads exit, so it is not compared over time.
        let own = || -> Result<u64> {
            parse_schedstat_ns(&std::fs::read_to_string("/proc/thread-self/schedstat")?)
        };
        let before = own()?;
        // The kernel adds a running thread's time at ticks and switches, so a
        // few ms of work can read as none: work, yield (which accounts the
        // time), and read again, for up to two seconds.
        let mut x = 0u64;
        let started = std::time::Instant::now();
        let after = loop {
            for i in 0..3_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            std::thread::yield_now();
            let now = own()?;
            if now > before || started.elapsed() > std::time::Duration::from_secs(2) {
                break now;
            }
        };
        assert!(after > before, "{x}");
        // The sum over the process's threads includes this live thread's time.
        assert!(cpu_ns(std::process::id())? >= after);
        Ok(())
    }

    // A real line from a node_exporter process, fields 14/15 = 1234 / 567.
    const PLAIN: &str = "4242 (prometheus-node) S 1 4242 4242 0 -1 4194560 2861 0 0 0 1234 567 0 0 20 0 7 0 123456 737280000 5632 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn parses_plain_stat() -> Result<()> {
        assert_eq!(parse_stat_cpu_ticks(PLAIN)?, 1234 + 567);
        Ok(())
    }

    #[test]
    fn parses_comm_with_spaces_and_parens() -> Result<()> {
        let stat = "77 (a) b (c) R 1 77 77 0 -1 0 0 0 0 0 10 20 0 0 20 0 1 0 5 100 10 0\n";
        assert_eq!(parse_stat_cpu_ticks(stat)?, 30);
        let stat = "78 ()) S 1 78 78 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 5 100 10 0";
        assert_eq!(parse_stat_cpu_ticks(stat)?, 3);
        Ok(())
    }

    #[test]
    fn rejects_truncated_or_garbled_stat() {
        assert!(parse_stat_cpu_ticks("1 (x) S 1 2 3").is_err());
        assert!(parse_stat_cpu_ticks("no parens here at all").is_err());
        assert!(parse_stat_cpu_ticks("1 (x) S 1 1 1 0 -1 0 0 0 0 0 ten 20 0").is_err());
    }

    #[test]
    fn reads_own_process() -> Result<()> {
        // Live check against the kernel's real format.
        let _ = cpu_ticks(std::process::id())?;
        assert!(rss_mib(std::process::id())? > 0.0);
        Ok(())
    }

    #[test]
    fn parses_vmrss() -> Result<()> {
        let status = "Name:\tnode\nVmPeak:\t  900 kB\nVmRSS:\t   22528 kB\nThreads:\t7\n";
        assert_eq!(parse_vmrss_kib(status)?, 22528);
        assert!(parse_vmrss_kib("Name:\tkthreadd\nThreads:\t1\n").is_err());
        assert!(parse_vmrss_kib("VmRSS:\t 12 MB\n").is_err());
        let status = "VmRSS:\t   22528 kB\nRssAnon:\t    2436 kB\nRssFile:\t    8468 kB\n";
        assert_eq!(parse_status_kib(status, "RssAnon")?, 2436);
        assert!(parse_status_kib(status, "Rss").is_err(), "a prefix of a field name is not the field");
        Ok(())
    }
}
