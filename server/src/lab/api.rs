//! The lab as the server functions see it ([`LabApi`]).

use app::api::{
    ActivityEntry, AgentView, BackfillOutcome, BoxFuture, ChartPoints, ChartSpec, LabApi, LabError,
    LaunchOutcome, MiteView, PortView, QueueEntry, RunList, RunView, ScenarioCharts, SeriesSummary,
    SeriesView, ShareLinkView,
};
use domain::access::{Caller, Role};
use futures_util::FutureExt;

use super::Lab;
use crate::cleanup;
use crate::compare::charts::overlay_charts;
use crate::compare::matrix::run_matrix;
use crate::compare::sides::{SideError, SideSpec};
use crate::compare::{compare_runs, load_sides, parse_threshold};
use crate::model::{RunParams, RunStatus};
use crate::profile::diff::differential_svg;
use crate::store::StoreError;
use domain::compare::{ComparisonReport, DEFAULT_THRESHOLD};
use domain::library::LibraryScenario;
use domain::matrix::RunMatrix;

/// Entries of the activity log per page.
const ACTIVITY_PAGE: i64 = 100;

impl LabApi for Lab {
    fn launch<'a>(
        &'a self,
        caller: &'a Caller,
        params: RunParams,
    ) -> BoxFuture<'a, Result<LaunchOutcome, LabError>> {
        Lab::launch(self, caller, params).boxed()
    }

    fn queue(&self) -> BoxFuture<'_, Result<Vec<QueueEntry>, LabError>> {
        self.queue_entries().boxed()
    }

    fn remove_queued<'a>(
        &'a self,
        caller: &'a Caller,
        run_id: i64,
    ) -> BoxFuture<'a, Result<bool, LabError>> {
        Lab::remove_queued(self, caller, run_id).boxed()
    }

    fn cancel<'a>(
        &'a self,
        caller: &'a Caller,
        run_id: i64,
    ) -> BoxFuture<'a, Result<bool, LabError>> {
        self.cancel_as(caller, run_id).boxed()
    }

    fn runs(
        &self,
        page: u32,
        label: String,
        status: Option<RunStatus>,
    ) -> BoxFuture<'_, Result<RunList, LabError>> {
        async move { self.run_list(page, &label, status).await }.boxed()
    }

    fn run_view(&self, run_id: i64) -> BoxFuture<'_, Result<Option<RunView>, LabError>> {
        Lab::run_view(self, run_id).boxed()
    }

    fn charts(
        &self,
        scenario_id: i64,
        window: Option<(i64, i64)>,
    ) -> BoxFuture<'_, Result<ScenarioCharts, LabError>> {
        self.scenario_charts(scenario_id, window).boxed()
    }

    fn mite_view(&self, scenario_id: i64) -> BoxFuture<'_, Result<MiteView, LabError>> {
        Lab::mite_view(self, scenario_id).boxed()
    }

    fn chart_points(
        &self,
        scenario_id: i64,
        bucket_ms: i64,
        after_ms: i64,
    ) -> BoxFuture<'_, Result<ChartPoints, LabError>> {
        Lab::chart_points(self, scenario_id, bucket_ms, after_ms).boxed()
    }

    fn ports(&self) -> BoxFuture<'_, Result<Vec<PortView>, LabError>> {
        self.port_views().boxed()
    }

    fn library(&self) -> BoxFuture<'_, Result<Vec<LibraryScenario>, LabError>> {
        async move { Lab::library(self).await }.boxed()
    }

    /// The builds the launch form offers: this agent's, and those of every
    /// live agent (a web front alone offers the agents'), pinned first.
    fn builds(&self) -> BoxFuture<'_, Result<Vec<String>, LabError>> {
        async move {
            let mut builds: Vec<String> = vec!["pinned".into()];
            if self.is_agent() {
                builds.extend(
                    self.setup
                        .builds
                        .available()
                        .iter()
                        .map(ToString::to_string),
                );
            }
            let now = self.store.database_now_ms().await?;
            let lease_ms = self.setup.host.lease_ms();
            for agent in self.store.agents().await? {
                if agent.alive_at(now, lease_ms) {
                    builds.extend(
                        agent
                            .builds
                            .split(',')
                            .map(str::trim)
                            .filter(|b| !b.is_empty())
                            .map(String::from),
                    );
                }
            }
            let mut seen = std::collections::HashSet::new();
            builds.retain(|b| seen.insert(b.clone()));
            Ok(builds)
        }
        .boxed()
    }

    fn compare(
        &self,
        sides: String,
        threshold: Option<String>,
        across: bool,
    ) -> BoxFuture<'_, Result<ComparisonReport, LabError>> {
        async move {
            let (base, new) = parse_sides(&sides)?;
            let _permit = self.heavy_read_permit()?;
            let threshold = match threshold.as_deref().map(str::trim) {
                None | Some("") => DEFAULT_THRESHOLD,
                Some(text) => parse_threshold(text)
                    .map_err(|e| LabError::invalid("threshold", e.to_string()))?,
            };
            compare_runs(&self.store, base, new, threshold, across)
                .await
                .map_err(side_error)
        }
        .boxed()
    }

    fn compare_charts(&self, sides: String) -> BoxFuture<'_, Result<Vec<ChartSpec>, LabError>> {
        async move {
            let (base, new) = parse_sides(&sides)?;
            let _permit = self.heavy_read_permit()?;
            let (base, new) = load_sides(&self.store, base, new)
                .await
                .map_err(side_error)?;
            overlay_charts(&self.store, &base, &new)
                .await
                .map_err(LabError::from)
        }
        .boxed()
    }

    fn mark_baseline<'a>(
        &'a self,
        caller: &'a Caller,
        run_id: i64,
    ) -> BoxFuture<'a, Result<String, LabError>> {
        async move {
            // Only the label's owners (and admins) move its baseline: the
            // verdicts of every later run of the label, and of CI gates,
            // are judged against it.
            if caller.role < Role::Admin {
                let run = self.existing_run(run_id).await?;
                let owners = self.store.label_owners(&run.label).await?;
                if !owners.contains(&caller.name) {
                    return Err(LabError::Forbidden(format!(
                        "the label `{}` belongs to {}: only its owners or an admin may move \
                         its baseline",
                        run.label,
                        if owners.is_empty() {
                            "nobody yet".to_string()
                        } else {
                            owners.join(", ")
                        }
                    )));
                }
            }
            let label = match self.store.mark_baseline(run_id).await {
                Err(StoreError::Invalid(message)) => Err(LabError::invalid("run", message)),
                other => other.map_err(LabError::from),
            }?;
            self.note(caller, "mark baseline", &format!("run {run_id} of {label}"))
                .await;
            Ok(label)
        }
        .boxed()
    }

    fn agents(&self) -> BoxFuture<'_, Result<Vec<AgentView>, LabError>> {
        self.agent_views().boxed()
    }

    fn scenario_run(&self, scenario_id: i64) -> BoxFuture<'_, Result<i64, LabError>> {
        async move {
            self.store
                .scenario(scenario_id)
                .await?
                .map(|s| s.run_id)
                .ok_or_else(|| LabError::NotFound(format!("no scenario {scenario_id}")))
        }
        .boxed()
    }

    fn share<'a>(
        &'a self,
        caller: &'a Caller,
        run_id: i64,
        days: u32,
    ) -> BoxFuture<'a, Result<ShareLinkView, LabError>> {
        Lab::share(self, caller, run_id, days).boxed()
    }

    fn share_links(&self, run_id: i64) -> BoxFuture<'_, Result<Vec<ShareLinkView>, LabError>> {
        self.share_link_views(run_id).boxed()
    }

    fn revoke_share<'a>(
        &'a self,
        caller: &'a Caller,
        link_id: i64,
    ) -> BoxFuture<'a, Result<bool, LabError>> {
        Lab::revoke_share(self, caller, link_id).boxed()
    }

    fn activity(&self, before: Option<i64>) -> BoxFuture<'_, Result<Vec<ActivityEntry>, LabError>> {
        async move {
            let entries = self.store.activity(before, ACTIVITY_PAGE).await?;
            Ok(entries
                .into_iter()
                .map(|a| ActivityEntry {
                    id: a.id,
                    at: a.at,
                    actor: a.actor,
                    action: a.action,
                    subject: a.subject,
                    source: a.source,
                })
                .collect())
        }
        .boxed()
    }

    fn trends(&self, figure: String) -> BoxFuture<'_, Result<Vec<SeriesSummary>, LabError>> {
        async move { self.trend_summaries(&figure).await }.boxed()
    }

    fn series(&self, id: String) -> BoxFuture<'_, Result<SeriesView, LabError>> {
        async move { self.series_view(&id).await }.boxed()
    }

    fn mark_trend<'a>(
        &'a self,
        caller: &'a Caller,
        series: String,
        build: String,
        kind: String,
        set: bool,
    ) -> BoxFuture<'a, Result<(), LabError>> {
        async move {
            self.mark_trend_point(caller, &series, &build, &kind, set)
                .await
        }
        .boxed()
    }

    fn backfill<'a>(
        &'a self,
        caller: &'a Caller,
        range: String,
    ) -> BoxFuture<'a, Result<BackfillOutcome, LabError>> {
        self.backfill_releases(caller, range).boxed()
    }

    fn matrix(&self, run_id: i64) -> BoxFuture<'_, Result<RunMatrix, LabError>> {
        async move {
            run_matrix(&self.store, run_id)
                .await?
                .ok_or_else(|| LabError::NotFound(format!("no run {run_id}")))
        }
        .boxed()
    }

    fn cleanup<'a>(&'a self, caller: &'a Caller) -> BoxFuture<'a, Result<String, LabError>> {
        async move {
            if self.current_run().is_some() {
                return Err(LabError::Busy(
                    "a run is in progress: cancel it first".to_string(),
                ));
            }
            let report =
                cleanup::cleanup(&self.store, &self.setup.output_root, &self.setup.host).await?;
            self.note(caller, "cleanup", &self.setup.host.id).await;
            Ok(report.lines().join("\n"))
        }
        .boxed()
    }
}

