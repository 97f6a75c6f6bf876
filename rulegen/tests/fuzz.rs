//! Property/fuzz tests of `rulegen check`'s library path: the threshold file
//! (YAML → spec → validation against the exporter's known metrics, promtool
//! scenarios included) and the exporter config rulegen reads for the known
//! metrics. Never a panic; never a hang: every case runs on a thread with a
//! generous deadline ([`HANG_LIMIT`]), a guard against runaway work such as
//! issue 10's `for: 100y`, not a performance goal. Every refusal names the
//! file and a position.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step must fail the test loudly

#[path = "../../fuzz/mutate.rs"]
mod mutate;

use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use opsmon_rulegen::known::Known;
use opsmon_rulegen::validate::validate;
use proptest::prelude::*;

/// Far above the slowest valid file (the shipped thresholds take well under
/// a second); only runaway work reaches it.
const HANG_LIMIT: Duration = Duration::from_secs(60);

const FILE: &str = "thresholds.yaml";

const TOKENS: &[&str] = &[
    "\n",
    ": ",
    "- ",
    "  ",
    "{",
    "}",
    "[",
    "]",
    "'",
    "\"",
    "&a ",
    "*a",
    "<<: *a\n",
    "!!str ",
    "~",
    "null",
    "10y",
    "100y",
    "5124095576030431h",
    "0s",
    "1ms",
    "-1m",
    "1e30",
    "NaN",
    "-Inf",
    "99999999999999999999",
    "[5m]",
    "[1000000d]",
    "offset 1w",
    "offset -1y",
    "rate(",
    ")",
    "sum by (job) (",
    "{job=~\".*\"}",
    " or vector(1)",
    " > ",
    "@ 0",
    "{{ $value }}",
    "{{",
    "}}",
    "{{ .Labels.x | humanize }}",
    "above: ",
    "below: ",
    "for: ",
    "window: ",
    "severity: ",
    "kind: ",
    "é",
    "\t",
    "\r",
    "#",
    "---\n",
    "%",
];

static KNOWN_DEPLOY: LazyLock<Arc<Known>> = LazyLock::new(|| known("../deploy/opsmon.yml"));
static KNOWN_FIXTURE: LazyLock<Arc<Known>> =
    LazyLock::new(|| known("tests/integration/fixtures/exporter.yml"));

fn known(relative: &str) -> Arc<Known> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    Arc::new(Known::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// The known metrics a corpus entry was written against.
fn known_for(seed: &str) -> Arc<Known> {
    if seed.starts_with("deploy-") { Arc::clone(&KNOWN_DEPLOY) } else { Arc::clone(&KNOWN_FIXTURE) }
}

/// Validates `text` on a thread of its own; `Err` with the rendered
/// problems when refused; fails when it panics or outlives [`HANG_LIMIT`].
fn check(text: &str, known: Arc<Known>) -> Result<Result<(), String>, TestCaseError> {
    let (done, result) = std::sync::mpsc::channel();
    let owned = text.to_owned();
    std::thread::spawn(move || {
        let outcome = match validate(FILE, &owned, &known) {
            Ok(_) => Ok(()),
            Err(invalid) => {
                let well_formed = invalid.problems.iter().all(|p| !p.message.trim().is_empty());
                let rendered = invalid.to_string();
                Err((rendered, well_formed))
            }
        };
        let _ = done.send(outcome);
    });
    match result.recv_timeout(HANG_LIMIT) {
        Ok(Ok(())) => Ok(Ok(())),
        Ok(Err((rendered, well_formed))) => {
            prop_assert!(well_formed, "an empty problem in:\n{rendered}");
            for line in rendered.lines().filter(|l| l.starts_with(FILE)) {
                // `thresholds.yaml:LINE:COL: …`, or the whole file.
                let rest = &line[FILE.len()..];
                prop_assert!(rest.starts_with(':'), "{line}");
            }
            prop_assert!(rendered.starts_with(FILE), "a refusal that does not name the file:\n{rendered}");
            Ok(Err(rendered))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err(TestCaseError::fail(format!("validate panicked on:\n{text}")))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            Err(TestCaseError::fail(format!("validate ran longer than {HANG_LIMIT:?} on:\n{text}")))
        }
    }
}

#[test]
fn corpus_entries_are_accepted_or_refused_as_named() {
    for (name, bytes) in mutate::corpus("thresholds") {
        let text = String::from_utf8(bytes).expect("UTF-8 corpus");
        let outcome = check(&text, known_for(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        match (name.starts_with("regression-"), outcome) {
            (false, Err(rendered)) => panic!("{name} must be accepted:\n{rendered}"),
            (true, Ok(())) => panic!("{name} must be refused"),
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(mutate::config("thresholds", 256))]

    #[test]
    fn mutated_threshold_files_never_panic_or_hang(
        (seed, text) in mutate::mutated_text(mutate::corpus("thresholds"), TOKENS, 6)
    ) {
        // Accepted or refused, both are fine; a panic or a hang is not.
        let _verdict = check(&text, known_for(&seed))?;
    }
}

proptest! {
    #![proptest_config(mutate::config("rulegen-exporter-config", 256))]

    /// rulegen reads the exporter config for business metrics and label
    /// values; a broken one is an error, never a panic.
    #[test]
    fn mutated_exporter_configs_never_panic(
        (_seed, text) in mutate::mutated_text(mutate::corpus("exporter-config"), TOKENS, 8)
    ) {
        if let Err(error) = Known::from_exporter_config("opsmon.yml", &text) {
            prop_assert!(error.to_string().starts_with("opsmon.yml"), "{error}");
        }
    }
}
