//! One scrape's values: families of samples keyed by catalog declarations,
//! and their encoding. OpenMetrics 1.0 goes through prometheus-client. The
//! Prometheus text format 0.0.4 is written here, because prometheus-client's
//! text encoder appends `_total` to every counter, which would rename
//! postgres_exporter's counters (`pg_stat_database_xact_commit`) that
//! compatibility requires us to keep; it is also the hot path of every scrape.

use std::borrow::Cow;
use std::fmt;

use opsmon_catalog::{MetricDef, MetricType};
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, LabelSetEncoder, NoLabelSet,
};
use prometheus_client::registry::{Registry, Unit};

/// A label value; static strings (CPU modes, collector names) are not copied.
pub type LabelValue = Cow<'static, str>;

/// The value of one sample.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A gauge or counter value.
    Number(f64),
    /// A cumulative histogram: `(upper bound, count in this bucket)` pairs,
    /// excluding `+Inf`, which is derived from `count`.
    Histogram {
        /// Sum of all observations.
        sum: f64,
        /// Number of observations.
        count: u64,
        /// Per-bucket (non-cumulative) counts by upper bound.
        buckets: Vec<(f64, u64)>,
    },
}

/// One series: label values in the order of the family's declared label names.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Values for `MetricDef::labels`, same order and length.
    pub label_values: Vec<LabelValue>,
    /// The value.
    pub value: Value,
}

/// All samples of one family in one scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The family's declaration.
    pub def: &'static MetricDef,
    /// Its samples; may be empty (the family is then omitted).
    pub samples: Vec<Sample>,
}

/// What collectors hand to the encoder: families in emission order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MetricSet {
    families: Vec<Family>,
}

impl MetricSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family; add samples to the returned handle.
    pub fn family(&mut self, def: &'static MetricDef) -> FamilyBuilder<'_> {
        self.families.push(Family { def, samples: Vec::new() });
        let family = self.families.last_mut().expect("just pushed");
        FamilyBuilder { family }
    }

    /// Adds one unlabelled number sample as its own family.
    pub fn single(&mut self, def: &'static MetricDef, value: f64) {
        self.family(def).number(Vec::new(), value);
    }

    /// Appends every family of `other`.
    pub fn extend(&mut self, other: MetricSet) {
        self.families.extend(other.families);
    }

    /// The families collected so far.
    pub fn families(&self) -> &[Family] {
        &self.families
    }

    /// Number of samples over all families.
    pub fn sample_count(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }

    /// Encodes as Prometheus text exposition format 0.0.4.
    pub fn encode_text(&self) -> String {
        let mut out = String::with_capacity(self.sample_count() * 80 + self.families.len() * 120);
        for family in self.families.iter().filter(|f| !f.samples.is_empty()) {
            let def = family.def;
            out.push_str("# HELP ");
            out.push_str(def.name);
            out.push(' ');
            push_escaped(&mut out, def.help, false);
            out.push_str("\n# TYPE ");
            out.push_str(def.name);
            out.push(' ');
            out.push_str(def.metric_type.as_str());
            out.push('\n');
            for sample in &family.samples {
                match &sample.value {
                    Value::Number(value) => {
                        push_series(&mut out, def.name, "", def.labels, &sample.label_values, None);
                        push_value(&mut out, *value);
                    }
                    Value::Histogram { sum, count, buckets } => {
                        let mut cumulative = 0u64;
                        for (bound, in_bucket) in buckets {
                            cumulative += in_bucket;
                            let le = format_value(*bound);
                            push_series(
                                &mut out,
                                def.name,
                                "_bucket",
                                def.labels,
                                &sample.label_values,
                                Some(&le),
                            );
                            push_value(&mut out, cumulative as f64);
                        }
                        push_series(
                            &mut out,
                            def.name,
                            "_bucket",
                            def.labels,
                            &sample.label_values,
                            Some("+Inf"),
                        );
                        push_value(&mut out, *count as f64);
                        push_series(&mut out, def.name, "_sum", def.labels, &sample.label_values, None);
                        push_value(&mut out, *sum);
                        push_series(&mut out, def.name, "_count", def.labels, &sample.label_values, None);
                        push_value(&mut out, *count as f64);
                    }
                }
            }
        }
        out
    }

    /// Encodes as OpenMetrics 1.0 text, ending in `# EOF`.
    pub fn encode_openmetrics(self) -> String {
        let mut out = String::with_capacity(self.sample_count() * 96 + 512);
        let registry = self.into_registry();
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }

    fn into_registry(self) -> Registry {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        registry
    }
}

