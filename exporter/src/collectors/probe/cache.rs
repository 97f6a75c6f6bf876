//! The last result of a configured probe target and its single flight: a
//! target with an `interval` is probed at most once per interval, and never
//! by two scrapes at once — a scrape that finds a probe running waits for
//! its result (until its own deadline) instead of sending a second request.
//!
//! A cached result is served unchanged: its duration, phases and status are
//! those of the probe that produced them; only its age grows.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::Report;
use super::http::Outcome;

/// The last result of one target and the lock that makes its probes single-flight.
#[derive(Debug)]
pub struct ResultCache {
    /// How long a result is served before the next scrape probes again;
    /// `None`: every scrape probes (concurrent scrapes still share one probe).
    interval: Option<Duration>,
    last: Mutex<Option<Finished>>,
    flight: tokio::sync::Mutex<()>,
}

#[derive(Debug, Clone)]
struct Finished {
    outcome: Outcome,
    at: Instant,
}

impl ResultCache {
    /// An empty cache serving results for `interval`.
    pub fn new(interval: Option<Duration>) -> Self {
        Self { interval, last: Mutex::new(None), flight: tokio::sync::Mutex::new(()) }
    }

    /// The cached result while it is fresh; otherwise the result of a probe
    /// — the one running now if there is one, else `probe()` run by this
    /// caller. When `deadline` passes while another scrape's probe runs, the
    /// last result however old, or a failure saying a probe is running.
    pub async fn get_or_probe<F, P>(&self, deadline: Instant, probe: P) -> Report
    where
        P: FnOnce() -> F,
        F: Future<Output = Outcome>,
    {
        let asked = Instant::now();
        if let Some(report) = self.cached(|last| self.is_fresh(last, asked)) {
            return report;
        }
        let Ok(_flight) = tokio::time::timeout_at(deadline, self.flight.lock()).await else {
            return self.cached(|_| true).unwrap_or_else(|| Report {
                outcome: Outcome {
                    error: Some("another scrape's probe of this target was still running".into()),
                    ..Outcome::default()
                },
                age: 0.0,
                probed_now: false,
            });
        };
        // A probe that ended while this scrape waited serves it too.
        if let Some(report) = self.cached(|last| last.at >= asked || self.is_fresh(last, asked)) {
            return report;
        }
        let outcome = probe().await;
        *self.lock_last() = Some(Finished { outcome: outcome.clone(), at: Instant::now() });
        Report { outcome, age: 0.0, probed_now: true }
    }

    fn is_fresh(&self, last: &Finished, now: Instant) -> bool {
        self.interval.is_some_and(|interval| now.saturating_duration_since(last.at) < interval)
    }

    /// The last result as a report, if there is one and `usable` accepts it.
    fn cached(&self, usable: impl Fn(&Finished) -> bool) -> Option<Report> {
        let last = self.lock_last();
        let last = last.as_ref().filter(|last| usable(last))?;
        Some(Report {
            outcome: last.outcome.clone(),
            age: last.at.elapsed().as_secs_f64(),
            probed_now: false,
        })
    }

    fn lock_last(&self) -> std::sync::MutexGuard<'_, Option<Finished>> {
        // A panic elsewhere cannot leave a half-written Option behind.
        self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn outcome(status: u16) -> Outcome {
        Outcome { success: true, status, duration: 0.25, ..Outcome::default() }
    }

    fn in_secs(seconds: f64) -> Instant {
        Instant::now() + Duration::from_secs_f64(seconds)
    }

    #[tokio::test]
    async fn a_fresh_result_is_served_unchanged_and_ages() {
        let cache = ResultCache::new(Some(Duration::from_millis(300)));
        let probes = AtomicUsize::new(0);
        let probe = || async {
            let n = probes.fetch_add(1, Ordering::SeqCst);
            outcome(200 + n as u16)
        };
        let first = cache.get_or_probe(in_secs(5.0), probe).await;
        assert!(first.probed_now);
        assert_eq!((first.outcome.status, first.age), (200, 0.0));

        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = cache.get_or_probe(in_secs(5.0), probe).await;
        assert!(!second.probed_now, "within the interval");
        assert_eq!(second.outcome, first.outcome, "the original duration and status");
        assert!(second.age >= 0.1 && second.age < 0.3, "age {}", second.age);

        tokio::time::sleep(Duration::from_millis(250)).await;
        let third = cache.get_or_probe(in_secs(5.0), probe).await;
        assert!(third.probed_now, "the interval has passed");
        assert_eq!(third.outcome.status, 201);
        assert_eq!(probes.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_scrapes_share_one_probe() {
        for interval in [None, Some(Duration::from_secs(60))] {
            let cache = Arc::new(ResultCache::new(interval));
            let probes = Arc::new(AtomicUsize::new(0));
            let mut scrapes = Vec::new();
            for _ in 0..5 {
                let (cache, probes) = (Arc::clone(&cache), Arc::clone(&probes));
                scrapes.push(tokio::spawn(async move {
                    cache
                        .get_or_probe(in_secs(5.0), || async {
                            probes.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            outcome(200)
                        })
                        .await
                }));
            }
            let mut probed_now = 0;
            for scrape in scrapes {
                let report = scrape.await.expect("joins");
                assert_eq!(report.outcome.status, 200);
                probed_now += usize::from(report.probed_now);
            }
            assert_eq!(probes.load(Ordering::SeqCst), 1, "interval {interval:?}: one probe for five scrapes");
            assert_eq!(probed_now, 1);
        }
    }

    #[tokio::test]
    async fn without_an_interval_each_later_scrape_probes() {
        let cache = ResultCache::new(None);
        let probes = AtomicUsize::new(0);
        for _ in 0..3 {
            let report = cache
                .get_or_probe(in_secs(1.0), || async {
                    probes.fetch_add(1, Ordering::SeqCst);
                    outcome(200)
                })
                .await;
            assert!(report.probed_now);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(probes.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_scrape_whose_deadline_passes_during_another_probe_gets_the_last_result() {
        let cache = Arc::new(ResultCache::new(Some(Duration::from_millis(100))));
        let first = cache.get_or_probe(in_secs(1.0), || async { outcome(200) }).await;
        assert!(first.probed_now);
        tokio::time::sleep(Duration::from_millis(150)).await;
        let slow = {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move {
                cache
                    .get_or_probe(in_secs(5.0), || async {
                        tokio::time::sleep(Duration::from_millis(600)).await;
                        outcome(204)
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let waiting = cache.get_or_probe(in_secs(0.1), || async { outcome(500) }).await;
        assert!(!waiting.probed_now, "single flight");
        assert_eq!(waiting.outcome.status, 200, "the stale result rather than nothing");
        assert!(waiting.age >= 0.15, "age {}", waiting.age);
        assert_eq!(slow.await.expect("joins").outcome.status, 204);

        let empty = Arc::new(ResultCache::new(None));
        let holder = {
            let empty = Arc::clone(&empty);
            tokio::spawn(async move {
                empty
                    .get_or_probe(in_secs(5.0), || async {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        outcome(200)
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let nothing_yet = empty.get_or_probe(in_secs(0.1), || async { outcome(500) }).await;
        assert!(!nothing_yet.probed_now && !nothing_yet.outcome.success);
        assert!(nothing_yet.outcome.error.as_deref().unwrap_or_default().contains("still running"));
        holder.abort();
    }
}
