//! The packages a mite build runs with: how they were resolved (the
//! agent's dependency snapshot, or the index as of a chosen moment), the
//! list of what was installed (`name==version`, as `uv pip freeze` or a
//! lock prints it), and what differs between two builds' lists.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// mite itself: what a comparison compares, never a dependency difference.
pub const MITE: &str = "mite";

/// How a run asks its builds' dependencies to be resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum DependencyChoice {
    /// The agent's dependency snapshot: every build of every run on the
    /// agent resolves against the index as it was at one moment.
    #[default]
    Snapshot,
    /// The index as it was at this moment (RFC 3339, UTC): a release's
    /// upload time, for a backfill measuring releases as they came out.
    AsOf(String),
}

impl DependencyChoice {
    /// Reads `snapshot`, a date (`2025-11-28`, midnight UTC) or a moment
    /// (`2025-11-28T16:06:36Z`).
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "" | "snapshot" => Ok(DependencyChoice::Snapshot),
            moment => parse_moment(moment).map(DependencyChoice::AsOf),
        }
    }

    /// The moment it fixes, when it is not the agent's.
    pub fn as_of(&self) -> Option<&str> {
        match self {
            DependencyChoice::Snapshot => None,
            DependencyChoice::AsOf(moment) => Some(moment),
        }
    }
}

impl fmt::Display for DependencyChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DependencyChoice::Snapshot => f.write_str("snapshot"),
            DependencyChoice::AsOf(moment) => f.write_str(moment),
        }
    }
}

/// A moment as uv's `--exclude-newer` takes it, in one form only: UTC,
/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`. A date alone is its midnight, UTC
/// (uv would read it in the local time zone: two agents could differ).
pub fn parse_moment(text: &str) -> Result<String, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "`{}` is not a moment: give a date (2025-11-28) or a UTC time \
             (2025-11-28T16:06:36Z), or `snapshot`",
            text.chars().take(60).collect::<String>()
        )
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let date_ok = |d: &str| {
        let parts: Vec<&str> = d.split('-').collect();
        parts.len() == 3
            && digits(parts[0], 4)
            && digits(parts[1], 2)
            && digits(parts[2], 2)
            && (1..=12).contains(&parts[1].parse::<u32>().unwrap_or(0))
            && (1..=31).contains(&parts[2].parse::<u32>().unwrap_or(0))
    };
    if date_ok(text) {
        return Ok(format!("{text}T00:00:00Z"));
    }
    let (date, time) = text.split_once('T').ok_or_else(bad)?;
    let time = time.strip_suffix('Z').ok_or_else(bad)?;
    let (clock, fraction) = match time.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (time, None),
    };
    let hms: Vec<&str> = clock.split(':').collect();
    let clock_ok = hms.len() == 3
        && hms.iter().all(|p| digits(p, 2))
        && hms[0].parse::<u32>().is_ok_and(|h| h < 24)
        && hms[1].parse::<u32>().is_ok_and(|m| m < 60)
        && hms[2].parse::<u32>().is_ok_and(|s| s < 61);
    let fraction_ok = fraction
        .is_none_or(|f| (1..=9).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()));
    if date_ok(date) && clock_ok && fraction_ok {
        Ok(format!("{date}T{time}Z"))
    } else {
        Err(bad())
    }
}

/// How a build's dependencies were resolved, as its provenance records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Resolution {
    /// The agent's dependency snapshot: the index as it was at `as_of`
    /// (uv's `--exclude-newer`; mite itself exempt).
    Snapshot { as_of: String },
    /// The index as it was at `as_of`, which the run chose (a release's
    /// upload time).
    AsOf { as_of: String },
    /// Whatever the index held when it was installed (pip: no snapshot).
    Unpinned,
}

impl Resolution {
    /// `the agent's snapshot (the index as of 2026-12-07T16:04:46Z)`.
    pub fn describe(&self) -> String {
        match self {
            Resolution::Snapshot { as_of } => {
                format!("the agent's snapshot (the index as of {as_of})")
            }
            Resolution::AsOf { as_of } => format!("the index as of {as_of}"),
            Resolution::Unpinned => "the index of the day it was installed (pip)".to_string(),
        }
    }

    /// The moment its packages were resolved as of, if any.
    pub fn as_of(&self) -> Option<&str> {
        match self {
            Resolution::Snapshot { as_of } | Resolution::AsOf { as_of } => Some(as_of),
            Resolution::Unpinned => None,
        }
    }
}

