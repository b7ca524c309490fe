//! Runs, scenarios, processes and samples in a database: SQLite by default,
//! PostgreSQL for a shared lab. One set of queries serves both (sqlx's `Any`
//! driver); the schema lives in `migrations/sqlite` and `migrations/postgres`.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::figures::{scenario_figures, ScenarioFigures};
use crate::model::{ProcessKind, RunParams, RunStatus, Sample, ScenarioStatus};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL `{0}` is not supported: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot apply the schema migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("stored run parameters are unreadable: {0}")]
    Params(#[from] serde_json::Error),
    #[error("stored value is invalid: {0}")]
    Invalid(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Milliseconds since the unix epoch, the lab's stored time format.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

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
}

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
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// A sample with its scenario, as a CSV row.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRow {
    pub scenario: String,
    pub concurrency: i64,
    pub sample: Sample,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

const RUN_COLUMNS: &str =
    "id, label, status, created_at, started_at, ended_at, params, output_dir, \
     mite_version, python_version, host, cores, lab_pid, error";
const SCENARIO_COLUMNS: &str = "id, run_id, position, name, concurrency, duration_ms, spawn_rate, \
     interval_ms, status, started_at, ended_at, error, error_log";
const RUN_SAMPLE_ROWS: &str = "SELECT sc.name, sc.concurrency, s.process, s.pid, s.at_ms, \
     s.elapsed_ms, s.cpu, s.mem, s.requests, s.requests_in_interval FROM samples s \
     JOIN scenarios sc ON sc.id = s.scenario_id \
     WHERE sc.run_id = $1 ORDER BY sc.position, s.elapsed_ms, s.process";
const SCENARIO_SAMPLE_ROWS: &str = "SELECT sc.name, sc.concurrency, s.process, s.pid, s.at_ms, \
     s.elapsed_ms, s.cpu, s.mem, s.requests, s.requests_in_interval FROM samples s \
     JOIN scenarios sc ON sc.id = s.scenario_id \
     WHERE sc.id = $1 ORDER BY s.elapsed_ms, s.process";
const PROCESS_COLUMNS: &str = "p.id, p.scenario_id, sc.run_id, p.name, p.pid, p.start_ticks, \
     p.command, p.log_path, p.started_at, p.ended_at, p.exit_status \
     FROM processes p JOIN scenarios sc ON sc.id = p.scenario_id";

impl Store {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or(path);
            if path != ":memory:" {
                if let Some(parent) = Path::new(path).parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent).map_err(|source| {
                            StoreError::CreateDir {
                                path: parent.display().to_string(),
                                source,
                            }
                        })?;
                    }
                }
            }
            let sep = if url.contains('?') { '&' } else { '?' };
            (Backend::Sqlite, format!("sqlite://{path}{sep}mode=rwc"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .connect(&url)
            .await
            .map_err(StoreError::Connect)?;
        if backend == Backend::Sqlite {
            // WAL lets the web pages read while a run writes samples.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
        }
        match backend {
            Backend::Sqlite => sqlx::migrate!("../migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("../migrations/postgres").run(&pool).await?,
        }
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn create_run(&self, params: &RunParams, status: RunStatus) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO runs (label, status, created_at, params) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(&params.label)
        .bind(status.as_str())
        .bind(now_ms())
        .bind(serde_json::to_string(params)?)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    pub async fn start_run(
        &self,
        run_id: i64,
        env: &RunEnvironment,
        output_dir: &str,
        lab_pid: u32,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE runs SET status = $1, started_at = $2, output_dir = $3, mite_version = $4, \
             python_version = $5, host = $6, cores = $7, lab_pid = $8 WHERE id = $9",
        )
        .bind(RunStatus::Running.as_str())
        .bind(now_ms())
        .bind(output_dir)
        .bind(&env.mite_version)
        .bind(&env.python_version)
        .bind(&env.host)
        .bind(env.cores)
        .bind(i64::from(lab_pid))
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn finish_run(
        &self,
        run_id: i64,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query("UPDATE runs SET status = $1, ended_at = $2, error = $3 WHERE id = $4")
            .bind(status.as_str())
            .bind(now_ms())
            .bind(error)
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn run(&self, run_id: i64) -> Result<Option<RunRecord>> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| run_from_row(&r)).transpose()
    }

    /// Runs still marked as running (for `cleanup` to find abandoned ones).
    pub async fn running_runs(&self) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE status = $1 ORDER BY id"
        ))
        .bind(RunStatus::Running.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    pub async fn create_scenario(
        &self,
        run_id: i64,
        position: i64,
        concurrency: u32,
        params: &RunParams,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO scenarios (run_id, position, name, concurrency, duration_ms, spawn_rate, \
             interval_ms, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(run_id)
        .bind(position)
        .bind(crate::model::scenario_name(concurrency))
        .bind(i64::from(concurrency))
        .bind(params.duration_ms as i64)
        .bind(i64::from(params.spawn_rate))
        .bind(params.interval_ms as i64)
        .bind(ScenarioStatus::Waiting.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    pub async fn start_scenario(&self, scenario_id: i64, started_at: i64) -> Result<()> {
        sqlx::query("UPDATE scenarios SET status = $1, started_at = $2 WHERE id = $3")
            .bind(ScenarioStatus::Running.as_str())
            .bind(started_at)
            .bind(scenario_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records how a scenario ended, with its figures (computed once here so
    /// pages of long runs need not read every sample again).
    pub async fn finish_scenario(
        &self,
        scenario_id: i64,
        status: ScenarioStatus,
        error: Option<&str>,
        error_log: Option<&str>,
    ) -> Result<()> {
        let interval: i64 = sqlx::query("SELECT interval_ms FROM scenarios WHERE id = $1")
            .bind(scenario_id)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let figures = scenario_figures(&self.scenario_samples(scenario_id).await?, interval);
        sqlx::query(
            "UPDATE scenarios SET status = $1, ended_at = $2, error = $3, error_log = $4, \
             total_requests = $5, figures = $6 WHERE id = $7",
        )
        .bind(status.as_str())
        .bind(now_ms())
        .bind(error)
        .bind(error_log)
        .bind(figures.total_requests)
        .bind(serde_json::to_string(&figures)?)
        .bind(scenario_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The figures stored when the scenario ended, if it has.
    pub async fn stored_figures(&self, scenario_id: i64) -> Result<Option<ScenarioFigures>> {
        let row = sqlx::query("SELECT figures FROM scenarios WHERE id = $1")
            .bind(scenario_id)
            .fetch_optional(&self.pool)
            .await?;
        match row
            .map(|r| r.try_get::<Option<String>, _>(0))
            .transpose()?
            .flatten()
        {
            Some(json) => Ok(Some(serde_json::from_str(&json)?)),
            None => Ok(None),
        }
    }

    /// Runs waiting for their turn, oldest first.
    pub async fn queued_runs(&self) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE status = $1 ORDER BY id"
        ))
        .bind(RunStatus::Queued.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// Takes the oldest queued run off the queue (marking it running).
    pub async fn claim_next_queued(&self) -> Result<Option<RunRecord>> {
        let row = sqlx::query(
            "UPDATE runs SET status = $1 WHERE id = \
             (SELECT id FROM runs WHERE status = $2 ORDER BY id LIMIT 1) AND status = $2 RETURNING id",
        )
        .bind(RunStatus::Running.as_str())
        .bind(RunStatus::Queued.as_str())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => self.run(row.try_get(0)?).await,
            None => Ok(None),
        }
    }

    /// Deletes a run if it is still queued; returns whether it was.
    pub async fn delete_queued(&self, run_id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM runs WHERE id = $1 AND status = $2")
            .bind(run_id)
            .bind(RunStatus::Queued.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
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
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS}, (SELECT CAST(COALESCE(SUM(total_requests), 0) AS BIGINT) FROM scenarios \
             WHERE scenarios.run_id = runs.id) AS total_requests FROM runs {filter} \
             ORDER BY id DESC LIMIT $3 OFFSET $4"
        ))
        .bind(&pattern)
        .bind(status)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let runs = rows
            .iter()
            .map(|r| Ok((run_from_row(r)?, r.try_get("total_requests")?)))
            .collect::<Result<Vec<_>>>()?;
        let total: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM runs {filter}"))
            .bind(&pattern)
            .bind(status)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok((runs, total))
    }

    pub async fn scenario(&self, scenario_id: i64) -> Result<Option<ScenarioRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {SCENARIO_COLUMNS} FROM scenarios WHERE id = $1"
        ))
        .bind(scenario_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| scenario_from_row(&r)).transpose()
    }

    /// Marks every scenario of a run that never ended with `status`.
    pub async fn close_open_scenarios(&self, run_id: i64, status: ScenarioStatus) -> Result<()> {
        sqlx::query(
            "UPDATE scenarios SET status = $1, ended_at = $2 WHERE run_id = $3 AND ended_at IS NULL",
        )
        .bind(status.as_str())
        .bind(now_ms())
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn scenarios(&self, run_id: i64) -> Result<Vec<ScenarioRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {SCENARIO_COLUMNS} FROM scenarios WHERE run_id = $1 ORDER BY position"
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(scenario_from_row).collect()
    }

    /// Records a child the lab started, before anything else can go wrong, so
    /// `cleanup` can find it even if the lab is killed.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_process(
        &self,
        scenario_id: i64,
        kind: ProcessKind,
        pid: u32,
        start_ticks: u64,
        command: &str,
        log_path: &str,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO processes (scenario_id, name, pid, start_ticks, command, log_path, started_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(scenario_id)
        .bind(kind.as_str())
        .bind(i64::from(pid))
        .bind(start_ticks as i64)
        .bind(command)
        .bind(log_path)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    pub async fn end_process(&self, process_id: i64, exit_status: &str) -> Result<()> {
        sqlx::query("UPDATE processes SET ended_at = $1, exit_status = $2 WHERE id = $3")
            .bind(now_ms())
            .bind(exit_status)
            .bind(process_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Processes the lab started whose end it never recorded.
    pub async fn open_processes(&self) -> Result<Vec<ProcessRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {PROCESS_COLUMNS} WHERE p.ended_at IS NULL ORDER BY p.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(process_from_row).collect()
    }

    pub async fn processes(&self, scenario_id: i64) -> Result<Vec<ProcessRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {PROCESS_COLUMNS} WHERE p.scenario_id = $1 ORDER BY p.id"
        ))
        .bind(scenario_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(process_from_row).collect()
    }

    /// Writes one tick's samples in a single statement.
    pub async fn insert_samples(&self, scenario_id: i64, samples: &[Sample]) -> Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut sql = String::from(
            "INSERT INTO samples (scenario_id, process, pid, at_ms, elapsed_ms, cpu, mem, requests, \
             requests_in_interval) VALUES ",
        );
        for i in 0..samples.len() {
            let b = i * 9;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9
            ));
        }
        let mut query = sqlx::query(&sql);
        for s in samples {
            query = query
                .bind(scenario_id)
                .bind(s.process.as_str())
                .bind(s.pid)
                .bind(s.at_ms)
                .bind(s.elapsed_ms)
                .bind(s.cpu)
                .bind(s.mem)
                .bind(s.requests)
                .bind(s.requests_in_interval);
        }
        query.execute(&self.pool).await?;
        Ok(())
    }

    /// All samples of a scenario, in time order.
    pub async fn scenario_samples(&self, scenario_id: i64) -> Result<Vec<Sample>> {
        self.scenario_samples_between(scenario_id, i64::MIN, i64::MAX)
            .await
    }

    /// A scenario's samples with `from_ms <= elapsed <= to_ms`, in time order.
    pub async fn scenario_samples_between(
        &self,
        scenario_id: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Sample>> {
        let rows = sqlx::query(
            "SELECT process, pid, at_ms, elapsed_ms, cpu, mem, requests, requests_in_interval \
             FROM samples WHERE scenario_id = $1 AND elapsed_ms >= $2 AND elapsed_ms <= $3 \
             ORDER BY elapsed_ms, process",
        )
        .bind(scenario_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| sample_from_row(r, 0)).collect()
    }

    /// The samples of the latest tick of a scenario.
    pub async fn latest_samples(&self, scenario_id: i64) -> Result<Vec<Sample>> {
        let rows = sqlx::query(
            "SELECT process, pid, at_ms, elapsed_ms, cpu, mem, requests, requests_in_interval \
             FROM samples WHERE scenario_id = $1 AND elapsed_ms = \
             (SELECT MAX(elapsed_ms) FROM samples WHERE scenario_id = $1) ORDER BY process",
        )
        .bind(scenario_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| sample_from_row(r, 0)).collect()
    }

    /// A scenario's samples between `from_ms` and `to_ms` (elapsed), reduced
    /// to one sample per process per `bucket_ms`: the peak of each value in
    /// the bucket, at the bucket's start. A bucket no wider than the sampling
    /// interval returns the samples as they are.
    pub async fn scenario_samples_bucketed(
        &self,
        scenario_id: i64,
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vec<Sample>> {
        let rows = sqlx::query(
            "SELECT process, MAX(pid), MIN(at_ms), (elapsed_ms / $2) * $2 AS bucket, MAX(cpu), \
             MAX(mem), MAX(requests), MAX(requests_in_interval) FROM samples \
             WHERE scenario_id = $1 AND elapsed_ms >= $3 AND elapsed_ms <= $4 \
             GROUP BY process, bucket ORDER BY bucket, process",
        )
        .bind(scenario_id)
        .bind(bucket_ms.max(1))
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| sample_from_row(r, 0)).collect()
    }

    /// Streams a run's samples (all scenarios, in order) without loading them all.
    pub fn run_samples(&self, run_id: i64) -> BoxStream<'_, Result<SampleRow>> {
        self.sample_rows(RUN_SAMPLE_ROWS, run_id)
    }

    /// Streams one scenario's samples.
    pub fn scenario_sample_rows(&self, scenario_id: i64) -> BoxStream<'_, Result<SampleRow>> {
        self.sample_rows(SCENARIO_SAMPLE_ROWS, scenario_id)
    }

    fn sample_rows(&self, sql: &'static str, id: i64) -> BoxStream<'_, Result<SampleRow>> {
        sqlx::query(sql)
            .bind(id)
            .fetch(&self.pool)
            .map_err(StoreError::from)
            .and_then(|row| async move {
                Ok(SampleRow {
                    scenario: row.try_get(0)?,
                    concurrency: row.try_get(1)?,
                    sample: sample_from_row(&row, 2)?,
                })
            })
            .boxed()
    }

    pub async fn sample_count(&self, run_id: i64) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM samples s JOIN scenarios sc ON sc.id = s.scenario_id WHERE sc.run_id = $1",
        )
        .bind(run_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }
}

