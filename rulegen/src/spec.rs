//! The versioned on-disk threshold definition (`deploy/thresholds.yaml`,
//! `version: rulegen/v1`), decoded 1:1 from the YAML tree with a position on
//! every field. Only shape and scalar types are checked here; meaning
//! (metrics, units, PromQL) is `validate`'s job.

use crate::diagnostics::{Pos, Problems, hint};
use crate::yaml::{self, Fields, Node, Value};

/// The only version this rulegen reads.
pub const VERSION: &str = "rulegen/v1";

/// A decoded value with where it came from.
#[derive(Debug, Clone)]
pub struct At<T> {
    /// The value.
    pub value: T,
    /// Its position.
    pub pos: Pos,
    /// Its field path.
    pub path: String,
    /// The YAML node (for pointing inside expressions).
    pub node: Node,
}

fn at<T>(value: T, node: &Node, path: &str) -> At<T> {
    At { value, pos: node.pos, path: path.to_owned(), node: node.clone() }
}

/// The whole file.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// Where runbooks and dashboards are published.
    pub links: Links,
    /// Alertmanager settings beyond the tiers.
    pub alertmanager: AlertmanagerSpec,
    /// PrometheusRule metadata.
    pub kubernetes: KubernetesSpec,
    /// Severity tiers, in order.
    pub severities: Vec<SeveritySpec>,
    /// Shared runbook procedures.
    pub procedures: Vec<ProcedureSpec>,
    /// Dashboards, rows and extra panels.
    pub dashboards: Vec<BoardSpec>,
    /// The alerts.
    pub alerts: Vec<AlertSpec>,
    /// The exporter's `job` label in deploy/prometheus/prometheus.yml.
    pub exporter_job: Option<At<String>>,
    /// The guide's daily checklists, answered by `rulegen report`.
    pub checklists: Option<ChecklistsSpec>,
}

/// `links`.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// Base URL of the runbook pages (`<base>/<Alert>.md`).
    pub runbooks: Option<At<String>>,
    /// Base URL of Grafana (`<base>/d/<uid>/...`).
    pub grafana: Option<At<String>>,
}

/// `alertmanager`.
#[derive(Debug, Clone, Default)]
pub struct AlertmanagerSpec {
    /// Labels alerts are grouped by.
    pub group_by: Vec<String>,
    /// Receiver for anything no severity route matches.
    pub default_receiver: Option<At<String>>,
    /// `global.resolve_timeout`.
    pub resolve_timeout: Option<At<String>>,
    /// The always-firing alert for an external dead-man's switch.
    pub watchdog: Option<WatchdogSpec>,
    /// The user's receivers (Alertmanager's own format), relative to the
    /// threshold file; merged into the generated config, never written.
    pub receivers_file: Option<At<String>>,
}

/// `alertmanager.watchdog: {receiver, repeat_interval}`.
#[derive(Debug, Clone)]
pub struct WatchdogSpec {
    /// Receiver of the dead-man's switch.
    pub receiver: At<String>,
    /// How often it is re-sent (the switch's timeout must be longer).
    pub repeat_interval: At<String>,
}

/// One step of a tier's `escalation`.
#[derive(Debug, Clone)]
pub struct EscalationSpec {
    /// How long the alert must stay firing.
    pub after: At<String>,
    /// The level's name (`L2`), the `escalation` label.
    pub level: At<String>,
    /// Receiver of the level.
    pub receiver: At<String>,
}

/// `kubernetes`.
#[derive(Debug, Clone, Default)]
pub struct KubernetesSpec {
    /// metadata.name.
    pub name: Option<At<String>>,
    /// metadata.namespace.
    pub namespace: Option<At<String>>,
    /// metadata.labels (for the Prometheus ruleSelector).
    pub labels: Vec<(At<String>, At<String>)>,
    /// The exporter's `job` label under prometheus-operator (its Service name).
    pub job: Option<At<String>>,
}

/// One severity tier.
#[derive(Debug, Clone)]
pub struct SeveritySpec {
    /// `critical`, `warning`, `info`.
    pub name: At<String>,
    /// Human response time (`now`, `1h`).
    pub respond: At<String>,
    /// Escalation step, when any (descriptive; `escalation` makes it real).
    pub escalate_after: Option<At<String>>,
    /// Escalation steps: alerts of this tier still firing after each step
    /// go to the step's receiver too.
    pub escalation: Vec<EscalationSpec>,
    /// Alertmanager receiver.
    pub receiver: At<String>,
    /// Alertmanager timings.
    pub group_wait: At<String>,
    /// Alertmanager timings.
    pub group_interval: At<String>,
    /// Alertmanager timings.
    pub repeat_interval: At<String>,
    /// Tiers this one silences for the same thing.
    pub inhibits: Vec<At<String>>,
    /// Grafana colour of its threshold steps.
    pub color: At<String>,
}

/// A runbook step.
#[derive(Debug, Clone)]
pub struct StepSpec {
    /// What to do.
    pub title: String,
    /// Shell commands, one per line.
    pub commands: Option<String>,
}

/// A shared procedure from the guide.
#[derive(Debug, Clone)]
pub struct ProcedureSpec {
    /// Identifier alerts refer to.
    pub id: At<String>,
    /// Title.
    pub title: String,
    /// Where in the guide it comes from.
    pub source: Option<String>,
    /// Symptoms.
    pub symptoms: Option<String>,
    /// Diagnosis steps.
    pub diagnosis: Vec<StepSpec>,
    /// Resolution steps.
    pub resolution: Vec<StepSpec>,
}

