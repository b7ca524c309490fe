//! The lab service behind the browser: a queue of runs in the database,
//! executed one at a time (the ports are fixed) by the [`worker`], what the
//! pages see of it ([`views`]), and the [`api`] adapter the server
//! functions call.

pub mod agent;
pub mod api;
pub mod library;
pub mod share;
pub mod trends;
pub mod uploads;
pub mod views;
pub mod worker;

use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use app::api::{LabError, LaunchOutcome};
use domain::access::Caller;

use crate::model::{RunParams, RunStatus};
use crate::run::LabSetup;
use crate::store::{Store, StoreError};
pub use worker::{RealRuns, RunExecutor};

/// At most this many runs wait in the queue.
pub const MAX_QUEUED: i64 = 100;
/// At most this many of them launched by one member who is not an admin
/// (a quarter: one runner, or one click of the release backfill, cannot
/// keep everyone else's runs out; FAULTS.md 57).
pub const MAX_QUEUED_PER_MEMBER: i64 = MAX_QUEUED / 4;

/// The share of the queue `caller` may fill: [`MAX_QUEUED_PER_MEMBER`],
/// none for admins (the queue's own bound holds for them).
pub fn queue_share(caller: &Caller) -> Option<i64> {
    (caller.role < domain::access::Role::Admin).then_some(MAX_QUEUED_PER_MEMBER)
}
/// At most this many downloads stream from the database at once.
pub const MAX_DOWNLOADS: usize = 2;
/// At most this many uploads are read at once (each up to 16 MiB in
/// memory); the others are told to come back.
pub const MAX_UPLOADS: usize = 2;
/// At most this many reads over the whole history (the trends computed
/// again, a comparison, its charts or flame graph) run at once; more are
/// answered 429 "try again in a moment", so that viewers in a loop cannot
/// occupy the machine that measures (FAULTS.md 56).
pub const MAX_HEAVY_READS: usize = 2;

/// What the worker went through that a health check should say.
#[derive(Debug, Clone, Default)]
pub struct WorkerHealth {
    /// The latest panic of the worker, worded, while no run has ended
    /// cleanly since.
    pub panic: Option<String>,
    /// The worker's task ended while the lab was not shutting down: no
    /// queued run will be taken again.
    pub ended: bool,
}

pub struct Lab {
    store: Store,
    setup: LabSetup,
    current: Mutex<Option<(i64, CancellationToken)>>,
    wake: Notify,
    shutdown: CancellationToken,
    health: Mutex<WorkerHealth>,
    downloads: Arc<Semaphore>,
    uploads: Arc<Semaphore>,
    /// Whether this lab executes runs (its worker started): a web front
    /// alone does not.
    executes: std::sync::atomic::AtomicBool,
    /// Password checks take turns (one machine's CPU).
    password_checks: crate::access::throttle::HashGate,
    /// Places among the reads over the whole history ([`MAX_HEAVY_READS`]).
    heavy_reads: Arc<Semaphore>,
    /// The series last computed, with the history's stamp they were
    /// computed from: served again until the stamp changes.
    trends: Mutex<
        Option<(
            crate::store::TrendVersion,
            Arc<Vec<crate::trend::history::Series>>,
        )>,
    >,
    /// How many times the series were computed from the history.
    history_reads: std::sync::atomic::AtomicU64,
}

