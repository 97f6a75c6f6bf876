//! Request counters and latency histograms accumulated from parsed lines:
//! route lookup by configured path prefix, bucketing, and the merge of every
//! file's totals into one scrape's families. Label values come only from
//! fixed sets (methods, route names, 3-digit statuses), so the number of
//! series is bounded by the config, never by the traffic.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use opsmon_catalog::accesslog as m;

use super::format::{Method, Request};
use crate::metrics::{LabelValue, MetricSet};

/// The route label of requests no configured prefix matches.
pub const OTHER_ROUTE: &str = "other";

/// The configured routes and buckets, shared by every file.
#[derive(Debug, Clone)]
pub struct Layout {
    routes: Vec<(String, Vec<u8>)>,
    buckets: Vec<f64>,
}

impl Layout {
    /// Routes as `(name, prefix)` pairs, first match wins; bucket upper bounds, increasing.
    pub fn new(routes: Vec<(String, String)>, buckets: Vec<f64>) -> Self {
        Self {
            routes: routes.into_iter().map(|(name, prefix)| (name, prefix.into_bytes())).collect(),
            buckets,
        }
    }

    /// Index of the route for `path`; `routes.len()` stands for `other`.
    pub fn route(&self, path: &[u8]) -> usize {
        self.routes.iter().position(|(_, prefix)| path.starts_with(prefix)).unwrap_or(self.routes.len())
    }

    fn route_name(&self, index: usize) -> &str {
        self.routes.get(index).map_or(OTHER_ROUTE, |(name, _)| name.as_str())
    }

    fn route_count(&self) -> usize {
        self.routes.len() + 1
    }

    /// The bucket upper bounds.
    pub fn buckets(&self) -> &[f64] {
        &self.buckets
    }
}

/// Counts per (method, route, status) are sparse; the key packs all three.
type Key = u32;

fn key(method: Method, route: usize, status: u16) -> Key {
    ((method.index() as u32) << 26) | ((route as u32) << 10) | u32::from(status)
}

fn unpack(key: Key) -> (usize, usize, u16) {
    ((key >> 26) as usize, ((key >> 10) & 0xffff) as usize, (key & 0x3ff) as u16)
}

/// A cheap hash for the packed key: SipHash would be a measurable share of
/// the per-line cost, and the keys are not attacker-chosen beyond 10 methods,
/// the configured routes and 1000 statuses.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        let h = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 29);
    }
}

/// One (method, route)'s latency histogram; bucket counts are per bucket,
/// not cumulative (the encoder accumulates).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations at or below each bound and above the previous one.
    pub counts: Vec<u64>,
    /// Sum of all observations.
    pub sum: f64,
    /// Number of observations, including those above the last bound.
    pub count: u64,
}

impl Histogram {
    fn observe(&mut self, buckets: &[f64], value: f64) {
        if self.counts.len() != buckets.len() {
            self.counts = vec![0; buckets.len()];
        }
        // Prometheus buckets are `le`: a value equal to a bound belongs to it.
        let index = buckets.partition_point(|bound| *bound < value);
        if let Some(slot) = self.counts.get_mut(index) {
            *slot += 1;
        }
        self.sum += value;
        self.count += 1;
    }

    fn merge(&mut self, other: &Histogram) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.sum += other.sum;
        self.count += other.count;
    }
}

/// Requests seen in one file (or, merged, in all of them).
#[derive(Debug, Clone, Default)]
pub struct RequestStats {
    counts: HashMap<Key, u64, BuildHasherDefault<KeyHasher>>,
    /// Indexed by `method * routes + route`; grown on first use.
    durations: Vec<Histogram>,
}

impl RequestStats {
    /// Counts one parsed request.
    pub fn observe(&mut self, request: &Request<'_>, layout: &Layout) {
        let route = layout.route(request.path);
        *self.counts.entry(key(request.method, route, request.status)).or_insert(0) += 1;
        if let Some(seconds) = request.duration {
            let index = request.method.index() * layout.route_count() + route;
            if self.durations.len() <= index {
                self.durations.resize_with(Method::ALL.len() * layout.route_count(), Histogram::default);
            }
            self.durations[index].observe(layout.buckets(), seconds);
        }
    }

    /// Adds `other`'s totals to these.
    pub fn merge(&mut self, other: &RequestStats) {
        for (key, count) in &other.counts {
            *self.counts.entry(*key).or_insert(0) += count;
        }
        if self.durations.len() < other.durations.len() {
            self.durations.resize_with(other.durations.len(), Histogram::default);
        }
        for (mine, theirs) in self.durations.iter_mut().zip(&other.durations) {
            mine.merge(theirs);
        }
    }

    /// The count for one label combination (tests and tools).
    pub fn count(&self, method: Method, route: usize, status: u16) -> u64 {
        self.counts.get(&key(method, route, status)).copied().unwrap_or(0)
    }

    /// Total requests counted.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The histogram for one (method, route), if anything was observed.
    pub fn histogram(&self, method: Method, route: usize, layout: &Layout) -> Option<&Histogram> {
        self.durations.get(method.index() * layout.route_count() + route).filter(|h| h.count > 0)
    }

