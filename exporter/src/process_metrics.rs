//! The `process_*` families every Go exporter serves (client_golang's
//! process collector), read from /proc/self on each scrape of /metrics. The
//! start time never changes, so boot time is read once.

use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::OnceLock;

use opsmon_catalog::selfmon;
use rustix::fs::{Mode, OFlags, RawDir};

use crate::collectors::read_kernel_file;
use crate::metrics::MetricSet;

/// The fields of /proc/self/stat the families need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SelfStat {
    cpu_ticks: u64,
    start_ticks: u64,
    virtual_bytes: u64,
    resident_pages: u64,
}

/// Parses /proc/PID/stat; the name between the first `(` and the last `)`
/// may contain anything, so fields are counted after it.
fn parse_stat(text: &str) -> Option<SelfStat> {
    let close = text.rfind(')')?;
    let rest: Vec<&str> = text.get(close + 1..)?.split_ascii_whitespace().collect();
    // `rest[0]` is field 3 (state).
    let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(SelfStat {
        cpu_ticks: field(14)?.saturating_add(field(15)?),
        start_ticks: field(22)?,
        virtual_bytes: field(23)?,
        resident_pages: field(24)?,
    })
}

/// `btime` of /proc/stat: boot time, Unix seconds.
fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat.lines().find_map(|line| line.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

/// Adds the process families to `out`; a /proc file that cannot be read
/// leaves its families out rather than failing the scrape.
pub fn collect(out: &mut MetricSet) {
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    if let Some(stat) = read_kernel_file(Path::new("/proc/self/stat")).ok().as_deref().and_then(parse_stat) {
        out.single(&selfmon::PROCESS_CPU, stat.cpu_ticks as f64 / ticks);
        out.single(&selfmon::PROCESS_VIRTUAL_MEMORY, stat.virtual_bytes as f64);
        out.single(
            &selfmon::PROCESS_RESIDENT_MEMORY,
            stat.resident_pages as f64 * rustix::param::page_size() as f64,
        );
        static START_TIME: OnceLock<Option<f64>> = OnceLock::new();
        let start_time = START_TIME.get_or_init(|| {
            let boot = read_kernel_file(Path::new("/proc/stat")).ok().as_deref().and_then(boot_time)?;
            Some(boot as f64 + stat.start_ticks as f64 / ticks)
        });
        if let Some(start_time) = start_time {
            out.single(&selfmon::PROCESS_START_TIME, *start_time);
        }
    }
    if let Some(open) = open_fds() {
        out.single(&selfmon::PROCESS_OPEN_FDS, open as f64);
    }
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if let Some(current) = limit.current {
        out.single(&selfmon::PROCESS_MAX_FDS, current as f64);
    }
}

/// The process's open descriptors, as client_golang counts them: the entries
/// of /proc/self/fd, the listing's own descriptor among them. Since Linux 6.2
/// `stat` of that directory gives the count as its size without listing it
/// (the listing costs the kernel a dentry per descriptor, and process groups
/// keep up to a thousand /proc files open); older kernels report size 0 and
/// are listed.
fn open_fds() -> Option<usize> {
    if let Ok(stat) = rustix::fs::stat("/proc/self/fd")
        && let Ok(open) = usize::try_from(stat.st_size)
        && open > 0
    {
        // One more for the descriptor a listing would have held.
        return Some(open + 1);
    }
    listed_fds()
}

/// The entries of /proc/self/fd, read straight into a stack buffer: a name
/// allocated per entry would cost more than the listing.
fn listed_fds() -> Option<usize> {
    let dir = rustix::fs::open(
        "/proc/self/fd",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut buf = [MaybeUninit::<u8>::uninit(); 8192];
    let mut entries = RawDir::new(&dir, &mut buf);
    let mut count = 0;
    while let Some(entry) = entries.next() {
        let entry = entry.ok()?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            count += 1;
        }
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_name_with_spaces_and_parentheses() {
        let text = "4242 (opsmon (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 6 0 123456 987654321 2048 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(text),
            Some(SelfStat {
                cpu_ticks: 300,
                start_ticks: 123_456,
                virtual_bytes: 987_654_321,
                resident_pages: 2048
            })
        );
        assert_eq!(parse_stat("4242 (truncated) S 1 2"), None);
        assert_eq!(boot_time("cpu 1 2 3\nbtime 1764093226\nprocesses 5\n"), Some(1_764_093_226));
    }

    #[test]
    fn open_descriptors_are_counted() {
        let before = open_fds().expect("counts");
        let held: Vec<std::fs::File> =
            (0..40).map(|_| std::fs::File::open("/proc/self/stat").expect("opens")).collect();
        let during = open_fds().expect("counts");
        drop(held);
        // Other tests' threads open and close files meanwhile: a margin, not exactness.
        let grew = i64::try_from(during).expect("small") - i64::try_from(before).expect("small");
        assert!((35..=45).contains(&grew), "{before} → {during}");
    }

    #[test]
    fn the_directory_size_and_the_listing_agree() {
        let listed = listed_fds().expect("lists");
        let counted = open_fds().expect("counts");
        // The same figure on kernels that report the size, both ways on older ones;
        // other tests' threads open and close files meanwhile.
        let apart = i64::try_from(counted).expect("small") - i64::try_from(listed).expect("small");
        assert!(apart.abs() <= 5, "{counted} by size, {listed} listed");
    }

    #[test]
    fn own_process_figures_are_plausible() {
        let mut out = MetricSet::new();
        collect(&mut out);
        let text = out.encode_text();
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
        };
        assert!(value("process_resident_memory_bytes") > 100_000.0);
        assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
        assert!(value("process_open_fds") >= 3.0);

        assert!(value("process_max_fds") >= value("process_open_fds"));
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();
        let started = value("process_start_time_seconds");
        assert!(started <= now + 1.0 && started > now - 86_400.0, "{started} vs {now}");
        assert!(value("process_cpu_seconds_total") >= 0.0);
    }
}
