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
    let target: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.process == ProcessKind::Http)
        .collect();
    let total_requests = target.iter().filter_map(|s| s.requests).max().unwrap_or(0);
    let measured_seconds = samples.iter().map(|s| s.elapsed_ms).max().unwrap_or(0) as f64 / 1000.0;
    let interval_s = (interval_ms.max(1)) as f64 / 1000.0;
    let peak_requests_per_second = target
        .iter()
        .filter_map(|s| s.requests_in_interval)
        .max()
        .unwrap_or(0) as f64
        / interval_s;
    let mean_requests_per_second = if measured_seconds > 0.0 {
        total_requests as f64 / measured_seconds
    } else {
        0.0
    };
    let processes: Vec<ProcessFigures> = ProcessKind::ALL
        .iter()
        .filter_map(|kind| {
            let mine: Vec<&Sample> = samples.iter().filter(|s| s.process == *kind).collect();
            if mine.is_empty() {
                return None;
            }
            Some(ProcessFigures {
                process: *kind,
                mean_cpu: mine.iter().map(|s| s.cpu).sum::<f64>() / mine.len() as f64,
                peak_cpu: mine.iter().map(|s| s.cpu).fold(0.0, f64::max),
                peak_rss: mine.iter().map(|s| s.mem).max().unwrap_or(0),
            })
        })
        .collect();
    let runner_cpu_seconds: f64 = samples
        .iter()
        .filter(|s| s.process == ProcessKind::Runner)
        .map(|s| s.cpu / 100.0 * interval_s)
        .sum();
    ScenarioFigures {
        total_requests,
        measured_seconds,
        mean_requests_per_second,
        peak_requests_per_second,
        requests_per_runner_cpu_second: (runner_cpu_seconds > 0.0)
            .then(|| total_requests as f64 / runner_cpu_seconds),
        processes,
    }
}

/// `12.3 MiB`
pub fn format_mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
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
}
