//! Log output (logfmt or JSON on stderr, level from the flag), a per-key
//! rate limiter so that a backend failing on every scrape logs once a minute,
//! not once a scrape, and a panic hook that logs through it.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// `--log.format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs, one event per line (the Prometheus exporters' default).
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// `--log.level` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    /// Everything, including per-scrape details.
    Debug,
    /// Start-up, shutdown and state changes.
    Info,
    /// Failing collectors and rejected requests.
    Warn,
    /// Only errors.
    Error,
}

impl LogLevel {
    fn directive(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Installs the global subscriber. Our crates log at `level`; dependencies
/// only at warn and above unless debugging, so their chatter cannot leak
/// connection strings.
pub fn init(level: LogLevel, format: LogFormat) {
    let filter = EnvFilter::new(format!("warn,opsmon_exporter={0},opsmon={0}", level.directive()));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Logfmt => registry
            .with(
                tracing_logfmt::builder()
                    .with_span_name(false)
                    .with_span_path(false)
                    .layer()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().flatten_event(true).with_writer(std::io::stderr))
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
    install_panic_hook();
}

/// Routes panics through the log, one line per code location a minute with
/// the count held back, instead of raw text on stderr for every occurrence.
fn install_panic_hook() {
    static PANICS: OnceLock<RateLimiter> = OnceLock::new();
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map_or_else(|| "unknown".to_owned(), ToString::to_string);
        let limiter = PANICS.get_or_init(|| RateLimiter::new(Duration::from_secs(60)));
        if let Some(suppressed) = limiter.allow(&location) {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            // Bounded: a panic message may quote input.
            let message: String = message.chars().take(200).collect();
            tracing::error!(%location, message, suppressed_since_last = suppressed, "panic");
        }
    }));
}

/// Allows one event per key per period and counts what it held back.
#[derive(Debug)]
pub struct RateLimiter {
    period: Duration,
    state: Mutex<HashMap<String, (Instant, u64)>>,
}

impl RateLimiter {
    /// One event per key every `period`.
    pub fn new(period: Duration) -> Self {
        Self { period, state: Mutex::new(HashMap::new()) }
    }

    /// `Some(suppressed)` when an event for `key` may be logged now, with the
    /// number of events suppressed since the last one; `None` to stay quiet.
    pub fn allow(&self, key: &str) -> Option<u64> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match state.get_mut(key) {
            Some((last, suppressed)) if now.duration_since(*last) < self.period => {
                *suppressed += 1;
                None
            }
            Some((last, suppressed)) => {
                *last = now;
                Some(std::mem::take(suppressed))
            }
            None => {
                state.insert(key.to_owned(), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_lets_one_through_per_period_and_counts_the_rest() {
        let limiter = RateLimiter::new(Duration::from_millis(50));
        assert_eq!(limiter.allow("pg"), Some(0));
        assert_eq!(limiter.allow("pg"), None);
        assert_eq!(limiter.allow("pg"), None);
        assert_eq!(limiter.allow("redis"), Some(0), "keys are independent");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(limiter.allow("pg"), Some(2));
    }
}
