//! `mite-perf ci check`: a pull request's CI job asks the shared lab
//! whether the change made mite slower or hungrier. It builds the base and
//! head wheels here (git worktrees, `uv build`), uploads them, queues one
//! run that measures them interleaved on one agent, adding repeats to a
//! concurrency only while some figure is undecided (a group-sequential
//! test: `compare::stopping`), follows it, judges each figure (the
//! steady-window test, Benjamini–Hochberg over the figures, a regression
//! only past the threshold, "no change" only for a figure whose test could
//! have seen the threshold), and prints a markdown summary (also to
//! `$GITHUB_STEP_SUMMARY`) that says what each figure could have seen.
//! With `--all-repeats`, every repeat runs and an inconclusive first round
//! gets one more.
//!
//! Exit codes: 0 no regression, 1 a regression, 2 only inconclusive figures
//! and `--fail-on-inconclusive`, 3 the lab failed (a build failed, no
//! agent, the run failed or was cancelled, the lab unreachable, the
//! timeout), 4 bad usage or a token the lab refused.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use domain::builds::WheelCommit;
use mite_perf::client::Launch;
use mite_perf::compare::gate::{judge, Call, GateSettings, GateVerdict};
use mite_perf::compare::gate_summary::{summary, SummaryContext};
use mite_perf::compare::parse_threshold;
use mite_perf::mite_env::git_wheels::resolve_commit;
use mite_perf::model::parse_duration;

use super::remote::{
    file_name, follow, launch_run, need_an_agent, LabAccess, RemoteError, WheelBuilding,
};

/// No figure regressed.
pub(crate) const EXIT_PASS: u8 = 0;
/// A figure regressed.
pub(crate) const EXIT_REGRESSION: u8 = 1;
/// Only inconclusive figures, and `--fail-on-inconclusive`.
pub(crate) const EXIT_INCONCLUSIVE: u8 = 2;

#[derive(Subcommand, Debug)]
pub(crate) enum CiCommand {
    /// Measure a pull request's mite (head) against its base on a shared
    /// lab and fail on a real regression.
    ///
    /// Builds both wheels here, uploads them (the lab must be started with
    /// --allow-uploaded-builds), runs them interleaved on one agent, and
    /// prints a markdown summary for the pull request (also appended to
    /// $GITHUB_STEP_SUMMARY when set). Exits 0 with no regression, 1 with
    /// one, 2 when only inconclusive with --fail-on-inconclusive, 3 when
    /// the lab failed (build, agent, run, timeout), 4 for bad usage or a
    /// refused token.
    Check(CheckArgs),
}

