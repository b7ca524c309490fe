//! `mite-perf cleanup` (and the Ports page's button, and `serve` at start):
//! after a crash, stop what the lab started and report who holds the lab's
//! ports. Processes the lab did not start are named, never signalled.
//!
//! Several agents may share the database: this one decides whether one
//! of its own runs is alive from its `/proc`, and another host's only from
//! that run's lease; it never signals another host's processes (their pids
//! mean nothing here) nor writes into another host's run folder.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use crate::agent_identity::AgentIdentity;
use crate::model::{ProcessKind, RunStatus, ScenarioStatus};
use crate::os_process;
use crate::paths::is_inside;
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
    /// Runs another agent executes and holds a lease on (left alone).
    pub remote_live_runs: Vec<(i64, String)>,
    /// Runs of another agent whose lease ran out, now marked interrupted
    /// (their processes and files, on that host, are left to it).
    pub remote_abandoned_runs: Vec<(i64, String)>,
    /// Runs whose folder is outside the output root: their files were not rewritten.
    pub outside_output: Vec<(i64, String)>,
    pub ports: Vec<PortReport>,
    /// pids of recorded processes, to tell the lab's leftovers from strangers.
    pub lab_pids: BTreeSet<u32>,
}

impl CleanupReport {
    /// Whether every port is free now.
    pub fn ports_free(&self) -> bool {
        self.ports.iter().all(|p| p.holders.is_empty())
    }

    /// The report in words, a line each: for the terminal and the Ports page.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (run, pid) in &self.live_runs {
            lines.push(format!(
                "run {run} is in progress in a live lab (pid {pid}): its processes are left alone"
            ));
        }
        for (run, host) in &self.remote_live_runs {
            lines.push(format!(
                "run {run} is in progress on agent {host}, whose lease on it holds: left alone"
            ));
        }
        if self.processes.is_empty() {
            lines.push("no processes of the lab were left open".to_string());
        }
        for (p, outcome) in &self.processes {
            lines.push(format!(
                "{} (pid {}, run {}): {outcome}",
                p.name, p.pid, p.run_id
            ));
        }
        for run in &self.abandoned_runs {
            lines.push(format!(
                "run {run}: marked interrupted; its samples.csv and chart.html were rewritten"
            ));
        }
        for (run, host) in &self.remote_abandoned_runs {
            lines.push(format!(
                "run {run}: agent {host} stopped renewing its lease: marked interrupted; \
                 its processes and files there are left to that host's cleanup"
            ));
        }
        for (run, dir) in &self.outside_output {
            lines.push(format!(
                "run {run}: its folder {dir} is outside the output folder: its files were left as they are"
            ));
        }
        let lab_pids: Vec<u32> = self.lab_pids.iter().copied().collect();
        for port in &self.ports {
            if port.holders.is_empty() {
                lines.push(format!("port {} ({}): free", port.port, port.purpose));
            }
            for holder in &port.holders {
                let whose = match holder.pid {
                    Some(pid) if os_process::in_groups_of(pid, &lab_pids) => {
                        "the lab's, still alive"
                    }
                    _ => "not started by the lab: left alone",
                };
                lines.push(format!(
                    "port {} ({}): held by {holder} ({whose})",
                    port.port, port.purpose
                ));
            }
        }
        lines
    }
}

/// Whether `pid` is a live `mite-perf` process (a live lab).
fn is_live_lab(pid: i64) -> bool {
    let Ok(pid) = u32::try_from(pid) else {
        return false;
    };
    os_process::pid_alive(pid) && os_process::command_of(pid).contains("mite-perf")
}

/// Stops one recorded process group (if its pid still names the process the
/// lab started) and records how it ended.
async fn stop_recorded(
    store: &Store,
    process: &ProcessRecord,
    lab_pids: &mut BTreeSet<u32>,
) -> Result<RecordedOutcome, StoreError> {
    let kind: ProcessKind = process.name.parse().unwrap_or(ProcessKind::Runner);
    let outcome = match (
        u32::try_from(process.pid),
        u64::try_from(process.start_ticks),
    ) {
        (Ok(pid), Ok(ticks)) => {
            lab_pids.insert(pid);
            let measured = crate::profile::started::measured_of(&process.command);
            supervisor::stop_recorded(kind, measured, pid, ticks, STOP_GRACE).await
        }
        _ => RecordedOutcome::AlreadyGone,
    };
    if outcome != RecordedOutcome::Survived {
        store
            .end_process(process.id, &format!("{outcome} (by cleanup)"))
            .await?;
    }
    Ok(outcome)
}

/// Stops the processes of run `run_id` whose end was never recorded (the
/// run's executor died with them still running).
pub async fn stop_run_processes(
    store: &Store,
    run_id: i64,
) -> Result<Vec<(ProcessRecord, RecordedOutcome)>, StoreError> {
    let mut stopped = Vec::new();
    let mut pids = BTreeSet::new();
    for process in store.open_processes().await? {
        if process.run_id == run_id {
            let outcome = stop_recorded(store, &process, &mut pids).await?;
            stopped.push((process, outcome));
        }
    }
    Ok(stopped)
}

