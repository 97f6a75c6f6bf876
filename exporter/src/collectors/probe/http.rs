//! One HTTP probe, blackbox_exporter style: a fresh connection per request,
//! driven by hand (resolve with `lookup_host`, `TcpStream::connect`, the
//! rustls handshake, hyper's HTTP/1.1 connection) so that each phase can be
//! timed, redirects followed and counted, and the body capped.
//!
//! Phases, summed over redirects as blackbox does: `resolve` (name lookup, 0
//! for an IP address), `connect` (TCP), `tls` (the handshake only — blackbox
//! also counts the TCP connect here), `processing` (request written until the
//! response head) and `transfer` (the body). A phase cut short by the deadline
//! or an error adds nothing.
//!
//! A [`ReadPlan`] may ask for part of a large object: a `Range` header, and a
//! read limit after which the body is dropped (connection closed) and the
//! probe judged on what arrived, so a CDN video is not downloaded in full.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Body as _;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use url::{Host, Url};

use super::config::{AllowedTarget, ByteRange, ModuleConfig, allowed};
use super::x509;

/// Redirects followed at most, as blackbox (Go's client) does.
pub const MAX_REDIRECTS: u32 = 10;

/// `phase` label values, in the order of [`Outcome::phases`].
pub const PHASES: [&str; 5] = ["resolve", "connect", "tls", "processing", "transfer"];
const RESOLVE: usize = 0;
const CONNECT: usize = 1;
const TLS: usize = 2;
const PROCESSING: usize = 3;
const TRANSFER: usize = 4;

const USER_AGENT: &str = concat!("opsmon-exporter/", env!("CARGO_PKG_VERSION"));

/// What one probe found; every field has a value even when the probe failed
/// early, so the families are complete on every scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Status acceptable, body within its cap, regexes satisfied.
    pub success: bool,
    /// Wall time of the whole probe.
    pub duration: f64,
    /// Name lookup of the first request.
    pub dns_lookup: f64,
    /// Seconds per phase, see [`PHASES`].
    pub phases: [f64; 5],
    /// Final status code; 0 without a response.
    pub status: u16,
    /// Final HTTP version (1.1, 1.0); 0 without a response.
    pub version: f64,
    /// Final `Content-Length`, -1 when absent, 0 without a response.
    pub content_length: f64,
    /// Redirects followed (plus the refused one when not following).
    pub redirects: u32,
    /// A body regex made the probe fail.
    pub failed_due_to_regex: bool,
    /// Earliest `notAfter` in the chain of the final TLS connection.
    pub cert_expiry: Option<f64>,
    /// What the CDN families need, when the module classifies a cache header
    /// and a final response arrived.
    pub cdn: Option<CdnObservation>,
    /// Body bytes read from the final response.
    pub body_bytes: u64,
    /// Reading stopped at the read limit before the body ended.
    pub body_truncated: bool,
    /// Why the probe failed, for the log.
    pub error: Option<String>,
}

/// The final response as the CDN families see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CdnObservation {
    /// Value of the cache-status header, if present.
    pub cache_status: Option<String>,
    /// `Age` in seconds, if present and valid.
    pub age: Option<f64>,
    /// Body bytes per second of transfer; `None` when the body could not be read.
    pub throughput: Option<f64>,
}

/// What a probe asks for of the body, beyond its module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadPlan {
    /// Read at most this many body bytes, then stop; the probe is judged on
    /// the status, headers and bytes read. `None`: the module's
    /// `body_size_limit`, past which the probe fails.
    pub read_limit: Option<u64>,
    /// Sent as the `Range` header; a 206 answer is then acceptable.
    pub range: Option<ByteRange>,
}

/// TLS client settings, built on first use: loading the system's roots costs
/// a few milliseconds and some memory that plain-HTTP probes never need.
#[derive(Debug, Default)]
pub struct TlsConfigs {
    verified: tokio::sync::OnceCell<Arc<ClientConfig>>,
    insecure: tokio::sync::OnceCell<Arc<ClientConfig>>,
}

