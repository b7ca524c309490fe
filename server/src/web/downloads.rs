//! Downloads: CSVs streamed from the database, `chart.html`, and logs.
//!
//! A CSV streams through a small channel, so memory stays flat whatever the
//! run's size. At most [`crate::lab::MAX_DOWNLOADS`] stream at once; one
//! whose client stops reading for [`IDLE_LIMIT`] (or `serve
//! --download-idle-limit`), or that takes longer than
//! [`TIME_LIMIT`], is ended, so slow clients cannot hold the database.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::error::SendTimeoutError;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use app::api::LabError;
use domain::access::{Action, Caller};

use super::caller::Signed;
use super::errors::ErrorResponse;
use super::WebState;
use crate::model::ProcessKind;
use crate::paths::is_inside;
use crate::profile::{folded, render};
use crate::reports::csv::Layout;
use crate::reports::{chart, collector, csv, transactions};
use crate::store::{SampleSource, StoreError};

/// A client that takes no data for this long loses its download (by default).
pub const IDLE_LIMIT: Duration = Duration::from_secs(30);
/// No download streams for longer than this.
pub const TIME_LIMIT: Duration = Duration::from_secs(15 * 60);

/// The headers of a flame graph: an SVG whose script (inferno's search and
/// zoom) runs only sandboxed, in an origin of its own, when it is opened
/// alone; drawn as an image on the lab's pages, it runs none.
fn flame_graph_headers() -> [(header::HeaderName, &'static str); 2] {
    [
        (header::CONTENT_TYPE, "image/svg+xml"),
        (header::CONTENT_SECURITY_POLICY, FLAME_GRAPH_POLICY),
    ]
}

/// The Content-Security-Policy of a flame graph opened alone.
pub const FLAME_GRAPH_POLICY: &str = "sandbox allow-scripts; default-src 'none'; \
    script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'";

fn attachment(content_type: &str, filename: &str) -> [(header::HeaderName, String); 2] {
    [
        (header::CONTENT_TYPE, content_type.to_string()),
        (
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ),
    ]
}

/// Scenario `id`, if the caller may read its run.
async fn readable_scenario(
    state: &WebState,
    caller: &domain::access::Caller,
    id: i64,
) -> Result<crate::store::ScenarioRecord, LabError> {
    let scenario = state
        .lab
        .store()
        .scenario(id)
        .await?
        .ok_or_else(|| LabError::NotFound(format!("no scenario {id}")))?;
    caller.require(Action::ReadRun(scenario.run_id))?;
    Ok(scenario)
}

/// A file on disk, streamed as an attachment.
fn file_response(file: tokio::fs::File, content_type: &str, filename: &str) -> Response {
    (
        attachment(content_type, filename),
        Body::from_stream(tokio_util::io::ReaderStream::new(file)),
    )
        .into_response()
}

/// Streams a CSV made of `chunks` (read from the database as the client
/// takes them), in one of the download slots.
fn csv_response(
    state: WebState,
    chunks: BoxStream<'static, Result<Vec<u8>, StoreError>>,
    filename: String,
) -> Response {
    let Some(permit) = state.lab.download_permit() else {
        return ErrorResponse(LabError::Busy(format!(
            "{} downloads are streaming already: try again in a moment",
            crate::lab::MAX_DOWNLOADS
        )))
        .into_response();
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    // Set when the download is ended early: the body then ends in an error,
    // so the client sees a cut-off answer, never a short CSV that looks whole.
    let cut = Arc::new(AtomicBool::new(false));
    let cut_by_producer = cut.clone();
    let name = filename.clone();
    let idle_limit = state.download_idle_limit;
    tokio::spawn(async move {
        let _permit = permit;
        let started = Instant::now();
        let mut chunks = chunks;
        while let Some(chunk) = chunks.next().await {
            let failed = chunk.is_err();
            let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()));
            if started.elapsed() > TIME_LIMIT {
                tracing::warn!(
                    "{name}: the download passed {} s and was ended",
                    TIME_LIMIT.as_secs()
                );
                cut_by_producer.store(true, Ordering::SeqCst);
                return;
            }
            match tx.send_timeout(chunk, idle_limit).await {
                Ok(()) if !failed => {}
                Ok(()) => return,
                Err(SendTimeoutError::Timeout(_)) => {
                    tracing::warn!(
                        "{name}: the client took no data for {} s; the download was ended",
                        idle_limit.as_secs()
                    );
                    cut_by_producer.store(true, Ordering::SeqCst);
                    return;
                }
                // The client went away.
                Err(SendTimeoutError::Closed(_)) => return,
            }
        }
    });
    let mut rx = rx;
    let mut ended = false;
    // poll_recv keeps answering "ended" after the end (compression polls again).
    let body = futures_util::stream::poll_fn(move |cx| {
        if ended {
            return std::task::Poll::Ready(None);
        }
        match rx.poll_recv(cx) {
            std::task::Poll::Ready(None) if cut.load(Ordering::SeqCst) => {
                ended = true;
                std::task::Poll::Ready(Some(Err(std::io::Error::other("download ended early"))))
            }
            other => other,
        }
    });
    (
        attachment("text/csv; charset=utf-8", &filename),
        Body::from_stream(body),
    )
        .into_response()
}

