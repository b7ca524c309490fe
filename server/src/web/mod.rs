//! `mite-perf serve`: the browser lab over HTTP. Leptos renders the pages
//! (server functions reach the [`Lab`] through context); plain routes serve
//! health ([`health`]) and downloads ([`downloads`]); every error answer
//! carries the status of its kind ([`errors`]); requests that may change
//! something come from the lab's own pages or from no browser ([`origin`]).
//! Compression and cache headers on everything, a bound on request bodies.

pub mod downloads;
pub mod errors;
pub mod health;
pub mod origin;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::routing::get;
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use app::api::LabApi;
use app::{shell, App};

use crate::lab::Lab;
use crate::reports::chart;

/// The largest request body the lab reads (a launch form is a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Clone)]
pub struct WebState {
    pub lab: Arc<Lab>,
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
        .route("/healthz", get(health::healthz))
        .route("/runs/{id}/samples.csv", get(downloads::run_csv))
        .route("/compare.csv", get(downloads::comparison_csv))
        .route("/runs/{id}/figures.csv", get(downloads::run_figures_csv))
        .route("/runs/{id}/chart.html", get(downloads::run_chart))
        .route("/scenarios/{id}/samples.csv", get(downloads::scenario_csv))
        .route(
            "/scenarios/{id}/logs/{process}",
            get(downloads::scenario_log),
        )
        .leptos_routes_with_context(&state, routes, move || provide_context(api.clone()), {
            let leptos = leptos.clone();
            move || shell(leptos.clone())
        })
        .merge(files)
        .layer(axum::middleware::from_fn(errors::server_fn_status))
        .layer(axum::middleware::from_fn(origin::same_origin_only))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(CompressionLayer::new())
        .with_state(state)
}

async fn echarts() -> impl axum::response::IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        chart::ECHARTS_JS,
    )
}
