//! A client of a lab's HTTP interface, for the commands that drive a lab
//! from elsewhere (`ci check`): uploads a wheel, launches a run, follows
//! it, cancels it, and reads its comparison, as a token's holder. Every
//! answer that is not a success becomes the lab's own [`LabError`] (its
//! JSON for server functions, its status and text otherwise), so callers
//! tell a refused token from a lab that is down.

use std::time::Duration;

use app::api::{AgentView, LabError, LaunchOutcome, RunView};
use domain::builds::{UploadedWheel, WheelCommit};
use domain::compare::ComparisonReport;
use reqwest::StatusCode;

use crate::http_client::http_client;

/// How long one request may take (an upload of a large wheel included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How many times an upload is tried while the lab is busy with others.
const UPLOAD_TRIES: u32 = 6;
/// How long to wait before trying a busy lab again (its `Retry-After`).
const UPLOAD_BUSY_WAIT: Duration = Duration::from_secs(5);

/// Why the lab could not be asked, or what it answered instead.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("`{0}` is not a lab's address: give http://HOST:PORT or https://HOST")]
    BadUrl(String),
    #[error("cannot reach the lab at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the lab answered {status} to {what}: {error}")]
    Lab {
        what: String,
        status: u16,
        error: LabError,
    },
    #[error("the lab's answer to {what} is not what this mite-perf reads: {reason}")]
    Unreadable { what: String, reason: String },
}

impl ClientError {
    /// The lab's error, when it answered one.
    pub fn lab_error(&self) -> Option<&LabError> {
        match self {
            ClientError::Lab { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A lab at an address, asked with a token.
pub struct LabClient {
    base: String,
    /// None for a lab on loopback without accounts.
    token: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for LabClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("LabClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// What a launch asks for (the launch form's fields; empty: its default).
#[derive(Debug, Clone, Default)]
pub struct Launch {
    pub mite: String,
    pub concurrencies: String,
    pub duration: String,
    pub interval: String,
    pub repeat: String,
    pub label: String,
    pub agent: String,
    pub scenario: String,
    pub profile: bool,
    pub bus_off: bool,
    /// Fixed work: requests per scenario (none: the duration's worth).
    pub requests: Option<u64>,
    /// Count instructions per request under Valgrind (fixed work only).
    pub valgrind: bool,
    /// Stop adding repeats once every figure is decided: `on` (compare's
    /// judgement) or `gate` (`ci check`'s); empty: every repeat runs.
    pub until_decided: String,
    /// The stopping rule's threshold and level (`5%`, `0.01`).
    pub threshold: String,
    pub alpha: String,
}

impl LabClient {
    pub fn new(url: &str, token: Option<&str>) -> Result<Self, ClientError> {
        let base = url.trim().trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base).map_err(|_| ClientError::BadUrl(base.clone()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(ClientError::BadUrl(base));
        }
        let http = http_client(REQUEST_TIMEOUT).map_err(|e| ClientError::Unreachable {
            url: base.clone(),
            reason: e.to_string(),
        })?;
        Ok(LabClient {
            base,
            token: token.map(str::to_string),
            http,
        })
    }

    /// The lab's address, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| ClientError::Unreachable {
                url: self.base.clone(),
                reason: without_url(&e),
            })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| ClientError::Unreachable {
                url: self.base.clone(),
                reason: without_url(&e),
            })?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| ClientError::Unreadable {
                what: what.to_string(),
                reason: e.to_string(),
            });
        }
        let error = serde_json::from_slice::<LabError>(&body)
            .unwrap_or_else(|_| error_of(status, &String::from_utf8_lossy(&body)));
        Err(ClientError::Lab {
            what: what.to_string(),
            status: status.as_u16(),
            error,
        })
    }

