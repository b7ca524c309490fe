//! `mite-perf trend`: the lab's history as series (a figure of a scenario
//! on a machine class, across mite builds), with the steps found in each.

use std::process::ExitCode;

use clap::Args;

use mite_perf::compare;
use mite_perf::trend::changepoint::Settings;
use mite_perf::trend::format::{render, TrendFormat};
use mite_perf::trend::history::{load_series, SeriesFilter, TrendError};

use mite_perf::model::parse_duration;

use super::{connect, DbArgs, EXIT_USAGE};

#[derive(Args, Debug)]
pub(crate) struct TrendArgs {
    /// Only this figure (repeatable): requests_per_second,
    /// requests_per_runner_cpu_second, mib_per_journey, latency_p99, peak_rss_runner, …
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
    /// Queue one run per PyPI release in this range (`2.0.0..2.11.0`, both
    /// included) instead of printing: a fresh lab's release history. The
    /// runs are labelled --label (`releases` when empty).
    #[arg(long, value_name = "FIRST..LAST")]
    pub(crate) backfill: Option<String>,
    /// With --backfill: the concurrencies each release is measured at.
    #[arg(
        long,
        default_value = "10,100",
        requires = "backfill",
        value_delimiter = ','
    )]
    pub(crate) concurrencies: Vec<u32>,
    /// With --backfill: repeats of each scenario (pooled into one point).
    #[arg(long, default_value_t = 3, requires = "backfill")]
    pub(crate) repeat: u32,
    /// With --backfill: how long each scenario runs.
    #[arg(long, default_value = "30s", requires = "backfill", value_parser = parse_duration)]
    pub(crate) duration: std::time::Duration,
    /// With --backfill: how each release's dependencies are resolved: all
    /// from the agent's one snapshot (alike: a step is mite's), or each as
    /// the index was on its release date (as its users had it).
    #[arg(long, value_enum, default_value = "snapshot", requires = "backfill")]
    pub(crate) dependencies: mite_perf::trend::backfill::BackfillDependencies,
    /// With --backfill: the agent that must measure them all (one machine
    /// class for the whole history; any free one by default).
    #[arg(long, requires = "backfill")]
    pub(crate) agent: Option<String>,
    /// Leave every point whose commit this uploader claimed (`token:ci`:
    /// an uploaded wheel's commit is its uploader's word) out of every
    /// series' fit, instead of printing. The points stay shown, marked.
    #[arg(long, value_name = "UPLOADER", conflicts_with_all = ["backfill", "include_claimant"])]
    pub(crate) exclude_claimant: Option<String>,
    /// Take --exclude-claimant back for this uploader.
    #[arg(long, value_name = "UPLOADER", conflicts_with = "backfill")]
    pub(crate) include_claimant: Option<String>,
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

/// Prints the series (or queues the releases of --backfill); exits 2 for
/// bad usage.
pub(crate) async fn trend(args: TrendArgs) -> anyhow::Result<ExitCode> {
    let store = connect(&args.db).await?;
    if let Some(range) = &args.backfill {
        return backfill(&store, range, &args).await;
    }
    if let Some(claimant) = args.exclude_claimant.as_deref().map(str::trim) {
        let by = std::env::var("USER").unwrap_or_default();
        store.exclude_claimant(claimant, &by).await?;
        note(&store, &by, "exclude claimant", claimant).await;
        to_stdout!("every point {claimant} claimed is left out of its series' fit");
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(claimant) = args.include_claimant.as_deref().map(str::trim) {
        let by = std::env::var("USER").unwrap_or_default();
        if store.include_claimant(claimant).await? {
            note(&store, &by, "include claimant", claimant).await;
            to_stdout!("the points {claimant} claimed are fitted again");
        } else {
            to_stdout!("{claimant}'s points were not left out");
        }
        return Ok(ExitCode::SUCCESS);
    }
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

/// Records a change to the trends in the activity log (a failure is said,
/// not fatal: the change is made).
async fn note(store: &mite_perf::store::Store, by: &str, action: &str, claimant: &str) {
    let subject = format!("every point {claimant} claimed");
    if let Err(e) = store
        .record_activity(by, action, &subject, "command line")
        .await
    {
        to_stderr!("the activity log could not record it: {e}");
    }
}

/// Queues one run per release of `range`.
async fn backfill(
    store: &mite_perf::store::Store,
    range: &str,
    args: &TrendArgs,
) -> anyhow::Result<ExitCode> {
    use mite_perf::trend::backfill::{
        queue_releases, releases, BackfillDependencies, BackfillError,
    };
    let by = std::env::var("USER").unwrap_or_default();
    let template = mite_perf::model::RunParams {
        label: if args.label.trim().is_empty() {
            "releases".to_string()
        } else {
            args.label.trim().to_string()
        },
        agent: args.agent.clone(),
        concurrencies: args.concurrencies.clone(),
        duration_ms: u64::try_from(args.duration.as_millis()).unwrap_or(u64::MAX),
        repeats: args.repeat,
        ..mite_perf::model::RunParams::default()
    };
    // The lab's operator (who holds its database) backfills as many as
    // the command line allows, with no share of the queue.
    let mut released = Vec::new();
    let queued = match releases(range, mite_perf::trend::backfill::MAX_RELEASES).await {
        Ok(versions) => {
            released.clone_from(&versions);
            queue_releases(
                store,
                &versions,
                &template,
                args.dependencies,
                &by,
                mite_perf::lab::MAX_QUEUED,
                None,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match queued {
        Ok(queued) => {
            for (version, id) in &queued {
                let as_of = match args.dependencies {
                    BackfillDependencies::Snapshot => String::new(),
                    BackfillDependencies::ReleaseDate => released
                        .iter()
                        .find(|r| r.version == *version)
                        .and_then(|r| r.uploaded_at.as_deref())
                        .map(|at| format!(", its dependencies as of {at}"))
                        .unwrap_or_default(),
                };
                to_stdout!("queued run {id}: mite {version}{as_of}");
            }
            to_stdout!("{}", args.dependencies.describe());
            let subject = format!("{} releases of {}", queued.len(), range.trim());
            if let Err(e) = store
                .record_activity(&by, "backfill", &subject, "command line")
                .await
            {
                to_stderr!("the activity log could not record the backfill: {e}");
            }
            to_stdout!(
                "{subject} queued: a lab agent measures them one after another; `mite-perf trend` shows them as they finish"
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(
            e @ (BackfillError::Range(_)
            | BackfillError::NoRelease(_)
            | BackfillError::TooMany { .. }
            | BackfillError::NoReleaseDate { .. }
            | BackfillError::Invalid(_)),
        ) => {
            to_stderr!("error: {e}");
            Ok(ExitCode::from(EXIT_USAGE))
        }
        Err(e) => Err(e.into()),
    }
}
