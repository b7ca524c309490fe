//! The `bus_*` tables: mite's own account of each scenario (see
//! [`crate::bus`]). Written with the samples, in the same transaction;
//! read for the run page, its charts and `transactions.csv`.

use super::{with_pool, Result, Store};
use crate::bus::BusBatch;
use crate::model::{
    BusSummary, ConcurrencyPoint, ErrorCount, TransactionInterval, TransactionTotal,
};

/// A value bound to a statement (both backends take each of these).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Int(i64),
    Real(Option<f64>),
    Text(String),
}

/// Rows per INSERT (12 values each, well under both backends' limits).
const ROWS_PER_INSERT: usize = 400;

fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=columns)
                .map(|c| format!("${}", r * columns + c))
                .collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One INSERT per chunk of `rows`, each row as `columns` values.
fn inserts(
    head: &str,
    columns: usize,
    tail: &str,
    rows: Vec<Vec<Value>>,
) -> Vec<(String, Vec<Value>)> {
    rows.chunks(ROWS_PER_INSERT)
        .map(|chunk| {
            (
                format!(
                    "{head} VALUES {} {tail}",
                    placeholders(chunk.len(), columns)
                ),
                chunk.iter().flatten().cloned().collect(),
            )
        })
        .collect()
}

/// The statements that store `batches`' bus rows: new intervals and
/// reports, the latest totals and error counts (replacing the stored ones),
/// and the scenarios' message counts.
pub(super) fn statements(batches: &[(i64, &BusBatch)]) -> Vec<(String, Vec<Value>)> {
    use Value::{Int, Real, Text};
    let mut intervals = Vec::new();
    let mut reports = Vec::new();
    // Each scenario's last batch (for its counts) and last batch with totals.
    let mut latest: Vec<(i64, &BusBatch)> = Vec::new();
    let mut latest_totals: Vec<(i64, &BusBatch)> = Vec::new();
    for (scenario_id, batch) in batches {
        for i in &batch.intervals {
            intervals.push(vec![
                Int(*scenario_id),
                Text(i.transaction.clone()),
                Int(i.elapsed_ms),
                Int(i.at_ms),
                Int(i.requests),
                Int(i.errors),
                Int(i.exceptions),
                Int(i.transactions),
                Real(i.p50_ms),
                Real(i.p90_ms),
                Real(i.p99_ms),
                Real(i.max_ms),
            ]);
        }
        for c in &batch.concurrency {
            reports.push(vec![
                Int(*scenario_id),
                Int(c.elapsed_ms),
                Int(c.at_ms),
                Int(c.required),
                Int(c.actual),
                Int(c.runners),
            ]);
        }
        // Later batches carry later totals: keep each scenario's last.
        latest.retain(|(id, _)| id != scenario_id);
        latest.push((*scenario_id, batch));
        if !batch.totals.is_empty() || !batch.errors.is_empty() {
            latest_totals.retain(|(id, _)| id != scenario_id);
            latest_totals.push((*scenario_id, batch));
        }
    }
    let mut out = inserts(
        "INSERT INTO bus_intervals (scenario_id, txn, elapsed_ms, at_ms, requests, errors, \
         exceptions, transactions, p50_ms, p90_ms, p99_ms, max_ms)",
        12,
        "ON CONFLICT DO NOTHING",
        intervals,
    );
    out.extend(inserts(
        "INSERT INTO bus_concurrency (scenario_id, elapsed_ms, at_ms, required, actual, runners)",
        6,
        "ON CONFLICT DO NOTHING",
        reports,
    ));
    let mut totals = Vec::new();
    let mut errors = Vec::new();
    for (scenario_id, batch) in &latest_totals {
        for t in &batch.totals {
            totals.push(vec![
                Int(*scenario_id),
                Text(t.transaction.clone()),
                Int(t.requests),
                Int(t.errors),
                Int(t.exceptions),
                Int(t.transactions),
                Real(t.p50_ms),
                Real(t.p90_ms),
                Real(t.p99_ms),
                Real(t.max_ms),
                Real(t.mean_ms),
            ]);
        }
        for e in &batch.errors {
            errors.push(vec![
                Int(*scenario_id),
                Text(e.transaction.clone()),
                Text(e.kind.clone()),
                Int(e.count),
                Text(e.example.clone()),
            ]);
        }
    }
    out.extend(inserts(
        "INSERT INTO bus_totals (scenario_id, txn, requests, errors, exceptions, transactions, \
         p50_ms, p90_ms, p99_ms, max_ms, mean_ms)",
        11,
        "ON CONFLICT (scenario_id, txn) DO UPDATE SET requests = excluded.requests, \
         errors = excluded.errors, exceptions = excluded.exceptions, \
         transactions = excluded.transactions, p50_ms = excluded.p50_ms, \
         p90_ms = excluded.p90_ms, p99_ms = excluded.p99_ms, max_ms = excluded.max_ms, \
         mean_ms = excluded.mean_ms",
        totals,
    ));
    out.extend(inserts(
        "INSERT INTO bus_errors (scenario_id, txn, kind, count, example)",
        5,
        "ON CONFLICT (scenario_id, txn, kind) DO UPDATE SET count = excluded.count",
        errors,
    ));
    for (scenario_id, batch) in &latest {
        let c = batch.counts;
        out.push((
            "UPDATE scenarios SET bus_messages = $1, bus_undecodable = $2, bus_journeys = $3, \
             bus_reports = $4, bus_reports_short = $5, \
             bus_reader_cpu_ms = CASE WHEN $6 > 0 THEN $6 ELSE bus_reader_cpu_ms END \
             WHERE id = $7"
                .to_string(),
            vec![
                Int(c.messages as i64),
                Int(c.undecodable as i64),
                Int(c.journeys as i64),
                Int(c.reports as i64),
                Int(c.reports_short as i64),
                Int(c.reader_cpu_ms),
                Int(*scenario_id),
            ],
        ));
    }
    out
}

