//! Dashboard checks: layout and threshold invariants over the JSON, and a
//! type-check of every dashboard, panel options, field config and query
//! with tsc against Grafana's `@grafana/grafana-foundation-sdk` types.

use crate::fixture;
use opsmon_rulegen::layout::factor;
use opsmon_rulegen::model::{Direction, Model};
use opsmon_rulegen::render::grafana;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Pinned so the type-check is reproducible.
const SDK_VERSION: &str = "0.0.21";
const TYPESCRIPT_VERSION: &str = "5.9.3";

fn normalised(expr: &str) -> String {
    opsmon_rulegen::promql::parse(expr).map_or_else(|_| expr.to_owned(), |e| e.to_string())
}

/// Checks every invariant of the model's dashboards; returns the JSON.
pub fn check_dashboards(model: &Model) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut uids = Vec::new();
    for board in &model.boards {
        let json = grafana::dashboard(model, board);
        let text = serde_json::to_string(&json).expect("json");
        assert!(!text.contains("${DS_"), "{}: ${{DS_…}} inputs break file provisioning", board.id);
        assert!(json.get("__inputs").is_none());
        assert!(json["schemaVersion"].as_u64().expect("schemaVersion") <= 42);
        assert!(!uids.contains(&board.uid), "duplicate uid {}", board.uid);
        uids.push(board.uid.clone());
        let vars = json["templating"]["list"].as_array().expect("templating");
        let names: Vec<&str> = vars.iter().filter_map(|v| v["name"].as_str()).collect();
        assert_eq!(names, ["datasource", "job", "instance"], "{}: template variables", board.id);
        assert_eq!(vars[0]["type"], "datasource");
        for v in &vars[1..] {
            assert_eq!(v["type"], "query", "{}: {} is a query variable", board.id, v["name"]);
            assert_eq!(v["multi"], true);
            assert_eq!(v["includeAll"], true);
            // All must also match a series without the label.
            assert_eq!(v["allValue"], ".*");
            assert_eq!(v["datasource"]["uid"], "${datasource}");
        }
        let panels = json["panels"].as_array().expect("panels");
        let mut ids = Vec::new();
        let mut rects: Vec<(u64, u64, u64, u64, String)> = Vec::new();
        for p in panels {
            let id = p["id"].as_u64().expect("id");
            assert!(!ids.contains(&id), "{}: duplicate panel id {id}", board.id);
            ids.push(id);
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_u64().expect("x"),
                g["y"].as_u64().expect("y"),
                g["w"].as_u64().expect("w"),
                g["h"].as_u64().expect("h"),
            );
            assert!(w >= 1 && x + w <= 24, "{}: panel {id} exceeds the grid", board.id);
            for (ox, oy, ow, oh, title) in &rects {
                let overlap = x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h;
                assert!(!overlap, "{}: panel {id} overlaps {title}", board.id);
            }
            rects.push((x, y, w, h, p["title"].as_str().unwrap_or_default().to_owned()));
            if p["type"] == "row" {
                continue;
            }
            assert_eq!(p["datasource"]["uid"], "${datasource}");
            let unit = p["fieldConfig"]["defaults"]["unit"].as_str().expect("unit").to_owned();
            let steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"].as_array().expect("steps");
            assert!(steps[0]["value"].is_null(), "the base step has no value");
            let values: Vec<f64> = steps[1..].iter().map(|s| s["value"].as_f64().expect("value")).collect();
            assert!(values.windows(2).all(|w| w[0] < w[1]), "{}: steps ascend", board.id);
            for target in p["targets"].as_array().expect("targets") {
                let expr = normalised(target["expr"].as_str().expect("expr"));
                for alert in &model.alerts {
                    let Some(f) = factor(alert.threshold.unit, &alert.kind, &unit) else { continue };
                    let plotted = if f == 1.0 {
                        grafana::scoped(&alert.signal)
                    } else {
                        grafana::scoped(&format!("{f} * ({})", alert.signal))
                    };
                    if expr != plotted {
                        continue;
                    }
                    // A panel showing an alerting signal carries its threshold,
                    // in the panel's unit, coloured towards the alerting side.
                    let want = alert.threshold.value * f;
                    let color =
                        &model.severities.iter().find(|s| s.name == alert.severity).expect("tier").color;
                    let i = values
                        .iter()
                        .position(|v| (v - want).abs() <= 1e-9 * want.abs().max(1.0))
                        .unwrap_or_else(|| {
                            panic!("{}: panel {id} lacks {}'s threshold {want}", board.id, alert.name)
                        });
                    match alert.threshold.direction {
                        Direction::Above => {
                            assert_eq!(&steps[i + 1]["color"], color.as_str(), "{}: step colour", alert.name);
                            assert_eq!(steps[0]["color"], "green", "{}: healthy below", alert.name);
                        }
                        Direction::Below => {
                            // Health signals (kind up) are red at 0 whatever the tier.
                            let color = if alert.kind.as_str() == "up" { "red" } else { color.as_str() };
                            assert_eq!(steps[i]["color"], color, "{}: colour below", alert.name);
                            assert_eq!(
                                steps[steps.len() - 1]["color"],
                                "green",
                                "{}: healthy above",
                                alert.name
                            );
                        }
                    }
                }
            }
        }
        out.push((board.id.clone(), json));
    }
    // Every alert's dashboard link points at a panel that carries its threshold.
    for alert in &model.alerts {
        let (board_uid, panel) = alert
            .dashboard_url
            .split("/d/")
            .nth(1)
            .and_then(|rest| rest.split_once('/'))
            .map(|(uid, rest)| {
                (uid.to_owned(), rest.rsplit("viewPanel=").next().unwrap_or_default().to_owned())
            })
            .unwrap_or_else(|| panic!("{}: bad dashboard_url {}", alert.name, alert.dashboard_url));
        let (_, json) = out.iter().find(|(_, j)| j["uid"] == board_uid.as_str()).expect("board of the link");
        let panel: u64 = panel.parse().expect("panel id");
        let p = json["panels"]
            .as_array()
            .expect("panels")
            .iter()
            .find(|p| p["id"] == panel)
            .expect("linked panel");
        assert!(
            p["description"].as_str().unwrap_or_default().contains(&alert.name),
            "{}: linked panel does not show it",
            alert.name
        );
    }
    out
}

