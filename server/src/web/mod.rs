//! `mite-perf serve`: the browser lab over HTTP. Leptos renders the pages
//! (server functions reach the [`Lab`] through context); plain routes serve
//! health ([`health`]), downloads ([`downloads`]), signing in and out
//! ([`signin`]) and share links ([`share`]); every request has its caller found first
//! ([`crate::access`]); every error answer carries the status of its kind
//! ([`errors`]); requests that may change something come from the lab's own
//! pages or from no browser ([`origin`]). Compression and cache headers on
//! everything, a bound on request bodies.

pub mod caller;
pub mod downloads;
pub mod errors;
pub mod health;
pub mod host;
pub mod metrics;
pub mod origin;
pub mod share;
pub mod signin;
pub mod uploads;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::routing::{get, post};
use axum::Router;
use axum_login::AuthManagerLayerBuilder;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use app::api::LabApi;
use app::{shell, App};

use crate::access::accounts::Accounts;
use crate::access::secret::Secret;
use crate::access::{Access, AccessPolicy};
use crate::lab::Lab;
use crate::reports::chart;
use crate::store::StoreError;
use caller::identify;
use host::{PublicUrl, ServedHosts};

/// The largest request body the lab reads (a launch form is a few hundred
/// bytes), but for an uploaded wheel ([`uploads::MAX_WHEEL_BYTES`]).
pub const MAX_BODY: usize = 64 * 1024;

/// How long a signed-in browser stays signed in without using the lab.
pub const SESSION_IDLE_LIMIT: time::Duration = time::Duration::days(14);
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "mite_perf_session";

#[derive(Clone)]
pub struct WebState {
    pub lab: Arc<Lab>,
    pub access: Arc<Access>,
    /// The token a metrics scraper sends (`--metrics-token-file`).
    pub metrics_token: Option<Arc<Secret>>,
    /// A download whose client takes no data this long is ended.
    pub download_idle_limit: std::time::Duration,
    leptos: LeptosOptions,
}

/// Where the site is and who may in.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The site cargo-leptos built.
    pub site_root: PathBuf,
    /// The address the lab listens on.
    pub addr: SocketAddr,
    /// Where the lab is reached from outside (`--public-url`): their names
    /// are answered to, besides the bound address and loopback names.
    pub public_urls: Vec<PublicUrl>,
    pub access: AccessPolicy,
    /// The token a metrics scraper sends for `/metrics` (admins' API
    /// tokens may too).
    pub metrics_token: Option<Secret>,
    /// A download whose client takes no data this long is ended.
    pub download_idle_limit: std::time::Duration,
}