/// A dashboard.
#[derive(Debug, Clone)]
pub struct BoardSpec {
    /// Identifier alerts refer to.
    pub id: At<String>,
    /// Grafana uid.
    pub uid: At<String>,
    /// Title.
    pub title: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Rows.
    pub rows: Vec<RowSpec>,
}

/// A dashboard row.
#[derive(Debug, Clone)]
pub struct RowSpec {
    /// Identifier alerts refer to.
    pub id: At<String>,
    /// Title.
    pub title: String,
    /// Panels declared here (alert panels are added after them).
    pub panels: Vec<PanelSpec>,
}

/// A declared panel.
#[derive(Debug, Clone)]
pub struct PanelSpec {
    /// Title (alerts attach by title).
    pub title: At<String>,
    /// timeseries, stat, gauge, bargauge.
    pub kind: At<String>,
    /// Grafana unit.
    pub unit: Option<At<String>>,
    /// Grid width (of 24).
    pub width: Option<At<f64>>,
    /// Description.
    pub description: Option<String>,
    /// Queries.
    pub queries: Vec<QuerySpec>,
}

/// A panel query: an expression or an alert's signal.
#[derive(Debug, Clone)]
pub struct QuerySpec {
    /// PromQL.
    pub expr: Option<At<String>>,
    /// Plot this alert's signal, scaled to the panel's unit.
    pub alert: Option<At<String>>,
    /// Legend template.
    pub legend: Option<String>,
}

/// `threshold: {above|below: N, unit: U}`.
#[derive(Debug, Clone)]
pub struct ThresholdSpec {
    /// `above` or `below`.
    pub direction: At<String>,
    /// The number.
    pub value: At<f64>,
    /// ratio, seconds, bytes, none.
    pub unit: Option<At<String>>,
}

/// `volume_guard`.
#[derive(Debug, Clone)]
pub struct GuardSpec {
    /// PromQL (default: the ratio's denominator).
    pub signal: Option<At<String>>,
    /// Minimum value for the alert to be meaningful.
    pub min: At<f64>,
}

/// `baseline: {offset, below|above}`.
#[derive(Debug, Clone)]
pub struct BaselineSpec {
    /// How far back the baseline is.
    pub offset: At<String>,
    /// `above` or `below`.
    pub direction: At<String>,
    /// Factor of the baseline.
    pub factor: At<f64>,
    /// Fire at the factor itself too (`<=`/`>=`), for a guide example on the edge.
    pub inclusive: Option<At<bool>>,
    /// Baseline used while the offset has no data yet (the first week after launch).
    pub fallback: Option<At<f64>>,
    /// Lowest baseline, so that a zero baseline cannot make the change infinite.
    pub floor: Option<At<f64>>,
}

/// `dashboard: {board, row, panel, unit}`.
#[derive(Debug, Clone)]
pub struct PlacementSpec {
    /// Dashboard id.
    pub board: At<String>,
    /// Row id.
    pub row: At<String>,
    /// Panel title (a declared panel or a new one).
    pub panel: At<String>,
    /// Grafana unit of a new panel.
    pub unit: Option<At<String>>,
}

/// `runbook`.
#[derive(Debug, Clone, Default)]
pub struct RunbookSpec {
    /// Shared procedure id.
    pub procedure: Option<At<String>>,
    /// Alert-specific first steps.
    pub steps: Vec<StepSpec>,
}

/// One alert, as written.
#[derive(Debug, Clone)]
pub struct AlertSpec {
    /// Field path (`alerts[3]`).
    pub path: String,
    /// Position of the entry.
    pub pos: Pos,
    /// CamelCase name.
    pub name: At<String>,
    /// Severity tier.
    pub severity: At<String>,
    /// `component` label.
    pub component: At<String>,
    /// What it watches, with that kind's fields; `None` when the kind is
    /// unknown or lacks a field it needs (both already reported).
    pub kind: Option<AlertKind>,
    /// `for`.
    pub for_: Option<At<String>>,
    /// Extra static labels.
    pub labels: Vec<(At<String>, At<String>)>,
    /// Summary template.
    pub summary: At<String>,
    /// Description template.
    pub description: At<String>,
    /// Runbook.
    pub runbook: RunbookSpec,
    /// Dashboard placement.
    pub dashboard: Option<PlacementSpec>,
    /// Alerts of the same component and instance this one silences (one
    /// fault pages once).
    pub inhibits: Vec<At<String>>,
}

/// What an alert watches: one variant per `kind`, each with its own fields.
#[derive(Debug, Clone)]
pub enum AlertKind {
    /// `kind: threshold`.
    Threshold(ThresholdKind),
    /// `kind: ratio`.
    Ratio(RatioKind),
    /// `kind: change`.
    Change(ChangeKind),
    /// `kind: quantile`.
    Quantile(Box<QuantileKind>),
    /// `kind: up`.
    Up(UpKind),
    /// `kind: predict`.
    Predict(PredictKind),
    /// `kind: staleness`.
    Staleness(StalenessKind),
    /// `kind: raw`.
    Raw(RawKind),
}

