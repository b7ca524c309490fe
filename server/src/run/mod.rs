//! Executing a run: for each scenario, start the target and mite's four
//! components, sample them, stop them, and check the ports are free again.
//! The CLI and the browser lab both drive runs through [`execute_run`].
//!
//! - [`plan`]: a scenario's start-up as data (pure);
//! - [`launch`]: starts any plan, recording every child;
//! - [`sample`]: the sampling loop, and the pure readings → samples step;
//! - [`sink`]: buffered, bounded writing of samples on their own connection;
//! - [`teardown`]: stops every child, records their ends, checks the ports;
//! - [`verdict`]: a scenario's and a run's status (pure);
//! - [`scenario`]: one scenario, phase after phase;
//! - [`output`]: the run's folder and what goes in it;
//! - [`lease`]: which agent executes a run, and its lease on it;
//! - [`until_decided`]: a run that stops adding repeats once every figure
//!   is decided.

pub mod instructions;
pub mod launch;
pub mod lease;
pub mod output;
pub mod plan;
pub mod sample;
pub mod scenario;
pub mod sink;
pub mod teardown;
pub mod until_decided;
pub mod verdict;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use domain::builds::{MiteBuild, Slot, WheelCommit};
use domain::provenance::{BuildProvenance, RunJson};

use crate::mite_env::builds::BuildCache;
use crate::mite_env::MiteEnv;
use crate::model::{RunParams, RunStatus, ScenarioSpec, ScenarioStatus, TargetSpec};
use crate::reports;
use crate::store::{persistently, Store, StoreError, STOP_PATH_PATIENCE};
use scenario::ScenarioRun;
use sink::SampleSink;
use verdict::{Next, RunTally};

pub use output::{create_output_dir, SCENARIO_MODULE};

/// Lines of a failing process's log kept with the failure.
pub const LOG_TAIL_LINES: usize = 30;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runtime that executes runs could not start, or lost the run.
    #[error("the lab's measuring thread: {0}")]
    Measuring(String),
}

/// Why this lab will not run these parameters (its start-up flags forbid
/// them): said at launch, and again by the host that executes the run.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(
        "this run asks for the target command `{0}`, and this lab was not started \
         with --allow-target-cmd"
    )]
    TargetCommand(String),
    #[error(
        "this run asks for mite from {0}, which is not inside a folder this lab \
         takes checkouts and wheels from (--allow-local-builds DIR): ask for a version \
         instead"
    )]
    LocalBuild(String),
    #[error(
        "this run asks for the uploaded wheel {0}, and this lab was not started with \
         --allow-uploaded-builds (a wheel is code its agents would run)"
    )]
    UploadedBuild(String),
    #[error(
        "this run asks for scenarios from {}, which is not inside a folder this lab \
         was started with (--scenario-dir)",
        .0.display()
    )]
    ScenarioDir(PathBuf),
    #[error(
        "this run asks for mite {build}, code this host would have to run without a \
         sandbox: {missing}; or start the agent with {flag} (an admin's choice: the \
         build could then read the lab's secrets)",
        flag = crate::sandbox::INSECURE_FLAG
    )]
    Unsandboxed { build: String, missing: String },
}

