//! The config file, whole, through the path start-up and `--config.check`
//! share (`Config::parse` then `Config::build`): never a panic or a hang,
//! every problem names the file (and a YAML or type error its line and
//! column), and no problem repeats a secret written in the file.

use std::path::Path;

use opsmon_exporter::config::ConfigError;
use opsmon_exporter::settings::Config;
use proptest::prelude::*;

use crate::mutate;

const PATH: &str = "/etc/opsmon/opsmon.yml";

const TOKENS: &[&str] = &[
    "\n",
    ": ",
    "- ",
    "  ",
    "\t",
    "{",
    "}",
    "[",
    "]",
    "'",
    "\"",
    ",",
    "&a ",
    "*a",
    "<<: *a\n",
    "!!binary ",
    "!!str ",
    "!!int ",
    "~",
    "null",
    "true",
    "1e30",
    "-1",
    "0",
    "18446744073709551616",
    "0x7fffffff",
    "99999999999999999999s",
    "5124095576030431h",
    "0s",
    "1ns",
    "7d",
    "8d",
    "100GiB",
    "0.5KiB",
    "1e3MiB",
    "http://",
    "https://[::1]:0/",
    "redis://",
    "unix:///",
    "postgresql://",
    "@",
    "%zz",
    "?sslmode=x",
    "/dev/zero",
    "/dev/null",
    "/proc/self/status",
    "password_file: /dev/zero\n",
    "dsn_file: /dev/zero\n",
    "enabled: true\n",
    "? ",
    "|\n",
    ">-\n",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "# c\n",
    "\u{feff}",
    "é",
    "\r",
    "\\",
    "$status",
    "(",
    "[[:alpha:]",
    "*",
    "a{99999}",
    "(?i)",
    "default: true\n",
    "name: db\n",
];

/// Where a config was refused.
#[derive(Debug)]
enum Refused {
    /// Reading the YAML into the sections' types.
    Decode(ConfigError),
    /// Checking values and building the collectors.
    Build(ConfigError),
}

/// Decodes and builds `text` as start-up does, in a runtime of its own that
/// is dropped afterwards (stopping whatever the collectors started).
fn check(text: &str) -> Result<(), Refused> {
    let config = Config::parse(Path::new(PATH), text).map_err(Refused::Decode)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let result = runtime.block_on(async { config.build(Path::new(PATH)).map(drop) });
    runtime.shutdown_background();
    result.map_err(Refused::Build)
}

/// What every refusal must look like: each problem rendered names the file
/// first; a decode error points at a line and column.
fn assert_well_formed(refused: &Refused, text: &str) -> Result<(), TestCaseError> {
    let (error, decode) = match refused {
        Refused::Decode(error) => (error, true),
        Refused::Build(error) => (error, false),
    };
    prop_assert!(!error.problems().is_empty(), "a refusal without a problem for:\n{text}");
    for problem in error.problems() {
        let rendered = problem.render(PATH);
        prop_assert!(rendered.starts_with(PATH), "{rendered}");
        prop_assert!(!problem.message.trim().is_empty(), "empty message for:\n{text}");
        if decode {
            prop_assert!(
                problem.position.is_known(),
                "decode error without a position: {rendered}\nfor:\n{text:?}"
            );
        }
    }
    Ok(())
}

#[test]
fn corpus_entries_are_accepted_or_refused_as_named() {
    for (name, bytes) in mutate::corpus("exporter-config") {
        let text = String::from_utf8(bytes).expect("UTF-8 corpus");
        // `regression-*` found a defect once, `refused-*` is wrong on purpose.
        let must_refuse = name.starts_with("regression-") || name.starts_with("refused-");
        match check(&text) {
            Ok(()) => assert!(!must_refuse, "{name} must be refused"),
            Err(refused) => {
                assert_well_formed(&refused, &text).unwrap_or_else(|e| panic!("{name}: {e}"));
                let (Refused::Decode(error) | Refused::Build(error)) = &refused;
                // The shipped config needs $DATA_SOURCE_NAME, which tests do not set.
                let only_env = error.problems().iter().all(|p| p.message.contains("DATA_SOURCE_NAME"));
                assert!(must_refuse || only_env, "{name}: {error}");
            }
        }
    }
}

proptest! {
    #![proptest_config(mutate::config("exporter-config", 256))]

    #[test]
    fn mutated_configs_never_panic_and_errors_have_positions(
        (_seed, text) in mutate::mutated_text(mutate::corpus("exporter-config"), TOKENS, 8)
    ) {
        if let Err(refused) = check(&text) {
            assert_well_formed(&refused, &text)?;
        }
    }
}

