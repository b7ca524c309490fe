//! Read-only share links to a run, for people without an account: made by
//! runners and admins, open until their expiry (1 to 90 days) or until
//! their maker or an admin revokes them. The link's secret is shown once;
//! the database keeps its SHA-256.

use app::api::{LabError, ShareLinkView};
use domain::access::{Action, Caller};

use super::Lab;
use crate::access::tokens::{new_secret, token_hash, SHARE_PREFIX};
use crate::clock::now_ms;
use crate::store::ShareLinkRecord;

/// The longest a share link stays open.
pub const MAX_SHARE_DAYS: u32 = 90;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn link_view(link: ShareLinkRecord, path: Option<String>) -> ShareLinkView {
    ShareLinkView {
        id: link.id,
        run_id: link.run_id,
        created_by: link.created_by,
        created_at: link.created_at,
        expires_at: link.expires_at,
        revoked: link.revoked_at.is_some(),
        path,
    }
}

impl Lab {
    pub async fn share(
        &self,
        caller: &Caller,
        run_id: i64,
        days: u32,
    ) -> Result<ShareLinkView, LabError> {
        if !(1..=MAX_SHARE_DAYS).contains(&days) {
            return Err(LabError::invalid(
                "days",
                format!("a link stays open 1 to {MAX_SHARE_DAYS} days"),
            ));
        }
        caller.require(Action::ReadRun(run_id))?;
        self.existing_run(run_id).await?;
        let secret = new_secret(SHARE_PREFIX).map_err(|e| LabError::Internal(e.to_string()))?;
        let expires_at = now_ms() + i64::from(days) * DAY_MS;
        let id = self
            .store
            .create_share_link(run_id, &token_hash(&secret), &caller.name, expires_at)
            .await?;
        let link = self
            .store
            .share_link(id)
            .await?
            .ok_or_else(|| LabError::Internal(format!("share link {id} vanished")))?;
        self.note(
            caller,
            "share",
            &format!("run {run_id} for {days} days (link {id})"),
        )
        .await;
        Ok(link_view(link, Some(format!("/share/{secret}"))))
    }

    pub async fn share_link_views(&self, run_id: i64) -> Result<Vec<ShareLinkView>, LabError> {
        Ok(self
            .store
            .share_links(run_id)
            .await?
            .into_iter()
            .map(|l| link_view(l, None))
            .collect())
    }

    pub async fn revoke_share(&self, caller: &Caller, link_id: i64) -> Result<bool, LabError> {
        let link = self
            .store
            .share_link(link_id)
            .await?
            .ok_or_else(|| LabError::NotFound(format!("no share link {link_id}")))?;
        if link.created_by != caller.name && !caller.may(Action::Administer) {
            return Err(LabError::Forbidden(format!(
                "share link {link_id} is {}'s: only they or an admin may revoke it",
                link.created_by
            )));
        }
        let revoked = self.store.revoke_share_link(link_id).await?;
        if revoked {
            self.note(
                caller,
                "share revoke",
                &format!("link {link_id} to run {}", link.run_id),
            )
            .await;
        }
        Ok(revoked)
    }
}
