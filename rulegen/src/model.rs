//! The validated model: everything renderers may rely on, already checked,
//! resolved and laid out. Renderers read only this, never the raw spec.

use crate::template::Template;
use opsmon_catalog::Unit;
use std::collections::BTreeMap;
use std::time::Duration;

/// The whole validated definition.
#[derive(Debug, Clone)]
pub struct Model {
    /// Path of the threshold file as given (for "generated from" headers).
    pub source: String,
    /// Base URL of runbook pages.
    pub runbook_base: String,
    /// Base URL of Grafana.
    pub grafana_base: String,
    /// Alertmanager settings.
    pub alertmanager: Alertmanager,
    /// PrometheusRule metadata.
    pub kubernetes: Kubernetes,
    /// Severity tiers in declared order.
    pub severities: Vec<Severity>,
    /// Recording rules, in first-use order.
    pub records: Vec<Record>,
    /// Alerts in file order.
    pub alerts: Vec<Alert>,
    /// Dashboards with laid-out panels.
    pub boards: Vec<Board>,
    /// The guide's daily checklists (`rulegen report`).
    pub checklists: Checklists,
}

/// Alertmanager settings beyond the tiers.
#[derive(Debug, Clone)]
pub struct Alertmanager {
    /// Grouping labels.
    pub group_by: Vec<String>,
    /// Fallback receiver.
    pub default_receiver: String,
    /// `global.resolve_timeout`.
    pub resolve_timeout: String,
    /// The always-firing Watchdog alert's receiver and repeat interval.
    pub watchdog: Option<(String, String)>,
    /// The user's receivers, checked, in file order; `None` when the
    /// threshold file names no receivers file (the routes' receivers are
    /// then rendered empty).
    pub receivers: Option<Receivers>,
}

/// The user's receivers file, merged into the generated Alertmanager config.
#[derive(Debug, Clone)]
pub struct Receivers {
    /// The file as named relative to the threshold file's path (for headers).
    pub source: String,
    /// Each receiver: its name and its other fields as written.
    pub list: Vec<(String, Vec<(String, crate::yaml::Node)>)>,
}

/// A step of a tier's escalation.
#[derive(Debug, Clone)]
pub struct Escalation {
    /// How long the alert has been firing.
    pub after: Duration,
    /// Level name, the `escalation` label.
    pub level: String,
    /// Receiver of the level.
    pub receiver: String,
}

/// PrometheusRule metadata.
#[derive(Debug, Clone)]
pub struct Kubernetes {
    /// metadata.name.
    pub name: String,
    /// metadata.namespace.
    pub namespace: String,
    /// metadata.labels, sorted.
    pub labels: Vec<(String, String)>,
    /// The exporter's `job` in the rule file (`exporter_job`).
    pub exporter_job: String,
    /// The exporter's `job` under prometheus-operator (the Service name).
    pub job: String,
}

/// A severity tier.
#[derive(Debug, Clone)]
pub struct Severity {
    /// Name (the `severity` label).
    pub name: String,
    /// Response time in words.
    pub respond: String,
    /// Escalation step.
    pub escalate_after: Option<String>,
    /// Escalation steps, increasing.
    pub escalation: Vec<Escalation>,
    /// Receiver.
    pub receiver: String,
    /// Alertmanager `group_wait`.
    pub group_wait: String,
    /// Alertmanager `group_interval`.
    pub group_interval: String,
    /// Alertmanager `repeat_interval`.
    pub repeat_interval: String,
    /// Tiers silenced by this one for the same thing.
    pub inhibits: Vec<String>,
    /// Grafana colour.
    pub color: String,
}

/// A recording rule.
#[derive(Debug, Clone)]
pub struct Record {
    /// `level:metric:operations`.
    pub name: String,
    /// Expression.
    pub expr: String,
    /// Component of the first alert using it (its rule group).
    pub component: String,
}

/// Which way a threshold is crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Fires above.
    Above,
    /// Fires below.
    Below,
}

impl Direction {
    /// PromQL operator.
    pub fn op(self) -> &'static str {
        match self {
            Direction::Above => ">",
            Direction::Below => "<",
        }
    }
    /// The word.
    pub fn word(self) -> &'static str {
        match self {
            Direction::Above => "above",
            Direction::Below => "below",
        }
    }
}

