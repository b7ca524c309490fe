//! Failed sign-ins are slowed, so that guessing is slow, and so that a
//! flood can neither lock the real users out nor take the CPU of the
//! machine that measures.
//!
//! A browser that has signed in as a name before (it holds a [`Device`]
//! cookie) is judged by its own failures for that name alone
//! ([`DEVICE_FAILURES`]): whatever others type, from wherever, its owner
//! goes in. Any other try is slowed once, within [`WINDOW`] of each other,
//! there were:
//! - [`PAIR_FAILURES`] failures for its name from its address;
//! - [`ADDRESS_FAILURES`] failures from its address, whatever the names;
//! - [`ACCOUNT_FAILURES`] failures for its name, whatever the addresses;
//! - [`EVERYONE_FAILURES`] failures on the whole lab.
//!
//! Slowed, not locked: past a limit each try waits [`FIRST_WAIT`] after the
//! last failure, twice as long after each further failure, never more than
//! [`LONGEST_WAIT`] (429 with `Retry-After`); a key is forgotten [`WINDOW`]
//! after its last failure. Tries refused while waiting count for nothing.
//!
//! The address is the client's as the proven proxy reports it, not the
//! proxy's own ([`crate::access::Access::client`]). A success forgets its
//! pair's failures and remembers the browser (a cookie holding a random
//! value, of which only the SHA-256 is kept). Password checks take turns
//! ([`HashGate`]): at most [`HASH_PERMITS`] at once, and at most
//! [`HASH_QUEUE`] waiting; the rest are told to come back. Everything is
//! kept in memory and bounded: names are cut to [`NAME_KEY_BYTES`], each
//! count keeps at most [`MAX_KEYS`] keys, each name at most
//! [`DEVICES_PER_NAME`] browsers, so no one's sign-ins push out another's.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, SemaphorePermit};

/// A key's failures are forgotten this long after its last one.
pub const WINDOW: Duration = Duration::from_secs(10 * 60);
pub const PAIR_FAILURES: u32 = 5;
pub const ADDRESS_FAILURES: u32 = 20;
pub const ACCOUNT_FAILURES: u32 = 20;
pub const EVERYONE_FAILURES: u32 = 200;
/// Failures a remembered browser may make for its name before it is
/// slowed (its owner's own typos).
pub const DEVICE_FAILURES: u32 = 5;
/// The wait after the failure that reached a limit.
pub const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait, however many failures.
pub const LONGEST_WAIT: Duration = Duration::from_secs(5 * 60);
/// How much of a typed name the throttle keeps (longer names are no
/// account's: they fail the same).
pub const NAME_KEY_BYTES: usize = 256;
/// How many keys each count remembers at most (those silent for the
/// window go first, then the stalest).
pub const MAX_KEYS: usize = 10_000;
/// How many browsers are remembered as having signed in, in all.
pub const MAX_DEVICES: usize = 10_000;
/// How many browsers are remembered for one name: its owner's sign-ins
/// replace only its own oldest, never another name's.
pub const DEVICES_PER_NAME: usize = 16;

/// The cookie a browser that signed in keeps.
pub const DEVICE_COOKIE: &str = "mite_perf_device";

/// Why a try must wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A remembered browser's own failures for its name.
    Device,
    Pair,
    Address,
    Account,
    Everyone,
}

/// A try refused: which limit, and how long until it may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub limit: Limit,
    pub wait: Duration,
}

impl Refusal {
    /// A sentence for the person trying.
    pub fn sentence(&self, name: &str) -> String {
        let seconds = self.wait.as_secs_f64().ceil().max(1.0) as u64;
        let when = if seconds < 60 {
            format!(
                "try again in {seconds} second{}",
                if seconds == 1 { "" } else { "s" }
            )
        } else {
            let minutes = seconds.div_ceil(60);
            format!(
                "try again in {minutes} minute{}",
                if minutes == 1 { "" } else { "s" }
            )
        };
        match self.limit {
            Limit::Device => {
                format!("Too many failed sign-ins for {name} in this browser: {when}.")
            }
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

/// A key's failures: how many since it was last forgotten, and the last.
#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    last: Instant,
}

impl Count {
    fn live(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last) < WINDOW
    }
}

/// Failures per key; a key past `free` failures waits.
#[derive(Debug)]
struct Failures<K> {
    counts: HashMap<K, Count>,
    free: u32,
}

/// The wait after `failures` failures when `free` are free: none before,
/// then [`FIRST_WAIT`], doubling, at most [`LONGEST_WAIT`].
fn wait_after(failures: u32, free: u32) -> Option<Duration> {
    let past = failures.checked_sub(free)?;
    let doubled = FIRST_WAIT.saturating_mul(1u32 << past.min(20));
    Some(doubled.min(LONGEST_WAIT))
}

impl<K: Hash + Eq + Clone> Failures<K> {
    fn new(free: u32) -> Self {
        Failures {
            counts: HashMap::new(),
            free,
        }
    }

