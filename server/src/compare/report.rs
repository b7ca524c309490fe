//! Two sides compared figure by figure, and what a CI job makes of it.

use std::collections::{BTreeMap, BTreeSet};

use domain::compare::{ComparisonReport, Figure, FigureRow, SideFlags, Spread, Verdict, ALPHA};
use domain::profile::ProfileComparison;
use domain::provenance::{differences, DependencyDifference};

use super::sides::SideData;
use super::stats::{compare_with, Design, Growth, HistorySpread};
use crate::profile::diff::frame_changes;
use crate::profile::folded;

/// Each figure's same-build spread from the lab's history, by concurrency
/// and figure key.
pub type History = BTreeMap<(u32, String), HistorySpread>;

/// How the test reads the two sides: a side's repeats came a round at a
/// time, looked at after each, only when its run stopped once decided on
/// *this* comparison (its two builds against each other, or its one build
/// against the other side's run); any other side was whole when looked at.
pub fn design_of(base: &SideData, new: &SideData) -> Design {
    let growth = |side: &SideData, other: &SideData| {
        let looked = side.stop.as_ref().is_some_and(|rule| match rule.against {
            None => other.side.run_id == side.side.run_id,
            Some(against) => against.run_id == other.side.run_id,
        });
        if looked && side.growth.sequential {
            side.growth
        } else {
            Growth::FIXED
        }
    };
    Design {
        base: growth(base, new),
        new: growth(new, base),
    }
}

/// Compares `new` against `base` with `threshold` (0.05 for 5 %): a row
/// per concurrency both measured and per figure either side has.
pub fn build_report(base: &SideData, new: &SideData, threshold: f64) -> ComparisonReport {
    build_report_with(base, new, threshold, ALPHA, &History::new())
}

/// [`build_report`] at level `alpha`, each figure's floor from
/// `history`'s spread when a side has too few repeats to tell its own.
pub fn build_report_with(
    base: &SideData,
    new: &SideData,
    threshold: f64,
    alpha: f64,
    history: &History,
) -> ComparisonReport {
    let design = design_of(base, new);
    let mut rows = Vec::new();
    let concurrencies: BTreeSet<u32> = base
        .figures
        .keys()
        .chain(new.figures.keys())
        .copied()
        .collect();
    let mut unmatched = Vec::new();
    for concurrency in concurrencies {
        let (Some(base_figures), Some(new_figures)) = (
            base.figures.get(&concurrency),
            new.figures.get(&concurrency),
        ) else {
            unmatched.push(concurrency);
            continue;
        };
        for figure in Figure::all() {
            let values = |all: &[domain::figures::ScenarioFigures]| -> Vec<f64> {
                all.iter()
                    .filter_map(|f| figure.value(f, concurrency))
                    .collect()
            };
            let (base_values, new_values) = (values(base_figures), values(new_figures));
            if base_values.is_empty() && new_values.is_empty() {
                continue;
            }
            let comparison = compare_with(
                &base_values,
                &new_values,
                figure.better(),
                threshold,
                alpha,
                design,
                history.get(&(concurrency, figure.key())).copied(),
            )
            .ok();
            rows.push(FigureRow {
                concurrency,
                figure,
                base_spread: Spread::of(&base_values),
                new_spread: Spread::of(&new_values),
                base: base_values,
                new: new_values,
                comparison,
            });
        }
    }
    let mut warnings = match (&base.provenance, &new.provenance) {
        (Some(b), Some(n)) => differences(b, n),
        _ => vec!["a run predates provenance: whether both ran alike is unknown".to_string()],
    };
    // Each side's own build: a run of several builds has each's packages.
    let build_of = |data: &SideData| {
        data.provenance
            .as_ref()
            .and_then(|p| p.builds.get(data.side.build))
            .cloned()
    };
    let dependencies = match (build_of(base), build_of(new)) {
        (Some(b), Some(n)) => DependencyDifference::between(&b, &n),
        _ => None,
    };
    if let Some(difference) = &dependencies {
        warnings.extend(difference.sentences());
    }
    for (side, data) in [("base", base), ("new", new)] {
        let unstable: Vec<String> = rows
            .iter()
            .filter(|r| r.figure == Figure::RequestsPerSecond)
            .filter(|r| {
                let spread = if side == "base" {
                    &r.base_spread
                } else {
                    &r.new_spread
                };
                spread.is_some_and(|s| s.unstable())
            })
            .map(|r| r.concurrency.to_string())
            .collect();
        if !unstable.is_empty() {
            warnings.push(format!(
                "{}'s repeats disagree by more than {:.0} % on requests/s at concurrency {}: \
                 unstable",
                data.side.title(data.builds_in_run),
                domain::compare::UNSTABLE_SPREAD * 100.0,
                unstable.join(", ")
            ));
        }
    }
    let validity = [base, new]
        .into_iter()
        .flat_map(|data| {
            data.flags
                .iter()
                .filter(|(_, flags)| !flags.is_empty())
                .map(|(concurrency, flags)| SideFlags {
                    side: data.side.title(data.builds_in_run),
                    concurrency: *concurrency,
                    flags: flags.clone(),
                })
        })
        .collect();
    let profiles = base
        .profiles
        .iter()
        .filter_map(|(concurrency, before)| {
            let after = new.profiles.get(concurrency)?;
            Some(ProfileComparison {
                concurrency: *concurrency,
                base_samples: folded::total(&before.stacks),
                new_samples: folded::total(&after.stacks),
                base_requests: before.requests,
                new_requests: after.requests,
                frames: frame_changes(before, after),
            })
        })
        .collect();
    ComparisonReport {
        base: base.side.clone(),
        new: new.side.clone(),
        threshold,
        rows,
        warnings,
        unmatched,
        profiles,
        validity,
        dependencies,
    }
}

