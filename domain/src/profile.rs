//! Profiles of mite's processes: which ones a run samples the stacks of
//! (with py-spy), and what a scenario's page shows of each profile.

use serde::{Deserialize, Serialize};

use crate::process::ProcessKind;

/// A run's profiling: py-spy samples the stacks of these processes this
/// many times a second, without pausing them (`--nonblocking`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileSpec {
    pub rate: u32,
    pub processes: Vec<ProcessKind>,
}

impl ProfileSpec {
    /// Samples a second by default.
    pub const DEFAULT_RATE: u32 = crate::defaults::PROFILE_RATE;
    /// The most samples a second a run may ask for.
    pub const MOST_RATE: u32 = 1000;
    /// The processes that can be profiled: mite's (Python) ones.
    pub const PROFILABLE: [ProcessKind; 4] = [
        ProcessKind::Runner,
        ProcessKind::Controller,
        ProcessKind::Duplicator,
        ProcessKind::Collector,
    ];

    /// The runners, at the default rate.
    pub fn runners() -> Self {
        ProfileSpec {
            rate: Self::DEFAULT_RATE,
            processes: vec![ProcessKind::Runner],
        }
    }

    /// What is wrong with it, worded for the person who asked.
    pub fn problem(&self) -> Option<String> {
        if self.rate == 0 || self.rate > Self::MOST_RATE {
            return Some(format!(
                "a rate of {} samples a second: use 1 to {}",
                self.rate,
                Self::MOST_RATE
            ));
        }
        if self.processes.is_empty() {
            return Some("name at least one process to profile".into());
        }
        if let Some(kind) = self
            .processes
            .iter()
            .find(|k| !Self::PROFILABLE.contains(k))
        {
            return Some(format!(
                "the {kind} cannot be profiled: only mite's runner, controller, duplicator \
                 and collector"
            ));
        }
        None
    }

    /// Reads `runner,controller` (`all`: every mite process).
    pub fn parse_processes(text: &str) -> Result<Vec<ProcessKind>, String> {
        if text.trim() == "all" {
            return Ok(Self::PROFILABLE.to_vec());
        }
        let mut kinds = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let kind: ProcessKind = part.parse().map_err(|_| {
                format!("`{part}` is not runner, controller, duplicator or collector")
            })?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        Ok(kinds)
    }
}

/// One stored profile, as a scenario's page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileView {
    pub id: i64,
    /// The profiled process (`runner`), and its pid.
    pub process: ProcessKind,
    pub pid: i64,
    /// Samples a second asked for, and stacks sampled.
    pub rate: i64,
    pub samples: i64,
    /// How py-spy reached it: `attached` (to the running process) or
    /// `started under py-spy` (where it may not attach).
    pub mode: String,
    /// Why it holds fewer samples than asked (or none).
    pub problem: Option<String>,
}

impl ProfileView {
    /// How py-spy reached it, in words.
    pub fn reached(&self) -> String {
        match self.mode.as_str() {
            "attached" => "py-spy attached to it".into(),
            other => other.to_string(),
        }
    }
}

/// One frame's own cost (samples where it was the innermost frame) per
/// 1,000 requests, on both sides of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameChange {
    /// `function (file)`, as py-spy names it.
    pub frame: String,
    pub base_per_thousand: f64,
    pub new_per_thousand: f64,
    /// The change is beyond the noise: large per request and the frame's
    /// share of the samples moved beyond chance.
    pub notable: bool,
}

impl FrameChange {
    pub fn change(&self) -> f64 {
        self.new_per_thousand - self.base_per_thousand
    }
}

/// Where the runners' time per request moved between two sides, at one
/// concurrency: the frames that changed most.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileComparison {
    pub concurrency: u32,
    /// Stack samples and requests of each side (its repeats added up).
    pub base_samples: u64,
    pub new_samples: u64,
    pub base_requests: i64,
    pub new_requests: i64,
    /// Largest change first.
    pub frames: Vec<FrameChange>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mite_processes_at_a_sane_rate_are_profiled() {
        assert_eq!(ProfileSpec::runners().problem(), None);
        let spec = |rate, processes: Vec<ProcessKind>| ProfileSpec { rate, processes };
        assert!(spec(0, vec![ProcessKind::Runner]).problem().is_some());
        assert!(spec(5000, vec![ProcessKind::Runner]).problem().is_some());
        assert!(spec(100, vec![]).problem().is_some());
        let target = spec(100, vec![ProcessKind::Target]).problem();
        assert!(target.is_some_and(|p| p.contains("target cannot be profiled")));
        assert_eq!(
            ProfileSpec::parse_processes("runner, controller,runner"),
            Ok(vec![ProcessKind::Runner, ProcessKind::Controller])
        );
        assert_eq!(ProfileSpec::parse_processes("all").map(|k| k.len()), Ok(4));
        assert!(ProfileSpec::parse_processes("runner,python").is_err());
    }
}
