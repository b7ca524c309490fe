//! The lab's vocabulary: what a run asks for and the states it goes through.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::builds::scenario_name;
use crate::builds::{self, MiteBuild, Slot};
use crate::defaults;
use crate::dependencies::{parse_moment, DependencyChoice};
pub use crate::process::ProcessKind;
use crate::text_enum::text_enum;

/// The smallest sampling interval the lab accepts.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// The most scenarios one run may have.
pub const MAX_SCENARIOS: usize = 50;
/// The most scenarios one run may have counting builds and repeats.
pub const MAX_RUN_SCENARIOS: usize = 400;
/// The largest concurrency the lab accepts for one scenario.
pub const MAX_CONCURRENCY: u32 = 100_000;
/// The longest scenario the lab accepts.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Which HTTP server mite's journeys load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetSpec {
    /// The lab's own Rust server (`mite-perf target`).
    Builtin,
    /// A shell command starting a server on port 9898 that prints
    /// `TIMESTAMP: served N requests` lines on stdout.
    Command(String),
}

/// Which mite scenario the controller runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioSpec {
    /// The module shipped with the lab: GET the target in a transaction,
    /// constant concurrency until the duration has passed.
    Builtin,
    /// A user's `module:function`, importable from `dir`.
    Custom { spec: String, dir: PathBuf },
    /// A `module:function` from the scenario library of the agent executing
    /// the run (found in its `--scenario-dir` folders when the run starts).
    Library { spec: String },
}

/// How much of the files mite's collector writes (every message, ~0.9 KB a
/// request) a scenario keeps once it is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectorKeep {
    /// Every file.
    All,
    /// The newest files up to this many MiB; older ones go first, during the
    /// scenario too.
    LastMib(u64),
    /// No file: the collector still runs (it is part of what is measured),
    /// its files are deleted as it rolls them and at the end.
    Nothing,
}

impl Default for CollectorKeep {
    fn default() -> Self {
        CollectorKeep::LastMib(defaults::COLLECTOR_KEEP_MIB)
    }
}

impl<'de> Deserialize<'de> for CollectorKeep {
    /// Also reads the MiB number runs were stored with before (0: nothing).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Keep {
            All,
            LastMib(u64),
            Nothing,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Mib(u64),
            Keep(Keep),
        }
        Ok(match Stored::deserialize(d)? {
            Stored::Mib(mib) => CollectorKeep::from_mib(mib),
            Stored::Keep(Keep::All) => CollectorKeep::All,
            Stored::Keep(Keep::LastMib(mib)) => CollectorKeep::from_mib(mib),
            Stored::Keep(Keep::Nothing) => CollectorKeep::Nothing,
        })
    }
}

impl CollectorKeep {
    /// The most a run may keep per scenario when it names a size (1 TiB).
    pub const MOST_MIB: u64 = 1024 * 1024;

    fn from_mib(mib: u64) -> Self {
        if mib == 0 {
            CollectorKeep::Nothing
        } else {
            CollectorKeep::LastMib(mib)
        }
    }

    /// The bytes kept at most; `None`: all.
    pub fn limit_bytes(self) -> Option<u64> {
        match self {
            CollectorKeep::All => None,
            CollectorKeep::LastMib(mib) => Some(mib.saturating_mul(1024 * 1024)),
            CollectorKeep::Nothing => Some(0),
        }
    }

    /// Reads `all`, `none` or a size in MiB (`100`, `100MiB`, `100 MiB`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        match text.to_ascii_lowercase().as_str() {
            "" => return Err("say `all`, `none` or how many MiB to keep".into()),
            "all" => return Ok(CollectorKeep::All),
            "none" | "nothing" => return Ok(CollectorKeep::Nothing),
            _ => {}
        }
        let number = text
            .strip_suffix("MiB")
            .or_else(|| text.strip_suffix("mib"))
            .unwrap_or(text)
            .trim();
        match number.parse::<u64>() {
            Ok(mib) if mib <= Self::MOST_MIB => Ok(Self::from_mib(mib)),
            Ok(_) => Err(format!(
                "`{text}` is more than {} MiB: say `all` to keep every file",
                Self::MOST_MIB
            )),
            Err(_) => Err(format!(
                "`{text}` is not `all`, `none` or a size in MiB (100, 100MiB)"
            )),
        }
    }
}

