//! `mite-perf`: the lab's command line.

// The pages' view types are deep (the library says so too).
#![recursion_limit = "256"]

/// Writes a line to stderr (progress, errors) without ever panicking: a
/// closed stream (a pipe to `head` that ended, a terminal that was closed)
/// must not cut a run short before its stop path has run.
macro_rules! to_stderr {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr());
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Writes a line to stdout (results) without ever panicking (see [`to_stderr`]).
macro_rules! to_stdout {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout());
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod accounts_cli;
mod progress;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use app::builds::MiteBuild;
use app::format::mib as format_mib;
use app::profile::ProfileSpec;
use mite_perf::access::{AccessPolicy, Openness, TrustedProxy};
use mite_perf::cleanup;
use mite_perf::compare::{self, format::Format, sides::SideSpec};
use mite_perf::mite_env::builds::BuildCache;
use mite_perf::mite_env::{self, MiteEnv};
use mite_perf::model::{
    format_duration, parse_duration, CollectorKeep, RunParams, RunStatus, ScenarioSpec, TargetSpec,
};
use mite_perf::ports::LabPorts;
use mite_perf::run::lease::LabHost;
use mite_perf::run::{execute_run, LabSetup, RunLimits, RunPolicy};
use mite_perf::store::{redact_url, Store, StoreError};

/// Measures how the mite load-testing framework performs.
///
/// `mite-perf run` starts a target HTTP server on port 9898 and mite's four
/// components (duplicator, collector, runner, controller) for each scenario,
/// samples their CPU and memory and the target's request throughput, stores
/// every sample in a database and writes output/YYYY-MM-DD/HH-MM/samples.csv
/// and chart.html.
#[derive(Parser, Debug)]
#[command(name = "mite-perf", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run scenarios against real mite and report CPU, memory and throughput.
    Run(RunArgs),
    /// Stop what a crashed lab left running and report who holds the lab's ports.
    ///
    /// Only process groups the lab recorded (and that are still the same
    /// processes) are stopped; a port held by anything else is named, not killed.
    Cleanup(CleanupArgs),
    /// Serve the browser lab: launch runs, watch them live, browse history,
    /// charts and CSV downloads. Runs queue and take turns. It is also a lab
    /// agent (it executes runs) unless --no-agent.
    Serve(ServeArgs),
    /// Be a lab agent only: execute the queued runs of a shared database
    /// (next to `serve --no-agent` web fronts), without serving pages.
    Agent(LabArgs),
    /// Compare two runs (or two builds of one run) figure by figure, with a
    /// verdict per figure: better, worse, no significant change or inconclusive.
    ///
    /// Exits 0 when no figure got significantly worse, 1 when one did (or,
    /// with --strict, when one is inconclusive), 2 for bad usage or when
    /// there is nothing to compare.
    Compare(CompareArgs),
    /// Mark a run as the baseline of its label: `run --compare-to baseline`
    /// and the pages of that label's runs compare against it.
    Baseline(BaselineArgs),
    /// Manage the accounts of a shared lab (sign-in with a password).
    #[command(subcommand)]
    User(accounts_cli::UserCommand),
    /// Manage API tokens (for CI jobs and scripts).
    #[command(subcommand)]
    Token(accounts_cli::TokenCommand),
    /// List the mite scenarios an agent started with these --scenario-dir
    /// folders offers in the launch form, with their docstrings and the
    /// required journeys of their volume models.
    Scenarios(ScenariosArgs),
    /// Serve the built-in target: answers GET / and counts requests.
    ///
    /// Prints `TIMESTAMP: served N requests` for every line read on stdin, and
    /// on exit (SIGINT or SIGTERM).
    Target(TargetArgs),
    /// Run a command under `py-spy record` and end as the command ended
    /// (py-spy itself exits 0 whatever happened to it): how the lab profiles
    /// where py-spy may not attach.
    #[command(name = "under-py-spy", hide = true)]
    UnderPySpy(UnderPySpyArgs),
}

#[derive(Args, Debug)]
struct UnderPySpyArgs {
    /// The py-spy to run.
    #[arg(long)]
    py_spy: PathBuf,
    /// Stack samples a second.
    #[arg(long)]
    rate: u32,
    /// Where py-spy writes the folded stacks.
    #[arg(long)]
    output: PathBuf,
    /// The command and its arguments.
    #[arg(required = true, last = true)]
    command: Vec<String>,
}

#[derive(Args, Debug)]
struct ScenariosArgs {
    /// A folder of scenario modules (may be given several times).
    #[arg(long = "scenario-dir", required = true)]
    scenario_dirs: Vec<PathBuf>,
    /// The Python venv with mite in it (the pinned build).
    #[arg(long, env = mite_env::VENV_ENV)]
    mite_venv: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct DbArgs {
    /// Database to store runs in: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(
        long,
        env = "MITE_PERF_DATABASE_URL",
        default_value = "sqlite://output/mite-perf.db"
    )]
    database_url: String,
}

