//! The lab as the server functions see it ([`LabApi`]).

use app::api::{
    BoxFuture, ChartPoints, LabApi, LabError, LaunchOutcome, PortView, QueueEntry, RunList,
    RunView, ScenarioCharts,
};
use futures_util::FutureExt;

use super::{lab_error, Lab};
use crate::cleanup;
use crate::model::{RunParams, RunStatus};

impl LabApi for Lab {
    fn launch(&self, params: RunParams) -> BoxFuture<'_, Result<LaunchOutcome, LabError>> {
        Lab::launch(self, params).boxed()
    }

    fn queue(&self) -> BoxFuture<'_, Result<Vec<QueueEntry>, LabError>> {
        self.queue_entries().boxed()
    }

    fn remove_queued(&self, run_id: i64) -> BoxFuture<'_, Result<bool, LabError>> {
        async move { self.store.delete_queued(run_id).await.map_err(lab_error) }.boxed()
    }

    fn cancel(&self, run_id: i64) -> BoxFuture<'_, Result<bool, LabError>> {
        async move { Lab::cancel(self, run_id).await.map_err(lab_error) }.boxed()
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

    fn cleanup(&self) -> BoxFuture<'_, Result<String, LabError>> {
        async move {
            if self.current_run().is_some() {
                return Err(LabError::Busy(
                    "a run is in progress: cancel it first".to_string(),
                ));
            }
            let report = cleanup::cleanup(&self.store, &self.setup.output_root)
                .await
                .map_err(lab_error)?;
            Ok(report.lines().join("\n"))
        }
        .boxed()
    }
}
