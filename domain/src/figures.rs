//! Per-scenario figures: what a person compares between two runs.

use serde::{Deserialize, Serialize};

use crate::instrument::{CounterReading, ProcessInstructions, ProcessTotal};
use crate::model::{ProcessKind, Sample, MIN_INTERVAL};

/// The shortest interval a rate is computed over: a closing sample taken
/// a moment after a tick divides a handful of requests by a millisecond.
const MIN_RATE_INTERVAL_MS: i64 = MIN_INTERVAL.as_millis() as i64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessFigures {
    pub process: ProcessKind,
    pub mean_cpu: f64,
    pub peak_cpu: f64,
    pub peak_rss: i64,
    /// Mean RSS over the samples (absent in figures stored before it was kept).
    #[serde(default)]
    pub mean_rss: Option<i64>,
    /// The share of its samples in which it wanted [`BUSY_CPU`] or more of a
    /// core (on one, or waiting for one): near 1, the process was CPU-bound
    /// (absent in figures stored before it was kept).
    #[serde(default)]
    pub busy_share: Option<f64>,
}

/// A reading at or above this (percent of one core, on a core or waiting
/// for one) counts as CPU-bound.
pub const BUSY_CPU: f64 = 95.0;

/// How much of a core a sample's process wanted: its CPU, and the time
/// its main thread waited for a CPU (on a busy machine a process that
/// would use a whole core gets less, and waits for the rest).
pub fn cpu_demand(s: &Sample) -> f64 {
    s.cpu + s.detail.map_or(0.0, |d| d.cpu_wait)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioFigures {
    pub total_requests: i64,
    /// Seconds from the controller's start to the last sample.
    pub measured_seconds: f64,
    pub mean_requests_per_second: f64,
    pub peak_requests_per_second: f64,
    /// Requests served per second of the runner's CPU time.
    pub requests_per_runner_cpu_second: Option<f64>,
    /// In [`ProcessKind::ALL`] order, for the processes that were sampled.
    pub processes: Vec<ProcessFigures>,
    /// The same figures over the scenario's steady window (set when it
    /// ended; absent for scenarios too short to have one, and for figures
    /// stored before it was kept).
    #[serde(default)]
    pub steady: Option<SteadyFigures>,
    /// The machine's CPU beyond the lab's processes (the lab itself and
    /// what it measured), mean percent of one core over the scenario.
    #[serde(default)]
    pub other_cpu: Option<f64>,
    /// The most runners sampled at one tick, and the peak of their RSS
    /// added up at a tick (absent in figures stored before they were kept).
    #[serde(default)]
    pub runners: Option<u32>,
    #[serde(default)]
    pub runners_peak_rss: Option<i64>,
    /// mite's own p99 response time (ms), every transaction's responses
    /// together, over the scenario's steady seconds: its bus seconds less
    /// the first and the last with a response (absent when mite's bus was
    /// not read, and for figures stored before it was kept).
    #[serde(default)]
    pub latency_p99_ms: Option<f64>,
    /// What Valgrind counted in each of mite's processes from its start to
    /// its exit (a fixed-work scenario run under Valgrind: kept for the
    /// figures of its pair, see [`crate::instrument::from_pair`]).
    #[serde(default)]
    pub instruction_totals: Vec<ProcessTotal>,
    /// Instructions per request of each of mite's processes, each with the
    /// instrument that counted them.
    #[serde(default)]
    pub instructions: Vec<ProcessInstructions>,
}

/// Throughput over a scenario's steady window: from the end of the first
/// interval in which the target served requests to the start of the last
/// one. Mite's start-up (imports, runners connecting) and wind-down are
/// left out, so repeats of the same build agree far better than over the
/// whole scenario, and comparisons rest on these figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SteadyFigures {
    pub seconds: f64,
    pub requests_per_second: f64,
    /// Requests served per second of the runner's CPU time in the window.
    pub requests_per_runner_cpu_second: Option<f64>,
}

