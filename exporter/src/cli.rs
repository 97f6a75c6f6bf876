//! Command-line flags, named after the Prometheus exporters' conventions so
//! that unit files and habits carry over from node_exporter. What they change
//! in a loaded configuration (`--path.*`, `--[no-]collector.NAME`) is
//! [`Overrides`], which start-up and every reload apply alike.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches, Parser};

use crate::collectors::host::HostPaths;
use crate::logging::{LogFormat, LogLevel};
use crate::overrides::Overrides;

/// The default port: outside the 9100–9999 range the Prometheus project
/// allocates to exporters (it is fully taken), and easy to remember as
/// node_exporter's 9100 plus 10000.
pub const DEFAULT_PORT: u16 = 19100;

/// opsmon-exporter: host, PostgreSQL, Redis, HTTP/CDN probes, access logs,
/// file freshness and business SQL metrics for Prometheus, from one binary.
#[derive(Debug, Clone, Parser)]
#[command(name = "opsmon-exporter", version, about, long_about = None)]
pub struct Cli {
    /// Address to listen on; repeat for several. `:PORT` means all interfaces.
    #[arg(long = "web.listen-address", value_name = "ADDR", default_value = ":19100", value_parser = parse_listen_address)]
    pub listen_addresses: Vec<SocketAddr>,

    /// Path under which metrics are served.
    #[arg(long = "web.telemetry-path", value_name = "PATH", default_value = "/metrics", value_parser = parse_telemetry_path)]
    pub telemetry_path: String,

    /// Scrapes served at once; more get 503 straight away (0 = no limit).
    #[arg(long = "web.max-requests", value_name = "N", default_value_t = 40)]
    pub max_requests: usize,

    /// Scrapes of the telemetry path that collect at once; the others among
    /// the `--web.max-requests` wait their turn within their own scrape
    /// timeout (503 if it passes first). One is fastest and smallest on a
    /// small host: collections share one kept connection per backend, and
    /// each holds a whole scrape's samples and body.
    #[arg(long = "web.concurrent-collections", value_name = "N",
          default_value_t = crate::server::DEFAULT_CONCURRENT_COLLECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub concurrent_collections: usize,

    /// Threads that run the exporter's async work, as node_exporter's
    /// `--runtime.gomaxprocs` (default 1 there too). Blocking work (/proc,
    /// statfs, directory walks, log reading) has a pool of its own. 2 suits
    /// one exporter probing many targets at once through /probe.
    #[arg(long = "runtime.worker-threads", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub worker_threads: u16,

    /// `/probe` requests served at once, from a pool of their own so that slow
    /// probes never take /metrics' slots; more get 503 straight away (0 = no limit).
    #[arg(long = "web.max-probe-requests", value_name = "N", default_value_t = 20)]
    pub max_probe_requests: usize,

    /// Open connections at once; at the cap new ones wait to be accepted (0 = no cap).
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = crate::server::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Answer OpenMetrics to clients that ask for it. Off by default, as in the
    /// Go exporters: OpenMetrics appends `_total` to counters the peers expose
    /// without it, so Prometheus would store them under other names.
    #[arg(long = "web.enable-openmetrics")]
    pub enable_openmetrics: bool,

    /// Serve `POST /-/reload` (re-read `--config.file`), as Prometheus' flag
    /// of the same name. SIGHUP reloads with or without it.
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,

    /// TLS and basic-auth settings in the Prometheus exporter-toolkit format
    /// (tls_server_config, basic_auth_users); re-read when it changes.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,

    /// YAML configuration file. Without one, the host collector runs with defaults.
    #[arg(long = "config.file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,

    /// Validate the configuration, print a summary and exit (0 valid, 2 invalid).
    #[arg(long = "config.check")]
    pub config_check: bool,

    /// Log level.
    #[arg(long = "log.level", value_enum, default_value = "info")]
    pub log_level: LogLevel,

    /// Log format.
    #[arg(long = "log.format", value_enum, default_value = "logfmt")]
    pub log_format: LogFormat,

    /// procfs mountpoint: the host's /proc (e.g. /host/proc in a container).
    #[arg(long = "path.procfs", value_name = "PATH", default_value = "/proc", value_parser = parse_absolute)]
    pub procfs: PathBuf,

