//! `mite-perf cleanup`: what a dead lab left behind.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use mite_perf::cleanup;

use super::{connect, AgentArgs, DbArgs, EXIT_FAILED};

#[derive(Args, Debug)]
pub(crate) struct CleanupArgs {
    /// The output folder of the lab whose runs are cleaned up: their files
    /// are rewritten only inside it.
    #[arg(long, default_value = "output")]
    pub(crate) output_dir: PathBuf,
    #[command(flatten)]
    pub(crate) agent: AgentArgs,
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

pub(crate) async fn cleanup(args: CleanupArgs) -> anyhow::Result<ExitCode> {
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
