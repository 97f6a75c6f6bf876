//! Families of the probe collector.

use crate::MetricDef;

/// All families of the probe collector.
pub const METRICS: &[MetricDef] = &[];
