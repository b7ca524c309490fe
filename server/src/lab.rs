//! The lab service behind the browser: a queue of runs in the database,
//! executed one at a time (the ports are fixed), and what the pages ask of
//! it ([`app::api::LabApi`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::api::{
    BoxFuture, ChartSpec, LabApi, LaunchOutcome, PortHolder, PortView, ProcessNow, QueueEntry,
    RunListItem, RunPage, RunView, ScenarioView,
};
use app::pages::run::{chart_dom_id, CHARTS_PER_SCENARIO};
use futures_util::FutureExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::cleanup;
use crate::figures::scenario_figures;
use crate::model::{RunParams, RunStatus, ScenarioStatus};
use crate::ports;
use crate::reports::chart::{metric_chart, Metric};
use crate::run::{execute_run, LabSetup, NoObserver};
use crate::store::{RunRecord, Store, StoreError};

/// Runs per page of the history.
pub const PAGE_SIZE: i64 = 20;
/// Points per series in a chart overview (peaks are kept).
pub const CHART_POINTS: i64 = 600;

pub struct Lab {
    store: Store,
    setup: LabSetup,
    current: Mutex<Option<(i64, CancellationToken)>>,
    wake: Notify,
    shutdown: CancellationToken,
}

impl Lab {
    pub fn new(store: Store, setup: LabSetup) -> Arc<Self> {
        Arc::new(Lab {
            store,
            setup,
            current: Mutex::new(None),
            wake: Notify::new(),
            shutdown: CancellationToken::new(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The run in progress, if any.
    pub fn current_run(&self) -> Option<i64> {
        self.current
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|(id, _)| *id))
    }

    /// Executes queued runs, oldest first, until [`Lab::shut_down`].
    pub fn start_worker(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let lab = self.clone();
        tokio::spawn(async move {
            while !lab.shutdown.is_cancelled() {
                let next = match lab.store.claim_next_queued().await {
                    Ok(next) => next,
                    Err(e) => {
                        eprintln!("queue: {e}");
                        None
                    }
                };
                let Some(run) = next else {
                    tokio::select! {
                        _ = lab.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                        _ = lab.shutdown.cancelled() => {}
                    }
                    continue;
                };
                lab.execute(run).await;
            }
        })
    }

    async fn execute(&self, run: RunRecord) {
        let cancel = self.shutdown.child_token();
        if let Ok(mut current) = self.current.lock() {
            *current = Some((run.id, cancel.clone()));
        }
        if let Err(e) = execute_run(
            &self.store,
            run.id,
            &run.params,
            &self.setup,
            &cancel,
            &NoObserver,
        )
        .await
        {
            eprintln!("run {}: {e}", run.id);
            let _ = self
                .store
                .close_open_scenarios(run.id, ScenarioStatus::Failed)
                .await;
            let _ = self
                .store
                .finish_run(run.id, RunStatus::Failed, Some(&e.to_string()))
                .await;
        }
        if let Ok(mut current) = self.current.lock() {
            *current = None;
        }
    }

    /// Stops the current run (two-stage stop) and the worker.
    pub fn shut_down(&self) {
        self.shutdown.cancel();
    }

    pub async fn launch(&self, params: RunParams) -> Result<LaunchOutcome, StoreError> {
        let errors = params.validate();
        if !errors.is_empty() {
            return Ok(LaunchOutcome::Invalid(errors));
        }
        let run_id = self.store.create_run(&params, RunStatus::Queued).await?;
        let position = self.queue_position(run_id).await?.unwrap_or(0);
        self.wake.notify_one();
        Ok(LaunchOutcome::Queued { run_id, position })
    }

    /// Where a queued run stands in line (1 is next), if it is queued.
    async fn queue_position(&self, run_id: i64) -> Result<Option<usize>, StoreError> {
        Ok(self
            .store
            .queued_runs()
            .await?
            .iter()
            .position(|r| r.id == run_id)
            .map(|p| p + 1))
    }

    /// Cancels the run in progress (if it is `run_id`) or removes it from the queue.
    pub async fn cancel(&self, run_id: i64) -> Result<bool, StoreError> {
        let token = self.current.lock().ok().and_then(|c| {
            c.as_ref()
                .filter(|(id, _)| *id == run_id)
                .map(|(_, t)| t.clone())
        });
        match token {
            Some(token) => {
                token.cancel();
                Ok(true)
            }
            None => self.store.delete_queued(run_id).await,
        }
    }

    async fn queue_entries(&self) -> Result<Vec<QueueEntry>, StoreError> {
        let mut entries = Vec::new();
        if let Some(id) = self.current_run() {
            if let Some(run) = self.store.run(id).await? {
                entries.push(queue_entry(&run, 0, true));
            }
        }
        for (i, run) in self.store.queued_runs().await?.iter().enumerate() {
            entries.push(queue_entry(run, i + 1, false));
        }
        Ok(entries)
    }

    async fn run_page(
        &self,
        page: u32,
        label: &str,
        status: Option<RunStatus>,
    ) -> Result<RunPage, StoreError> {
        let page = page.max(1);
        let (runs, total) = self
            .store
            .list_runs(label, status, PAGE_SIZE, i64::from(page - 1) * PAGE_SIZE)
            .await?;
        Ok(RunPage {
            items: runs
                .into_iter()
                .map(|(run, total_requests)| RunListItem {
                    id: run.id,
                    label: run.label,
                    status: run.status,
                    created_at: run.created_at,
                    started_at: run.started_at,
                    ended_at: run.ended_at,
                    concurrencies: run.params.concurrencies,
                    mite_version: run.environment.mite_version,
                    total_requests,
                })
                .collect(),
            page,
            pages: ((total + PAGE_SIZE - 1) / PAGE_SIZE) as u32,
            total,
        })
    }

    async fn view(&self, run_id: i64) -> Result<Option<RunView>, StoreError> {
        let Some(run) = self.store.run(run_id).await? else {
            return Ok(None);
        };
        let mut scenarios = Vec::new();
        for s in self.store.scenarios(run_id).await? {
            let figures = match self.store.stored_figures(s.id).await? {
                Some(f) => f,
                None => scenario_figures(&self.store.scenario_samples(s.id).await?, s.interval_ms),
            };
            let latest = if s.status == ScenarioStatus::Running {
                self.store.latest_samples(s.id).await?
            } else {
                vec![]
            };
            let elapsed_ms = if s.status == ScenarioStatus::Running {
                latest.first().map(|l| l.elapsed_ms).unwrap_or(0)
            } else {
                (figures.measured_seconds * 1000.0) as i64
            };
            let logs = self
                .store
                .processes(s.id)
                .await?
                .into_iter()
                .map(|p| p.name)
                .collect();
            scenarios.push(ScenarioView {
                id: s.id,
                name: s.name,
                concurrency: s.concurrency,
                status: s.status,
                duration_ms: s.duration_ms,
                interval_ms: s.interval_ms,
                started_at: s.started_at,
                ended_at: s.ended_at,
                elapsed_ms,
                error: s.error,
                error_log: s.error_log,
                figures,
                latest: latest
                    .into_iter()
                    .map(|l| ProcessNow {
                        process: l.process,
                        cpu: l.cpu,
                        mem: l.mem,
                    })
                    .collect(),
                logs,
            });
        }
        let queue_position = if run.status == RunStatus::Queued {
            self.queue_position(run.id).await?
        } else {
            None
        };
        Ok(Some(RunView {
            id: run.id,
            label: run.label,
            status: run.status,
            created_at: run.created_at,
            started_at: run.started_at,
            ended_at: run.ended_at,
            params: run.params,
            mite_version: run.environment.mite_version,
            python_version: run.environment.python_version,
            host: run.environment.host,
            cores: run.environment.cores,
            output_dir: run.output_dir,
            error: run.error,
            queue_position,
            scenarios,
        }))
    }

    /// A scenario's charts, downsampled to about [`CHART_POINTS`] points per
    /// series (keeping peaks), over `window` (elapsed ms) or the whole scenario.
    pub async fn chart_specs(
        &self,
        scenario_id: i64,
        window: Option<(i64, i64)>,
    ) -> Result<Vec<ChartSpec>, StoreError> {
        let Some(scenario) = self.store.scenario(scenario_id).await? else {
            return Ok(vec![]);
        };
        let (from, to) = window.unwrap_or((0, scenario.duration_ms * 2 + 120_000));
        let span = (to - from).max(1);
        let bucket = (span / CHART_POINTS).max(scenario.interval_ms);
        let samples = if bucket <= scenario.interval_ms {
            self.store
                .scenario_samples_between(scenario_id, from, to)
                .await?
        } else {
            self.store
                .scenario_samples_bucketed(scenario_id, from, to, bucket)
                .await?
        };
        let interval = scenario.interval_ms;
        Metric::ALL
            .iter()
            .take(CHARTS_PER_SCENARIO)
            .enumerate()
            .map(|(i, metric)| {
                Ok(ChartSpec {
                    dom_id: chart_dom_id(scenario_id, i),
                    group: format!("scenario-{scenario_id}"),
                    option_json: serde_json::to_string(&metric_chart(*metric, &samples, interval))?,
                })
            })
            .collect()
    }

    async fn cleanup_report(&self) -> Result<String, StoreError> {
        let report = cleanup::cleanup(&self.store).await?;
        let mut lines = Vec::new();
        if report.processes.is_empty() {
            lines.push("No processes of the lab were left open.".to_string());
        }
        for (p, outcome) in &report.processes {
            lines.push(format!(
                "{} (pid {}, run {}): {outcome:?}",
                p.name, p.pid, p.run_id
            ));
        }
        for run in &report.abandoned_runs {
            lines.push(format!("Run {run} marked interrupted."));
        }
        for port in &report.ports {
            if port.holders.is_empty() {
                lines.push(format!("Port {}: free", port.port));
            }
            for h in &port.holders {
                lines.push(format!(
                    "Port {}: held by {h} (not started by the lab: left alone)",
                    port.port
                ));
            }
        }
        Ok(lines.join("\n"))
    }

    async fn port_views(&self) -> Vec<PortView> {
        // The lab's processes: those of the run in progress.
        let mut lab_pids = Vec::new();
        if let Ok(open) = self.store.open_processes().await {
            lab_pids.extend(open.iter().map(|p| p.pid as u32));
        }
        ports::lab_port_reports()
            .into_iter()
            .map(|r| PortView {
                port: r.port,
                purpose: r.purpose,
                holders: r
                    .holders
                    .into_iter()
                    .map(|h| match h.pid {
                        Some(pid) if lab_pids.contains(&pid) => PortHolder::Lab {
                            pid,
                            command: h.command,
                        },
                        pid => PortHolder::Foreign {
                            pid,
                            command: h.command,
                        },
                    })
                    .collect(),
            })
            .collect()
    }
}

fn queue_entry(run: &RunRecord, position: usize, running: bool) -> QueueEntry {
    QueueEntry {
        id: run.id,
        position,
        running,
        label: run.label.clone(),
        launched_by: run.params.launched_by.clone(),
        created_at: run.created_at,
        concurrencies: run.params.concurrencies.clone(),
    }
}

fn text<T>(r: Result<T, StoreError>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

impl LabApi for Lab {
    fn launch(&self, params: RunParams) -> BoxFuture<'_, Result<LaunchOutcome, String>> {
        async move { text(Lab::launch(self, params).await) }.boxed()
    }
    fn queue(&self) -> BoxFuture<'_, Result<Vec<QueueEntry>, String>> {
        async move { text(self.queue_entries().await) }.boxed()
    }
    fn remove_queued(&self, run_id: i64) -> BoxFuture<'_, Result<bool, String>> {
        async move { text(self.store.delete_queued(run_id).await) }.boxed()
    }
    fn cancel(&self, run_id: i64) -> BoxFuture<'_, Result<bool, String>> {
        async move { text(Lab::cancel(self, run_id).await) }.boxed()
    }
    fn runs(
        &self,
        page: u32,
        label: String,
        status: Option<RunStatus>,
    ) -> BoxFuture<'_, Result<RunPage, String>> {
        async move { text(self.run_page(page, &label, status).await) }.boxed()
    }
    fn run_view(&self, run_id: i64) -> BoxFuture<'_, Result<Option<RunView>, String>> {
        async move { text(self.view(run_id).await) }.boxed()
    }
    fn charts(
        &self,
        scenario_id: i64,
        window: Option<(i64, i64)>,
    ) -> BoxFuture<'_, Result<Vec<ChartSpec>, String>> {
        async move { text(self.chart_specs(scenario_id, window).await) }.boxed()
    }
    fn ports(&self) -> BoxFuture<'_, Result<Vec<PortView>, String>> {
        async move { Ok(self.port_views().await) }.boxed()
    }
    fn cleanup(&self) -> BoxFuture<'_, Result<String, String>> {
        async move {
            if self.current_run().is_some() {
                return Err("a run is in progress: cancel it first".to_string());
            }
            text(self.cleanup_report().await)
        }
        .boxed()
    }
}
