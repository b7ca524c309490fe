//! The `baselines` table: for a label, the run new runs of that label are
//! compared against.

use super::{with_pool, Result, Store, StoreError};

impl Store {
    /// Makes run `run_id` the baseline of its label; returns the label.
    /// A run without a label, or one that did not finish, cannot be one.
    pub async fn mark_baseline(&self, run_id: i64) -> Result<String> {
        let Some(run) = self.run(run_id).await? else {
            return Err(StoreError::Invalid(format!("there is no run {run_id}")));
        };
        if run.label.trim().is_empty() {
            return Err(StoreError::Invalid(format!(
                "run {run_id} has no label: a baseline is the baseline of a label"
            )));
        }
        if run.status != crate::model::RunStatus::Done {
            return Err(StoreError::Invalid(format!(
                "run {run_id} is {}: only a run whose scenarios all finished can be a baseline",
                run.status
            )));
        }
        if run.params.builds().len() > 1 {
            return Err(StoreError::Invalid(format!(
                "run {run_id} measured {} mite builds: a baseline is a run of one build",
                run.params.builds().len()
            )));
        }
        with_pool!(self, |pool| sqlx::query(
            "INSERT INTO baselines (label, run_id, marked_at) VALUES ($1, $2, $3) \
             ON CONFLICT (label) DO UPDATE SET run_id = excluded.run_id, \
             marked_at = excluded.marked_at",
        )
        .bind(&run.label)
        .bind(run_id)
        .bind(super::now_ms())
        .execute(pool)
        .await
        .map(drop))?;
        Ok(run.label)
    }

    /// The baseline run of `label`, if it has one.
    pub async fn baseline_of(&self, label: &str) -> Result<Option<i64>> {
        let id: Option<i64> = with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT run_id FROM baselines WHERE label = $1"
        )
        .bind(label)
        .fetch_optional(pool)
        .await)?;
        Ok(id)
    }

    /// Removes the baseline of `label`; returns whether it had one.
    pub async fn clear_baseline(&self, label: &str) -> Result<bool> {
        let n = with_pool!(self, |pool| sqlx::query(
            "DELETE FROM baselines WHERE label = $1"
        )
        .bind(label)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }
}
