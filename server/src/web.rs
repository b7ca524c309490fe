//! `mite-perf serve`: the browser lab over HTTP. Leptos renders the pages
//! (server functions reach the [`Lab`] through context); plain routes serve
//! health, CSV downloads streamed from the database, chart.html, logs and
//! ECharts, all with compression and cache headers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use app::api::LabApi;
use app::{shell, App};

use crate::lab::Lab;
use crate::model::ProcessKind;
use crate::reports::{chart, csv};
use crate::store::{SampleRow, StoreError};

#[derive(Clone)]
struct WebState {
    lab: Arc<Lab>,
    leptos: LeptosOptions,
}

impl axum::extract::FromRef<WebState> for LeptosOptions {
    fn from_ref(state: &WebState) -> Self {
        state.leptos.clone()
    }
}

/// Where cargo-leptos put the site (`target/site`), next to the binary.
pub fn default_site_root() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("site")))
        .filter(|p| p.join("pkg").is_dir())
        .unwrap_or_else(|| PathBuf::from("target/site"))
}

/// The lab's HTTP application.
pub fn router(lab: Arc<Lab>, site_root: PathBuf, addr: SocketAddr) -> Router {
    let leptos = LeptosOptions::builder()
        .output_name("mite-perf")
        .site_root(site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build();
    let routes = generate_route_list(App);
    let api: Arc<dyn LabApi> = lab.clone();
    let state = WebState {
        lab,
        leptos: leptos.clone(),
    };
    let cache = SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    let files = Router::new()
        .route("/assets/echarts.min.js", get(echarts))
        .fallback(leptos_axum::file_and_error_handler::<WebState, _>(shell))
        .layer(cache);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/runs/{id}/samples.csv", get(run_csv))
        .route("/runs/{id}/chart.html", get(run_chart))
        .route("/scenarios/{id}/samples.csv", get(scenario_csv))
        .route("/scenarios/{id}/logs/{process}", get(scenario_log))
        .leptos_routes_with_context(&state, routes, move || provide_context(api.clone()), {
            let leptos = leptos.clone();
            move || shell(leptos.clone())
        })
        .merge(files)
        .layer(CompressionLayer::new())
        .with_state(state)
}

async fn echarts() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        chart::ECHARTS_JS,
    )
}

#[derive(serde::Serialize)]
struct Health {
    database: String,
    run_in_progress: Option<i64>,
}

async fn healthz(State(state): State<WebState>) -> impl IntoResponse {
    let db = state.lab.store().ping().await;
    let status = if db.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            database: db
                .map(|()| "ok".to_string())
                .unwrap_or_else(|e| e.to_string()),
            run_in_progress: state.lab.current_run(),
        }),
    )
}

fn not_found(what: String) -> Response {
    (StatusCode::NOT_FOUND, what).into_response()
}

fn server_error(e: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
}

/// A CSV body streamed from the store: rows go out as they are read, through
/// a small channel, so memory stays flat whatever the run's size.
fn csv_response(
    state: WebState,
    filename: String,
    rows: impl FnOnce(
            &crate::store::Store,
        ) -> futures_util::stream::BoxStream<'_, Result<SampleRow, StoreError>>
        + Send
        + 'static,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(16);
    tokio::spawn(async move {
        let store = state.lab.store().clone();
        let mut stream = rows(&store);
        let mut chunk = Vec::with_capacity(64 * 1024);
        chunk.extend_from_slice(csv::HEADER.as_bytes());
        while let Some(row) = stream.next().await {
            match row {
                Ok(row) => chunk.extend_from_slice(csv::line(&row).as_bytes()),
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            }
            if chunk.len() >= 60 * 1024 && tx.send(Ok(std::mem::take(&mut chunk))).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Ok(chunk)).await;
    });
    // poll_recv keeps answering "ended" after the end (compression polls again).
    let mut rx = rx;
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

async fn run_csv(State(state): State<WebState>, Path(id): Path<i64>) -> Response {
    match state.lab.store().run(id).await {
        Ok(Some(_)) => csv_response(state, format!("run-{id}-samples.csv"), move |s| {
            s.run_samples(id)
        }),
        Ok(None) => not_found(format!("no run {id}")),
        Err(e) => server_error(e),
    }
}

async fn scenario_csv(State(state): State<WebState>, Path(id): Path<i64>) -> Response {
    match state.lab.store().scenario(id).await {
        Ok(Some(s)) => csv_response(
            state,
            format!("run-{}-{}.csv", s.run_id, s.name),
            move |store| store.scenario_sample_rows(id),
        ),
        Ok(None) => not_found(format!("no scenario {id}")),
        Err(e) => server_error(e),
    }
}

async fn run_chart(State(state): State<WebState>, Path(id): Path<i64>) -> Response {
    match state.lab.store().run(id).await {
        Ok(Some(_)) => match chart::render(state.lab.store(), id).await {
            Ok(html) => (
                [
                    (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"run-{id}-chart.html\""),
                    ),
                ],
                html,
            )
                .into_response(),
            Err(e) => server_error(e),
        },
        Ok(None) => not_found(format!("no run {id}")),
        Err(e) => server_error(e),
    }
}

async fn scenario_log(
    State(state): State<WebState>,
    Path((id, process)): Path<(i64, String)>,
) -> Response {
    let Ok(kind) = process.parse::<ProcessKind>() else {
        return not_found(format!("no process {process}"));
    };
    let processes = match state.lab.store().processes(id).await {
        Ok(p) => p,
        Err(e) => return server_error(e),
    };
    let Some(record) = processes.into_iter().find(|p| p.name == kind.as_str()) else {
        return not_found(format!("scenario {id} has no {kind} log"));
    };
    match tokio::fs::File::open(&record.log_path).await {
        Ok(file) => (
            [
                (
                    header::CONTENT_TYPE,
                    "text/plain; charset=utf-8".to_string(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"scenario-{id}-{kind}.log\""),
                ),
            ],
            Body::from_stream(tokio_util::io::ReaderStream::new(file)),
        )
            .into_response(),
        Err(e) => not_found(format!("{}: {e}", record.log_path)),
    }
}
