//! The `runs` table: what each run asked for, where it stands, and the queue
//! (runs waiting with status `queued`, oldest first).

use super::fence::{self, Fence};
use super::{parse_text, with_pool, Result, Store, StoreError};
use crate::agent_identity::AgentIdentity;
use crate::clock::now_ms;
use crate::model::{RunParams, RunStatus};
use domain::provenance::Provenance;

/// The machine and software a run measured.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunEnvironment {
    pub mite_version: String,
    pub python_version: String,
    pub host: String,
    pub cores: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunRecord {
    pub id: i64,
    pub label: String,
    pub status: RunStatus,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub params: RunParams,
    pub output_dir: Option<String>,
    pub environment: RunEnvironment,
    pub lab_pid: Option<i64>,
    pub error: Option<String>,
    /// What it measured, in full (absent for runs older than provenance,
    /// and until the run has started).
    pub provenance: Option<Provenance>,
    /// What it does before its first scenario (installing a mite build).
    pub stage: Option<String>,
    /// The agent executing it ([`crate::agent_identity::AgentIdentity`]), and
    /// until when its lease holds (ms since the epoch).
    pub agent_id: Option<String>,
    pub lease_expires_at: Option<i64>,
    /// The id of that lease ([`Fence`]).
    pub lease_id: Option<String>,
    /// Someone asked to cancel it (on any host).
    pub cancel_requested: bool,
    /// Who cancelled it.
    pub cancelled_by: Option<String>,
}

impl RunRecord {
    /// The lease its executing agent holds, once claimed.
    pub fn fence(&self) -> Option<Fence> {
        self.lease_id.clone().map(|lease_id| Fence {
            run_id: self.id,
            lease_id,
        })
    }
}

/// What renewing a lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// Still the agent's, and renewed.
    Held,
    /// Still the agent's, renewed, and someone asked (on any host) to cancel it.
    CancelAsked,
    /// No longer the agent's: another agent marked it interrupted, or it ended.
    Lost,
}

/// A `runs` row as stored.
#[derive(sqlx::FromRow)]
struct RunRow {
    id: i64,
    label: String,
    status: String,
    created_at: i64,
    started_at: Option<i64>,
    ended_at: Option<i64>,
    params: String,
    output_dir: Option<String>,
    mite_version: Option<String>,
    python_version: Option<String>,
    host: Option<String>,
    cores: Option<i64>,
    lab_pid: Option<i64>,
    error: Option<String>,
    provenance: Option<String>,
    stage: Option<String>,
    agent_id: Option<String>,
    lease_expires_at: Option<i64>,
    lease_id: Option<String>,
    cancel_requested: bool,
    cancelled_by: Option<String>,
}

impl TryFrom<RunRow> for RunRecord {
    type Error = StoreError;
    fn try_from(row: RunRow) -> Result<Self> {
        Ok(RunRecord {
            id: row.id,
            label: row.label,
            status: parse_text(&row.status)?,
            created_at: row.created_at,
            started_at: row.started_at,
            ended_at: row.ended_at,
            params: serde_json::from_str(&row.params)?,
            output_dir: row.output_dir,
            environment: RunEnvironment {
                mite_version: row.mite_version.unwrap_or_default(),
                python_version: row.python_version.unwrap_or_default(),
                host: row.host.unwrap_or_default(),
                cores: row.cores.unwrap_or_default(),
            },
            lab_pid: row.lab_pid,
            error: row.error,
            provenance: row
                .provenance
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            stage: row.stage,
            agent_id: row.agent_id,
            lease_expires_at: row.lease_expires_at,
            lease_id: row.lease_id,
            cancel_requested: row.cancel_requested,
            cancelled_by: row.cancelled_by,
        })
    }
}

/// A run in the history, with the requests its scenarios served.
#[derive(sqlx::FromRow)]
struct RunListRow {
    #[sqlx(flatten)]
    run: RunRow,
    total_requests: i64,
}

const RUN_COLUMNS: &str = "id, label, status, created_at, started_at, ended_at, params, \
     output_dir, mite_version, python_version, host, cores, lab_pid, error, provenance, stage, agent_id, lease_expires_at, \
     lease_id, cancel_requested, cancelled_by";

fn records(rows: Vec<RunRow>) -> Result<Vec<RunRecord>> {
    rows.into_iter().map(RunRecord::try_from).collect()
}

