//! The two sides of a comparison: a run (or one build of a run that
//! measured several), with each concurrency's figures over its repeats.

use domain::validity::{validity_flags, ValidityFlag};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use domain::compare::Side;
use domain::figures::ScenarioFigures;
use domain::provenance::Provenance;

use super::stats::Growth;
use crate::model::{ProcessKind, ScenarioStatus};
use crate::profile::diff::Sampled;
use crate::profile::folded::{self, Stacks};
use crate::store::{Store, StoreError};

/// A side as named on the command line or in a link: `12`, `12:2` (build 2
/// of run 12) or `baseline` (the baseline of the other side's label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideSpec {
    Run { run_id: i64, build: Option<usize> },
    Baseline,
}

/// A side that names no run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a run: give its number (12), a build of it (12:2) or `baseline`")]
pub struct NotASide(pub String);

impl FromStr for SideSpec {
    type Err = NotASide;
    fn from_str(text: &str) -> Result<Self, NotASide> {
        let text = text.trim();
        if text == "baseline" {
            return Ok(SideSpec::Baseline);
        }
        let bad = || NotASide(text.to_string());
        let (run, build) = match text.split_once(':') {
            Some((run, build)) => (run, Some(build)),
            None => (text, None),
        };
        let run_id: i64 = run.parse().map_err(|_| bad())?;
        let build = match build {
            Some(b) => match b.parse::<usize>() {
                Ok(n) if n >= 1 => Some(n - 1),
                _ => return Err(bad()),
            },
            None => None,
        };
        if run_id < 1 {
            return Err(bad());
        }
        Ok(SideSpec::Run { run_id, build })
    }
}

impl fmt::Display for SideSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SideSpec::Baseline => f.write_str("baseline"),
            SideSpec::Run {
                run_id,
                build: None,
            } => write!(f, "{run_id}"),
            SideSpec::Run {
                run_id,
                build: Some(b),
            } => write!(f, "{run_id}:{}", b + 1),
        }
    }
}

/// A side with what was measured.
#[derive(Debug, Clone)]
pub struct SideData {
    pub side: Side,
    /// How many builds its run measured.
    pub builds_in_run: usize,
    /// Whether its repeats came a round at a time (its run stopped once
    /// every figure was decided), and how many it could have had.
    pub growth: Growth,
    /// Its run's stopping rule: what the run compared as it went.
    pub stop: Option<domain::model::StopRule>,
    pub provenance: Option<Provenance>,
    /// Each concurrency's finished scenarios' figures, one per repeat.
    pub figures: BTreeMap<u32, Vec<ScenarioFigures>>,
    /// Those scenarios' ids, in the same order.
    pub scenario_ids: BTreeMap<u32, Vec<i64>>,
    /// Each concurrency's validity flags, one per issue over its repeats.
    pub flags: BTreeMap<u32, Vec<ValidityFlag>>,
    /// Each concurrency's runner stacks, over the repeats (and runners)
    /// that were profiled, with the requests those repeats served.
    pub profiles: BTreeMap<u32, Sampled>,
}

