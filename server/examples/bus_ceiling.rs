//! How many of mite's messages a second the lab's bus reader can take:
//! `bench/bus-reader` binds a PUSH socket with pyzmq (libzmq, as mite's
//! duplicator does) on PORT and sends COUNT copies of a real `http_metrics`
//! message as fast as it can; this connects the lab's reader to it, waits
//! for every message, and prints the rate and the reader thread's CPU.
//!
//! Usage: cargo run --release --example bus_ceiling -- PORT COUNT

use std::time::{Duration, Instant};

use mite_perf::bus::BusReader;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().unwrap_or_default().parse()?;
    let count: u64 = args.next().unwrap_or_default().parse()?;
    let reader = BusReader::connect(port, Duration::from_secs(30), None).await?;
    // The clock starts with the first message.
    let mut started = None;
    loop {
        let seen = reader.counts().messages;
        if seen > 0 && started.is_none() {
            started = Some(Instant::now());
        }
        if seen >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let seconds = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    let batch = reader.finish(None, Duration::ZERO).await;
    let requests: i64 = batch.totals.iter().map(|t| t.requests).sum();
    println!(
        "{} messages ({requests} requests counted) in {seconds:.2} s: {:.0} messages/s; \
         reader CPU {} ms ({:.1} µs a message)",
        batch.counts.messages,
        batch.counts.messages as f64 / seconds.max(1e-9),
        batch.counts.reader_cpu_ms,
        batch.counts.reader_cpu_ms as f64 * 1000.0 / batch.counts.messages.max(1) as f64
    );
    Ok(())
}
