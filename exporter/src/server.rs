//! HTTP serving with hyper 1.x: the telemetry path (Prometheus text 0.0.4,
//! OpenMetrics by `Accept` only with `--web.enable-openmetrics`, gzip by
//! `Accept-Encoding`), `/probe`, a landing page, health and readiness; the
//! limits that keep it standing (separate slot pools for `/metrics` and
//! `/probe`, a connection cap, a small request-head buffer, a header read
//! timeout, no probing of itself), live reload (`/-/reload` and SIGHUP swap
//! the [`Active`] set of collectors) and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::collectors::Collector;
use crate::logging::RateLimiter;
use crate::scrape::{SCRAPE_TIMEOUT_HEADER, ScrapeEngine};
use crate::web_config::WebConfig;

/// Prometheus text exposition format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// OpenMetrics 1.0 text format.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub use crate::reload::Active;

/// What every request handler shares.
pub struct App {
    /// Swapped whole by a reload; the lock is held only to clone or replace
    /// the `Arc`, never across an `.await`.
    active: std::sync::RwLock<Arc<Active>>,
    reload: crate::reload::Reloader,
    lifecycle: bool,
    telemetry_path: String,
    metrics_slots: SlotPool,
    probe_slots: SlotPool,
    /// Full collections of the telemetry path running at once; a request
    /// beyond them waits for one to end (see [`WebOptions::concurrent_collections`]).
    collections: Arc<Semaphore>,
    openmetrics: bool,
    max_connections: usize,
    /// Where this exporter listens; `/probe` refuses them.
    own_addresses: Vec<std::net::SocketAddr>,
    rejections_log: RateLimiter,
    web_config: Option<Arc<WebConfig>>,
}

/// Concurrent requests one endpoint serves at once; more get 503 straight away.
#[derive(Debug)]
struct SlotPool {
    slots: Option<Arc<Semaphore>>,
    limit: usize,
    flag: &'static str,
}

impl SlotPool {
    fn new(limit: usize, flag: &'static str) -> Self {
        Self { slots: (limit > 0).then(|| Arc::new(Semaphore::new(limit))), limit, flag }
    }
}

/// Flags of the HTTP side that are not the telemetry path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebOptions {
    /// `/probe` requests served at once (0 = no limit).
    pub max_probe_requests: usize,
    /// Answer OpenMetrics to clients that ask for it.
    pub enable_openmetrics: bool,
    /// Serve `POST /-/reload` (`--web.enable-lifecycle`).
    pub enable_lifecycle: bool,
    /// Open connections at once; the exporter stops accepting at the cap (0 = no cap).
    pub max_connections: usize,
    /// Full collections of the telemetry path run at once (at least 1); more
    /// requests wait their turn within their own scrape timeout
    /// (`--web.concurrent-collections`). Each holds a scrape's samples, text
    /// and compressed body: eight clients at once held eight of them, and the
    /// allocator kept the pages after the burst.
    pub concurrent_collections: usize,
}

/// Default `--web.concurrent-collections`. Measured with every collector of
/// the shipped config on 2 cores, eight clients at once: one at a time
/// answered 458–545 scrapes/s and left 11.7–12.4 MiB resident, two at once
/// 334–359/s and 12.5–12.6 MiB (in the same alternating pairs), no limit
/// 222–272/s and 13.1–13.4 MiB.
pub const DEFAULT_CONCURRENT_COLLECTIONS: usize = 1;

impl Default for WebOptions {
    fn default() -> Self {
        Self {
            max_probe_requests: 20,
            enable_openmetrics: false,
            enable_lifecycle: false,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            concurrent_collections: DEFAULT_CONCURRENT_COLLECTIONS,
        }
    }
}

/// Default `--web.max-connections`: far above what Prometheus needs, far
/// below what `MemoryMax=128M` and `LimitNOFILE` in the shipped unit allow.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Largest request head accepted (hyper's `max_buf_size`); Prometheus sends
/// well under 1 KiB, hyper's default of ≈400 KiB lets idle connections cost
/// memory at will.
pub const MAX_REQUEST_HEAD_BYTES: usize = 32 * 1024;
/// Time a client has to send a complete request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("active", &self.active())
            .field("telemetry_path", &self.telemetry_path)
            .field("metrics_slots", &self.metrics_slots)
            .field("probe_slots", &self.probe_slots)
            .field("openmetrics", &self.openmetrics)
            .finish_non_exhaustive()
    }
}

impl App {
    /// `max_requests == 0` means no limit on concurrent scrapes of the telemetry path.
    pub fn new(engine: ScrapeEngine, telemetry_path: String, max_requests: usize) -> Self {
        let web = WebOptions::default();
        Self {
            active: std::sync::RwLock::new(Arc::new(Active {
                engine,
                targets: Default::default(),
                prober: None,
            })),
            reload: crate::reload::Reloader::default(),
            lifecycle: web.enable_lifecycle,
            telemetry_path,
            metrics_slots: SlotPool::new(max_requests, "--web.max-requests"),
            probe_slots: SlotPool::new(web.max_probe_requests, "--web.max-probe-requests"),
            collections: Arc::new(Semaphore::new(web.concurrent_collections.max(1))),
            openmetrics: web.enable_openmetrics,
            max_connections: web.max_connections,
            own_addresses: Vec::new(),
            rejections_log: RateLimiter::new(Duration::from_secs(60)),
            web_config: None,
        }
    }