/// Every selector of every panel query carries `job=~"$job"` and
/// `instance=~"$instance"`, so one chosen host shows only its own series.
pub fn check_scoped_queries(boards: &[(String, Value)]) {
    let mut queries = 0;
    for (board, json) in boards {
        for p in json["panels"].as_array().expect("panels") {
            for target in p["targets"].as_array().into_iter().flatten() {
                let text = target["expr"].as_str().expect("expr");
                let expr = opsmon_rulegen::promql::parse(text).expect("panel query parses");
                let selectors = opsmon_rulegen::promql::selectors(&expr);
                assert!(!selectors.is_empty(), "{board}: `{text}` selects nothing");
                for vs in selectors {
                    for (label, variable) in [("job", "$job"), ("instance", "$instance")] {
                        let scoped = vs.matchers.matchers.iter().any(|m| {
                            m.name == label
                                && matches!(m.op, promql_parser::label::MatchOp::Re(_))
                                && m.value == variable
                        });
                        assert!(
                            scoped,
                            "{board}: panel {:?}: a selector of `{text}` lacks {label}=~\"{variable}\"",
                            p["title"]
                        );
                    }
                }
                queries += 1;
            }
        }
    }
    assert!(queries > 0, "no panel queries checked");
}

#[test]
fn fixture_dashboards_hold_the_invariants() {
    let model = fixture::model();
    let boards = check_dashboards(&model);
    assert_eq!(boards.len(), 2);
    check_scoped_queries(&boards);
}

fn tsc_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| fixture::repo_root().join("target"), PathBuf::from);
    target.join("rulegen-tsc")
}

