//! END-TO-END: a real `mite-perf run` storing into a PostgreSQL server the
//! test starts on a loopback port (Debian's `postgresql`, which
//! scripts/setup installs). The store itself is tested on both backends in
//! `store.rs`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::TryStreamExt;

use crate::common::{Postgres, BIN};
use mite_perf::model::RunStatus;
use mite_perf::store::{SampleRow, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_cli_run_stores_in_postgres() {
    let _turn = crate::common::share_the_machine().await;
    let ports = crate::common::own_ports();
    let pg = Postgres::start();
    let dir = std::env::temp_dir().join(format!("mite-perf-pg-run-{}", pg.port));
    std::fs::create_dir_all(&dir).expect("folder");
    let out = Command::new(BIN)
        .args([
            "run",
            "--concurrencies",
            "1",
            "--duration",
            "3s",
            "--output-dir",
        ])
        .arg(dir.join("output"))
        .args(["--database-url", &pg.url()])
        .args(["--ports", &ports.to_string()])
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
    crate::common::assert_ports_free(&ports);
}

/// The agents' (and the front's) lease: short, so that a dead agent's run
/// is taken for abandoned in seconds (30 s by default: the same code).
const LEASE: &str = "8s";

/// `mite-perf agent` named `name` on `ports`, logging to `dir/NAME.log`,
/// listing the [`paced`] library. Niced and pinned to one core (with its
/// mite): two agents' runs stay off the core of the database and the web
/// front, which on a real lab live on other machines.
fn spawn_agent(name: &str, ports: &str, dir: &Path, db_url: &str) -> Agent {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .expect("log file");
    // Pinned to the last core (and niced): the first stays for PostgreSQL,
    // the web front and the test.
    let last_core = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
    let mut command = if last_core > 0 {
        let mut taskset = Command::new("taskset");
        taskset.args(["-c", &last_core.to_string(), "nice", "-n", "19", BIN]);
        taskset
    } else {
        let mut nice = Command::new("nice");
        nice.args(["-n", "19", BIN]);
        nice
    };
    command
        .args([
            "agent",
            "--agent-name",
            name,
            "--ports",
            ports,
            "--lease",
            LEASE,
            "--output-dir",
        ])
        .arg(dir.join(name))
        .arg("--scenario-dir")
        .arg(paced())
        .args(["--database-url", db_url])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .map(Agent)
        .expect("start mite-perf agent")
}

/// The library of the scenario these agents run: one journey at a walking
/// pace. Leases and agents need runs going, not a machine full: a lease is
/// renewed by a niced agent sharing its core with its runs.
fn paced() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/paced")
}

