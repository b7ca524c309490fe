//! The contract between the pages and the lab: the types they exchange and
//! the server functions. On the server (`ssr`), each function calls the
//! [`LabApi`] the server provides as context.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

pub use crate::error::LabError;
#[cfg(feature = "ssr")]
use domain::access::Action;
use domain::access::Caller;
use domain::builds::MiteBuild;
use domain::compare::ComparisonReport;
use domain::defaults;
use domain::figures::ScenarioFigures;
use domain::library::LibraryScenario;
use domain::matrix::RunMatrix;
use domain::model::{
    BusSummary, CollectorFile, CollectorKeep, ErrorCount, FieldError, ProcessKind, RunParams,
    RunStatus, ScenarioSpec, ScenarioStatus, TransactionTotal,
};
use domain::profile::{ProfileSpec, ProfileView};
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

/// What a launch asks for, as typed in the form. Missing fields take the
/// form's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LaunchForm {
    /// Concurrencies, comma separated (the page sends the checked defaults
    /// and the custom ones here). Forms of old pages call it `scenarios`.
    #[serde(alias = "scenarios")]
    pub concurrencies: String,
    /// Checked concurrencies, as a form posted without JavaScript sends its
    /// checkboxes (`form[chosen][0]=1`, …); added to `scenarios`.
    pub chosen: Vec<String>,
    pub duration: String,
    pub spawn_rate: String,
    pub interval: String,
    pub label: String,
    /// mite builds, comma separated: `pinned`, versions (`2.10.0`).
    pub mite: String,
    /// Times each scenario runs with each build.
    pub repeat: String,
    /// The agent that must execute it; empty: any.
    pub agent: String,
    /// mite runners per scenario; empty: one.
    pub runners: String,
    /// The collector's files kept per scenario: `last` (`collector_mib`
    /// of them), `all` or `none`.
    pub collector: String,
    /// MiB kept when `collector` is `last`.
    pub collector_mib: String,
    /// A scenario of the agents' library (`module:function`); empty: the
    /// built-in one.
    pub scenario: String,
    /// Profile mite's runners (`on`, as a checkbox posts it); empty: not.
    pub profile: String,
    /// Profile its controller, duplicator and collector too (`on`).
    pub profile_all: String,
    /// Leave mite's message bus unread (`on`, as a checkbox posts it): the
    /// seed's measurement only; empty: the lab reads it.
    pub bus_off: String,
}

impl Default for LaunchForm {
    fn default() -> Self {
        LaunchForm {
            concurrencies: defaults::CONCURRENCIES_TEXT.into(),
            chosen: vec![],
            duration: defaults::DURATION_TEXT.into(),
            spawn_rate: defaults::SPAWN_RATE_TEXT.into(),
            interval: defaults::INTERVAL_TEXT.into(),
            label: String::new(),
            mite: defaults::MITE_BUILD_TEXT.into(),
            repeat: defaults::REPEATS_TEXT.into(),
            agent: String::new(),
            runners: defaults::RUNNERS_TEXT.into(),
            collector: "last".into(),
            collector_mib: defaults::COLLECTOR_KEEP_TEXT.into(),
            scenario: String::new(),
            profile: String::new(),
            profile_all: String::new(),
            bus_off: String::new(),
        }
    }
}

