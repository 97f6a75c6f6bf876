//! One scrape: derive the budget from Prometheus' scrape-timeout header, run
//! the enabled collectors concurrently under that deadline (those waiting on
//! a backend started first), and add the exporter's own per-collector
//! duration and success families.

use std::sync::Arc;
use std::time::Duration;

use opsmon_catalog::selfmon;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::collectors::Collector;
use crate::config::{ConfigDuration, Position, Problem};
use crate::logging::RateLimiter;
use crate::metrics::MetricSet;

/// The header Prometheus sends with every scrape.
pub const SCRAPE_TIMEOUT_HEADER: &str = "X-Prometheus-Scrape-Timeout-Seconds";

/// How much of a scrape's time the collectors may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetPolicy {
    /// Subtracted from the header's timeout to leave room for encoding and the network.
    pub timeout_offset: Duration,
    /// Used without a header, and the cap with one.
    pub max_timeout: Duration,
}

impl Default for BudgetPolicy {
    fn default() -> Self {
        ScrapeConfig::default().policy()
    }
}

/// The config file's `scrape:` section: how long a scrape may take.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeConfig {
    /// Subtracted from Prometheus' `X-Prometheus-Scrape-Timeout-Seconds`.
    pub timeout_offset: ConfigDuration,
    /// Budget without that header, and its cap.
    pub max_timeout: ConfigDuration,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        Self {
            timeout_offset: ConfigDuration(Duration::from_millis(500)),
            max_timeout: ConfigDuration(Duration::from_secs(10)),
        }
    }
}

/// The longest budget a scrape may have: Prometheus' own scrape timeouts
/// are seconds to a minute or two; a longer one only keeps clients waiting.
pub const MAX_TIMEOUT_LIMIT: Duration = Duration::from_secs(600);

impl ScrapeConfig {
    /// What serde cannot check: a budget that is neither zero nor endless.
    pub fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let limit = |field: &str, value: Duration, problems: &mut Vec<Problem>| {
            if value > MAX_TIMEOUT_LIMIT {
                problems.push(Problem::new(
                    Position::UNKNOWN,
                    format!("scrape.{field}"),
                    format!(
                        "{value:?} is too long: at most 10m; Prometheus' scrape_timeout is usually 10s to 1m"
                    ),
                ));
            }
        };
        if self.max_timeout.0.is_zero() {
            problems.push(Problem::new(Position::UNKNOWN, "scrape.max_timeout", "must be greater than 0s"));
        }
        limit("max_timeout", self.max_timeout.0, &mut problems);
        limit("timeout_offset", self.timeout_offset.0, &mut problems);
        problems
    }

    /// The budget policy this section sets.
    pub fn policy(&self) -> BudgetPolicy {
        BudgetPolicy { timeout_offset: self.timeout_offset.0, max_timeout: self.max_timeout.0 }
    }
}

impl BudgetPolicy {
    /// The budget for a scrape whose request carried `header` (if any).
    /// An unparsable or non-positive header is ignored; when the offset would eat
    /// more than half of Prometheus' timeout, half of it is kept instead.
    pub fn budget(&self, header: Option<&str>) -> Duration {
        // The header comes from the network: clamp it to the cap before it
        // becomes a Duration (`from_secs_f64` panics on values like 1e30).
        // A day is far above any real scrape timeout and far below overflow.
        const LONGEST_HEADER_SECS: f64 = 86_400.0;
        let requested = header
            .filter(|h| h.len() <= 32)
            .and_then(|h| h.trim().parse::<f64>().ok())
            .filter(|secs| secs.is_finite() && *secs > 0.0)
            .map(|secs| {
                Duration::try_from_secs_f64(secs.min(LONGEST_HEADER_SECS)).unwrap_or(self.max_timeout)
            });
        match requested {
            None => self.max_timeout,
            Some(timeout) => {
                let after_offset = timeout.saturating_sub(self.timeout_offset).max(timeout / 2);
                after_offset.min(self.max_timeout)
            }
        }
    }
}