/// Deadlines and bounds of a run.
#[derive(Args, Debug)]
struct LimitArgs {
    /// How long each of mite's components (and the target) may take to get
    /// ready before the scenario fails.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    ready_timeout: Duration,
    /// How long the controller may take to end after a scenario's duration
    /// before the scenario fails.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    controller_grace: Duration,
    /// Samples kept in memory while the database is unavailable; past this
    /// the scenario fails (what was measured before is kept).
    #[arg(long, default_value_t = 100_000)]
    max_unsaved_samples: usize,
}

impl LimitArgs {
    fn limits(&self) -> RunLimits {
        RunLimits {
            ready_timeout: self.ready_timeout,
            controller_grace: self.controller_grace,
            max_unsaved_samples: self.max_unsaved_samples,
        }
    }
}

/// How a comparison judges.
#[derive(Args, Debug)]
struct VerdictArgs {
    /// The smallest change of a median that counts (5%, 2.5%, 0.05).
    #[arg(long, default_value = "5%", value_parser = compare::parse_threshold)]
    threshold: f64,
    /// Fail on inconclusive figures too (a change past the threshold the
    /// repeats cannot confirm).
    #[arg(long)]
    strict: bool,
    /// How to print the comparison.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Args, Debug)]
struct CompareArgs {
    /// The run compared against: its number (12), one build of it (12:2)
    /// or `baseline` (the baseline of NEW's label).
    base: SideSpec,
    /// The run judged: its number, or one build of it (15:1).
    new: SideSpec,
    #[command(flatten)]
    verdict: VerdictArgs,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args, Debug)]
struct BaselineArgs {
    /// The run that becomes its label's baseline (it must have finished).
    #[arg(required_unless_present = "clear")]
    run: Option<i64>,
    /// Remove this label's baseline instead.
    #[arg(long, conflicts_with = "run")]
    clear: Option<String>,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args, Debug)]
struct CleanupArgs {
    /// The output folder of the lab whose runs are cleaned up: their files
    /// are rewritten only inside it.
    #[arg(long, default_value = "output")]
    output_dir: PathBuf,
    #[command(flatten)]
    agent: AgentArgs,
    #[command(flatten)]
    db: DbArgs,
}

/// Several process kinds as one value (`runner,controller`): an alias, so
/// clap parses the list whole.
type ProcessKinds = Vec<mite_perf::model::ProcessKind>;

#[derive(Args, Debug)]
struct RunArgs {
    /// Concurrent journeys of each scenario, run one after another.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,10,100,1000",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    scenarios: Vec<u32>,
    /// How long each scenario's volume model keeps its journeys running
    /// (60, 60s, 90s, 2m, ...).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// mite's --spawn-rate: journeys started per second at most. The default,
    /// as in mite's own perf script, leaves mite unthrottled: with mite's own
    /// default (1000) throughput stalls for seconds at a time.
    #[arg(long, default_value_t = 1_000_000)]
    spawn_rate: u32,
    /// Time between samples (100ms at the least).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    interval: Duration,
    /// A label to find this run by later (e.g. the mite commit under test).
    #[arg(long, default_value = "")]
    label: String,
    /// Where runs' folders go (YYYY-MM-DD/HH-MM inside).
    #[arg(long, default_value = "output")]
    output_dir: PathBuf,
    /// Run this shell command as the target instead of the built-in server.
    /// It must serve on port 9898 and print `TIMESTAMP: served N requests`
    /// lines on stdout (as mite's test/perf/http_server.py does); it runs with
    /// the mite venv's bin first on PATH.
    #[arg(long)]
    target_cmd: Option<String>,
    /// Your own mite scenario, module:function, instead of the built-in one.
    /// It gets MITE_CONF_mite_perf_concurrency, _duration and _target_url.
    #[arg(long, requires = "scenario_dir")]
    scenario: Option<String>,
    /// The folder your --scenario module is in.
    #[arg(long, requires = "scenario")]
    scenario_dir: Option<PathBuf>,
    /// mite's collector data kept per scenario (it costs ~0.9 KB per
    /// request): `all`, `none`, or the last N MiB (`100`, the oldest files
    /// go first). The collector runs in every case: it is part of what is
    /// measured.
    #[arg(long, alias = "collector-keep-mib", default_value = "100", value_parser = CollectorKeep::parse)]
    collector_keep: CollectorKeep,
    /// The Python venv with mite in it (the pinned build).
    #[arg(long, env = mite_env::VENV_ENV)]
    mite_venv: Option<PathBuf>,
    /// Where the venvs of mite builds other than the pinned one are kept
    /// (default: ~/.local/share/mite-perf/builds).
    #[arg(long, env = mite_env::builds::BUILDS_DIR_ENV)]
    builds_dir: Option<PathBuf>,
    /// The mite builds to measure, comma-separated, taking turns within
    /// each scenario: a PyPI version (2.10.0), a checkout (../mite), a wheel
    /// (./dist/mite-2.12.0-py3-none-any.whl) or `pinned` (the default).
    /// Each gets its own venv, made once and kept.
    #[arg(long, value_delimiter = ',', value_parser = MiteBuild::parse)]
    mite: Vec<MiteBuild>,
    /// How many times each scenario runs with each build (3 or more for a
    /// verdict that can say "worse").
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// mite runners started against the one controller, as mite's users go
    /// past one core (1 to 32); each is sampled on its own.
    #[arg(long, default_value_t = 1)]
    runners: u32,
    /// Sample the stacks of mite's processes with py-spy (scripts/setup
    /// installs it in the lab's tools venv): a flame graph per process and
    /// scenario.
    #[arg(long)]
    profile: bool,
    /// Stack samples a second (py-spy's --rate; it does not pause mite).
    #[arg(long, default_value_t = ProfileSpec::DEFAULT_RATE, requires = "profile")]
    profile_rate: u32,
    /// The processes profiled: runner, controller, duplicator, collector, or all.
    #[arg(long, default_value = "runner", value_parser = ProfileSpec::parse_processes, requires = "profile")]
    profile_processes: ProcessKinds,
    /// Once the run is done, compare it with `baseline` (its label's
    /// baseline) or a run number, print the comparison and exit 1 when a
    /// figure got significantly worse.
    #[arg(long)]
    compare_to: Option<SideSpec>,
    #[command(flatten)]
    verdict: VerdictArgs,
    #[command(flatten)]
    agent: AgentArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// The site cargo-leptos built (default: target/site next to the binary).
    #[arg(long)]
    site_root: Option<PathBuf>,
    /// Only the web front: runs are executed by agents (`mite-perf agent`)
    /// sharing the database.
    #[arg(long)]
    no_agent: bool,
    #[command(flatten)]
    access: AccessArgs,
    #[command(flatten)]
    lab: LabArgs,
}

