//! The fault suite (FAULTS.md lists each fault with its test): for every way
//! a run can end or break, the same stop path runs, no child is left, the
//! ports are freed, the samples measured so far are kept, the run is never
//! left `running`, and the queue goes on.
//!
//! Most tests run real mite on the real ports (END-TO-END, they take turns);
//! the worker's panic is brought about in process with an executor that
//! panics, and the parsers get property tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::{Connection, Executor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::common::{
    assert_no_child_left, assert_ports_free, launch_form, text, wait_for_samples, wait_output,
    wait_status, CliLab, Postgres, ServeOptions, Server, BIN,
};
use mite_perf::model::{
    parse_concurrencies, parse_duration, ProcessKind, RunParams, RunStatus, Sample, ScenarioStatus,
    TargetSpec,
};
use mite_perf::os_process;
use mite_perf::store::{NewProcess, RunRecord, Store};
use mite_perf::web::WebConfig;

/// The target's samples of a scenario never skip a tick: the gaps between
/// consecutive samples stay under `max_gap_ms`.
fn assert_no_gap(samples: &[Sample], max_gap_ms: i64) {
    let times: Vec<i64> = samples
        .iter()
        .filter(|s| s.process == ProcessKind::Target)
        .map(|s| s.elapsed_ms)
        .collect();
    assert!(times.len() > 3, "too few samples: {times:?}");
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] <= max_gap_ms,
            "a gap of {} ms in {times:?}",
            pair[1] - pair[0]
        );
    }
}

/// The run's final state: never `running`, and how its scenarios ended.
async fn final_run(store: &Store, run_id: i64) -> RunRecord {
    let run = store.run(run_id).await.expect("query").expect("the run");
    assert!(
        !matches!(run.status, RunStatus::Running | RunStatus::Queued),
        "run {run_id} is left {}",
        run.status
    );
    run
}

// 1. `serve` SIGKILLed mid-run, then started again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_mid_run_is_cleaned_up_by_the_next_serve_and_the_queue_goes_on() {
    let _turn = crate::common::share_the_machine().await;
    let mut server = Server::start("killed-serve").await;
    let dir = server.dir.clone();
    let store = Store::connect(&server.db_url()).await.expect("store");
    let first = server
        .call("launch_run", &launch_form("10", "60s", "killed"))
        .await["Queued"]["run_id"]
        .as_i64()
        .expect("queued");
    let second = server
        .call("launch_run", &launch_form("1", "3s", "next"))
        .await["Queued"]["run_id"]
        .as_i64()
        .expect("queued");
    // Wait for samples of the first run.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let scenarios = store.scenarios(first).await.expect("scenarios");
        if let Some(s) = scenarios.first() {
            if store.scenario_samples(s.id).await.expect("samples").len() >= 10 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no samples: {}", server.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.kill();
    let open = store.open_processes().await.expect("open");
    assert_eq!(open.len(), 5, "the children outlive a SIGKILLed lab");
    assert!(open.iter().all(|p| os_process::pid_alive(p.pid as u32)));
    let measured = store.sample_count(first).await.expect("count");

    // The next serve stops them, closes the run and takes the queue on.
    let server = Server::start_with(
        "killed-serve",
        ServeOptions {
            dir: Some(dir),
            ..ServeOptions::default()
        },
    )
    .await;
    let run = final_run(&store, first).await;
    assert_eq!(run.status, RunStatus::Interrupted);
    assert!(store.sample_count(first).await.expect("count") >= measured);
    assert_no_child_left(&store, first).await;
    let next = wait_status(
        &server,
        second,
        &["done", "failed"],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(next["status"], "done", "{next}");
    assert!(
        server.log().contains("marked interrupted"),
        "{}",
        server.log()
    );
    assert_ports_free(&server.ports);
}

// 2. The database row for a child cannot be written after it was spawned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_cannot_be_recorded_is_stopped() {
    let _turn = crate::common::share_the_machine().await;
    let lab = CliLab::new("unrecorded");
    let store = lab.store().await;
    if let mite_perf::store::Backend::Sqlite = store.backend() {
        let pool = sqlx::SqlitePool::connect(&lab.db_url())
            .await
            .expect("pool");
        pool.execute(
            "CREATE TRIGGER no_duplicator BEFORE INSERT ON processes \
             WHEN NEW.name = 'duplicator' BEGIN SELECT RAISE(ABORT, 'injected fault'); END",
        )
        .await
        .expect("the trigger");
    }
    let output = wait_output(
        lab.spawn_run(&["--concurrencies", "1", "--duration", "5s"]),
        Duration::from_secs(90),
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    let scenario = store.scenarios(1).await.expect("scenarios").remove(0);
    assert_eq!(scenario.status, ScenarioStatus::Failed);
    let error = scenario.error.unwrap_or_default();
    assert!(
        error.contains("cannot record the duplicator") && error.contains("it was stopped"),
        "{error}"
    );
    // The unrecorded duplicator (its pid is in the message) is gone.
    let pid: u32 = error
        .split("(pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {error}"));
    assert!(
        !os_process::pid_alive(pid),
        "the duplicator (pid {pid}) lives on"
    );
    assert_eq!(final_run(&store, 1).await.status, RunStatus::Failed);
    assert_no_child_left(&store, 1).await;
    assert_ports_free(&lab.ports);
}

// 3a. SQLite held locked by another writer for 10 s mid-scenario.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_wait_while_sqlite_is_locked_and_none_is_lost() {
    // It times the sampler's ticks (no gap past 1.6 s): a neighbour's
    // full-speed mite delayed one by 1.2 s on a clean clone's run.
    let _turn = crate::common::have_the_machine().await;
    let lab = CliLab::new("sqlite-locked");
    let mut child = lab.spawn_run(&["--concurrencies", "1", "--duration", "20s"]);
    let store = wait_for_samples(&lab, &mut child, 3, Duration::from_secs(60)).await;
    // Another writer takes the database for 10 s.
    let mut locker = sqlx::SqliteConnection::connect(&lab.db_url())
        .await
        .expect("connect");
    locker.execute("BEGIN EXCLUSIVE").await.expect("lock");
    let before = store.sample_count(1).await.expect("readers still read");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        store.sample_count(1).await.expect("count"),
        before,
        "nothing was written while locked"
    );
    // The run went on through the lock: the samples of those 10 s wait.
    assert!(
        matches!(child.try_wait(), Ok(None)),
        "the run ended while the database was locked"
    );
    locker.execute("COMMIT").await.expect("unlock");
    let output = wait_output(child, Duration::from_secs(120));
    assert!(output.status.success(), "{}", text(&output));
    let scenario = store.scenarios(1).await.expect("scenarios").remove(0);
    assert_eq!(scenario.status, ScenarioStatus::Done);
    assert_no_gap(
        &store.scenario_samples(scenario.id).await.expect("samples"),
        1_600,
    );
    assert_eq!(final_run(&store, 1).await.status, RunStatus::Done);
    assert_no_child_left(&store, 1).await;
    assert_ports_free(&lab.ports);
}