fn parse_text<T: std::str::FromStr<Err = String>>(row: &AnyRow, column: &str) -> Result<T> {
    let text: String = row.try_get(column)?;
    text.parse().map_err(StoreError::Invalid)
}

fn run_from_row(row: &AnyRow) -> Result<RunRecord> {
    let params: String = row.try_get("params")?;
    Ok(RunRecord {
        id: row.try_get("id")?,
        label: row.try_get("label")?,
        status: parse_text(row, "status")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        params: serde_json::from_str(&params)?,
        output_dir: row.try_get("output_dir")?,
        environment: RunEnvironment {
            mite_version: row
                .try_get::<Option<String>, _>("mite_version")?
                .unwrap_or_default(),
            python_version: row
                .try_get::<Option<String>, _>("python_version")?
                .unwrap_or_default(),
            host: row
                .try_get::<Option<String>, _>("host")?
                .unwrap_or_default(),
            cores: row.try_get::<Option<i64>, _>("cores")?.unwrap_or_default(),
        },
        lab_pid: row.try_get("lab_pid")?,
        error: row.try_get("error")?,
    })
}

fn scenario_from_row(row: &AnyRow) -> Result<ScenarioRecord> {
    Ok(ScenarioRecord {
        id: row.try_get("id")?,
        run_id: row.try_get("run_id")?,
        position: row.try_get("position")?,
        name: row.try_get("name")?,
        concurrency: row.try_get("concurrency")?,
        duration_ms: row.try_get("duration_ms")?,
        spawn_rate: row.try_get("spawn_rate")?,
        interval_ms: row.try_get("interval_ms")?,
        status: parse_text(row, "status")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        error: row.try_get("error")?,
        error_log: row.try_get("error_log")?,
    })
}

