//! The `api_tokens` table: tokens for CI jobs and scripts, each with a name
//! and a role. Only a token's SHA-256 hash is kept; the token itself is
//! shown once, when it is made.

use app::access::Role;

use super::{parse_text, with_pool, Result, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: i64,
    name: String,
    role: String,
    created_at: i64,
    last_used_at: Option<i64>,
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
        })
    }
}

const TOKEN_COLUMNS: &str = "id, name, role, created_at, last_used_at";

/// How often a token's last use is written (not on every request).
const LAST_USE_RESOLUTION_MS: i64 = 60_000;

impl Store {
    /// Keeps a new token's hash; [`StoreError::Conflict`] when the name is taken.
    pub async fn create_token(&self, name: &str, role: Role, token_hash: &str) -> Result<i64> {
        let id = with_pool!(self, |pool| sqlx::query_scalar(
            "INSERT INTO api_tokens (name, role, token_hash, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(token_hash)
        .bind(super::now_ms())
        .fetch_one(pool)
        .await)
        .map_err(|e| super::conflict(e, || format!("there is already a token named {name}")))?;
        Ok(id)
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY name");
        let rows: Vec<TokenRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await)?;
        rows.into_iter().map(TokenRecord::try_from).collect()
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
        let now = super::now_ms();
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
        Ok(done > 0)
    }
}
