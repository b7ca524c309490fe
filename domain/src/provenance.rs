//! What a run measured, precisely enough to tell whether two runs can be
//! compared: the mite builds, the machine, the target and the scenario.
//! Stored with the run and written as `run.json` beside `samples.csv`.

use serde::{Deserialize, Serialize};

use crate::builds::MiteBuild;
use crate::dependencies::{describe_changes, package_changes, PackageChange, Resolution};

/// One mite build as the lab found it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildProvenance {
    /// As the run asked for it (`2.10.0`, `../mite`, `pinned`).
    pub asked: String,
    /// mite's version as installed (`importlib.metadata`).
    pub mite_version: String,
    pub python_version: String,
    /// A checkout's commit and whether it had uncommitted changes.
    pub git_commit: Option<String>,
    pub git_dirty: Option<bool>,
    /// The commit's committer time (Unix seconds) and its parents, for a
    /// series' commit order (runs stored before they were recorded have
    /// none).
    #[serde(default)]
    pub git_commit_time: Option<i64>,
    #[serde(default)]
    pub git_parents: Vec<String>,
    /// A wheel's SHA-256.
    pub wheel_sha256: Option<String>,
    /// The venv it ran from.
    pub venv: String,
    /// Whose word the commit is: an uploaded wheel's commit, time and
    /// parents are what its uploader (`token:ci`) said, not what the lab
    /// saw. Its trend points are shown as claimed, pooled apart from the
    /// commit's other measurements, and an admin may leave a claimant's
    /// points out of every fit. `None`: the lab saw the commit (or none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// How its dependencies were resolved: the agent's snapshot, or the
    /// index as of a moment the run chose. `None`: a run recorded before
    /// the lab said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// Every package in its venv, `name==version`, sorted by name (mite
    /// among them). Empty: a run recorded before the lab kept them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
}

impl BuildProvenance {
    /// `2.11.0`, `2.12.0.dev0 @ 1a2b3c4d (dirty)`, `2.12.0 (wheel 0a1b2c3d)`.
    pub fn describe(&self) -> String {
        let mut text = self.mite_version.clone();
        if let Some(commit) = &self.git_commit {
            text.push_str(&format!(" @ {}", short(commit)));
            if self.git_dirty == Some(true) {
                text.push_str(" (dirty)");
            }
        }
        if let Some(sha) = &self.wheel_sha256 {
            text.push_str(&format!(" (wheel {})", short(sha)));
        }
        text
    }
}

fn short(hash: &str) -> &str {
    hash.get(..10).unwrap_or(hash)
}

/// The most package changes a sentence lists (the rest are counted).
pub const LISTED_CHANGES: usize = 12;

/// What differs between two builds' dependencies, when anything does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyDifference {
    /// The packages added, removed or at another version, base to new.
    pub changes: Vec<PackageChange>,
    /// How each side's were resolved (base, new), when that differs.
    #[serde(default)]
    pub resolutions: Option<(String, String)>,
    /// The sides (`base`, `new`) whose packages were not recorded (runs
    /// made before the lab kept them): nothing can be said of those.
    #[serde(default)]
    pub unrecorded: Vec<String>,
}

impl DependencyDifference {
    /// The difference between `base`'s and `new`'s packages; `None` when
    /// they match (or neither side's were recorded: runs made before).
    pub fn between(base: &BuildProvenance, new: &BuildProvenance) -> Option<Self> {
        Self::of_lists(
            (&base.packages, base.resolution.as_ref()),
            (&new.packages, new.resolution.as_ref()),
        )
    }

    /// The same, from each side's packages and how they were resolved
    /// (a trend's points keep those, not a whole build).
    pub fn of_lists(
        base: (&[String], Option<&Resolution>),
        new: (&[String], Option<&Resolution>),
    ) -> Option<Self> {
        let unrecorded: Vec<String> = [("base", base.0), ("new", new.0)]
            .into_iter()
            .filter(|(_, packages)| packages.is_empty())
            .map(|(side, _)| side.to_string())
            .collect();
        if unrecorded.len() == 2 {
            return None;
        }
        let changes = if unrecorded.is_empty() {
            package_changes(base.0, new.0)
        } else {
            Vec::new()
        };
        if unrecorded.is_empty() && changes.is_empty() {
            return None;
        }
        let describe =
            |r: Option<&Resolution>| r.map_or("not recorded".to_string(), Resolution::describe);
        let resolutions = (base.1 != new.1).then(|| (describe(base.1), describe(new.1)));
        Some(DependencyDifference {
            changes,
            resolutions,
            unrecorded,
        })
    }

