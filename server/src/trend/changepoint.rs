//! Steps in a series of points: where a figure moved from one level to
//! another, found when a point is added.
//!
//! The method is the one of Hunter and Apache Otava (docs/MATH.md there):
//! E-divisive means (Matteson and James) proposes the split that makes the
//! two sides most unlike, Student's t-test on the two sides decides whether
//! it is real, and the series is read through overlapping windows so that a
//! long history does not hide a recent step. Candidates are kept at a loose
//! level first ("weak" change points), then each is tested again between
//! its neighbours and the weakest dropped until every one left passes the
//! final level. Everything works on the logarithm of the figure, so a step
//! is a ratio whatever the figure's scale.
//!
//! On top of that, for a lab's history:
//! - a *floor*: a step smaller than it (3 % by default) is fitted as a
//!   level but not flagged as a change;
//! - a change is *suspected* until enough points follow it, *confirmed*
//!   after;
//! - a single point far off its neighbours (5 robust sigma, and beyond the
//!   floor) that the next point reverts is an *outlier*: kept, shown, not
//!   fitted;
//! - *creep*: the latest level worse than the best level since the last
//!   release by more than the floor (however many steps it took).
//!
//! No crate does this (`pelt` and `changepoint` give no p-value), so it is
//! written here, small, and tested on synthetic series (below, and
//! `bench/changepoint-detection` for the rates in BENCHMARKS.md).

use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::compare::stats::{mean_and_variance, median};
use domain::compare::Better;

/// How the detector reads a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Points per window (about 30: long enough for a level, short enough
    /// that an old step does not hide a new one).
    pub window: usize,
    /// The loose level at which candidates are kept before the final test.
    pub weak_p: f64,
    /// The level every change point left must pass (two-sided).
    pub final_p: f64,
    /// The smallest step flagged as a change (0.03 for 3 %).
    pub floor: f64,
    /// Points at a new level (its first included) before its change is
    /// confirmed: 4, so three points follow it.
    pub confirm_after: usize,
    /// How far off (in robust standard deviations) a single point must be
    /// to be an outlier.
    pub outlier_sigmas: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            window: 30,
            weak_p: 0.05,
            final_p: 0.001,
            floor: 0.03,
            confirm_after: 4,
            outlier_sigmas: 5.0,
        }
    }
}

/// Why a series cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SeriesError {
    #[error("point {index} is {value}: a figure must be a positive number")]
    NotPositive { index: usize, value: f64 },
    #[error("the window must hold at least 6 points, not {0}")]
    Window(usize),
}

/// Whether a change has enough points after it to be believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Confidence {
    /// Fewer than `confirm_after` points at the new level so far.
    Suspected,
    Confirmed,
}

/// A step between two fitted levels.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// The first point at the new level.
    pub index: usize,
    /// The levels before and after (geometric means of the points between
    /// the neighbouring steps, outliers left out).
    pub before: f64,
    pub after: f64,
    /// `after / before - 1`.
    pub change: f64,
    /// Student's t-test between the two sides, two-sided.
    pub p: f64,
    /// At least the floor: a change to flag; below it, a level only.
    pub flagged: bool,
    /// Worse in the figure's direction.
    pub worse: bool,
    pub confidence: Confidence,
}

/// A stretch of points at one level.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Level {
    /// Points `start..end`.
    pub start: usize,
    pub end: usize,
    /// The geometric mean of its points, outliers left out.
    pub value: f64,
}

/// The latest level worse than the best since the last release by more
/// than the floor.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Creep {
    /// The best level's first point, and the latest level's.
    pub best_at: usize,
    pub latest_at: usize,
    /// `latest / best - 1`.
    pub change: f64,
}

/// What the detector found in a series.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Analysis {
    /// Points kept but not fitted: found off their neighbours, and
    /// excluded by a member.
    pub outliers: Vec<usize>,
    #[serde(default)]
    pub excluded: Vec<usize>,
    pub steps: Vec<Step>,
    /// From the first point to the last, one per step plus one.
    pub levels: Vec<Level>,
    pub creep: Option<Creep>,
}

