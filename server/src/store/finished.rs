//! What the trends read: every finished scenario of a run with provenance,
//! with its figures, in one query (a history of thousands of runs is read
//! whole each time the trends are).

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
    started_at: Option<i64>,
    figures: String,
}

impl Store {
    /// Every finished scenario (with figures) of the runs whose label holds
    /// `label` (any case) and that recorded their provenance, oldest run
    /// first.
    pub async fn finished_scenarios(&self, label: &str) -> Result<Vec<FinishedScenario>> {
        let pattern = format!("%{}%", label.to_lowercase());
        let rows: Vec<FinishedRow> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT r.id AS run_id, r.created_at AS run_created_at, r.provenance, \
             s.build_index, s.concurrency, s.started_at, s.figures \
             FROM scenarios s JOIN runs r ON r.id = s.run_id \
             WHERE s.status = 'done' AND s.figures IS NOT NULL \
             AND r.provenance IS NOT NULL AND LOWER(r.label) LIKE $1 \
             ORDER BY r.id, s.position"
        )
        .bind(&pattern)
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|row| {
                Ok(FinishedScenario {
                    run_id: row.run_id,
                    run_created_at: row.run_created_at,
                    provenance: serde_json::from_str(&row.provenance)?,
                    build_index: row.build_index,
                    concurrency: row.concurrency,
                    started_at: row.started_at,
                    figures: serde_json::from_str(&row.figures)?,
                })
            })
            .collect()
    }
}
