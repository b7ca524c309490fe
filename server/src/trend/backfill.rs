//! A fresh lab's release history in one command (`trend --backfill
//! 2.0.0..2.11.0`): one queued run per PyPI release in the range, oldest
//! first, each measuring that release alone, so that the trends show
//! mite's performance across its releases on this lab's machines. Each
//! release's dependencies are resolved either as the index was when it
//! came out (uv's `--exclude-newer` at its upload time: the release as its
//! users had it) or all from the agent's one snapshot (the releases alike:
//! only mite differs), and the backfill says which.

use domain::builds::MiteBuild;
use domain::dependencies::{parse_moment, DependencyChoice};
use domain::series::ReleaseRange;

use crate::mite_env::pypi::{mite_releases, PypiError, Release};
use crate::model::{RunParams, RunStatus};
use crate::store::{Store, StoreError};

/// The most runs one backfill from the command line queues (the lab's
/// queue holds 100).
pub const MAX_RELEASES: usize = 50;
/// The most runs one click on /trends queues: a viewer's runner cannot
/// fill the lab's queue in one click (FAULTS.md 57).
pub const MAX_RELEASES_PER_CLICK: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("{0}")]
    Range(String),
    #[error(transparent)]
    Pypi(#[from] PypiError),
    #[error("PyPI has no mite release in {0}")]
    NoRelease(String),
    #[error(
        "the index does not say when mite {version} was uploaded, so its dependencies cannot \
         be resolved as of its release: backfill with `--dependencies snapshot`"
    )]
    NoReleaseDate { version: String },
    #[error("{count} releases in {range}: at most {max} at a time (split the range)")]
    TooMany {
        range: String,
        count: usize,
        max: usize,
    },
    #[error("the runs are not valid: {0}")]
    Invalid(String),
    #[error("the queue has room for {room} more runs, and {wanted} were asked for: try again when some have run")]
    QueueFull { room: i64, wanted: usize },
    #[error(
        "{by} may have {share} runs waiting in the queue and has room for {room} more, and \
         {wanted} were asked for: try again when some have run"
    )]
    ShareFull {
        by: String,
        share: i64,
        room: i64,
        wanted: usize,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a backfill resolves each release's dependencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BackfillDependencies {
    // All from the agent's dependency snapshot: every release with the
    // same packages where their requirements allow, so that a step is
    // mite's. (Plain comments: clap would print doc comments as each
    // value's help, and the whole command's help in its long form.)
    #[default]
    Snapshot,
    // Each as the index was when that release was uploaded: what its users
    // ran it with (a step may then be a dependency's).
    ReleaseDate,
}

impl BackfillDependencies {
    /// What the backfill says of it.
    pub fn describe(self) -> &'static str {
        match self {
            BackfillDependencies::Snapshot => {
                "every release's dependencies from the agent's one snapshot (alike: only mite \
                 differs)"
            }
            BackfillDependencies::ReleaseDate => {
                "each release's dependencies as the index was on its release date (uv's \
                 --exclude-newer)"
            }
        }
    }
}

/// What each release is measured with by default: 10 and 100 journeys,
/// 30 s, three repeats, labelled `releases` (`trend --backfill` changes
/// them; the form on /trends takes them as they are).
pub fn template() -> RunParams {
    RunParams {
        label: "releases".into(),
        concurrencies: vec![10, 100],
        duration_ms: 30_000,
        repeats: 3,
        ..RunParams::default()
    }
}

/// The releases in `range` (`2.0.0..2.11.0`), from PyPI, oldest first,
/// with when each was uploaded; more than `max` are refused.
pub async fn releases(range: &str, max: usize) -> Result<Vec<Release>, BackfillError> {
    let parsed: ReleaseRange = range.parse().map_err(BackfillError::Range)?;
    let all = mite_releases().await?;
    let names: Vec<String> = all.iter().map(|r| r.version.clone()).collect();
    let versions: Vec<Release> = parsed
        .releases_in(&names)
        .into_iter()
        .filter_map(|v| all.iter().find(|r| r.version == v).cloned())
        .collect();
    if versions.is_empty() {
        return Err(BackfillError::NoRelease(range.trim().to_string()));
    }
    if versions.len() > max {
        return Err(BackfillError::TooMany {
            range: range.trim().to_string(),
            count: versions.len(),
            max,
        });
    }
    Ok(versions)
}

