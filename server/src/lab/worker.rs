//! The worker: takes the oldest queued run, executes it, and goes on to the
//! next. A panic while executing a run stops that run's processes, marks it
//! failed, shows on `/healthz`, and does not stop the worker.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;

use super::Lab;
use crate::cleanup;
use crate::model::{RunStatus, ScenarioStatus};
use crate::run::{execute_run, LabSetup, RunError, RunEvent, RunObserver, RunOutcome};
use crate::store::{persistently, RunRecord, Store, STOP_PATH_PATIENCE};

/// How often the worker looks at the queue when nobody wakes it.
const QUEUE_POLL: Duration = Duration::from_secs(2);

/// Executes one run: [`RealRuns`] in the lab; tests give their own to
/// bring about faults the real one cannot be made to have.
pub trait RunExecutor: Send + Sync + 'static {
    fn execute<'a>(
        &'a self,
        store: &'a Store,
        run: &'a RunRecord,
        setup: &'a LabSetup,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<RunOutcome, RunError>>;
}

/// Runs against real mite ([`execute_run`]), on the measuring runtime.
pub struct RealRuns;

/// The runtime that executes runs: a thread of its own, apart from the web
/// front's, so that pages rendered for any number of viewers cannot make
/// the sampler's ticks late (the operating system shares the CPU between
/// threads; a task waits for its runtime's threads). Made once and kept
/// for the process's life: database connections a run opens here stay
/// usable by the web front after the run (PostgreSQL's sockets belong to
/// the runtime that opened them).
fn measuring_runtime() -> Result<&'static tokio::runtime::Runtime, RunError> {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("mite-perf-measure")
        .enable_all()
        .build()
        .map_err(|e| RunError::Measuring(e.to_string()))?;
    // Two workers racing here: the loser's runtime is dropped unused.
    Ok(RUNTIME.get_or_init(|| runtime))
}

impl RunExecutor for RealRuns {
    fn execute<'a>(
        &'a self,
        store: &'a Store,
        run: &'a RunRecord,
        setup: &'a LabSetup,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<RunOutcome, RunError>> {
        use tracing::Instrument;
        let (store, run, setup, cancel) =
            (store.clone(), run.clone(), setup.clone(), cancel.clone());
        async move {
            let runtime = measuring_runtime()?;
            // Whoever stops waiting for the run (an aborted worker) stops it.
            let stop_if_dropped = cancel.clone().drop_guard();
            let executed = runtime.spawn(
                async move {
                    let (observer, stages) = StageObserver::new(store.clone(), run.id);
                    let outcome =
                        execute_run(&store, run.id, &run.params, &setup, &cancel, &observer).await;
                    // Every stage said is written before the run is reported ended.
                    drop(observer);
                    let _ = stages.await;
                    outcome
                }
                .in_current_span(),
            );
            let outcome = match executed.await {
                Ok(outcome) => outcome,
                // The worker's own catch_unwind sees the run's panic as before.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => Err(RunError::Measuring(e.to_string())),
            };
            stop_if_dropped.disarm();
            outcome
        }
        .boxed()
    }
}

/// Logs what a run does before its first scenario (installing a build) and
/// stores it as the run's stage, for its page; the rest reaches the pages
/// through the database already. Writes in order, off the run's path.
struct StageObserver {
    run_id: i64,
    stages: tokio::sync::mpsc::UnboundedSender<String>,
}

impl StageObserver {
    fn new(store: Store, run_id: i64) -> (Self, tokio::task::JoinHandle<()>) {
        let (stages, mut said) = tokio::sync::mpsc::unbounded_channel::<String>();
        let writer = tokio::spawn(async move {
            while let Some(stage) = said.recv().await {
                if let Err(e) = store.set_run_stage(run_id, &stage).await {
                    tracing::warn!("run {run_id}: cannot store its stage: {e}");
                }
            }
        });
        (StageObserver { run_id, stages }, writer)
    }
}

impl RunObserver for StageObserver {
    fn event(&self, event: RunEvent) {
        if let RunEvent::Preparing { message } = event {
            tracing::info!("run {}: {message}", self.run_id);
            let _ = self.stages.send(message);
        }
    }
}

/// Dropped when the worker's task ends: marks the worker ended in the
/// lab's health unless the lab was shutting down.
struct WorkerEndWatch(Arc<Lab>);

impl Drop for WorkerEndWatch {
    fn drop(&mut self) {
        if self.0.shutdown.is_cancelled() {
            return;
        }
        tracing::error!("the run worker ended: no queued run will be taken");
        if let Ok(mut health) = self.0.health.lock() {
            health.ended = true;
        }
    }
}