/// A signal compared with a threshold.
#[derive(Debug, Clone)]
pub struct ThresholdKind {
    /// PromQL value.
    pub signal: At<String>,
    /// The limit.
    pub threshold: ThresholdSpec,
    /// Optional volume guard.
    pub volume_guard: Option<GuardSpec>,
    /// Recording rule name for the signal.
    pub record: Option<At<String>>,
}

/// numerator / denominator compared with a ratio threshold.
#[derive(Debug, Clone)]
pub struct RatioKind {
    /// PromQL value.
    pub numerator: At<String>,
    /// PromQL value (also the default volume guard).
    pub denominator: At<String>,
    /// The limit, a ratio.
    pub threshold: ThresholdSpec,
    /// Optional volume guard.
    pub volume_guard: Option<GuardSpec>,
    /// Recording rule name for the ratio.
    pub record: Option<At<String>>,
}

/// The signal relative to itself some time ago.
#[derive(Debug, Clone)]
pub struct ChangeKind {
    /// PromQL value.
    pub signal: At<String>,
    /// How far back, and the factor.
    pub baseline: BaselineSpec,
    /// Optional volume guard.
    pub volume_guard: Option<GuardSpec>,
    /// Recording rule name for the relative value.
    pub record: Option<At<String>>,
}

/// A histogram quantile compared with a threshold.
#[derive(Debug, Clone)]
pub struct QuantileKind {
    /// The histogram selector (family name, without `_bucket`).
    pub histogram: At<String>,
    /// 0 < q < 1.
    pub quantile: At<f64>,
    /// Rate window.
    pub window: At<String>,
    /// Labels kept.
    pub by: Option<At<Vec<String>>>,
    /// The limit.
    pub threshold: ThresholdSpec,
    /// Optional volume guard.
    pub volume_guard: Option<GuardSpec>,
    /// Recording rule name for the quantile.
    pub record: Option<At<String>>,
}

/// A target that stopped answering.
#[derive(Debug, Clone)]
pub struct UpKind {
    /// 1 when up.
    pub signal: At<String>,
    /// Also fire when the series is absent.
    pub absent: Option<At<bool>>,
}

/// A gauge extrapolated over a horizon.
#[derive(Debug, Clone)]
pub struct PredictKind {
    /// A plain gauge selector.
    pub signal: At<String>,
    /// Regression window.
    pub window: At<String>,
    /// How far ahead.
    pub horizon: At<String>,
    /// The limit.
    pub threshold: ThresholdSpec,
}

/// A timestamp older than a maximum age.
#[derive(Debug, Clone)]
pub struct StalenessKind {
    /// Unix seconds.
    pub timestamp: At<String>,
    /// Oldest acceptable age.
    pub max_age: At<String>,
}

/// A hand-written comparison.
#[derive(Debug, Clone)]
pub struct RawKind {
    /// `value > N` (or <, >=, <=).
    pub expr: At<String>,
    /// Unit of the compared value.
    pub unit: Option<At<String>>,
}

impl AlertKind {
    /// The `record` field of the kinds that may record their signal.
    pub fn record(&self) -> Option<&At<String>> {
        match self {
            AlertKind::Threshold(k) => k.record.as_ref(),
            AlertKind::Ratio(k) => k.record.as_ref(),
            AlertKind::Change(k) => k.record.as_ref(),
            AlertKind::Quantile(k) => k.record.as_ref(),
            AlertKind::Up(_) | AlertKind::Predict(_) | AlertKind::Staleness(_) | AlertKind::Raw(_) => None,
        }
    }
}

/// Every key an alert may have (the kind decides which apply).
pub const ALERT_KEYS: &[&str] = &[
    "name",
    "severity",
    "component",
    "kind",
    "for",
    "signal",
    "numerator",
    "denominator",
    "histogram",
    "quantile",
    "window",
    "by",
    "horizon",
    "timestamp",
    "max_age",
    "absent",
    "expr",
    "unit",
    "threshold",
    "volume_guard",
    "baseline",
    "record",
    "labels",
    "summary",
    "description",
    "runbook",
    "dashboard",
    "inhibits",
];

