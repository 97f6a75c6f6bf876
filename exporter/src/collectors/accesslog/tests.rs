//! Tests of the accesslog collector: config errors, and whole-collector runs over real files.

use std::path::Path;

use crate::config::Config;

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(Path::new("/etc/opsmon.yml"), text).map_err(|e| e.to_string())
}

#[test]
fn probe_errors() {
    for yaml in [
        "collectors:\n  accesslog:\n    files:\n      - path: /var/log/a.log\n        format: '$remote_addr $request'\n",
        "collectors:\n  accesslog:\n    buckets: [1, 0.5]\n",
        "collectors:\n  accesslog:\n    routes:\n      - name: api\n        prefix: /api/\n      - name: api\n        prefix: /v2/\n",
        "collectors:\n  accesslog:\n    patterns:\n      - file: /var/log/app.log\n        name: error\n        regex: 'ERR('\n",
        "collectors:\n  accesslog:\n    files:\n      - path: var/log/a.log\n",
        "collectors:\n  accesslog:\n    files:\n      - path: /var/log/a.log\n        start_at: middle\n",
        "collectors:\n  accesslog:\n    poll_interval: 1ms\n",
    ] {
        eprintln!("{}\n----", parse(yaml).expect_err("bad"));
    }
}
