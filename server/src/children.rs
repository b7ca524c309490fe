//! The lab's children as the store knows them: each started in its own
//! process group and recorded (pid, start time, command, log) before
//! anything else can go wrong, and stopped through the two-stage stop with
//! its end recorded. What a scenario starts (target, mite's processes) and
//! what profiles them (py-spy) live and end the same way.

use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::{ChildStdin, ChildStdout};

use crate::model::ProcessKind;
use crate::store::{persistently, NewProcess, Store, STOP_PATH_PATIENCE};
use crate::supervisor::{self, ChildSpec, Supervised, STOP_GRACE};

/// Why a child could not be started as one of the lab's.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error(transparent)]
    Spawn(#[from] supervisor::SupervisorError),
    #[error("cannot record the {kind} (pid {pid}) in the database, so it was stopped: {source}")]
    Unrecorded {
        kind: ProcessKind,
        pid: u32,
        source: crate::store::StoreError,
    },
}

/// A child the lab started, with its row in the store and its pipes.
pub struct Launched {
    pub child: Supervised,
    pub record_id: i64,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
}

/// A scenario's children, in start order.
#[derive(Default)]
pub struct Children {
    pub list: Vec<Launched>,
}

impl Children {
    /// The child of `kind` that ended with `status` (with several runners,
    /// the one that failed, not the first).
    pub fn ended(&mut self, kind: ProcessKind, status: ExitStatus) -> Option<&mut Supervised> {
        self.list
            .iter_mut()
            .map(|l| &mut l.child)
            .find_map(|c| (c.kind == kind && c.try_exit() == Some(status)).then_some(c))
    }

    /// Every child of a kind (the runners, when there are several).
    pub fn all(&mut self, kind: ProcessKind) -> impl Iterator<Item = &mut Supervised> {
        self.list
            .iter_mut()
            .map(|l| &mut l.child)
            .filter(move |c| c.kind == kind)
    }

    /// The processes the lab measures (see [`Supervised::measured_pid`]).
    pub fn pids(&mut self) -> Vec<u32> {
        self.list
            .iter_mut()
            .filter_map(|l| l.child.measured_pid())
            .collect()
    }

    /// The children still running, with the pids the lab measures.
    pub fn running(&mut self) -> Vec<(ProcessKind, u32)> {
        self.list
            .iter_mut()
            .filter_map(|l| {
                let child = &mut l.child;
                if !child.is_running() {
                    return None;
                }
                Some((child.kind, child.measured_pid()?))
            })
            .collect()
    }

    /// The children that have ended, with their exit statuses.
    pub fn exits(&mut self) -> Vec<(ProcessKind, ExitStatus)> {
        self.list
            .iter_mut()
            .filter_map(|l| l.child.try_exit().map(|s| (l.child.kind, s)))
            .collect()
    }
}

/// Spawns a child (in its own process group) and records it in the
/// database before anything else can go wrong: a child that cannot be
/// recorded could never be found by `cleanup`, so it is stopped at once.
pub async fn start_recorded(
    spec: &ChildSpec,
    store: &Store,
    scenario_id: i64,
) -> Result<Launched, ChildError> {
    let (mut child, stdin, stdout) = supervisor::spawn(spec)?;
    let log_path = child.log_path.display().to_string();
    let recorded = store
        .record_process(
            scenario_id,
            NewProcess {
                kind: child.kind,
                pid: child.pid,
                start_ticks: child.start_ticks,
                command: &child.command,
                log_path: &log_path,
            },
        )
        .await;
    match recorded {
        Ok(record_id) => Ok(Launched {
            child,
            record_id,
            stdin,
            stdout,
        }),
        Err(e) => {
            let (kind, pid) = (child.kind, child.pid);
            supervisor::stop_all(std::slice::from_mut(&mut child), STOP_GRACE).await;
            Err(ChildError::Unrecorded {
                kind,
                pid,
                source: e,
            })
        }
    }
}

/// Stops the children and records their ends. A failed write is logged, not
/// fatal: the children are stopped either way, and `cleanup` closes any
/// record left open.
pub async fn stop_children(store: &Store, children: &mut Children) {
    stop_children_within(store, children, STOP_GRACE).await;
}

/// [`stop_children`], with `grace` between the polite signal and SIGKILL.
pub async fn stop_children_within(store: &Store, children: &mut Children, grace: Duration) {
    let (mut stopped, ids): (Vec<Supervised>, Vec<i64>) = children
        .list
        .drain(..)
        .map(|l| (l.child, l.record_id))
        .unzip();
    supervisor::stop_all(&mut stopped, grace).await;
    for (child, id) in stopped.iter_mut().zip(ids) {
        let exit = child
            .try_exit()
            .map(|s| supervisor::describe_exit(&s))
            .unwrap_or_else(|| "did not end after SIGKILL".to_string());
        if let Err(e) = persistently(STOP_PATH_PATIENCE, || store.end_process(id, &exit)).await {
            tracing::error!(
                "cannot record how the {} (pid {}) ended: {e}",
                child.kind,
                child.pid
            );
        }
    }
}