/// What executes runs: its folders, mite builds, trust and ports.
#[derive(Args, Debug)]
struct LabArgs {
    /// Where runs' folders go (YYYY-MM-DD/HH-MM inside).
    #[arg(long, default_value = "output")]
    output_dir: PathBuf,
    /// The Python venv with mite in it.
    #[arg(long, env = mite_env::VENV_ENV)]
    mite_venv: Option<PathBuf>,
    /// Where the venvs of mite builds other than the pinned one are kept
    /// (default: ~/.local/share/mite-perf/builds).
    #[arg(long, env = mite_env::builds::BUILDS_DIR_ENV)]
    builds_dir: Option<PathBuf>,
    /// Let queued runs name a shell command as their target (runs come from
    /// the database, which a shared lab does not fully trust).
    #[arg(long)]
    allow_target_cmd: bool,
    /// Let queued runs use their own scenario modules from folders inside
    /// this one (may be given several times).
    #[arg(long = "scenario-dir")]
    scenario_dirs: Vec<PathBuf>,
    /// Let queued runs install mite from a checkout or a wheel on this host
    /// (the browser can ask for PyPI versions without it).
    #[arg(long)]
    allow_local_builds: bool,
    #[command(flatten)]
    agent: AgentArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    db: DbArgs,
}

/// Which agent this is, and its ports.
#[derive(Args, Debug)]
struct AgentArgs {
    /// The agent's name, shown on its runs and the Agents page (default: the
    /// host's name). Two agents on one machine need two names.
    #[arg(long)]
    agent_name: Option<String>,
    /// The five ports a run uses: TARGET,CONTROLLER,MESSAGE,COLLECTOR,BUS
    /// (with four, BUS is COLLECTOR+1). Two agents on one machine need two sets.
    #[arg(long, default_value = "9898,14301,14302,14303,14304", value_parser = |s: &str| s.parse::<LabPorts>())]
    ports: LabPorts,
}

impl AgentArgs {
    fn host(&self) -> anyhow::Result<LabHost> {
        if let Some(name) = &self.agent_name {
            app::access::check_name(name)
                .map_err(|why| anyhow::anyhow!("--agent-name {name}: {why}"))?;
        }
        Ok(LabHost::named(self.agent_name.clone(), self.ports))
    }
}

impl LabArgs {
    fn policy(&self) -> RunPolicy {
        RunPolicy {
            allow_target_cmd: self.allow_target_cmd,
            scenario_roots: self.scenario_dirs.clone(),
            any_scenario_dir: false,
            allow_local_builds: self.allow_local_builds,
        }
    }

    async fn open(&self) -> anyhow::Result<(Store, LabSetup)> {
        self.open_patiently(Duration::ZERO).await
    }