impl WebConfig {
    /// A lab on 127.0.0.1:3000 without accounts.
    pub fn local(site_root: PathBuf) -> Self {
        WebConfig {
            site_root,
            addr: ([127, 0, 0, 1], 3000).into(),
            public_urls: Vec::new(),
            access: AccessPolicy::local(),
            metrics_token: None,
            download_idle_limit: downloads::IDLE_LIMIT,
        }
    }
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

/// The pages' routes, listed once per process: leptos's
/// `generate_route_list` sets a process-wide flag while it runs, under
/// which a page resource polled on another thread meanwhile waits forever
/// (leptos issue #4773). Listed once, before any router exists, no page
/// can be rendering then.
fn page_routes() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The paths of the pages the router serves (`/runs/{id}`), from the same
/// once-made list: what a permission check must cover.
pub fn page_paths() -> Vec<String> {
    page_routes()
        .iter()
        .map(|route| route.path().to_string())
        .collect()
}

/// The lab's HTTP application. Serve it with the peer's address
/// (`into_make_service_with_connect_info::<SocketAddr>()`): a proxy's
/// header counts only from the proxy's own addresses.
pub async fn router(lab: Arc<Lab>, config: WebConfig) -> Result<Router, StoreError> {
    let leptos = LeptosOptions::builder()
        .output_name("mite-perf")
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.addr)
        .build();
    let routes = page_routes();
    let api: Arc<dyn LabApi> = lab.clone();
    let store = lab.store().clone();
    let sessions = SessionManagerLayer::new(store.sessions().await?)
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.access.secure_cookies)
        .with_expiry(Expiry::OnInactivity(SESSION_IDLE_LIMIT));
    let accounts = AuthManagerLayerBuilder::new(
        Accounts {
            store: store.clone(),
        },
        sessions,
    )
    .build();
    let hosts = Arc::new(ServedHosts::new(config.addr, &config.public_urls));
    let secure_cookies = config.access.secure_cookies;
    let access = Arc::new(Access::new(config.access, store));
    let state = WebState {
        lab,
        access: access.clone(),
        metrics_token: config.metrics_token.map(Arc::new),
        download_idle_limit: config.download_idle_limit,
        leptos: leptos.clone(),
    };
    let files_cache = SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    let files = Router::new()
        .route("/assets/echarts.min.js", get(echarts))
        .fallback(leptos_axum::file_and_error_handler::<WebState, _>(shell))
        .layer(files_cache);
    let app = Router::new()
        .route("/signin", post(signin::sign_in))
        .route("/signout", post(signin::sign_out))
        .route("/share/{secret}", get(share::open_share_link))
        .route("/runs/{id}/samples.csv", get(downloads::run_csv))
        .route("/compare.csv", get(downloads::comparison_csv))
        .route(
            "/compare/flamegraph.svg",
            get(downloads::differential_flamegraph),
        )
        .route("/runs/{id}/figures.csv", get(downloads::run_figures_csv))
        .route(
            "/runs/{id}/transactions.csv",
            get(downloads::run_transactions_csv),
        )
        .route(
            "/scenarios/{id}/transactions.csv",
            get(downloads::scenario_transactions_csv),
        )
        .route(
            "/scenarios/{id}/processes.csv",
            get(downloads::scenario_processes_csv),
        )
        .route("/runs/{id}/chart.html", get(downloads::run_chart))
        .route("/scenarios/{id}/samples.csv", get(downloads::scenario_csv))
        .route(
            "/scenarios/{id}/logs/{process}",
            get(downloads::scenario_log),
        )
        .route(
            "/scenarios/{id}/collector/{name}",
            get(downloads::collector_file),
        )
        .route(
            "/profiles/{id}/flamegraph.svg",
            get(downloads::profile_flamegraph),
        )
        .route(
            "/profiles/{id}/stacks.folded",
            get(downloads::profile_folded),
        )
        .route(
            "/profiles/{id}/speedscope.json",
            get(downloads::profile_speedscope),
        )
        .leptos_routes_with_context(&state, routes, move || provide_context(api.clone()), {
            let leptos = leptos.clone();
            move || shell(leptos.clone())
        })
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        // The one route that takes more than a form: a wheel, under a
        // bound of its own.
        .merge(
            Router::new()
                .route("/api/wheels", post(uploads::upload_wheel))
                .layer(axum::extract::DefaultBodyLimit::max(
                    uploads::MAX_WHEEL_BYTES,
                ))
                .layer(RequestBodyLimitLayer::new(uploads::MAX_WHEEL_BYTES)),
        )
        .layer(axum::middleware::from_fn_with_state(access, identify))
        .layer(accounts)
        .layer(axum::middleware::from_fn(errors::sessions_unavailable));
    // Health and the site's files answer without sessions or callers: a
    // health check must not depend on them, and the sign-in page needs
    // its script and styles.
    let unsigned = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::serve_metrics))
        .merge(files)
        .layer(RequestBodyLimitLayer::new(MAX_BODY));
    Ok(app
        .merge(unsigned)
        .layer(axum::middleware::from_fn(metrics::count_requests))
        .layer(axum::middleware::from_fn(errors::server_fn_status))
        .layer(axum::middleware::from_fn(origin::same_origin_only))
        .layer(CompressionLayer::new())
        // A request for a name the lab does not serve (DNS rebinding)
        // reaches nothing else.
        .layer(axum::middleware::from_fn_with_state(
            hosts,
            host::served_hosts_only,
        ))
        .layer(axum::middleware::map_response_with_state(
            Https(secure_cookies),
            security_headers,
        ))
        // Outermost: everything logged while a request is answered says
        // which request it was.
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state))
}

/// A request's span: its method and route. The route as declared
/// (`/share/{secret}`), so no share link's secret is logged; a path that
/// matched no route (pages, files) is cut short; never the query.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    /// Characters of an unrouted path kept in the log.
    const LOGGED_PATH: usize = 120;
    let route = match request.extensions().get::<axum::extract::MatchedPath>() {
        Some(matched) => matched.as_str().to_string(),
        None => request.uri().path().chars().take(LOGGED_PATH).collect(),
    };
    tracing::info_span!("request", method = %request.method(), route = %route)
}

/// Whether the lab is reached over HTTPS only (`serve --behind-https`).
#[derive(Debug, Clone, Copy)]
struct Https(bool);

/// How long a browser that saw the lab over HTTPS keeps to HTTPS for it
/// (`Strict-Transport-Security`): a year, renewed by every answer.
pub const HSTS: &str = "max-age=31536000";

/// Headers every answer carries: no type sniffing, no framing by other
/// sites, no full URL (a share link's secret) sent to other origins, and,
/// unless the answer has its own (pages, flame graphs), a policy under
/// which nothing it holds may run. Behind HTTPS, browsers are also told
/// to come back over HTTPS only (HSTS), so that no one on their network
/// can strip TLS from a later visit and read its session cookie.
async fn security_headers(
    axum::extract::State(Https(https)): axum::extract::State<Https>,
    mut response: axum::response::Response,
) -> axum::response::Response {
    let headers = response.headers_mut();
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(NOTHING_RUNS_POLICY));
    response
}

/// The Content-Security-Policy of an answer that is not a page: nothing in
/// it runs or loads, and no site frames it.
pub const NOTHING_RUNS_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; sandbox";

async fn echarts() -> impl axum::response::IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        chart::ECHARTS_JS,
    )
}
