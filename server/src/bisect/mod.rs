//! Finding the commit that made a figure worse: `mite-perf bisect`.
//!
//! First good against bad, measured in one run: without a real regression
//! between them there is nothing to find. Then midpoints of the first-parent
//! commits between them, each placed by where its figure falls between
//! good's and bad's on a log scale (past half way: bad), with more repeats
//! while a probe sits near the middle, and commits that do not build
//! skipped. Last, the first bad commit against its parent, in one run: the
//! share of the whole change that this step explains (a warning under
//! [`EXPLAINED_WARNING`]: several commits made it, or the figure drifts).
//!
//! The measuring is the [`Prober`]'s: a shared lab over HTTP, or one in
//! this process. The search itself is tested on synthetic probers.

use std::future::Future;

use domain::compare::{Better, Verdict};

use crate::compare::stats::{compare, median};

/// Below this share of the whole change, the first bad commit is said not
/// to explain it.
pub const EXPLAINED_WARNING: f64 = 0.60;
/// A probe placed within this distance of half way is measured again.
const AMBIGUOUS: f64 = 0.20;
/// The most times one probe is measured (its first time included).
const MAX_ROUNDS: u32 = 3;

/// A commit of the range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub id: String,
    pub subject: String,
}

impl Commit {
    pub fn short(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }
}

/// One measuring of some commits, in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The figure's values per commit asked for (one per repeat), in order.
    pub values: Vec<Vec<f64>>,
    /// The run it was, for links.
    pub run_id: i64,
}

/// Why a probe gave no figure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// This commit does not build (or install): skipped.
    #[error("{commit} does not build: {reason}")]
    Unbuildable { commit: String, reason: String },
    /// The lab failed: the bisect ends.
    #[error("{0}")]
    Lab(String),
}

/// Measures commits: builds them, runs them interleaved in one run, and
/// answers the figure's values.
pub trait Prober {
    fn measure(
        &mut self,
        commits: &[&Commit],
        repeats: u32,
    ) -> impl Future<Output = Result<Measured, ProbeError>>;
}

/// What a bisect asks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BisectSettings {
    pub repeats: u32,
    pub better: Better,
    /// The smallest change good → bad that is worth finding.
    pub threshold: f64,
    /// The confirming test's level.
    pub alpha: f64,
}

/// One commit measured on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub commit: Commit,
    pub median: f64,
    /// 0 at good's median, 1 at bad's (log scale); `None` for good and bad.
    pub position: Option<f64>,
    pub repeats: usize,
    pub runs: Vec<i64>,
    /// Called bad (at or past half way).
    pub bad: bool,
}

/// How a bisect ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Good against bad is not a regression: nothing to find.
    NoRegression { verdict: Verdict, change: f64 },
    /// The first bad commit, and the share of the whole change it explains.
    Found {
        first_bad: Commit,
        parent: Commit,
        /// `ln(first bad / parent) / ln(bad / good)`.
        explained: f64,
        /// The run measuring it against its parent.
        run_id: i64,
    },
    /// Every commit that could tell was skipped: the first bad one is among these.
    Unresolved { candidates: Vec<Commit> },
}

/// The whole story: the confirming run, every probe in order, the outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub good: Probe,
    pub bad: Probe,
    pub confirm_run: i64,
    pub probes: Vec<Probe>,
    pub skipped: Vec<(Commit, String)>,
    pub outcome: Outcome,
}

/// Why a bisect could not go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BisectError {
    #[error(
        "there are no commits between good and bad: give a good commit that is an ancestor of bad"
    )]
    EmptyRange,
    #[error("the good commit {0} does not build: pick another good commit")]
    GoodUnbuildable(String),
    #[error("the bad commit {0} does not build: pick another bad commit")]
    BadUnbuildable(String),
    #[error("the figure could not be read from the measurement: {0}")]
    NoFigure(String),
    #[error("{0}")]
    Lab(String),
}

fn log_median(values: &[f64]) -> Result<f64, BisectError> {
    if values.is_empty() || values.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        return Err(BisectError::NoFigure(format!("{values:?}")));
    }
    Ok(median(values).ln())
}