impl TlsConfigs {
    async fn get(&self, insecure_skip_verify: bool) -> Result<Arc<ClientConfig>, String> {
        let cell = if insecure_skip_verify { &self.insecure } else { &self.verified };
        let config = cell
            .get_or_try_init(|| async move {
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("TLS set-up: {e}"))?;
                let mut config = if insecure_skip_verify {
                    builder
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                        .with_no_client_auth()
                } else {
                    let roots = crate::collectors::collector::blocking(system_roots)
                        .await
                        .map_err(|e| e.to_string())?;
                    builder.with_root_certificates(roots).with_no_client_auth()
                };
                // We speak HTTP/1.1 only; without ALPN a server could pick h2.
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Ok::<_, String>(Arc::new(config))
            })
            .await?;
        Ok(Arc::clone(config))
    }
}

/// The system's trust anchors, as blackbox (Go) uses them.
fn system_roots() -> rustls::RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "cannot read some system CA certificates");
    }
    let mut roots = rustls::RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!(ignored, "no system CA certificates found; verified HTTPS probes will fail");
    }
    roots
}

/// `insecure_skip_verify`: any certificate is accepted, but the handshake's
/// signatures are still checked so that the connection is a real TLS session.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Aborts the task driving a connection when the probe is done with it (or is
/// dropped at its deadline), which closes the socket: a server that never
/// answers cannot keep it open.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Probes `url` with `module` until `deadline`. With `allowed`, every request
/// (redirects included) must go to a host on that list.
pub async fn probe(
    tls: &TlsConfigs,
    url: &Url,
    module: &ModuleConfig,
    plan: &ReadPlan,
    allowed_targets: Option<&[AllowedTarget]>,
    deadline: Instant,
) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome::default();
    let mut stage = "starting";
    let result = tokio::time::timeout_at(
        deadline,
        run(tls, url, module, plan, allowed_targets, &mut outcome, &mut stage),
    )
    .await;
    match result {
        Ok(Ok(())) => outcome.success = true,
        Ok(Err(error)) => outcome.error = Some(error),
        Err(_) => {
            outcome.error =
                Some(format!("timed out after {:.3}s while {stage}", started.elapsed().as_secs_f64()));
        }
    }
    outcome.duration = started.elapsed().as_secs_f64();
    outcome
}

async fn run(
    tls: &TlsConfigs,
    start: &Url,
    module: &ModuleConfig,
    plan: &ReadPlan,
    allowed_targets: Option<&[AllowedTarget]>,
    outcome: &mut Outcome,
    stage: &mut &'static str,
) -> Result<(), String> {
    let mut url = start.clone();
    let mut method = module.method.0.clone();
    let mut hop = 0u32;
    loop {
        if let Some(list) = allowed_targets
            && !allowed(list, &url)
        {
            return Err("redirected to a target not allowed by collectors.probe.allowed_targets".into());
        }
        let host = url.host().ok_or("the URL has no host")?;
        let port = url.port_or_known_default().ok_or("the URL has no port")?;

        *stage = "resolving";
        // An IP address needs no lookup: its resolve phase is exactly 0.
        let (addresses, lookup): (Vec<SocketAddr>, f64) = match host {
            Host::Ipv4(ip) => (vec![SocketAddr::new(IpAddr::V4(ip), port)], 0.0),
            Host::Ipv6(ip) => (vec![SocketAddr::new(IpAddr::V6(ip), port)], 0.0),
            Host::Domain(name) => {
                let began = Instant::now();
                let found = tokio::net::lookup_host((name, port))
                    .await
                    .map_err(|e| format!("resolving {name}: {e}"))?
                    .collect();
                (found, began.elapsed().as_secs_f64())
            }
        };
        outcome.phases[RESOLVE] += lookup;
        if hop == 0 {
            outcome.dns_lookup = lookup;
        }

        *stage = "connecting";
        let began = Instant::now();
        let stream = connect(&addresses).await?;
        outcome.phases[CONNECT] += began.elapsed().as_secs_f64();

        let request = build_request(&url, &method, module, plan)?;
        let (response, connection, head_at) = if url.scheme() == "https" {
            let config = tls.get(module.insecure_skip_verify).await?;
            *stage = "in the TLS handshake";
            let began = Instant::now();
            let name = server_name(&host)?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS handshake with {}: {e}", url.host_str().unwrap_or_default()))?;
            outcome.phases[TLS] += began.elapsed().as_secs_f64();
            outcome.cert_expiry = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.iter().filter_map(|cert| x509::not_after(cert)).min())
                .map(|seconds| seconds as f64);
            *stage = "waiting for the response";
            exchange(stream, request, &mut outcome.phases).await?
        } else {
            outcome.cert_expiry = None;
            *stage = "waiting for the response";
            exchange(stream, request, &mut outcome.phases).await?
        };

        let status = response.status();
        let location = status
            .is_redirection()
            .then(|| response.headers().get(header::LOCATION))
            .flatten()
            .and_then(|value| value.to_str().ok());
        if let Some(location) = location {
            if module.follow_redirects && hop < MAX_REDIRECTS {
                let next = url
                    .join(location)
                    .ok()
                    .filter(|next| matches!(next.scheme(), "http" | "https") && next.host().is_some())
                    .ok_or_else(|| format!("redirect with an unusable Location {location:?}"))?;
                hop += 1;
                outcome.redirects = hop;
                method = redirect_method(status, method);
                url = next;
                drop((response, connection));
                continue;
            }
            // Like blackbox: the redirect that was not followed is counted too.
            outcome.redirects = hop + 1;
        }
        *stage = "reading the body";
        return finish(response, connection, head_at, module, plan, outcome).await;
    }
}

