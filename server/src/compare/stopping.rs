//! When a run that stops once decided has seen enough of a concurrency
//! (pure): after each round (a repeat of each build), every figure of the
//! concurrency is judged with the group-sequential test of
//! [`super::stats`]; once none is undecided, the concurrency's remaining
//! repeats are skipped.
//!
//! A figure is decided when its test calls it worse or better (at the
//! sequential level: each look spends its share of alpha, so stopping on
//! a "worse" keeps the false-"worse" rate at or under alpha however many
//! looks the run took; [`super::simulation`] shows it), or when it moved
//! less than the threshold and its floor at that look is at or under the
//! threshold (the test could have seen a change of the threshold's size,
//! and did not). Stopping for "no change" only ever removes chances of a
//! false "worse", so it costs the false-positive rate nothing. A figure
//! more repeats cannot decide (measured on one side only, or on a busy
//! machine) does not hold the run.
//!
//! `ci check`'s rule (`gate`) judges as the gate does: Benjamini–Hochberg
//! over every figure the run will test, figures not yet measured counted
//! with p = 1, and the floor at `alpha / m`.

use domain::compare::{Comparison, ComparisonReport, Verdict};
use domain::model::StopRule;

use super::gate::{busy, judge_among, Call, GateSettings};

/// Whether one figure's comparison is decided, compare's way: a verdict
/// of worse or better, or no change the test could have seen.
pub fn figure_decided(c: &Comparison, threshold: f64) -> bool {
    match c.verdict {
        Verdict::Worse | Verdict::Better => true,
        Verdict::NoSignificantChange => c.floor.is_some_and(|f| f.change <= threshold),
        Verdict::Inconclusive => false,
    }
}

/// The figures of `concurrency` in `report` that more repeats could still
/// decide under `rule`, as `figure name`; none: the concurrency is done.
/// `tests`: how many figures the whole run will test (the gate's
/// correction counts them all).
pub fn undecided(
    report: &ComparisonReport,
    concurrency: u32,
    rule: &StopRule,
    tests: usize,
) -> Vec<String> {
    if rule.gate {
        if busy(report, concurrency) {
            return Vec::new();
        }
        let settings = GateSettings {
            alpha: rule.alpha,
            threshold: rule.threshold,
        };
        let verdict = judge_among(report, settings, tests);
        verdict
            .with(Call::Inconclusive)
            .map(|g| &report.rows[g.row])
            .filter(|row| row.concurrency == concurrency && row.comparison.is_some())
            .map(|row| row.figure.name())
            .collect()
    } else {
        report
            .rows
            .iter()
            .filter(|row| row.concurrency == concurrency)
            .filter(|row| {
                row.comparison
                    .as_ref()
                    .is_some_and(|c| !figure_decided(c, rule.threshold))
            })
            .map(|row| row.figure.name())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::stats::{compare_with, Better, Design};
    use domain::compare::{Figure, FigureRow, Side, ALPHA};

    fn row(concurrency: u32, figure: Figure, base: &[f64], new: &[f64]) -> FigureRow {
        FigureRow {
            concurrency,
            figure,
            base: base.to_vec(),
            new: new.to_vec(),
            base_spread: None,
            new_spread: None,
            comparison: compare_with(
                base,
                new,
                figure.better(),
                0.05,
                ALPHA,
                Design::paired(8),
                None,
            )
            .ok(),
        }
    }

    fn report(rows: Vec<FigureRow>) -> ComparisonReport {
        let side = |build| Side {
            run_id: 1,
            build,
            label: String::new(),
            build_name: format!("b{build}"),
        };
        ComparisonReport {
            base: side(0),
            new: side(1),
            threshold: 0.05,
            rows,
            warnings: vec![],
            unmatched: vec![],
            validity: vec![],
            profiles: vec![],
            dependencies: None,
        }
    }

    const STEADY: [f64; 4] = [100.0, 100.2, 99.9, 100.1];

    #[test]
    fn a_steady_unchanged_figure_and_a_clear_change_are_decided() {
        let rule = StopRule {
            threshold: 0.05,
            alpha: ALPHA,
            gate: false,
            against: None,
        };
        let slower = [130.0, 130.5, 129.6, 130.2];
        let noisy = [100.0, 125.0, 82.0, 110.0];
        let report = report(vec![
            row(10, Figure::RequestsPerSecond, &STEADY, &STEADY),
            row(10, Figure::MibPerJourney, &STEADY, &slower),
            row(10, Figure::LatencyP99, &STEADY, &noisy),
            row(100, Figure::RequestsPerSecond, &STEADY, &noisy),
        ]);
        assert_eq!(
            undecided(&report, 10, &rule, 0),
            vec![Figure::LatencyP99.name()]
        );
        assert_eq!(
            undecided(&report, 100, &rule, 0),
            vec![Figure::RequestsPerSecond.name()]
        );
        // Nothing measured at 1000: nothing to wait for.
        assert!(undecided(&report, 1000, &rule, 0).is_empty());
    }

    #[test]
    fn the_gate_counts_the_figures_still_to_come() {
        let rule = StopRule {
            threshold: 0.05,
            alpha: 0.01,
            gate: true,
            against: None,
        };
        let a_bit_noisier = [100.0, 101.0, 99.0, 100.4];
        let rows = vec![
            row(10, Figure::RequestsPerSecond, &STEADY, &STEADY),
            row(10, Figure::MibPerJourney, &STEADY, &a_bit_noisier),
        ];
        let alone = undecided(&report(rows.clone()), 10, &rule, 0);
        let among_many = undecided(&report(rows), 10, &rule, 400);
        // Among 400 figures, the level a figure's floor is held to is
        // 400 times stricter: the noisier figure cannot be told yet.
        assert!(alone.is_empty(), "{alone:?}");
        assert_eq!(among_many, vec![Figure::MibPerJourney.name()]);
        // A figure with one repeat a side (no test): undecided in both.
        let once = report(vec![row(10, Figure::RequestsPerSecond, &[100.0], &[130.0])]);
        assert_eq!(undecided(&once, 10, &rule, 0).len(), 1);
        assert!(figure_decided(
            &compare_with(
                &STEADY,
                &STEADY,
                Better::Higher,
                0.05,
                ALPHA,
                Design::FIXED,
                None
            )
            .expect("ok"),
            0.05
        ));
    }
}
