//! END-TO-END (a few minutes): the browser lab. `mite-perf serve` runs real
//! mite against the real ports with a real SQLite file; the server functions
//! are called over HTTP as the pages call them, and one test drives headless
//! Chromium (Debian's chromium + chromium-driver) through the whole flow.
//! The pages need the site cargo-leptos builds (scripts/test builds it).

mod common;

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use serde_json::Value;

use common::{assert_no_child_left, assert_ports_free, launch_form, wait_status, Browser, Server};
use mite_perf::model::ProcessKind;
use mite_perf::store::{SampleRow, Store};

// The tests share the lab's fixed ports, so they take turns.
static PORTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run_status(server: &Server, id: i64) -> Value {
    server.call("get_run", &format!("run_id={id}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_functions_validate_input() {
    let _ports = PORTS.lock().await;
    let mut server = Server::start("validate").await;
    let answer = server
        .call("launch_run", &launch_form("1,0", "soon", ""))
        .await;
    let errors = answer["Invalid"]
        .as_array()
        .unwrap_or_else(|| panic!("not invalid: {answer}"));
    let fields: Vec<&str> = errors.iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["scenarios", "duration"], "{answer}");
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
    let _ports = PORTS.lock().await;
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
    let _ports = PORTS.lock().await;
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
    assert_ports_free();
    assert_no_child_left(&store, id).await;
    let health = server.get("/healthz").await.expect("healthz").1;
    assert!(health.contains("\"run_in_progress\":null"), "{health}");
    assert!(server.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_browser_launch_watch_detail_and_csv() {
    let _ports = PORTS.lock().await;
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
            "return [...document.querySelectorAll('.chart')].some(c => c.dataset.rendered === '1' && c.querySelector('canvas'))",
            Duration::from_secs(30),
        )
        .await;
    // Zoom in and hide a series: new points keep arriving, the choices stay.
    browser
        .wait_for(
            "the first chart's target series",
            r#"const c = echarts.getInstanceByDom(document.querySelector('.chart'));
               return !!c && (c.getOption().series || []).some(s => s.name === 'http' && s.data.length >= 2);"#,
            Duration::from_secs(30),
        )
        .await;
    let points_before = browser
        .eval(
            r#"const c = echarts.getInstanceByDom(document.querySelector('.chart'));
               c.dispatchAction({type: 'dataZoom', startValue: 1, endValue: 3});
               c.dispatchAction({type: 'legendUnSelect', name: 'runner'});
               return c.getOption().series.find(s => s.name === 'http').data.length;"#,
        )
        .await;
    let first_total = browser
        .eval("return document.querySelector('[data-figure=total-requests]')?.innerText || ''")
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later_total = browser
        .eval("return document.querySelector('[data-figure=total-requests]')?.innerText || ''")
        .await;
    assert_ne!(first_total, later_total, "the live figures did not move");
    let kept = browser
        .eval(
            r#"const o = echarts.getInstanceByDom(document.querySelector('.chart')).getOption();
               return {start: o.dataZoom[0].startValue, end: o.dataZoom[0].endValue,
                       runner: o.legend[0].selected.runner,
                       points: o.series.find(s => s.name === 'http').data.length};"#,
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
            "return [...document.querySelectorAll('.chart')].filter(c => c.dataset.rendered === '1').length === 6",
            Duration::from_secs(30),
        )
        .await;
    let drawn = browser
        .eval(
            r#"const c = document.querySelector('.chart canvas');
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
            r#"const c = echarts.getInstanceByDom(document.querySelector('.chart'));
               c.dispatchAction({type: 'dataZoom', startValue: 2, endValue: 6});
               return true;"#,
        )
        .await;
    browser
        .wait_for(
            "the zoomed window at full resolution",
            "return !!document.querySelector('.chart').dataset.detail",
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
        .any(|r| r.sample.process == ProcessKind::Http && r.sample.requests.unwrap_or(0) > 0));

    assert_ports_free();
    assert_no_child_left(&store, run_id).await;
    drop(browser);
    assert!(server.stop().success());
}