    /// sysfs mountpoint: the host's /sys (e.g. /host/sys in a container).
    #[arg(long = "path.sysfs", value_name = "PATH", default_value = "/sys", value_parser = parse_absolute)]
    pub sysfs: PathBuf,

    /// rootfs mountpoint: the host's / (e.g. /host/root in a container);
    /// filesystems are measured under it and named as the host names them.
    #[arg(long = "path.rootfs", value_name = "PATH", default_value = "/", value_parser = parse_absolute)]
    pub rootfs: PathBuf,

    /// Collectors switched on or off over the configuration file.
    #[command(flatten)]
    pub collectors: CollectorSwitches,

    /// Print the man page (roff) and exit; packaging generates it this way.
    #[arg(long = "print-man", hide = true)]
    pub print_man: bool,

    /// Print the completion script for SHELL and exit; packaging generates them this way.
    #[arg(long = "print-completions", value_name = "SHELL", hide = true)]
    pub print_completions: Option<clap_complete::Shell>,
}

/// The collectors `--collector.NAME` / `--no-collector.NAME` switch, with the
/// flag ids and help: (name, enable flag, disable flag, what it collects).
const SWITCHABLE: [(&str, &str, &str, &str); 7] = [
    (
        "host",
        "collector.host",
        "no-collector.host",
        "CPU, memory, filesystems, network, disks, clock, process groups",
    ),
    (
        "postgres",
        "collector.postgres",
        "no-collector.postgres",
        "PostgreSQL statistics of collectors.postgres.targets",
    ),
    ("redis", "collector.redis", "no-collector.redis", "Redis INFO of collectors.redis.targets"),
    (
        "probe",
        "collector.probe",
        "no-collector.probe",
        "HTTP/CDN probes of collectors.probe.targets on /metrics",
    ),
    ("accesslog", "collector.accesslog", "no-collector.accesslog", "nginx access logs and log patterns"),
    ("files", "collector.files", "no-collector.files", "backup and heartbeat file freshness"),
    ("business", "collector.business", "no-collector.business", "business gauges from SQL"),
];

/// What `--collector.NAME` (on) and `--no-collector.NAME` (off) say, by
/// collector; the last of the two on the command line wins, as in node_exporter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectorSwitches(pub BTreeMap<&'static str, bool>);

impl FromArgMatches for CollectorSwitches {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut switches = Self::default();
        switches.update_from_arg_matches(matches)?;
        Ok(switches)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for (name, on, off, _) in SWITCHABLE {
            if matches.get_flag(on) {
                self.0.insert(name, true);
            }
            if matches.get_flag(off) {
                self.0.insert(name, false);
            }
        }
        Ok(())
    }
}

impl Args for CollectorSwitches {
    fn augment_args(command: clap::Command) -> clap::Command {
        SWITCHABLE.iter().fold(command, |command, (name, on, off, what)| {
            command
                .arg(
                    Arg::new(*on)
                        .long(*on)
                        .action(ArgAction::SetTrue)
                        .overrides_with(*off)
                        .help_heading("Collectors")
                        .help(format!("Run the {name} collector ({what}) even if the config turns it off")),
                )
                .arg(
                    Arg::new(*off)
                        .long(*off)
                        .action(ArgAction::SetTrue)
                        .overrides_with(*on)
                        .help_heading("Collectors")
                        .help(format!("Do not run the {name} collector, whatever the config says")),
                )
        })
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

impl Cli {
    /// What the flags change in every configuration loaded.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            host_paths: HostPaths {
                procfs: self.procfs.clone(),
                sysfs: self.sysfs.clone(),
                rootfs: self.rootfs.clone(),
            },
            collectors: self.collectors.0.clone(),
        }
    }

    /// The man page, in roff.
    pub fn man_page() -> std::io::Result<Vec<u8>> {
        let mut page = Vec::new();
        clap_mangen::Man::new(<Self as clap::CommandFactory>::command()).render(&mut page)?;
        Ok(page)
    }

    /// The completion script for `shell`.
    pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
        let mut script = Vec::new();
        clap_complete::generate(
            shell,
            &mut <Self as clap::CommandFactory>::command(),
            "opsmon-exporter",
            &mut script,
        );
        script
    }

    /// The web flags the server takes beyond path and `--web.max-requests`.
    pub fn web_options(&self) -> crate::server::WebOptions {
        crate::server::WebOptions {
            max_probe_requests: self.max_probe_requests,
            enable_openmetrics: self.enable_openmetrics,
            enable_lifecycle: self.enable_lifecycle,
            max_connections: self.max_connections,
            concurrent_collections: self.concurrent_collections,
        }
    }
}

