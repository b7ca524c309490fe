//! The lab agent: the part of a lab that executes runs. It registers its
//! machine, ports and builds, renews a heartbeat every few seconds, and at
//! each beat marks interrupted the running runs of other agents that have
//! gone silent (never signalling anything of theirs). `serve` is a web
//! front and an agent, `serve --no-agent` only the front, `mite-perf
//! agent` only an agent.

use std::sync::Arc;
use std::time::Duration;

use super::Lab;
use crate::cleanup;
use crate::os_process;
use crate::store::{now_ms, AgentRecord, StoreError};

/// How often an agent says it is alive (and looks for silent ones).
pub const HEARTBEAT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(
        "an agent named {name} already runs on {host} (pid {pid}, heard from {age_s} s ago): \
         give this one another --agent-name (and its own --ports)"
    )]
    NameTaken {
        name: String,
        host: String,
        pid: i64,
        age_s: i64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Lab {
    /// This agent as the agents table shows it.
    fn agent_record(&self) -> AgentRecord {
        let host = &self.setup.host;
        let mut system = sysinfo::System::new();
        system.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
        let cpu_model = system
            .cpus()
            .first()
            .map(|c| c.brand().trim().to_string())
            .unwrap_or_default();
        AgentRecord {
            name: host.name.clone(),
            host_id: host.id.clone(),
            hostname: crate::run::lease::host_name(),
            pid: i64::from(std::process::id()),
            cores: system.cpus().len() as i64,
            cpu_model,
            builds: self
                .setup
                .builds
                .available()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            ports: host.ports.to_string(),
            started_at: 0,
            heartbeat_at: 0,
            current_run: None,
            stopped_at: None,
        }
    }

    /// Registers this agent, refusing a name another live agent holds.
    pub async fn register_agent(&self) -> Result<(), AgentError> {
        let me = self.agent_record();
        if let Some(other) = self.store.agent(&me.name).await? {
            let age_ms = now_ms() - other.heartbeat_at;
            let silent = age_ms > self.setup.host.lease.as_millis() as i64;
            let same_process_gone = other.host_id == me.host_id
                && u32::try_from(other.pid)
                    .map(|pid| !os_process::pid_alive(pid) || pid == std::process::id())
                    .unwrap_or(true);
            if other.stopped_at.is_none() && !silent && !same_process_gone {
                return Err(AgentError::NameTaken {
                    name: other.name,
                    host: other.hostname,
                    pid: other.pid,
                    age_s: age_ms / 1000,
                });
            }
        }
        self.store.register_agent(&me).await?;
        Ok(())
    }

    /// Registers this agent, then executes queued runs and beats until
    /// [`Lab::shut_down`]; the agent is marked stopped at the end.
    pub async fn start_agent(self: &Arc<Self>) -> Result<tokio::task::JoinHandle<()>, AgentError> {
        self.register_agent().await?;
        let worker = self.start_worker();
        let lab = self.clone();
        Ok(tokio::spawn(async move {
            let beats = {
                let lab = lab.clone();
                tokio::spawn(async move { lab.beat().await })
            };
            let _ = worker.await;
            beats.abort();
            let host = &lab.setup.host;
            if let Err(e) = lab
                .store
                .agent_stopped(&host.name, &host.id, i64::from(std::process::id()))
                .await
            {
                tracing::warn!("cannot mark agent {} stopped: {e}", host.name);
            }
        }))
    }

    /// Every [`HEARTBEAT`]: says this agent is alive and what it runs, and
    /// closes the runs of agents that went silent.
    async fn beat(&self) {
        let host = &self.setup.host;
        let pid = i64::from(std::process::id());
        loop {
            match self
                .store
                .agent_heartbeat(&host.name, &host.id, pid, self.current_run())
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    // Silent for longer than a lease, it was taken for dead
                    // and another agent took its name: two agents must not
                    // answer to one name, so this one stops.
                    tracing::error!(
                        "agent {}: another agent registered this name while this one was \
                         silent: stopping",
                        host.name
                    );
                    self.shut_down();
                    return;
                }
                Err(e) => tracing::warn!("agent {}: cannot renew its heartbeat: {e}", host.name),
            }
            if let Err(e) = cleanup::interrupt_abandoned_runs(&self.store, host).await {
                tracing::warn!("cannot look for silent agents' runs: {e}");
            }
            tokio::time::sleep(HEARTBEAT).await;
        }
    }
}