impl LaunchForm {
    /// The run these fields describe, or what cannot be read in each field.
    /// It only reads them: whether the run may go (ranges, limits) is
    /// [`RunParams::validate`]'s to say, once, where the run is launched.
    pub fn to_params(&self) -> Result<RunParams, Vec<FieldError>> {
        use domain::model::{parse_concurrencies, parse_duration};
        let mut errors = Vec::new();
        let mut field = |name: &str, message: String| {
            errors.push(FieldError {
                field: name.into(),
                message,
            })
        };
        let listed: Vec<&str> = self
            .chosen
            .iter()
            .map(String::as_str)
            .chain(self.concurrencies.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let concurrencies = if listed.is_empty() {
            field("concurrencies", "choose at least one concurrency".into());
            vec![]
        } else {
            parse_concurrencies(&listed.join(",")).unwrap_or_else(|e| {
                field("concurrencies", e);
                vec![]
            })
        };
        let duration = parse_duration(&self.duration).unwrap_or_else(|e| {
            field("duration", e);
            std::time::Duration::ZERO
        });
        let interval = parse_duration(&self.interval).unwrap_or_else(|e| {
            field("interval", e);
            std::time::Duration::ZERO
        });
        let spawn_rate = self.spawn_rate.trim().parse::<u32>().unwrap_or_else(|_| {
            field(
                "spawn_rate",
                format!("`{}` is not a whole number", self.spawn_rate.trim()),
            );
            0
        });
        let mite = MiteBuild::parse_list(&self.mite).unwrap_or_else(|e| {
            field("mite", e);
            vec![]
        });
        let runners = match self.runners.trim() {
            "" => 1,
            text => text.parse::<u32>().unwrap_or_else(|_| {
                field("runners", format!("`{text}` is not a whole number"));
                0
            }),
        };
        let collector = match self.collector.trim() {
            "" | "last" => CollectorKeep::parse(&self.collector_mib),
            "all" => Ok(CollectorKeep::All),
            "none" => Ok(CollectorKeep::Nothing),
            other => Err(format!("`{other}` is not `last`, `all` or `none`")),
        }
        .unwrap_or_else(|e| {
            field("collector", e);
            CollectorKeep::default()
        });
        let repeats = self.repeat.trim().parse::<u32>().unwrap_or_else(|_| {
            field(
                "repeat",
                format!("`{}` is not a whole number", self.repeat.trim()),
            );
            0
        });
        let scenario = match self.scenario.trim() {
            "" | "builtin" => ScenarioSpec::Builtin,
            spec => ScenarioSpec::Library { spec: spec.into() },
        };
        if let ScenarioSpec::Library { spec } = &scenario {
            if !domain::library::is_scenario_spec(spec) {
                field(
                    "scenario",
                    format!("`{spec}` is not a module:function of the scenario library"),
                );
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let params = RunParams {
            mite: if mite == [MiteBuild::Pinned] {
                vec![]
            } else {
                mite
            },
            repeats,
            runners,
            collector,
            scenario,
            profile: match (self.profile.trim(), self.profile_all.trim()) {
                ("" | "off" | "false", _) => None,
                (_, "on" | "true") => Some(ProfileSpec {
                    rate: ProfileSpec::DEFAULT_RATE,
                    processes: ProfileSpec::PROFILABLE.to_vec(),
                }),
                _ => Some(ProfileSpec::runners()),
            },
            read_bus: match self.bus_off.trim() {
                "" | "off" | "false" => defaults::READ_BUS,
                _ => false,
            },
            agent: Some(self.agent.trim().to_string()).filter(|a| !a.is_empty()),
            label: self.label.trim().to_string(),
            concurrencies,
            duration_ms: duration.as_millis() as u64,
            spawn_rate,
            interval_ms: interval.as_millis() as u64,
            ..RunParams::default()
        };
        Ok(params)
    }
}

/// The answer to a launch: the run's id, or field errors to show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LaunchOutcome {
    Queued { run_id: i64, position: usize },
    Invalid(Vec<FieldError>),
}

/// A change found in a series, as the trends pages show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendChange {
    /// The build at the new level.
    pub build: String,
    /// `-9.8 %`.
    pub change: String,
    pub worse: bool,
    pub confirmed: bool,
    pub p: f64,
    /// The compare page of the points before and at the change.
    pub compare: Option<String>,
    /// Who acknowledged it, if anyone.
    pub acknowledged_by: Option<String>,
}

/// A series in the list of /trends: what it is, a sparkline's values and
/// the latest change found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesSummary {
    pub id: String,
    /// `requests per runner CPU-s`.
    pub figure: String,
    pub higher_is_better: bool,
    /// `built-in, 100 journeys, 1 min 00 s`.
    pub scenario: String,
    pub machine: String,
    /// Each point's median, in order (the sparkline).
    pub medians: Vec<f64>,
    pub latest_build: String,
    /// `11,650 req/CPU-s`.
    pub latest: String,
    pub latest_change: Option<TrendChange>,
    /// `-6.1 % from the best level since the last release`.
    pub creep: Option<String>,
}

