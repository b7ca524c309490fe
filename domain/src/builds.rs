//! Which mite a run measures, and the order a run's scenarios take when it
//! measures several builds, each several times.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The name a scenario of this concurrency goes by (`scenario10`), as in the
/// original script.
pub fn scenario_name(concurrency: u32) -> String {
    format!("scenario{concurrency}")
}

/// The most mite builds one run may compare.
pub const MAX_BUILDS: usize = 8;
/// The most repeats of each scenario.
pub const MAX_REPEATS: u32 = 20;

/// A mite build, as a run asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum MiteBuild {
    /// The version the lab was set up with (or its `--mite-venv`).
    Pinned,
    /// A release from PyPI, such as `2.10.0`.
    Version(String),
    /// A local checkout of mite's source (installed from that folder).
    Checkout(PathBuf),
    /// A built wheel file.
    Wheel(PathBuf),
    /// A wheel uploaded to the lab (`mite-perf ci check`), by its SHA-256
    /// in lower-case hex: every agent installs exactly those bytes.
    Uploaded(String),
}

/// How an uploaded wheel is named in `--mite` text and in a launch.
pub const UPLOADED_PREFIX: &str = "upload:";

/// The lab's answer to a wheel upload (`POST /api/wheels`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedWheel {
    /// How a launch names it: `upload:SHA256`.
    pub build: String,
    pub sha256: String,
    pub file_name: String,
    /// mite's version, as the wheel says.
    pub version: String,
    pub size: u64,
    /// False when the lab had these bytes already.
    pub new: bool,
    /// The commit the lab records for these bytes (the first upload's word).
    #[serde(default)]
    pub commit: Option<String>,
}

/// The most parents a commit of an uploaded wheel may name.
pub const MAX_PARENTS: usize = 16;

/// The commit an uploaded wheel was built from, as the CI job that built it
/// says: its hash, committer time (Unix seconds) and parents. Checked for
/// form only (the lab has no repository to check it against); it places
/// the wheel's runs in a trend's commit order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WheelCommit {
    pub commit: String,
    pub time: i64,
    pub parents: Vec<String>,
}

impl WheelCommit {
    /// Reads a commit's hash, its time and its parents (separated by commas
    /// or spaces; none for a root commit). The error says which is wrong
    /// and how.
    pub fn parse(
        commit: &str,
        time: &str,
        parents: &str,
    ) -> Result<WheelCommit, (&'static str, String)> {
        let commit = commit.trim();
        if !is_git_hash(commit) {
            return Err((
                "commit",
                format!(
                    "`{}` is not a full git commit hash (40 or 64 lower-case hex digits)",
                    shown(commit)
                ),
            ));
        }
        let time = match time.trim().parse::<i64>() {
            Ok(t) if t > 0 => t,
            _ => {
                return Err((
                    "commit_time",
                    format!(
                        "`{}` is not a commit time in Unix seconds",
                        shown(time.trim())
                    ),
                ))
            }
        };
        let parents: Vec<String> = parents
            .split([',', ' '])
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        if let Some(bad) = parents.iter().find(|p| !is_git_hash(p)) {
            return Err((
                "parents",
                format!("`{}` is not a full git commit hash", shown(bad)),
            ));
        }
        if parents.len() > MAX_PARENTS {
            return Err((
                "parents",
                format!("{} parents: at most {MAX_PARENTS}", parents.len()),
            ));
        }
        Ok(WheelCommit {
            commit: commit.to_string(),
            time,
            parents,
        })
    }

    /// The parents as [`WheelCommit::parse`] reads them back.
    pub fn parents_text(&self) -> String {
        self.parents.join(" ")
    }
}