/// A package's name as the index knows it (PEP 503): lower case, runs of
/// `-`, `_` and `.` as one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
            continue;
        }
        if separator && !out.is_empty() {
            out.push('-');
        }
        separator = false;
        out.extend(c.to_lowercase());
    }
    out
}

/// The packages listed in `text`, one `name==version` a line as `uv pip
/// freeze`, `pip freeze` or a lock (`uv pip compile`) print them:
/// comments, options, hashes and markers left out, names normalized,
/// sorted by name, each once. A line that pins nothing (`name @ URL`, a
/// bare name) is kept as `name @ …` or the name alone.
pub fn parse_packages(text: &str) -> Vec<String> {
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        let line = line.split(" #").next().unwrap_or_default();
        let line = line.split(';').next().unwrap_or_default();
        let line = line.trim().trim_end_matches('\\').trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('-') {
            continue;
        }
        let (name, pin) = if let Some((name, version)) = line.split_once("==") {
            let version = version.split_whitespace().next().unwrap_or_default();
            (name, format!("=={}", version.trim_start_matches('=')))
        } else if let Some((name, url)) = line.split_once(" @ ") {
            (name, format!(" @ {}", url.trim()))
        } else {
            (
                line.split_whitespace().next().unwrap_or_default(),
                String::new(),
            )
        };
        // Extras are not part of what is installed.
        let name = normalize_name(name.split('[').next().unwrap_or_default());
        if name.is_empty() {
            continue;
        }
        by_name.insert(name.clone(), format!("{name}{pin}"));
    }
    by_name.into_values().collect()
}

/// A listed package's name and what it pins (`3.13.2`, `@ file:///…`).
fn split(package: &str) -> (String, String) {
    if let Some((name, version)) = package.split_once("==") {
        (normalize_name(name), version.to_string())
    } else if let Some((name, url)) = package.split_once(" @ ") {
        (normalize_name(name), format!("@ {url}"))
    } else {
        (normalize_name(package), String::new())
    }
}

/// One package that differs between two builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageChange {
    pub name: String,
    /// Its version on the base side (`None`: the base has no such package).
    pub base: Option<String>,
    /// Its version on the new side (`None`: removed).
    pub new: Option<String>,
}

impl PackageChange {
    /// `multidict 6.9.1 → 7.2.1`, `aiohttp 3.13.2 added`, `aiohttp 3.13.2 removed`.
    pub fn describe(&self) -> String {
        match (&self.base, &self.new) {
            (Some(base), Some(new)) => format!("{} {base} → {new}", self.name),
            (None, Some(new)) => format!("{} {new} added", self.name),
            (Some(base), None) => format!("{} {base} removed", self.name),
            (None, None) => self.name.clone(),
        }
    }
}

/// The packages added, removed or at another version from `base` to
/// `new`, by name; mite itself left out (it is what is compared).
pub fn package_changes(base: &[String], new: &[String]) -> Vec<PackageChange> {
    let index = |list: &[String]| -> BTreeMap<String, String> {
        list.iter()
            .map(|p| split(p))
            .filter(|(name, _)| name != MITE)
            .collect()
    };
    let (base, new) = (index(base), index(new));
    let mut names: Vec<&String> = base.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let (b, n) = (base.get(name), new.get(name));
            (b != n).then(|| PackageChange {
                name: name.clone(),
                base: b.cloned(),
                new: n.cloned(),
            })
        })
        .collect()
}