    /// Writes `http_requests_total` and, when `with_durations`,
    /// `http_request_duration_seconds`, in label order.
    pub fn encode(&self, out: &mut MetricSet, layout: &Layout, with_durations: bool) {
        let mut keys: Vec<(&Key, &u64)> = self.counts.iter().collect();
        keys.sort_unstable_by_key(|(key, _)| **key);
        let mut family = out.family(&m::HTTP_REQUESTS);
        for (key, count) in keys {
            let (method, route, status) = unpack(*key);
            family.number(
                vec![
                    Method::ALL[method].as_str().into(),
                    LabelValue::Owned(layout.route_name(route).to_owned()),
                    LabelValue::Owned(format!("{status:03}")),
                ],
                *count as f64,
            );
        }
        if !with_durations {
            return;
        }
        let mut family = out.family(&m::HTTP_REQUEST_DURATION);
        for method in Method::ALL {
            for route in 0..layout.route_count() {
                let Some(histogram) = self.histogram(method, route, layout) else {
                    continue;
                };
                let buckets =
                    layout.buckets().iter().copied().zip(histogram.counts.iter().copied()).collect();
                family.histogram(
                    vec![method.as_str().into(), LabelValue::Owned(layout.route_name(route).to_owned())],
                    histogram.sum,
                    histogram.count,
                    buckets,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout::new(
            vec![("api".into(), "/api/".into()), ("video".into(), "/videos/".into())],
            vec![0.1, 0.5, 1.0, 2.5],
        )
    }

    fn request(method: Method, path: &str, status: u16, duration: Option<f64>) -> Request<'_> {
        Request { method, path: path.as_bytes(), status, duration }
    }

    #[test]
    fn routes_by_first_matching_prefix() {
        let layout =
            Layout::new(vec![("v1".into(), "/api/v1/".into()), ("api".into(), "/api/".into())], vec![1.0]);
        assert_eq!(layout.route(b"/api/v1/users"), 0);
        assert_eq!(layout.route(b"/api/v2/users"), 1);
        assert_eq!(layout.route(b"/apix"), 2);
        assert_eq!(layout.route(b""), 2);
        assert_eq!(layout.route_name(2), OTHER_ROUTE);
        assert_eq!(Layout::new(vec![], vec![1.0]).route(b"/anything"), 0);
    }

    #[test]
    fn buckets_are_le_and_overflow_only_counts() {
        let layout = layout();
        let mut stats = RequestStats::default();
        for seconds in [0.0, 0.1, 0.1001, 0.5, 1.0, 1.0001, 2.5, 3.0, 60.0] {
            stats.observe(&request(Method::Get, "/api/x", 200, Some(seconds)), &layout);
        }
        stats.observe(&request(Method::Get, "/api/x", 200, None), &layout);
        let histogram = stats.histogram(Method::Get, 0, &layout).expect("observed");
        assert_eq!(histogram.counts, vec![2, 2, 1, 2]);
        assert_eq!(histogram.count, 9, "two above the last bound are in +Inf only");
        assert!((histogram.sum - 68.2002).abs() < 1e-9, "{}", histogram.sum);
        assert_eq!(stats.count(Method::Get, 0, 200), 10, "a line without a time is still counted");
        assert!(stats.histogram(Method::Post, 0, &layout).is_none());
    }

    #[test]
    fn merge_and_encode_in_label_order() {
        let layout = layout();
        let mut a = RequestStats::default();
        a.observe(&request(Method::Post, "/api/login", 401, Some(0.2)), &layout);
        a.observe(&request(Method::Get, "/", 200, Some(0.05)), &layout);
        let mut b = RequestStats::default();
        b.observe(&request(Method::Get, "/", 200, Some(1.5)), &layout);
        b.observe(&request(Method::Other, "/videos/a.mp4", 7, None), &layout);
        let mut total = RequestStats::default();
        total.merge(&a);
        total.merge(&b);
        assert_eq!(total.total(), 4);
        let mut out = MetricSet::new();
        total.encode(&mut out, &layout, true);
        let text = out.encode_text();
        let expected = "http_requests_total{method=\"GET\",route=\"other\",status=\"200\"} 2\n\
                        http_requests_total{method=\"POST\",route=\"api\",status=\"401\"} 1\n\
                        http_requests_total{method=\"OTHER\",route=\"video\",status=\"007\"} 1\n";
        assert!(text.contains(expected), "{text}");
        assert!(
            text.contains(
                "http_request_duration_seconds_bucket{method=\"GET\",route=\"other\",le=\"0.1\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "http_request_duration_seconds_bucket{method=\"GET\",route=\"other\",le=\"2.5\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("http_request_duration_seconds_count{method=\"GET\",route=\"other\"} 2\n"),
            "{text}"
        );
        assert!(!text.contains("method=\"OTHER\",route=\"video\",le="), "no time, no observation: {text}");

        let mut out = MetricSet::new();
        total.encode(&mut out, &layout, false);
        assert!(!out.encode_text().contains("http_request_duration_seconds"));
    }
}