    /// Applies the web flags beyond the telemetry path and `--web.max-requests`.
    pub fn with_web_options(mut self, web: &WebOptions) -> Self {
        self.probe_slots = SlotPool::new(web.max_probe_requests, "--web.max-probe-requests");
        self.openmetrics = web.enable_openmetrics;
        self.lifecycle = web.enable_lifecycle;
        self.max_connections = web.max_connections;
        self.collections = Arc::new(Semaphore::new(web.concurrent_collections.max(1)));
        self
    }

    /// Where a reload reads the configuration from (see [`crate::reload`]).
    pub fn with_reloader(mut self, reload: crate::reload::Reloader) -> Self {
        self.reload = reload;
        self
    }

    /// The collectors in force now; the caller keeps them for its whole request.
    pub fn active(&self) -> Arc<Active> {
        Arc::clone(&self.active.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Puts `active` in force for requests that start from now on.
    pub fn swap(&self, active: Active) {
        *self.active.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(active);
    }

    /// Re-reads and builds the configuration as start-up does and, when it is
    /// valid, swaps it in. Reloads run one at a time; a bad configuration
    /// leaves the running one in force and comes back as the error text.
    pub async fn reload(&self) -> Result<(), String> {
        self.reload.run(|active| self.swap(active)).await
    }

    /// Changes the set being built; only while the `App` is still being built,
    /// when nothing else holds the set.
    fn change_active(mut self, change: impl FnOnce(&mut Active)) -> Self {
        let slot = self.active.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(active) = Arc::get_mut(slot) {
            change(active);
        }
        self
    }

    /// TLS and basic auth from `--web.config.file`.
    pub fn with_web_config(mut self, web_config: Option<Arc<WebConfig>>) -> Self {
        self.web_config = web_config;
        self
    }

    /// The addresses this exporter listens on: `/probe` never sends a request to them.
    pub fn with_own_addresses(mut self, addresses: Vec<std::net::SocketAddr>) -> Self {
        self.own_addresses = addresses;
        self
    }

    /// Adds the named targets `/probe?target=NAME` serves.
    pub fn with_targets(self, targets: std::collections::BTreeMap<String, Arc<dyn Collector>>) -> Self {
        self.change_active(|active| active.targets = targets)
    }

    /// Adds the probe modules `/probe?target=URL&module=NAME` uses.
    pub fn with_prober(self, prober: Option<Arc<crate::collectors::probe::ProbeCollector>>) -> Self {
        self.change_active(|active| active.prober = prober)
    }

    /// Answers one request.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, _body) = request.into_parts();
        self.respond_to(&parts.method, parts.uri.path(), parts.uri.query(), &parts.headers).await
    }

    /// Answers a request without a query string.
    pub async fn respond(
        &self,
        method: &Method,
        path: &str,
        headers: &hyper::HeaderMap,
    ) -> Response<Full<Bytes>> {
        self.respond_to(method, path, None, headers).await
    }

    /// Answers a request given its method, path, query string and headers.
    pub async fn respond_to(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &hyper::HeaderMap,
    ) -> Response<Full<Bytes>> {
        if path == "/-/reload" {
            return self.reload_endpoint(method).await;
        }
        if method != Method::GET && method != Method::HEAD {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are supported\n");
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let active = self.active();
        let mut response = match path {
            path if path == self.telemetry_path => {
                self.metrics(&active, headers, None, &self.metrics_slots).await
            }
            "/probe" => match self.probe_target(&active, query, headers) {
                Ok(collector) => self.metrics(&active, headers, Some(collector), &self.probe_slots).await,
                Err(message) => text(StatusCode::BAD_REQUEST, &message),
            },
            "/" => self.landing_page(&active),
            "/-/healthy" => text(StatusCode::OK, "Healthy\n"),
            "/-/ready" => text(StatusCode::OK, "Ready\n"),
            _ => text(StatusCode::NOT_FOUND, "not found; see / for the endpoints\n"),
        };
        if method == Method::HEAD {
            *response.body_mut() = Full::new(Bytes::new());
        }
        response
    }

    /// `POST /-/reload`, as Prometheus: only with `--web.enable-lifecycle`.
    async fn reload_endpoint(&self, method: &Method) -> Response<Full<Bytes>> {
        if method != Method::POST {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "use POST to reload the configuration\n");
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        if !self.lifecycle {
            return text(
                StatusCode::FORBIDDEN,
                "lifecycle APIs are not enabled; start with --web.enable-lifecycle, or send SIGHUP to reload\n",
            );
        }
        match self.reload().await {
            Ok(()) => text(StatusCode::OK, "configuration reloaded\n"),
            Err(error) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("failed to reload the configuration; the previous one stays in force:\n{error}\n"),
            ),
        }
    }

    /// The collector `/probe?target=NAME` asks for, or why the request is refused.
    fn probe_target(
        &self,
        active: &Active,
        query: Option<&str>,
        headers: &hyper::HeaderMap,
    ) -> Result<Arc<dyn Collector>, String> {
        let mut target = None;
        let mut module = None;
        // A repeated parameter: the first wins, as in blackbox_exporter.
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "target" => target = target.or_else(|| Some(value.into_owned())),
                "module" => module = module.or_else(|| Some(value.into_owned())),
                other => {
                    return Err(format!(
                        "unknown parameter {other:?}; /probe takes target=NAME, or target=URL&module=NAME for an HTTP probe (credentials are never accepted in the URL)\n"
                    ));
                }
            }
        }
        // With a module it is an HTTP probe of a URL, as in blackbox_exporter.
        if let Some(module) = module {
            let Some(prober) = &active.prober else {
                return Err("the probe collector is not available\n".into());
            };
            let Some(target) = target else {
                return Err(format!(
                    "missing target=URL; configured modules: {}\n",
                    prober.module_names().join(", ")
                ));
            };
            if is_own_probe(headers) {
                return Err("refused: this request comes from an opsmon-exporter probe; /probe never probes an exporter's /probe\n".into());
            }
            if targets_own_address(&target, &self.own_addresses) {
                return Err("refused: the target is this exporter's own listen address\n".into());
            }
            return prober.one_off(&target, &module);
        }
        let known = || {
            if active.targets.is_empty() {
                "none are configured".to_owned()
            } else {
                format!(
                    "configured targets: {}",
                    active.targets.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }
        };
        let Some(target) = target else {
            return Err(format!("missing target=NAME; {}\n", known()));
        };
        match active.targets.get(&target) {
            Some(collector) => Ok(Arc::clone(collector)),
            // Never echo a URL-looking target: it may carry credentials.
            None if target.contains("://") || target.contains('@') => Err(format!(
                "target must be the name of a configured target, not an address; credentials are never accepted in the URL; {}\n",
                known()
            )),
            None => Err(format!("unknown target {target:?}; {}\n", known())),
        }
    }

