//! HTTP and CDN probes (blackbox_exporter-compatible names): configured modules and targets.

use serde::Deserialize;

/// Settings of the probe collector.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {}
