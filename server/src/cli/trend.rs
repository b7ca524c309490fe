//! `mite-perf trend`: the lab's history as series (a figure of a scenario
//! on a machine class, across mite builds), with the steps found in each.

use std::process::ExitCode;

use clap::Args;

use mite_perf::compare;
use mite_perf::trend::changepoint::Settings;
use mite_perf::trend::format::{render, TrendFormat};
use mite_perf::trend::history::{load_series, SeriesFilter, TrendError};

use super::{connect, DbArgs, EXIT_USAGE};

#[derive(Args, Debug)]
pub(crate) struct TrendArgs {
    /// Only this figure (repeatable): requests_per_second,
    /// requests_per_runner_cpu_second, mib_per_journey, peak_rss_runner, …
    #[arg(long = "figure")]
    pub(crate) figures: Vec<String>,
    /// Only scenarios whose name holds this (`built-in`, `checkout`).
    #[arg(long)]
    pub(crate) scenario: Option<String>,
    /// Only this many journeys.
    #[arg(long)]
    pub(crate) concurrency: Option<u32>,
    /// Only machine classes holding this (`EPYC`, `Python 3.11`).
    #[arg(long)]
    pub(crate) machine: Option<String>,
    /// Only runs whose label holds this.
    #[arg(long, default_value = "")]
    pub(crate) label: String,
    /// The smallest step flagged as a change (3%, 0.03).
    #[arg(long, default_value = "3%", value_parser = compare::parse_threshold)]
    pub(crate) floor: f64,
    /// Also print every point: build, median, 95 % interval, repeats, runs.
    #[arg(long)]
    pub(crate) points: bool,
    /// How to print the series.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: TrendFormat,
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

/// Prints the series; exits 2 for bad usage.
pub(crate) async fn trend(args: TrendArgs) -> anyhow::Result<ExitCode> {
    let store = connect(&args.db).await?;
    let filter = SeriesFilter {
        figures: args.figures,
        scenario: args.scenario,
        concurrency: args.concurrency,
        machine: args.machine,
        label: args.label,
    };
    let settings = Settings {
        floor: args.floor,
        ..Settings::default()
    };
    match load_series(&store, &filter, &settings).await {
        Ok(series) => {
            let text = render(&series, args.format, args.points);
            {
                use std::io::Write as _;
                let _ = std::io::stdout().write_all(text.as_bytes());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ TrendError::NoSuchFigure { .. }) => {
            to_stderr!("error: {e}");
            Ok(ExitCode::from(EXIT_USAGE))
        }
        Err(e) => Err(e.into()),
    }
}