/// Searches `range` (good first, then the first-parent commits up to and
/// including bad) for the first commit whose figure is on bad's side, with
/// `say` hearing what happens.
pub async fn bisect<P: Prober>(
    prober: &mut P,
    range: &[Commit],
    settings: BisectSettings,
    say: &mut dyn FnMut(&str),
) -> Result<Report, BisectError> {
    if range.len() < 2 {
        return Err(BisectError::EmptyRange);
    }
    let (good, bad) = (&range[0], &range[range.len() - 1]);
    say(&format!(
        "measuring good {} against bad {} ({} commits between)",
        good.short(),
        bad.short(),
        range.len() - 2
    ));
    let confirm = match prober.measure(&[good, bad], settings.repeats).await {
        Ok(m) => m,
        Err(ProbeError::Unbuildable { commit, .. }) if commit == good.id => {
            return Err(BisectError::GoodUnbuildable(good.id.clone()))
        }
        Err(ProbeError::Unbuildable { .. }) => {
            return Err(BisectError::BadUnbuildable(bad.id.clone()))
        }
        Err(ProbeError::Lab(e)) => return Err(BisectError::Lab(e)),
    };
    let (good_values, bad_values) = match confirm.values.as_slice() {
        [g, b] => (g.clone(), b.clone()),
        _ => return Err(BisectError::NoFigure("two sides expected".into())),
    };
    let (log_good, log_bad) = (log_median(&good_values)?, log_median(&bad_values)?);
    let point = |commit: &Commit, values: &[f64], runs: Vec<i64>, bad: bool| Probe {
        commit: commit.clone(),
        median: median(values),
        position: None,
        repeats: values.len(),
        runs,
        bad,
    };
    let good_probe = point(good, &good_values, vec![confirm.run_id], false);
    let bad_probe = point(bad, &bad_values, vec![confirm.run_id], true);
    let verdict = compare(
        &good_values,
        &bad_values,
        settings.better,
        settings.threshold,
        settings.alpha,
    )
    .map_err(|e| BisectError::NoFigure(e.to_string()))?;
    if verdict.verdict != Verdict::Worse {
        return Ok(Report {
            good: good_probe,
            bad: bad_probe,
            confirm_run: confirm.run_id,
            probes: vec![],
            skipped: vec![],
            outcome: Outcome::NoRegression {
                verdict: verdict.verdict,
                change: verdict.change,
            },
        });
    }
    say(&format!(
        "bad is {:+.1} % against good (p {:.2e}): searching {} commits",
        verdict.change * 100.0,
        verdict.p_value.unwrap_or(f64::NAN),
        range.len() - 2
    ));
    let span = log_bad - log_good;
    let (mut lo, mut hi) = (0usize, range.len() - 1);
    let mut probes = Vec::new();
    let mut skipped: Vec<(Commit, String)> = Vec::new();
    let mut unbuildable = vec![false; range.len()];
    while hi - lo > 1 {
        // The middle of what is left, or the nearest commit that builds.
        let mid = (lo + hi) / 2;
        let Some(at) = nearest_untried(lo, hi, mid, &unbuildable) else {
            let candidates = range[lo + 1..=hi].to_vec();
            return Ok(Report {
                good: good_probe,
                bad: bad_probe,
                confirm_run: confirm.run_id,
                probes,
                skipped,
                outcome: Outcome::Unresolved { candidates },
            });
        };
        let commit = &range[at];
        let mut values = Vec::new();
        let mut runs = Vec::new();
        let mut position = 0.0;
        let mut failed = None;
        for round in 1..=MAX_ROUNDS {
            match prober.measure(&[commit], settings.repeats).await {
                Ok(m) => {
                    values.extend(m.values.into_iter().next().unwrap_or_default());
                    runs.push(m.run_id);
                }
                Err(ProbeError::Unbuildable { reason, .. }) => {
                    failed = Some(reason);
                    break;
                }
                Err(ProbeError::Lab(e)) => return Err(BisectError::Lab(e)),
            }
            position = (log_median(&values)? - log_good) / span;
            if (position - 0.5).abs() >= AMBIGUOUS || round == MAX_ROUNDS {
                break;
            }
            say(&format!(
                "{} sits {:.0} % of the way: measuring it again",
                commit.short(),
                position * 100.0
            ));
        }
        if let Some(reason) = failed {
            say(&format!("{} does not build: skipped", commit.short()));
            unbuildable[at] = true;
            skipped.push((commit.clone(), reason));
            continue;
        }
        let is_bad = position >= 0.5;
        say(&format!(
            "{} {}: {:.0} % of the way from good to bad: {}",
            commit.short(),
            commit.subject,
            position * 100.0,
            if is_bad { "bad" } else { "good" }
        ));
        probes.push(Probe {
            position: Some(position),
            ..point(commit, &values, runs, is_bad)
        });
        if is_bad {
            hi = at;
        } else {
            lo = at;
        }
    }
    // Nothing lies between lo and hi: hi is the first bad commit, lo its
    // parent on the first-parent line.
    let first_bad = range[hi].clone();
    let parent = range[lo].clone();
    say(&format!(
        "measuring the first bad commit {} against {}",
        first_bad.short(),
        parent.short()
    ));
    let step = prober
        .measure(&[&parent, &first_bad], settings.repeats)
        .await
        .map_err(|e| BisectError::Lab(e.to_string()))?;
    let (parent_values, first_values) = match step.values.as_slice() {
        [p, f] => (p.clone(), f.clone()),
        _ => return Err(BisectError::NoFigure("two sides expected".into())),
    };
    let explained = (log_median(&first_values)? - log_median(&parent_values)?) / span;
    let outcome = Outcome::Found {
        first_bad,
        parent,
        explained,
        run_id: step.run_id,
    };
    Ok(Report {
        good: good_probe,
        bad: bad_probe,
        confirm_run: confirm.run_id,
        probes,
        skipped,
        outcome,
    })
}

