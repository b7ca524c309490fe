//! The `agents` table: each lab agent's machine, ports and builds, and its
//! heartbeat.

use super::{with_pool, Result, Store};

/// An agent as registered.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AgentRecord {
    pub name: String,
    /// `name (boot …)`: what its runs record as their executing host.
    pub host_id: String,
    pub hostname: String,
    pub pid: i64,
    pub cores: i64,
    pub cpu_model: String,
    /// The mite builds it has, comma separated.
    pub builds: String,
    /// `TARGET,CONTROLLER,MESSAGE,COLLECTOR`.
    pub ports: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
    pub current_run: Option<i64>,
    pub stopped_at: Option<i64>,
}

const AGENT_COLUMNS: &str = "name, host_id, hostname, pid, cores, cpu_model, builds, ports, \
     started_at, heartbeat_at, current_run, stopped_at";

impl Store {
    /// Registers (or re-registers) an agent, starting now.
    pub async fn register_agent(&self, agent: &AgentRecord) -> Result<()> {
        with_pool!(self, |pool| sqlx::query(
            "INSERT INTO agents (name, host_id, hostname, pid, cores, cpu_model, builds, ports, \
             started_at, heartbeat_at, current_run, stopped_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, NULL, NULL) \
             ON CONFLICT (name) DO UPDATE SET host_id = excluded.host_id, \
             hostname = excluded.hostname, pid = excluded.pid, cores = excluded.cores, \
             cpu_model = excluded.cpu_model, builds = excluded.builds, ports = excluded.ports, \
             started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, \
             current_run = NULL, stopped_at = NULL"
        )
        .bind(&agent.name)
        .bind(&agent.host_id)
        .bind(&agent.hostname)
        .bind(agent.pid)
        .bind(agent.cores)
        .bind(&agent.cpu_model)
        .bind(&agent.builds)
        .bind(&agent.ports)
        .bind(super::now_ms())
        .execute(pool)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Renews agent `name`'s heartbeat (as `host_id`, process `pid`) with
    /// the run it executes; `false` when the name now belongs to another
    /// agent (which registered it since).
    pub async fn agent_heartbeat(
        &self,
        name: &str,
        host_id: &str,
        pid: i64,
        current_run: Option<i64>,
    ) -> Result<bool> {
        let done = with_pool!(self, |pool| sqlx::query(
            "UPDATE agents SET heartbeat_at = $4, current_run = $5 \
             WHERE name = $1 AND host_id = $2 AND pid = $3"
        )
        .bind(name)
        .bind(host_id)
        .bind(pid)
        .bind(super::now_ms())
        .bind(current_run)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Notes that an agent stopped (it ended cleanly).
    pub async fn agent_stopped(&self, name: &str, host_id: &str, pid: i64) -> Result<()> {
        with_pool!(self, |pool| sqlx::query(
            "UPDATE agents SET stopped_at = $4, current_run = NULL \
             WHERE name = $1 AND host_id = $2 AND pid = $3"
        )
        .bind(name)
        .bind(host_id)
        .bind(pid)
        .bind(super::now_ms())
        .execute(pool)
        .await
        .map(drop))?;
        Ok(())
    }

    pub async fn agents(&self) -> Result<Vec<AgentRecord>> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents ORDER BY name");
        Ok(with_pool!(self, |pool| sqlx::query_as(&sql)
            .fetch_all(pool)
            .await)?)
    }

    pub async fn agent(&self, name: &str) -> Result<Option<AgentRecord>> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE name = $1");
        Ok(with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(name)
            .fetch_optional(pool)
            .await)?)
    }
}
