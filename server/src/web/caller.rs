//! The caller of every request: the middleware that finds it (through
//! [`crate::access::Access`]) and sends those without one to sign in, and
//! the extractor of plain routes.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use app::api::LabError;
use domain::access::Caller;

use super::errors::{early_error, ErrorResponse};
use crate::access::{peer_ip, Access};

/// Paths anyone may open: signing in, share links, health and the site's files.
pub fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/signin" | "/healthz" | "/favicon.ico" | "/api/who_am_i"
    ) || path.starts_with("/pkg/")
        || path.starts_with("/assets/")
        || path.starts_with("/share/")
}

/// The middleware: finds the caller (an extension of the request) and sends
/// those without one to sign in.
pub async fn identify(State(access): State<Arc<Access>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let peer = peer_ip(&parts);
    match access.caller(&parts, peer).await {
        Ok(Some(caller)) => {
            parts.extensions.insert(caller);
            next.run(Request::from_parts(parts, body)).await
        }
        Ok(None) if is_public(parts.uri.path()) => next.run(Request::from_parts(parts, body)).await,
        Ok(None) => sign_in_first(&parts),
        Err(e) => early_error(parts.uri.path(), e),
    }
}

/// A browser opening a page or a file is sent to sign in, and from there
/// back to it; anything else (a server function, a script) gets 401.
fn sign_in_first(parts: &Parts) -> Response {
    let navigating = parts.method == Method::GET
        && (parts
            .headers
            .get("sec-fetch-mode")
            .is_some_and(|m| m == "navigate")
            || parts
                .headers
                .get(header::ACCEPT)
                .and_then(|a| a.to_str().ok())
                .is_some_and(|a| a.contains("text/html")));
    if navigating {
        let next = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let query = next_query(&next);
        Redirect::to(&format!("/signin?{query}")).into_response()
    } else {
        let mut response = early_error(
            parts.uri.path(),
            LabError::Unauthenticated(
                "sign in first (or send `Authorization: Bearer TOKEN`)".into(),
            ),
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        debug_assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        response
    }
}

/// `next=…` with the path percent-encoded.
pub fn next_query(next: &str) -> String {
    let mut encoded = String::from("next=");
    for byte in next.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                encoded.push(byte as char)
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// The caller of a plain route (downloads): 401 without one.
pub struct Signed(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Signed {
    type Rejection = ErrorResponse;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .map(Signed)
            .ok_or_else(|| ErrorResponse(LabError::Unauthenticated("sign in first".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_paths_are_few() {
        for path in [
            "/signin",
            "/healthz",
            "/pkg/mite-perf.wasm",
            "/assets/echarts.min.js",
        ] {
            assert!(is_public(path), "{path}");
        }
        for path in [
            "/",
            "/runs/1",
            "/runs/1/samples.csv",
            "/api/launch_run",
            "/signin/x",
        ] {
            assert!(!is_public(path), "{path}");
        }
        assert_eq!(
            next_query("/runs/7/samples.csv?x=1&y=2"),
            "next=/runs/7/samples.csv%3Fx%3D1%26y%3D2"
        );
    }
}