/// Why a run could not start. No process of it had started by then.
#[derive(Debug, thiserror::Error)]
pub enum Unprepared {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Library(#[from] crate::library::LibraryError),
    #[error("invalid parameters: {0}")]
    Invalid(String),
    #[error(
        "profiling needs py-spy, and {} is missing: run scripts/setup (or set {})",
        .0.display(),
        crate::profile::py_spy::PY_SPY_ENV
    )]
    NoPySpy(PathBuf),
    #[error(transparent)]
    Profile(#[from] crate::profile::ProfileError),
    #[error(transparent)]
    Output(#[from] output::OutputError),
    #[error("stopped while installing mite {0}")]
    Stopped(String),
    #[error(transparent)]
    Build(#[from] crate::mite_env::builds::BuildError),
    #[error("cannot open the sample writer: {0}")]
    Writer(#[source] StoreError),
    #[error("cannot record {what}: {source}")]
    Record {
        what: &'static str,
        source: StoreError,
    },
}

impl Unprepared {
    fn record(what: &'static str) -> impl FnOnce(StoreError) -> Self {
        move |source| Unprepared::Record { what, source }
    }
}

impl RunError {
    /// Whether the run was taken from this agent (its lease lost): nothing
    /// more is stored for it, by anyone here.
    pub fn lease_lost(&self) -> bool {
        matches!(self, RunError::Store(StoreError::LeaseLost(_)))
    }
}

/// Deadlines and bounds of a run, the lab's to choose.
#[derive(Debug, Clone)]
pub struct RunLimits {
    /// How long a component may take to get ready (Python imports take a while).
    pub ready_timeout: Duration,
    /// How long past the scenario's duration the controller may take to end.
    pub controller_grace: Duration,
    /// Samples kept in memory while the database is unavailable.
    pub max_unsaved_samples: usize,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            ready_timeout: Duration::from_secs(30),
            controller_grace: Duration::from_secs(60),
            max_unsaved_samples: 100_000,
        }
    }
}

/// What a run taken from the database may ask the lab to execute: checked
/// again before each run, whoever queued it.
#[derive(Debug, Clone, Default)]
pub struct RunPolicy {
    /// Runs may name a shell command as their target.
    pub allow_target_cmd: bool,
    /// Runs may use their own scenario module from a folder inside one of these.
    pub scenario_roots: Vec<PathBuf>,
    /// Any scenario folder will do (the command line's own choice).
    pub any_scenario_dir: bool,
    /// Runs may install mite from checkouts and wheels inside these folders
    /// (made absolute when the lab starts).
    pub local_build_roots: Vec<PathBuf>,
    /// Any checkout or wheel will do (the command line's own choice).
    pub any_local_build: bool,
    /// Runs may install wheels uploaded to the lab (`ci check`), and the
    /// web front takes uploads.
    pub allow_uploaded_builds: bool,
}

impl RunPolicy {
    /// Everything goes: the person at the command line typed it.
    pub fn command_line() -> Self {
        RunPolicy {
            allow_target_cmd: true,
            scenario_roots: vec![],
            any_scenario_dir: true,
            local_build_roots: vec![],
            any_local_build: true,
            allow_uploaded_builds: true,
        }
    }

    /// Whether a run may install mite from `path`: inside one of
    /// [`Self::local_build_roots`], as written (`..` resolved against the
    /// lab's folder) and as it really is (links followed as far as the
    /// path exists). Whether it exists is not said either way.
    pub fn allows_local_build(&self, path: &Path) -> bool {
        if self.any_local_build {
            return true;
        }
        let Ok(here) = std::env::current_dir() else {
            return false;
        };
        let written = crate::paths::lexically_absolute(&here.join(path));
        let inside = |p: &Path| {
            self.local_build_roots
                .iter()
                .any(|root| p.starts_with(root))
        };
        if !inside(&written) {
            return false;
        }
        // The deepest part that exists, with its links followed.
        written
            .ancestors()
            .find_map(|p| p.canonicalize().ok())
            .is_some_and(|real| inside(&real))
    }

    /// The scenario library: the folders runs may take their scenarios from.
    pub fn library(&self) -> crate::library::ScenarioLibrary {
        crate::library::ScenarioLibrary::new(self.scenario_roots.clone())
    }

    /// The run's scenario as this host executes it: a library scenario is
    /// found in this host's own folders (what the run names is checked
    /// again here, whoever queued it).
    pub fn resolve(&self, params: &RunParams) -> Result<RunParams, crate::library::LibraryError> {
        let mut resolved = params.clone();
        if let ScenarioSpec::Library { spec } = &params.scenario {
            let dir = self.library().find(spec)?;
            resolved.scenario = ScenarioSpec::Custom {
                spec: spec.clone(),
                dir,
            };
        }
        Ok(resolved)
    }

    /// Why these parameters may not run here, if they may not.
    pub fn refusal(&self, params: &RunParams) -> Option<Refusal> {
        if let TargetSpec::Command(cmd) = &params.target {
            if !self.allow_target_cmd {
                return Some(Refusal::TargetCommand(cmd.clone()));
            }
        }
        if let Some(local) = params
            .mite
            .iter()
            .find(|b| b.local_path().is_some_and(|p| !self.allows_local_build(p)))
        {
            return Some(Refusal::LocalBuild(local.to_string()));
        }
        if !self.allow_uploaded_builds {
            if let Some(uploaded) = params
                .mite
                .iter()
                .find(|b| matches!(b, MiteBuild::Uploaded(_)))
            {
                return Some(Refusal::UploadedBuild(uploaded.to_string()));
            }
        }
        if let ScenarioSpec::Custom { dir, .. } = &params.scenario {
            if self.any_scenario_dir {
                return None;
            }
            let inside = dir.canonicalize().ok().is_some_and(|dir| {
                self.scenario_roots
                    .iter()
                    .filter_map(|root| root.canonicalize().ok())
                    .any(|root| dir.starts_with(root))
            });
            if !inside {
                return Some(Refusal::ScenarioDir(dir.clone()));
            }
        }
        None
    }
}

/// What the lab needs besides the run's parameters.
#[derive(Debug, Clone)]
pub struct LabSetup {
    /// Runs go in `output_root/YYYY-MM-DD/HH-MM/`.
    pub output_root: PathBuf,
    /// The pinned mite, and the venvs of every other build.
    pub builds: BuildCache,
    /// The `mite-perf` binary, which serves the built-in target.
    pub self_exe: PathBuf,
    pub limits: RunLimits,
    pub policy: RunPolicy,
    /// This agent, named on the runs it executes.
    pub host: crate::agent_identity::AgentIdentity,
    /// Whether measured code runs in a sandbox here.
    pub isolation: crate::sandbox::Isolation,
}

/// Progress, for a progress bar or a live page.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// Before the first scenario: what the lab is doing (installing a build).
    Preparing { message: String },
    ScenarioStarted {
        position: usize,
        /// `scenario10`, or `scenario10-b2-r3` in a run of builds and repeats.
        name: String,
        concurrency: u32,
        duration: Duration,
    },
    Tick {
        position: usize,
        elapsed: Duration,
        requests_per_second: f64,
        requests: u64,
    },
    ScenarioEnded {
        position: usize,
        status: ScenarioStatus,
        error: Option<String>,
    },
}

