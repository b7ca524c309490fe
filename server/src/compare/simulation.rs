//! Simulated comparisons with known answers, for the tests of the verdict,
//! its floor and its stopping rule, and for their benchmark: the same
//! numbers on every run and every machine.

/// A small deterministic generator (xorshift64) and normal noise
/// (Box–Muller).
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// `level` with relative noise `sd` (0.01 for 1 %).
    pub fn around(&mut self, level: f64, sd: f64) -> f64 {
        level * (1.0 + sd * self.normal())
    }

    /// `level` with noise of `sd` on its logarithm (log-normal).
    pub fn log_normal(&mut self, level: f64, sd: f64) -> f64 {
        level * (sd * self.normal()).exp()
    }
}

/// How a simulated check looks at its repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Looking {
    /// The lab's group-sequential test: each look spends its share of
    /// alpha ([`super::stats::looks`]).
    Sequential,
    /// Every look at the whole of alpha, as if each were the only one:
    /// what looking as you go costs a test that ignores it.
    Naive,
}

/// A simulated check of one figure with log-normal repeats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Check {
    /// The most repeats a side (`--repeat`).
    pub planned: usize,
    /// The spread of the figure's logarithm (0.01 for 1 %).
    pub sd: f64,
    /// How much slower the new build is (0 for equal builds; lower is
    /// better).
    pub shift: f64,
    pub threshold: f64,
    pub alpha: f64,
    pub looking: Looking,
}

impl Check {
    /// One check: a repeat a side per round from 2 up to `planned`,
    /// stopping as soon as the figure is decided
    /// ([`super::stopping::figure_decided`]): its verdict and the repeats
    /// a side it took.
    pub fn run(&self, noise: &mut Noise) -> (domain::compare::Verdict, usize) {
        use super::stats::{compare_with, Better, Design};
        use domain::compare::Verdict;
        let mut base = Vec::with_capacity(self.planned);
        let mut new = Vec::with_capacity(self.planned);
        let mut last = Verdict::Inconclusive;
        // The naive test reads each look as a fixed design's only one.
        let design = match self.looking {
            Looking::Sequential => Design::paired(self.planned),
            Looking::Naive => Design::FIXED,
        };
        for round in 1..=self.planned {
            base.push(noise.log_normal(100.0, self.sd));
            new.push(noise.log_normal(100.0 * (1.0 + self.shift), self.sd));
            if round < 2 {
                continue;
            }
            let compared = compare_with(
                &base,
                &new,
                Better::Lower,
                self.threshold,
                self.alpha,
                design,
                None,
            );
            let Ok(c) = compared else {
                return (Verdict::Inconclusive, round);
            };
            last = c.verdict;
            if super::stopping::figure_decided(&c, self.threshold) {
                return (c.verdict, round);
            }
        }
        (last, self.planned)
    }

    /// The share of `checks` of them (seeded: the same on every run) that
    /// ended `worse`, and their mean repeats a side.
    pub fn worse_rate(&self, seed: u64, checks: usize) -> (f64, f64) {
        let mut noise = Noise::new(seed);
        let (mut worse, mut repeats) = (0usize, 0usize);
        for _ in 0..checks {
            let (verdict, took) = self.run(&mut noise);
            if verdict == domain::compare::Verdict::Worse {
                worse += 1;
            }
            repeats += took;
        }
        (worse as f64 / checks as f64, repeats as f64 / checks as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::compare::ALPHA;

    /// 10,000 simulated checks of equal builds, each looking after every
    /// round from 2 to 8 repeats a side and stopping as soon as its figure
    /// is decided, with a threshold too small to hold anything back (the
    /// test alone decides): the sequential test calls "worse" at most
    /// alpha of the time; the same looks each at the whole of alpha call
    /// it well over alpha (so the simulation can tell the two apart).
    #[test]
    fn equal_builds_are_called_worse_at_most_alpha_of_the_time_however_often_we_look() {
        let checks = 10_000;
        let equal = Check {
            planned: 8,
            sd: 0.02,
            shift: 0.0,
            threshold: 0.0001,
            alpha: ALPHA,
            looking: Looking::Sequential,
        };
        let (sequential, repeats) = equal.worse_rate(30, checks);
        assert!(sequential <= ALPHA, "false worse rate {sequential}");
        // Not trivially zero either: the test does call some.
        assert!(sequential > ALPHA / 10.0, "false worse rate {sequential}");
        assert!(repeats > 2.0 && repeats <= 8.0, "{repeats}");
        let naive = Check {
            looking: Looking::Naive,
            ..equal
        };
        let (naive, _) = naive.worse_rate(30, checks);
        assert!(naive > 1.5 * ALPHA, "naive false worse rate {naive}");
    }

    /// And it stops early when the answer is clear: a 10 % slowdown of a
    /// figure with 1 % spread is called worse nearly always, long before
    /// the planned 8 repeats; equal builds are mostly decided "no change"
    /// before it too.
    #[test]
    fn a_clear_answer_stops_early() {
        let slower = Check {
            planned: 8,
            sd: 0.01,
            shift: 0.10,
            threshold: 0.05,
            alpha: ALPHA,
            looking: Looking::Sequential,
        };
        let (found, repeats) = slower.worse_rate(31, 500);
        assert!(found >= 0.99, "{found}");
        assert!(repeats < 5.0, "{repeats}");
        let equal = Check {
            shift: 0.0,
            ..slower
        };
        let (_, equal_repeats) = equal.worse_rate(32, 500);
        assert!(equal_repeats < 8.0, "{equal_repeats}");
    }
}
