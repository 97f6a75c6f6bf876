//! Request metrics from nginx access logs and pattern counts over application logs.

use serde::Deserialize;

/// Settings of the accesslog collector.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccesslogConfig {}
