//! What a run leaves behind: `samples.csv`, `chart.html`, per-scenario
//! summaries, and a bounded amount of collector data.

pub mod chart;
pub mod collector;
pub mod csv;
pub mod transactions;

use std::path::Path;

use crate::model::RunStatus;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot encode the chart: {0}")]
    Chart(#[from] serde_json::Error),
}

/// A report's error as the pages and downloads see it: the database's
/// keeps its kind (503 while it is unavailable).
impl From<ReportError> for app::api::LabError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::Store(e) => e.into(),
            other => {
                tracing::error!("{other}");
                app::api::LabError::Internal(other.to_string())
            }
        }
    }
}

/// Where a report is written before it is renamed into place.
fn partial_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// Writes `samples.csv`, `transactions.csv` and `chart.html` for a run into `dir`, from the
/// store; `status`, when given, is the run's status to show.
pub async fn write_run_outputs(
    store: &Store,
    run_id: i64,
    status: Option<RunStatus>,
    dir: &Path,
) -> Result<(), ReportError> {
    csv::write_file(store, run_id, &dir.join("samples.csv")).await?;
    transactions::write_file(store, run_id, &dir.join("transactions.csv")).await?;
    chart::write_file(store, run_id, status, &dir.join("chart.html")).await?;
    Ok(())
}
