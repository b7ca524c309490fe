//! Whether a scenario measured what it seems to: flags, each with a
//! sentence, for what makes its figures mean something else than mite's
//! answer to the load asked for. Pure: computed from the stored figures and
//! what mite's bus carried, on the run page and in comparisons alike.

use serde::{Deserialize, Serialize};

use crate::figures::{ScenarioFigures, BUSY_CPU};
use crate::model::{BusSummary, ProcessKind};

/// A process that spent more than this share of its samples at
/// [`BUSY_CPU`] or more was CPU-bound.
pub const MOST: f64 = 0.5;
/// More than this share of the controller's reports short of journeys
/// means mite did not keep up.
pub const SHORT_SHARE: f64 = 0.25;
/// The machine's other load (percent of one core, mean) past which the
/// lab's processes had to share the machine.
pub const OTHER_LOAD: f64 = 25.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Issue {
    RunnerCpuBound,
    JourneysShort,
    MessagesDropped,
    TargetCpuBound,
    MachineBusy,
}

impl Issue {
    /// A short name, for tables and CSVs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Issue::RunnerCpuBound => "runner CPU-bound",
            Issue::JourneysShort => "journeys short",
            Issue::MessagesDropped => "messages dropped",
            Issue::TargetCpuBound => "target CPU-bound",
            Issue::MachineBusy => "machine busy",
        }
    }
}

/// One thing that makes a scenario's figures mean something else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidityFlag {
    pub issue: Issue,
    pub sentence: String,
}

fn busy_share(figures: &ScenarioFigures, kind: ProcessKind) -> Option<f64> {
    figures
        .processes
        .iter()
        .find(|p| p.process == kind)
        .and_then(|p| p.busy_share)
}

fn messages(n: i64) -> String {
    if n == 1 {
        "1 message".to_string()
    } else {
        format!("{n} messages")
    }
}

fn percent(share: f64) -> String {
    format!("{:.0} %", share * 100.0)
}

/// The flags of a scenario with these figures and bus summary, in
/// [`Issue`] order; none for a scenario that measured what it seems to.
pub fn validity_flags(figures: &ScenarioFigures, bus: &BusSummary) -> Vec<ValidityFlag> {
    let mut flags = Vec::new();
    let mut flag = |issue, sentence: String| flags.push(ValidityFlag { issue, sentence });
    if let Some(share) = busy_share(figures, ProcessKind::Runner).filter(|s| *s > MOST) {
        flag(
            Issue::RunnerCpuBound,
            format!(
                "The runner was CPU-bound (it wanted {BUSY_CPU:.0} % of a core or more, on one or \
                 waiting for one, in {} of its samples): the throughput is mite's ceiling on this \
                 machine, not the load the scenario asked for.",
                percent(share)
            ),
        );
    }
    if let (Some(reports), Some(short)) = (bus.reports, bus.reports_short) {
        if reports > 0 && short as f64 / reports as f64 > SHORT_SHARE {
            flag(
                Issue::JourneysShort,
                format!(
                    "Fewer journeys ran than the volume model required in {short} of the \
                     controller's {reports} reports: mite did not keep up with the load asked for."
                ),
            );
        }
    }
    let missed = bus.missed.unwrap_or(0);
    let collector = bus.collector_dropped.unwrap_or(0);
    if missed + collector > 0 {
        let consequence = if missed > 0 {
            format!("mite's own figures here are short by {}", messages(missed))
        } else if bus.messages.is_none() {
            // A run that left the bus unread: only the collector's output.
            "the collector's files are not whole".to_string()
        } else {
            "mite's own figures here are whole, the collector's files are not".to_string()
        };
        flag(
            Issue::MessagesDropped,
            format!(
                "mite's duplicator dropped {} ({missed} before the lab read them, {collector} \
                 before the collector did): its outputs could not keep up, and {consequence}.",
                messages(missed + collector)
            ),
        );
    }
    if let Some(share) = busy_share(figures, ProcessKind::Target).filter(|s| *s > MOST) {
        flag(
            Issue::TargetCpuBound,
            format!(
                "The target was CPU-bound (it wanted {BUSY_CPU:.0} % of a core or more in {} of \
                 its samples): the figures measure the target as much as mite.",
                percent(share)
            ),
        );
    }
    if let Some(other) = figures.other_cpu.filter(|o| *o > OTHER_LOAD) {
        flag(
            Issue::MachineBusy,
            format!(
                "The machine was busy beyond the lab's processes ({other:.0} % of a core on \
                 average): mite had less CPU than the figures suggest; measure again on a \
                 quieter machine."
            ),
        );
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::ProcessFigures;

    fn figures(runner_busy: f64, target_busy: f64, other: Option<f64>) -> ScenarioFigures {
        let process = |process, busy_share| ProcessFigures {
            process,
            mean_cpu: 50.0,
            peak_cpu: 100.0,
            peak_rss: 1,
            mean_rss: None,
            busy_share: Some(busy_share),
        };
        ScenarioFigures {
            total_requests: 100,
            measured_seconds: 10.0,
            mean_requests_per_second: 10.0,
            peak_requests_per_second: 12.0,
            requests_per_runner_cpu_second: None,
            processes: vec![
                process(ProcessKind::Target, target_busy),
                process(ProcessKind::Runner, runner_busy),
            ],
            steady: None,
            other_cpu: other,
            runners: None,
            runners_peak_rss: None,
            latency_p99_ms: None,
            instruction_totals: Vec::new(),
            instructions: Vec::new(),
        }
    }

    #[test]
    fn a_quiet_scenario_has_no_flags() {
        let bus = BusSummary {
            reports: Some(10),
            reports_short: Some(2),
            missed: Some(0),
            collector_dropped: Some(0),
            ..BusSummary::default()
        };
        assert_eq!(validity_flags(&figures(0.5, 0.1, Some(10.0)), &bus), vec![]);
        // Figures stored before the lab kept these: nothing to judge by.
        let mut old = figures(0.0, 0.0, None);
        for p in &mut old.processes {
            p.busy_share = None;
        }
        assert_eq!(validity_flags(&old, &BusSummary::default()), vec![]);
    }

    #[test]
    fn every_issue_is_flagged_with_its_sentence() {
        let bus = BusSummary {
            reports: Some(20),
            reports_short: Some(6),
            missed: Some(3),
            collector_dropped: Some(40),
            ..BusSummary::default()
        };
        let flags = validity_flags(&figures(0.9, 0.8, Some(60.0)), &bus);
        let issues: Vec<Issue> = flags.iter().map(|f| f.issue).collect();
        assert_eq!(
            issues,
            [
                Issue::RunnerCpuBound,
                Issue::JourneysShort,
                Issue::MessagesDropped,
                Issue::TargetCpuBound,
                Issue::MachineBusy
            ]
        );
        assert!(flags[0].sentence.contains("in 90 % of its samples"));
        assert!(flags[1]
            .sentence
            .contains("6 of the controller's 20 reports"));
        assert!(flags[2]
            .sentence
            .contains("dropped 43 messages (3 before the lab"));
        assert!(flags[2].sentence.contains("short by 3 messages"));
        assert!(flags[4].sentence.contains("60 % of a core"));
    }
}
