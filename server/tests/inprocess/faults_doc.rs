//! FAULTS.md names, for every fault, the tests that inject it: each named
//! test must exist, or the table claims a check nobody runs (a test renamed
//! since, as row 19's once was).

use std::path::{Path, PathBuf};

/// The test names FAULTS.md gives: code spans whose last `::` segment is a
/// snake-case name of four words or more (test names are sentences;
/// options, files and types are not).
fn named_tests(faults: &str) -> Vec<String> {
    let mut names: Vec<String> = faults
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|span| {
            let last = span.rsplit("::").next()?;
            let snake = last.starts_with(|c: char| c.is_ascii_lowercase())
                && last
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            (snake && last.matches('_').count() >= 3).then(|| last.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Whether `source` declares `fn name` (not a longer name starting so).
fn declares(source: &str, name: &str) -> bool {
    let declaration = format!("fn {name}");
    source.match_indices(&declaration).any(|(at, _)| {
        source[at + declaration.len()..]
            .chars()
            .next()
            .is_some_and(|c| !(c.is_ascii_alphanumeric() || c == '_'))
    })
}

#[test]
fn every_test_faults_md_names_exists() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace");
    let faults = std::fs::read_to_string(workspace.join("FAULTS.md")).expect("FAULTS.md");
    let names = named_tests(&faults);
    // The table names well over a hundred: none found means the reading broke.
    assert!(
        names.len() > 100,
        "only {} test names read: {names:?}",
        names.len()
    );
    let mut files = Vec::new();
    for dir in [
        "server/src",
        "server/tests",
        "app/src",
        "domain/src",
        "bus/src",
    ] {
        rust_files(&workspace.join(dir), &mut files);
    }
    let sources: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
        .collect();
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| !sources.iter().any(|s| declares(s, name)))
        .collect();
    assert!(
        missing.is_empty(),
        "FAULTS.md names tests that do not exist: {missing:?}"
    );
}

#[test]
fn a_renamed_test_is_missed_and_options_are_not_taken_for_tests() {
    let faults = "| 19 | … | `faults.rs`: `two_agent_ids_on_one_database_leave_runs_alone`; \
                  unit: `mite_env::tests::a_probe_awaits_the_python`, `--lease`, \
                  `FOR UPDATE SKIP LOCKED`, `run.json` |";
    assert_eq!(
        named_tests(faults),
        [
            "a_probe_awaits_the_python",
            "two_agent_ids_on_one_database_leave_runs_alone"
        ]
    );
    let source = "async fn two_agent_ids_on_one_database_leave_runs_alone_too() {}";
    assert!(!declares(
        source,
        "two_agent_ids_on_one_database_leave_runs_alone"
    ));
    assert!(declares(
        "fn a_probe_awaits_the_python() {}",
        "a_probe_awaits_the_python"
    ));
}
