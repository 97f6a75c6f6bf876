//! `--sweep DIM,…`: how the cost of one scrape grows with each work
//! dimension (process groups, mounts, listening ports, the host's TCP
//! connections, access-log routes × status codes, directory entries,
//! business series) for opsmon-exporter and, where one does the same job,
//! the peer: process-exporter for process groups, node_exporter's filesystem
//! collector for mounts and its tcpstat collector for connections, mtail
//! with an equivalent program for access-log routes, postgres_exporter's
//! custom queries for business series (against the
//! sweep's own PostgreSQL); and how `rulegen`'s time grows with the number
//! of alerts. For each size it starts fresh processes with that much work,
//! scrapes them interleaved, and takes the exact CPU time from
//! `/proc/PID/task/*/schedstat`. It reports a table per dimension, the
//! least-squares slope, the marginal cost per segment and a linearity
//! verdict, and writes one SVG line chart per dimension.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use hyper::StatusCode;

use crate::procfs;
use crate::scrape::{self, HttpClient};
use crate::services::{self, Postgres, Psql};
use crate::stats;
use crate::svg::{self, Chart, Line};
use crate::target::{Fleet, Launch, Target, free_loopback_addr};
use crate::{Args, Plan};

/// A work dimension swept by `--sweep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    ProcessGroups,
    Mounts,
    ListenPorts,
    Connections,
    Routes,
    DirEntries,
    BusinessSeries,
    PgTables,
    Rulegen,
}

impl Dim {
    pub const ALL: [Dim; 9] = [
        Dim::ProcessGroups,
        Dim::Mounts,
        Dim::ListenPorts,
        Dim::Connections,
        Dim::Routes,
        Dim::DirEntries,
        Dim::BusinessSeries,
        Dim::PgTables,
        Dim::Rulegen,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dim::ProcessGroups => "process-groups",
            Dim::Mounts => "mounts",
            Dim::ListenPorts => "listen-ports",
            Dim::Connections => "connections",
            Dim::Routes => "routes",
            Dim::DirEntries => "dir-entries",
            Dim::BusinessSeries => "business-series",
            Dim::PgTables => "pg-tables",
            Dim::Rulegen => "rulegen",
        }
    }

    /// What one unit of work is, for the table and the plot.
    fn unit(self) -> &'static str {
        match self {
            Dim::ProcessGroups => "process groups (each matching one running process)",
            Dim::Mounts => "mounted filesystems (tmpfs, besides the machine's own)",
            Dim::ListenPorts => "configured listening ports (each with a listening socket)",
            Dim::Connections => "established TCP connections on the host (one listening port configured)",
            Dim::Routes => "access-log routes (× 6 status codes each)",
            Dim::DirEntries => "directory entries walked (files in one directory)",
            Dim::BusinessSeries => "business series (rows of one SQL query run every scrape)",
            Dim::PgTables => "tables in the monitored database (one of them configured under `tables:`)",
            Dim::Rulegen => "alerts in the threshold file",
        }
    }

    /// Default sizes: from one unit to the most a real host plausibly has
    /// (routes stop at the collector's limit of 100).
    fn sizes(self) -> Vec<u64> {
        match self {
            Dim::ProcessGroups => vec![1, 25, 50, 100, 200],
            Dim::Mounts => vec![1, 50, 100, 200, 400],
            Dim::ListenPorts => vec![1, 100, 200, 400, 800],
            Dim::Connections => vec![1, 1_000, 2_000, 4_000, 8_000],
            Dim::Routes => vec![1, 25, 50, 75, 100],
            Dim::DirEntries => vec![100, 10_000, 25_000, 50_000, 100_000],
            Dim::BusinessSeries => vec![1, 1_000, 2_500, 5_000, 10_000],
            Dim::PgTables => vec![1, 1_000, 2_000, 4_000, 8_000],
            Dim::Rulegen => vec![100, 500, 1_000, 2_000, 4_000],
        }
    }

    /// Whether the cost to watch is the scrape's wall time rather than the
    /// exporter's CPU: in pg-tables the work is PostgreSQL's (reading its
    /// catalog), and the exporter only waits for it.
    fn cost_is_wall(self) -> bool {
        self == Dim::PgTables
    }

    fn peer(self) -> Option<&'static str> {
        match self {
            Dim::ProcessGroups => Some("process-exporter"),
            Dim::Mounts => Some("node_exporter (filesystem only)"),
            Dim::Connections => Some("node_exporter (tcpstat only)"),
            Dim::Routes => Some("mtail"),
            Dim::BusinessSeries => Some("postgres_exporter (custom query)"),
            _ => None,
        }
    }
}