/// Decodes the tree; problems go to `p`.
pub fn decode(p: &mut Problems, root: &Node) -> Spec {
    let mut spec = Spec::default();
    let keys = [
        "version",
        "exporter_job",
        "links",
        "alertmanager",
        "kubernetes",
        "severities",
        "procedures",
        "dashboards",
        "alerts",
        "checklists",
    ];
    let Some(f) = Fields::open(p, root, "", &keys) else { return spec };
    if let Some(node) = f.req(p, "version")
        && let Some(v) = yaml::string(p, node, "version")
        && v != VERSION
    {
        p.at(node.pos, "version", format!("unsupported version {v:?}; expected {VERSION:?}"));
    }
    spec.exporter_job = opt_string(p, &f, "exporter_job");
    if let Some(node) = f.get("links")
        && let Some(l) = Fields::open(p, node, "links", &["runbooks", "grafana"])
    {
        spec.links.runbooks = opt_string(p, &l, "runbooks");
        spec.links.grafana = opt_string(p, &l, "grafana");
    }
    if let Some(node) = f.get("alertmanager")
        && let Some(a) = Fields::open(
            p,
            node,
            "alertmanager",
            &["group_by", "default_receiver", "resolve_timeout", "watchdog", "receivers_file"],
        )
    {
        spec.alertmanager.receivers_file = opt_string(p, &a, "receivers_file");
        spec.alertmanager.watchdog = a.get("watchdog").and_then(|n| watchdog(p, n, &a.path_of("watchdog")));
        if let Some(n) = a.get("group_by") {
            spec.alertmanager.group_by = yaml::strings(p, n, &a.path_of("group_by"));
        }
        spec.alertmanager.default_receiver = opt_string(p, &a, "default_receiver");
        spec.alertmanager.resolve_timeout = opt_string(p, &a, "resolve_timeout");
    }
    if let Some(node) = f.get("kubernetes")
        && let Some(k) = Fields::open(p, node, "kubernetes", &["name", "namespace", "labels", "job"])
    {
        spec.kubernetes.job = opt_string(p, &k, "job");
        spec.kubernetes.name = opt_string(p, &k, "name");
        spec.kubernetes.namespace = opt_string(p, &k, "namespace");
        if let Some(n) = k.get("labels") {
            spec.kubernetes.labels = string_map(p, n, &k.path_of("labels"));
        }
    }
    if let Some(node) = f.req(p, "severities") {
        spec.severities = yaml::list(p, node, "severities", severity);
    }
    if let Some(node) = f.get("procedures") {
        spec.procedures = yaml::list(p, node, "procedures", procedure);
    }
    if let Some(node) = f.get("dashboards") {
        spec.dashboards = yaml::list(p, node, "dashboards", board);
    }
    if let Some(node) = f.req(p, "alerts") {
        spec.alerts = yaml::list(p, node, "alerts", alert);
    }
    if let Some(node) = f.get("checklists") {
        spec.checklists = checklists(p, node, "checklists");
    }
    spec
}

fn opt_string(p: &mut Problems, f: &Fields<'_>, key: &str) -> Option<At<String>> {
    let node = f.get(key)?;
    let path = f.path_of(key);
    yaml::string(p, node, &path).map(|v| at(v, node, &path))
}

fn req_string(p: &mut Problems, f: &Fields<'_>, key: &str) -> Option<At<String>> {
    let node = f.req(p, key)?;
    let path = f.path_of(key);
    yaml::string(p, node, &path).map(|v| at(v, node, &path))
}

fn opt_number(p: &mut Problems, f: &Fields<'_>, key: &str) -> Option<At<f64>> {
    let node = f.get(key)?;
    let path = f.path_of(key);
    yaml::number(p, node, &path).map(|v| at(v, node, &path))
}

/// A scalar that may be written as a number or a string (durations such as
/// `0` or `5m`); kept as text.
fn opt_text(p: &mut Problems, f: &Fields<'_>, key: &str) -> Option<At<String>> {
    let node = f.get(key)?;
    let path = f.path_of(key);
    match &node.value {
        Value::Str(s) => Some(at(s.clone(), node, &path)),
        Value::Int(i) => Some(at(i.to_string(), node, &path)),
        other => {
            p.at(node.pos, &path, format!("expected a duration such as 5m, found {}", other.kind()));
            None
        }
    }
}

