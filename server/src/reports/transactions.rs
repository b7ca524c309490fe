//! mite's own account of a scenario (read from its bus, see [`crate::bus`])
//! as the run page shows it, as charts, and as `transactions.csv`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use charming::series::Line;

use app::api::{ChartSpec, MiteView};
use domain::chart_spec::MITE_CHARTS;

use super::chart::base_chart;
use super::ReportError;
use crate::bus::BUS_INTERVAL_MS;
use crate::model::{ConcurrencyPoint, TransactionInterval};
use crate::store::{ScenarioRecord, Store, StoreError};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

/// The page's view of a scenario's bus data, with its charts: read in
/// buckets that keep the charts to about [`CHART_POINTS`](super::chart::CHART_POINTS) points, however
/// long the scenario ran.
pub async fn mite_view(store: &Store, scenario: &ScenarioRecord) -> Result<MiteView, ReportError> {
    let span = store.bus_last_elapsed(scenario.id).await?.unwrap_or(0);
    let bucket = chart_bucket(span);
    let intervals = store.bus_intervals_bucketed(scenario.id, bucket).await?;
    let concurrency = store.bus_concurrency_bucketed(scenario.id, bucket).await?;
    Ok(MiteView {
        totals: store.bus_totals(scenario.id).await?,
        errors: store.bus_errors(scenario.id).await?,
        summary: store.bus_summary(scenario.id).await?,
        charts: charts(scenario.id, &intervals, &concurrency, bucket)?,
    })
}

/// The bucket of mite's view over `span_ms`: whole seconds (mite's
/// interval), about [`CHART_POINTS`](super::chart::CHART_POINTS) of them at most.
pub fn chart_bucket(span_ms: i64) -> i64 {
    super::chart::bucket_for(span_ms, BUS_INTERVAL_MS)
}

/// Intervals merged into buckets of `bucket_ms` per transaction: counts
/// add up, percentiles keep their highest (a chart keeps its peaks).
pub fn bucketed(intervals: &[TransactionInterval], bucket_ms: i64) -> Vec<TransactionInterval> {
    if bucket_ms <= BUS_INTERVAL_MS {
        return intervals.to_vec();
    }
    let mut merged: BTreeMap<(String, i64), TransactionInterval> = BTreeMap::new();
    let peak = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    for i in intervals {
        let start = i.elapsed_ms / bucket_ms * bucket_ms;
        let entry = merged
            .entry((i.transaction.clone(), start))
            .or_insert_with(|| TransactionInterval {
                elapsed_ms: start,
                at_ms: i.at_ms - (i.elapsed_ms - start),
                requests: 0,
                errors: 0,
                exceptions: 0,
                transactions: 0,
                p50_ms: None,
                p90_ms: None,
                p99_ms: None,
                max_ms: None,
                ..i.clone()
            });
        entry.requests += i.requests;
        entry.errors += i.errors;
        entry.exceptions += i.exceptions;
        entry.transactions += i.transactions;
        entry.p50_ms = peak(entry.p50_ms, i.p50_ms);
        entry.p90_ms = peak(entry.p90_ms, i.p90_ms);
        entry.p99_ms = peak(entry.p99_ms, i.p99_ms);
        entry.max_ms = peak(entry.max_ms, i.max_ms);
    }
    let mut out: Vec<TransactionInterval> = merged.into_values().collect();
    out.sort_by(|a, b| (a.elapsed_ms, &a.transaction).cmp(&(b.elapsed_ms, &b.transaction)));
    out
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

fn line(name: &str, points: Vec<Vec<f64>>) -> Line {
    Line::new().name(name).show_symbol(false).data(points)
}

/// The scenario's three charts of mite's view, in buckets of `bucket` ms:
/// latency (p50 and p99 per transaction), errors per second per
/// transaction, and the controller's required against actual journeys
/// (and runners).
pub fn charts(
    scenario_id: i64,
    intervals: &[TransactionInterval],
    concurrency: &[ConcurrencyPoint],
    bucket: i64,
) -> Result<Vec<ChartSpec>, ReportError> {
    let intervals = bucketed(intervals, bucket);
    let names: Vec<&str> = {
        let mut names: Vec<&str> = intervals.iter().map(|i| i.transaction.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    fn of<'a>(
        intervals: &'a [TransactionInterval],
        name: &'a str,
    ) -> impl Iterator<Item = &'a TransactionInterval> {
        intervals.iter().filter(move |i| i.transaction == name)
    }

    let mut latency = base_chart("Latency per transaction (ms)", "ms");
    for name in &names {
        for (label, pick) in [
            (
                "p50",
                (|i: &TransactionInterval| i.p50_ms) as fn(&TransactionInterval) -> _,
            ),
            ("p99", |i: &TransactionInterval| i.p99_ms),
        ] {
            let points = of(&intervals, name)
                .filter_map(|i| Some(vec![seconds(i.elapsed_ms), round(pick(i)?, 3)]))
                .collect();
            latency = latency.series(line(&format!("{name} {label}"), points));
        }
    }

    let per_second = 1000.0 / bucket as f64;
    let mut errors = base_chart(
        "Errors per second (status ≥ 400 and exceptions)",
        "errors/s",
    );
    for name in &names {
        let points = of(&intervals, name)
            .map(|i| {
                vec![
                    seconds(i.elapsed_ms),
                    round((i.errors + i.exceptions) as f64 * per_second, 2),
                ]
            })
            .collect();
        errors = errors.series(line(name, points));
    }

    let mut journeys = base_chart("Journeys: required by the volume model, actual", "journeys");
    for (name, pick) in [
        (
            "required",
            (|c: &ConcurrencyPoint| c.required) as fn(&ConcurrencyPoint) -> i64,
        ),
        ("actual", |c: &ConcurrencyPoint| c.actual),
        ("runners", |c: &ConcurrencyPoint| c.runners),
    ] {
        let points = concurrency
            .iter()
            .map(|c| vec![seconds(c.elapsed_ms), pick(c) as f64])
            .collect();
        journeys = journeys.series(line(name, points));
    }

    [latency, errors, journeys]
        .into_iter()
        .take(MITE_CHARTS)
        .enumerate()
        .map(|(i, chart)| {
            Ok(ChartSpec {
                slot: i,
                group: format!("scenario-{scenario_id}"),
                option_json: serde_json::to_string(&chart)?,
            })
        })
        .collect()
}

/// The header of `transactions.csv`.
pub const CSV_HEADER: &str = "scenario,concurrency,transaction,elapsed_ms,at_ms,requests,errors,\
exceptions,transactions,p50_ms,p90_ms,p99_ms,max_ms\n";

/// A CSV text field (quoted as needed, never a formula).
fn field(text: &str) -> std::borrow::Cow<'_, str> {
    super::csv::text_cell(text)
}

