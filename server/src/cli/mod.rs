//! The command line's subcommands, one module each, and what they share:
//! the database and agent options, a run's limits, opening a lab, and the
//! signals that stop a run.

pub(crate) mod accounts;
pub(crate) mod bisect;
pub(crate) mod ci;
pub(crate) mod cleanup;
pub(crate) mod compare;
pub(crate) mod lab;
pub(crate) mod progress;
pub(crate) mod remote;
pub(crate) mod run;
pub(crate) mod scenarios;
pub(crate) mod trend;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

use mite_perf::agent_identity::AgentIdentity;
use mite_perf::mite_env::builds::BuildCache;
use mite_perf::mite_env::{self, MiteEnv};
use mite_perf::model::parse_duration;
use mite_perf::ports::LabPorts;
use mite_perf::run::{LabSetup, RunLimits, RunPolicy};
use mite_perf::sandbox::Isolation;
use mite_perf::store::{redact_url, Store};

#[derive(Args)]
pub(crate) struct DbArgs {
    /// Database to store runs in: sqlite://PATH or postgres://USER@HOST/DB.
    /// Its value in the environment is never shown (it may hold a password).
    #[arg(
        long,
        env = "MITE_PERF_DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://output/mite-perf.db"
    )]
    pub(crate) database_url: String,
}

impl std::fmt::Debug for DbArgs {
    /// The URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbArgs")
            .field("database_url", &redact_url(&self.database_url))
            .finish()
    }
}

/// Deadlines and bounds of a run.
#[derive(Args, Debug)]
pub(crate) struct LimitArgs {
    /// How long each of mite's components (and the target) may take to get
    /// ready before the scenario fails.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) ready_timeout: Duration,
    /// How long the controller may take to end after a scenario's duration
    /// before the scenario fails.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub(crate) controller_grace: Duration,
    /// Samples kept in memory while the database is unavailable; past this
    /// the scenario fails (what was measured before is kept).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) max_unsaved_samples: usize,
}

impl LimitArgs {
    pub(crate) fn limits(&self) -> RunLimits {
        RunLimits {
            ready_timeout: self.ready_timeout,
            controller_grace: self.controller_grace,
            max_unsaved_samples: self.max_unsaved_samples,
        }
    }
}

/// Whether measured code runs in a sandbox.
#[derive(Args, Debug)]
pub(crate) struct SandboxArgs {
    /// Run measured code (mite's builds and their installers, scenario
    /// modules, target commands) without a sandbox, as the lab's own user:
    /// it could then read the lab's database and secrets. By default it
    /// runs in bubblewrap (its own namespaces, only its venv and scenario
    /// folder in sight, a network of its own), and a host that cannot
    /// sandbox refuses uploaded wheels and local builds. An admin's choice,
    /// for a host without user namespaces or to measure the sandbox's cost.
    #[arg(long)]
    pub(crate) insecure_unsandboxed_builds: bool,
}

impl SandboxArgs {
    /// This host's isolation, said once at start.
    pub(crate) fn isolation(&self) -> Isolation {
        let isolation = Isolation::detect(self.insecure_unsandboxed_builds);
        match &isolation {
            Isolation::Sandboxed(sandbox) => {
                tracing::info!("measured code runs in a sandbox ({})", sandbox.version())
            }
            Isolation::Insecure => tracing::warn!(
                "measured code runs WITHOUT a sandbox ({}): it can read this lab's secrets",
                mite_perf::sandbox::INSECURE_FLAG
            ),
            Isolation::Impossible(missing) => tracing::warn!(
                "this host cannot sandbox measured code ({missing}): uploaded wheels and \
                 local builds are refused"
            ),
        }
        isolation
    }
}

/// Which agent this is, and its ports.
#[derive(Args, Debug)]
pub(crate) struct AgentArgs {
    /// The agent's name, shown on its runs and the Agents page (default: the
    /// host's name). Two agents on one machine need two names.
    #[arg(long)]
    pub(crate) agent_name: Option<String>,
    /// The five ports a run uses: TARGET,CONTROLLER,MESSAGE,COLLECTOR,BUS
    /// (with four, BUS is COLLECTOR+1). Two agents on one machine need two sets.
    #[arg(long, env = "MITE_PERF_PORTS", default_value = "9898,14301,14302,14303,14304", value_parser = |s: &str| s.parse::<LabPorts>())]
    pub(crate) ports: LabPorts,
    /// How long a run's lease (and the agent's heartbeat) holds unless
    /// renewed: an agent silent this long has its running run marked
    /// interrupted by another agent (renewed every quarter of it, every
    /// 5 s at most; 3 s at least).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) lease: Duration,
    /// Bump when this machine changed in a way its facts (CPU model, cores,
    /// memory, kernel, Python) do not show (a BIOS setting, another disk):
    /// its runs then start new series in the trends, never mixed with the
    /// old.
    #[arg(long, env = "MITE_PERF_MACHINE_EPOCH", default_value_t = 0)]
    pub(crate) machine_epoch: u32,
}

impl AgentArgs {
    pub(crate) fn host(&self) -> anyhow::Result<AgentIdentity> {
        if let Some(name) = &self.agent_name {
            domain::access::check_name(name)
                .map_err(|why| anyhow::anyhow!("--agent-name {name}: {why}"))?;
        }
        if self.lease < MIN_LEASE {
            anyhow::bail!("--lease {:?}: a lease holds 3 s at least", self.lease);
        }
        Ok(AgentIdentity {
            lease: self.lease,
            machine_epoch: self.machine_epoch,
            ..AgentIdentity::named(self.agent_name.clone(), self.ports)
        })
    }
}

/// The shortest lease an agent takes.
const MIN_LEASE: Duration = Duration::from_secs(3);

/// Exit codes: 0 all scenarios done, 1 a failure, 2 bad input, 130/143 stopped by a signal.
pub(crate) const EXIT_FAILED: u8 = 1;
pub(crate) const EXIT_USAGE: u8 = 2;

pub(crate) async fn connect(db: &DbArgs) -> anyhow::Result<Store> {
    Store::connect(&db.database_url)
        .await
        .with_context(|| format!("database {}", redact_url(&db.database_url)))
}

/// The store and what runs need, from the options `run` and `serve` share;
/// the database is tried again while unavailable for up to `patience`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn open_lab(
    db: &DbArgs,
    patience: Duration,
    venv: Option<&PathBuf>,
    builds_dir: Option<&PathBuf>,
    output_dir: &std::path::Path,
    limits: RunLimits,
    policy: RunPolicy,
    host: AgentIdentity,
    isolation: Isolation,
    mite_needed: bool,
) -> anyhow::Result<(Store, LabSetup)> {
    let venv = venv.cloned().unwrap_or_else(mite_env::default_venv);
    let mite = match MiteEnv::locate(&venv) {
        Ok(mite) => mite,
        // A web front alone executes no run: it needs no mite.
        Err(e) if !mite_needed => {
            tracing::info!("no mite here ({e}): this web front executes no runs");
            MiteEnv {
                venv,
                mite_version: String::new(),
                python_version: String::new(),
            }
        }
        Err(e) => return Err(e.into()),
    };
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
        isolation,
    };
    Ok((store, setup))
}

/// Which signal stopped the run, if any.
#[derive(Clone, Copy)]
pub(crate) enum StopSignal {
    Interrupt,
    Terminate,
    Hangup,
}

pub(crate) fn watch_signals(
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
