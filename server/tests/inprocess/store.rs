//! The store, one suite run against both backends: SQLite in a temporary
//! folder and a PostgreSQL server the test starts on a loopback port.

use futures_util::{StreamExt, TryStreamExt};

use crate::common::{temp_dir, Postgres};
use mite_perf::agent_identity::AgentIdentity;
use mite_perf::bus::message::BusMessage;
use mite_perf::bus::tally::BusTally;
use mite_perf::bus::BusBatch;
use mite_perf::figures::scenario_figures;
use mite_perf::model::{ProcessDetail, ProcessKind, RunParams, RunStatus, Sample, ScenarioStatus};
use mite_perf::reports::csv;
use mite_perf::store::{
    Backend, LeaseState, NewProcess, RunEnvironment, SampleBatch, SampleRow, SampleSource, Store,
};

fn sample(process: ProcessKind, second: i64, cpu: f64, requests: Option<(i64, i64)>) -> Sample {
    Sample {
        process,
        pid: 42,
        at_ms: 1_700_000_000_000 + 1_000 * second,
        elapsed_ms: 1_000 * second,
        cpu,
        mem: (1 << 20) + second,
        requests: requests.map(|r| r.0),
        requests_in_interval: requests.map(|r| r.1),
        // The runner's samples carry what /proc says beyond CPU and memory.
        detail: (process == ProcessKind::Runner).then_some(ProcessDetail {
            threads: 4 + second,
            fds: 30,
            cpu_wait: 2.5,
            voluntary_switches: 10 * second,
            involuntary_switches: 300,
            read_bytes: 0,
            write_bytes: 4096 * second,
        }),
    }
}

/// mite's own account, counted by the lab's tally from messages as mite
/// sends them and written as the sampler writes it: tick by tick, totals
/// replaced, intervals added.
async fn bus_rows_round_trip(store: &Store, scenario_id: i64) {
    const ORIGIN: i64 = 1_700_000_000_000;
    let at = |ms: i64| (ORIGIN + ms) as f64 / 1000.0;
    let mut tally = BusTally::new(ORIGIN);
    let writer = store.sample_writer().await.expect("writer");
    let write = |bus: BusBatch| {
        let writer = writer.clone();
        async move {
            writer
                .write(&[SampleBatch {
                    scenario_id,
                    samples: Vec::new(),
                    figures: None,
                    bus: Some(bus),
                }])
                .await
                .expect("write mite's rows")
        }
    };
    for second in 0..3i64 {
        for i in 0..10 {
            let ms = second * 1000 + i * 50;
            tally.add(&BusMessage::Response {
                transaction: "browse",
                time: at(ms),
                status: 200,
                total_time: (1 + i) as f64 / 1000.0,
            });
            tally.add(&BusMessage::Response {
                transaction: "checkout, then pay",
                time: at(ms + 10),
                status: if i % 5 == 0 { 503 } else { 200 },
                total_time: 0.020,
            });
        }
        tally.add(&BusMessage::ControllerReport {
            time: at(second * 1000 + 900),
            required: second + 1,
            actual: second,
            runners: 1,
        });
        write(tally.take_ready(ORIGIN + second * 1000 + 1300)).await;
    }
    tally.add(&BusMessage::Error {
        transaction: "",
        time: at(3100),
        kind: "AcurlError",
        message: "curl failed with code 7",
    });
    write(tally.take_all()).await;

    let intervals = store.bus_intervals(scenario_id).await.expect("intervals");
    assert_eq!(intervals.len(), 3 * 2 + 1, "{intervals:?}");
    assert_eq!(intervals[0].transaction, "browse");
    assert_eq!((intervals[0].elapsed_ms, intervals[0].requests), (0, 10));
    // HDR histograms keep 3 significant figures.
    let p99 = intervals[0].p99_ms.expect("a p99");
    assert!((9.99..=10.02).contains(&p99), "{p99}");
    assert_eq!(intervals[1].errors, 2);
    let totals = store.bus_totals(scenario_id).await.expect("totals");
    assert_eq!(totals, tally.totals());
    assert_eq!(
        totals
            .iter()
            .map(|t| (t.transaction.as_str(), t.requests, t.errors, t.exceptions))
            .collect::<Vec<_>>(),
        [
            ("(journey)", 0, 0, 1),
            ("browse", 30, 0, 0),
            ("checkout, then pay", 30, 6, 0)
        ]
    );
    let errors = store.bus_errors(scenario_id).await.expect("errors");
    assert_eq!(
        errors
            .iter()
            .map(|e| (e.kind.as_str(), e.count))
            .collect::<Vec<_>>(),
        [("HTTP 503", 6), ("AcurlError", 1)]
    );
    assert_eq!(errors[1].example, "curl failed with code 7");
    let reports = store.bus_concurrency(scenario_id).await.expect("reports");
    assert_eq!(
        reports
            .iter()
            .map(|r| (r.elapsed_ms, r.required, r.actual))
            .collect::<Vec<_>>(),
        [(900, 1, 0), (1900, 2, 1), (2900, 3, 2)]
    );
    store
        .record_dropped_messages(scenario_id, 0, 12)
        .await
        .expect("dropped");
    let counts = store.bus_summary(scenario_id).await.expect("counts");
    assert_eq!(
        (counts.messages, counts.missed, counts.collector_dropped),
        (Some(64), Some(0), Some(12))
    );
    let chunks: Vec<Vec<u8>> = mite_perf::reports::transactions::chunks(
        store,
        vec![store
            .scenario(scenario_id)
            .await
            .expect("read")
            .expect("the scenario")],
    )
    .try_collect()
    .await
    .expect("transactions.csv");
    let csv = String::from_utf8(chunks.concat()).expect("utf-8");
    assert_eq!(csv.lines().count(), 1 + intervals.len());
    // Read page by page, mite's view in buckets: the same counts.
    let bucketed = store
        .bus_intervals_bucketed(scenario_id, 2000)
        .await
        .expect("bucketed");
    let total = |rows: &[mite_perf::model::TransactionInterval]| -> i64 {
        rows.iter().map(|i| i.requests).sum()
    };
    assert_eq!(total(&bucketed), total(&intervals));
    assert!(bucketed.iter().all(|i| i.elapsed_ms % 2000 == 0));
    let concurrency = store
        .bus_concurrency_bucketed(scenario_id, 2000)
        .await
        .expect("bucketed");
    assert!(!concurrency.is_empty());
    assert!(csv.contains(",\"checkout, then pay\","), "{csv}");
}

