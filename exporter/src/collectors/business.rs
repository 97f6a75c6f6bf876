//! Business gauges from configured SQL queries against a named PostgreSQL target.

use serde::Deserialize;

/// Settings of the business collector.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusinessConfig {}