// 3b. PostgreSQL stopped for 10 s mid-scenario, then started again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_wait_while_postgres_is_down_and_none_is_lost() {
    // It times the sampler's ticks (no gap past 1.6 s): a neighbour's
    // full-speed mite delayed one by 1.2 s on a clean clone's run.
    let _turn = crate::common::have_the_machine().await;
    let pg = Postgres::start();
    let lab = CliLab::with_database("pg-down", pg.url());
    let mut child = lab.spawn_run(&["--concurrencies", "1", "--duration", "20s"]);
    let store = wait_for_samples(&lab, &mut child, 3, Duration::from_secs(60)).await;
    pg.server_stop();
    tokio::time::sleep(Duration::from_secs(10)).await;
    pg.server_start();
    let output = wait_output(child, Duration::from_secs(120));
    assert!(output.status.success(), "{}", text(&output));
    let store = Store::connect(&lab.db_url()).await.unwrap_or(store);
    let scenario = store.scenarios(1).await.expect("scenarios").remove(0);
    assert_eq!(scenario.status, ScenarioStatus::Done);
    assert_no_gap(
        &store.scenario_samples(scenario.id).await.expect("samples"),
        1_600,
    );
    assert_eq!(final_run(&store, 1).await.status, RunStatus::Done);
    assert_no_child_left(&store, 1).await;
    assert_ports_free(&lab.ports);
}

// 3c. Past the bound of samples kept in memory, the scenario fails cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_bound_of_unsaved_samples_the_scenario_fails_and_keeps_what_was_stored() {
    let _turn = crate::common::share_the_machine().await;
    let lab = CliLab::new("unsaved-bound");
    let mut child = lab.spawn_run(&[
        "--concurrencies",
        "1,10",
        "--duration",
        "15s",
        "--max-unsaved-samples",
        "20",
    ]);
    let store = wait_for_samples(&lab, &mut child, 3, Duration::from_secs(60)).await;
    let mut locker = sqlx::SqliteConnection::connect(&lab.db_url())
        .await
        .expect("connect");
    locker.execute("BEGIN EXCLUSIVE").await.expect("lock");
    let stored = store.sample_count(1).await.expect("count");
    // 20 samples are 4 ticks of 5 processes: the bound is passed in seconds.
    tokio::time::sleep(Duration::from_secs(8)).await;
    locker.execute("COMMIT").await.expect("unlock");
    let output = wait_output(child, Duration::from_secs(120));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let scenarios = store.scenarios(1).await.expect("scenarios");
    assert_eq!(scenarios[0].status, ScenarioStatus::Failed);
    let error = scenarios[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("wait to be stored") && error.contains("20"),
        "{error}"
    );
    // The second scenario ran: the database was back by then.
    assert_eq!(scenarios[1].status, ScenarioStatus::Done, "{scenarios:?}");
    assert!(store.sample_count(1).await.expect("count") >= stored);
    assert_eq!(final_run(&store, 1).await.status, RunStatus::Failed);
    assert_no_child_left(&store, 1).await;
    assert_ports_free(&lab.ports);
}

/// Asks for `path`, then reads one byte a second until the server ends the
/// answer or the task is dropped; answers the status line.
async fn slow_download(
    addr: std::net::SocketAddr,
    path: String,
    status: tokio::sync::oneshot::Sender<String>,
) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("ask");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        match stream.read(&mut byte).await {
            Ok(0) | Err(_) => break,
            Ok(_) => head.push(byte[0]),
        }
    }
    let _ = status.send(String::from_utf8_lossy(&head).trim().to_string());
    while let Ok(1..) = stream.read(&mut byte).await {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Starts `n` slow downloads; answers their status lines and their tasks.
async fn slow_downloads(
    addr: std::net::SocketAddr,
    path: &str,
    n: usize,
) -> (Vec<String>, Vec<tokio::task::JoinHandle<()>>) {
    let mut lines = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (tx, rx) = tokio::sync::oneshot::channel();
        tasks.push(tokio::spawn(slow_download(addr, path.to_string(), tx)));
        lines.push(
            tokio::time::timeout(Duration::from_secs(30), rx)
                .await
                .expect("a status line in time")
                .expect("a status line"),
        );
    }
    (lines, tasks)
}

/// Stores a finished run of `ticks` ticks of five processes (a big CSV) in
/// the SQLite database `db_url`: its samples made by the database itself
/// (a recursive query), in a second or two where writing them through the
/// lab's writer took over a minute.
async fn seed_finished_run(store: &Store, db_url: &str, ticks: i64) -> i64 {
    let (run, scenario) = crate::common::seed::running_scenario(store, "seeded").await;
    let mut db = sqlx::SqliteConnection::connect(db_url)
        .await
        .expect("the database");
    sqlx::query(
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < $1), \
         p(kind, pid) AS (VALUES ('http', 100), ('duplicator', 101), ('collector', 102), \
         ('runner', 103), ('controller', 104)) \
         INSERT INTO samples (scenario_id, process, pid, at_ms, elapsed_ms, cpu, mem, \
         requests, requests_in_interval) \
         SELECT $2, p.kind, p.pid, 1700000000000 + n * 1000, n * 1000, 12.5, 33554432, \
         CASE WHEN p.kind = 'http' THEN n * 100 END, CASE WHEN p.kind = 'http' THEN 100 END \
         FROM t, p",
    )
    .bind(ticks)
    .bind(scenario)
    .execute(&mut db)
    .await
    .expect("samples");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM samples WHERE scenario_id = $1")
        .bind(scenario)
        .fetch_one(&mut db)
        .await
        .expect("count");
    assert_eq!(count, ticks * ProcessKind::ALL.len() as i64);
    store
        .finish_scenario(
            scenario,
            ScenarioStatus::Done,
            None,
            None,
            &mite_perf::figures::scenario_figures(&[]),
        )
        .await
        .expect("finish");
    store
        .finish_run(run, RunStatus::Done, None)
        .await
        .expect("finish run");
    run
}

