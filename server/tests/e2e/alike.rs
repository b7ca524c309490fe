//! Builds measured alike, or the difference said (issue 30, item 5): the
//! pinned build is its release installed like any other, with the same
//! packages; a run's provenance lists each build's packages and compare
//! says what differs between two builds'; a child that exits during
//! start-up is the run's error, with its own words.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use crate::common::{assert_no_child_left, assert_ports_free, text, wait_output, CliLab};
use domain::builds::MiteBuild;
use domain::dependencies::Resolution;
use mite_perf::mite_env::builds::{BuildCache, PACKAGES_FILE};
use mite_perf::mite_env::{self, MiteEnv};
use mite_perf::model::RunStatus;

/// The line the fake duplicator ends its log with, as mite 2.7.0's did
/// under a newer uvloop.
const CAUSE: &str = "RuntimeError: There is no current event loop";

/// A checkout of a package called mite whose duplicator binds its sockets
/// (so the lab sees it ready), waits for the lab's bus reader to connect,
/// and exits 1 with a traceback, as mite 2.7.0's did at start.
fn checkout_whose_duplicator_exits(dir: &Path) {
    std::fs::create_dir_all(dir.join("mite")).expect("mkdir");
    std::fs::write(
        dir.join("pyproject.toml"),
        "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n\
         [project]\nname = \"mite\"\nversion = \"0.0.1\"\n\n[project.scripts]\nmite = \"mite:main\"\n",
    )
    .expect("pyproject");
    std::fs::write(
        dir.join("mite/__init__.py"),
        format!(
            r#"import socket, sys, time


def main():
    args = sys.argv[1:]
    if args[:1] != ["duplicator"]:
        time.sleep(60)
        return
    ports = [int(a.rsplit(":", 1)[1]) for a in args[1:] if "tcp://" in a]
    sockets = []
    for port in ports:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(8)
        sockets.append(s)
    # The lab's own output is the last: exit once its reader is there.
    sockets[-1].settimeout(30)
    try:
        sockets[-1].accept()
    except OSError:
        pass
    print("Traceback (most recent call last):", file=sys.stderr)
    print('  File "mite/duplicator.py", line 1, in main', file=sys.stderr)
    print("{CAUSE}", file=sys.stderr)
    sys.exit(1)
"#
        ),
    )
    .expect("module");
}

/// A fault (FAULTS.md 60): mite's duplicator binds, then exits at once.
/// The lab's bus reader, which connects next, is refused; the run's error
/// names the duplicator, its exit status and the last lines of its log
/// (the cause), not the refused connection alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_exits_at_start_is_named_with_its_logs_last_lines() {
    let _turn = crate::common::share_the_machine().await;
    let lab = CliLab::new("exits-at-start");
    checkout_whose_duplicator_exits(&lab.dir.join("mite-src"));
    let output = wait_output(
        lab.spawn_run(&[
            "--mite",
            "./mite-src",
            "--concurrencies",
            "1",
            "--duration",
            "3s",
            "--builds-dir",
            "builds",
        ]),
        Duration::from_secs(300),
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let store = lab.store().await;
    let run = store.run(1).await.expect("query").expect("run 1");
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap_or_default();
    assert!(
        error.contains("the duplicator exited during start-up (exit 1)")
            && error.contains("before the lab's bus reader could connect")
            && error.contains("duplicator.log"),
        "{error}"
    );
    // Its own words, last among the lines quoted, and then what the lab met.
    let quoted: Vec<&str> = error.lines().map(str::trim).collect();
    let cause = quoted.iter().position(|l| *l == CAUSE);
    assert!(cause.is_some(), "{error}");
    assert!(
        quoted
            .last()
            .is_some_and(|l| l.starts_with("(and then: cannot read mite's messages")),
        "{error}"
    );
    // The command line says it too, and the scenario keeps the whole tail.
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(CAUSE),
        "{}",
        text(&output)
    );
    let scenario = store.scenarios(1).await.expect("scenarios").remove(0);
    assert!(
        scenario
            .error_log
            .as_deref()
            .is_some_and(|t| t.contains(CAUSE)),
        "{:?}",
        scenario.error_log
    );
    assert_no_child_left(&store, 1).await;
    assert_ports_free(&lab.ports);
}