impl Store {
    pub async fn create_run(&self, params: &RunParams, status: RunStatus) -> Result<i64> {
        let params_json = serde_json::to_string(params)?;
        let id: i64 = with_pool!(self, |pool| sqlx::query_scalar(
            "INSERT INTO runs (label, status, created_at, params, wanted_agent) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&params.label)
        .bind(status.as_str())
        .bind(now_ms())
        .bind(&params_json)
        .bind(&params.agent)
        .fetch_one(pool)
        .await)?;
        // The label is claimed once a run of it finishes (`finish_run`).
        Ok(id)
    }

    pub async fn start_run(
        &self,
        run_id: i64,
        env: &RunEnvironment,
        output_dir: &str,
        lab_pid: u32,
    ) -> Result<()> {
        // Fenced, only a run still running under the lease: an interrupted
        // run is never brought back.
        let sql = format!(
            "UPDATE runs SET status = $1, started_at = $2, output_dir = $3, mite_version = $4, \
             python_version = $5, host = $6, cores = $7, lab_pid = $8, stage = NULL \
             WHERE id = $9 AND {}",
            fence::guard(9, 10)
        );
        let (_, lease) = self.fence_binds();
        let rows = with_pool!(self, |pool| sqlx::query(&sql)
            .bind(RunStatus::Running.as_str())
            .bind(now_ms())
            .bind(output_dir)
            .bind(&env.mite_version)
            .bind(&env.python_version)
            .bind(&env.host)
            .bind(env.cores)
            .bind(i64::from(lab_pid))
            .bind(run_id)
            .bind(&lease)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.fenced_rows(rows)
    }

    /// Keeps what the run measures (once its builds are installed).
    pub async fn save_provenance(&self, run_id: i64, provenance: &Provenance) -> Result<()> {
        let json = serde_json::to_string(provenance)?;
        let sql = format!(
            "UPDATE runs SET provenance = $1 WHERE id = $2 AND {}",
            fence::guard(2, 3)
        );
        let (_, lease) = self.fence_binds();
        let rows = with_pool!(self, |pool| sqlx::query(&sql)
            .bind(&json)
            .bind(run_id)
            .bind(&lease)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.fenced_rows(rows)
    }

    pub async fn finish_run(
        &self,
        run_id: i64,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<()> {
        // Only a running run: one another agent has marked interrupted
        // (its lease ran out) is never overwritten by its late executor;
        // fenced, only while the lease is the agent's.
        let sql = format!(
            "UPDATE runs SET status = $1, ended_at = $2, error = $3, stage = NULL \
             WHERE id = $4 AND status = $5 AND {}",
            fence::guard(4, 6)
        );
        let (_, lease) = self.fence_binds();
        let rows = with_pool!(self, |pool| sqlx::query(&sql)
            .bind(status.as_str())
            .bind(now_ms())
            .bind(error)
            .bind(run_id)
            .bind(RunStatus::Running.as_str())
            .bind(&lease)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.fenced_rows(rows)?;
        if rows > 0 && status == RunStatus::Done {
            // A label is owned once a run of it finished, by its launcher
            // if the label has no owner yet. The run's end stands whatever
            // happens to the claim.
            let claimed = match self.run(run_id).await {
                Ok(Some(run)) => self.claim_label(&run.label, &run.params.launched_by).await,
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = claimed {
                tracing::warn!(run_id, "cannot claim the finished run's label: {e}");
            }
        }
        Ok(())
    }

    /// Says what a run that has not started its scenarios does (installing
    /// a mite build); cleared when it starts or ends, and not set after.
    pub async fn set_run_stage(&self, run_id: i64, stage: &str) -> Result<()> {
        let sql = format!(
            "UPDATE runs SET stage = $1 WHERE id = $2 AND status = $3 AND started_at IS NULL \
             AND {}",
            fence::guard(2, 4)
        );
        let (_, lease) = self.fence_binds();
        with_pool!(self, |pool| sqlx::query(&sql)
            .bind(stage)
            .bind(run_id)
            .bind(RunStatus::Running.as_str())
            .bind(&lease)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    pub async fn run(&self, run_id: i64) -> Result<Option<RunRecord>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
        let row: Option<RunRow> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(run_id)
            .fetch_optional(pool)
            .await)?;
        row.map(RunRecord::try_from).transpose()
    }

    async fn runs_with_status(&self, status: RunStatus) -> Result<Vec<RunRecord>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE status = $1 ORDER BY id");
        let rows: Vec<RunRow> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(status.as_str())
            .fetch_all(pool)
            .await)?;
        records(rows)
    }

    /// Runs still marked as running (for `cleanup` to find abandoned ones).
    pub async fn running_runs(&self) -> Result<Vec<RunRecord>> {
        self.runs_with_status(RunStatus::Running).await
    }

    /// Runs waiting for their turn, oldest first.
    pub async fn queued_runs(&self) -> Result<Vec<RunRecord>> {
        self.runs_with_status(RunStatus::Queued).await
    }

    /// How many runs there are of each status.
    pub async fn run_counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(with_pool!(self, |pool| sqlx::query_as(
            "SELECT status, COUNT(*) FROM runs GROUP BY status ORDER BY status"
        )
        .fetch_all(pool)
        .await)?)
    }

    /// How many runs wait in the queue.
    pub async fn queued_count(&self) -> Result<i64> {
        let n: i64 = with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM runs WHERE status = $1"
        )
        .bind(RunStatus::Queued.as_str())
        .fetch_one(pool)
        .await)?;
        Ok(n)
    }

    /// How many queued runs `launcher` launched (the queue is short: its
    /// runs' parameters are read, whatever the backend's JSON).
    pub async fn queued_count_by(&self, launcher: &str) -> Result<i64> {
        let params: Vec<String> = with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT params FROM runs WHERE status = $1"
        )
        .bind(RunStatus::Queued.as_str())
        .fetch_all(pool)
        .await)?;
        let mut n = 0;
        for text in params {
            let params: RunParams = serde_json::from_str(&text)?;
            n += i64::from(params.launched_by == launcher);
        }
        Ok(n)
    }

    /// Where a queued run stands in line (1 is next), if it is queued.
    pub async fn queue_position(&self, run_id: i64) -> Result<Option<usize>> {
        let position: Option<i64> = with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM runs b WHERE b.status = $1 AND b.id <= r.id) \
             FROM runs r WHERE r.id = $2 AND r.status = $1"
        )
        .bind(RunStatus::Queued.as_str())
        .bind(run_id)
        .fetch_optional(pool)
        .await)?;
        Ok(position.map(|p| p as usize))
    }

    /// Takes the oldest queued run off the queue that `host` may execute
    /// (any agent's, or one asked of it by name), marking it running, with
    /// `lab_pid` and a lease. Hosts sharing a database never
    /// take the same run: PostgreSQL skips rows another host is taking,
    /// SQLite writes one transaction at a time.
    pub async fn claim_next_queued(
        &self,
        host: &AgentIdentity,
        lab_pid: u32,
    ) -> Result<Option<RunRecord>> {
        // PostgreSQL skips a row another host's claim holds; SQLite's
        // writers take turns, so the subquery's row is still queued.
        let pick = match self.backend() {
            super::Backend::Postgres => "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)",
            super::Backend::Sqlite => "ORDER BY id LIMIT 1) AND status = $2",
        };
        let sql = format!(
            "UPDATE runs SET status = $1, agent_id = $3, lab_pid = $4, \
             lease_expires_at = {now} + $5, lease_id = $7 \
             WHERE id = (SELECT id FROM runs WHERE status = $2 \
             AND (wanted_agent IS NULL OR wanted_agent = $6) {pick} RETURNING id",
            now = self.now_sql()
        );
        let lease_id = Fence::new_id()?;
        let id: Option<i64> = with_pool!(self, |pool| sqlx::query_scalar(&sql)
            .bind(RunStatus::Running.as_str())
            .bind(RunStatus::Queued.as_str())
            .bind(&host.id)
            .bind(i64::from(lab_pid))
            .bind(host.lease_ms())
            .bind(&host.name)
            .bind(&lease_id)
            .fetch_optional(pool)
            .await)?;
        match id {
            Some(id) => self.run(id).await,
            None => Ok(None),
        }
    }

    /// Names `host` (and `lab_pid`) as executing running run `run_id`, with
    /// a lease of its own: for a run started outside the queue (`mite-perf
    /// run`), which no lease holds yet. The lease, or
    /// [`StoreError::LeaseLost`] when another holds the run or it no
    /// longer runs.
    pub async fn lease_run(
        &self,
        run_id: i64,
        host: &AgentIdentity,
        lab_pid: u32,
    ) -> Result<Fence> {
        let sql = format!(
            "UPDATE runs SET agent_id = $1, lab_pid = $2, lease_expires_at = {now} + $3, \
             lease_id = $6 WHERE id = $4 AND status = $5 AND lease_id IS NULL",
            now = self.now_sql()
        );
        let fence = Fence {
            run_id,
            lease_id: Fence::new_id()?,
        };
        let rows = with_pool!(self, |pool| sqlx::query(&sql)
            .bind(&host.id)
            .bind(i64::from(lab_pid))
            .bind(host.lease_ms())
            .bind(run_id)
            .bind(RunStatus::Running.as_str())
            .bind(&fence.lease_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if rows == 0 {
            return Err(StoreError::LeaseLost(run_id));
        }
        Ok(fence)
    }

    /// Renews the lease this store is fenced with, by `host`'s lease time
    /// on the database's clock, and reads whether a cancel was asked.
    pub async fn renew_lease(&self, host: &AgentIdentity) -> Result<LeaseState> {
        let Some(fence) = self.fence() else {
            return Err(StoreError::Invalid(
                "renewing a lease needs a store fenced with it".into(),
            ));
        };
        let sql = format!(
            "UPDATE runs SET lease_expires_at = {now} + $1 \
             WHERE id = $2 AND status = $3 AND lease_id = $4 RETURNING cancel_requested",
            now = self.now_sql()
        );
        let cancel: Option<bool> = with_pool!(self, |pool| sqlx::query_scalar(&sql)
            .bind(host.lease_ms())
            .bind(fence.run_id)
            .bind(RunStatus::Running.as_str())
            .bind(&fence.lease_id)
            .fetch_optional(pool)
            .await)?;
        Ok(match cancel {
            None => LeaseState::Lost,
            Some(true) => LeaseState::CancelAsked,
            Some(false) => LeaseState::Held,
        })
    }

    /// Running runs that are not `host`'s and whose lease ran out by the
    /// database's clock: their agent went silent.
    pub async fn abandoned_runs(&self, host: &AgentIdentity) -> Result<Vec<RunRecord>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE status = $1 AND agent_id IS NOT NULL \
             AND agent_id <> $2 AND lease_expires_at IS NOT NULL \
             AND lease_expires_at <= {now} ORDER BY id",
            now = self.now_sql()
        );
        let rows: Vec<RunRow> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(RunStatus::Running.as_str())
            .bind(&host.id)
            .fetch_all(pool)
            .await)?;
        records(rows)
    }

    /// Asks whichever host executes running run `run_id` to cancel it;
    /// returns whether it is running.
    pub async fn request_cancel(&self, run_id: i64) -> Result<bool> {
        let done = with_pool!(self, |pool| sqlx::query(
            "UPDATE runs SET cancel_requested = TRUE WHERE id = $1 AND status = $2"
        )
        .bind(run_id)
        .bind(RunStatus::Running.as_str())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Notes who cancelled a queued or running run; returns whether it is one.
    pub async fn set_cancelled_by(&self, run_id: i64, who: &str) -> Result<bool> {
        let done = with_pool!(self, |pool| sqlx::query(
            "UPDATE runs SET cancelled_by = $2 WHERE id = $1 AND status IN ($3, $4)"
        )
        .bind(run_id)
        .bind(who)
        .bind(RunStatus::Queued.as_str())
        .bind(RunStatus::Running.as_str())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Deletes a run if it is still queued; returns whether it was.
    pub async fn delete_queued(&self, run_id: i64) -> Result<bool> {
        let done = with_pool!(self, |pool| sqlx::query(
            "DELETE FROM runs WHERE id = $1 AND status = $2"
        )
        .bind(run_id)
        .bind(RunStatus::Queued.as_str())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// A page of runs, newest first, with their total requests; and how many match.
    pub async fn list_runs(
        &self,
        label: &str,
        status: Option<RunStatus>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<(RunRecord, i64)>, i64)> {
        let pattern = format!("%{}%", label.to_lowercase());
        let status = status.map(|s| s.as_str()).unwrap_or("");
        let filter = "WHERE LOWER(label) LIKE $1 AND ($2 = '' OR status = $2)";
        let sql = format!(
            "SELECT {RUN_COLUMNS}, (SELECT CAST(COALESCE(SUM(total_requests), 0) AS BIGINT) \
             FROM scenarios WHERE scenarios.run_id = runs.id) AS total_requests FROM runs \
             {filter} ORDER BY id DESC LIMIT $3 OFFSET $4"
        );
        let rows: Vec<RunListRow> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(&pattern)
            .bind(status)
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await)?;
        let runs = rows
            .into_iter()
            .map(|r| Ok((RunRecord::try_from(r.run)?, r.total_requests)))
            .collect::<Result<Vec<_>>>()?;
        let count_sql = format!("SELECT COUNT(*) FROM runs {filter}");
        let total: i64 = with_pool!(self, |pool| sqlx::query_scalar(&count_sql)
            .bind(&pattern)
            .bind(status)
            .fetch_one(pool)
            .await)?;
        Ok((runs, total))
    }
}