// 4. Slow CSV downloads during a run do not stall sampling; downloads are
//    capped and time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_downloads_neither_stall_sampling_nor_hold_the_database() {
    // It times the sampler's ticks (no gap past 1.6 s): a neighbour's
    // full-speed mite delayed one by 1.2 s on a clean clone's run.
    let _turn = crate::common::have_the_machine().await;
    let dir = crate::common::temp_dir("slow-downloads");
    let db_url = format!("sqlite://{}/lab.db", dir.display());
    let store = Store::connect(&db_url).await.expect("store");
    // About 30 MB of CSV: far more than the socket buffers hold.
    let big = seed_finished_run(&store, &db_url, 80_000).await;
    // Downloads idle for 5 s are ended (30 s by default: the same code).
    let server = Server::start_with(
        "slow-downloads",
        ServeOptions {
            dir: Some(dir),
            db_url: Some(db_url),
            args: vec!["--download-idle-limit".into(), "5s".into()],
        },
    )
    .await;
    let live = server
        .call("launch_run", &launch_form("1", "20s", "sampled"))
        .await["Queued"]["run_id"]
        .as_i64()
        .expect("queued");
    wait_status(&server, live, &["running"], Duration::from_secs(30)).await;
    let (lines, downloads) =
        slow_downloads(server.addr, &format!("/runs/{big}/samples.csv"), 4).await;
    assert_eq!(
        lines.iter().filter(|l| l.contains(" 200 ")).count(),
        2,
        "two stream at once: {lines:?}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains(" 429 ")).count(),
        2,
        "the others are told to wait: {lines:?}"
    );
    // While they crawl, the pages answer.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let asked = Instant::now();
    let view = server.call("get_run", &format!("run_id={live}")).await;
    assert_eq!(view["status"], "running");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "a page took {:?}",
        asked.elapsed()
    );
    // The crawling downloads are ended once they take no data for 5 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.log().matches("took no data for 5 s").count() < 2 {
        assert!(
            Instant::now() < deadline,
            "the slow downloads were not ended: {}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for download in downloads {
        download.abort();
    }
    let run = wait_status(&server, live, &["done", "failed"], Duration::from_secs(90)).await;
    assert_eq!(run["status"], "done", "{run}");
    let scenario = store.scenarios(live).await.expect("scenarios").remove(0);
    assert_no_gap(
        &store.scenario_samples(scenario.id).await.expect("samples"),
        1_600,
    );
    assert_no_child_left(&store, live).await;
    assert_ports_free(&server.ports);
}