/// The steady window of a scenario: the ticks (elapsed ms) at its edges
/// and the requests the target served between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SteadyWindow {
    pub start_ms: i64,
    pub end_ms: i64,
    pub requests: i64,
}

/// The steady window of a scenario's samples (any order): from the end of
/// the first interval in which the target served requests to the start of
/// the last one.
pub fn steady_window(samples: &[Sample]) -> Option<SteadyWindow> {
    let mut http: Vec<(i64, i64)> = samples
        .iter()
        .filter(|s| s.process == ProcessKind::Target)
        .filter_map(|s| Some((s.elapsed_ms, s.requests?)))
        .collect();
    http.sort_unstable();
    let first = http.iter().position(|&(_, r)| r > 0)?;
    // The last interval that served requests ends at `last`; it may be
    // partial, so the window ends where it began.
    let last = (1..http.len()).rev().find(|&i| http[i].1 > http[i - 1].1)?;
    let end = last - 1;
    if end <= first {
        return None;
    }
    let (start_ms, r0) = http[first];
    let (end_ms, r1) = http[end];
    Some(SteadyWindow {
        start_ms,
        end_ms,
        requests: r1 - r0,
    })
}

/// Instructions per request of each of mite's processes over the steady
/// window, from the CPU counters read at the sampler's ticks.
pub fn counted_instructions(
    samples: &[Sample],
    readings: &[CounterReading],
) -> Vec<ProcessInstructions> {
    let Some(window) = steady_window(samples) else {
        return Vec::new();
    };
    crate::instrument::over_window(
        readings,
        window.start_ms,
        window.end_ms,
        window.requests.max(0) as u64,
    )
}

/// The steady window's figures of a scenario's samples (any order).
pub fn steady_figures(samples: &[Sample]) -> Option<SteadyFigures> {
    let SteadyWindow {
        start_ms: t0,
        end_ms: t1,
        requests,
    } = steady_window(samples)?;
    let seconds = (t1 - t0) as f64 / 1000.0;
    let requests = requests as f64;
    // Each runner on its own (a scenario may have several).
    let mut runner: Vec<(i64, i64, f64)> = samples
        .iter()
        .filter(|s| s.process == ProcessKind::Runner)
        .map(|s| (s.pid, s.elapsed_ms, s.cpu))
        .collect();
    runner.sort_by_key(|&(pid, t, _)| (pid, t));
    // Each reading is the CPU share over the interval that ends at it.
    let cpu_seconds: f64 = runner
        .windows(2)
        .filter(|w| w[0].0 == w[1].0 && w[1].1 > t0 && w[1].1 <= t1)
        .map(|w| w[1].2 / 100.0 * (w[1].1 - w[0].1) as f64 / 1000.0)
        .sum();
    Some(SteadyFigures {
        seconds,
        requests_per_second: requests / seconds,
        requests_per_runner_cpu_second: (cpu_seconds > 0.0).then(|| requests / cpu_seconds),
    })
}

/// Figures for one scenario's samples (in time order).
pub fn scenario_figures(samples: &[Sample]) -> ScenarioFigures {
    let mut running = RunningFigures::default();
    for sample in samples {
        running.add(sample);
    }
    running.figures()
}

/// Per-process totals so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct ProcessTotals {
    samples: u64,
    cpu_sum: f64,
    peak_cpu: f64,
    peak_rss: i64,
    #[serde(default)]
    rss_sum: f64,
    /// Samples at [`BUSY_CPU`] or more.
    #[serde(default)]
    busy: u64,
}

