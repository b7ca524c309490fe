//! A series: one figure of one scenario on one class of machine, across
//! mite builds. Its points are mite builds (every repeat of a build pooled
//! into one), in release order for PyPI versions and in commit order for
//! checkouts.
//!
//! A series never mixes machine classes: a figure measured on another CPU,
//! memory size, kernel or Python is another series.

use serde::{Deserialize, Serialize};

use crate::compare::Figure;
use crate::provenance::{BuildProvenance, Provenance};
use crate::text_enum::text_enum;

/// What a member said about a point of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    /// Left out of the fit (a broken run, a busy machine): kept and shown.
    Excluded,
    /// The change at this build was looked at: shown as such, no longer
    /// the series' latest news.
    Acknowledged,
}

text_enum!(MarkKind {
    Excluded => "excluded",
    Acknowledged => "acknowledged",
});

/// The stable facts of the machine a run was measured on, as one key:
/// `AMD EPYC 7B13 · 2 cores · 8 GiB · Linux 6.1 · Python 3.11`, and
/// ` · epoch N` once an admin bumped it (after a change to the host that
/// the facts do not show: a BIOS setting, a new disk). Never a clock speed
/// or a load: those move from run to run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MachineClass(pub String);

impl MachineClass {
    /// The class of the machine and Python a build ran with.
    pub fn of(provenance: &Provenance, build: &BuildProvenance) -> MachineClass {
        let memory = provenance
            .memory_bytes
            .map(|b| format!("{} GiB", (b as f64 / GIB).round() as u64))
            .unwrap_or_else(|| "memory unknown".into());
        let mut class = format!(
            "{} · {} cores · {} · Linux {} · Python {}",
            provenance.cpu_model.trim(),
            provenance.cores,
            memory,
            major_minor(&provenance.kernel),
            major_minor(&build.python_version),
        );
        if provenance.machine_epoch > 0 {
            class.push_str(&format!(" · epoch {}", provenance.machine_epoch));
        }
        MachineClass(class)
    }
}

/// The machine's stable facts alone, without the Python a build ran
/// with: `AMD EPYC 7B13 · 2 cores · 8 GiB · Linux 6.1` (and its epoch).
/// The two sides of a comparison must share them; their Pythons may
/// differ, as builds do.
pub fn machine_facts(provenance: &Provenance) -> String {
    let memory = provenance
        .memory_bytes
        .map(|b| format!("{} GiB", (b as f64 / GIB).round() as u64))
        .unwrap_or_else(|| "memory unknown".into());
    let mut facts = format!(
        "{} · {} cores · {} · Linux {}",
        provenance.cpu_model.trim(),
        provenance.cores,
        memory,
        major_minor(&provenance.kernel),
    );
    if provenance.machine_epoch > 0 {
        facts.push_str(&format!(" · epoch {}", provenance.machine_epoch));
    }
    facts
}

impl std::fmt::Display for MachineClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// `6.1.0-18-amd64` → `6.1`; `3.11.7` → `3.11`; what has no dot stays.
fn major_minor(version: &str) -> String {
    let mut parts = version.trim().splitn(3, '.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => {
            let minor: String = minor.chars().take_while(char::is_ascii_digit).collect();
            format!("{major}.{minor}")
        }
        _ => version.trim().to_string(),
    }
}

/// What makes two scenarios the same measurement: the scenario and its
/// source, the journeys, how long, and the target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ScenarioKey {
    /// `built-in` or `module:function`.
    pub scenario: String,
    /// SHA-256 of the scenario module's source.
    pub source_sha256: String,
    pub concurrency: u32,
    pub duration_ms: u64,
    /// `built-in` or the target command.
    pub target: String,
    /// Fixed work (requests per scenario), and whether under Valgrind:
    /// series of other work or another instrument are other series.
    #[serde(default)]
    pub requests: Option<u64>,
    #[serde(default)]
    pub valgrind: bool,
}

impl ScenarioKey {
    pub fn of(provenance: &Provenance, concurrency: u32) -> ScenarioKey {
        ScenarioKey {
            scenario: provenance.scenario.name.clone(),
            source_sha256: provenance.scenario.sha256.clone(),
            concurrency,
            duration_ms: provenance.duration_ms,
            target: provenance.target.clone(),
            requests: provenance.requests,
            valgrind: provenance.valgrind,
        }
    }

    /// `built-in, 100 journeys, 60 s` (the target when it is not the
    /// built-in one).
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{}, {} journeys, {}",
            self.scenario,
            self.concurrency,
            crate::format::span(self.duration_ms as i64)
        );
        if let Some(requests) = self.requests {
            text = format!(
                "{}, {} journeys, {} requests",
                self.scenario,
                self.concurrency,
                crate::format::count(requests as i64)
            );
        }
        if self.valgrind {
            text.push_str(", under Valgrind");
        }
        if self.target != "built-in" {
            text.push_str(&format!(", target `{}`", self.target));
        }
        text
    }
}

