//! Executing a run: for each scenario, start the target and mite's four
//! components, sample them, stop them, and check the ports are free again.
//! The CLI and the browser lab both drive runs through [`execute_run`].

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::mite_env::MiteEnv;
use crate::model::Sample;
use crate::model::{
    scenario_name, ProcessKind, RunParams, RunStatus, ScenarioSpec, ScenarioStatus, TargetSpec,
};
use crate::ports::{self, COLLECTOR_PORT, CONTROLLER_PORT, LAB_PORTS, MESSAGE_PORT, TARGET_PORT};
use crate::reports;
use crate::sampler::ProcessSampler;
use crate::store::{now_ms, RunEnvironment, Store, StoreError};
use crate::supervisor::{self, ChildSpec, Supervised, STOP_GRACE};
use crate::target::RequestCounter;

/// The scenario module shipped with the lab.
pub const SCENARIO_MODULE: &str = include_str!("../python/mite_perf_scenario.py");
const SCENARIO_MODULE_NAME: &str = "mite_perf_scenario";
const BUILTIN_SCENARIO: &str = "mite_perf_scenario:scenario";

/// How long a component may take to get ready (Python imports take a while).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long past the scenario's duration the controller may take to end.
const CONTROLLER_GRACE: Duration = Duration::from_secs(60);
/// How long the ports may take to be free after the children stopped.
const PORTS_FREE_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages per collector file before it rolls (about 9 MB).
const COLLECTOR_ROLL: u64 = 20_000;
/// Lines of a failing process's log kept with the failure.
const LOG_TAIL_LINES: usize = 30;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the run's reports: {0}")]
    Reports(#[from] reports::ReportError),
}

/// What the lab needs besides the run's parameters.
#[derive(Debug, Clone)]
pub struct LabSetup {
    /// Runs go in `output_root/YYYY-MM-DD/HH-MM/`.
    pub output_root: PathBuf,
    pub mite: MiteEnv,
    /// The `mite-perf` binary, which serves the built-in target.
    pub self_exe: PathBuf,
}

/// Progress, for a progress bar or a live page.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    ScenarioStarted {
        position: usize,
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
    pub output_dir: PathBuf,
    pub error: Option<String>,
}

/// Why a scenario did not finish normally.
#[derive(Debug, Clone)]
struct Failure {
    message: String,
    log_tail: Option<String>,
    /// A busy port ends the whole run: the next scenarios would meet it too.
    ends_run: bool,
}

impl Failure {
    fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            log_tail: None,
            ends_run: false,
        }
    }
}

enum Ending {
    Finished,
    Cancelled,
}