impl Analysis {
    /// The flagged steps: the changes a person should look at.
    pub fn changes(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.flagged)
    }
}

/// Reads `values` (a figure over points, oldest first; `releases` are the
/// indexes of points that are releases, for creep) and finds its steps.
pub fn analyse(
    values: &[f64],
    better: Better,
    releases: &[usize],
    settings: &Settings,
) -> Result<Analysis, SeriesError> {
    analyse_excluding(values, better, releases, &[], settings)
}

/// [`analyse`], with the points `excluded` (by a member) left out of the
/// fit as outliers are: kept, shown, neither fitted nor a neighbour.
pub fn analyse_excluding(
    values: &[f64],
    better: Better,
    releases: &[usize],
    excluded: &[usize],
    settings: &Settings,
) -> Result<Analysis, SeriesError> {
    if settings.window < 6 {
        return Err(SeriesError::Window(settings.window));
    }
    if let Some((index, &value)) = values
        .iter()
        .enumerate()
        .find(|(_, v)| !(v.is_finite() && **v > 0.0))
    {
        return Err(SeriesError::NotPositive { index, value });
    }
    if values.is_empty() {
        return Ok(Analysis::default());
    }
    let logs: Vec<f64> = values.iter().map(|v| v.ln()).collect();
    let excluded: Vec<usize> = (0..logs.len()).filter(|i| excluded.contains(i)).collect();
    // Outliers among the points a member left in.
    let candidates: Vec<usize> = (0..logs.len()).filter(|i| !excluded.contains(i)).collect();
    let candidate_logs: Vec<f64> = candidates.iter().map(|&i| logs[i]).collect();
    let outliers: Vec<usize> = outliers(&candidate_logs, settings)
        .into_iter()
        .map(|k| candidates[k])
        .collect();
    // The fitted series: every point but those, with where each was.
    let kept: Vec<usize> = candidates
        .into_iter()
        .filter(|i| !outliers.contains(i))
        .collect();
    if kept.is_empty() {
        return Ok(Analysis {
            outliers,
            excluded,
            ..Analysis::default()
        });
    }
    let fitted: Vec<f64> = kept.iter().map(|&i| logs[i]).collect();
    let cuts = change_points(&fitted, settings);

    // Back to the series' own indexes.
    let mut bounds = vec![0];
    bounds.extend(cuts.iter().map(|&c| kept[c]));
    bounds.push(values.len());
    let mut fitted_bounds = vec![0];
    fitted_bounds.extend(cuts.iter().copied());
    fitted_bounds.push(fitted.len());
    let level_of = |k: usize| mean(&fitted[fitted_bounds[k]..fitted_bounds[k + 1]]).exp();
    let levels: Vec<Level> = (0..bounds.len() - 1)
        .map(|k| Level {
            start: bounds[k],
            end: bounds[k + 1],
            value: level_of(k),
        })
        .collect();
    let floor = (1.0 + settings.floor).ln();
    let steps = (1..levels.len())
        .map(|k| {
            let left = &fitted[fitted_bounds[k - 1]..fitted_bounds[k]];
            let right = &fitted[fitted_bounds[k]..fitted_bounds[k + 1]];
            let (before, after) = (levels[k - 1].value, levels[k].value);
            let shift = (after / before).ln();
            Step {
                index: levels[k].start,
                before,
                after,
                change: after / before - 1.0,
                p: split_p(
                    &fitted[fitted_bounds[k - 1]..fitted_bounds[k + 1]],
                    left.len(),
                ),
                flagged: shift.abs() >= floor,
                worse: is_worse(shift, better),
                confidence: if right.len() >= settings.confirm_after {
                    Confidence::Confirmed
                } else {
                    Confidence::Suspected
                },
            }
        })
        .collect();
    let creep = creep(&levels, better, releases, floor);
    Ok(Analysis {
        outliers,
        excluded,
        steps,
        levels,
        creep,
    })
}

