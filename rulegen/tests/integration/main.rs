//! rulegen's integration tests, one binary. Modules:
//! - `fixture`: a fixture catalog, exporter config and threshold file (one
//!   alert of every kind) so the generator's tests do not depend on which
//!   collectors have landed;
//! - `validation`: one good spec, one broken field per case, exact messages;
//! - `snapshots`: insta snapshots of every rendered file for the fixture;
//! - `tools`: promtool, amtool and the PrometheusRule over generated files;
//! - `dashboards`: layout and threshold invariants, tsc against Grafana's
//!   foundation SDK types;
//! - `checklists`: the daily checklists `rulegen report` answers, and
//!   their validation;
//! - `cli`: the binary's commands, exit codes and atomic writes;
//! - `real`: the real deploy/thresholds.yaml against the real catalog, the
//!   SPEC §2 alert list, and the committed outputs (drift);
//! - `receivers`: the user's receivers file merged into the routing, and
//!   its bad inputs.

mod checklists;
mod cli;
mod dashboards;
mod fixture;
mod real;
mod receivers;
mod snapshots;
mod tools;
mod validation;
