//! Each figure's same-build spread from the lab's history: the repeats of
//! one build in one run are one set; sets of the same scenario (its
//! source, journeys, duration and target) on the same machine class give
//! the within-build variance of the figure's logarithm, pooled. A
//! comparison whose sides have too few repeats to tell their own spread
//! (fewer than [`domain::compare::MIN_OWN_SPREAD_DF`] degrees of freedom)
//! takes its floor from it.
//!
//! The figures are kept apart by their key, and each instrument's figures
//! have keys of their own, so a spread is never pooled across
//! instruments either.

use std::collections::BTreeMap;

use domain::compare::Figure;
use domain::provenance::Provenance;
use domain::series::{MachineClass, ScenarioKey};

use super::report::History;
use super::stats::{mean_and_squares, HistorySpread};
use crate::store::{FinishedScenario, Store, StoreError};

/// The same-build spread of every figure of `provenance`'s scenario and
/// machine class (of its build `build`), from the lab's finished runs
/// other than `own`.
pub async fn same_build_history(
    store: &Store,
    provenance: Option<&Provenance>,
    build: usize,
    own: &[i64],
) -> Result<History, StoreError> {
    let Some(provenance) = provenance else {
        return Ok(History::new());
    };
    let scenarios = store.finished_scenarios("").await?;
    Ok(spread_of(&scenarios, provenance, build, own))
}

/// [`same_build_history`] over `scenarios` (pure).
pub fn spread_of(
    scenarios: &[FinishedScenario],
    provenance: &Provenance,
    build: usize,
    own: &[i64],
) -> History {
    let Some(ours) = provenance.builds.get(build) else {
        return History::new();
    };
    let machine = MachineClass::of(provenance, ours);
    // (concurrency, figure, run, build) → the logarithms of its repeats.
    let mut sets: BTreeMap<(u32, String, i64, i64), Vec<f64>> = BTreeMap::new();
    for scenario in scenarios {
        if own.contains(&scenario.run_id) {
            continue;
        }
        let theirs = &scenario.provenance;
        let Some(build) = theirs.builds.get(scenario.build_index as usize) else {
            continue;
        };
        let concurrency = scenario.concurrency as u32;
        if MachineClass::of(theirs, build) != machine
            || ScenarioKey::of(theirs, concurrency) != ScenarioKey::of(provenance, concurrency)
        {
            continue;
        }
        for figure in Figure::all() {
            let Some(value) = figure
                .value(&scenario.figures, concurrency)
                .filter(|v| v.is_finite() && *v > 0.0)
            else {
                continue;
            };
            sets.entry((
                concurrency,
                figure.key(),
                scenario.run_id,
                scenario.build_index,
            ))
            .or_default()
            .push(value.ln());
        }
    }
    let mut history = History::new();
    for ((concurrency, figure, _, _), logs) in sets {
        if logs.len() < 2 {
            continue;
        }
        let (_, squares) = mean_and_squares(&logs);
        let spread = history
            .entry((concurrency, figure))
            .or_insert(HistorySpread {
                squares: 0.0,
                df: 0,
                sets: 0,
            });
        spread.squares += squares;
        spread.df += logs.len() as u32 - 1;
        spread.sets += 1;
    }
    history
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::figures::ScenarioFigures;
    use domain::provenance::BuildProvenance;

    fn provenance(cores: i64) -> Provenance {
        Provenance {
            cpu_model: "AMD EPYC 7B13".into(),
            cores,
            kernel: "6.1.0-18-amd64".into(),
            builds: vec![BuildProvenance {
                mite_version: "2.11.0".into(),
                python_version: "3.11.7".into(),
                ..BuildProvenance::default()
            }],
            ..Provenance::default()
        }
    }

    fn scenario(run_id: i64, cores: i64, concurrency: i64, rps: f64) -> FinishedScenario {
        FinishedScenario {
            run_id,
            run_created_at: 0,
            provenance: provenance(cores),
            build_index: 0,
            concurrency,
            started_at: None,
            figures: ScenarioFigures {
                total_requests: (rps * 10.0) as i64,
                measured_seconds: 10.0,
                mean_requests_per_second: rps,
                peak_requests_per_second: rps,
                requests_per_runner_cpu_second: None,
                processes: vec![],
                steady: None,
                other_cpu: None,
                runners: None,
                runners_peak_rss: None,
                latency_p99_ms: None,
                instruction_totals: vec![],
                instructions: vec![],
            },
        }
    }

    #[test]
    fn same_build_sets_of_this_scenario_and_machine_pool_their_spread() {
        let e = std::f64::consts::E;
        let scenarios = vec![
            // Run 1: ln-values 0 and 2 (squares 2, one degree of freedom).
            scenario(1, 2, 10, 1.0),
            scenario(1, 2, 10, e * e),
            // Run 2: ln-values 1, 1, 4 (squares 6, two degrees).
            scenario(2, 2, 10, e),
            scenario(2, 2, 10, e),
            scenario(2, 2, 10, e.powi(4)),
            // A single repeat says nothing of a spread.
            scenario(3, 2, 10, 5.0),
            // Another machine class and the comparison's own run: left out.
            scenario(4, 8, 10, 1.0),
            scenario(4, 8, 10, 1000.0),
            scenario(9, 2, 10, 1.0),
            scenario(9, 2, 10, 1000.0),
            // Another concurrency: a spread of its own.
            scenario(5, 2, 100, 1.0),
            scenario(5, 2, 100, 1000.0),
        ];
        let history = spread_of(&scenarios, &provenance(2), 0, &[9]);
        let key = domain::compare::Figure::RequestsPerSecond.key();
        let spread = history.get(&(10, key.clone())).expect("a spread");
        assert_eq!((spread.df, spread.sets), (3, 2));
        assert!((spread.squares - 8.0).abs() < 1e-9, "{spread:?}");
        let at_100 = history.get(&(100, key)).expect("its own spread");
        assert_eq!((at_100.df, at_100.sets), (1, 1));
        // A provenance without the build asked for: nothing.
        assert!(spread_of(&scenarios, &provenance(2), 3, &[]).is_empty());
    }
}
