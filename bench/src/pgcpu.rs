//! CPU spent inside PostgreSQL on behalf of each exporter.
//!
//! Method: an exporter's backends are the rows of `pg_stat_activity` whose
//! `client_port` is the local port of a TCP socket the exporter process holds
//! open to the server (its `/proc/PID/fd` → `socket:[inode]` → the inode's row
//! in `/proc/net/tcp{,6}`). That works whatever `application_name` an exporter
//! sets (postgres_exporter sets none). A snapshot reads each backend's
//! `utime + stime` from `/proc/<backend pid>/stat`; snapshots are taken before
//! and after a phase, never during it, and the bench's own `psql` runs in a
//! backend of its own that is never counted.
//!
//! Limits: a backend that exits during a phase (a pool closing a connection)
//! takes its CPU since the "before" snapshot with it: the figure is then a
//! lower bound and the report says so ([`CpuDelta::exited`]). A backend opened
//! during the phase counts whole. Background processes (autovacuum, the
//! checkpointer, the stats machinery) are nobody's. The isolated
//! `pg_stat_statements` phase is the cross-check: it sees executor and planner
//! time per statement, not connection or protocol overhead.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use anyhow::{Context as _, Result, bail};

use crate::procfs;
use crate::services::Psql;

/// One client backend from `pg_stat_activity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityRow {
    pub pid: u32,
    pub client_port: u16,
    pub application_name: String,
}

/// Client backends other than the querying one, connected over TCP.
pub const ACTIVITY_SQL: &str = "SELECT pid, client_port, application_name FROM pg_stat_activity \
     WHERE backend_type = 'client backend' AND client_port IS NOT NULL AND client_port > 0 \
     AND pid <> pg_backend_pid()";

/// Parses `psql -A -t -F '\t'` output of [`ACTIVITY_SQL`]: `pid<TAB>port<TAB>app`.
pub fn parse_activity(text: &str) -> Result<Vec<ActivityRow>> {
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.splitn(3, '\t');
        let (Some(pid), Some(port)) = (fields.next(), fields.next()) else {
            bail!("pg_stat_activity row {line:?}: expected pid, client_port, application_name");
        };
        rows.push(ActivityRow {
            pid: pid.trim().parse().with_context(|| format!("pg_stat_activity: bad pid in {line:?}"))?,
            client_port: port
                .trim()
                .parse()
                .with_context(|| format!("pg_stat_activity: bad client_port in {line:?}"))?,
            application_name: fields.next().unwrap_or_default().to_owned(),
        });
    }
    Ok(rows)
}

/// One row of `/proc/net/tcp` or `/proc/net/tcp6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSocket {
    pub local_port: u16,
    pub remote_port: u16,
    pub inode: u64,
}

/// Parses `/proc/net/tcp{,6}` text (header skipped, odd lines ignored). Ports
/// are the hex digits after the last `:` of `local_address` / `rem_address`;
/// the inode is the tenth field.
pub fn parse_proc_net_tcp(text: &str) -> Vec<TcpSocket> {
    let port = |addr: &str| u16::from_str_radix(addr.rsplit_once(':')?.1, 16).ok();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some(TcpSocket {
                local_port: port(fields.get(1)?)?,
                remote_port: port(fields.get(2)?)?,
                inode: fields.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// The inode of a `/proc/PID/fd/N` link target `socket:[12345]`.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// Local ports of the sockets in `inodes` connected to remote port `server_port`.
pub fn client_ports(sockets: &[TcpSocket], inodes: &HashSet<u64>, server_port: u16) -> BTreeSet<u16> {
    sockets
        .iter()
        .filter(|s| s.remote_port == server_port && s.inode != 0 && inodes.contains(&s.inode))
        .map(|s| s.local_port)
        .collect()
}

/// An exporter's backends at one instant: CPU ticks per backend PID, and the
/// application names they report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backends {
    pub ticks: BTreeMap<u32, u64>,
    pub app_names: BTreeSet<String>,
}

/// CPU of an exporter's backends between two snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuDelta {
    pub ticks: u64,
    /// Backends in the "after" snapshot.
    pub backends: usize,
    /// Backends that appeared during the phase (counted whole).
    pub opened: usize,
    /// Backends that were gone by the end (their CPU in the phase is lost).
    pub exited: usize,
}

/// `after − before` per backend; a backend new in `after` counts from zero.
pub fn delta(before: &Backends, after: &Backends) -> CpuDelta {
    let mut d = CpuDelta { backends: after.ticks.len(), ..CpuDelta::default() };
    for (pid, &now) in &after.ticks {
        match before.ticks.get(pid) {
            Some(&then) => d.ticks += now.saturating_sub(then),
            None => {
                d.ticks += now;
                d.opened += 1;
            }
        }
    }
    d.exited = before.ticks.keys().filter(|pid| !after.ticks.contains_key(pid)).count();
    d
}

/// Groups `rows` by owner: `owners` maps an owner key to the local ports its
/// process holds open to the server.
pub fn attribute<K: Ord + Copy>(
    rows: &[ActivityRow],
    owners: &BTreeMap<K, BTreeSet<u16>>,
) -> BTreeMap<K, Vec<ActivityRow>> {
    owners
        .iter()
        .map(|(&k, ports)| (k, rows.iter().filter(|r| ports.contains(&r.client_port)).cloned().collect()))
        .collect()
}

fn socket_inodes(pid: u32) -> Result<HashSet<u64>> {
    let dir = format!("/proc/{pid}/fd");
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        // fds come and go while we read: skip the ones already closed.
        let Ok(entry) = entry else { continue };
        if let Ok(link) = std::fs::read_link(entry.path())
            && let Some(inode) = link.to_str().and_then(socket_inode)
        {
            inodes.insert(inode);
        }
    }
    Ok(inodes)
}

