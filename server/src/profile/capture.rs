//! py-spy at work: one `py-spy record` per profiled process, attached once
//! the scenario's processes are up, sampling without pausing them. Each is a
//! child of the lab like the others (recorded, in its own process group,
//! found by `cleanup`); it is stopped with SIGINT before them, when it writes
//! its folded stacks, and a profiled process that crashes ends its py-spy,
//! which writes them too. What it wrote is stored per scenario and process,
//! and drawn beside it as an SVG flame graph.

use std::path::{Path, PathBuf};
use std::time::Duration;

use app::profile::ProfileSpec;

use super::folded;
use super::render;
use crate::model::ProcessKind;
use crate::run::launch::{start_recorded, Children};
use crate::run::teardown;
use crate::store::{NewProfile, Store};
use crate::supervisor::{self, ChildSpec};

/// Where py-spy is: this variable, or the lab's tools venv (scripts/setup).
pub const PY_SPY_ENV: &str = "MITE_PERF_PY_SPY";
/// How long py-spy gets to write its stacks once asked to stop.
pub const WRITE_GRACE: Duration = Duration::from_secs(5);
/// How py-spy reached the process.
pub const ATTACHED: &str = "attached";

/// The py-spy the lab uses.
pub fn py_spy() -> PathBuf {
    std::env::var_os(PY_SPY_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::mite_env::data_dir().join("tools/bin/py-spy"))
}

/// Whether py-spy may attach to the lab's children here: as root, or where
/// the kernel lets a process trace others of its user (Yama's
/// `ptrace_scope` 0 or absent).
pub fn attach_refusal() -> Option<String> {
    if nix::unistd::geteuid().is_root() {
        return None;
    }
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").ok()?;
    let scope = scope.trim();
    (scope != "0").then(|| {
        format!(
            "py-spy cannot attach to mite's processes here: kernel.yama.ptrace_scope is {scope} \
             and the lab does not run as root (set it to 0, or run the lab as root)"
        )
    })
}

/// One py-spy and what it profiles.
struct Profiled {
    kind: ProcessKind,
    pid: u32,
    output: PathBuf,
    log: PathBuf,
}

/// A scenario's profilers.
#[derive(Default)]
pub struct Profilers {
    rate: u32,
    children: Children,
    profiled: Vec<Profiled>,
    /// Processes that could not be profiled, with why.
    missed: Vec<NewProfile>,
}

impl Profilers {
    /// Starts a py-spy for each of `targets` the spec names. What cannot be
    /// started is kept as a profile with its problem and no stacks.
    pub async fn start(
        spec: &ProfileSpec,
        targets: &[(ProcessKind, u32)],
        dir: &Path,
        store: &Store,
        scenario_id: i64,
    ) -> Profilers {
        let mut profilers = Profilers {
            rate: spec.rate,
            ..Profilers::default()
        };
        let program = py_spy();
        let refusal = if program.is_file() {
            attach_refusal()
        } else {
            Some(format!(
                "py-spy is not installed ({} is missing): run scripts/setup",
                program.display()
            ))
        };
        for &(kind, pid) in targets.iter().filter(|(k, _)| spec.processes.contains(k)) {
            if let Some(problem) = &refusal {
                profilers.miss(kind, pid, problem.clone());
                continue;
            }
            let output = dir.join(format!("profile-{kind}-{pid}.folded"));
            let log = dir.join(format!("profiler-{kind}-{pid}.log"));
            let child = ChildSpec {
                kind: ProcessKind::Profiler,
                program: program.clone(),
                args: vec![
                    "record".into(),
                    "--pid".into(),
                    pid.to_string(),
                    "--rate".into(),
                    spec.rate.to_string(),
                    "--nonblocking".into(),
                    "--nolineno".into(),
                    "--format".into(),
                    "raw".into(),
                    "--output".into(),
                    output.display().to_string(),
                ],
                cwd: dir.to_path_buf(),
                env: vec![],
                log_path: log.clone(),
                pipe_stdin: false,
                pipe_stdout: false,
            };
            match start_recorded(&child, store, scenario_id).await {
                Ok(launched) => {
                    profilers.children.list.push(launched);
                    profilers.profiled.push(Profiled {
                        kind,
                        pid,
                        output,
                        log,
                    });
                }
                Err(failure) => profilers.miss(kind, pid, failure.message),
            }
        }
        profilers
    }

    fn miss(&mut self, process: ProcessKind, pid: u32, problem: String) {
        tracing::warn!("the {process} (pid {pid}) is not profiled: {problem}");
        self.missed.push(NewProfile {
            process,
            pid,
            rate: self.rate,
            samples: 0,
            mode: ATTACHED.into(),
            problem: Some(problem),
            folded: String::new(),
        });
    }

    /// Stops every py-spy (SIGINT: it writes its stacks), stores what each
    /// wrote and draws its flame graph beside it. Returns the flame graphs
    /// drawn.
    pub async fn finish(mut self, store: &Store, scenario_id: i64) -> Vec<PathBuf> {
        teardown::stop_children_within(store, &mut self.children, WRITE_GRACE).await;
        let mut drawn = Vec::new();
        let mut profiles = std::mem::take(&mut self.missed);
        for p in &self.profiled {
            let (profile, svg) = read_profile(p, self.rate);
            if let Some(svg) = svg {
                drawn.push(svg);
            }
            profiles.push(profile);
        }
        for profile in &profiles {
            if let Err(e) = store.save_profile(scenario_id, profile).await {
                tracing::error!(
                    "scenario {scenario_id}: cannot store the {} (pid {})'s profile: {e}",
                    profile.process,
                    profile.pid
                );
            }
        }
        drawn
    }
}

/// What one py-spy wrote, as a profile to store, and its flame graph drawn
/// beside it (`profile-runner-PID.svg`).
fn read_profile(p: &Profiled, rate: u32) -> (NewProfile, Option<PathBuf>) {
    let mut profile = NewProfile {
        process: p.kind,
        pid: p.pid,
        rate,
        samples: 0,
        mode: ATTACHED.into(),
        problem: None,
        folded: String::new(),
    };
    let stacks = match std::fs::read_to_string(&p.output) {
        Ok(text) => folded::parse(&text),
        Err(e) => Err(format!(
            "py-spy wrote no profile ({e}); its log ends: {}",
            supervisor::log_tail(&p.log, 3).trim()
        )),
    };
    let stacks = match stacks {
        Ok(stacks) => stacks,
        Err(problem) => {
            profile.problem = Some(problem);
            return (profile, None);
        }
    };
    profile.samples = folded::total(&stacks);
    profile.folded = folded::to_text(&stacks);
    if profile.samples == 0 {
        profile.problem = Some("py-spy sampled no stack of it (was it idle?)".into());
    }
    let title = format!(
        "{} (pid {}), {} samples at {rate}/s",
        p.kind, p.pid, profile.samples
    );
    let svg_path = p.output.with_extension("svg");
    let svg = match render::flamegraph_svg(&title, &stacks) {
        Ok(Some(svg)) => match std::fs::write(&svg_path, svg) {
            Ok(()) => Some(svg_path),
            Err(e) => {
                tracing::warn!("cannot write {}: {e}", svg_path.display());
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            tracing::warn!("{}: {e}", p.output.display());
            None
        }
    };
    (profile, svg)
}
