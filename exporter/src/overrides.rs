//! What the command-line flags change in every configuration loaded, at
//! start-up and on reload: where the host collector finds the host
//! (`--path.*`) and which collectors run (`--[no-]collector.NAME`). Kept apart
//! from the flag parsing so that reloading needs no part of the CLI.

use std::collections::BTreeMap;

use crate::collectors::host::HostPaths;
use crate::settings::Config;

/// What the flags change in every configuration loaded, at start-up and on reload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Where the host collector finds the host.
    pub host_paths: HostPaths,
    /// Collectors switched on (`true`) or off (`false`) over the file.
    pub collectors: BTreeMap<&'static str, bool>,
}

impl Overrides {
    /// Applies the flags to `config`, or says which flag cannot apply and why.
    /// A collector switched off gets nothing to do (its targets, paths or
    /// queries are dropped before the build); one switched on must have
    /// something configured.
    pub fn apply(&self, config: &mut Config) -> Result<(), String> {
        let sections = &mut config.collectors;
        sections.host.paths = self.host_paths.clone();
        let mut problems = Vec::new();
        for (&name, &on) in &self.collectors {
            let flag = if on { format!("--collector.{name}") } else { format!("--no-collector.{name}") };
            let nothing = |what: &str| {
                format!(
                    "{flag}: the {name} collector has nothing to collect: {what}; configure it or drop the flag"
                )
            };
            match (name, on) {
                ("host", on) => sections.host.enabled = on,
                ("postgres", true) if sections.postgres.targets.is_empty() => problems
                    .push(nothing("collectors.postgres.targets is empty and DATA_SOURCE_NAME is unset")),
                ("postgres", false) => {
                    let business_stays_on = self.collectors.get("business") != Some(&false);
                    if !sections.business.queries.is_empty() && business_stays_on {
                        problems.push(format!(
                            "{flag}: collectors.business runs its queries on a PostgreSQL target; add --no-collector.business too"
                        ));
                    }
                    sections.postgres.targets.clear();
                }
                ("redis", true) if sections.redis.targets.is_empty() => {
                    problems.push(nothing("collectors.redis.targets is empty and REDIS_ADDR is unset"));
                }
                ("redis", false) => sections.redis.targets.clear(),
                ("probe", true) if sections.probe.targets.is_empty() => {
                    problems.push(nothing(
                        "collectors.probe.targets is empty (/probe?target=URL works without it)",
                    ));
                }
                ("probe", false) => sections.probe.targets.clear(),
                ("accesslog", true) if !sections.accesslog.is_enabled() => {
                    problems.push(nothing("collectors.accesslog has no files and no patterns"));
                }
                ("accesslog", false) => sections.accesslog = Default::default(),
                ("files", true) if sections.files.paths.is_empty() => {
                    problems.push(nothing("collectors.files.paths is empty"));
                }
                ("files", false) => sections.files.paths.clear(),
                ("business", true) if sections.business.queries.is_empty() => {
                    problems.push(nothing("collectors.business.queries is empty"));
                }
                ("business", false) => sections.business.queries.clear(),
                _ => {}
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
    }
}
