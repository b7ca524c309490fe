//! END-TO-END (a few minutes): the browser lab. `mite-perf serve` runs real
//! mite against the real ports with a real SQLite file; the server functions
//! are called over HTTP as the pages call them, and one test drives headless
//! Chromium (Debian's chromium + chromium-driver) through the whole flow.
//! The pages need the site cargo-leptos builds (scripts/test builds it).

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use serde_json::Value;

use crate::common::{
    assert_no_child_left, assert_ports_free, launch_form, wait_status, Browser, Server,
};
use mite_perf::model::ProcessKind;
use mite_perf::store::{SampleRow, Store};

async fn run_status(server: &Server, id: i64) -> Value {
    server.call("get_run", &format!("run_id={id}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_functions_validate_input() {
    let _turn = crate::common::share_the_machine().await;
    let mut server = Server::start("validate").await;
    let answer = server
        .call("launch_run", &launch_form("1,0", "soon", ""))
        .await;
    let errors = answer["Invalid"]
        .as_array()
        .unwrap_or_else(|| panic!("not invalid: {answer}"));
    let fields: Vec<&str> = errors.iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["concurrencies", "duration"], "{answer}");
    let answer = server
        .call(
            "launch_run",
            "form[scenarios]=1&form[duration]=5s&form[spawn_rate]=1000000&form[interval]=20ms&form[label]=",
        )
        .await;
    assert_eq!(answer["Invalid"][0]["field"], "interval", "{answer}");
    // Nothing was queued.
    let queue = server.call("get_queue", "").await;
    assert_eq!(queue.as_array().map(Vec::len), Some(0), "{queue}");
    let (status, health) = server.get("/healthz").await.expect("healthz");
    assert_eq!(status, 200);
    assert!(health.contains("\"database\":\"ok\""), "{health}");
    assert!(server.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_second_launch_waits_in_the_queue_then_runs() {
    let _turn = crate::common::share_the_machine().await;
    let mut server = Server::start("queue").await;
    let first = server
        .call("launch_run", &launch_form("1", "5s", "first"))
        .await;
    let second = server
        .call("launch_run", &launch_form("1", "5s", "second"))
        .await;
    let first_id = first["Queued"]["run_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{first}"));
    let second_id = second["Queued"]["run_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{second}"));
    wait_status(&server, first_id, &["running"], Duration::from_secs(30)).await;
    let waiting = run_status(&server, second_id).await;
    assert_eq!(waiting["status"], "queued", "{waiting}");
    assert_eq!(waiting["queue_position"], 1, "{waiting}");
    let queue = server.call("get_queue", "").await;
    assert_eq!(queue[0]["id"], first_id);
    assert_eq!(queue[0]["running"], true);
    assert_eq!(queue[1]["id"], second_id);

    let first = wait_status(
        &server,
        first_id,
        &["done", "failed"],
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(first["status"], "done", "{first}");
    let second = wait_status(
        &server,
        second_id,
        &["done", "failed"],
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(second["status"], "done", "{second}");
    assert!(
        second["started_at"].as_i64() >= first["ended_at"].as_i64(),
        "the second run started before the first ended"
    );
    assert!(
        second["scenarios"][0]["figures"]["total_requests"]
            .as_i64()
            .unwrap_or(0)
            > 0
    );

    // A queued run can be removed before it starts.
    let third = server
        .call("launch_run", &launch_form("1", "30s", "third"))
        .await;
    let fourth = server
        .call("launch_run", &launch_form("1", "5s", "fourth"))
        .await;
    let third_id = third["Queued"]["run_id"].as_i64().expect("third");
    let fourth_id = fourth["Queued"]["run_id"].as_i64().expect("fourth");
    wait_status(&server, third_id, &["running"], Duration::from_secs(30)).await;
    assert_eq!(
        server
            .call("remove_queued_run", &format!("run_id={fourth_id}"))
            .await,
        true
    );
    assert_eq!(run_status(&server, fourth_id).await, Value::Null);
    assert_eq!(
        server
            .call("cancel_run", &format!("run_id={third_id}"))
            .await,
        true
    );
    wait_status(&server, third_id, &["interrupted"], Duration::from_secs(30)).await;
    assert!(server.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_cancel_stops_every_child_and_frees_the_ports() {
    let _turn = crate::common::share_the_machine().await;
    let mut server = Server::start("cancel").await;
    let store = Store::connect(&server.db_url()).await.expect("store");
    let launched = server
        .call("launch_run", &launch_form("10,100", "60s", "cancel me"))
        .await;
    let id = launched["Queued"]["run_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{launched}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let run = run_status(&server, id).await;
        if run["scenarios"][0]["latest"]
            .as_array()
            .is_some_and(|l| l.len() == 5)
        {
            break;
        }
        assert!(Instant::now() < deadline, "no live figures: {run}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let asked = Instant::now();
    assert_eq!(
        server.call("cancel_run", &format!("run_id={id}")).await,
        true
    );
    let run = wait_status(&server, id, &["interrupted"], Duration::from_secs(20)).await;
    assert!(asked.elapsed() < Duration::from_secs(15));
    assert_eq!(run["scenarios"][0]["status"], "interrupted");
    assert_eq!(run["scenarios"][1]["status"], "skipped");
    assert_ports_free(&server.ports);
    assert_no_child_left(&store, id).await;
    let health = server.get("/healthz").await.expect("healthz").1;
    assert!(health.contains("\"run_in_progress\":null"), "{health}");
    assert!(server.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_browser_launch_watch_detail_and_csv() {
    let _turn = crate::common::share_the_machine().await;
    let mut server = Server::start("browser").await;
    let store = Store::connect(&server.db_url()).await.expect("store");
    let browser = Browser::start().await;

    // An empty lab says so.
    browser.goto(&server.url("/runs")).await;
    browser
        .wait_for(
            "the empty state",
            "return document.body.innerText.includes('No runs yet')",
            Duration::from_secs(20),
        )
        .await;

    // Launch 1 and 10 journeys, 10 s each, from the form.
    browser.goto(&server.url("/")).await;
    // The page says when its handlers are attached.
    browser.wait_hydrated().await;
    browser
        .eval(
            r#"
            const set = (name, value) => {
              const el = document.querySelector(`input[name="form[${name}]"]`);
              el.value = value; el.dispatchEvent(new Event('input', {bubbles: true}));
            };
            for (const n of [100, 1000]) {
              const box = document.querySelector(`input[data-scenario="${n}"]`);
              if (box.checked) box.click();
            }
            set('duration', '10s');
            set('label', 'browser e2e');
            document.querySelector('form.launch-form button[type=submit]').click();
            return true;"#,
        )
        .await;
    browser
        .wait_for(
            "the run page",
            "return location.pathname.startsWith('/runs/')",
            Duration::from_secs(20),
        )
        .await;
    let path = browser.eval("return location.pathname").await;
    let run_id: i64 = path
        .as_str()
        .and_then(|p| p.trim_start_matches("/runs/").parse().ok())
        .unwrap_or_else(|| panic!("not a run page: {path}"));

    // Live: the status says running and the charts draw and keep moving.
    browser
        .wait_for(
            "a running scenario",
            "return !!document.querySelector('section.scenario[data-status=running]')",
            Duration::from_secs(60),
        )
        .await;
    browser
        .wait_for(
            "a drawn chart",
            "return [...document.querySelectorAll('.charts.processes .chart')].some(c => c.dataset.rendered === '1' && c.querySelector('canvas'))",
            Duration::from_secs(30),
        )
        .await;
    // mite's own view, live: its latency and error charts draw while the
    // scenario runs, and its transaction table counts.
    browser
        .wait_for(
            "mite's latency and error charts, live",
            r#"const view = document.querySelector('section.scenario[data-status=running] .mite-view');
               if (!view) return false;
               const drawn = i => {
                 const el = document.getElementById(`mite-chart-${view.dataset.miteView}-${i}`);
                 const c = el && el.dataset.rendered === '1' && echarts.getInstanceByDom(el);
                 return !!c && (c.getOption().series || []).some(s => (s.data || []).length >= 2);
               };
               const requests = view.querySelector('tr[data-transaction="test"] [data-field=requests]');
               return drawn(0) && drawn(1) && !!requests && parseInt(requests.innerText.replace(/,/g, ''), 10) > 0;"#,
            Duration::from_secs(30),
        )
        .await;
    browser
        .screenshot(&server.dir.join("mite-view-live.png"))
        .await;
    // Zoom in and hide a series: new points keep arriving, the choices stay.
    browser
        .wait_for(
            "the first chart's target series",
            r#"const c = echarts.getInstanceByDom(document.querySelector('.charts.processes .chart'));
               return !!c && (c.getOption().series || []).some(s => s.name === 'target' && s.data.length >= 2);"#,
            Duration::from_secs(30),
        )
        .await;
    let points_before = browser
        .eval(
            r#"const c = echarts.getInstanceByDom(document.querySelector('.charts.processes .chart'));
               c.dispatchAction({type: 'dataZoom', startValue: 1, endValue: 3});
               c.dispatchAction({type: 'legendUnSelect', name: 'runner'});
               return c.getOption().series.find(s => s.name === 'target').data.length;"#,
        )
        .await;
    let first_total = browser
        .eval("return document.querySelector('[data-figure=total-requests]')?.innerText || ''")
        .await;
    // The live figures move: waited for (15 s at most), not slept on.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let later_total = browser
            .eval("return document.querySelector('[data-figure=total-requests]')?.innerText || ''")
            .await;
        if later_total != first_total {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the live figures did not move from {first_total}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let kept = browser
        .eval(
            r#"const o = echarts.getInstanceByDom(document.querySelector('.charts.processes .chart')).getOption();
               return {start: o.dataZoom[0].startValue, end: o.dataZoom[0].endValue,
                       runner: o.legend[0].selected.runner,
                       points: o.series.find(s => s.name === 'target').data.length};"#,
        )
        .await;
    assert!(
        kept["points"].as_i64() > points_before.as_i64(),
        "no new points: {kept} (before: {points_before})"
    );
    assert_eq!(kept["start"], 1, "the zoom was reset: {kept}");
    assert_eq!(kept["end"], 3, "the zoom was reset: {kept}");
    assert_eq!(kept["runner"], false, "the hidden series came back: {kept}");

    // The run finishes by itself; the page says so without a reload.
    browser
        .wait_for(
            "the run to finish",
            "return document.querySelectorAll('section.scenario[data-status=done]').length === 2",
            Duration::from_secs(120),
        )
        .await;
    browser.screenshot(&server.dir.join("run-done.png")).await;

    // The detail page: charts drawn with data, figures above zero.
    browser.goto(&server.url(&format!("/runs/{run_id}"))).await;
    browser
        .wait_for(
            "detail charts",
            "return [...document.querySelectorAll('.charts.processes .chart')].filter(c => c.dataset.rendered === '1').length === 14",
            Duration::from_secs(30),
        )
        .await;
    let drawn = browser
        .eval(
            r#"const c = document.querySelector('.charts.processes .chart canvas');
               const ctx = c.getContext('2d');
               const d = ctx.getImageData(0, 0, c.width, c.height).data;
               let ink = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) ink++;
               return ink;"#,
        )
        .await;
    assert!(
        drawn.as_i64().unwrap_or(0) > 1000,
        "the chart canvas is blank: {drawn}"
    );
    let totals = browser
        .eval("return [...document.querySelectorAll('[data-figure=total-requests]')].map(e => parseInt(e.innerText.replace(/,/g, ''), 10))")
        .await;
    let totals: Vec<i64> = serde_json::from_value(totals).expect("numbers");
    assert_eq!(totals.len(), 2);
    assert!(totals.iter().all(|t| *t > 0), "{totals:?}");

    // Zooming in fetches the visible window at full resolution.
    browser
        .eval(
            r#"const c = echarts.getInstanceByDom(document.querySelector('.charts.processes .chart'));
               c.dispatchAction({type: 'dataZoom', startValue: 2, endValue: 6});
               return true;"#,
        )
        .await;
    browser
        .wait_for(
            "the zoomed window at full resolution",
            "return !!document.querySelector('.charts.processes .chart').dataset.detail",
            Duration::from_secs(20),
        )
        .await;

    // Download the run's CSV through the page's link: it matches the database.
    let csv = browser
        .script(
            r#"const done = arguments[0];
               const a = [...document.querySelectorAll('a')].find(a => a.innerText === 'samples.csv');
               fetch(a.href).then(r => r.text()).then(done, e => done('ERROR ' + e));"#,
        )
        .await;
    let csv = csv.as_str().expect("csv text").to_string();
    let rows: Vec<SampleRow> = store.run_samples(run_id).try_collect().await.expect("rows");
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .is_some_and(|h| h.starts_with("elapsed,process,cpu,mem,scenario,requests")),
        "not the CSV: {}",
        csv.chars().take(300).collect::<String>()
    );
    let lines: Vec<&str> = lines.collect();
    assert_eq!(lines.len(), rows.len(), "CSV rows vs database rows");
    for (line, row) in lines.iter().zip(&rows) {
        assert_eq!(*line, mite_perf::reports::csv::line(row).trim_end());
    }
    assert!(rows
        .iter()
        .any(|r| r.sample.process == ProcessKind::Target && r.sample.requests.unwrap_or(0) > 0));

    // A run stored before some charts existed (its kept overview has only
    // CPU, memory and throughput): those three are drawn, the places of
    // the others are not shown; the other scenario keeps its seven.
    let first = store.scenarios(run_id).await.expect("scenarios").remove(0);
    let mut overview = store
        .stored_overview(first.id)
        .await
        .expect("query")
        .expect("a kept overview");
    assert_eq!(overview.charts.len(), 7);
    overview.charts.truncate(3);
    store
        .save_overview(first.id, &overview)
        .await
        .expect("an older overview");
    browser.goto(&server.url(&format!("/runs/{run_id}"))).await;
    browser.wait_hydrated().await;
    let count = format!(
        r#"const charts = [...document.querySelectorAll('.charts.processes .chart')];
           const older = charts.filter(c => c.id.startsWith('chart-{}-'));
           const visible = c => getComputedStyle(c).display !== 'none';
           const drawn = older.filter(c => c.dataset.rendered === '1' && visible(c)).length;
           const empty = older.filter(c => c.dataset.rendered !== '1' && visible(c)).length;
           const others = charts.filter(c => !older.includes(c) && c.dataset.rendered === '1' && visible(c)).length;"#,
        first.id
    );
    browser
        .wait_for(
            "the older scenario's three charts",
            &format!("{count} return drawn === 3 && others === 7;"),
            Duration::from_secs(30),
        )
        .await;
    let shown = browser
        .eval(&format!("{count} return [drawn, empty, others];"))
        .await;
    assert_eq!(shown, serde_json::json!([3, 0, 7]));

    assert_ports_free(&server.ports);
    assert_no_child_left(&store, run_id).await;
    // The browser said no error (a script exception, a CSP violation,
    // a resource refused) on the last page either.
    browser.assert_console_clean().await;
    drop(browser);
    assert!(server.stop().success());
}

/// Stores a finished run of `repeats` scenarios of 10 journeys, each
/// serving `rps` requests a second for 10 s, with its provenance.
async fn seed_compared_run(store: &Store, label: &str, rps: i64, repeats: u32) -> i64 {
    use mite_perf::figures::RunningFigures;
    use mite_perf::model::{RunParams, RunStatus, Sample, ScenarioStatus};
    use mite_perf::store::SampleBatch;
    let params = RunParams {
        label: label.into(),
        concurrencies: vec![10],
        repeats,
        ..RunParams::default()
    };
    let run = store
        .create_run(&params, RunStatus::Running)
        .await
        .expect("run");
    let provenance = domain::provenance::Provenance {
        host: "lab-host".into(),
        builds: vec![domain::provenance::BuildProvenance {
            asked: "pinned".into(),
            mite_version: "2.11.0".into(),
            python_version: "3.11.7".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    store
        .save_provenance(run, &provenance)
        .await
        .expect("provenance");
    let writer = store.sample_writer().await.expect("writer");
    for (position, slot) in params.slots().into_iter().enumerate() {
        let scenario = store
            .create_scenario(run, position as i64, slot, &params)
            .await
            .expect("scenario");
        let mut figures = RunningFigures::default();
        let mut samples = Vec::new();
        // A little spread between repeats, as on a real machine.
        let rps = rps + i64::from(slot.repeat) * rps / 100;
        for t in 1..=10i64 {
            for (i, kind) in ProcessKind::ALL.iter().enumerate() {
                let http = *kind == ProcessKind::Target;
                samples.push(Sample {
                    process: *kind,
                    pid: 100 + i as i64,
                    at_ms: 1_700_000_000_000 + t * 1000,
                    elapsed_ms: t * 1000,
                    cpu: if *kind == ProcessKind::Runner {
                        90.0
                    } else {
                        10.0
                    },
                    mem: 40 << 20,
                    requests: http.then_some(t * rps),
                    requests_in_interval: http.then_some(rps),
                    detail: None,
                });
            }
        }
        for s in &samples {
            figures.add(s);
        }
        let figures = figures.figures();
        writer
            .write(&[SampleBatch {
                scenario_id: scenario,
                samples,
                figures: Some(figures.clone()),
                bus: None,
            }])
            .await
            .expect("samples");
        store
            .finish_scenario(scenario, ScenarioStatus::Done, None, None, &figures)
            .await
            .expect("finish scenario");
    }
    store
        .finish_run(run, RunStatus::Done, None)
        .await
        .expect("finish run");
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_browser_compares_two_runs_from_the_history() {
    let _turn = crate::common::share_the_machine().await;
    let dir = crate::common::temp_dir("browser-compare");
    let db_url = format!("sqlite://{}/lab.db", dir.display());
    let store = Store::connect(&db_url).await.expect("store");
    let base = seed_compared_run(&store, "branch", 1000, 3).await;
    let new = seed_compared_run(&store, "branch", 700, 3).await;
    let server = Server::start_with(
        "browser-compare",
        crate::common::ServeOptions {
            db_url: Some(db_url),
            dir: Some(dir),
            ..Default::default()
        },
    )
    .await;
    let browser = Browser::start().await;

    // Tick both runs in the history and compare them.
    browser.goto(&server.url("/runs")).await;
    browser.wait_hydrated().await;
    browser
        .eval(&format!(
            r#"
            for (const id of [{new}, {base}]) document.querySelector(`input[data-compare="${{id}}"]`).click();
            document.querySelector("button.compare-selected").click();
            return true;
            "#
        ))
        .await;
    browser
        .wait_for(
            "the verdict table",
            r#"const cell = document.querySelector('tr[data-figure="requests_per_second"] td.verdict');
               return !!cell && cell.innerText.startsWith('worse')"#,
            Duration::from_secs(30),
        )
        .await;
    let url = browser
        .eval("return location.pathname + location.search")
        .await;
    assert_eq!(
        url.as_str(),
        Some(format!("/compare?runs={new}&runs={base}").as_str()),
        "the history's form opens the comparison"
    );
    let title = browser
        .eval("return document.querySelector('.compare-title').innerText")
        .await;
    assert!(
        title
            .as_str()
            .is_some_and(|t| t.starts_with(&format!("run {new}"))
                && t.contains(&format!("against run {base}"))),
        "{title}"
    );
    let per_cpu = browser
        .eval(r#"return document.querySelector('tr[data-figure="requests_per_runner_cpu_second"] td.verdict').innerText"#)
        .await;
    assert!(
        per_cpu.as_str().is_some_and(|v| v.starts_with("worse")),
        "{per_cpu}"
    );
    let memory = browser
        .eval(r#"return document.querySelector('tr[data-figure="peak_rss_runner"] td.verdict').innerText"#)
        .await;
    assert_eq!(memory.as_str(), Some("no significant change"));

    // The overlaid charts: each side's requests/s on one axis.
    browser
        .wait_for(
            "the overlaid charts",
            r#"const els = document.querySelectorAll('.overlay-charts .chart[data-rendered="1"]');
               if (els.length !== 3) return false;
               const series = echarts.getInstanceByDom(els[0]).getOption().series;
               return series.length === 2 && series.every(s => s.data.length >= 10);"#,
            Duration::from_secs(30),
        )
        .await;
    let names = browser
        .eval(
            r#"return echarts.getInstanceByDom(document.getElementById('compare-10-0'))
                 .getOption().series.map(s => s.name).join(' | ')"#,
        )
        .await;
    assert!(
        names
            .as_str()
            .is_some_and(|n| n.starts_with("base (run") && n.contains(" | new (run")),
        "{names}"
    );

    if let Ok(path) = std::env::var("MITE_PERF_SCREENSHOT_DIR") {
        browser
            .screenshot(&std::path::Path::new(&path).join("compare.png"))
            .await;
    }
    // Marked as the baseline, the first run is compared with on the
    // second's page without a click.
    store.mark_baseline(base).await.expect("baseline");
    browser.goto(&server.url(&format!("/runs/{new}"))).await;
    browser
        .wait_for(
            "against baseline",
            r#"const box = document.querySelector('.against-baseline');
               return !!box && box.innerText.includes('worse')"#,
            Duration::from_secs(30),
        )
        .await;

    // Its repeats as a matrix: the table, and its charts drawn.
    browser
        .wait_for(
            "the version matrix",
            r#"const cell = document.querySelector('.matrix-table tr[data-figure="requests_per_second"][data-concurrency="10"] td[data-build="1"]');
               const charts = document.querySelectorAll('.matrix-charts .chart[data-rendered="1"]');
               if (!cell || !cell.innerText.startsWith('707 (IQR') || charts.length !== 5) return false;
               const series = echarts.getInstanceByDom(charts[0]).getOption().series;
               return series.length === 1 && series[0].data[0][0] === 10 && series[0].data[0][1] === 707;"#,
            Duration::from_secs(30),
        )
        .await;

    if let Ok(path) = std::env::var("MITE_PERF_SCREENSHOT_DIR") {
        browser
            .screenshot(&std::path::Path::new(&path).join("run-against-baseline.png"))
            .await;
    }
    // The CSV of the comparison.
    let (status, csv) = server
        .get(&format!("/compare.csv?runs={base},{new}"))
        .await
        .expect("csv");
    assert_eq!(status, 200);
    assert!(
        csv.starts_with("run,build,concurrency,figure,median,"),
        "{csv}"
    );
    assert!(
        csv.contains(&format!("\n{new},1,10,requests_per_second,707,")),
        "{csv}"
    );
    let (status, _) = server.get("/compare.csv?runs=1").await.expect("csv");
    assert_eq!(status, 400);
    // The browser said no error (a script exception, a CSP violation,
    // a resource refused) on the last page either.
    browser.assert_console_clean().await;
}

/// Adds a user to the lab's database with `mite-perf user add`.
fn add_user(db_url: &str, dir: &std::path::Path, name: &str, role: &str) {
    let secret = dir.join(format!("{name}.password"));
    std::fs::write(&secret, format!("{name}-password\n")).expect("password file");
    let out = std::process::Command::new(crate::common::BIN)
        .args(["user", "add", name, "--role", role, "--password-file"])
        .arg(&secret)
        .env("MITE_PERF_DATABASE_URL", db_url)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("mite-perf user add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&secret);
}

/// Signs in on the sign-in page the browser is on.
async fn sign_in_on_page(browser: &Browser, name: &str) {
    browser
        .wait_for(
            "the sign-in form",
            "return !!document.querySelector('form.signin-form')",
            Duration::from_secs(20),
        )
        .await;
    browser
        .eval(&format!(
            r#"document.querySelector('input[name=name]').value = '{name}';
               document.querySelector('input[name=password]').value = '{name}-password';
               document.querySelector('form.signin-form button[type=submit]').click();
               return true;"#
        ))
        .await;
}

async fn status_of(store: &Store, id: i64) -> mite_perf::model::RunStatus {
    store.run(id).await.expect("run").expect("stored").status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_browser_a_shared_lab_names_launchers_and_lets_only_them_or_an_admin_cancel() {
    let _turn = crate::common::share_the_machine().await;
    let dir = crate::common::temp_dir("shared-lab");
    let db_url = format!("sqlite://{}/lab.db", dir.display());
    for (name, role) in [("ana", "runner"), ("bo", "runner"), ("ad", "admin")] {
        add_user(&db_url, &dir, name, role);
    }
    let server = Server::start_with(
        "shared-lab",
        crate::common::ServeOptions {
            dir: Some(dir.clone()),
            ..Default::default()
        },
    )
    .await;
    let store = Store::connect(&server.db_url()).await.expect("store");

    // Ana opens the lab: sent to sign in, then back to the launch page.
    let ana = Browser::start().await;
    ana.goto(&server.url("/")).await;
    ana.wait_for(
        "the sign-in page",
        "return location.pathname === '/signin'",
        Duration::from_secs(20),
    )
    .await;
    sign_in_on_page(&ana, "ana").await;
    ana.wait_for(
        "the launch page, signed in",
        "return location.pathname === '/' && document.querySelector('.caller-name')?.innerText === 'ana'",
        Duration::from_secs(20),
    )
    .await;
    ana.wait_hydrated().await;
    ana.eval(
        r#"
        const set = (name, value) => {
          const el = document.querySelector(`input[name="form[${name}]"]`);
          el.value = value; el.dispatchEvent(new Event('input', {bubbles: true}));
        };
        for (const n of [10, 100, 1000]) {
          const box = document.querySelector(`input[data-scenario="${n}"]`);
          if (box.checked) box.click();
        }
        set('duration', '120s');
        set('label', 'shared');
        document.querySelector('form.launch-form button[type=submit]').click();
        return true;"#,
    )
    .await;
    ana.wait_for(
        "the run page",
        "return location.pathname.startsWith('/runs/')",
        Duration::from_secs(20),
    )
    .await;
    let path = ana.eval("return location.pathname").await;
    let run_id: i64 = path
        .as_str()
        .and_then(|p| p.trim_start_matches("/runs/").parse().ok())
        .unwrap_or_else(|| panic!("not a run page: {path}"));
    let run = store.run(run_id).await.expect("run").expect("stored");
    assert_eq!(run.params.launched_by, "ana");
    ana.wait_for(
        "ana's Cancel button on her running run",
        "return !!document.querySelector('section.scenario[data-status=running]') && [...document.querySelectorAll('button.danger')].some(b => b.innerText.includes('Cancel run'))",
        Duration::from_secs(60),
    )
    .await;

    // Bo, a runner too, opens a link to it: her name, and no Cancel for him.
    let bo_downloads = dir.join("bo-downloads");
    std::fs::create_dir_all(&bo_downloads).expect("downloads folder");
    let bo = Browser::start_downloading_to(&bo_downloads).await;
    bo.goto(&server.url(&format!("/runs/{run_id}"))).await;
    sign_in_on_page(&bo, "bo").await;
    bo.wait_for(
        "the run's page, with its launcher",
        &format!(
            "return location.pathname === '/runs/{run_id}' && document.querySelector('.launched-by')?.innerText === 'ana'"
        ),
        Duration::from_secs(20),
    )
    .await;
    bo.wait_hydrated().await;
    bo.wait_for(
        "the live run",
        "return !!document.querySelector('section.scenario[data-status=running]')",
        Duration::from_secs(30),
    )
    .await;
    let buttons = bo
        .eval("return [...document.querySelectorAll('button.danger')].map(b => b.innerText)")
        .await;
    assert_eq!(
        buttons,
        serde_json::json!([]),
        "bo sees no Cancel on ana's run"
    );
    assert_eq!(
        status_of(&store, run_id).await,
        mite_perf::model::RunStatus::Running
    );

    // Bo signs out; the admin signs in on the same browser and cancels it.
    bo.eval("document.querySelector('form.signout button').click(); return true;")
        .await;
    bo.wait_for(
        "the sign-in page after signing out",
        "return location.pathname === '/signin'",
        Duration::from_secs(20),
    )
    .await;
    bo.goto(&server.url(&format!("/runs/{run_id}"))).await;
    sign_in_on_page(&bo, "ad").await;
    bo.wait_for(
        "the admin's Cancel button",
        "return document.querySelector('.caller-name')?.innerText === 'ad' && [...document.querySelectorAll('button.danger')].some(b => b.innerText.includes('Cancel run'))",
        Duration::from_secs(30),
    )
    .await;
    bo.wait_hydrated().await;
    bo.eval("[...document.querySelectorAll('button.danger')].find(b => b.innerText.includes('Cancel run')).click(); return true;")
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while status_of(&store, run_id).await == mite_perf::model::RunStatus::Running {
        assert!(
            Instant::now() < deadline,
            "the run was not cancelled: {}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        status_of(&store, run_id).await,
        mite_perf::model::RunStatus::Interrupted
    );
    bo.wait_for(
        "who cancelled it, on the page",
        "return (document.querySelector('.cancelled-by')?.innerText || '').includes('cancelled by ad')",
        Duration::from_secs(20),
    )
    .await;
    assert_no_child_left(&store, run_id).await;
    assert_ports_free(&server.ports);

    // Signed out, the CSV link leads through sign-in to the file.
    bo.eval("document.querySelector('form.signout button').click(); return true;")
        .await;
    bo.wait_for(
        "signed out",
        "return location.pathname === '/signin'",
        Duration::from_secs(20),
    )
    .await;
    bo.goto(&server.url(&format!("/runs/{run_id}/samples.csv")))
        .await;
    bo.wait_for(
        "the sign-in page for the CSV",
        &format!(
            "return location.pathname === '/signin' && new URLSearchParams(location.search).get('next') === '/runs/{run_id}/samples.csv'"
        ),
        Duration::from_secs(20),
    )
    .await;
    sign_in_on_page(&bo, "bo").await;
    let file = bo_downloads.join(format!("run-{run_id}-samples.csv"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !file.exists() {
        assert!(
            Instant::now() < deadline,
            "no download in {}: {:?}",
            bo_downloads.display(),
            std::fs::read_dir(&bo_downloads).map(|d| d.count())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rows: Vec<SampleRow> = store.run_samples(run_id).try_collect().await.expect("rows");
    assert!(!rows.is_empty(), "the cancelled run kept its samples");
    let csv = std::fs::read_to_string(&file).expect("the file");
    assert_eq!(
        csv.lines().count(),
        rows.len() + 1,
        "every sample, and the header"
    );
    let activity: Vec<(String, String)> = store
        .activity(None, 100)
        .await
        .expect("activity")
        .into_iter()
        .map(|a| (a.actor, a.action))
        .collect();
    for expected in [("ana", "launch"), ("ad", "cancel"), ("bo", "sign-out")] {
        assert!(
            activity
                .iter()
                .any(|(who, what)| (who.as_str(), what.as_str()) == expected),
            "{expected:?} not in {activity:?}"
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    // The browser said no error (a script exception, a CSP violation,
    // a resource refused) on the last page either.
    ana.assert_console_clean().await;
    bo.assert_console_clean().await;
}