impl fmt::Display for CollectorKeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CollectorKeep::All => f.write_str("all"),
            CollectorKeep::LastMib(mib) => write!(f, "the last {mib} MiB"),
            CollectorKeep::Nothing => f.write_str("none"),
        }
    }
}

/// One file of mite's collector data a scenario kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorFile {
    pub name: String,
    pub bytes: u64,
}

/// Everything a run is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunParams {
    pub label: String,
    /// Who asked for the run (the caller's name in the browser, `$USER` on the CLI).
    #[serde(default)]
    pub launched_by: String,
    /// The lab agent that must execute it (comparisons want one machine);
    /// `None`: whichever is free first.
    #[serde(default)]
    pub agent: Option<String>,
    /// One scenario per concurrency, in this order.
    pub concurrencies: Vec<u32>,
    pub duration_ms: u64,
    pub spawn_rate: u32,
    pub interval_ms: u64,
    pub target: TargetSpec,
    pub scenario: ScenarioSpec,
    /// How much of mite's collector data each scenario keeps. Runs stored
    /// before this choice existed said it in MiB (`collector_keep_mib`).
    #[serde(alias = "collector_keep_mib")]
    pub collector: CollectorKeep,
    /// The mite builds measured, taking turns; none means the pinned one.
    #[serde(default)]
    pub mite: Vec<MiteBuild>,
    /// How many times each scenario runs with each build.
    #[serde(default = "one")]
    pub repeats: u32,
    /// mite runners started against the one controller, as mite's users go
    /// past one core; each is sampled on its own.
    #[serde(default = "one")]
    pub runners: u32,
    /// py-spy samples the stacks of these processes (none: not profiled).
    #[serde(default)]
    pub profile: Option<crate::profile::ProfileSpec>,
    /// The lab reads mite's message bus (mite's own view). Off, mite's
    /// duplicator gets no output of the lab's and only the seed's
    /// measurement runs. Runs stored before the choice existed read it.
    #[serde(default = "reads_bus_by_default")]
    pub read_bus: bool,
    /// Fixed work: each scenario makes this many requests (journeys of
    /// one request each) and ends; the duration only bounds it. `None`:
    /// each scenario runs for the duration.
    #[serde(default)]
    pub requests: Option<u64>,
    /// mite's processes run under Valgrind, which counts the instructions
    /// each executes: fixed work only, each scenario run twice (N and 2N
    /// requests) so that start-up and shutdown cancel out
    /// ([`crate::instrument`]).
    #[serde(default)]
    pub valgrind: bool,
    /// Stop adding repeats to a concurrency once every figure is decided
    /// (`repeats` is then the most); none: every repeat runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopRule>,
    /// How the builds' dependencies are resolved: from the agent's
    /// snapshot (the default; runs stored before the choice existed), or
    /// as the index was at a moment (a backfill measuring each release
    /// with what it had when it came out).
    #[serde(default)]
    pub dependencies: DependencyChoice,
}

/// When a run stops adding repeats: after each round of a concurrency (a
/// repeat of each build), its builds are compared (or its one build
/// against another run) with the sequential test of docs/MEASURING.md, and
/// once every figure is decided, or cannot be by more repeats, the
/// concurrency's remaining repeats are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StopRule {
    /// The smallest change that counts (0.05).
    pub threshold: f64,
    /// Each figure's level (compare's), or the whole comparison's after the
    /// Benjamini–Hochberg correction (`gate`).
    pub alpha: f64,
    /// Judge as `ci check` does: corrected over every figure the run will
    /// measure, a busy machine deciding nothing, "no change" only when the
    /// figure could have seen the threshold.
    #[serde(default)]
    pub gate: bool,
    /// The run this run's one build is compared against (`--compare-to`);
    /// none: the run's two builds against each other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub against: Option<StopAgainst>,
}

