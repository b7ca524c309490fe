//! What the pages show: runs and their scenarios, mite's view, charts,
//! agents, share links, the activity log and the lab's ports.

use serde::{Deserialize, Serialize};

use domain::figures::ScenarioFigures;
use domain::model::{
    BusSummary, CollectorFile, ErrorCount, ProcessKind, RunParams, RunStatus, ScenarioStatus,
    TransactionTotal,
};
use domain::profile::ProfileView;
use domain::provenance::Provenance;
use domain::validity::ValidityFlag;

/// A run in the history list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunListItem {
    pub id: i64,
    pub label: String,
    pub status: RunStatus,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub concurrencies: Vec<u32>,
    pub mite_version: String,
    pub total_requests: i64,
}

/// One page of the run history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunList {
    pub items: Vec<RunListItem>,
    pub page: u32,
    pub pages: u32,
    pub total: i64,
}

/// A run in the queue: the one running now (position 0), then those waiting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub id: i64,
    pub position: usize,
    pub running: bool,
    pub label: String,
    pub launched_by: String,
    pub created_at: i64,
    pub concurrencies: Vec<u32>,
    /// Whether the caller may remove (or cancel) it.
    pub can_cancel: bool,
}

/// The latest reading of one process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessNow {
    pub process: ProcessKind,
    pub cpu: f64,
    pub mem: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioView {
    pub id: i64,
    pub name: String,
    pub concurrency: i64,
    pub status: ScenarioStatus,
    pub duration_ms: i64,
    pub interval_ms: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// Milliseconds since the controller started, at the latest sample.
    pub elapsed_ms: i64,
    pub error: Option<String>,
    pub error_log: Option<String>,
    pub figures: ScenarioFigures,
    pub latest: Vec<ProcessNow>,
    /// Processes whose log can be downloaded.
    pub logs: Vec<String>,
    /// mite's collector files the scenario kept (listed once it has ended,
    /// when its folder is on the web front's host).
    pub collector_files: Vec<CollectorFile>,
    /// The stack profiles taken of its processes (a run with `--profile`).
    pub profiles: Vec<ProfileView>,
    /// Which of the run's builds it measured, and which repeat (from 0).
    pub build_index: i64,
    pub repeat_index: i64,
    /// What makes its figures mean something else (none for a scenario
    /// that measured what it seems to).
    pub flags: Vec<ValidityFlag>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    pub id: i64,
    pub label: String,
    pub status: RunStatus,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub params: RunParams,
    pub mite_version: String,
    pub python_version: String,
    pub host: String,
    pub cores: i64,
    pub output_dir: Option<String>,
    pub error: Option<String>,
    pub queue_position: Option<usize>,
    pub scenarios: Vec<ScenarioView>,
    /// What it measured (builds, machine, target, scenario source).
    pub provenance: Option<Provenance>,
    /// The baseline run of its label, if the label has one.
    pub baseline_run: Option<i64>,
    /// What it does before its first scenario (installing a mite build).
    pub stage: Option<String>,
    /// Who cancelled it.
    pub cancelled_by: Option<String>,
    /// The lab agent executing (or that executed) it.
    pub agent: Option<String>,
    /// Whether the caller may cancel it (set per caller by [`get_run`]).
    pub can_cancel: bool,
}

/// Where a lab agent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentState {
    /// Alive, waiting for a run.
    Idle,
    /// Alive, executing a run.
    Running,
    /// No heartbeat for longer than a lease: dead, or cut off from the database.
    Silent,
    /// Ended cleanly.
    Stopped,
}

/// A lab agent, as the Agents page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentView {
    pub name: String,
    pub hostname: String,
    pub state: AgentState,
    /// Milliseconds since its last heartbeat.
    pub heartbeat_age_ms: i64,
    pub current_run: Option<i64>,
    pub cores: i64,
    pub cpu_model: String,
    pub builds: Vec<String>,
    /// `TARGET,CONTROLLER,MESSAGE,COLLECTOR`.
    pub ports: String,
    pub started_at: i64,
}

/// A read-only link to a run, for someone without an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareLinkView {
    pub id: i64,
    pub run_id: i64,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked: bool,
    /// Only right after it was made: the link's path (`/share/…`). Its
    /// secret is kept hashed, so it cannot be shown again.
    pub path: Option<String>,
}

/// One entry of the activity log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub source: String,
}

/// mite's own account of a scenario, read from its message bus: each
/// transaction over the scenario, its errors by kind, what the bus carried
/// and what mite dropped, and charts of latency, errors and concurrency.
/// Counts are `None` for a scenario the lab did not read the bus of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MiteView {
    pub totals: Vec<TransactionTotal>,
    pub errors: Vec<ErrorCount>,
    pub summary: BusSummary,
    pub charts: Vec<ChartSpec>,
}

pub use domain::chart_spec::ChartSpec;

/// A scenario's charts, with what a live page needs to keep them current.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioCharts {
    pub charts: Vec<ChartSpec>,
    /// The width of the charts' buckets (the sampling interval at full resolution).
    pub bucket_ms: i64,
    /// The elapsed time of the latest sample drawn (-1 before the first).
    pub last_ms: i64,
}

/// A series' points, `[elapsed seconds, value]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoints {
    pub name: String,
    pub points: Vec<[f64; 2]>,
}

/// New points for one chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartSeries {
    /// The chart's number among the scenario's.
    pub slot: usize,
    pub series: Vec<SeriesPoints>,
}

/// New points for a scenario's charts: they replace any points at or after
/// their first one and extend the series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartPoints {
    pub charts: Vec<ChartSeries>,
    pub last_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PortHolder {
    Lab { pid: u32, command: String },
    Foreign { pid: Option<u32>, command: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortView {
    /// The agent whose port it is.
    #[serde(default)]
    pub agent: String,
    pub port: u16,
    pub purpose: String,
    /// Whether this web front could look at it (the agent runs on its
    /// machine); if not, `holders` is empty and unknown.
    #[serde(default = "seen_by_default")]
    pub seen: bool,
    pub holders: Vec<PortHolder>,
}

fn seen_by_default() -> bool {
    true
}