/// A point of a series on its page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    pub build: String,
    pub median: String,
    /// `990 – 1,022`, or empty from a single repeat.
    pub interval: String,
    pub repeats: usize,
    pub runs: Vec<i64>,
    pub release: bool,
    pub outlier: bool,
    pub step: bool,
    /// Who excluded it from the fit, if anyone.
    pub excluded_by: Option<String>,
}

/// What a backfill of releases did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BackfillOutcome {
    /// The runs queued, oldest release first: (version, run).
    Queued(Vec<(String, i64)>),
    /// Why nothing was queued (the range, or no release in it).
    Invalid(String),
}

/// One series' page: its points, its changes and its chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesView {
    pub summary: SeriesSummary,
    pub points: Vec<TrendPoint>,
    pub changes: Vec<TrendChange>,
    pub chart: ChartSpec,
}

/// What the lab does for the pages. The server implements it and provides
/// it as context (`Arc<dyn LabApi>`).
#[cfg(feature = "ssr")]
pub trait LabApi: Send + Sync {
    /// Queues a run launched by `caller` (their name is recorded on it).
    fn launch<'a>(
        &'a self,
        caller: &'a Caller,
        params: RunParams,
    ) -> BoxFuture<'a, Result<LaunchOutcome, LabError>>;
    fn queue(&self) -> BoxFuture<'_, Result<Vec<QueueEntry>, LabError>>;
    /// Removes a queued run, if the caller may ([`Caller::may_cancel`]).
    fn remove_queued<'a>(
        &'a self,
        caller: &'a Caller,
        run_id: i64,
    ) -> BoxFuture<'a, Result<bool, LabError>>;
    /// Cancels a run, if the caller may ([`Caller::may_cancel`]).
    fn cancel<'a>(
        &'a self,
        caller: &'a Caller,
        run_id: i64,
    ) -> BoxFuture<'a, Result<bool, LabError>>;
    fn runs(
        &self,
        page: u32,
        label: String,
        status: Option<RunStatus>,
    ) -> BoxFuture<'_, Result<RunList, LabError>>;
    fn run_view(&self, run_id: i64) -> BoxFuture<'_, Result<Option<RunView>, LabError>>;
    fn charts(
        &self,
        scenario_id: i64,
        window: Option<(i64, i64)>,
    ) -> BoxFuture<'_, Result<ScenarioCharts, LabError>>;
    fn chart_points(
        &self,
        scenario_id: i64,
        bucket_ms: i64,
        after_ms: i64,
    ) -> BoxFuture<'_, Result<ChartPoints, LabError>>;
    /// mite's own account of a scenario, from its bus.
    fn mite_view(&self, scenario_id: i64) -> BoxFuture<'_, Result<MiteView, LabError>>;
    fn ports(&self) -> BoxFuture<'_, Result<Vec<PortView>, LabError>>;
    fn cleanup<'a>(&'a self, caller: &'a Caller) -> BoxFuture<'a, Result<String, LabError>>;
    /// The mite builds this agent has installed.
    fn builds(&self) -> BoxFuture<'_, Result<Vec<String>, LabError>>;
    /// The scenarios the live agents found in their `--scenario-dir` folders.
    fn library(&self) -> BoxFuture<'_, Result<Vec<LibraryScenario>, LabError>>;
    /// `sides` as `12,15` or `12:1,12:2`; `threshold` as `5%`; sides
    /// measured on different machines only `across` machines.
    fn compare(
        &self,
        sides: String,
        threshold: Option<String>,
        across: bool,
    ) -> BoxFuture<'_, Result<ComparisonReport, LabError>>;
    /// The sides' charts overlaid, per concurrency.
    fn compare_charts(&self, sides: String) -> BoxFuture<'_, Result<Vec<ChartSpec>, LabError>>;
    fn mark_baseline<'a>(
        &'a self,
        caller: &'a Caller,
        run_id: i64,
    ) -> BoxFuture<'a, Result<String, LabError>>;
    /// The lab agents sharing the database.
    fn agents(&self) -> BoxFuture<'_, Result<Vec<AgentView>, LabError>>;
    /// The run a scenario belongs to.
    fn scenario_run(&self, scenario_id: i64) -> BoxFuture<'_, Result<i64, LabError>>;
    /// Makes a read-only link to a run, open for `days`.
    fn share<'a>(
        &'a self,
        caller: &'a Caller,
        run_id: i64,
        days: u32,
    ) -> BoxFuture<'a, Result<ShareLinkView, LabError>>;
    fn share_links(&self, run_id: i64) -> BoxFuture<'_, Result<Vec<ShareLinkView>, LabError>>;
    /// Revokes a link, if the caller made it or is an admin.
    fn revoke_share<'a>(
        &'a self,
        caller: &'a Caller,
        link_id: i64,
    ) -> BoxFuture<'a, Result<bool, LabError>>;
    /// The activity log, newest first, before entry `before`.
    fn activity(&self, before: Option<i64>) -> BoxFuture<'_, Result<Vec<ActivityEntry>, LabError>>;
    /// The run's figures per build and concurrency, with their charts.
    fn matrix(&self, run_id: i64) -> BoxFuture<'_, Result<RunMatrix, LabError>>;
    /// The series of the lab's history whose figure key holds `figure`
    /// (all when empty).
    fn trends(&self, figure: String) -> BoxFuture<'_, Result<Vec<SeriesSummary>, LabError>>;
    fn series(&self, id: String) -> BoxFuture<'_, Result<SeriesView, LabError>>;
    /// Excludes a point of a series from its fit, or acknowledges the
    /// change at it (`kind`: `excluded`, `acknowledged`); `set` false takes
    /// the mark back.
    fn mark_trend<'a>(
        &'a self,
        caller: &'a Caller,
        series: String,
        build: String,
        kind: String,
        set: bool,
    ) -> BoxFuture<'a, Result<(), LabError>>;

    /// Queues one run per PyPI release of `range` (`2.0.0..2.11.0`).
    fn backfill<'a>(
        &'a self,
        caller: &'a Caller,
        range: String,
    ) -> BoxFuture<'a, Result<BackfillOutcome, LabError>>;
}