/// Its threshold and alpha are checked finite ([`RunParams::validate`]),
/// so equality is an equivalence.
impl Eq for StopRule {}

/// The other side of a run that stops once decided: a run, or one build of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopAgainst {
    pub run_id: i64,
    /// Index into that run's builds; none: its only build.
    #[serde(default)]
    pub build: Option<usize>,
    /// Compared even when that run was measured on another machine.
    #[serde(default)]
    pub across_machines: bool,
}

impl StopRule {
    /// Every problem with this rule for a run of `builds` builds.
    pub fn problems(&self, builds: usize) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            problems.push(format!(
                "a threshold of {} is out of range: use more than 0 % and less than 100 %",
                self.threshold
            ));
        }
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            problems.push(format!(
                "a level of {} is out of range: use more than 0 and less than 0.5",
                self.alpha
            ));
        }
        match self.against {
            None if builds != 2 => problems.push(format!(
                "stopping once decided compares two builds: this run measures {builds}"
            )),
            Some(_) if builds != 1 => problems.push(format!(
                "stopping once decided against another run compares one build: this run \
                 measures {builds}"
            )),
            _ => {}
        }
        problems
    }
}

/// The most requests a fixed-work scenario may make.
pub const MAX_REQUESTS: u64 = 10_000_000;

fn reads_bus_by_default() -> bool {
    defaults::READ_BUS
}

/// `--bus on|off` (and the form's words for it): whether the lab reads
/// mite's message bus.
pub fn parse_bus(text: &str) -> Result<bool, String> {
    match text.trim() {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("`{other}` is not `on` or `off`")),
    }
}

/// The most runners one scenario may start.
pub const MAX_RUNNERS: u32 = 32;

fn one() -> u32 {
    1
}

impl Default for RunParams {
    fn default() -> Self {
        RunParams {
            label: String::new(),
            launched_by: String::new(),
            agent: None,
            concurrencies: defaults::CONCURRENCIES.to_vec(),
            duration_ms: defaults::DURATION_MS,
            spawn_rate: defaults::SPAWN_RATE,
            interval_ms: defaults::INTERVAL_MS,
            target: TargetSpec::Builtin,
            scenario: ScenarioSpec::Builtin,
            collector: CollectorKeep::default(),
            mite: vec![],
            repeats: defaults::REPEATS,
            runners: defaults::RUNNERS,
            profile: None,
            read_bus: defaults::READ_BUS,
            requests: None,
            valgrind: false,
            stop: None,
            dependencies: DependencyChoice::Snapshot,
        }
    }
}