/// Marks another agent's running run interrupted, its lease having run
/// out: its processes and files, on that agent's machine, are left to that
/// agent. Returns the agent's id.
async fn close_remote_run(
    store: &Store,
    host: &AgentIdentity,
    run: &crate::store::RunRecord,
) -> Result<String, StoreError> {
    let other = run.agent_id.clone().unwrap_or_default();
    let why = format!(
        "its lab agent {other} stopped renewing its lease (no heartbeat for {} s; found by {})",
        host.lease.as_secs(),
        host.name
    );
    store
        .close_open_scenarios(run.id, ScenarioStatus::Interrupted)
        .await?;
    store
        .finish_run(run.id, RunStatus::Interrupted, Some(&why))
        .await?;
    Ok(other)
}

/// Marks the running runs of other agents whose lease ran out interrupted
/// (an agent that died, or lost the database); never signals anything.
/// Every agent does this every few seconds. Returns the runs and agents.
pub async fn interrupt_abandoned_runs(
    store: &Store,
    host: &AgentIdentity,
) -> Result<Vec<(i64, String)>, StoreError> {
    let mut closed = Vec::new();
    // Leases are timed by the database's clock, never this host's.
    for run in store.abandoned_runs(host).await? {
        let other = close_remote_run(store, host, &run).await?;
        tracing::warn!(
            "run {}: agent {other} stopped renewing its lease: marked interrupted",
            run.id
        );
        closed.push((run.id, other));
    }
    Ok(closed)
}

/// Stores the profiles py-spy wrote for a run whose lab died (py-spy was
/// stopped above, and wrote what it sampled).
async fn store_left_profiles(
    store: &Store,
    run: &crate::store::RunRecord,
    dir: &Path,
) -> Result<(), StoreError> {
    let Some(spec) = &run.params.profile else {
        return Ok(());
    };
    for scenario in store.scenarios(run.id).await? {
        let scenario_dir = dir.join(&scenario.name);
        if !is_inside(dir, &scenario_dir) {
            continue;
        }
        let processes = store.processes(scenario.id).await?;
        let stored = crate::profile::capture::store_left_profiles(
            store,
            scenario.id,
            &scenario_dir,
            spec.rate,
            &processes,
        )
        .await?;
        if stored > 0 {
            tracing::info!(
                "run {}: stored {stored} profile(s) of {} that its lab left",
                run.id,
                scenario.name
            );
        }
    }
    Ok(())
}

/// Stops what dead labs of this host left running, closes their runs and
/// those of other hosts whose lease ran out, and reports the ports. Run
/// folders are rewritten only inside `output_root`, for this host's runs.
pub async fn cleanup(
    store: &Store,
    output_root: &Path,
    host: &AgentIdentity,
) -> Result<CleanupReport, StoreError> {
    let mut report = CleanupReport::default();
    // Leases are timed by the database's clock, never this host's.
    let now = store.database_now_ms().await?;
    let mut dead = Vec::new();
    for run in store.running_runs().await? {
        if host.owns(run.agent_id.as_deref()) {
            match run.lab_pid {
                Some(pid) if pid != i64::from(std::process::id()) && is_live_lab(pid) => {
                    report.live_runs.push((run.id, pid));
                }
                _ => dead.push(run),
            }
        } else if run.lease_expires_at.is_some_and(|end| end > now) {
            report
                .remote_live_runs
                .push((run.id, run.agent_id.clone().unwrap_or_default()));
        } else {
            dead.push(run);
        }
    }
    // Only this host's processes, of runs no live lab executes.
    let mut ours: HashMap<i64, bool> = HashMap::new();
    for process in store.open_processes().await? {
        if report
            .live_runs
            .iter()
            .any(|(run, _)| *run == process.run_id)
        {
            continue;
        }
        let mine = match ours.get(&process.run_id) {
            Some(mine) => *mine,
            None => {
                let run = store.run(process.run_id).await?;
                let mine = host.owns(run.as_ref().and_then(|r| r.agent_id.as_deref()));
                ours.insert(process.run_id, mine);
                mine
            }
        };
        if !mine {
            continue;
        }
        let outcome = stop_recorded(store, &process, &mut report.lab_pids).await?;
        report.processes.push((process, outcome));
    }
    for run in dead {
        if !host.owns(run.agent_id.as_deref()) {
            let other = close_remote_run(store, host, &run).await?;
            report.remote_abandoned_runs.push((run.id, other));
            continue;
        }
        let why = "the lab ended without finishing this run (found by cleanup)";
        store
            .close_open_scenarios(run.id, ScenarioStatus::Interrupted)
            .await?;
        store
            .finish_run(run.id, RunStatus::Interrupted, Some(why))
            .await?;
        if let Some(dir) = &run.output_dir {
            let dir = Path::new(dir);
            if is_inside(output_root, dir) {
                store_left_profiles(store, &run, dir).await?;
                // Best effort: the samples are safe in the database either way.
                if let Err(e) = reports::write_run_outputs(store, run.id, None, dir).await {
                    tracing::warn!("run {}: cannot rewrite its files: {e}", run.id);
                }
            } else {
                report
                    .outside_output
                    .push((run.id, dir.display().to_string()));
            }
        }
        report.abandoned_runs.push(run.id);
    }
    report.ports = ports::lab_port_reports(&host.ports, ports::Tables::Host);
    Ok(report)
}