/// The commit strictly between `lo` and `hi` nearest to `mid` that was not
/// found unbuildable.
fn nearest_untried(lo: usize, hi: usize, mid: usize, unbuildable: &[bool]) -> Option<usize> {
    (0..hi - lo).find_map(|d| {
        [mid.checked_sub(d), mid.checked_add(d)]
            .into_iter()
            .flatten()
            .find(|&i| i > lo && i < hi && !unbuildable[i])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits 0 (good) to `n` (bad) whose figure is `level(i)`, measured
    /// with ±1 % of deterministic noise; some commits do not build.
    struct Synthetic {
        level: fn(usize) -> f64,
        unbuildable: Vec<usize>,
        calls: u64,
        measured: Vec<Vec<usize>>,
    }

    impl Synthetic {
        fn new(level: fn(usize) -> f64) -> Self {
            Synthetic {
                level,
                unbuildable: vec![],
                calls: 0,
                measured: vec![],
            }
        }
    }

    impl Prober for Synthetic {
        async fn measure(
            &mut self,
            commits: &[&Commit],
            repeats: u32,
        ) -> Result<Measured, ProbeError> {
            let indices: Vec<usize> = commits
                .iter()
                .map(|c| c.id.trim_start_matches('c').parse().expect("an index"))
                .collect();
            if let Some(i) = indices.iter().find(|i| self.unbuildable.contains(i)) {
                return Err(ProbeError::Unbuildable {
                    commit: format!("c{i}"),
                    reason: "setup.py: syntax error".into(),
                });
            }
            self.measured.push(indices.clone());
            let values = indices
                .iter()
                .map(|&i| {
                    (0..repeats)
                        .map(|_| {
                            self.calls += 1;
                            let noise = ((self.calls * 7919) % 21) as f64 / 1000.0 - 0.01;
                            (self.level)(i) * (1.0 + noise)
                        })
                        .collect()
                })
                .collect();
            Ok(Measured {
                values,
                run_id: self.measured.len() as i64,
            })
        }
    }

    fn range(n: usize) -> Vec<Commit> {
        (0..=n)
            .map(|i| Commit {
                id: format!("c{i}"),
                subject: format!("commit {i}"),
            })
            .collect()
    }

    fn settings() -> BisectSettings {
        BisectSettings {
            repeats: 3,
            better: Better::Higher,
            threshold: 0.05,
            alpha: 0.01,
        }
    }

    async fn run(prober: &mut Synthetic, n: usize) -> Report {
        let mut said = Vec::new();
        let report = bisect(prober, &range(n), settings(), &mut |line| {
            said.push(line.to_string())
        })
        .await
        .expect("a bisect");
        assert!(!said.is_empty());
        report
    }

    #[tokio::test]
    async fn a_step_at_one_commit_is_found_and_explains_the_whole_change() {
        let mut prober = Synthetic::new(|i| if i >= 6 { 80.0 } else { 100.0 });
        let report = run(&mut prober, 10).await;
        let Outcome::Found {
            first_bad,
            parent,
            explained,
            ..
        } = &report.outcome
        else {
            panic!("{report:?}");
        };
        assert_eq!((first_bad.id.as_str(), parent.id.as_str()), ("c6", "c5"));
        assert!((explained - 1.0).abs() < 0.1, "{explained}");
        // Good against bad first, the first bad against its parent last,
        // about log2(10) probes between.
        assert_eq!(prober.measured.first(), Some(&vec![0, 10]));
        assert_eq!(prober.measured.last(), Some(&vec![5, 6]));
        assert!(report.probes.len() <= 4, "{:?}", report.probes);
    }

    #[tokio::test]
    async fn sixteen_commits_take_four_probes() {
        let mut prober = Synthetic::new(|i| if i >= 11 { 70.0 } else { 100.0 });
        let report = run(&mut prober, 16).await;
        assert!(
            matches!(&report.outcome, Outcome::Found { first_bad, .. } if first_bad.id == "c11")
        );
        assert_eq!(report.probes.len(), 4, "{:?}", report.probes);
        assert_eq!(prober.measured.len(), 6);
    }

    #[tokio::test]
    async fn two_half_steps_are_found_one_at_a_time_with_a_warning_share() {
        let mut prober = Synthetic::new(|i| match i {
            0..=2 => 100.0,
            3..=7 => 90.0,
            _ => 81.0,
        });
        let report = run(&mut prober, 10).await;
        let Outcome::Found { explained, .. } = report.outcome else {
            panic!("{report:?}");
        };
        assert!(explained < EXPLAINED_WARNING, "{explained}");
        assert!(explained > 0.3, "{explained}");
    }

    #[tokio::test]
    async fn unbuildable_commits_are_skipped_and_may_leave_a_range() {
        let mut prober = Synthetic::new(|i| if i >= 6 { 80.0 } else { 100.0 });
        prober.unbuildable = vec![5];
        let report = run(&mut prober, 10).await;
        assert_eq!(report.skipped.len(), 1, "{report:?}");
        let Outcome::Unresolved { candidates } = &report.outcome else {
            panic!("{report:?}");
        };
        let ids: Vec<&str> = candidates.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, vec!["c5", "c6"]);

        // A skipped commit away from the step changes nothing.
        let mut prober = Synthetic::new(|i| if i >= 6 { 80.0 } else { 100.0 });
        prober.unbuildable = vec![2, 8];
        let report = run(&mut prober, 10).await;
        assert!(
            matches!(&report.outcome, Outcome::Found { first_bad, .. } if first_bad.id == "c6")
        );
    }

    #[tokio::test]
    async fn no_regression_between_good_and_bad_means_nothing_to_find() {
        let mut prober = Synthetic::new(|_| 100.0);
        let report = run(&mut prober, 10).await;
        assert!(
            matches!(report.outcome, Outcome::NoRegression { .. }),
            "{report:?}"
        );
        assert_eq!(prober.measured.len(), 1);
        // Better, not worse: nothing to find either.
        let mut prober = Synthetic::new(|i| if i >= 4 { 120.0 } else { 100.0 });
        let report = run(&mut prober, 10).await;
        assert!(matches!(
            report.outcome,
            Outcome::NoRegression {
                verdict: Verdict::Better,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn a_probe_half_way_is_measured_again_before_it_is_placed() {
        // Commit 5 sits half way between good and bad (on a log scale).
        let mut prober = Synthetic::new(|i| match i {
            0..=4 => 100.0,
            5 => 89.4,
            _ => 80.0,
        });
        let report = run(&mut prober, 10).await;
        let probe = report
            .probes
            .iter()
            .find(|p| p.commit.id == "c5")
            .expect("c5 probed");
        assert_eq!(probe.runs.len() as u32, MAX_ROUNDS, "{probe:?}");
        assert_eq!(probe.repeats, 9);
    }

    #[tokio::test]
    async fn a_bad_range_or_an_unbuildable_end_is_said() {
        let mut prober = Synthetic::new(|_| 100.0);
        let mut quiet = |_: &str| {};
        assert_eq!(
            bisect(&mut prober, &range(0), settings(), &mut quiet).await,
            Err(BisectError::EmptyRange)
        );
        prober.unbuildable = vec![0];
        assert_eq!(
            bisect(&mut prober, &range(4), settings(), &mut quiet).await,
            Err(BisectError::GoodUnbuildable("c0".into()))
        );
    }
}
