//! The `agents` table: each lab agent's machine, ports and builds, and its
//! heartbeat.

use super::{with_pool, Result, Store};
use crate::clock::now_ms;

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
    /// The agent's own lease (ms): it holds its name (and its runs) while
    /// it beat within it. `None` for an agent from before it was kept.
    pub lease_ms: Option<i64>,
}

impl AgentRecord {
    /// Whether the agent is alive at `now` (the database's clock): not
    /// stopped, and it beat within its own lease (`fallback_ms` for an
    /// agent that did not say).
    pub fn alive_at(&self, now: i64, fallback_ms: i64) -> bool {
        self.stopped_at.is_none() && now - self.heartbeat_at <= self.lease_ms.unwrap_or(fallback_ms)
    }
}

const AGENT_COLUMNS: &str = "name, host_id, hostname, pid, cores, cpu_model, builds, ports, \
     started_at, heartbeat_at, current_run, stopped_at, lease_ms";

/// The upsert of an agent's row (with its own lease, `$12` ms), starting
/// now on the database's clock. An existing row (another agent's) is
/// taken over only when `$11` says so, or that agent stopped, or it beat
/// longer ago than ITS OWN lease by the database's clock (`$9` ms for a
/// row from before leases were kept), or it is process `$10` on the same
/// host id. Never by the newcomer's lease: a newcomer with a lease shorter
/// than the holder's heartbeat took a live agent's name, and the holder
/// stopped mid-run (FAULTS.md 53).
const REGISTER: &str = "INSERT INTO agents (name, host_id, hostname, pid, cores, cpu_model, \
     builds, ports, started_at, heartbeat_at, current_run, stopped_at, lease_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, {now}, {now}, NULL, NULL, $12) \
     ON CONFLICT (name) DO UPDATE SET host_id = excluded.host_id, \
     hostname = excluded.hostname, pid = excluded.pid, cores = excluded.cores, \
     cpu_model = excluded.cpu_model, builds = excluded.builds, ports = excluded.ports, \
     started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, \
     current_run = NULL, stopped_at = NULL, lease_ms = excluded.lease_ms \
     WHERE $11 OR agents.stopped_at IS NOT NULL \
     OR agents.heartbeat_at <= {now} - COALESCE(agents.lease_ms, $9) \
     OR (agents.host_id = $2 AND agents.pid = $10)";

impl Store {
    /// Registers (or re-registers) an agent, whoever held its name.
    pub async fn register_agent(&self, agent: &AgentRecord) -> Result<()> {
        self.upsert_agent(agent, 0, None, true).await.map(drop)
    }

    /// Registers an agent under its name unless another agent holds the
    /// name: one that stopped, or beat longer ago than its own lease by
    /// the database's clock (`lease_ms`, the newcomer's, only for a holder
    /// that kept none), or is this agent's predecessor `dead_pid` on the
    /// same host id (same boot and PID namespace: its death was seen in
    /// `/proc`) gives it up. Atomic; `false` when the name is taken.
    pub async fn claim_agent_name(
        &self,
        agent: &AgentRecord,
        lease_ms: i64,
        dead_pid: Option<i64>,
    ) -> Result<bool> {
        self.upsert_agent(agent, lease_ms, dead_pid, false)
            .await
            .map(|rows| rows > 0)
    }

    async fn upsert_agent(
        &self,
        agent: &AgentRecord,
        lease_ms: i64,
        dead_pid: Option<i64>,
        force: bool,
    ) -> Result<u64> {
        let sql = REGISTER.replace("{now}", self.now_sql());
        Ok(with_pool!(self, |pool| sqlx::query(&sql)
            .bind(&agent.name)
            .bind(&agent.host_id)
            .bind(&agent.hostname)
            .bind(agent.pid)
            .bind(agent.cores)
            .bind(&agent.cpu_model)
            .bind(&agent.builds)
            .bind(&agent.ports)
            .bind(lease_ms)
            .bind(dead_pid)
            .bind(force)
            .bind(agent.lease_ms)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?)
    }

    /// How many agents beat within their own lease (`lease_ms` for one
    /// that kept none), by the database's clock, and have not stopped.
    pub async fn agents_alive(&self, lease_ms: i64) -> Result<i64> {
        let sql = format!(
            "SELECT COUNT(*) FROM agents WHERE stopped_at IS NULL \
             AND heartbeat_at > {now} - COALESCE(lease_ms, $1)",
            now = self.now_sql()
        );
        Ok(with_pool!(self, |pool| sqlx::query_scalar(&sql)
            .bind(lease_ms)
            .fetch_one(pool)
            .await)?)
    }

    /// How long ago agent `name` last beat, by the database's clock.
    pub async fn agent_silence_ms(&self, name: &str) -> Result<Option<i64>> {
        let sql = format!(
            "SELECT {now} - heartbeat_at FROM agents WHERE name = $1",
            now = self.now_sql()
        );
        Ok(with_pool!(self, |pool| sqlx::query_scalar(&sql)
            .bind(name)
            .fetch_optional(pool)
            .await)?)
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
        let sql = format!(
            "UPDATE agents SET heartbeat_at = {now}, current_run = $4 \
             WHERE name = $1 AND host_id = $2 AND pid = $3",
            now = self.now_sql()
        );
        let done = with_pool!(self, |pool| sqlx::query(&sql)
            .bind(name)
            .bind(host_id)
            .bind(pid)
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
        .bind(now_ms())
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