    /// Opens the lab, trying the database again while it is unavailable,
    /// for up to `patience`.
    async fn open_patiently(&self, patience: Duration) -> anyhow::Result<(Store, LabSetup)> {
        open_lab(
            &self.db,
            patience,
            self.mite_venv.as_ref(),
            self.builds_dir.as_ref(),
            &self.output_dir,
            self.limits.limits(),
            self.policy(),
            self.agent.host()?,
        )
        .await
    }
}

/// Who may use a served lab.
///
/// On a loopback address a lab without accounts needs no sign-in. Anywhere
/// else it starts only once it has an admin (`mite-perf user add NAME
/// --role admin`) or a single-sign-on proxy is named.
#[derive(Args, Debug)]
struct AccessArgs {
    /// A header a single-sign-on proxy (oauth2-proxy, nginx auth_request)
    /// names the user in, e.g. X-Forwarded-User.
    #[arg(long, requires = "trusted_proxy")]
    trusted_user_header: Option<axum::http::HeaderName>,
    /// The proxy's address: the header counts only on requests from it
    /// (may be given several times).
    #[arg(long, requires = "trusted_user_header")]
    trusted_proxy: Vec<std::net::IpAddr>,
    /// The role of a user the proxy names for the first time (an admin can
    /// change it with `mite-perf user role`).
    #[arg(long, default_value = "viewer", value_parser = |s: &str| s.parse::<app::access::Role>())]
    proxy_default_role: app::access::Role,
    /// The lab is reached over HTTPS (through a TLS proxy): session cookies
    /// are then sent over HTTPS only.
    #[arg(long)]
    behind_https: bool,
    /// Let anyone who reaches the lab do anything, without signing in, even
    /// off loopback.
    #[arg(long)]
    insecure_no_auth: bool,
}

impl AccessArgs {
    fn policy(&self) -> AccessPolicy {
        AccessPolicy {
            open: if self.insecure_no_auth {
                Openness::Always
            } else if self.trusted_user_header.is_some() || self.behind_https {
                Openness::Never
            } else {
                Openness::WhileNoAccounts
            },
            proxy: self.trusted_user_header.clone().map(|header| TrustedProxy {
                header,
                addresses: self.trusted_proxy.clone(),
                default_role: self.proxy_default_role,
            }),
            secure_cookies: self.behind_https,
        }
    }
}

#[derive(Args, Debug)]
struct TargetArgs {
    #[arg(long, default_value_t = 9898)]
    port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Also print the count every this often (e.g. 5s).
    #[arg(long, value_parser = parse_duration)]
    report_every: Option<Duration>,
}

/// Exit codes: 0 all scenarios done, 1 a failure, 2 bad input, 130/143 stopped by a signal.
const EXIT_FAILED: u8 = 1;
pub(crate) const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Target(args) => {
            mite_perf::target::serve(SocketAddr::new(args.host, args.port), args.report_every)
                .map(|()| ExitCode::SUCCESS)
        }
        Command::UnderPySpy(args) => {
            return mite_perf::profile::started::run_under_py_spy(
                &args.py_spy,
                args.rate,
                &args.output,
                &args.command,
            );
        }
        Command::Run(args) => with_runtime(run(args)),
        Command::Cleanup(args) => with_runtime(cleanup(args)),
        Command::Scenarios(args) => with_runtime(list_scenarios(args)),
        Command::Serve(args) => with_runtime(serve(args)),
        Command::Agent(args) => with_runtime(agent(args)),
        Command::Compare(args) => with_runtime(compare_command(args)),
        Command::Baseline(args) => with_runtime(baseline(args)),
        Command::User(command) => with_runtime(accounts_cli::user(command)),
        Command::Token(command) => with_runtime(accounts_cli::token(command)),
    };
    result.unwrap_or_else(|err| {
        to_stderr!("error: {err:#}");
        ExitCode::from(EXIT_FAILED)
    })
}

/// What the lab logs goes to stderr, at the level `RUST_LOG` says (info by default).
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn with_runtime(
    fut: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(fut)
}

pub(crate) async fn connect(db: &DbArgs) -> anyhow::Result<Store> {
    Store::connect(&db.database_url)
        .await
        .with_context(|| format!("database {}", redact_url(&db.database_url)))
}

