//! `GET /share/{secret}`: opens a read-only share link. The browser keeps
//! the link's secret in a cookie (HttpOnly, SameSite=Lax, Secure behind
//! HTTPS, for as long as the link is open) and is sent to the run's page;
//! from then on it sees that run (its page, charts and downloads) and
//! nothing else.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::errors::ErrorResponse;
use super::WebState;
use crate::access::tokens::token_hash;
use crate::access::SHARE_COOKIE;
use crate::clock::now_ms;

pub async fn open_share_link(
    State(state): State<WebState>,
    Path(secret): Path<String>,
) -> Response {
    let link = match state
        .lab
        .store()
        .share_link_by_hash(&token_hash(&secret))
        .await
    {
        Ok(link) => link,
        Err(e) => return ErrorResponse(app::api::LabError::from(e)).into_response(),
    };
    let now = now_ms();
    let Some(link) = link.filter(|l| l.is_valid(now)) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "This share link has expired, was revoked, or never existed: ask whoever sent it \
             for a new one.\n",
        )
            .into_response();
    };
    let max_age = (link.expires_at - now) / 1000;
    let secure = if state.access.policy.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let mut response = Redirect::to(&format!("/runs/{}", link.run_id)).into_response();
    match HeaderValue::from_str(&format!(
        "{SHARE_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    )) {
        Ok(cookie) => {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        // A secret with characters a header cannot carry is no link of ours.
        Err(_) => (StatusCode::NOT_FOUND, "no such share link\n").into_response(),
    }
}