/// Every store operation the lab uses, on `store`.
async fn suite(store: Store) {
    // Runs: the queue, oldest first.
    let params = RunParams {
        label: "Suite Run".into(),
        launched_by: "ana".into(),
        concurrencies: vec![1, 10],
        ..RunParams::default()
    };
    let first = store
        .create_run(&params, RunStatus::Queued)
        .await
        .expect("queue");
    let second = store
        .create_run(&params, RunStatus::Queued)
        .await
        .expect("queue");
    assert_eq!(store.queued_count().await.expect("count"), 2);
    assert_eq!(store.queue_position(second).await.expect("pos"), Some(2));
    let host = AgentIdentity {
        id: "lab-a (boot 0000aaaa)".into(),
        name: "lab-a".into(),
        lease: std::time::Duration::from_secs(60),
        ports: Default::default(),
        machine_epoch: 0,
    };
    let other = AgentIdentity {
        id: "lab-b (boot 0000bbbb)".into(),
        name: "lab-b".into(),
        ..host.clone()
    };
    let claimed = store
        .claim_next_queued(&host, 4242)
        .await
        .expect("claim")
        .expect("a queued run");
    assert_eq!(claimed.id, first);
    assert_eq!(claimed.status, RunStatus::Running);
    assert_eq!(claimed.params, params);
    assert_eq!(store.queue_position(first).await.expect("pos"), None);
    assert_eq!(store.queue_position(second).await.expect("pos"), Some(1));
    assert!(store.delete_queued(second).await.expect("delete"));
    assert!(!store.delete_queued(first).await.expect("not queued"));
    assert!(store
        .claim_next_queued(&other, 1)
        .await
        .expect("claim")
        .is_none());
    // The claim names its host, with a lease; a cancel asked anywhere
    // reaches the host when it renews; another host renews nothing.
    assert_eq!(claimed.agent_id.as_deref(), Some(host.id.as_str()));
    assert_eq!(claimed.lab_pid, Some(4242));
    // The lease ends a lease time from now on the database's clock.
    let now = store.database_now_ms().await.expect("the database's clock");
    assert!(
        claimed
            .lease_expires_at
            .is_some_and(|end| end > now + 50_000 && end <= now + 60_000),
        "{:?} against {now}",
        claimed.lease_expires_at
    );
    let fence = claimed.fence().expect("a lease of its own");
    let leased = store.fenced(fence.clone());
    assert_eq!(
        leased.renew_lease(&host).await.expect("renew"),
        LeaseState::Held
    );
    // Another lease (another claim's, another agent of the same name's)
    // renews nothing and writes nothing.
    let stranger = store.fenced(mite_perf::store::Fence {
        run_id: first,
        lease_id: "not-the-lease".into(),
    });
    assert_eq!(
        stranger.renew_lease(&other).await.expect("renew"),
        LeaseState::Lost,
        "not other's lease"
    );
    assert!(!store
        .request_cancel(second)
        .await
        .expect("cancel a deleted run"));
    assert!(store.request_cancel(first).await.expect("cancel"));
    assert_eq!(
        leased.renew_lease(&host).await.expect("renew"),
        LeaseState::CancelAsked,
        "a cancel was asked"
    );
    assert!(
        store
            .run(first)
            .await
            .expect("query")
            .expect("run")
            .cancel_requested
    );
    assert!(store.run(second).await.expect("query").is_none());

    // A claimed run says what it does until it starts; not after.
    assert_eq!(claimed.stage, None);
    store
        .set_run_stage(first, "installing mite 2.10.0 …")
        .await
        .expect("stage");
    let preparing = store.run(first).await.expect("query").expect("the run");
    assert_eq!(preparing.stage.as_deref(), Some("installing mite 2.10.0 …"));

    let env = RunEnvironment {
        mite_version: "2.11.0".into(),
        python_version: "3.11.7".into(),
        host: "lab-host".into(),
        cores: 2,
    };
    store
        .start_run(first, &env, "/tmp/out", 4242)
        .await
        .expect("start");
    let running = store.running_runs().await.expect("running");
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].environment, env);
    assert_eq!(running[0].lab_pid, Some(4242));
    assert_eq!(running[0].output_dir.as_deref(), Some("/tmp/out"));
    assert_eq!(running[0].stage, None, "starting clears the stage");
    store
        .set_run_stage(first, "mite 2.10.0 ready in 3 s")
        .await
        .expect("stage");
    let started = store.run(first).await.expect("query").expect("the run");
    assert_eq!(started.stage, None, "a started run takes no stage");

    // Scenarios and processes.
    let sc1 = store
        .create_scenario(first, 0, domain::builds::Slot::once(1), &params)
        .await
        .expect("scenario");
    let sc10 = store
        .create_scenario(first, 1, domain::builds::Slot::once(10), &params)
        .await
        .expect("scenario");
    store.start_scenario(sc1, 1_000).await.expect("start");
    let p = store
        .record_process(
            sc1,
            NewProcess {
                kind: ProcessKind::Runner,
                pid: 4243,
                start_ticks: 99,
                command: "mite runner",
                log_path: "/tmp/out/scenario1/runner.log",
            },
        )
        .await
        .expect("process");
    let open = store.open_processes().await.expect("open");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].run_id, first);
    assert_eq!(open[0].start_ticks, 99);
    store.end_process(p, "exit 0").await.expect("end");
    assert!(store.open_processes().await.expect("open").is_empty());
    assert_eq!(
        store.processes(sc1).await.expect("processes")[0]
            .exit_status
            .as_deref(),
        Some("exit 0")
    );

    // Samples, written as the sampler writes them: a tick at a time.
    let writer = store.sample_writer().await.expect("writer");
    let mut all = Vec::new();
    for second in 1..=10 {
        // In the order the store reads them back: by time, then name.
        let tick = vec![
            sample(ProcessKind::Runner, second, 50.0 + second as f64, None),
            sample(ProcessKind::Target, second, 10.0, Some((100 * second, 100))),
        ];
        all.extend(tick.clone());
        writer
            .write(&[SampleBatch {
                scenario_id: sc1,
                samples: tick,
                figures: Some(scenario_figures(&all)),
                bus: None,
            }])
            .await
            .expect("write");
        // The figures so far are readable while it runs.
        let live = store
            .stored_figures(sc1)
            .await
            .expect("figures")
            .expect("stored");
        assert_eq!(live.total_requests, 100 * second);
    }
    assert_eq!(store.scenario_samples(sc1).await.expect("read"), all);
    let window = store
        .scenario_samples_between(sc1, 3_000, 5_000)
        .await
        .expect("window");
    assert_eq!(window.len(), 6);
    assert!(window
        .iter()
        .all(|s| (3_000..=5_000).contains(&s.elapsed_ms)));
    let latest = store.latest_samples(sc1).await.expect("latest");
    assert_eq!(latest.len(), 2);
    assert!(latest.iter().all(|s| s.elapsed_ms == 10_000));
    let buckets = store
        .scenario_samples_bucketed(sc1, 0, 10_000, 5_000)
        .await
        .expect("buckets");
    let http: Vec<&Sample> = buckets
        .iter()
        .filter(|s| s.process == ProcessKind::Target)
        .collect();
    // Buckets 0 (1–4 s), 5000 (5–9 s) and 10000 (10 s), each with its peak.
    assert_eq!(
        http.iter().map(|s| s.elapsed_ms).collect::<Vec<_>>(),
        [0, 5_000, 10_000]
    );
    assert_eq!(
        http.iter().map(|s| s.requests).collect::<Vec<_>>(),
        [Some(400), Some(900), Some(1000)]
    );
    let runner_peaks: Vec<f64> = buckets
        .iter()
        .filter(|s| s.process == ProcessKind::Runner)
        .map(|s| s.cpu)
        .collect();
    assert_eq!(runner_peaks, [54.0, 59.0, 60.0]);
    bus_rows_round_trip(&store, sc1).await;

    let figures = scenario_figures(&all);
    store
        .finish_scenario(sc1, ScenarioStatus::Done, None, None, &figures)
        .await
        .expect("finish");
    assert_eq!(
        store.stored_figures(sc1).await.expect("figures"),
        Some(figures)
    );
    store
        .close_open_scenarios(first, ScenarioStatus::Skipped)
        .await
        .expect("close");
    let scenarios = store.scenarios(first).await.expect("scenarios");
    assert_eq!(
        scenarios.iter().map(|s| s.status).collect::<Vec<_>>(),
        [ScenarioStatus::Done, ScenarioStatus::Skipped]
    );
    assert_eq!(scenarios[1].id, sc10);
    assert!(store.stored_figures(sc10).await.expect("none").is_none());

    // Whole runs, streamed in order, and as CSV.
    let rows: Vec<SampleRow> = store.run_samples(first).try_collect().await.expect("rows");
    assert_eq!(rows.len(), 20);
    assert!(rows
        .iter()
        .all(|r| r.scenario == "scenario1" && r.concurrency == 1));
    assert_eq!(store.sample_count(first).await.expect("count"), 20);
    let csv_bytes: Vec<u8> = csv::chunks(&store, SampleSource::Run(first), csv::Layout::Samples)
        .map(|c| c.expect("chunk"))
        .concat()
        .await;
    let text = String::from_utf8(csv_bytes).expect("utf-8");
    let expected: String = std::iter::once(csv::HEADER.to_string())
        .chain(rows.iter().map(csv::line))
        .collect();
    assert_eq!(text, expected);
    let scenario_rows: Vec<SampleRow> = store
        .scenario_sample_rows(sc1)
        .try_collect()
        .await
        .expect("rows");
    assert_eq!(scenario_rows, rows);
    // The fast whole-run read keeps every column, the detail too.
    let streamed: Vec<Sample> = rows.iter().map(|r| r.sample.clone()).collect();
    let mut stored = store.scenario_samples(sc1).await.expect("read");
    stored.sort_by_key(|s| (s.elapsed_ms, s.process.as_str()));
    let mut streamed_sorted = streamed.clone();
    streamed_sorted.sort_by_key(|s| (s.elapsed_ms, s.process.as_str()));
    assert_eq!(streamed_sorted, stored);
    let processes: Vec<u8> =
        csv::chunks(&store, SampleSource::Scenario(sc1), csv::Layout::Processes)
            .map(|c| c.expect("chunk"))
            .concat()
            .await;
    let processes = String::from_utf8(processes).expect("utf-8");
    assert!(processes.starts_with(csv::PROCESS_HEADER), "{processes}");
    assert!(
        processes.contains(
            "\nscenario1,1,runner,42,3.000,1700000003.000,53.00,2.50,1048579,7,30,30,300,0,12288\n"
        ),
        "{processes}"
    );
    assert!(
        processes.contains("\nscenario1,1,target,42,3.000,1700000003.000,10.00,,1048579,,,,,,\n"),
        "{processes}"
    );

    // History: newest first, filtered, with total requests.
    store
        .finish_run(first, RunStatus::Done, None)
        .await
        .expect("finish run");
    let other = store
        .create_run(
            &RunParams {
                label: "another".into(),
                ..RunParams::default()
            },
            RunStatus::Queued,
        )
        .await
        .expect("queue");
    let (runs, total) = store
        .list_runs("suite", Some(RunStatus::Done), 20, 0)
        .await
        .expect("list");
    assert_eq!(total, 1);
    assert_eq!(runs[0].0.id, first);
    assert_eq!(runs[0].1, 1000, "total requests of the run");
    let (runs, total) = store.list_runs("", None, 1, 0).await.expect("list");
    assert_eq!((runs[0].0.id, total), (other, 2));
    let (runs, _) = store.list_runs("", None, 1, 1).await.expect("page 2");
    assert_eq!(runs[0].0.id, first);

    builds_provenance_and_baselines(&store, first, other).await;
    library_round_trip(&store).await;
    trend_marks_round_trip(&store).await;
    wheels_round_trip(&store).await;
    unused_wheels_are_forgotten_unless_a_waiting_or_running_run_names_them(&store).await;
    the_last_admin_stays_whoever_races(&store).await;
    writes_after_a_lost_lease_store_nothing(&store).await;
    a_live_agents_name_is_judged_by_its_own_lease(&store).await;
}

