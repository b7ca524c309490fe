//! The `uploaded_wheels` table: mite wheels a CI job uploaded, by SHA-256.
//! The bytes live in the database so that an agent on any host installs
//! exactly what was uploaded; the agent checks the hash again before it
//! installs (a database row is not trusted).
//!
//! A wheel is kept while a queued or running run names it, and otherwise
//! until it has gone unused (neither uploaded again nor named by a launch)
//! for the retention `serve` was given ([`Store::forget_unused_wheels`]).
//! Agents keep a copy of each wheel they installed (its file and venv):
//! [`Store::kept_wheels`] says which they may still need.

use std::collections::HashSet;

use domain::builds::WheelCommit;

use super::{with_pool, Result, Store};
use crate::clock::now_ms;

/// An uploaded wheel as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UploadedWheel {
    pub sha256: String,
    pub file_name: String,
    pub size: i64,
    pub uploaded_by: String,
    pub uploaded_at: i64,
    git_commit: Option<String>,
    git_commit_time: Option<i64>,
    git_parents: Option<String>,
}

impl UploadedWheel {
    /// The commit the uploader named, read again as it was checked when
    /// uploaded (a row that no longer reads as one names none).
    pub fn commit(&self) -> Option<WheelCommit> {
        let commit = self.git_commit.as_deref()?;
        let time = self.git_commit_time?.to_string();
        let parents = self.git_parents.as_deref().unwrap_or_default();
        match WheelCommit::parse(commit, &time, parents) {
            Ok(read) => Some(read),
            Err((field, reason)) => {
                tracing::warn!(sha256 = %self.sha256, "a stored wheel's {field} is unreadable: {reason}");
                None
            }
        }
    }
}

impl Store {
    /// Keeps `content` as the wheel `sha256` (named `file_name`), built
    /// from `commit` if the uploader said; whether it was new. Uploading the
    /// same bytes again keeps the first record (its use is noted first, so
    /// that no sweep of unused wheels takes it meanwhile), and adds a
    /// commit to a record that had none.
    pub async fn put_wheel(
        &self,
        sha256: &str,
        file_name: &str,
        content: &[u8],
        by: &str,
        commit: Option<&WheelCommit>,
    ) -> Result<bool> {
        let size = i64::try_from(content.len()).unwrap_or(i64::MAX);
        let (git_commit, git_commit_time, git_parents) = match commit {
            Some(c) => (
                Some(c.commit.as_str()),
                Some(c.time),
                Some(c.parents_text()),
            ),
            None => (None, None, None),
        };
        let now = now_ms();
        let rows = if self.use_wheel(sha256).await? {
            0
        } else {
            with_pool!(self, |pool| sqlx::query(
                "INSERT INTO uploaded_wheels (sha256, file_name, size, content, uploaded_by, \
                 uploaded_at, git_commit, git_commit_time, git_parents, last_used_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $6) \
                 ON CONFLICT (sha256) DO NOTHING"
            )
            .bind(sha256)
            .bind(file_name)
            .bind(size)
            .bind(content)
            .bind(by)
            .bind(now)
            .bind(git_commit)
            .bind(git_commit_time)
            .bind(&git_parents)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?
        };
        if rows == 0 && git_commit.is_some() {
            with_pool!(self, |pool| sqlx::query(
                "UPDATE uploaded_wheels SET git_commit = $1, git_commit_time = $2, \
                 git_parents = $3 WHERE sha256 = $4 AND git_commit IS NULL"
            )
            .bind(git_commit)
            .bind(git_commit_time)
            .bind(&git_parents)
            .bind(sha256)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        }
        Ok(rows == 1)
    }

    /// The record of wheel `sha256`, without its bytes.
    pub async fn wheel(&self, sha256: &str) -> Result<Option<UploadedWheel>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as::<_, UploadedWheel>(
                "SELECT sha256, file_name, size, uploaded_by, uploaded_at, git_commit, \
                 git_commit_time, git_parents FROM uploaded_wheels WHERE sha256 = $1",
            )
            .bind(sha256)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Who uploaded each wheel that names a commit, by SHA-256 (whose word
    /// the commit is, for runs recorded before their provenance said).
    pub async fn wheel_uploaders(&self) -> Result<std::collections::HashMap<String, String>> {
        let rows: Vec<(String, String)> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT sha256, uploaded_by FROM uploaded_wheels WHERE git_commit IS NOT NULL"
        )
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().collect())
    }

    /// The bytes of wheel `sha256`.
    pub async fn wheel_content(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        Ok(with_pool!(self, |pool| sqlx::query_scalar::<_, Vec<u8>>(
            "SELECT content FROM uploaded_wheels WHERE sha256 = $1"
        )
        .bind(sha256)
        .fetch_optional(pool)
        .await)?)
    }

    /// Notes that wheel `sha256` is used now (uploaded again, or named by
    /// a launch), so that it is kept for the retention from now; whether
    /// the lab has it. A launch asks this before it queues its run: once
    /// queued, the run keeps the wheel.
    pub async fn use_wheel(&self, sha256: &str) -> Result<bool> {
        let rows = with_pool!(self, |pool| sqlx::query(
            "UPDATE uploaded_wheels SET last_used_at = $1 WHERE sha256 = $2"
        )
        .bind(now_ms())
        .bind(sha256)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(rows > 0)
    }

    /// Deletes the wheels last used before `unused_since` (unix ms) that no
    /// queued or running run names; their SHA-256s. A run names its builds
    /// in its parameters (`upload:SHA256`), so a wheel whose hash appears
    /// in a waiting or running run's parameters stays, whatever its age.
    pub async fn forget_unused_wheels(&self, unused_since: i64) -> Result<Vec<String>> {
        let mut forgotten: Vec<String> = with_pool!(self, |pool| sqlx::query_scalar(
            "DELETE FROM uploaded_wheels WHERE last_used_at < $1 AND NOT EXISTS (\
             SELECT 1 FROM runs WHERE runs.status IN ('queued', 'running') \
             AND runs.params LIKE '%' || uploaded_wheels.sha256 || '%') \
             RETURNING sha256"
        )
        .bind(unused_since)
        .fetch_all(pool)
        .await)?;
        forgotten.sort();
        Ok(forgotten)
    }

    /// The SHA-256 of every wheel the lab still keeps: an agent may delete
    /// its copies (the file it placed, the venv it made) of any other,
    /// since no launch may name it any more.
    pub async fn kept_wheels(&self) -> Result<HashSet<String>> {
        let kept: Vec<String> = with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT sha256 FROM uploaded_wheels"
        )
        .fetch_all(pool)
        .await)?;
        Ok(kept.into_iter().collect())
    }

    /// Whether the lab still keeps wheel `sha256` ([`Store::kept_wheels`]).
    pub async fn wheel_kept(&self, sha256: &str) -> Result<bool> {
        let kept: i64 = with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM uploaded_wheels WHERE sha256 = $1"
        )
        .bind(sha256)
        .fetch_one(pool)
        .await)?;
        Ok(kept > 0)
    }
}
