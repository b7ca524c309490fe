//! The `samples` table: one row per process per tick. Written by a run's
//! [`SampleWriter`] on a connection of its own; read whole (CSV), by window
//! (zoomed charts), by bucket (chart overviews) or by latest tick (live view).

use std::collections::HashMap;

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};

use super::bus::{self, Value};
use super::{parse_text, with_pool, Pool, Result, Store, StoreError};
use crate::bus::BusBatch;
use crate::figures::ScenarioFigures;
use crate::model::{ProcessDetail, Sample};

/// Whose samples to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleSource {
    /// Every scenario of a run, in order.
    Run(i64),
    Scenario(i64),
}

/// A sample with its scenario, as a CSV row.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRow {
    pub scenario: String,
    pub concurrency: i64,
    pub sample: Sample,
}

#[derive(sqlx::FromRow)]
struct SampleDbRow {
    scenario_id: i64,
    process: String,
    pid: i64,
    at_ms: i64,
    elapsed_ms: i64,
    cpu: f64,
    mem: i64,
    requests: Option<i64>,
    requests_in_interval: Option<i64>,
    threads: Option<i64>,
    fds: Option<i64>,
    cpu_wait: Option<f64>,
    voluntary_switches: Option<i64>,
    involuntary_switches: Option<i64>,
    read_bytes: Option<i64>,
    write_bytes: Option<i64>,
}

impl SampleDbRow {
    fn into_sample(self) -> Result<(i64, Sample)> {
        Ok((
            self.scenario_id,
            Sample {
                process: parse_text(&self.process)?,
                pid: self.pid,
                at_ms: self.at_ms,
                elapsed_ms: self.elapsed_ms,
                cpu: self.cpu,
                mem: self.mem,
                requests: self.requests,
                requests_in_interval: self.requests_in_interval,
                detail: (|| {
                    Some(ProcessDetail {
                        threads: self.threads?,
                        fds: self.fds?,
                        cpu_wait: self.cpu_wait?,
                        voluntary_switches: self.voluntary_switches?,
                        involuntary_switches: self.involuntary_switches?,
                        read_bytes: self.read_bytes?,
                        write_bytes: self.write_bytes?,
                    })
                })(),
            },
        ))
    }
}

/// The columns of a sample (the first nine are what `samples.csv` holds,
/// read by position in [`super::bulk`]).
const SAMPLE_COLUMNS: &str = "s.scenario_id, s.process, s.pid, s.at_ms, s.elapsed_ms, s.cpu, \
     s.mem, s.requests, s.requests_in_interval, s.threads, s.fds, s.cpu_wait, \
     s.voluntary_switches, s.involuntary_switches, s.read_bytes, s.write_bytes";

/// The query of a source's samples, in order (`$1` is the id).
pub(super) fn source_query(source: SampleSource) -> (String, i64) {
    match source {
        SampleSource::Run(id) => (
            format!(
                "SELECT {SAMPLE_COLUMNS} FROM samples s JOIN scenarios sc ON sc.id = s.scenario_id \
                 WHERE sc.run_id = $1 ORDER BY sc.position, s.elapsed_ms, s.process, s.pid"
            ),
            id,
        ),
        SampleSource::Scenario(id) => (
            format!(
                "SELECT {SAMPLE_COLUMNS} FROM samples s WHERE s.scenario_id = $1 \
                 ORDER BY s.elapsed_ms, s.process, s.pid"
            ),
            id,
        ),
    }
}

fn samples(rows: Vec<SampleDbRow>) -> Result<Vec<Sample>> {
    rows.into_iter()
        .map(|r| r.into_sample().map(|(_, s)| s))
        .collect()
}

impl Store {
    /// Streams samples (with their scenario's id) without loading them all.
    pub fn sample_stream(&self, source: SampleSource) -> BoxStream<'static, Result<(i64, Sample)>> {
        self.sample_batches(source)
            .map_ok(|batch| futures_util::stream::iter(batch.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    /// Streams a run's samples (all scenarios, in order) with their scenario's name.
    pub fn run_samples(&self, run_id: i64) -> BoxStream<'_, Result<SampleRow>> {
        self.named_sample_rows(SampleSource::Run(run_id))
    }

    /// Streams one scenario's samples with its name.
    pub fn scenario_sample_rows(&self, scenario_id: i64) -> BoxStream<'_, Result<SampleRow>> {
        self.named_sample_rows(SampleSource::Scenario(scenario_id))
    }