/// The `bus_*` columns of a scenario.
#[derive(Debug, Clone, Copy, Default, sqlx::FromRow)]
pub(super) struct BusSummaryRow {
    pub bus_messages: Option<i64>,
    pub bus_undecodable: Option<i64>,
    pub bus_journeys: Option<i64>,
    pub bus_missed: Option<i64>,
    pub collector_dropped: Option<i64>,
    pub bus_reports: Option<i64>,
    pub bus_reports_short: Option<i64>,
    pub bus_reader_cpu_ms: Option<i64>,
}

/// Those columns, as a query selects them.
pub(super) const BUS_SUMMARY_COLUMNS: &str = "bus_messages, bus_undecodable, bus_journeys, \
     bus_missed, collector_dropped, bus_reports, bus_reports_short, bus_reader_cpu_ms";

impl From<BusSummaryRow> for BusSummary {
    fn from(r: BusSummaryRow) -> Self {
        BusSummary {
            messages: r.bus_messages,
            undecodable: r.bus_undecodable,
            journeys: r.bus_journeys,
            missed: r.bus_missed,
            collector_dropped: r.collector_dropped,
            reports: r.bus_reports,
            reports_short: r.bus_reports_short,
            reader_cpu_ms: r.bus_reader_cpu_ms,
        }
    }
}

#[derive(sqlx::FromRow)]
struct IntervalRow {
    txn: String,
    elapsed_ms: i64,
    at_ms: i64,
    requests: i64,
    errors: i64,
    exceptions: i64,
    transactions: i64,
    p50_ms: Option<f64>,
    p90_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
}

#[derive(sqlx::FromRow)]
struct TotalRow {
    txn: String,
    requests: i64,
    errors: i64,
    exceptions: i64,
    transactions: i64,
    p50_ms: Option<f64>,
    p90_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    mean_ms: Option<f64>,
}

#[derive(sqlx::FromRow)]
struct ErrorRow {
    txn: String,
    kind: String,
    count: i64,
    example: String,
}

#[derive(sqlx::FromRow)]
struct ConcurrencyRow {
    elapsed_ms: i64,
    at_ms: i64,
    required: i64,
    actual: i64,
    runners: i64,
}

impl From<IntervalRow> for TransactionInterval {
    fn from(r: IntervalRow) -> Self {
        TransactionInterval {
            transaction: r.txn,
            elapsed_ms: r.elapsed_ms,
            at_ms: r.at_ms,
            requests: r.requests,
            errors: r.errors,
            exceptions: r.exceptions,
            transactions: r.transactions,
            p50_ms: r.p50_ms,
            p90_ms: r.p90_ms,
            p99_ms: r.p99_ms,
            max_ms: r.max_ms,
        }
    }
}