fn string_map(p: &mut Problems, node: &Node, path: &str) -> Vec<(At<String>, At<String>)> {
    let Value::Map(entries) = &node.value else {
        p.at(node.pos, path, format!("expected a mapping, found {}", node.value.kind()));
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|(key, value)| {
            let vpath = yaml::join(path, &key.name);
            let text = match &value.value {
                Value::Str(s) => Some(s.clone()),
                Value::Int(i) => Some(i.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                other => {
                    p.at(value.pos, &vpath, format!("expected a string, found {}", other.kind()));
                    None
                }
            }?;
            let key_node =
                Node { value: Value::Str(key.name.clone()), pos: key.pos, span_len: key.name.len() };
            Some((at(key.name.clone(), &key_node, &vpath), at(text, value, &vpath)))
        })
        .collect()
}

fn severity(p: &mut Problems, node: &Node, path: &str) -> Option<SeveritySpec> {
    let keys = [
        "name",
        "respond",
        "escalate_after",
        "escalation",
        "receiver",
        "group_wait",
        "group_interval",
        "repeat_interval",
        "inhibits",
        "color",
    ];
    let f = Fields::open(p, node, path, &keys)?;
    let name = req_string(p, &f, "name");
    let respond = opt_text(p, &f, "respond").or_else(|| {
        f.req(p, "respond");
        None
    });
    let escalate_after = opt_text(p, &f, "escalate_after");
    let escalation = f
        .get("escalation")
        .map(|n| yaml::list(p, n, &f.path_of("escalation"), step_of_escalation))
        .unwrap_or_default();
    let receiver = req_string(p, &f, "receiver");
    let mut timing = |key: &str| {
        let found = opt_text(p, &f, key);
        if found.is_none() && f.get(key).is_none() {
            p.at(f.pos, path, format!("missing field `{key}`"));
        }
        found
    };
    let group_wait = timing("group_wait");
    let group_interval = timing("group_interval");
    let repeat_interval = timing("repeat_interval");
    let inhibits = f
        .get("inhibits")
        .map(|n| {
            let ipath = f.path_of("inhibits");
            yaml::list(p, n, &ipath, |p, n, path| yaml::string(p, n, path).map(|v| at(v, n, path)))
        })
        .unwrap_or_default();
    let color = req_string(p, &f, "color");
    Some(SeveritySpec {
        name: name?,
        respond: respond?,
        escalate_after,
        escalation,
        receiver: receiver?,
        group_wait: group_wait?,
        group_interval: group_interval?,
        repeat_interval: repeat_interval?,
        inhibits,
        color: color?,
    })
}

fn step_of_escalation(p: &mut Problems, node: &Node, path: &str) -> Option<EscalationSpec> {
    let f = Fields::open(p, node, path, &["after", "level", "receiver"])?;
    let after = opt_text(p, &f, "after").or_else(|| {
        f.req(p, "after");
        None
    });
    let level = req_string(p, &f, "level");
    let receiver = req_string(p, &f, "receiver");
    Some(EscalationSpec { after: after?, level: level?, receiver: receiver? })
}

fn watchdog(p: &mut Problems, node: &Node, path: &str) -> Option<WatchdogSpec> {
    let f = Fields::open(p, node, path, &["receiver", "repeat_interval"])?;
    let receiver = req_string(p, &f, "receiver");
    let repeat_interval = opt_text(p, &f, "repeat_interval").or_else(|| {
        f.req(p, "repeat_interval");
        None
    });
    Some(WatchdogSpec { receiver: receiver?, repeat_interval: repeat_interval? })
}

fn step(p: &mut Problems, node: &Node, path: &str) -> Option<StepSpec> {
    let f = Fields::open(p, node, path, &["title", "commands"])?;
    let title = req_string(p, &f, "title")?.value;
    let commands = opt_string(p, &f, "commands").map(|c| c.value);
    Some(StepSpec { title, commands })
}

fn steps(p: &mut Problems, f: &Fields<'_>, key: &str) -> Vec<StepSpec> {
    f.get(key).map(|n| yaml::list(p, n, &f.path_of(key), step)).unwrap_or_default()
}

fn procedure(p: &mut Problems, node: &Node, path: &str) -> Option<ProcedureSpec> {
    let f = Fields::open(p, node, path, &["id", "title", "source", "symptoms", "diagnosis", "resolution"])?;
    let id = req_string(p, &f, "id");
    let title = req_string(p, &f, "title");
    let source = opt_string(p, &f, "source").map(|s| s.value);
    let symptoms = opt_string(p, &f, "symptoms").map(|s| s.value);
    let diagnosis = steps(p, &f, "diagnosis");
    let resolution = steps(p, &f, "resolution");
    Some(ProcedureSpec { id: id?, title: title?.value, source, symptoms, diagnosis, resolution })
}

fn board(p: &mut Problems, node: &Node, path: &str) -> Option<BoardSpec> {
    let f = Fields::open(p, node, path, &["id", "uid", "title", "tags", "rows"])?;
    let id = req_string(p, &f, "id");
    let uid = req_string(p, &f, "uid");
    let title = req_string(p, &f, "title");
    let tags = f.get("tags").map(|n| yaml::strings(p, n, &f.path_of("tags"))).unwrap_or_default();
    let rows = f.req(p, "rows").map(|n| yaml::list(p, n, &f.path_of("rows"), row)).unwrap_or_default();
    Some(BoardSpec { id: id?, uid: uid?, title: title?.value, tags, rows })
}

fn row(p: &mut Problems, node: &Node, path: &str) -> Option<RowSpec> {
    let f = Fields::open(p, node, path, &["id", "title", "panels"])?;
    let id = req_string(p, &f, "id");
    let title = req_string(p, &f, "title");
    let panels = f.get("panels").map(|n| yaml::list(p, n, &f.path_of("panels"), panel)).unwrap_or_default();
    Some(RowSpec { id: id?, title: title?.value, panels })
}

fn panel(p: &mut Problems, node: &Node, path: &str) -> Option<PanelSpec> {
    let f = Fields::open(p, node, path, &["title", "type", "unit", "width", "description", "queries"])?;
    let title = req_string(p, &f, "title");
    let kind = req_string(p, &f, "type");
    let unit = opt_string(p, &f, "unit");
    let width = opt_number(p, &f, "width");
    let description = opt_string(p, &f, "description").map(|d| d.value);
    let queries =
        f.req(p, "queries").map(|n| yaml::list(p, n, &f.path_of("queries"), query)).unwrap_or_default();
    Some(PanelSpec { title: title?, kind: kind?, unit, width, description, queries })
}

fn query(p: &mut Problems, node: &Node, path: &str) -> Option<QuerySpec> {
    let f = Fields::open(p, node, path, &["expr", "alert", "legend"])?;
    let expr = opt_string(p, &f, "expr");
    let alert = opt_string(p, &f, "alert");
    let legend = opt_string(p, &f, "legend").map(|l| l.value);
    if expr.is_some() == alert.is_some() && f.get("expr").is_some() == f.get("alert").is_some() {
        p.at(f.pos, path, "set exactly one of `expr` (PromQL) or `alert` (an alert's signal)");
        return None;
    }
    Some(QuerySpec { expr, alert, legend })
}

fn threshold(p: &mut Problems, node: &Node, path: &str) -> Option<ThresholdSpec> {
    let f = Fields::open(p, node, path, &["above", "below", "unit"])?;
    let unit = opt_string(p, &f, "unit");
    directional(p, &f, path).map(|(direction, value)| ThresholdSpec { direction, value, unit })
}

/// Exactly one of `above: N` / `below: N`.
fn directional(p: &mut Problems, f: &Fields<'_>, path: &str) -> Option<(At<String>, At<f64>)> {
    match (f.get("above"), f.get("below")) {
        (Some(_), Some(_)) | (None, None) => {
            p.at(f.pos, path, "set exactly one of `above: N` or `below: N`");
            None
        }
        (Some(node), None) | (None, Some(node)) => {
            let key = if f.get("above").is_some() { "above" } else { "below" };
            let vpath = f.path_of(key);
            let value = yaml::number(p, node, &vpath)?;
            let key_node = Node { value: Value::Str(key.into()), pos: node.pos, span_len: 0 };
            Some((at(key.to_owned(), &key_node, &vpath), at(value, node, &vpath)))
        }
    }
}

fn guard(p: &mut Problems, node: &Node, path: &str) -> Option<GuardSpec> {
    let f = Fields::open(p, node, path, &["signal", "min"])?;
    let signal = opt_string(p, &f, "signal");
    let min_node = f.req(p, "min")?;
    let min_path = f.path_of("min");
    let min = yaml::number(p, min_node, &min_path)?;
    Some(GuardSpec { signal, min: at(min, min_node, &min_path) })
}

fn baseline(p: &mut Problems, node: &Node, path: &str) -> Option<BaselineSpec> {
    let f = Fields::open(p, node, path, &["offset", "above", "below", "inclusive", "fallback", "floor"])?;
    let offset = opt_text(p, &f, "offset").or_else(|| {
        f.req(p, "offset");
        None
    });
    let inclusive = f.get("inclusive").and_then(|n| {
        let ipath = f.path_of("inclusive");
        yaml::boolean(p, n, &ipath).map(|b| at(b, n, &ipath))
    });
    let fallback = opt_number(p, &f, "fallback");
    let floor = opt_number(p, &f, "floor");
    let (direction, factor) = directional(p, &f, path)?;
    Some(BaselineSpec { offset: offset?, direction, factor, inclusive, fallback, floor })
}

fn placement(p: &mut Problems, node: &Node, path: &str) -> Option<PlacementSpec> {
    let f = Fields::open(p, node, path, &["board", "row", "panel", "unit"])?;
    let board = req_string(p, &f, "board");
    let row = req_string(p, &f, "row");
    let panel = req_string(p, &f, "panel");
    let unit = opt_string(p, &f, "unit");
    Some(PlacementSpec { board: board?, row: row?, panel: panel?, unit })
}

fn runbook(p: &mut Problems, node: &Node, path: &str) -> Option<RunbookSpec> {
    let f = Fields::open(p, node, path, &["procedure", "steps"])?;
    let procedure = opt_string(p, &f, "procedure");
    let steps = steps(p, &f, "steps");
    if procedure.is_none() && steps.is_empty() && f.get("procedure").is_none() {
        p.at(f.pos, path, "give a shared `procedure` or alert-specific `steps` (or both)");
    }
    Some(RunbookSpec { procedure, steps })
}

fn alert(p: &mut Problems, node: &Node, path: &str) -> Option<AlertSpec> {
    let f = Fields::open(p, node, path, ALERT_KEYS)?;
    let name = req_string(p, &f, "name");
    let severity = req_string(p, &f, "severity");
    let component = req_string(p, &f, "component");
    let kind = req_string(p, &f, "kind").map(|word| alert_kind(p, &f, &word));
    let for_ = opt_text(p, &f, "for");
    let summary = req_string(p, &f, "summary");
    let description = req_string(p, &f, "description");
    let runbook = f.req(p, "runbook").and_then(|n| runbook(p, n, &f.path_of("runbook")));
    let dashboard = f.req(p, "dashboard").and_then(|n| placement(p, n, &f.path_of("dashboard")));
    let spec = AlertSpec {
        path: path.to_owned(),
        pos: node.pos,
        name: name?,
        severity: severity?,
        component: component?,
        kind: kind?,
        for_,
        labels: f.get("labels").map(|n| string_map(p, n, &f.path_of("labels"))).unwrap_or_default(),
        summary: summary?,
        description: description?,
        runbook: runbook.unwrap_or_default(),
        dashboard,
        inhibits: f
            .get("inhibits")
            .map(|n| {
                let ipath = f.path_of("inhibits");
                yaml::list(p, n, &ipath, |p, n, path| yaml::string(p, n, path).map(|v| at(v, n, path)))
            })
            .unwrap_or_default(),
    };
    Some(spec)
}

/// Decodes the fields of the alert's kind. The outer `None` means the
/// `kind` word itself is missing; the inner one an unknown kind or a kind
/// without a field it needs (both reported).
fn alert_kind(p: &mut Problems, f: &Fields<'_>, word: &At<String>) -> Option<AlertKind> {
    check_kind_keys(p, f, word)?;
    let k = KindFields { f, kind: &word.value };
    // Every field is decoded before any `?`, so all of them are reported.
    Some(match k.kind {
        "threshold" => {
            let signal = k.needed_string(p, "signal");
            let threshold = k.threshold(p);
            let volume_guard = k.guard(p);
            let record = opt_string(p, f, "record");
            AlertKind::Threshold(ThresholdKind {
                signal: signal?,
                threshold: threshold?,
                volume_guard,
                record,
            })
        }
        "ratio" => {
            let numerator = k.needed_string(p, "numerator");
            let denominator = k.needed_string(p, "denominator");
            let threshold = k.threshold(p);
            let volume_guard = k.guard(p);
            let record = opt_string(p, f, "record");
            AlertKind::Ratio(RatioKind {
                numerator: numerator?,
                denominator: denominator?,
                threshold: threshold?,
                volume_guard,
                record,
            })
        }
        "change" => {
            let signal = k.needed_string(p, "signal");
            let baseline = k.baseline(p);
            let volume_guard = k.guard(p);
            let record = opt_string(p, f, "record");
            AlertKind::Change(ChangeKind { signal: signal?, baseline: baseline?, volume_guard, record })
        }
        "quantile" => {
            let histogram = k.needed_string(p, "histogram");
            let quantile = k.quantile(p);
            let window = k.needed_text(p, "window");
            let by = f.get("by").map(|n| {
                let bpath = f.path_of("by");
                at(yaml::strings(p, n, &bpath), n, &bpath)
            });
            let threshold = k.threshold(p);
            let volume_guard = k.guard(p);
            let record = opt_string(p, f, "record");
            AlertKind::Quantile(Box::new(QuantileKind {
                histogram: histogram?,
                quantile: quantile?,
                window: window?,
                by,
                threshold: threshold?,
                volume_guard,
                record,
            }))
        }
        "up" => {
            let signal = k.needed_string(p, "signal");
            let absent = f.get("absent").and_then(|n| {
                let apath = f.path_of("absent");
                yaml::boolean(p, n, &apath).map(|b| at(b, n, &apath))
            });
            AlertKind::Up(UpKind { signal: signal?, absent })
        }
        "predict" => {
            let signal = k.needed_string(p, "signal");
            let window = k.needed_text(p, "window");
            let horizon = k.needed_text(p, "horizon");
            let threshold = k.threshold(p);
            AlertKind::Predict(PredictKind {
                signal: signal?,
                window: window?,
                horizon: horizon?,
                threshold: threshold?,
            })
        }
        "staleness" => {
            let timestamp = k.needed_string(p, "timestamp");
            let max_age = k.needed_text(p, "max_age");
            AlertKind::Staleness(StalenessKind { timestamp: timestamp?, max_age: max_age? })
        }
        "raw" => {
            let expr = k.needed_string(p, "expr");
            let unit = opt_string(p, f, "unit");
            AlertKind::Raw(RawKind { expr: expr?, unit })
        }
        _ => return None,
    })
}

/// The fields of one kind being decoded; a required field that is missing
/// (or did not decode) is reported against the alert, naming the kind.
struct KindFields<'f, 'a> {
    f: &'f Fields<'a>,
    kind: &'f str,
}

impl KindFields<'_, '_> {
    fn needed<T>(&self, p: &mut Problems, found: Option<T>, message: impl FnOnce() -> String) -> Option<T> {
        if found.is_none() {
            p.at(self.f.pos, &self.f.path, message());
        }
        found
    }

    fn needed_string(&self, p: &mut Problems, key: &str) -> Option<At<String>> {
        let found = opt_string(p, self.f, key);
        self.needed(p, found, || format!("missing field `{key}` (kind {} needs it)", self.kind))
    }

    fn needed_text(&self, p: &mut Problems, key: &str) -> Option<At<String>> {
        let found = opt_text(p, self.f, key);
        self.needed(p, found, || format!("missing field `{key}` (kind {} needs it)", self.kind))
    }

    fn threshold(&self, p: &mut Problems) -> Option<ThresholdSpec> {
        let found = self.f.get("threshold").and_then(|n| threshold(p, n, &self.f.path_of("threshold")));
        self.needed(p, found, || {
            format!(
                "missing field `threshold` (kind {} needs `threshold: {{above|below: N, unit: U}}`)",
                self.kind
            )
        })
    }

    fn quantile(&self, p: &mut Problems) -> Option<At<f64>> {
        let found = opt_number(p, self.f, "quantile");
        self.needed(p, found, || "missing field `quantile` (e.g. 0.95)".to_owned())
    }

    fn baseline(&self, p: &mut Problems) -> Option<BaselineSpec> {
        let found = self.f.get("baseline").and_then(|n| baseline(p, n, &self.f.path_of("baseline")));
        self.needed(p, found, || {
            "missing field `baseline` (kind change needs `baseline: {offset: 1w, below|above: FACTOR}`)"
                .to_owned()
        })
    }

    fn guard(&self, p: &mut Problems) -> Option<GuardSpec> {
        self.f.get("volume_guard").and_then(|n| guard(p, n, &self.f.path_of("volume_guard")))
    }
}

/// Each kind and the keys that apply to it (besides the common ones).
pub const KIND_KEYS: &[(&str, &[&str])] = &[
    ("threshold", &["signal", "threshold", "volume_guard", "record"]),
    ("ratio", &["numerator", "denominator", "threshold", "volume_guard", "record"]),
    ("change", &["signal", "baseline", "volume_guard", "record"]),
    ("quantile", &["histogram", "quantile", "window", "by", "threshold", "volume_guard", "record"]),
    ("up", &["signal", "absent"]),
    ("predict", &["signal", "window", "horizon", "threshold"]),
    ("staleness", &["timestamp", "max_age"]),
    ("raw", &["expr", "unit"]),
];

/// Keys that apply to `kind` (besides the common ones).
pub fn kind_keys(kind: &str) -> Option<&'static [&'static str]> {
    KIND_KEYS.iter().find(|(name, _)| *name == kind).map(|(_, keys)| *keys)
}