/// Adds samples to one family.
#[derive(Debug)]
pub struct FamilyBuilder<'a> {
    family: &'a mut Family,
}

impl FamilyBuilder<'_> {
    /// Adds a gauge or counter sample.
    pub fn number(&mut self, label_values: Vec<LabelValue>, value: f64) -> &mut Self {
        debug_assert_eq!(label_values.len(), self.family.def.labels.len(), "{}", self.family.def.name);
        self.family.samples.push(Sample { label_values, value: Value::Number(value) });
        self
    }

    /// Adds a histogram sample.
    pub fn histogram(
        &mut self,
        label_values: Vec<LabelValue>,
        sum: f64,
        count: u64,
        buckets: Vec<(f64, u64)>,
    ) -> &mut Self {
        debug_assert_eq!(label_values.len(), self.family.def.labels.len(), "{}", self.family.def.name);
        self.family.samples.push(Sample { label_values, value: Value::Histogram { sum, count, buckets } });
        self
    }
}

fn push_series(
    out: &mut String,
    name: &str,
    suffix: &str,
    label_names: &[&str],
    label_values: &[LabelValue],
    le: Option<&str>,
) {
    out.push_str(name);
    out.push_str(suffix);
    if label_names.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (label, value) in label_names.iter().zip(label_values) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(label);
        out.push_str("=\"");
        push_escaped(out, value, true);
        out.push('"');
    }
    if let Some(le) = le {
        if !first {
            out.push(',');
        }
        out.push_str("le=\"");
        out.push_str(le);
        out.push('"');
    }
    out.push('}');
}

fn push_value(out: &mut String, value: f64) {
    out.push(' ');
    push_number(out, value);
    out.push('\n');
}

/// A histogram bound as its `le` label value.
fn format_value(value: f64) -> String {
    let mut text = String::new();
    push_number(&mut text, value);
    text
}

/// Whole numbers below this are written as integers: they fit an `i64`
/// exactly, and `Display` of an `f64` writes them with neither a fraction nor
/// an exponent, so the text is the same.
const INTEGER_FAST_PATH_LIMIT: f64 = 1e15;

