//! Alertmanager routing: one route per severity tier with the tier's
//! timings and receiver, inhibit rules (a tier silences the tiers it names
//! for the same component) on labels every involved alert really carries,
//! the user's receivers merged in from their own file (empty receivers when
//! the threshold file names none), and an `amtool config routes test`
//! script with one case per tier plus the fallback.

use crate::format::format_duration;
use crate::model::{Alert, Model};
use crate::render::yamlw::{Y, map, s, write};
use crate::yaml::{Node, Value};
use std::collections::BTreeSet;

/// Labels an alert surely carries (series labels when known, plus static ones).
fn carried(alert: &Alert) -> BTreeSet<String> {
    let mut labels: BTreeSet<String> = alert.labels.keys().cloned().collect();
    if let Some(series) = &alert.series_labels {
        labels.extend(series.iter().cloned());
    }
    labels.remove("severity");
    labels
}

/// (source tier, target tier, component, equal labels) of each inhibit rule.
pub fn inhibitions(model: &Model) -> Vec<(String, String, String, Vec<String>)> {
    let mut out = Vec::new();
    let mut components: Vec<&str> = Vec::new();
    for a in &model.alerts {
        if !components.contains(&a.component.as_str()) {
            components.push(&a.component);
        }
    }
    for tier in &model.severities {
        for target in &tier.inhibits {
            for component in &components {
                let involved: Vec<&Alert> = model
                    .alerts
                    .iter()
                    .filter(|a| {
                        a.component == *component && (a.severity == tier.name || a.severity == *target)
                    })
                    .collect();
                let has = |sev: &str| involved.iter().any(|a| a.severity == sev);
                if !has(&tier.name) || !has(target) {
                    continue;
                }
                let mut equal = carried(involved[0]);
                for a in &involved[1..] {
                    equal = equal.intersection(&carried(a)).cloned().collect();
                }
                out.push((
                    tier.name.clone(),
                    target.clone(),
                    (*component).to_owned(),
                    equal.into_iter().collect(),
                ));
            }
        }
    }
    out
}

/// Every receiver a route names, in route order.
pub fn receivers(model: &Model) -> Vec<String> {
    let mut out = vec![model.alertmanager.default_receiver.clone()];
    let mut add = |r: &String| {
        if !out.contains(r) {
            out.push(r.clone());
        }
    };
    if let Some((r, _)) = &model.alertmanager.watchdog {
        add(r);
    }
    for tier in &model.severities {
        for step in &tier.escalation {
            add(&step.receiver);
        }
        add(&tier.receiver);
    }
    out
}

/// Routes ahead of the tiers': the Watchdog to the dead-man's switch, then
/// each escalation step to its level's receiver (grouped per original
/// alert, repeated at the tier's pace).
fn delivery_routes(model: &Model) -> Vec<Y> {
    let mut routes = Vec::new();
    if let Some((receiver, repeat)) = &model.alertmanager.watchdog {
        routes.push(map([
            ("matchers", Y::Seq(vec![s("alertname=\"Watchdog\"")])),
            ("receiver", s(receiver)),
            ("group_wait", s("0s")),
            ("group_interval", s("1m")),
            ("repeat_interval", s(repeat)),
        ]));
    }
    for t in &model.severities {
        for step in &t.escalation {
            routes.push(map([
                (
                    "matchers",
                    Y::Seq(vec![
                        s(format!("severity=\"{}\"", t.name)),
                        s(format!("escalation=\"{}\"", step.level)),
                    ]),
                ),
                ("receiver", s(&step.receiver)),
                ("group_wait", s(&t.group_wait)),
                ("group_interval", s(&t.group_interval)),
                ("repeat_interval", s(&t.repeat_interval)),
            ]));
        }
    }
    routes
}

