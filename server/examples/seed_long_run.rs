//! Stores a synthetic run, for benchmarks of the pages and downloads on big
//! runs (BENCHMARKS.md): `scenarios` scenarios of `seconds` seconds each,
//! sampled every `interval_ms` (1000 by default), five processes per
//! sample. With `running` last, its last scenario is left running, as a
//! live run's is; otherwise every scenario ends as a real one does (figures
//! and chart overview kept).
//!
//! cargo run --release --example seed_long_run -- DATABASE_URL SCENARIOS SECONDS [INTERVAL_MS] [running [MEASURED_SECONDS]]
//! prints the run's id. MEASURED_SECONDS (default SECONDS) is how far the
//! running scenario has got.

use mite_perf::figures::RunningFigures;
use mite_perf::model::{ProcessKind, RunParams, RunStatus, Sample, ScenarioStatus};
use mite_perf::reports::chart;
use mite_perf::store::{RunEnvironment, SampleBatch, Store};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "sqlite://output/bench.db".into());
    let scenarios: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(4);
    let seconds: i64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3600);
    let interval_ms: i64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let leave_running = args.next().as_deref() == Some("running");
    let measured: i64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(seconds);
    let store = Store::connect(&url).await?;
    let concurrencies: Vec<u32> = [1, 10, 100, 1000]
        .iter()
        .cycle()
        .take(scenarios as usize)
        .copied()
        .collect();
    let params = RunParams {
        label: format!("synthetic {scenarios}x{seconds}s"),
        concurrencies: concurrencies.clone(),
        duration_ms: seconds as u64 * 1000,
        interval_ms: interval_ms as u64,
        ..RunParams::default()
    };
    let run = store.create_run(&params, RunStatus::Running).await?;
    let env = RunEnvironment {
        mite_version: "2.11.0".into(),
        python_version: "3.11.7".into(),
        host: "synthetic".into(),
        cores: 2,
    };
    store
        .start_run(run, &env, "/nonexistent", std::process::id())
        .await?;
    let t0 = 1_795_000_000_000i64;
    let writer = store.sample_writer().await?;
    for (position, c) in concurrencies.iter().enumerate() {
        let last = leave_running && position + 1 == concurrencies.len();
        let ticks = if last { measured } else { seconds } * 1000 / interval_ms;
        let scenario = store
            .create_scenario(
                run,
                position as i64,
                domain::builds::Slot::once(*c),
                &params,
            )
            .await?;
        store.start_scenario(scenario, t0).await?;
        let mut total = 0i64;
        let mut figures = RunningFigures::default();
        // 600 ticks (3,000 rows) per transaction.
        for chunk in (1..=ticks).collect::<Vec<_>>().chunks(600) {
            let mut batch = Vec::new();
            for &tick in chunk {
                let elapsed = tick * interval_ms;
                let wave = ((elapsed as f64 / 1000.0) / 37.0).sin();
                let served = (3000 + (500.0 * wave) as i64) * interval_ms / 1000;
                total += served;
                for (i, kind) in ProcessKind::ALL.iter().enumerate() {
                    let is_target = *kind == ProcessKind::Target;
                    batch.push(Sample {
                        process: *kind,
                        pid: 1000 + i as i64,
                        at_ms: t0 + elapsed,
                        elapsed_ms: elapsed,
                        cpu: 10.0 + 15.0 * i as f64 + 5.0 * wave,
                        mem: 40 * 1024 * 1024 + i as i64 * 1_000_000 + tick * 10,
                        requests: is_target.then_some(total),
                        requests_in_interval: is_target.then_some(served),
                        detail: None,
                    });
                }
            }
            for sample in &batch {
                figures.add(sample);
            }
            writer
                .write(&[SampleBatch {
                    scenario_id: scenario,
                    samples: batch,
                    figures: Some(figures.figures()),
                    bus: None,
                }])
                .await?;
        }
        if last {
            break;
        }
        store
            .finish_scenario(
                scenario,
                ScenarioStatus::Done,
                None,
                None,
                &figures.figures(),
            )
            .await?;
        if let Some(record) = store.scenario(scenario).await? {
            let overview = chart::scenario_charts(&store, &record, None).await?;
            store.save_overview(scenario, &overview).await?;
        }
    }
    if !leave_running {
        store.finish_run(run, RunStatus::Done, None).await?;
    }
    println!("{run}");
    Ok(())
}