#[cfg(feature = "ssr")]
pub type BoxFuture<'a, T> = futures_util::future::BoxFuture<'a, T>;

#[cfg(feature = "ssr")]
fn lab() -> Result<std::sync::Arc<dyn LabApi>, LabError> {
    use_context::<std::sync::Arc<dyn LabApi>>()
        .ok_or_else(|| LabError::Unavailable("the lab is not available".into()))
}

/// The caller of this request, as the server's access layer found it.
#[cfg(feature = "ssr")]
pub(crate) fn current_caller() -> Option<Caller> {
    use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>().cloned())
}

/// The caller, if they may do `action`: 401 for nobody, 403 for a role too low.
#[cfg(feature = "ssr")]
fn allowed(action: Action) -> Result<Caller, LabError> {
    let caller =
        current_caller().ok_or_else(|| LabError::Unauthenticated("sign in first".into()))?;
    caller.require(action)?;
    Ok(caller)
}

/// The caller, if they may see scenario `scenario_id` (a share link: only
/// its run's scenarios).
#[cfg(feature = "ssr")]
async fn allowed_scenario(scenario_id: i64) -> Result<Caller, LabError> {
    let caller =
        current_caller().ok_or_else(|| LabError::Unauthenticated("sign in first".into()))?;
    match caller.run_scope {
        Some(_) => {
            let run = lab()?.scenario_run(scenario_id).await?;
            caller.require(Action::ReadRun(run))?;
        }
        None => caller.require(Action::Read)?,
    }
    Ok(caller)
}

/// Who is calling: `None` when nobody is signed in.
#[server(endpoint = "who_am_i")]
pub async fn who_am_i() -> Result<Option<Caller>, LabError> {
    Ok(current_caller())
}

/// Validates (again, on the server) and queues a run. A form posted
/// without JavaScript is sent on to the run's page.
#[server(endpoint = "launch_run")]
pub async fn launch_run(form: LaunchForm) -> Result<LaunchOutcome, LabError> {
    let caller = allowed(Action::Launch)?;
    let outcome = match form.to_params() {
        Err(errors) => LaunchOutcome::Invalid(errors),
        Ok(params) => lab()?.launch(&caller, params).await?,
    };
    if let LaunchOutcome::Queued { run_id, .. } = &outcome {
        leptos_axum::redirect(&format!("/runs/{run_id}"));
    }
    Ok(outcome)
}