#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    access: LabAccess,
    /// mite's git repository (the pull request's checkout).
    #[arg(long, requires_all = ["base", "head"])]
    repo: Option<PathBuf>,
    /// The base: a branch, tag or commit of --repo (`origin/main`).
    #[arg(long, requires = "repo")]
    base: Option<String>,
    /// The head: a branch, tag or commit of --repo (`HEAD`).
    #[arg(long, requires = "repo")]
    head: Option<String>,
    /// A built wheel as the base, instead of --repo/--base.
    #[arg(long, conflicts_with_all = ["repo", "base"], requires = "head_wheel")]
    base_wheel: Option<PathBuf>,
    /// A built wheel as the head, instead of --repo/--head.
    #[arg(long, conflicts_with_all = ["repo", "head"], requires = "base_wheel")]
    head_wheel: Option<PathBuf>,
    /// Concurrencies measured, comma separated.
    #[arg(long, default_value = "10,100")]
    concurrencies: String,
    /// How long each scenario runs.
    #[arg(long, default_value = "30s")]
    duration: String,
    /// How often the processes are sampled (the lab's default: 1s).
    #[arg(long)]
    interval: Option<String>,
    /// Repeats of each scenario per build (interleaved A B, B A, …): the
    /// most; a concurrency stops adding repeats once every figure is
    /// decided (a group-sequential test, docs/MEASURING.md).
    #[arg(long, default_value_t = 5)]
    repeat: u32,
    /// Run every repeat, even once every figure is decided.
    #[arg(long)]
    all_repeats: bool,
    /// The runs' label on the lab.
    #[arg(long, default_value = "ci-check")]
    label: String,
    /// The agent that must measure (any free one by default).
    #[arg(long)]
    agent: Option<String>,
    /// A scenario of the agents' library (`module:function`) instead of the built-in one.
    #[arg(long)]
    scenario: Option<String>,
    /// Profile mite's runners too (differential flame graphs in the summary).
    #[arg(long)]
    profile: bool,
    /// Leave mite's message bus unread (the seed's measurement only).
    #[arg(long)]
    bus_off: bool,
    /// Fixed work: each scenario makes this many requests and ends
    /// (--duration then only bounds it).
    #[arg(long)]
    requests: Option<u64>,
    /// Count each of mite's processes' instructions per request under
    /// Valgrind (fixed work only: --requests N). See docs/MEASURING.md.
    #[arg(long, requires = "requests")]
    valgrind: bool,
    /// The smallest change that counts as a regression (5%, 0.05).
    #[arg(long, default_value = "5%", value_parser = parse_threshold)]
    threshold: f64,
    /// The corrected p-value a change must be below.
    #[arg(long, default_value_t = 0.01, value_parser = parse_alpha)]
    alpha: f64,
    /// Exit 2 when no figure regressed but some are inconclusive.
    #[arg(long)]
    fail_on_inconclusive: bool,
    /// Do not measure again when the first round is inconclusive (only
    /// --all-repeats measures again: a run that stops once decided already
    /// ran every repeat an undecided figure could use).
    #[arg(long)]
    no_second_round: bool,
    /// Give up (and cancel the run) after this long.
    #[arg(long, default_value = "2h", value_parser = parse_duration)]
    timeout: Duration,
    /// Also write the markdown summary to this file.
    #[arg(long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    wheels: WheelBuilding,
}

fn parse_alpha(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(a) if a > 0.0 && a < 0.5 => Ok(a),
        _ => Err(format!(
            "`{text}` is not a level: give a p-value such as 0.01"
        )),
    }
}

pub(crate) async fn ci(command: CiCommand) -> anyhow::Result<ExitCode> {
    match command {
        CiCommand::Check(args) => Ok(ExitCode::from(match check(&args).await {
            Ok(code) => code,
            Err(e) => {
                to_stderr!("error: {e}");
                e.code()
            }
        })),
    }
}

/// One side: its wheel, how the summary names it, and the commit it was
/// built from (unknown for a wheel given as a file).
struct Side {
    name: String,
    path: PathBuf,
    commit: Option<WheelCommit>,
}