    /// As sentences for a verdict's notes.
    pub fn sentences(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.changes.is_empty() {
            out.push(format!(
                "the builds ran with other packages (mite aside; base to new): {}",
                describe_changes(&self.changes, LISTED_CHANGES)
            ));
        }
        if !self.unrecorded.is_empty() {
            out.push(format!(
                "the {} side's packages were not recorded (a run made before the lab kept \
                 them): whether both ran with the same is unknown",
                self.unrecorded.join(" and ")
            ));
        }
        if let Some((base, new)) = &self.resolutions {
            out.push(format!(
                "their dependencies were resolved differently: {base} against {new}"
            ));
        }
        out
    }
}

/// The scenario module a run used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioSource {
    /// `built-in` or the user's `module:function`.
    pub name: String,
    /// The folder it was imported from (a user's scenario only).
    pub dir: Option<String>,
    /// SHA-256 of the module's source file.
    pub sha256: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The lab's own version.
    pub lab_version: String,
    pub host: String,
    pub cores: i64,
    pub cpu_model: String,
    /// The machine's memory (runs stored before it was recorded have none).
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// Bumped by the agent's admin (`--machine-epoch`) when the host
    /// changed in a way its facts do not show: a new machine class.
    #[serde(default)]
    pub machine_epoch: u32,
    pub kernel: String,
    /// In the run's build order (scenario `-b2` used `builds[1]`).
    pub builds: Vec<BuildProvenance>,
    /// `built-in` or the target command.
    pub target: String,
    pub scenario: ScenarioSource,
    pub spawn_rate: u32,
    pub interval_ms: u64,
    pub duration_ms: u64,
    pub repeats: u32,
    /// How the measured code ran: in a sandbox (`bubblewrap 0.8.0`), or
    /// `none (…)` and why (runs stored before it was recorded: empty).
    #[serde(default)]
    pub sandbox: String,
    /// Fixed work: the requests each scenario made (`None`: each ran for
    /// the duration).
    #[serde(default)]
    pub requests: Option<u64>,
    /// mite's processes ran under Valgrind (scenarios in pairs of N and 2N
    /// requests): their CPU and memory are Valgrind's, not mite's.
    #[serde(default)]
    pub valgrind: bool,
}

impl Provenance {
    /// Whether a scenario of this run that was to make `requests` is the
    /// first of a Valgrind pair (it only gives the second its figures).
    pub fn is_half_of_pair(&self, requests: Option<i64>) -> bool {
        self.valgrind && requests.is_some() && requests.map(|r| r as u64) == self.requests
    }
}

