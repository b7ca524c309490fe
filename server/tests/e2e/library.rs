//! The scenario library against real Python and the pinned mite: what the
//! finder lists in tests/fixtures/library, and how a run's scenario is
//! found again in an agent's folders.

use std::path::{Path, PathBuf};

use domain::library::SHAPE_DURATION_S;
use mite_perf::library::{LibraryError, ScenarioLibrary};
use mite_perf::mite_env::{self, MiteEnv};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/library")
}

/// The finder imports the folders' modules: in a sandbox, as an agent runs it.
fn sandbox() -> Option<mite_perf::sandbox::Sandbox> {
    Some(mite_perf::sandbox::Sandbox::probe().expect("scripts/setup installs bubblewrap"))
}

fn python() -> PathBuf {
    MiteEnv::locate(&mite_env::default_venv())
        .expect("scripts/setup's mite venv")
        .python()
}

#[tokio::test]
async fn the_finder_lists_scenarios_with_their_docstrings_and_volume_shapes() {
    let library = ScenarioLibrary::new(vec![fixtures()]);
    let found = library
        .discover("agent-a", &python(), sandbox().as_ref())
        .await;
    let specs: Vec<&str> = found.scenarios.iter().map(|s| s.spec.as_str()).collect();
    // Top-level functions with "scenario" in their name, not private ones
    // nor helpers; packages too; a file that is no module name is passed over.
    assert_eq!(
        specs,
        [
            "checkout:ramp_scenario",
            "checkout:fixed_scenario",
            "checkout:broken_scenario",
            "shop.browse:scenario"
        ]
    );
    assert!(
        found.skipped.iter().any(|s| s.contains("not-a-module.py")),
        "{:?}",
        found.skipped
    );
    let by_spec = |spec: &str| {
        found
            .scenarios
            .iter()
            .find(|s| s.spec == spec)
            .unwrap_or_else(|| panic!("{spec}"))
    };

    let ramp = by_spec("checkout:ramp_scenario");
    assert_eq!(ramp.agent, "agent-a");
    assert!(
        ramp.doc.starts_with("Checkout under a ramp"),
        "{}",
        ramp.doc
    );
    assert_eq!(ramp.function_doc, "Ramps to the chosen concurrency.");
    assert_eq!(ramp.problem, None);
    // min(concurrency, 1 + t // 2) each second until the 60 s duration.
    let at_10 = ramp
        .shapes
        .iter()
        .find(|s| s.concurrency == 10)
        .expect("shape at 10");
    let expected: Vec<u32> = (0..SHAPE_DURATION_S).map(|t| 10.min(1 + t / 2)).collect();
    assert_eq!(at_10.required, expected);
    assert!(at_10.stops);
    let at_1 = ramp
        .shapes
        .iter()
        .find(|s| s.concurrency == 1)
        .expect("at 1");
    assert!(at_1.required.iter().all(|&n| n == 1), "{:?}", at_1.required);
    assert_eq!(ramp.follows_concurrency(), Some(true));

    // mite's own Constant model, asked with `config`: its own concurrency.
    let fixed = by_spec("checkout:fixed_scenario");
    assert_eq!(fixed.shapes.len(), 4);
    assert_eq!(fixed.shapes[0].required, [3, 3, 3, 3, 3, 3]);
    assert_eq!(fixed.follows_concurrency(), Some(false));

    let broken = by_spec("checkout:broken_scenario");
    assert!(broken.shapes.is_empty());
    let problem = broken.problem.as_deref().unwrap_or_default();
    assert!(
        problem.contains("RuntimeError: needs a database") && problem.contains("checkout.py:"),
        "{problem}"
    );
    let browse = by_spec("shop.browse:scenario");
    assert_eq!(browse.doc, "Browsing, in a package.");
    assert_eq!(browse.shapes[0].required, [2, 2, 2, 2]);

    // The finder wrote nothing into the folder.
    assert!(!fixtures().join("__pycache__").exists());
}

#[tokio::test]
async fn a_folder_that_cannot_be_listed_is_said_and_the_others_still_are() {
    let missing = crate::common::temp_dir("library-missing").join("gone");
    let library = ScenarioLibrary::new(vec![missing.clone(), fixtures()]);
    let found = library.discover("a", &python(), sandbox().as_ref()).await;
    assert_eq!(found.scenarios.len(), 4);
    assert!(
        found.skipped.iter().any(|s| s.contains("gone")),
        "{:?}",
        found.skipped
    );
    // Without Python, every folder says why.
    let found = ScenarioLibrary::new(vec![fixtures()])
        .discover("a", Path::new("/nonexistent/python"), sandbox().as_ref())
        .await;
    assert!(found.scenarios.is_empty());
    assert!(
        found.skipped[0].contains("cannot start the scenario finder"),
        "{:?}",
        found.skipped
    );
}

#[test]
fn a_run_finds_its_scenario_again_only_inside_the_library_folders() {
    let library = ScenarioLibrary::new(vec![fixtures()]);
    let root = fixtures().canonicalize().expect("fixtures");
    assert_eq!(library.find("shop.browse:scenario").expect("package"), root);
    assert_eq!(
        library.find("checkout:ramp_scenario").expect("module"),
        root
    );
    assert!(matches!(
        library.find("missing:scenario"),
        Err(LibraryError::NotFound { .. })
    ));
    for not_a_spec in ["../checkout:ramp_scenario", "/etc/passwd:x", "checkout"] {
        assert!(
            matches!(library.find(not_a_spec), Err(LibraryError::NotASpec { .. })),
            "{not_a_spec}"
        );
    }
    // A module that is a link to a file outside the folder is not taken.
    let dir = crate::common::temp_dir("library-link");
    let outside = dir.join("outside");
    let root = dir.join("root");
    std::fs::create_dir_all(&outside).expect("outside");
    std::fs::create_dir_all(&root).expect("root");
    std::fs::write(outside.join("evil.py"), "def scenario(): return []\n").expect("evil");
    std::os::unix::fs::symlink(outside.join("evil.py"), root.join("evil.py")).expect("link");
    let library = ScenarioLibrary::new(vec![root]);
    assert!(matches!(
        library.find("evil:scenario"),
        Err(LibraryError::NotFound { .. })
    ));
}

#[test]
fn the_scenarios_command_prints_the_listing() {
    let output = std::process::Command::new(crate::common::BIN)
        .args(["scenarios", "--scenario-dir"])
        .arg(fixtures())
        .output()
        .expect("mite-perf scenarios");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("checkout:ramp_scenario\n    Ramps to the chosen concurrency."),
        "{stdout}"
    );
    assert!(
        stdout.contains("at concurrency 10: up to 10 journeys over 60 s"),
        "{stdout}"
    );
    assert!(
        stdout.contains("! its volume model cannot be computed: RuntimeError"),
        "{stdout}"
    );
    // Nothing found: said, and exit 1.
    let empty = crate::common::temp_dir("library-empty");
    let output = std::process::Command::new(crate::common::BIN)
        .args(["scenarios", "--scenario-dir"])
        .arg(&empty)
        .output()
        .expect("mite-perf scenarios");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no scenario found"));
}