/// An alert's threshold on its plotted signal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// Value in the signal's unit.
    pub value: f64,
    /// Direction.
    pub direction: Direction,
    /// Unit of the signal.
    pub unit: Unit,
    /// The threshold itself fires too (`>=`/`<=`).
    pub inclusive: bool,
    /// What a relative (change) threshold is a factor of, in words.
    pub baseline: Option<Baseline>,
}

/// The baseline a change alert compares with, as the rule computes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    /// How far back.
    pub offset: Duration,
    /// Stands in while the offset has no data.
    pub fallback: Option<f64>,
    /// Smallest baseline.
    pub floor: Option<f64>,
}

/// A runbook step.
#[derive(Debug, Clone)]
pub struct Step {
    /// What to do.
    pub title: String,
    /// Commands.
    pub commands: Option<String>,
}

/// An alert's runbook content.
#[derive(Debug, Clone, Default)]
pub struct Runbook {
    /// Alert-specific first steps.
    pub first: Vec<Step>,
    /// Shared procedure title.
    pub procedure: Option<String>,
    /// Guide section it comes from.
    pub source: Option<String>,
    /// Symptoms.
    pub symptoms: Option<String>,
    /// Diagnosis steps.
    pub diagnosis: Vec<Step>,
    /// Resolution steps.
    pub resolution: Vec<Step>,
}

/// A validated alert.
#[derive(Debug, Clone)]
pub struct Alert {
    /// CamelCase name.
    pub name: String,
    /// What the alert watches.
    pub kind: Kind,
    /// Severity tier name.
    pub severity: String,
    /// Component label.
    pub component: String,
    /// `for`.
    pub for_: Duration,
    /// The alerting expression (normalised PromQL).
    pub expr: String,
    /// The value plotted on dashboards (a record name or an expression).
    pub signal: String,
    /// Threshold on `signal`.
    pub threshold: Threshold,
    /// Volume guard as text, for runbooks.
    pub guard: Option<(String, f64)>,
    /// Static labels (severity, component, extra), sorted.
    pub labels: BTreeMap<String, String>,
    /// Labels the expression's series carry, when known.
    pub series_labels: Option<Vec<String>>,
    /// Summary template.
    pub summary: Template,
    /// Summary source text.
    pub summary_text: String,
    /// Description template.
    pub description: Template,
    /// Description source text.
    pub description_text: String,
    /// Runbook content.
    pub runbook: Runbook,
    /// Link to its runbook page.
    pub runbook_url: String,
    /// Link to its dashboard panel.
    pub dashboard_url: String,
    /// Dashboard title and panel title.
    pub dashboard_place: (String, String),
    /// The promtool test scenario.
    pub scenario: Scenario,
    /// Alerts it silences on the same component and instance.
    pub inhibits: Vec<String>,
}

/// What an alert watches; the spec's kind without its fields (those are
/// resolved into the expression, signal and threshold by validation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A signal compared with a threshold.
    Threshold,
    /// numerator / denominator compared with a ratio threshold.
    Ratio,
    /// The signal relative to itself some time ago.
    Change,
    /// A histogram quantile compared with a threshold.
    Quantile,
    /// A target that stopped answering (or vanished).
    Up,
    /// A gauge extrapolated over a horizon.
    Predict,
    /// A timestamp older than a maximum age.
    Staleness,
    /// A hand-written comparison.
    Raw,
}

impl Kind {
    /// The word used in the threshold file.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Threshold => "threshold",
            Kind::Ratio => "ratio",
            Kind::Change => "change",
            Kind::Quantile => "quantile",
            Kind::Up => "up",
            Kind::Predict => "predict",
            Kind::Staleness => "staleness",
            Kind::Raw => "raw",
        }
    }

    /// Its threshold is a factor of a baseline, not a value of the signal.
    pub fn is_relative(self) -> bool {
        self == Kind::Change
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Kind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// An alert's promtool unit test as plain data: the input series in
/// promtool's notation and what must (not) fire when.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Input series.
    pub series: Vec<InputSeries>,
    /// No alert (signal just on the safe side).
    pub silent_at: Duration,
    /// Condition true but `for` not yet elapsed.
    pub pending_at: Option<Duration>,
    /// The alert's series at `pending_at`, when its windows are clean there
    /// (then the test also asserts the ALERTS series in state pending).
    pub pending: Vec<Sample>,
    /// Firing.
    pub firing_at: Duration,
    /// The alert's series at `firing_at`.
    pub firing: Vec<Sample>,
}