/// FAULTS.md 53: a newcomer asks for a live agent's name with a lease
/// shorter than the holder's heartbeat (the holder beats every 5 s on a
/// lease of 30 s; the newcomer's `--lease` may be as short as 3 s). The
/// holder is judged by its own lease, on the database's clock: it keeps
/// its name and its heartbeat. A holder silent past its own lease gives
/// its name up, whatever the newcomer's lease.
async fn a_live_agents_name_is_judged_by_its_own_lease(store: &Store) {
    use mite_perf::store::AgentRecord;
    let holder = AgentRecord {
        lease_ms: Some(30_000),
        ..crate::common::seed::agent("steady", 1111)
    };
    store.register_agent(&holder).await.expect("register");
    // The holder's last beat is older than the newcomer's lease.
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    let newcomer = AgentRecord {
        host_id: "steady (boot 2)".into(),
        pid: 2222,
        lease_ms: Some(10),
        ..holder.clone()
    };
    assert!(
        !store
            .claim_agent_name(&newcomer, 10, None)
            .await
            .expect("claim"),
        "a live agent's name taken by a newcomer's short lease"
    );
    assert!(
        store
            .agent_heartbeat("steady", &holder.host_id, 1111, None)
            .await
            .expect("beat"),
        "the holder still beats under its name"
    );
    let kept = store.agent("steady").await.expect("agent").expect("row");
    assert_eq!((kept.pid, kept.lease_ms), (1111, Some(30_000)));

    // A holder whose own lease is short, silent past it: its name is free
    // even to a newcomer with a long lease.
    let brief = AgentRecord {
        lease_ms: Some(10),
        ..crate::common::seed::agent("brief", 3333)
    };
    store.register_agent(&brief).await.expect("register");
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    let patient = AgentRecord {
        host_id: "brief (boot 2)".into(),
        pid: 4444,
        lease_ms: Some(60_000),
        ..brief.clone()
    };
    assert!(store
        .claim_agent_name(&patient, 60_000, None)
        .await
        .expect("claim"));
    assert!(!store
        .agent_heartbeat("brief", &brief.host_id, 3333, None)
        .await
        .expect("beat"));
    for name in ["steady", "brief"] {
        store
            .agent_stopped(
                name,
                &store
                    .agent(name)
                    .await
                    .expect("agent")
                    .expect("row")
                    .host_id,
                store.agent(name).await.expect("agent").expect("row").pid,
            )
            .await
            .expect("stopped");
    }
}

