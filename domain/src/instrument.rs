//! What counted the instructions mite's processes executed: the figures a
//! noisy machine cannot move (the work done, not the time it took).
//!
//! - [`Instrument::Counters`]: the CPU's own counter of instructions
//!   retired (user space, every thread of the process), read through
//!   `perf_event_open` at the sampler's ticks, over the scenario's steady
//!   window. Only where the kernel exposes hardware counters.
//! - [`Instrument::Valgrind`]: each of mite's processes run under
//!   Valgrind's cachegrind, which counts every instruction it executes. A
//!   run asks for it (`--valgrind`): fixed work (a number of requests), each
//!   scenario run twice, with N and 2N requests, and the difference taken,
//!   so that start-up and shutdown cancel out.
//!
//! A figure records its instrument; figures of two instruments are two
//! figures, never pooled or compared with each other.

use serde::{Deserialize, Serialize};

use crate::process::ProcessKind;

/// What counted a process's instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Instrument {
    /// The CPU's instructions-retired counter (`perf_event_open`).
    Counters,
    /// Valgrind's cachegrind, the difference of fixed work N and 2N.
    Valgrind,
}

impl Instrument {
    /// `counters`, `valgrind`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Instrument::Counters => "counters",
            Instrument::Valgrind => "valgrind",
        }
    }

    /// How it is said next to a figure: `(CPU counters)`, `(Valgrind)`.
    pub fn label(&self) -> &'static str {
        match self {
            Instrument::Counters => "CPU counters",
            Instrument::Valgrind => "Valgrind",
        }
    }
}

/// The instructions one of mite's processes (every runner together)
/// executed for the requests of a scenario, and what counted them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProcessInstructions {
    pub process: ProcessKind,
    pub instrument: Instrument,
    /// Instructions counted (over the steady window, or the difference of
    /// the 2N and N scenarios).
    pub instructions: u64,
    /// The requests they were spent on (the target's count).
    pub requests: u64,
}

impl ProcessInstructions {
    /// Instructions per request.
    pub fn per_request(&self) -> Option<f64> {
        (self.requests > 0 && self.instructions > 0)
            .then(|| self.instructions as f64 / self.requests as f64)
    }
}

/// One line for people: `instructions per request (Valgrind, over 2000
/// requests): runner 451,744, duplicator 51,569` (`None` when nothing
/// was counted). A scenario's figures come from one instrument.
pub fn summary(counted: &[ProcessInstructions]) -> Option<String> {
    let first = counted.first()?;
    let each: Vec<String> = counted
        .iter()
        .filter_map(|c| {
            let per = c.per_request()?;
            Some(format!(
                "{} {}",
                c.process.as_str(),
                crate::format::count(per.round() as i64)
            ))
        })
        .collect();
    (!each.is_empty()).then(|| {
        format!(
            "instructions per request ({}, over {} requests): {}",
            first.instrument.label(),
            first.requests,
            each.join(", ")
        )
    })
}

/// What Valgrind counted in a whole process's life (start to exit): the
/// raw totals a fixed-work scenario keeps for its pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessTotal {
    pub process: ProcessKind,
    pub instructions: u64,
}

/// Instructions per request of each process, from the totals of a
/// scenario of `whole` requests and of its pair of `half` (every runner's
/// totals added up per kind): the difference leaves start-up and shutdown
/// out. `None` for a process missing from either, or whose count did not
/// grow.
pub fn from_pair(
    whole: &[ProcessTotal],
    whole_requests: u64,
    half: &[ProcessTotal],
    half_requests: u64,
) -> Vec<ProcessInstructions> {
    let sum = |totals: &[ProcessTotal], kind: ProcessKind| -> Option<u64> {
        let mine: Vec<u64> = totals
            .iter()
            .filter(|t| t.process == kind)
            .map(|t| t.instructions)
            .collect();
        (!mine.is_empty()).then(|| mine.iter().sum())
    };
    let Some(requests) = whole_requests.checked_sub(half_requests).filter(|r| *r > 0) else {
        return Vec::new();
    };
    ProcessKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let instructions = sum(whole, kind)?.checked_sub(sum(half, kind)?)?;
            (instructions > 0).then_some(ProcessInstructions {
                process: kind,
                instrument: Instrument::Valgrind,
                instructions,
                requests,
            })
        })
        .collect()
}

/// A reading of one process's counter at one of the sampler's ticks (the
/// instructions it executed since its counter opened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterReading {
    pub process: ProcessKind,
    pub pid: i64,
    pub elapsed_ms: i64,
    pub count: u64,
}