fn optional(x: Option<f64>) -> String {
    x.map(|x| x.to_string()).unwrap_or_default()
}

/// Appends a scenario's intervals to a `transactions.csv`.
pub fn push_csv(out: &mut String, scenario: &str, concurrency: i64, rows: &[TransactionInterval]) {
    for i in rows {
        let _ = writeln!(
            out,
            "{},{concurrency},{},{},{},{},{},{},{},{},{},{},{}",
            field(scenario),
            field(&i.transaction),
            i.elapsed_ms,
            i.at_ms,
            i.requests,
            i.errors,
            i.exceptions,
            i.transactions,
            optional(i.p50_ms),
            optional(i.p90_ms),
            optional(i.p99_ms),
            optional(i.max_ms),
        );
    }
}

/// Intervals read (and written out) at a time.
const ROWS_PER_CHUNK: i64 = 4096;

/// `transactions.csv` of `scenarios` (a run's, or one), header first, as
/// chunks of [`ROWS_PER_CHUNK`] rows read page by page from the database:
/// memory stays flat whatever the run's size.
pub fn chunks(
    store: &Store,
    scenarios: Vec<ScenarioRecord>,
) -> BoxStream<'static, Result<Vec<u8>, StoreError>> {
    struct Cursor {
        store: Store,
        scenarios: std::vec::IntoIter<ScenarioRecord>,
        current: Option<ScenarioRecord>,
        after: Option<(i64, String)>,
        header: bool,
    }
    let cursor = Cursor {
        store: store.clone(),
        scenarios: scenarios.into_iter(),
        current: None,
        after: None,
        header: true,
    };
    futures_util::stream::try_unfold(cursor, |mut c| async move {
        if std::mem::take(&mut c.header) {
            return Ok(Some((CSV_HEADER.as_bytes().to_vec(), c)));
        }
        loop {
            let Some(scenario) = c.current.clone().or_else(|| c.scenarios.next()) else {
                return Ok(None);
            };
            let after = c.after.as_ref().map(|(e, t)| (*e, t.as_str()));
            let rows = c
                .store
                .bus_intervals_page(scenario.id, after, ROWS_PER_CHUNK)
                .await?;
            let Some(last) = rows.last() else {
                c.current = None;
                c.after = None;
                continue;
            };
            c.after = Some((last.elapsed_ms, last.transaction.clone()));
            c.current = Some(scenario.clone());
            let mut out = String::with_capacity(rows.len() * 64);
            push_csv(&mut out, &scenario.name, scenario.concurrency, &rows);
            return Ok(Some((out.into_bytes(), c)));
        }
    })
    .boxed()
}

