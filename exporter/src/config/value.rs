//! Value types shared by every section of the config file: durations and
//! regexes, each checked — range included — while the file is read, so a
//! value that would fail or panic at run time is an error with its
//! `file:line:column` at start-up and under `--config.check`.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Why a value in the config file is refused: what was written, what is
/// wrong, and the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

/// A duration written as in Prometheus configs: `500ms`, `10s`, `5m`, `1h30m`,
/// at most [`ConfigDuration::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl ConfigDuration {
    /// The longest duration any setting accepts: a week. Far beyond every
    /// sensible timeout or interval, yet every deadline computed from it
    /// (`now + duration`) fits, and PostgreSQL's millisecond timeouts
    /// (at most 24.8 days) accept it.
    pub const MAX: Duration = Duration::from_secs(7 * 24 * 3600);

    /// Parses `text`, checking the range.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let duration = humantime::parse_duration(text.trim()).map_err(|e| {
            ValueError(format!(
                "invalid duration {text:?} ({e}); expected a number with a unit, e.g. 500ms, 10s, 5m"
            ))
        })?;
        if duration > Self::MAX {
            return Err(ValueError(format!(
                "duration {text:?} is too long: at most 7d (168h); use a shorter duration, e.g. 10s, 5m or 1h"
            )));
        }
        Ok(ConfigDuration(duration))
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ConfigDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A regular expression, compiled (and so checked) while the file is read.
#[derive(Debug, Clone)]
pub struct ConfigRegex(pub regex::Regex);

impl ConfigRegex {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        regex::Regex::new(pattern).map(ConfigRegex)
    }
}

impl<'de> Deserialize<'de> for ConfigRegex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ConfigRegex::new(&text).map_err(|e| {
            let detail = e.to_string().lines().last().unwrap_or_default().trim().to_owned();
            serde::de::Error::custom(format!(
                "invalid regex {text:?}: {detail}; expected RE2-style syntax (escape literal brackets and dots with \\)"
            ))
        })
    }
}
