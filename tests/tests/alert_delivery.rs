//! Alerts that tell the truth, live: real PostgreSQL, Redis, the exporter,
//! Prometheus evaluating the rules rulegen generates from the shipped
//! threshold file (its expressions unchanged; only `for`, the escalation step
//! and Alertmanager's timings shortened), and Alertmanager with the generated
//! routing and a receivers file pointing each receiver at a webhook served by
//! this test. Each fault of the guide is injected, must reach its tier's
//! receiver, and must resolve when the fault is removed; nginx down must
//! silence the API symptoms it causes, and a critical alert left unresolved
//! must reach L2 after the (shortened) escalation step.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opsmon_e2e::servers::{PgServer, RedisServer};
use opsmon_e2e::{Process, exporter_bin, free_port, get, require_tool};
use serde_json::Value;

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

/// The receivers of the shipped routing; each gets its own webhook path.
const RECEIVERS: &[&str] =
    &["oncall-pager", "l2-senior", "l3-cto", "ops-chat", "ops-digest", "deadmans-switch"];

/// What the test's HTTP server has seen and what it answers.
#[derive(Default)]
struct HubState {
    /// (path, JSON body) of every webhook notification, in arrival order.
    notifications: Mutex<Vec<(String, Value)>>,
    /// The API health endpoint answers 200 (else 500).
    healthy: AtomicBool,
    /// The CDN sample answers `X-Cache: HIT` (else MISS).
    cache_hit: AtomicBool,
}

/// One HTTP server for everything outside the exporter: Alertmanager's
/// webhooks, the API health endpoint and the CDN sample the exporter probes.
struct Hub {
    port: u16,
    state: Arc<HubState>,
}

