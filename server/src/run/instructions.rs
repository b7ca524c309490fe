//! Instructions counted by Valgrind: where its cachegrind is, what it
//! wrote for each of a scenario's processes, and a Valgrind pair's figures
//! (see [`domain::instrument`]).

use std::path::{Path, PathBuf};

use domain::instrument::ProcessTotal;

use super::plan::instruments_dir;
use crate::model::ProcessKind;

/// Valgrind, from `PATH` (Debian's package: scripts/setup installs it).
pub fn valgrind() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join("valgrind"))
        .find(|candidate| candidate.is_file())
}

/// The total of instructions in a cachegrind file: its `summary:` line
/// (with `--cache-sim=no` the only event is `Ir`).
pub fn cachegrind_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("summary:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|count| count.parse().ok())
}

/// What cachegrind counted in each of the scenario's processes (folder
/// `dir`), from the files they wrote as they exited: `runner-2.cachegrind`
/// is a runner's. Files that are missing or unreadable are left out.
pub fn scenario_totals(dir: &Path) -> Vec<ProcessTotal> {
    let Ok(entries) = std::fs::read_dir(instruments_dir(dir)) else {
        return Vec::new();
    };
    let mut totals: Vec<ProcessTotal> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".cachegrind")?;
            let kind: ProcessKind = stem.split('-').next()?.parse().ok()?;
            let text = std::fs::read_to_string(entry.path()).ok()?;
            Some(ProcessTotal {
                process: kind,
                instructions: cachegrind_total(&text)?,
            })
        })
        .collect();
    totals.sort_by_key(|t| (t.process, t.instructions));
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cachegrind_file_says_its_total_on_its_summary_line() {
        let text = "desc: I1 cache: none\ncmd: python mite runner\nevents: Ir\n\
                    fl=x.c\nfn=main\n3 10\nsummary: 364011654\n";
        assert_eq!(cachegrind_total(text), Some(364_011_654));
        assert_eq!(cachegrind_total("events: Ir\n"), None);
        assert_eq!(cachegrind_total("summary: lots\n"), None);
    }

    #[test]
    fn each_process_is_read_from_its_file_and_strays_are_passed_over() {
        let dir = std::env::temp_dir().join(format!("mite-perf-cg-{}", std::process::id()));
        let folder = instruments_dir(&dir);
        std::fs::create_dir_all(&folder).expect("folder");
        for (name, text) in [
            ("runner.cachegrind", "summary: 1000\n"),
            ("runner-2.cachegrind", "summary: 3000\n"),
            ("duplicator.cachegrind", "summary: 500\n"),
            ("collector.cachegrind", "events: Ir\n"),
            ("notes.txt", "summary: 7\n"),
        ] {
            std::fs::write(folder.join(name), text).expect("write");
        }
        let totals = scenario_totals(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            totals,
            [
                ProcessTotal {
                    process: ProcessKind::Duplicator,
                    instructions: 500
                },
                ProcessTotal {
                    process: ProcessKind::Runner,
                    instructions: 1000
                },
                ProcessTotal {
                    process: ProcessKind::Runner,
                    instructions: 3000
                },
            ]
        );
    }
}