/// One series: a figure of a scenario on a machine class.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesKey {
    pub scenario: ScenarioKey,
    pub figure: Figure,
    pub machine: MachineClass,
}

/// Where a mite build falls in a series: releases by version, commits by
/// their commit time (first-parent order on one branch), others by when
/// they ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PointOrder {
    /// A PyPI release (or the pinned one): its version's numbers.
    Release(Vec<u64>),
    /// A checkout's commit, ordered by commit time.
    Commit { time: i64, commit: String },
    /// A wheel or anything else: when it first ran.
    Ran(i64),
}

impl PointOrder {
    /// The order of `build`, which first ran at `ran_at` (ms).
    pub fn of(build: &BuildProvenance, ran_at: i64) -> PointOrder {
        if let (Some(commit), Some(time)) = (&build.git_commit, build.git_commit_time) {
            return PointOrder::Commit {
                time,
                commit: commit.clone(),
            };
        }
        if build.git_commit.is_none() && build.wheel_sha256.is_none() {
            if let Some(numbers) = release_numbers(&build.mite_version) {
                return PointOrder::Release(numbers);
            }
        }
        PointOrder::Ran(ran_at)
    }

    /// Whether this point is a release (a mark on the trend's chart).
    pub fn is_release(&self) -> bool {
        matches!(self, PointOrder::Release(_))
    }
}

/// `2.11.0` → [2, 11, 0]; anything but plain numbers (`2.12.0.dev0`,
/// `2.11.0rc1`) is no release.
pub fn release_numbers(version: &str) -> Option<Vec<u64>> {
    let numbers: Option<Vec<u64>> = version.trim().split('.').map(|p| p.parse().ok()).collect();
    numbers.filter(|n| !n.is_empty())
}

/// A range of mite releases, both ends included: `2.0.0..2.11.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRange {
    pub from: Vec<u64>,
    pub to: Vec<u64>,
}