/// Connects to the first address that accepts.
async fn connect(addresses: &[SocketAddr]) -> Result<TcpStream, String> {
    let mut last_error = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(error) => last_error = Some(format!("connecting to {address}: {error}")),
        }
    }
    Err(last_error.unwrap_or_else(|| "the host name resolved to no address".into()))
}

fn server_name(host: &Host<&str>) -> Result<ServerName<'static>, String> {
    match host {
        Host::Domain(name) => ServerName::try_from(name.to_string())
            .map_err(|e| format!("{name:?} is not a valid TLS server name: {e}")),
        Host::Ipv4(ip) => Ok(ServerName::IpAddress(IpAddr::V4(*ip).into())),
        Host::Ipv6(ip) => Ok(ServerName::IpAddress(IpAddr::V6(*ip).into())),
    }
}

/// Go's client (and so blackbox) turns POST into GET on 301/302, and anything
/// but HEAD into GET on 303.
fn redirect_method(status: StatusCode, method: Method) -> Method {
    match status.as_u16() {
        301 | 302 if method == Method::POST => Method::GET,
        303 if method != Method::HEAD => Method::GET,
        _ => method,
    }
}

fn build_request(
    url: &Url,
    method: &Method,
    module: &ModuleConfig,
    plan: &ReadPlan,
) -> Result<Request<Empty<Bytes>>, String> {
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let authority = &url[url::Position::BeforeHost..url::Position::AfterPort];
    let mut request = Request::builder()
        .method(method.clone())
        .uri(if target.is_empty() { "/" } else { target })
        .body(Empty::new())
        .map_err(|e| format!("building the request: {e}"))?;
    let headers = request.headers_mut();
    headers.insert(
        header::HOST,
        HeaderValue::from_str(authority).map_err(|_| format!("{authority:?} is not a valid Host header"))?,
    );
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    // The module's headers win, `Host` included, as in blackbox.
    for (name, value) in &module.headers.0 {
        headers.insert(name.clone(), value.clone());
    }
    // The target's range is more specific than its module's headers.
    if let Some(range) = &plan.range {
        headers.insert(header::RANGE, range.0.clone());
    }
    Ok(request)
}

/// Sends `request` over a fresh HTTP/1.1 connection on `io`; returns the
/// response head, the connection's driver and when the head arrived.
async fn exchange<IO>(
    io: IO,
    request: Request<Empty<Bytes>>,
    phases: &mut [f64; 5],
) -> Result<(Response<hyper::body::Incoming>, AbortOnDrop, Instant), String>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let began = Instant::now();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("starting HTTP/1.1: {e}"))?;
    let driver = AbortOnDrop(tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "probe connection ended with an error");
        }
    }));
    let response = sender.send_request(request).await.map_err(|e| format!("HTTP request: {e}"))?;
    let head_at = Instant::now();
    phases[PROCESSING] += head_at.duration_since(began).as_secs_f64();
    Ok((response, driver, head_at))
}

