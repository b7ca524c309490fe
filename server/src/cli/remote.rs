//! What the commands that drive a lab over HTTP share (`ci check`,
//! `bisect`): the lab's address and token, the exit codes of a lab that
//! failed or refused, and following a run to its end with a progress line.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use app::api::{AgentState, LabError, LaunchOutcome, RunView};
use mite_perf::client::{ClientError, LabClient, Launch};
use mite_perf::mite_env::git_wheels::{
    build_wheel, default_uv, default_wheel_cache, BuiltWheel, WheelBuildError,
};
use mite_perf::model::parse_duration;
use mite_perf::model::{RunStatus, ScenarioStatus};

/// The lab failed: a build, no agent, the run, the lab itself, the timeout.
pub(crate) const EXIT_LAB_FAILURE: u8 = 3;
/// Bad usage, or a token the lab refused.
pub(crate) const EXIT_USAGE: u8 = 4;

/// Which lab, as whom.
#[derive(Args, Debug)]
pub(crate) struct LabAccess {
    /// The lab's address (https://lab.example.com); by default the one
    /// `scripts/lab` serves on this machine.
    #[arg(long, env = "MITE_PERF_LAB", default_value = "http://127.0.0.1:3000")]
    pub(crate) lab: String,
    /// A CI token that may upload builds (`mite-perf token create ci --role
    /// runner --may-upload`); better from the environment than on a command
    /// line others can read.
    /// A lab on loopback without accounts needs none.
    #[arg(long, env = "MITE_PERF_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// A file holding the token, instead of --token.
    #[arg(long, conflicts_with = "token")]
    pub(crate) token_file: Option<PathBuf>,
}

/// The last part of `path` (a wheel's file name), as text.
pub(crate) fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// How wheels are built here, and how often a run is asked about.
#[derive(Args, Debug)]
pub(crate) struct WheelBuilding {
    /// Where built wheels are kept by commit (default: ~/.cache/mite-perf/wheels).
    #[arg(long)]
    wheel_cache: Option<PathBuf>,
    /// The uv that builds the wheels (default: scripts/setup's, else uv on PATH).
    #[arg(long)]
    uv: Option<PathBuf>,
    /// How often a run's progress is asked for.
    #[arg(long, default_value = "5s", value_parser = parse_duration, hide = true)]
    pub(crate) poll: Duration,
}

impl WheelBuilding {
    /// Builds (or finds, built before) the wheel of `commit` of `repo`.
    pub(crate) async fn build(
        &self,
        repo: &std::path::Path,
        commit: &str,
    ) -> Result<BuiltWheel, WheelBuildError> {
        let cache = self.wheel_cache.clone().unwrap_or_else(default_wheel_cache);
        let uv = self.uv.clone().unwrap_or_else(default_uv);
        build_wheel(repo, commit, &cache, &uv).await
    }
}

impl LabAccess {
    /// A client of the lab, with the token if one was given.
    pub(crate) fn client(&self) -> Result<LabClient, RemoteError> {
        let token = match (&self.token, &self.token_file) {
            (Some(token), _) => Some(token.clone()),
            (None, Some(file)) => Some(std::fs::read_to_string(file).map_err(|e| {
                RemoteError::Usage(format!("--token-file {}: {e}", file.display()))
            })?),
            (None, None) => None,
        };
        let token = token.map(|t| t.trim().to_string());
        if token.as_deref() == Some("") {
            return Err(RemoteError::Usage("the token is empty".into()));
        }
        LabClient::new(&self.lab, token.as_deref()).map_err(|e| RemoteError::Usage(e.to_string()))
    }
}

/// Why a command driving a lab ended without its answer, and its exit code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RemoteError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Lab(String),
}

impl RemoteError {
    pub(crate) fn code(&self) -> u8 {
        match self {
            RemoteError::Usage(_) => EXIT_USAGE,
            RemoteError::Lab(_) => EXIT_LAB_FAILURE,
        }
    }
}

impl From<ClientError> for RemoteError {
    fn from(e: ClientError) -> Self {
        match e.lab_error() {
            Some(
                LabError::Unauthenticated(_) | LabError::Forbidden(_) | LabError::Invalid { .. },
            ) => RemoteError::Usage(e.to_string()),
            _ => RemoteError::Lab(e.to_string()),
        }
    }
}

impl From<WheelBuildError> for RemoteError {
    fn from(e: WheelBuildError) -> Self {
        if e.is_usage() {
            RemoteError::Usage(e.to_string())
        } else {
            RemoteError::Lab(format!("build failed: {e}"))
        }
    }
}