pub async fn run_csv(
    State(state): State<WebState>,
    Signed(caller): Signed,
    Path(id): Path<i64>,
) -> Response {
    if let Err(e) = caller.require(Action::ReadRun(id)) {
        return ErrorResponse(e.into()).into_response();
    }
    match state.lab.existing_run(id).await {
        Ok(_) => {
            let chunks = csv::chunks(state.lab.store(), SampleSource::Run(id), Layout::Samples);
            csv_response(state, chunks, format!("run-{id}-samples.csv"))
        }
        Err(e) => ErrorResponse(e).into_response(),
    }
}

/// A scenario's streamed CSV in `layout`, named `run-R-NAME{suffix}.csv`,
/// for a caller who may read its run.
async fn scenario_layout_csv(
    state: WebState,
    caller: &Caller,
    id: i64,
    layout: Layout,
    suffix: &str,
) -> Response {
    match readable_scenario(&state, caller, id).await {
        Ok(s) => {
            let chunks = csv::chunks(state.lab.store(), SampleSource::Scenario(id), layout);
            csv_response(
                state,
                chunks,
                format!("run-{}-{}{suffix}.csv", s.run_id, s.name),
            )
        }
        Err(e) => ErrorResponse(e).into_response(),
    }
}

pub async fn scenario_csv(
    State(state): State<WebState>,
    Signed(caller): Signed,
    Path(id): Path<i64>,
) -> Response {
    scenario_layout_csv(state, &caller, id, Layout::Samples, "").await
}

/// `processes.csv` of one scenario (`/scenarios/{id}/processes.csv`): every
/// process's threads, files, scheduling and IO at every sample.
pub async fn scenario_processes_csv(
    State(state): State<WebState>,
    Signed(caller): Signed,
    Path(id): Path<i64>,
) -> Response {
    scenario_layout_csv(state, &caller, id, Layout::Processes, "-processes").await
}

pub async fn run_chart(
    State(state): State<WebState>,
    Signed(caller): Signed,
    Path(id): Path<i64>,
) -> Response {
    let answer = async {
        caller.require(Action::ReadRun(id))?;
        state.lab.existing_run(id).await?;
        // Made in memory, so it takes a download slot; its points are
        // bounded per chart ([`chart::HTML_POINTS`]) whatever the run's length.
        let _permit = state.lab.download_permit().ok_or_else(|| {
            LabError::Busy(format!(
                "{} downloads are streaming already: try again in a moment",
                crate::lab::MAX_DOWNLOADS
            ))
        })?;
        let html = chart::render(state.lab.store(), id, None).await?;
        Ok((
            attachment("text/html; charset=utf-8", &format!("run-{id}-chart.html")),
            html,
        ))
    };
    match answer.await {
        Ok(ok) => ok.into_response(),
        Err(e) => ErrorResponse(e).into_response(),
    }
}

pub async fn scenario_log(
    State(state): State<WebState>,
    Signed(caller): Signed,
    Path((id, process)): Path<(i64, String)>,
) -> Response {
    match log_file(&state, &caller, id, &process).await {
        Ok((file, kind)) => file_response(
            file,
            "text/plain; charset=utf-8",
            &format!("scenario-{id}-{kind}.log"),
        ),
        Err(e) => ErrorResponse(e).into_response(),
    }
}

