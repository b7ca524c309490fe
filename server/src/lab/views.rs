//! What the pages see of the lab: the queue, the history, a run, a
//! scenario's charts, the ports.

use app::api::{
    AgentState, AgentView, ChartPoints, LabError, MiteView, PortHolder, PortView, ProcessNow,
    QueueEntry, RunList, RunListItem, RunView, ScenarioCharts, ScenarioView,
};

use super::Lab;
use crate::agent_identity::AgentIdentity;
use crate::figures::scenario_figures;
use crate::model::{RunStatus, ScenarioStatus};
use crate::os_process;
use crate::paths::is_inside;
use crate::ports;
use crate::reports::{chart, collector, transactions};
use crate::store::ProcessRecord;
use crate::store::{AgentRecord, RunRecord, ScenarioRecord};
use domain::validity::validity_flags;

/// Runs per page of the history.
pub const PAGE_SIZE: i64 = 20;
/// The largest history page number asked for that is answered.
const MAX_PAGE: u32 = 1_000_000;

fn queue_entry(run: &RunRecord, position: usize, running: bool) -> QueueEntry {
    QueueEntry {
        id: run.id,
        position,
        running,
        label: run.label.clone(),
        launched_by: run.params.launched_by.clone(),
        created_at: run.created_at,
        concurrencies: run.params.concurrencies.clone(),
        can_cancel: false,
    }
}

/// Checks a chart window of elapsed milliseconds.
pub fn check_window(window: (i64, i64)) -> Result<(i64, i64), LabError> {
    let (from, to) = window;
    if from < 0 {
        return Err(LabError::invalid("window", "starts before the scenario"));
    }
    if to < from {
        return Err(LabError::invalid("window", "ends before it starts"));
    }
    Ok((from, to))
}

/// An agent as the Agents page shows it at `now`: silent once it has not
/// beat for its own lease (`lease_ms`, this lab's, for an agent that kept
/// none: the lease that decides when its runs are taken for abandoned).
pub fn agent_view(agent: AgentRecord, now: i64, lease_ms: i64) -> AgentView {
    let age = now - agent.heartbeat_at;
    let state = if agent.stopped_at.is_some() {
        AgentState::Stopped
    } else if !agent.alive_at(now, lease_ms) {
        AgentState::Silent
    } else if agent.current_run.is_some() {
        AgentState::Running
    } else {
        AgentState::Idle
    };
    AgentView {
        name: agent.name,
        hostname: agent.hostname,
        state,
        heartbeat_age_ms: age.max(0),
        current_run: agent.current_run.filter(|_| state == AgentState::Running),
        cores: agent.cores,
        cpu_model: agent.cpu_model,
        builds: agent
            .builds
            .split(',')
            .filter(|b| !b.is_empty())
            .map(str::to_string)
            .collect(),
        ports: agent.ports,
        started_at: agent.started_at,
    }
}

impl Lab {
    /// The collector folder of a scenario with these processes, if its
    /// collector ran and the folder lies inside this lab's output folder
    /// (the path comes from the database: checked before it is opened).
    pub fn collector_folder(&self, processes: &[ProcessRecord]) -> Option<std::path::PathBuf> {
        let log = processes.iter().find(|p| p.name == "collector")?;
        let dir = collector::folder_of_log(std::path::Path::new(&log.log_path))?;
        is_inside(&self.setup.output_root, &dir).then_some(dir)
    }

    pub async fn agent_views(&self) -> Result<Vec<AgentView>, LabError> {
        // Heartbeats are timed by the database's clock.
        let now = self.store.database_now_ms().await?;
        Ok(self
            .store
            .agents()
            .await?
            .into_iter()
            .map(|a| agent_view(a, now, self.setup.host.lease_ms()))
            .collect())
    }

    pub async fn queue_entries(&self) -> Result<Vec<QueueEntry>, LabError> {
        let mut entries = Vec::new();
        if let Some(id) = self.current_run() {
            if let Some(run) = self.store.run(id).await? {
                entries.push(queue_entry(&run, 0, true));
            }
        }
        let queued = self.store.queued_runs().await?;
        for (i, run) in queued.iter().enumerate() {
            entries.push(queue_entry(run, i + 1, false));
        }
        Ok(entries)
    }

