//! The lab's HTTP router, in process (`tower::ServiceExt::oneshot`) against
//! a temporary SQLite store: health, downloads, pages, server functions,
//! and bad input on each. Fast: no mite, no network.

use crate::common::seed::{send, Answer};

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use serde_json::Value;

use mite_perf::lab::{Lab, MAX_QUEUED};
use mite_perf::model::{ProcessKind, RunParams, RunStatus, ScenarioStatus};
use mite_perf::reports::csv;
use mite_perf::store::{NewProcess, SampleRow, Store};
use mite_perf::web::WebConfig;

struct Fixture {
    dir: PathBuf,
    lab: Arc<Lab>,
    app: Router,
    /// A finished run with one scenario of 30 ticks.
    run_id: i64,
    scenario_id: i64,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn fixture(name: &str) -> Fixture {
    let dir = crate::common::temp_dir(&format!("router-{name}"));
    let output = dir.join("output");
    std::fs::create_dir_all(&output).expect("output folder");
    let store = Store::connect(&format!("sqlite://{}/lab.db", dir.display()))
        .await
        .expect("store");
    let setup = crate::common::seed::lab_setup(&dir, &output);
    let (run_id, scenario_id) = crate::common::seed::finished_run(&store, &output).await;
    let lab = Lab::new(store, setup);
    let app = mite_perf::web::router(
        lab.clone(),
        WebConfig::local(crate::common::seed::site_root()),
    )
    .await
    .expect("router");
    Fixture {
        dir,
        lab,
        app,
        run_id,
        scenario_id,
    }
}

/// The caller of a lab without accounts.
fn local_caller() -> domain::access::Caller {
    domain::access::Caller {
        name: "tester".into(),
        role: domain::access::Role::Admin,
        identity: domain::access::Identity::Local,
        from: "127.0.0.1".into(),
        run_scope: None,
        may_upload: true,
    }
}

async fn get(app: &Router, path: &str) -> Answer {
    send(
        app,
        Request::get(path).body(Body::empty()).expect("a request"),
    )
    .await
}

/// Calls a server function as the pages do.
async fn call(app: &Router, name: &str, form: &str) -> Answer {
    send(
        app,
        Request::post(format!("/api/{name}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(Body::from(form.to_string()))
            .expect("a request"),
    )
    .await
}

/// An executor for a worker that is never given a run (nothing queued).
struct NeverRuns;

impl mite_perf::lab::RunExecutor for NeverRuns {
    fn execute<'a>(
        &'a self,
        _: &'a mite_perf::store::Store,
        run: &'a mite_perf::store::RunRecord,
        _: &'a mite_perf::run::LabSetup,
        _: &'a tokio_util::sync::CancellationToken,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<mite_perf::run::RunOutcome, mite_perf::run::RunError>,
    > {
        panic!("run {} was not queued", run.id)
    }
}

#[tokio::test]
async fn health_answers_with_the_database_and_the_worker() {
    let f = fixture("health").await;
    let answer = get(&f.app, "/healthz").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let health = answer.json();
    assert_eq!(health["database"], "ok");
    // No worker started: a web front, whose agents execute the runs.
    assert_eq!(health["worker"], "none: this lab executes no runs");
    assert_eq!(health["run_in_progress"], Value::Null);

    // A worker (with nothing queued): well.
    let worker = f.lab.start_worker_with(std::sync::Arc::new(NeverRuns));
    let answer = get(&f.app, "/healthz").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.json()["worker"], "ok");
    // The worker's task gone (not by a shutdown): 503, and it says so.
    worker.abort();
    let _ = worker.await;
    let answer = get(&f.app, "/healthz").await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert!(
        answer.json()["worker"]
            .as_str()
            .is_some_and(|w| w.starts_with("ended")),
        "{}",
        answer.body
    );

    // The database gone: 503, and it says why.
    f.lab.store().close().await;
    let answer = get(&f.app, "/healthz").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer.body.contains("closed"), "{}", answer.body);
}

/// The charts' script is served from the lab itself (the pages work with
/// no network), whole, as JavaScript. (That anyone may fetch it, a shared
/// chart's viewer too, is `web::caller`'s `is_public` test.)
#[tokio::test]
async fn the_charts_script_is_served_whole_from_the_lab() {
    let f = fixture("echarts").await;
    let answer = get(&f.app, "/assets/echarts.min.js").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(answer.body, mite_perf::reports::chart::ECHARTS_JS);
    assert!(
        answer.body.len() > 500_000 && answer.body.contains("echarts"),
        "{} bytes",
        answer.body.len()
    );
}

#[tokio::test]
async fn csv_downloads_match_the_database() {
    let f = fixture("csv").await;
    let rows: Vec<SampleRow> =
        futures_util::TryStreamExt::try_collect(f.lab.store().run_samples(f.run_id))
            .await
            .expect("rows");
    assert_eq!(rows.len(), 60);
    let expected: String = std::iter::once(csv::HEADER.to_string())
        .chain(rows.iter().map(csv::line))
        .collect();
    let answer = get(&f.app, &format!("/runs/{}/samples.csv", f.run_id)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.headers[header::CONTENT_DISPOSITION],
        format!("attachment; filename=\"run-{}-samples.csv\"", f.run_id)
    );
    assert_eq!(answer.body, expected);
    let answer = get(&f.app, &format!("/scenarios/{}/samples.csv", f.scenario_id)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, expected);
    let chart = get(&f.app, &format!("/runs/{}/chart.html", f.run_id)).await;
    assert_eq!(chart.status, StatusCode::OK);
    assert!(chart.body.contains("status done") && chart.body.contains("echarts.init"));
}

#[tokio::test]
async fn unknown_things_are_404_and_bad_ids_400() {
    let f = fixture("404").await;
    for path in [
        "/runs/999/samples.csv",
        "/runs/999/chart.html",
        "/scenarios/999/samples.csv",
        "/scenarios/999/logs/runner",
    ] {
        let answer = get(&f.app, path).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            answer.body
        );
        assert!(answer.body.contains("999"), "{path}: {}", answer.body);
    }
    let answer = get(
        &f.app,
        &format!("/scenarios/{}/logs/mystery", f.scenario_id),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(
        answer.body.contains("no process `mystery`") && answer.body.contains("runner"),
        "{}",
        answer.body
    );
    let answer = get(
        &f.app,
        &format!("/scenarios/{}/logs/duplicator", f.scenario_id),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    for path in [
        "/runs/abc/samples.csv",
        "/runs/100000000000000000000/samples.csv",
        "/scenarios/-/logs/runner",
    ] {
        let answer = get(&f.app, path).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            answer.body
        );
    }
}

#[tokio::test]
async fn logs_are_served_only_from_the_output_folder() {
    let f = fixture("logs").await;
    let answer = get(&f.app, &format!("/scenarios/{}/logs/runner", f.scenario_id)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, "runner says hello\n");

    // A log path written into the database by someone else is not opened.
    let outside = f.dir.join("secret.txt");
    std::fs::write(&outside, "not for the browser").expect("write");
    let store = f.lab.store();
    let p = store
        .record_process(
            f.scenario_id,
            NewProcess {
                kind: ProcessKind::Collector,
                pid: 3,
                start_ticks: 3,
                command: "mite collector",
                log_path: &outside.display().to_string(),
            },
        )
        .await
        .expect("process");
    store.end_process(p, "exit 0").await.expect("end");
    let answer = get(
        &f.app,
        &format!("/scenarios/{}/logs/collector", f.scenario_id),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(!answer.body.contains("not for the browser"));
}

#[tokio::test]
async fn collector_files_are_listed_and_served_by_name_only() {
    let f = fixture("collector").await;
    let store = f.lab.store();
    let run = store.run(f.run_id).await.expect("run").expect("stored");
    let scenario_dir =
        std::path::Path::new(run.output_dir.as_deref().expect("dir")).join("scenario10");
    let collector = crate::common::seed::collector(store, &scenario_dir, f.scenario_id).await;
    std::fs::write(
        collector.join("1700000000_1700000030_1"),
        b"\x81\xa4type\xa3txn",
    )
    .expect("rolled");
    std::fs::write(collector.join("current"), b"\x80").expect("current");
    std::fs::write(collector.join(".hidden"), b"not offered").expect("hidden");
    std::fs::write(scenario_dir.join("secret.txt"), b"not for the browser").expect("secret");

    // The run's page lists what the collector kept, oldest first.
    let view = call(&f.app, "get_run", &format!("run_id={}", f.run_id)).await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.body);
    let files = view.json()["scenarios"][0]["collector_files"].clone();
    assert_eq!(
        files,
        serde_json::json!([
            {"name": "1700000000_1700000030_1", "bytes": 10},
            {"name": "current", "bytes": 1}
        ])
    );
    let answer = get(
        &f.app,
        &format!(
            "/scenarios/{}/collector/1700000000_1700000030_1",
            f.scenario_id
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body.contains("type"), "{}", answer.body);

    // Only the names listed are opened: nothing beside them, nothing hidden.
    for name in [
        ".hidden",
        "..%2Fsecret.txt",
        "%2E%2E%2Fsecret.txt",
        "gone_1_2_3",
    ] {
        let answer = get(
            &f.app,
            &format!("/scenarios/{}/collector/{name}", f.scenario_id),
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{name}: {}",
            answer.body
        );
        assert!(
            !answer.body.contains("not for the browser") && !answer.body.contains("not offered"),
            "{name}: {}",
            answer.body
        );
    }
    let answer = get(&f.app, "/scenarios/424242/collector/current").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);

    // Trimmed to nothing, the folder lists nothing and serves nothing.
    std::fs::remove_dir_all(&collector).expect("trim");
    let view = call(&f.app, "get_run", &format!("run_id={}", f.run_id)).await;
    assert_eq!(
        view.json()["scenarios"][0]["collector_files"],
        serde_json::json!([])
    );
    let answer = get(
        &f.app,
        &format!("/scenarios/{}/collector/current", f.scenario_id),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(
        answer.body.contains("keeps the last 100 MiB"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn server_functions_answer_with_the_status_of_their_error() {
    let f = fixture("server-fns").await;
    let run = call(&f.app, "get_run", &format!("run_id={}", f.run_id)).await;
    assert_eq!(run.status, StatusCode::OK);
    assert_eq!(
        run.json()["scenarios"][0]["figures"]["total_requests"],
        15_000
    );
    let none = call(&f.app, "get_run", "run_id=424242").await;
    assert_eq!((none.status, none.json()), (StatusCode::OK, Value::Null));

    let charts = call(
        &f.app,
        "get_charts",
        &format!("scenario_id={}", f.scenario_id),
    )
    .await;
    assert_eq!(charts.status, StatusCode::OK);
    assert_eq!(
        charts.json()["charts"].as_array().map(Vec::len),
        Some(domain::chart_spec::CHARTS_PER_SCENARIO)
    );
    assert_eq!(charts.json()["last_ms"], 30_000);
    // A live page asks for what came after its latest point.
    let points = call(
        &f.app,
        "get_chart_points",
        &format!(
            "scenario_id={}&bucket_ms=1000&after_ms=28000",
            f.scenario_id
        ),
    )
    .await;
    assert_eq!(points.status, StatusCode::OK, "{}", points.body);
    let cpu = &points.json()["charts"][0]["series"];
    let runner = cpu
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "runner"))
        .expect("the runner's series");
    assert_eq!(
        runner["points"],
        serde_json::json!([[28.0, 99.5], [29.0, 99.5], [30.0, 99.5]])
    );
    assert_eq!(points.json()["last_ms"], 30_000);
    let bad_bucket = call(
        &f.app,
        "get_chart_points",
        &format!("scenario_id={}&bucket_ms=0&after_ms=0", f.scenario_id),
    )
    .await;
    assert_eq!(bad_bucket.status, StatusCode::BAD_REQUEST);
    let missing = call(&f.app, "get_charts", "scenario_id=424242").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    assert!(missing.json()["NotFound"]
        .as_str()
        .is_some_and(|m| m.contains("424242")));
    let backwards = call(
        &f.app,
        "get_charts",
        &format!(
            "scenario_id={}&window[0]=9000&window[1]=1000",
            f.scenario_id
        ),
    )
    .await;
    assert_eq!(
        backwards.status,
        StatusCode::BAD_REQUEST,
        "{}",
        backwards.body
    );
    assert_eq!(backwards.json()["Invalid"]["field"], "window");
    let overflowing = call(
        &f.app,
        "get_charts",
        &format!(
            "scenario_id={}&window[0]=0&window[1]=9223372036854775807",
            f.scenario_id
        ),
    )
    .await;
    assert_eq!(overflowing.status, StatusCode::OK, "{}", overflowing.body);
    let unreadable = call(&f.app, "get_run", "run_id=twelve").await;
    assert_eq!(
        unreadable.status,
        StatusCode::BAD_REQUEST,
        "{}",
        unreadable.body
    );
    let page = call(&f.app, "list_runs", "page=4294967295&label=").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);

    // The database gone: the pages are told "unavailable", with 503.
    f.lab.store().close().await;
    let down = call(&f.app, "get_run", &format!("run_id={}", f.run_id)).await;
    assert_eq!(
        down.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        down.body
    );
    assert!(down.json()["Unavailable"].as_str().is_some());
}

#[tokio::test]
async fn run_pages_answer_404_for_no_such_run_and_503_when_the_database_is_down() {
    let f = fixture("pages").await;
    let page = get(&f.app, &format!("/runs/{}", f.run_id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("seeded"),
        "the run's label is on its page"
    );
    let missing = get(&f.app, "/runs/424242").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("No such run"));
    let not_a_number = get(&f.app, "/runs/abc").await;
    assert_eq!(not_a_number.status, StatusCode::NOT_FOUND);
    f.lab.store().close().await;
    let down = get(&f.app, &format!("/runs/{}", f.run_id)).await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        down.body.contains("database is unavailable"),
        "{}",
        down.body
    );
}

#[tokio::test]
async fn launches_are_validated_bounded_and_work_without_javascript() {
    let f = fixture("launch").await;
    let form = |scenarios: &str, duration: &str| {
        format!(
            "form[concurrencies]={scenarios}&form[duration]={duration}&form[spawn_rate]=1000000&form[interval]=1s&form[label]=x"
        )
    };
    let huge = call(&f.app, "launch_run", &form("1", "100000000000000000000")).await;
    assert_eq!(huge.status, StatusCode::OK, "{}", huge.body);
    assert_eq!(huge.json()["Invalid"][0]["field"], "duration");
    let many: Vec<String> = (1..=1000).map(|n| n.to_string()).collect();
    let too_many = call(&f.app, "launch_run", &form(&many.join("%2C"), "5s")).await;
    assert_eq!(too_many.json()["Invalid"][0]["field"], "concurrencies");
    assert!(too_many.body.contains("too many"), "{}", too_many.body);
    assert_eq!(f.lab.store().queued_count().await.expect("count"), 0);

    // A 10 MB body is refused before it is read; one sent without its
    // length is cut off at the bound.
    let big = send(
        &f.app,
        Request::post("/api/launch_run")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::CONTENT_LENGTH, 10 * 1024 * 1024)
            .body(Body::from(vec![b'a'; 10 * 1024 * 1024]))
            .expect("a request"),
    )
    .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    let unannounced = send(
        &f.app,
        Request::post("/api/launch_run")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(vec![b'a'; 10 * 1024 * 1024]))
            .expect("a request"),
    )
    .await;
    assert_eq!(
        unannounced.status,
        StatusCode::BAD_REQUEST,
        "{}",
        unannounced.body
    );
    assert!(
        unannounced.body.contains("length limit"),
        "{}",
        unannounced.body
    );

    // Without JavaScript the form posts its fields and lands on the run's page.
    let plain = send(
        &f.app,
        Request::post("/api/launch_run")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "text/html")
            .header(header::REFERER, "http://127.0.0.1:3000/")
            .body(Body::from(
                "form[chosen][0]=1&form[chosen][2]=100&form[scenarios]=&form[duration]=5s\
                 &form[spawn_rate]=1000000&form[interval]=1s&form[label]=no+js\
                 &form[bus_off]=on",
            ))
            .expect("a request"),
    )
    .await;
    assert_eq!(plain.status, StatusCode::FOUND, "{}", plain.body);
    let queued = f.lab.store().queued_runs().await.expect("queue");
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].params.concurrencies, [1, 100]);
    assert!(!queued[0].params.read_bus, "the box left mite's bus unread");
    assert_eq!(
        plain.headers[header::LOCATION],
        format!("/runs/{}", queued[0].id)
    );

    // The queue is bounded: past it, a launch is told to wait (429).
    for _ in 1..MAX_QUEUED {
        f.lab
            .store()
            .create_run(&RunParams::default(), RunStatus::Queued)
            .await
            .expect("queue");
    }
    let full = call(&f.app, "launch_run", &form("1", "5s")).await;
    assert_eq!(full.status, StatusCode::TOO_MANY_REQUESTS, "{}", full.body);
    assert!(full.json()["Busy"]
        .as_str()
        .is_some_and(|m| m.contains("full")));
}

