//! How a scenario ended and what that makes of the run: pure functions of
//! what happened, so every way a run can end is decided in one place.

use std::process::ExitStatus;

use crate::model::{ProcessKind, RunStatus, ScenarioStatus};
use crate::supervisor::describe_exit;

/// Why a scenario did not finish normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    /// The last lines of the failing process's log.
    pub log_tail: Option<String>,
    /// The whole run stops (a busy port would meet the next scenarios too).
    pub ends_run: bool,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            log_tail: None,
            ends_run: false,
        }
    }

    pub fn ending_run(message: impl Into<String>) -> Self {
        Failure {
            ends_run: true,
            ..Failure::new(message)
        }
    }
}

/// How a scenario's sampling ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The controller ended by itself.
    Finished,
    /// Ctrl+C, SIGTERM, a cancel from the browser, or the lab shutting down.
    Cancelled,
}

/// What the children's exits mean at one tick of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickVerdict {
    /// Everyone who must run is running.
    Continue,
    /// The controller ended cleanly: the scenario is over.
    ControllerDone,
    /// This child ended when it should not have.
    Failed(ProcessKind, ExitStatus),
}

/// Judges the exits seen so far: the controller ending with status 0 ends
/// the scenario; a runner may end first, cleanly; any other exit is a failure.
pub fn judge_exits(exits: &[(ProcessKind, ExitStatus)]) -> TickVerdict {
    let mut done = false;
    for (kind, status) in exits {
        match kind {
            ProcessKind::Controller if status.success() => done = true,
            ProcessKind::Runner if status.success() => {}
            _ => return TickVerdict::Failed(*kind, *status),
        }
    }
    if done {
        TickVerdict::ControllerDone
    } else {
        TickVerdict::Continue
    }
}

/// A child's unexpected exit, worded for the run page.
pub fn exit_message(
    kind: ProcessKind,
    status: &ExitStatus,
    when: &str,
    command: &str,
    log: &str,
) -> String {
    format!(
        "{kind} {} {when} ({command}); see {log}",
        describe_exit(status)
    )
}

/// Lines of a child's log quoted in a start-up exit's message (the whole
/// tail is kept with the scenario too).
pub const START_UP_TAIL_LINES: usize = 8;

/// A child that exited while the scenario started up, worded for the run's
/// error: which child, how it ended, what the lab was doing, and the last
/// lines of its log (its own words: the cause is usually there). `then`:
/// the error the lab met meanwhile, a consequence of the exit (the bus
/// reader refused, say), kept last.
pub fn start_up_exit_message(
    kind: ProcessKind,
    status: &ExitStatus,
    when: &str,
    log: &str,
    tail: &str,
    then: Option<&str>,
) -> String {
    let lines: Vec<&str> = tail.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = &lines[lines.len().saturating_sub(START_UP_TAIL_LINES)..];
    let mut message = format!(
        "the {kind} exited during start-up ({}), {when}",
        describe_exit(status)
    );
    if last.is_empty() {
        message.push_str(&format!("; its log {log} is empty"));
    } else {
        message.push_str(&format!("; the last lines of {log}:"));
        for line in last {
            message.push_str("\n  ");
            message.push_str(line);
        }
    }
    if let Some(then) = then {
        message.push_str(&format!("\n(and then: {then})"));
    }
    message
}

/// Lab ports still held after a scenario: `port N (purpose) is still held
/// by pid …` for each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct PortsHeld(pub Vec<String>);

/// The scenario's status from how sampling ended and whether the ports were
/// free again afterwards.
pub fn scenario_verdict(
    sampling: Result<Ending, Failure>,
    ports_free: Result<(), PortsHeld>,
) -> (ScenarioStatus, Option<Failure>) {
    match (sampling, ports_free) {
        (Ok(Ending::Cancelled), _) => (ScenarioStatus::Interrupted, None),
        (Err(failure), _) => (ScenarioStatus::Failed, Some(failure)),
        (Ok(Ending::Finished), Err(held)) => (
            ScenarioStatus::Failed,
            Some(Failure::ending_run(held.to_string())),
        ),
        (Ok(Ending::Finished), Ok(())) => (ScenarioStatus::Done, None),
    }
}

/// Whether the run goes on to its next scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    Stop,
}

/// The run's status, folded over its scenarios' verdicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunTally {
    status: RunStatus,
    error: Option<String>,
}

impl Default for RunTally {
    fn default() -> Self {
        RunTally {
            status: RunStatus::Done,
            error: None,
        }
    }
}

impl RunTally {
    /// Adds one scenario's verdict; says whether the run goes on.
    pub fn record(
        &mut self,
        scenario: &str,
        status: ScenarioStatus,
        failure: Option<&Failure>,
    ) -> Next {
        match status {
            ScenarioStatus::Interrupted => {
                self.status = RunStatus::Interrupted;
                Next::Stop
            }
            ScenarioStatus::Failed => {
                if self.status != RunStatus::Interrupted {
                    self.status = RunStatus::Failed;
                }
                let message = failure.map(|f| f.message.as_str()).unwrap_or("failed");
                self.error
                    .get_or_insert_with(|| format!("{scenario}: {message}"));
                if failure.is_some_and(|f| f.ends_run) {
                    Next::Stop
                } else {
                    Next::Continue
                }
            }
            _ => Next::Continue,
        }
    }

