//! END-TO-END (about two minutes): profiles of mite's processes with py-spy
//! (scripts/setup puts it in the lab's tools venv). A profiled run stores
//! the runner's folded stacks and draws its flame graph, which headless
//! Chromium shows on the run's page; the stacks are kept when the runner
//! crashes and when the run is stopped.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use mite_perf::model::{ProcessKind, RunStatus};
use mite_perf::profile::folded;
use mite_perf::store::Store;

mod common;

use common::{
    assert_no_child_left, assert_ports_free, run_dir, text, wait_for_samples, wait_output, Browser,
    CliLab as Lab, Server,
};

// The tests share the lab's fixed ports, so they take turns.
static PORTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The runner's stored profile of scenario `scenario_id`, its stacks parsed.
async fn runner_profile(
    store: &Store,
    scenario_id: i64,
) -> (app::profile::ProfileView, folded::Stacks) {
    let profiles = store.profiles(scenario_id).await.expect("profiles");
    let runner = profiles
        .into_iter()
        .find(|p| p.process == ProcessKind::Runner)
        .expect("the runner's profile");
    let (_, _, text) = store
        .profile_stacks(runner.id)
        .await
        .expect("stacks")
        .expect("stored");
    (runner, folded::parse(&text).expect("folded"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_profiled_run_draws_the_runners_flame_graph() {
    let _ports = PORTS.lock().await;
    let lab = Lab::new("profile");
    let child = lab.spawn_run(&["--scenarios", "10", "--duration", "6s", "--profile"]);
    let output = wait_output(child, Duration::from_secs(120));
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);

    let store = lab.store().await;
    let scenario = store.scenarios(1).await.expect("scenarios").remove(0);
    let (runner, stacks) = runner_profile(&store, scenario.id).await;
    assert_eq!(runner.problem, None);
    assert_eq!(
        runner.rate,
        i64::from(app::profile::ProfileSpec::DEFAULT_RATE)
    );
    assert_eq!(runner.mode, "attached");
    // About 50 stacks a second for ~6 s (idle samples are not kept).
    assert!(runner.samples >= 100, "{runner:?}");
    assert_eq!(folded::total(&stacks), runner.samples as u64);
    // mite's runner and the lab's journey are in the stacks.
    let frames = |needle: &str| -> u64 {
        stacks
            .iter()
            .filter(|(stack, _)| stack.contains(needle))
            .map(|(_, n)| n)
            .sum()
    };
    assert!(frames("(mite/runner.py)") > 0, "{stacks:?}");
    assert!(frames("journey (mite_perf_scenario.py)") > 0, "{stacks:?}");
    // py-spy ran as a recorded child of the lab, and ended.
    let processes = store.processes(scenario.id).await.expect("processes");
    let profiler = processes
        .iter()
        .find(|p| p.name == "profiler")
        .expect("py-spy recorded");
    assert!(profiler.exit_status.is_some(), "{profiler:?}");
    // The folder has the stacks and the flame graph, and the CLI says where.
    let dir = run_dir(&lab.dir).join("scenario10");
    let svg = dir.join(format!("profile-runner-{}.svg", runner.pid));
    assert!(svg.is_file(), "{}", svg.display());
    assert!(stdout.contains(&svg.display().to_string()), "{stdout}");
    assert!(dir
        .join(format!("profile-runner-{}.folded", runner.pid))
        .is_file());

    // The run's page shows the flame graph, drawn, with inferno's search.
    let server = Server::front_for("profile-web", lab.db_url()).await;
    let (status, folded_text) = server
        .get(&format!("/profiles/{}/stacks.folded", runner.id))
        .await
        .expect("folded download");
    assert_eq!(status, 200);
    assert_eq!(folded::parse(&folded_text).expect("folded"), stacks);
    let (status, speedscope) = server
        .get(&format!("/profiles/{}/speedscope.json", runner.id))
        .await
        .expect("speedscope download");
    assert_eq!(status, 200);
    let speedscope: serde_json::Value = serde_json::from_str(&speedscope).expect("json");
    assert_eq!(speedscope["profiles"][0]["endValue"], runner.samples);
    let (status, _) = server
        .get("/profiles/424242/flamegraph.svg")
        .await
        .expect("404");
    assert_eq!(status, 404);

    let browser = Browser::start().await;
    browser.goto(&server.url("/runs/1")).await;
    browser.wait_hydrated().await;
    browser
        .wait_for(
            "the runner's flame graph, drawn",
            r#"const o = document.querySelector('figure.profile[data-process=runner] object.flamegraph');
               const svg = o && o.contentDocument && o.contentDocument.querySelector('svg');
               if (!svg) return false;
               const titles = [...svg.querySelectorAll('title')].map(t => t.textContent);
               return titles.some(t => t.includes('mite/runner.py')) && !!svg.querySelector('#search');"#,
            Duration::from_secs(30),
        )
        .await;
    browser.screenshot(&server.dir.join("flamegraph.png")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_profiles_are_kept_when_the_runner_crashes_and_when_the_run_is_stopped() {
    let _ports = PORTS.lock().await;
    // The runner crashes (SIGKILL): its py-spy sees it go and writes.
    let lab = Lab::new("profile-crash");
    let child = lab.spawn_run(&["--scenarios", "10", "--duration", "30s", "--profile"]);
    let store = wait_for_samples(&lab, 3, Duration::from_secs(60)).await;
    let scenario = store.scenarios(1).await.expect("scenarios").remove(0);
    let runner = common::kill_runner(&store, scenario.id).await;
    let output = wait_output(child, Duration::from_secs(60));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let (profile, stacks) = runner_profile(&store, scenario.id).await;
    assert_eq!(profile.pid, runner.pid);
    assert!(profile.samples > 0 && !stacks.is_empty(), "{profile:?}");
    assert_eq!(
        store.run(1).await.expect("q").expect("run").status,
        RunStatus::Failed
    );
    assert_ports_free();
    assert_no_child_left(&store, 1).await;

    // The run is stopped (SIGTERM, as a cancel): py-spy is stopped first,
    // and writes.
    let lab = Lab::new("profile-stop");
    let child = lab.spawn_run(&["--scenarios", "10", "--duration", "30s", "--profile"]);
    let store = wait_for_samples(&lab, 3, Duration::from_secs(60)).await;
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("stop the lab");
    let output = wait_output(child, Duration::from_secs(60));
    assert!(!output.status.success(), "{}", text(&output));
    let scenario = store.scenarios(1).await.expect("scenarios").remove(0);
    let (profile, _) = runner_profile(&store, scenario.id).await;
    assert!(profile.samples > 0, "{profile:?}");
    assert_eq!(profile.problem, None);
    assert_eq!(
        store.run(1).await.expect("q").expect("run").status,
        RunStatus::Interrupted
    );
    assert_ports_free();
    assert_no_child_left(&store, 1).await;
}