/// Parses `--sweep`'s comma-separated dimension names (`all` for every one).
pub fn parse_dims(text: &str) -> Result<Vec<Dim>> {
    let mut dims = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name == "all" {
            dims.extend(Dim::ALL);
            continue;
        }
        let Some(dim) = Dim::ALL.into_iter().find(|d| d.name() == name) else {
            let known: Vec<&str> = Dim::ALL.iter().map(|d| d.name()).collect();
            bail!("--sweep {name:?}: unknown dimension; use `all` or some of {}", known.join(", "));
        };
        dims.push(dim);
    }
    ensure!(!dims.is_empty(), "--sweep: name at least one dimension (or `all`)");
    dims.dedup();
    Ok(dims)
}

/// One size of one dimension: CPU per scrape (ms), median wall (ms) and series, per exporter.
#[derive(Debug, Clone, Default)]
pub struct Point {
    pub n: u64,
    pub ours: Option<Cost>,
    pub peer: Option<Cost>,
}

#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub cpu_ms: f64,
    pub wall_ms: f64,
    pub series: f64,
}

/// Processes the bench starts for one point and kills when dropped (the
/// sleepers process groups match).
#[derive(Debug, Default)]
struct Extras {
    children: Vec<Child>,
    _listeners: Vec<TcpListener>,
    connections: Vec<std::net::TcpStream>,
}

impl Drop for Extras {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Closed with a reset, not into TIME_WAIT: a minute of leftover sockets
        // would be walked by the next point's exporters too.
        for connection in &self.connections {
            let _ = rustix::net::sockopt::set_socket_linger(connection, Some(Duration::ZERO));
        }
    }
}

const OURS: &str = "sweep-opsmon";
const PEER: &str = "sweep-peer";

/// Runs every dimension in `dims`; returns the markdown report and writes
/// `sweep-DIM.svg` into `plots` (if given).
pub async fn run(
    args: &Args,
    fleet: &mut Fleet,
    plan: &Plan,
    dims: &[Dim],
    plots: Option<&Path>,
) -> Result<String> {
    let mut out = String::new();
    let exporter = std::env::current_dir()?.join(&args.exporter);
    let mut pg_port = None;
    for &dim in dims {
        eprintln!("opsmon-bench: sweep {}", dim.name());
        if matches!(dim, Dim::BusinessSeries | Dim::PgTables) && pg_port.is_none() {
            pg_port = Some(start_postgres(args, fleet)?);
        }
        let points = if dim == Dim::Rulegen {
            rulegen_points(&args.rulegen, &dim.sizes())?
        } else {
            let mut points = Vec::new();
            for n in dim.sizes() {
                eprintln!("opsmon-bench:   {} = {n}", dim.name());
                points.push(point(args, fleet, plan, &exporter, (dim, n), pg_port).await?);
            }
            points
        };
        out.push_str(&section(dim, &points));
        if let Some(dir) = plots {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join(format!("sweep-{}.svg", dim.name()));
            std::fs::write(&path, svg::render(&chart(dim, &points)))
                .with_context(|| format!("writing {}", path.display()))?;
            let _ = writeln!(out, "\n![{} sweep](plots/sweep-{}.svg)\n", dim.name(), dim.name());
        }
    }
    Ok(out)
}

/// The sweep's own PostgreSQL (trust auth on a free loopback port), kept
/// until the fleet stops; its port.
fn start_postgres(args: &Args, fleet: &mut Fleet) -> Result<u16> {
    let pg_bin = services::pg_bin_dir(args.pg_bin.as_deref())?;
    let dir = fleet.dir()?;
    // The postgres user must reach its data dir inside ours.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    let port = free_loopback_addr()?.port();
    eprintln!("opsmon-bench: initdb + PostgreSQL on 127.0.0.1:{port} ({})", pg_bin.display());
    let pg = Postgres::start(&pg_bin, &dir.join("sweep-pg"), port)?;
    fleet.keep(pg);
    Ok(port)
}

/// The same access-log work for mtail: requests by route and status and a
/// duration histogram by route with the shipped buckets, from the combined
/// format plus `$request_time` that the bench writes.
const MTAIL_ROUTES: &str = r#"counter http_requests_total by route, status
histogram http_request_duration_seconds by route buckets 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2.5, 5, 10

