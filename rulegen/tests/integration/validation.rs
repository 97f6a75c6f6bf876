//! Validation table: the fixture is valid; each case breaks one thing and
//! must produce exactly the listed problems (file:line:column, field path,
//! message with the likely fix).

use crate::fixture;

fn good() -> String {
    fixture::text("thresholds.yaml")
}

/// Replaces exactly one occurrence of `from`.
fn broken(from: &str, to: &str) -> String {
    let text = good();
    assert_eq!(text.matches(from).count(), 1, "`{from}` must occur once in the fixture");
    text.replacen(from, to, 1)
}

#[test]
fn the_fixture_is_valid() {
    let model = fixture::model();
    assert_eq!(model.alerts.len(), 9);
    let kinds: Vec<&str> = model.alerts.iter().map(|a| a.kind.as_str()).collect();
    for kind in ["threshold", "ratio", "change", "quantile", "up", "predict", "staleness", "raw"] {
        assert!(kinds.contains(&kind), "fixture lacks kind {kind}");
    }
}

const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "misspelt metric",
        "rate(node_cpu_seconds_total{mode=\"idle\"}[5m])",
        "rate(node_cpu_second_total{mode=\"idle\"}[5m])",
        "thresholds.yaml:80:47: alerts[1].signal: unknown metric `node_cpu_second_total`: not in the exporter catalog, the business metrics of the exporter config, `up` or this file's recording rules; did you mean `node_cpu_seconds_total`?",
    ),
    (
        "misspelt field",
        "    threshold: {above: 0.8, unit: ratio}\n",
        "    treshold: {above: 0.8, unit: ratio}\n",
        "thresholds.yaml:76:5: alerts[1]: missing field `threshold` (kind threshold needs `threshold: {above|below: N, unit: U}`)\nthresholds.yaml:81:5: alerts[1].treshold: unknown field `treshold`; did you mean `threshold`?",
    ),
    (
        "wrong type",
        "    for: 10m\n    summary: CPU",
        "    for: [10m]\n    summary: CPU",
        "thresholds.yaml:82:10: alerts[1].for: expected a duration such as 5m, found a list",
    ),
    (
        "unknown kind",
        "    kind: predict\n",
        "    kind: prediction\n",
        "thresholds.yaml:145:11: alerts[6].kind: unknown kind `prediction`, expected one of threshold, ratio, change, quantile, up, predict, staleness, raw",
    ),
    (
        "invalid PromQL",
        "'sum by (job, instance) (rate(http_requests_total[5m]))'",
        "'sum by (job, instance) (rate(http_requests_total[5m])'",
        "thresholds.yaml:96:18: alerts[2].denominator: invalid PromQL: unclosed left parenthesis",
    ),
    (
        "unknown label",
        "{mode=\"idle\"}",
        "{mod=\"idle\"}",
        "thresholds.yaml:80:70: alerts[1].signal: metric `node_cpu_seconds_total` has no label `mod` (its labels: cpu, mode, instance, job); did you mean `mode`?",
    ),
    (
        "duplicate name",
        "  - name: PostgresDown\n",
        "  - name: HostCpuHigh\n",
        "thresholds.yaml:166:11: alerts[8].name: duplicate alert name `HostCpuHigh`",
    ),
    (
        "ratio out of range",
        "{above: 0.8, unit: ratio}",
        "{above: 80, unit: ratio}",
        "thresholds.yaml:81:24: alerts[1].threshold.above: threshold 80 is out of range for unit ratio (0..1); did you mean 0.8 (80%)?",
    ),
    (
        "rate of a gauge",
        "    timestamp: 'opsmon_files_newest_timestamp_seconds{name=\"backup\"}'\n",
        "    timestamp: 'rate(opsmon_files_newest_timestamp_seconds{name=\"backup\"}[5m])'\n",
        "thresholds.yaml:159:22: alerts[7].timestamp: rate() needs a counter, but `opsmon_files_newest_timestamp_seconds` is a gauge; use deriv() or delta() for a gauge",
    ),
    (
        "quantile of a counter",
        "> 0.05'\n    unit: none",
        "> 0.05 and histogram_quantile(0.9, rate(http_requests_total[5m])) > 0'\n    unit: none",
        "thresholds.yaml:109:41: alerts[3].expr: histogram_quantile() needs a histogram's `_bucket` series, but `http_requests_total` is a counter\nthresholds.yaml:109:93: alerts[3].expr: histogram_quantile() needs the `le` label; keep it in the aggregation (`sum by (le, …)`)",
    ),
    (
        "invalid duration",
        "    for: 30m\n",
        "    for: 30 minutes\n",
        "thresholds.yaml:150:10: alerts[6].for: invalid duration \"30 minutes\"; expected a Prometheus duration such as 30s, 5m, 1h30m, 1d or 1w",
    ),
    (
        "unknown severity",
        "    severity: warning\n    component: jobs\n",
        "    severity: warn\n    component: jobs\n",
        "thresholds.yaml:156:15: alerts[7].severity: unknown severity `warn`, expected one of critical, warning; did you mean `warning`?",
    ),
    (
        "raw value in a template",
        "summary: Backup is {{ $value | humanizeDuration }} old",
        "summary: Backup is {{ $value }} old",
        "thresholds.yaml:162:14: alerts[7].summary: `{{ $value }}` prints every digit of a float; pipe it through a humanize function; supported: {{ $labels.NAME }} and {{ $value | humanize }} (or humanize1024, humanizePercentage, humanizeDuration)",
    ),
    (
        "label the alert does not carry",
        "summary: PostgreSQL down on {{ $labels.instance }}",
        "summary: PostgreSQL down on {{ $labels.instace }}",
        "thresholds.yaml:172:14: alerts[8].summary: the alert's series do not carry label `instace` (they carry: instance, job); did you mean `instance`?",
    ),
    (
        "unit mismatch",
        "{above: 1, unit: seconds}",
        "{above: 1, unit: bytes}",
        "thresholds.yaml:123:33: alerts[4].threshold.unit: the signal is in seconds but the threshold unit is bytes; use unit seconds",
    ),
    (
        "unknown dashboard row",
        "{board: system, row: host, panel: Backup age}",
        "{board: system, row: jobs, panel: Backup age}",
        "thresholds.yaml:165:37: alerts[7].dashboard.row: dashboard `system` has no row `jobs` (rows: host, api)",
    ),
    (
        "unknown procedure",
        "    runbook: {procedure: app-down}\n    dashboard: {board: system, row: api, panel: PostgreSQL}",
        "    runbook: {procedure: app-dwn}\n    dashboard: {board: system, row: api, panel: PostgreSQL}",
        "thresholds.yaml:174:26: alerts[8].runbook.procedure: unknown procedure `app-dwn`; did you mean `app-down`?",
    ),
    (
        "unknown metric in a panel",
        "{expr: node_load1, legend: \"{{instance}}\"}",
        "{expr: node_lod1, legend: \"{{instance}}\"}",
        "thresholds.yaml:49:24: dashboards[0].rows[0].panels[0].queries[0].expr: unknown metric `node_lod1`: not in the exporter catalog, the business metrics of the exporter config, `up` or this file's recording rules; did you mean `node_load1`?",
    ),
    (
        "drop factor above one",
        "{offset: 3h, below: 0.5}",
        "{offset: 3h, below: 2}",
        "thresholds.yaml:135:35: alerts[5].baseline.below: factor 2 must be between 0 and 1 (0.5 = dropped by half)",
    ),
    (
        "field of another kind",
        "    absent: true\n",
        "    absent: true\n    quantile: 0.9\n",
        "thresholds.yaml:71:5: alerts[0].quantile: field `quantile` does not apply to kind `up` (it takes signal, absent)",
    ),
    (
        "bad version",
        "version: rulegen/v1",
        "version: rulegen/v2",
        "thresholds.yaml:2:10: version: unsupported version \"rulegen/v2\"; expected \"rulegen/v1\"",
    ),
    (
        "`for` beyond the limit",
        "    for: 30m\n",
        "    for: 10y\n",
        "thresholds.yaml:150:10: alerts[6].for: `for` 10y is longer than rulegen's limit of 1d; use at most 1d (a condition that must hold longer restarts on any single blip and rarely fires; average the signal over a longer range instead)",
    ),
    (
        "range window beyond the limit",
        "{mode=\"idle\"}[5m]",
        "{mode=\"idle\"}[10y]",
        "thresholds.yaml:80:83: alerts[1].signal: range window 10y is longer than rulegen's limit of 1w; use at most 1w (the promtool test simulates every minute of it)",
    ),
    (
        "window field beyond the limit",
        "    window: 5m\n",
        "    window: 30d\n",
        "thresholds.yaml:122:13: alerts[4].window: range window 30d is longer than rulegen's limit of 1w; use at most 1w (the promtool test simulates every minute of it)",
    ),
    (
        "baseline offset beyond the limit",
        "{offset: 3h, below: 0.5}",
        "{offset: 100y, below: 0.5}",
        "thresholds.yaml:135:24: alerts[5].baseline.offset: offset 100y is longer than rulegen's limit of 1w; use at most 1w (the promtool test simulates every minute of it)",
    ),
    (
        "offset in an expression beyond the limit",
        "[5m])) > 0.05'",
        "[5m] offset 30d)) > 0.05'",
        "thresholds.yaml:109:87: alerts[3].expr: offset 30d is longer than rulegen's limit of 1w; use at most 1w (the promtool test simulates every minute of it)",
    ),
    (
        "route value the exporter never writes",
        "'sum by (job, instance) (rate(http_requests_total[5m]))'",
        "'sum by (job, instance) (rate(http_requests_total{route=\"/api/v1/lessons\"}[5m]))'",
        "thresholds.yaml:96:75: alerts[2].denominator: `route=\"/api/v1/lessons\"` can never match: the exporter config gives `http_requests_total` label `route` only `api`, `static`, `other` (collectors.accesslog.routes names plus `other`); did you mean `api`?",
    ),
    (
        "regex matching no declared business value",
        "'smartalk_activation_ratio{window=\"1h\"}'",
        "'smartalk_activation_ratio{window=~\"1d|7d\"}'",
        "thresholds.yaml:134:49: alerts[5].signal: `window=~\"1d|7d\"` can never match: the exporter config gives `smartalk_activation_ratio` label `window` only `1h`, `24h` (collectors.business.queries[0].label_values.window)",
    ),
    (
        "probe target misspelt in a panel query",
        "{expr: node_load1, legend: \"{{instance}}\"}",
        "{expr: 'probe_success{target=\"api-health\"}', legend: \"{{instance}}\"}",
        "thresholds.yaml:49:47: dashboards[0].rows[0].panels[0].queries[0].expr: `target=\"api-health\"` can never match: the exporter config gives `probe_success` label `target` only `api_health` (or the URL of an on-demand probe) (collectors.probe.targets names); did you mean `api_health`?",
    ),
    ("excluding an impossible value is harmless", "{name=\"backup\"}", "{name!=\"bakup\"}", "valid"),
    (
        "an on-demand probe URL is a possible target",
        "{expr: node_load1, legend: \"{{instance}}\"}",
        "{expr: 'probe_success{target=\"http://127.0.0.1:8080/health\"}', legend: \"{{instance}}\"}",
        "valid",
    ),
    (
        "escalation step shorter than the repeat interval",
        "    escalate_after: 15m\n",
        "    escalation:\n      - {after: 10m, level: L2, receiver: senior}\n",
        "thresholds.yaml:14:17: severities[0].escalation[0].after: escalation step 10m is shorter than the tier's repeat_interval 15m; escalate after at least 15m",
    ),
    (
        "escalation steps not increasing",
        "    escalate_after: 15m\n",
        "    escalation:\n      - {after: 30m, level: L2, receiver: senior}\n      - {after: 20m, level: L3, receiver: cto}\n",
        "thresholds.yaml:15:17: severities[0].escalation[1].after: escalation step 20m is not later than the step before (30m); list the steps in increasing order",
    ),
    (
        "escalation level repeated",
        "    escalate_after: 15m\n",
        "    escalation:\n      - {after: 15m, level: L2, receiver: senior}\n      - {after: 30m, level: L2, receiver: cto}\n",
        "thresholds.yaml:15:29: severities[0].escalation[1].level: escalation level `L2` is used by an earlier step or is not a word of letters, digits, `-` and `_`; give each step its own level such as L3",
    ),
    (
        "escalation step without a receiver",
        "    escalate_after: 15m\n",
        "    escalation:\n      - {after: 15m, level: L2}\n",
        "thresholds.yaml:14:9: severities[0].escalation[0]: missing field `receiver`",
    ),
    (
        "baseline fallback not above zero",
        "{offset: 3h, below: 0.5}",
        "{offset: 3h, below: 0.5, fallback: 0}",
        "thresholds.yaml:135:50: alerts[5].baseline.fallback: baseline fallback 0 must be above 0 (the baseline assumed before the offset has data, e.g. the target)",
    ),
    (
        "baseline floor negative",
        "{offset: 3h, below: 0.5}",
        "{offset: 3h, below: 0.5, floor: -0.1}",
        "thresholds.yaml:135:47: alerts[5].baseline.floor: baseline floor -0.1 must be above 0 (the smallest baseline, e.g. 0.05 for a share that may be 0)",
    ),
    (
        "baseline inclusive not a boolean",
        "{offset: 3h, below: 0.5}",
        "{offset: 3h, below: 0.5, inclusive: sometimes}",
        "thresholds.yaml:135:51: alerts[5].baseline.inclusive: expected true or false, found a string",
    ),
    (
        "watchdog without a repeat interval",
        "kubernetes:\n  name: fixture\n",
        "alertmanager:\n  watchdog: {receiver: deadman}\nkubernetes:\n  name: fixture\n",
        "thresholds.yaml:7:13: alertmanager.watchdog: missing field `repeat_interval`",
    ),
    (
        "inhibits an unknown alert",
        "    dashboard: {board: system, row: api, panel: PostgreSQL}\n",
        "    dashboard: {board: system, row: api, panel: PostgreSQL}\n    inhibits: [PostgresDwn]\n",
        "thresholds.yaml:176:16: alerts[8].inhibits[0]: unknown alert `PostgresDwn` in inhibits; did you mean `PostgresDown`?",
    ),
    (
        "inhibits itself",
        "    dashboard: {board: system, row: api, panel: PostgreSQL}\n",
        "    dashboard: {board: system, row: api, panel: PostgreSQL}\n    inhibits: [PostgresDown]\n",
        "thresholds.yaml:176:16: alerts[8].inhibits[0]: `PostgresDown` cannot inhibit itself",
    ),
    (
        "yaml syntax",
        "  - name: PostgresDown\n",
        "  - name: [PostgresDown\n",
        "thresholds.yaml:167:13: illegal placement of ':' indicator",
    ),
];