    pub async fn run_list(
        &self,
        page: u32,
        label: &str,
        status: Option<RunStatus>,
    ) -> Result<RunList, LabError> {
        if page > MAX_PAGE {
            return Err(LabError::invalid("page", format!("use 1 to {MAX_PAGE}")));
        }
        if label.len() > 200 {
            return Err(LabError::invalid("label", "keep it under 200 characters"));
        }
        let page = page.max(1);
        let (runs, total) = self
            .store
            .list_runs(label, status, PAGE_SIZE, i64::from(page - 1) * PAGE_SIZE)
            .await?;
        Ok(RunList {
            items: runs
                .into_iter()
                .map(|(run, total_requests)| RunListItem {
                    id: run.id,
                    label: run.label,
                    status: run.status,
                    created_at: run.created_at,
                    started_at: run.started_at,
                    ended_at: run.ended_at,
                    concurrencies: run.params.concurrencies,
                    mite_version: run.environment.mite_version,
                    total_requests,
                })
                .collect(),
            page,
            pages: ((total + PAGE_SIZE - 1) / PAGE_SIZE) as u32,
            total,
        })
    }

    pub async fn run_view(&self, run_id: i64) -> Result<Option<RunView>, LabError> {
        let store = &self.store;
        let Some(run) = store.run(run_id).await? else {
            return Ok(None);
        };
        let mut scenarios = Vec::new();
        for s in store.scenarios(run_id).await? {
            // Kept as samples arrive and final once the scenario ended: the
            // same cost at minute 1 and at hour 24.
            let figures = match store.stored_figures(s.id).await? {
                Some(f) => f,
                None => scenario_figures(&[]),
            };
            let latest = if s.status == ScenarioStatus::Running {
                store.latest_samples(s.id).await?
            } else {
                vec![]
            };
            let elapsed_ms = if s.status == ScenarioStatus::Running {
                latest.first().map(|l| l.elapsed_ms).unwrap_or(0)
            } else {
                (figures.measured_seconds * 1000.0) as i64
            };
            let processes = store.processes(s.id).await?;
            let collector_files = if s.status == ScenarioStatus::Running {
                vec![]
            } else {
                self.collector_folder(&processes)
                    .map(|dir| collector::files(&dir))
                    .unwrap_or_default()
            };
            let logs = processes.into_iter().map(|p| p.name).collect();
            let profiles = store.profiles(s.id).await?;
            scenarios.push(ScenarioView {
                id: s.id,
                name: s.name,
                concurrency: s.concurrency,
                status: s.status,
                duration_ms: s.duration_ms,
                interval_ms: s.interval_ms,
                started_at: s.started_at,
                ended_at: s.ended_at,
                elapsed_ms,
                error: s.error,
                error_log: s.error_log,
                collector_files,
                profiles,
                flags: validity_flags(&figures, &s.bus),
                figures,
                latest: latest
                    .into_iter()
                    .map(|l| ProcessNow {
                        process: l.process,
                        cpu: l.cpu,
                        mem: l.mem,
                    })
                    .collect(),
                logs,
                build_index: s.build_index,
                repeat_index: s.repeat_index,
            });
        }
        let queue_position = if run.status == RunStatus::Queued {
            store.queue_position(run.id).await?
        } else {
            None
        };
        let baseline_run = if run.label.trim().is_empty() {
            None
        } else {
            store.baseline_of(&run.label).await?
        };
        Ok(Some(RunView {
            provenance: run.provenance,
            baseline_run,
            stage: run.stage,
            cancelled_by: run.cancelled_by,
            agent: run
                .agent_id
                .as_deref()
                .map(|id| AgentIdentity::name_of(id).to_string()),
            can_cancel: false,
            id: run.id,
            label: run.label,
            status: run.status,
            created_at: run.created_at,
            started_at: run.started_at,
            ended_at: run.ended_at,
            params: run.params,
            mite_version: run.environment.mite_version,
            python_version: run.environment.python_version,
            host: run.environment.host,
            cores: run.environment.cores,
            output_dir: run.output_dir,
            error: run.error,
            queue_position,
            scenarios,
        }))
    }

    /// A scenario's charts over `window` (elapsed ms) or, without one, its
    /// overview: kept from when it ended, so a finished scenario's page
    /// never reads its samples again.
    pub async fn scenario_charts(
        &self,
        scenario_id: i64,
        window: Option<(i64, i64)>,
    ) -> Result<ScenarioCharts, LabError> {
        let window = window.map(check_window).transpose()?;
        let scenario = self.scenario_record(scenario_id).await?;
        if window.is_none() {
            if let Some(kept) = self.store.stored_overview(scenario_id).await? {
                return Ok(kept);
            }
        }
        chart::scenario_charts(&self.store, &scenario, window)
            .await
            .map_err(LabError::from)
    }

