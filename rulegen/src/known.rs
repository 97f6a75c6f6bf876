//! The metrics an alert may name: the exporter catalog, the business metrics
//! declared in the exporter config (`collectors.business`), Prometheus' own
//! `up`, and the recording rules the threshold file itself defines; and the
//! values the exporter config lets a label take (route names, probe targets,
//! process groups, …), so a matcher that can never match is caught like a
//! misspelt metric name.

use opsmon_catalog::business::{BusinessConfig, BusinessMetricKind};
use opsmon_catalog::{MetricType, Unit};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Labels Prometheus attaches to every scraped series.
pub const TARGET_LABELS: &[&str] = &["instance", "job"];

/// Where a known metric comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `opsmon_catalog`, with the collector name.
    Catalog(String),
    /// A business query of the exporter config, with the query name.
    Business(String),
    /// Prometheus' synthetic `up`.
    Prometheus,
    /// A recording rule of the threshold file.
    Record,
}

/// One known metric family.
#[derive(Debug, Clone)]
pub struct Metric {
    /// Exposition name (counters with `_total` where they have it).
    pub name: String,
    /// Type.
    pub kind: MetricType,
    /// Unit.
    pub unit: Unit,
    /// Label names, without job/instance.
    pub labels: Vec<String>,
    /// HELP text.
    pub help: String,
    /// Origin.
    pub source: Source,
}

/// Which series of a family a selector names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The family itself.
    Plain,
    /// A histogram's `_bucket`.
    Bucket,
    /// A histogram's `_count`.
    Count,
    /// A histogram's `_sum`.
    Sum,
}

/// The values one label of one family can take, as the exporter config
/// bounds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelValues {
    /// Every value the exporter can write.
    pub values: Vec<String>,
    /// Where the values come from, for messages (`collectors.accesslog.routes`).
    pub origin: String,
    /// Request-path prefixes and the value a path under them gets (routes),
    /// so `route="/api/v1/lessons"` can suggest `api`.
    pub prefixes: Vec<(String, String)>,
    /// Besides `values`, any URL (on-demand `/probe?target=URL` requests).
    pub urls: bool,
}

impl LabelValues {
    fn new(values: Vec<String>, origin: &str) -> Self {
        LabelValues { values, origin: origin.to_owned(), prefixes: Vec::new(), urls: false }
    }

    /// Whether the exporter can write `value`.
    pub fn contains(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value) || (self.urls && value.contains("://"))
    }

    /// The value a misspelt or mistaken `value` most likely meant.
    pub fn suggest(&self, value: &str) -> Option<String> {
        if let Some((_, v)) = self
            .prefixes
            .iter()
            .filter(|(prefix, _)| value.starts_with(prefix.as_str()) || prefix.trim_end_matches('/') == value)
            .max_by_key(|(prefix, _)| prefix.len())
        {
            return Some(v.clone());
        }
        crate::diagnostics::did_you_mean(value, self.values.iter().map(String::as_str)).map(str::to_owned)
    }
}

/// The set of known metrics.
#[derive(Debug, Clone, Default)]
pub struct Known {
    metrics: BTreeMap<String, Metric>,
    /// (family, label) → its bounded values; labels not here are open.
    values: BTreeMap<(String, String), LabelValues>,
}

/// Reading the exporter config failed.
#[derive(Debug, thiserror::Error)]
pub enum KnownError {
    /// The file could not be read.
    #[error("{path}: cannot read exporter config: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid exporter config (business section).
    #[error("{path}: invalid exporter config: {message}")]
    Parse {
        /// The file.
        path: String,
        /// serde-saphyr's message with position.
        message: String,
    },
    /// A business query declares values for a label it does not have.
    #[error("{path}:{line}:{column}: {field}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Field path.
        field: String,
        /// What is wrong and the fix.
        message: String,
    },
}

/// The parts of the exporter config that name label values; everything
/// else is ignored here (the exporter checks its own config).
#[derive(Deserialize, Default)]
struct ExporterConfig {
    #[serde(default)]
    collectors: Collectors,
}

#[derive(Deserialize, Default)]
struct Collectors {
    #[serde(default)]
    business: Option<BusinessConfig>,
    #[serde(default)]
    host: Option<HostSection>,
    #[serde(default)]
    probe: Option<ProbeSection>,
    #[serde(default)]
    accesslog: Option<AccesslogSection>,
    #[serde(default)]
    files: Option<FilesSection>,
}

#[derive(Deserialize, Default)]
struct Named {
    name: String,
}