/^\S+ \S+ \S+ \[[^\]]+\] "\S+ \/(?P<route>[^\/ ]+)\/\S* \S+" (?P<status>\d{3}) \S+ "[^"]*" "[^"]*" (?P<rt>\d+\.\d+)$/ {
  http_requests_total[$route][$status]++
  http_request_duration_seconds[$route] = float($rt)
}
"#;

/// mtail tailing `log` with [`MTAIL_ROUTES`].
fn mtail_routes(args: &Args, dir: &Path, log: &Path) -> Result<Launch> {
    let progs = dir.join("mtail");
    std::fs::create_dir_all(&progs)?;
    std::fs::write(progs.join("routes.mtail"), MTAIL_ROUTES)?;
    Ok(Launch {
        name: PEER.into(),
        program: args.mtail.clone(),
        args: vec![
            format!("--progs={}", progs.display()),
            format!("--logs={}", log.display()),
            "--address=127.0.0.1".into(),
            "--port={port}".into(),
            // Its log to stderr (the bench's log file), not files in /tmp.
            "--logtostderr".into(),
        ],
        env: Vec::new(),
        metrics_path: "/metrics".into(),
    })
}

/// One query of `n` rows, one label and one value each, for both exporters:
/// opsmon's business collector running it every scrape (`interval: 1ms`),
/// and postgres_exporter's `--extend.query-path` file with its default
/// metrics off. Returns opsmon's config and the peer.
fn business_series(args: &Args, dir: &Path, pg_port: u16, n: u64) -> Result<(String, Launch)> {
    let dsn = format!("postgresql://postgres@127.0.0.1:{pg_port}/postgres?sslmode=disable");
    let sql = format!("SELECT 'k' || g AS key, g::float8 AS value FROM generate_series(1, {n}) AS g");
    let queries = dir.join("queries.yaml");
    std::fs::write(
        &queries,
        format!(
            "bench:\n  query: \"{sql}\"\n  metrics:\n    - key:\n        usage: \"LABEL\"\n        description: \"Row key\"\n    \
             - value:\n        usage: \"GAUGE\"\n        description: \"Row value\"\n"
        ),
    )?;
    let mut peer = Launch::standard(PEER, &args.postgres_exporter);
    peer.env.push(("DATA_SOURCE_NAME".into(), dsn.clone()));
    peer.args.extend([
        format!("--extend.query-path={}", queries.display()),
        "--disable-default-metrics".into(),
        "--disable-settings-metrics".into(),
        "--no-collector.database".into(),
        "--no-collector.bgwriter".into(),
    ]);
    // The target is not served on /metrics (`default: false`): the scrape is
    // the business collector's alone.
    let yaml = format!(
        "collectors:\n  host:\n    enabled: false\n  postgres:\n    targets:\n      - name: db\n        dsn: {dsn}\n        \
         default: false\n  business:\n    target: db\n    prefix: bench_\n    queries:\n      - name: series\n        \
         interval: 1ms\n        timeout: 10s\n        max_series: {}\n        labels: [key]\n        sql: \"{sql}\"\n        \
         metrics:\n          - name: bench_series_value\n            help: One series per row\n            column: value\n",
        n + 10
    );
    Ok((yaml, peer))
}

/// The pg-tables sweep's tables are named this and a number from 1.
const PG_TABLE_PREFIX: &str = "sweep_table_";

/// Makes the sweep's `postgres` database hold `n` tables (each with a primary
/// key, so two relations and an index entry in the catalog), adding to those
/// an earlier, smaller point created.
fn pg_tables(args: &Args, pg_port: u16, n: u64) -> Result<()> {
    let psql = Psql {
        program: services::pg_bin_dir(args.pg_bin.as_deref())?.join("psql"),
        port: pg_port,
        database: "postgres".into(),
    };
    // One transaction per table: a single one would hold a lock per table
    // and index, more than the lock table has room for.
    let mut script = String::new();
    for i in 1..=n {
        let _ = writeln!(script, "CREATE TABLE IF NOT EXISTS {PG_TABLE_PREFIX}{i} (id int PRIMARY KEY);");
    }
    // The planner then knows the catalog's size, as autovacuum would tell it.
    script.push_str(
        "ANALYZE pg_catalog.pg_class;\nANALYZE pg_catalog.pg_index;\nANALYZE pg_catalog.pg_namespace;\n",
    );
    psql.script(&script)?;
    Ok(())
}

/// Starts the exporters for size `n` of `dim`, measures them, stops them;
/// `pg_port` is the sweep's PostgreSQL, when a dimension needs one.
async fn point(
    args: &Args,
    fleet: &mut Fleet,
    plan: &Plan,
    exporter: &Path,
    (dim, n): (Dim, u64),
    pg_port: Option<u16>,
) -> Result<Point> {
    let dir = fleet.dir()?.join(format!("sweep-{}-{n}", dim.name()));
    std::fs::create_dir_all(&dir)?;
    let mut extras = Extras::default();
    let mut ours = Launch::standard(OURS, exporter);
    let config = dir.join("opsmon.yml");
    ours.args.push(format!("--config.file={}", config.display()));
    let mut peer: Option<Launch> = None;
    let mut ready_marker: Option<String> = None;
    let mut log_lines = String::new();
    let log = dir.join("access.log");
    let yaml = match dim {
        Dim::ProcessGroups => {
            let mut yaml = String::from("collectors:\n  host:\n    process_groups:\n");
            let mut peer_yaml = String::from("process_names:\n");
            for i in 0..n {
                // argv[0] carries the name (comm stays `sleep`), as a worker's title would.
                let child = Command::new("/bin/sleep")
                    .arg0(format!("smartalk-worker-{i}"))
                    .arg("3600")
                    .stdin(Stdio::null())
                    .spawn()
                    .context("starting /bin/sleep for a process group")?;
                extras.children.push(child);
                let _ = writeln!(yaml, "      - name: worker{i}\n        cmdline: '^smartalk-worker-{i} '");
                let _ =
                    writeln!(peer_yaml, "  - name: worker{i}\n    cmdline:\n    - '^smartalk-worker-{i} '");
            }
            let peer_config = dir.join("process-exporter.yml");
            std::fs::write(&peer_config, peer_yaml)?;
            peer = Some(Launch {
                name: PEER.into(),
                program: args.process_exporter.clone(),
                args: vec![
                    format!("-config.path={}", peer_config.display()),
                    "-web.listen-address={addr}".into(),
                    "-gather-smaps=false".into(),
                    "-threads=false".into(),
                ],
                env: Vec::new(),
                metrics_path: "/metrics".into(),
            });
            yaml
        }
        Dim::Mounts => {
            let procfs = procfs_seen_from_inside(&dir.join("procfs"))?;
            ours = in_mount_namespace(&ours, &dir.join("ours"), n, &procfs);
            let mut node = Launch::standard(PEER, &args.node_exporter);
            node.args.extend(["--collector.disable-defaults".into(), "--collector.filesystem".into()]);
            peer = Some(in_mount_namespace(&node, &dir.join("peer"), n, &procfs));
            "collectors:\n  host:\n    enabled: true\n".to_owned()
        }
        Dim::ListenPorts => {
            let mut ports = Vec::new();
            for _ in 0..n {
                let l = TcpListener::bind("127.0.0.1:0").context("binding a listening socket")?;
                ports.push(l.local_addr()?.port().to_string());
                extras._listeners.push(l);
            }
            format!("collectors:\n  host:\n    listen_ports: [{}]\n", ports.join(", "))
        }
        Dim::Connections => {
            // Both ends of each loopback connection stay open: the host then
            // has 2·n established sockets besides the machine's own, which a
            // reader of /proc/net/tcp walks on every scrape.
            let listener = TcpListener::bind("127.0.0.1:0").context("binding a listening socket")?;
            let port = listener.local_addr()?.port();
            for _ in 0..n {
                let client = std::net::TcpStream::connect(("127.0.0.1", port)).context("connecting")?;
                let (server, _) = listener.accept().context("accepting")?;
                extras.connections.extend([client, server]);
            }
            extras._listeners.push(listener);
            // The peer that walks the host's connections: node_exporter's
            // TCP state counts.
            let mut node = Launch::standard(PEER, &args.node_exporter);
            node.args.extend(["--collector.disable-defaults".into(), "--collector.tcpstat".into()]);
            peer = Some(node);
            format!("collectors:\n  host:\n    listen_ports: [{port}]\n")
        }
        Dim::Routes => {
            let mut yaml = format!(
                "collectors:\n  host:\n    enabled: false\n  accesslog:\n    files:\n      - path: {}\n    routes:\n",
                log.display()
            );
            std::fs::write(&log, "")?;
            for i in 0..n {
                let _ = writeln!(yaml, "      - {{name: r{i}, prefix: /r{i}/}}");
                for (k, status) in [200, 201, 301, 404, 500, 503].into_iter().enumerate() {
                    let _ = writeln!(
                        log_lines,
                        "10.0.0.{} - - [01/May/2024:10:00:00 +0000] \"GET /r{i}/item HTTP/1.1\" {status} 512 \"-\" \"bench\" 0.{:03}",
                        k + 1,
                        (i * 7 + k as u64 * 13) % 1000
                    );
                }
            }
            ready_marker = Some(format!("route=\"r{}\"", n - 1));
            peer = Some(mtail_routes(args, &dir, &log)?);
            yaml
        }
        Dim::DirEntries => {
            let tree = dir.join("tree");
            std::fs::create_dir_all(&tree)?;
            for i in 0..n {
                std::fs::write(tree.join(format!("f{i}")), b"x")?;
            }
            // Walk on every scrape: the cost measured is the walk's.
            format!(
                "collectors:\n  host:\n    directories:\n      - path: {}\n        max_entries: {}\n        timeout: 10s\n        refresh_interval: 0s\n",
                tree.display(),
                n + 10
            )
        }
        Dim::BusinessSeries => {
            let port = pg_port.context("the business-series sweep needs its PostgreSQL")?;
            let (yaml, postgres_exporter) = business_series(args, &dir, port, n)?;
            peer = Some(postgres_exporter);
            ready_marker = Some(format!("key=\"k{n}\""));
            yaml
        }
        Dim::PgTables => {
            let port = pg_port.context("the pg-tables sweep needs its PostgreSQL")?;
            pg_tables(args, port, n)?;
            ready_marker = Some(format!("relname=\"{PG_TABLE_PREFIX}1\""));
            format!(
                "collectors:\n  host:\n    enabled: false\n  postgres:\n    targets:\n      - name: db\n        \
                 dsn: postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable\n        default: true\n        \
                 tables: [{PG_TABLE_PREFIX}1]\n"
            )
        }
        Dim::Rulegen => bail!("rulegen is not an exporter sweep"),
    };
    std::fs::write(&config, yaml)?;

    let http = scrape::client();
    let mut targets = vec![fleet.spawn(&ours)?];
    if let Some(p) = &peer {
        targets.push(fleet.spawn(p)?);
    }
    let result = async {
        for t in &targets {
            let name = t.name.clone();
            scrape::wait_ready(&http, &t.uri, plan.ready_timeout, || fleet.check_alive(&name))
                .await
                .with_context(|| format!("{} did not come up:\n{}", t.name, fleet.log_tail(&t.name, 10)))?;
        }
        if let (Some(marker), Some(ours)) = (&ready_marker, targets.first()) {
            if dim == Dim::Routes {
                // The tailer starts at the end of the file: append once it runs.
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&log)
                    .and_then(|mut f| std::io::Write::write_all(&mut f, log_lines.as_bytes()))?;
            }
            wait_for(&http, ours, marker, plan.ready_timeout).await?;
            if dim == Dim::Routes
                && let Some(peer) = targets.get(1)
            {
                wait_for(&http, peer, marker, plan.ready_timeout).await?;
            }
        }
        measure(&http, &targets, args.sweep_scrapes, plan.timeout).await
    }
    .await;
    for t in &targets {
        fleet.stop_member(&t.name)?;
    }
    drop(extras);
    let costs = result?;
    let mut costs = costs.into_iter();
    Ok(Point { n, ours: costs.next(), peer: costs.next() })
}

