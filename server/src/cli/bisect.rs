//! `mite-perf bisect`: the commit that made a figure worse, measured on a
//! lab (the shared one with `--lab URL` and a token, or this machine's own,
//! started with `--allow-uploaded-builds`). Each commit's wheel is built
//! here once (kept by commit), uploaded, and measured in ordinary runs of
//! the lab; the search is [`mite_perf::bisect`]'s.
//!
//! Exit codes: 0 the first bad commit found, 1 no regression between good
//! and bad, or only a range of commits that do not build, 3 the lab failed,
//! 4 bad usage or a refused token.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use domain::compare::Figure;
use mite_perf::bisect::{
    bisect, BisectError, BisectSettings, Commit, Measured, Outcome, ProbeError, Prober, Report,
    EXPLAINED_WARNING,
};
use mite_perf::client::{LabClient, Launch};
use mite_perf::compare::parse_threshold;
use mite_perf::mite_env::git_wheels::first_parent_range;
use mite_perf::model::parse_duration;

use super::remote::{
    file_name, follow, launch_run, need_an_agent, LabAccess, RemoteError, WheelBuilding,
};

/// The first bad commit was found.
const EXIT_FOUND: u8 = 0;
/// Nothing to find, or only a range.
const EXIT_NOT_FOUND: u8 = 1;

#[derive(Args, Debug)]
pub(crate) struct BisectArgs {
    #[command(flatten)]
    access: LabAccess,
    /// mite's git repository.
    #[arg(long)]
    repo: PathBuf,
    /// A commit (branch, tag) where the figure was good.
    #[arg(long)]
    good: String,
    /// A later commit where it is bad (`good` must be its ancestor).
    #[arg(long)]
    bad: String,
    /// The figure: requests_per_second, requests_per_runner_cpu_second,
    /// mib_per_journey, latency_p99, peak_rss_runner, mean_rss_collector, …
    #[arg(long, default_value = "requests_per_runner_cpu_second")]
    figure: String,
    /// The concurrency the figure is read at.
    #[arg(long, default_value_t = 10)]
    concurrency: u32,
    /// A scenario of the agents' library (`module:function`) instead of the built-in one.
    #[arg(long)]
    scenario: Option<String>,
    /// How long each scenario runs.
    #[arg(long, default_value = "30s")]
    duration: String,
    /// How often the processes are sampled (the lab's default: 1s).
    #[arg(long)]
    interval: Option<String>,
    /// Fixed work: each scenario makes this many requests and ends.
    #[arg(long)]
    requests: Option<u64>,
    /// Count instructions per request under Valgrind (fixed work only:
    /// --requests N); bisect on `runner_instructions_per_request_valgrind`.
    #[arg(long, requires = "requests")]
    valgrind: bool,
    /// Repeats of each commit per measurement.
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// The smallest change from good to bad worth searching (5%, 0.05).
    #[arg(long, default_value = "5%", value_parser = parse_threshold)]
    threshold: f64,
    /// The runs' label on the lab.
    #[arg(long, default_value = "bisect")]
    label: String,
    /// The agent that must measure (any free one by default; one machine
    /// for the whole bisect is better).
    #[arg(long)]
    agent: Option<String>,
    /// Give up (and cancel the run in progress) after this long.
    #[arg(long, default_value = "6h", value_parser = parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    wheels: WheelBuilding,
}

/// Measures commits on a lab: built here, uploaded once, run there.
struct LabProber<'a> {
    args: &'a BisectArgs,
    client: LabClient,
    figure: Figure,
    deadline: Instant,
    /// Commit → `upload:SHA256`.
    uploaded: HashMap<String, String>,
}

impl LabProber<'_> {
    async fn build(&mut self, commit: &Commit) -> Result<String, ProbeError> {
        if let Some(build) = self.uploaded.get(&commit.id) {
            return Ok(build.clone());
        }
        let unbuildable = |reason: String| ProbeError::Unbuildable {
            commit: commit.id.clone(),
            reason,
        };
        let built = self
            .args
            .wheels
            .build(&self.args.repo, &commit.id)
            .await
            .map_err(|e| unbuildable(e.to_string()))?;
        let content = std::fs::read(&built.path).map_err(|e| unbuildable(e.to_string()))?;
        let uploaded = match self
            .client
            .upload_wheel(&file_name(&built.path), content, Some(&built.commit))
            .await
        {
            Ok(u) => u,
            // The lab refuses what is not a mite wheel: that commit does
            // not build one.
            Err(e) if matches!(e.lab_error(), Some(app::api::LabError::Invalid { .. })) => {
                return Err(unbuildable(e.to_string()))
            }
            Err(e) => return Err(ProbeError::Lab(RemoteError::from(e).to_string())),
        };
        self.uploaded
            .insert(commit.id.clone(), uploaded.build.clone());
        Ok(uploaded.build)
    }
}

