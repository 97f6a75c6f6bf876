//! Command-line flags, named after the Prometheus exporters' conventions so
//! that unit files and habits carry over from node_exporter.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::logging::{LogFormat, LogLevel};

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
}

impl Cli {
    /// The web flags the server takes beyond path and `--web.max-requests`.
    pub fn web_options(&self) -> crate::server::WebOptions {
        crate::server::WebOptions {
            max_probe_requests: self.max_probe_requests,
            enable_openmetrics: self.enable_openmetrics,
            enable_lifecycle: self.enable_lifecycle,
            max_connections: self.max_connections,
        }
    }
}

fn parse_listen_address(value: &str) -> Result<SocketAddr, String> {
    let full = if value.starts_with(':') { format!("0.0.0.0{value}") } else { value.to_owned() };
    full.parse().map_err(|_| {
        format!("{value:?} is not HOST:PORT; use e.g. :19100, 127.0.0.1:19100 or [::1]:19100 (names are not resolved)")
    })
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

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["opsmon-exporter"]).expect("defaults parse");
        assert_eq!(cli.listen_addresses, vec!["0.0.0.0:19100".parse::<SocketAddr>().expect("addr")]);
        assert_eq!(cli.telemetry_path, "/metrics");
        assert_eq!(cli.max_requests, 40);
        assert_eq!(cli.max_probe_requests, 20);
        assert_eq!(cli.max_connections, 512);
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