/// Writes a run's `transactions.csv` under a temporary name, then renames
/// it into place.
pub async fn write_file(store: &Store, run_id: i64, path: &Path) -> Result<(), ReportError> {
    use std::io::Write as _;
    let scenarios = store.scenarios(run_id).await?;
    let partial = super::partial_path(path);
    let write_error = |source| ReportError::Write {
        path: path.display().to_string(),
        source,
    };
    let result = async {
        let mut file =
            std::io::BufWriter::new(std::fs::File::create(&partial).map_err(write_error)?);
        let mut chunks = chunks(store, scenarios);
        while let Some(chunk) = chunks.next().await {
            file.write_all(&chunk?).map_err(write_error)?;
        }
        file.into_inner()
            .map_err(|e| write_error(e.into_error()))?
            .sync_all()
            .map_err(write_error)?;
        std::fs::rename(&partial, path).map_err(write_error)
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(
        transaction: &str,
        elapsed_ms: i64,
        requests: i64,
        p99: f64,
    ) -> TransactionInterval {
        TransactionInterval {
            transaction: transaction.into(),
            elapsed_ms,
            at_ms: 1_000_000 + elapsed_ms,
            requests,
            errors: 1,
            exceptions: 0,
            transactions: requests,
            p50_ms: Some(p99 / 2.0),
            p90_ms: Some(p99 * 0.9),
            p99_ms: Some(p99),
            max_ms: Some(p99 + 1.0),
        }
    }

    #[test]
    fn buckets_add_counts_and_keep_the_peaks() {
        let rows = [
            interval("a", 0, 10, 5.0),
            interval("a", 1000, 20, 9.0),
            interval("b", 1000, 1, 1.0),
            interval("a", 2000, 5, 2.0),
        ];
        let merged = bucketed(&rows, 2000);
        assert_eq!(merged.len(), 3);
        assert_eq!(
            (
                merged[0].transaction.as_str(),
                merged[0].requests,
                merged[0].errors
            ),
            ("a", 30, 2)
        );
        assert_eq!(merged[0].p99_ms, Some(9.0));
        assert_eq!(merged[1].transaction, "b");
        assert_eq!((merged[2].elapsed_ms, merged[2].at_ms), (2000, 1_002_000));
        assert_eq!(bucketed(&rows, 1000), rows.to_vec());
    }

    #[test]
    fn csv_rows_quote_what_needs_quoting() {
        let mut out = String::new();
        let mut row = interval("pay, then \"ship\"", 0, 3, 4.0);
        row.p90_ms = None;
        push_csv(&mut out, "scenario1", 1, &[row]);
        assert_eq!(
            out,
            "scenario1,1,\"pay, then \"\"ship\"\"\",0,1000000,3,1,0,3,2,,4,5\n"
        );
        assert_eq!(CSV_HEADER.split(',').count(), out.split(',').count() - 1);
    }

    #[test]
    fn charts_draw_each_transaction_and_the_concurrency() {
        let rows = [interval("a", 0, 10, 5.0), interval("b", 0, 3, 8.0)];
        let reports = [ConcurrencyPoint {
            elapsed_ms: 1000,
            at_ms: 0,
            required: 4,
            actual: 3,
            runners: 1,
        }];
        let specs = charts(7, &rows, &reports, chart_bucket(1000)).expect("charts");
        assert_eq!(specs.len(), MITE_CHARTS);
        assert!(specs[0].option_json.contains("\"a p99\""));
        assert!(specs[0].option_json.contains("\"b p50\""));
        assert!(specs[1].option_json.contains("\"b\""));
        assert!(specs[2].option_json.contains("\"required\""));
        assert_eq!(specs[2].slot, 2);
        assert_eq!(specs[2].group, "scenario-7");
    }
}
