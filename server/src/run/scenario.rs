//! One scenario: preflight → launch → sample → teardown → verdict.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::launch::{self, Children};
use super::plan::{scenario_plan, PlanInputs};
use super::sample::{self, SamplingContext};
use super::sink::SampleSink;
use super::teardown;
use super::verdict::{scenario_verdict, Ending, Failure};
use super::{LabSetup, RunObserver};
use crate::figures::{RunningFigures, ScenarioFigures};
use crate::mite_env::MiteEnv;
use crate::model::{ProcessKind, RunParams, ScenarioStatus};
use crate::store::{now_ms, Store};
use crate::target::RequestCounter;

/// How long a scenario's queued samples may take to reach the database
/// once it ended.
const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub struct ScenarioRun<'a> {
    pub store: &'a Store,
    pub setup: &'a LabSetup,
    pub params: &'a RunParams,
    pub scenario_id: i64,
    pub position: usize,
    pub concurrency: u32,
    /// The mite build this scenario measures.
    pub mite: &'a MiteEnv,
    /// The scenario's folder: logs and collector data.
    pub dir: PathBuf,
    pub module_dir: &'a Path,
    pub observer: &'a dyn RunObserver,
    pub sink: &'a SampleSink,
}

/// How a scenario ended.
pub struct ScenarioResult {
    pub status: ScenarioStatus,
    pub failure: Option<Failure>,
    pub figures: ScenarioFigures,
}

impl ScenarioRun<'_> {
    pub async fn execute(&self, cancel: &CancellationToken) -> ScenarioResult {
        let mut figures = RunningFigures::default();
        if let Err(failure) = self.preflight() {
            return self.result(ScenarioStatus::Failed, Some(failure), &figures);
        }
        let mut children = Children::default();
        let sampling = self
            .launch_and_sample(&mut children, cancel, &mut figures)
            .await;
        teardown::stop_children(self.store, &mut children).await;
        teardown::bound_collector_data(&self.collector_dir(), self.params.collector_keep_mib);
        let ports_free = teardown::wait_ports_free(&self.setup.host.ports).await;
        // Whatever was measured reaches the database before the verdict.
        let stored = self.sink.flush(FLUSH_TIMEOUT).await;
        let (status, failure) = match (scenario_verdict(sampling, ports_free), stored) {
            (verdict, Ok(())) => verdict,
            ((ScenarioStatus::Interrupted, _), Err(_)) => (ScenarioStatus::Interrupted, None),
            ((_, failure), Err(lost)) => (
                ScenarioStatus::Failed,
                Some(failure.unwrap_or_else(|| Failure::new(lost))),
            ),
        };
        self.result(status, failure, &figures)
    }

    fn result(
        &self,
        status: ScenarioStatus,
        failure: Option<Failure>,
        figures: &RunningFigures,
    ) -> ScenarioResult {
        ScenarioResult {
            status,
            failure,
            figures: figures.figures(self.params.interval_ms as i64),
        }
    }

    fn collector_dir(&self) -> PathBuf {
        self.dir.join("collector")
    }

    /// The ports must be free: a busy one fails the run with its holder
    /// named, and nothing is killed.
    fn preflight(&self) -> Result<(), Failure> {
        let busy = teardown::held_ports(&self.setup.host.ports, "is in use by");
        if !busy.is_empty() {
            return Err(Failure::ending_run(format!(
                "{}; stop it, or run `mite-perf cleanup` if the lab left it behind",
                busy.join("; ")
            )));
        }
        let collector_dir = self.collector_dir();
        std::fs::create_dir_all(&collector_dir).map_err(|e| {
            Failure::ending_run(format!("cannot create {}: {e}", collector_dir.display()))
        })
    }

    async fn launch_and_sample(
        &self,
        children: &mut Children,
        cancel: &CancellationToken,
        figures: &mut RunningFigures,
    ) -> Result<Ending, Failure> {
        let inputs = PlanInputs {
            params: self.params,
            concurrency: self.concurrency,
            dir: &self.dir,
            module_dir: self.module_dir,
            mite: self.mite.mite(),
            path_var: self.mite.path_var(),
            self_exe: &self.setup.self_exe,
            ports: self.setup.host.ports,
        };
        let plan = scenario_plan(&inputs);
        if let Some(ending) = launch::launch(
            plan,
            self.store,
            self.scenario_id,
            self.setup.limits.ready_timeout,
            cancel,
            children,
        )
        .await?
        {
            return Ok(ending);
        }
        let mut counter = self.request_counter(children)?;
        self.store
            .start_scenario(self.scenario_id, now_ms())
            .await
            .map_err(|e| Failure::new(format!("cannot record the scenario's start: {e}")))?;
        let collector_dir = self.collector_dir();
        let ctx = SamplingContext {
            scenario_id: self.scenario_id,
            position: self.position,
            interval: self.params.interval(),
            duration: self.params.duration(),
            controller_grace: self.setup.limits.controller_grace,
            collector_dir: &collector_dir,
            collector_keep_mib: self.params.collector_keep_mib,
            observer: self.observer,
            sink: self.sink,
        };
        sample::sample(&ctx, children, &mut counter, cancel, figures).await
    }

    /// Reads the target's request counts from its stdout (a copy of every
    /// line goes to its log), asking the built-in target through its stdin.
    fn request_counter(&self, children: &mut Children) -> Result<RequestCounter, Failure> {
        let target = children
            .list
            .iter_mut()
            .find(|l| l.child.kind == ProcessKind::Http)
            .ok_or_else(|| Failure::new("the target was not started"))?;
        let log_path = target.child.log_path.clone();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&log_path)
            .map_err(|e| Failure::new(format!("cannot open {}: {e}", log_path.display())))?;
        let stdout = target
            .stdout
            .take()
            .ok_or_else(|| Failure::new("the target's stdout was not captured"))?;
        Ok(RequestCounter::new(stdout, target.stdin.take(), log))
    }
}
