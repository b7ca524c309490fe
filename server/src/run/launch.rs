//! Starting a plan: for each stage, spawn the child (in its own process
//! group), record it in the database before anything else can go wrong, and
//! wait until it is ready. One loop for any plan.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::plan::{Readiness, Stage};
use super::verdict::{start_up_exit_message, Ending, Failure};
use super::LOG_TAIL_LINES;
use crate::children::{start_recorded, Children};
use crate::ports;
use crate::store::Store;
use crate::supervisor::Supervised;

/// How often readiness is checked.
const READY_POLL: Duration = Duration::from_millis(50);

/// The first child that has ended, as a failure of the start-up "`when`"
/// (its status and its log's last lines in the message); `then`, the
/// error the lab met meanwhile, said after it.
pub fn exited_child(children: &mut Children, when: &str, then: Option<&str>) -> Option<Failure> {
    let launched = children
        .list
        .iter_mut()
        .find_map(|l| l.child.try_exit().is_some().then_some(l))?;
    let child = &mut launched.child;
    let status = child.try_exit()?;
    let tail = child.log_tail(LOG_TAIL_LINES);
    Some(Failure {
        message: start_up_exit_message(
            child.kind,
            &status,
            when,
            &child.log_path.display().to_string(),
            &tail,
            then,
        ),
        log_tail: Some(tail),
        ends_run: false,
    })
}

/// How long a step that failed during start-up waits for a child's exit
/// to show: a process that closed its sockets as it exited is reaped a
/// moment later (a sandboxed one's bubblewrap after it).
pub const EXIT_PATIENCE: Duration = Duration::from_secs(2);

/// `failure`, met during start-up "`when`", or rather the child that
/// exited meanwhile (the cause, with `failure` said after it), waiting up
/// to `patience` for an exit to show.
pub async fn blame_exited_child(
    children: &mut Children,
    when: &str,
    failure: Failure,
    patience: Duration,
) -> Failure {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(exited) = exited_child(children, when, Some(&failure.message)) {
            return exited;
        }
        if Instant::now() >= deadline {
            return failure;
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// Whether a stage's child is ready (the process it stands for, when it
/// runs under another: it holds the sockets). Sockets are looked for in
/// the network that process is in: the host's, or its sandboxed
/// scenario's own.
fn is_ready(ready: &Readiness, child: &mut Supervised) -> bool {
    let Some(pid) = child.measured_pid() else {
        return false;
    };
    match ready {
        Readiness::Accepts(port) => ports::is_listened_near(pid, *port),
        Readiness::Listens(ports) => ports::is_listening(pid, ports),
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
        children.list.push(
            start_recorded(&stage.spec, store, scenario_id)
                .await
                .map_err(|e| Failure::new(e.to_string()))?,
        );
        if let Some(ending) = wait_ready(&stage, children, ready_timeout, cancel).await? {
            return Ok(Some(ending));
        }
    }
    Ok(None)
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
    let what = format!("while the lab waited for {}", stage.waiting_for);
    loop {
        if cancel.is_cancelled() {
            return Ok(Some(Ending::Cancelled));
        }
        if let Some(failure) = exited_child(children, &what, None) {
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
