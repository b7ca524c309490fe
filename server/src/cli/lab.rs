//! `mite-perf serve` and `mite-perf agent`: the browser lab and the agents
//! that execute its queued runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

use mite_perf::access::secret::{Secret, SecretError};
use mite_perf::access::{AccessPolicy, Openness, ProxyError, TrustedProxy};
use mite_perf::cleanup;
use mite_perf::mite_env::{self};
use mite_perf::run::{LabSetup, RunPolicy};
use mite_perf::store::{redact_url, Store};

use super::{open_lab, watch_signals, AgentArgs, DbArgs, LimitArgs, SandboxArgs, EXIT_USAGE};

#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub(crate) addr: SocketAddr,
    /// A URL the lab is reached at from outside, e.g. through a TLS proxy
    /// (https://lab.example.com; may be given several times). The lab
    /// answers only to its bound address, loopback names and these hosts.
    #[arg(long = "public-url")]
    pub(crate) public_urls: Vec<mite_perf::web::host::PublicUrl>,
    /// The site cargo-leptos built (default: target/site next to the binary).
    #[arg(long)]
    pub(crate) site_root: Option<PathBuf>,
    /// Only the web front: runs are executed by agents (`mite-perf agent`)
    /// sharing the database.
    #[arg(long)]
    pub(crate) no_agent: bool,
    /// A download whose client takes no data this long is ended (it ends
    /// cut off, never as a short file that looks whole).
    #[arg(long, default_value = "30s", value_parser = domain::model::parse_duration)]
    pub(crate) download_idle_limit: Duration,
    /// A file holding the token a metrics scraper (Prometheus) sends for
    /// /metrics as `Authorization: Bearer` (an admin's API token works too).
    #[arg(long)]
    pub(crate) metrics_token_file: Option<PathBuf>,
    /// How long an uploaded wheel is kept once unused (neither uploaded
    /// again nor named by a launch); never while a queued or running run
    /// names it. Looked for at start and every hour.
    #[arg(long, default_value = "30d", value_parser = domain::model::parse_duration)]
    pub(crate) upload_retention: Duration,
    #[command(flatten)]
    pub(crate) access: AccessArgs,
    #[command(flatten)]
    pub(crate) lab: LabArgs,
}

