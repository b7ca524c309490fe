//! Comparing mite builds: the figures compared, their spread over repeats,
//! and the verdict on each (the statistics live with the server).

use serde::{Deserialize, Serialize};

use crate::figures::ScenarioFigures;
use crate::instrument::{Instrument, ProcessInstructions};
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
/// A figure's floor is the smallest change its test would call this often
/// (docs/MEASURING.md, "What a comparison could see").
pub const FLOOR_POWER: f64 = 0.8;
/// How a run that stops once every figure is decided spends its alpha over
/// its looks: by the information it has, `alpha · (I/I_max)^ρ` (a power
/// family between Pocock's, ρ = 1, and O'Brien–Fleming's, ρ ≈ 3).
pub const SPENDING_POWER: f64 = 2.0;
/// Below this many degrees of freedom (3 repeats a side), a comparison's
/// own repeats say little about a figure's spread: its floor takes the
/// same-build history's when that has more.
pub const MIN_OWN_SPREAD_DF: u32 = 4;

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
    /// How many times the test looked: once for a fixed number of
    /// repeats; after each round for a run that stopped once every figure
    /// was decided (its `p_value` is then the sequential one).
    #[serde(default = "one_look")]
    pub looks: u32,
    /// The smallest change the test could have seen; none without a test.
    #[serde(default)]
    pub floor: Option<Floor>,
}

fn one_look() -> u32 {
    1
}

/// Where the spread behind a floor came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "from")]
pub enum SpreadSource {
    /// The comparison's own repeats, both sides pooled (`df`: their
    /// repeats less two).
    Own { df: u32 },
    /// Same-build repeats of earlier runs of this scenario on this machine
    /// class: `sets` (a build in a run) with `df` degrees of freedom in all.
    History { df: u32, sets: u32 },
}

impl SpreadSource {
    /// `its own 6 repeats`, `the spread of 14 earlier same-build repeat sets`.
    pub fn describe(&self) -> String {
        match self {
            SpreadSource::Own { df } => format!("the spread of its own {} repeats", df + 2),
            SpreadSource::History { df, sets } => format!(
                "the spread of {sets} earlier same-build repeat set{} ({df} degrees of freedom): \
                 too few repeats of its own",
                if *sets == 1 { "" } else { "s" }
            ),
        }
    }
}

/// What a floor is computed from: enough to compute it again at another
/// level (the CI gate's, after its correction for the figures it tests).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FloorBasis {
    /// The standard deviation of the figure's natural logarithm between
    /// repeats of one build (the pooled within-build variance's root).
    pub sd: f64,
    pub spread: SpreadSource,
    /// The repeats each side had at the test's last look.
    pub base_repeats: usize,
    pub new_repeats: usize,
    /// The share of alpha that look spent (1 for a fixed number of repeats).
    pub share: f64,
    /// The repeats each side would have at the run's planned maximum and
    /// the share its last look would spend; none when the test is there.
    pub at_most: Option<(usize, usize, f64)>,
}

/// The smallest change a figure's test could see: the change it would
/// call significant [`FLOOR_POWER`] of the time, at its level, with the
/// repeats it had and the figure's spread.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Floor {
    /// 0.021 for 2.1 %.
    pub change: f64,
    /// The same had the run gone on to its planned maximum.
    pub at_most: Option<f64>,
    /// The level it was computed at (the one-sided alpha of one figure).
    pub alpha: f64,
    pub basis: FloorBasis,
}

impl Floor {
    /// `2.1 %`.
    pub fn text(&self) -> String {
        percent(self.change)
    }

    /// `this comparison could see changes of 2.1 % or more in requests/s`.
    pub fn sentence(&self, who: &str, figure: &Figure) -> String {
        format!(
            "{who} could see changes of {} or more in {}",
            self.text(),
            figure.name()
        )
    }
}

