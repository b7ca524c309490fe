//! The CI gate's verdict on a comparison of two builds: which figures
//! regressed, improved, did not change, or could not be told, with the
//! p-values corrected for the number of figures tested
//! (Benjamini–Hochberg), so that a pull request judged on 30 figures does
//! not fail by chance one time in four.
//!
//! A figure regressed when its corrected p is below `alpha` *and* it moved
//! at least `threshold` the wrong way; a move past the threshold that is
//! not significant after the correction (or that could not be tested) is
//! inconclusive; so is every figure of a scenario measured while the
//! machine was busy: such a scenario gives no verdict at all.
//!
//! Nor does the gate call a figure "no change" when its test could not
//! have seen a change of the threshold's size: each figure's floor (the
//! smallest change its test finds [`FLOOR_POWER`] of the time, with the
//! repeats it had) is computed again at the gate's level for one figure,
//! `alpha / m` over the `m` figures tested (the level Benjamini–Hochberg
//! holds a lone change to), and a figure whose floor is above the
//! threshold is inconclusive, the floor said in its reason.

use domain::compare::{
    Better, ComparisonReport, FigureRow, Floor, ALPHA, DEFAULT_THRESHOLD, FLOOR_POWER,
};
use domain::validity::Issue;

use super::stats::floor_at;

/// What the gate asks of a change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateSettings {
    /// The corrected p-value a change must be below (1 % by default).
    pub alpha: f64,
    /// The smallest move that counts (5 % by default).
    pub threshold: f64,
}

impl Default for GateSettings {
    fn default() -> Self {
        GateSettings {
            alpha: ALPHA,
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

/// The gate's call on one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    Regression,
    Inconclusive,
    Improvement,
    NoChange,
}

impl Call {
    pub fn as_str(&self) -> &'static str {
        match self {
            Call::Regression => "regression",
            Call::Inconclusive => "inconclusive",
            Call::Improvement => "improvement",
            Call::NoChange => "no change",
        }
    }
}

/// One figure as the gate sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct GateRow {
    /// Index into the report's rows.
    pub row: usize,
    pub call: Call,
    /// The p-value after the correction, when the figure was tested.
    pub adjusted_p: Option<f64>,
    /// Why it is inconclusive, when it is.
    pub why: Option<String>,
    /// The smallest change its test could have seen at the gate's level
    /// for one figure (`alpha / m`), when it was tested.
    pub floor: Option<Floor>,
}

/// The gate's verdict on a whole comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct GateVerdict {
    pub settings: GateSettings,
    pub rows: Vec<GateRow>,
    /// Figures with a p-value (the correction's count: at least the
    /// figures a run that stops once decided will test in all).
    pub tested: usize,
}

impl GateVerdict {
    pub fn count(&self, call: Call) -> usize {
        self.rows.iter().filter(|r| r.call == call).count()
    }

    /// Rows with `call`, in the report's order.
    pub fn with(&self, call: Call) -> impl Iterator<Item = &GateRow> {
        self.rows.iter().filter(move |r| r.call == call)
    }
}

/// Benjamini–Hochberg adjusted p-values, in the order given:
/// `p_(i) · m / i`, made monotone from the largest down, at most 1.
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![1.0; m];
    let mut smallest_after = 1.0_f64;
    for (rank, &index) in order.iter().enumerate().rev() {
        let scaled = p_values[index] * m as f64 / (rank + 1) as f64;
        smallest_after = smallest_after.min(scaled);
        adjusted[index] = smallest_after.clamp(0.0, 1.0);
    }
    adjusted
}

/// Whether a scenario of `concurrency` was measured on a busy machine
/// (either side).
pub(crate) fn busy(report: &ComparisonReport, concurrency: u32) -> bool {
    report.validity.iter().any(|side| {
        side.concurrency == concurrency && side.flags.iter().any(|f| f.issue == Issue::MachineBusy)
    })
}

/// The move of `row` the wrong way (positive) or the right way (negative),
/// as a share of the base's median.
fn worsening(row: &FigureRow) -> Option<f64> {
    let c = row.comparison.as_ref()?;
    Some(match row.figure.better() {
        Better::Higher => -c.change,
        Better::Lower => c.change,
    })
}

