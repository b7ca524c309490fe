//! Whether a figure changed between two sets of repeats, as a verdict a
//! mite developer (and a CI job) can act on, and the smallest change the
//! test could have seen (its floor).
//!
//! With 3–5 repeats a side, a rank test cannot reach significance (Mann–
//! Whitney's smallest two-sided p with 3 against 3 is 0.10), so the test is
//! Student's t-test on the logarithm of the figure, the two sides' spreads
//! pooled (under "no change" both sides are one build, so they spread
//! alike: the test is then exact for log-normal repeats), one-sided in the
//! direction the medians moved: the logarithm turns "20 % slower" into the
//! same step whatever the figure's scale. A change is called only when the
//! test says so *and* the medians moved by at least the threshold; a
//! change past the threshold the test cannot confirm is inconclusive,
//! shown with the confidence interval of the ratio.
//!
//! A run that stops adding repeats once every figure is decided looks at
//! its figures after each round, so the test is group-sequential: each look
//! spends a share of alpha by the information it has, `alpha · τ^ρ` with
//! `τ` the look's information (`n_b n_n / (n_b + n_n)`) over the planned
//! maximum's and ρ = [`SPENDING_POWER`], and the figure's p-value is the
//! smallest of each look's p over its share. By Bonferroni's inequality
//! over the looks, the chance that some look calls an unchanged figure
//! worse is at most alpha, however the run stops (a simulation in the
//! suite shows it: [`super::simulation`]). A fixed number of repeats is
//! one look that spends all of alpha: the plain t-test.
//!
//! The floor: the change the test would call significant [`FLOOR_POWER`]
//! of the time at its level (the last look's share of alpha), with the
//! repeats it had, from the figure's within-build spread (the pooled
//! variance of the logarithms, or the same-build history's when a side
//! has too few repeats): `(t_{1−a,ν} + z_P · √(1 + t²/2ν)) · σ ·
//! √(1/n_b + 1/n_n)` on the log scale (the normal approximation of the
//! noncentral t), shown as a share.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

pub use domain::compare::{Better, Comparison, Verdict};
use domain::compare::{
    Floor, FloorBasis, SpreadSource, FLOOR_POWER, MIN_OWN_SPREAD_DF, SPENDING_POWER,
};

/// The median of `values` (which must not be empty).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The mean and the sample variance (0 for a single value) of `values`
/// (which must not be empty).
pub fn mean_and_variance(values: &[f64]) -> (f64, f64) {
    let (mean, squares) = mean_and_squares(values);
    let variance = if values.len() > 1 {
        squares / (values.len() as f64 - 1.0)
    } else {
        0.0
    };
    (mean, variance)
}

/// The mean of `values` and the sum of their squared deviations from it.
pub fn mean_and_squares(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let squares = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>();
    (mean, squares)
}

/// Why two sets of repeats cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompareError {
    #[error("a side has no repeats")]
    Empty,
    #[error("a figure is not a positive number ({0})")]
    NotPositive(String),
}

/// How one side's repeats came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Growth {
    /// A round at a time, looked at after each (a run that stops once
    /// every figure is decided); otherwise all there at once.
    pub sequential: bool,
    /// The most repeats it could have had (its run's `--repeat`).
    pub planned: usize,
}

impl Growth {
    /// Every repeat there at once.
    pub const FIXED: Growth = Growth {
        sequential: false,
        planned: 0,
    };
}

/// How the test reads two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Design {
    pub base: Growth,
    pub new: Growth,
}

impl Design {
    /// Both sides' repeats all there at once: one look, the plain t-test.
    pub const FIXED: Design = Design {
        base: Growth::FIXED,
        new: Growth::FIXED,
    };

    /// Two builds of one run that stops once decided, up to `planned`
    /// repeats each.
    pub fn paired(planned: usize) -> Design {
        let growth = Growth {
            sequential: true,
            planned,
        };
        Design {
            base: growth,
            new: growth,
        }
    }