    /// A live scenario's new chart points since `after_ms`.
    pub async fn chart_points(
        &self,
        scenario_id: i64,
        bucket_ms: i64,
        after_ms: i64,
    ) -> Result<ChartPoints, LabError> {
        if bucket_ms <= 0 {
            return Err(LabError::invalid("bucket_ms", "must be above 0"));
        }
        let scenario = self.scenario_record(scenario_id).await?;
        chart::chart_points(&self.store, &scenario, bucket_ms, after_ms)
            .await
            .map_err(LabError::from)
    }

    /// mite's own account of a scenario, from its bus.
    pub async fn mite_view(&self, scenario_id: i64) -> Result<MiteView, LabError> {
        let scenario = self.scenario_record(scenario_id).await?;
        transactions::mite_view(&self.store, &scenario)
            .await
            .map_err(LabError::from)
    }

    async fn scenario_record(&self, scenario_id: i64) -> Result<ScenarioRecord, LabError> {
        self.store
            .scenario(scenario_id)
            .await?
            .ok_or_else(|| LabError::NotFound(format!("no scenario {scenario_id}")))
    }

    /// The ports of every live agent (a web front without an agent shows
    /// the agents' ports, not its own defaults): who holds each, for those
    /// on this machine; the others' are on machines this front cannot see.
    pub async fn port_views(&self) -> Result<Vec<PortView>, LabError> {
        let now = self.store.database_now_ms().await?;
        let lease_ms = self.setup.host.lease_ms();
        let this_machine = crate::agent_identity::host_name();
        let mut sets: Vec<(String, ports::LabPorts, bool)> = self
            .store
            .agents()
            .await?
            .into_iter()
            .filter(|a| a.alive_at(now, lease_ms))
            .filter_map(|a| {
                let seen = a.hostname == this_machine;
                a.ports.parse().ok().map(|p| (a.name, p, seen))
            })
            .collect();
        if sets.is_empty() && self.is_agent() {
            let host = &self.setup.host;
            sets.push((host.name.clone(), host.ports, true));
        }
        let mut views = Vec::new();
        for (agent, ports, seen) in sets {
            if seen {
                views.extend(self.seen_ports(&agent, &ports).await?);
            } else {
                views.extend(ports.purposes().iter().map(|(port, purpose)| PortView {
                    agent: agent.clone(),
                    port: *port,
                    purpose: (*purpose).to_string(),
                    seen: false,
                    holders: Vec::new(),
                }));
            }
        }
        Ok(views)
    }

    /// Who holds `ports` on this machine.
    async fn seen_ports(
        &self,
        agent: &str,
        ports: &ports::LabPorts,
    ) -> Result<Vec<PortView>, LabError> {
        // The lab's processes: those whose end it has not recorded, and
        // what they started in their process groups.
        let lab_pids: Vec<u32> = self
            .store
            .open_processes()
            .await?
            .iter()
            .filter_map(|p| u32::try_from(p.pid).ok())
            .collect();
        Ok(ports::lab_port_reports(ports, ports::Tables::Host)
            .into_iter()
            .map(|r| PortView {
                agent: agent.to_string(),
                port: r.port,
                purpose: r.purpose,
                seen: true,
                holders: r
                    .holders
                    .into_iter()
                    .map(|h| match h.pid {
                        Some(pid) if os_process::in_groups_of(pid, &lab_pids) => PortHolder::Lab {
                            pid,
                            command: h.command,
                        },
                        pid => PortHolder::Foreign {
                            pid,
                            command: h.command,
                        },
                    })
                    .collect(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_windows_are_checked() {
        assert_eq!(check_window((1000, 5000)), Ok((1000, 5000)));
        assert_eq!(check_window((5, 5)), Ok((5, 5)));
        assert!(matches!(
            check_window((5000, 1000)),
            Err(LabError::Invalid { ref field, .. }) if field == "window"
        ));
        assert!(check_window((-1, 10)).is_err());
        assert_eq!(check_window((0, i64::MAX)), Ok((0, i64::MAX)));
    }
}