/// Keys every kind accepts.
pub const COMMON_KEYS: &[&str] = &[
    "name",
    "severity",
    "component",
    "kind",
    "for",
    "labels",
    "summary",
    "description",
    "runbook",
    "dashboard",
    "inhibits",
];

/// Reports an unknown kind (`None`) and keys of other kinds.
fn check_kind_keys(p: &mut Problems, f: &Fields<'_>, kind: &At<String>) -> Option<()> {
    let Some(allowed) = kind_keys(&kind.value) else {
        let kinds: Vec<&str> = KIND_KEYS.iter().map(|(name, _)| *name).collect();
        p.at(
            kind.pos,
            &kind.path,
            format!(
                "unknown kind `{}`, expected one of {}{}",
                kind.value,
                kinds.join(", "),
                hint(&kind.value, kinds.iter().copied())
            ),
        );
        return None;
    };
    for (key, _) in f.entries() {
        let key_name = key.name.as_str();
        if ALERT_KEYS.contains(&key_name) && !COMMON_KEYS.contains(&key_name) && !allowed.contains(&key_name)
        {
            p.at(
                key.pos,
                &f.path_of(key_name),
                format!(
                    "field `{key_name}` does not apply to kind `{}` (it takes {})",
                    kind.value,
                    allowed.join(", ")
                ),
            );
        }
    }
    Some(())
}

