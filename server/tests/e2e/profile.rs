//! END-TO-END (about two minutes): profiles of mite's processes with py-spy
//! (scripts/setup puts it in the lab's tools venv). A profiled run stores
//! the runner's folded stacks and draws its flame graph, which headless
//! Chromium shows on the run's page; the stacks are kept when the runner
//! crashes and when the run is stopped. Where py-spy may not attach, the
//! lab starts the profiled processes under it: forced here (the tests run
//! as root), the runner is measured, profiled and its crash seen as well.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use mite_perf::model::{ProcessKind, RunStatus};
use mite_perf::profile::folded;
use mite_perf::store::Store;

use crate::common::{
    assert_no_child_left, assert_ports_free, run_dir, text, wait_for_samples, wait_output, Browser,
    CliLab as Lab, Server,
};

/// The stored profile of the `kind` process of scenario `scenario_id`.
async fn profile_of(
    store: &Store,
    scenario_id: i64,
    kind: ProcessKind,
) -> domain::profile::ProfileView {
    store
        .profiles(scenario_id)
        .await
        .expect("profiles")
        .into_iter()
        .find(|p| p.process == kind)
        .unwrap_or_else(|| panic!("the {kind}'s profile"))
}

/// The runner's stored profile of scenario `scenario_id`, its stacks parsed.
async fn runner_profile(
    store: &Store,
    scenario_id: i64,
) -> (domain::profile::ProfileView, folded::Stacks) {
    let runner = profile_of(store, scenario_id, ProcessKind::Runner).await;
    let (_, _, text) = store
        .profile_stacks(runner.id)
        .await
        .expect("stacks")
        .expect("stored");
    (runner, folded::parse(&text).expect("folded"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_profiled_run_draws_the_runners_flame_graph() {
    let _turn = crate::common::share_the_machine().await;
    let lab = Lab::new("profile");
    let child = lab.spawn_run(&["--concurrencies", "10", "--duration", "6s", "--profile"]);
    let output = wait_output(child, Duration::from_secs(120));
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);

    let store = lab.store().await;
    let scenario = store.scenarios(1).await.expect("scenarios").remove(0);
    let (runner, stacks) = runner_profile(&store, scenario.id).await;
    assert_eq!(runner.problem, None);
    assert_eq!(
        runner.rate,
        i64::from(domain::profile::ProfileSpec::DEFAULT_RATE)
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
    let profiler = crate::common::recorded(&store, scenario.id, "profiler").await;
    assert!(profiler.exit_status.is_some(), "{profiler:?}");
    // The folder has the stacks and the flame graph, and the CLI says where.
    let dir = run_dir(&lab.dir).join("scenario10");
    let svg = dir.join(format!("profile-runner-{}.svg", runner.pid));
    assert!(svg.is_file(), "{}", svg.display());
    assert!(stdout.contains(&svg.display().to_string()), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "profile: scenario10 runner (pid {}): {} stack samples, py-spy attached to it",
            runner.pid, runner.samples
        )),
        "{stdout}"
    );
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

    // The flame graph as served: inferno's, with the runner's frames and
    // its search, whose script runs only sandboxed.
    let (status, svg) = server
        .get(&format!("/profiles/{}/flamegraph.svg", runner.id))
        .await
        .expect("flame graph");
    assert_eq!(status, 200);
    assert!(
        svg.contains("mite/runner.py") && svg.contains("id=\"search\""),
        "{svg}"
    );

    let browser = Browser::start().await;
    browser.goto(&server.url("/runs/1")).await;
    browser.wait_hydrated().await;
    // Drawn on the page as an image (no script of its own runs there), as
    // tall as the graph inferno drew for the width it has.
    // A minute at most, as for hydration: the graph is drawn by the debug
    // build, on cores the suite's mite keeps busy (it timed out at 30 s
    // once on a clean clone's run). What the image was, if it never is.
    let drawn = r#"const i = document.querySelector('figure.profile[data-process=runner] img.flamegraph');
               if (!i || !i.complete || !(i.naturalWidth > 0) || !(i.naturalHeight > 0)) return false;
               return Math.abs(i.clientHeight / i.clientWidth - i.naturalHeight / i.naturalWidth) < 0.02;"#;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while browser.eval(drawn).await.as_bool() != Some(true) {
        assert!(
            std::time::Instant::now() < deadline,
            "the runner's flame graph was not drawn to its proportions in 60 s: {}",
            browser
                .eval(
                    r#"const i = document.querySelector('figure.profile[data-process=runner] img.flamegraph');
                       return i ? JSON.stringify({complete: i.complete, natural: [i.naturalWidth, i.naturalHeight],
                                                  client: [i.clientWidth, i.clientHeight], src: i.src})
                                : 'no image: ' + document.body.innerText;"#
                )
                .await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.screenshot(&server.dir.join("flamegraph.png")).await;
    // The browser said no error (a script exception, a CSP violation,
    // a resource refused) on the last page either.
    browser.assert_console_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_profiles_are_kept_when_the_runner_crashes_and_when_the_run_is_stopped() {
    let _turn = crate::common::share_the_machine().await;
    // The runner crashes (SIGKILL): its py-spy sees it go and writes.
    let lab = Lab::new("profile-crash");
    let mut child = lab.spawn_run(&["--concurrencies", "10", "--duration", "30s", "--profile"]);
    let store = wait_for_samples(&lab, &mut child, 3, Duration::from_secs(60)).await;
    let scenario = store.scenarios(1).await.expect("scenarios").remove(0);
    let runner = crate::common::kill_runner(&store, scenario.id).await;
    let output = wait_output(child, Duration::from_secs(60));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let (profile, stacks) = runner_profile(&store, scenario.id).await;
    assert_eq!(profile.pid, i64::from(runner));
    assert!(profile.samples > 0 && !stacks.is_empty(), "{profile:?}");
    assert_eq!(
        store.run(1).await.expect("q").expect("run").status,
        RunStatus::Failed
    );
    assert_ports_free(&lab.ports);
    assert_no_child_left(&store, 1).await;

    // The run is stopped (SIGTERM, as a cancel): py-spy is stopped first,
    // and writes.
    let lab = Lab::new("profile-stop");
    let mut child = lab.spawn_run(&["--concurrencies", "10", "--duration", "30s", "--profile"]);
    let store = wait_for_samples(&lab, &mut child, 3, Duration::from_secs(60)).await;
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
    assert_ports_free(&lab.ports);
    assert_no_child_left(&store, 1).await;
}

/// `mite-perf run ARGS`, py-spy reaching the processes as `reach` says
/// (`attach`, or `start`: only without a sandbox, whose processes the lab
/// attaches to).
fn spawn_reaching(lab: &Lab, reach: &str, args: &[&str]) -> std::process::Child {
    let mut all = vec!["run", "--output-dir", "output"];
    if reach == "start" {
        all.push("--insecure-unsandboxed-builds");
    }
    all.extend_from_slice(args);
    lab.command(&all)
        .env(mite_perf::profile::py_spy::REACH_ENV, reach)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start mite-perf run")
}

/// The pid the lab measured a process of `kind` as, in scenario `scenario_id`.
async fn sampled_pid(store: &Store, scenario_id: i64, kind: ProcessKind) -> i64 {
    store
        .scenario_samples(scenario_id)
        .await
        .expect("samples")
        .into_iter()
        .find(|s| s.process == kind)
        .map(|s| s.pid)
        .expect("a sample of it")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_processes_started_under_py_spy_are_measured_profiled_and_their_crash_seen() {
    let _turn = crate::common::share_the_machine().await;
    let start_under = |lab: &Lab, args: &[&str]| spawn_reaching(lab, "start", args);
    let profiled = [
        "--concurrencies",
        "10",
        "--profile",
        "--profile-processes",
        "runner,controller",
    ];

    // A run that ends by itself: the processes py-spy started are the ones
    // measured, and their stacks read as when py-spy attaches.
    let lab = Lab::new("profile-started");
    let child = start_under(&lab, &[&profiled[..], &["--duration", "8s"]].concat());
    let output = wait_output(child, Duration::from_secs(120));
    assert!(output.status.success(), "{}", text(&output));
    let store = lab.store().await;
    let scenario = store.scenarios(1).await.expect("scenarios").remove(0);
    let (runner, stacks) = runner_profile(&store, scenario.id).await;
    assert_eq!(runner.mode, "started under py-spy");
    assert_eq!(runner.problem, None);
    assert!(runner.samples >= 100, "{runner:?}");
    assert!(
        stacks.keys().any(|s| s.contains("(mite/runner.py)")),
        "{stacks:?}"
    );
    assert!(
        stacks
            .keys()
            .any(|s| s.contains("journey (mite_perf_scenario.py)")),
        "{stacks:?}"
    );
    // The lab's child is py-spy; the runner it measured and profiled is
    // the process two generations down, busy serving journeys.
    let recorded = crate::common::recorded(&store, scenario.id, "runner").await;
    assert!(
        recorded.command.contains("mite-perf under-py-spy --py-spy"),
        "{recorded:?}"
    );
    assert_eq!(
        recorded.exit_status.as_deref(),
        Some("exit 0"),
        "{recorded:?}"
    );
    assert_eq!(
        sampled_pid(&store, scenario.id, ProcessKind::Runner).await,
        runner.pid
    );
    assert_ne!(runner.pid, recorded.pid);
    let busiest = store
        .scenario_samples(scenario.id)
        .await
        .expect("samples")
        .into_iter()
        .filter(|s| s.process == ProcessKind::Runner)
        .map(|s| s.cpu)
        .fold(0.0, f64::max);
    assert!(busiest > 20.0, "the runner's CPU peaked at {busiest} %");
    let controller = profile_of(&store, scenario.id, ProcessKind::Controller).await;
    assert_eq!(controller.mode, "started under py-spy");
    let served = store.run(1).await.expect("q").expect("run");
    assert_eq!(served.status, RunStatus::Done);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let svg = run_dir(&lab.dir).join(format!("scenario10/profile-runner-{}.svg", runner.pid));
    assert!(svg.is_file(), "{}", svg.display());
    assert!(stdout.contains(&svg.display().to_string()), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "profile: scenario10 runner (pid {}): {} stack samples, started under py-spy",
            runner.pid, runner.samples
        )),
        "{stdout}"
    );
    assert_ports_free(&lab.ports);
    assert_no_child_left(&store, 1).await;

    // The runner py-spy started is killed: the lab sees how it ended (not
    // py-spy's exit 0), fails the run, and keeps the stacks.
    let lab = Lab::new("profile-started-crash");
    let mut child = start_under(&lab, &[&profiled[..], &["--duration", "30s"]].concat());
    let store = wait_for_samples(&lab, &mut child, 3, Duration::from_secs(60)).await;
    let scenario = store.scenarios(1).await.expect("scenarios").remove(0);
    let runner_pid = sampled_pid(&store, scenario.id, ProcessKind::Runner).await;
    let cmdline = std::fs::read_to_string(format!("/proc/{runner_pid}/cmdline")).expect("cmdline");
    assert!(cmdline.contains("runner"), "{cmdline:?}");
    kill(Pid::from_raw(runner_pid as i32), Signal::SIGKILL).expect("kill the runner");
    let output = wait_output(child, Duration::from_secs(60));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let run = store.run(1).await.expect("q").expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    let ended = store.scenarios(1).await.expect("scenarios").remove(0);
    let error = ended.error.expect("the scenario's error");
    assert!(error.contains("runner killed by SIGKILL"), "{error}");
    let (profile, stacks) = runner_profile(&store, scenario.id).await;
    assert_eq!(profile.pid, runner_pid);
    assert!(profile.samples > 0 && !stacks.is_empty(), "{profile:?}");
    // The controller, still running, was asked to stop itself (SIGINT, not
    // the group's SIGKILL), and its py-spy then wrote what it had.
    let controller = crate::common::recorded(&store, scenario.id, "controller").await;
    assert_eq!(
        controller.exit_status.as_deref(),
        Some("exit 0"),
        "{controller:?}"
    );
    let profiled = profile_of(&store, scenario.id, ProcessKind::Controller).await;
    assert_eq!(profiled.mode, "started under py-spy");
    let written = run_dir(&lab.dir).join(format!(
        "scenario10/profile-controller-{}.folded",
        profiled.pid
    ));
    assert!(written.is_file(), "{}", written.display());
    assert_ports_free(&lab.ports);
    assert_no_child_left(&store, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_the_stacks_of_a_lab_killed_mid_profile_are_stored_by_cleanup() {
    let _turn = crate::common::share_the_machine().await;
    for (reach, mode) in [("attach", "attached"), ("start", "started under py-spy")] {
        let lab = Lab::new(&format!("profile-lab-killed-{reach}"));
        let mut child = spawn_reaching(
            &lab,
            reach,
            &["--concurrencies", "10", "--duration", "30s", "--profile"],
        );
        let store = wait_for_samples(&lab, &mut child, 3, Duration::from_secs(60)).await;
        kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("kill the lab");
        let _ = wait_output(child, Duration::from_secs(10));
        let scenario = store.scenarios(1).await.expect("scenarios").remove(0);
        assert!(
            store
                .profiles(scenario.id)
                .await
                .expect("profiles")
                .is_empty(),
            "{reach}: nothing stored before cleanup"
        );
        // Cleanup stops py-spy so that it writes (SIGINT, or the runner
        // first when py-spy started it), then stores what it wrote.
        let cleaned = lab.cleanup();
        assert!(cleaned.status.success(), "{reach}: {}", text(&cleaned));
        let (profile, stacks) = runner_profile(&store, scenario.id).await;
        assert_eq!(profile.mode, mode);
        assert!(profile.samples > 0, "{reach}: {profile:?}");
        assert!(
            stacks.keys().any(|s| s.contains("(mite/runner.py)")),
            "{reach}: {stacks:?}"
        );
        let svg = run_dir(&lab.dir).join(format!("scenario10/profile-runner-{}.svg", profile.pid));
        assert!(svg.is_file(), "{reach}: {}", svg.display());
        assert_eq!(
            store.run(1).await.expect("q").expect("run").status,
            RunStatus::Interrupted
        );
        assert_ports_free(&lab.ports);
        assert_no_child_left(&store, 1).await;
    }
}

#[test]
fn under_py_spy_records_the_command_and_ends_as_it_did() {
    let dir = crate::common::temp_dir("under-py-spy");
    let python = mite_perf::mite_env::default_venv().join("bin/python");
    let py_spy = mite_perf::profile::py_spy::py_spy();
    // Busy for a second, then killed, or ending with a code.
    let busy = "import os, sys, time\nt = time.time()\nwhile time.time() - t < 1: pass\n";
    for (ending, code) in [("os.kill(os.getpid(), 9)", 128 + 9), ("sys.exit(4)", 4)] {
        let output_file = dir.join("profile.folded");
        let _ = std::fs::remove_file(&output_file);
        let output = std::process::Command::new(crate::common::BIN)
            .arg("under-py-spy")
            .arg("--py-spy")
            .arg(&py_spy)
            .args(["--rate", "50", "--output"])
            .arg(&output_file)
            .arg("--")
            .arg(&python)
            .args(["-c", &format!("{busy}{ending}")])
            .output()
            .expect("mite-perf under-py-spy");
        // Killed: it ends killed by the same signal, as the shell sees it.
        use std::os::unix::process::ExitStatusExt;
        let seen = output
            .status
            .code()
            .or(output.status.signal().map(|s| 128 + s));
        assert_eq!(seen, Some(code), "{ending}: {}", text(&output));
        if code == 128 + 9 {
            assert_eq!(output.status.signal(), Some(9), "{}", text(&output));
        }
        let stacks =
            folded::parse(&std::fs::read_to_string(&output_file).expect("stacks")).expect("folded");
        assert!(folded::total(&stacks) >= 20, "{ending}: {stacks:?}");
        assert!(
            stacks.keys().any(|s| s.contains("<module> (<string>)")),
            "{stacks:?}"
        );
    }
}

/// Without py-spy a profiled run cannot start: it fails before any process
/// starts, says why, and the lab's log line names the run (its span).
#[tokio::test]
async fn a_profiled_run_without_py_spy_fails_before_it_starts_and_logs_in_its_span() {
    let _turn = crate::common::share_the_machine().await;
    let lab = Lab::new("no-py-spy");
    let output = wait_output(
        lab.command(&[
            "run",
            "--profile",
            "--concurrencies",
            "1",
            "--duration",
            "1s",
            "--output-dir",
            "output",
        ])
        .env(
            mite_perf::profile::py_spy::PY_SPY_ENV,
            "/nonexistent/py-spy",
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run"),
        Duration::from_secs(60),
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(
        all.contains("run{run=1}: run 1 cannot start: profiling needs py-spy"),
        "{all}"
    );
    // Nothing was measured: no overhead figure (a share of nothing).
    assert!(!all.contains("lab overhead"), "{all}");
    assert!(
        !all.contains('\u{1b}'),
        "no terminal colours in a pipe: {all}"
    );
    let store = lab.store().await;
    let run = store.run(1).await.expect("read").expect("the run");
    assert_eq!(run.status, RunStatus::Failed);
    assert!(
        run.error
            .as_deref()
            .is_some_and(|e| e.contains("/nonexistent/py-spy is missing")),
        "{:?}",
        run.error
    );
    // Refused before its scenarios were recorded: nothing started.
    assert!(store.scenarios(1).await.expect("read").is_empty());
}
