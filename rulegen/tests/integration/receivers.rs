//! The user's receivers file: merged into the generated Alertmanager config
//! (amtool accepts it and routes each tier to a receiver that delivers), and
//! each bad input reported with file:line:column and nothing written.

use crate::fixture;
use opsmon_rulegen::validate::receivers::Files;
use std::path::Path;
use std::process::Command;

/// The fixture routes to `default` (no alertmanager section), `pager` and `chat`.
const GOOD: &str = "\
receivers:
  - name: default
    webhook_configs:
      - url: http://127.0.0.1:9095/alerts/default
  - name: pager
    webhook_configs:
      - url: http://127.0.0.1:9095/alerts/pager
        send_resolved: true
        max_alerts: 0
        http_config:
          authorization:
            credentials_file: SECRET
  - name: chat
    slack_configs:
      - api_url_file: SECRET
        channel: '#ops'
        send_resolved: false
";

/// A directory with the fixture threshold file naming `receivers.yml`
/// (holding `receivers`, SECRET replaced by an existing secret file).
fn setup(receivers: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cr3t-token\n").expect("secret");
    let thresholds = fixture::text("thresholds.yaml").replacen(
        "kubernetes:\n",
        "alertmanager:\n  receivers_file: receivers.yml\nkubernetes:\n",
        1,
    );
    std::fs::write(dir.path().join("thresholds.yaml"), thresholds).expect("write");
    let receivers = receivers.replace("SECRET", &secret.display().to_string());
    std::fs::write(dir.path().join("receivers.yml"), receivers).expect("write");
    dir
}

fn check(dir: &Path, check_secret_files: bool) -> Result<opsmon_rulegen::model::Model, String> {
    let text = std::fs::read_to_string(dir.join("thresholds.yaml")).expect("read");
    let files = Files { base: Some(dir.to_owned()), check_secret_files };
    opsmon_rulegen::validate::validate_with("thresholds.yaml", &text, &fixture::known(), &files)
        .map_err(|e| e.to_string())
}

fn error(receivers: &str) -> String {
    let dir = setup(receivers);
    match check(dir.path(), true) {
        Ok(_) => panic!("accepted:\n{receivers}"),
        Err(e) => e,
    }
}

#[test]
fn receivers_are_merged_and_amtool_accepts_and_routes_them() {
    let dir = setup(GOOD);
    let model = check(dir.path(), true).unwrap_or_else(|e| panic!("{e}"));
    let outputs = opsmon_rulegen::render::all(&model);
    let am = &outputs.iter().find(|o| o.path.ends_with("alertmanager.yml")).expect("routing").content;
    assert!(am.contains("url: http://127.0.0.1:9095/alerts/pager"), "{am}");
    assert!(am.contains("send_resolved: true") && am.contains("max_alerts: 0"), "types kept:\n{am}");
    assert!(am.contains("copied from receivers.yml"), "{am}");
    assert!(!am.contains("s3cr3t"), "the secret's content is never copied");
    let out = fixture::write(&outputs);
    fixture::amtool(out.path());
    // Every routed receiver delivers somewhere: none is left empty.
    let parsed: serde_json::Value = serde_saphyr::from_str(am).expect("yaml");
    for r in parsed["receivers"].as_array().expect("receivers") {
        assert!(r.as_object().expect("map").len() > 1, "empty receiver {r}");
    }
}

#[test]
fn a_routed_receiver_missing_from_the_file_is_reported_where_the_route_names_it() {
    let e = error(&GOOD.replace("name: pager", "name: pagr"));
    assert!(
        e.contains("thresholds.yaml:16:15: severities[0].receiver: receiver `pager` is not defined in receivers.yml (it defines default, pagr, chat); add it there or route to one it defines; did you mean `pagr`?"),
        "{e}"
    );
    assert!(
        e.contains("receivers.yml:5:11: receivers: receiver `pagr` is not used by any route of the threshold file (routes use pager, chat, default); remove it or name it in a tier's `receiver`; did you mean `pager`?"),
        "{e}"
    );
}

