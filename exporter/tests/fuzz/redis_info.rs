//! Redis `INFO` replies: `parse_info` and everything built on it never
//! panic, whatever a broken or hostile server sends.

use opsmon_exporter::collectors::redis::{command_stats, info_metrics, parse_info};
use opsmon_exporter::metrics::MetricSet;
use proptest::prelude::*;

use crate::mutate;

const TOKENS: &[&str] = &[
    "\r\n",
    "\n",
    "# Keyspace\r\n",
    "# Server\r\n",
    "# Commandstats\r\n",
    "# Memory\r\n",
    ":",
    ",",
    "=",
    "db0:",
    "db99999999999:",
    "keys=",
    "expires=",
    "calls=",
    "usec=",
    "cmdstat_",
    "|",
    "redis_version:",
    "-1",
    "1e309",
    "NaN",
    "inf",
    "-0",
    "18446744073709551616",
    "\u{feff}",
    "é",
    "\0",
];

/// Parses `text` and, when it parses, turns it into metrics and encodes them.
fn exercise(text: &str) {
    let Ok(info) = parse_info(text) else { return };
    let _ = command_stats(&info);
    let mut metrics = MetricSet::new();
    info_metrics(&info, Some(16), &mut metrics);
    info_metrics(&info, None, &mut metrics);
    let _ = metrics.encode_text();
}

#[test]
fn corpus_entries_parse_as_expected() {
    for (name, bytes) in mutate::corpus("redis-info") {
        let text = String::from_utf8(bytes).expect("UTF-8 corpus");
        let parsed = parse_info(&text);
        // Every seed but the deliberately section-less one is a valid reply.
        assert_eq!(parsed.is_ok(), !name.starts_with("minimal-no-section"), "{name}: {parsed:?}");
        exercise(&text);
    }
}

proptest! {
    #![proptest_config(mutate::config("redis-info", 512))]

    #[test]
    fn mutated_info_replies_never_panic(
        (_seed, text) in mutate::mutated_text(mutate::corpus("redis-info"), TOKENS, 8)
    ) {
        exercise(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(# [A-Za-z]{0,12}\r?\n|[a-z_|0-9]{0,12}:[a-z0-9=,.\\-]{0,24}\r?\n|[^\n]{0,40}\n){0,40}") {
        exercise(&text);
    }
}