/// Whether `text` is a full git object name: SHA-1 (40) or SHA-256 (64)
/// in lower-case hex.
pub fn is_git_hash(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// At most 80 characters of what a caller sent, for an error message.
fn shown(text: &str) -> String {
    text.chars().take(80).collect()
}

/// Whether `text` is a SHA-256 in lower-case hex.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl MiteBuild {
    /// Reads `--mite` text: `pinned`, a version (`2.10.0`), a folder
    /// (`../mite`) or a wheel (`./dist/mite-2.12.0-py3-none-any.whl`).
    /// Anything with a `/` or starting with `.` or `~` is a path.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() || text == "pinned" || text == "default" {
            return Ok(MiteBuild::Pinned);
        }
        if let Some(sha) = text.strip_prefix(UPLOADED_PREFIX) {
            return if is_sha256(sha) {
                Ok(MiteBuild::Uploaded(sha.to_string()))
            } else {
                Err(format!(
                    "`{text}` is not an uploaded wheel: give `upload:` and the SHA-256 \
                     (64 lower-case hex digits) the lab answered the upload with"
                ))
            };
        }
        if text.contains('/') || text.starts_with('.') || text.starts_with('~') {
            let path = PathBuf::from(text);
            return Ok(if text.ends_with(".whl") {
                MiteBuild::Wheel(path)
            } else {
                MiteBuild::Checkout(path)
            });
        }
        if is_version(text) {
            return Ok(MiteBuild::Version(text.to_string()));
        }
        Err(format!(
            "`{text}` is not a mite build: give a version (2.10.0), a checkout folder \
             (../mite), a wheel (./dist/mite-2.12.0-py3-none-any.whl) or `pinned`"
        ))
    }

    /// Reads a comma-separated list (`2.10.0,2.11.0`); duplicates are refused.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        let builds = text
            .split(',')
            .map(MiteBuild::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(twice) = first_duplicate(&builds) {
            return Err(format!("{twice} is named twice"));
        }
        Ok(builds)
    }

    /// Whether the build comes from a path on the lab's host.
    pub fn is_local(&self) -> bool {
        self.local_path().is_some()
    }

    /// The path on the lab's host a checkout or a wheel comes from.
    pub fn local_path(&self) -> Option<&std::path::Path> {
        match self {
            MiteBuild::Checkout(p) | MiteBuild::Wheel(p) => Some(p),
            MiteBuild::Pinned | MiteBuild::Version(_) | MiteBuild::Uploaded(_) => None,
        }
    }

    /// Whether this build is code nobody vouches for: a checkout, a wheel
    /// file or an upload (a pull request's), not the pinned mite or a
    /// release from the index. A host that cannot sandbox refuses them.
    pub fn is_untrusted(&self) -> bool {
        !matches!(self, MiteBuild::Pinned | MiteBuild::Version(_))
    }
}

impl fmt::Display for MiteBuild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MiteBuild::Pinned => f.write_str("pinned"),
            MiteBuild::Version(v) => f.write_str(v),
            MiteBuild::Checkout(p) | MiteBuild::Wheel(p) => write!(f, "{}", p.display()),
            MiteBuild::Uploaded(sha) => write!(f, "{UPLOADED_PREFIX}{sha}"),
        }
    }
}

fn first_duplicate(builds: &[MiteBuild]) -> Option<&MiteBuild> {
    builds
        .iter()
        .enumerate()
        .find(|(i, b)| builds[..*i].contains(b))
        .map(|(_, b)| b)
}

/// A PEP 440-ish release: digits first, then digits, dots and the letters
/// of `a`, `b`, `rc`, `post`, `dev`.
fn is_version(text: &str) -> bool {
    text.len() <= 40
        && text.starts_with(|c: char| c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || "abrcpostdev".contains(c))
}

/// Every problem with a run's builds and repeats, as (field, message).
pub fn validate(builds: &[MiteBuild], repeats: u32) -> Vec<(&'static str, String)> {
    let mut errors = Vec::new();
    if builds.len() > MAX_BUILDS {
        errors.push((
            "mite",
            format!(
                "{} builds is too many for one run: use at most {MAX_BUILDS}",
                builds.len()
            ),
        ));
    }
    if let Some(twice) = first_duplicate(builds) {
        errors.push(("mite", format!("{twice} is named twice")));
    }
    if let Some(bad) = builds.iter().find_map(|b| match b {
        MiteBuild::Version(v) if !is_version(v) => Some(v),
        _ => None,
    }) {
        errors.push(("mite", format!("`{bad}` is not a version")));
    }
    if let Some(bad) = builds.iter().find_map(|b| match b {
        MiteBuild::Uploaded(sha) if !is_sha256(sha) => Some(sha),
        _ => None,
    }) {
        errors.push((
            "mite",
            format!("`{bad}` is not the SHA-256 of an uploaded wheel"),
        ));
    }
    if repeats == 0 || repeats > MAX_REPEATS {
        errors.push((
            "repeat",
            format!("{repeats} repeats is out of range: use 1 to {MAX_REPEATS}"),
        ));
    }
    errors
}