/// Instructions per request of each process over a window of the ticks
/// at `start_ms` and `end_ms`, in which `requests` were served: each
/// process's count at the end less its count at the start, every process
/// of a kind added up (every runner). A kind is left out unless each of
/// its processes read in the window was read at both edges (a runner
/// counted from the middle would make the figure small).
pub fn over_window(
    readings: &[CounterReading],
    start_ms: i64,
    end_ms: i64,
    requests: u64,
) -> Vec<ProcessInstructions> {
    if requests == 0 || end_ms <= start_ms {
        return Vec::new();
    }
    let at = |pid: i64, ms: i64| {
        readings
            .iter()
            .find(|r| r.pid == pid && r.elapsed_ms == ms)
            .map(|r| r.count)
    };
    ProcessKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let mut pids: Vec<i64> = readings
                .iter()
                .filter(|r| r.process == kind && (start_ms..=end_ms).contains(&r.elapsed_ms))
                .map(|r| r.pid)
                .collect();
            pids.sort_unstable();
            pids.dedup();
            if pids.is_empty() {
                return None;
            }
            let mut instructions = 0u64;
            for pid in pids {
                let grown = at(pid, end_ms)?.checked_sub(at(pid, start_ms)?)?;
                instructions = instructions.checked_add(grown)?;
            }
            (instructions > 0).then_some(ProcessInstructions {
                process: kind,
                instrument: Instrument::Counters,
                instructions,
                requests,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(process: ProcessKind, instructions: u64) -> ProcessTotal {
        ProcessTotal {
            process,
            instructions,
        }
    }

    #[test]
    fn a_pair_leaves_start_up_and_shutdown_out() {
        // 300 M to start and stop, 500 k a request; two runners of 1000
        // requests each in the whole scenario, of 500 in the half.
        let whole = [
            total(ProcessKind::Runner, 300_000_000 + 1000 * 500_000),
            total(ProcessKind::Runner, 300_000_000 + 1000 * 500_000),
            total(ProcessKind::Duplicator, 200_000_000 + 2000 * 40_000),
        ];
        let half = [
            total(ProcessKind::Runner, 300_000_000 + 500 * 500_000),
            total(ProcessKind::Runner, 300_000_000 + 500 * 500_000),
            total(ProcessKind::Duplicator, 200_000_000 + 1000 * 40_000),
        ];
        let figures = from_pair(&whole, 2000, &half, 1000);
        let per = |kind| {
            figures
                .iter()
                .find(|f| f.process == kind)
                .and_then(ProcessInstructions::per_request)
        };
        assert_eq!(per(ProcessKind::Runner), Some(500_000.0));
        assert_eq!(per(ProcessKind::Duplicator), Some(40_000.0));
        assert_eq!(per(ProcessKind::Collector), None, "not counted");
        assert!(figures.iter().all(|f| f.instrument == Instrument::Valgrind));
        assert_eq!(
            summary(&figures).as_deref(),
            Some(
                "instructions per request (Valgrind, over 1000 requests): \
                 duplicator 40,000, runner 500,000"
            )
        );
        assert_eq!(summary(&[]), None);
        // No more requests in the whole than in the half: nothing to say.
        assert!(from_pair(&whole, 1000, &half, 1000).is_empty());
        // A count that did not grow says nothing either.
        assert!(from_pair(&half, 2000, &whole, 1000).is_empty());
    }

    fn reading(process: ProcessKind, pid: i64, elapsed_ms: i64, count: u64) -> CounterReading {
        CounterReading {
            process,
            pid,
            elapsed_ms,
            count,
        }
    }

    #[test]
    fn counters_are_read_over_the_window_every_runner_together() {
        use ProcessKind::{Collector, Duplicator, Runner};
        let mut readings = Vec::new();
        // Two runners at 400 k a tick, a duplicator at 50 k; ticks each
        // 100 ms from 0 to 1000. The collector was first read mid-window.
        for tick in 0..=10u64 {
            let ms = tick as i64 * 100;
            readings.push(reading(Runner, 11, ms, 9_000_000 + tick * 400_000));
            readings.push(reading(Runner, 12, ms, 7_000_000 + tick * 400_000));
            readings.push(reading(Duplicator, 13, ms, 1_000_000 + tick * 50_000));
            if tick >= 5 {
                readings.push(reading(Collector, 14, ms, tick * 90_000));
            }
        }
        // The window from 200 to 800 ms: 6 ticks, 1200 requests.
        let figures = over_window(&readings, 200, 800, 1200);
        let per = |kind| {
            figures
                .iter()
                .find(|f| f.process == kind)
                .and_then(ProcessInstructions::per_request)
        };
        assert_eq!(per(Runner), Some(2.0 * 6.0 * 400_000.0 / 1200.0));
        assert_eq!(per(Duplicator), Some(6.0 * 50_000.0 / 1200.0));
        assert_eq!(per(Collector), None, "not read at the window's start");
        assert!(figures.iter().all(|f| f.instrument == Instrument::Counters));
        // No requests, or no window: nothing.
        assert!(over_window(&readings, 200, 800, 0).is_empty());
        assert!(over_window(&readings, 800, 800, 1200).is_empty());
        // A runner missing at the end leaves the runners out.
        readings.retain(|r| !(r.pid == 12 && r.elapsed_ms == 800));
        assert_eq!(
            over_window(&readings, 200, 800, 1200)
                .iter()
                .filter(|f| f.process == Runner)
                .count(),
            0
        );
    }
}