#[test]
fn each_broken_field_is_reported_exactly() {
    let mut failures = Vec::new();
    for (name, from, to, expected) in CASES {
        let got = match fixture::validate(&broken(from, to)) {
            Ok(_) => "valid".to_owned(),
            Err(e) => e,
        };
        if got != *expected {
            failures.push(format!("case {name}:\n  expected: {expected:?}\n  got:      {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let text = good()
        .replacen("    kind: predict\n", "    kind: prediction\n", 1)
        .replacen("node_cpu_seconds_total", "node_cpu_second_total", 1)
        .replacen("    for: 30m\n", "    for: 30 minutes\n", 1)
        .replacen("{above: 0.8, unit: ratio}", "{above: 80, unit: ratio}", 1);
    let error = fixture::validate(&text).expect_err("four problems");
    let lines: Vec<&str> = error.lines().collect();
    assert_eq!(lines.len(), 4, "{error}");
    assert!(lines[0].starts_with("thresholds.yaml:80:47: alerts[1].signal: unknown metric"), "{error}");
    // The same alert's threshold is still checked although its signal failed.
    assert!(
        lines[1]
            .starts_with("thresholds.yaml:81:24: alerts[1].threshold.above: threshold 80 is out of range"),
        "{error}"
    );
    assert!(lines[2].starts_with("thresholds.yaml:145:11: alerts[6].kind: unknown kind"), "{error}");
    assert!(lines[3].starts_with("thresholds.yaml:150:10: alerts[6].for: invalid duration"), "{error}");
}

#[test]
fn oversized_expressions_are_refused_before_parsing() {
    // 1 MB of PromQL took 21 s to check before the bound; now it is refused at once.
    let huge = vec!["node_load1"; 100_000].join(" + ");
    let cases = [
        (
            "'1 - avg by (job, instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))'",
            format!("'{huge}'"),
            "thresholds.yaml:80:13: alerts[1].signal: expression of 1299997 bytes is longer than rulegen's limit of 4096; record parts of it with recording rules or simplify it",
        ),
        (
            "{expr: node_load1, legend: \"{{instance}}\"}",
            format!("{{expr: '{huge}', legend: \"{{{{instance}}}}\"}}"),
            "thresholds.yaml:49:24: dashboards[0].rows[0].panels[0].queries[0].expr: expression of 1299997 bytes is longer than rulegen's limit of 4096; record parts of it with recording rules or simplify it",
        ),
    ];
    for (from, to, expected) in cases {
        let got = fixture::validate(&broken(from, &to)).expect_err("too long");
        assert_eq!(got, expected);
    }
}
