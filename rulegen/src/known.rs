//! The metrics an alert may name: the exporter catalog, the business metrics
//! declared in the exporter config (`collectors.business`), Prometheus' own
//! `up`, and the recording rules the threshold file itself defines.

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

/// The set of known metrics.
#[derive(Debug, Clone, Default)]
pub struct Known {
    metrics: BTreeMap<String, Metric>,
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
}

#[derive(Deserialize, Default)]
struct ExporterConfig {
    #[serde(default)]
    collectors: Collectors,
}

#[derive(Deserialize, Default)]
struct Collectors {
    #[serde(default)]
    business: Option<BusinessConfig>,
}

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
        if let Some(business) = config.collectors.business {
            self.add_business(&business);
        }
        Ok(())
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
}
