//! Pure parsers for the /proc files the host collector reads. Each takes the
//! file's text and returns typed values, so they are tested on fixtures
//! captured from real machines.

use std::collections::BTreeSet;

/// Cumulative CPU time of one CPU, in clock ticks, from a `cpuN` line of /proc/stat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuTimes {
    /// The CPU's index (`cpu3` → `3`).
    pub cpu: String,
    /// Ticks in the modes node_exporter reports, in [`CPU_MODES`] order.
    pub ticks: [u64; 8],
}

/// The modes of `node_cpu_seconds_total`, in /proc/stat column order. Guest
/// time is already included in `user`/`nice`, so node_exporter leaves it out.
pub const CPU_MODES: [&str; 8] = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];

/// What the host collector takes from /proc/stat.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stat {
    /// One entry per `cpuN` line (the aggregate `cpu` line is skipped).
    pub cpus: Vec<CpuTimes>,
    /// `btime`: boot time as a Unix timestamp.
    pub boot_time: Option<u64>,
}

/// Parses /proc/stat.
pub fn parse_stat(text: &str) -> Result<Stat, String> {
    let mut stat = Stat::default();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(key) = fields.next() else { continue };
        if let Some(index) = key.strip_prefix("cpu") {
            if index.is_empty() {
                continue;
            }
            let mut ticks = [0u64; 8];
            for (slot, field) in ticks.iter_mut().zip(fields.by_ref()) {
                *slot =
                    field.parse().map_err(|_| format!("/proc/stat: bad number {field:?} in {key} line"))?;
            }
            stat.cpus.push(CpuTimes { cpu: index.to_owned(), ticks });
        } else if key == "btime" {
            let value = fields.next().ok_or("/proc/stat: btime without value")?;
            stat.boot_time = Some(value.parse().map_err(|_| format!("/proc/stat: bad btime {value:?}"))?);
        }
    }
    if stat.cpus.is_empty() {
        return Err("/proc/stat: no cpuN lines".into());
    }
    Ok(stat)
}

/// Parses /proc/loadavg into the 1, 5 and 15 minute averages.
pub fn parse_loadavg(text: &str) -> Result<[f64; 3], String> {
    let mut fields = text.split_ascii_whitespace();
    let mut load = [0.0; 3];
    for slot in &mut load {
        let field = fields.next().ok_or("/proc/loadavg: fewer than 3 fields")?;
        *slot = field.parse().map_err(|_| format!("/proc/loadavg: bad number {field:?}"))?;
    }
    Ok(load)
}

/// Parses /proc/meminfo into `(field, bytes)` pairs, values converted from kB.
/// Fields without a unit (HugePages counts) are kept as plain numbers.
pub fn parse_meminfo(text: &str) -> Vec<(&str, f64)> {
    text.lines()
        .filter_map(|line| {
            let (key, rest) = line.split_once(':')?;
            let mut parts = rest.split_ascii_whitespace();
            let value: f64 = parts.next()?.parse().ok()?;
            let factor = if parts.next() == Some("kB") { 1024.0 } else { 1.0 };
            Some((key.trim(), value * factor))
        })
        .collect()
}

/// Counters of one interface from /proc/net/dev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDev {
    /// Interface name.
    pub device: String,
    /// receive bytes, packets, errs, drop.
    pub receive: [u64; 4],
    /// transmit bytes, packets, errs, drop.
    pub transmit: [u64; 4],
}

/// Parses /proc/net/dev.
pub fn parse_net_dev(text: &str) -> Result<Vec<NetDev>, String> {
    let mut devices = Vec::new();
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else { continue };
        let values: Vec<u64> = counters
            .split_ascii_whitespace()
            .map(|v| v.parse().map_err(|_| format!("/proc/net/dev: bad number {v:?} for {}", name.trim())))
            .collect::<Result<_, _>>()?;
        if values.len() < 12 {
            return Err(format!("/proc/net/dev: {} has {} columns, expected 16", name.trim(), values.len()));
        }
        devices.push(NetDev {
            device: name.trim().to_owned(),
            receive: [values[0], values[1], values[2], values[3]],
            transmit: [values[8], values[9], values[10], values[11]],
        });
    }
    Ok(devices)
}

