//! One scenario: preflight → launch → sample → teardown → verdict.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::launch::{self, blame_exited_child, EXIT_PATIENCE};
use super::plan::{sandboxed, scenario_jail, scenario_plan, under_valgrind, PlanInputs, BUS_AFTER};
use super::sample::{self, SamplingContext};
use super::sink::SampleSink;
use super::teardown;
use super::verdict::{scenario_verdict, Ending, Failure};
use super::{LabSetup, RunObserver};
use crate::bus::dropped::dropped_for;
use crate::bus::reader::endpoint as bus_endpoint;
use crate::bus::BusReader;
use crate::children::{self, Children};
use crate::clock::now_ms;
use crate::figures::{RunningFigures, ScenarioFigures};
use crate::mite_env::MiteEnv;
use crate::model::{ProcessKind, RunParams, ScenarioStatus};
use crate::ports::Tables;
use crate::profile::capture::Profilers;
use crate::profile::py_spy::{self, Reach};
use crate::profile::started;
use crate::sandbox::ScenarioNet;
use crate::store::{SampleBatch, Store};
use crate::target::RequestCounter;

/// How many times as long mite's processes take to start under Valgrind,
/// at most (their readiness deadline grows as much).
const VALGRIND_SLOWDOWN: u32 = 20;
/// How long a scenario's queued samples may take to reach the database
/// once it ended.
const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long the bus reader may take to connect to the duplicator's output.
const BUS_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// A scenario's last messages have arrived once none came for this long…
const BUS_QUIET: std::time::Duration = std::time::Duration::from_millis(500);
/// …or this long passed.
const BUS_DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct ScenarioRun<'a> {
    pub store: &'a Store,
    pub setup: &'a LabSetup,
    pub params: &'a RunParams,
    pub scenario_id: i64,
    pub position: usize,
    pub concurrency: u32,
    /// Fixed work: the requests it makes (`None`: it runs for the duration).
    pub requests: Option<u64>,
    /// The mite build this scenario measures.
    pub mite: &'a MiteEnv,
    /// The scenario's folder: logs and collector data.
    pub dir: PathBuf,
    pub module_dir: &'a Path,
    pub observer: &'a dyn RunObserver,
    pub sink: &'a SampleSink,
}

/// How a scenario ended.
pub struct ScenarioResult {
    pub status: ScenarioStatus,
    pub failure: Option<Failure>,
    pub figures: ScenarioFigures,
    /// The CPU counters' readings at the ticks, for the figures over the
    /// steady window once every sample is stored.
    pub counter_readings: Vec<domain::instrument::CounterReading>,
}