fn tcp_sockets() -> Result<Vec<TcpSocket>> {
    let mut all =
        parse_proc_net_tcp(&std::fs::read_to_string("/proc/net/tcp").context("reading /proc/net/tcp")?);
    // IPv6 may be disabled; then there is no tcp6 table.
    if let Ok(text) = std::fs::read_to_string("/proc/net/tcp6") {
        all.extend(parse_proc_net_tcp(&text));
    }
    Ok(all)
}

/// Snapshots of the backends of each exporter process (`pids`, keyed by the
/// caller's index) connected to the server on `server_port`.
pub fn snapshot(psql: &Psql, server_port: u16, pids: &[(usize, u32)]) -> Result<BTreeMap<usize, Backends>> {
    let rows = parse_activity(&psql.query(ACTIVITY_SQL)?)?;
    let sockets = tcp_sockets()?;
    let mut owners = BTreeMap::new();
    for &(key, pid) in pids {
        owners.insert(key, client_ports(&sockets, &socket_inodes(pid)?, server_port));
    }
    let mut out = BTreeMap::new();
    for (key, rows) in attribute(&rows, &owners) {
        let mut b = Backends::default();
        for r in rows {
            // A backend that exited since the query is simply absent.
            if let Ok(t) = procfs::cpu_ticks(r.pid) {
                b.ticks.insert(r.pid, t);
                b.app_names.insert(r.application_name);
            }
        }
        out.insert(key, b);
    }
    Ok(out)
}

/// One statement of an exporter, summed over the isolated statements phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub calls: f64,
    pub exec_ms: f64,
    pub plan_ms: f64,
    pub rows: f64,
    pub query: String,
}

impl Statement {
    pub fn total_ms(&self) -> f64 {
        self.exec_ms + self.plan_ms
    }
}

/// Everything `pg_stat_statements` holds except the bench's own reset and
/// this read (whose planning is recorded before it runs; the comment marks
/// it), heaviest first, query text on one line.
pub const STATEMENTS_SQL: &str = "/* opsmon-bench-read */ SELECT calls, total_exec_time, total_plan_time, rows, \
     left(regexp_replace(query, '\\s+', ' ', 'g'), 300) FROM pg_stat_statements \
     WHERE query NOT LIKE '%pg_stat_statements_reset%' AND query NOT LIKE '%opsmon-bench-read%' \
     ORDER BY total_exec_time + total_plan_time DESC";