fn process_from_row(row: &AnyRow) -> Result<ProcessRecord> {
    Ok(ProcessRecord {
        id: row.try_get("id")?,
        scenario_id: row.try_get("scenario_id")?,
        run_id: row.try_get("run_id")?,
        name: row.try_get("name")?,
        pid: row.try_get("pid")?,
        start_ticks: row.try_get("start_ticks")?,
        command: row.try_get("command")?,
        log_path: row.try_get("log_path")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        exit_status: row.try_get("exit_status")?,
    })
}

/// Reads a sample from `row`, whose sample columns start at index `first`.
fn sample_from_row(row: &AnyRow, first: usize) -> Result<Sample> {
    let process: String = row.try_get(first)?;
    Ok(Sample {
        process: process.parse().map_err(StoreError::Invalid)?,
        pid: row.try_get(first + 1)?,
        at_ms: row.try_get(first + 2)?,
        elapsed_ms: row.try_get(first + 3)?,
        cpu: row.try_get(first + 4)?,
        mem: row.try_get(first + 5)?,
        requests: row.try_get(first + 6)?,
        requests_in_interval: row.try_get(first + 7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn temp_store() -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "mite-perf-store-test-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let url = format!("sqlite://{}/lab.db", dir.display());
        (Store::connect(&url).await.expect("open sqlite"), dir)
    }

    #[tokio::test]
    async fn run_scenario_process_and_samples_round_trip() {
        let (store, dir) = temp_store().await;
        let params = RunParams {
            label: "round trip".into(),
            ..RunParams::default()
        };
        let run = store
            .create_run(&params, RunStatus::Running)
            .await
            .expect("run");
        let env = RunEnvironment {
            mite_version: "2.11.0".into(),
            python_version: "3.11.7".into(),
            host: "h".into(),
            cores: 2,
        };
        store
            .start_run(run, &env, "/tmp/x", 42)
            .await
            .expect("start");
        let sc = store
            .create_scenario(run, 0, 10, &params)
            .await
            .expect("scenario");
        let p = store
            .record_process(
                sc,
                ProcessKind::Runner,
                4242,
                99,
                "mite runner",
                "/tmp/r.log",
            )
            .await
            .expect("process");
        assert_eq!(store.open_processes().await.expect("open").len(), 1);
        store.end_process(p, "exit 0").await.expect("end");
        assert!(store.open_processes().await.expect("open").is_empty());

        let samples = vec![
            Sample {
                process: ProcessKind::Http,
                pid: 1,
                at_ms: 1000,
                elapsed_ms: 1000,
                cpu: 12.5,
                mem: 4096,
                requests: Some(300),
                requests_in_interval: Some(300),
            },
            Sample {
                process: ProcessKind::Runner,
                pid: 4242,
                at_ms: 1000,
                elapsed_ms: 1000,
                cpu: 55.0,
                mem: 8192,
                requests: None,
                requests_in_interval: None,
            },
        ];
        store.insert_samples(sc, &samples).await.expect("insert");
        let back = store.scenario_samples(sc).await.expect("read");
        assert_eq!(back.len(), 2);
        assert!(back.contains(&samples[0]) && back.contains(&samples[1]));
        let rows: Vec<SampleRow> = store.run_samples(run).try_collect().await.expect("stream");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].scenario, "scenario10");
        let record = store.run(run).await.expect("get").expect("exists");
        assert_eq!(record.params, params);
        assert_eq!(record.environment, env);
        assert_eq!(record.status, RunStatus::Running);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn rejects_unknown_database_urls() {
        let err = Store::connect("mysql://nope").await.expect_err("must fail");
        assert!(err.to_string().contains("not supported"), "{err}");
    }
}