/// A problem with one field of [`RunParams`], worded for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl RunParams {
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.duration_ms)
    }

    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    /// The builds measured (the pinned one when none is named).
    pub fn builds(&self) -> Vec<MiteBuild> {
        if self.mite.is_empty() {
            vec![MiteBuild::Pinned]
        } else {
            self.mite.clone()
        }
    }

    /// Every scenario of the run, in the order they run.
    pub fn slots(&self) -> Vec<Slot> {
        builds::plan(
            &self.concurrencies,
            self.builds().len(),
            self.repeats,
            &self.sizes(),
        )
    }

    /// The sizes of each scenario's fixed work: none (it runs for the
    /// duration), N requests, or under Valgrind the pair N and 2N (the
    /// first only to be taken from the second: see [`crate::instrument`]).
    pub fn sizes(&self) -> Vec<Option<u64>> {
        match (self.requests, self.valgrind) {
            (Some(n), true) => vec![Some(n), Some(n.saturating_mul(2))],
            (Some(n), false) => vec![Some(n)],
            (None, _) => vec![None],
        }
    }

    /// Whether a scenario of `requests` is the first of a Valgrind pair,
    /// whose counts only its second's figures use.
    pub fn is_half_of_pair(&self, requests: Option<u64>) -> bool {
        self.valgrind && requests.is_some() && requests == self.requests
    }

    /// Every problem with these parameters; empty when they can run.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut err = |field: &str, message: String| {
            errors.push(FieldError {
                field: field.to_string(),
                message,
            })
        };
        if self.concurrencies.is_empty() {
            err("concurrencies", "choose at least one concurrency".into());
        }
        if let Some(Err(why)) = self.agent.as_deref().map(crate::access::check_name) {
            err("agent", why);
        }
        if let Some(Err(why)) = self.dependencies.as_of().map(parse_moment) {
            err("dependencies", why);
        }
        if self.concurrencies.len() > MAX_SCENARIOS {
            err(
                "concurrencies",
                format!(
                    "{} scenarios is too many for one run: use at most {MAX_SCENARIOS}",
                    self.concurrencies.len()
                ),
            );
        }
        if let Some(c) = self
            .concurrencies
            .iter()
            .find(|c| **c == 0 || **c > MAX_CONCURRENCY)
        {
            err(
                "concurrencies",
                format!("concurrency {c} is out of range: use 1 to {MAX_CONCURRENCY}"),
            );
        }
        if self.duration_ms < 1000 || self.duration() > MAX_DURATION {
            err(
                "duration",
                format!(
                    "{} is out of range: use 1 s to {} h",
                    format_duration(self.duration()),
                    MAX_DURATION.as_secs() / 3600
                ),
            );
        }
        if self.interval() < MIN_INTERVAL || self.interval_ms > 60_000 {
            err(
                "interval",
                format!(
                    "{} is out of range: use 100 ms to 60 s",
                    format_duration(self.interval())
                ),
            );
        }
        for (field, message) in builds::validate(&self.mite, self.repeats) {
            err(field, message);
        }
        match self.requests {
            Some(n) if n == 0 || n > MAX_REQUESTS => err(
                "requests",
                format!("{n} requests is out of range: use 1 to {MAX_REQUESTS}"),
            ),
            None if self.valgrind => err(
                "requests",
                "Valgrind counts fixed work: say how many requests (--requests)".into(),
            ),
            _ => {}
        }
        if self.valgrind && self.profile.is_some() {
            err(
                "profile",
                "py-spy cannot read processes that run under Valgrind: profile another run".into(),
            );
        }
        let total = self.concurrencies.len()
            * self.builds().len()
            * self.repeats as usize
            * self.sizes().len();
        if total > MAX_RUN_SCENARIOS {
            err(
                "repeat",
                format!(
                    "{total} scenarios (concurrencies × builds × repeats) is too many for one \
                     run: use at most {MAX_RUN_SCENARIOS}"
                ),
            );
        }
        if self.runners == 0 || self.runners > MAX_RUNNERS {
            err(
                "runners",
                format!(
                    "{} runners is out of range: use 1 to {MAX_RUNNERS}",
                    self.runners
                ),
            );
        }
        if self.spawn_rate == 0 {
            err("spawn_rate", "must be at least 1 journey per second".into());
        }
        if self.label.len() > 200 {
            err("label", "keep it under 200 characters".into());
        }
        if self.launched_by.len() > 100 {
            err("launched_by", "keep it under 100 characters".into());
        }
        if let TargetSpec::Command(cmd) = &self.target {
            if cmd.trim().is_empty() {
                err("target_cmd", "the command is empty".into());
            }
        }
        if let Some(problem) = self.profile.as_ref().and_then(|p| p.problem()) {
            err("profile", problem);
        }
        if let Some(rule) = &self.stop {
            for problem in rule.problems(self.builds().len()) {
                err("until_decided", problem);
            }
        }
        if let ScenarioSpec::Library { spec } = &self.scenario {
            if !crate::library::is_scenario_spec(spec) {
                err(
                    "scenario",
                    format!("`{spec}` is not a module:function of the scenario library"),
                );
            }
        }
        if let ScenarioSpec::Custom { spec, dir } = &self.scenario {
            let well_formed = spec
                .split_once(':')
                .is_some_and(|(m, f)| !m.is_empty() && !f.is_empty());
            if !well_formed {
                err(
                    "scenario",
                    format!("`{spec}` is not of the form module:function"),
                );
            }
            // Only the server can see its folders.
            #[cfg(target_arch = "wasm32")]
            let _ = dir;
            #[cfg(not(target_arch = "wasm32"))]
            if !dir.is_dir() {
                err(
                    "scenario_dir",
                    format!("{} is not a directory", dir.display()),
                );
            }
        }
        errors
    }
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    /// Every scenario finished.
    Done,
    /// A scenario failed (a child exited early, a port was busy, ...).
    Failed,
    /// Stopped by Ctrl+C, SIGTERM or a cancel, or found abandoned by `cleanup`.
    Interrupted,
}