fn parse_listen_address(value: &str) -> Result<SocketAddr, String> {
    let full = if value.starts_with(':') { format!("0.0.0.0{value}") } else { value.to_owned() };
    full.parse().map_err(|_| {
        format!("{value:?} is not HOST:PORT; use e.g. :19100, 127.0.0.1:19100 or [::1]:19100 (names are not resolved)")
    })
}

fn parse_absolute(value: &str) -> Result<PathBuf, String> {
    if !value.starts_with('/') {
        return Err(format!("{value:?} is relative; give an absolute path such as /host/proc"));
    }
    Ok(PathBuf::from(value))
}

fn parse_telemetry_path(value: &str) -> Result<String, String> {
    if !value.starts_with('/') || value.len() < 2 || value.contains(['?', '#', ' ']) {
        return Err(format!("{value:?} must be an absolute URL path such as /metrics"));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Config;

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["opsmon-exporter"]).expect("defaults parse");
        assert_eq!(cli.listen_addresses, vec!["0.0.0.0:19100".parse::<SocketAddr>().expect("addr")]);
        assert_eq!(cli.telemetry_path, "/metrics");
        assert_eq!(cli.max_requests, 40);
        assert_eq!(cli.max_probe_requests, 20);
        assert_eq!(cli.max_connections, 512);
        assert_eq!(cli.concurrent_collections, 1);
        assert_eq!(cli.worker_threads, 1);
        assert!(!cli.enable_openmetrics, "text 0.0.4 unless asked");
        assert!(cli.config_file.is_none());
    }

    #[test]
    fn exporter_style_flags() {
        let cli = Cli::try_parse_from([
            "opsmon-exporter",
            "--web.listen-address=127.0.0.1:1",
            "--web.listen-address",
            "[::1]:2",
            "--web.telemetry-path=/m",
            "--config.file=/etc/opsmon.yml",
            "--config.check",
            "--log.level=debug",
            "--log.format=json",
        ])
        .expect("parses");
        assert_eq!(cli.listen_addresses.len(), 2);
        assert_eq!(cli.telemetry_path, "/m");
        assert!(cli.config_check);
        assert_eq!(cli.log_format, LogFormat::Json);
    }

    #[test]
    fn collections_and_workers_are_at_least_one() {
        let cli = Cli::try_parse_from(["opsmon-exporter", "--web.concurrent-collections=3"]).expect("parses");
        assert_eq!(cli.web_options().concurrent_collections, 3);
        let refused = Cli::try_parse_from(["opsmon-exporter", "--web.concurrent-collections=0"])
            .expect_err("0 would let no scrape collect")
            .to_string();
        assert!(refused.contains("--web.concurrent-collections") && refused.contains("1..=64"), "{refused}");
        let cli = Cli::try_parse_from(["opsmon-exporter", "--runtime.worker-threads=2"]).expect("parses");
        assert_eq!(cli.worker_threads, 2);
        let refused = Cli::try_parse_from(["opsmon-exporter", "--runtime.worker-threads=0"])
            .expect_err("no worker would run nothing")
            .to_string();
        assert!(refused.contains("--runtime.worker-threads"), "{refused}");
    }

    fn config(yaml: &str) -> Config {
        Config::parse(std::path::Path::new("/etc/opsmon/opsmon.yml"), yaml).expect("valid")
    }

    #[test]
    fn host_paths_default_to_node_exporters_and_reach_the_host_section() {
        let cli = Cli::try_parse_from(["opsmon-exporter"]).expect("parses");
        assert_eq!(cli.overrides().host_paths, HostPaths::default());
        let cli = Cli::try_parse_from([
            "opsmon-exporter",
            "--path.procfs=/host/proc",
            "--path.sysfs",
            "/host/sys",
            "--path.rootfs=/host/root",
        ])
        .expect("parses");
        let mut config = config("");
        cli.overrides().apply(&mut config).expect("applies");
        assert_eq!(config.collectors.host.paths.procfs, std::path::Path::new("/host/proc"));
        assert_eq!(config.collectors.host.paths.sysfs, std::path::Path::new("/host/sys"));
        assert_eq!(config.collectors.host.paths.rootfs, std::path::Path::new("/host/root"));
        let error =
            Cli::try_parse_from(["opsmon-exporter", "--path.procfs=host/proc"]).expect_err("relative");
        assert!(error.to_string().contains("is relative"), "{error}");
    }

    #[test]
    fn collector_switches_last_one_wins() {
        let cli = Cli::try_parse_from([
            "opsmon-exporter",
            "--no-collector.host",
            "--collector.redis",
            "--collector.host",
            "--no-collector.files",
        ])
        .expect("parses");
        let expected: BTreeMap<&str, bool> = [("host", true), ("redis", true), ("files", false)].into();
        assert_eq!(cli.collectors.0, expected);
    }

    #[test]
    fn switched_off_collectors_get_nothing_to_do() {
        let yaml = "collectors:\n  host:\n    enabled: true\n  redis:\n    targets:\n      - name: cache\n        address: redis://127.0.0.1:6379\n  files:\n    paths:\n      - name: backup\n        glob: /var/backups/*.dump\n";
        let mut config = config(yaml);
        let cli = Cli::try_parse_from([
            "opsmon-exporter",
            "--no-collector.host",
            "--no-collector.redis",
            "--no-collector.files",
        ])
        .expect("parses");
        cli.overrides().apply(&mut config).expect("applies");
        assert!(!config.collectors.host.enabled);
        assert!(config.collectors.redis.targets.is_empty());
        assert!(config.collectors.files.paths.is_empty());
        let built =
            crate::settings::in_runtime(|| config.build(std::path::Path::new("t.yml"))).expect("builds");
        assert!(built.collectors.names.is_empty(), "{:?}", built.collectors.names);
    }

    #[test]
    fn switching_on_an_unconfigured_collector_names_the_flag_and_the_fix() {
        let mut config = config("collectors:\n  host:\n    enabled: false\n");
        let cli = Cli::try_parse_from(["opsmon-exporter", "--collector.host"]).expect("parses");
        cli.overrides().apply(&mut config).expect("host needs no section");
        assert!(config.collectors.host.enabled, "the flag beats `enabled: false`");

        let cli = Cli::try_parse_from(["opsmon-exporter", "--collector.business"]).expect("parses");
        let error = cli.overrides().apply(&mut config).expect_err("nothing to collect");
        assert!(error.starts_with("--collector.business: "), "{error}");
        assert!(error.contains("collectors.business.queries is empty"), "{error}");
    }

    #[test]
    fn generated_man_page_and_completions_name_the_flags() {
        let page = String::from_utf8(Cli::man_page().expect("renders")).expect("utf-8");
        assert!(page.contains(".TH opsmon-exporter"), "{page}");
        assert!(page.contains("path.procfs"), "{page}");
        assert!(!page.contains("print\\-man"), "hidden flags stay out of the page");
        let bash = String::from_utf8(Cli::completions(clap_complete::Shell::Bash)).expect("utf-8");
        assert!(bash.contains("--no-collector.postgres"), "{bash}");
    }

    #[test]
    fn bad_flags_are_explained() {
        let error =
            Cli::try_parse_from(["opsmon-exporter", "--web.listen-address=localhost"]).expect_err("bad");
        assert!(error.to_string().contains("is not HOST:PORT"), "{error}");
        let error =
            Cli::try_parse_from(["opsmon-exporter", "--web.telemetry-path=metrics"]).expect_err("bad");
        assert!(error.to_string().contains("absolute URL path"), "{error}");
        let error = Cli::try_parse_from(["opsmon-exporter", "--log.level=loud"]).expect_err("bad");
        assert!(error.to_string().contains("possible values"), "{error}");
    }
}