/// A scenario's figures kept as samples arrive, so they cost the same to
/// read at minute 1 and at hour 24: [`RunningFigures::figures`] gives what
/// [`scenario_figures`] would give for every sample added so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunningFigures {
    total_requests: i64,
    last_elapsed_ms: i64,
    /// The target's latest sample (elapsed ms): its next interval starts there.
    #[serde(default)]
    target_last_ms: i64,
    /// The most requests a second served over one interval of at least
    /// [`MIN_RATE_INTERVAL_MS`], each over its real length (a late tick's
    /// longer interval is not read as a faster one).
    #[serde(default)]
    peak_rate: f64,
    /// The runners' CPU time (seconds): each reading over the time since
    /// that runner's previous sample.
    #[serde(default)]
    runner_cpu_seconds: f64,
    /// Each runner's latest sample: (pid, elapsed ms).
    #[serde(default)]
    runner_last_ms: Vec<(i64, i64)>,
    /// In [`ProcessKind::ALL`] order.
    processes: [Option<ProcessTotals>; 5],
    /// The machine's other load: sum of readings and how many.
    #[serde(default)]
    other_cpu_sum: f64,
    #[serde(default)]
    other_cpu_readings: u64,
    /// The runners at the latest tick: its elapsed time, how many, their RSS.
    #[serde(default)]
    runner_tick: (i64, u32, i64),
    #[serde(default)]
    runners_max: u32,
    #[serde(default)]
    runners_peak_rss: i64,
    /// The CPU counters' readings at the ticks (none on a host without
    /// them): instructions per request over the steady window once the
    /// scenario's samples are all in (see [`counted_instructions`]).
    #[serde(skip)]
    counter_readings: Vec<CounterReading>,
    /// From mite's bus, once the scenario ended.
    #[serde(default)]
    latency_p99_ms: Option<f64>,
    /// What Valgrind counted in each process, once the scenario ended.
    #[serde(default)]
    instruction_totals: Vec<ProcessTotal>,
}

impl RunningFigures {
    pub fn add(&mut self, s: &Sample) {
        self.last_elapsed_ms = self.last_elapsed_ms.max(s.elapsed_ms);
        if s.process == ProcessKind::Target {
            if let Some(n) = s.requests {
                self.total_requests = self.total_requests.max(n);
            }
            // The target's count is read at every tick, from the scenario's start.
            let gap_ms = s.elapsed_ms - std::mem::replace(&mut self.target_last_ms, s.elapsed_ms);
            if let Some(n) = s
                .requests_in_interval
                .filter(|_| gap_ms >= MIN_RATE_INTERVAL_MS)
            {
                self.peak_rate = self.peak_rate.max(n as f64 * 1000.0 / gap_ms as f64);
            }
        }
        if s.process == ProcessKind::Runner {
            // Its CPU reading is a share of a core since its previous
            // sample (or since the scenario's start, when it was first read).
            let since_ms = match self
                .runner_last_ms
                .iter_mut()
                .find(|(pid, _)| *pid == s.pid)
            {
                Some((_, last)) => std::mem::replace(last, s.elapsed_ms),
                None => {
                    self.runner_last_ms.push((s.pid, s.elapsed_ms));
                    0
                }
            };
            self.runner_cpu_seconds +=
                s.cpu / 100.0 * (s.elapsed_ms - since_ms).max(0) as f64 / 1000.0;
            let (at, count, rss) = &mut self.runner_tick;
            if *at == s.elapsed_ms && *count > 0 {
                *count += 1;
                *rss += s.mem;
            } else {
                self.runner_tick = (s.elapsed_ms, 1, s.mem);
            }
            self.runners_max = self.runners_max.max(self.runner_tick.1);
            self.runners_peak_rss = self.runners_peak_rss.max(self.runner_tick.2);
        }
        let slot = ProcessKind::ALL
            .iter()
            .position(|k| *k == s.process)
            .and_then(|i| self.processes.get_mut(i));
        if let Some(slot) = slot {
            let totals = slot.get_or_insert_with(ProcessTotals::default);
            totals.samples += 1;
            totals.cpu_sum += s.cpu;
            totals.peak_cpu = totals.peak_cpu.max(s.cpu);
            totals.peak_rss = totals.peak_rss.max(s.mem);
            totals.rss_sum += s.mem as f64;
            totals.busy += u64::from(cpu_demand(s) >= BUSY_CPU);
        }
    }