    /// Uploads the wheel `file_name` (`content`), built from `commit` when
    /// known (its runs then take their place in a trend's commit order).
    /// A lab busy with other uploads (503) is asked again a few times.
    pub async fn upload_wheel(
        &self,
        file_name: &str,
        content: Vec<u8>,
        commit: Option<&WheelCommit>,
    ) -> Result<UploadedWheel, ClientError> {
        let mut query = vec![("name", file_name.to_string())];
        if let Some(c) = commit {
            query.push(("commit", c.commit.clone()));
            query.push(("commit_time", c.time.to_string()));
            query.push(("parents", c.parents.join(",")));
        }
        let mut tries = 1;
        loop {
            let request = self
                .http
                .post(format!("{}/api/wheels", self.base))
                .query(&query)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(content.clone());
            match self.send("the upload", request).await {
                Err(ClientError::Lab { status: 503, .. }) if tries < UPLOAD_TRIES => {
                    tracing::info!("the lab is busy with other uploads: trying again");
                    tokio::time::sleep(UPLOAD_BUSY_WAIT).await;
                    tries += 1;
                }
                answer => return answer,
            }
        }
    }

    /// Queues a run.
    pub async fn launch(&self, launch: &Launch) -> Result<LaunchOutcome, ClientError> {
        let on = |b: bool| if b { "on" } else { "" }.to_string();
        let fields = [
            ("mite", launch.mite.clone()),
            ("concurrencies", launch.concurrencies.clone()),
            ("duration", launch.duration.clone()),
            ("interval", launch.interval.clone()),
            ("repeat", launch.repeat.clone()),
            ("label", launch.label.clone()),
            ("agent", launch.agent.clone()),
            ("scenario", launch.scenario.clone()),
            ("profile", on(launch.profile)),
            ("bus_off", on(launch.bus_off)),
            (
                "requests",
                launch.requests.map(|n| n.to_string()).unwrap_or_default(),
            ),
            ("valgrind", on(launch.valgrind)),
            ("until_decided", launch.until_decided.clone()),
            ("threshold", launch.threshold.clone()),
            ("alpha", launch.alpha.clone()),
        ];
        // Fields left out take the form's defaults, on the lab.
        let form: Vec<(String, String)> = fields
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| (format!("form[{name}]"), value))
            .collect();
        let request = self
            .http
            .post(format!("{}/api/launch_run", self.base))
            .form(&form);
        self.send("the launch", request).await
    }

    /// A run as its page shows it.
    pub async fn run(&self, run_id: i64) -> Result<Option<RunView>, ClientError> {
        let request = self
            .http
            .post(format!("{}/api/get_run", self.base))
            .form(&[("run_id", run_id.to_string())]);
        self.send("the run's status", request).await
    }

    /// Stops a run the token's holder launched (or removes it from the queue).
    pub async fn cancel(&self, run_id: i64) -> Result<bool, ClientError> {
        let request = self
            .http
            .post(format!("{}/api/cancel_run", self.base))
            .form(&[("run_id", run_id.to_string())]);
        self.send("the cancel", request).await
    }

    /// The lab's agents.
    pub async fn agents(&self) -> Result<Vec<AgentView>, ClientError> {
        let request = self.http.post(format!("{}/api/get_agents", self.base));
        self.send("the agents", request).await
    }

    /// The comparison of `sides` (`12:1,12:2`) with `threshold` (`5%`).
    pub async fn compare(
        &self,
        sides: &str,
        threshold: &str,
    ) -> Result<ComparisonReport, ClientError> {
        let request = self
            .http
            .post(format!("{}/api/compare_runs", self.base))
            .form(&[("runs", sides), ("threshold", threshold)]);
        self.send("the comparison", request).await
    }
}

/// reqwest's words without the URL (which may hold a query).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The lab's error for an answer that is not a server function's JSON.
fn error_of(status: StatusCode, text: &str) -> LabError {
    let text: String = text.trim().chars().take(500).collect();
    match status.as_u16() {
        400 | 413 | 422 => LabError::invalid("request", text),
        401 => LabError::Unauthenticated(text),
        403 => LabError::Forbidden(text),
        404 => LabError::NotFound(text),
        429 => LabError::Busy(text),
        503 => LabError::Unavailable(text),
        _ => LabError::Internal(format!("{status}: {text}")),
    }
}
