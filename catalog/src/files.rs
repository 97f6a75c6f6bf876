//! Families of the files collector.

use crate::MetricDef;

/// All families of the files collector.
pub const METRICS: &[MetricDef] = &[];