#[derive(Debug, thiserror::Error)]
pub enum SideError {
    #[error("there is no run {0}")]
    NoRun(i64),
    #[error("run {run_id} measured {builds} build(s): there is no build {wanted}")]
    NoBuild {
        run_id: i64,
        builds: usize,
        wanted: usize,
    },
    #[error(
        "run {run_id} measured {builds} builds: name one (`{run_id}:1` … `{run_id}:{builds}`)"
    )]
    WhichBuild { run_id: i64, builds: usize },
    #[error("run {0} has no finished scenario to compare")]
    NothingFinished(i64),
    #[error("the label `{0}` has no baseline: mark one with `mite-perf baseline RUN`")]
    NoBaseline(String),
    #[error("run {0} has no label, so it has no baseline")]
    NoLabel(i64),
    #[error(
        "the two sides ran on different machines ({base} against {new}): their figures \
         differ by machine as much as by mite; compare them anyway with --across-machines \
         (on the compare page, add &across=1 to its address)"
    )]
    OtherMachine { base: String, new: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads side `spec`; `baseline` is the baseline of `label_run`'s label.
pub async fn load_side(
    store: &Store,
    spec: SideSpec,
    label_run: Option<i64>,
) -> Result<SideData, SideError> {
    let (run_id, build) = match spec {
        SideSpec::Run { run_id, build } => (run_id, build),
        SideSpec::Baseline => {
            let other = label_run.ok_or(SideError::NoBaseline(String::new()))?;
            let run = store.run(other).await?.ok_or(SideError::NoRun(other))?;
            if run.label.trim().is_empty() {
                return Err(SideError::NoLabel(other));
            }
            let id = store
                .baseline_of(&run.label)
                .await?
                .ok_or_else(|| SideError::NoBaseline(run.label.clone()))?;
            (id, None)
        }
    };
    let run = store.run(run_id).await?.ok_or(SideError::NoRun(run_id))?;
    let builds_in_run = run.params.builds().len();
    let build = match build {
        Some(b) if b >= builds_in_run => {
            return Err(SideError::NoBuild {
                run_id,
                builds: builds_in_run,
                wanted: b + 1,
            })
        }
        Some(b) => b,
        None if builds_in_run > 1 => {
            return Err(SideError::WhichBuild {
                run_id,
                builds: builds_in_run,
            })
        }
        None => 0,
    };
    let mut figures: BTreeMap<u32, Vec<ScenarioFigures>> = BTreeMap::new();
    let mut scenario_ids: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    let mut flags: BTreeMap<u32, Vec<ValidityFlag>> = BTreeMap::new();
    let mut profiles: BTreeMap<u32, Sampled> = BTreeMap::new();
    for scenario in store.scenarios(run_id).await? {
        if scenario.status != ScenarioStatus::Done
            || scenario.build_index != build as i64
            // The first of a Valgrind pair only gave the second its figures.
            || run.params.is_half_of_pair(scenario.requests.map(|r| r as u64))
        {
            continue;
        }
        if let Some(f) = store.stored_figures(scenario.id).await? {
            let concurrency_flags = flags.entry(scenario.concurrency as u32).or_default();
            for flag in validity_flags(&f, &scenario.bus) {
                if !concurrency_flags
                    .iter()
                    .any(|known: &ValidityFlag| known.issue == flag.issue)
                {
                    concurrency_flags.push(flag);
                }
            }
            let requests = f.total_requests;
            figures
                .entry(scenario.concurrency as u32)
                .or_default()
                .push(f);
            scenario_ids
                .entry(scenario.concurrency as u32)
                .or_default()
                .push(scenario.id);
            let runner_stacks = runner_stacks(store, scenario.id).await?;
            if !runner_stacks.is_empty() {
                profiles
                    .entry(scenario.concurrency as u32)
                    .or_default()
                    .add(&runner_stacks, requests);
            }
        }
    }
    if figures.is_empty() {
        return Err(SideError::NothingFinished(run_id));
    }
    let build_name = run
        .provenance
        .as_ref()
        .and_then(|p| p.builds.get(build))
        .map(|b| b.describe())
        .unwrap_or_else(|| run.environment.mite_version.clone());
    Ok(SideData {
        side: Side {
            run_id,
            build,
            label: run.label.clone(),
            build_name,
        },
        builds_in_run,
        growth: Growth {
            sequential: run.params.stop.is_some(),
            planned: run.params.repeats as usize,
        },
        stop: run.params.stop,
        provenance: run.provenance,
        figures,
        scenario_ids,
        flags,
        profiles,
    })
}

/// A scenario's runners' stacks, added up (none when it was not profiled).
async fn runner_stacks(store: &Store, scenario_id: i64) -> Result<Stacks, SideError> {
    let mut all = Stacks::new();
    for profile in store.profiles(scenario_id).await? {
        if profile.process != ProcessKind::Runner || profile.samples == 0 {
            continue;
        }
        let Some((_, _, text)) = store.profile_stacks(profile.id).await? else {
            continue;
        };
        match folded::parse(&text) {
            Ok(stacks) => {
                for (stack, count) in stacks {
                    *all.entry(stack).or_default() += count;
                }
            }
            Err(e) => tracing::warn!("profile {} is unreadable, left out: {e}", profile.id),
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_parse_as_runs_builds_and_baseline() {
        assert_eq!(
            "12".parse(),
            Ok(SideSpec::Run {
                run_id: 12,
                build: None
            })
        );
        assert_eq!(
            "12:2".parse(),
            Ok(SideSpec::Run {
                run_id: 12,
                build: Some(1)
            })
        );
        assert_eq!("baseline".parse(), Ok(SideSpec::Baseline));
        for bad in ["", "x", "12:0", "0", "-3", "12:b", "12:1:1"] {
            let err = bad.parse::<SideSpec>().expect_err(bad);
            assert!(err.to_string().contains("is not a run"), "{bad}: {err}");
        }
        assert_eq!(
            SideSpec::Run {
                run_id: 4,
                build: Some(2)
            }
            .to_string(),
            "4:3"
        );
    }
}