/// `checklists: {overnight, items}`: the guide's morning, afternoon and
/// evening checks, each item reading alerts and/or an expression.
#[derive(Debug, Clone)]
pub struct ChecklistsSpec {
    /// Position of the section.
    pub pos: Pos,
    /// How far back the morning list looks for error-log matches and alerts
    /// that fired overnight (default 15h: 18:00 to 09:00).
    pub overnight: Option<At<String>>,
    /// The items, in file order.
    pub items: Vec<ChecklistItemSpec>,
}

/// One checklist item, as written.
#[derive(Debug, Clone)]
pub struct ChecklistItemSpec {
    /// Field path (`checklists.items[3]`).
    pub path: String,
    /// Position of the entry.
    pub pos: Pos,
    /// The guide's words.
    pub title: At<String>,
    /// `morning`, `afternoon`, `evening`.
    pub checklists: Vec<At<String>>,
    /// Alerts whose state decides the status.
    pub alerts: Vec<At<String>>,
    /// PromQL value shown (default: the only alert's signal).
    pub expr: Option<At<String>>,
    /// ratio, seconds, bytes, none: how the value is shown.
    pub unit: Option<At<String>>,
    /// The value's own warning limit.
    pub warning: Option<(At<String>, At<f64>)>,
    /// The value's own critical limit.
    pub critical: Option<(At<String>, At<f64>)>,
    /// A business item: also show the change against yesterday and last week.
    pub compare: Option<At<bool>>,
}