/// A share as people read it: `2.1 %`; past 1,000 %, `over 1,000 %`.
pub fn percent(share: f64) -> String {
    if !share.is_finite() || share > 10.0 {
        "over 1,000 %".to_string()
    } else {
        format!("{:.1} %", share * 100.0)
    }
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
    /// Instructions one of mite's processes (every runner together)
    /// executed per request, as an instrument counted them: the figure a
    /// noisy machine cannot move ([`crate::instrument`]).
    InstructionsPerRequest(ProcessKind, Instrument),
}

/// The instruments, in the order tables show their figures.
const INSTRUMENTS: [Instrument; 2] = [Instrument::Counters, Instrument::Valgrind];

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
        for instrument in INSTRUMENTS {
            all.extend(
                MITE_PROCESSES
                    .iter()
                    .map(|p| Figure::InstructionsPerRequest(*p, instrument)),
            );
        }
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
            Figure::InstructionsPerRequest(p, i) => {
                format!("{p} instructions per request ({})", i.label())
            }
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
            Figure::InstructionsPerRequest(p, i) => {
                format!("{p}_instructions_per_request_{}", i.as_str())
            }
        }
    }

    /// The unit values are shown in.
    pub fn unit(&self) -> &'static str {
        match self {
            Figure::RequestsPerSecond => "req/s",
            Figure::RequestsPerRunnerCpuSecond => "req/CPU-s",
            Figure::LatencyP99 => "ms",
            Figure::MibPerJourney | Figure::PeakRss(_) | Figure::MeanRss(_) => "MiB",
            Figure::InstructionsPerRequest(..) => "instructions",
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
            Figure::InstructionsPerRequest(..) => crate::format::count(v.round() as i64),
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
            Figure::InstructionsPerRequest(kind, instrument) => figures
                .instructions
                .iter()
                .find(|i| i.process == *kind && i.instrument == *instrument)
                .and_then(ProcessInstructions::per_request),
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

    /// The figures with no significant change whose test could not have
    /// seen a change of the threshold's size, said as a note; none when
    /// every such figure could.
    pub fn blind_note(&self) -> Option<String> {
        let blind = self
            .rows
            .iter()
            .filter(|r| {
                r.comparison.as_ref().is_some_and(|c| {
                    c.verdict == Verdict::NoSignificantChange
                        && c.floor.is_some_and(|f| f.change > self.threshold)
                })
            })
            .count();
        (blind > 0).then(|| {
            format!(
                "{blind} figure{} with no significant change could not have seen a change of \
                 {:.0} % (\"could see\": the smallest change its test finds {:.0} % of the time \
                 with the repeats it had): more repeats, or a steadier figure, would tell",
                if blind == 1 { "" } else { "s" },
                self.threshold * 100.0,
                FLOOR_POWER * 100.0
            )
        })
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
            instruction_totals: Vec::new(),
            instructions: Vec::new(),
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
            instruction_totals: Vec::new(),
            instructions: Vec::new(),
            ..figures.clone()
        };
        assert_eq!(Figure::LatencyP99.value(&with_bus, 10), Some(4.25));
        assert_eq!(Figure::LatencyP99.better(), Better::Lower);
        assert_eq!(Figure::LatencyP99.format(4.25), "4.25");
        // 4 of the run, 2 instruments × 4 of mite's processes, 2 × 4 RSS.
        assert_eq!(Figure::all().len(), 20);
        // Instructions per request only from the instrument that counted.
        let counted = ScenarioFigures {
            instructions: vec![crate::instrument::ProcessInstructions {
                process: ProcessKind::Runner,
                instrument: Instrument::Valgrind,
                instructions: 900_000_000,
                requests: 2000,
            }],
            ..figures.clone()
        };
        let runner = |i| Figure::InstructionsPerRequest(ProcessKind::Runner, i);
        assert_eq!(
            runner(Instrument::Valgrind).value(&counted, 10),
            Some(450_000.0)
        );
        assert_eq!(runner(Instrument::Counters).value(&counted, 10), None);
        assert_eq!(
            runner(Instrument::Valgrind).key(),
            "runner_instructions_per_request_valgrind"
        );
        assert_eq!(runner(Instrument::Valgrind).better(), Better::Lower);
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