    /// How long `key` must wait, if at all.
    fn wait(&self, key: &K, now: Instant) -> Option<Duration> {
        let count = self.counts.get(key).filter(|c| c.live(now))?;
        let wait = wait_after(count.failures, self.free)?;
        (count.last + wait)
            .checked_duration_since(now)
            .filter(|left| !left.is_zero())
    }

    fn add(&mut self, key: K, now: Instant) {
        if self.counts.len() >= MAX_KEYS && !self.counts.contains_key(&key) {
            self.counts.retain(|_, c| c.live(now));
            if self.counts.len() >= MAX_KEYS {
                // Still full of live keys: the one silent longest goes.
                if let Some(stalest) = self
                    .counts
                    .iter()
                    .min_by_key(|(_, c)| c.last)
                    .map(|(k, _)| k.clone())
                {
                    self.counts.remove(&stalest);
                }
            }
        }
        let count = self.counts.entry(key).or_insert(Count {
            failures: 0,
            last: now,
        });
        if !count.live(now) {
            count.failures = 0;
        }
        count.failures = count.failures.saturating_add(1);
        count.last = now;
    }

    fn forget(&mut self, key: &K) {
        self.counts.remove(key);
    }
}

type DeviceHash = [u8; 32];

/// Browsers that signed in, by the SHA-256 of their cookie, and as whom;
/// at most [`DEVICES_PER_NAME`] per name and [`MAX_DEVICES`] in all.
#[derive(Debug, Default)]
struct Devices {
    names: HashMap<DeviceHash, String>,
    by_name: HashMap<String, VecDeque<DeviceHash>>,
}

impl Devices {
    fn name_of(&self, device: &DeviceHash) -> Option<&str> {
        self.names.get(device).map(String::as_str)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.names.len()
    }

    fn remember(&mut self, device: DeviceHash, name: String) {
        if self.names.contains_key(&device) {
            return;
        }
        let own = self.by_name.get(&name).map_or(0, VecDeque::len);
        let crowded = if own >= DEVICES_PER_NAME {
            // The name's own oldest browser makes room, never another's.
            Some(name.clone())
        } else if self.names.len() >= MAX_DEVICES {
            // Full: the name with the most browsers gives up its oldest.
            self.by_name
                .iter()
                .max_by_key(|(_, devices)| devices.len())
                .map(|(name, _)| name.clone())
        } else {
            None
        };
        if let Some(crowded) = crowded {
            if let Some(devices) = self.by_name.get_mut(&crowded) {
                if let Some(oldest) = devices.pop_front() {
                    self.names.remove(&oldest);
                }
                if devices.is_empty() {
                    self.by_name.remove(&crowded);
                }
            }
        }
        self.names.insert(device, name.clone());
        self.by_name.entry(name).or_default().push_back(device);
    }
}

#[derive(Debug)]
struct Counts {
    pairs: Failures<(String, String)>,
    addresses: Failures<String>,
    accounts: Failures<String>,
    everyone: Failures<()>,
    /// Remembered browsers' own failures.
    device_failures: Failures<DeviceHash>,
    devices: Devices,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            pairs: Failures::new(PAIR_FAILURES),
            addresses: Failures::new(ADDRESS_FAILURES),
            accounts: Failures::new(ACCOUNT_FAILURES),
            everyone: Failures::new(EVERYONE_FAILURES),
            device_failures: Failures::new(DEVICE_FAILURES),
            devices: Devices::default(),
        }
    }
}

#[derive(Debug, Default)]
pub struct SignInThrottle {
    counts: Mutex<Counts>,
}

fn device_hash(cookie: &str) -> DeviceHash {
    Sha256::digest(cookie.as_bytes()).into()
}