// 5. The output folder's disk is full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_run_cleanly_and_leaves_no_truncated_csv() {
    let _turn = crate::common::share_the_machine().await;
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test mounts a small tmpfs: run it as root"
    );
    let lab = CliLab::new("disk-full");
    let mount = lab.dir.join("small");
    std::fs::create_dir_all(&mount).expect("mount point");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=20m", "tmpfs"])
        .arg(&mount)
        .status()
        .expect("mount");
    assert!(mounted.success(), "mount a 40 MiB tmpfs");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.clone());
    let output_dir = mount.join("output");
    let output = wait_output(
        lab.command(&[
            "run",
            "--concurrencies",
            "100",
            "--duration",
            "20s",
            "--output-dir",
            &output_dir.display().to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run"),
        Duration::from_secs(120),
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    let store = lab.store().await;
    let run = final_run(&store, 1).await;
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap_or_default();
    assert!(
        error.contains("No space left on device"),
        "the run says why: {error}\n{all}"
    );
    // mite's collector fills 40 MiB in a few seconds at this load: what was
    // measured until then is kept.
    let kept = store.sample_count(1).await.expect("count");
    assert!(kept > 10, "samples kept: {kept}; {error}");
    // Either no samples.csv, or a whole one: never a truncated file.
    let run_dir = crate::common::run_dir(&mount);
    assert!(!run_dir.join("samples.csv.partial").exists());
    match std::fs::read_to_string(run_dir.join("samples.csv")) {
        Ok(csv) => assert_eq!(
            csv.lines().count() as i64 - 1,
            store.sample_count(1).await.expect("count")
        ),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}"),
    }
    assert_no_child_left(&store, 1).await;
    assert_ports_free(&lab.ports);
}

/// A scenario whose volume model never stops: its controller never ends.
fn forever_module(dir: &Path) -> PathBuf {
    let module = dir.join("scenarios");
    std::fs::create_dir_all(&module).expect("folder");
    std::fs::write(
        module.join("forever.py"),
        "from mite_http import mite_http\n\n\
         @mite_http\nasync def journey(ctx):\n    async with ctx.transaction('test'):\n        \
         await ctx.http.get(ctx.config.get('mite_perf_target_url'))\n\n\
         def scenario():\n    return [('forever:journey', None, lambda start, end: 1)]\n",
    )
    .expect("module");
    module
}

// 6a. A child that never gets ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_never_gets_ready_fails_the_scenario_at_its_deadline() {
    let _turn = crate::common::share_the_machine().await;
    let lab = CliLab::new("never-ready");
    let started = Instant::now();
    let output = wait_output(
        lab.spawn_run(&[
            "--concurrencies",
            "1",
            "--duration",
            "5s",
            "--target-cmd",
            "sleep 600",
            "--ready-timeout",
            "3s",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(started.elapsed() < Duration::from_secs(30));
    let store = lab.store().await;
    let scenario = store.scenarios(1).await.expect("scenarios").remove(0);
    let error = scenario.error.unwrap_or_default();
    assert!(
        error.contains(&format!(
            "timed out after 3 s waiting for the target to listen on {}",
            lab.ports.target
        )),
        "{error}"
    );
    assert_eq!(final_run(&store, 1).await.status, RunStatus::Failed);
    assert_no_child_left(&store, 1).await;
    assert_ports_free(&lab.ports);
}

// 6b. A controller that never ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_that_never_ends_fails_the_scenario_at_its_deadline() {
    let _turn = crate::common::share_the_machine().await;
    let lab = CliLab::new("endless");
    let module = forever_module(&lab.dir);
    let output = wait_output(
        lab.spawn_run(&[
            "--concurrencies",
            "1",
            "--duration",
            "2s",
            "--controller-grace",
            "3s",
            "--scenario",
            "forever:scenario",
            "--scenario-dir",
            &module.display().to_string(),
        ]),
        Duration::from_secs(90),
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let store = lab.store().await;
    let scenario = store.scenarios(1).await.expect("scenarios").remove(0);
    assert_eq!(scenario.status, ScenarioStatus::Failed);
    let error = scenario.error.unwrap_or_default();
    assert!(
        error.contains("the controller did not end within 3 s after the scenario's 2 s"),
        "{error}"
    );
    assert!(store.sample_count(1).await.expect("count") > 0);
    assert_no_child_left(&store, 1).await;
    assert_ports_free(&lab.ports);
}

// 7. A group leader exits while a grandchild it started lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grandchildren_of_an_ended_group_leader_are_stopped() {
    let _turn = crate::common::share_the_machine().await;
    let lab = CliLab::new("grandchild");
    // The target command starts the server and a sleeper in its group, and
    // exits after 12 s while both live on (time enough for two samples
    // when mite is slow to start on a busy machine).
    let target =
        format!("sh -c '{BIN} target --port $MITE_PERF_TARGET_PORT --report-every 1s & sleep 600 & sleep 12'");
    let mut child = lab.spawn_run(&[
        "--concurrencies",
        "1",
        "--duration",
        "30s",
        "--target-cmd",
        &target,
    ]);
    let store = wait_for_samples(&lab, &mut child, 2, Duration::from_secs(60)).await;
    let http = store
        .open_processes()
        .await
        .expect("open")
        .into_iter()
        .find(|p| p.name == "target")
        .expect("the target");
    let members = os_process::group_members(http.pid as u32);
    assert!(
        members.len() >= 3,
        "leader, server and sleeper: {members:?}"
    );
    let output = wait_output(child, Duration::from_secs(60));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let scenario = store.scenarios(1).await.expect("scenarios").remove(0);
    assert!(
        scenario
            .error
            .as_deref()
            .unwrap_or("")
            .contains("target exit 0"),
        "{scenario:?}"
    );
    for pid in members {
        assert!(
            !os_process::pid_alive(pid),
            "pid {pid} of the target's group lives on"
        );
    }
    assert_no_child_left(&store, 1).await;
    assert_ports_free(&lab.ports);
}

/// Starts `script` in a process group of its own as run `run`'s runner, in
/// a scenario of its own, recorded as a run records its children; returns
/// its pid. The handle is forgotten: the group lives on as a run's would
/// when its executor is gone.
async fn start_recorded_group(
    store: &Store,
    run: &RunRecord,
    log: &Path,
    script: &str,
) -> Result<u32, mite_perf::run::RunError> {
    let scenario = store
        .create_scenario(run.id, 0, domain::builds::Slot::once(1), &run.params)
        .await?;
    let (child, _, _) = mite_perf::supervisor::spawn(&mite_perf::supervisor::ChildSpec {
        kind: ProcessKind::Runner,
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        cwd: std::env::temp_dir(),
        env: vec![],
        log_path: log.to_path_buf(),
        pipe_stdin: false,
        pipe_stdout: false,
        measured: mite_perf::supervisor::Measured::Itself,
        network: None,
    })
    .expect("spawn");
    store
        .record_process(
            scenario,
            NewProcess {
                kind: child.kind,
                pid: child.pid,
                start_ticks: child.start_ticks,
                command: &child.command,
                log_path: &log.display().to_string(),
            },
        )
        .await?;
    let pid = child.pid;
    std::mem::forget(child);
    Ok(pid)
}

/// Starts a real process group the way a run does (recorded in the store),
/// then panics: the fault the worker must survive.
struct PanickingRuns {
    calls: std::sync::atomic::AtomicUsize,
    log: PathBuf,
}

impl mite_perf::lab::RunExecutor for PanickingRuns {
    fn execute<'a>(
        &'a self,
        store: &'a Store,
        run: &'a RunRecord,
        _setup: &'a mite_perf::run::LabSetup,
        _cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<mite_perf::run::RunOutcome, mite_perf::run::RunError>> {
        async move {
            let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            store
                .start_run(
                    run.id,
                    &Default::default(),
                    "/nonexistent",
                    std::process::id(),
                )
                .await?;
            if call > 0 {
                // Later runs end normally.
                store.finish_run(run.id, RunStatus::Done, None).await?;
                return Ok(mite_perf::run::RunOutcome {
                    run_id: run.id,
                    status: RunStatus::Done,
                    output_dir: None,
                    error: None,
                });
            }
            start_recorded_group(store, run, &self.log, "sleep 600 & sleep 600").await?;
            panic!("an injected fault");
        }
        .boxed()
    }
}

// 8. A panic in the run worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_worker_shows_on_healthz_stops_the_runs_processes_and_the_queue_goes_on() {
    let _turn = crate::common::share_the_machine().await;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let dir = crate::common::temp_dir("worker-panic");
    let store = Store::connect(&format!("sqlite://{}/lab.db", dir.display()))
        .await
        .expect("store");
    let setup = mite_perf::run::LabSetup {
        output_root: dir.join("output"),
        builds: mite_perf::mite_env::builds::BuildCache::new(
            mite_perf::mite_env::MiteEnv {
                venv: dir.join("venv"),
                mite_version: "2.11.0".into(),
                python_version: "3.11.7".into(),
            },
            None,
        ),
        self_exe: BIN.into(),
        limits: Default::default(),
        policy: Default::default(),
        host: mite_perf::agent_identity::AgentIdentity::named(None, crate::common::own_ports()),
        isolation: mite_perf::sandbox::Isolation::detect(false),
    };
    let lab = mite_perf::lab::Lab::new(store.clone(), setup);
    let app = mite_perf::web::router(lab.clone(), WebConfig::local(dir.join("site")))
        .await
        .expect("router");
    let health = |app: axum::Router| async move {
        let response = app
            .oneshot(
                Request::get("/healthz")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("answer");
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    let executor = Arc::new(PanickingRuns {
        calls: Default::default(),
        log: dir.join("child.log"),
    });
    let first = store
        .create_run(&RunParams::default(), RunStatus::Queued)
        .await
        .expect("queue");
    let worker = lab.start_worker_with(executor.clone());

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = health(app.clone()).await;
        if status == 503 {
            assert!(
                body.contains("panicked while executing run") && body.contains("an injected fault"),
                "{body}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "healthz never said: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let run = final_run(&store, first).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.error.unwrap_or_default().contains("an injected fault"));
    // The process group the panicking run had started is stopped.
    let scenario = store.scenarios(first).await.expect("scenarios").remove(0);
    let process = store
        .processes(scenario.id)
        .await
        .expect("processes")
        .remove(0);
    assert!(process.exit_status.is_some(), "{process:?}");
    assert!(os_process::group_members(process.pid as u32).is_empty());

    // The worker takes the next run, and health recovers after it.
    let second = store
        .create_run(&RunParams::default(), RunStatus::Queued)
        .await
        .expect("queue");
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.run(second).await.expect("q").map(|r| r.status) != Some(RunStatus::Done) {
        assert!(Instant::now() < deadline, "the second run was not taken");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while health(app.clone()).await.0 != 200 {
        assert!(Instant::now() < deadline, "health did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lab.shut_down();
    let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Holds a claimed run until it is cancelled, with a real process group
/// recorded as its runner, renewing its lease as `execute_run` does: a run
/// as another host sees it. Says which run and pid it holds.
struct HeldRuns {
    log: PathBuf,
    held: tokio::sync::mpsc::UnboundedSender<(i64, u32)>,
}

impl mite_perf::lab::RunExecutor for HeldRuns {
    fn execute<'a>(
        &'a self,
        store: &'a Store,
        run: &'a RunRecord,
        setup: &'a mite_perf::run::LabSetup,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<mite_perf::run::RunOutcome, mite_perf::run::RunError>> {
        async move {
            let _lease = mite_perf::run::lease::keep_lease(
                store.clone(),
                setup.host.clone(),
                cancel.clone(),
            );
            store
                .start_run(
                    run.id,
                    &Default::default(),
                    "/nonexistent",
                    std::process::id(),
                )
                .await?;
            let pid = start_recorded_group(store, run, &self.log, "sleep 600").await?;
            let _ = self.held.send((run.id, pid));
            cancel.cancelled().await;
            mite_perf::cleanup::stop_run_processes(store, run.id).await?;
            store
                .close_open_scenarios(run.id, ScenarioStatus::Interrupted)
                .await?;
            store
                .finish_run(run.id, RunStatus::Interrupted, Some("cancelled"))
                .await?;
            Ok(mite_perf::run::RunOutcome {
                run_id: run.id,
                status: RunStatus::Interrupted,
                output_dir: None,
                error: None,
            })
        }
        .boxed()
    }
}

/// The next run [`HeldRuns`] holds, and its child's pid.
async fn held_run(holding: &mut tokio::sync::mpsc::UnboundedReceiver<(i64, u32)>) -> (i64, u32) {
    tokio::time::timeout(Duration::from_secs(30), holding.recv())
        .await
        .expect("host a took the run")
        .expect("a run")
}

// 19. Two lab hosts on one PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agent_ids_on_one_database_leave_each_others_runs_and_processes_alone() {
    let _turn = crate::common::share_the_machine().await;
    use mite_perf::agent_identity::AgentIdentity;
    use mite_perf::cleanup::cleanup;

    let pg = Postgres::start();
    let dir = crate::common::temp_dir("two-hosts");
    // Long enough that a busy machine cannot let it run out between host
    // a's renewals (every lease / 4) by accident.
    let lease = Duration::from_secs(6);
    let lab = |name: &str| {
        let url = pg.url();
        let dir = dir.clone();
        let name = name.to_string();
        async move {
            let store = Store::connect(&url).await.expect("store");
            let setup = mite_perf::run::LabSetup {
                output_root: dir.join(&name),
                builds: mite_perf::mite_env::builds::BuildCache::new(
                    mite_perf::mite_env::MiteEnv {
                        venv: dir.join("venv"),
                        mite_version: "2.11.0".into(),
                        python_version: "3.11.7".into(),
                    },
                    None,
                ),
                self_exe: BIN.into(),
                limits: Default::default(),
                policy: Default::default(),
                host: AgentIdentity {
                    id: format!("lab-{name}"),
                    name: format!("lab-{name}"),
                    lease,
                    ports: crate::common::own_ports(),
                    machine_epoch: 0,
                },
                isolation: mite_perf::sandbox::Isolation::detect(false),
            };
            (store.clone(), mite_perf::lab::Lab::new(store, setup))
        }
    };
    let (store_a, lab_a) = lab("a").await;
    let (store_b, lab_b) = lab("b").await;
    let (host_a, host_b) = (lab_a.setup().host.clone(), lab_b.setup().host.clone());
    let (held, mut holding) = tokio::sync::mpsc::unbounded_channel();
    let worker_a = lab_a.start_worker_with(Arc::new(HeldRuns {
        log: dir.join("child.log"),
        held,
    }));

    // Queued through host b, taken by host a.
    let first = store_b
        .create_run(&RunParams::default(), RunStatus::Queued)
        .await
        .expect("queue");
    let (run, pid) = held_run(&mut holding).await;
    assert_eq!(run, first);
    // Longer than the lease: host a renews it meanwhile. Host b's cleanup
    // (at its start, or its Ports button) leaves the run and its process
    // alone, although the pid is alive on this machine too.
    tokio::time::sleep(lease + Duration::from_secs(1)).await;
    let report = cleanup(&store_b, &dir.join("b"), &host_b)
        .await
        .expect("cleanup");
    assert_eq!(report.remote_live_runs, vec![(first, host_a.id.clone())]);
    assert!(report.processes.is_empty(), "{:?}", report.processes);
    assert!(os_process::pid_alive(pid));
    let run = store_b.run(first).await.expect("query").expect("run");
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.agent_id.as_deref(), Some("lab-a"));

    // A cancel asked on host b stops it on host a within seconds.
    assert!(lab_b.cancel(first).await.expect("cancel"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while store_b.run(first).await.expect("q").map(|r| r.status) == Some(RunStatus::Running) {
        assert!(Instant::now() < deadline, "host a did not stop the run");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        final_run(&store_b, first).await.status,
        RunStatus::Interrupted
    );
    assert!(os_process::group_members(pid).is_empty());
    assert!(holding.try_recv().is_err(), "host a took another run");

    // Host a's lab dies mid-run (its worker ends without its stop path).
    let second = store_b
        .create_run(&RunParams::default(), RunStatus::Queued)
        .await
        .expect("queue");
    let (run, pid) = held_run(&mut holding).await;
    assert_eq!(run, second);
    worker_a.abort();
    let _ = worker_a.await;
    // Until its lease runs out, host b leaves it alone; then marks it
    // interrupted, and still never signals its process (on host a).
    let report = cleanup(&store_b, &dir.join("b"), &host_b)
        .await
        .expect("cleanup");
    assert_eq!(report.remote_live_runs, vec![(second, host_a.id.clone())]);
    tokio::time::sleep(lease + Duration::from_secs(1)).await;
    let report = cleanup(&store_b, &dir.join("b"), &host_b)
        .await
        .expect("cleanup");
    assert_eq!(
        report.remote_abandoned_runs,
        vec![(second, host_a.id.clone())]
    );
    assert!(report.processes.is_empty(), "{:?}", report.processes);
    assert!(os_process::pid_alive(pid));
    let run = final_run(&store_b, second).await;
    assert_eq!(run.status, RunStatus::Interrupted);
    assert!(
        run.error
            .as_deref()
            .is_some_and(|e| e.contains("lab-a stopped renewing its lease")),
        "{:?}",
        run.error
    );
    // Host a's lab starts again: its cleanup stops what it left.
    let report = cleanup(&store_a, &dir.join("a"), &host_a)
        .await
        .expect("cleanup");
    assert_eq!(report.processes.len(), 1, "{:?}", report.processes);
    assert_eq!(report.processes[0].0.pid, i64::from(pid));
    assert!(os_process::group_members(pid).is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

// 9. Bad input: the parsers and validators never panic, whatever they get.
mod bad_input {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn durations_parse_or_say_why(text in ".{0,40}") {
            // Either a duration, or a reason that quotes what was given.
            if let Err(why) = parse_duration(&text) {
                prop_assert!(why.contains(text.trim()), "{why}");
                prop_assert!(why.len() > text.trim().len() + 10, "{why}");
            }
        }

        #[test]
        fn huge_durations_are_errors(n in 100_000_000u64..u64::MAX, unit in prop::sample::select(vec!["", "s", "m", "h", "ms"])) {
            // At least 10^23 of any unit: beyond any Duration (2^64 s).
            let text = format!("{n}000000000000000{unit}");
            let why = parse_duration(&text).expect_err("a duration beyond 2^64 s");
            prop_assert!(why.contains("far too long"), "{why}");
        }

        #[test]
        fn concurrency_lists_parse_or_say_why(text in "[0-9, x-]{0,60}") {
            match parse_concurrencies(&text) {
                // Only positive whole numbers, one per comma-separated part.
                Ok(list) => {
                    prop_assert_eq!(list.len(), text.split(',').count());
                    prop_assert!(list.iter().all(|n| *n > 0));
                }
                Err(why) => prop_assert!(why.contains("is not a positive whole number"), "{why}"),
            }
        }

        #[test]
        fn launch_forms_validate_without_panicking(
            scenarios in ".{0,30}", duration in ".{0,12}", interval in ".{0,12}",
            spawn_rate in ".{0,12}", label in ".{0,300}",
        ) {
            let form = app::api::LaunchForm {
                concurrencies: scenarios, duration, interval, spawn_rate, label,
                ..app::api::LaunchForm::default()
            };
            // Read, then checked once: every problem names a field the
            // form has and says something.
            let problems = match form.to_params() {
                Ok(params) => params.validate(),
                Err(problems) => problems,
            };
            for p in problems {
                prop_assert!(
                    ["concurrencies", "duration", "interval", "spawn_rate", "label"]
                        .contains(&p.field.as_str()),
                    "{p:?}"
                );
                prop_assert!(!p.message.is_empty(), "{p:?}");
            }
        }

        #[test]
        fn chart_windows_are_checked_without_panicking(from in any::<i64>(), to in any::<i64>()) {
            match mite_perf::lab::views::check_window((from, to)) {
                Ok((f, t)) => prop_assert!(0 <= f && f <= t),
                Err(e) => prop_assert_eq!(e.status(), 400),
            }
        }
    }
}

// 10. What comes out of the database is checked again before it is run.
/// Two containers sharing a host name: a second agent of the same name
/// starts in another PID namespace, where it cannot see the first's
/// processes, while the first executes a run. It must neither take the
/// name nor touch the run (before: its start-up cleanup took the live run
/// for its own dead one, marked it interrupted, and made the first agent
/// stop it). Its own ports; the run's target never gets ready, so the run
/// runs, under the first agent's lease, without mite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_named_agent_in_another_pid_namespace_leaves_the_live_one_alone() {
    let _turn = crate::common::share_the_machine().await;
    let dir = crate::common::temp_dir("twins");
    let db_url = format!("sqlite://{}/lab.db", dir.display());
    let store = Store::connect(&db_url).await.expect("store");
    let ports = || crate::common::own_ports().to_string();
    let params = RunParams {
        concurrencies: vec![1],
        duration_ms: 2000,
        target: TargetSpec::Command("sleep 600".into()),
        ..RunParams::default()
    };
    let run = store
        .create_run(&params, RunStatus::Queued)
        .await
        .expect("queue");
    let mut first = Server::start_with(
        "twin-a",
        ServeOptions {
            dir: Some(dir.clone()),
            db_url: Some(db_url.clone()),
            args: [
                "--agent-name",
                "twin",
                "--allow-target-cmd",
                "--ready-timeout",
                "120s",
                "--ports",
                &ports(),
            ]
            .map(String::from)
            .to_vec(),
        },
    )
    .await;
    wait_status(&first, run, &["running"], Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let target = loop {
        let open = store.open_processes().await.expect("processes");
        if let Some(p) = open.into_iter().find(|p| p.run_id == run) {
            break p;
        }
        assert!(Instant::now() < deadline, "no target: {}", first.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let leased = store.run(run).await.expect("run").expect("stored");
    // What the lab made is its user's only: the run's folder, the process
    // logs in it (its children inherit the lab's umask).
    {
        use std::os::unix::fs::PermissionsExt;
        let folder = PathBuf::from(leased.output_dir.clone().expect("the run's folder"));
        let mode = |p: &Path| std::fs::metadata(p).expect("made").permissions().mode() & 0o777;
        assert_eq!(mode(&folder), 0o700, "{}", folder.display());
        assert_eq!(
            mode(Path::new(&target.log_path)) & 0o077,
            0,
            "{}",
            target.log_path
        );
    }

    let mut second = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(BIN)
        .args(["agent", "--agent-name", "twin", "--output-dir"])
        .arg(dir.join("output-b"))
        .args(["--ports", &ports()])
        .env("MITE_PERF_DATABASE_URL", &db_url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare (util-linux; as root)");
    let deadline = Instant::now() + Duration::from_secs(60);
    while matches!(second.try_wait(), Ok(None)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if matches!(second.try_wait(), Ok(None)) {
        let _ = second.kill();
    }
    let out = second.wait_with_output().expect("the second agent ends");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("an agent named twin already runs"), "{said}");

    // The first agent's run goes on, under its lease, with its target.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let now = store.run(run).await.expect("run").expect("stored");
    assert_eq!(now.status, RunStatus::Running, "{}", first.log());
    assert_eq!(now.lease_id, leased.lease_id);
    assert_eq!(now.agent_id, leased.agent_id);
    assert!(now.lease_expires_at > leased.lease_expires_at, "renewed");
    let agent = store
        .agent("twin")
        .await
        .expect("agent")
        .expect("registered");
    assert_eq!(
        agent.pid,
        i64::from(first.pid()),
        "the name is still the first's"
    );
    assert!(os_process::pid_alive(target.pid as u32), "its target lives");
    assert!(!first.log().contains("lease was lost"), "{}", first.log());

    let status = first.stop();
    assert!(status.success(), "{}", first.log());
    let ended = store.run(run).await.expect("run").expect("stored");
    assert_eq!(ended.status, RunStatus::Interrupted);
    assert!(!os_process::pid_alive(target.pid as u32), "no child left");
}

/// A web front alone (`serve --no-agent`) starts without a mite venv (it
/// executes no run), and its Ports page and launch form show the agents'
/// ports and builds, not its own defaults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_front_needs_no_mite_and_shows_the_agents_ports() {
    let dir = crate::common::temp_dir("front-no-mite");
    let db_url = format!("sqlite://{}/lab.db", dir.display());
    let store = Store::connect(&db_url).await.expect("store");
    let elsewhere = mite_perf::store::AgentRecord {
        ports: "19898,24301,24302,24303,24304".into(),
        builds: "pinned,2.10.0".into(),
        hostname: "another-machine".into(),
        ..crate::common::seed::agent("far", 4242)
    };
    store.register_agent(&elsewhere).await.expect("agent");
    let server = Server::start_with(
        "front-no-mite",
        ServeOptions {
            dir: Some(dir.clone()),
            db_url: Some(db_url),
            args: ["--no-agent", "--mite-venv", "/nonexistent/venv"]
                .map(String::from)
                .to_vec(),
        },
    )
    .await;
    assert!(
        server.log().contains("executes no runs"),
        "{}",
        server.log()
    );
    let ports = server.call("get_ports", "").await;
    let ports = ports.as_array().expect("ports");
    let listed: Vec<(String, u64, bool)> = ports
        .iter()
        .map(|p| {
            (
                p["agent"].as_str().unwrap_or_default().to_string(),
                p["port"].as_u64().unwrap_or_default(),
                p["seen"].as_bool().unwrap_or(true),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [19898, 24301, 24302, 24303, 24304]
            .map(|p| ("far".to_string(), p, false))
            .to_vec(),
        "the agent's ports, on its machine"
    );
    let builds = server.call("get_builds", "").await;
    assert_eq!(builds, serde_json::json!(["pinned", "2.10.0"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_run_naming_a_command_is_refused_unless_the_lab_allows_it() {
    let _turn = crate::common::share_the_machine().await;
    let dir = crate::common::temp_dir("db-command");
    let db_url = format!("sqlite://{}/lab.db", dir.display());
    let store = Store::connect(&db_url).await.expect("store");
    let marker = dir.join("ran");
    // Written into the queue behind the lab's back.
    let params = RunParams {
        concurrencies: vec![1],
        duration_ms: 2000,
        target: TargetSpec::Command(format!("touch {}", marker.display())),
        ..RunParams::default()
    };
    let run = store
        .create_run(&params, RunStatus::Queued)
        .await
        .expect("queue");
    let server = Server::start_with(
        "db-command",
        ServeOptions {
            dir: Some(dir.clone()),
            db_url: Some(db_url),
            ..ServeOptions::default()
        },
    )
    .await;
    let refused = wait_status(&server, run, &["failed", "done"], Duration::from_secs(30)).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("--allow-target-cmd")),
        "{refused}"
    );
    assert!(!marker.exists(), "the command ran");
    assert!(store.open_processes().await.expect("open").is_empty());

    // A lab started with --allow-target-cmd runs such a run: the command
    // is the target, and the run is measured to its end.
    let allowing_dir = crate::common::temp_dir("db-command-allowed");
    let allowing_url = format!("sqlite://{}/lab.db", allowing_dir.display());
    let allowing_store = Store::connect(&allowing_url).await.expect("store");
    let allowed = allowing_store
        .create_run(
            &RunParams {
                // The lab runs `exec COMMAND`: a shell of its own here,
                // which writes in the folder a target command may write in.
                target: TargetSpec::Command(format!(
                    "sh -c 'touch \"$MITE_PERF_TARGET_DIR/ran\" && exec {BIN} target'"
                )),
                ..params.clone()
            },
            RunStatus::Queued,
        )
        .await
        .expect("queue");
    let allowing = Server::start_with(
        "db-command-allowed",
        ServeOptions {
            dir: Some(allowing_dir.clone()),
            db_url: Some(allowing_url),
            args: vec!["--allow-target-cmd".into()],
        },
    )
    .await;
    let executed = wait_status(
        &allowing,
        allowed,
        &["failed", "done"],
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(executed["status"], "done", "{executed}");
    let ran = crate::common::run_dir(&allowing_dir)
        .read_dir()
        .expect("the run's folder")
        .flatten()
        .any(|scenario| scenario.path().join("target/ran").exists());
    assert!(ran, "the command did not run");
    drop(allowing);
    let _ = std::fs::remove_dir_all(allowing_dir);

    // A run whose folder (as stored) lies outside the output folder: cleanup
    // closes it but writes nothing there.
    let outside = crate::common::temp_dir("outside");
    let stray = store
        .create_run(&RunParams::default(), RunStatus::Running)
        .await
        .expect("run");
    store
        .start_run(
            stray,
            &Default::default(),
            &outside.display().to_string(),
            u32::MAX - 1,
        )
        .await
        .expect("start");
    drop(server);
    let cleanup = Command::new(BIN)
        .args(["cleanup", "--output-dir"])
        .arg(dir.join("output"))
        .env(
            "MITE_PERF_DATABASE_URL",
            format!("sqlite://{}/lab.db", dir.display()),
        )
        .output()
        .expect("cleanup");
    let said = text(&cleanup);
    assert!(said.contains("outside the output folder"), "{said}");
    assert!(!outside.join("samples.csv").exists());
    assert_eq!(
        final_run(&store, stray).await.status,
        RunStatus::Interrupted
    );
    let _ = std::fs::remove_dir_all(outside);
}

// 11. SIGTERM to `serve` while a long download is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_serve_stops_the_run_within_seconds_whatever_downloads_are_open() {
    // It times the stop (interrupted within 5 s): beside a neighbour's
    // full-speed mite it took 6.1 s once on a clean clone's run.
    let _turn = crate::common::have_the_machine().await;
    let dir = crate::common::temp_dir("sigterm-download");
    let db_url = format!("sqlite://{}/lab.db", dir.display());
    let store = Store::connect(&db_url).await.expect("store");
    let big = seed_finished_run(&store, &db_url, 80_000).await;
    let mut server = Server::start_with(
        "sigterm-download",
        ServeOptions {
            dir: Some(dir),
            db_url: Some(db_url),
            ..ServeOptions::default()
        },
    )
    .await;
    let live = server
        .call("launch_run", &launch_form("10", "60s", "stopped"))
        .await["Queued"]["run_id"]
        .as_i64()
        .expect("queued");
    wait_status(&server, live, &["running"], Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (lines, _downloads) =
        slow_downloads(server.addr, &format!("/runs/{big}/samples.csv"), 1).await;
    assert!(lines[0].contains(" 200 "), "{lines:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let asked = mite_perf::clock::now_ms();
    let asked_at = Instant::now();
    crate::common::signal(server.pid(), nix::sys::signal::Signal::SIGTERM);
    let status = server.wait(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    assert!(
        asked_at.elapsed() < Duration::from_secs(10),
        "serve took {:?} to end",
        asked_at.elapsed()
    );
    let run = final_run(&store, live).await;
    assert_eq!(run.status, RunStatus::Interrupted);
    let stopped_after = run.ended_at.unwrap_or(i64::MAX) - asked;
    assert!(
        stopped_after < 5_000,
        "the run took {stopped_after} ms to stop"
    );
    assert_no_child_left(&store, live).await;
    assert_ports_free(&server.ports);
}

// 12. The database URL's password never appears in output or logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_password_is_never_printed() {
    let _turn = crate::common::share_the_machine().await;
    let pg = Postgres::start();
    // The test server trusts every connection, so any password works.
    let with_password = format!("postgres://lab:s3cret-pw@127.0.0.1:{}/postgres", pg.port);
    let mut server = Server::start_with(
        "password",
        ServeOptions {
            db_url: Some(with_password.clone()),
            ..ServeOptions::default()
        },
    )
    .await;
    // What it says while stopping counts too: the log is read once it ended.
    crate::common::signal(server.pid(), nix::sys::signal::Signal::SIGTERM);
    assert!(server.wait(Duration::from_secs(40)).success());
    let log = server.log();
    assert!(log.contains("lab:***@"), "{log}");
    assert!(!log.contains("s3cret-pw"), "{log}");
    server.stop();
    let unreachable = format!(
        "postgres://lab:s3cret-pw@127.0.0.1:{}/postgres",
        crate::common::free_port()
    );
    for args in [
        vec!["cleanup", "--database-url", unreachable.as_str()],
        vec![
            "run",
            "--concurrencies",
            "1",
            "--database-url",
            unreachable.as_str(),
        ],
        vec!["cleanup", "--database-url", "mysql://root:s3cret-pw@db/lab"],
    ] {
        let out = Command::new(BIN).args(&args).output().expect("run");
        let all = text(&out);
        assert!(!out.status.success(), "{all}");
        assert!(all.contains("***"), "the URL is named, redacted: {all}");
        assert!(!all.contains("s3cret-pw"), "{all}");
    }
    // --help names the variable, never its value.
    for command in [
        &["serve", "--help"][..],
        &["agent", "--help"],
        &["run", "--help"],
        &["cleanup", "--help"],
        &["compare", "--help"],
        &["user", "add", "--help"],
        &["token", "create", "--help"],
    ] {
        let out = Command::new(BIN)
            .args(command)
            .env("MITE_PERF_DATABASE_URL", &with_password)
            .output()
            .expect("help");
        let all = text(&out);
        assert!(out.status.success(), "{command:?}: {all}");
        assert!(all.contains("MITE_PERF_DATABASE_URL"), "{command:?}: {all}");
        assert!(
            !all.contains("s3cret-pw"),
            "{command:?} printed the password: {all}"
        );
    }
}

// 13. Database URLs in sqlx's documented forms work.
#[test]
fn sqlite_urls_with_a_query_keep_their_file_name() {
    let dir = crate::common::temp_dir("url-forms");
    for url in ["sqlite://output/lab.db?mode=rwc", "sqlite:other/lab.db"] {
        let out = Command::new(BIN)
            .args(["cleanup", "--database-url", url])
            .current_dir(&dir)
            .output()
            .expect("cleanup");
        // A new database, nothing left to clean: a plain success.
        assert!(out.status.success(), "{}", text(&out));
        assert!(!text(&out).contains("error"), "{}", text(&out));
    }
    assert!(dir.join("output/lab.db").is_file());
    assert!(dir.join("other/lab.db").is_file());
    assert!(!dir.join("output/lab.db?mode=rwc").exists());
    let _ = std::fs::remove_dir_all(dir);
}

// 14. The launch form works before hydration: without JavaScript it posts
//     to the server function and lands on the run's page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launch_form_works_without_javascript() {
    let _turn = crate::common::share_the_machine().await;
    let server = Server::start("no-js").await;
    let browser =
        crate::common::Browser::start_with(&["--blink-settings=scriptEnabled=false"]).await;
    browser.goto(&server.url("/")).await;
    let form = browser
        .client
        .form(fantoccini::Locator::Css("form.launch-form"))
        .await
        .expect("the form");
    for n in [10, 100, 1000] {
        browser
            .client
            .find(fantoccini::Locator::Css(&format!(
                "input[data-scenario=\"{n}\"]"
            )))
            .await
            .expect("a checkbox")
            .click()
            .await
            .expect("uncheck");
    }
    // Typed as a person types (setting values by script needs JavaScript).
    for (name, value) in [("form[duration]", "3s"), ("form[label]", "no javascript")] {
        let field = browser
            .client
            .find(fantoccini::Locator::Css(&format!("input[name=\"{name}\"]")))
            .await
            .expect("a field");
        field.clear().await.expect("clear");
        field.send_keys(value).await.expect("type");
    }
    form.submit().await.expect("submit");
    let deadline = Instant::now() + Duration::from_secs(20);
    let run_id: i64 = loop {
        let url = browser.client.current_url().await.expect("the url");
        if let Some(id) = url
            .path()
            .strip_prefix("/runs/")
            .and_then(|id| id.parse().ok())
        {
            break id;
        }
        assert!(Instant::now() < deadline, "not on a run page: {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Without scripts the page never hydrated: the form's own post did it.
    let source = browser.client.source().await.expect("the page");
    assert!(!source.contains("data-hydrated"), "scripts ran");
    let run = wait_status(
        &server,
        run_id,
        &["done", "failed"],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(run["status"], "done", "{run}");
    assert_eq!(run["label"], "no javascript");
    assert_eq!(run["params"]["concurrencies"], serde_json::json!([1]));
    // The browser said no error (a script exception, a CSP violation,
    // a resource refused) on the last page either.
    browser.assert_console_clean().await;
}