/// Shortest round-trip decimal (`Display` of `f64`), with Prometheus'
/// spellings of the specials, written in place. Most values are whole
/// numbers (counters, bytes, counts): those take integer formatting, several
/// times cheaper than the float algorithm, with the same text.
fn push_number(out: &mut String, value: f64) {
    use std::fmt::Write as _;
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0
        && value.abs() < INTEGER_FAST_PATH_LIMIT
        && !(value == 0.0 && value.is_sign_negative())
    {
        // Exact: a whole number below 1e15 fits an i64 without rounding.
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Escapes `\` and newlines (and `"` in label values) as the text format requires.
fn push_escaped(out: &mut String, text: &str, label_value: bool) {
    // Bytes, not chars: the three are ASCII, and a char-set `contains`
    // decodes UTF-8 one character at a time (a tenth of a 3,700-series
    // PostgreSQL probe's CPU went here).
    if !text.bytes().any(|b| matches!(b, b'\\' | b'\n' | b'"')) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if label_value => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Splits a catalog name into what prometheus-client's encoders re-assemble:
/// they append `_<unit>` and, for counters, `_total`.
fn encoder_name(def: &MetricDef) -> (&str, Option<Unit>) {
    let mut stem = def.name;
    if def.metric_type == MetricType::Counter {
        stem = stem.strip_suffix("_total").unwrap_or(stem);
    }
    let unit = match def.unit {
        opsmon_catalog::Unit::Seconds => Some(Unit::Seconds),
        opsmon_catalog::Unit::Bytes => Some(Unit::Bytes),
        opsmon_catalog::Unit::Ratio => Some(Unit::Ratios),
        opsmon_catalog::Unit::None => None,
    };
    match unit {
        Some(unit) => match stem.strip_suffix(unit.as_str()).and_then(|s| s.strip_suffix('_')) {
            Some(base) => (base, Some(unit)),
            // The unit sits inside the name (`..._seconds_total` handled above);
            // otherwise keep the name whole rather than invent a suffix.
            None => (stem, None),
        },
        None => (stem, None),
    }
}

struct Labels<'a> {
    names: &'static [&'static str],
    values: &'a [LabelValue],
}

impl EncodeLabelSet for Labels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), fmt::Error> {
        for (name, value) in self.names.iter().zip(self.values) {
            let mut label = encoder.encode_label();
            let mut key = label.encode_label_key()?;
            fmt::Write::write_str(&mut key, name)?;
            let mut value_encoder = key.encode_label_value()?;
            value.as_ref().encode(&mut value_encoder)?;
            value_encoder.finish()?;
        }
        Ok(())
    }
}