/// Every write an agent makes for a run carries its lease: once another
/// agent has marked the run interrupted (its lease ran out), the first
/// agent's samples, bus data, processes, scenario starts and ends,
/// profiles and the run's own end are refused (`LeaseLost`), nothing of
/// them is stored, and the run is not brought back from interrupted. A
/// second agent sharing the first's name (and so its agent id) holds a
/// lease of its own.
async fn writes_after_a_lost_lease_store_nothing(store: &Store) {
    use mite_perf::store::StoreError;
    let host = AgentIdentity {
        id: "twin (boot 1, pid ns 1)".into(),
        name: "twin".into(),
        lease: std::time::Duration::from_secs(60),
        ports: Default::default(),
        machine_epoch: 0,
    };
    let params = RunParams {
        concurrencies: vec![1],
        ..RunParams::default()
    };
    // Other runs may wait in this suite's queue: claim until this one.
    let run = store
        .create_run(
            &RunParams {
                agent: Some("twin".into()),
                ..params.clone()
            },
            RunStatus::Queued,
        )
        .await
        .expect("run");
    let claimed = loop {
        let next = store
            .claim_next_queued(&host, 1)
            .await
            .expect("claim")
            .expect("the twin's run, at the latest");
        if next.id == run {
            break next;
        }
    };
    let agent = store.fenced(claimed.fence().expect("a lease"));
    agent
        .start_run(run, &RunEnvironment::default(), "/tmp/twin", 1)
        .await
        .expect("start");
    let scenario = agent
        .create_scenario(run, 0, domain::builds::Slot::once(1), &params)
        .await
        .expect("scenario");
    agent.start_scenario(scenario, 1_000).await.expect("start");
    let process = agent
        .record_process(
            scenario,
            NewProcess {
                kind: ProcessKind::Runner,
                pid: 7,
                start_ticks: 1,
                command: "mite runner",
                log_path: "/tmp/twin/runner.log",
            },
        )
        .await
        .expect("process");
    let writer = agent.sample_writer().await.expect("writer");
    let batch = |second| SampleBatch {
        scenario_id: scenario,
        samples: vec![sample(ProcessKind::Runner, second, 50.0, None)],
        figures: None,
        bus: None,
    };
    writer
        .write(&[batch(1)])
        .await
        .expect("a sample under the lease");

    // Another agent found the lease run out: interrupted.
    store
        .close_open_scenarios(run, ScenarioStatus::Interrupted)
        .await
        .expect("close");
    store
        .finish_run(run, RunStatus::Interrupted, Some("its agent went silent"))
        .await
        .expect("interrupt");

    let lost = |what: &str, e: Result<(), StoreError>| {
        assert!(
            matches!(e, Err(StoreError::LeaseLost(id)) if id == run),
            "{what}: {e:?}"
        );
    };
    lost("samples", writer.write(&[batch(2)]).await);
    lost(
        "a scenario",
        agent
            .create_scenario(run, 1, domain::builds::Slot::once(10), &params)
            .await
            .map(drop),
    );
    lost(
        "a scenario start",
        agent.start_scenario(scenario, 2_000).await,
    );
    lost(
        "a process",
        agent
            .record_process(
                scenario,
                NewProcess {
                    kind: ProcessKind::Controller,
                    pid: 8,
                    start_ticks: 1,
                    command: "mite controller",
                    log_path: "/tmp/twin/controller.log",
                },
            )
            .await
            .map(drop),
    );
    lost(
        "a process's end",
        agent.end_process(process, "exit 0").await,
    );
    lost(
        "dropped messages",
        agent.record_dropped_messages(scenario, 1, 1).await,
    );
    lost(
        "a profile",
        agent
            .save_profile(
                scenario,
                &mite_perf::store::NewProfile {
                    process: ProcessKind::Runner,
                    pid: 7,
                    rate: 100,
                    samples: 1,
                    mode: "attached".into(),
                    problem: None,
                    folded: "main 1\n".into(),
                },
            )
            .await
            .map(drop),
    );
    lost(
        "a scenario's end",
        agent
            .finish_scenario(
                scenario,
                ScenarioStatus::Done,
                None,
                None,
                &scenario_figures(&[]),
            )
            .await,
    );
    lost(
        "the run's end",
        agent.finish_run(run, RunStatus::Done, None).await,
    );
    lost(
        "the run's start",
        agent
            .start_run(run, &RunEnvironment::default(), "/tmp/twin", 1)
            .await,
    );
    assert_eq!(
        agent.renew_lease(&host).await.expect("renew"),
        LeaseState::Lost
    );
    // Nothing of it was stored; the run stays interrupted.
    let samples = store.scenario_samples(scenario).await.expect("samples");
    assert_eq!(samples.len(), 1, "only the sample under the lease");
    assert_eq!(store.scenarios(run).await.expect("scenarios").len(), 1);
    let scenarios = store.scenarios(run).await.expect("scenarios");
    assert_eq!(scenarios[0].status, ScenarioStatus::Interrupted);
    let processes = store.processes(scenario).await.expect("processes");
    assert_eq!(processes.len(), 1);
    assert_eq!(processes[0].exit_status, None);
    assert!(store.profiles(scenario).await.expect("profiles").is_empty());
    let after = store.run(run).await.expect("run").expect("stored");
    assert_eq!(after.status, RunStatus::Interrupted);
    assert_eq!(after.error.as_deref(), Some("its agent went silent"));
}

