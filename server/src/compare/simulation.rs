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
