//! Counting mite's messages into intervals and per-scenario totals: requests,
//! errors by kind and latency histograms per transaction, and the
//! controller's required against actual concurrency. Pure: the reader feeds
//! it, the sampler takes what is ready at each tick.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
// Counting looks a transaction's name up four times a message (its
// interval, the totals): rustc's hash rather than SipHash, which was a
// tenth of the reader's CPU (BENCHMARKS.md, the bus reader); the names
// are mite's own.
use rustc_hash::FxHashMap as HashMap;

use crate::message::BusMessage;
use domain::model::{
    ConcurrencyPoint, ErrorCount, TransactionInterval, TransactionTotal, NO_TRANSACTION,
    OTHER_ERRORS, OTHER_TRANSACTIONS,
};

/// The width of mite's intervals: a second, whatever the sampling interval.
pub const BUS_INTERVAL_MS: i64 = 1000;
/// How long after an interval's end its last messages may still arrive.
const SETTLE_MS: i64 = 250;
/// Latencies are kept in microseconds, from 1 µs to 10 minutes (longer ones
/// count as 10 minutes), to 3 significant figures.
const HIGHEST_MICROS: u64 = 600_000_000;
/// The longest message kept as an error's example.
const EXAMPLE_CHARS: usize = 300;

// The tally's state is bounded whatever the messages say (scenario code
// and anyone who can push into mite's message port choose names, kinds
// and times): FAULTS.md 52. Past a bound, messages still count, under an
// "other" row that says so, and the first time is logged.

/// Distinct transaction names counted per scenario; later names count as
/// [`OTHER_TRANSACTIONS`]. Each costs a histogram (about 170 KB) per open
/// interval and over the scenario, and its share of every tick.
pub const MAX_TRANSACTIONS: usize = 100;
/// Distinct (transaction, error kind) pairs per scenario; later kinds
/// count as [`OTHER_ERRORS`] of their transaction.
pub const MAX_ERROR_KINDS: usize = 100;
/// The longest transaction name or error kind kept, in bytes (cut at a
/// character's boundary).
pub const MAX_NAME_BYTES: usize = 200;
/// Histograms held by the intervals not handed out yet, every transaction
/// together; past it, a transaction new to an interval counts there as
/// [`OTHER_TRANSACTIONS`] (its totals stay its own).
pub const MAX_OPEN_CELLS: usize = 1024;
/// How far ahead of the reader's clock (in intervals) a message's time may
/// place it: mite stamps its messages with the same clock before sending
/// them, so a later time is not mite's; it counts in the latest interval
/// allowed. The intervals held open are then those of one sampling
/// interval (60 s at most).
pub const MAX_AHEAD: i64 = 2;
/// Controller reports waiting for the next tick (mite sends one a
/// second); later ones are left out until the tick takes them.
pub const MAX_REPORTS_WAITING: usize = 256;

/// `name` cut to at most `max` bytes, at a character's boundary.
fn cut(name: &str, max: usize) -> &str {
    if name.len() <= max {
        return name;
    }
    let mut end = max;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Which bounds a scenario's messages reached (each logged once).
#[derive(Debug, Clone, Copy, Default)]
struct Reached {
    transactions: bool,
    errors: bool,
    cells: bool,
    ahead: bool,
    reports: bool,
}

fn histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts: a failure here is
    // a bug in this file, caught by its tests.
    Histogram::new_with_bounds(1, HIGHEST_MICROS, 3).expect("valid histogram bounds")
}

