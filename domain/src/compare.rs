//! Comparing mite builds: the figures compared, their spread over repeats,
//! and the verdict on each (the statistics live with the server).

use serde::{Deserialize, Serialize};

use crate::figures::ScenarioFigures;
use crate::model::ProcessKind;
use crate::validity::ValidityFlag;

/// The default smallest change that counts (5 %).
pub const DEFAULT_THRESHOLD: f64 = 0.05;
/// The test's level: the one-sided p-value, taken in the direction the
/// medians moved, must be below it (so 2 % two-sided). 1 % rather than 5 %:
/// a comparison tests every figure, and on a busy 2-core machine the same
/// mite's repeats differ by 10-20 % (BENCHMARKS.md, the false-positive rate).
pub const ALPHA: f64 = 0.01;
/// The confidence level of a ratio's interval, in percent.
pub const CONFIDENCE_PERCENT: f64 = (1.0 - ALPHA) * 100.0;
/// Repeats whose range passes this share of their median disagree: the
/// scenario is marked unstable.
pub const UNSTABLE_SPREAD: f64 = 0.10;

/// Which way a figure gets better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Better {
    Higher,
    Lower,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Better,
    Worse,
    /// The medians moved less than the threshold.
    NoSignificantChange,
    /// The medians moved past the threshold, but the repeats disagree too
    /// much (or are too few) for the test to confirm it.
    Inconclusive,
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::NoSignificantChange => "no significant change",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// One figure of two sides, compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub base_median: f64,
    pub new_median: f64,
    /// `new_median / base_median - 1`.
    pub change: f64,
    /// The ratio new/base of the geometric means, and its confidence
    /// interval (two-sided, `1 - alpha`) when both sides have 2 repeats or more.
    pub ratio: f64,
    pub ratio_interval: Option<(f64, f64)>,
    /// One-sided p-value of the move in the direction the medians moved.
    pub p_value: Option<f64>,
    pub verdict: Verdict,
    /// A side has a single repeat: no test was possible.
    pub single_repeat: bool,
}

/// A figure a scenario is compared by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "figure", content = "process")]
pub enum Figure {
    RequestsPerSecond,
    RequestsPerRunnerCpuSecond,
    PeakRss(ProcessKind),
    MeanRss(ProcessKind),
    /// The runner's peak RSS per concurrent journey.
    MibPerJourney,
    /// mite's own p99 response time over the steady seconds, read from its
    /// bus (every transaction together).
    LatencyP99,
}

/// mite's processes (the target is the lab's, not mite's).
const MITE_PROCESSES: [ProcessKind; 4] = [
    ProcessKind::Runner,
    ProcessKind::Controller,
    ProcessKind::Duplicator,
    ProcessKind::Collector,
];

impl Figure {
    /// Every figure, in the order tables show them.
    pub fn all() -> Vec<Figure> {
        let mut all = vec![
            Figure::RequestsPerSecond,
            Figure::RequestsPerRunnerCpuSecond,
            Figure::MibPerJourney,
            Figure::LatencyP99,
        ];
        all.extend(MITE_PROCESSES.iter().map(|p| Figure::PeakRss(*p)));
        all.extend(MITE_PROCESSES.iter().map(|p| Figure::MeanRss(*p)));
        all
    }

    pub fn better(&self) -> Better {
        match self {
            Figure::RequestsPerSecond | Figure::RequestsPerRunnerCpuSecond => Better::Higher,
            _ => Better::Lower,
        }
    }

    /// `requests/s`, `peak RSS runner`.
    pub fn name(&self) -> String {
        match self {
            Figure::RequestsPerSecond => "requests/s".into(),
            Figure::RequestsPerRunnerCpuSecond => "requests per runner CPU-s".into(),
            Figure::MibPerJourney => "MiB per journey".into(),
            Figure::LatencyP99 => "mite p99 latency".into(),
            Figure::PeakRss(p) => format!("peak RSS {p}"),
            Figure::MeanRss(p) => format!("mean RSS {p}"),
        }
    }

    /// A short machine-friendly key: `requests_per_second`, `peak_rss_runner`.
    pub fn key(&self) -> String {
        match self {
            Figure::RequestsPerSecond => "requests_per_second".into(),
            Figure::RequestsPerRunnerCpuSecond => "requests_per_runner_cpu_second".into(),
            Figure::MibPerJourney => "mib_per_journey".into(),
            Figure::LatencyP99 => "latency_p99".into(),
            Figure::PeakRss(p) => format!("peak_rss_{p}"),
            Figure::MeanRss(p) => format!("mean_rss_{p}"),
        }
    }

