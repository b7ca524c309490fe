//! Synthetic series with known steps, for the detector's tests and for
//! `bench/changepoint-detection` (its rates in BENCHMARKS.md): the same
//! numbers on every run and every machine.

/// The generator the comparison's simulation uses too.
pub use crate::compare::simulation::Noise;

/// `(points, level)` stretches one after another, each point with relative
/// noise `sd`.
pub fn series(levels: &[(usize, f64)], sd: f64, seed: u64) -> Vec<f64> {
    let mut noise = Noise::new(seed);
    levels
        .iter()
        .flat_map(|&(n, level)| (0..n).map(move |_| level))
        .map(|level| noise.around(level, sd))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_noise_has_the_asked_spread_and_repeats_by_seed() {
        let values = series(&[(20_000, 100.0)], 0.02, 1);
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
            / (values.len() - 1) as f64)
            .sqrt();
        assert!((mean - 100.0).abs() < 0.05, "{mean}");
        assert!((sd - 2.0).abs() < 0.05, "{sd}");
        assert_eq!(series(&[(5, 1.0)], 0.1, 9), series(&[(5, 1.0)], 0.1, 9));
        assert_ne!(series(&[(5, 1.0)], 0.1, 9), series(&[(5, 1.0)], 0.1, 10));
    }
}