/// The counters of one block device from /proc/diskstats, in the kernel's
/// column order: 11 on kernels before 4.18, 15 with discards, 17 with flushes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskStats {
    /// Device name (`vda`, `nvme0n1`).
    pub device: String,
    /// The counters after the name; as many as this kernel reports.
    pub counters: Vec<u64>,
}

/// Parses /proc/diskstats, leaving out the devices node_exporter ignores by
/// default (partitions, ram, loop and floppy devices). A line that does not
/// parse is skipped: a device can vanish while the file is read.
pub fn parse_diskstats(text: &str) -> Vec<DiskStats> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let (_major, _minor, device) = (fields.next()?, fields.next()?, fields.next()?);
            if ignored_disk(device) {
                return None;
            }
            let counters: Vec<u64> = fields.map(|v| v.parse().ok()).collect::<Option<_>>()?;
            (counters.len() >= 11).then(|| DiskStats { device: device.to_owned(), counters })
        })
        .collect()
}

/// node_exporter's default `--collector.diskstats.device-exclude`:
/// `^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`.
pub fn ignored_disk(device: &str) -> bool {
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    for prefix in ["ram", "loop", "fd"] {
        if device.strip_prefix(prefix).is_some_and(digits_only) {
            return true;
        }
    }
    for prefix in ["hd", "sd", "vd", "xvd"] {
        if let Some(rest) = device.strip_prefix(prefix) {
            let mut chars = rest.chars();
            if chars.next().is_some_and(|c| c.is_ascii_lowercase()) && digits_only(chars.as_str()) {
                return true;
            }
        }
    }
    // nvme<N>n<N>p<N>: a partition of an NVMe namespace.
    if let Some(rest) = device.strip_prefix("nvme")
        && let Some((controller, rest)) = rest.split_once('n')
        && let Some((namespace, partition)) = rest.split_once('p')
    {
        return digits_only(controller) && digits_only(namespace) && digits_only(partition);
    }
    false
}

/// Parses /proc/vmstat into `(field, value)` pairs; lines that do not parse are skipped.
pub fn parse_vmstat(text: &str) -> Vec<(&str, f64)> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key, value.trim().parse().ok()?))
        })
        .collect()
}

/// Parses /proc/sys/fs/file-nr (`allocated unused maximum`) into (allocated, maximum).
pub fn parse_file_nr(text: &str) -> Result<(f64, f64), String> {
    let fields: Vec<f64> = text
        .split_ascii_whitespace()
        .map(|v| v.parse().map_err(|_| format!("/proc/sys/fs/file-nr: bad number {v:?}")))
        .collect::<Result<_, _>>()?;
    match fields[..] {
        [allocated, _unused, maximum] => Ok((allocated, maximum)),
        _ => Err(format!("/proc/sys/fs/file-nr: {} fields, expected 3", fields.len())),
    }
}

/// One line of a mounts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Source device (`/dev/vda1`, `tmpfs`).
    pub device: String,
    /// Where it is mounted, with `\040`-style escapes decoded.
    pub mount_point: String,
    /// Filesystem type.
    pub fs_type: String,
    /// Whether the options include `ro`.
    pub read_only: bool,
}

/// Parses /proc/PID/mounts.
pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let device = unescape_octal(fields.next()?);
            let mount_point = unescape_octal(fields.next()?);
            let fs_type = fields.next()?.to_owned();
            let read_only = fields.next()?.split(',').any(|option| option == "ro");
            Some(Mount { device, mount_point, fs_type, read_only })
        })
        .collect()
}