impl Lab {
    /// The differential flame graph of the runners at `concurrency` between
    /// two sides (`12,15`), per request.
    pub async fn differential_flamegraph(
        &self,
        sides: &str,
        concurrency: u32,
    ) -> Result<Vec<u8>, LabError> {
        let (base, new) = parse_sides(sides)?;
        let _permit = self.heavy_read_permit()?;
        let (base, new) = load_sides(&self.store, base, new)
            .await
            .map_err(side_error)?;
        let (Some(before), Some(after)) = (
            base.profiles.get(&concurrency),
            new.profiles.get(&concurrency),
        ) else {
            return Err(LabError::NotFound(format!(
                "both sides need a profile of their runners at {concurrency} journeys \
                 (runs launched with --profile)"
            )));
        };
        let title = format!(
            "runners at {concurrency} journeys: {} against {}",
            new.side.title(new.builds_in_run),
            base.side.title(base.builds_in_run)
        );
        differential_svg(&title, before, after)?.ok_or_else(|| {
            LabError::NotFound(format!(
                "a side has no sample or no request at {concurrency} journeys"
            ))
        })
    }
}

/// A side that cannot be compared, as the pages should answer it.
fn side_error(e: SideError) -> LabError {
    match e {
        SideError::Store(e) => LabError::from(e),
        SideError::NoRun(_) => LabError::NotFound(e.to_string()),
        other => LabError::invalid("runs", other.to_string()),
    }
}

/// `12,15` or `12:1,12:2`: base, then new.
fn parse_sides(sides: &str) -> Result<(SideSpec, SideSpec), LabError> {
    let specs = sides
        .split(',')
        .map(|s| s.parse::<SideSpec>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LabError::invalid("runs", e.to_string()))?;
    match specs[..] {
        [base, new] => Ok((base, new)),
        _ => Err(LabError::invalid(
            "runs",
            format!(
                "choose two runs to compare (`12,15`, or two builds of one run: `12:1,12:2`), \
                 not {}",
                specs.len()
            ),
        )),
    }
}