    /// The unit values are shown in.
    pub fn unit(&self) -> &'static str {
        match self {
            Figure::RequestsPerSecond => "req/s",
            Figure::RequestsPerRunnerCpuSecond => "req/CPU-s",
            Figure::LatencyP99 => "ms",
            Figure::MibPerJourney | Figure::PeakRss(_) | Figure::MeanRss(_) => "MiB",
        }
    }

    /// A value of this figure for people: `11,650`, `40.1`, `0.392`.
    pub fn format(&self, v: f64) -> String {
        match self {
            Figure::RequestsPerSecond | Figure::RequestsPerRunnerCpuSecond => {
                crate::format::count(v.round() as i64)
            }
            Figure::MibPerJourney => format!("{v:.3}"),
            Figure::LatencyP99 => format!("{v:.2}"),
            Figure::PeakRss(_) | Figure::MeanRss(_) => format!("{v:.1}"),
        }
    }

    /// This figure of a finished scenario of `concurrency` journeys, if it
    /// was measured (memory in MiB).
    pub fn value(&self, figures: &ScenarioFigures, concurrency: u32) -> Option<f64> {
        let process = |kind: ProcessKind| figures.processes.iter().find(|p| p.process == kind);
        let mib = |bytes: i64| bytes as f64 / (1024.0 * 1024.0);
        let value = match self {
            // Over the steady window when the scenario had one.
            Figure::RequestsPerSecond => Some(
                figures
                    .steady
                    .map_or(figures.mean_requests_per_second, |s| s.requests_per_second),
            ),
            Figure::RequestsPerRunnerCpuSecond => match figures.steady {
                Some(s) => s.requests_per_runner_cpu_second,
                None => figures.requests_per_runner_cpu_second,
            },
            // Every runner's memory, when there were several.
            Figure::MibPerJourney => figures
                .runners_peak_rss
                .or_else(|| process(ProcessKind::Runner).map(|p| p.peak_rss))
                .map(|rss| mib(rss) / f64::from(concurrency.max(1))),
            Figure::LatencyP99 => figures.latency_p99_ms,
            Figure::PeakRss(kind) => process(*kind).map(|p| mib(p.peak_rss)),
            Figure::MeanRss(kind) => process(*kind).and_then(|p| p.mean_rss).map(mib),
        };
        value.filter(|v| v.is_finite() && *v > 0.0)
    }
}

/// A figure over repeats: its median and spread.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub median: f64,
    /// First and third quartiles (linear between the nearest ranks).
    pub q1: f64,
    pub q3: f64,
    pub min: f64,
    pub max: f64,
    pub repeats: usize,
}

impl Spread {
    /// The spread of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        Some(Spread {
            median: quantile(&sorted, 0.5),
            q1: quantile(&sorted, 0.25),
            q3: quantile(&sorted, 0.75),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            repeats: sorted.len(),
        })
    }

    /// Whether the repeats disagree by more than [`UNSTABLE_SPREAD`] of
    /// their median.
    pub fn unstable(&self) -> bool {
        self.repeats > 1
            && self.median > 0.0
            && (self.max - self.min) / self.median > UNSTABLE_SPREAD
    }
}

/// The `q` quantile of sorted values, linear between ranks.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let weight = position - below as f64;
    sorted[below] * (1.0 - weight) + sorted[above] * weight
}

/// One side of a comparison: a run, or one build of a run that measured several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub run_id: i64,
    /// Index into the run's builds.
    pub build: usize,
    pub label: String,
    /// What the build was (`2.11.0 @ 1a2b3c4d5e (dirty)`).
    pub build_name: String,
}

impl Side {
    /// `run 12` or `run 12 build 2`.
    pub fn title(&self, builds_in_run: usize) -> String {
        if builds_in_run > 1 {
            format!("run {} build {}", self.run_id, self.build + 1)
        } else {
            format!("run {}", self.run_id)
        }
    }
}

/// One figure of one concurrency, on both sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FigureRow {
    pub concurrency: u32,
    pub figure: Figure,
    pub base: Vec<f64>,
    pub new: Vec<f64>,
    pub base_spread: Option<Spread>,
    pub new_spread: Option<Spread>,
    /// Absent when a side has no value for it.
    pub comparison: Option<Comparison>,
}

/// Two sides compared, figure by figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonReport {
    pub base: Side,
    pub new: Side,
    pub threshold: f64,
    pub rows: Vec<FigureRow>,
    /// Differences between the runs' settings and machines, as sentences.
    pub warnings: Vec<String>,
    /// Concurrencies one side measured and the other did not.
    pub unmatched: Vec<u32>,
    /// What makes a side's figures at a concurrency mean something else
    /// (runner CPU-bound, messages dropped, ...), for the sides that have any.
    #[serde(default)]
    pub validity: Vec<SideFlags>,
    /// Where the runners' time per request moved, per concurrency both
    /// sides profiled.
    #[serde(default)]
    pub profiles: Vec<crate::profile::ProfileComparison>,
    /// The packages that differ between the two builds (mite aside), when
    /// any do or one side's were not recorded; also said in `warnings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<crate::provenance::DependencyDifference>,
}