/// A running `mite-perf agent`; a test that fails midway still stops it
/// (and so its run) with SIGTERM.
struct Agent(std::process::Child);

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            crate::common::signal(self.0.id(), nix::sys::signal::Signal::SIGTERM);
            let deadline = std::time::Instant::now() + Duration::from_secs(40);
            while matches!(self.0.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn agent_log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

/// Calls a server function that must succeed, asking again while the front
/// answers 503 (its database busy), for up to 30 s.
async fn call(server: &crate::common::Server, name: &str, args: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = server.call_raw(name, args).await;
        if status == 200 {
            return serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        }
        assert!(
            status == 503 && std::time::Instant::now() < deadline,
            "{name}({args}): {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until `check` holds for the JSON `server` answers to `call`.
async fn wait_for(
    server: &crate::common::Server,
    call: (&str, &str),
    what: &str,
    timeout: Duration,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        // 503 (the database busy: two full-speed runs on two cores) means
        // "ask again"; any other answer but 200 is a failure.
        let (status, body) = server.call_raw(call.0, call.1).await;
        assert!(
            status == 200 || status == 503,
            "{}: {status} {body}",
            call.0
        );
        let answer: serde_json::Value = if status == 200 {
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
        } else {
            serde_json::Value::Null
        };
        if status == 200 && check(&answer) {
            return answer;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Whether every process recorded for the run is still the live process
/// the lab started.
async fn run_processes_alive(store: &Store, run_id: i64) -> bool {
    let mut any = false;
    for scenario in store.scenarios(run_id).await.expect("scenarios") {
        for p in store.processes(scenario.id).await.expect("processes") {
            let pid = p.pid as u32;
            let same = mite_perf::os_process::pid_alive(pid)
                && mite_perf::os_process::start_ticks(pid) == Some(p.start_ticks as u64);
            if !same {
                return false;
            }
            any = true;
        }
    }
    any
}

/// The ports of a set that have a listener where run `run_id`'s processes
/// are: in the network of its sandbox while one of them lives (a
/// sandboxed scenario's ports are its own network's), else the host's.
async fn held(store: &Store, run_id: i64, ports: &str) -> Vec<u16> {
    let ports: mite_perf::ports::LabPorts = ports.parse().expect("ports");
    let mut tables = mite_perf::ports::Tables::Host;
    for scenario in store.scenarios(run_id).await.expect("scenarios") {
        for p in store.processes(scenario.id).await.expect("processes") {
            if mite_perf::os_process::pid_alive(p.pid as u32) {
                tables = mite_perf::ports::Tables::Of(p.pid as u32);
            }
        }
    }
    mite_perf::ports::lab_port_reports(&ports, tables)
        .into_iter()
        .filter(|r| !r.holders.is_empty())
        .map(|r| r.port)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_two_agents_on_one_postgres_run_side_by_side_and_a_dead_one_leaves_the_other_alone() {
    // Its agents are niced on one core: tests beside, at full speed, would
    // starve their leases' renewals (8 s here). No other test beside.
    let _turn = crate::common::have_the_machine().await;
    let ports_a = crate::common::own_ports().to_string();
    let ports_b = crate::common::own_ports().to_string();
    let (ports_a, ports_b) = (ports_a.as_str(), ports_b.as_str());
    let pg = Postgres::start();
    let db_url = pg.fresh_database("agents").await;
    let dir = crate::common::temp_dir("agents");
    let front = crate::common::Server::start_with(
        "agents-front",
        crate::common::ServeOptions {
            db_url: Some(db_url.clone()),
            args: vec!["--no-agent".into(), "--lease".into(), LEASE.into()],
            dir: None,
        },
    )
    .await;
    let mut agent_a = spawn_agent("lab-a", ports_a, &dir, &db_url);
    let mut agent_b = spawn_agent("lab-b", ports_b, &dir, &db_url);
    wait_for(
        &front,
        ("get_agents", ""),
        "two idle agents",
        Duration::from_secs(60),
        |a| {
            a.as_array()
                .is_some_and(|a| a.len() == 2 && a.iter().all(|a| a["state"] == "Idle"))
        },
    )
    .await;
    wait_for(
        &front,
        ("get_library", ""),
        "both agents' paced scenario",
        Duration::from_secs(60),
        |l| {
            l.as_array().is_some_and(|l| {
                ["lab-a", "lab-b"].iter().all(|agent| {
                    l.iter()
                        .any(|s| s["agent"] == *agent && s["spec"] == "paced:scenario")
                })
            })
        },
    )
    .await;
    // A second agent may not take a live agent's name.
    let twin = Command::new(BIN)
        .args([
            "agent",
            "--agent-name",
            "lab-b",
            "--ports",
            &crate::common::own_ports().to_string(),
        ])
        .args(["--output-dir", &dir.join("twin").display().to_string()])
        .args(["--database-url", &db_url])
        .stdin(Stdio::null())
        .output()
        .expect("a second lab-b");
    assert_eq!(twin.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&twin.stderr).contains("already runs"),
        "{}",
        String::from_utf8_lossy(&twin.stderr)
    );

    // One run asked of each agent: both run at once, each on its agent's ports.
    let launch = |agent: &str| {
        format!(
            "{}&form[agent]={agent}&form[scenario]=paced:scenario",
            crate::common::launch_form("1", "180s", agent)
        )
    };
    // (With the built-in scenario: a library one is refused for lab-z
    // listing none.)
    let unknown = call(
        &front,
        "launch_run",
        &format!(
            "{}&form[agent]=lab-z",
            crate::common::launch_form("1", "180s", "lab-z")
        ),
    )
    .await;
    assert_eq!(unknown["Invalid"][0]["field"], "agent", "{unknown}");
    let run_a = call(&front, "launch_run", &launch("lab-a")).await["Queued"]["run_id"]
        .as_i64()
        .expect("queued");
    let run_b = call(&front, "launch_run", &launch("lab-b")).await["Queued"]["run_id"]
        .as_i64()
        .expect("queued");
    let running = |id: i64| {
        move |r: &serde_json::Value| {
            r["status"] == "running"
                && r["scenarios"][0]["status"] == "running"
                && r["scenarios"][0]["elapsed_ms"].as_i64().unwrap_or(0) > 0
                && r["id"] == id
        }
    };
    let a = wait_for(
        &front,
        ("get_run", &format!("run_id={run_a}")),
        "run a running",
        Duration::from_secs(90),
        running(run_a),
    )
    .await;
    let b = wait_for(
        &front,
        ("get_run", &format!("run_id={run_b}")),
        "run b running",
        Duration::from_secs(90),
        running(run_b),
    )
    .await;
    assert_eq!(
        (a["agent"].as_str(), b["agent"].as_str()),
        (Some("lab-a"), Some("lab-b"))
    );
    let store = Store::connect(&db_url).await.expect("store");
    // The controller binds its port once its imports are done, a moment
    // after the scenario is under way.
    for (run, ports, agent) in [(run_a, ports_a, "lab-a"), (run_b, ports_b, "lab-b")] {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let held = held(&store, run, ports).await;
            if held.len() == 5 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "run {run} holds {held:?} of {agent}'s ports {ports}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(run_processes_alive(&store, run_a).await);

    // lab-a dies. lab-b's run goes on; once lab-a is silent for a lease,
    // lab-b marks lab-a's run interrupted, without touching its processes.
    agent_a.0.kill().expect("SIGKILL lab-a");
    let _ = agent_a.0.wait();
    let a = wait_for(
        &front,
        ("get_run", &format!("run_id={run_a}")),
        "lab-a's run marked interrupted",
        Duration::from_secs(90),
        |r| r["status"] == "interrupted",
    )
    .await;
    // Not before lab-a's lease ran out: its last beat (it beats no more)
    // plus its lease, by the database's clock, as the mark is. (A starved
    // lab-a may have beaten long before it was killed.)
    let dead = store
        .agent("lab-a")
        .await
        .expect("agents")
        .expect("lab-a kept");
    let lease_end = dead.heartbeat_at + dead.lease_ms.expect("lab-a's lease kept");
    let marked = store
        .run(run_a)
        .await
        .expect("run")
        .and_then(|r| r.ended_at)
        .expect("run a's end kept");
    assert!(
        marked >= lease_end,
        "marked at {marked}, {} ms before lab-a's lease ran out",
        lease_end - marked
    );
    let why = a["error"].as_str().unwrap_or_default();
    assert!(
        why.contains("lab-a") && why.contains("found by lab-b"),
        "{why}"
    );
    assert!(
        run_processes_alive(&store, run_a).await,
        "lab-b signalled lab-a's processes"
    );
    let b = call(&front, "get_run", &format!("run_id={run_b}")).await;
    assert_eq!(b["status"], "running", "lab-b's run goes on: {b}");
    let agents = call(&front, "get_agents", "").await;
    let state = |name: &str| {
        agents
            .as_array()
            .and_then(|a| a.iter().find(|a| a["name"] == name))
            .map(|a| a["state"].clone())
    };
    assert_eq!(state("lab-a"), Some("Silent".into()), "{agents}");
    assert_eq!(state("lab-b"), Some("Running".into()), "{agents}");

    // lab-a comes back: it stops its own leftovers, and nothing of lab-b's.
    agent_a = spawn_agent("lab-a", ports_a, &dir, &db_url);
    wait_for(
        &front,
        ("get_agents", ""),
        "lab-a idle again",
        Duration::from_secs(60),
        |a| {
            a.as_array().is_some_and(|a| {
                a.iter()
                    .any(|a| a["name"] == "lab-a" && a["state"] == "Idle")
            })
        },
    )
    .await;
    assert!(
        !run_processes_alive(&store, run_a).await,
        "lab-a left its old processes: {}",
        agent_log(&dir, "lab-a")
    );
    crate::common::assert_no_child_left(&store, run_a).await;
    let held_a = held(&store, run_a, ports_a).await;
    assert!(held_a.is_empty(), "lab-a's ports: {held_a:?}");
    assert!(
        run_processes_alive(&store, run_b).await,
        "lab-a touched lab-b's run"
    );
    assert_eq!(held(&store, run_b, ports_b).await.len(), 5);

    // A cancel from the web front reaches lab-b.
    assert_eq!(
        call(&front, "cancel_run", &format!("run_id={run_b}")).await,
        true
    );
    wait_for(
        &front,
        ("get_run", &format!("run_id={run_b}")),
        "lab-b's run cancelled",
        Duration::from_secs(60),
        |r| r["status"] == "interrupted",
    )
    .await;
    crate::common::assert_no_child_left(&store, run_b).await;
    assert!(held(&store, run_b, ports_b).await.is_empty());
    for agent in [&mut agent_a, &mut agent_b] {
        crate::common::signal(agent.0.id(), nix::sys::signal::Signal::SIGTERM);
        assert!(agent.0.wait().expect("exit").success());
    }
    let agents = call(&front, "get_agents", "").await;
    assert!(
        agents
            .as_array()
            .is_some_and(|a| a.iter().all(|a| a["state"] == "Stopped")),
        "{agents}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