#[server(endpoint = "get_queue")]
pub async fn get_queue() -> Result<Vec<QueueEntry>, LabError> {
    let caller = allowed(Action::Read)?;
    let mut queue = lab()?.queue().await?;
    for entry in &mut queue {
        entry.can_cancel = caller.may_cancel(&entry.launched_by);
    }
    Ok(queue)
}

#[server(endpoint = "remove_queued_run")]
pub async fn remove_queued_run(run_id: i64) -> Result<bool, LabError> {
    let caller = allowed(Action::Launch)?;
    lab()?.remove_queued(&caller, run_id).await
}

/// Stops a running run (two-stage stop, as Ctrl+C) or removes a queued one.
#[server(endpoint = "cancel_run")]
pub async fn cancel_run(run_id: i64) -> Result<bool, LabError> {
    let caller = allowed(Action::Launch)?;
    lab()?.cancel(&caller, run_id).await
}

#[server(endpoint = "list_runs")]
pub async fn list_runs(
    page: u32,
    label: String,
    status: Option<RunStatus>,
) -> Result<RunList, LabError> {
    allowed(Action::Read)?;
    lab()?.runs(page, label, status).await
}

/// A run's view; `None` when there is no such run.
#[server(endpoint = "get_run")]
pub async fn get_run(run_id: i64) -> Result<Option<RunView>, LabError> {
    let caller = allowed(Action::ReadRun(run_id))?;
    let mut view = lab()?.run_view(run_id).await?;
    if let Some(view) = &mut view {
        view.can_cancel = caller.may_cancel(&view.params.launched_by);
    }
    Ok(view)
}

/// A scenario's charts: downsampled (keeping peaks) for the whole scenario,
/// or at full resolution for a window of elapsed milliseconds.
#[server(endpoint = "get_charts")]
pub async fn get_charts(
    scenario_id: i64,
    window: Option<(i64, i64)>,
) -> Result<ScenarioCharts, LabError> {
    allowed_scenario(scenario_id).await?;
    lab()?.charts(scenario_id, window).await
}

/// The points of a live scenario's charts since `after_ms` (elapsed), in
/// buckets of `bucket_ms`: the same cost at minute 1 and at hour 24.
#[server(endpoint = "get_chart_points")]
pub async fn get_chart_points(
    scenario_id: i64,
    bucket_ms: i64,
    after_ms: i64,
) -> Result<ChartPoints, LabError> {
    allowed_scenario(scenario_id).await?;
    lab()?.chart_points(scenario_id, bucket_ms, after_ms).await
}

/// mite's own account of a scenario: transactions, errors, latency and
/// concurrency, read from its message bus.
#[server(endpoint = "get_mite_view")]
pub async fn get_mite_view(scenario_id: i64) -> Result<MiteView, LabError> {
    allowed_scenario(scenario_id).await?;
    lab()?.mite_view(scenario_id).await
}

#[server(endpoint = "get_ports")]
pub async fn get_ports() -> Result<Vec<PortView>, LabError> {
    allowed(Action::Read)?;
    lab()?.ports().await
}

/// Stops leftovers the lab itself started; returns a report in words.
#[server(endpoint = "cleanup_ports")]
pub async fn cleanup_ports() -> Result<String, LabError> {
    let caller = allowed(Action::Cleanup)?;
    lab()?.cleanup(&caller).await
}

/// The mite builds the agent already has (`pinned`, then versions).
#[server(endpoint = "get_builds")]
pub async fn get_builds() -> Result<Vec<String>, LabError> {
    allowed(Action::Read)?;
    lab()?.builds().await
}

/// The scenarios the agents list for the launch form (by `module:function`;
/// no path is sent either way).
#[server(endpoint = "get_library")]
pub async fn get_library() -> Result<Vec<LibraryScenario>, LabError> {
    allowed(Action::Read)?;
    lab()?.library().await
}