impl ScenarioRun<'_> {
    #[tracing::instrument(
        name = "scenario",
        skip_all,
        fields(scenario = self.scenario_id, concurrency = self.concurrency)
    )]
    pub async fn execute(&self, cancel: &CancellationToken) -> ScenarioResult {
        let mut figures = RunningFigures::default();
        // A sandboxed scenario's children have a network of their own: its
        // ports are theirs alone, free whatever the host holds.
        let network = match self.network().await {
            Ok(network) => network,
            Err(failure) => return self.result(ScenarioStatus::Failed, Some(failure), &figures),
        };
        let tables = network
            .as_ref()
            .map_or(Tables::Host, |n| Tables::Of(n.inside_pid()));
        if let Err(failure) = self.preflight(tables) {
            return self.result(ScenarioStatus::Failed, Some(failure), &figures);
        }
        let mut children = Children::default();
        let mut profilers = Profilers::default();
        let sampling = self
            .launch_and_sample(
                &mut children,
                &mut profilers,
                network.as_ref(),
                cancel,
                &mut figures,
            )
            .await;
        // Attached py-spies first: they write their stacks while the
        // profiled still run (those started under py-spy write theirs as
        // they end).
        profilers.stop(self.store).await;
        children::stop_children(self.store, &mut children).await;
        profilers.save(self.store, self.scenario_id).await;
        // What Valgrind counted, written by each process as it exited.
        if self.params.valgrind {
            figures.set_instruction_totals(super::instructions::scenario_totals(&self.dir));
        }
        teardown::bound_collector_data(&self.collector_dir(), self.params.collector);
        let ports_free = teardown::wait_ports_free(&self.setup.host.ports, tables).await;
        drop(network);
        // Whatever was measured reaches the database before the verdict.
        let mut stored = self
            .sink
            .flush(FLUSH_TIMEOUT)
            .await
            .map_err(|e| e.to_string());
        if stored.is_ok() {
            let (bus_missed, collector_dropped) = self.dropped_messages();
            stored = self
                .store
                .record_dropped_messages(self.scenario_id, bus_missed, collector_dropped)
                .await
                .map_err(|e| format!("cannot record the messages mite dropped: {e}"));
        }
        let (status, failure) = match (scenario_verdict(sampling, ports_free), stored) {
            (verdict, Ok(())) => verdict,
            ((ScenarioStatus::Interrupted, _), Err(_)) => (ScenarioStatus::Interrupted, None),
            ((_, failure), Err(lost)) => (
                ScenarioStatus::Failed,
                Some(failure.unwrap_or_else(|| Failure::new(lost))),
            ),
        };
        self.result(status, failure, &figures)
    }

    fn result(
        &self,
        status: ScenarioStatus,
        failure: Option<Failure>,
        figures: &RunningFigures,
    ) -> ScenarioResult {
        ScenarioResult {
            status,
            failure,
            figures: figures.figures(),
            counter_readings: figures.counter_readings().to_vec(),
        }
    }

    fn collector_dir(&self) -> PathBuf {
        super::plan::collector_dir(&self.dir)
    }

    /// The scenario's own network, where this host sandboxes measured code.
    /// Made off the run's runtime (bubblewrap starting on a busy machine
    /// takes a while), which renews the run's lease meanwhile.
    async fn network(&self) -> Result<Option<Arc<ScenarioNet>>, Failure> {
        let Some(sandbox) = self.setup.isolation.sandbox() else {
            return Ok(None);
        };
        let bwrap = sandbox.bwrap().to_path_buf();
        tokio::task::spawn_blocking(move || ScenarioNet::create(&bwrap))
            .await
            .map_err(|e| Failure::ending_run(e.to_string()))?
            .map(|n| Some(Arc::new(n)))
            .map_err(|e| Failure::ending_run(e.to_string()))
    }

    /// The ports must be free: a busy one fails the run with its holder
    /// named, and nothing is killed.
    fn preflight(&self, tables: Tables) -> Result<(), Failure> {
        let busy = teardown::held_ports(&self.setup.host.ports, tables, "is in use by");
        if !busy.is_empty() {
            return Err(Failure::ending_run(format!(
                "{}; stop it, or run `mite-perf cleanup` if the lab left it behind",
                busy.join("; ")
            )));
        }
        // The folders the collector, the target and Valgrind write in (a
        // sandbox binds only what exists).
        for folder in [
            self.collector_dir(),
            super::plan::target_dir(&self.dir),
            super::plan::instruments_dir(&self.dir),
        ] {
            std::fs::create_dir_all(&folder).map_err(|e| {
                Failure::ending_run(format!("cannot create {}: {e}", folder.display()))
            })?;
        }
        Ok(())
    }

    #[tracing::instrument(name = "sampling", skip_all)]
    async fn launch_and_sample(
        &self,
        children: &mut Children,
        profilers: &mut Profilers,
        network: Option<&Arc<ScenarioNet>>,
        cancel: &CancellationToken,
        figures: &mut RunningFigures,
    ) -> Result<Ending, Failure> {
        let inputs = PlanInputs {
            params: self.params,
            concurrency: self.concurrency,
            requests: self.requests,
            dir: &self.dir,
            module_dir: self.module_dir,
            mite: self.mite.mite(),
            path_var: self.mite.path_var(),
            self_exe: &self.setup.self_exe,
            ports: self.setup.host.ports,
        };
        let mut plan = scenario_plan(&inputs);
        let reach = self
            .params
            .profile
            .as_ref()
            .map(|_| py_spy::reach(network.is_some()));
        if let (Some(spec), Some(Ok(Reach::StartUnder))) = (&self.params.profile, &reach) {
            let py_spy = py_spy::py_spy();
            for stage in &mut plan {
                if spec.processes.contains(&stage.spec.kind) {
                    let output =
                        py_spy::profile_file(&self.dir, stage.spec.kind, py_spy::PID_PLACEHOLDER);
                    stage.spec = started::wrap(
                        &stage.spec,
                        &py_spy,
                        &self.setup.self_exe,
                        spec.rate,
                        &output,
                    );
                }
            }
        }
        if self.params.valgrind {
            let valgrind = super::instructions::valgrind().ok_or_else(|| {
                Failure::ending_run("Valgrind is not installed: run scripts/setup")
            })?;
            plan = under_valgrind(plan, &valgrind, &self.dir);
        }
        if let (Some(sandbox), Some(network)) = (self.setup.isolation.sandbox(), network) {
            let jail = |kind| scenario_jail(kind, &inputs, &self.mite.venv);
            plan = sandboxed(plan, sandbox, jail, network);
        }
        // Every child but the controller starts at once (none of them
        // sends a message before the controller hands out work); the bus
        // reader connects once the duplicator is up, and the controller
        // starts once every other child is ready.
        let controller_at = plan
            .iter()
            .position(|stage| stage.spec.kind == ProcessKind::Controller)
            .unwrap_or(plan.len());
        let last = plan.split_off(controller_at);
        let bus_after = plan
            .iter()
            .position(|stage| stage.spec.kind == BUS_AFTER)
            .map_or(plan.len(), |i| i + 1);
        let ready_timeout = self.ready_timeout();
        let started = launch::start(plan, self.store, self.scenario_id, children).await?;
        let (before_bus, after_bus) = started.split_at(bus_after);
        if let Some(ending) =
            launch::wait_ready(before_bus, ready_timeout, cancel, children).await?
        {
            return Ok(ending);
        }
        let bus = if self.params.read_bus {
            let connected = BusReader::connect(
                self.setup.host.ports.bus,
                BUS_CONNECT_TIMEOUT,
                network.map(|n| (n.clone(), self.setup.self_exe.clone())),
            )
            .await;
            match connected {
                Ok(reader) => Some(reader),
                // A refused connection is most often the duplicator gone:
                // it is the error, with its own words (FAULTS.md 60).
                Err(e) => {
                    return Err(blame_exited_child(
                        children,
                        "before the lab's bus reader could connect to mite's duplicator",
                        Failure::new(e.to_string()),
                        EXIT_PATIENCE,
                    )
                    .await)
                }
            }
        } else {
            None
        };
        if let Some(ending) = launch::wait_ready(after_bus, ready_timeout, cancel, children).await?
        {
            return Ok(ending);
        }
        let last = launch::start(last, self.store, self.scenario_id, children).await?;
        if let Some(ending) = launch::wait_ready(&last, ready_timeout, cancel, children).await? {
            return Ok(ending);
        }
        match (&self.params.profile, reach) {
            (Some(spec), Some(Ok(Reach::StartUnder))) => {
                *profilers = Profilers::started_under(spec, children, &self.dir);
            }
            (Some(spec), _) => {
                // The processes the lab measures: in a sandbox, the
                // command bubblewrap runs.
                let targets: Vec<(ProcessKind, u32)> = children
                    .list
                    .iter_mut()
                    .filter_map(|l| Some((l.child.kind, l.child.measured_pid()?)))
                    .collect();
                *profilers =
                    Profilers::attach(spec, &targets, &self.dir, self.store, self.scenario_id)
                        .await;
            }
            (None, _) => {}
        }
        let started = match self.request_counter(children) {
            Ok(counter) => self
                .store
                .start_scenario(self.scenario_id, now_ms())
                .await
                .map(|()| counter)
                .map_err(|e| Failure::new(format!("cannot record the scenario's start: {e}"))),
            Err(failure) => Err(failure),
        };
        let mut counter = match started {
            Ok(counter) => counter,
            Err(failure) => {
                return Err(blame_exited_child(
                    children,
                    "before the lab began sampling",
                    failure,
                    EXIT_PATIENCE,
                )
                .await)
            }
        };
        let collector_dir = self.collector_dir();
        let ctx = SamplingContext {
            scenario_id: self.scenario_id,
            position: self.position,
            interval: self.params.interval(),
            duration: self.params.duration(),
            controller_grace: self.setup.limits.controller_grace,
            collector_dir: &collector_dir,
            collector_keep: self.params.collector,
            observer: self.observer,
            sink: self.sink,
            bus: bus.as_ref(),
            count_instructions: !self.params.valgrind && crate::counters::hardware().is_ok(),
        };
        let ending = sample::sample(&ctx, children, &mut counter, cancel, figures).await;
        // A scenario that ended by itself has its runner's last messages on
        // the way: wait for them. Otherwise keep what arrived.
        let quiet = matches!(ending, Ok(Ending::Finished)).then_some(BUS_QUIET);
        // Always stored when read: with the last rows come the final counts.
        if let Some(reader) = bus {
            let last = reader.finish(quiet, BUS_DRAIN_LIMIT).await;
            figures.set_latency_p99_ms(last.steady_p99_ms);
            self.sink
                .push(SampleBatch {
                    scenario_id: self.scenario_id,
                    samples: Vec::new(),
                    figures: None,
                    bus: Some(last),
                })
                .map_err(|overflow| Failure::new(overflow.to_string()))?;
        }
        ending
    }

    /// How long each child has to be ready: Python imports under Valgrind
    /// take dozens of times as long.
    fn ready_timeout(&self) -> std::time::Duration {
        if self.params.valgrind {
            self.setup.limits.ready_timeout * VALGRIND_SLOWDOWN
        } else {
            self.setup.limits.ready_timeout
        }
    }

    /// The messages the duplicator dropped, from its log: those for the
    /// lab's bus reader (the lab missed them) and for the collector.
    fn dropped_messages(&self) -> (u64, u64) {
        let log = self.dir.join(format!("{}.log", ProcessKind::Duplicator));
        let ports = self.setup.host.ports;
        (
            dropped_for(&log, &bus_endpoint(ports.bus)),
            dropped_for(&log, &bus_endpoint(ports.collector)),
        )
    }

    /// Reads the target's request counts from its stdout (a copy of every
    /// line goes to its log), asking the built-in target through its stdin.
    fn request_counter(&self, children: &mut Children) -> Result<RequestCounter, Failure> {
        let target = children
            .list
            .iter_mut()
            .find(|l| l.child.kind == ProcessKind::Target)
            .ok_or_else(|| Failure::new("the target was not started"))?;
        let log_path = target.child.log_path.clone();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&log_path)
            .map_err(|e| Failure::new(format!("cannot open {}: {e}", log_path.display())))?;
        let stdout = target
            .stdout
            .take()
            .ok_or_else(|| Failure::new("the target's stdout was not captured"))?;
        Ok(RequestCounter::new(stdout, target.stdin.take(), log))
    }
}
