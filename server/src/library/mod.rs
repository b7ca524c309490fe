//! The scenario library: the mite scenarios in the folders an agent was
//! started with (`--scenario-dir`). The agent lists them (with their
//! docstrings and the shape of their volume models) for the launch form,
//! and finds the one a run names in its own folders again when the run
//! starts: the browser never sends a path or code.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use domain::library::{is_scenario_spec, LibraryScenario, VolumeShape};
use domain::library::{SHAPE_CONCURRENCIES, SHAPE_DURATION_S};

use crate::child_env::CleanEnv;
use crate::paths::is_inside;
use crate::sandbox::{Jail, Network, Sandbox};

/// The finder, run with the pinned mite's Python in each folder.
const FINDER: &str = include_str!("discover.py");
/// The longest one folder's listing may take (it imports the modules and
/// calls their scenario functions).
pub const FINDER_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of the finder's error output kept in a message.
const MOST_STDERR: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("cannot start the scenario finder ({python}): {source}")]
    Start {
        python: String,
        source: std::io::Error,
    },
    #[error("{dir} is not a folder this agent can read")]
    NoFolder { dir: String },
    #[error("listing the scenarios in {dir} took longer than {} s", FINDER_TIMEOUT.as_secs())]
    Timeout { dir: String },
    #[error("the scenario finder failed in {dir}: {stderr}")]
    Failed { dir: String, stderr: String },
    #[error("the scenario finder's answer in {dir} is not understood: {source}")]
    Answer {
        dir: String,
        source: serde_json::Error,
    },
    #[error("`{spec}` is not a module:function of Python names")]
    NotASpec { spec: String },
    #[error(
        "this agent has no scenario module for `{spec}` in its --scenario-dir folders ({roots})"
    )]
    NotFound { spec: String, roots: String },
}

/// What the finder says of one folder.
#[derive(Debug, serde::Deserialize)]
struct Listing {
    scenarios: Vec<FoundScenario>,
    skipped: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
struct FoundScenario {
    module: String,
    function: String,
    doc: String,
    function_doc: String,
    shapes: Vec<VolumeShape>,
    problem: Option<String>,
}

/// The folders, in the order given: a module in two is taken from the first,
/// as Python would.
#[derive(Debug, Clone, Default)]
pub struct ScenarioLibrary {
    roots: Vec<PathBuf>,
}

/// The library's scenarios, and what was passed over (with why).
#[derive(Debug, Default)]
pub struct Found {
    pub scenarios: Vec<LibraryScenario>,
    pub skipped: Vec<String>,
}

impl ScenarioLibrary {
    pub fn new(roots: Vec<PathBuf>) -> Self {
        ScenarioLibrary { roots }
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// Lists the scenarios of every folder for `agent`, running the finder
    /// with `python` (the pinned mite's), in `sandbox` where there is one:
    /// it imports the folder's modules. A folder that cannot be listed is
    /// said in `skipped`; the others are listed still.
    pub async fn discover(&self, agent: &str, python: &Path, sandbox: Option<&Sandbox>) -> Found {
        let mut found = Found::default();
        for root in &self.roots {
            match list_folder(root, python, sandbox).await {
                Ok(listing) => {
                    found.skipped.extend(
                        listing
                            .skipped
                            .into_iter()
                            .map(|s| format!("{}: {s}", root.display())),
                    );
                    for s in listing.scenarios {
                        let spec = format!("{}:{}", s.module, s.function);
                        if !is_scenario_spec(&spec)
                            || found.scenarios.iter().any(|f| f.spec == spec)
                        {
                            continue;
                        }
                        found.scenarios.push(LibraryScenario {
                            agent: agent.to_string(),
                            spec,
                            doc: s.doc,
                            function_doc: s.function_doc,
                            shapes: s.shapes,
                            problem: s.problem,
                        });
                    }
                }
                Err(e) => found.skipped.push(e.to_string()),
            }
        }
        found
    }

    /// The folder holding the module of `spec`, checked inside one of the
    /// library's folders (what a run names is not trusted as a path).
    pub fn find(&self, spec: &str) -> Result<PathBuf, LibraryError> {
        if !is_scenario_spec(spec) {
            return Err(LibraryError::NotASpec { spec: spec.into() });
        }
        let module = spec.split_once(':').map_or(spec, |(m, _)| m);
        let relative = module.replace('.', "/");
        for root in &self.roots {
            let files = [
                root.join(format!("{relative}.py")),
                root.join(&relative).join("__init__.py"),
            ];
            if files.iter().any(|f| f.is_file() && is_inside(root, f)) {
                if let Ok(root) = root.canonicalize() {
                    return Ok(root);
                }
            }
        }
        Err(LibraryError::NotFound {
            spec: spec.into(),
            roots: self
                .roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

/// Runs the finder in one folder.
async fn list_folder(
    root: &Path,
    python: &Path,
    sandbox: Option<&Sandbox>,
) -> Result<Listing, LibraryError> {
    let dir = root.display().to_string();
    if !root.is_dir() {
        return Err(LibraryError::NoFolder { dir });
    }
    // Said here, not as the sandbox's failure to start it.
    if !python.is_file() {
        return Err(LibraryError::Start {
            python: python.display().to_string(),
            source: std::io::ErrorKind::NotFound.into(),
        });
    }
    let request = serde_json::json!({
        "concurrencies": SHAPE_CONCURRENCIES,
        "duration": SHAPE_DURATION_S,
        "target_url": "http://127.0.0.1:9898/",
    });
    let args = [
        OsString::from("-c"),
        OsString::from(FINDER),
        OsString::from(request.to_string()),
    ];
    let mut command = match sandbox {
        // The folder and the venv's Python read-only, nothing else.
        Some(sandbox) => {
            let mut jail = Jail::new(root, Network::Loopback).read_only(root);
            if let Some(venv) = python.parent().and_then(Path::parent) {
                jail = jail.read_only(venv).python_of(venv);
            }
            tokio::process::Command::from(sandbox.command(&jail, python, &args))
        }
        None => {
            let mut command = tokio::process::Command::new(python);
            command.args(&args);
            command
        }
    };
    let child = command
        .basic_env()
        .current_dir(root)
        .env("PYTHONPATH", root)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| LibraryError::Start {
            python: python.display().to_string(),
            source,
        })?;
    let output = tokio::time::timeout(FINDER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| LibraryError::Timeout { dir: dir.clone() })?
        .map_err(|source| LibraryError::Start {
            python: python.display().to_string(),
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let start = stderr.len().saturating_sub(MOST_STDERR);
        let tail = stderr.get(start..).unwrap_or(&stderr).trim().to_string();
        return Err(LibraryError::Failed { dir, stderr: tail });
    }
    serde_json::from_slice(&output.stdout).map_err(|source| LibraryError::Answer { dir, source })
}
