//! The probe collector's configuration: modules (how to probe), targets (what
//! to probe on every scrape) and the allow-list that guards
//! `/probe?target=URL&module=NAME`. Every value is checked while the file is
//! read, so a bad regex, header, method, size or URL is a start-up error with
//! its `file:line:column`; cross-references (a target's module, duplicate
//! names) are checked by [`ProbeConfig::check`].

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use hyper::Method;
use hyper::header::{HeaderName, HeaderValue};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::{Location, Spanned};
use url::Url;

use crate::config::{ConfigDuration, ConfigRegex, Position, Problem, position};

/// Name of the built-in blackbox-style module: GET, 2xx is success.
pub const HTTP_2XX: &str = "http_2xx";
/// Name of the built-in CDN module: GET, `X-Cache` classified.
pub const CDN: &str = "cdn";

/// Settings of the probe collector (`collectors.probe`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    /// What `/probe?target=URL&module=NAME` may reach: CIDRs (`127.0.0.0/8`),
    /// IP addresses, exact host names (`localhost`) and domain wildcards
    /// (`*.example.com`). Configured `targets` are trusted and not checked.
    pub allowed_targets: Vec<AllowedTarget>,
    /// How to probe, by name; `http_2xx` and `cdn` exist unless redefined here.
    pub modules: BTreeMap<String, ModuleConfig>,
    /// Probed on every scrape of the telemetry path.
    pub targets: Vec<TargetConfig>,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self { allowed_targets: loopback_only(), modules: BTreeMap::new(), targets: Vec::new() }
    }
}

/// The default allow-list: loopback only, so the exporter is never an open proxy.
fn loopback_only() -> Vec<AllowedTarget> {
    vec![
        AllowedTarget::Network { address: IpAddr::from([127, 0, 0, 0]), prefix: 8 },
        AllowedTarget::Network { address: IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]), prefix: 128 },
        AllowedTarget::Host("localhost".into()),
    ]
}

impl ProbeConfig {
    /// The configured modules plus the built-in `http_2xx` and `cdn` where the
    /// file does not define a module of that name.
    pub fn all_modules(&self) -> BTreeMap<String, ModuleConfig> {
        let mut modules = self.modules.clone();
        modules.entry(HTTP_2XX.into()).or_default();
        modules.entry(CDN.into()).or_insert_with(ModuleConfig::cdn);
        modules
    }

    /// Cross-reference problems, each with where it was written (line 0 when
    /// unknown): unknown modules, empty or duplicate target names, zero timeouts.
    pub fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let modules = self.all_modules();
        let module_names: Vec<&str> = modules.keys().map(String::as_str).collect();
        let mut names = HashSet::new();
        for (index, target) in self.targets.iter().enumerate() {
            let field = format!("collectors.probe.targets[{index}]");
            let name = &target.name;
            if name.value.trim().is_empty() {
                problems.push(Problem::new(
                    position(&name.referenced),
                    format!("{field}.name"),
                    "must not be empty",
                ));
            } else if !names.insert(name.value.as_str()) {
                problems.push(Problem::new(
                    position(&name.referenced),
                    format!("{field}.name"),
                    format!("duplicate probe target {:?}; names must be unique", name.value),
                ));
            }
            let module = &target.module;
            if !modules.contains_key(&module.value) {
                problems.push(
                    Problem::new(
                        position(&module.referenced),
                        format!("{field}.module"),
                        format!(
                            "unknown module {:?}; configured modules: {}",
                            module.value,
                            module_names.join(", ")
                        ),
                    )
                    .suggesting(&module.value, module_names.iter().copied()),
                );
            }
        }
        for (index, target) in self.targets.iter().enumerate() {
            if let Some(interval) = &target.interval
                && !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval.value.0)
            {
                problems.push(Problem::new(
                    position(&interval.referenced),
                    format!("collectors.probe.targets[{index}].interval"),
                    format!(
                        "{:?} is out of range: between 1s and 24h; leave it out to probe on every scrape",
                        interval.value.0
                    ),
                ));
            }
        }
        for (name, module) in &self.modules {
            if module.timeout.0.is_zero() {
                problems.push(Problem::new(
                    Position::UNKNOWN,
                    format!("collectors.probe.modules.{name}.timeout"),
                    "must be greater than 0s",
                ));
            }
        }
        problems
    }
}