    async fn metrics(
        &self,
        active: &Active,
        headers: &hyper::HeaderMap,
        only: Option<Arc<dyn Collector>>,
        pool: &SlotPool,
    ) -> Response<Full<Bytes>> {
        let _slot = match &pool.slots {
            Some(slots) => match Arc::clone(slots).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    if let Some(suppressed) = self.rejections_log.allow(pool.flag) {
                        tracing::warn!(
                            limit = pool.limit,
                            flag = pool.flag,
                            suppressed_since_last = suppressed,
                            "too many concurrent requests; answered 503"
                        );
                    }
                    return text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &format!("too many concurrent requests (limit {}, {})\n", pool.limit, pool.flag),
                    );
                }
            },
            None => None,
        };
        let header_value = headers.get(SCRAPE_TIMEOUT_HEADER).and_then(|v| v.to_str().ok());
        let budget = active.engine.policy().budget(header_value);
        // `/probe` answers one target and stays unqueued, so that one slow
        // target never delays another.
        let (_collecting, budget) = match only {
            Some(_) => (None, budget),
            None => match self.wait_for_collection(budget).await {
                Ok((permit, left)) => (Some(permit), left),
                Err(response) => return response,
            },
        };
        let metrics = match only {
            Some(collector) => active.engine.scrape_with(&[collector], budget).await,
            None => {
                // As the Go exporters: process_* on the telemetry path, not on /probe.
                let mut metrics = active.engine.scrape(budget).await;
                crate::process_metrics::collect(&mut metrics);
                self.reload.collect(&mut metrics);
                metrics
            }
        };

        // Text 0.0.4 whatever Prometheus prefers, as the Go exporters answer:
        // OpenMetrics appends `_total` to counters that the peers expose
        // without it, and Prometheus would store them under other names.
        let openmetrics = self.openmetrics && wants_openmetrics(headers.get(header::ACCEPT));
        let (body, content_type) = if openmetrics {
            (metrics.encode_openmetrics(), OPENMETRICS_CONTENT_TYPE)
        } else {
            (metrics.encode_text(), TEXT_CONTENT_TYPE)
        };
        let mut response = Response::new(Full::new(Bytes::new()));
        let response_headers = response.headers_mut();
        response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response_headers.insert(header::VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
        if accepts_gzip(headers.get(header::ACCEPT_ENCODING))
            && let Some(compressed) = gzip(body.as_bytes())
        {
            response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            *response.body_mut() = Full::new(Bytes::from(compressed));
            return response;
        }
        *response.body_mut() = Full::new(Bytes::from(body));
        response
    }

    /// A turn among the full collections, and what is left of `budget` once
    /// it comes; a 503 when the scrape's own timeout passes first.
    async fn wait_for_collection(
        &self,
        budget: Duration,
    ) -> Result<(tokio::sync::SemaphorePermit<'_>, Duration), Response<Full<Bytes>>> {
        let arrived = std::time::Instant::now();
        match tokio::time::timeout(budget, self.collections.acquire()).await {
            Ok(Ok(permit)) => Ok((permit, budget.saturating_sub(arrived.elapsed()))),
            // The semaphore is never closed; treat it as a timeout all the same.
            Ok(Err(_)) | Err(_) => {
                if let Some(suppressed) = self.rejections_log.allow("collections") {
                    tracing::warn!(
                        waited_seconds = budget.as_secs_f64(),
                        suppressed_since_last = suppressed,
                        "scrape timed out waiting for other scrapes to finish; answered 503"
                    );
                }
                Err(text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "scrape timed out waiting for the scrapes before it to finish\n",
                ))
            }
        }
    }

    fn landing_page(&self, active: &Active) -> Response<Full<Bytes>> {
        let collectors: String =
            active.engine.collector_names().iter().map(|name| format!("<li>{name}</li>")).collect();
        let page = format!(
            "<!DOCTYPE html>\n<html><head><title>opsmon-exporter</title></head><body>\n\
             <h1>opsmon-exporter {version}</h1>\n\
             <ul><li><a href=\"{path}\">{path}</a> — metrics (Prometheus text 0.0.4{openmetrics}, gzip)</li>\n\
             <li>/probe?target=NAME — one configured target ({targets})</li>\n\
             <li>/probe?target=URL&amp;module=NAME — one HTTP probe, blackbox_exporter style</li>\n\
             <li><a href=\"/-/healthy\">/-/healthy</a> — liveness</li>\n\
             <li><a href=\"/-/ready\">/-/ready</a> — readiness</li>\n\
             <li>POST /-/reload — re-read the configuration{lifecycle}</li></ul>\n\
             <h2>Enabled collectors</h2><ul>{collectors}</ul>\n</body></html>\n",
            version = env!("CARGO_PKG_VERSION"),
            path = self.telemetry_path,
            openmetrics = if self.openmetrics { "; OpenMetrics by Accept" } else { "" },
            lifecycle = if self.lifecycle { "" } else { " (off: --web.enable-lifecycle; SIGHUP works)" },
            targets = if active.targets.is_empty() {
                "none configured".to_owned()
            } else {
                active.targets.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        );
        let mut response = Response::new(Full::new(Bytes::from(page)));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        response
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// True when the request comes from an opsmon-exporter probe (ours or
/// another's): nesting `/probe` in `/probe` would multiply one request.
fn is_own_probe(headers: &hyper::HeaderMap) -> bool {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|agent| agent.starts_with("opsmon-exporter/"))
}

/// True when `target` (a URL or blackbox-style `host:port/path`) points at
/// one of `own` (this exporter's listen addresses): loopback, unspecified and
/// `localhost` hosts on a port we listen on, or the exact listen address.
/// Other addresses of this host are caught one level down: the exporter
/// refuses `/probe` requests that carry its probes' User-Agent.
pub fn targets_own_address(target: &str, own: &[std::net::SocketAddr]) -> bool {
    let target = target.trim();
    let text = if target.contains("://") { target.to_owned() } else { format!("http://{target}") };
    let Ok(url) = url::Url::parse(&text) else { return false };
    let Some(port) = url.port_or_known_default() else { return false };
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
            } else {
                return false;
            }
        }
        None => return false,
    };
    let ip = match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    };
    own.iter().any(|address| {
        address.port() == port && (ip.is_loopback() || ip.is_unspecified() || address.ip() == ip)
    })
}