/// Two admins removing (or demoting) each other at once leave one admin: a
/// lab never loses its last admin, so it cannot become open by accident.
/// The links a removed user made die with them.
async fn the_last_admin_stays_whoever_races(store: &Store) {
    use domain::access::Role;
    use mite_perf::store::AccountChange;
    // Each round races the only two admins there are: the last round's
    // survivor steps down first, one at a time, so nothing can pass by luck.
    let mut survivor: Option<String> = None;
    for round in 0..5 {
        let (a, b) = (format!("a{round}"), format!("b{round}"));
        for name in [&a, &b] {
            store
                .create_user(name, Role::Admin, None)
                .await
                .expect("admin");
        }
        if let Some(last) = survivor.take() {
            assert_eq!(
                store.remove_user(&last).await.expect("remove"),
                AccountChange::Done,
                "round {round}: three admins, one may go"
            );
        }
        assert_eq!(
            store.admin_count().await.expect("count"),
            2,
            "round {round}"
        );
        let (x, y) = if round % 2 == 0 {
            tokio::join!(store.remove_user(&a), store.remove_user(&b))
        } else {
            tokio::join!(
                store.set_role(&a, Role::Viewer),
                store.set_role(&b, Role::Viewer)
            )
        };
        let (x, y) = (x.expect("a"), y.expect("b"));
        let mut outcomes = [x, y];
        outcomes.sort_by_key(|o| *o == AccountChange::LastAdmin);
        assert_eq!(
            outcomes,
            [AccountChange::Done, AccountChange::LastAdmin],
            "round {round}: exactly one of the two goes"
        );
        assert_eq!(
            store.admin_count().await.expect("count"),
            1,
            "round {round}"
        );
        survivor = Some(if x == AccountChange::LastAdmin { a } else { b });
    }
    assert_eq!(
        store.remove_user("nobody").await.expect("remove"),
        AccountChange::NoSuchUser
    );
    // A maker's links die with them.
    let run = store
        .create_run(&RunParams::default(), RunStatus::Done)
        .await
        .expect("run");
    store
        .create_user("maker", Role::Runner, None)
        .await
        .expect("runner");
    let link = store
        .create_share_link(run, "link-hash-of-maker", "maker", i64::MAX)
        .await
        .expect("link");
    assert_eq!(
        store.remove_user("maker").await.expect("remove"),
        AccountChange::Done
    );
    let link = store.share_link(link).await.expect("link").expect("kept");
    assert!(!link.is_valid(mite_perf::clock::now_ms()), "{link:?}");
}

/// A series' marks: set (again: the newest marker stays), listed, cleared.
async fn trend_marks_round_trip(store: &Store) {
    use domain::series::MarkKind;
    store
        .set_trend_mark("00aa", "2.9.2", MarkKind::Excluded, "ana")
        .await
        .expect("mark");
    store
        .set_trend_mark("00aa", "2.9.2", MarkKind::Excluded, "bo")
        .await
        .expect("mark again");
    store
        .set_trend_mark("00aa", "2.10.0", MarkKind::Acknowledged, "ana")
        .await
        .expect("acknowledge");
    let marks: Vec<(String, MarkKind, String)> = store
        .trend_marks()
        .await
        .expect("marks")
        .into_iter()
        .map(|m| (m.build, m.kind, m.marked_by))
        .collect();
    assert_eq!(marks.len(), 2, "{marks:?}");
    assert!(marks.contains(&("2.9.2".into(), MarkKind::Excluded, "bo".into())));
    assert!(marks.contains(&("2.10.0".into(), MarkKind::Acknowledged, "ana".into())));
    assert!(store
        .clear_trend_mark("00aa", "2.9.2", MarkKind::Excluded)
        .await
        .expect("clear"));
    assert!(!store
        .clear_trend_mark("00aa", "2.9.2", MarkKind::Excluded)
        .await
        .expect("clear again"));
    assert_eq!(store.trend_marks().await.expect("marks").len(), 1);
}