/// How to probe: blackbox_exporter's HTTP prober options, flattened, plus the
/// CDN cache-status header.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModuleConfig {
    /// Request method (`GET`, `HEAD`, …).
    pub method: ConfigMethod,
    /// Deadline of the whole probe, redirects included; the scrape budget also bounds it.
    pub timeout: ConfigDuration,
    /// Status codes that count as success; empty means any 2xx, as in blackbox.
    pub valid_status_codes: Vec<StatusCode>,
    /// Request headers (a `Host` entry overrides the URL's host).
    pub headers: ConfigHeaders,
    /// The probe fails when the body matches any of these.
    pub fail_if_body_matches_regexp: Vec<ConfigRegex>,
    /// The probe fails when the body does not match all of these.
    pub fail_if_body_not_matches_regexp: Vec<ConfigRegex>,
    /// Follow up to 10 redirects.
    pub follow_redirects: bool,
    /// Stop reading a body after this many bytes; the probe then fails.
    pub body_size_limit: ByteSize,
    /// Accept any server certificate (self-signed, expired, wrong name).
    pub insecure_skip_verify: bool,
    /// Response header whose value is classified as hit, miss, expired, stale,
    /// bypass or other (`X-Cache`, `CF-Cache-Status`); turns on the CDN families.
    pub cache_status_header: Option<ConfigHeaderName>,
}

/// The default body cap: a health check or a sample object, not a download.
pub const DEFAULT_BODY_SIZE_LIMIT: u64 = 10 << 20;

impl Default for ModuleConfig {
    fn default() -> Self {
        Self {
            method: ConfigMethod(Method::GET),
            timeout: ConfigDuration(Duration::from_secs(5)),
            valid_status_codes: Vec::new(),
            headers: ConfigHeaders::default(),
            fail_if_body_matches_regexp: Vec::new(),
            fail_if_body_not_matches_regexp: Vec::new(),
            follow_redirects: true,
            body_size_limit: ByteSize(DEFAULT_BODY_SIZE_LIMIT),
            insecure_skip_verify: false,
            cache_status_header: None,
        }
    }
}

impl ModuleConfig {
    /// The body bytes read at most when the target sets no `max_body_bytes`:
    /// [`DEFAULT_CDN_MAX_BODY_BYTES`] for a CDN module, otherwise no limit
    /// short of `body_size_limit` (past which the probe fails, as in blackbox).
    pub fn default_read_limit(&self) -> Option<u64> {
        self.cache_status_header.as_ref().map(|_| DEFAULT_CDN_MAX_BODY_BYTES)
    }

    /// The built-in `cdn` module: a sample object may take longer than a health check.
    pub fn cdn() -> Self {
        Self {
            timeout: ConfigDuration(Duration::from_secs(10)),
            cache_status_header: Some(ConfigHeaderName(HeaderName::from_static("x-cache"))),
            ..Self::default()
        }
    }
}

/// The shortest `interval` a target may set: below it caching saves nothing.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The longest `interval`: a result older than a day says little about now.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// What a CDN target (its module classifies a cache header) reads of a body
/// when it sets no `max_body_bytes`: enough to time the download, not a
/// whole video on every scrape.
pub const DEFAULT_CDN_MAX_BODY_BYTES: u64 = 1 << 20;