/// True when the `Accept` header lists OpenMetrics text with a non-zero quality.
pub fn wants_openmetrics(accept: Option<&HeaderValue>) -> bool {
    media_ranges(accept)
        .any(|(media, q)| media.eq_ignore_ascii_case("application/openmetrics-text") && q > 0.0)
}

/// True when `Accept-Encoding` allows gzip.
pub fn accepts_gzip(accept_encoding: Option<&HeaderValue>) -> bool {
    media_ranges(accept_encoding).any(|(coding, q)| coding.eq_ignore_ascii_case("gzip") && q > 0.0)
}

/// `(value, q)` pairs of a comma-separated header with `;q=` weights.
fn media_ranges(header: Option<&HeaderValue>) -> impl Iterator<Item = (&str, f32)> {
    header.and_then(|h| h.to_str().ok()).unwrap_or("").split(',').filter_map(|item| {
        let mut params = item.split(';');
        let value = params.next()?.trim();
        let q = params
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        (!value.is_empty()).then_some((value, q))
    })
}

/// The deflate state reused by gzip answers. Creating one allocates and
/// zeroes a few hundred KiB of hash tables, which cost more than
/// compressing a typical 15–60 KB exposition at level 1 (measured in
/// docs/benchmarks.md); one shared state keeps that memory bounded, and a
/// scrape that finds it busy builds its own for that answer.
static DEFLATE: std::sync::Mutex<Option<flate2::Compress>> = std::sync::Mutex::new(None);