/// `deploy/alertmanager/alertmanager.yml`.
pub fn render(model: &Model) -> String {
    let am = &model.alertmanager;
    let mut routes = delivery_routes(model);
    routes.extend(model.severities.iter().map(|t| {
        map([
            ("matchers", Y::Seq(vec![s(format!("severity=\"{}\"", t.name))])),
            ("receiver", s(&t.receiver)),
            ("group_wait", s(&t.group_wait)),
            ("group_interval", s(&t.group_interval)),
            ("repeat_interval", s(&t.repeat_interval)),
        ])
    }));
    let inhibit: Vec<Y> = inhibitions(model)
        .into_iter()
        .map(|(source, target, component, equal)| {
            map([
                (
                    "source_matchers",
                    Y::Seq(vec![
                        s(format!("severity=\"{source}\"")),
                        s(format!("component=\"{component}\"")),
                    ]),
                ),
                (
                    "target_matchers",
                    Y::Seq(vec![
                        s(format!("severity=\"{target}\"")),
                        s(format!("component=\"{component}\"")),
                    ]),
                ),
                ("equal", Y::Seq(equal.into_iter().map(s).collect())),
            ])
        })
        .collect();
    let mut inhibit: Vec<Y> = inhibit;
    for source in model.alerts.iter().filter(|a| !a.inhibits.is_empty()) {
        let targets: Vec<&Alert> =
            model.alerts.iter().filter(|a| source.inhibits.contains(&a.name)).collect();
        // Same component: on the same component and instance; a cause in
        // another component (nginx for the API): on the same instance.
        let mut equal: Vec<String> = if targets.iter().all(|t| t.component == source.component) {
            vec!["component".into(), "instance".into()]
        } else {
            vec!["instance".into()]
        };
        for a in std::iter::once(source).chain(targets.iter().copied()) {
            let has = carried(a);
            equal.retain(|l| has.contains(l));
        }
        inhibit.push(map([
            ("source_matchers", Y::Seq(vec![s(format!("alertname=\"{}\"", source.name))])),
            ("target_matchers", Y::Seq(vec![s(format!("alertname=~\"{}\"", source.inhibits.join("|")))])),
            ("equal", Y::Seq(equal.iter().map(s).collect())),
        ]));
        // A silenced symptom still fires in Prometheus, so its escalation
        // alerts (which keep its labels) would page L2/L3 for it: silence
        // those too.
        let escalates = targets.iter().any(|t| {
            model.severities.iter().any(|tier| tier.name == t.severity && !tier.escalation.is_empty())
        });
        if escalates {
            inhibit.push(map([
                ("source_matchers", Y::Seq(vec![s(format!("alertname=\"{}\"", source.name))])),
                (
                    "target_matchers",
                    Y::Seq(vec![s(format!("escalated_alertname=~\"{}\"", source.inhibits.join("|")))]),
                ),
                ("equal", Y::Seq(equal.into_iter().map(s).collect())),
            ]));
        }
    }
    let doc = map([
        ("global", map([("resolve_timeout", s(&am.resolve_timeout))])),
        (
            "route",
            map([
                ("receiver", s(&am.default_receiver)),
                ("group_by", Y::Seq(am.group_by.iter().map(s).collect())),
                ("group_wait", s("30s")),
                ("group_interval", s("5m")),
                ("repeat_interval", s("4h")),
                ("routes", Y::Seq(routes)),
            ]),
        ),
        ("inhibit_rules", Y::Seq(inhibit)),
        ("receivers", Y::Seq(receiver_entries(model))),
    ]);
    let mut tiers = String::new();
    for t in &model.severities {
        let escalate = if t.escalation.is_empty() {
            t.escalate_after.as_ref().map(|e| format!(", escalate after {e}")).unwrap_or_default()
        } else {
            t.escalation
                .iter()
                .map(|e| format!(", after {} {} → {}", format_duration(e.after), e.level, e.receiver))
                .collect()
        };
        tiers.push_str(&format!(
            "#   {}: respond {}{escalate} → receiver {}\n",
            t.name, t.respond, t.receiver
        ));
    }
    let about_receivers = match &am.receivers {
        Some(r) => format!(
            "# The receivers are copied from {} (yours; rulegen never writes it):\n# edit them there and run `rulegen generate` again.\n",
            r.source
        ),
        None => "# The receivers are empty (Alertmanager drops what they get): set\n# alertmanager.receivers_file in the threshold file to a file holding your\n# receivers (Alertmanager's format, secrets by *_file) and generate again.\n".to_owned(),
    };
    format!(
        "# {}\n# Check: amtool check-config alertmanager.yml; routes: sh routes-test.sh\n#\n# Severity tiers:\n{tiers}#\n{about_receivers}{}",
        super::header(&model.source),
        write(&doc)
    )
}

