//! Starting a plan: for each stage, spawn the child (in its own process
//! group), record it in the database before anything else can go wrong, and
//! wait until it is ready. One loop for any plan.

use std::net::TcpStream;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use tokio::process::{ChildStdin, ChildStdout};
use tokio_util::sync::CancellationToken;

use super::plan::{Readiness, Stage};
use super::verdict::{exit_message, Ending, Failure};
use super::LOG_TAIL_LINES;
use crate::model::ProcessKind;
use crate::ports;
use crate::store::{NewProcess, Store};
use crate::supervisor::{self, ChildSpec, Supervised, STOP_GRACE};

/// How often readiness is checked.
const READY_POLL: Duration = Duration::from_millis(50);

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

    /// The first child that has ended, as a failure "while …".
    fn first_exit_failure(&mut self, when: &str) -> Option<Failure> {
        let launched = self
            .list
            .iter_mut()
            .find_map(|l| l.child.try_exit().is_some().then_some(l))?;
        let child = &mut launched.child;
        let status = child.try_exit()?;
        Some(Failure {
            message: exit_message(
                child.kind,
                &status,
                when,
                &child.command,
                &child.log_path.display().to_string(),
            ),
            log_tail: Some(child.log_tail(LOG_TAIL_LINES)),
            ends_run: false,
        })
    }
}

/// Whether a stage's child is ready (the process it stands for, when it
/// runs under another: it holds the sockets).
fn is_ready(ready: &Readiness, child: &mut Supervised) -> bool {
    let Some(pid) = child.measured_pid() else {
        return false;
    };
    match ready {
        Readiness::Accepts(port) => TcpStream::connect(("127.0.0.1", *port)).is_ok(),
        Readiness::Listens(ports) => ports.iter().all(|p| ports::is_listening(pid, *p)),
        Readiness::ConnectedTo(port) => ports::is_connected_to(pid, *port),
        Readiness::Started => true,
    }
}

/// Starts every stage in order. Returns `Ok(None)` when all are started and
/// ready, `Ok(Some(Ending::Cancelled))` when the run was cancelled on the
/// way. Every child started is in `children`, whatever the outcome, for
/// teardown to stop.
pub async fn launch(
    plan: Vec<Stage>,
    store: &Store,
    scenario_id: i64,
    ready_timeout: Duration,
    cancel: &CancellationToken,
    children: &mut Children,
) -> Result<Option<Ending>, Failure> {
    for stage in plan {
        children
            .list
            .push(start_recorded(&stage.spec, store, scenario_id).await?);
        if let Some(ending) = wait_ready(&stage, children, ready_timeout, cancel).await? {
            return Ok(Some(ending));
        }
    }
    Ok(None)
}

/// Spawns a child (in its own process group) and records it in the
/// database before anything else can go wrong: a child that cannot be
/// recorded could never be found by `cleanup`, so it is stopped at once.
pub async fn start_recorded(
    spec: &ChildSpec,
    store: &Store,
    scenario_id: i64,
) -> Result<Launched, Failure> {
    let (mut child, stdin, stdout) =
        supervisor::spawn(spec).map_err(|e| Failure::new(e.to_string()))?;
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
            Err(Failure::new(format!(
                "cannot record the {kind} (pid {pid}) in the database, so it was stopped: {e}"
            )))
        }
    }
}

/// Polls the newest child's readiness until it holds, failing if any child
/// exits, the deadline passes, or the run is cancelled.
async fn wait_ready(
    stage: &Stage,
    children: &mut Children,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Option<Ending>, Failure> {
    let deadline = Instant::now() + timeout;
    let what = format!("while waiting for {}", stage.waiting_for);
    loop {
        if cancel.is_cancelled() {
            return Ok(Some(Ending::Cancelled));
        }
        if let Some(failure) = children.first_exit_failure(&what) {
            return Err(failure);
        }
        let newest = children.list.last_mut().map(|l| &mut l.child);
        if let Some(child) = newest {
            if is_ready(&stage.ready, child) {
                return Ok(None);
            }
        }
        if Instant::now() > deadline {
            let pid = children
                .list
                .last()
                .map(|c| c.child.pid)
                .unwrap_or_default();
            return Err(Failure {
                message: format!(
                    "timed out after {} s waiting for {} (pid {pid}); it was stopped",
                    timeout.as_secs(),
                    stage.waiting_for
                ),
                log_tail: children
                    .list
                    .last()
                    .map(|l| l.child.log_tail(LOG_TAIL_LINES)),
                ends_run: false,
            });
        }
        tokio::time::sleep(READY_POLL).await;
    }
}