/// A run's provenance with its identity, as written to `run.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunJson {
    pub run_id: i64,
    pub label: String,
    pub concurrencies: Vec<u32>,
    pub builds_asked: Vec<MiteBuild>,
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// Where two runs' provenance differs in ways that make their comparison
/// suspect, each as a sentence.
pub fn differences(base: &Provenance, new: &Provenance) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut differ = |what: &str, a: &str, b: &str| {
        if a != b {
            warnings.push(format!("the runs differ in {what}: {a} against {b}"));
        }
    };
    differ("host", &base.host, &new.host);
    differ("CPU", &base.cpu_model, &new.cpu_model);
    differ("cores", &base.cores.to_string(), &new.cores.to_string());
    let python = |p: &Provenance| {
        let mut versions: Vec<&str> = p.builds.iter().map(|b| b.python_version.as_str()).collect();
        versions.dedup();
        versions.join(", ")
    };
    differ("Python", &python(base), &python(new));
    differ("target", &base.target, &new.target);
    differ("scenario", &base.scenario.name, &new.scenario.name);
    differ(
        "scenario source",
        short(&base.scenario.sha256),
        short(&new.scenario.sha256),
    );
    differ(
        "spawn rate",
        &base.spawn_rate.to_string(),
        &new.spawn_rate.to_string(),
    );
    differ(
        "sampling interval",
        &format!("{} ms", base.interval_ms),
        &format!("{} ms", new.interval_ms),
    );
    differ(
        "scenario duration",
        &format!("{} ms", base.duration_ms),
        &format!("{} ms", new.duration_ms),
    );
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provenance() -> Provenance {
        Provenance {
            lab_version: "0.1.0".into(),
            host: "lab1".into(),
            cores: 2,
            cpu_model: "EPYC".into(),
            memory_bytes: Some(8 << 30),
            machine_epoch: 0,
            kernel: "6.1".into(),
            builds: vec![BuildProvenance {
                asked: "pinned".into(),
                mite_version: "2.11.0".into(),
                python_version: "3.11.2".into(),
                ..BuildProvenance::default()
            }],
            target: "built-in".into(),
            scenario: ScenarioSource {
                name: "built-in".into(),
                dir: None,
                sha256: "ab".repeat(32),
            },
            spawn_rate: 1_000_000,
            interval_ms: 1000,
            duration_ms: 10_000,
            repeats: 3,
            sandbox: "bubblewrap 0.8.0".into(),
            requests: None,
            valgrind: false,
        }
    }

    /// Runs stored before the machine's memory, its epoch and commits'
    /// times were recorded still read.
    #[test]
    fn provenance_stored_before_the_machine_facts_still_reads() {
        let mut stored = serde_json::to_value(provenance()).expect("json");
        let fields = stored.as_object_mut().expect("an object");
        fields.remove("memory_bytes");
        fields.remove("machine_epoch");
        fields.remove("sandbox");
        for build in fields["builds"].as_array_mut().expect("builds") {
            let build = build.as_object_mut().expect("a build");
            build.remove("git_commit_time");
            build.remove("git_parents");
            build.remove("resolution");
            build.remove("packages");
        }
        let read: Provenance = serde_json::from_value(stored).expect("older provenance");
        assert_eq!((read.memory_bytes, read.machine_epoch), (None, 0));
        assert_eq!(read.sandbox, "");
        assert_eq!(read.builds[0].git_commit_time, None);
        assert!(read.builds[0].git_parents.is_empty());
        assert_eq!(read.builds[0].resolution, None);
        assert!(read.builds[0].packages.is_empty());
    }

    #[test]
    fn two_builds_dependencies_differ_only_when_their_packages_do() {
        let with = |packages: &[&str], resolution: Option<Resolution>| BuildProvenance {
            packages: packages.iter().map(|p| p.to_string()).collect(),
            resolution,
            ..provenance().builds[0].clone()
        };
        let snapshot = || {
            Some(Resolution::Snapshot {
                as_of: "2026-12-07T16:04:46Z".into(),
            })
        };
        let lab = with(&["mite==2.11.0", "multidict==7.2.1"], snapshot());
        // The same packages, another mite: nothing to say.
        let same = with(&["mite==2.10.0", "multidict==7.2.1"], snapshot());
        assert_eq!(DependencyDifference::between(&lab, &same), None);
        // Old runs on both sides: nothing known, nothing said.
        let old = with(&[], None);
        assert_eq!(DependencyDifference::between(&old, &old), None);
        // Another multidict, resolved as of another moment: both said.
        let release = with(
            &["mite==2.11.0", "multidict==6.9.1", "aiohttp==3.13.2"],
            Some(Resolution::AsOf {
                as_of: "2026-10-19T10:17:14Z".into(),
            }),
        );
        let difference = DependencyDifference::between(&lab, &release).expect("a difference");
        let sentences = difference.sentences();
        assert_eq!(
            sentences[0],
            "the builds ran with other packages (mite aside; base to new): aiohttp 3.13.2 \
             added, multidict 7.2.1 → 6.9.1"
        );
        assert!(
            sentences[1].contains("the index as of 2026-10-19T10:17:14Z"),
            "{sentences:?}"
        );
        // One side recorded before: said as unknown.
        let unknown = DependencyDifference::between(&old, &lab).expect("unknown");
        assert_eq!(unknown.unrecorded, ["base"]);
        assert!(unknown.sentences()[0].contains("base side's packages were not recorded"));
        // Stored as before: a build without packages writes none.
        let text = serde_json::to_string(&old).expect("json");
        assert!(
            !text.contains("packages") && !text.contains("resolution"),
            "{text}"
        );
    }

    #[test]
    fn the_same_setting_raises_no_warning_and_each_difference_one() {
        let base = provenance();
        assert_eq!(differences(&base, &base.clone()), Vec::<String>::new());
        let mut new = provenance();
        new.host = "lab2".into();
        new.builds[0].python_version = "3.12.1".into();
        // The build itself differing is what a comparison is for.
        new.builds[0].mite_version = "2.10.0".into();
        let warnings = differences(&base, &new);
        assert_eq!(
            warnings,
            [
                "the runs differ in host: lab1 against lab2",
                "the runs differ in Python: 3.11.2 against 3.12.1"
            ]
        );
    }

    #[test]
    fn builds_describe_their_origin() {
        let mut build = provenance().builds[0].clone();
        assert_eq!(build.describe(), "2.11.0");
        build.git_commit = Some("0123456789abcdef".into());
        build.git_dirty = Some(true);
        assert_eq!(build.describe(), "2.11.0 @ 0123456789 (dirty)");
    }
}