fn is_worse(shift: f64, better: Better) -> bool {
    match better {
        Better::Higher => shift < 0.0,
        Better::Lower => shift > 0.0,
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The noise of a series, robustly: the median absolute difference between
/// neighbours, scaled to a standard deviation (a few steps barely move it).
fn robust_sigma(logs: &[f64]) -> f64 {
    if logs.len() < 3 {
        return 0.0;
    }
    let diffs: Vec<f64> = logs.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    // MAD of differences of i.i.d. noise: 1.4826 * median |d| estimates
    // sigma * sqrt(2).
    1.4826 * median(&diffs) / std::f64::consts::SQRT_2
}

/// Single points far off the level before them that the next point
/// reverts. The last point cannot be one yet (it may be a step).
fn outliers(logs: &[f64], settings: &Settings) -> Vec<usize> {
    let sigma = robust_sigma(logs);
    let floor = (1.0 + settings.floor).ln();
    let far = (settings.outlier_sigmas * sigma).max(floor);
    let mut found: Vec<usize> = Vec::new();
    for i in 1..logs.len().saturating_sub(1) {
        // The level before: the median of up to five points, outliers out.
        let before: Vec<f64> = (0..i)
            .rev()
            .filter(|j| !found.contains(j))
            .take(5)
            .map(|j| logs[j])
            .collect();
        let level = median(&before);
        let off = logs[i] - level;
        let reverted = (logs[i + 1] - level).abs() <= (3.0 * sigma).max(off.abs() / 4.0);
        if off.abs() > far && reverted {
            found.push(i);
        }
    }
    found
}

/// The p of a split of `values` at `at` that was looked for anywhere in
/// it: Student's t between the two sides, times the places a split could
/// have been (Bonferroni). The best of many splits looks significant
/// more often than one fixed in advance; uncorrected, a flat series of 200
/// points at 2 % noise read point by point raised a "confirmed" change in
/// 37 of 200 series.
fn split_p(values: &[f64], at: usize) -> f64 {
    let places = values.len().saturating_sub(1).max(1) as f64;
    (student_t_p(&values[..at], &values[at..]) * places).min(1.0)
}

/// Student's t-test (pooled variance, so one side may hold a single point)
/// between two samples: the two-sided p. Identical constant sides give 1,
/// different constant sides 0.
fn student_t_p(left: &[f64], right: &[f64]) -> f64 {
    let (n1, n2) = (left.len() as f64, right.len() as f64);
    if left.is_empty() || right.is_empty() || n1 + n2 < 3.0 {
        return 1.0;
    }
    let ((m1, v1), (m2, v2)) = (mean_and_variance(left), mean_and_variance(right));
    let df = n1 + n2 - 2.0;
    let pooled = ((n1 - 1.0) * v1 + (n2 - 1.0) * v2) / df;
    let se = (pooled * (1.0 / n1 + 1.0 / n2)).sqrt();
    let diff = (m1 - m2).abs();
    if se == 0.0 || !se.is_finite() {
        return if diff == 0.0 { 1.0 } else { 0.0 };
    }
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) => 2.0 * (1.0 - t.cdf(diff / se)),
        Err(_) => 1.0,
    }
}

/// Sums of a distance matrix over rectangles, from a 2D prefix sum.
struct Distances {
    prefix: Vec<f64>,
    n: usize,
}

impl Distances {
    fn new(values: &[f64]) -> Self {
        let n = values.len();
        let mut prefix = vec![0.0; (n + 1) * (n + 1)];
        for i in 0..n {
            for j in 0..n {
                prefix[(i + 1) * (n + 1) + j + 1] = (values[i] - values[j]).abs()
                    + prefix[i * (n + 1) + j + 1]
                    + prefix[(i + 1) * (n + 1) + j]
                    - prefix[i * (n + 1) + j];
            }
        }
        Distances { prefix, n }
    }

    /// The sum of |x_i - x_j| for i in a..b, j in c..d.
    fn sum(&self, a: usize, b: usize, c: usize, d: usize) -> f64 {
        let w = self.n + 1;
        self.prefix[b * w + d] - self.prefix[a * w + d] - self.prefix[b * w + c]
            + self.prefix[a * w + c]
    }

    /// The mean distance within a..b (each pair once).
    fn within(&self, a: usize, b: usize) -> f64 {
        let m = (b - a) as f64;
        if m < 2.0 {
            return 0.0;
        }
        self.sum(a, b, a, b) / (m * (m - 1.0))
    }

