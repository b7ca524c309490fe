//! END-TO-END (about a minute each): mite's own view of a run, read by the
//! lab from mite's message bus, checked against what a real target counted.
//! Real mite (the venv scripts/setup creates), real SQLite, the lab's fixed
//! ports: the tests take turns.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::common::{text, wait_output, CliLab as Lab};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// What the test target counted for one path, with its own handling times.
#[derive(Debug, serde::Deserialize)]
struct TargetCount {
    count: i64,
    errors: i64,
    min_ms: f64,
    max_ms: f64,
}

/// The pid of the second scenario's collector, once that scenario's
/// controller (the last process it starts) runs.
async fn collector_once_the_controller_runs(
    store: &mite_perf::store::Store,
    within: Duration,
) -> u32 {
    let deadline = std::time::Instant::now() + within;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the second scenario's controller never started"
        );
        if let Some(second) = store
            .scenarios(1)
            .await
            .ok()
            .and_then(|s| s.get(1).cloned())
        {
            let processes = store.processes(second.id).await.unwrap_or_default();
            // The component itself, in its sandbox.
            let running = |name: &str| {
                processes
                    .iter()
                    .find(|p| p.name == name && p.ended_at.is_none())
                    .map(|p| crate::common::measured(p.pid as u32, &p.command))
            };
            if let (Some(collector), Some(_)) = (running("collector"), running("controller")) {
                return collector;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn copy_fixture(name: &str, into: &Path) {
    std::fs::copy(Path::new(FIXTURES).join(name), into.join(name)).expect("copy a fixture");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_two_transactions_match_what_the_target_counted_and_concurrency_ramps() {
    let _turn = crate::common::share_the_machine().await;
    let lab = Lab::new("bus-two-transactions");
    let scenarios = lab.dir.join("scenarios");
    std::fs::create_dir_all(&scenarios).expect("scenario folder");
    copy_fixture("two_transactions.py", &scenarios);
    copy_fixture("counting_target.py", &scenarios);
    // A target command writes in its own folder (the scenario's `target`),
    // which the lab names in MITE_PERF_TARGET_DIR.
    let target = "python counting_target.py \"$MITE_PERF_TARGET_DIR/counts.json\"".to_string();
    let child = lab.spawn_run(&[
        "--concurrencies",
        "4",
        "--duration",
        "10s",
        "--scenario",
        "two_transactions:scenario",
        "--scenario-dir",
        &scenarios.display().to_string(),
        "--target-cmd",
        &target,
    ]);
    let output = wait_output(child, Duration::from_secs(180));
    assert!(output.status.success(), "{}", text(&output));

    let counts_file = crate::common::run_dir(&lab.dir).join("scenario4/target/counts.json");
    let counted: HashMap<String, TargetCount> =
        serde_json::from_str(&std::fs::read_to_string(&counts_file).expect("the target's counts"))
            .expect("the target's counts as JSON");
    println!("the target counted: {counted:?}");
    let store = lab.store().await;
    let scenario = &store.scenarios(1).await.expect("scenarios")[0];
    let totals = store.bus_totals(scenario.id).await.expect("totals");
    println!("mite's view: {totals:?}");
    assert_eq!(
        totals
            .iter()
            .map(|t| t.transaction.as_str())
            .collect::<Vec<_>>(),
        ["browse", "checkout"]
    );
    for (transaction, path) in [("browse", "/browse"), ("checkout", "/checkout")] {
        let mite = totals
            .iter()
            .find(|t| t.transaction == transaction)
            .expect("the transaction");
        let target = &counted[path];
        assert!(target.count > 100, "{path}: too few requests to judge");
        // Exact: every response the target gave, mite reported.
        assert_eq!(mite.requests, target.count, "{transaction}: requests");
        assert_eq!(mite.errors, target.errors, "{transaction}: errors");
        assert_eq!(mite.exceptions, 0, "{transaction}: exceptions");
        assert_eq!(mite.transactions, target.count, "{transaction}: ended");
        // The client waits at least as long as the server took, and (on
        // loopback) not much longer than the slowest answer.
        let p50 = mite.p50_ms.expect("a median");
        let p99 = mite.p99_ms.expect("a p99");
        assert!(
            p50 >= target.min_ms,
            "{transaction}: p50 {p50} ms below the target's fastest answer {} ms",
            target.min_ms
        );
        assert!(
            p50 <= target.max_ms + 10.0,
            "{transaction}: p50 {p50} ms above the target's slowest answer {} ms",
            target.max_ms
        );
        assert!(
            p99 <= target.max_ms + 50.0,
            "{transaction}: p99 {p99} ms far above the target's slowest answer {} ms",
            target.max_ms
        );
    }
    // mite's p99 over the steady seconds, every transaction together, is
    // kept with the scenario's figures (compared, and a trend's series).
    let figures = store
        .stored_figures(scenario.id)
        .await
        .expect("figures")
        .expect("the scenario's figures");
    let steady_p99 = figures.latency_p99_ms.expect("mite's steady p99");
    let fastest = counted.values().map(|c| c.min_ms).fold(f64::MAX, f64::min);
    let slowest = counted.values().map(|c| c.max_ms).fold(0.0, f64::max);
    assert!(
        steady_p99 >= fastest && steady_p99 <= slowest + 50.0,
        "steady p99 {steady_p99} ms outside the target's {fastest}..{slowest} ms"
    );
    let checkout = &counted["/checkout"];
    assert_eq!(checkout.errors, checkout.count / 4, "the target's own rule");
    assert_eq!(counted["/browse"].errors, 0);

    // Errors by kind: the failed checkouts, as HTTP 500.
    let errors = store.bus_errors(scenario.id).await.expect("errors");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (errors[0].transaction.as_str(), errors[0].kind.as_str()),
        ("checkout", "HTTP 500")
    );
    assert_eq!(errors[0].count, checkout.errors);

    // The intervals add up to the totals, and so does transactions.csv.
    let intervals = store.bus_intervals(scenario.id).await.expect("intervals");
    for t in &totals {
        let sum: i64 = intervals
            .iter()
            .filter(|i| i.transaction == t.transaction)
            .map(|i| i.requests)
            .sum();
        assert_eq!(sum, t.requests, "{}: intervals", t.transaction);
    }
    let csv = std::fs::read_to_string(crate::common::run_dir(&lab.dir).join("transactions.csv"))
        .expect("transactions.csv beside samples.csv");
    let csv_requests: i64 = csv
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .nth(5)
                .expect("requests")
                .parse::<i64>()
                .expect("a count")
        })
        .sum();
    assert_eq!(csv_requests, totals.iter().map(|t| t.requests).sum::<i64>());

    // Required against actual journeys: the ramp 1, 2, 3, 4, followed.
    let reports = store.bus_concurrency(scenario.id).await.expect("reports");
    println!("controller reports: {reports:?}");
    let ramping: Vec<_> = reports.iter().filter(|r| r.required > 0).collect();
    assert!(ramping.len() >= 6, "{reports:?}");
    assert!(
        ramping.windows(2).all(|w| w[0].required <= w[1].required),
        "required never falls while the model runs: {reports:?}"
    );
    for wanted in 1..=4 {
        assert!(
            ramping.iter().any(|r| r.required == wanted),
            "required {wanted} never reported: {reports:?}"
        );
    }
    let followed = ramping
        .iter()
        .filter(|r| (r.actual - r.required).abs() <= 1)
        .count();
    assert!(
        followed * 10 >= ramping.len() * 8,
        "actual strayed from required: {reports:?}"
    );
    assert!(ramping.iter().all(|r| r.runners == 1));

    let counts = store.bus_summary(scenario.id).await.expect("counts");
    assert_eq!(counts.missed, Some(0), "the lab missed messages");
    assert_eq!(counts.undecodable, Some(0));
    assert_eq!(counts.journeys, Some(counted["/browse"].count));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_thousand_journeys_are_flagged_runner_cpu_bound_and_one_is_not() {
    let _turn = crate::common::share_the_machine().await;
    let lab = Lab::new("bus-validity");
    // Keeping no collector data: at 1000 journeys the collector writes
    // megabytes a second, and none of it is left.
    let child = lab.spawn_run(&[
        "--concurrencies",
        "1,1000",
        "--duration",
        "10s",
        "--collector-keep",
        "none",
    ]);
    // FAULTS row 22, for real: once the 1000-journey scenario's controller
    // runs, its collector is stopped (SIGSTOP) for 6 s, so the duplicator's
    // queue for it fills and mite drops messages; then it goes on.
    let store = lab.store().await;
    let collector = collector_once_the_controller_runs(&store, Duration::from_secs(180)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    crate::common::signal(collector, nix::sys::signal::Signal::SIGSTOP);
    tokio::time::sleep(Duration::from_secs(6)).await;
    crate::common::signal(collector, nix::sys::signal::Signal::SIGCONT);
    let output = wait_output(child, Duration::from_secs(240));
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");

    let scenarios = store.scenarios(1).await.expect("scenarios");
    let flags_of = |i: usize| {
        let s = &scenarios[i];
        let store = store.clone();
        let bus = s.bus;
        let id = s.id;
        async move {
            let figures = store
                .stored_figures(id)
                .await
                .expect("figures")
                .expect("stored");
            println!(
                "scenario {id}: runner busy share {:?}, other load {:?}, bus {bus:?}",
                figures
                    .processes
                    .iter()
                    .find(|p| p.process == mite_perf::model::ProcessKind::Runner)
                    .and_then(|p| p.busy_share),
                figures.other_cpu
            );
            domain::validity::validity_flags(&figures, &bus)
                .into_iter()
                .map(|f| f.issue)
                .collect::<Vec<_>>()
        }
    };
    use domain::validity::Issue;
    let one = flags_of(0).await;
    let thousand = flags_of(1).await;
    assert!(!one.contains(&Issue::RunnerCpuBound), "{one:?}");
    assert!(thousand.contains(&Issue::RunnerCpuBound), "{thousand:?}");
    // The summary says so too.
    assert!(
        stdout.contains("! runner CPU-bound: The runner was CPU-bound"),
        "{stdout}"
    );
    // The duplicator dropped what the stopped collector could not take:
    // counted from its log, and the scenario is flagged with the numbers.
    let bus = &scenarios[1].bus;
    let collector_dropped = bus
        .collector_dropped
        .expect("drops for the collector counted");
    assert!(collector_dropped > 0, "{bus:?}");
    assert!(bus.missed.is_some(), "drops for the lab counted: {bus:?}");
    assert!(thousand.contains(&Issue::MessagesDropped), "{thousand:?}");
    assert!(
        stdout.contains("messages dropped"),
        "the summary says so: {stdout}"
    );
    // Nothing else of the scenario changed: it ran to its end.
    assert_eq!(
        scenarios[1].status,
        mite_perf::model::ScenarioStatus::Done,
        "{:?}",
        scenarios[1].error
    );
    // The scenario of one journey dropped nothing.
    assert!(!one.contains(&Issue::MessagesDropped), "{one:?}");
    let dir = crate::common::run_dir(&lab.dir);
    for scenario in ["scenario1", "scenario1000"] {
        let collector = dir.join(scenario).join("collector");
        let left: Vec<_> = std::fs::read_dir(&collector)
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{scenario}: {left:?} kept");
        assert!(
            dir.join(scenario).join("collector.log").is_file(),
            "{scenario}: the collector ran"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_two_runners_are_started_and_sampled_each_and_the_scaling_view_draws() {
    let _turn = crate::common::share_the_machine().await;
    let lab = Lab::new("bus-runners");
    let child = lab.spawn_run(&[
        "--concurrencies",
        "1,10",
        "--duration",
        "6s",
        "--runners",
        "2",
    ]);
    let output = wait_output(child, Duration::from_secs(180));
    assert!(output.status.success(), "{}", text(&output));

    let store = lab.store().await;
    let run = store.run(1).await.expect("run").expect("run 1");
    assert_eq!(run.params.runners, 2);
    for scenario in store.scenarios(1).await.expect("scenarios") {
        let processes = store.processes(scenario.id).await.expect("processes");
        let runners: Vec<_> = processes.iter().filter(|p| p.name == "runner").collect();
        assert_eq!(runners.len(), 2, "{}: {processes:?}", scenario.name);
        assert!(runners
            .iter()
            .all(|r| r.exit_status.as_deref() == Some("exit 0")));
        // Each runner sampled on its own (under its own pid: the runner
        // itself, in its sandbox), each busy.
        let samples = store.scenario_samples(scenario.id).await.expect("samples");
        let mut sampled: Vec<i64> = samples
            .iter()
            .filter(|s| s.process == mite_perf::model::ProcessKind::Runner)
            .map(|s| s.pid)
            .collect();
        sampled.sort_unstable();
        sampled.dedup();
        assert_eq!(sampled.len(), 2, "{}: {sampled:?}", scenario.name);
        for pid in sampled {
            let cpu: f64 = samples.iter().filter(|s| s.pid == pid).map(|s| s.cpu).sum();
            assert!(cpu > 0.0, "{}: runner {pid} idle", scenario.name);
        }
        let figures = store
            .stored_figures(scenario.id)
            .await
            .expect("figures")
            .expect("stored");
        assert_eq!(figures.runners, Some(2), "{}", scenario.name);
        // The controller saw both.
        let reports = store.bus_concurrency(scenario.id).await.expect("reports");
        assert!(
            reports.iter().any(|r| r.runners == 2),
            "{}: {reports:?}",
            scenario.name
        );
        // mite's count is still the target's.
        let mite: i64 = store
            .bus_totals(scenario.id)
            .await
            .expect("totals")
            .iter()
            .map(|t| t.requests)
            .sum();
        assert_eq!(mite, figures.total_requests, "{}", scenario.name);
    }

    // The scaling view: its charts, in a real browser.
    let server = crate::common::Server::front_for("bus-runners-web", lab.db_url()).await;
    let browser = crate::common::Browser::start().await;
    browser.goto(&server.url("/runs/1")).await;
    browser.wait_hydrated().await;
    browser
        .wait_for(
            "the scaling view's charts",
            r#"const h = document.querySelector('section.matrix h2');
               const charts = document.querySelectorAll('.matrix-charts .chart[data-rendered="1"]');
               return !!h && h.innerText.includes('2 runners') && charts.length >= 3;"#,
            Duration::from_secs(30),
        )
        .await;
    let series = browser
        .eval(
            r#"const c = echarts.getInstanceByDom(document.querySelector('.matrix-charts .chart'));
               return c.getOption().series.map(s => [s.name, s.data.length]);"#,
        )
        .await;
    println!("scaling chart series: {series}");
    let series: Vec<(String, usize)> = serde_json::from_value(series).expect("series");
    assert!(
        series
            .iter()
            .any(|(name, points)| name.contains("× 2 runners") && *points == 2),
        "{series:?}"
    );
    // Each runner has its own line on the CPU chart.
    let cpu_series = browser
        .eval(
            r#"const c = echarts.getInstanceByDom(document.querySelector('.charts.processes .chart'));
               return c.getOption().series.map(s => s.name).filter(n => n.startsWith('runner'));"#,
        )
        .await;
    let cpu_series: Vec<String> = serde_json::from_value(cpu_series).expect("names");
    assert_eq!(cpu_series.len(), 2, "{cpu_series:?}");
    browser.screenshot(&lab.dir.join("runners.png")).await;
    // The browser said no error (a script exception, a CSP violation,
    // a resource refused) on the last page either.
    browser.assert_console_clean().await;
}

/// FAULTS.md 50: anyone on the agent's host (or scenario code) pushes a
/// frame of a million nested arrays into mite's message port during a
/// run. mite's duplicator forwards it, raw, to each of its outputs. The
/// lab's reader once recursed over it until its thread's stack overflowed,
/// and the Rust runtime aborted the whole process: the agent and, under
/// `serve`, the pages. Now the lab counts it as undecodable and goes on.
/// mite's own collector refuses it too (msgpack's `StackError`) and exits
/// 1: that scenario fails naming it, as any child that dies mid-scenario
/// does, and the agent measures the run's next scenario to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_hostile_frame_pushed_into_mites_port_is_counted_and_the_lab_lives() {
    use mite_perf::model::ScenarioStatus;
    use zeromq::{PushSocket, Socket, SocketSend, ZmqMessage};
    let _turn = crate::common::share_the_machine().await;
    let mut server = crate::common::Server::start("bus-hostile").await;
    let lab_pid = server.pid();
    let run = server
        .call(
            "launch_run",
            &crate::common::launch_form("1,2", "6s", "hostile"),
        )
        .await;
    let run_id = run["Queued"]["run_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("queued: {run}"));
    // Once the first scenario's controller runs, the lab's reader reads.
    let store = mite_perf::store::Store::connect(&server.db_url())
        .await
        .expect("open the lab's database");
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let (first, controller_pid) = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the scenario's controller never started:\n{}",
            server.log()
        );
        if let Some(first) = store
            .scenarios(run_id)
            .await
            .ok()
            .and_then(|s| s.first().cloned())
        {
            let processes = store.processes(first.id).await.unwrap_or_default();
            if let Some(controller) = processes
                .iter()
                .find(|p| p.name == "controller" && p.ended_at.is_none())
            {
                break (first, controller.pid);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut hostile = b"\x81\xa1k".to_vec();
    hostile.extend(std::iter::repeat_n(0x91u8, 1_000_000));
    hostile.push(0xc0);
    // mite listens inside the scenario's own network (the sandbox): the
    // pusher joins it from a thread of its own, as root may, and its
    // socket stays there. The controller's recorded process joined that
    // network before it started.
    let port = server.ports.message;
    let pushed = std::thread::spawn(move || -> Result<(), String> {
        let netns = std::fs::File::open(format!("/proc/{controller_pid}/ns/net"))
            .map_err(|e| format!("the scenario's network: {e}"))?;
        nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("join the scenario's network (the suite runs as root): {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            let mut push = PushSocket::new();
            push.connect(&format!("tcp://127.0.0.1:{port}"))
                .await
                .map_err(|e| format!("connect to mite's message port: {e}"))?;
            push.send(ZmqMessage::from(hostile))
                .await
                .map_err(|e| format!("push the frame: {e}"))?;
            // Time for the duplicator to pass it on before the socket goes.
            tokio::time::sleep(Duration::from_secs(2)).await;
            drop(push);
            Ok(())
        })
    });
    tokio::task::spawn_blocking(move || pushed.join())
        .await
        .expect("the pusher's thread")
        .expect("the pusher did not panic")
        .expect("the frame was pushed into mite's port");

    let finished = crate::common::wait_status(
        &server,
        run_id,
        &["done", "failed", "interrupted"],
        Duration::from_secs(180),
    )
    .await;
    println!("the run: {finished}");
    // The lab lived through it: the same process answers, healthy.
    assert_eq!(server.pid(), lab_pid);
    let (status, health) = server.get("/healthz").await.expect("the lab still answers");
    assert_eq!(status, 200, "{health}");
    assert!(
        server
            .log()
            .contains("a frame the lab cannot read (counted as undecodable) error=a message nested deeper than 64 levels"),
        "the frame is logged as what it was:\n{}",
        server.log()
    );
    // mite's view of the scenario counts the frame, and the rest was read.
    let bus = store.bus_summary(first.id).await.expect("mite's view");
    println!("the first scenario's bus: {bus:?}");
    assert_eq!(bus.undecodable, Some(1), "{bus:?}");
    assert!(
        bus.messages.unwrap_or(0) > 100,
        "the rest was read: {bus:?}"
    );
    // mite's collector died of the frame (mite's own msgpack refuses it):
    // that scenario failed naming it, and the run went on.
    let scenarios = store.scenarios(run_id).await.expect("scenarios");
    assert_eq!(scenarios.len(), 2);
    let collector_log = std::fs::read_to_string(
        crate::common::run_dir(&server.dir)
            .join(&scenarios[0].name)
            .join("collector.log"),
    )
    .unwrap_or_default();
    if scenarios[0].status == ScenarioStatus::Failed {
        let error = scenarios[0].error.clone().unwrap_or_default();
        assert!(error.contains("collector exit 1"), "{error}");
        assert!(collector_log.contains("StackError"), "{collector_log}");
    }
    // The agent measured the next scenario to its end, its bus whole.
    assert_eq!(
        scenarios[1].status,
        ScenarioStatus::Done,
        "{:?}\n{}",
        scenarios[1].error,
        server.log()
    );
    let next = store
        .bus_summary(scenarios[1].id)
        .await
        .expect("mite's view");
    assert_eq!(next.undecodable, Some(0), "{next:?}");
    assert!(next.messages.unwrap_or(0) > 100, "{next:?}");
    assert_ne!(finished["status"], "interrupted", "{finished}");
    crate::common::assert_no_child_left(&store, run_id).await;
    assert!(server.stop().success());
}