/// What executes runs: its folders, mite builds, trust and ports.
#[derive(Args, Debug)]
pub(crate) struct LabArgs {
    /// Where runs' folders go (YYYY-MM-DD/HH-MM inside).
    #[arg(long, default_value = "output")]
    pub(crate) output_dir: PathBuf,
    /// The Python venv with mite in it.
    #[arg(long, env = mite_env::VENV_ENV)]
    pub(crate) mite_venv: Option<PathBuf>,
    /// Where the venvs of the mite builds are kept, the pinned one's too
    /// (default: ~/.local/share/mite-perf/builds).
    #[arg(long, env = mite_env::builds::BUILDS_DIR_ENV)]
    pub(crate) builds_dir: Option<PathBuf>,
    /// The moment this agent's dependency snapshot is (a UTC time or a
    /// date): every build here resolves its dependencies as the index was
    /// then. Default: the one kept in the builds folder, or now for the
    /// first build (give every agent of a lab the same, to measure alike).
    #[arg(long, env = mite_env::builds::SNAPSHOT_ENV, value_parser = domain::dependencies::parse_moment)]
    pub(crate) dependency_snapshot: Option<String>,
    /// Let queued runs name a shell command as their target (runs come from
    /// the database, which a shared lab does not fully trust).
    #[arg(long)]
    pub(crate) allow_target_cmd: bool,
    /// Let queued runs use their own scenario modules from folders inside
    /// this one (may be given several times).
    #[arg(long = "scenario-dir")]
    pub(crate) scenario_dirs: Vec<PathBuf>,
    /// Let queued runs install mite from checkouts and wheels inside these
    /// folders on this host (the browser can ask for PyPI versions without
    /// it); any other path is refused.
    #[arg(long, value_name = "DIR", num_args = 1..)]
    pub(crate) allow_local_builds: Vec<PathBuf>,
    /// Take mite wheels uploaded by CI jobs (`mite-perf ci check`, with a
    /// token made with `token create --may-upload`) and let queued runs
    /// install them: a wheel is code this lab's agents will run. Give it to
    /// the web front that takes the uploads and to every agent that should
    /// run them.
    #[arg(long)]
    pub(crate) allow_uploaded_builds: bool,
    #[command(flatten)]
    pub(crate) agent: AgentArgs,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
    #[command(flatten)]
    pub(crate) sandbox: SandboxArgs,
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

impl LabArgs {
    pub(crate) fn policy(&self) -> anyhow::Result<RunPolicy> {
        let local_build_roots = self
            .allow_local_builds
            .iter()
            .map(|dir| {
                dir.canonicalize().with_context(|| {
                    format!(
                        "--allow-local-builds {}: cannot find that folder",
                        dir.display()
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(RunPolicy {
            allow_target_cmd: self.allow_target_cmd,
            scenario_roots: self.scenario_dirs.clone(),
            any_scenario_dir: false,
            local_build_roots,
            any_local_build: false,
            allow_uploaded_builds: self.allow_uploaded_builds,
        })
    }

    /// Opens the lab; an agent needs mite, a web front alone does not.
    pub(crate) async fn open(&self, agent: bool) -> anyhow::Result<(Store, LabSetup)> {
        self.open_patiently(Duration::ZERO, agent).await
    }

    /// Opens the lab, trying the database again while it is unavailable,
    /// for up to `patience`.
    pub(crate) async fn open_patiently(
        &self,
        patience: Duration,
        agent: bool,
    ) -> anyhow::Result<(Store, LabSetup)> {
        let (store, mut setup) = open_lab(
            &self.db,
            patience,
            self.mite_venv.as_ref(),
            self.builds_dir.as_ref(),
            &self.output_dir,
            self.limits.limits(),
            self.policy()?,
            self.agent.host()?,
            self.sandbox.isolation(),
            agent,
        )
        .await?;
        setup.builds.snapshot_as_of = self.dependency_snapshot.clone();
        Ok((store, setup))
    }
}

/// Who may use a served lab.
///
/// On a loopback address a lab without accounts needs no sign-in. Anywhere
/// else it starts only once it has an admin (`mite-perf user add NAME
/// --role admin`) or a single-sign-on proxy is named.
#[derive(Args, Debug)]
pub(crate) struct AccessArgs {
    /// A header a single-sign-on proxy (oauth2-proxy, nginx auth_request)
    /// names the user in, e.g. X-Forwarded-User.
    #[arg(long, requires = "trusted_proxy")]
    pub(crate) trusted_user_header: Option<axum::http::HeaderName>,
    /// The reverse proxy's address (may be given several times). On
    /// requests from it that carry its secret (--trusted-proxy-secret-file),
    /// its X-Forwarded-For names the client (for the sign-in throttle and
    /// the activity log) and, with --trusted-user-header, its header the
    /// user.
    #[arg(long)]
    pub(crate) trusted_proxy: Vec<std::net::IpAddr>,
    /// A file holding a secret the proxy sends in the
    /// X-Mite-Perf-Proxy-Secret header: the proxy counts only with it.
    /// Needed whatever its address: every local process can connect from
    /// any of this host's addresses.
    #[arg(long)]
    pub(crate) trusted_proxy_secret_file: Option<PathBuf>,
    /// The role of a user the proxy names for the first time (an admin can
    /// change it with `mite-perf user role`).
    #[arg(long, default_value = "viewer", value_parser = |s: &str| s.parse::<domain::access::Role>())]
    pub(crate) proxy_default_role: domain::access::Role,
    /// The lab is reached over HTTPS (through a TLS proxy): session cookies
    /// are then sent over HTTPS only, and browsers told to keep to HTTPS
    /// (Strict-Transport-Security).
    #[arg(long)]
    pub(crate) behind_https: bool,
    /// Let anyone who reaches the lab do anything, without signing in, even
    /// off loopback.
    #[arg(long)]
    pub(crate) insecure_no_auth: bool,
}

/// Why the access arguments make no policy.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AccessArgsError {
    #[error("--trusted-proxy-secret-file: {0}")]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
}

impl AccessArgs {
    /// The policy, or why these arguments make none (an unreadable secret,
    /// a proxy without one).
    pub(crate) fn policy(&self) -> Result<AccessPolicy, AccessArgsError> {
        let secret = self
            .trusted_proxy_secret_file
            .as_deref()
            .map(Secret::from_file)
            .transpose()?;
        let proxy = if self.trusted_proxy.is_empty() && secret.is_none() {
            None
        } else {
            Some(TrustedProxy::new(
                self.trusted_proxy.clone(),
                secret,
                self.trusted_user_header.clone(),
                self.proxy_default_role,
            )?)
        };
        Ok(AccessPolicy {
            open: if self.insecure_no_auth {
                Openness::Always
            } else if self.trusted_user_header.is_some() || self.behind_https {
                Openness::Never
            } else {
                Openness::WhileNoAccounts
            },
            proxy,
            secure_cookies: self.behind_https,
        })
    }
}

pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let access = match args.access.policy() {
        Ok(access) => access.for_address(args.addr),
        Err(why) => {
            to_stderr!("error: {why}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let metrics_token = match args.metrics_token_file.as_deref().map(Secret::from_file) {
        None => None,
        Some(Ok(token)) => Some(token),
        Some(Err(why)) => {
            to_stderr!("error: --metrics-token-file: {why}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    if args.access.behind_https && args.public_urls.is_empty() {
        to_stderr!(
            "error: behind HTTPS the lab is reached by a name, and it answers only to the names \
             it serves: give that name with --public-url https://NAME"
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    if args.access.behind_https && access.proxy.is_none() {
        tracing::warn!(
            "behind HTTPS without --trusted-proxy: every client looks like the proxy, so the \
             sign-in throttle slows them all together; name the proxy with --trusted-proxy and \
             --trusted-proxy-secret-file (deploy/nginx.conf)"
        );
    }
    if args.upload_retention < MIN_UPLOAD_RETENTION {
        to_stderr!(
            "error: --upload-retention: keep unused uploads an hour at the least (a launch \
             naming one must find it)"
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let (store, setup) = args.lab.open(!args.no_agent).await?;
    let admins = store
        .admin_count()
        .await
        .context("cannot read the accounts")?;
    if let Some(refusal) = access.refusal(args.addr, admins) {
        to_stderr!("error: {refusal}");
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let lab = mite_perf::lab::Lab::new(store, setup);
    let worker = if args.no_agent {
        None
    } else {
        match start_agent(&lab).await? {
            Ok(worker) => Some(worker),
            Err(code) => return Ok(code),
        }
    };
    let site_root = args
        .site_root
        .clone()
        .unwrap_or_else(mite_perf::web::default_site_root);
    let expiry = expire_sessions(&lab).await?;
    let upload_sweep = lab.keep_forgetting_unused_uploads(args.upload_retention);
    let app = mite_perf::web::router(
        lab.clone(),
        mite_perf::web::WebConfig {
            site_root: site_root.clone(),
            addr: args.addr,
            public_urls: args.public_urls.clone(),
            access,
            metrics_token,
            download_idle_limit: args.download_idle_limit,
        },
    )
    .await
    .context("cannot open the sign-in sessions")?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    tracing::info!(
        "mite perf lab: http://{} (database {}, site {}{})",
        args.addr,
        redact_url(&args.lab.db.database_url),
        site_root.display(),
        if args.no_agent { ", no agent" } else { "" }
    );
    let cancel = CancellationToken::new();
    let _signals = watch_signals(cancel.clone())?;
    let stop = cancel.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
    });
    cancel.cancelled().await;
    // Ctrl+C or SIGTERM: the run in progress stops in two stages at once,
    // whatever downloads are still open; then the server gets a moment to
    // finish its answers.
    lab.shut_down();
    if let Some(worker) = worker {
        stop_agent(worker).await;
    }
    match tokio::time::timeout(SHUTDOWN_ANSWERS_LIMIT, server).await {
        Ok(Ok(Err(e))) => tracing::error!("the web server failed: {e}"),
        Err(_) => tracing::info!("ended the answers still open"),
        _ => {}
    }
    expiry.abort();
    upload_sweep.abort();
    Ok(ExitCode::SUCCESS)
}

/// The shortest `--upload-retention`.
const MIN_UPLOAD_RETENTION: Duration = Duration::from_secs(3600);

/// Closes what this agent's dead predecessor left (its runs marked
/// running, its processes: only those of its own id, the same name, boot
/// and PID namespace, whose lab is gone; another agent's runs only once
/// their lease ran out), then registers the agent, refusing a name another
/// live agent holds, and starts its worker; once it shows as idle, its
/// leftovers are gone. `Err(exit code)` when another live agent holds its
/// name.
pub(crate) async fn start_agent(
    lab: &std::sync::Arc<mite_perf::lab::Lab>,
) -> anyhow::Result<Result<tokio::task::JoinHandle<()>, ExitCode>> {
    let setup = lab.setup();
    let leftovers = cleanup::cleanup(lab.store(), &setup.output_root, &setup.host).await?;
    for line in leftovers.lines() {
        tracing::info!("cleanup: {line}");
    }
    match lab.register_agent().await {
        Ok(()) => {}
        Err(mite_perf::lab::agent::AgentError::Store(e)) => return Err(e.into()),
        Err(taken) => {
            to_stderr!("error: {taken}");
            return Ok(Err(ExitCode::from(EXIT_USAGE)));
        }
    }
    let worker = lab.start_agent();
    tracing::info!(
        "agent {} executes runs (ports {})",
        setup.host.name,
        setup.host.ports
    );
    Ok(Ok(worker))
}

/// Waits for the agent's run to stop (it was told to).
pub(crate) async fn stop_agent(worker: tokio::task::JoinHandle<()>) {
    if tokio::time::timeout(SHUTDOWN_RUN_LIMIT, worker)
        .await
        .is_err()
    {
        tracing::error!(
            "the run did not stop within {} s",
            SHUTDOWN_RUN_LIMIT.as_secs()
        );
    }
}

/// How long `mite-perf agent` waits for its database at start (a service
/// may start before the database, or while it is busy).
pub(crate) const AGENT_DATABASE_PATIENCE: Duration = Duration::from_secs(60);

/// `mite-perf agent`: executes the queue's runs until Ctrl+C or SIGTERM.
pub(crate) async fn agent(args: LabArgs) -> anyhow::Result<ExitCode> {
    let (store, setup) = args.open_patiently(AGENT_DATABASE_PATIENCE, true).await?;
    tracing::info!("database {}", redact_url(&args.db.database_url));
    let lab = mite_perf::lab::Lab::new(store, setup);
    let worker = match start_agent(&lab).await? {
        Ok(worker) => worker,
        Err(code) => return Ok(code),
    };
    let cancel = CancellationToken::new();
    let _signals = watch_signals(cancel.clone())?;
    cancel.cancelled().await;
    lab.shut_down();
    stop_agent(worker).await;
    Ok(ExitCode::SUCCESS)
}

/// Deletes expired sign-in sessions now and then, for as long as the lab serves.
pub(crate) async fn expire_sessions(
    lab: &mite_perf::lab::Lab,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use tower_sessions::session_store::ExpiredDeletion;
    let sessions = lab
        .store()
        .sessions()
        .await
        .context("cannot open the sign-in sessions")?;
    Ok(tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            if let Err(e) = sessions.delete_expired().await {
                tracing::warn!("cannot delete expired sessions: {e}");
            }
        }
    }))
}

/// How long `serve` waits for the run in progress to stop when asked to end.
pub(crate) const SHUTDOWN_RUN_LIMIT: Duration = Duration::from_secs(30);
/// How long `serve` then lets open answers (downloads) go on.
pub(crate) const SHUTDOWN_ANSWERS_LIMIT: Duration = Duration::from_secs(2);
