//! Families of the business collector.

use crate::MetricDef;

/// All families of the business collector.
pub const METRICS: &[MetricDef] = &[];