/// Creates `root/YYYY-MM-DD/HH-MM`, adding `-2`, `-3`, ... when a run of the same
/// minute already has the folder.
pub fn create_output_dir(root: &Path) -> Result<PathBuf, RunError> {
    let now = time::OffsetDateTime::now_local().unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    let day = format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    let minute = format!("{:02}-{:02}", now.hour(), now.minute());
    // Absolute, because mite's processes run in the scenario's folder.
    let root = std::path::absolute(root).map_err(|source| RunError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    let parent = root.join(day);
    std::fs::create_dir_all(&parent).map_err(|source| RunError::Io {
        path: parent.clone(),
        source,
    })?;
    for n in 1.. {
        let name = if n == 1 {
            minute.clone()
        } else {
            format!("{minute}-{n}")
        };
        let dir = parent.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(RunError::Io { path: dir, source }),
        }
    }
    unreachable!("the loop returns")
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Runs every scenario of run `run_id` (already stored with `params`).
/// Cancelling `cancel` stops the current scenario in two stages and skips
/// the rest; the reports are written for whatever was measured.
pub async fn execute_run(
    store: &Store,
    run_id: i64,
    params: &RunParams,
    setup: &LabSetup,
    cancel: &CancellationToken,
    observer: &dyn RunObserver,
) -> Result<RunOutcome, RunError> {
    let output_dir = create_output_dir(&setup.output_root)?;
    let env = RunEnvironment {
        mite_version: setup.mite.mite_version.clone(),
        python_version: setup.mite.python_version.clone(),
        host: host_name(),
        cores: std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1),
    };
    store
        .start_run(
            run_id,
            &env,
            &output_dir.display().to_string(),
            std::process::id(),
        )
        .await?;

    let scenario_dir = match &params.scenario {
        ScenarioSpec::Builtin => {
            let dir = output_dir.join("scenario-module");
            let file = dir.join(format!("{SCENARIO_MODULE_NAME}.py"));
            std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(&file, SCENARIO_MODULE))
                .map_err(|source| RunError::Io { path: file, source })?;
            dir
        }
        ScenarioSpec::Custom { dir, .. } => dir.canonicalize().map_err(|source| RunError::Io {
            path: dir.clone(),
            source,
        })?,
    };

    let mut scenario_ids = Vec::new();
    for (position, concurrency) in params.concurrencies.iter().enumerate() {
        scenario_ids.push(
            store
                .create_scenario(run_id, position as i64, *concurrency, params)
                .await?,
        );
    }

    let mut run_error = None;
    let mut status = RunStatus::Done;
    for (position, (&concurrency, &scenario_id)) in
        params.concurrencies.iter().zip(&scenario_ids).enumerate()
    {
        if cancel.is_cancelled() {
            break;
        }
        observer.event(RunEvent::ScenarioStarted {
            position,
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
            dir: output_dir.join(scenario_name(concurrency)),
            module_dir: scenario_dir.clone(),
            observer,
        };
        let (scenario_status, failure) = scenario.execute(cancel).await?;
        store
            .finish_scenario(
                scenario_id,
                scenario_status,
                failure.as_ref().map(|f| f.message.as_str()),
                failure.as_ref().and_then(|f| f.log_tail.as_deref()),
            )
            .await?;
        observer.event(RunEvent::ScenarioEnded {
            position,
            status: scenario_status,
            error: failure.as_ref().map(|f| f.message.clone()),
        });
        match scenario_status {
            ScenarioStatus::Interrupted => status = RunStatus::Interrupted,
            ScenarioStatus::Failed => {
                status = RunStatus::Failed;
                let failure = failure.unwrap_or_else(|| Failure::new("failed"));
                run_error.get_or_insert(format!(
                    "{}: {}",
                    scenario_name(concurrency),
                    failure.message
                ));
                if failure.ends_run {
                    break;
                }
            }
            _ => {}
        }
    }
    if cancel.is_cancelled() {
        status = RunStatus::Interrupted;
        run_error.get_or_insert_with(|| "stopped before the end".to_string());
    }
    store
        .close_open_scenarios(run_id, ScenarioStatus::Skipped)
        .await?;
    store
        .finish_run(run_id, status, run_error.as_deref())
        .await?;
    reports::write_run_outputs(store, run_id, &output_dir).await?;
    Ok(RunOutcome {
        run_id,
        status,
        output_dir,
        error: run_error,
    })
}

struct ScenarioRun<'a> {
    store: &'a Store,
    setup: &'a LabSetup,
    params: &'a RunParams,
    scenario_id: i64,
    position: usize,
    concurrency: u32,
    dir: PathBuf,
    module_dir: PathBuf,
    observer: &'a dyn RunObserver,
}

/// The lab's children for one scenario, with their store ids.
#[derive(Default)]
struct Children {
    list: Vec<(Supervised, i64)>,
}

impl Children {
    fn get(&mut self, kind: ProcessKind) -> Option<&mut Supervised> {
        self.list
            .iter_mut()
            .map(|(c, _)| c)
            .find(|c| c.kind == kind)
    }

    /// The first child that has exited, with its exit status.
    fn first_exit(&mut self) -> Option<(ProcessKind, std::process::ExitStatus)> {
        self.list
            .iter_mut()
            .find_map(|(c, _)| c.try_exit().map(|s| (c.kind, s)))
    }
}

fn exit_failure(child: &Supervised, status: &std::process::ExitStatus, when: &str) -> Failure {
    Failure {
        message: format!(
            "{} {} {when} ({}); see {}",
            child.kind,
            supervisor::describe_exit(status),
            child.command,
            child.log_path.display()
        ),
        log_tail: Some(child.log_tail(LOG_TAIL_LINES)),
        ends_run: false,
    }
}

