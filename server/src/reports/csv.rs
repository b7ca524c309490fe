//! `samples.csv`: the original script's columns first
//! (`elapsed,process,cpu,mem,scenario,requests`), then the lab's own.

use std::io::Write;
use std::path::Path;

use futures_util::StreamExt;

use super::ReportError;
use crate::store::{SampleRow, Store};

/// The header line (with its newline).
pub const HEADER: &str =
    "elapsed,process,cpu,mem,scenario,requests,requests_in_interval,timestamp,pid,concurrency\n";

/// One CSV line (with its newline). `elapsed` is seconds since the
/// scenario's controller started; `cpu` is percent of one core; `mem` is RSS
/// in bytes; `requests` is the target's count since the scenario started and
/// `requests_in_interval` the requests served since the previous sample,
/// both on the `http` rows only; `timestamp` is unix seconds.
pub fn line(row: &SampleRow) -> String {
    let s = &row.sample;
    let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    format!(
        "{:.3},{},{:.2},{},{},{},{},{:.3},{},{}\n",
        s.elapsed_ms as f64 / 1000.0,
        s.process,
        s.cpu,
        s.mem,
        row.scenario,
        opt(s.requests),
        opt(s.requests_in_interval),
        s.at_ms as f64 / 1000.0,
        s.pid,
        row.concurrency
    )
}

/// Streams a run's samples from the store into a file.
pub async fn write_file(store: &Store, run_id: i64, path: &Path) -> Result<u64, ReportError> {
    let write_err = |source| ReportError::Write {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::create(path).map_err(write_err)?;
    let mut out = std::io::BufWriter::new(file);
    out.write_all(HEADER.as_bytes()).map_err(write_err)?;
    let mut rows = store.run_samples(run_id);
    let mut count = 0;
    while let Some(row) = rows.next().await {
        out.write_all(line(&row?).as_bytes()).map_err(write_err)?;
        count += 1;
    }
    out.flush().map_err(write_err)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProcessKind;
    use crate::model::Sample;

    #[test]
    fn line_has_original_columns_first() {
        let row = SampleRow {
            scenario: "scenario10".into(),
            concurrency: 10,
            sample: Sample {
                process: ProcessKind::Http,
                pid: 7,
                at_ms: 1_700_000_000_250,
                elapsed_ms: 2500,
                cpu: 12.345,
                mem: 1048576,
                requests: Some(9000),
                requests_in_interval: Some(3000),
            },
        };
        assert_eq!(
            line(&row),
            "2.500,http,12.35,1048576,scenario10,9000,3000,1700000000.250,7,10\n"
        );
        assert!(HEADER.starts_with("elapsed,process,cpu,mem,scenario,requests,"));
    }
}
