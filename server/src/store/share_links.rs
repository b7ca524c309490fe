//! The `share_links` table: read-only links to one run, with an expiry,
//! revocable. Only a link's SHA-256 is kept.

use super::{with_pool, Result, Store};
use crate::clock::now_ms;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ShareLinkRecord {
    pub id: i64,
    pub run_id: i64,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

impl ShareLinkRecord {
    /// Whether the link opens its run at `now` (ms).
    pub fn is_valid(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// The most links of a run a page lists.
pub const MAX_LISTED_LINKS: i64 = 200;

const LINK_COLUMNS: &str = "id, run_id, created_by, created_at, expires_at, revoked_at";

impl Store {
    pub async fn create_share_link(
        &self,
        run_id: i64,
        token_hash: &str,
        created_by: &str,
        expires_at: i64,
    ) -> Result<i64> {
        let id = with_pool!(self, |pool| sqlx::query_scalar(
            "INSERT INTO share_links (run_id, token_hash, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id"
        )
        .bind(run_id)
        .bind(token_hash)
        .bind(created_by)
        .bind(now_ms())
        .bind(expires_at)
        .fetch_one(pool)
        .await)?;
        Ok(id)
    }

    /// The link with this secret's hash, valid or not.
    pub async fn share_link_by_hash(&self, token_hash: &str) -> Result<Option<ShareLinkRecord>> {
        let sql = format!("SELECT {LINK_COLUMNS} FROM share_links WHERE token_hash = $1");
        Ok(with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(token_hash)
            .fetch_optional(pool)
            .await)?)
    }

    pub async fn share_link(&self, id: i64) -> Result<Option<ShareLinkRecord>> {
        let sql = format!("SELECT {LINK_COLUMNS} FROM share_links WHERE id = $1");
        Ok(with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?)
    }

    /// A run's links, newest first (the latest [`MAX_LISTED_LINKS`]).
    pub async fn share_links(&self, run_id: i64) -> Result<Vec<ShareLinkRecord>> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM share_links WHERE run_id = $1 ORDER BY id DESC \
             LIMIT {MAX_LISTED_LINKS}"
        );
        Ok(with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(run_id)
            .fetch_all(pool)
            .await)?)
    }

    /// Revokes a link; returns whether it was still open.
    pub async fn revoke_share_link(&self, id: i64) -> Result<bool> {
        let done = with_pool!(self, |pool| sqlx::query(
            "UPDATE share_links SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL"
        )
        .bind(id)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Revokes the open links `maker` made (a user removed, a token
    /// revoked: their links die with them); how many.
    pub async fn revoke_share_links_by(&self, maker: &str) -> Result<u64> {
        Ok(with_pool!(self, |pool| sqlx::query(
            "UPDATE share_links SET revoked_at = $2 WHERE created_by = $1 AND revoked_at IS NULL"
        )
        .bind(maker)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?)
    }
}