/// Parses `psql` output of [`STATEMENTS_SQL`].
pub fn parse_statements(text: &str) -> Result<Vec<Statement>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.splitn(5, '\t').collect();
        let [calls, exec, plan, rows, query] = f.as_slice() else {
            bail!("pg_stat_statements row {line:?}: expected 5 tab-separated fields");
        };
        let num = |s: &str, what: &str| -> Result<f64> {
            s.trim().parse().with_context(|| format!("pg_stat_statements: bad {what} {s:?}"))
        };
        out.push(Statement {
            calls: num(calls, "calls")?,
            exec_ms: num(exec, "total_exec_time")?,
            plan_ms: num(plan, "total_plan_time")?,
            rows: num(rows, "rows")?,
            query: (*query).to_owned(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_activity_rows() -> Result<()> {
        let text = "11933\t47338\t\n11950\t51000\topsmon-exporter\n\n11951\t51002\tweird\tname\n";
        let rows = parse_activity(text)?;
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0], ActivityRow { pid: 11933, client_port: 47338, application_name: String::new() });
        assert_eq!(rows[1].application_name, "opsmon-exporter");
        assert_eq!(rows[2].application_name, "weird\tname");
        assert!(parse_activity("12\n").is_err());
        assert!(parse_activity("x\t1\tapp\n").is_err());
        assert!(parse_activity("1\t70000\tapp\n").is_err());
        assert_eq!(parse_activity("")?, vec![]);
        Ok(())
    }

    // Real lines: a listener on 55432 (0xD888) and two clients connected to it.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   1: 0100007F:D888 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 123888 1 0000000036d1395e 100 0 0 10 0
  28: 0100007F:B8EA 0100007F:D888 01 00000000:00000000 02:0000024C 00000000     0        0 123903 2 00000000b4c5c987 20 4 0 18 -1
  29: 0100007F:B8F4 0100007F:D888 01 00000000:00000000 02:0000024C 00000000     0        0 124646 2 00000000801f893c 20 4 14 18 -1
  30: 0100007F:D888 0100007F:B8EA 01 00000000:00000000 00:00000000 00000000   101        0 123904 1 0000000000000000 20 4 0 10 -1
  31: garbage
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:C001 00000000000000000000000001000000:D888 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 20 4 0 10 -1
";

    #[test]
    fn parses_proc_net_tcp_and_finds_client_ports() {
        let mut sockets = parse_proc_net_tcp(TCP);
        assert_eq!(sockets.len(), 4);
        assert_eq!(sockets[1], TcpSocket { local_port: 47338, remote_port: 55432, inode: 123903 });
        sockets.extend(parse_proc_net_tcp(TCP6));
        assert_eq!(sockets.last().map(|s| s.local_port), Some(0xC001));

        // The exporter holds its listener (123895), both client sockets and the v6 one.
        let inodes: HashSet<u64> = [123895, 123903, 124646, 777].into();
        let ports = client_ports(&sockets, &inodes, 55432);
        assert_eq!(ports.into_iter().collect::<Vec<_>>(), vec![47338, 47348, 0xC001]);
        // The server side (remote port = the client's) is not a client socket.
        assert!(client_ports(&sockets, &[123904].into(), 55432).is_empty());
        assert!(client_ports(&sockets, &inodes, 5432).is_empty());
    }

    #[test]
    fn finds_own_client_socket_through_proc() -> Result<()> {
        // Live check of the fd → inode → /proc/net/tcp path on this process.
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let server_port = listener.local_addr()?.port();
        let client = std::net::TcpStream::connect(("127.0.0.1", server_port))?;
        let (_accepted, _) = listener.accept()?;
        let ports = client_ports(&tcp_sockets()?, &socket_inodes(std::process::id())?, server_port);
        assert!(ports.contains(&client.local_addr()?.port()), "{ports:?}");
        Ok(())
    }

    #[test]
    fn reads_socket_inodes_from_fd_links() {
        assert_eq!(socket_inode("socket:[123903]"), Some(123903));
        assert_eq!(socket_inode("pipe:[5]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
    }

    #[test]
    fn attributes_backends_by_client_port() {
        let row = |pid, port, app: &str| ActivityRow { pid, client_port: port, application_name: app.into() };
        let rows = [row(1, 100, "opsmon-exporter"), row(2, 200, ""), row(3, 201, ""), row(4, 300, "psql")];
        let owners: BTreeMap<usize, BTreeSet<u16>> = [(0, [100].into()), (1, [200, 201].into())].into();
        let by = attribute(&rows, &owners);
        assert_eq!(by[&0].iter().map(|r| r.pid).collect::<Vec<_>>(), vec![1]);
        assert_eq!(by[&1].iter().map(|r| r.pid).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(by.len(), 2, "psql's backend belongs to nobody");
    }

    #[test]
    fn delta_counts_new_backends_whole_and_flags_exited_ones() {
        let b =
            |pairs: &[(u32, u64)]| Backends { ticks: pairs.iter().copied().collect(), ..Backends::default() };
        let d = delta(&b(&[(10, 100), (11, 50)]), &b(&[(10, 130), (11, 55)]));
        assert_eq!(d, CpuDelta { ticks: 35, backends: 2, opened: 0, exited: 0 });
        // 11 exited (its ticks since "before" are lost), 12 opened (counts whole).
        let d = delta(&b(&[(10, 100), (11, 50)]), &b(&[(10, 110), (12, 7)]));
        assert_eq!(d, CpuDelta { ticks: 17, backends: 2, opened: 1, exited: 1 });
        // A counter never goes back; a reused PID would: clamp at zero.
        assert_eq!(delta(&b(&[(10, 100)]), &b(&[(10, 90)])).ticks, 0);
    }

    #[test]
    fn parses_statements() -> Result<()> {
        let text = "200\t12.5\t3.25\t1800\tSELECT d.datname, s.state FROM pg_database d WHERE x = $1\n\
                    200\t0.4\t0\t200\tSELECT $1\n";
        let s = parse_statements(text)?;
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].calls, 200.0);
        assert!((s[0].total_ms() - 15.75).abs() < 1e-9);
        assert_eq!(s[1].query, "SELECT $1");
        assert!(parse_statements("1\t2\t3\tSELECT\n").is_err());
        assert!(parse_statements("x\t2\t3\t4\tSELECT 1\n").is_err());
        Ok(())
    }
}
