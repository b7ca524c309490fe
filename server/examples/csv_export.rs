//! Where the time of a CSV export goes (BENCHMARKS.md): reading a run's
//! samples from the database, and reading and formatting them as the
//! downloads do, each timed on its own.
//!
//! cargo run --release --example csv_export -- DATABASE_URL RUN_ID

use std::time::Instant;

use futures_util::StreamExt;

use mite_perf::reports::csv;
use mite_perf::store::{SampleSource, Store};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "sqlite://output/bench.db".into());
    let run: i64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let store = Store::connect(&url).await?;
    for round in 1..=3 {
        let started = Instant::now();
        let mut rows = 0usize;
        let mut batches = store.sample_batches(SampleSource::Run(run));
        while let Some(batch) = batches.next().await {
            rows += batch?.len();
        }
        let read = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let mut bytes = 0usize;
        let mut chunks = csv::chunks(&store, SampleSource::Run(run), csv::Layout::Samples);
        while let Some(chunk) = chunks.next().await {
            bytes += chunk?.len();
        }
        let formatted = started.elapsed().as_secs_f64();
        println!(
            "round {round}: {rows} rows read in {read:.3} s ({:.0} rows/s); read and formatted as CSV ({bytes} bytes) in {formatted:.3} s ({:.0} rows/s)",
            rows as f64 / read,
            rows as f64 / formatted
        );
    }
    Ok(())
}