/// Runs the enabled collectors; shared by every request.
pub struct ScrapeEngine {
    collectors: Vec<Arc<dyn Collector>>,
    policy: BudgetPolicy,
    failure_log: RateLimiter,
    build_info: [&'static str; 2],
}

impl std::fmt::Debug for ScrapeEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeEngine")
            .field("collectors", &self.collector_names())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

enum Outcome {
    Done(crate::collectors::Collected),
    TimedOut,
    Panicked(String),
}

impl ScrapeEngine {
    /// An engine over `collectors`, in the order their families are emitted.
    pub fn new(collectors: Vec<Arc<dyn Collector>>, policy: BudgetPolicy) -> Self {
        Self {
            collectors,
            policy,
            failure_log: RateLimiter::new(Duration::from_secs(60)),
            build_info: [env!("CARGO_PKG_VERSION"), env!("OPSMON_RUSTC_VERSION")],
        }
    }

    /// The budget policy in force.
    pub fn policy(&self) -> BudgetPolicy {
        self.policy
    }

    /// Names of the enabled collectors, in order.
    pub fn collector_names(&self) -> Vec<&'static str> {
        self.collectors.iter().map(|c| c.name()).collect()
    }

    /// Collects everything within `budget`. Never fails: a collector that errs
    /// or misses the deadline shows as `opsmon_exporter_collector_success 0`.
    pub async fn scrape(&self, budget: Duration) -> MetricSet {
        self.scrape_with(&self.collectors, budget).await
    }

    /// As [`ScrapeEngine::scrape`], over `collectors` instead of the enabled ones
    /// (`/probe?target=NAME` runs one target this way).
    pub async fn scrape_with(&self, collectors: &[Arc<dyn Collector>], budget: Duration) -> MetricSet {
        let deadline = Instant::now() + budget;
        let mut tasks = JoinSet::new();
        // Collectors that wait on a backend first; the local readers once
        // those have had their turn on the worker and written their first
        // requests (see `Collector::reads_locally`).
        let (local, remote): (Vec<_>, Vec<_>) =
            collectors.iter().enumerate().partition(|(_, collector)| collector.reads_locally());
        // A yield alone is not enough: every 61st tick the runtime's
        // maintenance wakes a yielded task ahead of the queue. Instead each
        // of those collectors holds a sender until its first poll (a panic
        // in it drops the sender with the task), and the channel closes when
        // none is left.
        let (until_first_poll, mut all_polled_once) = if !remote.is_empty() && !local.is_empty() {
            let (sender, receiver) = mpsc::channel::<()>(1);
            (Some(sender), Some(receiver))
        } else {
            (None, None)
        };
        for (index, collector) in remote {
            start(&mut tasks, index, collector, deadline, until_first_poll.clone());
        }
        drop(until_first_poll);
        if let Some(receiver) = all_polled_once.as_mut() {
            // Bounded by the deadline, though every remote task is runnable.
            let _ = tokio::time::timeout_at(deadline, receiver.recv()).await;
        }
        for (index, collector) in local {
            start(&mut tasks, index, collector, deadline, None);
        }

        let mut results: Vec<Option<(Duration, Outcome)>> = (0..collectors.len()).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((index, elapsed, outcome)) => results[index] = Some((elapsed, outcome)),
                // A panic is caught by the runtime; which collector it was is
                // found below by the hole it leaves in `results`.
                Err(join_error) => tracing::error!(error = %join_error, "collector task panicked"),
            }
        }

        let mut out = MetricSet::new();
        let mut durations = Vec::with_capacity(results.len());
        let mut successes = Vec::with_capacity(results.len());
        for (collector, result) in collectors.iter().zip(results) {
            let name = collector.name();
            let (elapsed, outcome) = result.unwrap_or((budget, Outcome::Panicked("task panicked".into())));
            let success = match outcome {
                Outcome::Done(collected) => {
                    out.extend(collected.metrics);
                    match collected.error {
                        None => true,
                        Some(error) => {
                            self.log_failure(name, &error.to_string());
                            false
                        }
                    }
                }
                Outcome::TimedOut => {
                    self.log_failure(name, &format!("missed the scrape deadline of {budget:?}"));
                    false
                }
                Outcome::Panicked(why) => {
                    self.log_failure(name, &why);
                    false
                }
            };
            durations.push((name, elapsed.as_secs_f64()));
            successes.push((name, if success { 1.0 } else { 0.0 }));
        }

        let mut family = out.family(&selfmon::COLLECTOR_DURATION);
        for (name, secs) in durations {
            family.number(vec![name.into()], secs);
        }
        let mut family = out.family(&selfmon::COLLECTOR_SUCCESS);
        for (name, ok) in successes {
            family.number(vec![name.into()], ok);
        }
        out.family(&selfmon::BUILD_INFO).number(self.build_info.iter().map(|s| (*s).into()).collect(), 1.0);
        out
    }

    fn log_failure(&self, collector: &'static str, error: &str) {
        if let Some(suppressed) = self.failure_log.allow(collector) {
            tracing::warn!(collector, error, suppressed_since_last = suppressed, "collector failed");
        }
    }
}