impl From<ConcurrencyRow> for ConcurrencyPoint {
    fn from(r: ConcurrencyRow) -> Self {
        ConcurrencyPoint {
            elapsed_ms: r.elapsed_ms,
            at_ms: r.at_ms,
            required: r.required,
            actual: r.actual,
            runners: r.runners,
        }
    }
}

impl Store {
    /// Up to `limit` of a scenario's intervals after (`elapsed_ms`,
    /// `transaction`) `after` (from the first when `None`), in time order
    /// then by transaction: a page of `transactions.csv`.
    pub async fn bus_intervals_page(
        &self,
        scenario_id: i64,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<TransactionInterval>> {
        let (elapsed, txn) = after.unwrap_or((i64::MIN, ""));
        let rows: Vec<IntervalRow> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT txn, elapsed_ms, at_ms, requests, errors, exceptions, transactions, \
             p50_ms, p90_ms, p99_ms, max_ms FROM bus_intervals WHERE scenario_id = $1 \
             AND (elapsed_ms > $2 OR (elapsed_ms = $2 AND txn > $3)) \
             ORDER BY elapsed_ms, txn LIMIT $4"
        )
        .bind(scenario_id)
        .bind(elapsed)
        .bind(txn)
        .bind(limit)
        .fetch_all(pool)
        .await?);
        Ok(rows.into_iter().map(TransactionInterval::from).collect())
    }

    /// A scenario's intervals merged into buckets of `bucket_ms` per
    /// transaction (counts added, percentiles at their highest: a chart
    /// keeps its peaks), read so in the database: a bounded answer.
    pub async fn bus_intervals_bucketed(
        &self,
        scenario_id: i64,
        bucket_ms: i64,
    ) -> Result<Vec<TransactionInterval>> {
        let rows: Vec<IntervalRow> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT txn, (elapsed_ms / $2) * $2 AS elapsed_ms, MIN(at_ms) AS at_ms, \
             CAST(SUM(requests) AS BIGINT) AS requests, CAST(SUM(errors) AS BIGINT) AS errors, \
             CAST(SUM(exceptions) AS BIGINT) AS exceptions, \
             CAST(SUM(transactions) AS BIGINT) AS transactions, \
             MAX(p50_ms) AS p50_ms, MAX(p90_ms) AS p90_ms, MAX(p99_ms) AS p99_ms, \
             MAX(max_ms) AS max_ms FROM bus_intervals WHERE scenario_id = $1 \
             GROUP BY txn, elapsed_ms / $2 ORDER BY 2, txn"
        )
        .bind(scenario_id)
        .bind(bucket_ms.max(1))
        .fetch_all(pool)
        .await?);
        Ok(rows.into_iter().map(TransactionInterval::from).collect())
    }

    /// The controller's reports in buckets of `bucket_ms`, each at its
    /// highest: a bounded answer.
    pub async fn bus_concurrency_bucketed(
        &self,
        scenario_id: i64,
        bucket_ms: i64,
    ) -> Result<Vec<ConcurrencyPoint>> {
        let rows: Vec<ConcurrencyRow> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT (elapsed_ms / $2) * $2 AS elapsed_ms, MIN(at_ms) AS at_ms, \
             MAX(required) AS required, MAX(actual) AS actual, MAX(runners) AS runners \
             FROM bus_concurrency WHERE scenario_id = $1 GROUP BY elapsed_ms / $2 ORDER BY 1"
        )
        .bind(scenario_id)
        .bind(bucket_ms.max(1))
        .fetch_all(pool)
        .await?);
        Ok(rows.into_iter().map(ConcurrencyPoint::from).collect())
    }

    /// The latest second mite's bus was heard in a scenario (elapsed ms).
    pub async fn bus_last_elapsed(&self, scenario_id: i64) -> Result<Option<i64>> {
        Ok(with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT MAX(elapsed_ms) FROM bus_intervals WHERE scenario_id = $1"
        )
        .bind(scenario_id)
        .fetch_one(pool)
        .await)?)
    }

    /// A scenario's intervals, in time order then by transaction (all of
    /// them: for the lab's own checks, never for a request).
    pub async fn bus_intervals(&self, scenario_id: i64) -> Result<Vec<TransactionInterval>> {
        let rows: Vec<IntervalRow> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT txn, elapsed_ms, at_ms, requests, errors, exceptions, transactions, \
             p50_ms, p90_ms, p99_ms, max_ms FROM bus_intervals WHERE scenario_id = $1 \
             ORDER BY elapsed_ms, txn"
        )
        .bind(scenario_id)
        .fetch_all(pool)
        .await?);
        Ok(rows.into_iter().map(TransactionInterval::from).collect())
    }

    /// A scenario's transactions over the whole scenario, by name.
    pub async fn bus_totals(&self, scenario_id: i64) -> Result<Vec<TransactionTotal>> {
        let rows: Vec<TotalRow> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT txn, requests, errors, exceptions, transactions, p50_ms, p90_ms, p99_ms, \
             max_ms, mean_ms FROM bus_totals WHERE scenario_id = $1 ORDER BY txn"
        )
        .bind(scenario_id)
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|r| TransactionTotal {
                transaction: r.txn,
                requests: r.requests,
                errors: r.errors,
                exceptions: r.exceptions,
                transactions: r.transactions,
                p50_ms: r.p50_ms,
                p90_ms: r.p90_ms,
                p99_ms: r.p99_ms,
                max_ms: r.max_ms,
                mean_ms: r.mean_ms,
            })
            .collect())
    }

    /// A scenario's errors by transaction and kind, most frequent first.
    pub async fn bus_errors(&self, scenario_id: i64) -> Result<Vec<ErrorCount>> {
        let rows: Vec<ErrorRow> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT txn, kind, count, example FROM bus_errors WHERE scenario_id = $1 \
             ORDER BY count DESC, txn, kind"
        )
        .bind(scenario_id)
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|r| ErrorCount {
                transaction: r.txn,
                kind: r.kind,
                count: r.count,
                example: r.example,
            })
            .collect())
    }

    /// The controller's reports of a scenario, in time order.
    pub async fn bus_concurrency(&self, scenario_id: i64) -> Result<Vec<ConcurrencyPoint>> {
        let rows: Vec<ConcurrencyRow> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT elapsed_ms, at_ms, required, actual, runners FROM bus_concurrency \
             WHERE scenario_id = $1 ORDER BY elapsed_ms"
        )
        .bind(scenario_id)
        .fetch_all(pool)
        .await?);
        Ok(rows.into_iter().map(ConcurrencyPoint::from).collect())
    }

    /// What the bus carried for a scenario and what mite dropped.
    pub async fn bus_summary(&self, scenario_id: i64) -> Result<BusSummary> {
        let sql = format!("SELECT {BUS_SUMMARY_COLUMNS} FROM scenarios WHERE id = $1");
        let row: Option<BusSummaryRow> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(scenario_id)
            .fetch_optional(pool)
            .await?);
        Ok(row.unwrap_or_default().into())
    }

    /// Records the messages mite's duplicator dropped in a scenario: for
    /// the lab's bus reader and for the collector.
    pub async fn record_dropped_messages(
        &self,
        scenario_id: i64,
        bus_missed: u64,
        collector_dropped: u64,
    ) -> Result<()> {
        let sql = format!(
            "UPDATE scenarios SET bus_missed = $1, collector_dropped = $2 WHERE id = $3 AND {}",
            super::fence::guard(4, 5)
        );
        let (run, lease) = self.fence_binds();
        let rows = with_pool!(self, |pool| sqlx::query(&sql)
            .bind(bus_missed as i64)
            .bind(collector_dropped as i64)
            .bind(scenario_id)
            .bind(run)
            .bind(&lease)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.fenced_rows(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_every_value_of_every_row() {
        assert_eq!(placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }

    #[test]
    fn totals_of_a_scenario_come_from_its_latest_batch() {
        let total = |requests| TransactionTotal {
            transaction: "a".into(),
            requests,
            errors: 0,
            exceptions: 0,
            transactions: 0,
            p50_ms: None,
            p90_ms: None,
            p99_ms: None,
            max_ms: None,
            mean_ms: None,
        };
        let first = BusBatch {
            totals: vec![total(1)],
            ..BusBatch::default()
        };
        let second = BusBatch {
            totals: vec![total(5)],
            ..BusBatch::default()
        };
        // A batch with nothing new (no totals) changes only the counts.
        let nothing_new = BusBatch::default();
        let statements = statements(&[(7, &first), (7, &second), (7, &nothing_new)]);
        let totals: Vec<&(String, Vec<Value>)> = statements
            .iter()
            .filter(|(sql, _)| sql.starts_with("INSERT INTO bus_totals"))
            .collect();
        assert_eq!(totals.len(), 1);
        assert_eq!(totals[0].1[2], Value::Int(5));
    }
}
