//! mite wheels built from commits of a git repository (`ci check`,
//! `bisect`): each commit checked out in a worktree of its own (the
//! repository's own checkout is never touched), built with `uv build`, and
//! kept by commit so that a commit is built once.

use std::path::{Path, PathBuf};
use std::process::Command;

use domain::builds::WheelCommit;

use super::builds::{run_quietly, InstallError};
use super::data_dir;
use super::source::{commit_time_and_parents, COMMIT_TIME_AND_PARENTS};
use crate::child_env::CleanEnv;

/// A wheel built from a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltWheel {
    pub path: PathBuf,
    /// The commit it was built from: its hash, time and parents.
    pub commit: WheelCommit,
}

#[derive(Debug, thiserror::Error)]
pub enum WheelBuildError {
    #[error("{repo} is not a git repository: {reason}")]
    NotARepo { repo: PathBuf, reason: String },
    #[error("`{reference}` names no commit of {repo}")]
    UnknownRef { repo: PathBuf, reference: String },
    #[error("cannot check out {commit} in a worktree: {source}")]
    Worktree {
        commit: String,
        source: InstallError,
    },
    #[error("cannot build a wheel of {commit}: {source}")]
    Build {
        commit: String,
        source: InstallError,
    },
    #[error("building {commit} left no wheel in {dir}")]
    NoWheel { commit: String, dir: PathBuf },
    #[error("cannot read the time and parents of {commit}: {reason}")]
    CommitFacts { commit: String, reason: String },
    #[error("cannot use {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl WheelBuildError {
    /// Whether the repository or the reference was named wrong (the
    /// caller's mistake), rather than the build failing.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            WheelBuildError::NotARepo { .. } | WheelBuildError::UnknownRef { .. }
        )
    }
}

/// The `uv` to build with: scripts/setup's, else the one on `PATH`.
pub fn default_uv() -> PathBuf {
    let ours = data_dir().join("tools/bin/uv");
    if ours.is_file() {
        ours
    } else {
        PathBuf::from("uv")
    }
}

/// Where built wheels are kept by default: `$XDG_CACHE_HOME/mite-perf/wheels`.
pub fn default_wheel_cache() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("mite-perf/wheels")
}

fn git(repo: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("git")
        .installer_env()
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}

/// The full commit `reference` names in `repo`.
pub fn resolve_commit(repo: &Path, reference: &str) -> Result<String, WheelBuildError> {
    git(repo, &["rev-parse", "--git-dir"]).map_err(|reason| WheelBuildError::NotARepo {
        repo: repo.to_path_buf(),
        reason,
    })?;
    // `--end-of-options`: a reference that starts with `-` is a name, not
    // an option of git's.
    git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &format!("{reference}^{{commit}}"),
        ],
    )
    .ok()
    .filter(|c| c.len() == 40)
    .ok_or_else(|| WheelBuildError::UnknownRef {
        repo: repo.to_path_buf(),
        reference: reference.to_string(),
    })
}

/// Commit `commit` of `repo`: its time and parents, as a wheel uploaded
/// from it names them.
pub fn commit_facts(repo: &Path, commit: &str) -> Result<WheelCommit, WheelBuildError> {
    let unreadable = |reason: String| WheelBuildError::CommitFacts {
        commit: commit.to_string(),
        reason,
    };
    let line = git(repo, &["show", "-s", COMMIT_TIME_AND_PARENTS, commit]).map_err(unreadable)?;
    let (time, parents) = commit_time_and_parents(&line);
    let time = time.ok_or_else(|| unreadable(format!("git said `{line}`")))?;
    WheelCommit::parse(commit, &time.to_string(), &parents.join(" "))
        .map_err(|(_, reason)| unreadable(reason))
}

/// `good` and the first-parent commits after it up to and including
/// `bad`, oldest first: (commit, subject). `good` must be an ancestor of `bad`.
pub fn first_parent_range(
    repo: &Path,
    good: &str,
    bad: &str,
) -> Result<Vec<(String, String)>, WheelBuildError> {
    let good = resolve_commit(repo, good)?;
    let bad = resolve_commit(repo, bad)?;
    let not_ancestor = || WheelBuildError::UnknownRef {
        repo: repo.to_path_buf(),
        reference: format!("{good}..{bad} (good must be an ancestor of bad)"),
    };
    git(repo, &["merge-base", "--is-ancestor", &good, &bad]).map_err(|_| not_ancestor())?;
    let subject =
        |commit: &str| git(repo, &["show", "-s", "--format=%s", commit]).unwrap_or_default();
    let listed = git(
        repo,
        &[
            "log",
            "--first-parent",
            "--reverse",
            "--format=%H%x1f%s",
            &format!("{good}..{bad}"),
        ],
    )
    .map_err(|_| not_ancestor())?;
    let mut range = vec![(good.clone(), subject(&good))];
    range.extend(listed.lines().filter_map(|line| {
        let (commit, subject) = line.split_once('\u{1f}')?;
        Some((commit.to_string(), subject.to_string()))
    }));
    Ok(range)
}

/// The wheel already built from `commit` in `cache`, if any.
fn cached(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
}

/// Builds (or finds, built before) the wheel of `commit` of `repo`, kept
/// in `cache/COMMIT/`.
pub async fn build_wheel(
    repo: &Path,
    commit: &str,
    cache: &Path,
    uv: &Path,
) -> Result<BuiltWheel, WheelBuildError> {
    let folder = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WheelBuildError::Folder { path, source }
    };
    let facts = commit_facts(repo, commit)?;
    let out = cache.join(commit);
    if let Some(path) = cached(&out) {
        return Ok(BuiltWheel {
            path,
            commit: facts,
        });
    }
    std::fs::create_dir_all(cache).map_err(folder(cache))?;
    let source = cache.join(format!(".src-{commit}-{}", std::process::id()));
    let partial = cache.join(format!(".out-{commit}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let mut add = tokio::process::Command::new("git");
    add.arg("-C")
        .arg(repo)
        .args(["worktree", "add", "--detach", "--force"])
        .arg(&source)
        .arg(commit);
    run_quietly(add)
        .await
        .map_err(|source| WheelBuildError::Worktree {
            commit: commit.to_string(),
            source,
        })?;
    let mut build = tokio::process::Command::new(uv);
    build
        .args(["build", "--wheel", "--out-dir"])
        .arg(&partial)
        .arg(&source);
    let built = run_quietly(build).await;
    // The worktree goes whatever happened; the repository forgets it.
    let mut remove = tokio::process::Command::new("git");
    remove
        .arg("-C")
        .arg(repo)
        .args(["worktree", "remove", "--force"])
        .arg(&source);
    if let Err(e) = run_quietly(remove).await {
        tracing::warn!("cannot remove the worktree {}: {e}", source.display());
    }
    built.map_err(|source| WheelBuildError::Build {
        commit: commit.to_string(),
        source,
    })?;
    let wheel = cached(&partial).ok_or_else(|| WheelBuildError::NoWheel {
        commit: commit.to_string(),
        dir: partial.clone(),
    })?;
    let name = wheel.file_name().map(PathBuf::from).unwrap_or_default();
    std::fs::create_dir_all(&out).map_err(folder(&out))?;
    let path = out.join(name);
    std::fs::rename(&wheel, &path).map_err(folder(&path))?;
    let _ = std::fs::remove_dir_all(&partial);
    Ok(BuiltWheel {
        path,
        commit: facts,
    })
}
