//! The `activity` table: who did what, when and from where (sign-ins and
//! failed ones, launches, cancels, removals, cleanups, account and token
//! changes). Written next to the change it records; never read back by the
//! lab to decide anything.

use super::{with_pool, Result, Store};

/// One thing someone did.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActivityRecord {
    pub id: i64,
    pub at: i64,
    /// Who: a user's name, `token:NAME`, or what the command line ran as.
    pub actor: String,
    /// What, in a word or two: `sign-in`, `launch`, `user add`.
    pub action: String,
    /// To what: `run 7`, `user ana`.
    pub subject: String,
    /// From where: the client's address, or `command line`.
    pub source: String,
}

impl Store {
    pub async fn record_activity(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        source: &str,
    ) -> Result<()> {
        with_pool!(self, |pool| sqlx::query(
            "INSERT INTO activity (at, actor, action, subject, source) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(super::now_ms())
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(source)
        .execute(pool)
        .await
        .map(drop))?;
        Ok(())
    }

    /// The latest `limit` entries before entry `before` (all when `None`), newest first.
    pub async fn activity(&self, before: Option<i64>, limit: i64) -> Result<Vec<ActivityRecord>> {
        let rows = with_pool!(self, |pool| sqlx::query_as(
            "SELECT id, at, actor, action, subject, source FROM activity \
             WHERE $1 < 0 OR id < $1 ORDER BY id DESC LIMIT $2"
        )
        .bind(before.unwrap_or(-1))
        .bind(limit)
        .fetch_all(pool)
        .await)?;
        Ok(rows)
    }
}