/// The log of `process` in scenario `id`, if the lab wrote it (and its
/// recorded path lies inside the lab's output folder).
async fn log_file(
    state: &WebState,
    caller: &domain::access::Caller,
    id: i64,
    process: &str,
) -> Result<(tokio::fs::File, ProcessKind), LabError> {
    let kind: ProcessKind = process.parse().map_err(|_| {
        let known: Vec<&str> = ProcessKind::ALL.iter().map(|k| k.as_str()).collect();
        LabError::NotFound(format!(
            "no process `{process}`: the processes are {}",
            known.join(", ")
        ))
    })?;
    let store = state.lab.store();
    readable_scenario(state, caller, id).await?;
    let record = store
        .processes(id)
        .await?
        .into_iter()
        // Stored names are read as kinds: older runs call the target `http`.
        .find(|p| p.name.parse::<ProcessKind>().ok() == Some(kind))
        .ok_or_else(|| LabError::NotFound(format!("scenario {id} has no {kind} log")))?;
    let path = std::path::Path::new(&record.log_path);
    if !is_inside(&state.lab.setup().output_root, path) {
        tracing::warn!(
            "scenario {id}: the {kind} log's recorded path {} is outside the output folder",
            path.display()
        );
        return Err(LabError::Forbidden(format!(
            "the {kind} log of scenario {id} is not in this lab's output folder"
        )));
    }
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| LabError::NotFound(format!("the {kind} log of scenario {id} is gone: {e}")))?;
    Ok((file, kind))
}

/// What a profile is served as.
#[derive(Debug, Clone, Copy)]
enum ProfileAs {
    /// inferno's SVG, shown in the page (search, zoom, hover).
    FlameGraph,
    /// The folded stacks, for inferno, flamegraph.pl or a diff.
    Folded,
    /// speedscope's JSON.
    Speedscope,
}

pub async fn profile_flamegraph(state: State<WebState>, caller: Signed, id: Path<i64>) -> Response {
    profile_as(state, caller, id, ProfileAs::FlameGraph).await
}

pub async fn profile_folded(state: State<WebState>, caller: Signed, id: Path<i64>) -> Response {
    profile_as(state, caller, id, ProfileAs::Folded).await
}

pub async fn profile_speedscope(state: State<WebState>, caller: Signed, id: Path<i64>) -> Response {
    profile_as(state, caller, id, ProfileAs::Speedscope).await
}

async fn profile_as(
    State(state): State<WebState>,
    Signed(caller): Signed,
    Path(id): Path<i64>,
    shape: ProfileAs,
) -> Response {
    let answer = async {
        let store = state.lab.store();
        let (scenario_id, profile, text) = store
            .profile_stacks(id)
            .await?
            .ok_or_else(|| LabError::NotFound(format!("no profile {id}")))?;
        let scenario = readable_scenario(&state, &caller, scenario_id).await?;
        // Stored text is read as stacks again before it is drawn or sent.
        let stacks = folded::parse(&text)
            .map_err(|e| LabError::Internal(format!("profile {id} is unreadable: {e}")))?;
        let name = format!("scenario-{scenario_id}-{}-{}", profile.process, profile.pid);
        Ok::<_, LabError>(match shape {
            ProfileAs::FlameGraph => {
                let title = format!(
                    "{} (pid {}) in {}: {} samples at {}/s",
                    profile.process, profile.pid, scenario.name, profile.samples, profile.rate
                );
                let svg = render::flamegraph_svg(&title, &stacks)?.ok_or_else(|| {
                    LabError::NotFound(format!("profile {id} holds no sample to draw"))
                })?;
                (flame_graph_headers(), svg).into_response()
            }
            ProfileAs::Folded => (
                attachment("text/plain; charset=utf-8", &format!("{name}.folded")),
                folded::to_text(&stacks),
            )
                .into_response(),
            ProfileAs::Speedscope => (
                attachment("application/json", &format!("{name}.speedscope.json")),
                folded::speedscope(&name, &stacks).to_string(),
            )
                .into_response(),
        })
    };
    match answer.await {
        Ok(response) => response,
        Err(e) => ErrorResponse(e).into_response(),
    }
}

/// One of mite's collector files a scenario kept (raw msgpack, as mite's
/// collector wrote it).
pub async fn collector_file(
    State(state): State<WebState>,
    Signed(caller): Signed,
    Path((id, name)): Path<(i64, String)>,
) -> Response {
    match open_collector_file(&state, &caller, id, &name).await {
        Ok(file) => file_response(
            file,
            "application/octet-stream",
            &format!("scenario-{id}-collector-{name}"),
        ),
        Err(e) => ErrorResponse(e).into_response(),
    }
}

/// The collector file `name` of scenario `id`, if the scenario kept it.
async fn open_collector_file(
    state: &WebState,
    caller: &domain::access::Caller,
    id: i64,
    name: &str,
) -> Result<tokio::fs::File, LabError> {
    let store = state.lab.store();
    let scenario = readable_scenario(state, caller, id).await?;
    let keep = store
        .run(scenario.run_id)
        .await?
        .map(|run| run.params.collector)
        .unwrap_or_default();
    let processes = store.processes(id).await?;
    let gone = || {
        LabError::NotFound(format!(
            "scenario {id} has no collector file `{name}`: its run keeps {keep} of the \
             collector's data, and this web front has the files of runs on its own host only"
        ))
    };
    let dir = state.lab.collector_folder(&processes).ok_or_else(gone)?;
    let path = collector::file_path(&dir, name).ok_or_else(gone)?;
    tokio::fs::File::open(&path).await.map_err(|_| gone())
}

