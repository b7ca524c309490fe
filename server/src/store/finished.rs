//! What the trends read: every finished scenario of a run with provenance,
//! with its figures, in one query (a history of thousands of runs is read
//! whole when the trends are computed), and a cheap stamp of that history
//! the lab keeps its computed series by ([`TrendVersion`]).

use domain::provenance::Provenance;

use super::{with_pool, Result, Store};
use crate::figures::ScenarioFigures;

/// A finished scenario with what its run measured.
#[derive(Debug, Clone)]
pub struct FinishedScenario {
    pub run_id: i64,
    pub run_created_at: i64,
    pub provenance: Provenance,
    pub build_index: i64,
    pub concurrency: i64,
    pub started_at: Option<i64>,
    pub figures: ScenarioFigures,
}

#[derive(sqlx::FromRow)]
struct FinishedRow {
    run_id: i64,
    run_created_at: i64,
    provenance: String,
    build_index: i64,
    concurrency: i64,
    requests: Option<i64>,
    started_at: Option<i64>,
    figures: String,
}

/// A stamp of what the trends read: the finished scenarios and the marks
/// on series (how many, and the latest time of each). Two equal stamps
/// read the same series, so computed ones can be kept until it changes: a
/// scenario finishes, a mark is set or taken back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct TrendVersion {
    scenarios: i64,
    scenarios_at: i64,
    marks: i64,
    marks_at: i64,
    exclusions: i64,
    exclusions_at: i64,
}

impl Store {
    /// The history's stamp: a few counts and maxima, no figure read or parsed.
    pub async fn trend_version(&self) -> Result<TrendVersion> {
        Ok(with_pool!(self, |pool| sqlx::query_as(
            "SELECT \
             (SELECT COUNT(*) FROM scenarios WHERE status = 'done' AND figures IS NOT NULL) \
             AS scenarios, \
             (SELECT COALESCE(MAX(ended_at), 0) FROM scenarios WHERE status = 'done') \
             AS scenarios_at, \
             (SELECT COUNT(*) FROM trend_marks) AS marks, \
             (SELECT COALESCE(MAX(marked_at), 0) FROM trend_marks) AS marks_at, \
             (SELECT COUNT(*) FROM trend_claimant_exclusions) AS exclusions, \
             (SELECT COALESCE(MAX(excluded_at), 0) FROM trend_claimant_exclusions) \
             AS exclusions_at"
        )
        .fetch_one(pool)
        .await)?)
    }

    /// Every finished scenario (with figures) of the runs whose label holds
    /// `label` (any case) and that recorded their provenance, oldest run
    /// first.
    pub async fn finished_scenarios(&self, label: &str) -> Result<Vec<FinishedScenario>> {
        let pattern = format!("%{}%", label.to_lowercase());
        let rows: Vec<FinishedRow> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT r.id AS run_id, r.created_at AS run_created_at, r.provenance, \
             s.build_index, s.concurrency, s.requests, s.started_at, s.figures \
             FROM scenarios s JOIN runs r ON r.id = s.run_id \
             WHERE s.status = 'done' AND s.figures IS NOT NULL \
             AND r.provenance IS NOT NULL AND LOWER(r.label) LIKE $1 \
             ORDER BY r.id, s.position"
        )
        .bind(&pattern)
        .fetch_all(pool)
        .await)?;
        let mut finished = Vec::with_capacity(rows.len());
        for row in rows {
            let provenance: Provenance = serde_json::from_str(&row.provenance)?;
            // The first of a Valgrind pair only gave the second its figures.
            if provenance.is_half_of_pair(row.requests) {
                continue;
            }
            finished.push(FinishedScenario {
                run_id: row.run_id,
                run_created_at: row.run_created_at,
                provenance,
                build_index: row.build_index,
                concurrency: row.concurrency,
                started_at: row.started_at,
                figures: serde_json::from_str(&row.figures)?,
            });
        }
        Ok(finished)
    }
}