/// The text of a panic's payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

impl Lab {
    /// Executes queued runs, oldest first, until [`Lab::shut_down`].
    pub fn start_worker(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        self.start_worker_with(Arc::new(RealRuns))
    }

    /// The worker, with the executor given.
    pub fn start_worker_with(
        self: &Arc<Self>,
        executor: Arc<dyn RunExecutor>,
    ) -> tokio::task::JoinHandle<()> {
        self.executes
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let lab = self.clone();
        let span = tracing::info_span!("worker", agent = %self.setup.host.id);
        // However the task ends (returns, panics, is aborted, even before
        // it first ran: the watch is dropped with it), the health check
        // hears of it unless the lab is shutting down.
        let watch = WorkerEndWatch(lab.clone());
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let _watch = watch;
                // The library is listed while no run is measured: between runs.
                let mut listed_at: Option<std::time::Instant> = None;
                while !lab.shutdown.is_cancelled() {
                    if listed_at.is_none_or(|at| at.elapsed() >= super::library::LIBRARY_RESCAN) {
                        lab.refresh_library().await;
                        listed_at = Some(std::time::Instant::now());
                    }
                    let next = match lab
                        .store
                        .claim_next_queued(&lab.setup.host, std::process::id())
                        .await
                    {
                        Ok(next) => next,
                        Err(e) => {
                            tracing::warn!("cannot read the queue: {e}");
                            None
                        }
                    };
                    let Some(run) = next else {
                        tokio::select! {
                            _ = lab.wake.notified() => {}
                            _ = tokio::time::sleep(QUEUE_POLL) => {}
                            _ = lab.shutdown.cancelled() => {}
                        }
                        continue;
                    };
                    lab.execute(&run, executor.as_ref()).await;
                }
            },
            span,
        ))
    }

    async fn execute(&self, run: &RunRecord, executor: &dyn RunExecutor) {
        let cancel = self.shutdown.child_token();
        if let Ok(mut current) = self.current.lock() {
            *current = Some((run.id, cancel.clone()));
        }
        tracing::info!("run {} starts", run.id);
        // Every write for the run carries the lease it was claimed with.
        let store = match run.fence() {
            Some(fence) => self.store.fenced(fence),
            None => self.store.clone(),
        };
        let executed =
            std::panic::AssertUnwindSafe(executor.execute(&store, run, &self.setup, &cancel))
                .catch_unwind()
                .await;
        match executed {
            Ok(Ok(outcome)) => {
                tracing::info!("run {} ended: {}", run.id, outcome.status);
                if let Ok(mut health) = self.health.lock() {
                    health.panic = None;
                }
            }
            Ok(Err(e)) if e.lease_lost() => {
                tracing::error!(
                    "run {}: another agent took it for abandoned (its lease was lost); its \
                     processes here were stopped and nothing more was stored",
                    run.id
                );
            }
            Ok(Err(e)) => {
                tracing::error!("run {}: {e}", run.id);
                self.fail_run(&store, run.id, &e.to_string()).await;
            }
            Err(payload) => {
                let why = format!(
                    "the run worker panicked while executing run {}: {}",
                    run.id,
                    panic_text(payload.as_ref())
                );
                tracing::error!("{why}");
                // Its children were left running when the panic unwound.
                match cleanup::stop_run_processes(&store, run.id).await {
                    Ok(stopped) => {
                        for (p, outcome) in stopped {
                            tracing::warn!("run {}: {} (pid {}): {outcome}", run.id, p.name, p.pid);
                        }
                    }
                    Err(e) => tracing::error!("cannot stop run {}'s processes: {e}", run.id),
                }
                self.fail_run(&store, run.id, &why).await;
                // Health says so once the stop path has run, so whoever reads
                // it finds the run already ended and its processes stopped.
                if let Ok(mut health) = self.health.lock() {
                    health.panic = Some(why);
                }
            }
        }
        if let Ok(mut current) = self.current.lock() {
            *current = None;
        }
    }

    /// Marks a run that could not end normally as failed (through the
    /// run's fenced `store`: not once its lease is lost).
    async fn fail_run(&self, store: &Store, run_id: i64, why: &str) {
        let closed = persistently(STOP_PATH_PATIENCE, || {
            store.close_open_scenarios(run_id, ScenarioStatus::Failed)
        })
        .await;
        let finished = persistently(STOP_PATH_PATIENCE, || {
            store.finish_run(run_id, RunStatus::Failed, Some(why))
        })
        .await;
        if let Err(e) = closed.and(finished) {
            tracing::error!("run {run_id} stays marked running until cleanup: {e}");
        }
    }
}