fn millis(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// Counts of one transaction: over an interval or over the scenario.
#[derive(Clone)]
struct Counts {
    requests: i64,
    errors: i64,
    exceptions: i64,
    transactions: i64,
    latency: Histogram<u64>,
}

impl Counts {
    fn new() -> Self {
        Counts {
            requests: 0,
            errors: 0,
            exceptions: 0,
            transactions: 0,
            latency: histogram(),
        }
    }

    fn quantile(&self, q: f64) -> Option<f64> {
        (!self.latency.is_empty()).then(|| millis(self.latency.value_at_quantile(q)))
    }

    fn max(&self) -> Option<f64> {
        (!self.latency.is_empty()).then(|| millis(self.latency.max()))
    }
}

/// What the tally has counted beyond the rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusCounts {
    /// Frames received.
    pub messages: u64,
    /// Frames that were not a message the lab could read.
    pub undecodable: u64,
    /// Journeys that ended (mite's root transaction).
    pub journeys: u64,
    /// The controller's reports while its volume model ran (required > 0),
    /// and those with fewer journeys running than required.
    pub reports: u64,
    pub reports_short: u64,
    /// The reader's own CPU time (ms), known once it has ended.
    pub reader_cpu_ms: i64,
}

/// Rows ready to be stored: whole intervals, new controller reports, and
/// (when anything changed) the scenario's totals and error kinds so far,
/// which replace the stored ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BusBatch {
    pub intervals: Vec<TransactionInterval>,
    pub concurrency: Vec<ConcurrencyPoint>,
    pub totals: Vec<TransactionTotal>,
    pub errors: Vec<ErrorCount>,
    pub counts: BusCounts,
    /// mite's p99 response time (ms), every transaction together, over the
    /// steady seconds handed out so far (see [`SteadyLatency`]).
    pub steady_p99_ms: Option<f64>,
}

impl BusBatch {
    /// Rows, for the sink's bound on what waits in memory.
    pub fn rows(&self) -> usize {
        self.intervals.len() + self.concurrency.len() + self.totals.len() + self.errors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows() == 0
    }
}

/// A scenario's messages, counted.
pub struct BusTally {
    origin_ms: i64,
    /// Intervals not handed out yet, by index, then by transaction.
    open: BTreeMap<i64, HashMap<String, Counts>>,
    /// The counts held in `open`, every interval together.
    open_cells: usize,
    /// The reader's clock (unix ms) as it last read: no message counts
    /// later than [`MAX_AHEAD`] intervals after it.
    now_ms: Option<i64>,
    /// The first interval not handed out yet: later messages for an earlier
    /// interval are counted in this one (never lost, never counted twice).
    next_out: i64,
    totals: HashMap<String, Counts>,
    /// By (transaction, kind): count and one message.
    errors: BTreeMap<(String, String), (i64, String)>,
    reports: Vec<ConcurrencyPoint>,
    counts: BusCounts,
    /// Totals changed since they were last handed out.
    changed: bool,
    steady: SteadyLatency,
    reached: Reached,
}

/// Every response's latency over a scenario's steady seconds: its bus
/// intervals less the first and the last with a response, as the steady
/// window of the samples leaves out mite's start and wind-down. Fed an
/// interval at a time as they are handed out, so it holds the latest one
/// back until the next arrives; the one held when the scenario ends is its
/// last and is never counted.
struct SteadyLatency {
    /// An interval with a response was seen (the first is left out).
    started: bool,
    held: Option<Histogram<u64>>,
    counted: Histogram<u64>,
}

impl SteadyLatency {
    fn new() -> Self {
        SteadyLatency {
            started: false,
            held: None,
            counted: histogram(),
        }
    }

    /// One interval's latencies, every transaction together.
    fn add_interval<'a>(&mut self, transactions: impl Iterator<Item = &'a Counts>) {
        let mut interval = histogram();
        for counts in transactions {
            add_latencies(&mut interval, &counts.latency);
        }
        if interval.is_empty() {
            return;
        }
        if !std::mem::replace(&mut self.started, true) {
            return;
        }
        if let Some(previous) = self.held.replace(interval) {
            add_latencies(&mut self.counted, &previous);
        }
    }

    fn p99_ms(&self) -> Option<f64> {
        (!self.counted.is_empty()).then(|| millis(self.counted.value_at_quantile(0.99)))
    }
}

/// Adds `from` into `into` (histograms of the same bounds, so it cannot
/// fail; a failure would drop those latencies, not the tally).
fn add_latencies(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    if let Err(e) = into.add(from) {
        tracing::warn!("cannot add mite's latencies up: {e}");
    }
}

