//! Property/fuzz tests of the exporter's parsers of hostile input: the
//! config file (decode and build, the `--config.check` path), Redis `INFO`
//! replies and the access-log `log_format` compiler and line parser. Each
//! property runs every corpus entry of `fuzz/corpus/<target>/` unchanged and
//! then `PROPTEST_CASES` mutated ones (see `fuzz/mutate.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step must fail the test loudly

#[path = "../../../fuzz/mutate.rs"]
mod mutate;

mod accesslog;
mod config;
mod redis_info;