/// Reads the final response: status, version, length, CDN headers, then the
/// body up to the plan's read limit or `body_size_limit`, then the status and
/// regex verdicts.
async fn finish(
    response: Response<hyper::body::Incoming>,
    connection: AbortOnDrop,
    head_at: Instant,
    module: &ModuleConfig,
    plan: &ReadPlan,
    outcome: &mut Outcome,
) -> Result<(), String> {
    let status = response.status();
    outcome.status = status.as_u16();
    outcome.version = match response.version() {
        Version::HTTP_09 => 0.9,
        Version::HTTP_10 => 1.0,
        Version::HTTP_11 => 1.1,
        Version::HTTP_2 => 2.0,
        Version::HTTP_3 => 3.0,
        _ => 0.0,
    };
    let header_text = |name: &header::HeaderName| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    // Go reports an unknown length (chunked, or up to the close) as -1, and 0
    // for the statuses that never have a body.
    let bodiless = status.is_informational() || matches!(status.as_u16(), 204 | 304);
    outcome.content_length = header_text(&header::CONTENT_LENGTH)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(if bodiless { 0.0 } else { -1.0 });
    if let Some(cache_header) = &module.cache_status_header {
        outcome.cdn = Some(CdnObservation {
            cache_status: header_text(&cache_header.0),
            age: super::cdn::parse_age(header_text(&header::AGE).as_deref()),
            throughput: None,
        });
    }

    let partial_asked = plan.range.is_some() && status == StatusCode::PARTIAL_CONTENT;
    let status_ok = if module.valid_status_codes.is_empty() {
        status.is_success()
    } else {
        partial_asked || module.valid_status_codes.iter().any(|code| code.0 == status.as_u16())
    };
    // Like blackbox, the body is matched only when the status is acceptable.
    let check_body = status_ok
        && !(module.fail_if_body_matches_regexp.is_empty()
            && module.fail_if_body_not_matches_regexp.is_empty());
    let mut body = response.into_body();
    let mut kept = Vec::new();
    let mut received: u64 = 0;
    let mut capped = false;
    match plan.read_limit {
        // Stop at the limit: what was read is the sample; the rest stays on the server.
        Some(limit) => {
            while received < limit
                && let Some(frame) = body.frame().await
            {
                let frame = frame.map_err(|e| format!("reading the body: {e}"))?;
                let Ok(data) = frame.into_data() else { continue };
                let wanted = usize::try_from(limit - received).unwrap_or(usize::MAX).min(data.len());
                received += wanted as u64;
                if check_body {
                    kept.extend_from_slice(&data[..wanted]);
                }
                if wanted < data.len() {
                    outcome.body_truncated = true;
                }
            }
            if received >= limit && !body.is_end_stream() {
                outcome.body_truncated = true;
            }
        }
        // blackbox's body_size_limit: a larger body fails the probe.
        None => {
            let limit = module.body_size_limit.0;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| format!("reading the body: {e}"))?;
                let Ok(data) = frame.into_data() else { continue };
                received += data.len() as u64;
                if received > limit {
                    capped = true;
                    break;
                }
                if check_body {
                    kept.extend_from_slice(&data);
                }
            }
        }
    }
    outcome.body_bytes = received;
    let transfer = head_at.elapsed().as_secs_f64();
    outcome.phases[TRANSFER] += transfer;
    drop(body);
    drop(connection);
    if let Some(cdn) = &mut outcome.cdn {
        cdn.throughput = Some(if transfer > 0.0 { received as f64 / transfer } else { 0.0 });
    }

    if capped {
        return Err(format!(
            "the body is larger than body_size_limit ({} bytes); stopped reading",
            module.body_size_limit.0
        ));
    }
    if !status_ok {
        return Err(if module.valid_status_codes.is_empty() {
            format!("status {} is not 2xx", status.as_u16())
        } else {
            format!("status {} is not in valid_status_codes", status.as_u16())
        });
    }
    if check_body {
        let text = String::from_utf8_lossy(&kept);
        if let Some(regex) = module.fail_if_body_matches_regexp.iter().find(|r| r.0.is_match(&text)) {
            outcome.failed_due_to_regex = true;
            return Err(format!("the body matches fail_if_body_matches_regexp {:?}", regex.0.as_str()));
        }
        if let Some(regex) = module.fail_if_body_not_matches_regexp.iter().find(|r| !r.0.is_match(&text)) {
            outcome.failed_due_to_regex = true;
            return Err(format!(
                "the body does not match fail_if_body_not_matches_regexp {:?}",
                regex.0.as_str()
            ));
        }
    }
    Ok(())
}
