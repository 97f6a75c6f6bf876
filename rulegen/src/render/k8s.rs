//! The Kubernetes `PrometheusRule` (monitoring.coreos.com/v1): the same
//! rule groups as the rule file, with the configured metadata labels that
//! the Prometheus operator's ruleSelector matches.

use crate::model::Model;
use crate::render::prometheus::groups;
use crate::render::yamlw::{Y, map, s, write};

/// `deploy/kubernetes/prometheusrule.yaml`.
pub fn render(model: &Model) -> String {
    let k = &model.kubernetes;
    let labels = Y::Map(k.labels.iter().map(|(key, value)| (key.clone(), s(value))).collect());
    let doc = map([
        ("apiVersion", s("monitoring.coreos.com/v1")),
        ("kind", s("PrometheusRule")),
        ("metadata", map([("name", s(&k.name)), ("namespace", s(&k.namespace)), ("labels", labels)])),
        ("spec", map([("groups", groups(model))])),
    ]);
    format!(
        "# {}\n# Apply: kubectl apply -f prometheusrule.yaml\n{}",
        super::header(&model.source),
        write(&doc)
    )
}
