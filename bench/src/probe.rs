//! The probe benchmark (`--probe`): opsmon-exporter's `/probe?target=URL&module=http_2xx`
//! against blackbox_exporter's, both probing the same static HTTP target.
//!
//! The target is a tiny hyper server inside the bench process, on a thread of
//! its own (a current-thread tokio runtime), so its CPU can be read from
//! `/proc/self/task/TID/stat` apart from the load generator's: it answers every
//! request with 200 and the same ~2 KB HTML page. Each probe opens a fresh TCP
//! connection to it (both exporters do, as blackbox_exporter always has), so
//! the server's own CPU is per probe too and counted for neither exporter.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::procfs;
use crate::scrape::{HttpClient, sample_value};
use crate::target::{Fleet, Launch, Target, config_check};
use crate::{Args, Plan, bring_up};

pub const OURS: &str = "opsmon-exporter";
pub const BLACKBOX: &str = "blackbox_exporter";
/// The module probed, built into opsmon-exporter and configured for blackbox_exporter.
pub const MODULE: &str = "http_2xx";
/// Size of the static target's page.
pub const PAGE_BYTES: usize = 2048;

/// opsmon-exporter's config: the host collector off, nothing else configured
/// (the built-in `http_2xx` module and the loopback-only `allowed_targets`
/// default are all `/probe?target=URL&module=http_2xx` needs).
pub const OPSMON_CONFIG: &str = "collectors:\n  host:\n    enabled: false\n";

/// blackbox_exporter's config: the usual `http_2xx` module, IPv4 first.
pub const BLACKBOX_CONFIG: &str = "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      \
                                   preferred_ip_protocol: ip4\n";

/// Path and query both exporters are scraped on, probing `target`.
pub fn probe_path(target: SocketAddr) -> String {
    format!("/probe?target=http://{target}/&module={MODULE}")
}

/// A plausible HTML page of exactly `size` bytes (at least the skeleton's,
/// about 200): a title, a heading and paragraphs of filler text.
pub fn static_page(size: usize) -> String {
    const HEAD: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
                        <title>opsmon-bench static target</title>\n</head>\n<body>\n\
                        <h1>opsmon-bench static target</h1>\n";
    const TAIL: &str = "</body>\n</html>\n";
    const PARA: &str = "<p>This page is what both exporters probe: a fixed body, status 200, \
                        served from memory by the bench itself.</p>\n";
    let mut page = String::from(HEAD);
    while page.len() + PARA.len() + TAIL.len() <= size {
        page.push_str(PARA);
    }
    // Pad the last bit with an HTML comment (or spaces if even that is too long).
    let room = size.saturating_sub(page.len() + TAIL.len());
    if room >= "<!---->\n".len() {
        page.push_str("<!--");
        page.push_str(&" ".repeat(room - "<!---->\n".len()));
        page.push_str("-->\n");
    } else {
        page.push_str(&" ".repeat(room));
    }
    page.push_str(TAIL);
    page
}

/// The thread id in a `/proc/thread-self` link target, `PID/task/TID`.
pub fn tid_from_thread_self(link: &Path) -> Option<u32> {
    let mut parts = link.iter().map(|p| p.to_str());
    let (_pid, task, tid) = (parts.next()??, parts.next()??, parts.next()??);
    (task == "task" && parts.next().is_none()).then_some(())?;
    tid.parse().ok()
}

/// Whether a probe's body says `probe_success 1`.
pub fn succeeded(body: &[u8]) -> bool {
    sample_value(&String::from_utf8_lossy(body), "probe_success") == Some(1.0)
}

/// Checks that a probe's body says `probe_success 1` (with or without labels);
/// otherwise errors with the body's other `probe_*` samples, which say why.
pub fn check_probe_success(body: &str, who: &str, url: &str) -> Result<()> {
    match sample_value(body, "probe_success") {
        Some(1.0) => Ok(()),
        found => {
            let context: Vec<&str> =
                body.lines().filter(|l| l.starts_with("probe_") && !l.starts_with('#')).take(15).collect();
            bail!(
                "{who}: probe of {url} answered {}, not probe_success 1; its probe_* samples:\n{}",
                found.map_or_else(|| "no probe_success".to_owned(), |v| format!("probe_success {v}")),
                context.join("\n")
            )
        }
    }
}