/// Runs `collector` as a task of `tasks` under `deadline`, reporting its
/// index in the config, its own time and its outcome; `until_first_poll`
/// is dropped once the collector has been polled.
fn start(
    tasks: &mut JoinSet<(usize, Duration, Outcome)>,
    index: usize,
    collector: &Arc<dyn Collector>,
    deadline: Instant,
    until_first_poll: Option<mpsc::Sender<()>>,
) {
    let collector = Arc::clone(collector);
    tasks.spawn(async move {
        let started = Instant::now();
        let mut collecting = collector.collect(deadline);
        let mut until_first_poll = until_first_poll;
        let polled = std::future::poll_fn(|cx| {
            let poll = collecting.as_mut().poll(cx);
            until_first_poll = None;
            poll
        });
        let outcome = match tokio::time::timeout_at(deadline, polled).await {
            Ok(collected) => Outcome::Done(collected),
            Err(_) => Outcome::TimedOut,
        };
        (index, started.elapsed(), outcome)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::{BoxFuture, CollectError, Collected};
    use opsmon_catalog::host;

    struct Fixed(&'static str, f64);
    impl Collector for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn collect(&self, _: Instant) -> BoxFuture<'_, Collected> {
            Box::pin(async move {
                let mut set = MetricSet::new();
                set.single(&host::LOAD1, self.1);
                set.into()
            })
        }
    }

    struct Hangs;
    impl Collector for Hangs {
        fn name(&self) -> &'static str {
            "hangs"
        }
        fn collect(&self, _: Instant) -> BoxFuture<'_, Collected> {
            Box::pin(std::future::pending())
        }
    }

    struct Fails;
    impl Collector for Fails {
        fn name(&self) -> &'static str {
            "fails"
        }
        fn collect(&self, _: Instant) -> BoxFuture<'_, Collected> {
            Box::pin(async {
                let mut metrics = MetricSet::new();
                metrics.single(&host::LOAD5, 2.0);
                Collected { metrics, error: Some(CollectError::Parse("broken source".into())) }
            })
        }
    }

    struct Panics;
    impl Collector for Panics {
        fn name(&self) -> &'static str {
            "panics"
        }
        fn collect(&self, _: Instant) -> BoxFuture<'_, Collected> {
            Box::pin(async { panic!("collector bug") })
        }
    }

    /// Notes its name in `polled` when first polled.
    struct Noting {
        name: &'static str,
        local: bool,
        polled: Arc<std::sync::Mutex<Vec<&'static str>>>,
    }
    impl Collector for Noting {
        fn name(&self) -> &'static str {
            self.name
        }
        fn collect(&self, _: Instant) -> BoxFuture<'_, Collected> {
            Box::pin(async move {
                crate::collectors::lock(&self.polled).push(self.name);
                MetricSet::new().into()
            })
        }
        fn reads_locally(&self) -> bool {
            self.local
        }
    }

    // One worker, as the exporter runs by default: a task spawned there goes
    // first (its LIFO slot), whatever its kind. 200 scrapes of about six
    // ticks each cross the runtime's maintenance tick (every 61st) many times.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn collectors_waiting_on_a_backend_start_before_the_local_readers() {
        let polled = Arc::new(std::sync::Mutex::new(Vec::new()));
        let noting = |name, local| -> Arc<dyn Collector> {
            Arc::new(Noting { name, local, polled: Arc::clone(&polled) })
        };
        let engine = Arc::new(ScrapeEngine::new(
            vec![
                noting("host", true),
                noting("postgres", false),
                noting("redis", false),
                noting("files", true),
            ],
            BudgetPolicy::default(),
        ));
        for _ in 0..200 {
            crate::collectors::lock(&polled).clear();
            // On the worker, as a request handler runs.
            let scraping = Arc::clone(&engine);
            let set = tokio::spawn(async move { scraping.scrape(Duration::from_secs(5)).await })
                .await
                .expect("the scrape's task");
            let order = crate::collectors::lock(&polled).clone();
            assert_eq!(order.len(), 4, "{order:?}");
            let mut first_two = order[..2].to_vec();
            first_two.sort_unstable();
            assert_eq!(first_two, ["postgres", "redis"], "started in the order {order:?}");
            let reported: Vec<String> = set
                .families()
                .iter()
                .filter(|f| f.def.name == selfmon::COLLECTOR_SUCCESS.name)
                .flat_map(|f| f.samples.iter().map(|s| s.label_values[0].to_string()))
                .collect();
            assert_eq!(reported, ["host", "postgres", "redis", "files"], "reported in the config's order");
        }
    }

    /// A local reader that answers at once and notes when it was polled.
    #[derive(Default)]
    struct LocalFixed {
        polled_at: std::sync::Mutex<Option<std::time::Instant>>,
    }
    impl Collector for LocalFixed {
        fn name(&self) -> &'static str {
            "local"
        }
        fn collect(&self, _: Instant) -> BoxFuture<'_, Collected> {
            Box::pin(async move {
                crate::collectors::lock(&self.polled_at).get_or_insert_with(std::time::Instant::now);
                let mut set = MetricSet::new();
                set.single(&host::LOAD1, 0.25);
                set.into()
            })
        }
        fn reads_locally(&self) -> bool {
            true
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_backend_collector_that_panics_at_once_does_not_hold_the_local_readers_back() {
        let engine = ScrapeEngine::new(
            vec![Arc::new(Panics), Arc::new(LocalFixed::default())],
            BudgetPolicy::default(),
        );
        let started = std::time::Instant::now();
        let set = engine.scrape(Duration::from_secs(5)).await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "waited {took:?}, towards the 5 s deadline");
        assert_eq!(success_of(&set, "panics"), 0.0);
        assert_eq!(success_of(&set, "local"), 1.0);
    }

    // The local readers wait for the backend collectors' first poll only,
    // not for their end: a backend that never answers must not push the
    // host's reads to the deadline.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_hanging_backend_collector_does_not_hold_the_local_readers_back() {
        let local = Arc::new(LocalFixed::default());
        let engine = ScrapeEngine::new(
            vec![Arc::new(Hangs), Arc::clone(&local) as Arc<dyn Collector>],
            BudgetPolicy::default(),
        );
        let started = std::time::Instant::now();
        let set = engine.scrape(Duration::from_secs(1)).await;
        let polled_at = crate::collectors::lock(&local.polled_at).expect("the local reader was polled");
        let waited = polled_at - started;
        assert!(waited < Duration::from_millis(500), "the local reader started {waited:?} into a 1 s budget");
        assert_eq!(success_of(&set, "hangs"), 0.0);
        assert_eq!(success_of(&set, "local"), 1.0);
    }

    fn success_of(set: &MetricSet, collector: &str) -> f64 {
        let family = set
            .families()
            .iter()
            .find(|f| f.def.name == selfmon::COLLECTOR_SUCCESS.name)
            .expect("success family");
        let sample = family
            .samples
            .iter()
            .find(|s| s.label_values[0] == collector)
            .expect("collector has a success sample");
        match sample.value {
            crate::metrics::Value::Number(v) => v,
            crate::metrics::Value::Histogram { .. } => panic!("not a number"),
        }
    }

    #[tokio::test]
    async fn hanging_and_failing_collectors_do_not_hold_back_the_others() {
        let engine = ScrapeEngine::new(
            vec![Arc::new(Fixed("good", 0.5)), Arc::new(Hangs), Arc::new(Fails), Arc::new(Panics)],
            BudgetPolicy::default(),
        );
        let started = std::time::Instant::now();
        let set = engine.scrape(Duration::from_millis(300)).await;
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(300), "waited for the hanging collector: {took:?}");
        assert!(took < Duration::from_millis(1500), "answered within budget: {took:?}");

        assert_eq!(success_of(&set, "good"), 1.0);
        assert_eq!(success_of(&set, "hangs"), 0.0);
        assert_eq!(success_of(&set, "fails"), 0.0);
        assert_eq!(success_of(&set, "panics"), 0.0);
        let text = set.encode_text();
        assert!(text.contains("node_load1 0.5\n"), "good collector's data: {text}");
        assert!(text.contains("node_load5 2\n"), "partial data of a failing collector is kept: {text}");
        assert!(
            text.contains("opsmon_exporter_collector_duration_seconds{collector=\"hangs\"} 0.3"),
            "{text}"
        );
        assert!(text.contains("opsmon_exporter_build_info{version=\""), "{text}");
    }

    #[tokio::test]
    async fn fast_scrape_does_not_wait_for_the_budget() {
        let engine = ScrapeEngine::new(vec![Arc::new(Fixed("good", 1.0))], BudgetPolicy::default());
        let started = std::time::Instant::now();
        let set = engine.scrape(Duration::from_secs(5)).await;
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(success_of(&set, "good"), 1.0);
    }

    #[test]
    fn budget_follows_the_prometheus_header() {
        let policy = BudgetPolicy::default();
        assert_eq!(policy.budget(None), Duration::from_secs(10));
        assert_eq!(policy.budget(Some("4")), Duration::from_millis(3500));
        assert_eq!(policy.budget(Some("60")), Duration::from_secs(10), "capped by config");
        assert_eq!(
            policy.budget(Some("0.6")),
            Duration::from_millis(300),
            "offset never eats more than half"
        );
        assert_eq!(policy.budget(Some("garbage")), Duration::from_secs(10));
        assert_eq!(policy.budget(Some("-1")), Duration::from_secs(10));
    }

    #[test]
    fn hostile_header_values_are_clamped_never_a_panic() {
        let policy = BudgetPolicy::default();
        for hostile in [
            "1e30",
            "1e308",
            "1.7976931348623157e308",
            "inf",
            "-inf",
            "Infinity",
            "NaN",
            "nan",
            "-1",
            "-0",
            "0",
            "1e-300",
            "5e-324",
            "",
            " ",
            "0x10",
            "18446744073709551616",
            "9".repeat(400).as_str(),
            "1e30\u{0}",
            "\u{feff}4",
        ] {
            let budget = policy.budget(Some(hostile));
            assert!(budget <= policy.max_timeout, "{hostile:?} gave {budget:?}");
        }
        assert_eq!(policy.budget(Some("1e30")), Duration::from_secs(10), "capped, not a panic");
        assert_eq!(policy.budget(Some("inf")), Duration::from_secs(10));
        assert_eq!(policy.budget(Some("NaN")), Duration::from_secs(10));
    }
}
