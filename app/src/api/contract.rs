//! What the server provides the pages (`LabApi`), and who is calling.

use leptos::prelude::*;

use super::*;
use domain::access::{Action, Caller};
use domain::compare::ComparisonReport;
use domain::library::LibraryScenario;
use domain::matrix::RunMatrix;
use domain::model::{RunParams, RunStatus};

/// What the lab does for the pages. The server implements it and provides
/// it as context (`Arc<dyn LabApi>`).
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

pub type BoxFuture<'a, T> = futures_util::future::BoxFuture<'a, T>;

pub(super) fn lab() -> Result<std::sync::Arc<dyn LabApi>, LabError> {
    use_context::<std::sync::Arc<dyn LabApi>>()
        .ok_or_else(|| LabError::Unavailable("the lab is not available".into()))
}

/// The caller of this request, as the server's access layer found it.
pub(crate) fn current_caller() -> Option<Caller> {
    use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>().cloned())
}

/// The caller, if they may do `action`: 401 for nobody, 403 for a role too low.
pub(super) fn allowed(action: Action) -> Result<Caller, LabError> {
    let caller =
        current_caller().ok_or_else(|| LabError::Unauthenticated("sign in first".into()))?;
    caller.require(action)?;
    Ok(caller)
}

/// The caller, if they may see scenario `scenario_id` (a share link: only
/// its run's scenarios).
pub(super) async fn allowed_scenario(scenario_id: i64) -> Result<Caller, LabError> {
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