/// A directory standing in for /proc (`--path.procfs`) in which `1` is the
/// reading process itself. Both exporters read the host's mounts from
/// `1/mounts`, PID 1's mount namespace, which never holds the sweep's
/// mounts; through this view they read their own namespace, where the
/// mounts are. Every other top-level /proc entry is a link to the real one.
fn procfs_seen_from_inside(view: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(view).with_context(|| format!("creating {}", view.display()))?;
    for entry in std::fs::read_dir("/proc").context("listing /proc")? {
        let name = entry?.file_name();
        let Some(text) = name.to_str() else { continue };
        if text.bytes().all(|b| b.is_ascii_digit()) || view.join(text).symlink_metadata().is_ok() {
            continue;
        }
        std::os::unix::fs::symlink(Path::new("/proc").join(text), view.join(text))
            .with_context(|| format!("linking {}/{text}", view.display()))?;
    }
    if view.join("1").symlink_metadata().is_err() {
        std::os::unix::fs::symlink("/proc/self", view.join("1")).context("linking 1 to /proc/self")?;
    }
    Ok(view.to_path_buf())
}

/// `launch` run by `unshare` in a private mount namespace where `n` small
/// tmpfs are mounted under `dir` first, reading the host from `procfs` (see
/// [`procfs_seen_from_inside`]); `unshare` and `sh` exec the exporter, so
/// the PID is the exporter's and the mounts vanish with it.
fn in_mount_namespace(launch: &Launch, dir: &Path, n: u64, procfs: &Path) -> Launch {
    let script = format!(
        "i=0; while [ $i -lt {n} ]; do d={}/m$i; mkdir -p $d && mount -t tmpfs -o size=64k,nr_inodes=64 sweep $d || exit 1; i=$((i+1)); done; exec \"$0\" \"$@\"",
        dir.display()
    );
    let mut args =
        vec!["--mount".into(), "--propagation".into(), "private".into(), "/bin/sh".into(), "-c".into()];
    args.push(script);
    args.push(launch.program.display().to_string());
    args.extend(launch.args.iter().cloned());
    args.push(format!("--path.procfs={}", procfs.display()));
    Launch {
        name: launch.name.clone(),
        program: PathBuf::from("/usr/bin/unshare"),
        args,
        env: launch.env.clone(),
        metrics_path: launch.metrics_path.clone(),
    }
}