#[test]
fn inline_secrets_are_refused_with_the_file_form() {
    let e = error(&GOOD.replace("credentials_file: SECRET", "credentials: abc"));
    assert!(
        e.contains("receivers.yml:12:13: receivers[1].webhook_configs[0].http_config.authorization.credentials: `credentials` holds a secret written inline; put it in a file readable by Alertmanager and write `credentials_file: /absolute/path` instead"),
        "{e}"
    );
    assert!(!e.contains("abc"), "the secret is not echoed: {e}");
    let e =
        error(&GOOD.replace("api_url_file: SECRET", "api_url: https://hooks.slack.com/services/T0/B0/xyz"));
    assert!(
        e.contains("receivers.yml:15:9: receivers[2].slack_configs[0].api_url: `api_url` holds a secret"),
        "{e}"
    );
    assert!(e.contains("`api_url_file: /absolute/path`"), "{e}");
    assert!(!e.contains("xyz"), "the secret is not echoed: {e}");
    let e =
        error(&GOOD.replace(
            "url: http://127.0.0.1:9095/alerts/default",
            "url: https://bot:hunter2@example.com/hook",
        ));
    assert!(
        e.contains("receivers.yml:4:14: receivers[0].webhook_configs[0].url: the URL carries a password"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "the secret is not echoed: {e}");
}

#[test]
fn secret_files_must_be_absolute_and_exist_unless_skipped() {
    let missing = GOOD.replacen("credentials_file: SECRET", "credentials_file: /nonexistent/opsmon/token", 1);
    let e = error(&missing);
    assert!(
        e.contains("receivers.yml:12:31: receivers[1].webhook_configs[0].http_config.authorization.credentials_file: secret file `/nonexistent/opsmon/token` does not exist here; create it, or pass --skip-secret-files"),
        "{e}"
    );
    let dir = setup(&missing);
    check(dir.path(), false).expect("with the existence check off, a missing secret file is accepted");
    let e = error(&GOOD.replacen("api_url_file: SECRET", "api_url_file: secrets/slack", 1));
    assert!(e.contains("receivers.yml:15:23: receivers[2].slack_configs[0].api_url_file: secret file `secrets/slack` is relative; write an absolute path"), "{e}");
}

#[test]
fn unknown_integrations_empty_receivers_and_a_missing_file_are_reported() {
    let e = error(&GOOD.replace("slack_configs:", "slak_configs:"));
    assert!(e.contains("receivers.yml:14:5: receivers[2].slak_configs: unknown field `slak_configs`; did you mean `slack_configs`?"), "{e}");
    let e = error(&format!("{GOOD}  - name: spare\n"));
    assert!(
        e.contains("receivers.yml:18:5: receivers[3]: receiver `spare` has no integration, so Alertmanager would drop what is routed to it")
            && e.contains("receivers.yml:18:11: receivers: receiver `spare` is not used by any route"),
        "{e}"
    );
    let e = error(
        "receivers:\n  - name: default\n    webhook_configs: [{url: 'http://x'}]\n  - name: default\n    webhook_configs: [{url: 'http://y'}]\n",
    );
    assert!(e.contains("receivers.yml:4:11: receivers: duplicate receiver `default`"), "{e}");
    let dir = setup(GOOD);
    std::fs::remove_file(dir.path().join("receivers.yml")).expect("rm");
    let e = check(dir.path(), true).expect_err("missing file");
    assert!(
        e.contains(
            "thresholds.yaml:7:19: alertmanager.receivers_file: cannot read the receivers file receivers.yml"
        ),
        "{e}"
    );
}

#[test]
fn generate_writes_nothing_when_the_receivers_file_is_wrong() {
    let dir = setup(&GOOD.replace("name: chat", "name: chta"));
    let out = Command::new(env!("CARGO_BIN_EXE_rulegen"))
        .current_dir(dir.path())
        .args(["generate", "--out", "out", "--thresholds", "thresholds.yaml", "--exporter-config"])
        .arg(fixture::path("exporter.yml"))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("thresholds.yaml:24:15: severities[1].receiver: receiver `chat` is not defined"),
        "{stderr}"
    );
    assert!(stderr.contains("receivers.yml:13:11: receivers: receiver `chta` is not used"), "{stderr}");
    assert!(!dir.path().join("out").exists(), "nothing written");
}
