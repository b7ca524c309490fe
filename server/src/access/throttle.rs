//! Failed sign-ins are slowed, so that guessing is slow, and so that a
//! flood can neither lock the real users out nor take the CPU of the
//! machine that measures.
//!
//! Within [`WINDOW`], a try is refused (429) after:
//! - [`PAIR_FAILURES`] failures for its name from its address;
//! - [`ADDRESS_FAILURES`] failures from its address, whatever the names;
//! - [`ACCOUNT_FAILURES`] failures for its name, whatever the addresses,
//!   unless the browser has signed in as that name before ([`Device`]);
//! - [`EVERYONE_FAILURES`] failures on the whole lab, unless the browser
//!   has signed in as that name before.
//!
//! The address is the client's as the trusted proxy reports it, not the
//! proxy's own. A success forgets its pair's failures and remembers the
//! browser (a cookie holding a random value, of which only the SHA-256 is
//! kept). Password checks take turns ([`HashGate`]): at most
//! [`HASH_PERMITS`] at once, and at most [`HASH_QUEUE`] waiting; the rest
//! are told to come back. Everything is kept in memory and bounded.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, SemaphorePermit};

pub const WINDOW: Duration = Duration::from_secs(10 * 60);
pub const PAIR_FAILURES: usize = 5;
pub const ADDRESS_FAILURES: usize = 20;
pub const ACCOUNT_FAILURES: usize = 20;
pub const EVERYONE_FAILURES: usize = 200;
/// How many keys each count remembers at most (the stalest go first).
const MAX_KEYS: usize = 10_000;
/// How many browsers are remembered as having signed in.
const MAX_DEVICES: usize = 10_000;

/// The cookie a browser that signed in keeps.
pub const DEVICE_COOKIE: &str = "mite_perf_device";

/// Why a try must wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Pair,
    Address,
    Account,
    Everyone,
}

/// A try refused: which limit, and how long until it frees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub limit: Limit,
    pub wait: Duration,
}

impl Refusal {
    /// A sentence for the person trying.
    pub fn sentence(&self, name: &str) -> String {
        let minutes = self.wait.as_secs().div_ceil(60).max(1);
        let when = format!(
            "try again in {minutes} minute{}",
            if minutes == 1 { "" } else { "s" }
        );
        match self.limit {
            Limit::Pair => format!("Too many failed sign-ins for {name} from here: {when}."),
            Limit::Address => format!("Too many failed sign-ins from this address: {when}."),
            Limit::Account => format!(
                "Too many failed sign-ins for {name} from elsewhere: sign in from a browser that \
                 has signed in as {name} before, or {when}."
            ),
            Limit::Everyone => format!(
                "Too many failed sign-ins on this lab: sign in from a browser that has signed in \
                 as {name} before, or {when}."
            ),
        }
    }
}

/// Failure times per key, at most `limit` counted.
#[derive(Debug)]
struct Failures<K> {
    times: HashMap<K, VecDeque<Instant>>,
    limit: usize,
}

impl<K: Hash + Eq + Clone> Failures<K> {
    fn new(limit: usize) -> Self {
        Failures {
            times: HashMap::new(),
            limit,
        }
    }

    /// How long `key` must wait, if at all.
    fn wait(&mut self, key: &K, now: Instant) -> Option<Duration> {
        let times = self.times.get_mut(key)?;
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            times.pop_front();
        }
        // The limit frees once the oldest counted failure leaves the window.
        (times.len() >= self.limit)
            .then(|| {
                times
                    .front()
                    .map(|t| WINDOW.saturating_sub(now.duration_since(*t)))
            })
            .flatten()
    }

    fn add(&mut self, key: K, now: Instant) {
        if self.times.len() >= MAX_KEYS && !self.times.contains_key(&key) {
            self.times
                .retain(|_, t| t.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
            if self.times.len() >= MAX_KEYS {
                // Still full of live keys: the one seen least recently goes.
                if let Some(stalest) = self
                    .times
                    .iter()
                    .min_by_key(|(_, t)| t.back().copied())
                    .map(|(k, _)| k.clone())
                {
                    self.times.remove(&stalest);
                }
            }
        }
        let times = self.times.entry(key).or_default();
        times.push_back(now);
        while times.len() > self.limit {
            times.pop_front();
        }
    }

    fn forget(&mut self, key: &K) {
        self.times.remove(key);
    }
}