/// One input series of a promtool test.
#[derive(Debug, Clone)]
pub struct InputSeries {
    /// `name{label="value",...}`.
    pub series: String,
    /// promtool's expanding notation (`0+6x10 _x3`).
    pub values: String,
}

/// One series of the alert's result.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Its labels, without `__name__`.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// A dashboard.
#[derive(Debug, Clone)]
pub struct Board {
    /// Identifier in the threshold file.
    pub id: String,
    /// Grafana uid.
    pub uid: String,
    /// Title.
    pub title: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Rows in order.
    pub rows: Vec<Row>,
}

/// A dashboard row.
#[derive(Debug, Clone)]
pub struct Row {
    /// Panel id of the row itself.
    pub id: u32,
    /// Title.
    pub title: String,
    /// Y of the row header.
    pub y: u32,
    /// Panels.
    pub panels: Vec<Panel>,
}

/// A laid-out panel.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Panel id, unique in its dashboard.
    pub id: u32,
    /// Title.
    pub title: String,
    /// Grafana panel type.
    pub kind: String,
    /// Grafana unit.
    pub unit: String,
    /// Description.
    pub description: String,
    /// Queries.
    pub queries: Vec<Query>,
    /// Threshold steps in the panel's unit, ascending; `base` colours below the first.
    pub steps: Vec<(f64, String)>,
    /// Colour below the first step.
    pub base: String,
    /// Alerts whose thresholds are shown.
    pub alerts: Vec<String>,
    /// Grid position.
    pub x: u32,
    /// Grid position.
    pub y: u32,
    /// Grid size.
    pub w: u32,
    /// Grid size.
    pub h: u32,
    /// Value range (min, max) when fixed.
    pub range: Option<(f64, f64)>,
}

/// A panel query.
#[derive(Debug, Clone)]
pub struct Query {
    /// PromQL.
    pub expr: String,
    /// Legend template.
    pub legend: String,
}

/// One of the guide's three daily checklists (日常运维检查清单).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Checklist {
    /// 上午检查 (9:00).
    Morning,
    /// 下午检查 (14:00).
    Afternoon,
    /// 晚间检查 (18:00).
    Evening,
}

impl Checklist {
    /// All three, in the order of the day.
    pub const ALL: [Checklist; 3] = [Checklist::Morning, Checklist::Afternoon, Checklist::Evening];
    /// The words the threshold file and the command line use.
    pub const WORDS: [&'static str; 3] = ["morning", "afternoon", "evening"];

    /// Its word.
    pub fn as_str(self) -> &'static str {
        Self::WORDS[self as usize]
    }

    /// The checklist a word names.
    pub fn parse(word: &str) -> Option<Checklist> {
        Self::ALL.into_iter().find(|c| c.as_str() == word)
    }

    /// The guide's heading.
    pub fn heading(self) -> &'static str {
        match self {
            Checklist::Morning => "上午检查 Morning check (9:00)",
            Checklist::Afternoon => "下午检查 Afternoon check (14:00)",
            Checklist::Evening => "晚间检查 Evening check (18:00)",
        }
    }
}

/// What `rulegen report` evaluates.
#[derive(Debug, Clone)]
pub struct Checklists {
    /// How far back the morning list looks for error-log matches and for
    /// alerts that fired overnight.
    pub overnight: Duration,
    /// Items in file order.
    pub items: Vec<ChecklistItem>,
}

impl Default for Checklists {
    fn default() -> Self {
        Checklists { overnight: Duration::from_secs(15 * 3600), items: Vec::new() }
    }
}

/// A validated checklist item.
#[derive(Debug, Clone)]
pub struct ChecklistItem {
    /// The guide's words.
    pub title: String,
    /// The lists it belongs to.
    pub checklists: Vec<Checklist>,
    /// Alerts whose state decides the status: (name, severity).
    pub alerts: Vec<(String, String)>,
    /// PromQL value shown; `None` shows how many of `alerts` fire.
    pub value: Option<String>,
    /// How the value is shown.
    pub unit: Unit,
    /// The alert's threshold, when the value is that alert's signal.
    pub alert_threshold: Option<Threshold>,
    /// The value's own warning limit.
    pub warning: Option<Threshold>,
    /// The value's own critical limit.
    pub critical: Option<Threshold>,
    /// Also show the change against yesterday and last week.
    pub compare: bool,
}