/// One scenario of a run: a concurrency, measured with one build, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub concurrency: u32,
    /// Index into the run's builds.
    pub build: usize,
    /// 0 for the first time this concurrency runs with this build.
    pub repeat: u32,
    /// Fixed work: the scenario ends once this many requests were made
    /// (`None`: it runs for the run's duration).
    pub requests: Option<u64>,
}

impl Slot {
    /// The one scenario of `concurrency` in a run of one build, once.
    pub fn once(concurrency: u32) -> Slot {
        Slot {
            concurrency,
            build: 0,
            repeat: 0,
            requests: None,
        }
    }

    /// The scenario's name (and its folder): `scenario10` as in mite's own
    /// script, with `-b2` when the run has several builds and `-r3` when
    /// it repeats (numbered from 1).
    pub fn name(&self, builds: usize, repeats: u32) -> String {
        let mut name = scenario_name(self.concurrency);
        if let Some(requests) = self.requests {
            name.push_str(&format!("-n{requests}"));
        }
        if builds > 1 {
            name.push_str(&format!("-b{}", self.build + 1));
        }
        if repeats > 1 {
            name.push_str(&format!("-r{}", self.repeat + 1));
        }
        name
    }
}

/// The order of a run's scenarios: concurrency after concurrency, and
/// within one, the builds take turns in a balanced order (A B, B A, A B …):
/// whatever drifts on the machine meanwhile, and whatever favours the first
/// or the second of a pair, hits each build alike.
pub fn plan(
    concurrencies: &[u32],
    builds: usize,
    repeats: u32,
    sizes: &[Option<u64>],
) -> Vec<Slot> {
    let builds = builds.max(1);
    let sizes = if sizes.is_empty() { &[None][..] } else { sizes };
    let mut slots =
        Vec::with_capacity(concurrencies.len() * builds * repeats as usize * sizes.len());
    for &concurrency in concurrencies {
        for repeat in 0..repeats {
            for turn in 0..builds {
                let build = if repeat % 2 == 0 {
                    turn
                } else {
                    builds - 1 - turn
                };
                // A fixed-work pair (N and 2N requests) runs back to back.
                for &requests in sizes {
                    slots.push(Slot {
                        concurrency,
                        build,
                        repeat,
                        requests,
                    });
                }
            }
        }
    }
    slots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wheels_commit_is_read_with_its_time_and_parents_or_refused() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let read = WheelCommit::parse(&a, "1700000000", &format!("{b},{a}")).expect("valid");
        assert_eq!(read.time, 1_700_000_000);
        assert_eq!(read.parents, vec![b.clone(), a.clone()]);
        assert_eq!(
            WheelCommit::parse(&a, "1700000000", &read.parents_text()),
            Ok(read)
        );
        let root = WheelCommit::parse(&"c".repeat(64), " 5 ", "").expect("a root");
        assert!(root.parents.is_empty());
        let field = |commit: &str, time: &str, parents: &str| {
            WheelCommit::parse(commit, time, parents)
                .expect_err("refused")
                .0
        };
        assert_eq!(field("abc123", "1", ""), "commit");
        assert_eq!(field(&"A".repeat(40), "1", ""), "commit");
        assert_eq!(field(&a, "yesterday", ""), "commit_time");
        assert_eq!(field(&a, "-5", ""), "commit_time");
        assert_eq!(field(&a, "1", "HEAD~1"), "parents");
        let many = vec![b.as_str(); MAX_PARENTS + 1].join(",");
        assert_eq!(field(&a, "1", &many), "parents");
        // What is echoed back is cut short.
        let long = "x".repeat(5000);
        assert!(
            WheelCommit::parse(&long, "1", "")
                .expect_err("long")
                .1
                .len()
                < 200
        );
    }

    #[test]
    fn builds_parse_as_versions_paths_and_wheels() {
        assert_eq!(MiteBuild::parse("pinned"), Ok(MiteBuild::Pinned));
        assert_eq!(
            MiteBuild::parse(" 2.10.0 "),
            Ok(MiteBuild::Version("2.10.0".into()))
        );
        assert_eq!(
            MiteBuild::parse("2.12.0rc1"),
            Ok(MiteBuild::Version("2.12.0rc1".into()))
        );
        assert_eq!(
            MiteBuild::parse("../mite"),
            Ok(MiteBuild::Checkout("../mite".into()))
        );
        assert_eq!(
            MiteBuild::parse("./dist/mite-2.12.0-py3-none-any.whl"),
            Ok(MiteBuild::Wheel(
                "./dist/mite-2.12.0-py3-none-any.whl".into()
            ))
        );
        for bad in ["latest", "2.10.0;rm", "mite==2.10.0", "v2", "2.10 .0"] {
            let err = MiteBuild::parse(bad).expect_err(bad);
            assert!(err.contains("is not a mite build"), "{err}");
        }
    }

    #[test]
    fn an_uploaded_wheel_is_named_by_its_whole_sha256_and_round_trips() {
        let sha = "0123456789abcdef".repeat(4);
        let build = MiteBuild::parse(&format!("upload:{sha}")).expect("an upload");
        assert_eq!(build, MiteBuild::Uploaded(sha.clone()));
        assert_eq!(MiteBuild::parse(&build.to_string()), Ok(build.clone()));
        assert!(!build.is_local());
        for bad in [
            "upload:",
            "upload:abc",
            &format!("upload:{}", sha.to_uppercase()),
            &format!("upload:{sha}0"),
            &format!("upload:../{}", &sha[3..]),
        ] {
            let err = MiteBuild::parse(bad).expect_err(bad);
            assert!(err.contains("is not an uploaded wheel"), "{bad}: {err}");
        }
        let errors = validate(&[MiteBuild::Uploaded("nope".into())], 1);
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn a_list_refuses_a_build_named_twice() {
        assert_eq!(
            MiteBuild::parse_list("2.10.0,2.11.0"),
            Ok(vec![
                MiteBuild::Version("2.10.0".into()),
                MiteBuild::Version("2.11.0".into())
            ])
        );
        let err = MiteBuild::parse_list("2.10.0, 2.10.0").expect_err("twice");
        assert_eq!(err, "2.10.0 is named twice");
    }

    #[test]
    fn validation_names_builds_and_repeats() {
        assert!(validate(&[MiteBuild::Pinned], 3).is_empty());
        let fields: Vec<_> = validate(&[MiteBuild::Version("x; y".into()), MiteBuild::Pinned], 0)
            .into_iter()
            .map(|(field, _)| field)
            .collect();
        assert_eq!(fields, ["mite", "repeat"]);
        let many: Vec<_> = (0..9)
            .map(|i| MiteBuild::Version(format!("2.{i}.0")))
            .collect();
        assert_eq!(validate(&many, 1).len(), 1);
    }

    #[test]
    fn builds_take_turns_within_each_concurrency() {
        let order: Vec<String> = plan(&[1, 10], 2, 2, &[])
            .iter()
            .map(|slot| slot.name(2, 2))
            .collect();
        assert_eq!(
            order,
            [
                "scenario1-b1-r1",
                "scenario1-b2-r1",
                "scenario1-b2-r2",
                "scenario1-b1-r2",
                "scenario10-b1-r1",
                "scenario10-b2-r1",
                "scenario10-b2-r2",
                "scenario10-b1-r2",
            ]
        );
        // One build, once: the names mite's own script uses.
        let plain: Vec<String> = plan(&[1, 10], 1, 1, &[])
            .iter()
            .map(|s| s.name(1, 1))
            .collect();
        assert_eq!(plain, ["scenario1", "scenario10"]);
        assert_eq!(plan(&[5], 0, 3, &[]).len(), 3);
        // A fixed-work pair runs back to back, within each build's turn.
        let pairs: Vec<String> = plan(&[10], 2, 1, &[Some(500), Some(1000)])
            .iter()
            .map(|slot| slot.name(2, 1))
            .collect();
        assert_eq!(
            pairs,
            [
                "scenario10-n500-b1",
                "scenario10-n1000-b1",
                "scenario10-n500-b2",
                "scenario10-n1000-b2",
            ]
        );
    }
}
