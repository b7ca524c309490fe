//! py-spy at work: one `py-spy record` per profiled process, sampling
//! without pausing it. Where it may, py-spy attaches once the scenario's
//! processes are up: each py-spy is a child of the lab like the others
//! (recorded, in its own process group, found by `cleanup`), stopped with
//! SIGINT before them, when it writes its folded stacks; a profiled process
//! that crashes ends its py-spy, which writes them too. Where it may not,
//! the profiled processes are started under py-spy instead
//! ([`super::started`]). What py-spy wrote is stored per scenario and
//! process, and drawn beside it as an SVG flame graph.

use std::path::{Path, PathBuf};
use std::time::Duration;

use domain::profile::ProfileSpec;

use super::folded;
use super::py_spy::{profile_file, profile_file_names, py_spy, record_args, Reach, ATTACHED};
use super::render;
use crate::children::{self, start_recorded, Children};
use crate::model::ProcessKind;
use crate::store::{NewProfile, Store};
use crate::supervisor::{self, ChildSpec, Measured};

/// How long py-spy gets to write its stacks once asked to stop.
pub const WRITE_GRACE: Duration = Duration::from_secs(5);

/// One py-spy and what it profiles.
struct Profiled {
    kind: ProcessKind,
    pid: u32,
    output: PathBuf,
    log: PathBuf,
    reach: Reach,
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
    /// The scenario's children that were started under py-spy (see
    /// [`started::wrap`]), to store what py-spy wrote for them once they
    /// have ended.
    pub fn started_under(spec: &ProfileSpec, children: &mut Children, dir: &Path) -> Profilers {
        let mut profilers = Profilers {
            rate: spec.rate,
            ..Profilers::default()
        };
        for launched in &mut children.list {
            let child = &mut launched.child;
            if !child.measures_grandchild() {
                continue;
            }
            let pid = child.measured_pid().unwrap_or(child.pid);
            profilers.profiled.push(Profiled {
                kind: child.kind,
                pid,
                output: profile_file(dir, child.kind, &pid.to_string()),
                log: child.log_path.clone(),
                reach: Reach::StartUnder,
            });
        }
        profilers
    }

    /// Attaches a py-spy to each of `targets` the spec names. What cannot be
    /// started is kept as a profile with its problem and no stacks.
    pub async fn attach(
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
        let refusal = (!program.is_file()).then(|| {
            format!(
                "py-spy is not installed ({} is missing): run scripts/setup",
                program.display()
            )
        });
        for &(kind, pid) in targets.iter().filter(|(k, _)| spec.processes.contains(k)) {
            if let Some(problem) = &refusal {
                profilers.miss(kind, pid, problem.clone());
                continue;
            }
            let output = profile_file(dir, kind, &pid.to_string());
            let log = dir.join(format!("profiler-{kind}-{pid}.log"));
            let child = ChildSpec {
                kind: ProcessKind::Profiler,
                program: program.clone(),
                args: record_args(spec.rate, &output, pid),
                cwd: dir.to_path_buf(),
                env: vec![],
                log_path: log.clone(),
                pipe_stdin: false,
                pipe_stdout: false,
                measured: Measured::Itself,
                network: None,
            };
            match start_recorded(&child, store, scenario_id).await {
                Ok(launched) => {
                    profilers.children.list.push(launched);
                    profilers.profiled.push(Profiled {
                        kind,
                        pid,
                        output,
                        log,
                        reach: Reach::Attach,
                    });
                }
                Err(why) => profilers.miss(kind, pid, why.to_string()),
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

    /// Stops every attached py-spy (SIGINT: it writes its stacks), before
    /// the processes it profiles stop.
    pub async fn stop(&mut self, store: &Store) {
        children::stop_children_within(store, &mut self.children, WRITE_GRACE).await;
    }

    /// Once every py-spy has ended (the attached ones stopped, the others
    /// with what they started), stores what each wrote and draws its flame
    /// graph beside it. Returns the flame graphs drawn.
    pub async fn save(mut self, store: &Store, scenario_id: i64) -> Vec<PathBuf> {
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

/// Stores the profiles py-spy wrote into a scenario's folder that were
/// never stored (the lab was killed before the scenario ended, and
/// `cleanup` stopped py-spy, which wrote), with their flame graphs.
/// `processes` are the scenario's recorded processes (they tell how py-spy
/// reached them). Returns how many were stored.
pub async fn store_left_profiles(
    store: &Store,
    scenario_id: i64,
    dir: &Path,
    rate: u32,
    processes: &[crate::store::ProcessRecord],
) -> Result<usize, crate::store::StoreError> {
    let stored: Vec<(ProcessKind, i64)> = store
        .profiles(scenario_id)
        .await?
        .into_iter()
        .map(|p| (p.process, p.pid))
        .collect();
    let reach = if processes
        .iter()
        .any(|p| super::started::measured_of(&p.command) == supervisor::Measured::UnderPySpy)
    {
        Reach::StartUnder
    } else {
        Reach::Attach
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut count = 0;
    for output in files {
        let Some((kind, pid)) = profile_file_names(&output) else {
            continue;
        };
        if stored.contains(&(kind, i64::from(pid))) {
            continue;
        }
        let log = dir.join(format!("profiler-{kind}-{pid}.log"));
        let profiled = Profiled {
            kind,
            pid,
            output,
            log,
            reach,
        };
        let (profile, _) = read_profile(&profiled, rate);
        store.save_profile(scenario_id, &profile).await?;
        count += 1;
    }
    Ok(count)
}

/// What one py-spy wrote, as a profile to store, and its flame graph drawn
/// beside it (`profile-runner-PID.svg`).
fn read_profile(p: &Profiled, rate: u32) -> (NewProfile, Option<PathBuf>) {
    let mut profile = NewProfile {
        process: p.kind,
        pid: p.pid,
        rate,
        samples: 0,
        mode: p.reach.mode().into(),
        problem: None,
        folded: String::new(),
    };
    let stacks = match std::fs::read_to_string(&p.output) {
        Ok(text) => folded::parse(&text).map_err(|e| e.to_string()),
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