    /// Matteson and James's divergence between a..t and t..k (alpha 1),
    /// scaled by the sizes as their Q.
    fn q(&self, a: usize, t: usize, k: usize) -> f64 {
        let (m, n) = ((t - a) as f64, (k - t) as f64);
        let between = 2.0 * self.sum(a, t, t, k) / (m * n);
        let e = between - self.within(a, t) - self.within(t, k);
        m * n / (m + n) * e
    }
}

/// The best split of `values[a..b]` (the first point of its second side)
/// by the E-divisive divergence, looking at every end `k` of the second
/// side too; `None` when the range is too short to split.
fn best_split(d: &Distances, a: usize, b: usize) -> Option<usize> {
    let mut best: Option<(f64, usize)> = None;
    for t in a + 2..b {
        for k in t + 1..=b {
            let q = d.q(a, t, k);
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, t));
            }
        }
    }
    best.map(|(_, t)| t)
}

/// Splits `values[a..b]` recursively while the best split passes `p`.
fn divide(values: &[f64], d: &Distances, a: usize, b: usize, p: f64, found: &mut Vec<usize>) {
    let Some(t) = best_split(d, a, b) else {
        return;
    };
    if split_p(&values[a..b], t - a) < p {
        found.push(t);
        divide(values, d, a, t, p, found);
        divide(values, d, t, b, p, found);
    }
}

/// The change points of a series (the first index of each new level).
fn change_points(values: &[f64], settings: &Settings) -> Vec<usize> {
    let n = values.len();
    if n < 3 {
        return Vec::new();
    }
    // Weak candidates, window by window (half-overlapping, the last one
    // ending at the newest point).
    let mut candidates: Vec<usize> = Vec::new();
    let window = settings.window.min(n);
    let mut starts: Vec<usize> = (0..=n - window).step_by(window / 2).collect();
    if starts.last() != Some(&(n - window)) {
        starts.push(n - window);
    }
    for start in starts {
        let part = &values[start..start + window];
        let d = Distances::new(part);
        let mut found = Vec::new();
        divide(part, &d, 0, window, settings.weak_p, &mut found);
        candidates.extend(found.into_iter().map(|t| start + t));
    }
    candidates.sort_unstable();
    candidates.dedup();
    // Each candidate again between its neighbours; the weakest goes until
    // every one left passes the final level, and no level but the newest is
    // shorter than a confirmed one (a few points off that come back are a
    // passing excursion, not two changes).
    loop {
        let p_of = |candidates: &[usize], k: usize| {
            let from = if k == 0 { 0 } else { candidates[k - 1] };
            let to = candidates.get(k + 1).copied().unwrap_or(n);
            let at = candidates[k];
            split_p(&values[from..to], at - from)
        };
        let weakest = (0..candidates.len())
            .map(|k| (p_of(&candidates, k), k))
            .max_by(|x, y| x.0.total_cmp(&y.0));
        if let Some((_, k)) = weakest.filter(|(p, _)| *p >= settings.final_p) {
            candidates.remove(k);
            continue;
        }
        // Levels 0..c0, c0..c1, …; the last (ck..n) may be short: it is new.
        let short = (0..candidates.len()).find(|&k| {
            let from = if k == 0 { 0 } else { candidates[k - 1] };
            candidates[k] - from < settings.confirm_after
        });
        match short {
            // The first level: its only bound goes.
            Some(0) => {
                candidates.remove(0);
            }
            // Between two steps: the weaker of them goes.
            Some(k) => {
                let drop = if p_of(&candidates, k - 1) >= p_of(&candidates, k) {
                    k - 1
                } else {
                    k
                };
                candidates.remove(drop);
            }
            None => return candidates,
        }
    }
}