/// Where a scenario is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioStatus {
    Waiting,
    Running,
    Done,
    Failed,
    Interrupted,
    /// Never started because the run ended before it.
    Skipped,
}

text_enum!(RunStatus {
    Queued => "queued",
    Running => "running",
    Done => "done",
    Failed => "failed",
    Interrupted => "interrupted",
});

text_enum!(ScenarioStatus {
    Waiting => "waiting",
    Running => "running",
    Done => "done",
    Failed => "failed",
    Interrupted => "interrupted",
    Skipped => "skipped",
});

/// Parses durations such as `60`, `60s`, `500ms`, `2m`, `1h`, `90d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try 60s, 500ms, 2m)"))?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1000.0,
        "m" | "min" | "mins" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (use ms, s, m, h, d)"
            ))
        }
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("`{text}` is not a duration"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is far too long a duration"))
}

/// `1.5 s`, `100 ms`, `2 min`: short and readable.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms.is_multiple_of(60_000) && ms >= 60_000 {
        format!("{} min", ms / 60_000)
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

/// Parses `1,10,100,1000`.
pub fn parse_concurrencies(text: &str) -> Result<Vec<u32>, String> {
    text.split(',')
        .map(|part| {
            let part = part.trim();
            match part.parse::<u32>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!(
                    "`{part}` is not a positive whole number (scenarios look like 1,10,100,1000)"
                )),
            }
        })
        .collect()
}

/// One measurement of one process. `requests` (cumulative since the scenario
/// started) and `requests_in_interval` are set on the target's (`http`) rows only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub process: ProcessKind,
    pub pid: i64,
    pub at_ms: i64,
    pub elapsed_ms: i64,
    pub cpu: f64,
    pub mem: i64,
    pub requests: Option<i64>,
    pub requests_in_interval: Option<i64>,
    /// Threads, files, scheduling and IO (absent in samples taken before
    /// the lab read them, and where `/proc` would not say).
    #[serde(default)]
    pub detail: Option<ProcessDetail>,
}

/// What `/proc` says of a process beyond CPU and memory, at one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessDetail {
    /// Threads and open file descriptors at the tick.
    pub threads: i64,
    pub fds: i64,
    /// Percent of the interval its main thread waited for a CPU (runnable
    /// but not running): with its CPU, how much of a core it wanted.
    pub cpu_wait: f64,
    /// Since the previous tick, its main thread's context switches:
    /// voluntary (it waited for something) and involuntary (preempted).
    pub voluntary_switches: i64,
    pub involuntary_switches: i64,
    /// Since the previous tick, bytes it made storage read and write.
    pub read_bytes: i64,
    pub write_bytes: i64,
}

