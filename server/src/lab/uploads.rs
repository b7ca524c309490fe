//! mite wheels uploaded by CI jobs: checked (a caller with the right to
//! upload, a lab that takes them, a mite wheel by name and content), kept
//! by SHA-256, logged; forgotten once unused for the retention.

use std::time::Duration;

use app::api::LabError;
use domain::access::{Action, Caller};
use domain::builds::{UploadedWheel, WheelCommit, UPLOADED_PREFIX};

use super::Lab;
use crate::mite_env::source::sha256_bytes;
use crate::mite_env::wheel::{inspect, WheelError};

impl Lab {
    /// Whether this lab takes uploaded wheels (`--allow-uploaded-builds`).
    pub fn takes_uploads(&self) -> bool {
        self.setup.policy.allow_uploaded_builds
    }

    /// Whether `caller` may upload a wheel here: a runner's with the right
    /// to upload (a CI token's), on a lab that takes them (asked before
    /// anything of the upload is read).
    pub fn may_upload(&self, caller: &Caller) -> Result<(), LabError> {
        caller.require(Action::Upload)?;
        if !self.takes_uploads() {
            return Err(LabError::Forbidden(
                "this lab does not take uploaded builds: its web front and agents must be \
                 started with --allow-uploaded-builds (a wheel is code its agents will run)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Keeps the wheel `file_name` (`content`) uploaded by `caller`, built
    /// from `commit` if the caller said (checked for form: a hash, a time
    /// and parents, all three or none).
    pub async fn upload_wheel(
        &self,
        caller: &Caller,
        file_name: &str,
        content: &[u8],
        commit: Option<WheelCommit>,
    ) -> Result<UploadedWheel, LabError> {
        self.may_upload(caller)?;
        let name = inspect(file_name, content).map_err(|e| match e {
            WheelError::Name(_) => LabError::invalid("name", e.to_string()),
            _ => LabError::invalid("wheel", e.to_string()),
        })?;
        let sha256 = sha256_bytes(content);
        let new = self
            .store
            .put_wheel(&sha256, file_name, content, &caller.name, commit.as_ref())
            .await?;
        // The commit kept: the first upload's, or this one's.
        let recorded = self.store.wheel(&sha256).await?.and_then(|w| w.commit());
        if new {
            self.note(
                caller,
                "upload wheel",
                &format!("{file_name} ({})", &sha256[..12]),
            )
            .await;
        }
        tracing::info!(file_name, sha256 = %sha256, new, "wheel uploaded");
        Ok(UploadedWheel {
            build: format!("{UPLOADED_PREFIX}{sha256}"),
            sha256,
            file_name: file_name.to_string(),
            version: name.version,
            size: content.len() as u64,
            new,
            commit: recorded.map(|c| c.commit),
        })
    }

    /// Deletes the uploaded wheels unused for `retention` (neither
    /// uploaded again nor named by a launch) that no queued or running run
    /// names; how many.
    pub async fn forget_unused_uploads(&self, retention: Duration) -> Result<usize, LabError> {
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let since = crate::clock::now_ms().saturating_sub(retention_ms);
        let forgotten = self.store.forget_unused_wheels(since).await?;
        for sha256 in &forgotten {
            tracing::info!(sha256 = %sha256, "forgot an uploaded wheel unused for {} days",
                retention.as_secs() / 86_400);
        }
        Ok(forgotten.len())
    }

    /// Forgets unused uploads now and every [`UPLOAD_SWEEP_EVERY`] for as
    /// long as the lab serves ([`Lab::forget_unused_uploads`]).
    pub fn keep_forgetting_unused_uploads(
        self: &std::sync::Arc<Self>,
        retention: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let lab = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(UPLOAD_SWEEP_EVERY);
            loop {
                every.tick().await;
                if let Err(e) = lab.forget_unused_uploads(retention).await {
                    tracing::warn!("cannot forget unused uploaded wheels: {e}");
                }
            }
        })
    }
}

/// How often `serve` looks for uploaded wheels unused for the retention.
pub const UPLOAD_SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// How long an unused uploaded wheel is kept by default (`serve
/// --upload-retention`).
pub const DEFAULT_UPLOAD_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