impl BusTally {
    /// Intervals start at `origin_ms` (unix ms); earlier messages count in the first.
    pub fn new(origin_ms: i64) -> Self {
        BusTally {
            origin_ms,
            open: BTreeMap::new(),
            open_cells: 0,
            now_ms: None,
            next_out: 0,
            totals: HashMap::default(),
            errors: BTreeMap::new(),
            reports: Vec::new(),
            counts: BusCounts::default(),
            changed: false,
            steady: SteadyLatency::new(),
            reached: Reached::default(),
        }
    }

    /// Moves the intervals' origin (the scenario's start, known once its
    /// children are up). Only before any interval was handed out.
    pub fn set_origin(&mut self, origin_ms: i64) {
        if self.next_out == 0 {
            let messages: Vec<(i64, HashMap<String, Counts>)> =
                std::mem::take(&mut self.open).into_iter().collect();
            self.origin_ms = origin_ms;
            // Whatever arrived before the new origin belongs to its first interval.
            for (_, by_transaction) in messages {
                let first = self.open.entry(0).or_default();
                for (name, counts) in by_transaction {
                    merge(first.entry(name).or_insert_with(Counts::new), &counts);
                }
            }
            self.open_cells = self.open.values().map(HashMap::len).sum();
        }
    }

    pub fn counts(&self) -> BusCounts {
        self.counts
    }

    /// The reader's clock as it reads (unix ms): later times are not
    /// mite's (see [`MAX_AHEAD`]).
    pub fn note_now(&mut self, now_ms: i64) {
        self.now_ms = Some(now_ms);
    }

    fn elapsed_ms(&self, time: f64) -> i64 {
        ((time * 1000.0) as i64 - self.origin_ms).max(0)
    }

