//! `POST /api/wheels?name=FILE[&commit=HASH&commit_time=SECONDS&parents=A,B]`:
//! a CI job uploads a mite wheel (the body, at most [`MAX_WHEEL_BYTES`]),
//! with the commit it was built from if it knows it, and is answered with
//! how a launch names it (`upload:SHA256`). Only for a caller with the
//! right to upload (a token made with `--may-upload`), and only on a lab
//! started with `--allow-uploaded-builds`; the checks live with the lab
//! ([`crate::lab::uploads`]). Who asks is checked before a byte of the body
//! is read, and at most [`crate::lab::MAX_UPLOADS`] bodies are read at once.

use axum::body::Bytes;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

use app::api::LabError;
use domain::builds::WheelCommit;

use super::caller::Signed;
use super::errors::ErrorResponse;
use super::WebState;
pub use crate::mite_env::wheel::MAX_WHEEL_BYTES;

/// The route's query: the wheel's file name and, all three or none, the
/// commit it was built from.
#[derive(Debug, serde::Deserialize)]
pub struct UploadQuery {
    pub name: String,
    pub commit: Option<String>,
    pub commit_time: Option<String>,
    pub parents: Option<String>,
}

impl UploadQuery {
    fn wheel_commit(&self) -> Result<Option<WheelCommit>, LabError> {
        match (&self.commit, &self.commit_time) {
            (None, None) if self.parents.is_none() => Ok(None),
            (Some(commit), Some(time)) => {
                let parents = self.parents.as_deref().unwrap_or_default();
                WheelCommit::parse(commit, time, parents)
                    .map(Some)
                    .map_err(|(field, reason)| LabError::invalid(field, reason))
            }
            _ => Err(LabError::invalid(
                "commit",
                "a wheel's commit needs its hash and commit_time together (parents optional)",
            )),
        }
    }
}

/// How soon a caller turned away (too many uploads at once) may try again.
const UPLOAD_RETRY_AFTER_SECONDS: u64 = 5;

/// The route. It takes the request whole so that nothing reads the body
/// (axum's `Bytes` would buffer all 16 MiB first) until the caller is known
/// to be one who may upload and a place among the uploads is free.
pub async fn upload_wheel(
    State(state): State<WebState>,
    Signed(caller): Signed,
    request: Request,
) -> Response {
    // Who asks first, then what they sent.
    if let Err(e) = state.lab.may_upload(&caller) {
        return ErrorResponse(e).into_response();
    }
    let query = match Query::<UploadQuery>::try_from_uri(request.uri()) {
        Ok(Query(query)) => query,
        Err(e) => return ErrorResponse(LabError::invalid("name", e.body_text())).into_response(),
    };
    let commit = match query.wheel_commit() {
        Ok(commit) => commit,
        Err(e) => return ErrorResponse(e).into_response(),
    };
    let Some(_turn) = state.lab.upload_permit() else {
        tracing::warn!(caller = %caller.name, "turned an upload away: too many at once");
        let mut response = ErrorResponse(LabError::Unavailable(format!(
            "the lab reads {} uploads at once and is busy with them: try again in a few seconds",
            crate::lab::MAX_UPLOADS
        )))
        .into_response();
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(UPLOAD_RETRY_AFTER_SECONDS),
        );
        return response;
    };
    // Within the route's bound (413 past it, before it is all in memory).
    let body = match Bytes::from_request(request, &state).await {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    match state
        .lab
        .upload_wheel(&caller, &query.name, &body, commit)
        .await
    {
        Ok(wheel) => Json(wheel).into_response(),
        Err(e) => ErrorResponse(e).into_response(),
    }
}
