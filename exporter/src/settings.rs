//! The exporter's configuration as a whole: the `scrape:` section (owned by
//! the scrape engine) and the `collectors:` sections (each owned by its
//! collector), read through [`crate::config`] and turned into running parts
//! by [`Config::build`] — the one path start-up, `--config.check` and a
//! reload share.

use std::path::Path;

use serde::Deserialize;

use crate::collectors::{self, CollectorsConfig, Enabled};
use crate::config::{self, ConfigError};
use crate::scrape::{BudgetPolicy, ScrapeConfig};

/// Everything the exporter reads from `--config.file`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Scrape-budget settings.
    pub scrape: ScrapeConfig,
    /// Per-collector settings.
    pub collectors: CollectorsConfig,
}

/// A config turned into running parts.
#[derive(Debug)]
pub struct Built {
    /// How long each scrape may take.
    pub policy: BudgetPolicy,
    /// The enabled collectors and named targets.
    pub collectors: Enabled,
}

impl Config {
    /// Reads and decodes `path`, adding the peer exporters' environment targets.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = config::read(path)?;
        config.collectors.add_peer_environment_targets();
        Ok(config)
    }

    /// Decodes `text`, naming `path` in errors, adding the peer exporters'
    /// environment targets.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut config: Config = config::decode(path, text)?;
        config.collectors.add_peer_environment_targets();
        Ok(config)
    }

    /// The configuration used without `--config.file`: defaults plus the peer
    /// exporters' environment conventions.
    pub fn from_defaults() -> Result<Config, ConfigError> {
        Self::parse(Self::DEFAULTS_SOURCE.as_ref(), "")
    }

    /// What errors name as the file when there is none.
    pub const DEFAULTS_SOURCE: &str = "<built-in defaults>";

    /// Checks every section and builds the collectors, or returns every
    /// problem, rendered against `source`. Reads the secrets the config
    /// names. Must run inside a tokio runtime (see [`collectors::build`]).
    pub fn build(&self, source: &Path) -> Result<Built, ConfigError> {
        let mut problems = self.scrape.check();
        let collectors = collectors::build(&self.collectors).map_err(|found| problems.extend(found));
        match collectors {
            Ok(collectors) if problems.is_empty() => Ok(Built { policy: self.scrape.policy(), collectors }),
            _ => Err(ConfigError::new(source, problems)),
        }
    }
}

/// Parses and builds `text` as start-up does.
#[cfg(test)]
pub(crate) fn checked(path: &Path, text: &str) -> Result<(Config, Built), ConfigError> {
    let config = Config::parse(path, text)?;
    let built = in_runtime(|| config.build(path))?;
    Ok((config, built))
}