/// The store and what runs need, from the options `run` and `serve` share;
/// the database is tried again while unavailable for up to `patience`.
#[allow(clippy::too_many_arguments)]
async fn open_lab(
    db: &DbArgs,
    patience: Duration,
    venv: Option<&PathBuf>,
    builds_dir: Option<&PathBuf>,
    output_dir: &std::path::Path,
    limits: RunLimits,
    policy: RunPolicy,
    host: LabHost,
) -> anyhow::Result<(Store, LabSetup)> {
    let venv = venv.cloned().unwrap_or_else(mite_env::default_venv);
    let mite = MiteEnv::locate(&venv)?;
    // After the venv: a missing mite is said before a database is made.
    let url = &db.database_url;
    let store = mite_perf::store::persistently(patience, || Store::connect(url))
        .await
        .with_context(|| format!("database {}", redact_url(url)))?;
    let setup = LabSetup {
        output_root: output_dir.to_path_buf(),
        builds: BuildCache::new(mite, builds_dir.cloned()),
        self_exe: std::env::current_exe().context("cannot find the mite-perf binary")?,
        limits,
        policy,
        host,
    };
    Ok((store, setup))
}

fn params_from(args: &RunArgs) -> RunParams {
    RunParams {
        label: args.label.clone(),
        launched_by: std::env::var("USER").unwrap_or_default(),
        agent: None,
        concurrencies: args.scenarios.clone(),
        duration_ms: args.duration.as_millis() as u64,
        spawn_rate: args.spawn_rate,
        interval_ms: args.interval.as_millis() as u64,
        target: match &args.target_cmd {
            Some(cmd) => TargetSpec::Command(cmd.clone()),
            None => TargetSpec::Builtin,
        },
        scenario: match (&args.scenario, &args.scenario_dir) {
            (Some(spec), Some(dir)) => ScenarioSpec::Custom {
                spec: spec.clone(),
                dir: dir.clone(),
            },
            _ => ScenarioSpec::Builtin,
        },
        collector: args.collector_keep,
        mite: args.mite.clone(),
        repeats: args.repeat,
        runners: args.runners,
        profile: args.profile.then(|| ProfileSpec {
            rate: args.profile_rate,
            processes: args.profile_processes.clone(),
        }),
    }
}

/// Which signal stopped the run, if any.
#[derive(Clone, Copy)]
enum StopSignal {
    Interrupt,
    Terminate,
    Hangup,
}

fn watch_signals(
    cancel: CancellationToken,
) -> anyhow::Result<tokio::sync::watch::Receiver<Option<StopSignal>>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    // The terminal was closed (or the ssh session ended): stop as for SIGTERM.
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let (tx, rx) = tokio::sync::watch::channel(None);
    tokio::spawn(async move {
        loop {
            let which = tokio::select! {
                _ = int.recv() => StopSignal::Interrupt,
                _ = term.recv() => StopSignal::Terminate,
                _ = hup.recv() => StopSignal::Hangup,
            };
            if tx.borrow().is_none() {
                to_stderr!("\nstopping: every child gets a polite signal, then SIGKILL after 1 s…");
                tx.send_replace(Some(which));
            }
            cancel.cancel();
        }
    });
    Ok(rx)
}

