//! opsmon-exporter: one Prometheus exporter for a small product's whole
//! stack. This library holds everything but flag parsing and process setup,
//! so integration tests can drive the server in-process.
//!
//! Data flows one way: the config file ([`config`], [`settings`]) →
//! [`collectors::build`] → a fresh [`metrics::MetricSet`] per scrape
//! ([`scrape`]) → encoder → HTTP ([`server`]).

pub mod allocator;
pub mod cli;
pub mod collectors;
pub mod config;
pub mod logging;
pub mod metrics;
pub mod overrides;
pub mod process_metrics;
pub mod reload;
pub mod scrape;
pub mod server;
pub mod settings;
pub mod web_config;
