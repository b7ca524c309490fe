//! `mite-perf cleanup`: after a crash, stop what the lab started and report
//! who holds the lab's ports. Processes the lab did not start are named, never
//! signalled.

use std::collections::BTreeSet;
use std::path::Path;

use crate::model::{ProcessKind, RunStatus, ScenarioStatus};
use crate::ports::{self, PortReport};
use crate::reports;
use crate::store::{ProcessRecord, Store, StoreError};
use crate::supervisor::{self, RecordedOutcome, STOP_GRACE};

/// What `cleanup` did.
#[derive(Debug, Default)]
pub struct CleanupReport {
    pub processes: Vec<(ProcessRecord, RecordedOutcome)>,
    /// Runs whose lab died, now marked interrupted.
    pub abandoned_runs: Vec<i64>,
    /// Runs still being run by a live lab (left alone), with its pid.
    pub live_runs: Vec<(i64, i64)>,
    pub ports: Vec<PortReport>,
    /// pids of recorded processes, to tell the lab's leftovers from strangers.
    pub lab_pids: BTreeSet<u32>,
}

impl CleanupReport {
    /// Whether every port is free now.
    pub fn ports_free(&self) -> bool {
        self.ports.iter().all(|p| p.holders.is_empty())
    }
}

/// Whether `pid` is a live `mite-perf` process (a live lab).
fn is_live_lab(pid: i64) -> bool {
    let Ok(pid) = u32::try_from(pid) else {
        return false;
    };
    ports::pid_alive(pid) && ports::command_of(pid).contains("mite-perf")
}

pub async fn cleanup(store: &Store) -> Result<CleanupReport, StoreError> {
    let mut report = CleanupReport::default();
    let live: Vec<(i64, i64)> = store
        .running_runs()
        .await?
        .into_iter()
        .filter_map(|run| {
            let pid = run.lab_pid?;
            (pid != i64::from(std::process::id()) && is_live_lab(pid)).then_some((run.id, pid))
        })
        .collect();
    for process in store.open_processes().await? {
        if live.iter().any(|(run, _)| *run == process.run_id) {
            continue;
        }
        let kind: ProcessKind = process.name.parse().unwrap_or(ProcessKind::Runner);
        let outcome = match (
            u32::try_from(process.pid),
            u64::try_from(process.start_ticks),
        ) {
            (Ok(pid), Ok(ticks)) => {
                report.lab_pids.insert(pid);
                supervisor::stop_recorded(kind, pid, ticks, STOP_GRACE).await
            }
            _ => RecordedOutcome::AlreadyGone,
        };
        if outcome != RecordedOutcome::Survived {
            store
                .end_process(process.id, &format!("{outcome} (by cleanup)"))
                .await?;
        }
        report.processes.push((process, outcome));
    }
    for run in store.running_runs().await? {
        if live.iter().any(|(id, _)| *id == run.id) {
            continue;
        }
        store
            .close_open_scenarios(run.id, ScenarioStatus::Interrupted)
            .await?;
        store
            .finish_run(
                run.id,
                RunStatus::Interrupted,
                Some("the lab ended without finishing this run (found by cleanup)"),
            )
            .await?;
        if let Some(dir) = &run.output_dir {
            // Best effort: the samples are safe in the database either way.
            let _ = reports::write_run_outputs(store, run.id, Path::new(dir)).await;
        }
        report.abandoned_runs.push(run.id);
    }
    report.live_runs = live;
    report.ports = ports::lab_port_reports();
    Ok(report)
}
