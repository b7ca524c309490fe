//! A run that stops adding repeats once every figure is decided
//! ([`RunParams::stop`]): after each round of a concurrency (a repeat of
//! each build) from the second on, its builds are compared (or its one
//! build against the run it is compared to) with the group-sequential
//! test, and once [`crate::compare::stopping::undecided`] finds no figure
//! more repeats could decide, the concurrency's remaining repeats are
//! skipped, each saying why.

use domain::builds::Slot;
use domain::model::{StopAgainst, StopRule};
use domain::series::machine_facts;

use crate::compare::sides::{load_side, SideData, SideSpec};
use crate::compare::{history_for, report::build_report_with, stopping::undecided};
use crate::model::RunParams;
use crate::store::Store;

/// Whether the scenario at `position` of `slots` ends a round of its
/// concurrency that gives each build at least two repeats.
pub fn ends_a_round(slots: &[Slot], position: usize) -> bool {
    let Some(slot) = slots.get(position) else {
        return false;
    };
    let next_in_round = slots
        .get(position + 1)
        .is_some_and(|next| next.concurrency == slot.concurrency && next.repeat == slot.repeat);
    !next_in_round && slot.repeat >= 1
}

/// The positions after `position` of the same concurrency: the repeats a
/// decided concurrency skips.
pub fn rest_of_concurrency(slots: &[Slot], position: usize) -> Vec<usize> {
    let Some(slot) = slots.get(position) else {
        return Vec::new();
    };
    (position + 1..slots.len())
        .take_while(|&p| slots[p].concurrency == slot.concurrency)
        .collect()
}

/// The sides the rule compares: the run's two builds, or the other run
/// against this run's one build.
fn sides(run_id: i64, rule: &StopRule) -> (SideSpec, SideSpec) {
    match rule.against {
        None => (
            SideSpec::Run {
                run_id,
                build: Some(0),
            },
            SideSpec::Run {
                run_id,
                build: Some(1),
            },
        ),
        Some(StopAgainst {
            run_id: other,
            build,
            ..
        }) => (
            SideSpec::Run {
                run_id: other,
                build,
            },
            SideSpec::Run {
                run_id,
                build: Some(0),
            },
        ),
    }
}

/// What a concurrency's comparison says after a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    /// Every figure decided: skip the rest.
    Decided,
    /// These figures are not decided yet.
    Undecided(Vec<String>),
    /// It cannot be judged (a side unreadable, another machine): every
    /// repeat runs.
    Unjudged(String),
}

/// Judges `concurrency` of run `run_id` under `rule`, from what is stored.
pub async fn judge(store: &Store, run_id: i64, params: &RunParams, concurrency: u32) -> Judged {
    let Some(rule) = params.stop.as_ref() else {
        return Judged::Unjudged("the run has no stopping rule".into());
    };
    let (base, new) = sides(run_id, rule);
    let loaded = async {
        let base = load_side(store, base, None).await?;
        let new = load_side(store, new, None).await?;
        Ok::<(SideData, SideData), crate::compare::sides::SideError>((base, new))
    };
    let (base, new) = match loaded.await {
        Ok(sides) => sides,
        Err(e) => return Judged::Unjudged(e.to_string()),
    };
    let across = rule.against.is_some_and(|a| a.across_machines);
    if let (Some(b), Some(n)) = (&base.provenance, &new.provenance) {
        let (b, n) = (machine_facts(b), machine_facts(n));
        if b != n && !across {
            return Judged::Unjudged(format!(
                "the run compared to ran on another machine ({b} against {n})"
            ));
        }
    }
    let history = history_for(store, &base, &new).await;
    // The gate's level is its own (after the correction); compare's is
    // the rule's.
    let alpha = if rule.gate {
        domain::compare::ALPHA
    } else {
        rule.alpha
    };
    let report = build_report_with(&base, &new, rule.threshold, alpha, &history);
    let figures_here = report
        .rows
        .iter()
        .filter(|r| r.concurrency == concurrency && r.comparison.is_some())
        .count();
    // Every concurrency the run measures tests about as many figures.
    let tests = figures_here * params.concurrencies.len();
    let open = undecided(&report, concurrency, rule, tests);
    if figures_here == 0 {
        Judged::Unjudged(format!("no figure of {concurrency} journeys on both sides"))
    } else if open.is_empty() {
        Judged::Decided
    } else {
        Judged::Undecided(open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::builds::plan;

    #[test]
    fn a_round_ends_with_each_builds_repeat_from_the_second_on() {
        // Two builds, three repeats, two concurrencies: A B, B A, A B.
        let slots = plan(&[10, 100], 2, 3, &[None]);
        let ends: Vec<usize> = (0..slots.len())
            .filter(|&p| ends_a_round(&slots, p))
            .collect();
        // Rounds end at positions 1, 3, 5 (10) and 7, 9, 11 (100); the
        // first round of each has one repeat a build: no test yet.
        assert_eq!(ends, vec![3, 5, 9, 11]);
        assert_eq!(rest_of_concurrency(&slots, 3), vec![4, 5]);
        assert!(rest_of_concurrency(&slots, 5).is_empty());
        // One build against another run: each repeat is a round.
        let alone = plan(&[10], 1, 4, &[None]);
        let ends: Vec<usize> = (0..alone.len())
            .filter(|&p| ends_a_round(&alone, p))
            .collect();
        assert_eq!(ends, vec![1, 2, 3]);
    }
}