/// Polls `t` until its scrape contains `marker` (the access log is read).
async fn wait_for(http: &HttpClient, t: &Target, marker: &str, limit: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(s) = scrape::scrape(http, &t.uri, Duration::from_secs(5)).await
            && s.text()?.contains(marker)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{}: no {marker} in its scrape after {limit:?}", t.name)
}

/// Warm-up, then `scrapes` scrapes per target interleaved; CPU from schedstat.
async fn measure(
    http: &HttpClient,
    targets: &[Target],
    scrapes: u32,
    timeout: Duration,
) -> Result<Vec<Cost>> {
    let clients: Vec<HttpClient> = targets.iter().map(|_| http.clone()).collect();
    for _ in 0..5 {
        for (t, c) in targets.iter().zip(&clients) {
            let _ = scrape::scrape(c, &t.uri, timeout).await;
        }
    }
    let pid = |t: &Target| t.pid.with_context(|| format!("{}: no PID", t.name));
    let before = targets.iter().map(|t| procfs::cpu_ns(pid(t)?)).collect::<Result<Vec<_>>>()?;
    let mut walls = vec![Vec::new(); targets.len()];
    let mut series = vec![0.0; targets.len()];
    for _ in 0..scrapes {
        for (i, (t, c)) in targets.iter().zip(&clients).enumerate() {
            let s = scrape::scrape(c, &t.uri, timeout).await?;
            ensure!(s.status == StatusCode::OK, "{}: HTTP {}", t.name, s.status);
            walls[i].push(s.elapsed.as_secs_f64() * 1000.0);
            series[i] = stats::count_series(&s.text()?) as f64;
        }
    }
    let after = targets.iter().map(|t| procfs::cpu_ns(pid(t)?)).collect::<Result<Vec<_>>>()?;
    Ok((0..targets.len())
        .map(|i| Cost {
            cpu_ms: after[i].saturating_sub(before[i]) as f64 / 1e6 / f64::from(scrapes),
            wall_ms: stats::median(&walls[i]).unwrap_or(f64::NAN),
            series: series[i],
        })
        .collect())
}

