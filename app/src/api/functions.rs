//! The server functions: each checks who may call it, then asks the
//! [`LabApi`](super::LabApi) the server provides as context.

use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::contract::{allowed, allowed_scenario, current_caller, lab};
use super::*;
#[cfg(feature = "ssr")]
use domain::access::Action;
use domain::access::Caller;
use domain::compare::ComparisonReport;
use domain::library::LibraryScenario;
use domain::matrix::RunMatrix;
use domain::model::RunStatus;

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
