//! The collectors, one module per backend, and how the config turns into the
//! list the scrape engine runs.

pub mod host;

use std::sync::Arc;

use crate::collector::Collector;
use crate::config::Config;

/// The enabled collectors for `config`, in scrape order.
pub fn from_config(config: &Config) -> Vec<Arc<dyn Collector>> {
    let mut collectors: Vec<Arc<dyn Collector>> = Vec::new();
    if config.collectors.host.enabled {
        collectors.push(Arc::new(host::HostCollector::new(config.collectors.host.clone())));
    }
    collectors
}