/// Two runs (or two builds of one run) compared: `runs` is `12,15` (base
/// first) or `12:1,12:2`; runs of different machines only with `across`
/// (`true`).
#[server(endpoint = "compare_runs")]
pub async fn compare_runs(
    runs: String,
    threshold: Option<String>,
    across: Option<bool>,
) -> Result<ComparisonReport, LabError> {
    allowed(Action::Read)?;
    lab()?
        .compare(runs, threshold, across.unwrap_or(false))
        .await
}

/// The compared runs' charts on one elapsed-time axis (requests/s, runner
/// CPU, RSS per process), per concurrency.
#[server(endpoint = "get_compare_charts")]
pub async fn get_compare_charts(runs: String) -> Result<Vec<ChartSpec>, LabError> {
    allowed(Action::Read)?;
    lab()?.compare_charts(runs).await
}

/// A run's figures per mite build and concurrency over its repeats, and
/// their charts: the version matrix.
#[server(endpoint = "get_matrix")]
pub async fn get_matrix(run_id: i64) -> Result<RunMatrix, LabError> {
    allowed(Action::ReadRun(run_id))?;
    lab()?.matrix(run_id).await
}

/// The lab's history as series (a figure of a scenario on a machine
/// class), each with its latest change: the trends page.
#[server(endpoint = "get_trends")]
pub async fn get_trends(figure: String) -> Result<Vec<SeriesSummary>, LabError> {
    allowed(Action::Read)?;
    lab()?.trends(figure).await
}

/// One series: its points, changes and chart.
#[server(endpoint = "get_series")]
pub async fn get_series(id: String) -> Result<SeriesView, LabError> {
    allowed(Action::Read)?;
    lab()?.series(id).await
}

/// Excludes a series' point from its fit, or acknowledges the change at
/// it (runners and admins; recorded in the activity log).
#[server(endpoint = "mark_trend")]
pub async fn mark_trend(
    series: String,
    build: String,
    kind: String,
    set: bool,
) -> Result<(), LabError> {
    let caller = allowed(Action::MarkTrend)?;
    lab()?.mark_trend(&caller, series, build, kind, set).await
}

/// Queues one run per PyPI release of `range` (runners and admins): a
/// fresh lab's release history.
#[server(endpoint = "backfill_releases")]
pub async fn backfill_releases(range: String) -> Result<BackfillOutcome, LabError> {
    let caller = allowed(Action::Launch)?;
    lab()?.backfill(&caller, range).await
}

/// Makes a run the baseline of its label; returns the label.
#[server(endpoint = "mark_baseline")]
pub async fn mark_baseline(run_id: i64) -> Result<String, LabError> {
    let caller = allowed(Action::MarkBaseline)?;
    lab()?.mark_baseline(&caller, run_id).await
}

/// The lab agents: their machines, ports, builds, heartbeat and run.
#[server(endpoint = "get_agents")]
pub async fn get_agents() -> Result<Vec<AgentView>, LabError> {
    allowed(Action::Read)?;
    lab()?.agents().await
}

/// Makes a read-only link to a run (runners and admins), open for `days`
/// (1 to 90); its path is in the answer, this once.
#[server(endpoint = "share_run")]
pub async fn share_run(run_id: i64, days: u32) -> Result<ShareLinkView, LabError> {
    let caller = allowed(Action::Share)?;
    lab()?.share(&caller, run_id, days).await
}

/// A run's share links, newest first.
#[server(endpoint = "get_share_links")]
pub async fn get_share_links(run_id: i64) -> Result<Vec<ShareLinkView>, LabError> {
    allowed(Action::Share)?;
    lab()?.share_links(run_id).await
}

/// Revokes a share link (its maker, or an admin).
#[server(endpoint = "revoke_share_link")]
pub async fn revoke_share_link(link_id: i64) -> Result<bool, LabError> {
    let caller = allowed(Action::Share)?;
    lab()?.revoke_share(&caller, link_id).await
}