/// An uploaded wheel: its bytes back exactly (BLOB / BYTEA), kept once;
/// the commit it was built from added once and never replaced.
async fn wheels_round_trip(store: &Store) {
    use domain::builds::WheelCommit;
    let content: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let sha = mite_perf::mite_env::source::sha256_bytes(&content);
    let name = "mite-2.12.0-py3-none-any.whl";
    assert!(store
        .put_wheel(&sha, name, &content, "token:ci", None)
        .await
        .expect("put"));
    assert_eq!(
        store
            .wheel(&sha)
            .await
            .expect("read")
            .expect("kept")
            .commit(),
        None
    );
    let commit = |hash: char| {
        WheelCommit::parse(&hash.to_string().repeat(40), "1700000000", &"b".repeat(40))
            .expect("a commit")
    };
    assert!(!store
        .put_wheel(&sha, "mite-other.whl", b"x", "bo", Some(&commit('a')))
        .await
        .expect("again"));
    assert!(!store
        .put_wheel(&sha, name, &content, "bo", Some(&commit('c')))
        .await
        .expect("once more"));
    let record = store.wheel(&sha).await.expect("read").expect("kept");
    assert_eq!(record.commit(), Some(commit('a')));
    assert_eq!(
        (
            record.file_name.as_str(),
            record.size,
            record.uploaded_by.as_str()
        ),
        (name, 70_000, "token:ci")
    );
    assert_eq!(
        store.wheel_content(&sha).await.expect("read"),
        Some(content)
    );
    assert_eq!(store.wheel(&"0".repeat(64)).await.expect("read"), None);
}

/// Uploaded wheels unused for the retention are deleted, but never one a
/// queued or running run names (the agent would find it gone); a finished
/// run keeps none. Using a wheel (uploading it again, a launch naming it)
/// starts its retention again, and agents learn which wheels are still
/// kept (to delete their own copies of the others).
async fn unused_wheels_are_forgotten_unless_a_waiting_or_running_run_names_them(store: &Store) {
    use domain::builds::MiteBuild;
    let wheel = |i: u8| {
        let content = vec![i; 1000 + usize::from(i)];
        (mite_perf::mite_env::source::sha256_bytes(&content), content)
    };
    let [queued, running, done, unnamed, used] = [1, 2, 3, 4, 5].map(wheel);
    for (sha, content) in [&queued, &running, &done, &unnamed, &used] {
        assert!(store
            .put_wheel(
                sha,
                "mite-2.12.0-py3-none-any.whl",
                content,
                "token:ci",
                None
            )
            .await
            .expect("put"));
    }
    for ((sha, _), status) in [
        (&queued, RunStatus::Queued),
        (&running, RunStatus::Running),
        (&done, RunStatus::Done),
    ] {
        let params = RunParams {
            mite: vec![MiteBuild::Pinned, MiteBuild::Uploaded(sha.clone())],
            launched_by: "token:ci".into(),
            ..RunParams::default()
        };
        store.create_run(&params, status).await.expect("a run");
    }
    let cutoff = mite_perf::clock::now_ms() + 1;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(store.use_wheel(&used.0).await.expect("use"));
    assert!(!store.use_wheel(&"0".repeat(64)).await.expect("use"));
    let forgotten = store.forget_unused_wheels(cutoff).await.expect("forget");
    for (sha, what) in [(&done.0, "done"), (&unnamed.0, "unnamed")] {
        assert!(forgotten.contains(sha), "{what}: {forgotten:?}");
        assert!(!store.wheel_kept(sha).await.expect("kept?"), "{what}");
        assert_eq!(store.wheel_content(sha).await.expect("read"), None);
    }
    let kept = store.kept_wheels().await.expect("kept");
    for (sha, what) in [
        (&queued.0, "queued"),
        (&running.0, "running"),
        (&used.0, "used"),
    ] {
        assert!(!forgotten.contains(sha), "{what}: {forgotten:?}");
        assert!(kept.contains(sha), "{what}: {kept:?}");
        assert!(store.wheel_kept(sha).await.expect("kept?"), "{what}");
    }
    // Uploaded again, a forgotten wheel is new again.
    assert!(store
        .put_wheel(
            &done.0,
            "mite-2.12.0-py3-none-any.whl",
            &done.1,
            "token:ci",
            None
        )
        .await
        .expect("again"));
    assert!(!store
        .put_wheel(
            &done.0,
            "mite-2.12.0-py3-none-any.whl",
            &done.1,
            "token:ci",
            None
        )
        .await
        .expect("once more"));
}

/// An agent's scenario library: replaced whole, read back with its shapes,
/// gone from the listing once the agent stopped.
async fn library_round_trip(store: &Store) {
    use domain::library::{LibraryScenario, VolumeShape};
    let agent = crate::common::seed::agent("lib-agent", 7);
    store.register_agent(&agent).await.expect("agent");
    let scenario = |spec: &str, problem: Option<&str>| LibraryScenario {
        agent: "lib-agent".into(),
        spec: spec.into(),
        doc: "It's \"quoted\"; and multi\nline.".into(),
        function_doc: "Ramps.".into(),
        shapes: vec![VolumeShape {
            concurrency: 10,
            required: vec![1, 2, 3],
            stops: false,
        }],
        problem: problem.map(String::from),
    };
    let first = [
        scenario("a:scenario", None),
        scenario("b.c:scenario", Some("cannot be imported")),
    ];
    store
        .replace_library("lib-agent", &first)
        .await
        .expect("first");
    assert_eq!(store.library().await.expect("library"), first);
    let second = [scenario("d:scenario", None)];
    store
        .replace_library("lib-agent", &second)
        .await
        .expect("second");
    assert_eq!(store.library().await.expect("library"), second);
    store
        .agent_stopped("lib-agent", "lib-agent (boot 1)", 7)
        .await
        .expect("stopped");
    assert_eq!(store.library().await.expect("library"), []);
}