#[derive(Debug)]
struct Counts {
    pairs: Failures<(String, String)>,
    addresses: Failures<String>,
    accounts: Failures<String>,
    everyone: Failures<()>,
    /// Browsers that signed in: the SHA-256 of their cookie, and as whom.
    devices: HashMap<[u8; 32], String>,
    devices_in_order: VecDeque<[u8; 32]>,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            pairs: Failures::new(PAIR_FAILURES),
            addresses: Failures::new(ADDRESS_FAILURES),
            accounts: Failures::new(ACCOUNT_FAILURES),
            everyone: Failures::new(EVERYONE_FAILURES),
            devices: HashMap::new(),
            devices_in_order: VecDeque::new(),
        }
    }
}

#[derive(Debug, Default)]
pub struct SignInThrottle {
    counts: Mutex<Counts>,
}

fn device_hash(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

impl SignInThrottle {
    /// Whether `name` may try now from `from`, in a browser holding the
    /// device cookie `device` (if any).
    pub fn check(
        &self,
        name: &str,
        from: &str,
        device: Option<&str>,
        now: Instant,
    ) -> Result<(), Refusal> {
        let Ok(mut counts) = self.counts.lock() else {
            return Ok(());
        };
        let name = name.to_lowercase();
        let known = device
            .map(device_hash)
            .and_then(|h| counts.devices.get(&h))
            .is_some_and(|who| *who == name);
        let refuse = |limit, wait: Option<Duration>| match wait {
            Some(wait) => Err(Refusal { limit, wait }),
            None => Ok(()),
        };
        refuse(
            Limit::Pair,
            counts.pairs.wait(&(name.clone(), from.to_string()), now),
        )?;
        if known {
            return Ok(());
        }
        refuse(
            Limit::Address,
            counts.addresses.wait(&from.to_string(), now),
        )?;
        refuse(Limit::Account, counts.accounts.wait(&name, now))?;
        refuse(Limit::Everyone, counts.everyone.wait(&(), now))
    }

    pub fn failed(&self, name: &str, from: &str, now: Instant) {
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        let name = name.to_lowercase();
        counts.pairs.add((name.clone(), from.to_string()), now);
        counts.addresses.add(from.to_string(), now);
        counts.accounts.add(name, now);
        counts.everyone.add((), now);
    }

    /// Forgets the pair's failures and remembers the browser: the value of
    /// its new device cookie.
    pub fn succeeded(&self, name: &str, from: &str) -> Option<String> {
        let mut counts = self.counts.lock().ok()?;
        let name = name.to_lowercase();
        counts.pairs.forget(&(name.clone(), from.to_string()));
        let cookie = crate::access::tokens::new_token().ok()?;
        let hash = device_hash(&cookie);
        if counts.devices_in_order.len() >= MAX_DEVICES {
            if let Some(oldest) = counts.devices_in_order.pop_front() {
                counts.devices.remove(&oldest);
            }
        }
        counts.devices.insert(hash, name);
        counts.devices_in_order.push_back(hash);
        Some(cookie)
    }
}

/// How many password checks run at once: one core at most, on a machine
/// whose other core measures.
pub const HASH_PERMITS: usize = 1;
/// How many wait for their turn; the rest are told to come back.
pub const HASH_QUEUE: usize = 8;

/// Password checks take turns.
#[derive(Debug)]
pub struct HashGate {
    turns: Semaphore,
    waiting: AtomicUsize,
    running: AtomicUsize,
    /// The most that ever ran at once (for tests and metrics).
    peak: AtomicUsize,
}

impl Default for HashGate {
    fn default() -> Self {
        HashGate {
            turns: Semaphore::new(HASH_PERMITS),
            waiting: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }
}

/// A turn to check a password; the check ends when it is dropped.
pub struct HashTurn<'a> {
    gate: &'a HashGate,
    _permit: SemaphorePermit<'a>,
}

impl Drop for HashTurn<'_> {
    fn drop(&mut self) {
        self.gate.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl HashGate {
    /// A turn, after those waiting; `None` when too many wait already.
    pub async fn turn(&self) -> Option<HashTurn<'_>> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= HASH_QUEUE {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let permit = self.turns.acquire().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let permit = permit.ok()?;
        let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(running, Ordering::SeqCst);
        Some(HashTurn {
            gate: self,
            _permit: permit,
        })
    }

    /// The most checks that ever ran at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_for_a_pair_then_a_wait_then_free_again() {
        let throttle = SignInThrottle::default();
        let t0 = Instant::now();
        for i in 0..PAIR_FAILURES {
            assert_eq!(
                throttle.check("ana", "10.0.0.1", None, t0),
                Ok(()),
                "try {i}"
            );
            throttle.failed("Ana", "10.0.0.1", t0);
        }
        let refused = throttle
            .check("ana", "10.0.0.1", None, t0 + Duration::from_secs(1))
            .expect_err("slowed");
        assert_eq!(refused.limit, Limit::Pair);
        assert_eq!(refused.wait, WINDOW - Duration::from_secs(1));
        // Another address, or another name, is not slowed by these.
        assert_eq!(throttle.check("ana", "10.0.0.2", None, t0), Ok(()));
        assert_eq!(throttle.check("bo", "10.0.0.1", None, t0), Ok(()));
        // Once the window has passed since the failures, trying is free again.
        assert_eq!(throttle.check("ana", "10.0.0.1", None, t0 + WINDOW), Ok(()));
        throttle.failed("ana", "10.0.0.3", t0);
        throttle.succeeded("ana", "10.0.0.3");
        assert_eq!(throttle.check("ana", "10.0.0.3", None, t0), Ok(()));
    }

    #[test]
    fn one_address_spraying_names_is_stopped() {
        let throttle = SignInThrottle::default();
        let t0 = Instant::now();
        for i in 0..ADDRESS_FAILURES {
            throttle.failed(&format!("user{i}"), "10.0.0.9", t0);
        }
        let refused = throttle
            .check("someone", "10.0.0.9", None, t0)
            .expect_err("the address is slowed");
        assert_eq!(refused.limit, Limit::Address);
        assert!(refused.sentence("someone").contains("this address"));
        assert_eq!(throttle.check("someone", "10.0.0.10", None, t0), Ok(()));
    }

    #[test]
    fn many_addresses_guessing_one_name_leave_its_own_browsers_in() {
        let throttle = SignInThrottle::default();
        let t0 = Instant::now();
        let mine = throttle.succeeded("ana", "10.0.0.1").expect("a device");
        for i in 0..ACCOUNT_FAILURES {
            throttle.failed("ana", &format!("192.0.2.{i}"), t0);
        }
        let refused = throttle
            .check("ana", "198.51.100.1", None, t0)
            .expect_err("strangers wait");
        assert_eq!(refused.limit, Limit::Account);
        // Ana's browser goes on, from anywhere; it does not open other names.
        assert_eq!(
            throttle.check("ana", "198.51.100.2", Some(&mine), t0),
            Ok(())
        );
        assert_eq!(
            throttle.check("ANA", "198.51.100.2", Some(&mine), t0),
            Ok(())
        );
        let stolen = throttle.check("ana", "198.51.100.1", Some("made-up"), t0);
        assert_eq!(stolen.map_err(|r| r.limit), Err(Limit::Account));
        // The whole lab's cap, likewise.
        for i in 0..EVERYONE_FAILURES {
            throttle.failed(&format!("n{i}"), &format!("203.0.113.{}", i % 250), t0);
        }
        let refused = throttle
            .check("bo", "198.51.100.3", None, t0)
            .expect_err("the lab is slowed");
        assert_eq!(refused.limit, Limit::Everyone);
        assert_eq!(
            throttle.check("ana", "198.51.100.3", Some(&mine), t0),
            Ok(())
        );
    }

    #[test]
    fn what_is_remembered_is_bounded() {
        let throttle = SignInThrottle::default();
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS + 50) {
            throttle.failed(&format!("n{i}"), "10.0.0.1", t0);
        }
        let counts = throttle.counts.lock().expect("counts");
        assert!(counts.pairs.times.len() <= MAX_KEYS);
        assert!(counts.accounts.times.len() <= MAX_KEYS);
        assert!(counts.addresses.times["10.0.0.1"].len() <= ADDRESS_FAILURES);
    }

    #[tokio::test]
    async fn checks_take_turns_and_a_queue_too_long_is_turned_away() {
        let gate = std::sync::Arc::new(HashGate::default());
        let first = gate.turn().await.expect("a turn");
        let mut waiting = Vec::new();
        for _ in 0..HASH_QUEUE {
            let gate = gate.clone();
            waiting.push(tokio::spawn(async move {
                let _turn = gate.turn().await.expect("a turn");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }));
        }
        while gate.waiting.load(Ordering::SeqCst) < HASH_QUEUE {
            tokio::task::yield_now().await;
        }
        assert!(gate.turn().await.is_none(), "the queue is full");
        drop(first);
        for w in waiting {
            w.await.expect("waited");
        }
        assert_eq!(gate.peak(), HASH_PERMITS);
        assert!(gate.turn().await.is_some(), "free again");
    }
}
