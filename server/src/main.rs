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

mod cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use mite_perf::model::parse_duration;

use cli::cleanup::CleanupArgs;
use cli::compare::{BaselineArgs, CompareArgs};
use cli::lab::{LabArgs, ServeArgs};
use cli::run::RunArgs;
use cli::scenarios::ScenariosArgs;
use cli::EXIT_FAILED;

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
    /// mite's figures over its releases and commits: one series per figure,
    /// scenario and machine class, a point per mite build (its repeats
    /// pooled), and the steps found in each (E-divisive means with a
    /// t-test; changes past --floor flagged, suspected until three points
    /// follow them).
    Trend(cli::trend::TrendArgs),
    /// Find the commit that made a figure worse: good against bad first,
    /// then midpoints of the first-parent commits between, measured on a
    /// lab (built here, uploaded; the lab needs --allow-uploaded-builds),
    /// and last the first bad commit against its parent.
    ///
    /// Exits 0 when it names the first bad commit, 1 when good against bad
    /// is no regression (or only a range of commits that do not build is
    /// left), 3 when the lab failed, 4 for bad usage or a refused token.
    Bisect(cli::bisect::BisectArgs),
    /// Continuous benchmarking against a shared lab: gate a pull request on
    /// mite's performance (`ci check`).
    #[command(subcommand)]
    Ci(cli::ci::CiCommand),
    /// Manage the accounts of a shared lab (sign-in with a password).
    #[command(subcommand)]
    User(cli::accounts::UserCommand),
    /// Manage API tokens (for CI jobs and scripts).
    #[command(subcommand)]
    Token(cli::accounts::TokenCommand),
    /// Who owns a label, and so may move its baseline.
    #[command(subcommand)]
    Label(cli::accounts::LabelCommand),
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
    /// Connect to 127.0.0.1:PORT inside a sandboxed scenario's network and
    /// hand the socket back to the lab on descriptor 3 (the lab runs it
    /// there: how its bus reader reaches mite's duplicator).
    #[command(name = "sandbox-connect", hide = true)]
    SandboxConnect(SandboxConnectArgs),
}

#[derive(Args, Debug)]
struct SandboxConnectArgs {
    port: u16,
    /// Milliseconds the connection may take.
    timeout_ms: u64,
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
struct TargetArgs {
    /// The port to listen on (as a lab's `--target-cmd`, the lab's target
    /// port, which it sets in MITE_PERF_TARGET_PORT).
    #[arg(long, env = "MITE_PERF_TARGET_PORT", default_value_t = 9898)]
    port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Also print the count every this often (e.g. 5s).
    #[arg(long, value_parser = parse_duration)]
    report_every: Option<Duration>,
}

fn main() -> ExitCode {
    // Everything the lab creates (its SQLite database, run folders, logs,
    // what its children write) is readable by its user only.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    // No process of the lab's user may read this one's memory, environment
    // (the database URL) or command line through /proc, or attach to it:
    // measured code that runs unsandboxed is such a process.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        eprintln!("warning: cannot keep other processes out of this one's memory: {e}");
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `ci check` and `bisect` promise 4 for bad usage (2 means
        // "inconclusive" there); everything else keeps clap's exit code.
        Err(e) if is_ci_usage_error(&e) => {
            let _ = e.print();
            return ExitCode::from(cli::remote::EXIT_USAGE);
        }
        Err(e) => e.exit(),
    };
    init_logging();
    let result = match cli.command {
        Command::Target(args) => {
            mite_perf::target::serve(SocketAddr::new(args.host, args.port), args.report_every)
                .map(|()| ExitCode::SUCCESS)
        }
        Command::SandboxConnect(args) => {
            return mite_perf::sandbox::net::serve_connect(args.port, args.timeout_ms);
        }
        Command::UnderPySpy(args) => {
            return mite_perf::profile::started::run_under_py_spy(
                &args.py_spy,
                args.rate,
                &args.output,
                &args.command,
            );
        }
        Command::Run(args) => with_runtime(cli::run::run(args)),
        Command::Cleanup(args) => with_runtime(cli::cleanup::cleanup(args)),
        Command::Scenarios(args) => with_runtime(cli::scenarios::list_scenarios(args)),
        Command::Serve(args) => with_runtime(cli::lab::serve(args)),
        Command::Agent(args) => with_runtime(cli::lab::agent(args)),
        Command::Compare(args) => with_runtime(cli::compare::compare_command(args)),
        Command::Baseline(args) => with_runtime(cli::compare::baseline(args)),
        Command::Trend(args) => with_runtime(cli::trend::trend(args)),
        Command::Ci(command) => with_runtime(cli::ci::ci(command)),
        Command::Bisect(args) => with_runtime(cli::bisect::bisect_command(args)),
        Command::User(command) => with_runtime(cli::accounts::user(command)),
        Command::Token(command) => with_runtime(cli::accounts::token(command)),
        Command::Label(command) => with_runtime(cli::accounts::label(command)),
    };
    result.unwrap_or_else(|err| {
        to_stderr!("error: {err:#}");
        ExitCode::from(EXIT_FAILED)
    })
}

/// Whether `error` is a usage error of `mite-perf ci …` or `bisect` (not
/// their help).
fn is_ci_usage_error(error: &clap::Error) -> bool {
    use clap::error::ErrorKind;
    let asked_for_output = matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    !asked_for_output && matches!(std::env::args().nth(1).as_deref(), Some("ci" | "bisect"))
}

/// What the lab logs goes to stderr, at the level `RUST_LOG` says (info by default).
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a terminal only: not in a journal, a file or CI.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