/// The pinned build is not scripts/setup's venv (made by another command,
/// with aiohttp beside mite): it is its release, installed by the lab's
/// installer from the agent's dependency snapshot, so the pinned build and
/// the same version asked for by number are one venv with the same
/// packages, kept with it and in its provenance.
#[tokio::test]
async fn the_pinned_build_and_its_release_are_installed_alike() {
    let _turn = crate::common::share_the_machine().await;
    let dir = crate::common::temp_dir("alike-pinned");
    let lab_mite = MiteEnv::locate(&mite_env::default_venv()).expect("scripts/setup's mite venv");
    let cache = BuildCache::new(lab_mite.clone(), Some(dir.join("builds")));
    assert!(cache.uv.is_some(), "scripts/setup installs uv");
    let sandbox = mite_perf::sandbox::Sandbox::probe().expect("scripts/setup installs bubblewrap");
    let said = Mutex::new(Vec::new());
    let say = |m: &str| said.lock().expect("lock").push(m.to_string());
    let pinned = cache
        .install(&MiteBuild::Pinned, Some(&sandbox), &say)
        .await
        .expect("the pinned build");
    let release = cache
        .install(
            &MiteBuild::Version(lab_mite.mite_version.clone()),
            Some(&sandbox),
            &say,
        )
        .await
        .expect("its release");
    let said = said.into_inner().expect("lock");
    // Made once, by the lab, in its builds folder: not the lab's own venv.
    assert_eq!(pinned.env.venv, release.env.venv);
    assert!(pinned.env.venv.starts_with(dir.join("builds")), "{said:?}");
    assert_ne!(pinned.env.venv, lab_mite.venv);
    assert_eq!(
        said.iter()
            .filter(|m| m.starts_with("installing mite"))
            .count(),
        1,
        "{said:?}"
    );
    assert_eq!(pinned.env.mite_version, lab_mite.mite_version);
    // The same packages, resolved the same way, mite and its dependencies.
    let packages = &pinned.provenance.packages;
    assert_eq!(packages, &release.provenance.packages);
    assert!(
        packages.contains(&format!("mite=={}", lab_mite.mite_version))
            && packages.iter().any(|p| p.starts_with("acurl=="))
            && packages.len() > 10,
        "{packages:?}"
    );
    let snapshot = cache.snapshot().await.expect("the agent's snapshot");
    assert_eq!(
        pinned.provenance.resolution,
        Some(Resolution::Snapshot { as_of: snapshot })
    );
    assert_eq!(pinned.provenance.resolution, release.provenance.resolution);
    // Kept with the venv: the build's own lock.
    let kept = std::fs::read_to_string(pinned.env.venv.join(PACKAGES_FILE)).expect("kept");
    assert_eq!(&domain::dependencies::parse_packages(&kept), packages);
    // Compiled to bytecode as installed, both alike (as pip does): no
    // process compiles mite's modules as it starts.
    for venv in [&pinned.env.venv, &release.env.venv] {
        let compiled = std::fs::read_dir(venv.join("lib"))
            .expect("the venv's lib")
            .flatten()
            .map(|python| python.path().join("site-packages/mite/__pycache__"))
            .filter_map(|cache| std::fs::read_dir(cache).ok())
            .flat_map(|files| files.flatten())
            .filter(|f| f.path().extension().is_some_and(|e| e == "pyc"))
            .count();
        assert!(compiled > 10, "{}: {compiled} .pyc files", venv.display());
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A checkout of the installed mite that also asks for `extra` (a package
/// mite does not need), committed.
fn checkout_with_extra(dir: &Path, extra: &str) -> std::path::PathBuf {
    let checkout = dir.join("mite-extra");
    let made = Command::new(mite_env::default_venv().join("bin/python"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mite_checkout.py"
        ))
        .arg(&checkout)
        .arg("2.11.0+extra")
        .output()
        .expect("run the checkout maker");
    assert!(made.status.success(), "{}", text(&made));
    let pyproject = checkout.join("pyproject.toml");
    let text = std::fs::read_to_string(&pyproject).expect("pyproject");
    assert!(text.contains("dependencies = ["), "{text}");
    let text = text.replacen(
        "dependencies = [",
        &format!("dependencies = [\"{extra}\", "),
        1,
    );
    std::fs::write(&pyproject, text).expect("pyproject");
    crate::common::git(&checkout, &["init", "-q"]);
    crate::common::git(&checkout, &["add", "."]);
    crate::common::git(
        &checkout,
        &["commit", "-q", "-m", "mite with an extra dependency"],
    );
    checkout
}

/// A run of two builds whose packages differ (the pinned release, and a
/// checkout of it that also asks for iniconfig): the run's provenance
/// lists each build's packages, and `mite-perf compare` says what differs
/// between them, in its JSON and its text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_provenance_lists_each_builds_packages_and_compare_says_what_differs() {
    let _turn = crate::common::share_the_machine().await;
    let lab = CliLab::new("alike-packages");
    checkout_with_extra(&lab.dir, "iniconfig==2.1.0");
    let output = wait_output(
        lab.spawn_run(&[
            "--mite",
            "pinned,./mite-extra",
            "--concurrencies",
            "1",
            "--duration",
            "3s",
            "--builds-dir",
            "builds",
        ]),
        Duration::from_secs(600),
    );
    assert!(output.status.success(), "{}", text(&output));
    let store = lab.store().await;
    let run = store.run(1).await.expect("query").expect("run 1");
    let builds = run.provenance.expect("provenance").builds;
    assert_eq!(builds.len(), 2);
    for build in &builds {
        assert!(
            build.packages.iter().any(|p| p.starts_with("acurl=="))
                && build
                    .packages
                    .contains(&format!("mite=={}", build.mite_version)),
            "{build:?}"
        );
        assert!(
            matches!(build.resolution, Some(Resolution::Snapshot { .. })),
            "{build:?}"
        );
    }
    assert!(!builds[0]
        .packages
        .iter()
        .any(|p| p.starts_with("iniconfig==")));
    assert!(builds[1].packages.contains(&"iniconfig==2.1.0".to_string()));

    let compared = lab
        .command(&["compare", "1:1", "1:2", "--format", "json"])
        .output()
        .expect("run mite-perf compare");
    let report: serde_json::Value = serde_json::from_slice(&compared.stdout)
        .unwrap_or_else(|e| panic!("compare printed no JSON ({e}): {}", text(&compared)));
    let changes = report["dependencies"]["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no dependency difference: {report}"));
    assert_eq!(
        changes,
        &[serde_json::json!({"name": "iniconfig", "base": null, "new": "2.1.0"})],
        "{report}"
    );
    let said = lab
        .command(&["compare", "1:1", "1:2"])
        .output()
        .expect("run mite-perf compare");
    assert!(
        text(&said).contains(
            "the builds ran with other packages (mite aside; base to new): iniconfig 2.1.0 added"
        ),
        "{}",
        text(&said)
    );
    // The same build against itself: nothing said of packages.
    let itself = lab
        .command(&["compare", "1:1", "1:1", "--format", "json"])
        .output()
        .expect("run mite-perf compare");
    let report: serde_json::Value = serde_json::from_slice(&itself.stdout)
        .unwrap_or_else(|e| panic!("compare printed no JSON ({e}): {}", text(&itself)));
    assert!(report.get("dependencies").is_none(), "{report}");
    assert_no_child_left(&store, 1).await;
}
