//! The `baselines` table: for a label, the run new runs of that label are
//! compared against; and `label_owners`: who may move it (whoever first
//! ran the label, or the owners an admin named).

use super::{with_pool, Result, Store, StoreError};
use crate::clock::now_ms;

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
        .bind(now_ms())
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

    /// Makes `launcher` the owner of `label` when the label has none yet
    /// and `launcher` is an account (a user, or `token:NAME` of a live
    /// token): called once a run of the label finished (FAULTS.md 54).
    /// Queuing a run claims nothing, so a label cannot be squatted by a
    /// run queued and removed; a name that is no longer an account claims
    /// nothing for whoever is given that name later.
    pub async fn claim_label(&self, label: &str, launcher: &str) -> Result<()> {
        if label.trim().is_empty() || launcher.is_empty() {
            return Ok(());
        }
        with_pool!(self, |pool| sqlx::query(
            "INSERT INTO label_owners (label, owner, added_at) \
             SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM label_owners WHERE label = $1) \
             AND (EXISTS (SELECT 1 FROM users WHERE name = $2) \
             OR EXISTS (SELECT 1 FROM api_tokens WHERE 'token:' || name = $2))"
        )
        .bind(label)
        .bind(launcher)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Ends every label ownership of `owner` (its account is gone).
    pub async fn drop_label_ownerships(&self, owner: &str) -> Result<u64> {
        Ok(with_pool!(self, |pool| sqlx::query(
            "DELETE FROM label_owners WHERE owner = $1"
        )
        .bind(owner)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?)
    }

    /// Who owns `label`, by name.
    pub async fn label_owners(&self, label: &str) -> Result<Vec<String>> {
        Ok(with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT owner FROM label_owners WHERE label = $1 ORDER BY owner"
        )
        .bind(label)
        .fetch_all(pool)
        .await)?)
    }

    /// Adds an owner to `label`; returns whether they were not one already.
    pub async fn add_label_owner(&self, label: &str, owner: &str) -> Result<bool> {
        let n = with_pool!(self, |pool| sqlx::query(
            "INSERT INTO label_owners (label, owner, added_at) VALUES ($1, $2, $3) \
             ON CONFLICT (label, owner) DO NOTHING"
        )
        .bind(label)
        .bind(owner)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Removes an owner of `label`; returns whether they were one.
    pub async fn remove_label_owner(&self, label: &str, owner: &str) -> Result<bool> {
        let n = with_pool!(self, |pool| sqlx::query(
            "DELETE FROM label_owners WHERE label = $1 AND owner = $2"
        )
        .bind(label)
        .bind(owner)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }
}
