//! The `scenarios` table: one row per concurrency of a run, with its status
//! and its figures (kept up to date while it runs, final once it ended).

use super::fence;
use super::{parse_text, with_pool, Result, Store, StoreError};
use crate::clock::now_ms;
use app::api::ScenarioCharts;

use super::bus::BusSummaryRow;
use crate::figures::ScenarioFigures;
use crate::model::{BusSummary, RunParams, ScenarioStatus};
use domain::builds::Slot;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScenarioRecord {
    pub id: i64,
    pub run_id: i64,
    pub position: i64,
    pub name: String,
    pub concurrency: i64,
    pub duration_ms: i64,
    pub spawn_rate: i64,
    pub interval_ms: i64,
    pub status: ScenarioStatus,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub error: Option<String>,
    pub error_log: Option<String>,
    /// Which of the run's builds it measured, and which repeat it was (from 0).
    pub build_index: i64,
    pub repeat_index: i64,
    /// Fixed work: the requests it was to make (`None`: it ran for the
    /// run's duration).
    pub requests: Option<i64>,
    /// What mite's bus carried, and what mite dropped.
    pub bus: BusSummary,
}

#[derive(sqlx::FromRow)]
struct ScenarioRow {
    id: i64,
    run_id: i64,
    position: i64,
    name: String,
    concurrency: i64,
    duration_ms: i64,
    spawn_rate: i64,
    interval_ms: i64,
    status: String,
    started_at: Option<i64>,
    ended_at: Option<i64>,
    error: Option<String>,
    error_log: Option<String>,
    build_index: i64,
    repeat_index: i64,
    requests: Option<i64>,
    #[sqlx(flatten)]
    bus: BusSummaryRow,
}

impl TryFrom<ScenarioRow> for ScenarioRecord {
    type Error = StoreError;
    fn try_from(row: ScenarioRow) -> Result<Self> {
        Ok(ScenarioRecord {
            id: row.id,
            run_id: row.run_id,
            position: row.position,
            name: row.name,
            concurrency: row.concurrency,
            duration_ms: row.duration_ms,
            spawn_rate: row.spawn_rate,
            interval_ms: row.interval_ms,
            status: parse_text(&row.status)?,
            started_at: row.started_at,
            ended_at: row.ended_at,
            error: row.error,
            error_log: row.error_log,
            build_index: row.build_index,
            repeat_index: row.repeat_index,
            requests: row.requests,
            bus: row.bus.into(),
        })
    }
}

const SCENARIO_COLUMNS: &str = "id, run_id, position, name, concurrency, duration_ms, \
     spawn_rate, interval_ms, status, started_at, ended_at, error, error_log, build_index, \
     repeat_index, requests, bus_messages, bus_undecodable, bus_journeys, bus_missed, collector_dropped, \
     bus_reports, bus_reports_short, bus_reader_cpu_ms";

impl Store {
    pub async fn create_scenario(
        &self,
        run_id: i64,
        position: i64,
        slot: Slot,
        params: &RunParams,
    ) -> Result<i64> {
        let name = slot.name(params.builds().len(), params.repeats);
        let sql = format!(
            "INSERT INTO scenarios (run_id, position, name, concurrency, duration_ms, \
             spawn_rate, interval_ms, status, build_index, repeat_index, requests) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 WHERE {} RETURNING id",
            fence::guard(1, 12)
        );
        let (_, lease) = self.fence_binds();
        let id: Option<i64> = with_pool!(self, |pool| sqlx::query_scalar(&sql)
            .bind(run_id)
            .bind(position)
            .bind(&name)
            .bind(i64::from(slot.concurrency))
            .bind(params.duration_ms as i64)
            .bind(i64::from(params.spawn_rate))
            .bind(params.interval_ms as i64)
            .bind(ScenarioStatus::Waiting.as_str())
            .bind(slot.build as i64)
            .bind(i64::from(slot.repeat))
            .bind(slot.requests.and_then(|r| i64::try_from(r).ok()))
            .bind(&lease)
            .fetch_optional(pool)
            .await)?;
        id.ok_or(StoreError::LeaseLost(run_id))
    }