/// One URL probed on every scrape (or once per `interval`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// The `target` label value.
    pub name: Spanned<String>,
    /// `http://…` or `https://…`, without credentials.
    pub url: ConfigUrl,
    /// The module to probe with.
    #[serde(default = "default_module")]
    pub module: Spanned<String>,
    /// Probe at most once per interval (1s to 24h); scrapes in between get
    /// the last result unchanged. Absent: a probe on every scrape.
    #[serde(default)]
    pub interval: Option<Spanned<ConfigDuration>>,
    /// Read at most this many body bytes, then stop and close the connection;
    /// the probe is judged on the status, the headers and the bytes read (the
    /// module's `body_size_limit` no longer applies). Default: 1MiB for a
    /// target whose module has a `cache_status_header`, unlimited otherwise.
    #[serde(default)]
    pub max_body_bytes: Option<ByteSize>,
    /// A `Range` request header (`bytes=0-65535`); a 206 answer is a success.
    #[serde(default)]
    pub range: Option<ByteRange>,
}

impl TargetConfig {
    /// The body bytes a probe of this target reads at most (`None`: up to
    /// the module's `body_size_limit`, past which the probe fails).
    pub fn read_limit(&self, module: &ModuleConfig) -> Option<u64> {
        self.max_body_bytes.map(|size| size.0).or_else(|| module.default_read_limit())
    }
}

/// A `Range` header value: one range of bytes, `bytes=FIRST-LAST` or
/// `bytes=FIRST-` (RFC 9110 §14.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteRange(pub HeaderValue);

impl ByteRange {
    /// Parses `bytes=0-65535` or `bytes=1024-`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = "expected one range of bytes such as bytes=0-65535 or bytes=1024-";
        let invalid = || format!("invalid range {:?}; {expected}", clip(text));
        let spec = text.trim().strip_prefix("bytes=").ok_or_else(invalid)?;
        let (first, last) = spec.split_once('-').ok_or_else(invalid)?;
        let number = |s: &str| {
            (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
        };
        let first = number(first).ok_or_else(invalid)?;
        if !last.is_empty() {
            let last = number(last).ok_or_else(invalid)?;
            if last < first {
                return Err(format!(
                    "invalid range {:?}: the last byte comes before the first; {expected}",
                    clip(text)
                ));
            }
        }
        HeaderValue::from_str(text.trim()).map(Self).map_err(|_| invalid())
    }
}

/// A value quoted in an error message, cut short: the message must stay a line.
fn clip(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

impl<'de> Deserialize<'de> for ByteRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ByteRange::parse(&text).map_err(de::Error::custom)
    }
}

fn default_module() -> Spanned<String> {
    Spanned::new(HTTP_2XX.into(), Location::UNKNOWN, Location::UNKNOWN)
}

/// A request method, one of the standard ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMethod(pub Method);

impl Default for ConfigMethod {
    fn default() -> Self {
        Self(Method::GET)
    }
}

const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];

impl<'de> Deserialize<'de> for ConfigMethod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let upper = text.trim().to_ascii_uppercase();
        match METHODS.contains(&upper.as_str()).then(|| Method::from_bytes(upper.as_bytes())) {
            Some(Ok(method)) => Ok(Self(method)),
            _ => Err(de::Error::custom(format!(
                "invalid method {text:?}; expected one of {}",
                METHODS.join(", ")
            ))),
        }
    }
}

/// An HTTP status code between 100 and 599.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusCode(pub u16);

impl<'de> Deserialize<'de> for StatusCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = u16::deserialize(deserializer)?;
        if (100..=599).contains(&code) {
            Ok(Self(code))
        } else {
            Err(de::Error::custom(format!("invalid status code {code}; expected 100 to 599")))
        }
    }
}

/// A header name, checked to be a valid HTTP token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigHeaderName(pub HeaderName);

impl<'de> Deserialize<'de> for ConfigHeaderName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        HeaderName::from_bytes(text.trim().as_bytes()).map(Self).map_err(|_| {
            de::Error::custom(format!(
                "invalid HTTP header name {text:?}; a name is letters, digits and !#$%&'*+-.^_`|~ only (no spaces or colons), e.g. X-Cache"
            ))
        })
    }
}