/// The changes as one line: the first `max`, then how many more.
pub fn describe_changes(changes: &[PackageChange], max: usize) -> String {
    let mut listed: Vec<String> = changes
        .iter()
        .take(max)
        .map(PackageChange::describe)
        .collect();
    if changes.len() > max {
        listed.push(format!("and {} more", changes.len() - max));
    }
    listed.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_as_the_index_does() {
        assert_eq!(normalize_name("Typing_Extensions"), "typing-extensions");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
        assert_eq!(normalize_name("a-_.b"), "a-b");
        assert_eq!(normalize_name(" PyYAML "), "pyyaml");
    }

    #[test]
    fn a_lock_and_a_freeze_read_as_the_same_list() {
        // `uv pip compile` with its header, annotations and hashes.
        let lock = "# This file was autogenerated by uv via the following command:\n\
                    #    uv pip compile req.in\n\
                    aiohttp==3.13.2 \\\n    --hash=sha256:abc \\\n    --hash=sha256:def\n    \
                    # via mite\n\
                    Multidict==6.9.1\n    # via\n    #   aiohttp\n    #   yarl\n\
                    typing_extensions==4.16.0 ; python_full_version < '3.13'\n\
                    uvloop[test]==0.23.0  # an annotation\n\
                    --index-url https://pypi.org/simple\n\
                    -e file:///src/mite\n\n";
        let freeze =
            "uvloop==0.23.0\nmultidict==6.9.1\naiohttp==3.13.2\ntyping-extensions==4.16.0\n\
                      mite @ file:///src/mite\n";
        let from_lock = parse_packages(lock);
        assert_eq!(
            from_lock,
            [
                "aiohttp==3.13.2",
                "multidict==6.9.1",
                "typing-extensions==4.16.0",
                "uvloop==0.23.0"
            ]
        );
        let from_freeze = parse_packages(freeze);
        assert_eq!(from_freeze[1], "mite @ file:///src/mite");
        // mite aside, the same packages: no difference.
        assert!(package_changes(&from_lock, &from_freeze).is_empty());
        // Listed twice: the last word stands, once.
        assert_eq!(parse_packages("a==1\nA==2\n"), ["a==2"]);
    }

    #[test]
    fn the_difference_lists_added_removed_and_changed_packages_but_not_mite() {
        // As issue 30 found them: scripts/setup's venv against the lab's.
        let pinned: Vec<String> = [
            "aiohttp==3.13.2",
            "attrs==26.1.0",
            "mite==2.11.0",
            "msgpack==1.2.4",
            "multidict==6.9.1",
        ]
        .map(String::from)
        .to_vec();
        let lab: Vec<String> = [
            "mite==2.10.0",
            "msgpack==1.2.4",
            "multidict==7.2.1",
            "uvloop==0.23.0",
        ]
        .map(String::from)
        .to_vec();
        let changes = package_changes(&pinned, &lab);
        let described: Vec<String> = changes.iter().map(PackageChange::describe).collect();
        assert_eq!(
            described,
            [
                "aiohttp 3.13.2 removed",
                "attrs 26.1.0 removed",
                "multidict 6.9.1 → 7.2.1",
                "uvloop 0.23.0 added"
            ]
        );
        assert_eq!(
            describe_changes(&changes, 2),
            "aiohttp 3.13.2 removed, attrs 26.1.0 removed, and 2 more"
        );
        assert!(package_changes(&lab, &lab).is_empty());
        assert!(package_changes(&[], &[]).is_empty());
    }

    #[test]
    fn moments_read_in_one_form_or_are_refused() {
        assert_eq!(
            parse_moment("2025-11-28"),
            Ok("2025-11-28T00:00:00Z".to_string())
        );
        assert_eq!(
            parse_moment(" 2025-11-28T16:06:36.286493Z "),
            Ok("2025-11-28T16:06:36.286493Z".to_string())
        );
        for bad in [
            "yesterday",
            "2025-11-28T16:06:36",
            "2025-11-28T16:06:36+01:00",
            "2025-13-01",
            "2025-11-28T24:00:00Z",
            "1 week",
            "2025-11-28T16:06Z",
            "2025-11-28T16:06:36.Z",
        ] {
            let err = parse_moment(bad).expect_err(bad);
            assert!(err.contains("is not a moment"), "{bad}: {err}");
        }
        assert_eq!(
            DependencyChoice::parse("snapshot"),
            Ok(DependencyChoice::Snapshot)
        );
        assert_eq!(
            DependencyChoice::parse("2025-11-28"),
            Ok(DependencyChoice::AsOf("2025-11-28T00:00:00Z".into()))
        );
        let choice = DependencyChoice::AsOf("2025-11-28T00:00:00Z".into());
        assert_eq!(DependencyChoice::parse(&choice.to_string()), Ok(choice));
    }
}