/// A YAML single-quoted scalar holding `value` (newlines become spaces), so
/// a hostile value never changes the document's structure.
fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''").replace(['\n', '\r'], " "))
}

/// Secret values as an attacker or a careless operator writes them: plain,
/// with control characters, or long.
fn secret(marker: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(marker.to_owned()),
        "[\\x00-\\x1f\\x7f]{1,3}".prop_map(move |c| format!("{marker}{c}")),
        "[ -~]{0,8}".prop_map(move |s| format!("Bearer {s}{marker}{s}")),
        Just(format!("{marker}{}", "x".repeat(10_000))),
    ]
}

/// A value for a non-secret scalar: sometimes right, mostly hostile.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(TOKENS).prop_map(str::to_owned),
        "[ -~]{0,24}",
        "[0-9]{1,25}[a-zA-Z]{0,3}",
        Just("10s".to_owned()),
    ]
}

proptest! {
    #![proptest_config(mutate::config("exporter-config-secrets", 256))]

    /// Secrets sit in their fields (a probe header, a DSN, a URL's userinfo,
    /// a Redis address); every other scalar is hostile. Whatever is refused,
    /// no problem's field or message repeats a secret.
    #[test]
    fn problems_never_repeat_secrets(
        token in secret("FUZZSECRETTOKEN"),
        api_key in secret("FUZZSECRETAPIKEY"),
        password in secret("FUZZSECRETPASSWORD"),
        url_password in secret("FUZZSECRETURLPASSWORD"),
        redis_password in secret("FUZZSECRETREDIS"),
        values in prop::collection::vec(scalar(), 8),
    ) {
        let text = format!(
            "scrape:\n  max_timeout: {v0}\ncollectors:\n  host:\n    listen_ports: [{v1}]\n    process_groups:\n      - {{name: api, cmdline: {v2}}}\n  postgres:\n    targets:\n      - name: db\n        dsn: {dsn}\n        statement_timeout: {v3}\n  redis:\n    targets:\n      - {{name: cache, address: {redis}, timeout: {v4}}}\n  probe:\n    modules:\n      api:\n        timeout: {v5}\n        headers: {{Authorization: {token}, X-Api-Key: {api_key}}}\n    targets:\n      - {{name: health, url: {url}, module: {v6}}}\n  files:\n    paths:\n      - {{name: backup, glob: {v7}}}\n",
            v0 = quoted(&values[0]),
            v1 = quoted(&values[1]),
            v2 = quoted(&values[2]),
            v3 = quoted(&values[3]),
            v4 = quoted(&values[4]),
            v5 = quoted(&values[5]),
            v6 = quoted(&values[6]),
            v7 = quoted(&values[7]),
            dsn = quoted(&format!("postgresql://app:{password}@127.0.0.1:1/db")),
            redis = quoted(&format!("redis://:{redis_password}@127.0.0.1:1")),
            url = quoted(&format!("http://user:{url_password}@127.0.0.1:1/health")),
            token = quoted(&token),
            api_key = quoted(&api_key),
        );
        if let Err(Refused::Decode(error) | Refused::Build(error)) = check(&text) {
            for problem in error.problems() {
                for shown in [&problem.field, &problem.message] {
                    prop_assert!(!shown.contains("FUZZSECRET"), "a secret in: {shown}");
                }
            }
        }
    }
}

/// A secret file that never ends (`/dev/zero`) or never answers (a FIFO)
/// is refused by name: reading it whole would exhaust memory or block
/// `--config.check` and start-up forever.
#[test]
fn secret_files_must_be_regular_and_small() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("password.fifo");
    mkfifo(&fifo);
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'x'; 1 << 20]).expect("write");
    for (file, expected) in [
        (Path::new("/dev/zero").to_owned(), "/dev/zero is a device; only regular files are read"),
        (fifo, "is a FIFO; only regular files are read"),
        (big, "is larger than 64 KiB"),
    ] {
        let text = format!(
            "collectors:\n  redis:\n    targets:\n      - {{name: cache, address: 'redis://127.0.0.1:1', password_file: {}}}\n",
            file.display()
        );
        let Err(Refused::Build(error)) = check(&text) else { panic!("{} must be refused", file.display()) };
        let shown = error.to_string();
        assert!(shown.contains(expected), "{shown}");
    }
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}
