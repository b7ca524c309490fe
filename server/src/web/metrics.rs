//! `GET /metrics`: the lab's metrics in the OpenMetrics text format
//! ([`crate::metrics`]), for an admin's API token or the metrics token a
//! scraper holds (`serve --metrics-token-file`), both sent as
//! `Authorization: Bearer`; and the middleware that counts every request
//! by route.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use app::api::LabError;
use domain::access::Role;

use super::errors::ErrorResponse;
use super::WebState;
use crate::metrics::{metrics, LabState, CONTENT_TYPE};

/// Counts the request and its latency under the route it matched.
pub async fn count_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    metrics().request(
        &method,
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