    /// The name a transaction is counted under: cut to
    /// [`MAX_NAME_BYTES`], and [`OTHER_TRANSACTIONS`] past
    /// [`MAX_TRANSACTIONS`] names.
    fn name_of<'n>(&mut self, transaction: &'n str) -> &'n str {
        if transaction.is_empty() {
            return NO_TRANSACTION;
        }
        let name = cut(transaction, MAX_NAME_BYTES);
        if self.totals.len() >= MAX_TRANSACTIONS && !self.totals.contains_key(name) {
            if !std::mem::replace(&mut self.reached.transactions, true) {
                tracing::warn!(
                    "mite's bus: more than {MAX_TRANSACTIONS} transaction names; the rest count as \"{OTHER_TRANSACTIONS}\""
                );
            }
            return OTHER_TRANSACTIONS;
        }
        name
    }

    /// The counts of transaction `name` (from [`Self::name_of`]) in the
    /// interval of `time`, and over the scenario.
    fn interval(&mut self, time: f64, name: &str) -> (&mut Counts, &mut Counts) {
        let mut index = (self.elapsed_ms(time) / BUS_INTERVAL_MS).max(self.next_out);
        if let Some(now) = self.now_ms {
            let horizon = (now - self.origin_ms).div_euclid(BUS_INTERVAL_MS) + MAX_AHEAD;
            if index > horizon {
                if !std::mem::replace(&mut self.reached.ahead, true) {
                    tracing::warn!(
                        "mite's bus: a message stamped {} s after the lab's clock; counted in the latest second allowed",
                        index - horizon + MAX_AHEAD
                    );
                }
                index = horizon.max(self.next_out);
            }
        }
        self.changed = true;
        let by_name = self.open.entry(index).or_default();
        let mut cell = name;
        if !by_name.contains_key(name) {
            if self.open_cells >= MAX_OPEN_CELLS {
                if !std::mem::replace(&mut self.reached.cells, true) {
                    tracing::warn!("mite's bus: more than {MAX_OPEN_CELLS} transactions' seconds held at once; the rest count as \"{OTHER_TRANSACTIONS}\" in their second");
                }
                cell = OTHER_TRANSACTIONS;
            }
            if !by_name.contains_key(cell) {
                self.open_cells += 1;
            }
        }
        let interval = counts_of(by_name, cell);
        let total = counts_of(&mut self.totals, name);
        (interval, total)
    }

    /// Counts a frame that could not be read.
    pub fn add_undecodable(&mut self) {
        self.counts.messages += 1;
        self.counts.undecodable += 1;
    }

    /// Counts one message.
    pub fn add(&mut self, message: &BusMessage<'_>) {
        self.counts.messages += 1;
        match *message {
            BusMessage::Response {
                transaction,
                time,
                status,
                total_time,
            } => {
                let micros = (total_time * 1_000_000.0).round().max(1.0) as u64;
                let failed = status >= 400;
                let name = self.name_of(transaction);
                let (interval, total) = self.interval(time, name);
                for counts in [interval, total] {
                    counts.requests += 1;
                    counts.errors += i64::from(failed);
                    counts.latency.saturating_record(micros);
                }
                if failed {
                    self.add_error(name, &format!("HTTP {status}"), "");
                }
            }
            BusMessage::TransactionEnd {
                transaction, time, ..
            } => {
                if transaction.is_empty() {
                    self.counts.journeys += 1;
                } else {
                    let name = self.name_of(transaction);
                    let (interval, total) = self.interval(time, name);
                    interval.transactions += 1;
                    total.transactions += 1;
                }
            }
            BusMessage::Error {
                transaction,
                time,
                kind,
                message,
            } => {
                let name = self.name_of(transaction);
                let (interval, total) = self.interval(time, name);
                interval.exceptions += 1;
                total.exceptions += 1;
                self.add_error(name, kind, message);
            }
            BusMessage::ControllerReport {
                time,
                required,
                actual,
                runners,
            } => {
                let elapsed_ms = self.elapsed_ms(time);
                if required > 0 {
                    self.counts.reports += 1;
                    self.counts.reports_short += u64::from(actual < required);
                }
                if self.reports.len() >= MAX_REPORTS_WAITING {
                    if !std::mem::replace(&mut self.reached.reports, true) {
                        tracing::warn!("mite's bus: more than {MAX_REPORTS_WAITING} controller reports between two ticks; the rest are left out");
                    }
                    return;
                }
                self.reports.push(ConcurrencyPoint {
                    elapsed_ms,
                    at_ms: self.origin_ms + elapsed_ms,
                    required,
                    actual,
                    runners,
                });
            }
            BusMessage::Other => {}
        }
    }

    /// Counts an error of transaction `name` (from [`Self::name_of`]):
    /// its kind cut to [`MAX_NAME_BYTES`], and [`OTHER_ERRORS`] past
    /// [`MAX_ERROR_KINDS`] kinds.
    fn add_error(&mut self, name: &str, kind: &str, message: &str) {
        let mut key = (name.to_string(), cut(kind, MAX_NAME_BYTES).to_string());
        if self.errors.len() >= MAX_ERROR_KINDS && !self.errors.contains_key(&key) {
            if !std::mem::replace(&mut self.reached.errors, true) {
                tracing::warn!(
                    "mite's bus: more than {MAX_ERROR_KINDS} kinds of error; the rest count as \"{OTHER_ERRORS}\""
                );
            }
            key.1 = OTHER_ERRORS.to_string();
        }
        let entry = self
            .errors
            .entry(key)
            .or_insert_with(|| (0, message.chars().take(EXAMPLE_CHARS).collect()));
        entry.0 += 1;
        self.changed = true;
    }

    /// The intervals that ended at least a moment before `now_ms`, the
    /// reports since the last call, and the totals if they changed.
    pub fn take_ready(&mut self, now_ms: i64) -> BusBatch {
        let done_before = (now_ms - SETTLE_MS - self.origin_ms).div_euclid(BUS_INTERVAL_MS);
        self.take_until(done_before)
    }

    /// Everything counted, the interval in progress too: the scenario ended.
    pub fn take_all(&mut self) -> BusBatch {
        let last = self.open.keys().next_back().copied().unwrap_or(-1);
        self.take_until(last + 1)
    }

    fn take_until(&mut self, end: i64) -> BusBatch {
        let mut intervals = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            if *entry.key() >= end {
                break;
            }
            let (index, by_transaction) = entry.remove_entry();
            self.open_cells -= by_transaction.len();
            self.steady.add_interval(by_transaction.values());
            let mut rows: Vec<TransactionInterval> = by_transaction
                .into_iter()
                .map(|(transaction, c)| TransactionInterval {
                    elapsed_ms: index * BUS_INTERVAL_MS,
                    at_ms: self.origin_ms + index * BUS_INTERVAL_MS,
                    requests: c.requests,
                    errors: c.errors,
                    exceptions: c.exceptions,
                    transactions: c.transactions,
                    p50_ms: c.quantile(0.5),
                    p90_ms: c.quantile(0.9),
                    p99_ms: c.quantile(0.99),
                    max_ms: c.max(),
                    transaction,
                })
                .collect();
            rows.sort_by(|a, b| a.transaction.cmp(&b.transaction));
            intervals.extend(rows);
        }
        self.next_out = self.next_out.max(end);
        let (totals, errors) = if std::mem::take(&mut self.changed) {
            (self.totals(), self.error_counts())
        } else {
            (Vec::new(), Vec::new())
        };
        BusBatch {
            intervals,
            concurrency: std::mem::take(&mut self.reports),
            totals,
            errors,
            counts: self.counts,
            steady_p99_ms: self.steady.p99_ms(),
        }
    }

    /// Every transaction over the scenario so far, by name.
    pub fn totals(&self) -> Vec<TransactionTotal> {
        let mut totals: Vec<TransactionTotal> = self
            .totals
            .iter()
            .map(|(transaction, c)| TransactionTotal {
                transaction: transaction.clone(),
                requests: c.requests,
                errors: c.errors,
                exceptions: c.exceptions,
                transactions: c.transactions,
                p50_ms: c.quantile(0.5),
                p90_ms: c.quantile(0.9),
                p99_ms: c.quantile(0.99),
                max_ms: c.max(),
                mean_ms: (!c.latency.is_empty()).then(|| c.latency.mean() / 1000.0),
            })
            .collect();
        totals.sort_by(|a, b| a.transaction.cmp(&b.transaction));
        totals
    }

    pub fn error_counts(&self) -> Vec<ErrorCount> {
        self.errors
            .iter()
            .map(|((transaction, kind), (count, example))| ErrorCount {
                transaction: transaction.clone(),
                kind: kind.clone(),
                count: *count,
                example: example.clone(),
            })
            .collect()
    }
}