    /// Keeps mite's p99 response time over the steady seconds (ms), read
    /// from its bus when the scenario ended.
    pub fn set_latency_p99_ms(&mut self, p99_ms: Option<f64>) {
        self.latency_p99_ms = p99_ms.filter(|v| v.is_finite() && *v > 0.0);
    }

    /// Keeps a CPU counter's reading at a tick.
    pub fn add_counter_reading(&mut self, reading: CounterReading) {
        self.counter_readings.push(reading);
    }

    /// The CPU counters' readings so far.
    pub fn counter_readings(&self) -> &[CounterReading] {
        &self.counter_readings
    }

    /// What Valgrind counted in each process (read once they exited).
    pub fn set_instruction_totals(&mut self, totals: Vec<ProcessTotal>) {
        self.instruction_totals = totals;
    }

    /// Adds a reading of the machine's CPU beyond the lab's processes.
    pub fn add_other_cpu(&mut self, percent_of_one_core: f64) {
        self.other_cpu_sum += percent_of_one_core.max(0.0);
        self.other_cpu_readings += 1;
    }

    /// The figures so far. Rates are over each interval's real length, so
    /// the sampling interval asked for no longer enters them.
    pub fn figures(&self) -> ScenarioFigures {
        let measured_seconds = self.last_elapsed_ms as f64 / 1000.0;
        let runner_cpu_seconds = self.runner_cpu_seconds;
        ScenarioFigures {
            total_requests: self.total_requests,
            measured_seconds,
            mean_requests_per_second: if measured_seconds > 0.0 {
                self.total_requests as f64 / measured_seconds
            } else {
                0.0
            },
            peak_requests_per_second: self.peak_rate,
            requests_per_runner_cpu_second: (runner_cpu_seconds > 0.0)
                .then(|| self.total_requests as f64 / runner_cpu_seconds),
            processes: ProcessKind::ALL
                .iter()
                .zip(&self.processes)
                .filter_map(|(kind, totals)| {
                    let t = totals.as_ref()?;
                    Some(ProcessFigures {
                        process: *kind,
                        mean_cpu: t.cpu_sum / t.samples as f64,
                        peak_cpu: t.peak_cpu,
                        peak_rss: t.peak_rss,
                        mean_rss: Some((t.rss_sum / t.samples as f64).round() as i64),
                        busy_share: Some(t.busy as f64 / t.samples as f64),
                    })
                })
                .collect(),
            steady: None,
            other_cpu: (self.other_cpu_readings > 0)
                .then(|| self.other_cpu_sum / self.other_cpu_readings as f64),
            runners: (self.runners_max > 0).then_some(self.runners_max),
            runners_peak_rss: (self.runners_max > 0).then_some(self.runners_peak_rss),
            latency_p99_ms: self.latency_p99_ms,
            instruction_totals: self.instruction_totals.clone(),
            instructions: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(
        process: ProcessKind,
        elapsed_ms: i64,
        cpu: f64,
        mem: i64,
        req: Option<(i64, i64)>,
    ) -> Sample {
        Sample {
            process,
            pid: 1,
            at_ms: elapsed_ms,
            elapsed_ms,
            cpu,
            mem,
            requests: req.map(|r| r.0),
            requests_in_interval: req.map(|r| r.1),
            detail: None,
        }
    }

    #[test]
    fn figures_from_two_ticks() {
        let samples = vec![
            sample(ProcessKind::Target, 1000, 10.0, 100, Some((1000, 1000))),
            sample(ProcessKind::Runner, 1000, 50.0, 300, None),
            sample(ProcessKind::Target, 2000, 20.0, 200, Some((3000, 2000))),
            sample(ProcessKind::Runner, 2000, 100.0, 200, None),
        ];
        let f = scenario_figures(&samples);
        assert_eq!(f.total_requests, 3000);
        assert_eq!(f.mean_requests_per_second, 1500.0);
        assert_eq!(f.peak_requests_per_second, 2000.0);
        assert_eq!(f.requests_per_runner_cpu_second, Some(2000.0));
        assert_eq!(f.processes.len(), 2);
        assert_eq!(f.processes[0].process, ProcessKind::Target);
        assert_eq!(f.processes[0].mean_cpu, 15.0);
        assert_eq!(f.processes[1].peak_cpu, 100.0);
        assert_eq!(f.processes[1].peak_rss, 300);
        assert_eq!(f.processes[1].mean_rss, Some(250));
        // The runner read 100 % in one of its two samples.
        assert_eq!(f.processes[1].busy_share, Some(0.5));
        assert_eq!(f.processes[0].busy_share, Some(0.0));
        assert_eq!(f.other_cpu, None);
    }

    #[test]
    fn rates_are_over_each_intervals_real_length_and_a_closing_sample_is_no_peak() {
        let runner = |pid, t, cpu| Sample {
            pid,
            ..sample(ProcessKind::Runner, t, cpu, 1, None)
        };
        let samples = vec![
            sample(ProcessKind::Target, 1000, 5.0, 1, Some((1000, 1000))),
            runner(7, 1000, 100.0),
            // A late tick: 1500 requests over 1.5 s is 1000 a second, not 1500.
            sample(ProcessKind::Target, 2500, 5.0, 1, Some((2500, 1500))),
            runner(7, 2500, 100.0),
            // A second runner, first read here: its CPU since the start.
            runner(8, 2500, 40.0),
            // The closing sample 1 ms after the tick: 30 requests are not
            // 30,000 a second.
            sample(ProcessKind::Target, 2501, 5.0, 1, Some((2530, 30))),
            runner(7, 2501, 100.0),
        ];
        let f = scenario_figures(&samples);
        assert_eq!(f.peak_requests_per_second, 1000.0);
        // Runner 7: a core for 2.501 s; runner 8: 40 % of one for 2.5 s.
        let cpu_seconds = 2.501 + 0.4 * 2.5;
        let per_cpu_s = f.requests_per_runner_cpu_second.expect("a ratio");
        assert!(
            (per_cpu_s - 2530.0 / cpu_seconds).abs() < 1e-9,
            "{per_cpu_s}"
        );
    }

    #[test]
    fn two_runners_add_up_their_memory_and_cpu_each_on_its_own() {
        let runner = |pid, t, cpu, mem| Sample {
            pid,
            ..sample(ProcessKind::Runner, t, cpu, mem, None)
        };
        let mut samples = Vec::new();
        let served = [0, 500, 1000, 1000, 1000, 400];
        let mut total = 0;
        for (i, n) in served.iter().enumerate() {
            let t = (i as i64 + 1) * 1000;
            total += n;
            samples.push(sample(ProcessKind::Target, t, 5.0, 10, Some((total, *n))));
            samples.push(runner(7, t, 50.0, 100 + i as i64));
            samples.push(runner(8, t, 50.0, 200));
        }
        let f = scenario_figures(&samples);
        assert_eq!(f.runners, Some(2));
        // 105 + 200 at the last tick: their RSS added up, at one tick.
        assert_eq!(f.runners_peak_rss, Some(305));
        // The steady window (t=2 s to t=5 s): 3000 requests over 3 s, with
        // two runners at half a core each: 3 CPU-seconds.
        let steady = steady_figures(&samples).expect("a window");
        assert_eq!(steady.requests_per_second, 1000.0);
        assert_eq!(steady.requests_per_runner_cpu_second, Some(1000.0));
    }

    #[test]
    fn a_process_starved_of_cpu_counts_as_busy_by_its_wait() {
        use crate::model::ProcessDetail;
        let with_wait = |cpu, wait| Sample {
            detail: Some(ProcessDetail {
                cpu_wait: wait,
                ..ProcessDetail::default()
            }),
            ..sample(ProcessKind::Runner, 1000, cpu, 1, None)
        };
        // 86 % on a core and 12 % waiting for one: it wanted 98 %.
        let samples = [
            with_wait(86.0, 12.0),
            with_wait(86.0, 2.0),
            with_wait(96.0, 0.0),
        ];
        assert_eq!(cpu_demand(&samples[0]), 98.0);
        let f = scenario_figures(&samples);
        let share = f.processes[0].busy_share.expect("a share");
        assert!((share - 2.0 / 3.0).abs() < 1e-9, "{share}");
    }

    #[test]
    fn the_steady_window_leaves_out_start_up_and_wind_down() {
        // Ticks of 1 s: nothing served for 2 s (imports), a partial first
        // interval (300), full ones of 1000, a partial last one (400), then
        // idle while mite ends. The runner burns 100 % while importing.
        let served = [0, 0, 300, 1000, 1000, 1000, 1000, 400, 0, 0];
        let mut total = 0;
        let mut samples = Vec::new();
        for (i, n) in served.iter().enumerate() {
            let t = (i as i64 + 1) * 1000;
            total += n;
            samples.push(sample(ProcessKind::Target, t, 5.0, 10, Some((total, *n))));
            let cpu = if i < 2 { 100.0 } else { 50.0 };
            samples.push(sample(ProcessKind::Runner, t, cpu, 10, None));
        }
        let steady = steady_figures(&samples).expect("a steady window");
        // From t=3 s (300 served) to t=7 s (the start of the last interval).
        assert_eq!(steady.seconds, 4.0);
        assert_eq!(steady.requests_per_second, 1000.0);
        // 4 intervals at 50 % of a core: 2 CPU-seconds for 4000 requests.
        assert_eq!(steady.requests_per_runner_cpu_second, Some(2000.0));
        // Over the whole scenario the start-up drags both down.
        let whole = scenario_figures(&samples);
        assert!(whole.mean_requests_per_second < 500.0);
        // Too short to have a window.
        assert_eq!(steady_figures(&samples[..6]), None);
        assert_eq!(steady_figures(&[]), None);
    }

    #[test]
    fn running_figures_agree_with_figures_computed_from_all_samples() {
        let mut samples = Vec::new();
        let mut running = RunningFigures::default();
        let mut total = 0;
        for tick in 1..=50i64 {
            let served = (tick * 37) % 101;
            total += served;
            let tick_samples = [
                sample(
                    ProcessKind::Target,
                    tick * 500,
                    (tick % 3) as f64,
                    100 + tick,
                    Some((total, served)),
                ),
                sample(
                    ProcessKind::Runner,
                    tick * 500,
                    (tick * 13 % 120) as f64,
                    4000 - tick,
                    None,
                ),
            ];
            for s in &tick_samples {
                running.add(s);
            }
            samples.extend(tick_samples);
            // What a person would compute from every sample so far.
            let runner: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.process == ProcessKind::Runner)
                .collect();
            let runner_mean = runner.iter().map(|s| s.cpu).sum::<f64>() / runner.len() as f64;
            let peak_served = samples
                .iter()
                .filter_map(|s| s.requests_in_interval)
                .max()
                .unwrap_or(0);
            let f = running.figures();
            assert_eq!(f.total_requests, total, "tick {tick}");
            assert_eq!(f.measured_seconds, tick as f64 * 0.5);
            assert!((f.mean_requests_per_second - total as f64 / (tick as f64 * 0.5)).abs() < 1e-9);
            assert_eq!(f.peak_requests_per_second, peak_served as f64 * 2.0);
            assert!((f.processes[1].mean_cpu - runner_mean).abs() < 1e-9);
            assert_eq!(f.processes[1].peak_rss, 3999);
            assert_eq!(f.processes[0].peak_rss, 100 + tick);
            let runner_cpu_s: f64 = runner.iter().map(|s| s.cpu / 100.0 * 0.5).sum();
            let per_cpu_s = f.requests_per_runner_cpu_second.unwrap_or(0.0);
            if runner_cpu_s > 0.0 {
                assert!(
                    (per_cpu_s - total as f64 / runner_cpu_s).abs() < 1e-6 * per_cpu_s.max(1.0)
                );
            }
        }
        assert_eq!(RunningFigures::default().figures().processes, vec![]);
    }
}
