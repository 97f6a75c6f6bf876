//! The Redis collector's section (`collectors.redis`): targets, where each
//! one's address and password come from, its timeout, and the address checks
//! that need no connection. The collector's constructor reads the secrets.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::secret::{Secret, SecretSource, optional_password};
use crate::config::{ConfigDuration, Problem, position};

/// Redis collector settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// Servers to watch.
    pub targets: Vec<RedisTargetConfig>,
}

/// One Redis server to watch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisTargetConfig {
    /// Target name: `/probe?target=NAME` and log fields.
    pub name: Spanned<String>,
    /// `redis://host:port[/db]`, `rediss://host:port` (TLS) or `unix:///path/to/socket`; no password.
    #[serde(default)]
    pub address: Option<Spanned<String>>,
    /// Environment variable holding the address (redis_exporter uses `REDIS_ADDR`).
    #[serde(default)]
    pub address_env: Option<String>,
    /// Environment variable holding the password (redis_exporter uses `REDIS_PASSWORD`).
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// ACL user name (Redis 6+), when not the default user.
    #[serde(default)]
    pub username: Option<String>,
    /// Serve this target on the telemetry path (default: when it is the only one).
    #[serde(default)]
    pub default: Option<bool>,
    /// Deadline for connecting and for each command.
    #[serde(default = "default_timeout")]
    pub timeout: ConfigDuration,
}

fn default_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(2))
}

impl RedisConfig {
    /// redis_exporter's `REDIS_ADDR` (+ `REDIS_PASSWORD`): one target when the
    /// config names none and the variable is set.
    pub fn add_peer_environment_target(&mut self) {
        if !self.targets.is_empty() || std::env::var_os("REDIS_ADDR").is_none() {
            return;
        }
        let unknown = serde_saphyr::Location::UNKNOWN;
        let password_env = std::env::var_os("REDIS_PASSWORD").map(|_| "REDIS_PASSWORD".to_owned());
        self.targets.push(RedisTargetConfig {
            name: Spanned::new("redis".into(), unknown, unknown),
            address: None,
            address_env: Some("REDIS_ADDR".into()),
            password_env,
            password_file: None,
            username: None,
            default: Some(true),
            timeout: default_timeout(),
        });
    }
}

impl RedisTargetConfig {
    /// A problem with target `index`, shown as `collectors.redis.targets[i] (name)`.
    pub fn problem(&self, index: usize, message: impl Into<String>) -> Problem {
        Problem::new(
            position(&self.name.referenced),
            format!("collectors.redis.targets[{index}] ({})", self.name.value),
            message,
        )
    }

    /// Reads the address and the password, if any, and checks the address's
    /// form. Errors name the field, variable or file, never a value.
    pub fn secrets(&self, index: usize) -> Result<(String, Option<Secret>), Problem> {
        let address = match (&self.address, &self.address_env) {
            (Some(address), None) => address.value.clone(),
            (None, Some(env)) => SecretSource::Env(env.clone())
                .resolve()
                .map(|s| s.expose().to_owned())
                .map_err(|e| self.problem(index, e.to_string()))?,
            (None, None) => return Err(self.problem(index, "set address or address_env")),
            (Some(_), Some(_)) => return Err(self.problem(index, "set only one of address and address_env")),
        };
        let password = optional_password(self.password_env.as_ref(), self.password_file.as_ref())
            .map_err(|e| self.problem(index, e))?;
        check_address(&address).map_err(|e| self.problem(index, e))?;
        if self.timeout.0.is_zero() {
            return Err(Problem::new(
                position(&self.name.referenced),
                format!("collectors.redis.targets[{index}].timeout"),
                "must be greater than 0s; e.g. 2s",
            ));
        }
        Ok((address, password))
    }
}

/// Checks a Redis address: scheme, host, and no password in it. The message
/// never repeats the address, which could hold a password.
fn check_address(address: &str) -> Result<(), String> {
    let expected = "expected redis://host:port[/db], rediss://host:port or unix:///path/to/redis.sock";
    let Some((scheme, rest)) = address.split_once("://") else {
        return Err(format!("address has no scheme; {expected}"));
    };
    match scheme {
        "redis" | "rediss" => {
            let authority = rest.split(['/', '?']).next().unwrap_or_default();
            if let Some((userinfo, _)) = authority.rsplit_once('@')
                && userinfo.contains(':')
            {
                return Err("address contains a password; move it to password_env or password_file".into());
            }
            if authority.rsplit_once('@').map_or(authority, |(_, host)| host).is_empty() {
                return Err(format!("address has no host; {expected}"));
            }
            Ok(())
        }
        "unix" | "redis+unix" if rest.starts_with('/') => Ok(()),
        _ => Err(format!("unsupported address scheme {scheme:?}; {expected}")),
    }
}