/// mite's own account of one transaction over one interval of a scenario,
/// read from its message bus. `transaction` is the name the journey gave it
/// (mite's `__root__ :: ` prefix left out; requests made outside any named
/// transaction are under [`NO_TRANSACTION`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionInterval {
    pub transaction: String,
    /// The interval's start, since the scenario started.
    pub elapsed_ms: i64,
    pub at_ms: i64,
    /// Responses received (any status).
    pub requests: i64,
    /// Responses with a status of 400 or more.
    pub errors: i64,
    /// `exception` and `error` messages (a connection refused, a raised error).
    pub exceptions: i64,
    /// Transactions that ended.
    pub transactions: i64,
    /// Latency of the responses (mite's `total_time`), in milliseconds;
    /// `None` without a response in the interval.
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// What mite's bus carried in a scenario, and what mite dropped on the way.
/// `None` where nothing was recorded (a scenario from before the lab read
/// mite's bus, or one that never started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusSummary {
    /// Messages the lab received, and how many it could not read.
    pub messages: Option<i64>,
    pub undecodable: Option<i64>,
    /// Journeys that ended.
    pub journeys: Option<i64>,
    /// Messages mite's duplicator dropped before the lab read them (must be 0).
    pub missed: Option<i64>,
    /// Messages mite's duplicator dropped before the collector got them.
    pub collector_dropped: Option<i64>,
    /// The controller's reports while its volume model ran, and how many of
    /// them had fewer journeys running than required.
    pub reports: Option<i64>,
    pub reports_short: Option<i64>,
    /// The lab's bus reader's CPU time over the scenario (ms).
    pub reader_cpu_ms: Option<i64>,
}

/// The name of requests made outside any named transaction.
pub const NO_TRANSACTION: &str = "(journey)";

/// Where mite's view counts the transactions of a scenario past the first
/// hundred names it saw (scenario code chooses the names: each costs the
/// lab memory and time at every tick): a row of this name says the
/// scenario had more.
pub const OTHER_TRANSACTIONS: &str = "(other transactions)";

/// Where mite's view counts a transaction's errors past the first hundred
/// kinds the scenario raised.
pub const OTHER_ERRORS: &str = "(other errors)";

/// One transaction over a whole scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionTotal {
    pub transaction: String,
    pub requests: i64,
    pub errors: i64,
    pub exceptions: i64,
    pub transactions: i64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_ms: Option<f64>,
}

/// How often one kind of error happened in one transaction over a scenario:
/// `HTTP 500`, or an exception's type (`AcurlError`), with one message seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCount {
    pub transaction: String,
    pub kind: String,
    pub count: i64,
    pub example: String,
}