/// A typed name as the throttle keeps it: lower case, at most
/// [`NAME_KEY_BYTES`] (cut on a character boundary).
pub fn name_key(name: &str) -> String {
    fn cut(text: &str) -> &str {
        let mut end = text.len().min(NAME_KEY_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        &text[..end]
    }
    cut(&cut(name).to_lowercase()).to_string()
}

/// An address as the throttle keeps it: at most a few dozen bytes.
fn address_key(from: &str) -> String {
    from.chars().take(64).collect()
}

impl Counts {
    /// The browser's device, when it signed in as `name` before.
    fn known(&self, name: &str, device: Option<&str>) -> Option<DeviceHash> {
        device
            .map(device_hash)
            .filter(|h| self.devices.name_of(h) == Some(name))
    }
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
        let Ok(counts) = self.counts.lock() else {
            return Ok(());
        };
        let name = name_key(name);
        let refuse = |limit, wait: Option<Duration>| match wait {
            Some(wait) => Err(Refusal { limit, wait }),
            None => Ok(()),
        };
        // Her own browser, before any other limit: only its own failures.
        if let Some(device) = counts.known(&name, device) {
            return refuse(Limit::Device, counts.device_failures.wait(&device, now));
        }
        let from = address_key(from);
        refuse(
            Limit::Pair,
            counts.pairs.wait(&(name.clone(), from.clone()), now),
        )?;
        refuse(Limit::Address, counts.addresses.wait(&from, now))?;
        refuse(Limit::Account, counts.accounts.wait(&name, now))?;
        refuse(Limit::Everyone, counts.everyone.wait(&(), now))
    }

    /// Counts a failure: against the browser alone when it signed in as
    /// `name` before, else against the pair, the address, the name and
    /// the lab.
    pub fn failed(&self, name: &str, from: &str, device: Option<&str>, now: Instant) {
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        let name = name_key(name);
        if let Some(device) = counts.known(&name, device) {
            counts.device_failures.add(device, now);
            return;
        }
        let from = address_key(from);
        counts.pairs.add((name.clone(), from.clone()), now);
        counts.addresses.add(from, now);
        counts.accounts.add(name, now);
        counts.everyone.add((), now);
    }

    /// Forgets the pair's failures and the browser's, and remembers the
    /// browser: the value its device cookie should hold (the one it holds
    /// when it is remembered already).
    pub fn succeeded(&self, name: &str, from: &str, device: Option<&str>) -> Option<String> {
        let mut counts = self.counts.lock().ok()?;
        let name = name_key(name);
        counts.pairs.forget(&(name.clone(), address_key(from)));
        if let Some(known) = counts.known(&name, device) {
            counts.device_failures.forget(&known);
            return device.map(str::to_string);
        }
        let cookie = crate::access::tokens::new_token().ok()?;
        counts.devices.remember(device_hash(&cookie), name);
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

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn past_five_failures_a_pair_waits_longer_each_time_never_locked() {
        let throttle = SignInThrottle::default();
        let t0 = Instant::now();
        for i in 0..PAIR_FAILURES {
            assert_eq!(
                throttle.check("ana", "10.0.0.1", None, t0),
                Ok(()),
                "try {i}"
            );
            throttle.failed("Ana", "10.0.0.1", None, t0);
        }
        let refused = throttle
            .check("ana", "10.0.0.1", None, t0)
            .expect_err("slowed");
        assert_eq!((refused.limit, refused.wait), (Limit::Pair, FIRST_WAIT));
        assert!(refused.sentence("ana").contains("try again in 1 second."));
        // Once the wait is over it may try; each further failure doubles it.
        let mut at = t0;
        let mut wait = FIRST_WAIT;
        for _ in 0..12 {
            at += wait;
            assert_eq!(throttle.check("ana", "10.0.0.1", None, at), Ok(()));
            throttle.failed("ana", "10.0.0.1", None, at);
            let refused = throttle
                .check("ana", "10.0.0.1", None, at)
                .expect_err("slowed again");
            assert_eq!(refused.wait, (wait * 2).min(LONGEST_WAIT));
            wait = refused.wait;
        }
        assert_eq!(wait, LONGEST_WAIT, "never longer");
        // Another address, or another name, is not slowed by these.
        assert_eq!(throttle.check("ana", "10.0.0.2", None, at), Ok(()));
        assert_eq!(throttle.check("bo", "10.0.0.1", None, at), Ok(()));
        // Silent for the window, the pair is forgotten.
        throttle.failed("ana", "10.0.0.1", None, at);
        let later = at + WINDOW;
        assert_eq!(throttle.check("ana", "10.0.0.1", None, later), Ok(()));
        throttle.failed("ana", "10.0.0.1", None, later);
        assert_eq!(
            throttle.check("ana", "10.0.0.1", None, later),
            Ok(()),
            "counted from one again"
        );
        throttle.succeeded("ana", "10.0.0.1", None);
        for _ in 0..PAIR_FAILURES - 1 {
            throttle.failed("ana", "10.0.0.1", None, later);
        }
        assert_eq!(throttle.check("ana", "10.0.0.1", None, later), Ok(()));
    }

    #[test]
    fn one_address_spraying_names_is_stopped() {
        let throttle = SignInThrottle::default();
        let t0 = Instant::now();
        for i in 0..ADDRESS_FAILURES {
            throttle.failed(&format!("user{i}"), "10.0.0.9", None, t0);
        }
        let refused = throttle
            .check("someone", "10.0.0.9", None, t0)
            .expect_err("the address is slowed");
        assert_eq!(refused.limit, Limit::Address);
        assert!(refused.sentence("someone").contains("this address"));
        assert_eq!(throttle.check("someone", "10.0.0.10", None, t0), Ok(()));
    }

    #[test]
    fn a_remembered_browser_goes_in_whatever_others_typed() {
        let throttle = SignInThrottle::default();
        let t0 = Instant::now();
        let mine = throttle
            .succeeded("ana", "10.0.0.1", None)
            .expect("a device");
        // Strangers guess, from her own address too (one NAT), and from
        // many others; then the whole lab floods.
        for i in 0..50u32 {
            throttle.failed("ana", "10.0.0.1", None, t0);
            throttle.failed("ana", &format!("192.0.2.{}", i % 250), None, t0);
        }
        for i in 0..EVERYONE_FAILURES {
            throttle.failed(
                &format!("n{i}"),
                &format!("203.0.113.{}", i % 250),
                None,
                t0,
            );
        }
        for (from, limit) in [("10.0.0.1", Limit::Pair), ("198.51.100.1", Limit::Account)] {
            let refused = throttle
                .check("ana", from, None, t0)
                .expect_err("strangers wait");
            assert_eq!(refused.limit, limit, "{from}");
        }
        let refused = throttle
            .check("bo", "198.51.100.3", None, t0)
            .expect_err("the lab is slowed");
        assert_eq!(refused.limit, Limit::Everyone);
        // Her browser goes on, from anywhere, whatever case she types.
        for from in ["10.0.0.1", "198.51.100.2"] {
            assert_eq!(throttle.check("ana", from, Some(&mine), t0), Ok(()));
            assert_eq!(throttle.check("ANA", from, Some(&mine), t0), Ok(()));
        }
        // It opens no other name, and a made-up cookie is no browser's.
        let stolen = throttle.check("ana", "198.51.100.1", Some("made-up"), t0);
        assert_eq!(stolen.map_err(|r| r.limit), Err(Limit::Account));
        let other = throttle.check("bo", "198.51.100.3", Some(&mine), t0);
        assert_eq!(other.map_err(|r| r.limit), Err(Limit::Everyone));
        // Her own typos slow her browser only, and only a little.
        for _ in 0..DEVICE_FAILURES {
            throttle.failed("ana", "10.0.0.1", Some(&mine), t0);
        }
        let slowed = throttle
            .check("ana", "10.0.0.1", Some(&mine), t0)
            .expect_err("her typos");
        assert_eq!((slowed.limit, slowed.wait), (Limit::Device, FIRST_WAIT));
        assert_eq!(
            throttle.check("ana", "10.0.0.1", Some(&mine), t0 + SECOND),
            Ok(())
        );
        // Signing in again keeps the cookie she has.
        assert_eq!(
            throttle.succeeded("ana", "10.0.0.1", Some(&mine)),
            Some(mine.clone())
        );
        assert_eq!(throttle.check("ana", "10.0.0.1", Some(&mine), t0), Ok(()));
    }

    #[test]
    fn what_is_remembered_is_bounded() {
        let throttle = SignInThrottle::default();
        let t0 = Instant::now();
        let long = "Ä".repeat(40_000);
        for i in 0..(MAX_KEYS + 50) {
            throttle.failed(&format!("{i}{long}"), &"1".repeat(10_000), None, t0);
        }
        let counts = throttle.counts.lock().expect("counts");
        assert!(counts.pairs.counts.len() <= MAX_KEYS);
        assert!(counts.accounts.counts.len() <= MAX_KEYS);
        assert!(counts
            .accounts
            .counts
            .keys()
            .all(|k| k.len() <= NAME_KEY_BYTES));
        assert!(counts.addresses.counts.keys().all(|k| k.len() <= 64));
        assert_eq!(name_key("ÄNA"), "äna");
    }

    #[test]
    fn nobodys_sign_ins_push_out_another_names_browser() {
        let throttle = SignInThrottle::default();
        let hers = throttle.succeeded("ana", "10.0.0.1", None).expect("hers");
        // Someone signs in 10,000 times (each a new browser to the lab).
        for _ in 0..MAX_DEVICES {
            throttle.succeeded("mallory", "10.0.0.66", None);
        }
        let counts = throttle.counts.lock().expect("counts");
        assert_eq!(counts.devices.name_of(&device_hash(&hers)), Some("ana"));
        assert_eq!(counts.devices.len(), 1 + DEVICES_PER_NAME);
        drop(counts);
        // When the lab is full, the name with the most browsers gives way.
        let mut devices = Devices::default();
        for i in 0..MAX_DEVICES {
            devices.remember(device_hash(&i.to_string()), format!("u{}", i % 1000));
        }
        devices.remember(device_hash("x"), "ana".into());
        assert_eq!(devices.len(), MAX_DEVICES);
        assert_eq!(devices.name_of(&device_hash("x")), Some("ana"));
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