fn checklists(p: &mut Problems, node: &Node, path: &str) -> Option<ChecklistsSpec> {
    let f = Fields::open(p, node, path, &["overnight", "items"])?;
    let overnight = opt_text(p, &f, "overnight");
    let items =
        f.req(p, "items").map(|n| yaml::list(p, n, &f.path_of("items"), checklist_item)).unwrap_or_default();
    Some(ChecklistsSpec { pos: node.pos, overnight, items })
}

fn checklist_item(p: &mut Problems, node: &Node, path: &str) -> Option<ChecklistItemSpec> {
    let keys = ["title", "checklists", "alerts", "expr", "unit", "warning", "critical", "compare"];
    let f = Fields::open(p, node, path, &keys)?;
    let title = req_string(p, &f, "title");
    let strings_at = |p: &mut Problems, key: &str| {
        f.get(key)
            .map(|n| {
                let lpath = f.path_of(key);
                yaml::list(p, n, &lpath, |p, n, path| yaml::string(p, n, path).map(|v| at(v, n, path)))
            })
            .unwrap_or_default()
    };
    let lists = strings_at(p, "checklists");
    if f.get("checklists").is_none() {
        p.at(f.pos, path, "missing field `checklists` (one or more of morning, afternoon, evening)");
    }
    let alerts = strings_at(p, "alerts");
    let expr = opt_string(p, &f, "expr");
    if alerts.is_empty() && expr.is_none() && f.get("alerts").is_none() && f.get("expr").is_none() {
        p.at(f.pos, path, "give the `alerts` the item reads, an `expr` to show, or both");
    }
    let unit = opt_string(p, &f, "unit");
    let limit = |p: &mut Problems, key: &str| {
        let node = f.get(key)?;
        let lpath = f.path_of(key);
        let l = Fields::open(p, node, &lpath, &["above", "below"])?;
        directional(p, &l, &lpath)
    };
    let warning = limit(p, "warning");
    let critical = limit(p, "critical");
    let compare = f.get("compare").and_then(|n| {
        let cpath = f.path_of("compare");
        yaml::boolean(p, n, &cpath).map(|b| at(b, n, &cpath))
    });
    Some(ChecklistItemSpec {
        path: path.to_owned(),
        pos: node.pos,
        title: title?,
        checklists: lists,
        alerts,
        expr,
        unit,
        warning,
        critical,
        compare,
    })
}