/// `rulegen bench --alerts N`, three times per size: the median of its own
/// total (wall) and of its CPU time (user + system, read by the shell that
/// waited for it from its own `cutime`/`cstime`, so a busy machine does not
/// inflate it).
fn rulegen_points(rulegen: &Path, sizes: &[u64]) -> Result<Vec<Point>> {
    ensure!(
        rulegen.exists(),
        "rulegen: {} not found (cargo build --release -p opsmon-rulegen)",
        rulegen.display()
    );
    let hz = procfs::clock_ticks_per_second() as f64;
    let mut points = Vec::new();
    for &n in sizes {
        eprintln!("opsmon-bench:   rulegen bench --alerts {n}");
        let (mut walls, mut cpus) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let out = Command::new("/bin/sh")
                .args(["-c", "\"$0\" bench --alerts \"$1\" || exit $?; cat /proc/$$/stat"])
                .arg(rulegen)
                .arg(n.to_string())
                .stdin(Stdio::null())
                .output()
                .with_context(|| format!("running {} bench", rulegen.display()))?;
            let text = String::from_utf8_lossy(&out.stdout);
            ensure!(
                out.status.success(),
                "rulegen bench --alerts {n} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            walls.push(parse_rulegen_total(&text).with_context(|| format!("rulegen bench said {text:?}"))?);
            let stat = text.lines().last().unwrap_or_default();
            cpus.push(
                parse_children_ticks(stat).with_context(|| format!("no cutime/cstime in {stat:?}"))? as f64
                    * 1000.0
                    / hz,
            );
        }
        let cost = Cost {
            cpu_ms: stats::median(&cpus).unwrap_or(f64::NAN),
            wall_ms: stats::median(&walls).unwrap_or(f64::NAN),
            series: n as f64,
        };
        points.push(Point { n, ours: Some(cost), peer: None });
    }
    Ok(points)
}

/// `cutime + cstime` (fields 16 and 17) of a `/proc/PID/stat` line, in ticks.
pub fn parse_children_ticks(stat: &str) -> Option<u64> {
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Field 3 (state) is the first after the `)`.
    Some(fields.get(13)?.parse::<u64>().ok()? + fields.get(14)?.parse::<u64>().ok()?)
}

/// The `total X ms` figure of `rulegen bench`'s line.
pub fn parse_rulegen_total(text: &str) -> Option<f64> {
    let rest = text.split_once("total ")?.1;
    rest.split_whitespace().next()?.parse().ok()
}

/// Least-squares slope and intercept of `points`.
pub fn fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let (sx, sy) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    (sxx > 0.0).then(|| (sxy / sxx, my - sxy / sxx * mx))
}

