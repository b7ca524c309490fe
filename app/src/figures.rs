//! Per-scenario figures: what a person compares between two runs.

use serde::{Deserialize, Serialize};

use crate::model::{ProcessKind, Sample};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessFigures {
    pub process: ProcessKind,
    pub mean_cpu: f64,
    pub peak_cpu: f64,
    pub peak_rss: i64,
    /// Mean RSS over the samples (absent in figures stored before it was kept).
    #[serde(default)]
    pub mean_rss: Option<i64>,
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

/// The steady window's figures of a scenario's samples (any order).
pub fn steady_figures(samples: &[Sample]) -> Option<SteadyFigures> {
    let mut http: Vec<(i64, i64)> = samples
        .iter()
        .filter(|s| s.process == ProcessKind::Http)
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
    let (t0, r0) = http[first];
    let (t1, r1) = http[end];
    let seconds = (t1 - t0) as f64 / 1000.0;
    let requests = (r1 - r0) as f64;
    let mut runner: Vec<(i64, f64)> = samples
        .iter()
        .filter(|s| s.process == ProcessKind::Runner)
        .map(|s| (s.elapsed_ms, s.cpu))
        .collect();
    runner.sort_by_key(|&(t, _)| t);
    // Each reading is the CPU share over the interval that ends at it.
    let cpu_seconds: f64 = runner
        .windows(2)
        .filter(|w| w[1].0 > t0 && w[1].0 <= t1)
        .map(|w| w[1].1 / 100.0 * (w[1].0 - w[0].0) as f64 / 1000.0)
        .sum();
    Some(SteadyFigures {
        seconds,
        requests_per_second: requests / seconds,
        requests_per_runner_cpu_second: (cpu_seconds > 0.0).then(|| requests / cpu_seconds),
    })
}

/// Figures for one scenario's samples (in time order), sampled every `interval_ms`.
pub fn scenario_figures(samples: &[Sample], interval_ms: i64) -> ScenarioFigures {
    let mut running = RunningFigures::default();
    for sample in samples {
        running.add(sample);
    }
    running.figures(interval_ms)
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
}

/// A scenario's figures kept as samples arrive, so they cost the same to
/// read at minute 1 and at hour 24: [`RunningFigures::figures`] gives what
/// [`scenario_figures`] would give for every sample added so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunningFigures {
    total_requests: i64,
    last_elapsed_ms: i64,
    peak_in_interval: i64,
    /// Sum of the runner's CPU readings (percent of one core).
    runner_cpu_sum: f64,
    /// In [`ProcessKind::ALL`] order.
    processes: [Option<ProcessTotals>; 5],
}

impl RunningFigures {
    pub fn add(&mut self, s: &Sample) {
        self.last_elapsed_ms = self.last_elapsed_ms.max(s.elapsed_ms);
        if s.process == ProcessKind::Http {
            if let Some(n) = s.requests {
                self.total_requests = self.total_requests.max(n);
            }
            if let Some(n) = s.requests_in_interval {
                self.peak_in_interval = self.peak_in_interval.max(n);
            }
        }
        if s.process == ProcessKind::Runner {
            self.runner_cpu_sum += s.cpu;
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
        }
    }

    pub fn figures(&self, interval_ms: i64) -> ScenarioFigures {
        let measured_seconds = self.last_elapsed_ms as f64 / 1000.0;
        let interval_s = (interval_ms.max(1)) as f64 / 1000.0;
        let runner_cpu_seconds = self.runner_cpu_sum / 100.0 * interval_s;
        ScenarioFigures {
            total_requests: self.total_requests,
            measured_seconds,
            mean_requests_per_second: if measured_seconds > 0.0 {
                self.total_requests as f64 / measured_seconds
            } else {
                0.0
            },
            peak_requests_per_second: self.peak_in_interval as f64 / interval_s,
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
                    })
                })
                .collect(),
            steady: None,
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
        }
    }

    #[test]
    fn figures_from_two_ticks() {
        let samples = vec![
            sample(ProcessKind::Http, 1000, 10.0, 100, Some((1000, 1000))),
            sample(ProcessKind::Runner, 1000, 50.0, 300, None),
            sample(ProcessKind::Http, 2000, 20.0, 200, Some((3000, 2000))),
            sample(ProcessKind::Runner, 2000, 100.0, 200, None),
        ];
        let f = scenario_figures(&samples, 1000);
        assert_eq!(f.total_requests, 3000);
        assert_eq!(f.mean_requests_per_second, 1500.0);
        assert_eq!(f.peak_requests_per_second, 2000.0);
        assert_eq!(f.requests_per_runner_cpu_second, Some(2000.0));
        assert_eq!(f.processes.len(), 2);
        assert_eq!(f.processes[0].process, ProcessKind::Http);
        assert_eq!(f.processes[0].mean_cpu, 15.0);
        assert_eq!(f.processes[1].peak_cpu, 100.0);
        assert_eq!(f.processes[1].peak_rss, 300);
        assert_eq!(f.processes[1].mean_rss, Some(250));
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
            samples.push(sample(ProcessKind::Http, t, 5.0, 10, Some((total, *n))));
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
        let whole = scenario_figures(&samples, 1000);
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
                    ProcessKind::Http,
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
            let f = running.figures(500);
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
        assert_eq!(RunningFigures::default().figures(1000).processes, vec![]);
    }
}
