//! Whether a figure changed between two sets of repeats, as a verdict a
//! mite developer (and a CI job) can act on.
//!
//! With 3–5 repeats a side, a rank test cannot reach significance (Mann–
//! Whitney's smallest two-sided p with 3 against 3 is 0.10), so the test is
//! Welch's t-test on the logarithm of the figure, one-sided in the direction
//! the medians moved: the logarithm turns "20 % slower" into the same step
//! whatever the figure's scale, and Welch's test does not assume both sides
//! vary alike. A change is called only when the test says so *and* the
//! medians moved by at least the threshold; a change past the threshold the
//! test cannot confirm is inconclusive, shown with the confidence interval
//! of the ratio.

use statrs::distribution::{ContinuousCDF, StudentsT};

pub use domain::compare::{Better, Comparison, Verdict};

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
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, variance)
}

/// Why two sets of repeats cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompareError {
    #[error("a side has no repeats")]
    Empty,
    #[error("a figure is not a positive number ({0})")]
    NotPositive(String),
}

/// Compares `new` against `base` (each a figure over repeats): `threshold`
/// is the smallest change that counts (0.05 for 5 %), `alpha` the test's
/// level (0.05).
pub fn compare(
    base: &[f64],
    new: &[f64],
    better: Better,
    threshold: f64,
    alpha: f64,
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
    let (base_mean, base_var) = mean_and_variance(&logs(base));
    let (new_mean, new_var) = mean_and_variance(&logs(new));
    let diff = new_mean - base_mean;
    let ratio = diff.exp();
    let single_repeat = base.len() < 2 || new.len() < 2;
    let worse_way = match better {
        Better::Higher => change < 0.0,
        Better::Lower => change > 0.0,
    };
    let (p_value, ratio_interval) = if single_repeat {
        (None, None)
    } else {
        let (nb, nn) = (base.len() as f64, new.len() as f64);
        let se2 = base_var / nb + new_var / nn;
        if se2 <= 0.0 {
            // No spread on either side: any difference is certain.
            let p = if diff == 0.0 { 1.0 } else { 0.0 };
            (Some(p), Some((ratio, ratio)))
        } else {
            let se = se2.sqrt();
            let df = se2.powi(2)
                / ((base_var / nb).powi(2) / (nb - 1.0) + (new_var / nn).powi(2) / (nn - 1.0));
            match StudentsT::new(0.0, 1.0, df) {
                Ok(t) => {
                    let statistic = diff / se;
                    // One-sided, in the direction the medians moved.
                    let p = if new_median >= base_median {
                        1.0 - t.cdf(statistic)
                    } else {
                        t.cdf(statistic)
                    };
                    let half = t.inverse_cdf(1.0 - alpha / 2.0) * se;
                    (Some(p), Some(((diff - half).exp(), (diff + half).exp())))
                }
                Err(_) => (None, None),
            }
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
    Ok(Comparison {
        base_median,
        new_median,
        change,
        ratio,
        ratio_interval,
        p_value,
        verdict,
        single_repeat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_p_value_is_welchs() {
        // ln-values 0, 1, 2 against 3, 4, 5 (exp of them as the figures):
        // means 1 and 4, variances 1 and 1, se = sqrt(2/3), t = 3.674,
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
    fn nonsense_is_refused() {
        assert_eq!(
            compare(&[], &[1.0], Better::Higher, 0.05, 0.05),
            Err(CompareError::Empty)
        );
        assert!(compare(&[0.0], &[1.0], Better::Higher, 0.05, 0.05).is_err());
        assert!(compare(&[f64::NAN], &[1.0], Better::Higher, 0.05, 0.05).is_err());
    }
}
