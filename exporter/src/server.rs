//! HTTP serving with hyper 1.x: the telemetry path (Prometheus text 0.0.4 or
//! OpenMetrics by `Accept`, gzip by `Accept-Encoding`), a landing page,
//! health and readiness, a cap on concurrent scrapes, and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::collectors::Collector;
use crate::scrape::{SCRAPE_TIMEOUT_HEADER, ScrapeEngine};

/// Prometheus text exposition format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// OpenMetrics 1.0 text format.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What every request handler shares.
pub struct App {
    engine: ScrapeEngine,
    targets: std::collections::BTreeMap<String, Arc<dyn Collector>>,
    prober: Option<Arc<crate::collectors::probe::ProbeCollector>>,
    telemetry_path: String,
    scrape_slots: Option<Arc<Semaphore>>,
    max_requests: usize,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("engine", &self.engine)
            .field("targets", &self.targets.keys().collect::<Vec<_>>())
            .field("telemetry_path", &self.telemetry_path)
            .field("max_requests", &self.max_requests)
            .finish()
    }
}

impl App {
    /// `max_requests == 0` means no limit on concurrent scrapes.
    pub fn new(engine: ScrapeEngine, telemetry_path: String, max_requests: usize) -> Self {
        let scrape_slots = (max_requests > 0).then(|| Arc::new(Semaphore::new(max_requests)));
        Self { engine, targets: Default::default(), prober: None, telemetry_path, scrape_slots, max_requests }
    }

    /// Adds the named targets `/probe?target=NAME` serves.
    pub fn with_targets(mut self, targets: std::collections::BTreeMap<String, Arc<dyn Collector>>) -> Self {
        self.targets = targets;
        self
    }

    /// Adds the probe modules `/probe?target=URL&module=NAME` uses.
    pub fn with_prober(mut self, prober: Option<Arc<crate::collectors::probe::ProbeCollector>>) -> Self {
        self.prober = prober;
        self
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
        if method != Method::GET && method != Method::HEAD {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are supported\n");
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let mut response = match path {
            path if path == self.telemetry_path => self.metrics(headers, None).await,
            "/probe" => match self.probe_target(query) {
                Ok(collector) => self.metrics(headers, Some(collector)).await,
                Err(message) => text(StatusCode::BAD_REQUEST, &message),
            },
            "/" => self.landing_page(),
            "/-/healthy" => text(StatusCode::OK, "Healthy\n"),
            "/-/ready" => text(StatusCode::OK, "Ready\n"),
            _ => text(StatusCode::NOT_FOUND, "not found; see / for the endpoints\n"),
        };
        if method == Method::HEAD {
            *response.body_mut() = Full::new(Bytes::new());
        }
        response
    }

    /// The collector `/probe?target=NAME` asks for, or why the request is refused.
    fn probe_target(&self, query: Option<&str>) -> Result<Arc<dyn Collector>, String> {
        let mut target = None;
        let mut module = None;
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "target" => target = Some(value.into_owned()),
                "module" => module = Some(value.into_owned()),
                other => {
                    return Err(format!(
                        "unknown parameter {other:?}; /probe takes target=NAME, or target=URL&module=NAME for an HTTP probe (credentials are never accepted in the URL)\n"
                    ));
                }
            }
        }
        // With a module it is an HTTP probe of a URL, as in blackbox_exporter.
        if let Some(module) = module {
            let Some(prober) = &self.prober else {
                return Err("the probe collector is not available\n".into());
            };
            let Some(target) = target else {
                return Err(format!(
                    "missing target=URL; configured modules: {}\n",
                    prober.module_names().join(", ")
                ));
            };
            return prober.one_off(&target, &module);
        }
        let known = || {
            if self.targets.is_empty() {
                "none are configured".to_owned()
            } else {
                format!("configured targets: {}", self.targets.keys().cloned().collect::<Vec<_>>().join(", "))
            }
        };
        let Some(target) = target else {
            return Err(format!("missing target=NAME; {}\n", known()));
        };
        match self.targets.get(&target) {
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
        headers: &hyper::HeaderMap,
        only: Option<Arc<dyn Collector>>,
    ) -> Response<Full<Bytes>> {
        let _slot = match &self.scrape_slots {
            Some(slots) => match Arc::clone(slots).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    tracing::warn!(limit = self.max_requests, "too many concurrent scrapes; answered 503");
                    return text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &format!(
                            "too many concurrent scrapes (limit {}, --web.max-requests)\n",
                            self.max_requests
                        ),
                    );
                }
            },
            None => None,
        };
        let header_value = headers.get(SCRAPE_TIMEOUT_HEADER).and_then(|v| v.to_str().ok());
        let budget = self.engine.policy().budget(header_value);
        let metrics = match only {
            Some(collector) => self.engine.scrape_with(&[collector], budget).await,
            None => self.engine.scrape(budget).await,
        };

        let openmetrics = wants_openmetrics(headers.get(header::ACCEPT));
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

    fn landing_page(&self) -> Response<Full<Bytes>> {
        let collectors: String =
            self.engine.collector_names().iter().map(|name| format!("<li>{name}</li>")).collect();
        let page = format!(
            "<!DOCTYPE html>\n<html><head><title>opsmon-exporter</title></head><body>\n\
             <h1>opsmon-exporter {version}</h1>\n\
             <ul><li><a href=\"{path}\">{path}</a> — metrics (Prometheus text, OpenMetrics by Accept, gzip)</li>\n\
             <li>/probe?target=NAME — one configured target ({targets})</li>\n\
             <li>/probe?target=URL&amp;module=NAME — one HTTP probe, blackbox_exporter style</li>\n\
             <li><a href=\"/-/healthy\">/-/healthy</a> — liveness</li>\n\
             <li><a href=\"/-/ready\">/-/ready</a> — readiness</li></ul>\n\
             <h2>Enabled collectors</h2><ul>{collectors}</ul>\n</body></html>\n",
            version = env!("CARGO_PKG_VERSION"),
            path = self.telemetry_path,
            targets = if self.targets.is_empty() {
                "none configured".to_owned()
            } else {
                self.targets.keys().cloned().collect::<Vec<_>>().join(", ")
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

fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4), flate2::Compression::fast());
    encoder.write_all(data).ok()?;
    encoder.finish().ok()
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
    let (conn_tx, mut conn_rx) = tokio::sync::mpsc::channel::<tokio::net::TcpStream>(64);
    let mut acceptors = tokio::task::JoinSet::new();
    for listener in listeners {
        let conn_tx = conn_tx.clone();
        acceptors.spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _peer)) => {
                        if conn_tx.send(stream).await.is_err() {
                            break;
                        }
                    }
                    // Out of file descriptors and the like: back off, keep serving.
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }
    drop(conn_tx);

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            stream = conn_rx.recv() => {
                let Some(stream) = stream else { break };
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                let service = hyper::service::service_fn(move |request| {
                    let app = Arc::clone(&app);
                    async move { Ok::<_, Infallible>(app.handle(request).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "connection closed with an error");
                    }
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
}
