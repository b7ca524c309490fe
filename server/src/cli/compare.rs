//! `mite-perf compare` and `mite-perf baseline`: two runs (or builds) figure by
//! figure, and the baseline a label is compared against.

use std::process::ExitCode;

use clap::Args;

use mite_perf::compare::{self, format::Format, sides::SideSpec};
use mite_perf::store::{Store, StoreError};

use super::{connect, DbArgs, EXIT_FAILED, EXIT_USAGE};

/// How a comparison judges.
#[derive(Args, Debug)]
pub(crate) struct VerdictArgs {
    /// The smallest change of a median that counts (5%, 2.5%, 0.05).
    #[arg(long, default_value = "5%", value_parser = compare::parse_threshold)]
    pub(crate) threshold: f64,
    /// Fail on inconclusive figures too (a change past the threshold the
    /// repeats cannot confirm).
    #[arg(long)]
    pub(crate) strict: bool,
    /// How to print the comparison.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
    /// Compare runs measured on different machines (CPU, cores, memory,
    /// kernel, epoch) anyway; the comparison says so. Without it they are
    /// refused: their figures differ by machine as much as by mite.
    #[arg(long)]
    pub(crate) across_machines: bool,
}

#[derive(Args, Debug)]
pub(crate) struct CompareArgs {
    /// The run compared against: its number (12), one build of it (12:2)
    /// or `baseline` (the baseline of NEW's label).
    pub(crate) base: SideSpec,
    /// The run judged: its number, or one build of it (15:1).
    pub(crate) new: SideSpec,
    #[command(flatten)]
    pub(crate) verdict: VerdictArgs,
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

#[derive(Args, Debug)]
pub(crate) struct BaselineArgs {
    /// The run that becomes its label's baseline (it must have finished).
    #[arg(required_unless_present = "clear")]
    pub(crate) run: Option<i64>,
    /// Remove this label's baseline instead.
    #[arg(long, conflicts_with = "run")]
    pub(crate) clear: Option<String>,
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

pub(crate) async fn compare_command(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let store = match connect(&args.db).await {
        Ok(store) => store,
        Err(e) => {
            to_stderr!("error: {e:#}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    Ok(print_comparison(&store, args.base, args.new, &args.verdict).await)
}

pub(crate) async fn baseline(args: BaselineArgs) -> anyhow::Result<ExitCode> {
    let store = connect(&args.db).await?;
    if let Some(label) = &args.clear {
        if store.clear_baseline(label).await? {
            super::accounts::log(&store, "clear baseline", label).await?;
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
            super::accounts::log(&store, "mark baseline", &format!("run {run_id} of {label}"))
                .await?;
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

/// Prints the comparison of `new` against `base`; the exit code a CI job
/// reads: 0 nothing worse, 1 worse (or inconclusive with --strict), 2
/// nothing to compare.
pub(crate) async fn print_comparison(
    store: &Store,
    base: SideSpec,
    new: SideSpec,
    verdict: &VerdictArgs,
) -> ExitCode {
    match compare::compare_runs(store, base, new, verdict.threshold, verdict.across_machines).await
    {
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
