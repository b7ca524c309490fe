//! The `trend_marks` table: a series' builds excluded from its fit, and the
//! changes members acknowledged.

use domain::series::MarkKind;

use super::{with_pool, Result, Store, StoreError};
use crate::clock::now_ms;

/// One mark: on which series' build, which kind, by whom and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrendMark {
    pub series_id: String,
    pub build: String,
    pub kind: MarkKind,
    pub marked_by: String,
    pub marked_at: i64,
}

#[derive(sqlx::FromRow)]
struct TrendMarkRow {
    series_id: String,
    build: String,
    kind: String,
    marked_by: String,
    marked_at: i64,
}

impl TryFrom<TrendMarkRow> for TrendMark {
    type Error = StoreError;
    fn try_from(row: TrendMarkRow) -> Result<Self> {
        Ok(TrendMark {
            kind: row.kind.parse().map_err(StoreError::Invalid)?,
            series_id: row.series_id,
            build: row.build,
            marked_by: row.marked_by,
            marked_at: row.marked_at,
        })
    }
}

impl Store {
    /// Marks `build` of series `series_id` (again: the newest mark stays).
    pub async fn set_trend_mark(
        &self,
        series_id: &str,
        build: &str,
        kind: MarkKind,
        by: &str,
    ) -> Result<()> {
        with_pool!(self, |pool| sqlx::query(
            "INSERT INTO trend_marks (series_id, build, kind, marked_by, marked_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (series_id, build, kind) \
             DO UPDATE SET marked_by = excluded.marked_by, marked_at = excluded.marked_at"
        )
        .bind(series_id)
        .bind(build)
        .bind(kind.as_str())
        .bind(by)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Takes a mark back; whether there was one.
    pub async fn clear_trend_mark(
        &self,
        series_id: &str,
        build: &str,
        kind: MarkKind,
    ) -> Result<bool> {
        let rows = with_pool!(self, |pool| sqlx::query(
            "DELETE FROM trend_marks WHERE series_id = $1 AND build = $2 AND kind = $3"
        )
        .bind(series_id)
        .bind(build)
        .bind(kind.as_str())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(rows > 0)
    }

    /// The uploaders whose claimed commits an admin left out of every
    /// fit: claimant → who did.
    pub async fn claimant_exclusions(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let rows: Vec<(String, String)> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT claimant, excluded_by FROM trend_claimant_exclusions ORDER BY claimant"
        )
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().collect())
    }

    /// Leaves every point `claimant` claimed out of every fit (again: the
    /// newest stays); `by` is the admin.
    pub async fn exclude_claimant(&self, claimant: &str, by: &str) -> Result<()> {
        with_pool!(self, |pool| sqlx::query(
            "INSERT INTO trend_claimant_exclusions (claimant, excluded_by, excluded_at) \
             VALUES ($1, $2, $3) ON CONFLICT (claimant) \
             DO UPDATE SET excluded_by = excluded.excluded_by, excluded_at = excluded.excluded_at"
        )
        .bind(claimant)
        .bind(by)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Takes a claimant's exclusion back; whether there was one.
    pub async fn include_claimant(&self, claimant: &str) -> Result<bool> {
        let rows = with_pool!(self, |pool| sqlx::query(
            "DELETE FROM trend_claimant_exclusions WHERE claimant = $1"
        )
        .bind(claimant)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(rows > 0)
    }

    /// Every mark, oldest first.
    pub async fn trend_marks(&self) -> Result<Vec<TrendMark>> {
        let rows: Vec<TrendMarkRow> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT series_id, build, kind, marked_by, marked_at FROM trend_marks \
             ORDER BY marked_at, series_id, build"
        )
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(TrendMark::try_from).collect()
    }
}