/// Linear, sub-linear or super-linear: the marginal cost of the last
/// segment against the average slope over the whole range. Differences
/// below `noise` (in the cost's unit), or below 15% of the smallest size's
/// cost, are flat: repeated scrapes of one configuration differ by about 10%
/// (the connections sweep's cost fell 10% from 1 to 1,000 connections).
pub fn verdict(points: &[(f64, f64)], noise: f64) -> &'static str {
    let (Some(first), Some(last)) = (points.first(), points.last()) else { return "n/a" };
    let Some(prev) = points.len().checked_sub(2).and_then(|i| points.get(i)) else { return "n/a" };
    let noise = noise.max(0.15 * first.1.abs());
    if last.1 - first.1 < noise {
        return "flat (no measurable growth)";
    }
    let overall = (last.1 - first.1) / (last.0 - first.0);
    let marginal = (last.1 - prev.1) / (last.0 - prev.0);
    if marginal > 1.5 * overall && (last.1 - prev.1) > noise {
        "**super-linear** (the last segment costs more per unit than the average)"
    } else if marginal < 0.5 * overall {
        "sub-linear"
    } else {
        "linear"
    }
}

/// A figure fitted in a sweep's section: its name and how to read it from a cost.
type Figure = (&'static str, fn(Cost) -> f64);

fn section(dim: Dim, points: &[Point]) -> String {
    let rulegen = dim == Dim::Rulegen;
    let mut out = format!("\n#### {}: {}\n\n", dim.name(), dim.unit());
    let peer = dim.peer();
    if rulegen {
        out.push_str(
            "| alerts | CPU ms (user + system, median of 3) | wall ms (median of 3) |\n|--:|--:|--:|\n",
        );
    } else if let Some(p) = peer {
        let _ = writeln!(
            out,
            "| n | opsmon CPU ms/scrape | opsmon wall ms (p50) | opsmon series | {p} CPU ms/scrape | {p} wall ms (p50) | {p} series |\n|--:|--:|--:|--:|--:|--:|--:|"
        );
    } else {
        out.push_str(
            "| n | opsmon CPU ms/scrape | opsmon wall ms (p50) | opsmon series |\n|--:|--:|--:|--:|\n",
        );
    }
    let cell = |c: Option<Cost>, f: fn(Cost) -> f64, d: usize| {
        c.map_or_else(|| "n/a".to_owned(), |c| format!("{:.d$}", f(c)))
    };
    for p in points {
        if rulegen {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                p.n,
                cell(p.ours, |c| c.cpu_ms, 0),
                cell(p.ours, |c| c.wall_ms, 0)
            );
            continue;
        }
        let _ = write!(
            out,
            "| {} | {} | {} | {} |",
            p.n,
            cell(p.ours, |c| c.cpu_ms, 3),
            cell(p.ours, |c| c.wall_ms, 2),
            cell(p.ours, |c| c.series, 0)
        );
        if peer.is_some() {
            let _ = write!(
                out,
                " {} | {} | {} |",
                cell(p.peer, |c| c.cpu_ms, 3),
                cell(p.peer, |c| c.wall_ms, 2),
                cell(p.peer, |c| c.series, 0)
            );
        }
        out.push('\n');
    }
    out.push('\n');
    let figures: &[Figure] = if dim.cost_is_wall() {
        &[("CPU", |c| c.cpu_ms), ("wall (p50)", |c| c.wall_ms)]
    } else {
        &[("CPU", |c| c.cpu_ms)]
    };
    for ((name, get), (figure, value)) in
        [("opsmon", (|p: &Point| p.ours) as fn(&Point) -> Option<Cost>), ("peer", |p: &Point| p.peer)]
            .into_iter()
            .flat_map(|who| figures.iter().map(move |figure| (who, *figure)))
    {
        let xy: Vec<(f64, f64)> = points.iter().filter_map(|p| Some((p.n as f64, value(get(p)?)))).collect();
        if xy.is_empty() {
            continue;
        }
        let who = if name == "peer" {
            peer.unwrap_or("peer")
        } else if rulegen {
            "rulegen"
        } else {
            "opsmon-exporter"
        };
        let marginal: Vec<String> =
            xy.windows(2).map(|w| format!("{:.2}", (w[1].1 - w[0].1) / (w[1].0 - w[0].0) * 1000.0)).collect();
        let (slope, intercept) = fit(&xy).unwrap_or((f64::NAN, f64::NAN));
        let _ = writeln!(
            out,
            "- {who}: {:.2} µs {figure} per unit (least squares; intercept {intercept:.3} ms); per segment {} µs/unit; {}",
            slope * 1000.0,
            marginal.join(" → "),
            verdict(&xy, if rulegen { 5.0 } else { 0.02 })
        );
    }
    out
}

