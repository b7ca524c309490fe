//! END-TO-END (about a minute): scenarios from a library. `mite-perf serve
//! --scenario-dir tests/fixtures/library` lists the scenarios it finds there;
//! headless Chromium picks one in the launch form (its docstring and the
//! shape of its volume model shown before launch) and launches it by name;
//! the agent finds it in its folder again and real mite runs it.

use std::path::Path;
use std::time::Duration;

use crate::common::{
    assert_no_child_left, assert_ports_free, wait_status, Browser, ServeOptions, Server,
};
use mite_perf::model::{ProcessKind, ScenarioSpec};
use mite_perf::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_browser_launches_a_scenario_from_the_library() {
    let _turn = crate::common::share_the_machine().await;
    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/library");
    let mut server = Server::start_with(
        "library",
        ServeOptions {
            args: vec!["--scenario-dir".into(), library.display().to_string()],
            ..ServeOptions::default()
        },
    )
    .await;
    let store = Store::connect(&server.db_url()).await.expect("store");
    let browser = Browser::start().await;
    browser.goto(&server.url("/")).await;
    browser.wait_hydrated().await;
    // The agent lists its folder when it starts; the form shows it.
    browser
        .wait_for(
            "the library's scenarios in the form",
            r#"return [...document.querySelectorAll('select.scenario-choice option')]
                 .some(o => o.value === 'checkout:ramp_scenario');"#,
            Duration::from_secs(60),
        )
        .await;
    let pick = |spec: &str| {
        format!(
            r#"const s = document.querySelector('select.scenario-choice');
               s.value = '{spec}'; s.dispatchEvent(new Event('change', {{bubbles: true}}));
               return true;"#
        )
    };
    // Only 1 and 10 journeys: the preview draws one line for each.
    browser
        .eval(
            r#"for (const n of [100, 1000]) {
                 const box = document.querySelector(`input[data-scenario="${n}"]`);
                 if (box.checked) box.click();
               }
               return true;"#,
        )
        .await;
    browser.eval(&pick("checkout:ramp_scenario")).await;
    browser
        .wait_for(
            "the docstring and the volume shape",
            r#"const d = document.querySelector('.library-scenario');
               const lines = [...document.querySelectorAll('svg.volume-shape polyline.volume-line')];
               return !!d && d.innerText.includes('Ramps to the chosen concurrency')
                 && d.innerText.includes('Checkout under a ramp')
                 && lines.map(l => l.dataset.concurrency).join() === '1,10';"#,
            Duration::from_secs(20),
        )
        .await;
    // The line for 10 climbs: its last point is higher up than its first.
    let climb = browser
        .eval(
            r#"const pts = document.querySelector('polyline[data-concurrency="10"]')
                 .getAttribute('points').trim().split(' ').map(p => parseFloat(p.split(',')[1]));
               return [pts[0], pts[pts.length - 1]];"#,
        )
        .await;
    assert!(
        climb[1].as_f64() < climb[0].as_f64(),
        "the ramp does not climb: {climb}"
    );
    browser
        .screenshot(&server.dir.join("library-launch.png"))
        .await;
    // One that sets its own concurrency says so; one that fails says why.
    browser.eval(&pick("checkout:fixed_scenario")).await;
    browser
        .wait_for(
            "the fixed-volume hint",
            "return !!document.querySelector('.library-scenario .fixed-volume')",
            Duration::from_secs(10),
        )
        .await;
    browser.eval(&pick("checkout:broken_scenario")).await;
    browser
        .wait_for(
            "the broken scenario's problem",
            r#"const p = document.querySelector('.library-scenario .scenario-problem');
               return !!p && p.innerText.includes('needs a database');"#,
            Duration::from_secs(10),
        )
        .await;

    // Launch the ramp, 4 s a scenario.
    browser.eval(&pick("checkout:ramp_scenario")).await;
    browser
        .eval(
            r#"const el = document.querySelector('input[name="form[duration]"]');
               el.value = '4s'; el.dispatchEvent(new Event('input', {bubbles: true}));
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
    let run = wait_status(
        &server,
        run_id,
        &["done", "failed"],
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(run["status"], "done", "{run}\n{}", server.log());

    // It ran what was picked, from the agent's own folder.
    let record = store.run(run_id).await.expect("run").expect("stored");
    assert_eq!(
        record.params.scenario,
        ScenarioSpec::Library {
            spec: "checkout:ramp_scenario".into()
        }
    );
    let provenance = record.provenance.expect("provenance");
    assert_eq!(provenance.scenario.name, "checkout:ramp_scenario");
    assert_eq!(
        provenance.scenario.dir.as_deref().map(Path::new),
        Some(library.canonicalize().expect("folder").as_path())
    );
    for scenario in store.scenarios(run_id).await.expect("scenarios") {
        // mite's own view: the library's transaction, as many requests as
        // the target served.
        let totals = store.bus_totals(scenario.id).await.expect("totals");
        let checkout = totals
            .iter()
            .find(|t| t.transaction == "checkout")
            .unwrap_or_else(|| panic!("{}: no checkout transaction: {totals:?}", scenario.name));
        let served = store
            .scenario_samples(scenario.id)
            .await
            .expect("samples")
            .iter()
            .filter(|s| s.process == ProcessKind::Target)
            .filter_map(|s| s.requests)
            .max()
            .unwrap_or(0);
        assert!(served > 0, "{}", scenario.name);
        assert_eq!(checkout.requests, served, "{}", scenario.name);
        // The ramp was followed: the controller asked for up to 2 journeys
        // in the 4 s at 10 (1 + t/2), and 1 at 1.
        let most = store
            .bus_concurrency(scenario.id)
            .await
            .expect("reports")
            .iter()
            .map(|r| r.required)
            .max()
            .unwrap_or(0);
        let expected = if scenario.concurrency == 1 { 1 } else { 2 };
        assert_eq!(most, expected, "{}", scenario.name);
    }
    assert_ports_free(&server.ports);
    assert_no_child_left(&store, run_id).await;
    server.stop();
    // The browser said no error (a script exception, a CSP violation,
    // a resource refused) on the last page either.
    browser.assert_console_clean().await;
}
