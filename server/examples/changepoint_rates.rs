//! The change-point detector on synthetic series (BENCHMARKS.md): how often
//! and how soon it finds a step, how often it raises a false alarm, whether
//! it flags creep, and what one analysis costs. Points are added one at a
//! time, as a lab adds them, and the detector reads the series after each.
//!
//! `cargo run --release --example changepoint_rates [SEEDS]` (default 200);
//! `bench/changepoint-detection` runs it.

use std::time::Instant;

use domain::compare::Better;
use mite_perf::trend::changepoint::{analyse, Analysis, Confidence, Settings};
use mite_perf::trend::synthetic::series;

fn read(values: &[f64], releases: &[usize]) -> Analysis {
    analyse(values, Better::Higher, releases, &Settings::default()).expect("a valid series")
}

/// Points after the step (itself included) until it is seen near where it
/// is (within one point), flagged, suspected or confirmed.
fn latency(values: &[f64], at: usize, confirmed: bool) -> Option<usize> {
    (at + 1..=values.len()).find_map(|end| {
        read(&values[..end], &[])
            .changes()
            .any(|s| {
                s.index.abs_diff(at) <= 1
                    && s.worse
                    && (!confirmed || s.confidence == Confidence::Confirmed)
            })
            .then_some(end - at)
    })
}

fn median(mut values: Vec<usize>) -> Option<usize> {
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

fn main() {
    let seeds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);

    // Steps of 5 % down after 30 points, at 1 % noise, 12 points after.
    let (mut seen, mut confirmed) = (Vec::new(), Vec::new());
    for seed in 0..seeds {
        let values = series(&[(30, 1000.0), (12, 950.0)], 0.01, seed);
        seen.extend(latency(&values, 30, false));
        confirmed.extend(latency(&values, 30, true));
    }
    let within = |v: &[usize], n: usize| v.iter().filter(|&&l| l <= n).count();
    println!(
        "step of 5 % at 1 % noise: seen within 4 points after in {} of {seeds} series \
         (median {} point(s)); confirmed within 4 in {}, within 12 in {} (median {})",
        within(&seen, 4),
        median(seen.clone()).map_or("-".into(), |m| m.to_string()),
        within(&confirmed, 4),
        confirmed.len(),
        median(confirmed.clone()).map_or("-".into(), |m| m.to_string()),
    );

    // Flat series of 200 points at 2 % noise, read after every point.
    let (mut alarmed, mut suspected_only, mut creeping) = (0, 0, 0);
    let started = Instant::now();
    let mut reads = 0u32;
    for seed in 0..seeds {
        let values = series(&[(200, 500.0)], 0.02, 10_000 + seed);
        let (mut confirmed_once, mut suspected_once, mut creep_once) = (false, false, false);
        for end in 2..=values.len() {
            let analysis = read(&values[..end], &[]);
            reads += 1;
            for change in analysis.changes() {
                match change.confidence {
                    Confidence::Confirmed => confirmed_once = true,
                    Confidence::Suspected => suspected_once = true,
                }
            }
            creep_once |= analysis.creep.is_some();
        }
        alarmed += usize::from(confirmed_once);
        suspected_only += usize::from(suspected_once && !confirmed_once);
        creeping += usize::from(creep_once);
    }
    let per_read = started.elapsed().as_secs_f64() / f64::from(reads);
    println!(
        "flat, 200 points at 2 % noise, read after every point: a confirmed change in \
         {alarmed} of {seeds} series, a suspected one only in {suspected_only}, creep in \
         {creeping}"
    );

    // Eight steps of 1 % down, 6 points each, at 1 % noise.
    let levels: Vec<(usize, f64)> = (0..9).map(|k| (6, 1000.0 * 0.99f64.powi(k))).collect();
    let flagged = (0..seeds)
        .filter(|&seed| {
            read(&series(&levels, 0.01, 20_000 + seed), &[0])
                .creep
                .is_some()
        })
        .count();
    println!(
        "creep of eight 1 % steps (6 points each, 1 % noise): flagged in {flagged} of {seeds}"
    );

    println!(
        "cost: {:.2} ms per read of up to 200 points (mean over {reads} reads)",
        per_read * 1000.0
    );
}
