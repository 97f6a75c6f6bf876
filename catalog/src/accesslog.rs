//! Families of the accesslog collector.

use crate::MetricDef;

/// All families of the accesslog collector.
pub const METRICS: &[MetricDef] = &[];