/// Every source of a run's defaults agrees (domain::defaults): the
/// command line with no option describes `RunParams::default()` (the form's
/// are pinned in app's tests), and the old flag name still works.
#[test]
fn the_command_lines_defaults_are_a_default_run() {
    let dry_run = |args: &[&str]| -> RunParams {
        let out = std::process::Command::new(crate::common::BIN)
            .arg("run")
            .args(args)
            .arg("--dry-run")
            .env("USER", "someone")
            .env_remove("MITE_PERF_VENV")
            .output()
            .expect("mite-perf runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("the run as JSON")
    };
    assert_eq!(
        dry_run(&[]),
        RunParams {
            launched_by: "someone".into(),
            ..RunParams::default()
        }
    );
    assert_eq!(dry_run(&["--concurrencies", "5,50"]).concurrencies, [5, 50]);
    assert_eq!(dry_run(&["--scenarios", "7"]).concurrencies, [7]);
    assert!(!dry_run(&["--bus", "off"]).read_bus);
    assert!(dry_run(&["--bus", "on"]).read_bus);
}

#[tokio::test]
async fn a_library_scenario_is_launched_by_name_on_an_agent_that_lists_it() {
    let f = fixture("library").await;
    let store = f.lab.store();
    for name in ["lab-a", "lab-b"] {
        store
            .register_agent(&crate::common::seed::agent(name, 1))
            .await
            .expect("agent");
    }
    let listed = domain::library::LibraryScenario {
        agent: "lab-b".into(),
        spec: "checkout:ramp_scenario".into(),
        doc: "Checkout under a ramp.".into(),
        function_doc: String::new(),
        shapes: vec![domain::library::VolumeShape {
            concurrency: 1,
            required: vec![1, 1],
            stops: true,
        }],
        problem: None,
    };
    store
        .replace_library("lab-b", std::slice::from_ref(&listed))
        .await
        .expect("library");

    // The form lists it, with its shape.
    let library = call(&f.app, "get_library", "").await;
    assert_eq!(library.status, StatusCode::OK, "{}", library.body);
    let back: Vec<domain::library::LibraryScenario> =
        serde_json::from_value(library.json()).expect("listing");
    assert_eq!(back, [listed]);

    let launch = |scenario: &str, agent: &str| {
        format!(
            "form[scenarios]=1&form[duration]=5s&form[spawn_rate]=1000000&form[interval]=1s\
             &form[label]=lib&form[scenario]={scenario}&form[agent]={agent}"
        )
    };
    // By name only: it goes to the agent that lists it.
    let queued = call(
        &f.app,
        "launch_run",
        &launch("checkout%3Aramp_scenario", ""),
    )
    .await;
    assert_eq!(queued.status, StatusCode::OK, "{}", queued.body);
    let run_id = queued.json()["Queued"]["run_id"].as_i64().expect("queued");
    let run = store.run(run_id).await.expect("run").expect("stored");
    assert_eq!(
        run.params.scenario,
        mite_perf::model::ScenarioSpec::Library {
            spec: "checkout:ramp_scenario".into()
        }
    );
    assert_eq!(run.params.agent.as_deref(), Some("lab-b"));

    // An agent that does not list it, a name no agent lists, and anything
    // that is not a module:function of names are the form's errors.
    for (scenario, agent, says) in [
        (
            "checkout%3Aramp_scenario",
            "lab-a",
            "agent lab-a lists no scenario",
        ),
        (
            "checkout%3Anope",
            "",
            "no agent lists a scenario `checkout:nope`",
        ),
        ("..%2F..%2Fetc%3Apasswd", "", "is not a module:function"),
        ("%2Ftmp%2Fx.py%3Af", "", "is not a module:function"),
    ] {
        let answer = call(&f.app, "launch_run", &launch(scenario, agent)).await;
        assert_eq!(answer.status, StatusCode::OK, "{scenario}: {}", answer.body);
        assert_eq!(
            answer.json()["Invalid"][0]["field"],
            "scenario",
            "{}",
            answer.body
        );
        assert!(answer.body.contains(says), "{scenario}: {}", answer.body);
    }
    assert_eq!(store.queued_count().await.expect("count"), 1);

    // A stopped agent's library is not offered.
    store
        .agent_stopped("lab-b", "lab-b (boot 1)", 1)
        .await
        .expect("stopped");
    let library = call(&f.app, "get_library", "").await;
    assert_eq!(library.json(), serde_json::json!([]));
}

#[tokio::test]
async fn runs_that_ask_for_commands_are_refused_unless_allowed() {
    let f = fixture("policy").await;
    let params = RunParams {
        target: mite_perf::model::TargetSpec::Command("rm -rf /".into()),
        ..RunParams::default()
    };
    let refused = f
        .lab
        .launch(&local_caller(), params)
        .await
        .expect_err("refused");
    assert_eq!(refused.status(), 403);
    assert!(
        refused.to_string().contains("--allow-target-cmd"),
        "{refused}"
    );
    let params = RunParams {
        scenario: mite_perf::model::ScenarioSpec::Custom {
            spec: "evil:scenario".into(),
            dir: f.dir.clone(),
        },
        ..RunParams::default()
    };
    let refused = f
        .lab
        .launch(&local_caller(), params.clone())
        .await
        .expect_err("refused");
    assert!(refused.to_string().contains("--scenario-dir"), "{refused}");

    // A lab started to allow them queues both (faults.rs sees such a run
    // execute).
    let mut setup = crate::common::seed::lab_setup(&f.dir, &f.dir.join("output"));
    setup.policy.allow_target_cmd = true;
    setup.policy.scenario_roots = vec![f.dir.clone()];
    let allowing = Lab::new(f.lab.store().clone(), setup);
    let command = RunParams {
        target: mite_perf::model::TargetSpec::Command("mite-perf target".into()),
        ..RunParams::default()
    };
    for allowed in [command, params] {
        let queued = allowing
            .launch(&local_caller(), allowed)
            .await
            .expect("allowed");
        assert!(
            matches!(queued, app::api::LaunchOutcome::Queued { .. }),
            "{queued:?}"
        );
    }
}

#[tokio::test]
async fn local_mite_builds_from_the_browser_are_refused_unless_allowed() {
    let f = fixture("local-builds").await;
    for mite in ["../mite", "./dist/mite-2.12.0-py3-none-any.whl"] {
        let answer = call(
            &f.app,
            "launch_run",
            &format!("form[mite]={}&form[scenarios]=1", crate::common::enc(mite)),
        )
        .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
        assert!(
            answer.body.contains("--allow-local-builds"),
            "{}",
            answer.body
        );
    }
    // A version (or two) is fine, and so is a bad one refused by name.
    let answer = call(
        &f.app,
        "launch_run",
        "form[mite]=2.10.0%2Cpinned&form[repeat]=3",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(
        answer.json()["Queued"]["run_id"].is_i64(),
        "{}",
        answer.body
    );
    let answer = call(&f.app, "launch_run", "form[mite]=latest&form[repeat]=three").await;
    let fields: Vec<String> = answer.json()["Invalid"]
        .as_array()
        .expect("field errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(fields, ["mite", "repeat"], "{}", answer.body);
    let builds = call(&f.app, "get_builds", "").await;
    assert_eq!(builds.json()[0], "pinned", "{}", builds.body);
}

/// `--allow-local-builds DIR`: checkouts and wheels are taken from inside
/// the folders named, and any other path is refused with the same words
/// whether or not it exists (a lab never says what is on its disk), even
/// through a link out of an allowed folder.
#[tokio::test]
async fn local_builds_come_only_from_the_allowed_folders() {
    let f = fixture("local-build-folders").await;
    let allowed = f.dir.join("checkouts");
    std::fs::create_dir_all(allowed.join("mite")).expect("a checkout");
    std::os::unix::fs::symlink("/etc", allowed.join("out")).expect("a link out");
    let mut setup = crate::common::seed::lab_setup(&f.dir, &f.dir.join("output"));
    setup.policy.local_build_roots = vec![allowed.canonicalize().expect("absolute")];
    let lab = Lab::new(f.lab.store().clone(), setup);
    let app = mite_perf::web::router(lab, WebConfig::local(crate::common::seed::site_root()))
        .await
        .expect("router");
    let launch = |mite: &str| {
        let app = app.clone();
        let form = format!("form[mite]={}&form[scenarios]=1", crate::common::enc(mite));
        async move { call(&app, "launch_run", &form).await }
    };
    let refusal = |answer: &Answer, path: &str| {
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            answer.body
        );
        answer.body.replace(path, "PATH")
    };
    let outside_existing = f.dir.join("output").display().to_string();
    let outside_missing = f.dir.join("no-such-folder").display().to_string();
    let through_link = allowed.join("out/passwd").display().to_string();
    let climbing = format!("{}/../output", allowed.display());
    let first = refusal(&launch(&outside_existing).await, &outside_existing);
    assert!(first.contains("--allow-local-builds DIR"), "{first}");
    for path in [
        &outside_missing,
        &through_link,
        &climbing,
        &"/etc/passwd.whl".to_string(),
    ] {
        assert_eq!(refusal(&launch(path).await, path), first, "{path}");
    }
    for inside in [
        allowed.join("mite").display().to_string(),
        allowed
            .join("dist/mite-2.12.0-py3-none-any.whl")
            .display()
            .to_string(),
    ] {
        let answer = launch(&inside).await;
        assert_eq!(answer.status, StatusCode::OK, "{inside}: {}", answer.body);
        assert!(
            answer.json()["Queued"]["run_id"].is_i64(),
            "{}",
            answer.body
        );
    }
}

/// Runs measured on different machines are compared only when asked to
/// (`across`), and the comparison then says so; another Python on the same
/// machine is no other machine.
#[tokio::test]
async fn runs_of_different_machines_are_compared_only_when_asked() {
    let f = fixture("across").await;
    let store = f.lab.store();
    let output = f.dir.join("output");
    let (other, _) = crate::common::seed::finished_run(store, &output).await;
    let (same_machine, _) = crate::common::seed::finished_run(store, &output).await;
    let here = crate::common::seed::provenance("2.11.0", "AMD EPYC 7B13");
    let mut newer_python = here.clone();
    newer_python.builds[0].python_version = "3.12.1".into();
    for (run, provenance) in [
        (f.run_id, here),
        (
            other,
            crate::common::seed::provenance("2.11.0", "Intel Xeon 8375C"),
        ),
        (same_machine, newer_python),
    ] {
        store
            .save_provenance(run, &provenance)
            .await
            .expect("provenance");
    }
    let id = f.run_id;
    let refused = call(&f.app, "compare_runs", &format!("runs={id}%2C{other}")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body.contains("ran on different machines")
            && refused.body.contains("AMD EPYC 7B13")
            && refused.body.contains("Intel Xeon 8375C")
            && refused.body.contains("across"),
        "{}",
        refused.body
    );
    let csv = get(&f.app, &format!("/compare.csv?runs={id},{other}")).await;
    assert_eq!(csv.status, StatusCode::BAD_REQUEST, "{}", csv.body);

    let asked = call(
        &f.app,
        "compare_runs",
        &format!("runs={id}%2C{other}&across=true"),
    )
    .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    let first_warning = asked.json()["warnings"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        first_warning.starts_with("compared across machines: AMD EPYC 7B13"),
        "{first_warning}"
    );
    let csv = get(&f.app, &format!("/compare.csv?runs={id},{other}&across=1")).await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);

    let python = call(
        &f.app,
        "compare_runs",
        &format!("runs={id}%2C{same_machine}"),
    )
    .await;
    assert_eq!(python.status, StatusCode::OK, "{}", python.body);
    assert!(
        !python.body.contains("compared across machines"),
        "{}",
        python.body
    );
}

#[tokio::test]
async fn comparisons_answer_bad_input_400_and_missing_runs_404() {
    let f = fixture("compare").await;
    let id = f.run_id;
    // The seeded run against itself: every figure unchanged.
    let same = get(&f.app, &format!("/compare.csv?runs={id},{id}")).await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);
    assert!(
        same.body.contains(",no significant change\n"),
        "{}",
        same.body
    );
    assert!(!same.body.contains("worse"), "{}", same.body);
    let answer = call(&f.app, "compare_runs", &format!("runs={id}%2C{id}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.json()["base"]["run_id"], id);
    for (query, status) in [
        (format!("runs={id},999"), StatusCode::NOT_FOUND),
        ("runs=1".to_string(), StatusCode::BAD_REQUEST),
        ("runs=x,y".to_string(), StatusCode::BAD_REQUEST),
        (format!("runs={id}:2,{id}"), StatusCode::BAD_REQUEST),
        (
            format!("runs={id},{id}&threshold=500%25"),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let answer = get(&f.app, &format!("/compare.csv?{query}")).await;
        assert_eq!(answer.status, status, "{query}: {}", answer.body);
    }
    // A run's figures per build and concurrency.
    let figures = get(&f.app, &format!("/runs/{id}/figures.csv")).await;
    assert_eq!(figures.status, StatusCode::OK, "{}", figures.body);
    assert!(
        figures
            .body
            .starts_with("run,build,mite,concurrency,figure,median,"),
        "{}",
        figures.body
    );
    assert!(
        figures.body.contains(&format!(
            "\n{id},1,,10,requests_per_second,500,500,500,500,500,1,false"
        )),
        "{}",
        figures.body
    );
    assert_eq!(
        get(&f.app, "/runs/999/figures.csv").await.status,
        StatusCode::NOT_FOUND
    );
    // A baseline is a label's: the seeded run has one.
    let marked = call(&f.app, "mark_baseline", &format!("run_id={id}")).await;
    assert_eq!(marked.json(), "seeded", "{}", marked.body);
    let view = call(&f.app, "get_run", &format!("run_id={id}")).await;
    assert_eq!(view.json()["baseline_run"], id);
    let refused = call(&f.app, "mark_baseline", "run_id=999").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
}

/// A run of two builds, each scenario twice, as a finished one is stored:
/// build 2 serves `ratio` times build 1's requests.
async fn two_build_run(store: &Store, ratio: f64) -> i64 {
    let params = RunParams {
        label: "matrix".into(),
        concurrencies: vec![1, 10],
        mite: domain::builds::MiteBuild::parse_list("2.10.0,pinned").expect("builds"),
        repeats: 2,
        ..RunParams::default()
    };
    let run_id = store
        .create_run(&params, RunStatus::Running)
        .await
        .expect("run");
    store
        .start_run(run_id, &Default::default(), "/nonexistent", 1)
        .await
        .expect("start");
    for (i, slot) in params.slots().into_iter().enumerate() {
        let scenario = store
            .create_scenario(run_id, i as i64, slot, &params)
            .await
            .expect("scenario");
        let base = 100.0 * f64::from(slot.concurrency) + f64::from(slot.repeat);
        let rps = if slot.build == 1 { base * ratio } else { base };
        let figures = domain::figures::ScenarioFigures {
            total_requests: (rps * 10.0) as i64,
            measured_seconds: 10.0,
            mean_requests_per_second: rps,
            peak_requests_per_second: rps,
            requests_per_runner_cpu_second: None,
            processes: vec![],
            steady: None,
            other_cpu: None,
            runners: None,
            runners_peak_rss: None,
            latency_p99_ms: None,
            instruction_totals: Vec::new(),
            instructions: Vec::new(),
        };
        store
            .finish_scenario(scenario, ScenarioStatus::Done, None, None, &figures)
            .await
            .expect("finish scenario");
    }
    store
        .finish_run(run_id, RunStatus::Done, None)
        .await
        .expect("finish run");
    run_id
}

#[tokio::test]
async fn a_run_of_several_builds_shows_its_version_matrix_and_a_preparing_run_its_stage() {
    let f = fixture("matrix").await;
    let store = f.lab.store().clone();
    let id = two_build_run(&store, 0.8).await;

    let page = get(&f.app, &format!("/runs/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Figures per build"), "{}", page.body);
    assert!(
        page.body.contains("b1 2.10.0") && page.body.contains("b2 pinned"),
        "{}",
        page.body
    );
    // Build 2 at 10 journeys: 800.5 req/s against 1,000.5: 20 % fewer.
    let row = page
        .body
        .split("data-figure=\"requests_per_second\" data-concurrency=\"10\"")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_else(|| panic!("no requests/s row at 10 journeys: {}", page.body));
    assert!(
        row.contains("1,001 (IQR 1,000–1,001, 1,000–1,001)"),
        "{row}"
    );
    assert!(row.contains("-20.0 %"), "{row}");

    let matrix = call(&f.app, "get_matrix", &format!("run_id={id}")).await;
    assert_eq!(matrix.status, StatusCode::OK, "{}", matrix.body);
    let m = matrix.json();
    assert_eq!(m["builds"], serde_json::json!(["2.10.0", "pinned"]));
    // requests/s per build and concurrency, each over 2 repeats.
    assert_eq!(m["rows"].as_array().map(Vec::len), Some(4), "{m}");
    assert_eq!(m["rows"][0]["spread"]["repeats"], 2);
    assert_eq!(m["charts"][0]["slot"], 0);
    // Data, not layout: no element id comes from the server.
    assert!(m["charts"][0].get("dom_id").is_none(), "{m}");
    let csv = get(&f.app, &format!("/runs/{id}/figures.csv")).await;
    assert!(
        csv.body
            .contains(&format!("\n{id},2,pinned,10,requests_per_second,800.4")),
        "{}",
        csv.body
    );
    let missing = call(&f.app, "get_matrix", "run_id=999").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);

    // A run installing its build says so on its page.
    let preparing = store
        .create_run(&RunParams::default(), RunStatus::Running)
        .await
        .expect("run");
    store
        .set_run_stage(preparing, "installing mite 2.9.2 with uv…")
        .await
        .expect("stage");
    let page = get(&f.app, &format!("/runs/{preparing}")).await;
    assert!(
        page.body
            .contains("Preparing: installing mite 2.9.2 with uv…"),
        "{}",
        page.body
    );
    // A run of one build, once, has no matrix.
    let single = get(&f.app, &format!("/runs/{}", f.run_id)).await;
    assert!(!single.body.contains("Figures per build"));
}

#[tokio::test]
async fn cross_site_requests_are_refused_and_change_nothing() {
    let f = fixture("origin").await;
    let launch = |headers: &[(&str, &str)]| {
        let mut request = Request::post("/api/launch_run")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::HOST, "127.0.0.1:3000");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .body(Body::from(
                "form[scenarios]=1&form[duration]=1s&form[interval]=1s&form[spawn_rate]=1000&form[label]=x",
            ))
            .expect("a request")
    };
    let queued = || async { f.lab.store().queued_count().await.expect("count") };
    // A form on another page (another port of 127.0.0.1 is another origin).
    for headers in [
        vec![("origin", "http://127.0.0.1:8080")],
        vec![
            ("sec-fetch-site", "same-site"),
            ("origin", "http://127.0.0.1:8080"),
        ],
        vec![("sec-fetch-site", "cross-site")],
        vec![("origin", "null")],
    ] {
        let answer = send(&f.app, launch(&headers)).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{headers:?}: {}",
            answer.body
        );
        assert!(
            answer.body.contains("only from its own pages"),
            "{}",
            answer.body
        );
    }
    let cleanup = send(
        &f.app,
        Request::post("/api/cleanup_ports")
            .header("sec-fetch-site", "cross-site")
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(cleanup.status, StatusCode::FORBIDDEN);
    assert_eq!(queued().await, 0, "a refused launch queued a run");
    // The lab's own page, and a client that is no browser, may launch.
    let own = send(
        &f.app,
        launch(&[
            ("origin", "http://127.0.0.1:3000"),
            ("sec-fetch-site", "same-origin"),
        ]),
    )
    .await;
    assert!(
        own.status.is_success() || own.status.is_redirection(),
        "{}",
        own.body
    );
    let script = send(&f.app, launch(&[])).await;
    assert!(
        script.status.is_success() || script.status.is_redirection(),
        "{}",
        script.body
    );
    assert_eq!(queued().await, 2);
    // Reading stays open to links from anywhere.
    let csv = send(
        &f.app,
        Request::get(format!("/runs/{}/samples.csv", f.run_id))
            .header("sec-fetch-site", "cross-site")
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(csv.status, StatusCode::OK);
}

/// Every answer holds in a browser: pages carry a Content-Security-Policy
/// whose nonce is the one their scripts carry (and no inline handler),
/// every answer forbids sniffing and framing and keeps URLs to the lab,
/// answers that are not pages let nothing run, and a flame graph's script
/// runs only sandboxed.
#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let f = fixture("headers").await;
    let profile = crate::common::seed::runner_profile(f.lab.store(), f.scenario_id).await;
    let header = |a: &Answer, name: header::HeaderName| {
        a.headers
            .get(&name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let pages = [
        "/".to_string(),
        "/runs".into(),
        format!("/runs/{}", f.run_id),
        format!("/compare?runs={0},{0}", f.run_id),
        "/ports".into(),
        "/agents".into(),
        "/activity".into(),
        "/signin".into(),
        "/no-such-page".into(),
    ];
    for path in &pages {
        let page = get(&f.app, path).await;
        assert!(
            page.headers
                .get(header::CONTENT_TYPE)
                .is_some_and(|t| t.to_str().unwrap_or("").starts_with("text/html")),
            "{path} is a page"
        );
        // Its icon is inline (and the policy lets it load): no page makes
        // the browser ask for /favicon.ico.
        assert!(
            page.body
                .contains(&format!("<link rel=\"icon\" href=\"{}\"", app::FAVICON)),
            "{path}: no inline icon"
        );
        let policy = header(&page, header::CONTENT_SECURITY_POLICY);
        assert!(policy.contains("img-src 'self' data:"), "{path}: {policy}");
        let nonce = policy
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("{path}: no nonce in {policy:?}"));
        assert!(nonce.len() >= 16, "{path}: {nonce}");
        for directive in [
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
        ] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        assert!(
            !policy.contains("'unsafe-eval'") && !policy.contains("script-src 'unsafe-inline'")
        );
        // Every inline script carries the nonce; no element runs an inline handler.
        for script in page.body.split("<script").skip(1) {
            let tag = script.split('>').next().unwrap_or_default();
            assert!(
                tag.contains(" src=") || tag.contains(&format!("nonce=\"{nonce}\"")),
                "{path}: <script{tag}> runs without the nonce"
            );
        }
        for handler in [" onload=", " onclick=", " onerror=", "javascript:"] {
            assert!(!page.body.contains(handler), "{path} holds {handler}");
        }
        assert_eq!(
            header(&page, header::X_CONTENT_TYPE_OPTIONS),
            "nosniff",
            "{path}"
        );
        assert_eq!(header(&page, header::X_FRAME_OPTIONS), "DENY", "{path}");
        assert_eq!(
            header(&page, header::REFERRER_POLICY),
            "same-origin",
            "{path}"
        );
    }
    // Two answers, two nonces.
    let again = get(&f.app, "/").await;
    let first = get(&f.app, "/").await;
    assert_ne!(
        header(&again, header::CONTENT_SECURITY_POLICY),
        header(&first, header::CONTENT_SECURITY_POLICY)
    );
    for path in [
        format!("/runs/{}/samples.csv", f.run_id),
        format!("/runs/{}/chart.html", f.run_id),
        format!("/scenarios/{}/logs/runner", f.scenario_id),
        "/healthz".into(),
        "/runs/424242/samples.csv".into(),
    ] {
        let answer = get(&f.app, &path).await;
        assert_eq!(
            header(&answer, header::CONTENT_SECURITY_POLICY),
            mite_perf::web::NOTHING_RUNS_POLICY,
            "{path}"
        );
        assert_eq!(
            header(&answer, header::X_CONTENT_TYPE_OPTIONS),
            "nosniff",
            "{path}"
        );
        assert_eq!(header(&answer, header::X_FRAME_OPTIONS), "DENY", "{path}");
    }
    let svg = get(&f.app, &format!("/profiles/{profile}/flamegraph.svg")).await;
    assert_eq!(svg.status, StatusCode::OK, "{}", svg.body);
    let policy = header(&svg, header::CONTENT_SECURITY_POLICY);
    assert!(policy.starts_with("sandbox allow-scripts;"), "{policy}");
    assert!(!policy.contains("allow-same-origin"), "{policy}");
    // The run's page draws it as an image, where no script runs.
    let page = get(&f.app, &format!("/runs/{}", f.run_id)).await;
    assert!(
        page.body
            .contains(&format!("<img src=\"/profiles/{profile}/flamegraph.svg\"")),
        "the flame graph is an image: {}",
        page.body
    );
    assert!(!page.body.contains("<object"));
}

/// With the database down, every download answers 503 (the database is
/// unavailable), never 500: the lab here lets everyone in
/// (`--insecure-no-auth`), so that each request reaches its route.
#[tokio::test]
async fn every_download_answers_503_with_the_database_down() {
    let f = fixture("downloads-down").await;
    let open = mite_perf::web::router(
        f.lab.clone(),
        WebConfig {
            access: mite_perf::access::AccessPolicy {
                open: mite_perf::access::Openness::Always,
                ..mite_perf::access::AccessPolicy::local()
            },
            ..WebConfig::local(crate::common::seed::site_root())
        },
    )
    .await
    .expect("router");
    let (run, scenario) = (f.run_id, f.scenario_id);
    let downloads = [
        format!("/runs/{run}/samples.csv"),
        format!("/runs/{run}/figures.csv"),
        format!("/runs/{run}/transactions.csv"),
        format!("/runs/{run}/chart.html"),
        format!("/scenarios/{scenario}/samples.csv"),
        format!("/scenarios/{scenario}/processes.csv"),
        format!("/scenarios/{scenario}/transactions.csv"),
        format!("/scenarios/{scenario}/logs/runner"),
        format!("/scenarios/{scenario}/collector/data.msgpack"),
        "/profiles/1/flamegraph.svg".into(),
        "/profiles/1/stacks.folded".into(),
        "/profiles/1/speedscope.json".into(),
        format!("/compare.csv?runs={run},{run}"),
        format!("/compare/flamegraph.svg?runs={run},{run}&concurrency=10"),
    ];
    for path in &downloads {
        let up = get(&open, path).await;
        assert_ne!(
            up.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{path}: {}",
            up.body
        );
    }
    f.lab.store().close().await;
    for path in &downloads {
        let down = get(&open, path).await;
        assert_eq!(
            down.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {}",
            down.body
        );
        assert!(
            down.body.contains("database is unavailable"),
            "{path}: {}",
            down.body
        );
    }
}

/// The most points any series of an ECharts option holds.
fn most_points(option: &Value) -> usize {
    option["series"]
        .as_array()
        .map(|series| {
            series
                .iter()
                .map(|s| s["data"].as_array().map_or(0, Vec::len))
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// A long scenario (20,000 s sampled every second; 3,000 s of mite's bus)
/// read by a viewer asking for every sample: every answer is bounded.
/// `get_chart_points` with `bucket_ms=1` from the start, a window to
/// `i64::MAX`, mite's view, `chart.html` (in a download slot) and
/// `transactions.csv` (streamed, whole).
#[tokio::test]
async fn a_long_scenario_is_read_in_bounded_answers() {
    use mite_perf::bus::message::BusMessage;
    use mite_perf::bus::tally::BusTally;
    use mite_perf::model::Sample;
    use mite_perf::reports::chart::{CHART_POINTS, HTML_POINTS};
    use mite_perf::store::SampleBatch;
    let f = fixture("long").await;
    let store = f.lab.store();
    const TICKS: i64 = 20_000;
    const BUS_SECONDS: i64 = 3_000;
    const ORIGIN: i64 = 1_700_000_000_000;
    let (run, scenario) = crate::common::seed::running_scenario(store, "long").await;
    let writer = store.sample_writer().await.expect("writer");
    let batches: Vec<SampleBatch> = (1..=TICKS)
        .map(|tick| SampleBatch {
            scenario_id: scenario,
            samples: [ProcessKind::Target, ProcessKind::Runner]
                .into_iter()
                .map(|process| Sample {
                    process,
                    pid: if process == ProcessKind::Target { 2 } else { 1 },
                    at_ms: ORIGIN + tick * 1000,
                    elapsed_ms: tick * 1000,
                    cpu: (tick % 97) as f64,
                    mem: 1 << 20,
                    requests: (process == ProcessKind::Target).then_some(tick * 10),
                    requests_in_interval: (process == ProcessKind::Target).then_some(10),
                    detail: None,
                })
                .collect(),
            figures: None,
            bus: None,
        })
        .collect();
    writer.write(&batches).await.expect("samples");
    let mut tally = BusTally::new(ORIGIN);
    for second in 0..BUS_SECONDS {
        tally.add(&BusMessage::Response {
            transaction: "browse",
            time: (ORIGIN + second * 1000 + 10) as f64 / 1000.0,
            status: 200,
            total_time: 0.002,
        });
        tally.add(&BusMessage::ControllerReport {
            time: (ORIGIN + second * 1000 + 900) as f64 / 1000.0,
            required: 10,
            actual: 10,
            runners: 1,
        });
        if second % 500 == 499 || second == BUS_SECONDS - 1 {
            let bus = tally.take_ready(ORIGIN + (second + 2) * 1000);
            writer
                .write(&[SampleBatch {
                    scenario_id: scenario,
                    samples: Vec::new(),
                    figures: None,
                    bus: Some(bus),
                }])
                .await
                .expect("bus rows");
        }
    }
    let bound = CHART_POINTS as usize + 1;

    // Every sample, asked for from the start at a millisecond's resolution.
    let points = call(
        &f.app,
        "get_chart_points",
        &format!("scenario_id={scenario}&bucket_ms=1&after_ms=0"),
    )
    .await;
    assert_eq!(points.status, StatusCode::OK, "{}", points.body);
    let most = points.json()["charts"]
        .as_array()
        .expect("charts")
        .iter()
        .flat_map(|c| c["series"].as_array().cloned().unwrap_or_default())
        .map(|s| s["points"].as_array().map_or(0, Vec::len))
        .max()
        .unwrap_or(0);
    assert!(most > 100 && most <= bound, "{most} points in a series");
    // A window reaching i64::MAX, and the overview.
    for args in [
        format!("scenario_id={scenario}&window[0]=0&window[1]=9223372036854775807"),
        format!("scenario_id={scenario}"),
    ] {
        let charts = call(&f.app, "get_charts", &args).await;
        assert_eq!(charts.status, StatusCode::OK, "{}", charts.body);
        for chart in charts.json()["charts"].as_array().expect("charts") {
            let option: Value =
                serde_json::from_str(chart["option_json"].as_str().expect("option")).expect("json");
            assert!(
                most_points(&option) <= bound,
                "{args}: {}",
                most_points(&option)
            );
        }
    }
    // mite's own view.
    let view = call(&f.app, "get_mite_view", &format!("scenario_id={scenario}")).await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.body);
    for chart in view.json()["charts"].as_array().expect("charts") {
        let option: Value =
            serde_json::from_str(chart["option_json"].as_str().expect("option")).expect("json");
        let most = most_points(&option);
        assert!(most > 100 && most <= bound, "mite's view: {most}");
    }
    // chart.html: each series at most HTML_POINTS.
    let html = get(&f.app, &format!("/runs/{run}/chart.html")).await;
    assert_eq!(html.status, StatusCode::OK, "{}", html.body);
    let mut options = 0;
    for (at, _) in html.body.match_indices("\"option\":") {
        let rest = &html.body[at + "\"option\":".len()..];
        let option: Value = serde_json::Deserializer::from_str(rest)
            .into_iter::<Value>()
            .next()
            .expect("an option")
            .expect("json");
        assert!(
            most_points(&option) <= HTML_POINTS as usize + 1,
            "chart.html"
        );
        options += 1;
    }
    assert!(options >= 7, "{options} charts");
    // transactions.csv streams, whole: a header and a row a second.
    let csv = get(&f.app, &format!("/scenarios/{scenario}/transactions.csv")).await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);
    assert_eq!(
        csv.body.lines().count() as i64,
        1 + BUS_SECONDS,
        "header and rows"
    );
    let run_csv = get(&f.app, &format!("/runs/{run}/transactions.csv")).await;
    assert_eq!(run_csv.body, csv.body);
}

/// What the lab logs while it answers a request says which request: its
/// method and route, the route as declared, so a share link's secret in
/// the path is never written to the log.
#[tokio::test]
async fn each_request_logs_in_a_span_of_its_route_and_never_a_secret_path() {
    #[derive(Clone, Default)]
    struct Log(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Log {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut log) = self.0.lock() {
                log.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // This test's thread only (the test runtime is single-threaded).
    let _logging = tracing::subscriber::set_default(subscriber);
    let f = fixture("request-spans").await;
    let secret = "s3cr3t-share-token-in-the-path";
    let answer = get(&f.app, &format!("/share/{secret}")).await;
    assert_ne!(answer.status, StatusCode::OK, "no such share link");
    let health = get(&f.app, "/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    let text = String::from_utf8_lossy(&log.0.lock().expect("the log")).into_owned();
    assert!(
        text.contains("request{method=GET route=/share/{secret}}"),
        "{text}"
    );
    assert!(
        text.contains("request{method=GET route=/healthz}"),
        "{text}"
    );
    assert!(!text.contains(secret), "the secret was logged: {text}");
}

/// FAULTS.md 56: the trends and comparisons read the whole history, and
/// any viewer may ask for them in a loop. The series are computed once per
/// state of the history (served as computed until a scenario finishes or a
/// mark changes), and at most `MAX_HEAVY_READS` such reads run at once:
/// more are answered 429 rather than queued on the machine that measures.
#[tokio::test]
async fn trends_are_computed_once_per_history_and_heavy_reads_are_bounded() {
    use domain::series::MarkKind;
    use mite_perf::lab::MAX_HEAVY_READS;
    let f = fixture("heavy-reads").await;
    let run = f.run_id;
    let answer = call(&f.app, "get_trends", "figure=").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let computed = f.lab.history_reads();
    assert_eq!(computed, 1);
    for _ in 0..20 {
        let answer = call(&f.app, "get_trends", "figure=").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let answer = call(&f.app, "get_series", "id=0123456789abcdef").await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
    }
    assert_eq!(f.lab.history_reads(), computed, "served as computed");
    // The history changes (a mark here, as another front would set it):
    // computed again, once.
    f.lab
        .store()
        .set_trend_mark("0123456789abcdef", "2.11.0", MarkKind::Excluded, "ana")
        .await
        .expect("a mark");
    for _ in 0..3 {
        let answer = call(&f.app, "get_trends", "figure=").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    assert_eq!(f.lab.history_reads(), computed + 1);

    // Every place taken (as by viewers computing at this moment): the
    // reads that must compute are answered 429, at once.
    let held: Vec<_> = (0..MAX_HEAVY_READS)
        .map(|_| f.lab.heavy_read_permit().expect("a free place"))
        .collect();
    f.lab
        .store()
        .clear_trend_mark("0123456789abcdef", "2.11.0", MarkKind::Excluded)
        .await
        .expect("the mark taken back");
    for (name, form) in [
        ("get_trends", "figure=".to_string()),
        ("get_series", "id=0123456789abcdef".to_string()),
        ("compare_runs", format!("runs={run}%2C{run}")),
        ("get_compare_charts", format!("runs={run}%2C{run}")),
    ] {
        let answer = call(&f.app, name, &form).await;
        assert_eq!(
            answer.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{name}: {}",
            answer.body
        );
        assert!(answer.body.contains("try again"), "{name}: {}", answer.body);
    }
    let svg = get(
        &f.app,
        &format!("/compare/flamegraph.svg?runs={run},{run}&concurrency=10"),
    )
    .await;
    assert_eq!(svg.status, StatusCode::TOO_MANY_REQUESTS, "{}", svg.body);
    assert_eq!(f.lab.history_reads(), computed + 1, "nothing computed");
    drop(held);
    let answer = call(&f.app, "compare_runs", &format!("runs={run}%2C{run}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let answer = call(&f.app, "get_trends", "figure=").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(f.lab.history_reads(), computed + 2);
}

/// FAULTS.md 10: what comes out of the queue is checked again when taken.
/// A queued row whose parameters no launch would pass (written straight
/// into the database: concurrency 0, a half-second duration) is failed
/// with the reasons by the worker that takes it, before anything starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_run_is_validated_again_when_taken() {
    let f = fixture("queue-checked").await;
    let store = f.lab.store().clone();
    let params = RunParams {
        concurrencies: vec![0],
        duration_ms: 500,
        ..RunParams::default()
    };
    assert!(!params.validate().is_empty(), "no launch passes these");
    let run = store
        .create_run(&params, RunStatus::Queued)
        .await
        .expect("queued as if written by hand");
    let worker = f.lab.start_worker();
    let record = ended_run(&store, run).await;
    worker.abort();
    assert_eq!(record.status, RunStatus::Failed);
    let why = record.error.unwrap_or_default();
    assert!(
        why.contains("concurrency 0 is out of range") && why.contains("500 ms is out of range"),
        "{why}"
    );
    // Refused before its scenarios were made: none, so nothing started.
    let scenarios = store.scenarios(run).await.expect("scenarios");
    assert!(scenarios.is_empty(), "{scenarios:?}");
    assert!(record.output_dir.is_none(), "{:?}", record.output_dir);
}

/// FAULTS.md 24: a queued run names a library scenario this agent does not
/// have (its module removed from the folder since the launch): the worker
/// that takes it fails it, naming the scenario and the folders looked in,
/// before anything starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_library_scenario_is_gone_fails_before_anything_starts() {
    let dir = crate::common::temp_dir("router-scenario-gone");
    let output = dir.join("output");
    let library = dir.join("library");
    std::fs::create_dir_all(&output).expect("output folder");
    std::fs::create_dir_all(&library).expect("library folder");
    let store = Store::connect(&format!("sqlite://{}/lab.db", dir.display()))
        .await
        .expect("store");
    let mut setup = crate::common::seed::lab_setup(&dir, &output);
    setup.policy.scenario_roots = vec![library.clone()];
    let lab = Lab::new(store.clone(), setup);
    let params = RunParams {
        scenario: mite_perf::model::ScenarioSpec::Library {
            spec: "gone:scenario".into(),
        },
        ..RunParams::default()
    };
    let run = store
        .create_run(&params, RunStatus::Queued)
        .await
        .expect("queued before the module went");
    let worker = lab.start_worker();
    let record = ended_run(&store, run).await;
    worker.abort();
    assert_eq!(record.status, RunStatus::Failed);
    let why = record.error.unwrap_or_default();
    assert!(
        why.contains("this agent has no scenario module for `gone:scenario`")
            && why.contains(&library.display().to_string()),
        "{why}"
    );
    assert!(store.scenarios(run).await.expect("scenarios").is_empty());
    assert!(record.output_dir.is_none(), "{:?}", record.output_dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Run `run` once it is no longer queued or running (30 s at most).
async fn ended_run(store: &Store, run: i64) -> mite_perf::store::RunRecord {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let record = store.run(run).await.expect("read").expect("the run");
        if record.status != RunStatus::Queued && record.status != RunStatus::Running {
            return record;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run {run} still {} after 30 s",
            record.status
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
