//! Repeated failed sign-ins are slowed: after [`FREE_FAILURES`] failures
//! for one name from one address within [`WINDOW`], further tries for that
//! pair are refused (429) until the window since the latest failure has
//! passed. A success forgets the pair's failures. Kept in memory: it slows
//! guessing; it is not an account lock a stranger could set off from afar.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const FREE_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(10 * 60);
/// How many pairs are remembered at most (the oldest go first).
const MAX_PAIRS: usize = 10_000;

#[derive(Debug, Default)]
pub struct SignInThrottle {
    failures: Mutex<HashMap<(String, String), Vec<Instant>>>,
}

impl SignInThrottle {
    /// `Err(wait)` when this name from this address must wait before trying again.
    pub fn check(&self, name: &str, from: &str, now: Instant) -> Result<(), Duration> {
        let Ok(mut failures) = self.failures.lock() else {
            return Ok(());
        };
        let key = (name.to_lowercase(), from.to_string());
        let Some(times) = failures.get_mut(&key) else {
            return Ok(());
        };
        times.retain(|t| now.duration_since(*t) < WINDOW);
        match times.last() {
            Some(last) if times.len() >= FREE_FAILURES => {
                Err(WINDOW.saturating_sub(now.duration_since(*last)))
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, name: &str, from: &str, now: Instant) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() >= MAX_PAIRS {
            failures.retain(|_, times| {
                times
                    .last()
                    .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
        }
        failures
            .entry((name.to_lowercase(), from.to_string()))
            .or_default()
            .push(now);
    }

    pub fn succeeded(&self, name: &str, from: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&(name.to_lowercase(), from.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_then_a_wait_then_free_again() {
        let throttle = SignInThrottle::default();
        let t0 = Instant::now();
        for i in 0..FREE_FAILURES {
            assert_eq!(throttle.check("ana", "10.0.0.1", t0), Ok(()), "try {i}");
            throttle.failed("Ana", "10.0.0.1", t0);
        }
        let wait = throttle
            .check("ana", "10.0.0.1", t0 + Duration::from_secs(1))
            .expect_err("slowed");
        assert_eq!(wait, WINDOW - Duration::from_secs(1));
        // Another address, or another name, is not slowed by these.
        assert_eq!(throttle.check("ana", "10.0.0.2", t0), Ok(()));
        assert_eq!(throttle.check("bo", "10.0.0.1", t0), Ok(()));
        // Once the window has passed since the failures, trying is free again.
        assert_eq!(throttle.check("ana", "10.0.0.1", t0 + WINDOW), Ok(()));
        throttle.failed("ana", "10.0.0.3", t0);
        throttle.succeeded("ana", "10.0.0.3");
        assert_eq!(throttle.check("ana", "10.0.0.3", t0), Ok(()));
    }
}