/// Whether a CI job should fail on `report`: a figure significantly worse,
/// or with `strict`, one inconclusive too.
pub fn fails(report: &ComparisonReport, strict: bool) -> bool {
    report.count(Verdict::Worse) > 0 || (strict && report.count(Verdict::Inconclusive) > 0)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use domain::compare::Side;
    use domain::figures::{ProcessFigures, ScenarioFigures};
    use domain::model::ProcessKind;

    use super::*;

    fn figures(rps: f64, runner_cpu_share: f64, runner_mib: f64) -> ScenarioFigures {
        ScenarioFigures {
            total_requests: (rps * 10.0) as i64,
            measured_seconds: 10.0,
            mean_requests_per_second: rps,
            peak_requests_per_second: rps * 1.1,
            requests_per_runner_cpu_second: Some(rps / runner_cpu_share),
            processes: vec![ProcessFigures {
                process: ProcessKind::Runner,
                mean_cpu: runner_cpu_share * 100.0,
                peak_cpu: 100.0,
                peak_rss: (runner_mib * 1024.0 * 1024.0) as i64,
                mean_rss: Some((runner_mib * 0.9 * 1024.0 * 1024.0) as i64),
                busy_share: None,
            }],
            steady: None,
            other_cpu: None,
            runners: None,
            runners_peak_rss: None,
            latency_p99_ms: None,
            instruction_totals: Vec::new(),
            instructions: Vec::new(),
        }
    }

    fn side(run_id: i64, by_concurrency: Vec<(u32, Vec<ScenarioFigures>)>) -> SideData {
        SideData {
            side: Side {
                run_id,
                build: 0,
                label: "branch".into(),
                build_name: "2.11.0".into(),
            },
            builds_in_run: 1,
            growth: crate::compare::stats::Growth::FIXED,
            stop: None,
            provenance: None,
            figures: by_concurrency.into_iter().collect::<BTreeMap<_, _>>(),
            scenario_ids: BTreeMap::new(),
            flags: BTreeMap::new(),
            profiles: BTreeMap::new(),
        }
    }

    fn verdict_of(report: &ComparisonReport, figure: Figure) -> Option<Verdict> {
        report
            .rows
            .iter()
            .find(|r| r.figure == figure)
            .and_then(|r| r.comparison.as_ref())
            .map(|c| c.verdict)
    }

    #[test]
    fn a_slower_build_is_worse_and_fails_the_gate() {
        let base = side(
            1,
            vec![(
                10,
                vec![
                    figures(11_600.0, 0.98, 40.0),
                    figures(11_700.0, 0.99, 40.1),
                    figures(11_650.0, 0.98, 40.0),
                ],
            )],
        );
        let new = side(
            2,
            vec![(
                10,
                vec![
                    figures(8_100.0, 0.99, 40.0),
                    figures(8_200.0, 0.98, 40.2),
                    figures(8_150.0, 0.99, 40.1),
                ],
            )],
        );
        let report = build_report(&base, &new, 0.05);
        assert_eq!(
            verdict_of(&report, Figure::RequestsPerSecond),
            Some(Verdict::Worse)
        );
        assert_eq!(
            verdict_of(&report, Figure::RequestsPerRunnerCpuSecond),
            Some(Verdict::Worse)
        );
        assert_eq!(
            verdict_of(&report, Figure::PeakRss(ProcessKind::Runner)),
            Some(Verdict::NoSignificantChange)
        );
        // Processes neither side measured have no rows.
        assert!(report
            .rows
            .iter()
            .all(|r| r.figure != Figure::PeakRss(ProcessKind::Controller)));
        assert!(fails(&report, false));
        assert!(!report.rests_on_single_repeats());
        // The other way round, it is better and passes.
        let reverse = build_report(&new, &base, 0.05);
        assert_eq!(
            verdict_of(&reverse, Figure::RequestsPerSecond),
            Some(Verdict::Better)
        );
        assert!(!fails(&reverse, true));
    }

    #[test]
    fn inconclusive_fails_only_when_strict_and_unmatched_scenarios_are_named() {
        let base = side(
            1,
            vec![
                (1, vec![figures(1000.0, 0.5, 40.0)]),
                (10, vec![figures(5000.0, 0.9, 40.0)]),
            ],
        );
        let new = side(
            2,
            vec![
                (1, vec![figures(800.0, 0.5, 40.0)]),
                (100, vec![figures(9000.0, 1.0, 40.0)]),
            ],
        );
        let report = build_report(&base, &new, 0.05);
        assert_eq!(report.unmatched, vec![10, 100]);
        assert_eq!(
            verdict_of(&report, Figure::RequestsPerSecond),
            Some(Verdict::Inconclusive)
        );
        assert!(report.rests_on_single_repeats());
        assert!(!fails(&report, false));
        assert!(fails(&report, true));
        assert!(report
            .warnings
            .iter()
            .any(|w| w.contains("predates provenance")));
    }

    #[test]
    fn the_builds_dependency_differences_reach_the_report() {
        use domain::dependencies::Resolution;
        use domain::provenance::{BuildProvenance, Provenance};
        let build = |mite: &str, multidict: &str| BuildProvenance {
            asked: mite.into(),
            mite_version: mite.into(),
            resolution: Some(Resolution::Snapshot {
                as_of: "2026-12-07T16:04:46Z".into(),
            }),
            packages: vec![format!("mite=={mite}"), format!("multidict=={multidict}")],
            ..BuildProvenance::default()
        };
        let with = |run_id, builds: Vec<BuildProvenance>, which: usize| {
            let mut data = side(run_id, vec![(10, vec![figures(1000.0, 0.5, 40.0)])]);
            data.builds_in_run = builds.len();
            data.side.build = which;
            data.provenance = Some(Provenance {
                builds,
                ..Provenance::default()
            });
            data
        };
        // One run of two builds: each side is its own build's packages.
        let two = vec![build("2.10.0", "6.9.1"), build("2.11.0", "7.2.1")];
        let report = build_report(&with(1, two.clone(), 0), &with(1, two.clone(), 1), 0.05);
        let difference = report.dependencies.as_ref().expect("a difference");
        assert_eq!(difference.changes.len(), 1, "{difference:?}");
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.ends_with("multidict 6.9.1 → 7.2.1")),
            "{:?}",
            report.warnings
        );
        // The same packages (mite aside): nothing said.
        let same = build_report(&with(1, two.clone(), 0), &with(2, two, 0), 0.05);
        assert_eq!(same.dependencies, None);
        assert!(same.warnings.iter().all(|w| !w.contains("packages")));
    }

    #[test]
    fn a_sides_validity_flags_reach_the_report() {
        let base = side(1, vec![(10, vec![figures(1000.0, 0.5, 40.0)])]);
        let mut new = side(2, vec![(10, vec![figures(1000.0, 0.5, 40.0)])]);
        let flag = domain::validity::ValidityFlag {
            issue: domain::validity::Issue::MessagesDropped,
            sentence: "mite's duplicator dropped 3 messages.".into(),
        };
        new.flags.insert(10, vec![flag.clone()]);
        new.flags.insert(100, vec![]);
        let report = build_report(&base, &new, 0.05);
        assert_eq!(
            report.validity,
            vec![SideFlags {
                side: "run 2".into(),
                concurrency: 10,
                flags: vec![flag]
            }]
        );
    }

    #[test]
    fn repeats_that_disagree_are_called_unstable() {
        let base = side(
            1,
            vec![(
                10,
                vec![
                    figures(1000.0, 0.5, 40.0),
                    figures(1400.0, 0.5, 40.0),
                    figures(1200.0, 0.5, 40.0),
                ],
            )],
        );
        let new = side(
            2,
            vec![(
                10,
                vec![
                    figures(1200.0, 0.5, 40.0),
                    figures(1210.0, 0.5, 40.0),
                    figures(1190.0, 0.5, 40.0),
                ],
            )],
        );
        let report = build_report(&base, &new, 0.05);
        let unstable: Vec<&String> = report
            .warnings
            .iter()
            .filter(|w| w.contains("unstable"))
            .collect();
        assert_eq!(unstable.len(), 1, "{:?}", report.warnings);
        assert!(
            unstable[0].starts_with("run 1's repeats"),
            "{}",
            unstable[0]
        );
    }
}