async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let params = params_from(&args);
    let errors = params.validate();
    if !errors.is_empty() {
        for e in &errors {
            to_stderr!("error: --{}: {}", e.field.replace('_', "-"), e.message);
        }
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    if args.compare_to.is_some() && params.builds().len() > 1 {
        to_stderr!(
            "error: --compare-to compares one build: this run measures {} (compare its builds \
             with `mite-perf compare RUN:1 RUN:2` once it is done)",
            params.builds().len()
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    if args.compare_to == Some(SideSpec::Baseline) && params.label.trim().is_empty() {
        to_stderr!("error: --compare-to baseline needs a --label: a baseline is a label's");
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let (store, setup) = open_lab(
        &args.db,
        Duration::ZERO,
        args.mite_venv.as_ref(),
        args.builds_dir.as_ref(),
        &args.output_dir,
        args.limits.limits(),
        RunPolicy::command_line(),
        args.agent.host()?,
    )
    .await?;
    let cancel = CancellationToken::new();
    let stopped_by = watch_signals(cancel.clone())?;

    let run_id = store.create_run(&params, RunStatus::Running).await?;
    // The pinned build by its version; others as asked for (installed next).
    let builds: Vec<String> = params
        .builds()
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let name = match b {
                MiteBuild::Pinned => setup.builds.pinned.mite_version.clone(),
                other => other.to_string(),
            };
            if params.builds().len() > 1 {
                format!("b{} {name}", i + 1)
            } else {
                name
            }
        })
        .collect();
    let repeats = if params.repeats > 1 {
        format!(", {} times each", params.repeats)
    } else {
        String::new()
    };
    to_stderr!(
        "run {run_id}: scenarios {:?}, {} each{repeats}, sampling every {}, mite {}",
        params.concurrencies,
        format_duration(params.duration()),
        format_duration(params.interval()),
        builds.join(", ")
    );
    let progress = progress::CliProgress::new();
    let started = std::time::Instant::now();
    let outcome = execute_run(&store, run_id, &params, &setup, &cancel, &progress).await;
    progress.finish();
    let outcome = outcome.with_context(|| {
        format!(
            "run {run_id} could not record its end; `mite-perf cleanup` closes it once the \
             database answers"
        )
    })?;
    let wall = started.elapsed().as_secs_f64();

    let measured_cpu_seconds = print_summary(&store, run_id).await?;
    to_stdout!(
        "\nrun {run_id}: {}{}",
        outcome.status,
        outcome
            .error
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    );
    if let Some(dir) = &outcome.output_dir {
        to_stdout!("samples: {}", dir.join("samples.csv").display());
        to_stdout!("mite:    {}", dir.join("transactions.csv").display());
        to_stdout!("chart:   {}", dir.join("chart.html").display());
        for svg in flame_graphs(dir) {
            to_stdout!("flame graph: {}", svg.display());
        }
        print_profiles(&store, run_id).await;
    }
    if let Some((cpu_seconds, peak_rss)) = mite_perf::sampler::own_usage() {
        // Its share of the CPU of what it measured holds across machines
        // better than a share of one core.
        let share = if measured_cpu_seconds > 0.0 {
            format!(
                " ({:.2} % of the CPU time of the processes it measured)",
                cpu_seconds / measured_cpu_seconds * 100.0
            )
        } else {
            String::new()
        };
        to_stdout!(
            "lab overhead: {:.2} % of one core over {:.0} s{share}, peak RSS {}",
            cpu_seconds / wall.max(0.001) * 100.0,
            wall,
            format_mib(peak_rss as i64)
        );
    }
    let code = match (outcome.status, *stopped_by.borrow()) {
        (RunStatus::Done, _) => match args.compare_to {
            Some(base) => {
                let new = SideSpec::Run {
                    run_id,
                    build: None,
                };
                to_stdout!();
                print_comparison(&store, base, new, &args.verdict).await
            }
            None => ExitCode::SUCCESS,
        },
        (_, Some(StopSignal::Interrupt)) => ExitCode::from(130),
        (_, Some(StopSignal::Terminate)) => ExitCode::from(143),
        (_, Some(StopSignal::Hangup)) => ExitCode::from(129),
        _ => ExitCode::from(EXIT_FAILED),
    };
    Ok(code)
}

/// Prints each scenario's figures; returns the CPU seconds the measured
/// processes used in all.
async fn print_summary(store: &Store, run_id: i64) -> anyhow::Result<f64> {
    let mut measured_cpu_seconds = 0.0;
    to_stdout!(
        "\n{:<14} {:>10} {:>10} {:>10}  {:<11} {:>9} {:>9} {:>11}",
        "scenario",
        "status",
        "requests",
        "mean req/s",
        "process",
        "mean CPU",
        "peak CPU",
        "peak RSS"
    );
    for scenario in store.scenarios(run_id).await? {
        let figures = store
            .stored_figures(scenario.id)
            .await?
            .unwrap_or_else(|| mite_perf::figures::scenario_figures(&[], scenario.interval_ms));
        let mut first = true;
        let head = |first: bool| {
            if first {
                format!(
                    "{:<14} {:>10} {:>10} {:>10.1}",
                    scenario.name,
                    scenario.status.as_str(),
                    figures.total_requests,
                    figures.mean_requests_per_second
                )
            } else {
                format!("{:<14} {:>10} {:>10} {:>10}", "", "", "", "")
            }
        };
        if figures.processes.is_empty() {
            to_stdout!("{}", head(true));
        }
        measured_cpu_seconds += figures
            .processes
            .iter()
            .map(|p| p.mean_cpu / 100.0 * figures.measured_seconds)
            .sum::<f64>();
        for p in &figures.processes {
            to_stdout!(
                "{}  {:<11} {:>7.1} % {:>7.1} % {:>11}",
                head(first),
                p.process.as_str(),
                p.mean_cpu,
                p.peak_cpu,
                format_mib(p.peak_rss)
            );
            first = false;
        }
        let totals = store.bus_totals(scenario.id).await?;
        if !totals.is_empty() {
            let requests: i64 = totals.iter().map(|t| t.requests).sum();
            let failed: i64 = totals.iter().map(|t| t.errors + t.exceptions).sum();
            to_stdout!(
                "{:<14} mite counted {requests} requests ({failed} failed) in {} transaction(s)",
                "",
                totals.len()
            );
            if let (Some(messages), Some(cpu_ms)) =
                (scenario.bus.messages, scenario.bus.reader_cpu_ms)
            {
                let seconds = figures.measured_seconds.max(0.001);
                to_stdout!(
                    "{:<14} the lab read {messages} of mite's messages ({:.0}/s) with {:.2} % of a \
                     core; missed {}",
                    "",
                    messages as f64 / seconds,
                    cpu_ms as f64 / 1000.0 / seconds * 100.0,
                    scenario.bus.missed.unwrap_or(0)
                );
            }
        }
        for flag in app::validity::validity_flags(&figures, &scenario.bus) {
            to_stdout!("{:<14} ! {}: {}", "", flag.issue.as_str(), flag.sentence);
        }
    }
    Ok(measured_cpu_seconds)
}

/// Prints the comparison of `new` against `base`; the exit code a CI job
/// reads: 0 nothing worse, 1 worse (or inconclusive with --strict), 2
/// nothing to compare.
async fn print_comparison(
    store: &Store,
    base: SideSpec,
    new: SideSpec,
    verdict: &VerdictArgs,
) -> ExitCode {
    match compare::compare_runs(store, base, new, verdict.threshold).await {
        Ok(report) => {
            {
                use std::io::Write as _;
                let _ = write!(
                    std::io::stdout(),
                    "{}",
                    compare::format::render(&report, verdict.format)
                );
            }
            if compare::report::fails(&report, verdict.strict) {
                ExitCode::from(EXIT_FAILED)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            to_stderr!("error: cannot compare {new} against {base}: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

async fn compare_command(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let store = match connect(&args.db).await {
        Ok(store) => store,
        Err(e) => {
            to_stderr!("error: {e:#}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    Ok(print_comparison(&store, args.base, args.new, &args.verdict).await)
}

async fn baseline(args: BaselineArgs) -> anyhow::Result<ExitCode> {
    let store = connect(&args.db).await?;
    if let Some(label) = &args.clear {
        if store.clear_baseline(label).await? {
            to_stdout!("`{label}` has no baseline now");
        } else {
            to_stdout!("`{label}` had no baseline");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(run_id) = args.run else {
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    match store.mark_baseline(run_id).await {
        Ok(label) => {
            to_stdout!("run {run_id} is the baseline of `{label}`");
            Ok(ExitCode::SUCCESS)
        }
        Err(StoreError::Invalid(message)) => {
            to_stderr!("error: {message}");
            Ok(ExitCode::from(EXIT_USAGE))
        }
        Err(e) => Err(e.into()),
    }
}

async fn cleanup(args: CleanupArgs) -> anyhow::Result<ExitCode> {
    let store = connect(&args.db).await?;
    let report = cleanup::cleanup(&store, &args.output_dir, &args.agent.host()?).await?;
    for line in report.lines() {
        to_stdout!("{line}");
    }
    Ok(if report.ports_free() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (store, setup) = args.lab.open().await?;
    let access = args.access.policy();
    let admins = store
        .admin_count()
        .await
        .context("cannot read the accounts")?;
    if let Some(refusal) = access.refusal(args.addr, admins) {
        to_stderr!("error: {refusal}");
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let lab = mite_perf::lab::Lab::new(store, setup);
    let worker = if args.no_agent {
        None
    } else {
        match start_agent(&lab).await? {
            Ok(worker) => Some(worker),
            Err(code) => return Ok(code),
        }
    };
    let site_root = args
        .site_root
        .clone()
        .unwrap_or_else(mite_perf::web::default_site_root);
    let expiry = expire_sessions(&lab).await?;
    let app = mite_perf::web::router(
        lab.clone(),
        mite_perf::web::WebConfig {
            site_root: site_root.clone(),
            addr: args.addr,
            access,
        },
    )
    .await
    .context("cannot open the sign-in sessions")?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    tracing::info!(
        "mite perf lab: http://{} (database {}, site {}{})",
        args.addr,
        redact_url(&args.lab.db.database_url),
        site_root.display(),
        if args.no_agent { ", no agent" } else { "" }
    );
    let cancel = CancellationToken::new();
    let _signals = watch_signals(cancel.clone())?;
    let stop = cancel.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
    });
    cancel.cancelled().await;
    // Ctrl+C or SIGTERM: the run in progress stops in two stages at once,
    // whatever downloads are still open; then the server gets a moment to
    // finish its answers.
    lab.shut_down();
    if let Some(worker) = worker {
        stop_agent(worker).await;
    }
    match tokio::time::timeout(SHUTDOWN_ANSWERS_LIMIT, server).await {
        Ok(Ok(Err(e))) => tracing::error!("the web server failed: {e}"),
        Err(_) => tracing::info!("ended the answers still open"),
        _ => {}
    }
    expiry.abort();
    Ok(ExitCode::SUCCESS)
}

/// Closes what this agent's dead predecessor left (its runs marked
/// running, its processes), then registers the agent and starts its worker.
/// `Err(exit code)` when another live agent holds its name.
async fn start_agent(
    lab: &std::sync::Arc<mite_perf::lab::Lab>,
) -> anyhow::Result<Result<tokio::task::JoinHandle<()>, ExitCode>> {
    let setup = lab.setup();
    let leftovers = cleanup::cleanup(lab.store(), &setup.output_root, &setup.host).await?;
    for line in leftovers.lines() {
        tracing::info!("cleanup: {line}");
    }
    match lab.start_agent().await {
        Ok(worker) => {
            tracing::info!(
                "agent {} executes runs (ports {})",
                setup.host.name,
                setup.host.ports
            );
            Ok(Ok(worker))
        }
        Err(mite_perf::lab::agent::AgentError::Store(e)) => Err(e.into()),
        Err(taken) => {
            to_stderr!("error: {taken}");
            Ok(Err(ExitCode::from(EXIT_USAGE)))
        }
    }
}

/// Waits for the agent's run to stop (it was told to).
async fn stop_agent(worker: tokio::task::JoinHandle<()>) {
    if tokio::time::timeout(SHUTDOWN_RUN_LIMIT, worker)
        .await
        .is_err()
    {
        tracing::error!(
            "the run did not stop within {} s",
            SHUTDOWN_RUN_LIMIT.as_secs()
        );
    }
}

/// How long `mite-perf agent` waits for its database at start (a service
/// may start before the database, or while it is busy).
const AGENT_DATABASE_PATIENCE: Duration = Duration::from_secs(60);

/// `mite-perf agent`: executes the queue's runs until Ctrl+C or SIGTERM.
async fn agent(args: LabArgs) -> anyhow::Result<ExitCode> {
    let (store, setup) = args.open_patiently(AGENT_DATABASE_PATIENCE).await?;
    tracing::info!("database {}", redact_url(&args.db.database_url));
    let lab = mite_perf::lab::Lab::new(store, setup);
    let worker = match start_agent(&lab).await? {
        Ok(worker) => worker,
        Err(code) => return Ok(code),
    };
    let cancel = CancellationToken::new();
    let _signals = watch_signals(cancel.clone())?;
    cancel.cancelled().await;
    lab.shut_down();
    stop_agent(worker).await;
    Ok(ExitCode::SUCCESS)
}

/// Deletes expired sign-in sessions now and then, for as long as the lab serves.
async fn expire_sessions(lab: &mite_perf::lab::Lab) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use tower_sessions::session_store::ExpiredDeletion;
    let sessions = lab
        .store()
        .sessions()
        .await
        .context("cannot open the sign-in sessions")?;
    Ok(tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            if let Err(e) = sessions.delete_expired().await {
                tracing::warn!("cannot delete expired sessions: {e}");
            }
        }
    }))
}

/// How long `serve` waits for the run in progress to stop when asked to end.
const SHUTDOWN_RUN_LIMIT: Duration = Duration::from_secs(30);
/// How long `serve` then lets open answers (downloads) go on.
const SHUTDOWN_ANSWERS_LIMIT: Duration = Duration::from_secs(2);

/// `mite-perf scenarios`: what the launch form would list for these folders.
async fn list_scenarios(args: ScenariosArgs) -> anyhow::Result<ExitCode> {
    let venv = args.mite_venv.unwrap_or_else(mite_env::default_venv);
    let mite = MiteEnv::locate(&venv)?;
    let library = mite_perf::library::ScenarioLibrary::new(args.scenario_dirs);
    let found = library.discover("this host", &mite.python()).await;
    for s in &found.scenarios {
        println!("{}", s.spec);
        for doc in [&s.function_doc, &s.doc] {
            for line in doc.lines().filter(|l| !l.trim().is_empty()) {
                println!("    {}", line.trim());
            }
        }
        if let Some(problem) = &s.problem {
            println!("    ! {problem}");
        }
        for shape in &s.shapes {
            let most = shape.required.iter().max().copied().unwrap_or(0);
            println!(
                "    at concurrency {}: up to {most} journeys over {} s{}",
                shape.concurrency,
                shape.required.len(),
                if shape.stops { "" } else { " and on" }
            );
        }
        if s.follows_concurrency() == Some(false) {
            println!("    (sets its own concurrency: the lab's concurrencies only repeat it)");
        }
    }
    for skipped in &found.skipped {
        eprintln!("passed over: {skipped}");
    }
    if found.scenarios.is_empty() {
        eprintln!("no scenario found");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// What each scenario's profiles hold and how py-spy reached the process.
async fn print_profiles(store: &Store, run_id: i64) {
    let Ok(scenarios) = store.scenarios(run_id).await else {
        return;
    };
    for scenario in scenarios {
        let Ok(profiles) = store.profiles(scenario.id).await else {
            continue;
        };
        for p in profiles {
            to_stdout!(
                "profile: {} {} (pid {}): {} stack samples, {}{}",
                scenario.name,
                p.process,
                p.pid,
                p.samples,
                p.reached(),
                p.problem.map(|e| format!(" ({e})")).unwrap_or_default()
            );
        }
    }
}

/// The flame graphs a run drew (`scenarioN/profile-PROCESS-PID.svg`).
fn flame_graphs(run_dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .flat_map(|scenario| {
            std::fs::read_dir(scenario.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "svg")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("profile-"))
        })
        .collect();
    found.sort();
    found
}