/// Receives [`RunEvent`]s as a run goes.
pub trait RunObserver: Send + Sync {
    fn event(&self, event: RunEvent);
}

/// An observer that ignores everything.
pub struct NoObserver;
impl RunObserver for NoObserver {
    fn event(&self, _: RunEvent) {}
}

#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_id: i64,
    pub status: RunStatus,
    /// The run's folder, once it was made.
    pub output_dir: Option<PathBuf>,
    pub error: Option<String>,
}

/// What a run prepares before its first scenario.
struct Prepared {
    /// The run's parameters with its scenario found on this host.
    params: RunParams,
    output_dir: PathBuf,
    module_dir: PathBuf,
    /// Each build's venv, in the run's build order.
    envs: Vec<MiteEnv>,
    /// Each scenario's slot and row.
    scenarios: Vec<(Slot, i64)>,
    sink: SampleSink,
}

/// Runs every scenario of run `run_id` (already stored with `params`).
/// Cancelling `cancel` stops the current scenario in two stages and skips
/// the rest; the reports are written for whatever was measured.
///
/// Whatever happens, the run ends with a final status in the database;
/// only when the database cannot be reached even for that is an error
/// returned (and `cleanup` will close the run later).
#[tracing::instrument(name = "run", skip_all, fields(run = run_id))]
pub async fn execute_run(
    store: &Store,
    run_id: i64,
    params: &RunParams,
    setup: &LabSetup,
    cancel: &CancellationToken,
    observer: &dyn RunObserver,
) -> Result<RunOutcome, RunError> {
    // This host executes it under a lease (taken from the queue with one,
    // or taken now): every write carries it, it is renewed until the run
    // ends, and through it a cancel asked on another host reaches it.
    let store = &match store.fence() {
        Some(_) => store.clone(),
        None => store.fenced(
            store
                .lease_run(run_id, &setup.host, std::process::id())
                .await?,
        ),
    };
    let _lease = lease::keep_lease(store.clone(), setup.host.clone(), cancel.clone());
    let prepared = match prepare(store, run_id, params, setup, cancel, observer).await {
        Ok(prepared) => prepared,
        Err((unprepared, output_dir)) => {
            let message = unprepared.to_string();
            tracing::warn!("run {run_id} cannot start: {message}");
            // Stopped while it prepared (installing a build): interrupted,
            // as a run stopped later is.
            let status = if cancel.is_cancelled() {
                RunStatus::Interrupted
            } else {
                RunStatus::Failed
            };
            close_run(
                store,
                run_id,
                status,
                Some(&message),
                ScenarioStatus::Skipped,
            )
            .await?;
            return Ok(RunOutcome {
                run_id,
                status,
                output_dir,
                error: Some(message),
            });
        }
    };

    let params = &prepared.params;
    let mut tally = RunTally::default();
    let (builds, repeats) = (params.builds().len(), params.repeats);
    let slots: Vec<Slot> = prepared.scenarios.iter().map(|(slot, _)| *slot).collect();
    // Repeats a decided concurrency no longer needs.
    let mut not_needed: Vec<usize> = Vec::new();
    for (position, &(slot, scenario_id)) in prepared.scenarios.iter().enumerate() {
        if cancel.is_cancelled() {
            break;
        }
        if not_needed.contains(&position) {
            continue;
        }
        let name = slot.name(builds, repeats);
        let concurrency = slot.concurrency;
        observer.event(RunEvent::ScenarioStarted {
            position,
            name: name.clone(),
            concurrency,
            duration: params.duration(),
        });
        let scenario = ScenarioRun {
            store,
            setup,
            params,
            scenario_id,
            position,
            concurrency,
            requests: slot.requests,
            mite: &prepared.envs[slot.build],
            dir: prepared.output_dir.join(&name),
            module_dir: &prepared.module_dir,
            observer,
            sink: &prepared.sink,
        };
        let mut result = scenario.execute(cancel).await;
        // Its steady window, from every sample it stored.
        match store.scenario_samples(scenario_id).await {
            Ok(samples) => {
                result.figures.steady = crate::figures::steady_figures(&samples);
                result.figures.instructions =
                    crate::figures::counted_instructions(&samples, &result.counter_readings);
            }
            Err(e) => tracing::warn!("cannot read scenario {scenario_id}'s samples: {e}"),
        }
        // The second of a Valgrind pair: instructions per request, its
        // counts less its first's.
        if let Some(half) = half_of_pair(params, &prepared.scenarios, slot) {
            match store.stored_figures(half).await {
                Ok(Some(first)) => {
                    result.figures.instructions = domain::instrument::from_pair(
                        &result.figures.instruction_totals,
                        result.figures.total_requests.max(0) as u64,
                        &first.instruction_totals,
                        first.total_requests.max(0) as u64,
                    );
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("cannot read scenario {half}'s counts: {e}"),
            }
        }
        let failure = result.failure.as_ref();
        persistently(STOP_PATH_PATIENCE, || {
            store.finish_scenario(
                scenario_id,
                result.status,
                failure.map(|f| f.message.as_str()),
                failure.and_then(|f| f.log_tail.as_deref()),
                &result.figures,
            )
        })
        .await?;
        // Its page's charts, ready for every later visit.
        if let Ok(Some(record)) = store.scenario(scenario_id).await {
            match reports::chart::scenario_charts(store, &record, None).await {
                Ok(overview) => {
                    if let Err(e) = store.save_overview(scenario_id, &overview).await {
                        tracing::warn!("cannot keep scenario {scenario_id}'s overview: {e}");
                    }
                }
                Err(e) => tracing::warn!("cannot draw scenario {scenario_id}'s overview: {e}"),
            }
        }
        observer.event(RunEvent::ScenarioEnded {
            position,
            status: result.status,
            error: failure.map(|f| f.message.clone()),
        });
        if tally.record(&name, result.status, failure) == Next::Stop {
            break;
        }
        if params.stop.is_some()
            && result.status == ScenarioStatus::Done
            && until_decided::ends_a_round(&slots, position)
        {
            let rest = until_decided::rest_of_concurrency(&slots, position);
            if rest.is_empty() {
                continue;
            }
            match until_decided::judge(store, run_id, params, concurrency).await {
                until_decided::Judged::Decided => {
                    let reason = format!(
                        "not needed: every figure at {concurrency} journeys was decided after \
                         {} repeats a build",
                        slot.repeat + 1
                    );
                    tracing::info!("run {run_id}: {reason}: {} scenarios skipped", rest.len());
                    for p in rest {
                        let id = prepared.scenarios[p].1;
                        persistently(STOP_PATH_PATIENCE, || store.skip_scenario(id, &reason))
                            .await?;
                        not_needed.push(p);
                    }
                }
                until_decided::Judged::Undecided(figures) => tracing::info!(
                    "run {run_id}: after {} repeats a build at {concurrency} journeys, still \
                     undecided: {}",
                    slot.repeat + 1,
                    figures.join(", ")
                ),
                until_decided::Judged::Unjudged(why) => {
                    tracing::warn!("run {run_id}: every repeat runs: {why}")
                }
            }
        }
    }
    prepared.sink.close().await;
    let (mut status, mut error) = tally.finish(cancel.is_cancelled());
    persistently(STOP_PATH_PATIENCE, || {
        store.close_open_scenarios(run_id, ScenarioStatus::Skipped)
    })
    .await?;
    // The files first, then the run's end: once a run reads as ended, its
    // files are in place.
    let written =
        reports::write_run_outputs(store, run_id, Some(status), &prepared.output_dir).await;
    if let Err(e) = written {
        // The samples are safe in the database; the files are not.
        let message = format!("{e}; the samples are in the database");
        tracing::error!("run {run_id}: {message}");
        status = RunStatus::Failed;
        error = Some(error.map_or(message.clone(), |first| format!("{first}; {message}")));
    }
    persistently(STOP_PATH_PATIENCE, || {
        store.finish_run(run_id, status, error.as_deref())
    })
    .await?;
    Ok(RunOutcome {
        run_id,
        status,
        output_dir: Some(prepared.output_dir),
        error,
    })
}

/// Marks the scenarios that never ended with `open_scenarios` and the run
/// with its final status, trying again while the database is unavailable.
async fn close_run(
    store: &Store,
    run_id: i64,
    status: RunStatus,
    error: Option<&str>,
    open_scenarios: ScenarioStatus,
) -> Result<(), StoreError> {
    persistently(STOP_PATH_PATIENCE, || {
        store.close_open_scenarios(run_id, open_scenarios)
    })
    .await?;
    persistently(STOP_PATH_PATIENCE, || {
        store.finish_run(run_id, status, error)
    })
    .await
}

/// Writes the run's uploaded wheels from the database to this host's
/// build folder (checked again on the way: hash and name), and gives the
/// commits their uploaders named, with who named them, by SHA-256.
async fn place_uploads(
    store: &Store,
    params: &RunParams,
    setup: &LabSetup,
) -> Result<HashMap<String, (WheelCommit, String)>, Unprepared> {
    forget_dropped_uploads(store, setup).await;
    let mut commits = HashMap::new();
    for build in &params.mite {
        let MiteBuild::Uploaded(sha) = build else {
            continue;
        };
        let missing = || {
            Unprepared::Build(crate::mite_env::builds::BuildError::UploadMissing {
                sha256: sha.clone(),
            })
        };
        let record = store
            .wheel(sha)
            .await
            .map_err(Unprepared::record("the uploaded wheel's name"))?
            .ok_or_else(missing)?;
        let content = store
            .wheel_content(sha)
            .await
            .map_err(Unprepared::record("the uploaded wheel"))?
            .ok_or_else(missing)?;
        setup
            .builds
            .place_upload(sha, &record.file_name, &content)?;
        if let Some(commit) = record.commit() {
            commits.insert(sha.clone(), (commit, record.uploaded_by.clone()));
        }
    }
    Ok(commits)
}

/// An uploaded wheel's build, with the commit its uploader named: placed
/// in a trend's commit order like a checkout's (never marked clean or
/// dirty: the lab did not see the tree), and claimed by its uploader.
fn with_commit(
    mut provenance: BuildProvenance,
    commit: Option<&(WheelCommit, String)>,
) -> BuildProvenance {
    if let Some((c, uploader)) = commit {
        provenance.git_commit = Some(c.commit.clone());
        provenance.git_commit_time = Some(c.time);
        provenance.git_parents = c.parents.clone();
        provenance.claimed_by = Some(uploader.clone());
    }
    provenance
}

/// The first scenario of `slot`'s Valgrind pair (same concurrency, build
/// and repeat, N requests), when `slot` is the second (2N).
fn half_of_pair(params: &RunParams, scenarios: &[(Slot, i64)], slot: Slot) -> Option<i64> {
    if !params.valgrind || slot.requests.is_none() || params.is_half_of_pair(slot.requests) {
        return None;
    }
    scenarios.iter().find_map(|(other, id)| {
        (other.concurrency == slot.concurrency
            && other.build == slot.build
            && other.repeat == slot.repeat
            && params.is_half_of_pair(other.requests))
        .then_some(*id)
    })
}

/// Removes this host's copies (wheel and venv) of uploads the lab's
/// database no longer keeps (past their retention, no run naming them).
/// What cannot be looked up or removed now is left for the next run.
async fn forget_dropped_uploads(store: &Store, setup: &LabSetup) {
    for sha in setup.builds.held_uploads() {
        match store.wheel_kept(&sha).await {
            Ok(false) => match setup.builds.forget_upload(&sha) {
                Ok(()) => tracing::info!("removed upload {sha}: the lab no longer keeps it"),
                Err(e) => tracing::warn!("cannot remove upload {sha}: {e}"),
            },
            Ok(true) => {}
            Err(e) => {
                tracing::warn!("cannot look up the uploads this host holds: {e}");
                return;
            }
        }
    }
}

/// Checks the run may go, makes its folder, installs its mite builds,
/// records its start, provenance and scenarios, and opens its sample
/// writer. The error says why not, with the folder if it was made; no
/// process of the run has started by then.
async fn prepare(
    store: &Store,
    run_id: i64,
    params: &RunParams,
    setup: &LabSetup,
    cancel: &CancellationToken,
    observer: &dyn RunObserver,
) -> Result<Prepared, (Unprepared, Option<PathBuf>)> {
    let nowhere = |e: Unprepared| (e, None);
    let params = &setup
        .policy
        .resolve(params)
        .map_err(|e| nowhere(e.into()))?;
    if let Some(refusal) = setup.policy.refusal(params) {
        return Err(nowhere(refusal.into()));
    }
    if let Some(missing) = setup.isolation.refuses_untrusted() {
        if let Some(build) = params.builds().iter().find(|b| b.is_untrusted()) {
            return Err(nowhere(
                Refusal::Unsandboxed {
                    build: build.to_string(),
                    missing: missing.to_string(),
                }
                .into(),
            ));
        }
    }
    let errors = params.validate();
    if !errors.is_empty() {
        let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(nowhere(Unprepared::Invalid(listed.join("; "))));
    }
    if params.profile.is_some() {
        let py_spy = crate::profile::py_spy::py_spy();
        if !py_spy.is_file() {
            return Err(nowhere(Unprepared::NoPySpy(py_spy)));
        }
        crate::profile::py_spy::reach(setup.isolation.sandbox().is_some())
            .map_err(|e| nowhere(e.into()))?;
    }
    let output_dir = create_output_dir(&setup.output_root).map_err(|e| nowhere(e.into()))?;
    let in_dir = |e: Unprepared| (e, Some(output_dir.clone()));
    let say = |message: &str| {
        observer.event(RunEvent::Preparing {
            message: message.to_string(),
        });
    };
    let commits = place_uploads(store, params, setup).await.map_err(in_dir)?;
    let mut installed = Vec::new();
    for build in params.builds() {
        // A stop while installing ends the installer (the future owns it,
        // killed when dropped); the half-made venv is made again next time.
        let result = tokio::select! {
            result = setup.builds.install_resolved(
                &build,
                &params.dependencies,
                setup.isolation.sandbox(),
                &say,
            ) => result,
            () = cancel.cancelled() => {
                return Err(in_dir(Unprepared::Stopped(build.to_string())));
            }
        };
        let mut build_installed = result.map_err(|e| in_dir(e.into()))?;
        if let MiteBuild::Uploaded(sha) = &build {
            build_installed.provenance = with_commit(build_installed.provenance, commits.get(sha));
        }
        installed.push(build_installed);
    }
    let envs: Vec<MiteEnv> = installed.iter().map(|b| b.env.clone()).collect();
    let env = output::environment(&envs[0]);
    store
        .start_run(
            run_id,
            &env,
            &output_dir.display().to_string(),
            std::process::id(),
        )
        .await
        .map_err(|e| in_dir(Unprepared::record("the run's start")(e)))?;
    let module_dir =
        output::scenario_module_dir(params, &output_dir).map_err(|e| in_dir(e.into()))?;
    let provenance = output::provenance(
        params,
        installed.into_iter().map(|b| b.provenance).collect(),
        &module_dir,
        setup.host.machine_epoch,
        setup.isolation.describe(),
    );
    store
        .save_provenance(run_id, &provenance)
        .await
        .map_err(|e| in_dir(Unprepared::record("the run's provenance")(e)))?;
    let run_json = RunJson {
        run_id,
        label: params.label.clone(),
        concurrencies: params.concurrencies.clone(),
        builds_asked: params.builds(),
        provenance,
    };
    output::write_run_json(&output_dir, &run_json).map_err(|e| in_dir(e.into()))?;
    let mut scenarios = Vec::new();
    for (position, slot) in params.slots().into_iter().enumerate() {
        let id = store
            .create_scenario(run_id, position as i64, slot, params)
            .await
            .map_err(|e| in_dir(Unprepared::record("the scenarios")(e)))?;
        scenarios.push((slot, id));
    }
    let writer = store
        .sample_writer()
        .await
        .map_err(|e| in_dir(Unprepared::Writer(e)))?;
    Ok(Prepared {
        params: params.clone(),
        module_dir,
        envs,
        scenarios,
        sink: SampleSink::start(writer, setup.limits.max_unsaved_samples),
        output_dir,
    })
}