#[derive(Deserialize, Default)]
struct HostSection {
    #[serde(default)]
    process_groups: Vec<Named>,
    #[serde(default)]
    listen_ports: Vec<u16>,
    #[serde(default)]
    directories: Vec<DirectorySection>,
}

#[derive(Deserialize, Default)]
struct DirectorySection {
    path: String,
}

#[derive(Deserialize, Default)]
struct ProbeSection {
    #[serde(default)]
    targets: Vec<Named>,
}

#[derive(Deserialize, Default)]
struct AccesslogSection {
    #[serde(default)]
    routes: Vec<RouteSection>,
    #[serde(default)]
    patterns: Vec<Named>,
}

#[derive(Deserialize, Default)]
struct RouteSection {
    name: String,
    prefix: String,
}

#[derive(Deserialize, Default)]
struct FilesSection {
    #[serde(default)]
    paths: Vec<Named>,
}

/// The route value of requests under no configured prefix (the exporter's
/// `OTHER_ROUTE`).
pub const OTHER_ROUTE: &str = "other";

impl Known {
    /// The catalog plus `up`, without business metrics.
    pub fn catalog() -> Known {
        Self::from_defs(opsmon_catalog::all())
    }

    /// `up` plus the given families (tests use a fixture catalog).
    pub fn from_defs<'a>(defs: impl IntoIterator<Item = &'a opsmon_catalog::MetricDef>) -> Known {
        let mut known = Known::default();
        for def in defs {
            known.insert(Metric {
                name: def.name.to_owned(),
                kind: def.metric_type,
                unit: def.unit,
                labels: def.labels.iter().map(|l| (*l).to_owned()).collect(),
                help: def.help.to_owned(),
                source: Source::Catalog(def.collector.to_owned()),
            });
        }
        known.insert(Metric {
            name: "up".into(),
            kind: MetricType::Gauge,
            unit: Unit::None,
            labels: Vec::new(),
            help: "Prometheus' synthetic series: 1 when the last scrape of the target succeeded, else 0."
                .into(),
            source: Source::Prometheus,
        });
        known
    }

    /// The catalog, `up` and the business metrics of the exporter config at `path`.
    pub fn load(path: &Path) -> Result<Known, KnownError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| KnownError::Read { path: path.display().to_string(), source })?;
        Self::from_exporter_config(&path.display().to_string(), &text)
    }

    /// Like [`Known::load`] from text.
    pub fn from_exporter_config(path: &str, text: &str) -> Result<Known, KnownError> {
        let mut known = Self::catalog();
        known.add_exporter_config(path, text)?;
        Ok(known)
    }

    /// Adds the business metrics of exporter-config text (other sections are ignored).
    pub fn add_exporter_config(&mut self, path: &str, text: &str) -> Result<(), KnownError> {
        let config: ExporterConfig = if text.trim().is_empty() {
            ExporterConfig::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| KnownError::Parse {
                path: path.to_owned(),
                message: e.without_snippet().to_string().trim().to_owned(),
            })?
        };
        let c = config.collectors;
        if let Some(business) = &c.business {
            self.add_business(business);
            self.add_business_values(path, business)?;
        }
        if let Some(host) = &c.host {
            let groups = host.process_groups.iter().map(|g| g.name.clone()).collect();
            self.bound("host", "group", &LabelValues::new(groups, "collectors.host.process_groups names"));
            let ports = host.listen_ports.iter().map(u16::to_string).collect();
            self.bound("host", "port", &LabelValues::new(ports, "collectors.host.listen_ports"));
            let dirs = host.directories.iter().map(|d| d.path.clone()).collect();
            self.bound("host", "path", &LabelValues::new(dirs, "collectors.host.directories paths"));
        }
        if let Some(probe) = &c.probe {
            let mut targets = LabelValues::new(
                probe.targets.iter().map(|t| t.name.clone()).collect(),
                "collectors.probe.targets names",
            );
            targets.urls = true;
            self.bound("probe", "target", &targets);
        }
        if let Some(log) = &c.accesslog {
            let mut routes: Vec<String> = log.routes.iter().map(|r| r.name.clone()).collect();
            routes.push(OTHER_ROUTE.to_owned());
            let mut values = LabelValues::new(routes, "collectors.accesslog.routes names plus `other`");
            values.prefixes = log.routes.iter().map(|r| (r.prefix.clone(), r.name.clone())).collect();
            self.bound("accesslog", "route", &values);
            let patterns = log.patterns.iter().map(|p| p.name.clone()).collect();
            self.bound(
                "accesslog",
                "pattern",
                &LabelValues::new(patterns, "collectors.accesslog.patterns names"),
            );
        }
        if let Some(files) = &c.files {
            let names = files.paths.iter().map(|f| f.name.clone()).collect();
            self.bound("files", "name", &LabelValues::new(names, "collectors.files.paths names"));
        }
        Ok(())
    }

    /// Bounds `label` of every catalog family of `collector` that has it.
    fn bound(&mut self, collector: &str, label: &str, values: &LabelValues) {
        let families: Vec<String> = self
            .metrics
            .values()
            .filter(|m| {
                m.source == Source::Catalog(collector.to_owned()) && m.labels.iter().any(|l| l == label)
            })
            .map(|m| m.name.clone())
            .collect();
        for family in families {
            self.values.insert((family, label.to_owned()), values.clone());
        }
    }

    /// Business queries: `query` of the self families is a query name; the
    /// labels a query declares in `label_values` are bounded by the list.
    fn add_business_values(&mut self, path: &str, business: &BusinessConfig) -> Result<(), KnownError> {
        let names = business.queries.iter().map(|q| q.name.value.clone()).collect();
        self.bound("business", "query", &LabelValues::new(names, "collectors.business.queries names"));
        for (i, query) in business.queries.iter().enumerate() {
            let declared = &query.label_values;
            for (label, values) in &declared.value {
                let field = format!("collectors.business.queries[{i}].label_values.{label}");
                if !query.labels.contains(label) {
                    return Err(KnownError::Invalid {
                        path: path.to_owned(),
                        line: declared.referenced.line() as usize,
                        column: declared.referenced.column() as usize,
                        field,
                        message: format!(
                            "query `{}` has no label `{label}`; list values only for its labels ({}){}",
                            query.name.value,
                            query.labels.join(", "),
                            crate::diagnostics::hint(label, query.labels.iter().map(String::as_str))
                        ),
                    });
                }
                for metric in &query.metrics {
                    self.values.insert(
                        (metric.name.value.clone(), label.clone()),
                        LabelValues::new(values.clone(), &field),
                    );
                }
            }
        }
        Ok(())
    }

    /// The values `label` of `family` can take, when the exporter config bounds them.
    pub fn label_values(&self, family: &str, label: &str) -> Option<&LabelValues> {
        self.values.get(&(family.to_owned(), label.to_owned()))
    }

    /// Adds the families of business queries.
    pub fn add_business(&mut self, business: &BusinessConfig) {
        for query in &business.queries {
            for metric in &query.metrics {
                let name = metric.name.value.clone();
                let unit = unit_from_name(&name);
                self.insert(Metric {
                    name,
                    kind: match metric.kind {
                        BusinessMetricKind::Gauge => MetricType::Gauge,
                        BusinessMetricKind::Counter => MetricType::Counter,
                    },
                    unit,
                    labels: query.labels.clone(),
                    help: metric.help.clone(),
                    source: Source::Business(query.name.value.clone()),
                });
            }
        }
    }

    /// Adds (or replaces) a family.
    pub fn insert(&mut self, metric: Metric) {
        self.metrics.insert(metric.name.clone(), metric);
    }

    /// Looks a selector's name up, resolving histogram `_bucket`/`_count`/`_sum`.
    pub fn resolve(&self, name: &str) -> Option<(&Metric, Part)> {
        if let Some(metric) = self.metrics.get(name) {
            return Some((metric, Part::Plain));
        }
        for (suffix, part) in [("_bucket", Part::Bucket), ("_count", Part::Count), ("_sum", Part::Sum)] {
            if let Some(base) = name.strip_suffix(suffix)
                && let Some(metric) = self.metrics.get(base)
                && metric.kind == MetricType::Histogram
            {
                return Some((metric, part));
            }
        }
        None
    }

    /// Every name a selector may use (histograms with their series).
    pub fn selectable_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for metric in self.metrics.values() {
            if metric.kind == MetricType::Histogram {
                for suffix in ["_bucket", "_count", "_sum"] {
                    names.push(format!("{}{suffix}", metric.name));
                }
            } else {
                names.push(metric.name.clone());
            }
        }
        names
    }

    /// Every family, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Metric> {
        self.metrics.values()
    }

    /// Whether a family of that exact name is known.
    pub fn contains(&self, name: &str) -> bool {
        self.metrics.contains_key(name)
    }
}

