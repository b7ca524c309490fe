//! `mite-perf run`: scenarios against real mite, from the terminal.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

use domain::builds::MiteBuild;
use domain::defaults;
use domain::dependencies::{parse_moment, DependencyChoice};
use domain::format::mib as format_mib;
use domain::model::{StopAgainst, StopRule};
use domain::profile::ProfileSpec;
use mite_perf::compare::sides::SideSpec;
use mite_perf::mite_env::{self};
use mite_perf::model::{
    format_duration, parse_bus, parse_duration, CollectorKeep, RunParams, RunStatus, ScenarioSpec,
    TargetSpec,
};
use mite_perf::run::{execute_run, RunPolicy};
use mite_perf::store::Store;

use super::compare::{print_comparison, VerdictArgs};

use super::{
    open_lab, progress, watch_signals, AgentArgs, DbArgs, LimitArgs, SandboxArgs, StopSignal,
    EXIT_FAILED, EXIT_USAGE,
};

/// Several process kinds as one value (`runner,controller`): an alias, so
/// clap parses the list whole.
pub(crate) type ProcessKinds = Vec<mite_perf::model::ProcessKind>;

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// Concurrent journeys of each scenario (one scenario per concurrency),
    /// run one after another. `--scenarios` is the old name.
    #[arg(
        long,
        alias = "scenarios",
        value_delimiter = ',',
        default_value = defaults::CONCURRENCIES_TEXT,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub(crate) concurrencies: Vec<u32>,
    /// How long each scenario's volume model keeps its journeys running
    /// (60, 60s, 90s, 2m, ...).
    #[arg(long, default_value = defaults::DURATION_TEXT, value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// mite's --spawn-rate: journeys started per second at most. The default,
    /// as in mite's own perf script, leaves mite unthrottled: with mite's own
    /// default (1000) throughput stalls for seconds at a time.
    #[arg(long, default_value = defaults::SPAWN_RATE_TEXT)]
    pub(crate) spawn_rate: u32,
    /// Time between samples (100ms at the least).
    #[arg(long, default_value = defaults::INTERVAL_TEXT, value_parser = parse_duration)]
    pub(crate) interval: Duration,
    /// A label to find this run by later (e.g. the mite commit under test).
    #[arg(long, default_value = "")]
    pub(crate) label: String,
    /// Where runs' folders go (YYYY-MM-DD/HH-MM inside).
    #[arg(long, default_value = "output")]
    pub(crate) output_dir: PathBuf,
    /// Run this shell command as the target instead of the built-in server.
    /// It must serve on port 9898 and print `TIMESTAMP: served N requests`
    /// lines on stdout (as mite's test/perf/http_server.py does); it runs with
    /// the mite venv's bin first on PATH.
    #[arg(long)]
    pub(crate) target_cmd: Option<String>,
    /// Your own mite scenario, module:function, instead of the built-in one.
    /// It gets MITE_CONF_mite_perf_concurrency, _duration and _target_url.
    #[arg(long, requires = "scenario_dir")]
    pub(crate) scenario: Option<String>,
    /// The folder your --scenario module is in.
    #[arg(long, requires = "scenario")]
    pub(crate) scenario_dir: Option<PathBuf>,
    /// mite's collector data kept per scenario (it costs ~0.9 KB per
    /// request): `all`, `none`, or the last N MiB (`100`, the oldest files
    /// go first). The collector runs in every case: it is part of what is
    /// measured.
    #[arg(long, alias = "collector-keep-mib", default_value = defaults::COLLECTOR_KEEP_TEXT, value_parser = CollectorKeep::parse)]
    pub(crate) collector_keep: CollectorKeep,
    /// The lab's own venv with mite in it (scripts/setup's): its mite's
    /// version is the pinned build's, its Python the builds'.
    #[arg(long, env = mite_env::VENV_ENV)]
    pub(crate) mite_venv: Option<PathBuf>,
    /// Where the venvs of the mite builds are kept, the pinned one's too
    /// (default: ~/.local/share/mite-perf/builds).
    #[arg(long, env = mite_env::builds::BUILDS_DIR_ENV)]
    pub(crate) builds_dir: Option<PathBuf>,
    /// The mite builds to measure, comma-separated, taking turns within
    /// each scenario: a PyPI version (2.10.0), a checkout (../mite), a wheel
    /// (./dist/mite-2.12.0-py3-none-any.whl) or `pinned` (the default).
    /// Each gets its own venv, made once and kept.
    #[arg(long, value_delimiter = ',', value_parser = MiteBuild::parse)]
    pub(crate) mite: Vec<MiteBuild>,
    /// How the builds' dependencies are resolved: `snapshot` (the agent's
    /// dependency snapshot: every build alike), or a date (2025-11-28) or
    /// UTC time (2025-11-28T16:06:36Z): the index as it was then.
    #[arg(long, default_value = "snapshot", value_parser = DependencyChoice::parse)]
    pub(crate) dependencies: DependencyChoice,
    /// The moment this agent's dependency snapshot is (a UTC time or a
    /// date): every build here resolves its dependencies as the index was
    /// then. Default: the one kept in the builds folder, or now for the
    /// first build (give several agents the same, to measure alike).
    #[arg(long, env = mite_env::builds::SNAPSHOT_ENV, value_parser = parse_moment)]
    pub(crate) dependency_snapshot: Option<String>,
    /// How many times each scenario runs with each build (3 or more for a
    /// verdict that can say "worse").
    #[arg(long, default_value = defaults::REPEATS_TEXT)]
    pub(crate) repeat: u32,
    /// mite runners started against the one controller, as mite's users go
    /// past one core (1 to 32); each is sampled on its own.
    #[arg(long, default_value = defaults::RUNNERS_TEXT)]
    pub(crate) runners: u32,
    /// Sample the stacks of mite's processes with py-spy (scripts/setup
    /// installs it in the lab's tools venv): a flame graph per process and
    /// scenario.
    #[arg(long)]
    pub(crate) profile: bool,
    /// Stack samples a second (py-spy's --rate; it does not pause mite).
    #[arg(long, default_value_t = defaults::PROFILE_RATE, requires = "profile")]
    pub(crate) profile_rate: u32,
    /// The processes profiled: runner, controller, duplicator, collector, or all.
    #[arg(long, default_value = defaults::PROFILE_PROCESSES_TEXT, value_parser = ProfileSpec::parse_processes, requires = "profile")]
    pub(crate) profile_processes: ProcessKinds,
    /// Read mite's message bus (mite's own view: requests, errors and
    /// latency per transaction, validity flags), `on` or `off`. Off, mite's
    /// duplicator gets no output of the lab's: the seed's measurement only,
    /// the lab's footprint at its floor.
    #[arg(long, default_value = defaults::BUS_TEXT, value_parser = parse_bus, action = clap::ArgAction::Set)]
    pub(crate) bus: bool,
    /// Fixed work: each scenario makes this many requests (journeys of
    /// one request each, the built-in scenario) and ends; --duration then
    /// only bounds it.
    #[arg(long)]
    pub(crate) requests: Option<u64>,
    /// Count the instructions each of mite's processes executes per request,
    /// under Valgrind (cachegrind): fixed work only (--requests N), each
    /// scenario run twice, with N and 2N requests, the difference taken so
    /// that start-up and shutdown cancel out. Dozens of times slower; give
    /// --duration room (10m). Figures no noisy machine can move: see
    /// docs/MEASURING.md.
    #[arg(long, requires = "requests")]
    pub(crate) valgrind: bool,
    /// Once the run is done, compare it with `baseline` (its label's
    /// baseline) or a run number, print the comparison and exit 1 when a
    /// figure got significantly worse.
    #[arg(long)]
    pub(crate) compare_to: Option<SideSpec>,
    /// Stop adding repeats to a concurrency once every figure is decided
    /// (--repeat is then the most; a group-sequential test, docs/MEASURING.md):
    /// the run's two builds against each other, or with --compare-to its
    /// one build against that run. Judged as compare does, at --threshold.
    #[arg(long)]
    pub(crate) until_decided: bool,
    /// Print the run these options describe (its parameters, as JSON) and
    /// exit without running it or opening the database.
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) verdict: VerdictArgs,
    #[command(flatten)]
    pub(crate) agent: AgentArgs,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
    #[command(flatten)]
    pub(crate) sandbox: SandboxArgs,
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