    /// The run's final status and error; `cancelled` when the run was asked
    /// to stop (by a signal or a cancel).
    pub fn finish(mut self, cancelled: bool) -> (RunStatus, Option<String>) {
        if cancelled {
            self.status = RunStatus::Interrupted;
            self.error
                .get_or_insert_with(|| "stopped before the end".to_string());
        }
        (self.status, self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::scenario_name;
    use std::os::unix::process::ExitStatusExt;

    fn exit_status(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    fn killed(signal: i32) -> ExitStatus {
        ExitStatus::from_raw(signal)
    }

    #[test]
    fn exits_decide_the_tick() {
        assert_eq!(judge_exits(&[]), TickVerdict::Continue);
        assert_eq!(
            judge_exits(&[(ProcessKind::Runner, exit_status(0))]),
            TickVerdict::Continue
        );
        assert_eq!(
            judge_exits(&[
                (ProcessKind::Runner, exit_status(0)),
                (ProcessKind::Controller, exit_status(0))
            ]),
            TickVerdict::ControllerDone
        );
        assert_eq!(
            judge_exits(&[(ProcessKind::Controller, exit_status(1))]),
            TickVerdict::Failed(ProcessKind::Controller, exit_status(1))
        );
        // A runner killed mid-scenario fails it even if the controller then ends.
        assert_eq!(
            judge_exits(&[
                (ProcessKind::Runner, killed(9)),
                (ProcessKind::Controller, exit_status(0))
            ]),
            TickVerdict::Failed(ProcessKind::Runner, killed(9))
        );
        assert_eq!(
            judge_exits(&[(ProcessKind::Duplicator, exit_status(0))]),
            TickVerdict::Failed(ProcessKind::Duplicator, exit_status(0))
        );
    }

    #[test]
    fn a_start_up_exit_names_the_child_its_status_and_its_logs_last_lines() {
        let tail = (1..=12)
            .map(|i| format!("line {i}"))
            .chain([
                "".into(),
                "RuntimeError: There is no current event loop".into(),
            ])
            .collect::<Vec<_>>()
            .join("\n");
        let message = start_up_exit_message(
            ProcessKind::Duplicator,
            &exit_status(1),
            "before the lab's bus reader connected",
            "/out/scenario10/duplicator.log",
            &tail,
            Some("cannot read mite's messages on tcp://127.0.0.1:14304: Connection refused"),
        );
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(
            lines[0],
            "the duplicator exited during start-up (exit 1), before the lab's bus reader \
             connected; the last lines of /out/scenario10/duplicator.log:"
        );
        // The last lines, blank ones left out, the cause among them.
        assert_eq!(lines.len(), 1 + START_UP_TAIL_LINES + 1, "{message}");
        assert_eq!(lines[1], "  line 6");
        assert_eq!(
            lines[START_UP_TAIL_LINES],
            "  RuntimeError: There is no current event loop"
        );
        assert!(lines[START_UP_TAIL_LINES + 1].contains("Connection refused"));
        let silent = start_up_exit_message(
            ProcessKind::Runner,
            &killed(9),
            "while waiting for the runner to connect",
            "/l/runner.log",
            "",
            None,
        );
        assert_eq!(
            silent,
            "the runner exited during start-up (killed by SIGKILL), while waiting for the \
             runner to connect; its log /l/runner.log is empty"
        );
    }

    #[test]
    fn scenario_verdicts() {
        assert_eq!(
            scenario_verdict(Ok(Ending::Finished), Ok(())),
            (ScenarioStatus::Done, None)
        );
        assert_eq!(
            scenario_verdict(Ok(Ending::Cancelled), Err(PortsHeld(vec!["held".into()]))),
            (ScenarioStatus::Interrupted, None)
        );
        let (status, failure) = scenario_verdict(
            Ok(Ending::Finished),
            Err(PortsHeld(vec!["port 9898 is still held".into()])),
        );
        assert_eq!(status, ScenarioStatus::Failed);
        assert!(failure.is_some_and(|f| f.ends_run && f.message.contains("9898")));
        let (status, failure) =
            scenario_verdict(Err(Failure::new("runner killed by SIGKILL")), Ok(()));
        assert_eq!(status, ScenarioStatus::Failed);
        assert_eq!(failure.map(|f| f.ends_run), Some(false));
    }

    #[test]
    fn the_run_status_folds_its_scenarios() {
        let mut tally = RunTally::default();
        assert_eq!(
            tally.record(&scenario_name(1), ScenarioStatus::Done, None),
            Next::Continue
        );
        assert_eq!(
            tally.record(
                &scenario_name(10),
                ScenarioStatus::Failed,
                Some(&Failure::new("runner died"))
            ),
            Next::Continue
        );
        assert_eq!(
            tally.record(
                &scenario_name(100),
                ScenarioStatus::Failed,
                Some(&Failure::new("second"))
            ),
            Next::Continue
        );
        assert_eq!(
            tally.clone().finish(false),
            (RunStatus::Failed, Some("scenario10: runner died".into()))
        );
        // A busy port ends the run; an interruption too, and wins over failure.
        assert_eq!(
            tally.record(
                &scenario_name(1000),
                ScenarioStatus::Failed,
                Some(&Failure::ending_run("port busy"))
            ),
            Next::Stop
        );
        assert_eq!(
            tally.record(&scenario_name(5), ScenarioStatus::Interrupted, None),
            Next::Stop
        );
        assert_eq!(tally.finish(false).0, RunStatus::Interrupted);

        assert_eq!(RunTally::default().finish(false), (RunStatus::Done, None));
        assert_eq!(
            RunTally::default().finish(true),
            (
                RunStatus::Interrupted,
                Some("stopped before the end".into())
            )
        );
    }
}
