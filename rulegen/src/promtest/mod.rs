//! The promtool unit-test scenario of each alert, as plain data for the
//! model: where the signal sits (just on the safe side of its threshold,
//! then just past it), the synthetic input series that put it there
//! (`synth`), and what promtool will compute from them (`eval`). Only
//! this module knows the evaluator; the model holds its result and
//! `render::promtest` prints it.

mod eval;
mod synth;

use crate::known::Known;
use crate::model::{Direction, InputSeries, Sample, Scenario, Threshold};
use eval::{STEP, World};
use opsmon_catalog::Unit;
use std::time::Duration;
use synth::nice;
pub use synth::{Plan, SynthError};

/// Builds and checks one alert's scenario.
pub fn scenario(known: &Known, plan: &Plan<'_>) -> Result<Scenario, SynthError> {
    let run = synth::run(known, plan)?;
    let series = run
        .world
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| InputSeries {
            series: crate::format::series_text(&s.labels),
            values: values(&run.world, i, run.end),
        })
        .collect();
    let sample = |s: eval::Sample| {
        let mut labels = s.labels;
        labels.remove("__name__");
        Sample { labels, value: s.value }
    };
    Ok(Scenario {
        series,
        silent_at: at(run.silent_at),
        pending_at: run.pending_at.map(at),
        pending: run.pending.into_iter().map(sample).collect(),
        firing_at: at(run.firing_at),
        firing: run.firing.into_iter().map(sample).collect(),
    })
}

/// Check times are whole minutes on the test's timeline.
fn at(t: f64) -> Duration {
    Duration::from_secs(t as u64)
}

/// Levels just on the safe side of the threshold and just past it; `base`
/// stands in for the distance when the threshold is zero.
pub fn levels(t: Threshold, base: f64) -> (f64, f64) {
    let delta = if t.value == 0.0 { base } else { nice(t.value.abs() * 0.1) };
    let (mut safe, mut past) = match t.direction {
        Direction::Above => (t.value - delta, t.value + delta),
        Direction::Below => (t.value + delta, t.value - delta),
    };
    if t.unit == Unit::Ratio {
        if past > 1.0 {
            past = (t.value + 1.0) / 2.0;
        }
        if safe > 1.0 {
            safe = (t.value + 1.0) / 2.0;
        }
    }
    (nice(safe), nice(past))
}

/// A sample value without float noise (`117.60000000000001` → `117.6`); the
/// last digits do not change any rate or humanized annotation.
fn clean(v: f64) -> String {
    let rounded: f64 = format!("{v:.12e}").parse().unwrap_or(v);
    format!("{rounded}")
}

/// promtool's expanding notation for one series over `0..=end`: one
/// `a+bxn` run per phase (`axn` when constant, `_xn` when absent), with
/// equal constant runs of consecutive phases merged. A series is linear
/// (or absent) throughout a phase, so each run's length comes from the
/// phase boundaries: the cost is per phase, not per sample, and does not
/// grow with `for` or the range windows.
fn values(world: &World, index: usize, end: f64) -> String {
    let series = &world.series[index];
    let samples = (end / STEP) as usize;
    // (first value, step per sample, count) or None for missing samples.
    let mut runs: Vec<(Option<(f64, f64)>, usize)> = Vec::new();
    let mut k = 0usize;
    while k <= samples {
        let t = k as f64 * STEP;
        let phase = world.phase_at(t);
        // The first sample of the next phase, or one past the last sample.
        let next = world
            .starts
            .get(phase + 1)
            .map_or(samples + 1, |&start| (start / STEP).ceil() as usize)
            .clamp(k + 1, samples + 1);
        let m = next - k;
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
