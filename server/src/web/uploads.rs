//! `POST /api/wheels?name=FILE`: a CI job uploads a mite wheel (the body,
//! at most [`MAX_WHEEL_BYTES`]) and is answered with how a launch names it
//! (`upload:SHA256`). Only for a runner, and only on a lab started with
//! `--allow-uploaded-builds`; the checks live with the lab
//! ([`crate::lab::uploads`]).

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::Json;

use domain::builds::UploadedWheel;

use super::caller::Signed;
use super::errors::ErrorResponse;
use super::WebState;
pub use crate::mite_env::wheel::MAX_WHEEL_BYTES;

/// The route's query: the wheel's file name.
#[derive(Debug, serde::Deserialize)]
pub struct UploadQuery {
    pub name: String,
}

pub async fn upload_wheel(
    State(state): State<WebState>,
    Signed(caller): Signed,
    Query(query): Query<UploadQuery>,
    body: Bytes,
) -> Result<Json<UploadedWheel>, ErrorResponse> {
    Ok(Json(
        state.lab.upload_wheel(&caller, &query.name, &body).await?,
    ))
}