    /// The repeats each side would have at the planned maximum, given the
    /// ones they have.
    fn most(&self, base: usize, new: usize) -> (usize, usize) {
        let most = |g: Growth, n: usize| if g.sequential { g.planned.max(n) } else { n };
        (most(self.base, base), most(self.new, new))
    }
}

/// One look of the test: the repeats each side had, and the share of alpha
/// it spent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Look {
    pub base: usize,
    pub new: usize,
    pub share: f64,
}

/// The information a difference of two means holds, in units of `1/σ²`.
fn information(base: usize, new: usize) -> f64 {
    let (b, n) = (base as f64, new as f64);
    b * n / (b + n)
}

/// The looks the test takes at `base` and `new` repeats under `design`:
/// one for repeats all there at once; otherwise one per round, each side's
/// first repeats (a side all there at once is whole at every look), from
/// two repeats a side. Their shares add up to at most 1, to 1 at the
/// planned maximum.
pub fn looks(base: usize, new: usize, design: Design) -> Vec<Look> {
    if base < 2 || new < 2 {
        return Vec::new();
    }
    let (most_base, most_new) = design.most(base, new);
    let full = information(most_base, most_new);
    let steps: Vec<(usize, usize)> = if !design.base.sequential && !design.new.sequential {
        vec![(base, new)]
    } else {
        let grows = |g: Growth, n: usize| if g.sequential { n } else { 0 };
        let rounds = grows(design.base, base).max(grows(design.new, new));
        let mut steps: Vec<(usize, usize)> = Vec::new();
        for k in 1..=rounds {
            let at = |g: Growth, n: usize| if g.sequential { k.min(n) } else { n };
            let step = (at(design.base, base), at(design.new, new));
            if step.0 >= 2 && step.1 >= 2 && steps.last() != Some(&step) {
                steps.push(step);
            }
        }
        steps
    };
    let mut spent = 0.0;
    steps
        .into_iter()
        .map(|(b, n)| {
            let spending = (information(b, n) / full).min(1.0).powf(SPENDING_POWER);
            let share = (spending - spent).max(0.0);
            spent = spending.max(spent);
            Look {
                base: b,
                new: n,
                share,
            }
        })
        .collect()
}

/// A figure's same-build spread from the lab's history: the squared
/// deviations of its logarithm from their build's mean, added up over
/// `sets` builds-in-a-run, with `df` degrees of freedom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistorySpread {
    pub squares: f64,
    pub df: u32,
    pub sets: u32,
}

/// The one-sided p-value of `new` against `base` (logarithms), up or down;
/// `None` when there are too few.
fn one_sided_p(base: &[f64], new: &[f64], up: bool) -> Option<f64> {
    let (nb, nn) = (base.len(), new.len());
    if nb < 2 || nn < 2 {
        return None;
    }
    let (base_mean, base_squares) = mean_and_squares(base);
    let (new_mean, new_squares) = mean_and_squares(new);
    let diff = new_mean - base_mean;
    let df = (nb + nn - 2) as f64;
    let pooled = (base_squares + new_squares) / df;
    let se2 = pooled * (1.0 / nb as f64 + 1.0 / nn as f64);
    if se2 <= 0.0 || !se2.is_finite() {
        // No spread on either side: any difference is certain.
        return Some(if diff == 0.0 || (diff > 0.0) != up {
            1.0
        } else {
            0.0
        });
    }
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    let statistic = diff / se2.sqrt();
    Some(if up {
        1.0 - t.cdf(statistic)
    } else {
        t.cdf(statistic)
    })
}

/// Compares `new` against `base` (each a figure over repeats, all there at
/// once): `threshold` is the smallest change that counts (0.05 for 5 %),
/// `alpha` the test's level.
pub fn compare(
    base: &[f64],
    new: &[f64],
    better: Better,
    threshold: f64,
    alpha: f64,
) -> Result<Comparison, CompareError> {
    compare_with(base, new, better, threshold, alpha, Design::FIXED, None)
}

