//! One error type, one way to answer: a [`LabError`] becomes a response with
//! the status of its kind, whether a plain route or a server function said it.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use app::api::LabError;

/// The header server functions put on their error answers.
const SERVER_FN_ERROR: &str = "serverfnerror";
/// Server-function error bodies are small JSON; anything bigger is left alone.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A [`LabError`] as a plain-text answer with the status of its kind.
pub struct ErrorResponse(pub LabError);

impl From<LabError> for ErrorResponse {
    fn from(e: LabError) -> Self {
        ErrorResponse(e)
    }
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", self.0),
        )
            .into_response()
    }
}

/// A [`LabError`] answered before a request reached its handler (by the
/// access layer): as a server function's error (JSON, with the header the
/// pages read) on `/api/…`, else as plain text.
pub fn early_error(path: &str, error: LabError) -> Response {
    if !path.starts_with("/api/") {
        return ErrorResponse(error).into_response();
    }
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&error).unwrap_or_else(|_| "\"unreadable error\"".into()),
    )
        .into_response();
    if let Ok(path) = axum::http::HeaderValue::from_str(path) {
        response.headers_mut().insert(SERVER_FN_ERROR, path);
    }
    response
}

/// Server functions answer every error with status 500; this gives the
/// answer the status of the error's kind (404, 400, 503, …), so that HTTP
/// clients and monitoring see what the page sees.
pub async fn server_fn_status(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !response.headers().contains_key(SERVER_FN_ERROR)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "unreadable error").into_response();
    };
    if let Ok(error) = serde_json::from_slice::<LabError>(&bytes) {
        parts.status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The sign-in session layers (axum-login over tower-sessions) answer an
/// empty 500 when the database cannot give them a session or its user.
/// This answers the lab's 503 instead, as every other route does while
/// the database is down: a page for a browser, JSON for a server function,
/// text otherwise, with `Retry-After` and no cookie.
pub async fn sessions_unavailable(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let browsing = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let response = next.run(request).await;
    let empty_500 = response.status() == StatusCode::INTERNAL_SERVER_ERROR
        && !response.headers().contains_key(header::CONTENT_TYPE)
        && axum::body::HttpBody::size_hint(response.body()).exact() == Some(0);
    if !empty_500 {
        return response;
    }
    tracing::warn!("the sign-in sessions are unavailable ({path}): answered 503");
    let error = LabError::Unavailable(
        "the database is unavailable: sign-in sessions cannot be read now; try again in a moment"
            .into(),
    );
    let mut response = if browsing && !path.starts_with("/api/") {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            UNAVAILABLE_PAGE,
        )
            .into_response()
    } else {
        early_error(&path, error)
    };
    response.headers_mut().insert(
        header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("5"),
    );
    response
}

/// The page a browser gets while the database is down and its session
/// cannot be read.
const UNAVAILABLE_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>mite perf lab: unavailable</title><link rel=\"stylesheet\" href=\"/pkg/mite-perf.css\">\
</head><body><main><h1>The lab's database is unavailable</h1><p>Your session cannot be read \
while the database is down. Nothing was changed. Try again in a moment: \
<a href=\"\">reload this page</a>.</p></main></body></html>\n";