/// The `receivers` list: the user's, in their file's order, or an empty
/// one per routed name.
fn receiver_entries(model: &Model) -> Vec<Y> {
    match &model.alertmanager.receivers {
        Some(r) => r
            .list
            .iter()
            .map(|(name, fields)| {
                let mut entries = vec![("name".to_owned(), s(name))];
                entries.extend(fields.iter().map(|(k, v)| (k.clone(), tree(v))));
                Y::Map(entries)
            })
            .collect(),
        None => receivers(model).into_iter().map(|r| map([("name", s(r))])).collect(),
    }
}

/// A YAML tree as the writer's value, types kept (a quoted `'true'` stays a string).
fn tree(node: &Node) -> Y {
    match &node.value {
        Value::Null => Y::Null,
        Value::Bool(b) => Y::Bool(*b),
        Value::Int(i) => Y::Num(*i as f64),
        Value::Float(f) => Y::Num(*f),
        Value::Str(text) => s(text),
        Value::Seq(items) => Y::Seq(items.iter().map(tree).collect()),
        Value::Map(entries) => Y::Map(entries.iter().map(|(k, v)| (k.name.clone(), tree(v))).collect()),
    }
}

/// `deploy/alertmanager/routes-test.sh`.
pub fn routes_test(model: &Model) -> String {
    let mut out = format!(
        "#!/bin/sh\n# {}\n# Checks that each severity reaches its receiver: sh routes-test.sh\n# (amtool comes with Debian's prometheus-alertmanager).\nset -eu\ncd \"$(dirname \"$0\")\"\ncheck() {{\n  expected=$1\n  shift\n  if ! amtool config routes test --config.file=alertmanager.yml --verify.receivers=\"$expected\" \"$@\" >/dev/null 2>&1; then\n    echo \"FAIL: $* is not routed to $expected\" >&2\n    exit 1\n  fi\n  echo \"ok: $* -> $expected\"\n}}\n",
        super::header(&model.source)
    );
    for tier in &model.severities {
        let Some(alert) = model.alerts.iter().find(|a| a.severity == tier.name) else { continue };
        let mut labels = vec![format!("alertname={}", alert.name)];
        labels.extend(alert.labels.iter().map(|(k, v)| format!("{k}={v}")));
        out.push_str(&format!("check {} {}\n", tier.receiver, labels.join(" ")));
    }
    if let Some((receiver, _)) = &model.alertmanager.watchdog {
        out.push_str(&format!("check {receiver} alertname=Watchdog severity=none component=monitoring\n"));
    }
    for tier in &model.severities {
        let Some(alert) = model.alerts.iter().find(|a| a.severity == tier.name) else { continue };
        for step in &tier.escalation {
            let name = crate::render::prometheus::escalation_alert(model, &tier.name, &step.level);
            out.push_str(&format!(
                "check {} alertname={name} escalated_alertname={} severity={} component={} escalation={}\n",
                step.receiver, alert.name, tier.name, alert.component, step.level
            ));
        }
    }
    out.push_str(&format!(
        "check {} alertname=Unrouted severity=none\n",
        model.alertmanager.default_receiver
    ));
    out
}