/// Compares `new` against `base` (each a figure over repeats, in the order
/// they ran) as `design` says they came, the floor from their own spread or,
/// with too few repeats, from `history`'s.
pub fn compare_with(
    base: &[f64],
    new: &[f64],
    better: Better,
    threshold: f64,
    alpha: f64,
    design: Design,
    history: Option<HistorySpread>,
) -> Result<Comparison, CompareError> {
    if base.is_empty() || new.is_empty() {
        return Err(CompareError::Empty);
    }
    if let Some(bad) = base
        .iter()
        .chain(new)
        .find(|v| !(v.is_finite() && **v > 0.0))
    {
        return Err(CompareError::NotPositive(bad.to_string()));
    }
    let base_median = median(base);
    let new_median = median(new);
    let change = new_median / base_median - 1.0;
    let logs = |v: &[f64]| v.iter().map(|x| x.ln()).collect::<Vec<_>>();
    let (base_logs, new_logs) = (logs(base), logs(new));
    let (nb, nn) = (base.len(), new.len());
    let (base_mean, base_squares) = mean_and_squares(&base_logs);
    let (new_mean, new_squares) = mean_and_squares(&new_logs);
    let diff = new_mean - base_mean;
    let ratio = diff.exp();
    let single_repeat = nb < 2 || nn < 2;
    let worse_way = match better {
        Better::Higher => change < 0.0,
        Better::Lower => change > 0.0,
    };
    // One-sided, in the direction the medians moved, at every look.
    let up = new_median >= base_median;
    let looks = looks(nb, nn, design);
    let p_value = looks
        .iter()
        .filter_map(|look| {
            let p = one_sided_p(&base_logs[..look.base], &new_logs[..look.new], up)?;
            Some(if look.share > 0.0 {
                p / look.share
            } else {
                1.0
            })
        })
        .reduce(f64::min)
        .map(|p| p.min(1.0));
    let df = (nb + nn).saturating_sub(2);
    let pooled = if df > 0 {
        (base_squares + new_squares) / df as f64
    } else {
        0.0
    };
    let ratio_interval = if single_repeat {
        None
    } else {
        let se = (pooled * (1.0 / nb as f64 + 1.0 / nn as f64)).sqrt();
        if se <= 0.0 {
            Some((ratio, ratio))
        } else {
            StudentsT::new(0.0, 1.0, df as f64).ok().map(|t| {
                let half = t.inverse_cdf(1.0 - alpha / 2.0) * se;
                ((diff - half).exp(), (diff + half).exp())
            })
        }
    };
    let verdict = if change.abs() < threshold {
        Verdict::NoSignificantChange
    } else if p_value.is_some_and(|p| p < alpha) {
        if worse_way {
            Verdict::Worse
        } else {
            Verdict::Better
        }
    } else {
        Verdict::Inconclusive
    };
    let floor = looks.last().and_then(|last| {
        let own_df = df as u32;
        let (variance, spread) = match history {
            Some(h) if own_df < MIN_OWN_SPREAD_DF && h.df > own_df => (
                h.squares / f64::from(h.df),
                SpreadSource::History {
                    df: h.df,
                    sets: h.sets,
                },
            ),
            _ => (pooled, SpreadSource::Own { df: own_df }),
        };
        let (most_base, most_new) = design.most(nb, nn);
        let at_most = ((most_base, most_new) != (nb, nn))
            .then(|| looks_share_at(most_base, most_new, design))
            .flatten()
            .map(|share| (most_base, most_new, share));
        let basis = FloorBasis {
            sd: variance.sqrt(),
            spread,
            base_repeats: nb,
            new_repeats: nn,
            share: last.share,
            at_most,
        };
        floor_at(&basis, alpha)
    });
    Ok(Comparison {
        base_median,
        new_median,
        change,
        ratio,
        ratio_interval,
        p_value,
        verdict,
        single_repeat,
        looks: looks.len().max(1) as u32,
        floor,
    })
}

/// The share of alpha the last look at `base` and `new` repeats would spend.
fn looks_share_at(base: usize, new: usize, design: Design) -> Option<f64> {
    looks(base, new, design).last().map(|l| l.share)
}