/// tsc with the SDK installed (npm install into target/ on first use).
pub fn tsc() -> PathBuf {
    // One install at a time in this process; another process sees either no
    // directory or a complete one, since it is installed aside and renamed.
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tsc_dir();
    let tsc = dir.join("node_modules/.bin/tsc");
    let sdk = dir.join("node_modules/@grafana/grafana-foundation-sdk/package.json");
    if tsc.is_file() && std::fs::read_to_string(&sdk).is_ok_and(|t| t.contains(SDK_VERSION)) {
        return tsc;
    }
    let npm = fixture::require("npm", "npm");
    fixture::require("node", "nodejs");
    let staging = dir.with_extension(format!("staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).expect("tsc dir");
    let package = format!(
        "{{\"name\": \"rulegen-tsc\", \"private\": true, \"dependencies\": {{\"@grafana/grafana-foundation-sdk\": \"{SDK_VERSION}\", \"typescript\": \"{TYPESCRIPT_VERSION}\"}}}}\n"
    );
    std::fs::write(staging.join("package.json"), package).expect("package.json");
    fixture::run(Command::new(npm).current_dir(&staging).args([
        "install",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
    ]));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&staging, &dir).expect("move the tsc install into place");
    assert!(tsc.is_file(), "npm install did not provide tsc");
    tsc
}

const LOOSE: &str = "// JSON literals use enum values as strings; map the SDK's enums to their
// literal values (and drop builder-only methods) so tsc checks the JSON as is.
type IsAny<T> = 0 extends 1 & T ? true : false;
type Loose<T> = IsAny<T> extends true
  ? any
  : T extends number
    ? number
    : T extends string
      ? `${T}`
      : T extends boolean | null | undefined
        ? T
        : T extends (infer U)[]
          ? Loose<U>[]
          : T extends object
            ? { [K in keyof T as T[K] extends (...args: any[]) => any ? never : K]: Loose<T[K]> }
            : T;
";

/// Writes a .ts file holding every dashboard and panel part as typed constants.
fn typescript(boards: &[(String, Value)]) -> String {
    let mut ts = String::from(
        "import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';\nimport * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';\nimport * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';\nimport * as stat from '@grafana/grafana-foundation-sdk/stat';\nimport * as gauge from '@grafana/grafana-foundation-sdk/gauge';\nimport * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';\nimport * as common from '@grafana/grafana-foundation-sdk/common';\n",
    );
    ts.push_str(LOOSE);
    for (id, json) in boards {
        ts.push_str(&format!("export const {id}: Loose<dashboard.Dashboard> = {json};\n"));
        for p in json["panels"].as_array().expect("panels") {
            let pid = p["id"].as_u64().expect("id");
            let kind = p["type"].as_str().expect("type");
            if kind == "row" {
                continue;
            }
            ts.push_str(&format!(
                "export const {id}_{pid}_options: Loose<{kind}.Options> = {};\n",
                p["options"]
            ));
            let defaults = &p["fieldConfig"]["defaults"];
            if let Some(custom) = defaults.get("custom") {
                ts.push_str(&format!(
                    "export const {id}_{pid}_custom: Loose<common.GraphFieldConfig> = {custom};\n"
                ));
            }
            for (i, target) in p["targets"].as_array().expect("targets").iter().enumerate() {
                ts.push_str(&format!(
                    "export const {id}_{pid}_target{i}: Loose<prometheus.Dataquery> = {target};\n"
                ));
            }
        }
    }
    ts
}

/// Type-checks dashboards with tsc; panics with tsc's messages.
pub fn type_check(boards: &[(String, Value)], dir: &Path) {
    let tsc = tsc();
    let file = dir.join("dashboards.ts");
    std::fs::write(&file, typescript(boards)).expect("write ts");
    let modules = tsc_dir().join("node_modules");
    // Resolve the SDK from the cache directory.
    std::os::unix::fs::symlink(&modules, dir.join("node_modules")).expect("link node_modules");
    fixture::run(Command::new(tsc).current_dir(dir).args([
        "--noEmit",
        "--strict",
        "--target",
        "es2020",
        "--module",
        "nodenext",
        "--moduleResolution",
        "nodenext",
        "dashboards.ts",
    ]));
}

#[test]
fn fixture_dashboards_type_check_against_the_grafana_sdk() {
    let boards = check_dashboards(&fixture::model());
    let dir = tempfile::tempdir().expect("temp dir");
    type_check(&boards, dir.path());
}

#[test]
fn the_type_check_catches_a_wrong_field() {
    let mut boards = check_dashboards(&fixture::model());
    boards.truncate(1);
    boards[0].1["panels"][1]["gridPos"]["wdth"] = Value::from(3);
    let dir = tempfile::tempdir().expect("temp dir");
    let result = std::panic::catch_unwind(|| type_check(&boards, dir.path()));
    let message = result.expect_err("tsc must reject an unknown gridPos field");
    let text = message.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("wdth"), "{text}");
}