/// Runs `work` inside a tokio runtime: the caller's, or else one kept for
/// the test binary's life (pools built in it outlive the call).
#[cfg(test)]
pub(crate) fn in_runtime<T>(work: impl FnOnce() -> T) -> T {
    static RUNTIME: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
    });
    let _inside = tokio::runtime::Handle::try_current().is_err().then(|| RUNTIME.enter());
    work()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn parse(text: &str) -> Result<(Config, Built), String> {
        checked(Path::new("/etc/opsmon.yml"), text).map_err(|e| e.to_string())
    }

    fn first_line(text: &str) -> String {
        let error = parse(text).expect_err("must be rejected");
        error.lines().next().unwrap_or_default().to_owned()
    }

    #[test]
    fn empty_file_means_defaults() {
        let (config, built) = parse("").expect("empty is fine");
        assert!(config.collectors.host.enabled);
        assert_eq!(config.scrape.max_timeout.0, Duration::from_secs(10));
        assert_eq!(built.collectors.names, vec!["host"]);
        assert_eq!(built.policy, BudgetPolicy::default());
    }

    #[test]
    fn full_host_section_parses() {
        let (config, _) = parse(
            "scrape:\n  timeout_offset: 250ms\n  max_timeout: 20s\ncollectors:\n  host:\n    listen_ports: [3000, 5432]\n    process_groups:\n      - name: api\n        cmdline: 'node .*server\\.js'\n      - name: pg\n        comm: postgres\n    directories:\n      - path: /var/log\n        max_entries: 10\n",
        )
        .expect("valid");
        let host = &config.collectors.host;
        assert_eq!(host.listen_ports, vec![3000, 5432]);
        assert_eq!(host.process_groups[1].comm.as_deref(), Some("postgres"));
        assert!(host.process_groups[0].cmdline.as_ref().expect("regex").0.is_match("node /srv/server.js"));
        assert_eq!(host.directories[0].max_entries, 10);
        assert_eq!(host.directories[0].refresh_interval.0, Duration::from_secs(60));
        assert_eq!(config.scrape.timeout_offset.0, Duration::from_millis(250));
    }

    #[test]
    fn errors_name_file_line_column_and_fix() {
        let cases: &[(&str, &str)] = &[
            (
                "collectors:\n  host:\n    listen_port: [3000]\n",
                "/etc/opsmon.yml:3:5: unknown field `listen_port`, expected one of enabled, filesystem, process_groups, listen_ports, directories; did you mean `listen_ports`?",
            ),
            (
                "colectors: {}\n",
                "/etc/opsmon.yml:1:1: unknown field `colectors`, expected one of scrape, collectors; did you mean `collectors`?",
            ),
            (
                "collectors:\n  host:\n    enabled: 3\n",
                "/etc/opsmon.yml:3:14: invalid boolean; expected true or false",
            ),
            (
                "collectors:\n  host:\n    listen_ports: [70000]\n",
                "/etc/opsmon.yml:3:20: invalid u16; expected a whole number from 0 to 65535",
            ),
            (
                "collectors:\n  host:\n    filesystem:\n      fs_types_exclude: '^(tmpfs'\n",
                "/etc/opsmon.yml:4:25: invalid regex \"^(tmpfs\": error: unclosed group; expected RE2-style syntax (escape literal brackets and dots with \\)",
            ),
            (
                "scrape:\n  max_timeout: ten\n",
                "/etc/opsmon.yml:2:16: invalid duration \"ten\" (expected number at 0); expected a number with a unit, e.g. 500ms, 10s, 5m",
            ),
            (
                "collectors:\n  host:\n    process_groups:\n      - name: api\n",
                "/etc/opsmon.yml:4:15: collectors.host.process_groups[0]: set `comm` (exact process name) or `cmdline` (regex over the command line)",
            ),
            (
                "collectors:\n  host:\n    directories:\n      - path: var/log\n",
                "/etc/opsmon.yml:4:15: collectors.host.directories[0].path: \"var/log\" is relative; use an absolute path such as /var/log",
            ),
        ];
        for (yaml, expected) in cases {
            assert_eq!(&first_line(yaml), expected, "for input:\n{yaml}");
        }
    }

    /// Issue 10: values that would fail or panic at run time are refused at
    /// check time, with the file, line, column, field, limit and fix.
    #[test]
    fn out_of_range_durations_and_sizes_are_refused() {
        let cases: &[(&str, &str)] = &[
            // A duration that overflows every deadline computed from it.
            (
                "scrape:\n  max_timeout: 5124095576030431h\n",
                "/etc/opsmon.yml:2:16: duration \"5124095576030431h\" is too long: at most 7d (168h); use a shorter duration, e.g. 10s, 5m or 1h",
            ),
            // A duration too large for humantime at all.
            (
                "collectors:\n  host:\n    filesystem:\n      statfs_timeout: 99999999999999999999s\n",
                "/etc/opsmon.yml:4:23: invalid duration \"99999999999999999999s\" (number is too large or cannot be represented without a lack of precision (values below 1ns are not supported)); expected a number with a unit, e.g. 500ms, 10s, 5m",
            ),
            // Within a week, but no scrape budget should be.
            (
                "scrape:\n  max_timeout: 2h\n",
                "/etc/opsmon.yml: scrape.max_timeout: 7200s is too long: at most 10m; Prometheus' scrape_timeout is usually 10s to 1m",
            ),
            // A PostgreSQL session timeout past what the server accepts.
            (
                "collectors:\n  postgres:\n    targets:\n      - name: db\n        dsn: postgresql://app@127.0.0.1/x\n        statement_timeout: 30d\n",
                "/etc/opsmon.yml:6:28: duration \"30d\" is too long: at most 7d (168h); use a shorter duration, e.g. 10s, 5m or 1h",
            ),
            // A business query interval.
            (
                "collectors:\n  postgres:\n    targets:\n      - name: db\n        dsn: postgresql://app@127.0.0.1/x\n  business:\n    target: db\n    queries:\n      - name: q\n        sql: SELECT 1 AS v\n        interval: 400d\n        metrics:\n          - {name: v, column: v, kind: gauge, help: v}\n",
                "/etc/opsmon.yml:11:19: collectors.business.queries[0].interval: duration \"400d\" is too long: at most 7d (168h); use a shorter duration, e.g. 30s, 5m or 1h",
            ),
            // Sizes and counts.
            (
                "collectors:\n  host:\n    directories:\n      - path: /var/log\n        max_entries: 18446744073709551615\n",
                "/etc/opsmon.yml:4:15: collectors.host.directories[0].max_entries: 18446744073709551615 is out of range: between 1 and 10000000; size a deeper tree with a longer refresh_interval instead",
            ),
            (
                "collectors:\n  files:\n    paths:\n      - name: backup\n        glob: /b/*.dump\n        max_files: 0\n",
                "/etc/opsmon.yml:4:15: collectors.files.paths[0].max_files: 0 is out of range: between 1 and 1000000; narrow the glob instead",
            ),
            (
                "collectors:\n  probe:\n    modules:\n      big:\n        body_size_limit: 100GiB\n",
                "/etc/opsmon.yml:5:26: invalid size \"100GiB\": at most 64MiB, which the exporter would hold in memory; expected a number of bytes or a number with a unit: 512KiB, 10MiB, 1GiB (KB, MB, GB are powers of 1000)",
            ),
        ];
        for (yaml, expected) in cases {
            assert_eq!(&first_line(yaml), expected, "for input:\n{yaml}");
        }
        // The longest accepted values still build.
        parse("scrape:\n  max_timeout: 10m\ncollectors:\n  host:\n    directories:\n      - path: /var/log\n        refresh_interval: 7d\n")
            .expect("at the limits");
    }

    #[test]
    fn snippet_points_at_the_file() {
        let error = parse("collectors:\n  host:\n    enabeld: true\n").expect_err("typo");
        assert!(error.contains("--> /etc/opsmon.yml:3:5"), "{error}");
        assert!(error.contains("did you mean `enabled`?"), "{error}");
    }

    #[test]
    fn unreadable_file_is_named() {
        let error = Config::load(Path::new("/nonexistent/opsmon.yml")).expect_err("missing").to_string();
        assert!(
            error.starts_with("/nonexistent/opsmon.yml: cannot read config file: No such file"),
            "{error}"
        );
    }

    #[test]
    fn every_problem_of_every_section_is_reported_at_once() {
        let error = parse(
            "collectors:\n  host:\n    process_groups:\n      - name: api\n  redis:\n    targets:\n      - name: cache\n  files:\n    paths:\n      - {name: a, glob: /a}\n      - {name: a, glob: /b}\n",
        )
        .expect_err("three problems");
        assert_eq!(error.lines().filter(|l| l.starts_with("/etc/opsmon.yml:")).count(), 3, "{error}");
    }
}