fn chart(dim: Dim, points: &[Point]) -> Chart {
    let value = |c: Cost| if dim.cost_is_wall() { c.wall_ms } else { c.cpu_ms };
    let line = |label: &str, get: fn(&Point) -> Option<Cost>| Line {
        label: label.to_owned(),
        points: points.iter().filter_map(|p| Some((p.n as f64, value(get(p)?)))).collect(),
    };
    let mut lines = vec![line(if dim == Dim::Rulegen { "rulegen" } else { "opsmon-exporter" }, |p| p.ours)];
    if let Some(peer) = dim.peer() {
        lines.push(line(peer, |p| p.peer));
    }
    Chart {
        title: if dim == Dim::Rulegen {
            "rulegen validate + render CPU time against alerts".to_owned()
        } else if dim.cost_is_wall() {
            format!("scrape wall time (p50) against {}", dim.name())
        } else {
            format!("CPU per scrape against {}", dim.name())
        },
        x_label: dim.unit().to_owned(),
        y_label: if dim == Dim::Rulegen {
            "CPU ms per run".to_owned()
        } else if dim.cost_is_wall() {
            "wall ms per scrape (p50)".to_owned()
        } else {
            "CPU ms per scrape".to_owned()
        },
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dimensions() -> Result<()> {
        assert_eq!(parse_dims("mounts, routes")?, vec![Dim::Mounts, Dim::Routes]);
        assert_eq!(parse_dims("all")?.len(), Dim::ALL.len());
        assert!(parse_dims("mount").is_err_and(|e| e.to_string().contains("unknown dimension")));
        assert!(parse_dims(",").is_err());
        Ok(())
    }

    #[test]
    fn fits_and_judges_growth() {
        let linear = [(0.0, 0.3), (100.0, 1.3), (200.0, 2.3), (400.0, 4.3)];
        let (slope, intercept) = fit(&linear).expect("fits");
        assert!((slope - 0.01).abs() < 1e-9 && (intercept - 0.3).abs() < 1e-9);
        assert_eq!(verdict(&linear, 0.02), "linear");
        // A cubic is flagged; a pure quadratic at doubling sizes sits right at the 1.5× border.
        let cubic: Vec<(f64, f64)> = [1.0, 100.0, 200.0, 400.0].map(|x| (x, x * x * x / 1e6)).to_vec();
        assert!(verdict(&cubic, 0.02).contains("super-linear"));
        assert_eq!(verdict(&[(1.0, 0.30), (400.0, 0.31)], 0.02), "flat (no measurable growth)");
        assert_eq!(verdict(&[(1.0, 0.3), (100.0, 2.0), (400.0, 2.2)], 0.02), "sub-linear");
        assert_eq!(verdict(&[(1.0, 1.0)], 0.02), "n/a");
        // The 2026-11-30 connections sweep: a 0.08 ms rise over a 0.6 ms scrape is noise.
        let connections = [(1.0, 0.598), (1000.0, 0.540), (2000.0, 0.631), (4000.0, 0.611), (8000.0, 0.675)];
        assert_eq!(verdict(&connections, 0.02), "flat (no measurable growth)");
    }

    #[test]
    fn reads_the_shells_children_cpu() {
        let stat = "4242 (sh) S 1 4242 4242 0 -1 4194304 100 0 0 0 1 2 73 5 20 0 1 0 500 2000000 200";
        assert_eq!(parse_children_ticks(stat), Some(78));
        assert_eq!(parse_children_ticks("4242 (a) b) S 1"), None);
    }

    #[test]
    fn reads_rulegen_totals() {
        let line = "1000 alerts: validate 210 ms, render 40 ms, total 250 ms; 9 files, 123 bytes\n";
        assert_eq!(parse_rulegen_total(line), Some(250.0));
        assert_eq!(parse_rulegen_total("nothing"), None);
    }

    #[test]
    fn mount_namespace_wraps_and_execs_the_exporter() {
        let l = Launch::standard("x", Path::new("/bin/exporter"));
        let wrapped = in_mount_namespace(&l, Path::new("/tmp/d"), 3, Path::new("/tmp/p"));
        assert_eq!(wrapped.program, PathBuf::from("/usr/bin/unshare"));
        assert!(wrapped.args[5].contains("-lt 3") && wrapped.args[5].ends_with("exec \"$0\" \"$@\""));
        assert_eq!(
            wrapped.args[6..],
            [
                "/bin/exporter".to_owned(),
                "--web.listen-address={addr}".to_owned(),
                "--path.procfs=/tmp/p".to_owned()
            ]
        );
    }

    #[test]
    fn the_procfs_view_shows_the_reader_as_pid_1() {
        let dir = tempfile::tempdir().expect("tempdir");
        let view = procfs_seen_from_inside(&dir.path().join("procfs")).expect("view");
        let own = std::fs::read_to_string("/proc/self/mounts").expect("own mounts");
        assert_eq!(
            std::fs::read_to_string(view.join("1/mounts")).expect("1/mounts").lines().count(),
            own.lines().count()
        );
        assert!(std::fs::read_to_string(view.join("stat")).expect("stat").starts_with("cpu "));
        assert!(!view.join("2").exists(), "no process but the reader");
        procfs_seen_from_inside(&view).expect("made twice");
    }
}
