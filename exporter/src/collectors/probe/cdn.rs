//! CDN cache-status classification and the per-target result counters.
//!
//! CDNs spell their cache status differently (CloudFront `Hit from
//! cloudfront`, Fastly `MISS, HIT`, Akamai/Squid `TCP_MEM_HIT`, Cloudflare
//! `DYNAMIC`, nginx `$upstream_cache_status` `UPDATING`). Classifying into six
//! fixed results keeps the label set bounded whatever a header says, and the
//! counters live as long as the exporter so that `rate()` gives a hit ratio.

use std::sync::atomic::{AtomicU64, Ordering};

/// A classified cache status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheResult {
    /// Served from the cache.
    Hit,
    /// Not in the cache; fetched from the origin.
    Miss,
    /// In the cache but expired, so the origin was asked (including revalidations).
    Expired,
    /// Served stale (origin down or being refreshed in the background).
    Stale,
    /// Not cacheable or the cache was skipped (`BYPASS`, `DYNAMIC`, Fastly `PASS`).
    Bypass,
    /// Anything else, including a missing header.
    Other,
}

impl CacheResult {
    /// Every result, in label order.
    pub const ALL: [CacheResult; 6] = [
        CacheResult::Hit,
        CacheResult::Miss,
        CacheResult::Expired,
        CacheResult::Stale,
        CacheResult::Bypass,
        CacheResult::Other,
    ];

    /// The `result` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheResult::Hit => "hit",
            CacheResult::Miss => "miss",
            CacheResult::Expired => "expired",
            CacheResult::Stale => "stale",
            CacheResult::Bypass => "bypass",
            CacheResult::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Classifies a cache-status header value (`None` when the response had none).
///
/// Multi-layer CDNs list one status per layer with the one nearest the client
/// last (Fastly `MISS, HIT`), so the last element decides. Its first word is
/// the status (`Hit from cloudfront`), without Squid/Akamai's `TCP_` prefix
/// and anything after `:` or `/` (`TCP_MISS/200`).
pub fn classify(value: Option<&str>) -> CacheResult {
    let Some(value) = value else { return CacheResult::Other };
    let last = value.rsplit(',').next().unwrap_or_default();
    let word = last.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
    let word = word.split([':', '/']).next().unwrap_or_default();
    let status = word.strip_prefix("tcp_").unwrap_or(word);
    match status {
        "hit" | "mem_hit" | "ims_hit" | "inmem_hit" | "negative_hit" | "offline_hit" => CacheResult::Hit,
        "miss" => CacheResult::Miss,
        "expired" | "refreshhit" | "refresh_hit" | "refresh_miss" | "refresh_modified"
        | "refresh_unmodified" | "revalidated" => CacheResult::Expired,
        "stale" | "updating" | "stale_hit" | "refresh_fail_hit" | "refresh_fail_old" => CacheResult::Stale,
        "bypass" | "dynamic" | "pass" | "client_refresh_miss" | "nocache" | "no-cache" => CacheResult::Bypass,
        // Vendor spellings not listed above still say what they are.
        s if s.contains("stale") => CacheResult::Stale,
        s if s.contains("hit") => CacheResult::Hit,
        s if s.contains("miss") => CacheResult::Miss,
        _ => CacheResult::Other,
    }
}

/// Responses per result of one CDN target since the exporter started.
#[derive(Debug, Default)]
pub struct CacheCounters([AtomicU64; 6]);

impl CacheCounters {
    /// Counts one response.
    pub fn count(&self, result: CacheResult) {
        self.0[result.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// `(result, count)` for all six results, zeros included.
    pub fn snapshot(&self) -> [(CacheResult, u64); 6] {
        CacheResult::ALL.map(|result| (result, self.0[result.index()].load(Ordering::Relaxed)))
    }
}

/// `Age` in seconds: a non-negative integer (RFC 9111 §5.1); anything else is ignored.
pub fn parse_age(value: Option<&str>) -> Option<f64> {
    value?.trim().parse::<u64>().ok().map(|age| age as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_spellings_are_classified() {
        let cases = [
            // CloudFront X-Cache
            ("Hit from cloudfront", CacheResult::Hit),
            ("Miss from cloudfront", CacheResult::Miss),
            ("RefreshHit from cloudfront", CacheResult::Expired),
            ("Error from cloudfront", CacheResult::Other),
            ("LimitExceeded from cloudfront", CacheResult::Other),
            // Squid / Akamai
            ("TCP_MISS", CacheResult::Miss),
            ("TCP_HIT from a23-45-67-89.deploy.akamaitechnologies.com", CacheResult::Hit),
            ("TCP_MEM_HIT", CacheResult::Hit),
            ("TCP_IMS_HIT", CacheResult::Hit),
            ("TCP_REFRESH_MISS", CacheResult::Expired),
            ("TCP_REFRESH_FAIL_HIT", CacheResult::Stale),
            ("TCP_CLIENT_REFRESH_MISS", CacheResult::Bypass),
            ("TCP_MISS/200", CacheResult::Miss),
            ("TCP_DENIED:HIER_NONE", CacheResult::Other),
            // Cloudflare CF-Cache-Status
            ("HIT", CacheResult::Hit),
            ("MISS", CacheResult::Miss),
            ("EXPIRED", CacheResult::Expired),
            ("STALE", CacheResult::Stale),
            ("BYPASS", CacheResult::Bypass),
            ("DYNAMIC", CacheResult::Bypass),
            ("REVALIDATED", CacheResult::Expired),
            ("UPDATING", CacheResult::Stale),
            ("NONE", CacheResult::Other),
            ("UNKNOWN", CacheResult::Other),
            // Fastly: one status per layer, the edge (nearest the client) last
            ("MISS, HIT", CacheResult::Hit),
            ("HIT, MISS", CacheResult::Miss),
            ("PASS", CacheResult::Bypass),
            ("HIT-STALE", CacheResult::Stale),
            // Varnish-style and odd spacing or case
            ("  hit ", CacheResult::Hit),
            ("hit-fresh", CacheResult::Hit),
            ("", CacheResult::Other),
            ("🙂", CacheResult::Other),
        ];
        for (value, expected) in cases {
            assert_eq!(classify(Some(value)), expected, "{value:?}");
        }
        assert_eq!(classify(None), CacheResult::Other, "a missing header is other");
    }

    #[test]
    fn counters_start_at_zero_for_every_result() {
        let counters = CacheCounters::default();
        counters.count(CacheResult::Hit);
        counters.count(CacheResult::Hit);
        counters.count(CacheResult::Expired);
        let snapshot = counters.snapshot();
        let labels: Vec<&str> = snapshot.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(labels, ["hit", "miss", "expired", "stale", "bypass", "other"]);
        let counts: Vec<u64> = snapshot.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, [2, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn age_is_whole_seconds() {
        assert_eq!(parse_age(Some("42")), Some(42.0));
        assert_eq!(parse_age(Some(" 0 ")), Some(0.0));
        assert_eq!(parse_age(Some("-1")), None);
        assert_eq!(parse_age(Some("1.5")), None);
        assert_eq!(parse_age(None), None);
    }
}