/// What the measurement loop reads from the static target: its thread's CPU
/// and the requests it has answered.
#[derive(Debug, Clone)]
pub struct StaticTarget {
    pub addr: SocketAddr,
    tid: u32,
    requests: Arc<AtomicU64>,
}

impl StaticTarget {
    /// CPU ticks (utime + stime) of the server's thread so far.
    pub fn cpu_ticks(&self) -> Result<u64> {
        procfs::thread_cpu_ticks(self.tid)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// Owns the static server's thread: dropping it stops the server and joins the thread.
#[derive(Debug)]
pub struct StaticServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the static server on a free loopback port, on its own thread.
pub fn start_static_server(page: Bytes) -> Result<(StaticServer, StaticTarget)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let requests = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<u32, String>>();
    let counter = Arc::clone(&requests);
    let thread = std::thread::Builder::new()
        .name("bench-static".into())
        .spawn(move || {
            let tid = std::fs::read_link("/proc/thread-self")
                .ok()
                .and_then(|l| tid_from_thread_self(&l))
                .ok_or_else(|| "cannot read this thread's id from /proc/thread-self".to_owned());
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let runtime = match (tid, runtime) {
                (Ok(tid), Ok(rt)) => {
                    let _ = ready_tx.send(Ok(tid));
                    rt
                }
                (Err(e), _) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
                (_, Err(e)) => {
                    let _ = ready_tx.send(Err(format!("tokio runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(serve(listener, page, counter, stop_rx));
        })
        .context("starting the static server's thread")?;
    let server = StaticServer { stop: Some(stop_tx), thread: Some(thread) };
    let tid = ready_rx
        .recv()
        .map_err(|_| anyhow!("the static server's thread exited before starting"))?
        .map_err(|e| anyhow!("static server: {e}"))?;
    Ok((server, StaticTarget { addr, tid, requests }))
}

async fn serve(
    listener: std::net::TcpListener,
    page: Bytes,
    requests: Arc<AtomicU64>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("opsmon-bench: static server: {e}");
            return;
        }
    };
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning.
                    eprintln!("opsmon-bench: static server: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (page, requests) = (page.clone(), Arc::clone(&requests));
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
                requests.fetch_add(1, Ordering::Relaxed);
                let mut response = Response::new(Full::new(page.clone()));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// What [`setup`] started, ready to measure.
#[derive(Debug)]
pub struct Setup {
    /// opsmon-exporter, then blackbox_exporter.
    pub targets: Vec<Target>,
    pub target: StaticTarget,
    /// Lines for the report header.
    pub header: Vec<String>,
}

/// Starts the static target and both exporters, and checks that the first
/// probe of each succeeds.
pub async fn setup(args: &Args, fleet: &mut Fleet, http: &HttpClient, plan: &Plan) -> Result<Setup> {
    let exporter = std::env::current_dir()?.join(&args.exporter);
    ensure!(exporter.exists(), "{OURS}: {} not found (build it or pass --exporter)", exporter.display());
    ensure!(
        args.blackbox_exporter.exists(),
        "{BLACKBOX}: {} not found (install prometheus-blackbox-exporter — bench/run.sh --probe does — \
         or pass --blackbox-exporter)",
        args.blackbox_exporter.display()
    );

    let page = static_page(PAGE_BYTES);
    let (server, target) = start_static_server(Bytes::from(page))?;
    fleet.keep(server);
    let url = format!("http://{}/", target.addr);
    eprintln!("opsmon-bench: static target at {url} ({PAGE_BYTES}-byte page)");

    let dir = fleet.dir()?;
    let ours_config = dir.join("opsmon.yml");
    std::fs::write(&ours_config, OPSMON_CONFIG)?;
    if let Err(rejected) = config_check(&exporter, &ours_config)? {
        bail!("{OURS} rejects the bench's config:\n{rejected}");
    }
    let blackbox_config = dir.join("blackbox.yml");
    std::fs::write(&blackbox_config, BLACKBOX_CONFIG)?;

    let path = probe_path(target.addr);
    let mut ours = Launch::standard(OURS, &exporter);
    ours.args.push(format!("--config.file={}", ours_config.display()));
    ours.metrics_path.clone_from(&path);
    let mut blackbox = Launch::standard(BLACKBOX, &args.blackbox_exporter);
    blackbox.args.push(format!("--config.file={}", blackbox_config.display()));
    blackbox.metrics_path.clone_from(&path);

    let mut targets = Vec::new();
    for launch in [ours, blackbox] {
        let mut t = fleet.spawn(&launch)?;
        let body = bring_up(http, &mut t, fleet, plan).await?;
        check_probe_success(&body, &launch.name, &url)?;
        targets.push(t);
    }
    let header = vec![
        format!(
            "**Static target:** `{url}`, a hyper server in the bench process (own thread), 200 with a \
             {PAGE_BYTES}-byte text/html page; every probe opens a fresh TCP connection to it"
        ),
        format!(
            "**Probe:** `{path}`; {OURS}: built-in `{MODULE}` module, host collector off; {BLACKBOX}: \
             `{MODULE}: {{prober: http, timeout: 5s, http: {{preferred_ip_protocol: ip4}}}}`"
        ),
    ];
    Ok(Setup { targets, target, header })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_has_the_requested_size() {
        for size in [PAGE_BYTES, 1000, 4096, 333] {
            let page = static_page(size);
            assert_eq!(page.len(), size, "{size}");
            assert!(page.starts_with("<!DOCTYPE html>\n") && page.ends_with("</body>\n</html>\n"));
            assert_eq!(page.matches("<!--").count(), page.matches("-->").count());
        }
        // Smaller than the skeleton: the skeleton, unpadded.
        assert!(static_page(10).len() > 10);
    }

    #[test]
    fn probe_path_names_target_and_module() -> Result<()> {
        let path = probe_path("127.0.0.1:8080".parse()?);
        assert_eq!(path, "/probe?target=http://127.0.0.1:8080/&module=http_2xx");
        let uri: hyper::Uri = format!("http://127.0.0.1:9115{path}").parse()?;
        assert_eq!(uri.query(), Some("target=http://127.0.0.1:8080/&module=http_2xx"));
        Ok(())
    }

    #[test]
    fn configs_have_the_expected_shape() {
        assert_eq!(OPSMON_CONFIG, "collectors:\n  host:\n    enabled: false\n");
        assert_eq!(
            BLACKBOX_CONFIG,
            "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n"
        );
    }

    #[test]
    fn reads_tid_from_thread_self() {
        assert_eq!(tid_from_thread_self(Path::new("4242/task/4250")), Some(4250));
        assert_eq!(tid_from_thread_self(Path::new("4242/task/x")), None);
        assert_eq!(tid_from_thread_self(Path::new("4242/fd/7")), None);
        assert_eq!(tid_from_thread_self(Path::new("4242/task/1/2")), None);
        assert_eq!(tid_from_thread_self(Path::new("4242")), None);
    }

    #[test]
    fn probe_success_is_checked_with_or_without_labels() {
        let url = "http://127.0.0.1:1/";
        assert!(check_probe_success("probe_duration_seconds 0.001\nprobe_success 1\n", "bb", url).is_ok());
        assert!(
            check_probe_success(
                "# TYPE probe_success gauge\nprobe_success{target=\"http://127.0.0.1:1/\"} 1\n",
                "o",
                url
            )
            .is_ok()
        );
        let e = check_probe_success("probe_http_status_code 503\nprobe_success 0\n", "bb", url)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("probe_success 0") && e.contains("probe_http_status_code 503"), "{e}");
        assert!(succeeded(b"probe_success{target=\"x\"} 1\n") && !succeeded(b"probe_success 0\n"));
        let e = check_probe_success("up 1\n", "x", url).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("no probe_success"), "{e}");
    }

    #[tokio::test]
    async fn static_server_serves_the_page_and_counts() -> Result<()> {
        let (server, target) = start_static_server(Bytes::from(static_page(PAGE_BYTES)))?;
        let http = crate::scrape::client();
        let uri: hyper::Uri = format!("http://{}/anything", target.addr).parse()?;
        let s = crate::scrape::scrape(&http, &uri, std::time::Duration::from_secs(5)).await?;
        assert_eq!(s.status, hyper::StatusCode::OK);
        assert_eq!(s.body.len(), PAGE_BYTES);
        assert_eq!(target.requests(), 1);
        let _ = target.cpu_ticks()?;
        drop(server);
        // Stopped: the port no longer answers.
        assert!(
            crate::scrape::scrape(&crate::scrape::client(), &uri, std::time::Duration::from_secs(2))
                .await
                .is_err()
        );
        Ok(())
    }
}
