//! The `profiles` table: the folded stacks py-spy sampled of a scenario's
//! processes.

use domain::profile::ProfileView;

use super::{with_pool, Result, Store, StoreError};
use crate::model::ProcessKind;

/// A profile to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProfile {
    pub process: ProcessKind,
    pub pid: u32,
    pub rate: u32,
    pub samples: u64,
    pub mode: String,
    pub problem: Option<String>,
    /// `frame;frame;frame count` lines.
    pub folded: String,
}

#[derive(sqlx::FromRow)]
struct ProfileRow {
    id: i64,
    process: String,
    pid: i64,
    rate: i64,
    samples: i64,
    mode: String,
    problem: Option<String>,
}

impl ProfileRow {
    fn view(self) -> Result<ProfileView> {
        let process = self.process.parse().map_err(|_| {
            StoreError::Invalid(format!("profile {}: process {}", self.id, self.process))
        })?;
        Ok(ProfileView {
            id: self.id,
            process,
            pid: self.pid,
            rate: self.rate,
            samples: self.samples,
            mode: self.mode,
            problem: self.problem,
        })
    }
}

impl Store {
    pub async fn save_profile(&self, scenario_id: i64, profile: &NewProfile) -> Result<i64> {
        let sql = format!(
            "INSERT INTO profiles (scenario_id, process, pid, rate, samples, mode, problem, folded) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE {} RETURNING id",
            super::fence::guard(9, 10)
        );
        let (run, lease) = self.fence_binds();
        let id: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar(&sql)
                .bind(scenario_id)
                .bind(profile.process.as_str())
                .bind(i64::from(profile.pid))
                .bind(i64::from(profile.rate))
                .bind(profile.samples as i64)
                .bind(&profile.mode)
                .bind(&profile.problem)
                .bind(&profile.folded)
                .bind(run)
                .bind(&lease)
                .fetch_optional(pool)
                .await
        })?;
        id.ok_or(super::StoreError::LeaseLost(run.unwrap_or_default()))
    }

    /// A scenario's profiles, without their stacks.
    pub async fn profiles(&self, scenario_id: i64) -> Result<Vec<ProfileView>> {
        let rows: Vec<ProfileRow> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT id, process, pid, rate, samples, mode, problem FROM profiles \
             WHERE scenario_id = $1 ORDER BY id"
        )
        .bind(scenario_id)
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(ProfileRow::view).collect()
    }

    /// One profile's scenario and folded stacks.
    pub async fn profile_stacks(
        &self,
        profile_id: i64,
    ) -> Result<Option<(i64, ProfileView, String)>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            scenario_id: i64,
            folded: String,
            #[sqlx(flatten)]
            profile: ProfileRow,
        }
        let row: Option<Row> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT scenario_id, folded, id, process, pid, rate, samples, mode, problem \
             FROM profiles WHERE id = $1"
        )
        .bind(profile_id)
        .fetch_optional(pool)
        .await)?;
        row.map(|r| Ok((r.scenario_id, r.profile.view()?, r.folded)))
            .transpose()
    }
}
