//! The stopping rule's simulation (BENCHMARKS.md): simulated checks of a
//! figure with log-normal repeats, a repeat a side per round from 2 up to
//! the planned most, stopping as soon as the figure is decided; the share
//! called worse and the repeats a side they took, for the lab's
//! group-sequential test and for the same looks each at the whole of
//! alpha. Seeded: the same numbers on every machine.
//! Usage: `cargo run --release --example stopping_rates -- [CHECKS]`.

use mite_perf::compare::simulation::{Check, Looking};

fn main() {
    let checks: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let alpha = domain::compare::ALPHA;
    println!("| spread | change | threshold | test | most repeats | called worse | repeats a side (mean) |");
    println!("|---:|---:|---:|---|---:|---:|---:|");
    for (sd, shift, threshold, looking) in [
        (0.02, 0.0, 0.0001, Looking::Sequential),
        (0.02, 0.0, 0.0001, Looking::Naive),
        (0.01, 0.0, 0.05, Looking::Sequential),
        (0.02, 0.0, 0.05, Looking::Sequential),
        (0.01, 0.03, 0.02, Looking::Sequential),
        (0.01, 0.05, 0.02, Looking::Sequential),
        (0.02, 0.10, 0.05, Looking::Sequential),
    ] {
        for planned in [5, 8] {
            let check = Check {
                planned,
                sd,
                shift,
                threshold,
                alpha,
                looking,
            };
            let (rate, repeats) = check.worse_rate(30, checks);
            println!(
                "| {:.0} % | {:+.0} % | {} % | {} | {planned} | {:.2} % | {repeats:.2} |",
                sd * 100.0,
                shift * 100.0,
                threshold * 100.0,
                match looking {
                    Looking::Sequential => "group-sequential",
                    Looking::Naive => "each look at all of alpha",
                },
                rate * 100.0
            );
        }
    }
}