/// A header value, checked to hold no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigHeaderValue(pub HeaderValue);

impl<'de> Deserialize<'de> for ConfigHeaderValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        // The value is not quoted: it may be a credential (`Authorization`).
        HeaderValue::from_str(&text).map(Self).map_err(|_| {
            de::Error::custom(
                "invalid HTTP header value; a value must not contain control characters such as newlines",
            )
        })
    }
}

/// Request headers in file order; each name and value checked where it is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigHeaders(pub Vec<(HeaderName, HeaderValue)>);

impl<'de> Deserialize<'de> for ConfigHeaders {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeadersVisitor;
        impl<'de> Visitor<'de> for HeadersVisitor {
            type Value = ConfigHeaders;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of header names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut headers = Vec::new();
                while let Some((name, value)) = map.next_entry::<ConfigHeaderName, ConfigHeaderValue>()? {
                    headers.push((name.0, value.0));
                }
                Ok(ConfigHeaders(headers))
            }
        }
        deserializer.deserialize_map(HeadersVisitor)
    }
}

/// A byte count: a number of bytes, or a number with a unit (`512KiB`,
/// `10MiB`, `1GiB`; `KB`, `MB`, `GB` are powers of 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

/// What [`ByteSize::parse`] says a size should look like.
const SIZE_EXPECTED: &str =
    "expected a number of bytes or a number with a unit: 512KiB, 10MiB, 1GiB (KB, MB, GB are powers of 1000)";

impl ByteSize {
    /// The largest size the config file accepts: a probe may hold a body
    /// this large in memory, and the shipped unit caps the exporter at 128M.
    pub const MAX_IN_CONFIG: u64 = 64 << 20;

    /// Parses `10MiB`, `1.5 MB`, `4096`, `4096B`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = SIZE_EXPECTED;
        let trimmed = text.trim();
        let split = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1000,
            "kib" => 1 << 10,
            "mb" => 1_000_000,
            "mib" => 1 << 20,
            "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            _ => return Err(format!("invalid size {text:?}; {expected}")),
        };
        let value: f64 = number.parse().map_err(|_| format!("invalid size {text:?}; {expected}"))?;
        let bytes = (value * multiplier as f64).round();
        if !(1.0..=u64::MAX as f64).contains(&bytes) {
            return Err(format!("invalid size {text:?}: must be at least one byte; {expected}"));
        }
        Ok(Self(bytes as u64))
    }
}

impl ByteSize {
    /// Parses a size written in the config file: at most [`ByteSize::MAX_IN_CONFIG`].
    fn in_config(text: &str) -> Result<Self, String> {
        let size = Self::parse(text)?;
        if size.0 > Self::MAX_IN_CONFIG {
            return Err(format!(
                "invalid size {text:?}: at most 64MiB, which the exporter would hold in memory; {SIZE_EXPECTED}"
            ));
        }
        Ok(size)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of bytes or a size such as 10MiB")
            }
            fn visit_u64<E: de::Error>(self, bytes: u64) -> Result<ByteSize, E> {
                ByteSize::in_config(&bytes.to_string()).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, bytes: i64) -> Result<ByteSize, E> {
                ByteSize::in_config(&bytes.to_string()).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, bytes: f64) -> Result<ByteSize, E> {
                ByteSize::in_config(&bytes.to_string()).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<ByteSize, E> {
                ByteSize::in_config(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

/// An `http://` or `https://` URL without credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigUrl(pub Url);

/// Checks a probe URL: absolute, http or https, a host, no credentials. The
/// message never repeats a URL that holds credentials.
pub fn check_url(text: &str) -> Result<Url, String> {
    let expected = "expected http://host[:port]/path or https://host[:port]/path";
    let mut url = Url::parse(text.trim()).map_err(|e| format!("invalid URL {text:?} ({e}); {expected}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "invalid URL: it contains credentials (user:password@), which would show in labels and logs; send an Authorization header from the module's `headers` instead".into(),
        );
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("invalid URL {text:?}: scheme {:?} is not supported; {expected}", url.scheme()));
    }
    if url.host().is_none() {
        return Err(format!("invalid URL {text:?}: it has no host; {expected}"));
    }
    // The fragment is never sent to the server.
    url.set_fragment(None);
    Ok(url)
}

impl<'de> Deserialize<'de> for ConfigUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        check_url(&text).map(Self).map_err(de::Error::custom)
    }
}

/// One entry of `allowed_targets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedTarget {
    /// An address range (`127.0.0.0/8`) or one address (`/32`, `/128`).
    Network {
        /// The range's address.
        address: IpAddr,
        /// Leading bits that must match.
        prefix: u8,
    },
    /// An exact host name, lowercase (`localhost`).
    Host(String),
    /// Any host below a domain (`*.example.com`), stored as `.example.com`.
    DomainSuffix(String),
}

