//! The independent judges: promtool over the generated rules and tests,
//! amtool over the routing, and the PrometheusRule against the rule file.

use crate::fixture;
use serde_json::Value;

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("generated YAML parses")
}

fn output(path: &str) -> String {
    fixture::outputs().into_iter().find(|o| o.path == path).map(|o| o.content).expect("generated")
}

#[test]
fn promtool_checks_and_tests_the_fixture_rules() {
    let dir = fixture::write(&fixture::outputs());
    fixture::promtool(dir.path());
}

#[test]
fn amtool_accepts_the_routing_and_routes_each_severity() {
    let dir = fixture::write(&fixture::outputs());
    fixture::amtool(dir.path());
}

#[test]
fn rule_file_is_valid_for_prometheus_2_42() {
    let rules = yaml(&output("deploy/prometheus/rules.yml"));
    for group in rules["groups"].as_array().expect("groups") {
        for key in group.as_object().expect("group").keys() {
            // 2.42 rejects group-level `labels` and `query_offset`.
            assert!(["name", "rules", "interval"].contains(&key.as_str()), "group key {key}");
        }
        for rule in group["rules"].as_array().expect("rules") {
            if rule.get("alert").is_some() {
                assert!(rule["labels"]["severity"].is_string(), "{rule}");
                for annotation in ["summary", "description", "runbook_url", "dashboard_url"] {
                    assert!(rule["annotations"][annotation].is_string(), "{annotation} missing in {rule}");
                }
            }
        }
    }
}

#[test]
fn prometheusrule_carries_the_same_groups_and_the_selector_labels() {
    let rules = yaml(&output("deploy/prometheus/rules.yml"));
    let crd = yaml(&output("deploy/kubernetes/prometheusrule.yaml"));
    assert_eq!(crd["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(crd["kind"], "PrometheusRule");
    assert_eq!(crd["metadata"]["name"], "fixture");
    assert_eq!(crd["metadata"]["namespace"], "monitoring");
    assert_eq!(crd["metadata"]["labels"]["release"], "prom");
    assert_eq!(crd["spec"]["groups"], rules["groups"]);
}

#[test]
fn inhibit_rules_use_labels_both_sides_carry() {
    let am = yaml(&output("deploy/alertmanager/alertmanager.yml"));
    let rules = am["inhibit_rules"].as_array().expect("inhibit rules");
    assert!(!rules.is_empty());
    let model = fixture::model();
    for rule in rules {
        let component = rule["source_matchers"][1].as_str().expect("matcher");
        let component = component.trim_start_matches("component=\"").trim_end_matches('"');
        for label in rule["equal"].as_array().expect("equal") {
            let label = label.as_str().expect("label");
            for alert in model.alerts.iter().filter(|a| a.component == component) {
                let carried = alert.labels.contains_key(label)
                    || alert.series_labels.as_ref().is_some_and(|l| l.iter().any(|x| x == label));
                assert!(carried, "{} does not carry inhibit label {label}", alert.name);
            }
        }
    }
}

#[test]
fn routes_follow_the_tiers() {
    let am = yaml(&output("deploy/alertmanager/alertmanager.yml"));
    let routes = am["route"]["routes"].as_array().expect("routes");
    assert_eq!(routes[0]["matchers"][0], "severity=\"critical\"");
    assert_eq!(routes[0]["receiver"], "pager");
    assert_eq!(routes[0]["repeat_interval"], "15m");
    assert_eq!(routes[1]["repeat_interval"], "1h");
}