/// The latest level worse than the best level since the last release (or
/// since the start) by more than the floor.
fn creep(levels: &[Level], better: Better, releases: &[usize], floor: f64) -> Option<Creep> {
    let latest = levels.last()?;
    let since = releases
        .iter()
        .copied()
        .filter(|&r| r <= latest.start)
        .max()
        .unwrap_or(0);
    let best = levels.iter().filter(|l| l.end > since).min_by(|x, y| {
        let (x, y) = (x.value.ln(), y.value.ln());
        match better {
            Better::Higher => y.total_cmp(&x),
            Better::Lower => x.total_cmp(&y),
        }
    })?;
    let shift = (latest.value / best.value).ln();
    (is_worse(shift, better) && shift.abs() > floor).then(|| Creep {
        best_at: best.start,
        latest_at: latest.start,
        change: latest.value / best.value - 1.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trend::synthetic::series;

    fn analyse_higher(values: &[f64]) -> Analysis {
        analyse(values, Better::Higher, &[], &Settings::default()).expect("a valid series")
    }

    #[test]
    fn a_step_of_five_percent_at_one_percent_noise_is_found_where_it_is() {
        let mut found_at = Vec::new();
        for seed in 0..20 {
            let values = series(&[(40, 1000.0), (20, 950.0)], 0.01, seed);
            let analysis = analyse_higher(&values);
            let changes: Vec<&Step> = analysis.changes().collect();
            assert_eq!(changes.len(), 1, "seed {seed}: {analysis:?}");
            let step = changes[0];
            assert!((39..=41).contains(&step.index), "seed {seed}: {step:?}");
            assert!(step.worse && step.confidence == Confidence::Confirmed);
            assert!((step.change + 0.05).abs() < 0.015, "{step:?}");
            assert!(step.p < 0.001);
            found_at.push(step.index);
        }
        assert!(
            found_at.iter().filter(|&&i| i == 40).count() >= 15,
            "{found_at:?}"
        );
    }

    #[test]
    fn a_new_step_is_suspected_first_and_confirmed_after_enough_points() {
        let settings = Settings::default();
        let history = series(&[(30, 1000.0), (6, 1100.0)], 0.01, 7);
        let seen = |n: usize| {
            analyse(&history[..n], Better::Lower, &[], &settings)
                .expect("valid")
                .changes()
                .map(|s| (s.index, s.confidence, s.worse))
                .collect::<Vec<_>>()
        };
        assert_eq!(seen(30), vec![]);
        assert_eq!(seen(31), vec![(30, Confidence::Suspected, true)]);
        assert_eq!(seen(33), vec![(30, Confidence::Suspected, true)]);
        assert_eq!(seen(34), vec![(30, Confidence::Confirmed, true)]);
    }

    #[test]
    fn a_flat_noisy_series_raises_no_confirmed_change() {
        for seed in 0..10 {
            let values = series(&[(200, 500.0)], 0.02, 100 + seed);
            let analysis = analyse_higher(&values);
            let confirmed: Vec<&Step> = analysis
                .changes()
                .filter(|s| s.confidence == Confidence::Confirmed)
                .collect();
            assert!(
                confirmed.is_empty(),
                "seed {seed}: {confirmed:?} {:?} {:?}",
                analysis.levels,
                analysis.outliers
            );
            assert_eq!(analysis.creep, None, "seed {seed}");
        }
    }

    #[test]
    fn a_lone_spike_that_the_next_point_reverts_is_an_outlier_not_a_step() {
        let mut values = series(&[(40, 1000.0)], 0.01, 3);
        values[20] = 1400.0;
        values[30] = 600.0;
        let analysis = analyse_higher(&values);
        assert_eq!(analysis.outliers, vec![20, 30]);
        assert!(analysis.steps.is_empty(), "{analysis:?}");
        assert_eq!(analysis.levels.len(), 1);
        assert!((analysis.levels[0].value / 1000.0 - 1.0).abs() < 0.01);
        // The newest point far off is not an outlier yet: it may be a step.
        values.push(1400.0);
        let analysis = analyse_higher(&values);
        assert_eq!(analysis.outliers, vec![20, 30]);
    }

    #[test]
    fn an_excluded_point_is_kept_but_not_fitted() {
        // A broken run at 25 that would be a step of its own, excluded.
        let mut values = series(&[(40, 1000.0)], 0.01, 8);
        for v in &mut values[25..29] {
            *v *= 0.8;
        }
        let fitted = analyse_higher(&values);
        assert_eq!(fitted.changes().count(), 2, "{fitted:?}");
        let excluded = analyse_excluding(
            &values,
            Better::Higher,
            &[],
            &[25, 26, 27, 28],
            &Settings::default(),
        )
        .expect("valid");
        assert_eq!(excluded.excluded, vec![25, 26, 27, 28]);
        assert_eq!(excluded.changes().count(), 0, "{excluded:?}");
        assert_eq!(excluded.levels.len(), 1);
        assert_eq!(excluded.levels[0].end, 40);
        // Everything excluded: nothing fitted, nothing found.
        let all: Vec<usize> = (0..40).collect();
        let none = analyse_excluding(&values, Better::Higher, &[], &all, &Settings::default())
            .expect("valid");
        assert!(none.levels.is_empty() && none.steps.is_empty());
    }

    #[test]
    fn eight_steps_of_one_percent_are_flagged_as_creep() {
        let levels: Vec<(usize, f64)> = (0..9).map(|k| (6, 1000.0 * 0.99f64.powi(k))).collect();
        for seed in 0..10 {
            let values = series(&levels, 0.01, 200 + seed);
            let analysis =
                analyse(&values, Better::Higher, &[0], &Settings::default()).expect("valid");
            let creep = analysis.creep.clone().expect("creep flagged");
            assert!(creep.change < -0.03, "seed {seed}: {creep:?}");
            assert_eq!(
                creep.latest_at,
                analysis.levels.last().expect("a level").start
            );
        }
    }

    #[test]
    fn creep_counts_only_since_the_last_release() {
        // Better before the release at 40, worse since; flat after it.
        let values = series(&[(40, 1000.0), (40, 900.0)], 0.01, 11);
        let before = analyse(&values, Better::Higher, &[], &Settings::default()).expect("valid");
        assert!(before.creep.is_some());
        let after = analyse(&values, Better::Higher, &[40], &Settings::default()).expect("valid");
        assert_eq!(after.creep, None, "{after:?}");
    }

    #[test]
    fn a_step_below_the_floor_is_a_level_but_not_a_change() {
        let values = series(&[(40, 1000.0), (40, 985.0)], 0.002, 5);
        let analysis = analyse_higher(&values);
        assert_eq!(analysis.levels.len(), 2, "{analysis:?}");
        assert_eq!(analysis.changes().count(), 0);
        let strict = Settings {
            floor: 0.01,
            ..Settings::default()
        };
        let analysis = analyse(&values, Better::Higher, &[], &strict).expect("valid");
        assert_eq!(analysis.changes().count(), 1);
    }

    #[test]
    fn bad_series_are_refused_with_the_point() {
        assert_eq!(
            analyse(&[1.0, 0.0, 2.0], Better::Higher, &[], &Settings::default()),
            Err(SeriesError::NotPositive {
                index: 1,
                value: 0.0
            })
        );
        assert!(analyse(&[1.0, f64::NAN], Better::Higher, &[], &Settings::default()).is_err());
        let tiny = Settings {
            window: 3,
            ..Settings::default()
        };
        assert_eq!(
            analyse(&[1.0, 2.0], Better::Higher, &[], &tiny),
            Err(SeriesError::Window(3))
        );
        let empty = analyse(&[], Better::Higher, &[], &Settings::default()).expect("empty");
        assert!(empty.levels.is_empty() && empty.steps.is_empty());
    }

    #[test]
    fn student_t_agrees_with_a_known_value() {
        // Two samples of 5 whose pooled t is 3.0 with 8 degrees of
        // freedom: two-sided p = 0.01707 (tables).
        let left = [0.0, 1.0, 2.0, 3.0, 4.0];
        let shift = 3.0 * (2.5f64 * 0.4).sqrt();
        let right: Vec<f64> = left.iter().map(|v| v + shift).collect();
        let p = student_t_p(&left, &right);
        assert!((p - 0.01707).abs() < 1e-4, "{p}");
        assert_eq!(student_t_p(&[1.0, 1.0], &[1.0]), 1.0);
        assert_eq!(student_t_p(&[1.0, 1.0], &[2.0]), 0.0);
    }
}