impl Hub {
    fn start() -> Hub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(HubState::default());
        state.healthy.store(true, Ordering::SeqCst);
        state.cache_hit.store(true, Ordering::SeqCst);
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve(stream, &state);
                });
            }
        });
        Hub { port, state }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Notified alerts so far: (receiver, alert status, alert labels).
    fn alerts(&self) -> Vec<(String, String, BTreeMap<String, String>)> {
        let notifications = self.state.notifications.lock().unwrap();
        let mut out = Vec::new();
        for (path, body) in notifications.iter() {
            let receiver = path.trim_start_matches("/alerts/").to_owned();
            for alert in body["alerts"].as_array().into_iter().flatten() {
                let labels = alert["labels"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect();
                out.push((receiver.clone(), alert["status"].as_str().unwrap_or_default().to_owned(), labels));
            }
        }
        out
    }

    fn has(&self, receiver: &str, status: &str, matchers: &[(&str, &str)]) -> bool {
        self.alerts().iter().any(|(r, s, labels)| {
            r == receiver
                && s == status
                && matchers.iter().all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    fn summary(&self) -> String {
        self.alerts()
            .iter()
            .map(|(r, s, l)| {
                format!(
                    "{r}: {s} {} {}",
                    l.get("alertname").cloned().unwrap_or_default(),
                    l.get("escalated_alertname").cloned().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Answers one request (one per connection).
fn serve(stream: TcpStream, state: &HubState) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0).min(1 << 20);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let (status, extra, text) = if path.starts_with("/alerts/") {
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        state.notifications.lock().unwrap().push((path, json));
        ("200 OK", String::new(), "ok")
    } else if path.starts_with("/api/v1/health") {
        if state.healthy.load(Ordering::SeqCst) {
            ("200 OK", String::new(), "{\"status\":\"ok\"}")
        } else {
            ("500 Internal Server Error", String::new(), "{\"status\":\"db error\"}")
        }
    } else if path.starts_with("/videos/") {
        let cache = if state.cache_hit.load(Ordering::SeqCst) { "HIT" } else { "MISS" };
        ("200 OK", format!("X-Cache: {cache}\r\nContent-Type: video/mp4\r\n"), "0123456789abcdef")
    } else {
        ("404 Not Found", String::new(), "")
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )?;
    stream.flush()
}

/// A `sleep` standing for a process group: the exporter's group matches its
/// unique argument, so killing it is the process dying.
struct Sleeper {
    nap: String,
    child: Option<Child>,
}

impl Sleeper {
    fn new(nap: String) -> Sleeper {
        let mut s = Sleeper { nap, child: None };
        s.start();
        s
    }
    fn start(&mut self) {
        self.child = Some(Command::new("sleep").arg(&self.nap).spawn().unwrap());
    }
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Nginx combined-format lines plus `$request_time`, on the API route.
fn api_lines(status: u16, count: usize) -> String {
    (0..count)
        .map(|i| {
            format!(
                "10.0.0.{} - - [01/May/2024:10:00:00 +0000] \"GET /api/v1/lessons/{i} HTTP/1.1\" {status} 512 \"-\" \"e2e\" 0.020\n",
                i % 250 + 1
            )
        })
        .collect()
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// The shipped threshold file with test timings: every `for` 1s, the L2
/// step 10s (the critical tier repeats every 10s), Alertmanager's waits and
/// intervals 0–1s. Expressions, thresholds and routing are the shipped ones.
fn fast_thresholds(shipped: &str) -> String {
    let mut out = String::new();
    let mut changed = BTreeMap::new();
    for line in shipped.lines() {
        let indent = &line[..line.len() - line.trim_start().len()];
        let trimmed = line.trim_start();
        let replaced = if trimmed.starts_with("for: ") {
            Some(format!("{indent}for: 1s"))
        } else if trimmed.starts_with("group_wait: ") {
            Some(format!("{indent}group_wait: 0s"))
        } else if trimmed.starts_with("group_interval: ") {
            Some(format!("{indent}group_interval: 1s"))
        } else if trimmed == "repeat_interval: 15m" {
            Some(format!("{indent}repeat_interval: 10s"))
        } else if trimmed.contains("{after: 15m, level: L2") {
            Some(line.replace("after: 15m", "after: 10s"))
        } else {
            None
        };
        if let Some(r) = &replaced {
            *changed.entry(trimmed.split(':').next().unwrap_or("").to_owned()).or_insert(0) += 1;
            out.push_str(r);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    for key in ["for", "group_wait", "group_interval", "repeat_interval", "- {after"] {
        assert!(
            changed.get(key).is_some_and(|n| *n > 0),
            "the shipped file has no `{key}` to shorten: {changed:?}"
        );
    }
    out
}

/// The shipped business queries with a 1-second interval.
fn fast_business() -> String {
    let text = std::fs::read_to_string(repo("deploy/opsmon.yml")).unwrap();
    let start = text.find("\n  business:\n").expect("deploy/opsmon.yml has a business section") + 1;
    let mut section = Vec::new();
    for (i, line) in text[start..].lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        if i > 0 && !line.trim().is_empty() && indent <= 2 {
            break;
        }
        section.push(line.replace("interval: 60s", "interval: 1s").replace("interval: 5m", "interval: 1s"));
    }
    section.join("\n") + "\n"
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{command:?} failed:\n{text}");
    text
}

struct World {
    hub: Hub,
    prom_port: u16,
    am_port: u16,
    alertmanager: Process,
    exporter: Process,
}

impl World {
    fn query(&self, promql: &str) -> String {
        let mut url = format!("http://127.0.0.1:{}/api/v1/query?query=", self.prom_port);
        for b in promql.bytes() {
            if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) {
                url.push(b as char);
            } else {
                url.push_str(&format!("%{b:02X}"));
            }
        }
        get(&url).map(|r| r.text()).unwrap_or_default()
    }

    /// Waits until `receiver` got a notification with an alert in `status`
    /// carrying `matchers`; fails with what was delivered so far.
    fn expect(&self, receiver: &str, status: &str, matchers: &[(&str, &str)], limit: Duration) {
        let started = Instant::now();
        while !self.hub.has(receiver, status, matchers) {
            if started.elapsed() > limit {
                panic!(
                    "{receiver} never got {status} {matchers:?} within {limit:?}.\ndelivered:\n{}\nPrometheus alerts:\n{}\nAlertmanager alerts:\n{}\nAlertmanager log:\n{}\nexporter log:\n{}",
                    self.hub.summary(),
                    self.query("ALERTS"),
                    get(&format!("http://127.0.0.1:{}/api/v2/alerts", self.am_port))
                        .map(|r| r.text())
                        .unwrap_or_default(),
                    self.alertmanager.log(),
                    self.exporter.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until Prometheus has the alert with `matchers` firing.
    fn wait_firing(&self, matchers: &[(&str, &str)], limit: Duration) {
        let selector: Vec<String> = matchers.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let promql = format!("ALERTS{{alertstate=\"firing\",{}}}", selector.join(","));
        let started = Instant::now();
        while !self.query(&promql).contains("\"result\":[{") {
            assert!(started.elapsed() < limit, "{promql} never fired:\n{}", self.query("ALERTS"));
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Alertmanager's view of the alert with `matchers`: its state
    /// (`active`, `suppressed`) and what inhibits it.
    fn am_state(&self, matchers: &[(&str, &str)]) -> Option<(String, Vec<Value>)> {
        let body = get(&format!("http://127.0.0.1:{}/api/v2/alerts", self.am_port)).ok()?.text();
        let alerts: Value = serde_json::from_str(&body).ok()?;
        alerts.as_array()?.iter().find(|a| matchers.iter().all(|(k, v)| a["labels"][*k] == *v)).map(|a| {
            (
                a["status"]["state"].as_str().unwrap_or_default().to_owned(),
                a["status"]["inhibitedBy"].as_array().cloned().unwrap_or_default(),
            )
        })
    }
}

#[test]
fn each_guide_fault_pages_its_tier_escalates_and_resolves() {
    let started = Instant::now();
    let alertmanager_bin = require_tool("prometheus-alertmanager", "prometheus-alertmanager");
    let amtool = require_tool("amtool", "prometheus-alertmanager");
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start();

    // Rules and routing generated by rulegen from the shipped definition
    // with test timings and a receivers file pointing at the hub.
    let spec_dir = dir.path().join("spec");
    std::fs::create_dir_all(spec_dir.join("alertmanager")).unwrap();
    let shipped = std::fs::read_to_string(repo("deploy/thresholds.yaml")).unwrap();
    assert!(
        shipped.contains("receivers_file: alertmanager/receivers.yml"),
        "the shipped file names its receivers"
    );
    std::fs::write(spec_dir.join("thresholds.yaml"), fast_thresholds(&shipped)).unwrap();
    let receivers: String = RECEIVERS
        .iter()
        .map(|r| {
            format!(
                "  - name: {r}\n    webhook_configs:\n      - url: {}\n        send_resolved: true\n",
                hub.url(&format!("/alerts/{r}"))
            )
        })
        .collect();
    std::fs::write(spec_dir.join("alertmanager/receivers.yml"), format!("receivers:\n{receivers}")).unwrap();
    let generated = dir.path().join("generated");
    run(Command::new(exporter_bin().with_file_name("rulegen"))
        .arg("--thresholds")
        .arg(spec_dir.join("thresholds.yaml"))
        .arg("--exporter-config")
        .arg(repo("deploy/opsmon.yml"))
        .arg("generate")
        .arg("--out")
        .arg(&generated));
    let am_config = generated.join("deploy/alertmanager/alertmanager.yml");
    let check = run(Command::new(&amtool).arg("check-config").arg(&am_config));
    assert!(check.contains("SUCCESS"), "{check}");
    let rules = generated.join("deploy/prometheus/rules.yml");
    let rules_text = std::fs::read_to_string(&rules).unwrap();
    assert!(rules_text.contains("alert: EscalatedToL2") && rules_text.contains("for: 10s"), "{rules_text}");

    // Alertmanager with the generated routing and the merged receivers.
    let am_port = free_port();
    let alertmanager = Process::start(
        &alertmanager_bin,
        &[
            format!("--config.file={}", am_config.display()),
            format!("--storage.path={}", dir.path().join("am").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=".to_owned(),
        ],
        am_port,
        "/-/ready",
    );

    // The services: PostgreSQL with the analytics schema (20 signups and 10
    // activations in the last hour: 50%, above the 40% target), Redis, a
    // backend and an nginx process, the API answering, the CDN hitting.
    let pg = PgServer::start(&[]);
    pg.psql("postgres", "CREATE DATABASE smartalk_db");
    let schema = dir.path().join("schema.sql");
    std::fs::copy(repo("deploy/sql/schema.sql"), &schema).unwrap();
    std::fs::set_permissions(&schema, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    pg.psql_file("smartalk_db", &schema, &[]);
    pg.psql(
        "smartalk_db",
        "INSERT INTO analytics_events (user_id, event_type, \"timestamp\") \
         SELECT u, 'signup', now() - interval '20 minutes' FROM generate_series(1, 20) u \
         UNION ALL SELECT u, 'activation', now() - interval '15 minutes' FROM generate_series(1, 10) u",
    );
    let mut redis = RedisServer::start(None, &[]);
    let token = format!("{}{}", std::process::id(), started.elapsed().subsec_nanos() % 1000);
    let mut backend = Sleeper::new(format!("8{token}.1"));
    let mut nginx = Sleeper::new(format!("8{token}.2"));
    let access_log = dir.path().join("access.log");
    // One 502 among 200 answers (0.5%, healthy) so the 5xx series exists
    // before the surge: a counter's first sample has no rate.
    append(&access_log, &(api_lines(200, 200) + &api_lines(502, 1)));

    let config = dir.path().join("opsmon.yml");
    std::fs::write(
        &config,
        format!(
            "collectors:\n  host:\n    process_groups:\n      - name: smartalk-backend\n        cmdline: '^sleep {backend}$'\n      - name: nginx\n        cmdline: '^sleep {nginx}$'\n\
             \x20 postgres:\n    targets:\n      - name: smartalk\n        dsn: {dsn}\n        password_env: OPSMON_TEST_PG_PASSWORD\n        default: true\n        connect_timeout: 1s\n\
             \x20 redis:\n    targets:\n      - name: cache\n        address: {redis}\n        timeout: 1s\n\
             \x20 probe:\n    modules:\n      http_2xx: {{method: GET, timeout: 2s}}\n      cdn: {{method: GET, timeout: 2s, cache_status_header: X-Cache}}\n    targets:\n\
             \x20     - {{name: api_health, url: '{health}', module: http_2xx}}\n      - {{name: cdn_sample, url: '{cdn}', module: cdn}}\n\
             \x20 accesslog:\n    start_at: beginning\n    poll_interval: 250ms\n    files:\n      - path: {log}\n    routes:\n      - {{name: api, prefix: /api/}}\n      - {{name: videos, prefix: /videos/}}\n{business}",
            backend = backend.nap.replace('.', "\\."),
            nginx = nginx.nap.replace('.', "\\."),
            dsn = pg.url_without_password("smartalk_db"),
            redis = redis.address(),
            health = hub.url("/api/v1/health"),
            cdn = hub.url("/videos/sample.mp4"),
            log = access_log.display(),
            business = fast_business(),
        ),
    )
    .unwrap();
    let exporter = Process::exporter_with_env(
        &["--config.file", config.to_str().unwrap()],
        &[("OPSMON_TEST_PG_PASSWORD", &pg.password)],
    );

    // Prometheus: the shipped scrape config, 1s intervals, the generated rules.
    let prom_config = std::fs::read_to_string(repo("deploy/prometheus/prometheus.yml"))
        .unwrap()
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("scrape_timeout: 10s", "scrape_timeout: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
        .replace("127.0.0.1:19100", &format!("127.0.0.1:{}", exporter.port))
        .replace("127.0.0.1:9093", &format!("127.0.0.1:{am_port}"))
        .replace("  - rules.yml", &format!("  - {}", rules.display()));
    // An alert that fires before Prometheus has discovered Alertmanager (the
    // Watchdog, at the first evaluation) is sent again only after the resend
    // delay, 1m by default.
    let prometheus = Process::prometheus(dir.path(), &prom_config, &["--rules.alert.resend-delay=1s"]);
    let prom_port = prometheus.port;
    let world = World { hub, prom_port, am_port, alertmanager, exporter };
    let quick = Duration::from_secs(30);

    // Healthy: every signal present and good, and nothing paged.
    let healthy = Instant::now();
    for promql in [
        "probe_success{target=\"api_health\"} == 1",
        "opsmon_processes{group=\"nginx\"} == 1",
        "opsmon_processes{group=\"smartalk-backend\"} == 1",
        "pg_up == 1",
        "redis_up == 1",
        "smartalk_activation_ratio{window=\"1h\"} == 0.5",
        "opsmon_cdn_cache_requests_total{result=\"hit\"} > 2",
        "sum(rate(http_requests_total{route=\"api\"}[5m])) >= 0",
    ] {
        while !world.query(promql).contains("\"result\":[{") {
            assert!(healthy.elapsed() < quick, "{promql} never held:\n{}", world.exporter.log());
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    let pages =
        |hub: &Hub| hub.alerts().iter().filter(|(r, s, _)| r == "oncall-pager" && s == "firing").count();
    let before = pages(&world.hub);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(pages(&world.hub), before, "a healthy system paged:\n{}", world.hub.summary());
    // The dead-man's switch receives the always-firing Watchdog.
    world.expect("deadmans-switch", "firing", &[("alertname", "Watchdog")], quick);

    // Faults, first round: nginx down (and then, as its consequence, the API
    // health check failing), Redis down, activation from 50% to 20% (the
    // guide's 40% → 20%: exactly half of the first week's 40% baseline), the
    // CDN missing its cache.
    nginx.stop();
    redis.stop();
    pg.psql(
        "smartalk_db",
        "INSERT INTO analytics_events (user_id, event_type, \"timestamp\") \
         SELECT u, 'signup', now() - interval '10 minutes' FROM generate_series(101, 130) u",
    );
    world.hub.state.cache_hit.store(false, Ordering::SeqCst);

    world.expect(
        "oncall-pager",
        "firing",
        &[("alertname", "NginxNotRunning"), ("severity", "critical")],
        quick,
    );
    world.hub.state.healthy.store(false, Ordering::SeqCst);
    world.expect("oncall-pager", "firing", &[("alertname", "RedisDown"), ("severity", "critical")], quick);
    world.expect(
        "oncall-pager",
        "firing",
        &[("alertname", "ActivationRateDropped"), ("severity", "critical")],
        quick,
    );
    world.expect(
        "ops-digest",
        "firing",
        &[("alertname", "CdnCacheHitRatioLow"), ("severity", "info")],
        quick,
    );
    // Hits again at once: the 15-minute ratio needs nine hits per miss to recover.
    world.hub.state.cache_hit.store(true, Ordering::SeqCst);
    // L2 after the shortened step, for the cause that stays unresolved.
    world.expect(
        "l2-senior",
        "firing",
        &[
            ("alertname", "EscalatedToL2"),
            ("escalated_alertname", "NginxNotRunning"),
            ("severity", "critical"),
        ],
        quick,
    );
    // nginx down inhibits the API symptom it causes: firing in Prometheus,
    // escalated there too, but suppressed in Alertmanager, so neither the
    // symptom nor its escalation pages.
    let symptom = [("alertname", "ApiHealthProbeFailing")];
    let escalated = [("alertname", "EscalatedToL2"), ("escalated_alertname", "ApiHealthProbeFailing")];
    world.wait_firing(&symptom, quick);
    world.wait_firing(&escalated, quick);
    std::thread::sleep(Duration::from_secs(3));
    for matchers in [&symptom[..], &escalated[..]] {
        let (state, by) =
            world.am_state(matchers).unwrap_or_else(|| panic!("Alertmanager lacks {matchers:?}"));
        assert_eq!(state, "suppressed", "{matchers:?} inhibited by NginxNotRunning: {by:?}");
        assert!(!by.is_empty(), "{matchers:?} suppressed by an inhibition, not a silence");
    }
    assert!(
        !world.hub.has("oncall-pager", "firing", &[("alertname", "ApiHealthProbeFailing")])
            && !world.hub.has("l2-senior", "firing", &[("escalated_alertname", "ApiHealthProbeFailing")]),
        "an inhibited symptom paged or escalated:\n{}",
        world.hub.summary()
    );

    // Second round: nginx back (the API symptom now pages on its own), Redis
    // back, activation restored, the CDN hitting again; 5xx surge on the API
    // route (90 answers 502, all of the new requests).
    nginx.start();
    redis.start_again();
    pg.psql("smartalk_db", "DELETE FROM analytics_events WHERE user_id > 100");
    append(&access_log, &api_lines(502, 90));
    world.expect("oncall-pager", "resolved", &[("alertname", "NginxNotRunning")], quick);
    world.expect(
        "l2-senior",
        "resolved",
        &[("alertname", "EscalatedToL2"), ("escalated_alertname", "NginxNotRunning")],
        quick,
    );
    world.expect(
        "oncall-pager",
        "firing",
        &[("alertname", "ApiHealthProbeFailing"), ("severity", "critical")],
        quick,
    );
    world.expect("oncall-pager", "resolved", &[("alertname", "RedisDown")], quick);
    world.expect("oncall-pager", "resolved", &[("alertname", "ActivationRateDropped")], quick);
    world.expect(
        "oncall-pager",
        "firing",
        &[("alertname", "HighErrorRate"), ("severity", "critical")],
        quick,
    );

    // Third round: the API healthy and its 5xx share diluted below 5%
    // (2.9%); then PostgreSQL stopped (after the activation data was read
    // back) and the backend process killed (which would inhibit the API
    // alerts, so they resolve first).
    world.hub.state.healthy.store(true, Ordering::SeqCst);
    append(&access_log, &api_lines(200, 3000));
    world.expect("oncall-pager", "resolved", &[("alertname", "ApiHealthProbeFailing")], quick);
    world.expect("oncall-pager", "resolved", &[("alertname", "HighErrorRate")], quick);
    pg.stop();
    backend.stop();
    world.expect("oncall-pager", "firing", &[("alertname", "PostgresDown"), ("severity", "critical")], quick);
    world.expect(
        "oncall-pager",
        "firing",
        &[("alertname", "BackendProcessNotRunning"), ("severity", "critical")],
        quick,
    );

    // Restored: each resolves; the CDN's hit ratio over its 15-minute window
    // recovers last (hits must outnumber the misses nine to one).
    pg.start_again();
    backend.start();
    world.expect("oncall-pager", "resolved", &[("alertname", "PostgresDown")], quick);
    world.expect("oncall-pager", "resolved", &[("alertname", "BackendProcessNotRunning")], quick);
    world.expect("ops-digest", "resolved", &[("alertname", "CdnCacheHitRatioLow")], Duration::from_secs(150));
    assert!(
        !world.hub.alerts().iter().any(|(r, _, _)| r == "l3-cto"),
        "nothing stayed unresolved for the 30-minute L3 step:\n{}",
        world.hub.summary()
    );
    drop((prometheus, world, pg, redis));
}
