//! The `activity` table: who did what, when and from where (sign-ins and
//! failed ones, launches, cancels, removals, cleanups, account and token
//! changes). Written next to the change it records; never read back by the
//! lab to decide anything.

use super::{with_pool, Result, Store};
use crate::clock::now_ms;

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

/// The longest text an entry keeps in each field: what a request names
/// (a typed user name, a label) is cut there, so the log cannot be made
/// to grow by a request's size.
pub const MAX_ACTIVITY_FIELD: usize = 200;

/// `text` cut to [`MAX_ACTIVITY_FIELD`] characters (marked with `…`).
pub fn bounded_field(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_ACTIVITY_FIELD) {
        None => text.into(),
        Some((end, _)) => format!("{}…", &text[..end]).into(),
    }
}

impl Store {
    /// Records an entry, each field cut to [`MAX_ACTIVITY_FIELD`] characters.
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
        .bind(now_ms())
        .bind(bounded_field(actor))
        .bind(bounded_field(action))
        .bind(bounded_field(subject))
        .bind(bounded_field(source))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_cut_at_their_bound() {
        assert_eq!(bounded_field("run 7"), "run 7");
        let long = "é".repeat(MAX_ACTIVITY_FIELD + 10);
        let cut = bounded_field(&long);
        assert_eq!(cut.chars().count(), MAX_ACTIVITY_FIELD + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(
            bounded_field(&long[..2 * MAX_ACTIVITY_FIELD]),
            long[..2 * MAX_ACTIVITY_FIELD]
        );
    }
}
