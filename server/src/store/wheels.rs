//! The `uploaded_wheels` table: mite wheels a CI job uploaded, by SHA-256.
//! The bytes live in the database so that an agent on any host installs
//! exactly what was uploaded; the agent checks the hash again before it
//! installs (a database row is not trusted).

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
}

impl Store {
    /// Keeps `content` as the wheel `sha256` (named `file_name`); whether it
    /// was new. Uploading the same bytes again keeps the first record.
    pub async fn put_wheel(
        &self,
        sha256: &str,
        file_name: &str,
        content: &[u8],
        by: &str,
    ) -> Result<bool> {
        let size = i64::try_from(content.len()).unwrap_or(i64::MAX);
        let rows = with_pool!(self, |pool| sqlx::query(
            "INSERT INTO uploaded_wheels (sha256, file_name, size, content, uploaded_by, \
             uploaded_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sha256) DO NOTHING"
        )
        .bind(sha256)
        .bind(file_name)
        .bind(size)
        .bind(content)
        .bind(by)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(rows == 1)
    }

    /// The record of wheel `sha256`, without its bytes.
    pub async fn wheel(&self, sha256: &str) -> Result<Option<UploadedWheel>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as::<_, UploadedWheel>(
                "SELECT sha256, file_name, size, uploaded_by, uploaded_at FROM uploaded_wheels \
             WHERE sha256 = $1",
            )
            .bind(sha256)
            .fetch_optional(pool)
            .await
        })?)
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
}