/// A run's provenance, its scenarios' builds and repeats, and baselines.
async fn builds_provenance_and_baselines(store: &Store, done: i64, queued: i64) {
    use domain::builds::{MiteBuild, Slot};
    use domain::provenance::{BuildProvenance, Provenance};

    assert_eq!(
        store
            .run(done)
            .await
            .expect("run")
            .expect("stored")
            .provenance,
        None
    );
    let provenance = Provenance {
        lab_version: "0.1.0".into(),
        host: "lab-host".into(),
        cores: 2,
        builds: vec![BuildProvenance {
            asked: "../mite".into(),
            mite_version: "2.12.0.dev0".into(),
            git_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            git_dirty: Some(true),
            ..BuildProvenance::default()
        }],
        repeats: 3,
        ..Provenance::default()
    };
    store
        .save_provenance(done, &provenance)
        .await
        .expect("save");
    let run = store.run(done).await.expect("run").expect("stored");
    assert_eq!(run.provenance, Some(provenance));

    // A matrix run: each scenario knows its build and repeat.
    let params = RunParams {
        label: "matrix".into(),
        concurrencies: vec![10],
        mite: vec![MiteBuild::Version("2.10.0".into()), MiteBuild::Pinned],
        repeats: 2,
        ..RunParams::default()
    };
    let matrix = store
        .create_run(&params, RunStatus::Running)
        .await
        .expect("run");
    for (position, slot) in params.slots().into_iter().enumerate() {
        store
            .create_scenario(matrix, position as i64, slot, &params)
            .await
            .expect("scenario");
    }
    let scenarios = store.scenarios(matrix).await.expect("scenarios");
    let seen: Vec<(String, i64, i64)> = scenarios
        .iter()
        .map(|s| (s.name.clone(), s.build_index, s.repeat_index))
        .collect();
    assert_eq!(
        seen,
        [
            ("scenario10-b1-r1".to_string(), 0, 0),
            ("scenario10-b2-r1".to_string(), 1, 0),
            ("scenario10-b2-r2".to_string(), 1, 1),
            ("scenario10-b1-r2".to_string(), 0, 1),
        ]
    );
    assert_eq!(Slot::once(10).name(1, 1), "scenario10");

    // Baselines: a finished run of one build with a label.
    let label = store.mark_baseline(done).await.expect("baseline");
    assert_eq!(store.baseline_of(&label).await.expect("query"), Some(done));
    for (refused, why) in [
        (queued, "only a run whose scenarios all finished"),
        (matrix, ""),
    ] {
        let err = store.mark_baseline(refused).await.expect_err("refused");
        assert!(err.to_string().contains(why), "{err}");
    }
    store
        .finish_run(matrix, RunStatus::Done, None)
        .await
        .expect("finish");
    let err = store.mark_baseline(matrix).await.expect_err("two builds");
    assert!(err.to_string().contains("measured 2 mite builds"), "{err}");
    assert!(store.mark_baseline(999_999).await.is_err());
    assert!(store.clear_baseline(&label).await.expect("clear"));
    assert_eq!(store.baseline_of(&label).await.expect("query"), None);
    assert!(!store.clear_baseline(&label).await.expect("clear again"));
    hosts_never_take_the_same_run(store).await;
    agents_take_only_runs_for_them_and_late_endings_change_nothing(store).await;
}

/// Two hosts taking runs from one queue at the same time: every run is
/// taken once, by one of them.
async fn agents_take_only_runs_for_them_and_late_endings_change_nothing(store: &Store) {
    let host = AgentIdentity {
        id: "lab-a (boot 0000aaaa)".into(),
        name: "lab-a".into(),
        lease: std::time::Duration::from_secs(60),
        ports: Default::default(),
        machine_epoch: 0,
    };
    let other = AgentIdentity {
        id: "lab-b (boot 0000bbbb)".into(),
        name: "lab-b".into(),
        ..host.clone()
    };
    // Nothing else waits in the queue now.
    assert_eq!(store.queued_count().await.expect("count"), 0);
    // A run asked of one agent waits for it: other agents pass it over.
    let for_b = store
        .create_run(
            &RunParams {
                agent: Some("lab-b".into()),
                ..RunParams::default()
            },
            RunStatus::Queued,
        )
        .await
        .expect("queue for lab-b");
    assert!(store
        .claim_next_queued(&host, 1)
        .await
        .expect("claim")
        .is_none());
    let taken = store
        .claim_next_queued(&other, 1)
        .await
        .expect("claim")
        .expect("lab-b's run");
    assert_eq!(taken.id, for_b);
    // Once another agent has marked it interrupted (its lease ran out), a
    // late executor cannot write its own ending over that.
    store
        .finish_run(for_b, RunStatus::Interrupted, Some("lab-b went silent"))
        .await
        .expect("interrupt");
    store
        .finish_run(for_b, RunStatus::Done, None)
        .await
        .expect("a late finish");
    let late = store.run(for_b).await.expect("query").expect("run");
    assert_eq!(late.status, RunStatus::Interrupted);
    assert_eq!(late.error.as_deref(), Some("lab-b went silent"));
}