/// `?runs=12,15&threshold=5%` (and `&across=1` for runs of different
/// machines) for [`comparison_csv`].
#[derive(Debug, serde::Deserialize)]
pub struct CompareQuery {
    runs: String,
    threshold: Option<String>,
    across: Option<String>,
}

/// A comparison as CSV: one row per side × concurrency × figure.
pub async fn comparison_csv(
    State(state): State<WebState>,
    Signed(caller): Signed,
    axum::extract::Query(query): axum::extract::Query<CompareQuery>,
) -> Response {
    use app::api::LabApi;
    if let Err(e) = caller.require(Action::Read) {
        return ErrorResponse(e.into()).into_response();
    }
    let filename = format!("compare-{}.csv", query.runs.replace([',', ':'], "-"));
    let across = query
        .across
        .as_deref()
        .is_some_and(|a| a == "1" || a == "true");
    match state.lab.compare(query.runs, query.threshold, across).await {
        Ok(report) => (
            attachment("text/csv; charset=utf-8", &filename),
            crate::compare::format::render(&report, crate::compare::format::Format::Csv),
        )
            .into_response(),
        Err(e) => ErrorResponse(e).into_response(),
    }
}

/// `?runs=12,15&concurrency=10` for [`differential_flamegraph`].
#[derive(Debug, serde::Deserialize)]
pub struct DifferentialQuery {
    runs: String,
    concurrency: u32,
}

/// The runners' differential flame graph between two sides, per request.
pub async fn differential_flamegraph(
    State(state): State<WebState>,
    Signed(caller): Signed,
    axum::extract::Query(query): axum::extract::Query<DifferentialQuery>,
) -> Response {
    if let Err(e) = caller.require(Action::Read) {
        return ErrorResponse(e.into()).into_response();
    }
    match state
        .lab
        .differential_flamegraph(&query.runs, query.concurrency)
        .await
    {
        Ok(svg) => (flame_graph_headers(), svg).into_response(),
        Err(e) => ErrorResponse(e).into_response(),
    }
}

/// A run's figures per build and concurrency over its repeats, as CSV.
/// `transactions.csv` of a run (`/runs/{id}/transactions.csv`): mite's own
/// account per transaction and second, read from its bus.
pub async fn run_transactions_csv(
    State(state): State<WebState>,
    Signed(caller): Signed,
    Path(id): Path<i64>,
) -> Response {
    let scenarios = async {
        caller.require(Action::ReadRun(id))?;
        state.lab.existing_run(id).await?;
        Ok::<_, LabError>(state.lab.store().scenarios(id).await?)
    };
    match scenarios.await {
        Ok(scenarios) => {
            let chunks = transactions::chunks(state.lab.store(), scenarios);
            csv_response(state, chunks, format!("run-{id}-transactions.csv"))
        }
        Err(e) => ErrorResponse(e).into_response(),
    }
}

/// `transactions.csv` of one scenario (`/scenarios/{id}/transactions.csv`).
pub async fn scenario_transactions_csv(
    State(state): State<WebState>,
    Signed(caller): Signed,
    Path(id): Path<i64>,
) -> Response {
    match readable_scenario(&state, &caller, id).await {
        Ok(scenario) => {
            let filename = format!("run-{}-{}-transactions.csv", scenario.run_id, scenario.name);
            let chunks = transactions::chunks(state.lab.store(), vec![scenario]);
            csv_response(state, chunks, filename)
        }
        Err(e) => ErrorResponse(e).into_response(),
    }
}

pub async fn run_figures_csv(
    State(state): State<WebState>,
    Signed(caller): Signed,
    Path(id): Path<i64>,
) -> Response {
    let answer = async {
        caller.require(Action::ReadRun(id))?;
        let store = state.lab.store();
        let matrix = crate::compare::matrix::run_matrix(store, id)
            .await?
            .ok_or_else(|| LabError::NotFound(format!("no run {id}")))?;
        Ok((
            attachment("text/csv; charset=utf-8", &format!("run-{id}-figures.csv")),
            crate::compare::matrix::matrix_csv(id, &matrix.rows),
        ))
    };
    match answer.await {
        Ok(ok) => ok.into_response(),
        Err(e) => ErrorResponse(e).into_response(),
    }
}