async fn check(args: &CheckArgs) -> Result<u8, RemoteError> {
    let client = args.access.client()?;
    let (base, head) = wheels(args).await?;
    let read = |side: &Side| {
        std::fs::read(&side.path)
            .map_err(|e| RemoteError::Usage(format!("cannot read {}: {e}", side.path.display())))
    };
    let (base_bytes, head_bytes) = (read(&base)?, read(&head)?);
    if base_bytes == head_bytes {
        let text = format!(
            "### mite perf lab: nothing to measure\n\n{} and {} build the same wheel.\n",
            base.name, head.name
        );
        publish(args, &text);
        return Ok(EXIT_PASS);
    }
    to_stderr!(
        "uploading {} and {} to {}",
        base.name,
        head.name,
        client.base()
    );
    let base_upload = client
        .upload_wheel(&file_name(&base.path), base_bytes, base.commit.as_ref())
        .await?;
    let head_upload = client
        .upload_wheel(&file_name(&head.path), head_bytes, head.commit.as_ref())
        .await?;
    need_an_agent(&client, args.agent.as_deref()).await?;
    let launch = Launch {
        mite: format!("{},{}", base_upload.build, head_upload.build),
        concurrencies: args.concurrencies.clone(),
        duration: args.duration.clone(),
        interval: args.interval.clone().unwrap_or_default(),
        repeat: args.repeat.to_string(),
        label: args.label.clone(),
        agent: args.agent.clone().unwrap_or_default(),
        scenario: args.scenario.clone().unwrap_or_default(),
        profile: args.profile,
        bus_off: args.bus_off,
        requests: args.requests,
        valgrind: args.valgrind,
        until_decided: if args.all_repeats { "" } else { "gate" }.into(),
        threshold: format!("{}", args.threshold),
        alpha: format!("{}", args.alpha),
    };
    let settings = GateSettings {
        alpha: args.alpha,
        threshold: args.threshold,
    };
    let deadline = Instant::now() + args.timeout;
    let mut runs = Vec::new();
    let (report, verdict, run) = loop {
        let run_id = launch_run(&client, &launch).await?;
        runs.push(run_id);
        let run = follow(&client, run_id, deadline, args.wheels.poll).await?;
        let sides = format!("{run_id}:1,{run_id}:2");
        let report = client
            .compare(&sides, &format!("{}%", args.threshold * 100.0))
            .await?;
        let verdict = judge(&report, settings);
        // A run that stops once decided already went as far as it could
        // for an undecided figure: its last repeats.
        let again = verdict.count(Call::Inconclusive) > 0
            && verdict.count(Call::Regression) == 0
            && runs.len() == 1
            && args.all_repeats
            && !args.no_second_round;
        if !again {
            break (report, verdict, run);
        }
        to_stderr!(
            "run {run_id}: {} figures inconclusive: measuring once more",
            verdict.count(Call::Inconclusive)
        );
    };
    let run_id = run.id;
    let context = SummaryContext {
        lab_url: client.base().to_string(),
        sides: format!("{run_id}:1,{run_id}:2"),
        base_name: base.name,
        head_name: head.name,
        runs,
        repeats: args.repeat,
        until_decided: !args.all_repeats,
        agent: run.agent.clone(),
    };
    let text = summary(&report, &verdict, &context);
    publish(args, &text);
    Ok(exit_code(&verdict, args.fail_on_inconclusive))
}

/// The exit code of a verdict.
fn exit_code(verdict: &GateVerdict, fail_on_inconclusive: bool) -> u8 {
    if verdict.count(Call::Regression) > 0 {
        EXIT_REGRESSION
    } else if fail_on_inconclusive && verdict.count(Call::Inconclusive) > 0 {
        EXIT_INCONCLUSIVE
    } else {
        EXIT_PASS
    }
}

/// The two wheels: built from the repository's commits, or as given.
async fn wheels(args: &CheckArgs) -> Result<(Side, Side), RemoteError> {
    if let (Some(base), Some(head)) = (&args.base_wheel, &args.head_wheel) {
        let side = |path: &Path| Side {
            name: file_name(path),
            path: path.to_path_buf(),
            commit: None,
        };
        return Ok((side(base), side(head)));
    }
    let (Some(repo), Some(base), Some(head)) = (&args.repo, &args.base, &args.head) else {
        return Err(RemoteError::Usage(
            "name the two builds: --repo PATH --base REF --head REF, or --base-wheel FILE \
             --head-wheel FILE"
                .into(),
        ));
    };
    let mut sides = Vec::new();
    for reference in [base, head] {
        let commit = resolve_commit(repo, reference)?;
        let started = Instant::now();
        to_stderr!("building {reference} ({})", &commit[..12]);
        let built = args.wheels.build(repo, &commit).await?;
        to_stderr!(
            "built {} in {:.0} s",
            file_name(&built.path),
            started.elapsed().as_secs_f64()
        );
        sides.push(Side {
            name: format!("{reference} ({})", &commit[..12]),
            path: built.path,
            commit: Some(built.commit),
        });
    }
    let head = sides
        .pop()
        .ok_or_else(|| RemoteError::Lab("no head wheel".into()))?;
    let base = sides
        .pop()
        .ok_or_else(|| RemoteError::Lab("no base wheel".into()))?;
    Ok((base, head))
}

/// Prints the summary, writes it to --output and appends it to
/// `$GITHUB_STEP_SUMMARY` when set.
fn publish(args: &CheckArgs, text: &str) {
    to_stdout!("{text}");
    if let Some(path) = &args.output {
        if let Err(e) = std::fs::write(path, text) {
            to_stderr!("cannot write {}: {e}", path.display());
        }
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(format!("{text}\n").as_bytes()));
        if let Err(e) = appended {
            to_stderr!("cannot append to $GITHUB_STEP_SUMMARY: {e}");
        }
    }
}