/// Decodes the kernel's `\ooo` escapes (space, tab, newline, backslash).
fn unescape_octal(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_owned();
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let digits = &field[i + 1..i + 4];
            if let Ok(byte) = u8::from_str_radix(digits, 8) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Ports with a socket in LISTEN state, from /proc/net/tcp or /proc/net/tcp6.
pub fn parse_listening_ports(text: &str, ports: &mut BTreeSet<u16>) {
    const LISTEN: &str = "0A";
    for line in text.lines().skip(1) {
        let mut fields = line.split_ascii_whitespace();
        let (Some(_slot), Some(local), Some(_remote), Some(state)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if state != LISTEN {
            continue;
        }
        if let Some(port) = local.rsplit_once(':').and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok()) {
            ports.insert(port);
        }
    }
}

/// The fields of /proc/PID/stat the process groups need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidStat {
    /// Process name, as in `comm` (at most 15 bytes).
    pub comm: String,
    /// User plus system CPU time in clock ticks.
    pub cpu_ticks: u64,
    /// Resident set size in pages.
    pub rss_pages: u64,
}

/// Parses /proc/PID/stat. The name is the text between the first `(` and the
/// last `)`, since it may itself contain spaces and parentheses.
pub fn parse_pid_stat(text: &str) -> Option<PidStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    // Fields after the name, starting with field 3 (state).
    let rest: Vec<&str> = text.get(close + 1..)?.split_ascii_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(PidStat { comm, cpu_ticks: field(14)? + field(15)?, rss_pages: field(24)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = include_str!("../../../tests/fixtures/proc/stat");
    const MEMINFO: &str = include_str!("../../../tests/fixtures/proc/meminfo");
    const NET_DEV: &str = include_str!("../../../tests/fixtures/proc/net_dev");
    const MOUNTS: &str = include_str!("../../../tests/fixtures/proc/mounts");
    const TCP: &str = include_str!("../../../tests/fixtures/proc/net_tcp");
    const TCP6: &str = include_str!("../../../tests/fixtures/proc/net_tcp6");
    const DISKSTATS: &str = include_str!("../../../tests/fixtures/proc/diskstats");
    const VMSTAT: &str = include_str!("../../../tests/fixtures/proc/vmstat");

    /// This machine's /proc/diskstats (vda, zram0, loop devices) with an NVMe
    /// disk and partition, a ram disk and a pre-4.18 (11-counter) SCSI disk
    /// and partition appended.
    #[test]
    fn diskstats_whole_devices_only() {
        let disks = parse_diskstats(DISKSTATS);
        let names: Vec<&str> = disks.iter().map(|d| d.device.as_str()).collect();
        assert_eq!(names, ["vda", "zram0", "nvme0n1", "sdb"], "loop, ram and partitions are left out");
        assert_eq!(disks[0].counters.len(), 17);
        assert_eq!(disks[0].counters[..4], [86_009, 9_444, 5_962_834, 40_374]);
        assert_eq!(disks[0].counters[9], 11_396, "milliseconds doing I/O");
        assert_eq!(disks[3].counters.len(), 11, "a pre-4.18 kernel line has 11 counters");
    }

    #[test]
    fn diskstats_bad_lines_are_skipped() {
        let text = "254 0 vda 1 2 3 4 5 6 7 8 9 10 11\n254 16 vdb 1 2\n8 0 sda x 2 3 4 5 6 7 8 9 10 11\n\n";
        let disks = parse_diskstats(text);
        assert_eq!(disks.len(), 1, "{disks:?}");
        assert_eq!(disks[0].device, "vda");
        // 2^64-1: a counter about to wrap is still a counter.
        let wrapping = parse_diskstats("8 0 sda 18446744073709551615 0 0 0 0 0 0 0 0 0 0\n");
        assert_eq!(wrapping[0].counters[0], u64::MAX);
    }

    #[test]
    fn ignored_devices_match_node_exporter() {
        for device in ["loop0", "ram15", "fd0", "sda1", "vda2", "xvdb12", "hdc3", "nvme0n1p2"] {
            assert!(ignored_disk(device), "{device}");
        }
        for device in ["sda", "vda", "nvme0n1", "zram0", "dm-0", "md127", "mmcblk0", "loop", "sda1x"] {
            assert!(!ignored_disk(device), "{device}");
        }
    }

    #[test]
    fn vmstat_and_file_nr() {
        let fields = parse_vmstat(VMSTAT);
        let get = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        assert_eq!(get("pgmajfault"), Some(3_339.0));
        assert_eq!(get("pgfault"), Some(23_441_298.0));
        assert_eq!(get("oom_kill"), Some(0.0));
        assert_eq!(parse_file_nr("1166\t0\t2466165\n"), Ok((1_166.0, 2_466_165.0)));
        assert!(parse_file_nr("1166 0\n").is_err());
        assert!(parse_file_nr("a b c\n").is_err());
    }

    #[test]
    fn stat_per_cpu_ticks_and_boot_time() {
        let stat = parse_stat(STAT).expect("fixture parses");
        assert_eq!(stat.cpus.len(), 2);
        assert_eq!(stat.cpus[0].cpu, "0");
        assert_eq!(stat.cpus[0].ticks, [31_226, 54, 12_480, 1_936_417, 1_003, 0, 441, 17]);
        assert_eq!(stat.cpus[1].cpu, "1");
        assert_eq!(stat.boot_time, Some(1_764_093_226));
        assert!(parse_stat("intr 1 2 3\n").is_err());
        assert!(parse_stat("cpu0 1 x 3\n").is_err());
    }

    #[test]
    fn loadavg() {
        assert_eq!(parse_loadavg("0.52 0.58 0.59 3/1127 912881\n"), Ok([0.52, 0.58, 0.59]));
        assert!(parse_loadavg("0.52\n").is_err());
    }

    #[test]
    fn meminfo_in_bytes() {
        let fields = parse_meminfo(MEMINFO);
        let get = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        assert_eq!(get("MemTotal"), Some(24_614_008.0 * 1024.0));
        assert_eq!(get("MemAvailable"), Some(22_016_756.0 * 1024.0));
        assert_eq!(get("SwapFree"), Some(0.0));
        assert_eq!(get("HugePages_Total"), Some(0.0), "unitless fields are not scaled");
    }

    #[test]
    fn net_dev_counters() {
        let devices = parse_net_dev(NET_DEV).expect("fixture parses");
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[0].device, "lo");
        assert_eq!(devices[1].device, "eth0");
        assert_eq!(devices[1].receive, [1_572_869_455, 1_147_093, 3, 12]);
        assert_eq!(devices[1].transmit, [26_883_203, 319_612, 0, 1]);
    }

    #[test]
    fn mounts_with_escapes_and_options() {
        let mounts = parse_mounts(MOUNTS);
        let root = mounts.iter().find(|m| m.mount_point == "/").expect("root");
        assert_eq!(root.device, "/dev/vda1");
        assert_eq!(root.fs_type, "ext4");
        assert!(!root.read_only);
        let spaced = mounts.iter().find(|m| m.mount_point == "/mnt/my disk").expect("escaped space decoded");
        assert!(spaced.read_only);
        assert_eq!(unescape_octal("a\\134b"), "a\\b");
        assert_eq!(unescape_octal("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn listening_ports_from_tcp_and_tcp6() {
        let mut ports = BTreeSet::new();
        parse_listening_ports(TCP, &mut ports);
        parse_listening_ports(TCP6, &mut ports);
        assert_eq!(ports.into_iter().collect::<Vec<_>>(), vec![22, 3000, 5432, 6379]);
    }

    #[test]
    fn pid_stat_with_parentheses_in_the_name() {
        let stat = parse_pid_stat(
            "4242 (node (worker) x) S 1 4242 4242 0 -1 4194560 9186 0 0 0 250 50 0 0 20 0 11 0 1939 1193906176 12345 18446744073709551615 1 1 0 0 0 0 0 4096 134234626 0 0 0 17 1 0 0 0 0 0",
        )
        .expect("parses");
        assert_eq!(stat.comm, "node (worker) x");
        assert_eq!(stat.cpu_ticks, 300);
        assert_eq!(stat.rss_pages, 12_345);
        assert_eq!(parse_pid_stat("12 (short) S 1"), None);
    }
}