/// The runs of a backfill: `template` for each release, its dependencies
/// resolved as `dependencies` says; a release whose upload time the index
/// does not give (or gives in a form not read) cannot be had as of it.
pub fn release_runs(
    releases: &[Release],
    template: &RunParams,
    dependencies: BackfillDependencies,
    by: &str,
) -> Result<Vec<(String, RunParams)>, BackfillError> {
    releases
        .iter()
        .map(|release| {
            let mut params = template.clone();
            params.mite = vec![MiteBuild::Version(release.version.clone())];
            params.launched_by = by.to_string();
            params.dependencies = match dependencies {
                BackfillDependencies::Snapshot => DependencyChoice::Snapshot,
                BackfillDependencies::ReleaseDate => {
                    let moment = release
                        .uploaded_at
                        .as_deref()
                        .and_then(|at| parse_moment(at).ok())
                        .ok_or_else(|| BackfillError::NoReleaseDate {
                            version: release.version.clone(),
                        })?;
                    DependencyChoice::AsOf(moment)
                }
            };
            Ok((release.version.clone(), params))
        })
        .collect()
}

/// Queues one run of `template` per release, oldest first, launched by
/// `by`, its dependencies resolved as `dependencies` says: the queued
/// runs' (version, id). All or none: when the queue cannot hold them all,
/// none is queued.
pub async fn queue_releases(
    store: &Store,
    releases: &[Release],
    template: &RunParams,
    dependencies: BackfillDependencies,
    by: &str,
    queue_limit: i64,
    share: Option<i64>,
) -> Result<Vec<(String, i64)>, BackfillError> {
    let runs = release_runs(releases, template, dependencies, by)?;
    if let Some((version, errors)) = runs
        .iter()
        .map(|(v, p)| (v, p.validate()))
        .find(|(_, errors)| !errors.is_empty())
    {
        let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(BackfillError::Invalid(format!(
            "{version}: {}",
            listed.join("; ")
        )));
    }
    let room = queue_limit - store.queued_count().await?;
    if room < runs.len() as i64 {
        return Err(BackfillError::QueueFull {
            room: room.max(0),
            wanted: runs.len(),
        });
    }
    if let Some(share) = share {
        let room = share - store.queued_count_by(by).await?;
        if room < runs.len() as i64 {
            return Err(BackfillError::ShareFull {
                by: by.to_string(),
                share,
                room: room.max(0),
                wanted: runs.len(),
            });
        }
    }
    let mut queued = Vec::with_capacity(runs.len());
    for (version, params) in runs {
        let id = store.create_run(&params, RunStatus::Queued).await?;
        queued.push((version, id));
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backfill_resolves_each_release_as_of_its_date_or_all_alike() {
        let releases = [
            Release {
                version: "2.7.0".into(),
                uploaded_at: Some("2025-11-28T16:06:36.286493Z".into()),
            },
            Release {
                version: "2.11.0".into(),
                uploaded_at: Some("2026-10-19T10:17:14Z".into()),
            },
        ];
        let dated = release_runs(
            &releases,
            &template(),
            BackfillDependencies::ReleaseDate,
            "ann",
        )
        .expect("dated");
        let choices: Vec<&DependencyChoice> = dated.iter().map(|(_, p)| &p.dependencies).collect();
        assert_eq!(
            choices,
            [
                &DependencyChoice::AsOf("2025-11-28T16:06:36.286493Z".into()),
                &DependencyChoice::AsOf("2026-10-19T10:17:14Z".into())
            ]
        );
        assert!(dated.iter().all(|(_, p)| p.validate().is_empty()));
        let alike = release_runs(
            &releases,
            &template(),
            BackfillDependencies::Snapshot,
            "ann",
        )
        .expect("alike");
        assert!(alike
            .iter()
            .all(|(_, p)| p.dependencies == DependencyChoice::Snapshot));
        // A mirror that does not say when a release came out: refused, by
        // name, not measured with today's packages.
        let undated = [Release {
            version: "2.8.0".into(),
            uploaded_at: None,
        }];
        let err = release_runs(
            &undated,
            &template(),
            BackfillDependencies::ReleaseDate,
            "ann",
        )
        .expect_err("no date");
        assert!(err.to_string().contains("mite 2.8.0 was uploaded"), "{err}");
        assert!(release_runs(&undated, &template(), BackfillDependencies::Snapshot, "ann").is_ok());
    }
}