    fn named_sample_rows(&self, source: SampleSource) -> BoxStream<'_, Result<SampleRow>> {
        futures_util::stream::once(async move {
            let names = self.scenario_names(source).await?;
            Ok::<_, StoreError>(self.sample_stream(source).and_then(move |(id, sample)| {
                let name = names.get(&id).cloned();
                async move {
                    let (scenario, concurrency) = name.ok_or_else(|| {
                        StoreError::Invalid(format!("sample of unknown scenario {id}"))
                    })?;
                    Ok(SampleRow {
                        scenario,
                        concurrency,
                        sample,
                    })
                }
            }))
        })
        .try_flatten()
        .boxed()
    }

    /// Name and concurrency of the scenarios a source covers, by id.
    pub async fn scenario_names(
        &self,
        source: SampleSource,
    ) -> Result<HashMap<i64, (String, i64)>> {
        let scenarios = match source {
            SampleSource::Run(id) => self.scenarios(id).await?,
            SampleSource::Scenario(id) => self.scenario(id).await?.into_iter().collect(),
        };
        Ok(scenarios
            .into_iter()
            .map(|s| (s.id, (s.name, s.concurrency)))
            .collect())
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
        let sql = format!(
            "SELECT {SAMPLE_COLUMNS} FROM samples s WHERE s.scenario_id = $1 \
             AND s.elapsed_ms >= $2 AND s.elapsed_ms <= $3 ORDER BY s.elapsed_ms, s.process, s.pid"
        );
        let rows: Vec<SampleDbRow> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(scenario_id)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(pool)
            .await)?;
        samples(rows)
    }

    /// The samples of the latest tick of a scenario.
    pub async fn latest_samples(&self, scenario_id: i64) -> Result<Vec<Sample>> {
        let sql = format!(
            "SELECT {SAMPLE_COLUMNS} FROM samples s WHERE s.scenario_id = $1 AND s.elapsed_ms = \
             (SELECT MAX(elapsed_ms) FROM samples WHERE scenario_id = $1) ORDER BY s.process, s.pid"
        );
        let rows: Vec<SampleDbRow> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(scenario_id)
            .fetch_all(pool)
            .await)?;
        samples(rows)
    }

    /// A scenario's samples between `from_ms` and `to_ms` (elapsed), reduced
    /// to one sample per process (each runner on its own) per `bucket_ms`:
    /// the peak of each value in the bucket, at the bucket's start.
    pub async fn scenario_samples_bucketed(
        &self,
        scenario_id: i64,
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vec<Sample>> {
        let rows: Vec<SampleDbRow> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT scenario_id, process, pid, MIN(at_ms) AS at_ms, \
             (elapsed_ms / $2) * $2 AS elapsed_ms, MAX(cpu) AS cpu, MAX(mem) AS mem, \
             MAX(requests) AS requests, MAX(requests_in_interval) AS requests_in_interval, \
             MAX(threads) AS threads, MAX(fds) AS fds, MAX(cpu_wait) AS cpu_wait, \
             MAX(voluntary_switches) AS voluntary_switches, \
             MAX(involuntary_switches) AS involuntary_switches, \
             MAX(read_bytes) AS read_bytes, MAX(write_bytes) AS write_bytes \
             FROM samples WHERE scenario_id = $1 AND elapsed_ms >= $3 AND elapsed_ms <= $4 \
             GROUP BY scenario_id, process, pid, (elapsed_ms / $2) \
             ORDER BY elapsed_ms, process, pid",
        )
        .bind(scenario_id)
        .bind(bucket_ms.max(1))
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(pool)
        .await)?;
        samples(rows)
    }

    /// The elapsed time of a scenario's latest sample.
    pub async fn scenario_last_elapsed(&self, scenario_id: i64) -> Result<Option<i64>> {
        Ok(with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT MAX(elapsed_ms) FROM samples WHERE scenario_id = $1"
        )
        .bind(scenario_id)
        .fetch_one(pool)
        .await)?)
    }

    pub async fn sample_count(&self, run_id: i64) -> Result<i64> {
        let n: i64 = with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM samples s JOIN scenarios sc ON sc.id = s.scenario_id \
             WHERE sc.run_id = $1",
        )
        .bind(run_id)
        .fetch_one(pool)
        .await)?;
        Ok(n)
    }
}

/// One tick's samples of a scenario, with the scenario's figures so far
/// when they are to be stored too.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleBatch {
    pub scenario_id: i64,
    pub samples: Vec<Sample>,
    pub figures: Option<ScenarioFigures>,
    /// mite's own account from its bus, when anything is ready.
    pub bus: Option<BusBatch>,
}

impl SampleBatch {
    /// Rows it stores, for the bound on what waits in memory.
    pub fn rows(&self) -> usize {
        self.samples.len() + self.bus.as_ref().map_or(0, BusBatch::rows)
    }
}

/// Values per sample row.
const SAMPLE_VALUES: usize = 16;
/// Rows per INSERT statement (well under SQLite's and PostgreSQL's limits
/// on bound values).
const ROWS_PER_INSERT: usize = 500;

