//! `POST /api/wheels?name=FILE[&commit=HASH&commit_time=SECONDS&parents=A,B]`:
//! a CI job uploads a mite wheel (the body, at most [`MAX_WHEEL_BYTES`]),
//! with the commit it was built from if it knows it, and is answered with
//! how a launch names it (`upload:SHA256`). Only for a runner, and only on a lab started with
//! `--allow-uploaded-builds`; the checks live with the lab
//! ([`crate::lab::uploads`]).

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::Json;

use app::api::LabError;
use domain::builds::{UploadedWheel, WheelCommit};

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

pub async fn upload_wheel(
    State(state): State<WebState>,
    Signed(caller): Signed,
    Query(query): Query<UploadQuery>,
    body: Bytes,
) -> Result<Json<UploadedWheel>, ErrorResponse> {
    // Who asks first, then what they sent.
    state.lab.may_upload(&caller)?;
    let commit = query.wheel_commit()?;
    Ok(Json(
        state
            .lab
            .upload_wheel(&caller, &query.name, &body, commit)
            .await?,
    ))
}