/// Fails unless a live agent (the one asked for, if one was) can take the run.
pub(crate) async fn need_an_agent(
    client: &LabClient,
    wanted: Option<&str>,
) -> Result<(), RemoteError> {
    let agents = client.agents().await?;
    let live = |state: AgentState| matches!(state, AgentState::Idle | AgentState::Running);
    let found = agents
        .iter()
        .any(|a| live(a.state) && wanted.is_none_or(|w| a.name == w));
    if found {
        Ok(())
    } else {
        Err(RemoteError::Lab(match wanted {
            Some(name) => format!("no agent: the lab's agent {name} is not running"),
            None => "no agent: the lab has no running agent to measure on".into(),
        }))
    }
}

pub(crate) async fn launch_run(client: &LabClient, launch: &Launch) -> Result<i64, RemoteError> {
    match client.launch(launch).await? {
        LaunchOutcome::Queued { run_id, position } => {
            to_stderr!(
                "queued run {run_id} at {}/runs/{run_id} (place {position})",
                client.base()
            );
            Ok(run_id)
        }
        LaunchOutcome::Invalid(errors) => Err(RemoteError::Usage(format!(
            "the lab refused the run: {}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))),
    }
}

/// How long the lab may stay unreachable while a run is followed.
const UNREACHABLE_PATIENCE: Duration = Duration::from_secs(120);

/// Follows run `run_id` until it ends, printing a line as it moves on; the
/// finished run, or why not. A timeout, Ctrl+C or SIGTERM cancels it.
pub(crate) async fn follow(
    client: &LabClient,
    run_id: i64,
    deadline: Instant,
    poll: Duration,
) -> Result<RunView, RemoteError> {
    let mut said = String::new();
    let mut unreachable_since: Option<Instant> = None;
    let started = Instant::now();
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        let asked = client.run(run_id).await;
        let run = match asked {
            Ok(Some(run)) => {
                unreachable_since = None;
                run
            }
            Ok(None) => {
                return Err(RemoteError::Lab(format!(
                    "run {run_id} is gone from the lab"
                )))
            }
            Err(e @ ClientError::Unreachable { .. }) => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() > UNREACHABLE_PATIENCE {
                    return Err(RemoteError::Lab(e.to_string()));
                }
                to_stderr!("{e}: trying again");
                tokio::time::sleep(poll).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        match run.status {
            RunStatus::Done => return Ok(run),
            RunStatus::Failed | RunStatus::Interrupted => {
                return Err(RemoteError::Lab(format!(
                    "run {run_id} {}: {}",
                    if run.status == RunStatus::Failed {
                        "failed"
                    } else {
                        "was stopped"
                    },
                    run.error.as_deref().unwrap_or("no reason given")
                )))
            }
            RunStatus::Queued | RunStatus::Running => {}
        }
        let line = progress(&run);
        if line != said {
            to_stderr!(
                "run {run_id}: {line} ({} min {} s)",
                started.elapsed().as_secs() / 60,
                started.elapsed().as_secs() % 60
            );
            said = line;
        }
        let why = tokio::select! {
            () = tokio::time::sleep(poll) => None,
            () = tokio::time::sleep_until(deadline.into()) => Some("the check's --timeout passed".to_string()),
            signal = &mut stop => Some(format!("{signal} received")),
        };
        if let Some(why) = why {
            let cancelled = client.cancel(run_id).await;
            return Err(RemoteError::Lab(format!(
                "{why}: run {run_id} {}",
                match cancelled {
                    Ok(true) => "was cancelled",
                    Ok(false) => "had ended",
                    Err(_) => "could not be cancelled",
                }
            )));
        }
    }
}

/// Resolves when SIGINT or SIGTERM arrives (never, if they cannot be
/// listened for).
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// Where a run stands, in a few words.
fn progress(run: &RunView) -> String {
    match run.status {
        RunStatus::Queued => match run.queue_position {
            Some(p) => format!("queued, place {p}"),
            None => "queued".into(),
        },
        _ => {
            if let Some(stage) = &run.stage {
                return stage.clone();
            }
            let total = run.scenarios.len();
            if total == 0 {
                return "starting".into();
            }
            let ended = run
                .scenarios
                .iter()
                .filter(|s| !matches!(s.status, ScenarioStatus::Waiting | ScenarioStatus::Running))
                .count();
            match run
                .scenarios
                .iter()
                .find(|s| s.status == ScenarioStatus::Running)
            {
                Some(s) => format!("scenario {} of {total} ({})", ended + 1, s.name),
                None => format!("{ended} of {total} scenarios ended"),
            }
        }
    }
}