impl std::str::FromStr for ReleaseRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{}` is not a range of releases: give FIRST..LAST, such as 2.0.0..2.11.0",
                text.trim()
            )
        };
        let (from, to) = text.trim().split_once("..").ok_or_else(bad)?;
        let (from, to) = (
            release_numbers(from).ok_or_else(bad)?,
            release_numbers(to).ok_or_else(bad)?,
        );
        if from > to {
            return Err(format!(
                "`{}` runs backwards: the first release goes first",
                text.trim()
            ));
        }
        Ok(ReleaseRange { from, to })
    }
}

impl ReleaseRange {
    /// The releases among `versions` inside the range, oldest first
    /// (pre-releases and dev builds are no releases).
    pub fn releases_in(&self, versions: &[String]) -> Vec<String> {
        let mut inside: Vec<(Vec<u64>, String)> = versions
            .iter()
            .filter_map(|v| Some((release_numbers(v)?, v.trim().to_string())))
            .filter(|(n, _)| *n >= self.from && *n <= self.to)
            .collect();
        inside.sort();
        inside.dedup_by(|a, b| a.0 == b.0);
        inside.into_iter().map(|(_, v)| v).collect()
    }
}

/// Sorts points into their order: releases by version, commits by time,
/// others by when they ran; when kinds mix (a series of releases and
/// commits), by when each first ran, the only order they share.
pub fn sort_points<T>(points: &mut [T], order: impl Fn(&T) -> (&PointOrder, i64)) {
    let kinds: std::collections::BTreeSet<u8> = points
        .iter()
        .map(|p| match order(p).0 {
            PointOrder::Release(_) => 0,
            PointOrder::Commit { .. } => 1,
            PointOrder::Ran(_) => 2,
        })
        .collect();
    if kinds.len() > 1 {
        points.sort_by_key(|p| order(p).1);
        return;
    }
    points.sort_by(|a, b| {
        let ((a, a_ran), (b, b_ran)) = (order(a), order(b));
        match (a, b) {
            (PointOrder::Release(x), PointOrder::Release(y)) => x.cmp(y),
            (PointOrder::Commit { time: x, .. }, PointOrder::Commit { time: y, .. }) => x.cmp(y),
            _ => std::cmp::Ordering::Equal,
        }
        .then(a_ran.cmp(&b_ran))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provenance() -> Provenance {
        Provenance {
            cpu_model: "AMD EPYC 7B13 ".into(),
            cores: 2,
            memory_bytes: Some(8 * 1024 * 1024 * 1024 - 300 * 1024 * 1024),
            kernel: "6.1.0-18-amd64".into(),
            ..Provenance::default()
        }
    }

    fn build(python: &str) -> BuildProvenance {
        BuildProvenance {
            mite_version: "2.11.0".into(),
            python_version: python.into(),
            ..BuildProvenance::default()
        }
    }

    #[test]
    fn the_machine_class_keeps_stable_facts_only() {
        let class = MachineClass::of(&provenance(), &build("3.11.7"));
        assert_eq!(
            class.0,
            "AMD EPYC 7B13 · 2 cores · 8 GiB · Linux 6.1 · Python 3.11"
        );
        // A patch release of Python or the kernel is the same class.
        let patched = Provenance {
            kernel: "6.1.0-21-amd64".into(),
            ..provenance()
        };
        assert_eq!(MachineClass::of(&patched, &build("3.11.9")), class);
        // Another minor Python, more memory, or a bumped epoch is another.
        assert_ne!(MachineClass::of(&provenance(), &build("3.12.1")), class);
        let bigger = Provenance {
            memory_bytes: Some(16 * 1024 * 1024 * 1024),
            ..provenance()
        };
        assert_ne!(MachineClass::of(&bigger, &build("3.11.7")), class);
        let bumped = Provenance {
            machine_epoch: 2,
            ..provenance()
        };
        assert!(MachineClass::of(&bumped, &build("3.11.7"))
            .0
            .ends_with(" · epoch 2"));
        // A run stored before memory was recorded says so.
        let older = Provenance {
            memory_bytes: None,
            ..provenance()
        };
        assert!(MachineClass::of(&older, &build("3.11.7"))
            .0
            .contains("memory unknown"));
    }

    #[test]
    fn machine_facts_leave_python_out_and_keep_the_epoch() {
        let mut p = provenance();
        let facts = machine_facts(&p);
        assert!(!facts.contains("Python"), "{facts}");
        assert!(MachineClass::of(&p, &build("3.11.7")).0.starts_with(&facts));
        p.machine_epoch = 2;
        assert!(machine_facts(&p).ends_with(" · epoch 2"));
    }

    #[test]
    fn a_release_range_takes_the_releases_inside_it_in_version_order() {
        let range: ReleaseRange = "2.0.0..2.11.0".parse().expect("a range");
        let pypi: Vec<String> = [
            "0.1.10",
            "1.1.9",
            "2.0.0",
            "2.10.0",
            "2.11.0",
            "2.12.0rc1",
            "2.2.0",
            "2.9.2",
            "2.12.0",
        ]
        .iter()
        .map(|v| v.to_string())
        .collect();
        assert_eq!(
            range.releases_in(&pypi),
            vec!["2.0.0", "2.2.0", "2.9.2", "2.10.0", "2.11.0"]
        );
        for bad in [
            "2.0.0",
            "2.0.0..",
            "..2.1",
            "2.0.0..latest",
            "2.11.0..2.0.0",
        ] {
            assert!(bad.parse::<ReleaseRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn releases_sort_by_version_and_commits_by_time() {
        let release = |v: &str, ran: i64| {
            (
                PointOrder::of(
                    &BuildProvenance {
                        mite_version: v.into(),
                        ..BuildProvenance::default()
                    },
                    ran,
                ),
                ran,
            )
        };
        let mut points = vec![
            release("2.10.0", 1),
            release("2.9.2", 2),
            release("2.11.0", 3),
        ];
        sort_points(&mut points, |(o, ran)| (o, *ran));
        let versions: Vec<&PointOrder> = points.iter().map(|(o, _)| o).collect();
        assert_eq!(
            versions,
            [
                &PointOrder::Release(vec![2, 9, 2]),
                &PointOrder::Release(vec![2, 10, 0]),
                &PointOrder::Release(vec![2, 11, 0]),
            ]
        );
        let commit = |c: &str, time: i64, ran: i64| {
            (
                PointOrder::of(
                    &BuildProvenance {
                        mite_version: "2.12.0.dev0".into(),
                        git_commit: Some(c.into()),
                        git_commit_time: Some(time),
                        ..BuildProvenance::default()
                    },
                    ran,
                ),
                ran,
            )
        };
        let mut commits = vec![commit("b", 20, 1), commit("a", 10, 2)];
        sort_points(&mut commits, |(o, ran)| (o, *ran));
        assert!(matches!(&commits[0].0, PointOrder::Commit { commit, .. } if commit == "a"));
        // A dev version without its commit is no release.
        assert_eq!(release("2.12.0.dev0", 5).0, PointOrder::Ran(5));
        assert!(release("2.11.0", 0).0.is_release());
    }

    #[test]
    fn a_scenario_key_reads_the_provenance() {
        let mut p = provenance();
        p.scenario.name = "built-in".into();
        p.scenario.sha256 = "ab".into();
        p.duration_ms = 60_000;
        p.target = "built-in".into();
        let key = ScenarioKey::of(&p, 100);
        assert_eq!(key.describe(), "built-in, 100 journeys, 1 min 00 s");
        assert_eq!(key.concurrency, 100);
    }
}