impl prometheus_client::collector::Collector for MetricSet {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        for family in self.families.iter().filter(|f| !f.samples.is_empty()) {
            let def = family.def;
            let (name, unit) = encoder_name(def);
            let metric_type = match def.metric_type {
                MetricType::Counter => prometheus_client::metrics::MetricType::Counter,
                MetricType::Gauge => prometheus_client::metrics::MetricType::Gauge,
                MetricType::Histogram => prometheus_client::metrics::MetricType::Histogram,
                MetricType::Untyped => prometheus_client::metrics::MetricType::Unknown,
            };
            let mut metric = encoder.encode_descriptor(name, def.help, unit.as_ref(), metric_type)?;
            for sample in &family.samples {
                let labels = Labels { names: def.labels, values: &sample.label_values };
                let mut series = metric.encode_family(&labels)?;
                match (&sample.value, def.metric_type) {
                    (Value::Number(v), MetricType::Counter) => {
                        series.encode_counter::<NoLabelSet, f64, f64>(v, None)?;
                    }
                    (Value::Number(v), _) => series.encode_gauge(v)?,
                    (Value::Histogram { sum, count, buckets }, _) => {
                        series.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsmon_catalog::host;

    fn sample_set() -> MetricSet {
        let mut set = MetricSet::new();
        set.family(&host::CPU_SECONDS)
            .number(vec!["0".into(), "user".into()], 12.5)
            .number(vec!["0".into(), "idle".into()], 100.0);
        set.single(&host::MEM_TOTAL, 8_388_608.0);
        set.single(&host::LOAD1, 0.25);
        set.family(&host::UNAME_INFO).number(
            ["", "x86_64", "host\"1", "6.1", "Linux", "#1 SMP"].into_iter().map(Into::into).collect(),
            1.0,
        );
        set.family(&host::FS_SIZE); // empty families are omitted
        set
    }

    #[test]
    fn numbers_are_written_as_display_spells_them() {
        let values = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            42.0,
            0.5,
            -2.25,
            1e-7,
            123_456_789.0,
            999_999_999_999_999.0,
            1e15,
            1e16,
            9_007_199_254_740_993.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            1.7e9 + 0.123,
        ];
        for value in values {
            let mut written = String::new();
            push_number(&mut written, value);
            assert_eq!(written, value.to_string(), "{value:?}");
        }
        for (value, spelled) in [(f64::NAN, "NaN"), (f64::INFINITY, "+Inf"), (f64::NEG_INFINITY, "-Inf")] {
            assert_eq!(format_value(value), spelled);
        }
    }

    #[test]
    fn text_format_matches_node_exporter_names() {
        let text = sample_set().encode_text();
        assert!(text.contains("# TYPE node_cpu_seconds_total counter\n"), "{text}");
        assert!(text.contains("node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 12.5\n"), "{text}");
        assert!(text.contains("# TYPE node_memory_MemTotal_bytes gauge\n"), "{text}");
        assert!(text.contains("node_memory_MemTotal_bytes 8388608\n"), "{text}");
        assert!(text.contains("node_load1 0.25\n"), "{text}");
        assert!(text.contains("nodename=\"host\\\"1\""), "label values are escaped: {text}");
        assert!(!text.contains("node_filesystem_size_bytes"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
    }

    #[test]
    fn openmetrics_has_units_and_eof() {
        let text = sample_set().encode_openmetrics();
        assert!(text.contains("# TYPE node_cpu_seconds counter\n"), "{text}");
        assert!(text.contains("# UNIT node_cpu_seconds seconds\n"), "{text}");
        assert!(text.contains("node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 100.0\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn encoder_names_round_trip_for_every_catalog_entry() {
        for def in opsmon_catalog::all() {
            let (name, unit) = encoder_name(def);
            let mut full = name.to_owned();
            if let Some(unit) = unit {
                full = format!("{full}_{}", unit.as_str());
            }
            if def.metric_type == MetricType::Counter {
                full.push_str("_total");
            }
            if def.metric_type == MetricType::Counter && !def.name.ends_with("_total") {
                // OpenMetrics requires the suffix; Prometheus' Go client adds it the same way.
                assert_eq!(full, format!("{}_total", def.name));
            } else {
                assert_eq!(full, def.name);
            }
        }
    }

    #[test]
    fn legacy_counters_keep_their_names_and_specials_are_spelled_right() {
        use opsmon_catalog::postgres;
        let mut set = MetricSet::new();
        set.family(&postgres::XACT_COMMIT).number(vec!["5".into(), "app".into(), "h:5432".into()], 42.0);
        set.family(&postgres::ARCHIVE_AGE).number(vec!["h:5432".into()], f64::NAN);
        set.family(&host::LOAD1).number(vec![], f64::INFINITY);
        let text = set.encode_text();
        assert!(text.contains("# TYPE pg_stat_database_xact_commit counter\n"), "{text}");
        assert!(
            text.contains("pg_stat_database_xact_commit{datid=\"5\",datname=\"app\",server=\"h:5432\"} 42\n"),
            "{text}"
        );
        assert!(text.contains("pg_stat_archiver_last_archive_age{server=\"h:5432\"} NaN\n"), "{text}");
        assert!(text.contains("node_load1 +Inf\n"), "{text}");
        let open = set.encode_openmetrics();
        assert!(open.contains("pg_stat_database_xact_commit_total{"), "{open}");
    }

    #[test]
    fn histograms_are_cumulative_with_inf_sum_and_count() {
        const H: MetricDef = MetricDef {
            name: "test_duration_seconds",
            metric_type: MetricType::Histogram,
            unit: opsmon_catalog::Unit::Seconds,
            help: "A test histogram.",
            labels: &["method"],
            collector: "test",
        };
        let mut set = MetricSet::new();
        set.family(&H).histogram(vec!["GET".into()], 3.5, 4, vec![(0.5, 1), (1.0, 2)]);
        let text = set.encode_text();
        let expected = "test_duration_seconds_bucket{method=\"GET\",le=\"0.5\"} 1\n\
                        test_duration_seconds_bucket{method=\"GET\",le=\"1\"} 3\n\
                        test_duration_seconds_bucket{method=\"GET\",le=\"+Inf\"} 4\n\
                        test_duration_seconds_sum{method=\"GET\"} 3.5\n\
                        test_duration_seconds_count{method=\"GET\"} 4\n";
        assert!(text.contains(expected), "{text}");
    }
}