/// Writes a run's samples on a connection of its own: the samples and the
/// scenario's figures so far together, in one transaction, and, when
/// fenced, only while the agent still holds the run's lease.
#[derive(Debug, Clone)]
pub struct SampleWriter {
    pool: Pool,
    fence: Option<super::Fence>,
}

impl SampleWriter {
    pub(super) fn new(pool: Pool, fence: Option<super::Fence>) -> Self {
        SampleWriter { pool, fence }
    }

    /// Stores the batches (in order) in one transaction: all or none.
    /// Writing a batch again stores nothing twice. Fenced, the transaction
    /// commits only if the run still runs under the writer's lease, checked
    /// last, once the transaction writes (PostgreSQL also locks the run's
    /// row against a concurrent change until it commits):
    /// [`StoreError::LeaseLost`] otherwise, and nothing is stored.
    pub async fn write(&self, batches: &[SampleBatch]) -> Result<()> {
        let lease_check = match &self.pool {
            Pool::Postgres(_) => super::fence::HELD_FOR_SHARE,
            Pool::Sqlite(_) => super::fence::HELD,
        };
        let rows: Vec<(i64, &Sample)> = batches
            .iter()
            .flat_map(|b| b.samples.iter().map(move |s| (b.scenario_id, s)))
            .collect();
        // The figures so far of each scenario written: the latest batch's.
        let mut figures: Vec<(i64, &ScenarioFigures)> = Vec::new();
        for batch in batches {
            if let Some(f) = &batch.figures {
                figures.retain(|(id, _)| *id != batch.scenario_id);
                figures.push((batch.scenario_id, f));
            }
        }
        let figures: Vec<(i64, i64, String)> = figures
            .into_iter()
            .map(|(id, f)| Ok((id, f.total_requests, serde_json::to_string(f)?)))
            .collect::<Result<_>>()?;
        let bus_batches: Vec<(i64, &BusBatch)> = batches
            .iter()
            .filter_map(|b| b.bus.as_ref().map(|bus| (b.scenario_id, bus)))
            .collect();
        let bus_statements = bus::statements(&bus_batches);
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let mut sql = String::from(
                    "INSERT INTO samples (scenario_id, process, pid, at_ms, elapsed_ms, cpu, mem, \
                     requests, requests_in_interval, threads, fds, cpu_wait, voluntary_switches, \
                     involuntary_switches, read_bytes, write_bytes) VALUES ",
                );
                for i in 0..chunk.len() {
                    let b = i * SAMPLE_VALUES;
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push('(');
                    for j in 1..=SAMPLE_VALUES {
                        if j > 1 {
                            sql.push_str(", ");
                        }
                        sql.push('$');
                        sql.push_str(itoa::Buffer::new().format(b + j));
                    }
                    sql.push(')');
                }
                sql.push_str(" ON CONFLICT DO NOTHING");
                let mut query = sqlx::query(&sql);
                for (scenario_id, s) in chunk {
                    query = query
                        .bind(*scenario_id)
                        .bind(s.process.as_str())
                        .bind(s.pid)
                        .bind(s.at_ms)
                        .bind(s.elapsed_ms)
                        .bind(s.cpu)
                        .bind(s.mem)
                        .bind(s.requests)
                        .bind(s.requests_in_interval)
                        .bind(s.detail.map(|d| d.threads))
                        .bind(s.detail.map(|d| d.fds))
                        .bind(s.detail.map(|d| d.cpu_wait))
                        .bind(s.detail.map(|d| d.voluntary_switches))
                        .bind(s.detail.map(|d| d.involuntary_switches))
                        .bind(s.detail.map(|d| d.read_bytes))
                        .bind(s.detail.map(|d| d.write_bytes));
                }
                query.execute(&mut *tx).await?;
            }
            for (scenario_id, total, json) in &figures {
                sqlx::query("UPDATE scenarios SET figures = $1, total_requests = $2 WHERE id = $3")
                    .bind(json)
                    .bind(*total)
                    .bind(*scenario_id)
                    .execute(&mut *tx)
                    .await?;
            }
            for (sql, values) in &bus_statements {
                let mut query = sqlx::query(sql);
                for value in values {
                    query = match value {
                        Value::Int(n) => query.bind(*n),
                        Value::Real(x) => query.bind(*x),
                        Value::Text(t) => query.bind(t.as_str()),
                    };
                }
                query.execute(&mut *tx).await?;
            }
            if let Some(fence) = &self.fence {
                let held: Option<i32> = sqlx::query_scalar(lease_check)
                    .bind(fence.run_id)
                    .bind(&fence.lease_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if held.is_none() {
                    // Dropped: rolled back.
                    return Err(StoreError::LeaseLost(fence.run_id));
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
