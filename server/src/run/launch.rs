//! Starting a plan: for each stage, spawn the child (in its own process
//! group) and record it in the database before anything else can go wrong;
//! then wait until each is ready. Stages that need not wait for one
//! another start at once.

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

/// A stage whose child was started: where that child is in `children`.
pub struct Started {
    pub stage: Stage,
    pub child: usize,
}

/// Starts every stage's child at once, each recorded before the next is
/// started; none is waited for (see [`wait_ready`]). Every child started
/// is in `children`, whatever the outcome, for teardown to stop.
pub async fn start(
    plan: Vec<Stage>,
    store: &Store,
    scenario_id: i64,
    children: &mut Children,
) -> Result<Vec<Started>, Failure> {
    let mut started = Vec::with_capacity(plan.len());
    for stage in plan {
        children.list.push(
            start_recorded(&stage.spec, store, scenario_id)
                .await
                .map_err(|e| Failure::new(e.to_string()))?,
        );
        started.push(Started {
            stage,
            child: children.list.len() - 1,
        });
    }
    Ok(started)
}

/// Waits for each started stage's readiness in order, each within
/// `ready_timeout` of when its turn came. `Ok(None)`: all are ready;
/// `Ok(Some(Ending::Cancelled))`: the run was cancelled on the way.
pub async fn wait_ready(
    started: &[Started],
    ready_timeout: Duration,
    cancel: &CancellationToken,
    children: &mut Children,
) -> Result<Option<Ending>, Failure> {
    for one in started {
        if let Some(ending) = wait_one_ready(one, children, ready_timeout, cancel).await? {
            return Ok(Some(ending));
        }
    }
    Ok(None)
}

/// Polls one started child's readiness until it holds, failing if any
/// child exits, the deadline passes, or the run is cancelled.
async fn wait_one_ready(
    started: &Started,
    children: &mut Children,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Option<Ending>, Failure> {
    let stage = &started.stage;
    let deadline = Instant::now() + timeout;
    let what = format!("while the lab waited for {}", stage.waiting_for);
    loop {
        if cancel.is_cancelled() {
            return Ok(Some(Ending::Cancelled));
        }
        if let Some(failure) = exited_child(children, &what, None) {
            return Err(failure);
        }
        let Some(launched) = children.list.get_mut(started.child) else {
            return Err(Failure::new(format!(
                "no child was started for {}",
                stage.waiting_for
            )));
        };
        if is_ready(&stage.ready, &mut launched.child) {
            return Ok(None);
        }
        if Instant::now() > deadline {
            let pid = launched.child.pid;
            return Err(Failure {
                message: format!(
                    "timed out after {} s waiting for {} (pid {pid}); it was stopped",
                    timeout.as_secs(),
                    stage.waiting_for
                ),
                log_tail: Some(launched.child.log_tail(LOG_TAIL_LINES)),
                ends_run: false,
            });
        }
        tokio::time::sleep(READY_POLL).await;
    }
}
