//! The Kubernetes `PrometheusRule` (monitoring.coreos.com/v1): the same
//! rule groups as the rule file, with the configured metadata labels that
//! the Prometheus operator's ruleSelector matches, and the exporter's job
//! matchers renamed to the operator's job (the Service name).

use crate::model::Model;
use crate::render::prometheus::groups;
use crate::render::yamlw::{Y, map, s, write};

/// Under prometheus-operator the exporter's `job` label is its Service's
/// name: every `job="<exporter_job>"` matcher of an expression names it
/// instead (else `absent(up{job="opsmon"})` fires forever).
fn retarget(y: Y, from: &str, to: &str) -> Y {
    if from == to {
        return y;
    }
    let (old, new) = (format!("job=\"{from}\""), format!("job=\"{to}\""));
    fn walk(y: Y, old: &str, new: &str) -> Y {
        match y {
            Y::Seq(items) => Y::Seq(items.into_iter().map(|i| walk(i, old, new)).collect()),
            Y::Map(entries) => Y::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| match (k.as_str(), v) {
                        ("expr", Y::Str(e)) => (k, Y::Str(e.replace(old, new))),
                        (_, v) => (k, walk(v, old, new)),
                    })
                    .collect(),
            ),
            other => other,
        }
    }
    walk(y, &old, &new)
}

/// `deploy/kubernetes/prometheusrule.yaml`.
pub fn render(model: &Model) -> String {
    let k = &model.kubernetes;
    let labels = Y::Map(k.labels.iter().map(|(key, value)| (key.clone(), s(value))).collect());
    let doc = map([
        ("apiVersion", s("monitoring.coreos.com/v1")),
        ("kind", s("PrometheusRule")),
        ("metadata", map([("name", s(&k.name)), ("namespace", s(&k.namespace)), ("labels", labels)])),
        ("spec", map([("groups", retarget(groups(model), &k.exporter_job, &k.job))])),
    ]);
    format!(
        "# {}\n# Apply: kubectl apply -f prometheusrule.yaml\n{}",
        super::header(&model.source),
        write(&doc)
    )
}
