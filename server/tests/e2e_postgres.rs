//! END-TO-END: a real `mite-perf run` storing into a PostgreSQL server the
//! test starts on a loopback port (Debian's `postgresql`, which
//! scripts/setup installs). The store itself is tested on both backends in
//! `store.rs`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::TryStreamExt;

use common::{Postgres, BIN};
use mite_perf::model::RunStatus;
use mite_perf::store::{SampleRow, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_cli_run_stores_in_postgres() {
    let pg = Postgres::start();
    let dir = std::env::temp_dir().join(format!("mite-perf-pg-run-{}", pg.port));
    std::fs::create_dir_all(&dir).expect("folder");
    let out = Command::new(BIN)
        .args([
            "run",
            "--scenarios",
            "1",
            "--duration",
            "3s",
            "--output-dir",
        ])
        .arg(dir.join("output"))
        .args(["--database-url", &pg.url()])
        .stdin(Stdio::null())
        .output()
        .expect("mite-perf run");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let store = Store::connect(&pg.url()).await.expect("connect");
    let run = store.run(1).await.expect("query").expect("run 1");
    assert_eq!(run.status, RunStatus::Done);
    let rows: Vec<SampleRow> = store.run_samples(1).try_collect().await.expect("rows");
    let csv_path = text
        .lines()
        .find_map(|l| l.strip_prefix("samples: "))
        .map(|p| Path::new(p.trim()).to_path_buf())
        .expect("the CSV path");
    let csv = std::fs::read_to_string(csv_path).expect("samples.csv");
    assert_eq!(csv.lines().count() - 1, rows.len());
    assert!(rows.iter().any(|r| r.sample.requests.unwrap_or(0) > 0));
    let _ = std::fs::remove_dir_all(&dir);
    // Give the lab's stop path a moment to be visible in the ports table.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for port in mite_perf::ports::lab_port_reports() {
        assert!(port.holders.is_empty(), "port {} held", port.port);
    }
}
