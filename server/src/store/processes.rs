//! The `processes` table: every child the lab started, recorded before
//! anything else can go wrong (so `cleanup` finds it if the lab dies), and
//! how it ended.

use super::fence;
use super::{with_pool, Result, Store, StoreError};
use crate::clock::now_ms;
use crate::model::ProcessKind;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct ProcessRecord {
    pub id: i64,
    pub scenario_id: i64,
    pub run_id: i64,
    pub name: String,
    pub pid: i64,
    pub start_ticks: i64,
    pub command: String,
    pub log_path: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub exit_status: Option<String>,
}

const PROCESS_COLUMNS: &str = "p.id, p.scenario_id, sc.run_id, p.name, p.pid, p.start_ticks, \
     p.command, p.log_path, p.started_at, p.ended_at, p.exit_status \
     FROM processes p JOIN scenarios sc ON sc.id = p.scenario_id";

/// What the lab knows of a child it just started.
#[derive(Debug, Clone, Copy)]
pub struct NewProcess<'a> {
    pub kind: ProcessKind,
    pub pid: u32,
    pub start_ticks: u64,
    pub command: &'a str,
    pub log_path: &'a str,
}

impl Store {
    /// Records a child the lab started.
    pub async fn record_process(&self, scenario_id: i64, process: NewProcess<'_>) -> Result<i64> {
        let sql = format!(
            "INSERT INTO processes (scenario_id, name, pid, start_ticks, command, log_path, \
             started_at) SELECT $1, $2, $3, $4, $5, $6, $7 WHERE {} RETURNING id",
            fence::guard(8, 9)
        );
        let (run, lease) = self.fence_binds();
        let id: Option<i64> = with_pool!(self, |pool| sqlx::query_scalar(&sql)
            .bind(scenario_id)
            .bind(process.kind.as_str())
            .bind(i64::from(process.pid))
            .bind(process.start_ticks as i64)
            .bind(process.command)
            .bind(process.log_path)
            .bind(now_ms())
            .bind(run)
            .bind(&lease)
            .fetch_optional(pool)
            .await)?;
        id.ok_or(StoreError::LeaseLost(run.unwrap_or_default()))
    }

    pub async fn end_process(&self, process_id: i64, exit_status: &str) -> Result<()> {
        let sql = format!(
            "UPDATE processes SET ended_at = $1, exit_status = $2 WHERE id = $3 AND {}",
            fence::guard(4, 5)
        );
        let (run, lease) = self.fence_binds();
        let rows = with_pool!(self, |pool| sqlx::query(&sql)
            .bind(now_ms())
            .bind(exit_status)
            .bind(process_id)
            .bind(run)
            .bind(&lease)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.fenced_rows(rows)
    }

    /// Processes the lab started whose end it never recorded.
    pub async fn open_processes(&self) -> Result<Vec<ProcessRecord>> {
        let sql = format!("SELECT {PROCESS_COLUMNS} WHERE p.ended_at IS NULL ORDER BY p.id");
        Ok(with_pool!(self, |pool| sqlx::query_as(&sql)
            .fetch_all(pool)
            .await)?)
    }

    pub async fn processes(&self, scenario_id: i64) -> Result<Vec<ProcessRecord>> {
        let sql = format!("SELECT {PROCESS_COLUMNS} WHERE p.scenario_id = $1 ORDER BY p.id");
        Ok(with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(scenario_id)
            .fetch_all(pool)
            .await)?)
    }
}