pub(crate) fn params_from(args: &RunArgs) -> RunParams {
    RunParams {
        label: args.label.clone(),
        launched_by: std::env::var("USER").unwrap_or_default(),
        agent: None,
        concurrencies: args.concurrencies.clone(),
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
        read_bus: args.bus,
        requests: args.requests,
        valgrind: args.valgrind,
        stop: args.until_decided.then_some(StopRule {
            threshold: args.verdict.threshold,
            alpha: domain::compare::ALPHA,
            gate: false,
            against: match args.compare_to {
                Some(SideSpec::Run { run_id, build }) => Some(StopAgainst {
                    run_id,
                    build,
                    across_machines: args.verdict.across_machines,
                }),
                // A label's baseline: found once the store is open.
                Some(SideSpec::Baseline) | None => None,
            },
        }),
        dependencies: args.dependencies.clone(),
    }
}

pub(crate) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // The lab's own cost is counted from here: start-up and stop included.
    let lab_started = std::time::Instant::now();
    let mut params = params_from(&args);
    // Against a label's baseline, the stopping rule names its run once the
    // store is open: checked then.
    let against_baseline = args.until_decided && args.compare_to == Some(SideSpec::Baseline);
    let unresolved = if against_baseline {
        params.stop.take()
    } else {
        None
    };
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
    if args.dry_run {
        println!("{}", serde_json::to_string_pretty(&params)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (store, mut setup) = open_lab(
        &args.db,
        Duration::ZERO,
        args.mite_venv.as_ref(),
        args.builds_dir.as_ref(),
        &args.output_dir,
        args.limits.limits(),
        RunPolicy::command_line(),
        args.agent.host()?,
        args.sandbox.isolation(),
        true,
    )
    .await?;
    if let Some(mut rule) = unresolved {
        let Some(baseline) = store.baseline_of(&params.label).await? else {
            to_stderr!(
                "error: --until-decided --compare-to baseline: the label `{}` has no baseline \
                 (mark one with `mite-perf baseline RUN`)",
                params.label
            );
            return Ok(ExitCode::from(EXIT_USAGE));
        };
        rule.against = Some(StopAgainst {
            run_id: baseline,
            build: None,
            across_machines: args.verdict.across_machines,
        });
        params.stop = Some(rule);
        let errors = params.validate();
        if !errors.is_empty() {
            for e in &errors {
                to_stderr!("error: --{}: {}", e.field.replace('_', "-"), e.message);
            }
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    }
    setup.builds.snapshot_as_of = args.dependency_snapshot.clone();
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
    let bus = if params.read_bus {
        ""
    } else {
        ", mite's bus unread"
    };
    to_stderr!(
        "run {run_id}: scenarios {:?}, {} each{repeats}, sampling every {}, mite {}{bus}",
        params.concurrencies,
        format_duration(params.duration()),
        format_duration(params.interval()),
        builds.join(", ")
    );
    let progress = progress::CliProgress::new();
    let outcome = execute_run(&store, run_id, &params, &setup, &cancel, &progress).await;
    progress.finish();
    let outcome = outcome.with_context(|| {
        format!(
            "run {run_id} could not record its end; `mite-perf cleanup` closes it once the \
             database answers"
        )
    })?;
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
    // Only for a run that measured something: a share of nothing, or of a
    // few milliseconds, is no figure.
    let own_usage = mite_perf::sampler::own_usage().filter(|_| measured_cpu_seconds > 0.0);
    if let Some((cpu_seconds, peak_rss)) = own_usage {
        // CPU time and wall time both since start-up.
        let wall = lab_started.elapsed().as_secs_f64();
        // Its share of the CPU of what it measured holds across machines
        // better than a share of one core.
        let share = format!(
            " ({:.2} % of the CPU time of the processes it measured)",
            cpu_seconds / measured_cpu_seconds * 100.0
        );
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
pub(crate) async fn print_summary(store: &Store, run_id: i64) -> anyhow::Result<f64> {
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
            .unwrap_or_else(|| mite_perf::figures::scenario_figures(&[]));
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
        if let Some(line) = domain::instrument::summary(&figures.instructions) {
            to_stdout!("{:<14} {line}", "");
        }
        for flag in domain::validity::validity_flags(&figures, &scenario.bus) {
            to_stdout!("{:<14} ! {}: {}", "", flag.issue.as_str(), flag.sentence);
        }
    }
    Ok(measured_cpu_seconds)
}

/// What each scenario's profiles hold and how py-spy reached the process.
pub(crate) async fn print_profiles(store: &Store, run_id: i64) {
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
pub(crate) fn flame_graphs(run_dir: &Path) -> Vec<PathBuf> {
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