/// The controller's report (about once a second): journeys the volume model
/// asked for against journeys the runners were running, and runners seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConcurrencyPoint {
    pub elapsed_ms: i64,
    pub at_ms: i64,
    pub required: i64,
    pub actual: i64,
    pub runners: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_keep_reads_words_sizes_and_the_old_mib_field() {
        assert_eq!(CollectorKeep::parse("all"), Ok(CollectorKeep::All));
        assert_eq!(CollectorKeep::parse(" None "), Ok(CollectorKeep::Nothing));
        assert_eq!(CollectorKeep::parse("0"), Ok(CollectorKeep::Nothing));
        assert_eq!(CollectorKeep::parse("250"), Ok(CollectorKeep::LastMib(250)));
        assert_eq!(CollectorKeep::parse("8 MiB"), Ok(CollectorKeep::LastMib(8)));
        assert!(CollectorKeep::parse("lots").is_err());
        assert!(CollectorKeep::parse("-1").is_err());
        assert!(CollectorKeep::parse("99999999999").is_err());
        assert_eq!(CollectorKeep::LastMib(2).limit_bytes(), Some(2 << 20));
        assert_eq!(CollectorKeep::All.limit_bytes(), None);

        // A run stored before the choice existed said MiB.
        let mut stored = serde_json::to_value(RunParams::default()).expect("json");
        let fields = stored.as_object_mut().expect("object");
        fields.remove("collector");
        fields.remove("read_bus");
        fields.insert("collector_keep_mib".into(), 0.into());
        let old: RunParams = serde_json::from_value(stored.clone()).expect("old");
        assert_eq!(old.collector, CollectorKeep::Nothing);
        stored["collector_keep_mib"] = 64.into();
        let old: RunParams = serde_json::from_value(stored).expect("old");
        assert_eq!(old.collector, CollectorKeep::LastMib(64));
        // Runs stored before `--bus off` existed read mite's bus.
        assert!(old.read_bus);
        for keep in [
            CollectorKeep::All,
            CollectorKeep::Nothing,
            CollectorKeep::LastMib(7),
        ] {
            let params = RunParams {
                collector: keep,
                ..RunParams::default()
            };
            let text = serde_json::to_string(&params).expect("json");
            let back: RunParams = serde_json::from_str(&text).expect("back");
            assert_eq!(back.collector, keep, "{text}");
        }
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        // Far beyond what a Duration holds: an error, not a panic.
        assert!(parse_duration("100000000000000000000").is_err());
        assert!(parse_duration("1e400s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }

    #[test]
    fn concurrencies_parse_and_reject_nonsense() {
        assert_eq!(parse_concurrencies("1,10, 100"), Ok(vec![1, 10, 100]));
        assert!(parse_concurrencies("1,0").is_err());
        assert!(parse_concurrencies("1,,2").is_err());
        assert!(parse_concurrencies("-3").is_err());
    }

    #[test]
    fn validation_names_each_bad_field() {
        let params = RunParams {
            concurrencies: vec![],
            duration_ms: 10,
            interval_ms: 50,
            spawn_rate: 0,
            scenario: ScenarioSpec::Custom {
                spec: "nocolon".into(),
                dir: "/definitely/not/here".into(),
            },
            ..RunParams::default()
        };
        let fields: Vec<String> = params.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "concurrencies",
                "duration",
                "interval",
                "spawn_rate",
                "scenario",
                "scenario_dir"
            ]
        );
        assert!(RunParams::default().validate().is_empty());
    }

    #[test]
    fn statuses_round_trip_as_text() {
        for kind in ProcessKind::ALL {
            assert_eq!(kind.as_str().parse::<ProcessKind>(), Ok(kind));
        }
        assert_eq!(
            "interrupted".parse::<RunStatus>(),
            Ok(RunStatus::Interrupted)
        );
        assert!("bogus".parse::<ScenarioStatus>().is_err());
    }

    proptest::proptest! {
        /// Any text is a duration or refused saying why, naming the text
        /// (or the unit it did not know); never a panic.
        #[test]
        fn any_text_is_a_duration_or_refused_naming_it(
            text in "[0-9. ]{0,6}[a-z]{0,4}|[0-9]{300,320}(s|d)?|.{0,20}"
        ) {
            match parse_duration(&text) {
                Ok(d) => {
                    // What it says, written in milliseconds, reads back.
                    let ms = format!("{}ms", d.as_millis());
                    let again = parse_duration(&ms).expect("milliseconds");
                    proptest::prop_assert!(
                        d.abs_diff(again) < Duration::from_millis(1),
                        "{:?} vs {:?}", d, again
                    );
                }
                Err(why) => {
                    let named = text.trim();
                    proptest::prop_assert!(
                        why.contains(named) || named.is_empty() || why.contains("unknown unit"),
                        "{}", why
                    );
                    proptest::prop_assert!(why.contains("duration") || why.contains("unit"), "{}", why);
                }
            }
        }

        /// Any text is a list of positive concurrencies, one per comma, or
        /// refused naming the part that is not one.
        #[test]
        fn any_text_is_concurrencies_or_refused_naming_the_part(text in "[0-9, -]{0,20}|.{0,20}") {
            match parse_concurrencies(&text) {
                Ok(list) => {
                    proptest::prop_assert_eq!(list.len(), text.split(',').count());
                    proptest::prop_assert!(list.iter().all(|&n| n > 0));
                }
                Err(why) => {
                    let bad = text
                        .split(',')
                        .map(str::trim)
                        .find(|p| !matches!(p.parse::<u32>(), Ok(n) if n > 0))
                        .expect("a part that is not one");
                    let named = format!("`{bad}`");
                    proptest::prop_assert!(why.contains(&named), "{}", why);
                }
            }
        }
    }
}