async fn hosts_never_take_the_same_run(store: &Store) {
    let params = RunParams::default();
    let mut queued = Vec::new();
    for _ in 0..20 {
        queued.push(
            store
                .create_run(&params, RunStatus::Queued)
                .await
                .expect("queue"),
        );
    }
    let take = |name: &str| {
        let store = store.clone();
        let host = AgentIdentity {
            id: name.to_string(),
            name: name.to_string(),
            lease: std::time::Duration::from_secs(60),
            ports: Default::default(),
            machine_epoch: 0,
        };
        tokio::spawn(async move {
            let mut taken = Vec::new();
            let mut tries = 0;
            // A claim may find nothing while the other host holds the write
            // lock (SQLite) or the row (PostgreSQL): the queue is empty only
            // when both find nothing.
            while tries < 3 {
                match store.claim_next_queued(&host, 1).await {
                    Ok(Some(run)) => {
                        assert_eq!(run.agent_id.as_deref(), Some(host.id.as_str()));
                        taken.push(run.id);
                        tries = 0;
                    }
                    Ok(None) => tries += 1,
                    Err(e) => panic!("claim: {e}"),
                }
            }
            taken
        })
    };
    let (a, b) = (take("host a"), take("host b"));
    let (a, b) = (a.await.expect("host a"), b.await.expect("host b"));
    let mut all: Vec<i64> = a.iter().chain(&b).copied().collect();
    all.sort_unstable();
    let taken = all.len();
    all.dedup();
    assert_eq!(all.len(), taken, "a run taken twice: a: {a:?}, b: {b:?}");
    assert!(
        queued.iter().all(|id| all.contains(id)),
        "a: {a:?}, b: {b:?}"
    );
    assert_eq!(store.queued_count().await.expect("count"), 0);
}

#[tokio::test]
async fn store_suite_on_sqlite() {
    let dir = temp_dir("store-sqlite");
    // sqlx's URL forms, with a query: the file name stays as given.
    let url = format!("sqlite://{}/lab.db?mode=rwc", dir.display());
    let store = Store::connect(&url).await.expect("open sqlite");
    assert_eq!(store.backend(), Backend::Sqlite);
    suite(store).await;
    assert!(dir.join("lab.db").is_file(), "the file is lab.db");
    let again = Store::connect(&format!("sqlite:{}/lab.db", dir.display()))
        .await
        .expect("the other URL form");
    assert_eq!(again.sample_count(1).await.expect("count"), 20);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_suite_on_postgres() {
    let pg = Postgres::start();
    let store = Store::connect(&pg.url())
        .await
        .expect("connect and migrate");
    assert_eq!(store.backend(), Backend::Postgres);
    // The schema applies once: a second connect finds it current.
    Store::connect(&pg.url())
        .await
        .expect("connect again")
        .ping()
        .await
        .expect("ping");
    suite(store).await;
}

/// Several processes opening one new SQLite file at once (a `serve` and a
/// `run`, or a test and the lab it started) take turns at its migrations:
/// sqlx locks nothing on SQLite, so each would apply the first migration
/// and all but one fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sqlite_file_opened_by_several_at_once_is_migrated_once() {
    for attempt in 0..5 {
        let dir = temp_dir(&format!("migrate-together-{attempt}"));
        let url = format!("sqlite://{}", dir.join("lab.db").display());
        let opened = futures_util::future::join_all((0..4).map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Store::connect(&url).await.map(drop) })
        }))
        .await;
        for result in opened {
            let opened = result.expect("the task ran");
            assert!(opened.is_ok(), "attempt {attempt}: {opened:?}");
        }
    }
}

/// Someone reads the lab's SQLite file with `sqlite3` while the lab has it
/// open (as people inspect a lab): the lab goes on writing. Taking turns
/// at the migrations once locked the database file itself, and closing
/// that descriptor dropped SQLite's own locks in the lab: `sqlite3`, as it
/// closed, took itself for the last user and removed the write-ahead log,
/// and every later write of the lab failed with a disk I/O error.
#[tokio::test]
async fn an_outside_reader_of_the_sqlite_file_leaves_the_lab_writing() {
    let dir = temp_dir("outside-reader");
    let db = dir.join("lab.db");
    let store = Store::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open");
    store
        .create_run(&RunParams::default(), RunStatus::Queued)
        .await
        .expect("a first write");
    let read = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT count(*) FROM runs")
        .output()
        .expect("sqlite3 (scripts/setup installs it)");
    assert_eq!(
        String::from_utf8_lossy(&read.stdout).trim(),
        "1",
        "{read:?}"
    );
    for n in 2..=3 {
        store
            .create_run(&RunParams::default(), RunStatus::Queued)
            .await
            .unwrap_or_else(|e| panic!("write {n} after the outside reader: {e}"));
    }
    assert_eq!(store.queued_runs().await.expect("read").len(), 3);
}

/// FAULTS.md 33: a run whose lease cannot be renewed for a whole lease time
/// (its database gone) is stopped: another agent may take it for abandoned
/// once the lease runs out, so it must not go on measuring unrecorded.
/// Renewals that fail for less than that are tried again and stop nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_not_renewed_for_a_whole_lease_stops_its_run_on_postgres() {
    let pg = Postgres::start();
    let url = pg.fresh_database("lease_lost").await;
    let store = Store::connect(&url).await.expect("store");
    let run = store
        .create_run(&RunParams::default(), RunStatus::Running)
        .await
        .expect("a running run");
    let lease = std::time::Duration::from_secs(3);
    let host = AgentIdentity {
        id: "lab-a (boot 0000aaaa)".into(),
        name: "lab-a".into(),
        lease,
        ports: Default::default(),
        machine_epoch: 0,
    };
    let fence = store.lease_run(run, &host, 4242).await.expect("leased");
    let cancel = tokio_util::sync::CancellationToken::new();
    let _renewing = mite_perf::run::lease::keep_lease(store.fenced(fence), host, cancel.clone());
    // Renewed while the database answers: nothing stops.
    tokio::time::sleep(lease + std::time::Duration::from_secs(1)).await;
    assert!(
        !cancel.is_cancelled(),
        "stopped while its lease was renewed"
    );
    pg.server_stop();
    let gone = std::time::Instant::now();
    tokio::time::timeout(lease * 4, cancel.cancelled())
        .await
        .expect("stopped within a few lease times of the database going");
    // Not at the first failed renewal: once a whole lease went unrenewed
    // (the last success was at most a renewal, lease / 4, before the stop).
    let after = gone.elapsed();
    assert!(
        after >= lease - lease / 4 - std::time::Duration::from_millis(200),
        "stopped {after:?} after the database went, within the lease"
    );
}
