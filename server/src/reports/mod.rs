//! What a run leaves behind: `samples.csv`, `chart.html`, per-scenario
//! summaries, and a bounded amount of collector data.

pub mod chart;
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

/// Keeps a collector folder within `keep_mib` MiB by deleting its oldest
/// rolled files. The file the collector is writing (`current`) is only
/// removed once the collector has stopped (`finished`), and only when
/// nothing is to be kept.
pub fn trim_collector_dir(dir: &Path, keep_mib: u64, finished: bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(String, u64)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let size = e.metadata().ok().filter(|m| m.is_file())?.len();
            Some((e.file_name().to_string_lossy().into_owned(), size))
        })
        .collect();
    let limit = keep_mib.saturating_mul(1024 * 1024);
    let mut total: u64 = files.iter().map(|(_, size)| size).sum();
    // Rolled files are named `<start>_<end>_<n>`: by name is oldest first.
    files.sort();
    for (name, size) in &files {
        if total <= limit {
            break;
        }
        let in_use = name.starts_with("current");
        if in_use && !(finished && keep_mib == 0) {
            continue;
        }
        if std::fs::remove_file(dir.join(name)).is_ok() {
            total = total.saturating_sub(*size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_dir_is_trimmed_oldest_first_and_keeps_current() {
        let dir = std::env::temp_dir().join(format!("mite-perf-trim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mib = vec![0u8; 1024 * 1024];
        for name in ["100_200_1", "200_300_2", "300_400_3", "current"] {
            std::fs::write(dir.join(name), &mib).expect("write");
        }
        trim_collector_dir(&dir, 2, false);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .expect("read")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["300_400_3", "current"]);
        trim_collector_dir(&dir, 0, true);
        assert_eq!(std::fs::read_dir(&dir).expect("read").count(), 0);
        let _ = std::fs::remove_dir_all(dir);
    }
}
