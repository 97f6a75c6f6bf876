//! HTTP side of the bench: one scrape over a keep-alive hyper client (timed
//! from sending the request to the last body byte), plain or asking for gzip
//! as Prometheus does, waiting for a target to come up, and the
//! fixed-duration concurrent load phase.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Keep-alive HTTP/1.1 client. One per target for the sequential phase, one
/// per simulated Prometheus in the load phase, so each holds its own connection.
pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

pub fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(90)).build(connector)
}

/// Result of one scrape that got an HTTP response.
#[derive(Debug)]
pub struct Scrape {
    pub status: StatusCode,
    /// The body as it came over the wire (compressed when `gzipped`).
    pub body: Bytes,
    /// The answer carried `Content-Encoding: gzip`.
    pub gzipped: bool,
    /// Request sent → whole body received.
    pub elapsed: Duration,
}

impl Scrape {
    /// The exposition text, decompressed if it came gzipped.
    pub fn text(&self) -> Result<String> {
        if !self.gzipped {
            return Ok(String::from_utf8_lossy(&self.body).into_owned());
        }
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&self.body[..]), &mut raw)
            .context("the gzip body does not decompress")?;
        Ok(String::from_utf8_lossy(&raw).into_owned())
    }
}

/// What a scrape asks for in `Accept-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No `Accept-Encoding`: the payload comes uncompressed.
    Plain,
    /// `Accept-Encoding: gzip`, what Prometheus sends on every scrape.
    Gzip,
}

impl Encoding {
    pub fn label(self) -> &'static str {
        match self {
            Encoding::Plain => "plain",
            Encoding::Gzip => "gzip",
        }
    }
}

/// GETs `uri` without `Accept-Encoding` (so the payload is uncompressed), with
/// an overall `timeout` covering headers and body.
pub async fn scrape(client: &HttpClient, uri: &Uri, timeout: Duration) -> Result<Scrape> {
    scrape_as(client, uri, timeout, Encoding::Plain).await
}

/// [`scrape`] asking for `encoding`; the body is kept as received.
pub async fn scrape_as(
    client: &HttpClient,
    uri: &Uri,
    timeout: Duration,
    encoding: Encoding,
) -> Result<Scrape> {
    let mut req = Request::get(uri.clone())
        .header(hyper::header::USER_AGENT, "opsmon-bench")
        .header(hyper::header::ACCEPT, "text/plain; version=0.0.4");
    if encoding == Encoding::Gzip {
        req = req.header(hyper::header::ACCEPT_ENCODING, "gzip");
    }
    let req = req.body(Empty::<Bytes>::new())?;
    let start = Instant::now();
    let fut = async {
        let resp = client.request(req).await?;
        let status = resp.status();
        let gzipped = resp
            .headers()
            .get(hyper::header::CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let body = resp.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, gzipped, body))
    };
    let (status, gzipped, body) = tokio::time::timeout(timeout, fut)
        .await
        .with_context(|| format!("GET {uri}: no complete response within {timeout:?}"))?
        .with_context(|| format!("GET {uri}"))?;
    Ok(Scrape { status, body, gzipped, elapsed: start.elapsed() })
}

/// Polls `uri` until it answers 200, for at most `limit`. `alive` is called
/// between attempts and should error if the process behind it died.
pub async fn wait_ready(
    client: &HttpClient,
    uri: &Uri,
    limit: Duration,
    mut alive: impl FnMut() -> Result<()>,
) -> Result<Duration> {
    let start = Instant::now();
    let mut last = String::from("no attempt");
    while start.elapsed() < limit {
        alive()?;
        match scrape(client, uri, Duration::from_secs(10)).await {
            Ok(s) if s.status == StatusCode::OK => return Ok(start.elapsed()),
            Ok(s) => last = format!("HTTP {}", s.status),
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{uri} not ready after {limit:?}; last attempt: {last}")
}

/// Outcome of the concurrent load phase against one target.
#[derive(Debug, Default)]
pub struct Load {
    /// Scrapes answered 200 with a complete body.
    pub ok: u64,
    /// Transport errors, time-outs and non-200 answers.
    pub errors: u64,
    /// From start until the last client finished its last request.
    pub elapsed: Duration,
    pub first_error: Option<String>,
}

impl Load {
    pub fn req_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.ok as f64 / secs } else { 0.0 }
    }
}

/// `clients` concurrent scrapers, each with its own keep-alive connection,
/// scraping back to back until `duration` has passed. Every client finishes
/// the request it has in flight, so `elapsed` slightly exceeds `duration`.
pub async fn load(
    uri: &Uri,
    clients: usize,
    duration: Duration,
    timeout: Duration,
    encoding: Encoding,
) -> Load {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let uri = uri.clone();
        tasks.spawn(async move {
            let client = client();
            let mut part = Load::default();
            while Instant::now() < deadline {
                let err = match scrape_as(&client, &uri, timeout, encoding).await {
                    Ok(s) if s.status == StatusCode::OK => {
                        part.ok += 1;
                        continue;
                    }
                    Ok(s) => format!("HTTP {}", s.status),
                    Err(e) => format!("{e:#}"),
                };
                part.errors += 1;
                part.first_error.get_or_insert(err);
                // Don't spin on a refused connection.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            part
        });
    }
    let mut total = Load::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(part) => {
                total.ok += part.ok;
                total.errors += part.errors;
                if total.first_error.is_none() {
                    total.first_error = part.first_error;
                }
            }
            Err(e) => {
                total.errors += 1;
                total.first_error.get_or_insert(format!("client task: {e}"));
            }
        }
    }
    total.elapsed = start.elapsed();
    total
}

/// Value of the first sample of `metric` (with or without labels) in a text exposition.
pub fn sample_value(body: &str, metric: &str) -> Option<f64> {
    body.lines().find_map(|line| {
        let rest = line.strip_prefix(metric)?;
        let value = if rest.starts_with('{') {
            rest.rsplit_once('}')?.1
        } else if rest.starts_with(' ') {
            rest
        } else {
            return None;
        };
        value.split_whitespace().next()?.parse().ok()
    })
}
