//! The `api_tokens` table: tokens for CI jobs and scripts, each with a name,
//! a role, the user who owns it (none: the lab's operator made it on the
//! command line), maybe an expiry, and whether it may upload builds (a
//! right no role brings: CI's tokens have it, ordinary runners' do not).
//! Only a token's SHA-256 hash is kept; the token itself is shown once,
//! when it is made.

use domain::access::Role;

use super::{parse_text, with_pool, Result, Store, StoreError};
use crate::clock::now_ms;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// The user it belongs to; `None`: made on the command line.
    pub owner: Option<String>,
    /// When it stops working (unix ms); `None`: never.
    pub expires_at: Option<i64>,
    /// Whether it may upload builds (`token create --may-upload`).
    pub may_upload: bool,
}

/// A token to keep ([`Store::create_token_as`]).
#[derive(Debug, Clone, Copy)]
pub struct NewToken<'a> {
    pub name: &'a str,
    pub role: Role,
    /// The SHA-256 of the token, hex ([`crate::access::tokens::token_hash`]).
    pub token_hash: &'a str,
    pub owner: Option<&'a str>,
    /// Unix ms.
    pub expires_at: Option<i64>,
    pub may_upload: bool,
}

impl TokenRecord {
    /// Whether it has expired at `now`.
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: i64,
    name: String,
    role: String,
    created_at: i64,
    last_used_at: Option<i64>,
    owner: Option<String>,
    expires_at: Option<i64>,
    may_upload: bool,
}

impl TryFrom<TokenRow> for TokenRecord {
    type Error = StoreError;
    fn try_from(row: TokenRow) -> Result<Self> {
        Ok(TokenRecord {
            id: row.id,
            name: row.name,
            role: parse_text(&row.role)?,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            owner: row.owner,
            expires_at: row.expires_at,
            may_upload: row.may_upload,
        })
    }
}

const TOKEN_COLUMNS: &str =
    "id, name, role, created_at, last_used_at, owner, expires_at, may_upload";

/// How often a token's last use is written (not on every request).
const LAST_USE_RESOLUTION_MS: i64 = 60_000;

impl Store {
    /// Keeps a new token's hash; [`StoreError::Conflict`] when the name is taken.
    pub async fn create_token(&self, name: &str, role: Role, token_hash: &str) -> Result<i64> {
        self.create_owned_token(name, role, token_hash, None, None)
            .await
    }

    /// Keeps a new token's hash, owned by `owner` (a user) and expiring at
    /// `expires_at` (unix ms), either when given.
    pub async fn create_owned_token(
        &self,
        name: &str,
        role: Role,
        token_hash: &str,
        owner: Option<&str>,
        expires_at: Option<i64>,
    ) -> Result<i64> {
        self.create_token_as(&NewToken {
            name,
            role,
            token_hash,
            owner,
            expires_at,
            may_upload: false,
        })
        .await
    }

    /// Keeps a new token's hash, with everything it may be made with;
    /// [`StoreError::Conflict`] when the name is taken.
    pub async fn create_token_as(&self, token: &NewToken<'_>) -> Result<i64> {
        let id = with_pool!(self, |pool| sqlx::query_scalar(
            "INSERT INTO api_tokens (name, role, token_hash, created_at, owner, expires_at, \
             may_upload) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(token.name)
        .bind(token.role.as_str())
        .bind(token.token_hash)
        .bind(now_ms())
        .bind(token.owner)
        .bind(token.expires_at)
        .bind(token.may_upload)
        .fetch_one(pool)
        .await)
        .map_err(|e| {
            super::conflict(e, || {
                format!("there is already a token named {}", token.name)
            })
        })?;
        Ok(id)
    }

    /// Every token, or `owner`'s only.
    pub async fn tokens(&self, owner: Option<&str>) -> Result<Vec<TokenRecord>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE $1 IS NULL OR owner = $1 ORDER BY name"
        );
        let rows: Vec<TokenRow> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(owner)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(TokenRecord::try_from).collect()
    }

    /// Revokes (deletes) every token `owner` owns (their account is gone);
    /// how many.
    pub async fn revoke_tokens_of(&self, owner: &str) -> Result<u64> {
        Ok(with_pool!(self, |pool| sqlx::query(
            "DELETE FROM api_tokens WHERE owner = $1"
        )
        .bind(owner)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?)
    }

    /// The token with this hash, noting that it was used.
    pub async fn use_token(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1");
        let row: Option<TokenRow> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(token_hash)
            .fetch_optional(pool)
            .await)?;
        let Some(token) = row.map(TokenRecord::try_from).transpose()? else {
            return Ok(None);
        };
        let now = now_ms();
        if token
            .last_used_at
            .is_none_or(|at| now - at >= LAST_USE_RESOLUTION_MS)
        {
            with_pool!(self, |pool| sqlx::query(
                "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1"
            )
            .bind(token.id)
            .bind(now)
            .execute(pool)
            .await
            .map(drop))?;
        }
        Ok(Some(token))
    }

    /// Revokes (deletes) a token; returns whether there was one.
    pub async fn revoke_token(&self, name: &str) -> Result<bool> {
        let done = with_pool!(self, |pool| sqlx::query(
            "DELETE FROM api_tokens WHERE name = $1"
        )
        .bind(name)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        if done > 0 {
            self.revoke_share_links_by(&format!("token:{name}")).await?;
            self.drop_label_ownerships(&format!("token:{name}")).await?;
        }
        Ok(done > 0)
    }
}