/// The counts of transaction `name`, made on first use (a lookup first: no
/// allocation for a name already there, which is nearly every message).
fn counts_of<'a>(by_name: &'a mut HashMap<String, Counts>, name: &str) -> &'a mut Counts {
    if !by_name.contains_key(name) {
        by_name.insert(name.to_string(), Counts::new());
    }
    // Just made, if it was not there.
    by_name.get_mut(name).expect("the counts were just made")
}

fn merge(into: &mut Counts, from: &Counts) {
    into.requests += from.requests;
    into.errors += from.errors;
    into.exceptions += from.exceptions;
    into.transactions += from.transactions;
    add_latencies(&mut into.latency, &from.latency);
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: i64 = 1_700_000_000_000;

    fn at(ms: i64) -> f64 {
        (ORIGIN + ms) as f64 / 1000.0
    }

    fn response(transaction: &str, ms: i64, status: u16, total_ms: f64) -> BusMessage<'_> {
        BusMessage::Response {
            transaction,
            time: at(ms),
            status,
            total_time: total_ms / 1000.0,
        }
    }

    #[test]
    fn responses_count_per_transaction_and_interval_with_percentiles() {
        let mut tally = BusTally::new(ORIGIN);
        // 100 responses of 1..=100 ms to "browse" in the first second, every
        // fourth of 10 to "checkout" failing.
        for i in 1..=100 {
            tally.add(&response("browse", i * 5, 200, i as f64));
        }
        for i in 0..10 {
            let status = if i % 4 == 0 { 500 } else { 200 };
            tally.add(&response("checkout", 500 + i, status, 20.0));
        }
        tally.add(&response("browse", 1500, 200, 7.0));
        // No interval is ready before the first second has settled; the
        // totals and errors so far are.
        let early = tally.take_ready(ORIGIN + 1100);
        assert!(early.intervals.is_empty());
        assert_eq!(early.totals.len(), 2);
        let batch = tally.take_ready(ORIGIN + 1300);
        assert_eq!(batch.intervals.len(), 2);
        let browse = &batch.intervals[0];
        assert_eq!(
            (
                browse.transaction.as_str(),
                browse.elapsed_ms,
                browse.requests
            ),
            ("browse", 0, 100)
        );
        let p50 = browse.p50_ms.expect("a median");
        assert!((49.9..=50.1).contains(&p50), "p50 {p50}");
        let p99 = browse.p99_ms.expect("a p99");
        assert!((98.9..=99.1).contains(&p99), "p99 {p99}");
        assert!((99.9..=100.1).contains(&browse.max_ms.expect("a max")));
        let checkout = &batch.intervals[1];
        assert_eq!((checkout.requests, checkout.errors), (10, 3));
        // Nothing new since: the totals are not handed out again.
        assert!(batch.totals.is_empty());
        assert_eq!(
            early.errors,
            vec![ErrorCount {
                transaction: "checkout".into(),
                kind: "HTTP 500".into(),
                count: 3,
                example: String::new()
            }]
        );
        let rest = tally.take_all();
        assert_eq!(rest.intervals.len(), 1);
        assert_eq!(rest.intervals[0].elapsed_ms, 1000);
        let totals = tally.totals();
        let browse_total = &totals[0];
        assert_eq!((browse_total.requests, browse_total.errors), (101, 0));
    }

    #[test]
    fn the_steady_p99_leaves_out_the_first_and_last_seconds_with_responses() {
        let mut tally = BusTally::new(ORIGIN);
        // Second 0: no response (a journey's start); second 1: mite's
        // start-up, slow; seconds 2-4: 100 responses each of 1..=100 ms
        // over two transactions; second 5: the wind-down, slow again.
        tally.add(&BusMessage::TransactionEnd {
            transaction: "",
            time: at(10),
            had_error: false,
        });
        for i in 0..50 {
            tally.add(&response("start", 1000 + i, 200, 900.0));
        }
        for second in 2..=4 {
            for i in 1..=100 {
                let name = if i % 2 == 0 { "a" } else { "b" };
                tally.add(&response(name, second * 1000 + i, 200, i as f64));
            }
        }
        for i in 0..50 {
            tally.add(&response("end", 5000 + i, 200, 800.0));
        }
        // Handed out a second at a time, as the sampler takes them: the
        // latest is held back until the next comes.
        assert_eq!(tally.take_ready(ORIGIN + 2300).steady_p99_ms, None);
        let live = tally.take_ready(ORIGIN + 4300).steady_p99_ms;
        assert!(
            live.is_some_and(|p99| (98.9..=99.1).contains(&p99)),
            "{live:?}"
        );
        let p99 = tally.take_all().steady_p99_ms.expect("a steady p99");
        assert!((98.9..=99.1).contains(&p99), "p99 {p99}");
        // Without the steady seconds, the slow ends would be the p99.
        let whole = tally
            .totals()
            .iter()
            .filter_map(|t| t.max_ms)
            .fold(0.0, f64::max);
        assert!(whole > 799.0, "max {whole}");
    }

    #[test]
    fn a_scenario_of_two_seconds_or_less_has_no_steady_p99() {
        let mut tally = BusTally::new(ORIGIN);
        tally.add(&response("a", 100, 200, 5.0));
        tally.add(&response("a", 1100, 200, 5.0));
        assert_eq!(tally.take_all().steady_p99_ms, None);
    }

    #[test]
    fn late_messages_join_the_open_interval_and_are_never_lost() {
        let mut tally = BusTally::new(ORIGIN);
        tally.add(&response("a", 100, 200, 1.0));
        assert_eq!(tally.take_ready(ORIGIN + 1300).intervals.len(), 1);
        // A message stamped in the first second, arriving after it was handed out.
        tally.add(&response("a", 900, 200, 1.0));
        let rest = tally.take_all();
        assert_eq!(rest.intervals.len(), 1);
        assert_eq!(rest.intervals[0].elapsed_ms, 1000);
        assert_eq!(rest.totals[0].requests, 2);
        // Nothing new: no rows, and the totals are not sent again.
        assert!(tally.take_all().is_empty());
    }

    #[test]
    fn exceptions_journeys_and_reports_are_counted() {
        let mut tally = BusTally::new(ORIGIN);
        tally.add(&BusMessage::Error {
            transaction: "",
            time: at(10),
            kind: "AcurlError",
            message: "curl failed with code 7",
        });
        tally.add(&BusMessage::TransactionEnd {
            transaction: "",
            time: at(11),
            had_error: true,
        });
        tally.add(&BusMessage::TransactionEnd {
            transaction: "pay",
            time: at(12),
            had_error: false,
        });
        tally.add(&BusMessage::ControllerReport {
            time: at(2000),
            required: 4,
            actual: 3,
            runners: 1,
        });
        tally.add_undecodable();
        let batch = tally.take_all();
        assert_eq!(
            batch.counts,
            BusCounts {
                messages: 5,
                undecodable: 1,
                journeys: 1,
                reports: 1,
                reports_short: 1,
                reader_cpu_ms: 0,
            }
        );
        let journey = batch
            .intervals
            .iter()
            .find(|i| i.transaction == NO_TRANSACTION)
            .expect("the journey's row");
        assert_eq!((journey.exceptions, journey.requests), (1, 0));
        assert_eq!(journey.p50_ms, None);
        assert_eq!(batch.errors[0].kind, "AcurlError");
        assert_eq!(batch.errors[0].example, "curl failed with code 7");
        assert_eq!(
            batch.concurrency,
            vec![ConcurrencyPoint {
                elapsed_ms: 2000,
                at_ms: ORIGIN + 2000,
                required: 4,
                actual: 3,
                runners: 1
            }]
        );
    }

    #[test]
    fn names_kinds_and_times_past_the_bounds_count_as_other_and_memory_stays_bounded() {
        // FAULTS.md 52: scenario code (or anyone pushing into mite's
        // message port) names 5,000 transactions of 10 KB each, raises
        // 5,000 kinds of error, and stamps messages a day ahead.
        let mut tally = BusTally::new(ORIGIN);
        // The reader's clock, a second into the scenario.
        tally.note_now(ORIGIN + 1000);
        let names: Vec<String> = (0..5_000)
            .map(|i| format!("{i:05}{}", "é".repeat(5_000)))
            .collect();
        let kinds: Vec<String> = (0..5_000)
            .map(|i| format!("Kind{i}{}", "k".repeat(10_000)))
            .collect();
        for (i, name) in names.iter().enumerate() {
            tally.add(&response(name, (i % 900) as i64, 200, 1.0));
            tally.add(&BusMessage::Error {
                transaction: "pay",
                time: at(10),
                kind: &kinds[i],
                message: "boom",
            });
        }
        tally.add(&response("browse", 86_400_000, 200, 1.0));
        assert!(
            tally.totals.len() <= MAX_TRANSACTIONS + 1,
            "{}",
            tally.totals.len()
        );
        assert!(
            tally.errors.len() <= MAX_ERROR_KINDS + 1,
            "{}",
            tally.errors.len()
        );
        assert!(
            tally.open.len() <= 2,
            "{:?}",
            tally.open.keys().collect::<Vec<_>>()
        );
        assert!(
            tally.open_cells <= MAX_OPEN_CELLS + tally.open.len(),
            "{}",
            tally.open_cells
        );
        assert_eq!(
            tally.open_cells,
            tally.open.values().map(HashMap::len).sum::<usize>()
        );
        let batch = tally.take_all();
        // Every message still counts: the names past the bound under one
        // row that says so.
        let totals = &batch.totals;
        assert_eq!(totals.iter().map(|t| t.requests).sum::<i64>(), 5_001);
        let other = totals
            .iter()
            .find(|t| t.transaction == OTHER_TRANSACTIONS)
            .expect("the other row");
        // "pay" (of the errors) and the first 99 names have rows of their
        // own; the other 4,901 names and "browse" share this one.
        assert_eq!(other.requests, 4_901 + 1);
        assert!(totals.iter().all(|t| t.transaction.len() <= MAX_NAME_BYTES));
        assert_eq!(
            batch.intervals.iter().map(|i| i.requests).sum::<i64>(),
            5_001,
            "the intervals add up too"
        );
        // The message a day ahead counted in the last second allowed.
        let last = batch.intervals.iter().map(|i| i.elapsed_ms).max();
        assert_eq!(last, Some((1 + MAX_AHEAD) * BUS_INTERVAL_MS));
        let errors = &batch.errors;
        assert_eq!(errors.iter().map(|e| e.count).sum::<i64>(), 5_000);
        let other_kinds = errors
            .iter()
            .find(|e| e.kind == OTHER_ERRORS)
            .expect("the other kinds");
        assert_eq!(other_kinds.count, 5_000 - MAX_ERROR_KINDS as i64);
        assert!(errors.iter().all(|e| e.kind.len() <= MAX_NAME_BYTES));
    }

    #[test]
    fn cells_past_the_bound_count_as_other_in_their_interval_with_totals_kept() {
        let mut tally = BusTally::new(ORIGIN);
        // 60 seconds open at once (a sampler ticking once a minute) of 50
        // transactions: past the bound of open cells.
        for second in 0..60 {
            for t in 0..50 {
                tally.add(&response(&format!("t{t}"), second * 1000, 200, 1.0));
            }
        }
        assert!(
            tally.open_cells <= MAX_OPEN_CELLS + 60,
            "{}",
            tally.open_cells
        );
        let batch = tally.take_all();
        assert_eq!(batch.totals.len(), 50, "totals keep their names");
        assert!(batch.totals.iter().all(|t| t.requests == 60));
        assert!(batch
            .intervals
            .iter()
            .any(|i| i.transaction == OTHER_TRANSACTIONS));
        assert_eq!(
            batch.intervals.iter().map(|i| i.requests).sum::<i64>(),
            3_000
        );
        assert_eq!(tally.open_cells, 0);
    }

    #[test]
    fn controller_reports_waiting_for_a_tick_are_bounded() {
        let mut tally = BusTally::new(ORIGIN);
        for i in 0..10_000 {
            tally.add(&BusMessage::ControllerReport {
                time: at(i),
                required: 1,
                actual: 1,
                runners: 1,
            });
        }
        let batch = tally.take_all();
        assert_eq!(batch.concurrency.len(), MAX_REPORTS_WAITING);
        // They still count.
        assert_eq!(batch.counts.reports, 10_000);
        // The next tick takes more.
        tally.add(&BusMessage::ControllerReport {
            time: at(20_000),
            required: 1,
            actual: 1,
            runners: 1,
        });
        assert_eq!(tally.take_all().concurrency.len(), 1);
    }

    #[test]
    fn names_are_cut_at_a_characters_boundary() {
        assert_eq!(cut("abc", 2), "ab");
        assert_eq!(cut("aé", 2), "a");
        assert_eq!(cut("é", 200), "é");
    }

    #[test]
    fn messages_before_the_origin_count_in_the_first_interval() {
        let mut tally = BusTally::new(ORIGIN - 5000);
        tally.add(&response("a", -3000, 200, 1.0));
        tally.set_origin(ORIGIN);
        tally.add(&response("a", 200, 200, 1.0));
        let batch = tally.take_all();
        assert_eq!(batch.intervals.len(), 1);
        assert_eq!(
            (batch.intervals[0].elapsed_ms, batch.intervals[0].requests),
            (0, 2)
        );
    }
}
