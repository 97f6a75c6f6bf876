//! Redis families: redis_exporter's names, types and label names, plus
//! opsmon's PING latency.

use crate::MetricDef;

/// All Redis families (filled in by the redis collector's change).
pub const METRICS: &[MetricDef] = &[];
