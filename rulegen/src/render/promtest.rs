//! promtool unit tests, one test group per alert: the signal just on the
//! safe side of the threshold (silent), past it for less than `for`
//! (pending, not firing), then past it after `for` (firing, with the exact
//! labels and annotations). Relative kinds get a synthetic baseline phase
//! first. Every range window at a check time lies inside one linear phase
//! of the input, so no result depends on whether a sample sits exactly on
//! a window boundary (Prometheus 3 made windows left-open).

use crate::eval::{Labels, STEP, World};
use crate::model::{Alert, Model};
use crate::promql::format_duration;
use crate::render::yamlw::{Y, map, s, write};
use crate::synth::series_text;
use std::time::Duration;

fn at(t: f64) -> Y {
    s(format_duration(Duration::from_secs(t as u64)))
}

/// A sample value without float noise (`117.60000000000001` → `117.6`); the
/// last digits do not change any rate or humanized annotation.
fn clean(v: f64) -> String {
    let rounded: f64 = format!("{v:.12e}").parse().unwrap_or(v);
    format!("{rounded}")
}

/// promtool's expanding notation for one series over `0..=end`: one
/// `a+bxn` run per phase (`axn` when constant, `_xn` when absent), with
/// equal constant runs of consecutive phases merged.
pub fn values(world: &World, index: usize, end: f64) -> String {
    let series = &world.series[index];
    let samples = (end / STEP) as usize;
    // (first value, step per sample, count) or None for missing samples.
    let mut runs: Vec<(Option<(f64, f64)>, usize)> = Vec::new();
    let mut k = 0usize;
    while k <= samples {
        let t = k as f64 * STEP;
        let phase = world.phase_at(t);
        let present = world.value_at(index, t).is_some();
        let mut m = 1;
        while k + m <= samples
            && world.phase_at((k + m) as f64 * STEP) == phase
            && world.value_at(index, (k + m) as f64 * STEP).is_some() == present
        {
            m += 1;
        }
        let run = world.value_at(index, t).map(|first| {
            let slope = series.segs[phase].map_or(0.0, |seg| seg.s);
            (first, slope * STEP)
        });
        match (runs.last_mut(), run) {
            (Some((Some((a, 0.0)), n)), Some((b, 0.0))) if *a == b => *n += m,
            (Some((None, n)), None) => *n += m,
            _ => runs.push((run, m)),
        }
        k += m;
    }
    let parts: Vec<String> = runs
        .into_iter()
        .map(|(run, m)| match run {
            None if m == 1 => "_".to_owned(),
            None => format!("_x{m}"),
            Some((first, _)) if m == 1 => clean(first),
            Some((first, 0.0)) => format!("{}x{}", clean(first), m - 1),
            Some((first, step)) if step > 0.0 => format!("{}+{}x{}", clean(first), clean(step), m - 1),
            Some((first, step)) => format!("{}-{}x{}", clean(first), clean(-step), m - 1),
        })
        .collect();
    parts.join(" ")
}

fn exp_labels(alert: &Alert, labels: &Labels) -> Y {
    let mut all: Labels =
        labels.iter().filter(|(k, _)| *k != "__name__").map(|(k, v)| (k.clone(), v.clone())).collect();
    for (k, v) in &alert.labels {
        all.insert(k.clone(), v.clone());
    }
    Y::Map(all.into_iter().map(|(k, v)| (k, s(v))).collect())
}

fn group(alert: &Alert) -> Y {
    let sc = &alert.scenario;
    let series = (0..sc.world.series.len())
        .map(|i| {
            map([
                ("series", s(series_text(&sc.world.series[i].labels))),
                ("values", s(values(&sc.world, i, sc.end))),
            ])
        })
        .collect();
    let name = || s(&alert.name);
    let mut checks =
        vec![map([("alertname", name()), ("eval_time", at(sc.silent_at)), ("exp_alerts", Y::Seq(vec![]))])];
    if let Some(p) = sc.pending_at {
        checks.push(map([("alertname", name()), ("eval_time", at(p)), ("exp_alerts", Y::Seq(vec![]))]));
    }
    let firing = sc
        .firing
        .iter()
        .map(|sample| {
            let mut labels = sample.labels.clone();
            labels.remove("__name__");
            let annotations = vec![
                ("summary".to_owned(), s(alert.summary.render(&labels, sample.value))),
                ("description".to_owned(), s(alert.description.render(&labels, sample.value))),
                ("runbook_url".to_owned(), s(&alert.runbook_url)),
                ("dashboard_url".to_owned(), s(&alert.dashboard_url)),
            ];
            map([("exp_labels", exp_labels(alert, &sample.labels)), ("exp_annotations", Y::Map(annotations))])
        })
        .collect();
    checks.push(map([
        ("alertname", name()),
        ("eval_time", at(sc.firing_at)),
        ("exp_alerts", Y::Seq(firing)),
    ]));
    let mut group = vec![
        ("interval".to_owned(), s("1m")),
        ("input_series".to_owned(), Y::Seq(series)),
        ("alert_rule_test".to_owned(), Y::Seq(checks)),
    ];
    if let (Some(p), false) = (sc.pending_at, sc.pending.is_empty()) {
        let samples = sc
            .pending
            .iter()
            .map(|sample| {
                let mut labels: Labels = sample
                    .labels
                    .iter()
                    .filter(|(k, _)| *k != "__name__")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                labels.extend(alert.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                labels.insert("__name__".into(), "ALERTS".into());
                labels.insert("alertname".into(), alert.name.clone());
                labels.insert("alertstate".into(), "pending".into());
                map([("labels", s(series_text(&labels))), ("value", Y::Num(1.0))])
            })
            .collect();
        let query = format!("ALERTS{{alertname=\"{}\",alertstate=\"pending\"}}", alert.name);
        group.push((
            "promql_expr_test".to_owned(),
            Y::Seq(vec![map([("expr", s(query)), ("eval_time", at(p)), ("exp_samples", Y::Seq(samples))])]),
        ));
    }
    Y::Map(group)
}

/// `deploy/prometheus/rules.test.yml`.
pub fn render(model: &Model) -> String {
    let mut out = format!(
        "# {}\n# Run: promtool test rules rules.test.yml\n# One group per alert: silent just on the safe side of the threshold, pending\n# (not firing; the ALERTS series pending where windows allow) before `for`,\n# firing after it. Range windows at every check lie inside one\n# linear phase of the input, so no result depends on a sample sitting exactly\n# on a window boundary.\n",
        super::header(&model.source)
    );
    let tests = model.alerts.iter().map(group).collect();
    out.push_str(&write(&map([
        ("rule_files", Y::Seq(vec![s("rules.yml")])),
        ("evaluation_interval", s("1m")),
        ("tests", Y::Seq(tests)),
    ])));
    out
}
