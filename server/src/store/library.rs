//! The `library_scenarios` table: the scenarios each agent found in its
//! `--scenario-dir` folders.

use domain::library::{LibraryScenario, VolumeShape};

use super::{with_pool, Result, Store, StoreError};
use crate::clock::now_ms;

#[derive(sqlx::FromRow)]
struct LibraryRow {
    agent: String,
    spec: String,
    doc: String,
    function_doc: String,
    shapes: String,
    problem: Option<String>,
}

impl LibraryRow {
    /// Read back with its JSON checked: stored text is not trusted.
    fn scenario(self) -> Result<LibraryScenario> {
        let shapes: Vec<VolumeShape> = serde_json::from_str(&self.shapes)
            .map_err(|e| StoreError::Invalid(format!("the shapes of {}: {e}", self.spec)))?;
        Ok(LibraryScenario {
            agent: self.agent,
            spec: self.spec,
            doc: self.doc,
            function_doc: self.function_doc,
            shapes,
            problem: self.problem,
        })
    }
}

impl Store {
    /// Replaces what agent `agent` lists, in one transaction.
    pub async fn replace_library(&self, agent: &str, scenarios: &[LibraryScenario]) -> Result<()> {
        let now = now_ms();
        let rows: Vec<(&LibraryScenario, String)> = scenarios
            .iter()
            .map(|s| Ok((s, serde_json::to_string(&s.shapes)?)))
            .collect::<Result<_>>()?;
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM library_scenarios WHERE agent = $1")
                .bind(agent)
                .execute(&mut *tx)
                .await?;
            for (s, shapes) in &rows {
                sqlx::query(
                    "INSERT INTO library_scenarios (agent, spec, doc, function_doc, shapes, \
                     problem, found_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(agent)
                .bind(&s.spec)
                .bind(&s.doc)
                .bind(&s.function_doc)
                .bind(shapes)
                .bind(&s.problem)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The scenarios of every agent that has not stopped, by agent and name.
    pub async fn library(&self) -> Result<Vec<LibraryScenario>> {
        let rows: Vec<LibraryRow> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT l.agent, l.spec, l.doc, l.function_doc, l.shapes, l.problem \
             FROM library_scenarios l JOIN agents a ON a.name = l.agent \
             WHERE a.stopped_at IS NULL ORDER BY l.agent, l.spec"
        )
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(LibraryRow::scenario).collect()
    }
}