/// Judges `report` with `settings`.
pub fn judge(report: &ComparisonReport, settings: GateSettings) -> GateVerdict {
    judge_among(report, settings, 0)
}

/// Judges `report` with `settings` as one part of a comparison that will
/// test at least `tests` figures in all (a run that stops once decided,
/// judged before its last concurrency ran): the figures not tested yet
/// count in the correction with p = 1, the most they can add.
pub fn judge_among(report: &ComparisonReport, settings: GateSettings, tests: usize) -> GateVerdict {
    let tested: Vec<(usize, f64)> = report
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, row)| Some((i, row.comparison.as_ref()?.p_value?)))
        .filter(|(_, p)| p.is_finite())
        .collect();
    let mut p_values: Vec<f64> = tested.iter().map(|(_, p)| *p).collect();
    p_values.resize(p_values.len().max(tests), 1.0);
    let m = p_values.len();
    let adjusted = benjamini_hochberg(&p_values);
    // The level a lone change is held to: its floor's.
    let level = settings.alpha / m.max(1) as f64;
    let adjusted_of = |i: usize| {
        tested
            .iter()
            .position(|(row, _)| *row == i)
            .map(|k| adjusted[k])
    };
    let rows = report
        .rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let adjusted_p = adjusted_of(i);
            let floor = row
                .comparison
                .as_ref()
                .and_then(|c| c.floor.as_ref())
                .and_then(|f| floor_at(&f.basis, level));
            let (call, why) = if row.comparison.is_none() {
                (
                    Call::Inconclusive,
                    Some("not measured on both sides".to_string()),
                )
            } else if busy(report, row.concurrency) {
                (
                    Call::Inconclusive,
                    Some("the machine was busy while this scenario ran".to_string()),
                )
            } else {
                let moved = worsening(row).unwrap_or(0.0);
                let past = moved.abs() >= settings.threshold;
                let significant = adjusted_p.is_some_and(|p| p < settings.alpha);
                let single = row.comparison.as_ref().is_some_and(|c| c.single_repeat);
                let change = row.comparison.as_ref().map_or(0.0, |c| c.change);
                match (past, significant) {
                    (false, _) => match floor.filter(|f| f.change > settings.threshold) {
                        Some(f) => (
                            Call::Inconclusive,
                            Some(format!(
                                "moved {:+.1} %, but {}, not {:.0} %: more repeats or a \
                                 steadier figure would tell",
                                change * 100.0,
                                f.sentence("this check", &row.figure),
                                settings.threshold * 100.0
                            )),
                        ),
                        None => (Call::NoChange, None),
                    },
                    (true, true) if moved > 0.0 => (Call::Regression, None),
                    (true, true) => (Call::Improvement, None),
                    (true, false) => (
                        Call::Inconclusive,
                        Some(match adjusted_p {
                            _ if single => "a side ran once: no test was possible".to_string(),
                            None => "the repeats could not be tested".to_string(),
                            Some(p) => format!(
                                "moved {:+.1} %, but p {} after the correction is not below {}",
                                change * 100.0,
                                p_text(p),
                                settings.alpha
                            ),
                        }),
                    ),
                }
            };
            GateRow {
                row: i,
                call,
                adjusted_p,
                why,
                floor,
            }
        })
        .collect();
    GateVerdict {
        settings,
        rows,
        tested: m,
    }
}

/// `changes of 2.1 % or more`: what [`FLOOR_POWER`] means, for a summary.
pub fn floor_meaning() -> String {
    format!(
        "the smallest change its test finds {:.0} % of the time, with the repeats it had, \
         at the level of one figure after the correction",
        FLOOR_POWER * 100.0
    )
}

