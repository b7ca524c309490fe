//! Per-scenario figures: what a person compares between two runs.

use serde::{Deserialize, Serialize};

use crate::model::{ProcessKind, Sample};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessFigures {
    pub process: ProcessKind,
    pub mean_cpu: f64,
    pub peak_cpu: f64,
    pub peak_rss: i64,
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
                    })
                })
                .collect(),
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