/// The validity flags of one side at one concurrency, over its repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideFlags {
    /// `run 12` or `run 12 build 2`.
    pub side: String,
    pub concurrency: u32,
    pub flags: Vec<ValidityFlag>,
}

impl SideFlags {
    /// One line per flag: `run 12 at 1000 journeys, runner CPU-bound: The runner was …`.
    pub fn lines(&self) -> Vec<String> {
        self.flags
            .iter()
            .map(|f| {
                format!(
                    "{} at {} journeys, {}: {}",
                    self.side,
                    self.concurrency,
                    f.issue.as_str(),
                    f.sentence
                )
            })
            .collect()
    }
}

impl ComparisonReport {
    pub fn count(&self, verdict: Verdict) -> usize {
        self.rows
            .iter()
            .filter(|r| r.comparison.as_ref().is_some_and(|c| c.verdict == verdict))
            .count()
    }

    /// Whether some side has only one repeat of some scenario.
    pub fn rests_on_single_repeats(&self) -> bool {
        self.rows
            .iter()
            .any(|r| r.comparison.as_ref().is_some_and(|c| c.single_repeat))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::{ProcessFigures, ScenarioFigures};

    #[test]
    fn spreads_give_quartiles_and_flag_disagreeing_repeats() {
        let s = Spread::of(&[10.0, 30.0, 20.0, 40.0]).expect("values");
        assert_eq!((s.median, s.min, s.max, s.repeats), (25.0, 10.0, 40.0, 4));
        assert_eq!((s.q1, s.q3), (17.5, 32.5));
        assert!(s.unstable());
        let calm = Spread::of(&[100.0, 104.0, 98.0]).expect("values");
        assert_eq!(calm.median, 100.0);
        assert!(!calm.unstable());
        assert!(!Spread::of(&[5.0]).expect("one").unstable());
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn figures_come_from_a_scenarios_figures() {
        let figures = ScenarioFigures {
            total_requests: 1000,
            measured_seconds: 10.0,
            mean_requests_per_second: 100.0,
            peak_requests_per_second: 120.0,
            requests_per_runner_cpu_second: Some(250.0),
            processes: vec![ProcessFigures {
                process: ProcessKind::Runner,
                mean_cpu: 40.0,
                peak_cpu: 50.0,
                peak_rss: 100 * 1024 * 1024,
                mean_rss: None,
                busy_share: None,
            }],
            steady: None,
            other_cpu: None,
            runners: None,
            runners_peak_rss: None,
            latency_p99_ms: None,
        };
        assert_eq!(Figure::RequestsPerSecond.value(&figures, 10), Some(100.0));
        assert_eq!(
            Figure::RequestsPerRunnerCpuSecond.value(&figures, 10),
            Some(250.0)
        );
        assert_eq!(Figure::MibPerJourney.value(&figures, 10), Some(10.0));
        assert_eq!(
            Figure::PeakRss(ProcessKind::Runner).value(&figures, 10),
            Some(100.0)
        );
        // Not kept for this scenario, or not measured: no value, not zero.
        assert_eq!(
            Figure::MeanRss(ProcessKind::Runner).value(&figures, 10),
            None
        );
        assert_eq!(
            Figure::PeakRss(ProcessKind::Controller).value(&figures, 10),
            None
        );
        // mite's latency only with its bus read.
        assert_eq!(Figure::LatencyP99.value(&figures, 10), None);
        let with_bus = ScenarioFigures {
            latency_p99_ms: Some(4.25),
            ..figures.clone()
        };
        assert_eq!(Figure::LatencyP99.value(&with_bus, 10), Some(4.25));
        assert_eq!(Figure::LatencyP99.better(), Better::Lower);
        assert_eq!(Figure::LatencyP99.format(4.25), "4.25");
        assert_eq!(Figure::all().len(), 12);
        // The steady window, when there is one, is what is compared.
        let steady = ScenarioFigures {
            steady: Some(crate::figures::SteadyFigures {
                seconds: 5.0,
                requests_per_second: 130.0,
                requests_per_runner_cpu_second: Some(300.0),
            }),
            ..figures
        };
        assert_eq!(Figure::RequestsPerSecond.value(&steady, 10), Some(130.0));
        assert_eq!(
            Figure::RequestsPerRunnerCpuSecond.value(&steady, 10),
            Some(300.0)
        );
        assert_eq!(Figure::MibPerJourney.better(), Better::Lower);
    }
}