    pub async fn start_scenario(&self, scenario_id: i64, started_at: i64) -> Result<()> {
        let sql = format!(
            "UPDATE scenarios SET status = $1, started_at = $2 WHERE id = $3 AND {}",
            fence::guard(4, 5)
        );
        let (run, lease) = self.fence_binds();
        let rows = with_pool!(self, |pool| sqlx::query(&sql)
            .bind(ScenarioStatus::Running.as_str())
            .bind(started_at)
            .bind(scenario_id)
            .bind(run)
            .bind(&lease)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.fenced_rows(rows)
    }

    /// Records how a scenario ended, with its final figures, so that pages
    /// of long runs need not read every sample again.
    pub async fn finish_scenario(
        &self,
        scenario_id: i64,
        status: ScenarioStatus,
        error: Option<&str>,
        error_log: Option<&str>,
        figures: &ScenarioFigures,
    ) -> Result<()> {
        let figures_json = serde_json::to_string(figures)?;
        let sql = format!(
            "UPDATE scenarios SET status = $1, ended_at = $2, error = $3, error_log = $4, \
             total_requests = $5, figures = $6 WHERE id = $7 AND {}",
            fence::guard(8, 9)
        );
        let (run, lease) = self.fence_binds();
        let rows = with_pool!(self, |pool| sqlx::query(&sql)
            .bind(status.as_str())
            .bind(now_ms())
            .bind(error)
            .bind(error_log)
            .bind(figures.total_requests)
            .bind(&figures_json)
            .bind(scenario_id)
            .bind(run)
            .bind(&lease)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.fenced_rows(rows)
    }

    /// Marks a scenario that will not run as skipped, saying why (a run
    /// that stopped once decided no longer needs it).
    pub async fn skip_scenario(&self, scenario_id: i64, reason: &str) -> Result<()> {
        let sql = format!(
            "UPDATE scenarios SET status = $1, ended_at = $2, error = $3 WHERE id = $4 AND {}",
            fence::guard(5, 6)
        );
        let (run, lease) = self.fence_binds();
        let rows = with_pool!(self, |pool| sqlx::query(&sql)
            .bind(ScenarioStatus::Skipped.as_str())
            .bind(now_ms())
            .bind(reason)
            .bind(scenario_id)
            .bind(run)
            .bind(&lease)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.fenced_rows(rows)
    }

    /// The scenario's figures as last stored: live while it runs, final
    /// once it ended; `None` before its first sample.
    pub async fn stored_figures(&self, scenario_id: i64) -> Result<Option<ScenarioFigures>> {
        let json: Option<Option<String>> = with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT figures FROM scenarios WHERE id = $1"
        )
        .bind(scenario_id)
        .fetch_optional(pool)
        .await)?;
        match json.flatten() {
            Some(json) => Ok(Some(serde_json::from_str(&json)?)),
            None => Ok(None),
        }
    }

    /// Keeps a finished scenario's chart overview.
    pub async fn save_overview(&self, scenario_id: i64, overview: &ScenarioCharts) -> Result<()> {
        let json = serde_json::to_string(overview)?;
        let sql = format!(
            "UPDATE scenarios SET overview = $1 WHERE id = $2 AND {}",
            fence::guard(3, 4)
        );
        let (run, lease) = self.fence_binds();
        let rows = with_pool!(self, |pool| sqlx::query(&sql)
            .bind(&json)
            .bind(scenario_id)
            .bind(run)
            .bind(&lease)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.fenced_rows(rows)
    }

    /// A finished scenario's chart overview, if it was kept.
    pub async fn stored_overview(&self, scenario_id: i64) -> Result<Option<ScenarioCharts>> {
        let json: Option<Option<String>> = with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT overview FROM scenarios WHERE id = $1"
        )
        .bind(scenario_id)
        .fetch_optional(pool)
        .await)?;
        match json.flatten() {
            Some(json) => Ok(Some(serde_json::from_str(&json)?)),
            None => Ok(None),
        }
    }

    pub async fn scenario(&self, scenario_id: i64) -> Result<Option<ScenarioRecord>> {
        let sql = format!("SELECT {SCENARIO_COLUMNS} FROM scenarios WHERE id = $1");
        let row: Option<ScenarioRow> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(scenario_id)
            .fetch_optional(pool)
            .await)?;
        row.map(ScenarioRecord::try_from).transpose()
    }

    pub async fn scenarios(&self, run_id: i64) -> Result<Vec<ScenarioRecord>> {
        let sql =
            format!("SELECT {SCENARIO_COLUMNS} FROM scenarios WHERE run_id = $1 ORDER BY position");
        let rows: Vec<ScenarioRow> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(run_id)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(ScenarioRecord::try_from).collect()
    }

    /// Marks every scenario of a run that never ended with `status` (fenced:
    /// only while the lease holds; none may be open, so no error when none
    /// is changed).
    pub async fn close_open_scenarios(&self, run_id: i64, status: ScenarioStatus) -> Result<()> {
        let sql = format!(
            "UPDATE scenarios SET status = $1, ended_at = $2 WHERE run_id = $3 \
             AND ended_at IS NULL AND {}",
            fence::guard(3, 4)
        );
        let (_, lease) = self.fence_binds();
        with_pool!(self, |pool| sqlx::query(&sql)
            .bind(status.as_str())
            .bind(now_ms())
            .bind(run_id)
            .bind(&lease)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }
}
