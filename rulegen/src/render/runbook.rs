//! One runbook page per alert (`docs/runbooks/<Alert>.md`, the target of its
//! runbook_url) with the guide's diagnosis and resolution steps and
//! commands, plus an index.

use crate::format::{fmt_num, format_duration};
use crate::model::{Alert, Model, Step};

fn steps(out: &mut String, steps: &[Step]) {
    for (i, step) in steps.iter().enumerate() {
        out.push_str(&format!("{}. {}\n", i + 1, step.title));
        if let Some(commands) = &step.commands {
            out.push_str("\n   ```sh\n");
            for line in commands.trim_end().lines() {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    out.push_str(&format!("   {line}\n"));
                }
            }
            out.push_str("   ```\n\n");
        }
    }
    if !out.ends_with("\n\n") {
        out.push('\n');
    }
}

fn unit_text(alert: &Alert) -> String {
    let t = alert.threshold;
    let value = match t.unit {
        opsmon_catalog::Unit::Ratio => format!("{} ({}%)", fmt_num(t.value), fmt_num(t.value * 100.0)),
        opsmon_catalog::Unit::Seconds => format!("{} s", fmt_num(t.value)),
        opsmon_catalog::Unit::Bytes => format!("{} bytes", fmt_num(t.value)),
        opsmon_catalog::Unit::None if alert.kind == "change" => {
            format!("{} × the baseline{}", fmt_num(t.value), baseline_text(t))
        }
        opsmon_catalog::Unit::None => fmt_num(t.value),
    };
    // Worded from the rule's own operator, so `<=` never reads "below".
    let word = match (t.direction, t.inclusive) {
        (d, false) => d.word().to_owned(),
        (d, true) => format!("at or {}", d.word()),
    };
    format!("{word} {value}")
}

/// What a change alert's baseline is, as its expression computes it.
fn baseline_text(t: crate::model::Threshold) -> String {
    let Some(b) = t.baseline else { return String::new() };
    let mut parts = vec![format!("the signal {} earlier", format_duration(b.offset))];
    if let Some(fallback) = b.fallback {
        parts.push(format!("{} while that has no data yet", fmt_num(fallback)));
    }
    if let Some(floor) = b.floor {
        parts.push(format!("at least {}", fmt_num(floor)));
    }
    format!(" ({})", parts.join("; "))
}

/// One page.
pub fn page(model: &Model, alert: &Alert) -> String {
    let tier = model.severities.iter().find(|t| t.name == alert.severity);
    let mut out = format!("<!-- {} -->\n\n# {}\n\n", super::header(&model.source), alert.name);
    let respond = tier.map_or(String::new(), |t| {
        let escalate = if t.escalation.is_empty() {
            t.escalate_after.as_ref().map(|e| format!("; escalate after {e}")).unwrap_or_default()
        } else {
            t.escalation
                .iter()
                .map(|e| format!("; after {} to {} ({})", format_duration(e.after), e.level, e.receiver))
                .collect()
        };
        format!(" — respond {}{escalate}", t.respond)
    });
    out.push_str(&format!("**Severity:** {}{respond}  \n", alert.severity));
    out.push_str(&format!("**Component:** {}  \n", alert.component));
    out.push_str(&format!("**Kind:** {}  \n", alert.kind));
    let for_ =
        if alert.for_.is_zero() { String::new() } else { format!(" for {}", format_duration(alert.for_)) };
    out.push_str(&format!("**Fires:** when the signal is {}{for_}  \n", unit_text(alert)));
    out.push_str(&format!(
        "**Dashboard:** [{} → {}]({})\n\n",
        alert.dashboard_place.0, alert.dashboard_place.1, alert.dashboard_url
    ));
    out.push_str(&format!("> {}\n\n{}\n\n", alert.summary.placeholders(), alert.description.placeholders()));
    out.push_str("## Expression\n\n```promql\n");
    out.push_str(&alert.expr);
    out.push_str("\n```\n\n");
    if alert.signal != alert.expr {
        out.push_str(&format!("Plotted signal: `{}`", alert.signal));
        if let Some((guard, min)) = &alert.guard {
            out.push_str(&format!("; volume guard: `{guard}` ≥ {}", fmt_num(*min)));
        }
        out.push_str("\n\n");
    }
    let rb = &alert.runbook;
    if !rb.first.is_empty() {
        out.push_str("## First checks\n\n");
        steps(&mut out, &rb.first);
    }
    if let Some(title) = &rb.procedure {
        out.push_str(&format!("## Diagnosis: {title}\n\n"));
        if let Some(source) = &rb.source {
            out.push_str(&format!("Source: {source}.\n\n"));
        }
        if let Some(symptoms) = &rb.symptoms {
            out.push_str(&format!("Symptoms: {symptoms}\n\n"));
        }
        steps(&mut out, &rb.diagnosis);
        if !rb.resolution.is_empty() {
            out.push_str("## Resolution\n\n");
            steps(&mut out, &rb.resolution);
        }
    }
    out.push_str(
        "## Escalation (故障升级流程)\n\n1. L1 — operations engineer on call (0–15 minutes): first diagnosis and routine fixes.\n2. L2 — senior engineer (15–30 minutes): complex diagnosis and repair.\n3. L3 — architect / CTO (30 minutes and more): architecture-level problems and major decisions.\n",
    );
    out
}

/// `docs/runbooks/README.md`.
pub fn index(model: &Model) -> String {
    let mut out = format!(
        "<!-- {} -->\n\n# Runbooks\n\nOne page per alert, linked from its `runbook_url`.\n\n| alert | severity | component | fires when |\n|---|---|---|---|\n",
        super::header(&model.source)
    );
    for alert in &model.alerts {
        out.push_str(&format!(
            "| [{}]({}.md) | {} | {} | {} |\n",
            alert.name,
            alert.name,
            alert.severity,
            alert.component,
            alert.summary.placeholders().replace('|', "\\|")
        ));
    }
    out
}
