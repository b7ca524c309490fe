//! `GET /metrics`: the lab's metrics in the OpenMetrics text format
//! ([`crate::metrics`]), for an admin's API token or the metrics token a
//! scraper holds (`serve --metrics-token-file`), both sent as
//! `Authorization: Bearer`; and the middleware that counts every request
//! by route.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use app::api::LabError;
use domain::access::Role;

use super::errors::ErrorResponse;
use super::WebState;
use crate::metrics::{metrics, LabState, CONTENT_TYPE};

/// A request's method as the metrics name it: one of the standard
/// methods, or "other". Any token is a method to hyper (and to nginx), so a
/// client's made-up ones must not each become a label kept for good.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Counts the request and its latency under the route it matched.
pub async fn count_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    metrics().request(
        method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`.
pub async fn serve_metrics(State(state): State<WebState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let allowed = match bearer {
        None => Err(LabError::Unauthenticated(
            "send an admin's API token, or the metrics token, as `Authorization: Bearer TOKEN`"
                .into(),
        )),
        Some(token)
            if state
                .metrics_token
                .as_ref()
                .is_some_and(|t| t.matches(token.as_bytes())) =>
        {
            Ok(())
        }
        Some(_) => {
            let authorization = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            match state
                .access
                .token_caller(authorization, state.access.source(&parts))
                .await
            {
                Ok(caller) if caller.role == Role::Admin => Ok(()),
                Ok(_) => Err(LabError::Forbidden(
                    "the lab's metrics are for admins and the metrics token".into(),
                )),
                Err(e) => Err(e),
            }
        }
    };
    if let Err(e) = allowed {
        return ErrorResponse(e).into_response();
    }
    let store = state.lab.store();
    let lease_ms = state.lab.setup().host.lease_ms();
    let lab_state = async {
        Ok::<_, LabError>(LabState {
            runs: store.run_counts().await?,
            agents_alive: store.agents_alive(lease_ms).await?,
        })
    };
    match lab_state.await.map(|s| metrics().encode(&s)) {
        Ok(Ok(text)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            text,
        )
            .into_response(),
        Ok(Err(e)) => ErrorResponse(LabError::Internal(format!("cannot write the metrics: {e}")))
            .into_response(),
        Err(e) => ErrorResponse(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_the_standard_ones_or_other() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::POST), "POST");
        for made_up in [
            "FROBNICATE",
            "get",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1",
        ] {
            let method = Method::from_bytes(made_up.as_bytes()).expect("a method token");
            assert_eq!(method_label(&method), "other", "{made_up}");
        }
    }
}
