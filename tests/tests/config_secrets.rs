//! Config errors never carry a secret from the file, and never grow with it
//! (issue 10 point 6): `--config.check` (which the unit runs as
//! `ExecStartPre`, so its stderr lands in the journal), start-up and a
//! reload's logged and answered errors quote the lines around a mistake
//! with secret values hidden, and a 10 MB key yields a few KiB of text.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use opsmon_e2e::{Process, Response, exporter_bin};

/// Every secret the bad files below hold; none may appear in any output.
const SECRETS: [&str; 6] =
    ["TOPSECRET-1", "TOPSECRET-2", "TOPSECRET-3", "TOPSECRET-4", "TOPSECRET-5", "TOPSECRET-6"];

/// A bad key next to an `Authorization` header and a lowercase custom header.
const NEXT_TO_HEADERS: &str = "\
collectors:
  host: {enabled: false}
  probe:
    modules:
      api:
        headers:
          Authorization: Bearer sk-live-TOPSECRET-1
          x_custom: TOPSECRET-2
        timout: 5s
";

/// A bad key under a DSN with a password.
const NEXT_TO_DSN: &str = "\
collectors:
  host: {enabled: false}
  postgres:
    targets:
      - name: main
        dsn: 'postgres://app:TOPSECRET-3@127.0.0.1:5432/app'
        statement_timout: 5s
";

/// A bad key on the line of a header in a flow mapping.
const SAME_LINE: &str = "\
collectors:
  host: {enabled: false}
  probe:
    modules:
      mirror: {headers: {X-Api-Key: TOPSECRET-4}, timeout: 5s, follow_redirect: true}
";

/// A probe URL with credentials (refused: they would show in labels).
const URL_WITH_CREDENTIALS: &str = "\
collectors:
  probe:
    targets:
      - name: a
        url: 'http://user:TOPSECRET-6@127.0.0.1/'
";

/// An `Authorization` value the parser refuses (a control character).
const BAD_HEADER_VALUE: &str = "\
collectors:
  probe:
    modules:
      api:
        headers:
          Authorization: \"Bearer TOPSECRET-5\\a\"
";

/// Output caps: a key or value of any size gives at most this much error text.
const MAX_ERROR_BYTES: usize = 16 << 10;

fn config_check(dir: &Path, name: &str, yaml: &str) -> (Option<i32>, String) {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    let output = std::process::Command::new(exporter_bin())
        .args(["--config.check", &format!("--config.file={}", path.display())])
        .output()
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code(), text)
}

fn assert_no_secret(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} shown in:\n{text}");
    }
}

#[test]
fn config_check_errors_quote_the_file_without_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = config_check(dir.path(), "headers.yml", NEXT_TO_HEADERS);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("headers.yml:9:9: unknown field `timout`"), "{text}");
    assert!(text.contains("did you mean `timeout`?"), "{text}");
    assert!(text.contains("Authorization: <redacted>"), "the line is shown, its value is not:\n{text}");
    assert!(text.contains("9 |         timout: 5s"), "the offending line itself:\n{text}");
    assert_no_secret(&text);

    let (code, text) = config_check(dir.path(), "dsn.yml", NEXT_TO_DSN);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("dsn.yml:7:9: unknown field `statement_timout`"), "{text}");
    assert!(text.contains("dsn: <redacted>"), "{text}");
    assert_no_secret(&text);

    let (code, text) = config_check(dir.path(), "flow.yml", SAME_LINE);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("flow.yml:5:64: unknown field `follow_redirect`"), "{text}");
    assert!(text.contains("{headers: {X-Api-Key: <redacted>}, timeout: 5s"), "{text}");
    assert_no_secret(&text);

    let (code, text) = config_check(dir.path(), "url.yml", URL_WITH_CREDENTIALS);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("url.yml:5:14: invalid URL: it contains credentials"), "{text}");
    assert!(text.contains("url: 'http://<redacted>@127.0.0.1/'"), "{text}");
    assert_no_secret(&text);

    let (code, text) = config_check(dir.path(), "value.yml", BAD_HEADER_VALUE);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("value.yml:6:26: invalid HTTP header value;"), "{text}");
    assert_no_secret(&text);
}

#[test]
fn a_huge_key_or_many_problems_give_bounded_error_text() {
    let dir = tempfile::tempdir().unwrap();
    let huge_key = format!("collectors:\n  host:\n    {}: 1\n", "k".repeat(10 << 20));
    let (code, text) = config_check(dir.path(), "huge.yml", &huge_key);
    assert_eq!(code, Some(2), "{}", &text[..text.len().min(2000)]);
    assert!(text.len() < MAX_ERROR_BYTES, "{} bytes of error text for a 10 MB key", text.len());
    assert!(text.contains("huge.yml:3:5: "), "{}", &text[..text.len().min(2000)]);
    assert!(text.lines().all(|line| line.chars().count() <= 1200), "every line is cut short");

    let targets: String = (0..300)
        .map(|n| format!("      - {{name: t{n}, url: 'http://127.0.0.1:1/', module: nope}}\n"))
        .collect();
    let many = format!("collectors:\n  host: {{enabled: false}}\n  probe:\n    targets:\n{targets}");
    let (code, text) = config_check(dir.path(), "many.yml", &many);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("… and 250 more problems"), "{text}");
    assert!(text.len() < 4 * MAX_ERROR_BYTES, "{} bytes", text.len());
}

/// POST `url` with an empty body; any status is returned.
fn post(url: &str) -> Response {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut response = agent.post(url).send_empty().unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_vec().unwrap();
    Response { status, headers: Default::default(), body }
}

#[test]
fn a_failed_reload_logs_and_answers_no_secret_and_bounded_text() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("opsmon.yml");
    std::fs::write(&config, "collectors:\n  host: {enabled: false}\n").unwrap();
    let exporter = Process::exporter(&["--config.file", config.to_str().unwrap(), "--web.enable-lifecycle"]);

    for bad in [NEXT_TO_HEADERS, NEXT_TO_DSN, SAME_LINE, URL_WITH_CREDENTIALS, BAD_HEADER_VALUE] {
        std::fs::write(&config, bad).unwrap();
        let response = post(&exporter.url("/-/reload"));
        assert_eq!(response.status, 500, "{}", response.text());
        assert!(response.text().contains("opsmon.yml:"), "{}", response.text());
        assert_no_secret(&response.text());
    }
    assert_no_secret(&exporter.log());

    let log_before = exporter.log().len();
    std::fs::write(&config, format!("collectors:\n  host:\n    {}: 1\n", "k".repeat(10 << 20))).unwrap();
    let response = post(&exporter.url("/-/reload"));
    assert_eq!(response.status, 500);
    assert!(response.body.len() < MAX_ERROR_BYTES, "{} bytes answered", response.body.len());
    let logged = exporter.log().len() - log_before;
    assert!(logged < MAX_ERROR_BYTES, "{logged} bytes logged for a 10 MB key");
}