/// The activity log (admins only), newest first: 100 entries before `before`.
#[server(endpoint = "get_activity")]
pub async fn get_activity(before: Option<i64>) -> Result<Vec<ActivityEntry>, LabError> {
    allowed(Action::Administer)?;
    lab()?.activity(before).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_errors_name_their_fields() {
        let form = LaunchForm {
            concurrencies: "1,x".into(),
            chosen: vec![],
            duration: "soon".into(),
            spawn_rate: "fast".into(),
            interval: "1s".into(),
            label: String::new(),
            mite: "2.10.0,latest".into(),
            repeat: "three".into(),
            agent: String::new(),
            runners: "two".into(),
            collector: "last".into(),
            collector_mib: "lots".into(),
            scenario: "../x.py:f".into(),
            profile: "on".into(),
            profile_all: String::new(),
            bus_off: String::new(),
        };
        let errors = form.to_params().expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "concurrencies",
                "duration",
                "spawn_rate",
                "mite",
                "runners",
                "collector",
                "repeat",
                "scenario"
            ]
        );
        let kept = |collector: &str, mib: &str| {
            LaunchForm {
                collector: collector.into(),
                collector_mib: mib.into(),
                ..LaunchForm::default()
            }
            .to_params()
            .map(|p| p.collector)
        };
        assert_eq!(kept("all", "ignored"), Ok(CollectorKeep::All));
        assert_eq!(kept("none", ""), Ok(CollectorKeep::Nothing));
        assert_eq!(kept("last", "20"), Ok(CollectorKeep::LastMib(20)));
        let profiled = |profile: &str, all: &str| {
            LaunchForm {
                profile: profile.into(),
                profile_all: all.into(),
                ..LaunchForm::default()
            }
            .to_params()
            .map(|p| p.profile.map(|s| s.processes.len()))
        };
        assert_eq!(profiled("", "on"), Ok(None));
        assert_eq!(profiled("on", ""), Ok(Some(1)));
        assert_eq!(profiled("on", "on"), Ok(Some(4)));
        let reads_bus = |bus_off: &str| {
            LaunchForm {
                bus_off: bus_off.into(),
                ..LaunchForm::default()
            }
            .to_params()
            .map(|p| p.read_bus)
        };
        assert_eq!(reads_bus(""), Ok(true));
        assert_eq!(reads_bus("on"), Ok(false));
        let empty = kept("last", " ").expect_err("no size");
        assert_eq!(empty[0].field, "collector");
        assert!(empty[0].message.contains("how many MiB"), "{empty:?}");
        let too_many = LaunchForm {
            runners: "33".into(),
            ..LaunchForm::default()
        };
        let errors = too_many.to_params().expect("read").validate();
        assert_eq!(errors[0].field, "runners");
        assert!(errors[0].message.contains("use 1 to 32"), "{errors:?}");
        let two = LaunchForm {
            runners: " 2 ".into(),
            ..LaunchForm::default()
        };
        assert_eq!(two.to_params().map(|p| p.runners), Ok(2));
        let builds = LaunchForm {
            mite: "pinned, 2.10.0".into(),
            repeat: "3".into(),
            ..LaunchForm::default()
        }
        .to_params()
        .expect("valid");
        assert_eq!(builds.builds().len(), 2);
        assert_eq!(builds.repeats, 3);
        assert_eq!(
            LaunchForm::default().to_params().map(|p| p.mite),
            Ok(vec![])
        );
        let form = LaunchForm {
            interval: "10ms".into(),
            ..LaunchForm::default()
        };
        let errors = form.to_params().expect("read").validate();
        assert_eq!(errors[0].field, "interval");
        // The form starts from the run's defaults (domain::defaults).
        assert_eq!(LaunchForm::default().to_params(), Ok(RunParams::default()));
        // Checkboxes (a form posted without JavaScript) and custom values add up.
        let form = LaunchForm {
            chosen: vec!["1".into(), "100".into()],
            concurrencies: " 50 ".into(),
            ..LaunchForm::default()
        };
        assert_eq!(
            form.to_params().map(|p| p.concurrencies),
            Ok(vec![1, 100, 50])
        );
        let none = LaunchForm {
            concurrencies: String::new(),
            ..LaunchForm::default()
        };
        assert_eq!(
            none.to_params().expect_err("nothing chosen")[0].field,
            "concurrencies"
        );
    }
}