impl ScenarioRun<'_> {
    async fn execute(
        &self,
        cancel: &CancellationToken,
    ) -> Result<(ScenarioStatus, Option<Failure>), RunError> {
        // 1. Ports: a busy one is an error naming its holder; nothing is killed.
        let busy: Vec<String> = LAB_PORTS
            .iter()
            .filter_map(|(port, purpose)| {
                let holders = ports::listeners(*port);
                (!holders.is_empty()).then(|| {
                    let who: Vec<String> = holders.iter().map(ToString::to_string).collect();
                    format!("port {port} ({purpose}) is in use by {}", who.join(", "))
                })
            })
            .collect();
        if !busy.is_empty() {
            return Ok((
                ScenarioStatus::Failed,
                Some(Failure {
                    message: format!(
                        "{}; stop it, or run `mite-perf cleanup` if the lab left it behind",
                        busy.join("; ")
                    ),
                    log_tail: None,
                    ends_run: true,
                }),
            ));
        }
        let collector_dir = self.dir.join("collector");
        std::fs::create_dir_all(&collector_dir).map_err(|source| RunError::Io {
            path: collector_dir.clone(),
            source,
        })?;

        let mut children = Children::default();
        let result = self.start_and_sample(&mut children, cancel).await;

        // 2. Stop whatever is still running, in two stages, and record how each ended.
        let mut stopped: Vec<Supervised> = Vec::new();
        let mut ids = Vec::new();
        for (child, id) in children.list.drain(..) {
            stopped.push(child);
            ids.push(id);
        }
        supervisor::stop_all(&mut stopped, STOP_GRACE).await;
        for (child, id) in stopped.iter_mut().zip(ids) {
            let exit = child
                .try_exit()
                .map(|s| supervisor::describe_exit(&s))
                .unwrap_or_else(|| "did not end after SIGKILL".to_string());
            self.store.end_process(id, &exit).await?;
        }
        reports::trim_collector_dir(&collector_dir, self.params.collector_keep_mib, true);

        // 3. The ports must be free again.
        let ports_error = wait_ports_free().await.err();
        let outcome = match (result, ports_error) {
            (Ok(Ending::Cancelled), _) => (ScenarioStatus::Interrupted, None),
            (Err(failure), _) => (ScenarioStatus::Failed, Some(failure)),
            (Ok(Ending::Finished), Some(message)) => (
                ScenarioStatus::Failed,
                Some(Failure {
                    message,
                    log_tail: None,
                    ends_run: true,
                }),
            ),
            (Ok(Ending::Finished), None) => (ScenarioStatus::Done, None),
        };
        Ok(outcome)
    }

    fn mite_env(&self) -> Vec<(String, String)> {
        vec![
            ("PATH".into(), self.setup.mite.path_var()),
            ("PYTHONPATH".into(), self.module_dir.display().to_string()),
            ("PYTHONUNBUFFERED".into(), "1".into()),
            (
                "MITE_CONF_mite_perf_target_url".into(),
                format!("http://127.0.0.1:{TARGET_PORT}/"),
            ),
            (
                "MITE_CONF_mite_perf_concurrency".into(),
                self.concurrency.to_string(),
            ),
            (
                "MITE_CONF_mite_perf_duration".into(),
                format!("{}", self.params.duration().as_secs_f64()),
            ),
        ]
    }

    fn mite_spec(&self, kind: ProcessKind, args: Vec<String>) -> ChildSpec {
        ChildSpec {
            kind,
            program: self.setup.mite.mite(),
            args,
            cwd: self.module_dir.clone(),
            env: self.mite_env(),
            log_path: self.dir.join(format!("{kind}.log")),
            pipe_stdin: false,
            pipe_stdout: false,
        }
    }

    async fn spawn(
        &self,
        children: &mut Children,
        spec: &ChildSpec,
    ) -> Result<
        (
            Option<tokio::process::ChildStdin>,
            Option<tokio::process::ChildStdout>,
        ),
        Failure,
    > {
        let (child, stdin, stdout) =
            supervisor::spawn(spec).map_err(|e| Failure::new(e.to_string()))?;
        // Recorded before anything else, so `cleanup` can find it if the lab dies.
        let id = self
            .store
            .record_process(
                self.scenario_id,
                child.kind,
                child.pid,
                child.start_ticks,
                &child.command,
                &child.log_path.display().to_string(),
            )
            .await
            .map_err(|e| Failure::new(format!("cannot record {}: {e}", child.kind)))?;
        children.list.push((child, id));
        Ok((stdin, stdout))
    }

    /// Polls `ready` until it holds, failing if a child exits, the deadline
    /// passes, or the run is cancelled.
    async fn wait_ready(
        &self,
        children: &mut Children,
        cancel: &CancellationToken,
        what: &str,
        mut ready: impl FnMut(&mut Children) -> bool,
    ) -> Result<Option<Ending>, Failure> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if cancel.is_cancelled() {
                return Ok(Some(Ending::Cancelled));
            }
            if let Some((kind, status)) = children.first_exit() {
                let child = children.get(kind).expect("the child that exited is listed");
                return Err(exit_failure(child, &status, &format!("while {what}")));
            }
            if ready(children) {
                return Ok(None);
            }
            if Instant::now() > deadline {
                return Err(Failure::new(format!(
                    "timed out after {} s {what}",
                    READY_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn start_and_sample(
        &self,
        children: &mut Children,
        cancel: &CancellationToken,
    ) -> Result<Ending, Failure> {
        // Target first: mite's journeys need it from their first request.
        let target_log = self.dir.join("http.log");
        let target_spec = match &self.params.target {
            TargetSpec::Builtin => ChildSpec {
                kind: ProcessKind::Http,
                program: self.setup.self_exe.clone(),
                args: vec!["target".into(), "--port".into(), TARGET_PORT.to_string()],
                cwd: self.dir.clone(),
                env: vec![],
                log_path: target_log.clone(),
                pipe_stdin: true,
                pipe_stdout: true,
            },
            TargetSpec::Command(cmd) => ChildSpec {
                kind: ProcessKind::Http,
                program: "/bin/sh".into(),
                // `exec` makes the server itself the process the lab samples.
                args: vec!["-c".into(), format!("exec {cmd}")],
                cwd: self.module_dir.clone(),
                env: vec![
                    ("PATH".into(), self.setup.mite.path_var()),
                    ("PYTHONUNBUFFERED".into(), "1".into()),
                ],
                log_path: target_log.clone(),
                pipe_stdin: false,
                pipe_stdout: true,
            },
        };
        let (stdin, stdout) = self.spawn(children, &target_spec).await?;
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&target_log)
            .map_err(|e| Failure::new(format!("cannot open {}: {e}", target_log.display())))?;
        let stdout = stdout.ok_or_else(|| Failure::new("the target's stdout was not captured"))?;
        let mut counter = RequestCounter::new(stdout, stdin, log);
        if let Some(end) = self
            .wait_ready(
                children,
                cancel,
                "waiting for the target to listen on 9898",
                |_| TcpStream::connect(("127.0.0.1", TARGET_PORT)).is_ok(),
            )
            .await?
        {
            return Ok(end);
        }

        // mite: duplicator, collector, runner, then the controller (MITE-NOTES.md).
        let duplicator = self.mite_spec(
            ProcessKind::Duplicator,
            vec![
                "duplicator".into(),
                format!("--message-socket=tcp://127.0.0.1:{MESSAGE_PORT}"),
                format!("tcp://127.0.0.1:{COLLECTOR_PORT}"),
            ],
        );
        self.spawn(children, &duplicator).await?;
        if let Some(end) = self
            .wait_ready(
                children,
                cancel,
                "waiting for the duplicator to bind",
                |c| {
                    c.get(ProcessKind::Duplicator).is_some_and(|d| {
                        ports::is_listening(d.pid, MESSAGE_PORT)
                            && ports::is_listening(d.pid, COLLECTOR_PORT)
                    })
                },
            )
            .await?
        {
            return Ok(end);
        }

        let collector = self.mite_spec(
            ProcessKind::Collector,
            vec![
                "collector".into(),
                format!("--collector-socket=tcp://127.0.0.1:{COLLECTOR_PORT}"),
                format!("--collector-dir={}", self.dir.join("collector").display()),
                format!("--collector-roll={COLLECTOR_ROLL}"),
            ],
        );
        self.spawn(children, &collector).await?;
        if let Some(end) = self
            .wait_ready(
                children,
                cancel,
                "waiting for the collector to connect",
                |c| {
                    c.get(ProcessKind::Collector)
                        .is_some_and(|d| ports::is_connected_to(d.pid, COLLECTOR_PORT))
                },
            )
            .await?
        {
            return Ok(end);
        }

        let runner = self.mite_spec(
            ProcessKind::Runner,
            vec![
                "runner".into(),
                format!("--message-socket=tcp://127.0.0.1:{MESSAGE_PORT}"),
                format!("--controller-socket=tcp://127.0.0.1:{CONTROLLER_PORT}"),
            ],
        );
        self.spawn(children, &runner).await?;
        if let Some(end) = self
            .wait_ready(children, cancel, "waiting for the runner to connect", |c| {
                c.get(ProcessKind::Runner)
                    .is_some_and(|d| ports::is_connected_to(d.pid, MESSAGE_PORT))
            })
            .await?
        {
            return Ok(end);
        }

        let spec = match &self.params.scenario {
            ScenarioSpec::Builtin => BUILTIN_SCENARIO.to_string(),
            ScenarioSpec::Custom { spec, .. } => spec.clone(),
        };
        let controller = self.mite_spec(
            ProcessKind::Controller,
            vec![
                "controller".into(),
                format!("--spawn-rate={}", self.params.spawn_rate),
                format!("--message-socket=tcp://127.0.0.1:{MESSAGE_PORT}"),
                format!("--controller-socket=tcp://127.0.0.1:{CONTROLLER_PORT}"),
                spec,
            ],
        );
        self.spawn(children, &controller).await?;
        self.sample(children, &mut counter, cancel).await
    }

    async fn sample(
        &self,
        children: &mut Children,
        counter: &mut RequestCounter,
        cancel: &CancellationToken,
    ) -> Result<Ending, Failure> {
        let interval = self.params.interval();
        let duration = self.params.duration();
        let start = Instant::now();
        let started_at = now_ms();
        self.store
            .start_scenario(self.scenario_id, started_at)
            .await
            .map_err(|e| Failure::new(format!("cannot record the scenario start: {e}")))?;

        let mut sampler = ProcessSampler::new();
        let pids: Vec<u32> = children.list.iter().map(|(c, _)| c.pid).collect();
        sampler.measure(&pids);
        let count_wait = (interval / 2).min(Duration::from_millis(200));
        let baseline = counter.count(count_wait).await.unwrap_or(0);
        let mut previous = 0u64;

        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::from_std(start + interval), interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let deadline = start + duration + CONTROLLER_GRACE;
        let collector_dir = self.dir.join("collector");
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = cancel.cancelled() => return Ok(Ending::Cancelled),
            }
            ticks += 1;
            let at_ms = now_ms();
            let elapsed = start.elapsed();
            let served = counter
                .count(count_wait)
                .await
                .map(|n| n.saturating_sub(baseline));
            let running: Vec<(ProcessKind, u32)> = children
                .list
                .iter_mut()
                .filter_map(|(c, _)| c.is_running().then_some((c.kind, c.pid)))
                .collect();
            let pids: Vec<u32> = running.iter().map(|(_, pid)| *pid).collect();
            let readings = sampler.measure(&pids);
            let in_interval = served.map(|n| n.saturating_sub(previous));
            if let Some(n) = served {
                previous = n;
            }
            let samples: Vec<Sample> = running
                .iter()
                .filter_map(|(kind, pid)| {
                    let reading = readings.get(pid)?;
                    let is_target = *kind == ProcessKind::Http;
                    Some(Sample {
                        process: *kind,
                        pid: i64::from(*pid),
                        at_ms,
                        elapsed_ms: elapsed.as_millis() as i64,
                        cpu: reading.cpu,
                        mem: reading.rss as i64,
                        requests: served.filter(|_| is_target).map(|n| n as i64),
                        requests_in_interval: in_interval.filter(|_| is_target).map(|n| n as i64),
                    })
                })
                .collect();
            self.store
                .insert_samples(self.scenario_id, &samples)
                .await
                .map_err(|e| Failure::new(format!("cannot store samples: {e}")))?;
            self.observer.event(RunEvent::Tick {
                position: self.position,
                elapsed,
                requests_per_second: in_interval.unwrap_or(0) as f64 / interval.as_secs_f64(),
                requests: served.unwrap_or(0),
            });
            if ticks.is_multiple_of(5) {
                reports::trim_collector_dir(&collector_dir, self.params.collector_keep_mib, false);
            }

            // How is everyone doing? The controller ending (exit 0) ends the
            // scenario; a runner may end first, cleanly; anything else is a failure.
            let mut controller_done = false;
            for (child, _) in children.list.iter_mut() {
                let Some(status) = child.try_exit() else {
                    continue;
                };
                match child.kind {
                    ProcessKind::Controller if status.success() => controller_done = true,
                    ProcessKind::Runner if status.success() => {}
                    _ => return Err(exit_failure(child, &status, "during the scenario")),
                }
            }
            if controller_done {
                if let Some(runner) = children.get(ProcessKind::Runner) {
                    runner.wait_timeout(Duration::from_secs(15)).await;
                }
                return Ok(Ending::Finished);
            }
            if Instant::now() > deadline {
                return Err(Failure::new(format!(
                    "the controller did not end within {} s after the scenario's {} s",
                    CONTROLLER_GRACE.as_secs(),
                    duration.as_secs_f64()
                )));
            }
        }
    }
}

/// Waits until none of the lab's ports has a listener; the error names who holds them.
pub async fn wait_ports_free() -> Result<(), String> {
    let deadline = Instant::now() + PORTS_FREE_TIMEOUT;
    loop {
        let held: Vec<String> = LAB_PORTS
            .iter()
            .filter_map(|(port, _)| {
                let holders = ports::listeners(*port);
                (!holders.is_empty()).then(|| {
                    let who: Vec<String> = holders.iter().map(ToString::to_string).collect();
                    format!("port {port} is still held by {}", who.join(", "))
                })
            })
            .collect();
        if held.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(held.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