/// A p-value as a table shows it.
pub fn p_text(p: f64) -> String {
    if p < 0.0001 {
        "< 0.0001".to_string()
    } else {
        format!("{p:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::compare::{Comparison, Figure, Side, SideFlags, Verdict};
    use domain::validity::ValidityFlag;

    fn side(run_id: i64, build: usize) -> Side {
        Side {
            run_id,
            build,
            label: "ci".into(),
            build_name: format!("b{build}"),
        }
    }

    fn row(figure: Figure, concurrency: u32, change: f64, p: Option<f64>) -> FigureRow {
        FigureRow {
            concurrency,
            figure,
            base: vec![],
            new: vec![],
            base_spread: None,
            new_spread: None,
            comparison: Some(Comparison {
                base_median: 100.0,
                new_median: 100.0 * (1.0 + change),
                change,
                ratio: 1.0 + change,
                ratio_interval: None,
                p_value: p,
                verdict: Verdict::NoSignificantChange,
                single_repeat: p.is_none(),
                looks: 1,
                floor: None,
            }),
        }
    }

    fn report(rows: Vec<FigureRow>) -> ComparisonReport {
        ComparisonReport {
            base: side(1, 0),
            new: side(1, 1),
            threshold: 0.05,
            rows,
            warnings: vec![],
            unmatched: vec![],
            validity: vec![],
            profiles: vec![],
            dependencies: None,
        }
    }

    #[test]
    fn benjamini_hochberg_matches_the_textbook_example() {
        // p-values and their adjustments as R's p.adjust(method = "BH") gives them.
        let p = [0.01, 0.04, 0.03, 0.005, 0.5];
        let adjusted = benjamini_hochberg(&p);
        let expected = [0.025, 0.05, 0.05, 0.025, 0.5];
        for (a, e) in adjusted.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{adjusted:?}");
        }
        assert!(benjamini_hochberg(&[]).is_empty());
        assert_eq!(benjamini_hochberg(&[0.9, 0.9]), vec![0.9, 0.9]);
    }

    #[test]
    fn a_real_slowdown_is_a_regression_and_a_small_or_chance_one_is_not() {
        let rows = vec![
            // 20 % fewer requests per CPU-second, p 1e-6: a regression.
            row(Figure::RequestsPerRunnerCpuSecond, 100, -0.20, Some(1e-6)),
            // 2 % worse, significant: under the threshold, no change.
            row(Figure::RequestsPerSecond, 100, -0.02, Some(1e-6)),
            // 12 % less memory, significant: an improvement (lower is better).
            row(Figure::MibPerJourney, 100, -0.12, Some(1e-5)),
            // 8 % worse with p 0.008: significant alone, not after the
            // correction over six figures: inconclusive.
            row(Figure::RequestsPerSecond, 10, -0.08, Some(0.008)),
            row(Figure::MibPerJourney, 10, 0.01, Some(0.5)),
            row(Figure::MibPerJourney, 1, 0.01, Some(0.6)),
        ];
        let verdict = judge(&report(rows), GateSettings::default());
        let calls: Vec<Call> = verdict.rows.iter().map(|r| r.call).collect();
        assert_eq!(
            calls,
            vec![
                Call::Regression,
                Call::NoChange,
                Call::Improvement,
                Call::Inconclusive,
                Call::NoChange,
                Call::NoChange
            ]
        );
        assert_eq!(verdict.tested, 6);
        let why = verdict.rows[3].why.as_deref().unwrap_or_default();
        assert!(why.contains("-8.0 %") && why.contains("0.0120"), "{why}");
    }

    #[test]
    fn thirty_null_figures_rarely_fail_a_pull_request() {
        // Thirty figures with no real change: p uniform. Without the
        // correction, some p < 0.01 in 1 - 0.99^30 = 26 % of pull requests;
        // with it, in about 1 %. Drawn deterministically.
        let mut state = 0x2545F4914F6CDD1D_u64;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let trials = 2000;
        let (mut raw, mut corrected) = (0, 0);
        for _ in 0..trials {
            let rows: Vec<FigureRow> = (0..30)
                .map(|_| row(Figure::RequestsPerSecond, 10, -0.06, Some(uniform())))
                .collect();
            if rows
                .iter()
                .any(|r| r.comparison.as_ref().and_then(|c| c.p_value) < Some(0.01))
            {
                raw += 1;
            }
            if judge(&report(rows), GateSettings::default()).count(Call::Regression) > 0 {
                corrected += 1;
            }
        }
        let raw = raw as f64 / trials as f64;
        let corrected = corrected as f64 / trials as f64;
        assert!((0.22..0.31).contains(&raw), "raw {raw}");
        assert!(corrected < 0.02, "corrected {corrected}");
    }

    #[test]
    fn a_busy_machine_or_a_missing_side_gives_no_verdict() {
        let mut busy = report(vec![
            row(Figure::RequestsPerRunnerCpuSecond, 100, -0.30, Some(1e-9)),
            row(Figure::RequestsPerRunnerCpuSecond, 10, -0.30, Some(1e-9)),
        ]);
        busy.validity.push(SideFlags {
            side: "run 1 build 2".into(),
            concurrency: 100,
            flags: vec![ValidityFlag {
                issue: Issue::MachineBusy,
                sentence: "busy".into(),
            }],
        });
        busy.rows.push(FigureRow {
            comparison: None,
            ..row(Figure::RequestsPerSecond, 1000, 0.0, None)
        });
        let verdict = judge(&busy, GateSettings::default());
        let calls: Vec<Call> = verdict.rows.iter().map(|r| r.call).collect();
        assert_eq!(
            calls,
            vec![Call::Inconclusive, Call::Regression, Call::Inconclusive]
        );
        assert!(verdict.rows[0]
            .why
            .as_deref()
            .is_some_and(|w| w.contains("busy")));
    }

    /// A floor from a spread of `sd` on the logarithm, `n` repeats a side.
    fn with_floor(mut row: FigureRow, sd: f64, n: usize) -> FigureRow {
        let basis = domain::compare::FloorBasis {
            sd,
            spread: domain::compare::SpreadSource::Own {
                df: 2 * n as u32 - 2,
            },
            base_repeats: n,
            new_repeats: n,
            share: 1.0,
            at_most: None,
        };
        if let Some(c) = row.comparison.as_mut() {
            c.floor = floor_at(&basis, ALPHA);
        }
        row
    }

    #[test]
    fn no_change_its_test_could_not_have_seen_is_inconclusive() {
        let rows = vec![
            // 1 % moved, but 5 % spread over 3 repeats a side: blind.
            with_floor(
                row(Figure::RequestsPerRunnerCpuSecond, 10, -0.01, Some(0.3)),
                0.05,
                3,
            ),
            // 1 % moved, 0.2 % spread over 5 a side: it could have seen 5 %.
            with_floor(
                row(Figure::RequestsPerSecond, 10, 0.01, Some(0.4)),
                0.002,
                5,
            ),
        ];
        let verdict = judge(&report(rows), GateSettings::default());
        let calls: Vec<Call> = verdict.rows.iter().map(|r| r.call).collect();
        assert_eq!(calls, vec![Call::Inconclusive, Call::NoChange]);
        let why = verdict.rows[0].why.as_deref().unwrap_or_default();
        assert!(
            why.contains("this check could see changes of")
                && why.contains("or more in requests per runner CPU-s, not 5 %"),
            "{why}"
        );
        // Its floor at the gate's level for one of two figures (0.005),
        // stricter than the comparison's own (0.01).
        let gate_floor = verdict.rows[1].floor.expect("a floor").change;
        assert!(gate_floor <= 0.05, "{gate_floor}");
        assert_eq!(verdict.rows[1].floor.map(|f| f.alpha), Some(0.005));
        // Counted among 1,000 figures, even the steady one cannot see 5 %.
        let steady = vec![with_floor(
            row(Figure::RequestsPerSecond, 10, 0.01, Some(0.4)),
            0.01,
            5,
        )];
        assert_eq!(
            judge(&report(steady.clone()), GateSettings::default()).rows[0].call,
            Call::NoChange
        );
        let among = judge_among(&report(steady), GateSettings::default(), 1000);
        assert_eq!(among.rows[0].call, Call::Inconclusive);
        assert_eq!(among.tested, 1000);
    }

    #[test]
    fn the_settings_move_the_line() {
        let rows = vec![row(Figure::RequestsPerSecond, 10, -0.07, Some(0.001))];
        let strict = GateSettings {
            alpha: 0.01,
            threshold: 0.10,
        };
        assert_eq!(
            judge(&report(rows.clone()), strict).rows[0].call,
            Call::NoChange
        );
        let loose = GateSettings {
            alpha: 0.01,
            threshold: 0.05,
        };
        assert_eq!(judge(&report(rows), loose).rows[0].call, Call::Regression);
    }
}
