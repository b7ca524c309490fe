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
use crate::store::{AgentRecord, StoreError};

/// How often an agent says it is alive (and looks for silent ones).
pub const HEARTBEAT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(
        "an agent named {name} already runs on {host} (pid {pid}, heard from {age_s} s ago): \
         give this one another --agent-name (and its own --ports), or, if that agent is gone, \
         wait until it has been silent for a lease"
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
            hostname: crate::agent_identity::host_name(),
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
            lease_ms: Some(host.lease_ms()),
        }
    }

    /// Registers this agent, refusing a name another live agent holds: one
    /// that beat within a lease by the database's clock, unless it is this
    /// agent's own predecessor on the same host id (same boot, same PID
    /// namespace) whose process is gone. An agent that cannot see another's
    /// processes (another machine, another PID namespace) never takes its
    /// name while it beats.
    pub async fn register_agent(&self) -> Result<(), AgentError> {
        let me = self.agent_record();
        let dead_predecessor = match self.store.agent(&me.name).await? {
            Some(other) if other.host_id == me.host_id => u32::try_from(other.pid)
                .ok()
                .filter(|&pid| !os_process::pid_alive(pid) || pid == std::process::id())
                .map(i64::from),
            _ => None,
        };
        let lease_ms = self.setup.host.lease_ms();
        if self
            .store
            .claim_agent_name(&me, lease_ms, dead_predecessor)
            .await?
        {
            return Ok(());
        }
        let other = self.store.agent(&me.name).await?;
        let silence_ms = self.store.agent_silence_ms(&me.name).await?;
        Err(AgentError::NameTaken {
            name: me.name,
            host: other
                .as_ref()
                .map_or_else(String::new, |o| o.hostname.clone()),
            pid: other.as_ref().map_or(0, |o| o.pid),
            age_s: silence_ms.unwrap_or_default() / 1000,
        })
    }

    /// Executes queued runs and beats until [`Lab::shut_down`], once
    /// registered ([`Lab::register_agent`]); the agent is marked stopped
    /// at the end.
    pub fn start_agent(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let worker = self.start_worker();
        let lab = self.clone();
        tokio::spawn(async move {
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
        })
    }

    /// Every [`HEARTBEAT`] (or a quarter of its lease, when shorter): says this agent is alive and what it runs, and
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
            tokio::time::sleep(HEARTBEAT.min(host.renew_every())).await;
        }
    }
}
