//! END-TO-END: the store on a real PostgreSQL (Debian's `postgresql`, which
//! scripts/setup installs), started here on a loopback port in a temporary
//! folder, and a real `mite-perf run` writing to it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::TryStreamExt;

use mite_perf::model::{ProcessKind, RunParams, RunStatus, Sample, ScenarioStatus};
use mite_perf::store::{SampleRow, Store};

const BIN: &str = env!("CARGO_BIN_EXE_mite-perf");

/// A PostgreSQL cluster of its own, stopped (and deleted) on drop.
struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    run_as: Option<&'static str>,
}

fn postgres_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/setup installs Debian's postgresql)")
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb under /usr/lib/postgresql")
}

impl Postgres {
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.run_as {
            // initdb refuses to run as root: run the server as `postgres`.
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn start() -> Postgres {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let data = std::env::temp_dir().join(format!("mite-perf-pg-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&data).expect("data folder");
        let run_as = nix::unistd::Uid::effective()
            .is_root()
            .then_some("postgres");
        if run_as.is_some() {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&data)
                .status();
            assert!(ok.is_ok_and(|s| s.success()), "chown the data folder");
        }
        let pg = Postgres {
            bin: postgres_bin(),
            data,
            port,
            run_as,
        };
        let out = pg
            .command("initdb")
            .args(["--auth=trust", "--username=lab", "--encoding=UTF8", "-D"])
            .arg(&pg.data)
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = pg
            .command("pg_ctl")
            .arg("-D")
            .arg(&pg.data)
            .args(["-w", "-l"])
            .arg(pg.data.join("server.log"))
            .arg("-o")
            .arg(format!(
                "-p {port} -c listen_addresses=127.0.0.1 -k {}",
                pg.data.display()
            ))
            .arg("start")
            .stdin(Stdio::null())
            .output()
            .expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg
    }

    fn url(&self) -> String {
        format!("postgres://lab@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn sample(process: ProcessKind, s: i64, requests: Option<i64>) -> Sample {
    Sample {
        process,
        pid: 42,
        at_ms: 1_000 * s,
        elapsed_ms: 1_000 * s,
        cpu: 12.5,
        mem: 1 << 20,
        requests,
        requests_in_interval: requests.map(|_| 100),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_works_on_postgres() {
    let pg = Postgres::start();
    let store = Store::connect(&pg.url())
        .await
        .expect("connect and migrate");
    // The schema applies once: a second connect finds it current.
    let store2 = Store::connect(&pg.url()).await.expect("connect again");
    store2.ping().await.expect("ping");

    let params = RunParams {
        label: "Postgres Run".into(),
        concurrencies: vec![10],
        ..RunParams::default()
    };
    let queued = store
        .create_run(&params, RunStatus::Queued)
        .await
        .expect("queue");
    let claimed = store
        .claim_next_queued()
        .await
        .expect("claim")
        .expect("a queued run");
    assert_eq!(claimed.id, queued);
    assert!(store.claim_next_queued().await.expect("claim").is_none());
    let scenario = store
        .create_scenario(queued, 0, 10, &params)
        .await
        .expect("scenario");
    store.start_scenario(scenario, 1).await.expect("start");
    let samples: Vec<Sample> = (1..=10)
        .flat_map(|s| {
            [
                sample(ProcessKind::Http, s, Some(100 * s)),
                sample(ProcessKind::Runner, s, None),
            ]
        })
        .collect();
    store
        .insert_samples(scenario, &samples)
        .await
        .expect("insert");
    store
        .finish_scenario(scenario, ScenarioStatus::Done, None, None)
        .await
        .expect("finish");
    store
        .finish_run(queued, RunStatus::Done, None)
        .await
        .expect("finish run");

    let rows: Vec<SampleRow> = store
        .run_samples(queued)
        .try_collect()
        .await
        .expect("stream");
    assert_eq!(rows.len(), 20);
    let buckets = store
        .scenario_samples_bucketed(scenario, 0, 10_000, 5_000)
        .await
        .expect("buckets");
    assert_eq!(
        buckets
            .iter()
            .filter(|s| s.process == ProcessKind::Http)
            .count(),
        3
    );
    let figures = store
        .stored_figures(scenario)
        .await
        .expect("figures")
        .expect("stored");
    assert_eq!(figures.total_requests, 1000);
    let (runs, total) = store
        .list_runs("postgres", Some(RunStatus::Done), 20, 0)
        .await
        .expect("list");
    assert_eq!(total, 1);
    assert_eq!(runs[0].1, 1000, "total requests of the run");
    assert_eq!(
        store.latest_samples(scenario).await.expect("latest").len(),
        2
    );
    let other = store
        .create_run(&params, RunStatus::Queued)
        .await
        .expect("queue");
    assert!(store.delete_queued(other).await.expect("delete"));
    assert!(!store.delete_queued(queued).await.expect("not queued"));
}

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
