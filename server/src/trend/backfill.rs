//! A fresh lab's release history in one command (`trend --backfill
//! 2.0.0..2.11.0`): one queued run per PyPI release in the range, oldest
//! first, each measuring that release alone, so that the trends show
//! mite's performance across its releases on this lab's machines.

use domain::builds::MiteBuild;
use domain::series::ReleaseRange;

use crate::mite_env::pypi::{mite_versions, PypiError};
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

/// The releases in `range` (`2.0.0..2.11.0`), from PyPI, oldest first;
/// more than `max` are refused.
pub async fn releases(range: &str, max: usize) -> Result<Vec<String>, BackfillError> {
    let parsed: ReleaseRange = range.parse().map_err(BackfillError::Range)?;
    let versions = parsed.releases_in(&mite_versions().await?);
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

/// Queues one run of `template` per version, oldest first, launched by
/// `by`: the queued runs' (version, id). All or none: when the queue cannot
/// hold them all, none is queued.
pub async fn queue_releases(
    store: &Store,
    versions: &[String],
    template: &RunParams,
    by: &str,
    queue_limit: i64,
    share: Option<i64>,
) -> Result<Vec<(String, i64)>, BackfillError> {
    let runs: Vec<(String, RunParams)> = versions
        .iter()
        .map(|version| {
            let mut params = template.clone();
            params.mite = vec![MiteBuild::Version(version.clone())];
            params.launched_by = by.to_string();
            (version.clone(), params)
        })
        .collect();
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