/// Unit of a business metric from its name (the naming guide's suffixes).
pub fn unit_from_name(name: &str) -> Unit {
    let stem = name.strip_suffix("_total").unwrap_or(name);
    if stem.ends_with("_ratio") {
        Unit::Ratio
    } else if stem.ends_with("_seconds") {
        Unit::Seconds
    } else if stem.ends_with("_bytes") {
        Unit::Bytes
    } else {
        Unit::None
    }
}

/// The unit's word in the threshold file.
pub fn unit_word(unit: Unit) -> &'static str {
    match unit {
        Unit::Seconds => "seconds",
        Unit::Bytes => "bytes",
        Unit::Ratio => "ratio",
        Unit::None => "none",
    }
}

/// Parses a unit word.
pub fn parse_unit(word: &str) -> Option<Unit> {
    Some(match word {
        "seconds" => Unit::Seconds,
        "bytes" => Unit::Bytes,
        "ratio" => Unit::Ratio,
        "none" => Unit::None,
        _ => return None,
    })
}

/// The unit words, for messages.
pub const UNIT_WORDS: &[&str] = &["ratio", "seconds", "bytes", "none"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_up_and_histogram_parts() {
        let mut known = Known::catalog();
        known.insert(Metric {
            name: "h_seconds".into(),
            kind: MetricType::Histogram,
            unit: Unit::Seconds,
            labels: vec!["route".into()],
            help: "h".into(),
            source: Source::Record,
        });
        assert!(known.resolve("up").is_some());
        assert_eq!(known.resolve("h_seconds_bucket").map(|(_, p)| p), Some(Part::Bucket));
        assert!(known.resolve("node_memroy_MemAvailable_bytes").is_none());
    }

    #[test]
    fn business_metrics_come_from_the_config() {
        let yaml = "collectors:\n  host:\n    enabled: true\n  business:\n    queries:\n      - name: activation\n        sql: select 1\n        labels: [window]\n        metrics:\n          - name: smartalk_activation_ratio\n            help: Ratio.\n            column: ratio\n";
        let known = Known::from_exporter_config("x.yml", yaml).expect("valid");
        let (metric, _) = known.resolve("smartalk_activation_ratio").expect("declared");
        assert_eq!(metric.unit, Unit::Ratio);
        assert_eq!(metric.labels, vec!["window".to_owned()]);
    }

    #[test]
    fn label_values_come_from_the_collectors_of_the_config() {
        let yaml = "collectors:\n  host:\n    process_groups:\n      - {name: nginx, comm: nginx}\n    listen_ports: [3000]\n  probe:\n    targets:\n      - {name: api_health, url: 'http://x/', module: m}\n  accesslog:\n    routes:\n      - {name: api, prefix: /api/}\n";
        let known = Known::from_exporter_config("x.yml", yaml).expect("valid");
        let routes = known.label_values("http_requests_total", "route").expect("bounded");
        assert_eq!(routes.values, vec!["api".to_owned(), OTHER_ROUTE.to_owned()]);
        assert_eq!(routes.suggest("/api/v1/lessons").as_deref(), Some("api"));
        assert_eq!(routes.suggest("/api").as_deref(), Some("api"));
        assert!(known.label_values("opsmon_processes", "group").expect("bounded").contains("nginx"));
        assert!(known.label_values("opsmon_tcp_port_listening", "port").expect("bounded").contains("3000"));
        let targets = known.label_values("probe_success", "target").expect("bounded");
        assert!(
            targets.contains("api_health")
                && targets.contains("https://cdn.example/x")
                && !targets.contains("cdn")
        );
        // Open labels and unconfigured collectors stay unchecked.
        assert!(known.label_values("node_filesystem_avail_bytes", "mountpoint").is_none());
        assert!(known.label_values("opsmon_files_newest_timestamp_seconds", "name").is_none());
    }

    #[test]
    fn declared_business_values_must_name_a_label_of_the_query() {
        let yaml = "collectors:\n  business:\n    queries:\n      - name: activation\n        sql: select 1\n        labels: [window]\n        label_values: {windw: [1h]}\n        metrics:\n          - {name: smartalk_activation_ratio, help: R, column: ratio}\n";
        let error = Known::from_exporter_config("x.yml", yaml).expect_err("unknown label");
        assert_eq!(
            error.to_string(),
            "x.yml:7:23: collectors.business.queries[0].label_values.windw: query `activation` has no label `windw`; list values only for its labels (window); did you mean `window`?"
        );
    }
}