/// gzip member header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut shared = DEFLATE.try_lock().ok();
    let mut own = None;
    let compress = match shared.as_deref_mut() {
        Some(slot) => {
            let compress = slot.get_or_insert_with(new_deflate);
            compress.reset();
            compress
        }
        None => own.insert(new_deflate()),
    };
    let mut out = Vec::with_capacity(data.len() / 4 + GZIP_HEADER.len() + 64);
    out.extend_from_slice(&GZIP_HEADER);
    let mut input = data;
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(4096));
        }
        let before = compress.total_in();
        let status = compress.compress_vec(input, &mut out, flate2::FlushCompress::Finish).ok()?;
        let consumed = usize::try_from(compress.total_in() - before).ok()?;
        input = input.get(consumed..)?;
        if status == flate2::Status::StreamEnd {
            break;
        }
    }
    let mut crc = flate2::Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE is the input length modulo 2^32 (RFC 1952).
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    Some(out)
}

/// Raw deflate (the gzip framing is ours) at level 1: scrapes are small
/// and frequent, and level 6 buys a few percent for several times the CPU.
fn new_deflate() -> flate2::Compress {
    flate2::Compress::new(flate2::Compression::fast(), false)
}

/// Serves `app` on every listener until `shutdown` resolves, then lets
/// in-flight requests finish (for at most `grace`).
pub async fn serve(
    listeners: Vec<TcpListener>,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // At the cap the acceptors stop accepting (as Prometheus'
    // --web.max-connections does): further connections wait in the kernel's
    // backlog and cost neither a descriptor nor memory here.
    let connection_slots = (app.max_connections > 0).then(|| Arc::new(Semaphore::new(app.max_connections)));
    let accept_log = Arc::new(RateLimiter::new(Duration::from_secs(60)));
    let (conn_tx, mut conn_rx) =
        tokio::sync::mpsc::channel::<(tokio::net::TcpStream, Option<OwnedSemaphorePermit>)>(64);
    let mut acceptors = tokio::task::JoinSet::new();
    for listener in listeners {
        let conn_tx = conn_tx.clone();
        let connection_slots = connection_slots.clone();
        let accept_log = Arc::clone(&accept_log);
        acceptors.spawn(async move {
            loop {
                let permit = match &connection_slots {
                    Some(slots) => match Arc::clone(slots).acquire_owned().await {
                        Ok(permit) => Some(permit),
                        Err(_) => break,
                    },
                    None => None,
                };
                match listener.accept().await {
                    Ok((stream, _peer)) => {
                        if conn_tx.send((stream, permit)).await.is_err() {
                            break;
                        }
                    }
                    // Out of file descriptors and the like: back off, keep serving.
                    Err(error) => {
                        if let Some(suppressed) = accept_log.allow("accept") {
                            tracing::warn!(%error, suppressed_since_last = suppressed, "accept failed");
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }
    drop(conn_tx);
    if let Some(web_config) = &app.web_config {
        let web_config = Arc::clone(web_config);
        acceptors.spawn(async move {
            loop {
                tokio::time::sleep(crate::web_config::RELOAD_CHECK_INTERVAL).await;
                let web_config = Arc::clone(&web_config);
                let _ = tokio::task::spawn_blocking(move || web_config.reload_if_changed()).await;
            }
        });
    }

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = conn_rx.recv() => {
                let Some((stream, permit)) = accepted else { break };
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    serve_connection(stream, app, watcher).await;
                    drop(permit);
                });
            }
        }
    }
    acceptors.abort_all();
    tracing::info!("shutting down; waiting for in-flight requests");
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(?grace, "in-flight requests did not finish in time");
    }
}

/// Serves one accepted connection (TLS first when configured) until it closes.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: Arc<App>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let web = app.web_config.as_ref().map(|config| config.current());
    let handler_app = Arc::clone(&app);
    let handler_web = web.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let app = Arc::clone(&handler_app);
        let web = handler_web.clone();
        async move {
            if let (Some(config), Some(web)) = (&app.web_config, &web)
                && !config.authorize(web, request.headers().get(header::AUTHORIZATION)).await
            {
                let mut response = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"opsmon-exporter\""),
                );
                return Ok::<_, Infallible>(response);
            }
            // A panicking handler answers 500 instead of dropping the
            // connection; the panic itself is logged by the rate-limited hook.
            let handled = tokio::spawn(async move { app.handle(request).await }).await;
            Ok::<_, Infallible>(handled.unwrap_or_else(|_| {
                text(StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the exporter's log\n")
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES);
    let result = match web.and_then(|web| web.tls()) {
        None => watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await,
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls);
            // The handshake shares the head's deadline; plain HTTP fails it at once.
            let stream = match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    return;
                }
            };
            watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection closed with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::{BoxFuture, Collected, Collector};
    use crate::scrape::BudgetPolicy;

    struct Slow;
    impl Collector for Slow {
        fn name(&self) -> &'static str {
            "slow"
        }
        fn collect(&self, _: tokio::time::Instant) -> BoxFuture<'_, Collected> {
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Collected::default()
            })
        }
    }

    #[tokio::test]
    async fn scrapes_beyond_the_limit_get_503_at_once() {
        let engine = ScrapeEngine::new(vec![Arc::new(Slow)], BudgetPolicy::default());
        let app = Arc::new(App::new(engine, "/metrics".into(), 1));
        let first = {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.respond(&Method::GET, "/metrics", &hyper::HeaderMap::new()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = std::time::Instant::now();
        let second = app.respond(&Method::GET, "/metrics", &hyper::HeaderMap::new()).await;
        assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(started.elapsed() < Duration::from_millis(100), "refused without waiting");
        assert_eq!(first.await.expect("joined").status(), StatusCode::OK);
        let third = app.respond(&Method::GET, "/metrics", &hyper::HeaderMap::new()).await;
        assert_eq!(third.status(), StatusCode::OK, "the slot is free again");
    }

    /// Counts the collections running at once.
    #[derive(Default)]
    struct Overlap {
        running: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
    }
    struct Watched(Arc<Overlap>);
    impl Collector for Watched {
        fn name(&self) -> &'static str {
            "watched"
        }
        fn collect(&self, _: tokio::time::Instant) -> BoxFuture<'_, Collected> {
            use std::sync::atomic::Ordering::SeqCst;
            Box::pin(async {
                let now = self.0.running.fetch_add(1, SeqCst) + 1;
                self.0.most.fetch_max(now, SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                self.0.running.fetch_sub(1, SeqCst);
                Collected::default()
            })
        }
    }

    fn app_collecting(collector: Arc<dyn Collector>, at_once: usize) -> Arc<App> {
        let engine = ScrapeEngine::new(vec![collector], BudgetPolicy::default());
        let web = WebOptions { concurrent_collections: at_once, ..WebOptions::default() };
        Arc::new(App::new(engine, "/metrics".into(), 40).with_web_options(&web))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_scrapes_collect_in_turn_and_all_are_answered() {
        let overlap = Arc::new(Overlap::default());
        let app = app_collecting(Arc::new(Watched(Arc::clone(&overlap))), 2);
        let started = std::time::Instant::now();
        let requests: Vec<_> = (0..6)
            .map(|_| {
                let app = Arc::clone(&app);
                tokio::spawn(
                    async move { app.respond(&Method::GET, "/metrics", &hyper::HeaderMap::new()).await },
                )
            })
            .collect();
        for request in requests {
            assert_eq!(request.await.expect("joined").status(), StatusCode::OK);
        }
        assert_eq!(
            overlap.most.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "two collections at once, never more"
        );
        // Six 100 ms collections two at a time: three turns.
        assert!(started.elapsed() >= Duration::from_millis(290), "{:?}", started.elapsed());
    }

    /// Sleeps `first` on its first collection and `later` on every other.
    struct FirstSlower {
        calls: std::sync::atomic::AtomicUsize,
        first: Duration,
        later: Duration,
    }
    impl FirstSlower {
        fn new(first_ms: u64, later_ms: u64) -> Arc<Self> {
            Arc::new(Self {
                calls: Default::default(),
                first: Duration::from_millis(first_ms),
                later: Duration::from_millis(later_ms),
            })
        }
    }
    impl Collector for FirstSlower {
        fn name(&self) -> &'static str {
            "sleeper"
        }
        fn collect(&self, _: tokio::time::Instant) -> BoxFuture<'_, Collected> {
            let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let sleep = if call == 0 { self.first } else { self.later };
            Box::pin(async move {
                tokio::time::sleep(sleep).await;
                Collected::default()
            })
        }
    }

    /// Starts a scrape that holds the only turn, and returns once it has it.
    async fn holding_the_turn(app: &Arc<App>) -> tokio::task::JoinHandle<Response<Full<Bytes>>> {
        let app_held = Arc::clone(app);
        let first = tokio::spawn(async move {
            app_held.respond(&Method::GET, "/metrics", &hyper::HeaderMap::new()).await
        });
        while app.collections.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        first
    }

    #[tokio::test]
    async fn a_scrape_that_cannot_get_a_turn_within_its_timeout_gets_503() {
        let app = app_collecting(FirstSlower::new(600, 0), 1);
        let first = holding_the_turn(&app).await;
        // 0.4 s from Prometheus, of which the offset leaves half: 200 ms to
        // wait, while the first scrape holds the only turn for about 600 ms.
        let mut headers = hyper::HeaderMap::new();
        headers.insert(SCRAPE_TIMEOUT_HEADER, HeaderValue::from_static("0.4"));
        let started = std::time::Instant::now();
        let second = app.respond(&Method::GET, "/metrics", &headers).await;
        assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(190) && waited < Duration::from_millis(500), "{waited:?}");
        assert_eq!(first.await.expect("joined").status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_scrape_that_waited_collects_with_what_is_left_of_its_timeout() {
        // The first collection takes 600 ms, every later one 300 ms.
        let app = app_collecting(FirstSlower::new(600, 300), 1);
        let first = holding_the_turn(&app).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        // 1 s less the 0.5 s offset = 500 ms, enough for 300 ms; but about
        // 350 ms of waiting leaves about 150 ms, too little.
        let mut headers = hyper::HeaderMap::new();
        headers.insert(SCRAPE_TIMEOUT_HEADER, HeaderValue::from_static("1.0"));
        let started = std::time::Instant::now();
        let second = app.respond(&Method::GET, "/metrics", &headers).await;
        let took = started.elapsed();
        assert_eq!(second.status(), StatusCode::OK);
        assert!(took < Duration::from_millis(600), "the wait counts against the timeout: {took:?}");
        let body = String::from_utf8(
            http_body_util::BodyExt::collect(second.into_body()).await.expect("body").to_bytes().to_vec(),
        )
        .expect("utf-8");
        assert!(body.contains("opsmon_exporter_collector_success{collector=\"sleeper\"} 0"), "{body}");
        assert_eq!(first.await.expect("joined").status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn probes_do_not_wait_for_the_collection_turn() {
        let mut targets: std::collections::BTreeMap<String, Arc<dyn Collector>> = Default::default();
        targets.insert("quick".into(), FirstSlower::new(0, 0));
        let engine = ScrapeEngine::new(vec![FirstSlower::new(600, 0)], BudgetPolicy::default());
        let web = WebOptions { concurrent_collections: 1, ..WebOptions::default() };
        let app =
            Arc::new(App::new(engine, "/metrics".into(), 40).with_web_options(&web).with_targets(targets));
        let first = holding_the_turn(&app).await;
        let started = std::time::Instant::now();
        let probe =
            app.respond_to(&Method::GET, "/probe", Some("target=quick"), &hyper::HeaderMap::new()).await;
        assert_eq!(probe.status(), StatusCode::OK);
        assert!(started.elapsed() < Duration::from_millis(300), "answered while /metrics held the turn");
        assert_eq!(app.collections.available_permits(), 0, "the turn was still held");
        assert_eq!(first.await.expect("joined").status(), StatusCode::OK);
    }

    /// A reload swaps the set for new requests; one already running keeps the old.
    #[tokio::test]
    async fn in_flight_scrapes_finish_on_the_set_they_started_with() {
        use http_body_util::BodyExt;
        let engine = ScrapeEngine::new(vec![Arc::new(Slow)], BudgetPolicy::default());
        let app = Arc::new(App::new(engine, "/metrics".into(), 0));
        let in_flight = {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.respond(&Method::GET, "/metrics", &hyper::HeaderMap::new()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        app.swap(Active {
            engine: ScrapeEngine::new(Vec::new(), BudgetPolicy::default()),
            targets: Default::default(),
            prober: None,
        });
        let body = |response: Response<Full<Bytes>>| async move {
            String::from_utf8(response.into_body().collect().await.expect("body").to_bytes().to_vec())
                .expect("utf-8")
        };
        let old = body(in_flight.await.expect("joined")).await;
        assert!(old.contains("opsmon_exporter_collector_success{collector=\"slow\"} 1"), "{old}");
        let new = body(app.respond(&Method::GET, "/metrics", &hyper::HeaderMap::new()).await).await;
        assert!(!new.contains("collector=\"slow\""), "{new}");
        assert!(new.contains("opsmon_exporter_config_last_reload_successful 1"), "{new}");
    }

    #[tokio::test]
    async fn reload_needs_post_and_the_lifecycle_flag() {
        let app = App::new(ScrapeEngine::new(Vec::new(), BudgetPolicy::default()), "/metrics".into(), 0);
        let headers = hyper::HeaderMap::new();
        assert_eq!(
            app.respond(&Method::GET, "/-/reload", &headers).await.status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(app.respond(&Method::POST, "/-/reload", &headers).await.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn own_listen_addresses_are_recognised_in_every_spelling() {
        let own: Vec<std::net::SocketAddr> =
            vec!["0.0.0.0:19100".parse().expect("addr"), "10.1.2.3:9000".parse().expect("addr")];
        for target in [
            "http://127.0.0.1:19100/probe?target=x",
            "127.0.0.1:19100/probe",
            "http://localhost:19100/metrics",
            "http://LOCALHOST.:19100/",
            "http://127.7.7.7:19100/",
            "http://[::1]:19100/",
            "http://[::ffff:127.0.0.1]:19100/",
            "http://0.0.0.0:19100/",
            "http://2130706433:19100/",
            "http://10.1.2.3:9000/probe",
        ] {
            assert!(targets_own_address(target, &own), "{target}");
        }
        for target in
            ["http://127.0.0.1:19101/", "http://10.1.2.3:19100/", "http://example.com:19100/", "not a url"]
        {
            assert!(!targets_own_address(target, &own), "{target}");
        }
    }

    #[tokio::test]
    async fn openmetrics_only_when_enabled() {
        let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
        let mut headers = hyper::HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
        let app = App::new(ScrapeEngine::new(Vec::new(), BudgetPolicy::default()), "/metrics".into(), 0);
        let response = app.respond(&Method::GET, "/metrics", &headers).await;
        assert_eq!(response.headers()[header::CONTENT_TYPE], TEXT_CONTENT_TYPE);
        let app = app.with_web_options(&WebOptions { enable_openmetrics: true, ..WebOptions::default() });
        let response = app.respond(&Method::GET, "/metrics", &headers).await;
        assert_eq!(response.headers()[header::CONTENT_TYPE], OPENMETRICS_CONTENT_TYPE);
    }

    #[tokio::test]
    async fn the_first_of_repeated_targets_wins() {
        let mut targets: std::collections::BTreeMap<String, Arc<dyn Collector>> = Default::default();
        targets.insert("first".into(), Arc::new(Slow));
        let app = App::new(ScrapeEngine::new(Vec::new(), BudgetPolicy::default()), "/metrics".into(), 0)
            .with_targets(targets);
        let headers = hyper::HeaderMap::new();
        let first =
            app.respond_to(&Method::GET, "/probe", Some("target=first&target=second"), &headers).await;
        assert_eq!(first.status(), StatusCode::OK);
        let second =
            app.respond_to(&Method::GET, "/probe", Some("target=second&target=first"), &headers).await;
        assert_eq!(second.status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn probes_have_their_own_slots() {
        let mut targets: std::collections::BTreeMap<String, Arc<dyn Collector>> = Default::default();
        targets.insert("slow".into(), Arc::new(Slow));
        let engine = ScrapeEngine::new(Vec::new(), BudgetPolicy::default());
        let app = Arc::new(
            App::new(engine, "/metrics".into(), 1)
                .with_web_options(&WebOptions { max_probe_requests: 1, ..WebOptions::default() })
                .with_targets(targets),
        );
        let probe = {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                app.respond_to(&Method::GET, "/probe", Some("target=slow"), &hyper::HeaderMap::new()).await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let headers = hyper::HeaderMap::new();
        let second_probe = app.respond_to(&Method::GET, "/probe", Some("target=slow"), &headers).await;
        assert_eq!(second_probe.status(), StatusCode::SERVICE_UNAVAILABLE, "the probe pool is full");
        let metrics = app.respond(&Method::GET, "/metrics", &headers).await;
        assert_eq!(metrics.status(), StatusCode::OK, "a busy probe pool leaves /metrics alone");
        assert_eq!(probe.await.expect("joined").status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn other_methods_are_refused_and_head_has_no_body() {
        use http_body_util::BodyExt;
        let app = App::new(ScrapeEngine::new(Vec::new(), BudgetPolicy::default()), "/metrics".into(), 0);
        let post = app.respond(&Method::POST, "/metrics", &hyper::HeaderMap::new()).await;
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        let head = app.respond(&Method::HEAD, "/metrics", &hyper::HeaderMap::new()).await;
        assert_eq!(head.status(), StatusCode::OK);
        let body = head.into_body().collect().await.expect("body").to_bytes();
        assert!(body.is_empty());
    }

    fn value(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    #[test]
    fn negotiates_openmetrics_like_prometheus_asks() {
        assert!(wants_openmetrics(Some(&value(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ))));
        assert!(!wants_openmetrics(Some(&value("text/plain;version=0.0.4"))));
        assert!(!wants_openmetrics(Some(&value("application/openmetrics-text;q=0"))));
        assert!(!wants_openmetrics(None));
    }

    #[test]
    fn gzip_only_when_allowed() {
        assert!(accepts_gzip(Some(&value("gzip"))));
        assert!(accepts_gzip(Some(&value("br;q=1.0, gzip;q=0.8, *;q=0.1"))));
        assert!(!accepts_gzip(Some(&value("gzip;q=0, identity"))));
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let compressed = gzip(b"node_load1 0.5\n").expect("compresses");
        let mut out = String::new();
        flate2::read::GzDecoder::new(&compressed[..]).read_to_string(&mut out).expect("decompresses");
        assert_eq!(out, "node_load1 0.5\n");
    }

    #[test]
    fn gzip_reuses_its_state_and_grows_its_buffer() {
        use std::io::Read;
        let unzip = |bytes: &[u8]| {
            let mut out = Vec::new();
            let mut decoder = flate2::read::GzDecoder::new(bytes);
            decoder.read_to_end(&mut out).expect("decompresses");
            out
        };
        // Text that compresses well, and bytes that barely compress (the
        // output outgrows its first capacity), and nothing at all.
        let text: Vec<u8> = (0..5000)
            .flat_map(|i| format!("node_cpu_seconds_total{{cpu=\"{i}\"}} {i}.5\n").into_bytes())
            .collect();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let noise: Vec<u8> = (0..300_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        for data in [&text[..], &noise[..], b"", &text[..]] {
            let compressed = gzip(data).expect("compresses");
            assert_eq!(unzip(&compressed), data);
            assert_eq!(gzip(data).expect("compresses"), compressed, "the reused state starts afresh");
        }
        assert!(gzip(&text).expect("compresses").len() < text.len() / 4);
        // A scrape that finds the shared state busy compresses with its own.
        let busy = DEFLATE.lock().expect("not poisoned");
        assert_eq!(unzip(&gzip(&text).expect("compresses")), text);
        drop(busy);
    }
}