impl Prober for LabProber<'_> {
    async fn measure(&mut self, commits: &[&Commit], repeats: u32) -> Result<Measured, ProbeError> {
        let mut builds = Vec::new();
        for commit in commits {
            builds.push(self.build(commit).await?);
        }
        let lab = |e: RemoteError| ProbeError::Lab(e.to_string());
        let launch = Launch {
            mite: builds.join(","),
            concurrencies: self.args.concurrency.to_string(),
            duration: self.args.duration.clone(),
            interval: self.args.interval.clone().unwrap_or_default(),
            repeat: repeats.to_string(),
            label: self.args.label.clone(),
            agent: self.args.agent.clone().unwrap_or_default(),
            scenario: self.args.scenario.clone().unwrap_or_default(),
            requests: self.args.requests,
            valgrind: self.args.valgrind,
            ..Launch::default()
        };
        let run_id = launch_run(&self.client, &launch).await.map_err(lab)?;
        follow(&self.client, run_id, self.deadline, self.args.wheels.poll)
            .await
            .map_err(lab)?;
        let sides = if commits.len() == 2 {
            format!("{run_id}:1,{run_id}:2")
        } else {
            format!("{run_id},{run_id}")
        };
        let report = self
            .client
            .compare(&sides, "5%")
            .await
            .map_err(|e| lab(e.into()))?;
        let row = report
            .rows
            .iter()
            .find(|r| r.figure == self.figure && r.concurrency == self.args.concurrency)
            .ok_or_else(|| {
                ProbeError::Lab(format!(
                    "run {run_id} has no {} at {} journeys",
                    self.figure.key(),
                    self.args.concurrency
                ))
            })?;
        let values = if commits.len() == 2 {
            vec![row.base.clone(), row.new.clone()]
        } else {
            vec![row.base.clone()]
        };
        Ok(Measured { values, run_id })
    }
}

pub(crate) async fn bisect_command(args: BisectArgs) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::from(match run(&args).await {
        Ok(code) => code,
        Err(e) => {
            to_stderr!("error: {e}");
            e.code()
        }
    }))
}

async fn run(args: &BisectArgs) -> Result<u8, RemoteError> {
    let figure = Figure::all()
        .into_iter()
        .find(|f| f.key() == args.figure)
        .ok_or_else(|| {
            RemoteError::Usage(format!(
                "`{}` is not a figure: give one of {}",
                args.figure,
                Figure::all()
                    .iter()
                    .map(Figure::key)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let client = args.access.client()?;
    let range: Vec<Commit> = first_parent_range(&args.repo, &args.good, &args.bad)?
        .into_iter()
        .map(|(id, subject)| Commit { id, subject })
        .collect();
    need_an_agent(&client, args.agent.as_deref()).await?;
    let base = client.base().to_string();
    let mut prober = LabProber {
        args,
        client,
        figure,
        deadline: Instant::now() + args.timeout,
        uploaded: HashMap::new(),
    };
    let settings = BisectSettings {
        repeats: args.repeat,
        better: figure.better(),
        threshold: args.threshold,
        alpha: domain::compare::ALPHA,
    };
    let started = Instant::now();
    let report = bisect(&mut prober, &range, settings, &mut |line| {
        to_stderr!("[{}] {line}", elapsed(started.elapsed()))
    })
    .await
    .map_err(|e| match e {
        BisectError::Lab(e) => RemoteError::Lab(e),
        BisectError::EmptyRange => RemoteError::Usage(e.to_string()),
        other => RemoteError::Lab(other.to_string()),
    })?;
    to_stdout!(
        "{}",
        render(&report, figure, args, &base, started.elapsed())
    );
    Ok(match report.outcome {
        Outcome::Found { .. } => EXIT_FOUND,
        _ => EXIT_NOT_FOUND,
    })
}

fn elapsed(d: Duration) -> String {
    format!("{} min {:02} s", d.as_secs() / 60, d.as_secs() % 60)
}

/// The final report, as text.
fn render(report: &Report, figure: Figure, args: &BisectArgs, lab: &str, took: Duration) -> String {
    let mut out = format!(
        "bisect of {} at {} journeys, {} repeats a measurement, in {}\n\n",
        figure.key(),
        args.concurrency,
        args.repeat,
        elapsed(took)
    );
    let line = |label: &str, p: &mite_perf::bisect::Probe| {
        format!(
            "  {label:<6} {}  {:>12}  {:>5}  {} repeats  {}\n",
            p.commit.short(),
            figure.format(p.median),
            p.position
                .map_or(String::new(), |x| format!("{:.0} %", x * 100.0)),
            p.repeats,
            mite_perf::compare::format::terminal_safe(&p.commit.subject)
        )
    };
    out.push_str(&line("good", &report.good));
    for probe in &report.probes {
        out.push_str(&line(if probe.bad { "bad" } else { "good" }, probe));
    }
    out.push_str(&line("bad", &report.bad));
    for (commit, reason) in &report.skipped {
        out.push_str(&format!(
            "  skip   {}  does not build: {}\n",
            commit.short(),
            mite_perf::compare::format::terminal_safe(reason.lines().next().unwrap_or(""))
        ));
    }
    out.push('\n');
    match &report.outcome {
        Outcome::NoRegression { verdict, change } => out.push_str(&format!(
            "bad against good: {} ({:+.1} %): no regression to find (compare: {lab}/compare?runs={run}:1,{run}:2)\n",
            verdict.as_str(),
            change * 100.0,
            run = report.confirm_run
        )),
        Outcome::Found {
            first_bad,
            parent,
            explained,
            run_id,
        } => {
            out.push_str(&format!(
                "first bad commit: {} {}\n  against its parent {}: {:.0} % of the change from good to bad\n  compare: {lab}/compare?runs={run_id}:1,{run_id}:2\n",
                first_bad.id,
                mite_perf::compare::format::terminal_safe(&first_bad.subject),
                parent.short(),
                explained * 100.0
            ));
            if *explained < EXPLAINED_WARNING {
                out.push_str(&format!(
                    "  warning: this commit explains under {:.0} % of the change: several commits \
                     made it, or the figure drifts; bisect the rest (--good {})\n",
                    EXPLAINED_WARNING * 100.0,
                    first_bad.short()
                ));
            }
        }
        Outcome::Unresolved { candidates } => {
            out.push_str("the first bad commit is one of these (the others between do not build):\n");
            for c in candidates {
                out.push_str(&format!(
                    "  {} {}\n",
                    c.short(),
                    mite_perf::compare::format::terminal_safe(&c.subject)
                ));
            }
        }
    }
    out.push_str(&format!("runs: {lab}/runs?label={}\n", args.label));
    out
}
