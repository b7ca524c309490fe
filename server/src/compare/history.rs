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