impl Lab {
    pub fn new(store: Store, setup: LabSetup) -> Arc<Self> {
        Arc::new(Lab {
            store,
            setup,
            current: Mutex::new(None),
            wake: Notify::new(),
            shutdown: CancellationToken::new(),
            health: Mutex::new(WorkerHealth::default()),
            downloads: Arc::new(Semaphore::new(MAX_DOWNLOADS)),
            uploads: Arc::new(Semaphore::new(MAX_UPLOADS)),
            executes: std::sync::atomic::AtomicBool::new(false),
            password_checks: Default::default(),
            heavy_reads: Arc::new(Semaphore::new(MAX_HEAVY_READS)),
            trends: Mutex::new(None),
            history_reads: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The turns password checks take.
    pub fn password_checks(&self) -> &crate::access::throttle::HashGate {
        &self.password_checks
    }

    /// Whether this lab is an agent: it executes runs.
    pub fn is_agent(&self) -> bool {
        self.executes.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn setup(&self) -> &LabSetup {
        &self.setup
    }

    /// The run in progress, if any.
    pub fn current_run(&self) -> Option<i64> {
        self.current
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|(id, _)| *id))
    }

    pub fn health(&self) -> WorkerHealth {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// A place among the downloads streaming from the database, if one is free.
    pub fn download_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.downloads.clone().try_acquire_owned().ok()
    }

    /// A place among the uploads being read, if one is free.
    pub fn upload_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.uploads.clone().try_acquire_owned().ok()
    }

    /// A place among the reads over the whole history, or 429 (`Busy`)
    /// when [`MAX_HEAVY_READS`] run already.
    pub fn heavy_read_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, LabError> {
        self.heavy_reads.clone().try_acquire_owned().map_err(|_| {
            LabError::Busy(
                "the lab is computing other trends or comparisons: try again in a moment".into(),
            )
        })
    }

    /// How many times the trends were computed from the whole history
    /// (the rest were served as computed).
    pub fn history_reads(&self) -> u64 {
        self.history_reads
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops the current run (two-stage stop) and the worker.
    pub fn shut_down(&self) {
        self.shutdown.cancel();
    }

    /// Whether the lab is shutting down.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Validates and queues a run, launched by `caller`.
    pub async fn launch(
        &self,
        caller: &Caller,
        mut params: RunParams,
    ) -> Result<LaunchOutcome, LabError> {
        params.launched_by = caller.name.clone();
        let errors = params.validate();
        if !errors.is_empty() {
            return Ok(LaunchOutcome::Invalid(errors));
        }
        if let Some(refusal) = self.setup.policy.refusal(&params) {
            return Err(LabError::Forbidden(refusal.to_string()));
        }
        for build in &params.mite {
            if let domain::builds::MiteBuild::Uploaded(sha) = build {
                // Noted as used now: the sweep of unused wheels cannot take
                // it before the run is queued, and then the run keeps it.
                if !self.store.use_wheel(sha).await? {
                    return Ok(LaunchOutcome::Invalid(vec![domain::model::FieldError {
                        field: "mite".into(),
                        message: format!(
                            "no wheel {sha} was uploaded to this lab (upload it first: \
                             POST /api/wheels, as `mite-perf ci check` does)"
                        ),
                    }]));
                }
            }
        }
        if let Some(error) = self.place_library_run(&mut params).await? {
            return Ok(LaunchOutcome::Invalid(vec![error]));
        }
        if let Some(agent) = &params.agent {
            if self.store.agent(agent).await?.is_none() {
                return Ok(LaunchOutcome::Invalid(vec![domain::model::FieldError {
                    field: "agent".into(),
                    message: format!("there is no agent named {agent}"),
                }]));
            }
        }
        if self.store.queued_count().await? >= MAX_QUEUED {
            return Err(LabError::Busy(format!(
                "the queue is full ({MAX_QUEUED} runs wait): try again when some have run"
            )));
        }
        if let Some(share) = queue_share(caller) {
            if self.store.queued_count_by(&caller.name).await? >= share {
                return Err(LabError::Busy(format!(
                    "{share} runs of {} wait in the queue already, as many as one member may \
                     queue: try again when some have run",
                    caller.name
                )));
            }
        }
        let run_id = self.store.create_run(&params, RunStatus::Queued).await?;
        let position = self.store.queue_position(run_id).await?.unwrap_or(0);
        self.wake.notify_one();
        self.note(caller, "launch", &format!("run {run_id}")).await;
        Ok(LaunchOutcome::Queued { run_id, position })
    }

    /// Writes what `caller` did to the activity log. The deed is done
    /// already: a log that cannot be written is said in the lab's log, and
    /// does not undo it.
    pub async fn note(&self, caller: &Caller, action: &str, subject: &str) {
        if let Err(e) = self
            .store
            .record_activity(&caller.name, action, subject, &caller.from)
            .await
        {
            tracing::warn!(
                "cannot log that {} did {action} {subject}: {e}",
                caller.name
            );
        }
    }

    /// Run `run_id` as stored: "no run N" (404) when there is none.
    pub async fn existing_run(&self, run_id: i64) -> Result<crate::store::RunRecord, LabError> {
        self.store
            .run(run_id)
            .await?
            .ok_or_else(|| LabError::NotFound(format!("no run {run_id}")))
    }

    /// The run `run_id`, if `caller` may cancel it.
    async fn cancellable(&self, caller: &Caller, run_id: i64) -> Result<RunStatus, LabError> {
        let run = self.existing_run(run_id).await?;
        caller.require_cancel(&run.params.launched_by)?;
        Ok(run.status)
    }

    /// Removes a queued run, if `caller` may; returns whether it was queued.
    pub async fn remove_queued(&self, caller: &Caller, run_id: i64) -> Result<bool, LabError> {
        self.cancellable(caller, run_id).await?;
        let removed = self.store.delete_queued(run_id).await?;
        if removed {
            self.note(caller, "remove", &format!("run {run_id}")).await;
        }
        Ok(removed)
    }

    /// Cancels a run if `caller` may (admins any, runners their own):
    /// removed from the queue, or stopped in two stages.
    pub async fn cancel_as(&self, caller: &Caller, run_id: i64) -> Result<bool, LabError> {
        let status = self.cancellable(caller, run_id).await?;
        if status == RunStatus::Queued {
            return self.remove_queued(caller, run_id).await;
        }
        self.store.set_cancelled_by(run_id, &caller.name).await?;
        let cancelled = self.cancel(run_id).await?;
        if cancelled {
            self.note(caller, "cancel", &format!("run {run_id}")).await;
        }
        Ok(cancelled)
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
            // Queued: removed; running on another host (sharing this
            // database): asked, and that host stops it within seconds.
            None => Ok(self.store.delete_queued(run_id).await?
                || self.store.request_cancel(run_id).await?),
        }
    }
}