/// The floor of `basis` at one-sided level `alpha` (each look spends its
/// share of it); `None` when the test had no degrees of freedom.
pub fn floor_at(basis: &FloorBasis, alpha: f64) -> Option<Floor> {
    let now = floor_change(
        basis.sd,
        basis.base_repeats,
        basis.new_repeats,
        alpha * basis.share,
    )?;
    let at_most = basis
        .at_most
        .and_then(|(b, n, share)| floor_change(basis.sd, b, n, alpha * share));
    Some(Floor {
        change: now,
        at_most,
        alpha,
        basis: *basis,
    })
}

/// The smallest change (as a share) a one-sided t-test at `level` with
/// `base` and `new` repeats sees [`FLOOR_POWER`] of the time when the
/// logarithm's spread is `sd`.
fn floor_change(sd: f64, base: usize, new: usize, level: f64) -> Option<f64> {
    if base < 1 || new < 1 || base + new < 3 || level.is_nan() || level <= 0.0 || !sd.is_finite() {
        return None;
    }
    let df = (base + new - 2) as f64;
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    let critical = t.inverse_cdf(1.0 - level.min(0.5));
    let z = Normal::standard().inverse_cdf(FLOOR_POWER);
    let noncentrality = critical + z * (1.0 + critical * critical / (2.0 * df)).sqrt();
    let step = noncentrality * sd * (1.0 / base as f64 + 1.0 / new as f64).sqrt();
    // Past e^10 (a 22,000-fold change) the figure could see nothing.
    Some(step.min(10.0).exp() - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::simulation::Noise;

    fn verdict(base: &[f64], new: &[f64], better: Better) -> Verdict {
        compare(base, new, better, 0.05, 0.05)
            .expect("comparable")
            .verdict
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn a_clear_slowdown_is_worse_and_a_clear_speedup_better() {
        let base = [11_600.0, 11_700.0, 11_650.0];
        let slower = [10_400.0, 10_500.0, 10_450.0];
        assert_eq!(verdict(&base, &slower, Better::Higher), Verdict::Worse);
        assert_eq!(verdict(&slower, &base, Better::Higher), Verdict::Better);
        // For memory, more is worse.
        assert_eq!(verdict(&slower, &base, Better::Lower), Verdict::Worse);
    }

    #[test]
    fn small_moves_are_no_change_whatever_the_test() {
        let base = [100.0, 100.1, 99.9];
        let new = [102.0, 102.1, 101.9];
        let c = compare(&base, &new, Better::Higher, 0.05, 0.05).expect("ok");
        assert!(c.p_value.is_some_and(|p| p < 0.001), "{c:?}");
        assert_eq!(c.verdict, Verdict::NoSignificantChange);
    }

    #[test]
    fn a_big_move_the_repeats_cannot_confirm_is_inconclusive_with_its_interval() {
        let base = [100.0, 140.0, 70.0];
        let new = [80.0, 130.0, 60.0];
        let c = compare(&base, &new, Better::Higher, 0.05, 0.05).expect("ok");
        assert_eq!(c.verdict, Verdict::Inconclusive);
        let (low, high) = c.ratio_interval.expect("an interval");
        assert!(
            low < 1.0 && high > 1.0,
            "the interval spans no change: {c:?}"
        );
    }

    #[test]
    fn one_repeat_allows_no_test() {
        let c = compare(&[100.0], &[80.0], Better::Higher, 0.05, 0.05).expect("ok");
        assert!(c.single_repeat && c.p_value.is_none());
        assert_eq!(c.verdict, Verdict::Inconclusive);
        let c = compare(&[100.0], &[99.0], Better::Higher, 0.05, 0.05).expect("ok");
        assert_eq!(c.verdict, Verdict::NoSignificantChange);
    }

    #[test]
    fn the_p_value_is_students() {
        // ln-values 0, 1, 2 against 3, 4, 5 (exp of them as the figures):
        // means 1 and 4, pooled variance 1, se = sqrt(2/3), t = 3.674,
        // df = 4; the one-sided p of t = 3.674 with 4 degrees of freedom
        // is 0.0107 (t tables: 3.747 gives 0.01).
        let base: Vec<f64> = [0.0f64, 1.0, 2.0].iter().map(|x| x.exp()).collect();
        let new: Vec<f64> = [3.0f64, 4.0, 5.0].iter().map(|x| x.exp()).collect();
        let c = compare(&base, &new, Better::Higher, 0.05, 0.05).expect("ok");
        let p = c.p_value.expect("a p-value");
        assert!((p - 0.0107).abs() < 0.0005, "p = {p}");
        assert_eq!(c.verdict, Verdict::Better);
        assert!((c.ratio - 3.0f64.exp()).abs() < 1e-9);
    }

    #[test]
    fn identical_repeats_are_certain() {
        let c = compare(
            &[5.0, 5.0, 5.0],
            &[6.0, 6.0, 6.0],
            Better::Lower,
            0.05,
            0.05,
        )
        .expect("ok");
        assert_eq!((c.p_value, c.verdict), (Some(0.0), Verdict::Worse));
        let c = compare(&[5.0, 5.0], &[5.0, 5.0], Better::Lower, 0.05, 0.05).expect("ok");
        assert_eq!(c.verdict, Verdict::NoSignificantChange);
    }

    #[test]
    fn a_fixed_number_of_repeats_is_one_look_and_a_stopping_run_one_per_round() {
        let shares = |looks: &[Look]| looks.iter().map(|l| l.share).collect::<Vec<_>>();
        let fixed = looks(5, 5, Design::FIXED);
        assert_eq!(shares(&fixed), vec![1.0]);
        assert!(looks(1, 5, Design::FIXED).is_empty());
        // Two builds of a run of up to 5 repeats, at its third round: the
        // information of 2 against 2 is 1, of 3 against 3 1.5, of 5
        // against 5 2.5: spent (1/2.5)² = 0.16, then (1.5/2.5)² = 0.36.
        let paired = looks(3, 3, Design::paired(5));
        assert_eq!(
            paired.iter().map(|l| (l.base, l.new)).collect::<Vec<_>>(),
            vec![(2, 2), (3, 3)]
        );
        let spent = shares(&paired);
        assert!((spent[0] - 0.16).abs() < 1e-12 && (spent[1] - 0.20).abs() < 1e-12);
        // At the planned maximum, all of alpha is spent, never more.
        let whole: f64 = shares(&looks(5, 5, Design::paired(5))).iter().sum();
        assert!((whole - 1.0).abs() < 1e-12, "{whole}");
        // Against a finished run (`--compare-to`): that side whole at every
        // look, this one a repeat at a time.
        let against = Design {
            base: Growth::FIXED,
            new: Growth {
                sequential: true,
                planned: 4,
            },
        };
        assert_eq!(
            looks(3, 4, against)
                .iter()
                .map(|l| (l.base, l.new))
                .collect::<Vec<_>>(),
            vec![(3, 2), (3, 3), (3, 4)]
        );
    }

    #[test]
    fn looking_as_you_go_costs_each_look_its_share() {
        let base = [100.0, 101.0, 99.5, 100.4];
        let new = [103.0, 104.1, 102.2, 103.5];
        let fixed = compare(&base, &new, Better::Lower, 0.02, 0.01).expect("ok");
        let stopping = compare_with(
            &base,
            &new,
            Better::Lower,
            0.02,
            0.01,
            Design::paired(6),
            None,
        )
        .expect("ok");
        assert_eq!((fixed.looks, stopping.looks), (1, 3));
        let (p_fixed, p_stopping) = (
            fixed.p_value.expect("tested"),
            stopping.p_value.expect("tested"),
        );
        // The last look alone spends (I(4,4)/I(6,6))² - (I(3,3)/I(6,6))²
        // = 4/9 - 1/4 of alpha: its p counts 1/0.194 times as much.
        let last_share = 4.0 / 9.0 - 0.25;
        assert!(p_stopping <= p_fixed / last_share + 1e-12, "{p_stopping}");
        assert!(p_stopping > p_fixed, "{p_fixed} {p_stopping}");
    }

    #[test]
    fn the_floor_is_the_change_the_test_sees_four_times_in_five() {
        // 1 % spread of the logarithm, 5 repeats a side, one look at 1 %:
        // t(0.99, 8) = 2.896; 2.896 + 0.8416 · √(1 + 2.896²/16) = 3.935;
        // 3.935 · 0.01 · √(2/5) = 0.02489 on the log scale: 2.52 %.
        let basis = FloorBasis {
            sd: 0.01,
            spread: SpreadSource::Own { df: 8 },
            base_repeats: 5,
            new_repeats: 5,
            share: 1.0,
            at_most: Some((10, 10, 0.5)),
        };
        let floor = floor_at(&basis, 0.01).expect("a floor");
        assert!((floor.change - 0.0252).abs() < 0.0002, "{floor:?}");
        assert_eq!(floor.text(), "2.5 %");
        // More repeats see less, a stricter level sees more.
        assert!(floor.at_most.is_some_and(|m| m < floor.change));
        let strict = floor_at(&basis, 0.0005).expect("a floor");
        assert!(strict.change > floor.change);

        // And the test does see a change of that size about 80 % of the
        // time (the floor's power), a change half of it far less often.
        let mut noise = Noise::new(7);
        let mut seen = |shift: f64| {
            let tries = 4000;
            let hits = (0..tries)
                .filter(|_| {
                    let base: Vec<f64> = (0..5).map(|_| noise.log_normal(100.0, 0.01)).collect();
                    let new: Vec<f64> = (0..5)
                        .map(|_| noise.log_normal(100.0 * (1.0 + shift), 0.01))
                        .collect();
                    let c = compare(&base, &new, Better::Lower, 0.001, 0.01).expect("ok");
                    c.verdict == Verdict::Worse
                })
                .count();
            hits as f64 / tries as f64
        };
        let at_floor = seen(floor.change);
        assert!((0.76..=0.84).contains(&at_floor), "{at_floor}");
        let at_half = seen(floor.change / 2.0);
        assert!(at_half < 0.35, "{at_half}");
    }

    #[test]
    fn a_floor_takes_the_histories_spread_when_a_side_has_too_few_repeats() {
        let history = HistorySpread {
            squares: 20.0 * 0.02f64.powi(2),
            df: 20,
            sets: 7,
        };
        let few = compare_with(
            &[100.0, 100.5],
            &[100.2, 99.9],
            Better::Higher,
            0.05,
            0.01,
            Design::FIXED,
            Some(history),
        )
        .expect("ok");
        let floor = few.floor.expect("a floor");
        assert_eq!(
            floor.basis.spread,
            SpreadSource::History { df: 20, sets: 7 }
        );
        assert!((floor.basis.sd - 0.02).abs() < 1e-12);
        assert!(floor
            .basis
            .spread
            .describe()
            .contains("7 earlier same-build repeat sets"));
        // Enough of its own: its own spread, whatever the history says.
        let enough = compare_with(
            &[100.0, 100.5, 99.8],
            &[100.2, 99.9, 100.4],
            Better::Higher,
            0.05,
            0.01,
            Design::FIXED,
            Some(history),
        )
        .expect("ok");
        let own = enough.floor.expect("a floor");
        assert_eq!(own.basis.spread, SpreadSource::Own { df: 4 });
        assert!(own.change < floor.change, "{own:?} {floor:?}");
        // One repeat a side: no test, no floor.
        let once = compare_with(
            &[1.0],
            &[1.0],
            Better::Higher,
            0.05,
            0.01,
            Design::FIXED,
            None,
        )
        .expect("ok");
        assert_eq!(once.floor, None);
    }

    #[test]
    fn nonsense_is_refused() {
        assert_eq!(
            compare(&[], &[1.0], Better::Higher, 0.05, 0.05),
            Err(CompareError::Empty)
        );
        assert!(compare(&[0.0], &[1.0], Better::Higher, 0.05, 0.05).is_err());
        assert!(compare(&[f64::NAN], &[1.0], Better::Higher, 0.05, 0.05).is_err());
    }
}
