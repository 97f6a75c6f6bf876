//! rulegen: one typed threshold definition (`deploy/thresholds.yaml`)
//! rendered into Prometheus alert and recording rules, promtool unit tests,
//! Grafana dashboards, Alertmanager routing, a Kubernetes PrometheusRule
//! and runbooks.
//!
//! Data flows one way: YAML → [`yaml`] tree → [`spec`] → [`validate`] (against
//! [`known`] metrics; [`promtest`] builds each alert's test scenario and
//! [`layout`] places the dashboards) → [`model`] → [`render`] → files.
//! Renderers read only the model. [`report`] answers the model's daily
//! checklists from a live Prometheus.
//!
//! ```
//! let known = opsmon_rulegen::known::Known::catalog();
//! let error = opsmon_rulegen::validate::validate("t.yaml", "version: rulegen/v2\n", &known)
//!     .expect_err("unsupported version");
//! assert!(error.to_string().contains("t.yaml:1:10: version: unsupported version \"rulegen/v2\""));
//! ```

pub mod bench;
pub mod diagnostics;
pub mod format;
pub mod known;
pub mod layout;
pub mod model;
pub mod output;
pub mod parallel;
pub mod promql;
pub mod promtest;
pub mod render;
pub mod report;
pub mod spec;
pub mod template;
pub mod validate;
pub mod yaml;

use std::path::Path;

/// Loading or validating failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The exporter config could not be read.
    #[error(transparent)]
    Known(#[from] known::KnownError),
    /// The threshold file could not be read.
    #[error("{path}: cannot read threshold file: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The threshold file is invalid.
    #[error(transparent)]
    Invalid(#[from] validate::Invalid),
}

/// Reads the exporter config and the threshold file (with the receivers
/// file it names, secret files checked) and validates them.
pub fn load(thresholds: &Path, exporter_config: &Path) -> Result<model::Model, Error> {
    load_with(thresholds, exporter_config, &validate::receivers::Files::beside(thresholds))
}

/// [`load`], reading the files the threshold file names through `files`.
pub fn load_with(
    thresholds: &Path,
    exporter_config: &Path,
    files: &validate::receivers::Files,
) -> Result<model::Model, Error> {
    let known = known::Known::load(exporter_config)?;
    let text = std::fs::read_to_string(thresholds)
        .map_err(|source| Error::Read { path: thresholds.display().to_string(), source })?;
    Ok(validate::validate_with(&thresholds.display().to_string(), &text, &known, files)?)
}