impl AllowedTarget {
    /// Parses `127.0.0.0/8`, `::1`, `localhost` or `*.example.com`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let invalid = || {
            format!(
                "invalid allowed target {text:?}; expected a CIDR (127.0.0.0/8, ::1/128), an IP address, a host name (localhost) or a domain wildcard (*.example.com)"
            )
        };
        if let Some((address, prefix)) = text.split_once('/') {
            let address: IpAddr = address.parse().map_err(|_| invalid())?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
            if prefix > max {
                return Err(format!("invalid allowed target {text:?}: the prefix length must be 0 to {max}"));
            }
            return Ok(Self::Network { address, prefix });
        }
        if let Ok(address) = text.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            let prefix = if address.is_ipv4() { 32 } else { 128 };
            return Ok(Self::Network { address, prefix });
        }
        let (suffix, host) = match text.strip_prefix("*.") {
            Some(domain) => (true, domain),
            None => (false, text),
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let valid_label = |label: &str| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if host.is_empty() || host.len() > 253 || !host.split('.').all(valid_label) {
            return Err(invalid());
        }
        Ok(if suffix { Self::DomainSuffix(format!(".{host}")) } else { Self::Host(host) })
    }

    /// Whether `host` (as written in a URL) is covered by this entry.
    pub fn allows(&self, host: &url::Host<&str>) -> bool {
        match (self, host) {
            (Self::Network { address, prefix }, url::Host::Ipv4(ip)) => {
                in_network(IpAddr::V4(*ip), *address, *prefix)
            }
            (Self::Network { address, prefix }, url::Host::Ipv6(ip)) => {
                // An IPv4-mapped address (::ffff:127.0.0.1) is the IPv4 address it maps.
                in_network(IpAddr::V6(*ip).to_canonical(), *address, *prefix)
                    || in_network(IpAddr::V6(*ip), *address, *prefix)
            }
            (Self::Host(name), url::Host::Domain(domain)) => {
                domain.trim_end_matches('.').eq_ignore_ascii_case(name)
            }
            (Self::DomainSuffix(suffix), url::Host::Domain(domain)) => {
                let domain = domain.trim_end_matches('.').to_ascii_lowercase();
                domain.ends_with(suffix.as_str()) && domain.len() > suffix.len()
            }
            _ => false,
        }
    }
}

fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

impl<'de> Deserialize<'de> for AllowedTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        AllowedTarget::parse(&text).map_err(de::Error::custom)
    }
}

impl fmt::Display for AllowedTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Network { address, prefix } => write!(f, "{address}/{prefix}"),
            Self::Host(name) => f.write_str(name),
            Self::DomainSuffix(suffix) => write!(f, "*{suffix}"),
        }
    }
}

/// Whether any entry of `allowed` covers `url`'s host.
pub fn allowed(allowed: &[AllowedTarget], url: &Url) -> bool {
    url.host().is_some_and(|host| allowed.iter().any(|entry| entry.allows(&host)))
}
