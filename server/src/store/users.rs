//! The `users` table: who may sign in, with which role. A password is kept
//! only as its argon2 hash (a PHC string); users the single-sign-on proxy
//! names have none and cannot sign in with a password.

use domain::access::Role;

use super::{parse_text, with_pool, Result, Store, StoreError};
use crate::clock::now_ms;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub password_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    name: String,
    role: String,
    password_hash: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<UserRow> for UserRecord {
    type Error = StoreError;
    fn try_from(row: UserRow) -> Result<Self> {
        Ok(UserRecord {
            id: row.id,
            name: row.name,
            role: parse_text(&row.role)?,
            password_hash: row.password_hash,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const USER_COLUMNS: &str = "id, name, role, password_hash, created_at, updated_at";

impl Store {
    /// Adds a user; [`StoreError::Conflict`] when the name is taken.
    pub async fn create_user(
        &self,
        name: &str,
        role: Role,
        password_hash: Option<&str>,
    ) -> Result<i64> {
        let now = now_ms();
        let id = with_pool!(self, |pool| sqlx::query_scalar(
            "INSERT INTO users (name, role, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) RETURNING id",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(password_hash)
        .bind(now)
        .fetch_one(pool)
        .await)
        .map_err(|e| super::conflict(e, || format!("there is already a user named {name}")))?;
        Ok(id)
    }

    /// The user a proxy names, added with `role` the first time it is seen.
    pub async fn proxy_user(&self, name: &str, role: Role) -> Result<UserRecord> {
        let now = now_ms();
        with_pool!(self, |pool| sqlx::query(
            "INSERT INTO users (name, role, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(now)
        .execute(pool)
        .await
        .map(drop))?;
        self.user_by_name(name)
            .await?
            .ok_or_else(|| StoreError::Invalid(format!("user {name} vanished as it was added")))
    }

    pub async fn users(&self) -> Result<Vec<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
        let rows: Vec<UserRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await)?;
        rows.into_iter().map(UserRecord::try_from).collect()
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
        let row: Option<UserRow> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(name)
            .fetch_optional(pool)
            .await)?;
        row.map(UserRecord::try_from).transpose()
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row: Option<UserRow> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        row.map(UserRecord::try_from).transpose()
    }

    /// Whether any account exists (a lab with none may run open on loopback).
    pub async fn has_users(&self) -> Result<bool> {
        let any: Option<i64> = with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT id FROM users LIMIT 1"
        )
        .fetch_optional(pool)
        .await)?;
        Ok(any.is_some())
    }

    pub async fn admin_count(&self) -> Result<i64> {
        let count: i64 = with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE role = $1"
        )
        .bind(Role::Admin.as_str())
        .fetch_one(pool)
        .await)?;
        Ok(count)
    }

    /// Sets a user's password hash; returns whether the user exists. Their
    /// sessions end (a session is bound to the hash it was opened with).
    pub async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        let done = with_pool!(self, |pool| sqlx::query(
            "UPDATE users SET password_hash = $2, updated_at = $3 WHERE name = $1"
        )
        .bind(name)
        .bind(password_hash)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Sets a user's role, unless that would leave the lab without an
    /// admin. Atomic: two admins demoting each other at once leave one.
    pub async fn set_role(&self, name: &str, role: Role) -> Result<AccountChange> {
        let sql = format!(
            "WITH admins AS (SELECT id FROM users WHERE role = $4{lock}) \
             UPDATE users SET role = $2, updated_at = $3 WHERE name = $1 \
             AND ($2 = $4 OR role <> $4 OR (SELECT COUNT(*) FROM admins) > 1)",
            lock = self.lock_rows()
        );
        let done = with_pool!(self, |pool| sqlx::query(&sql)
            .bind(name)
            .bind(role.as_str())
            .bind(now_ms())
            .bind(Role::Admin.as_str())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.account_change(name, done).await
    }

    /// Removes a user, unless they are the lab's last admin (a lab must
    /// not become open by losing its accounts). Atomic, as [`Self::set_role`].
    /// Their runs keep their name; their sessions end (the user is gone)
    /// and the share links and tokens they made die with them.
    pub async fn remove_user(&self, name: &str) -> Result<AccountChange> {
        let sql = format!(
            "WITH admins AS (SELECT id FROM users WHERE role = $2{lock}) \
             DELETE FROM users WHERE name = $1 \
             AND (role <> $2 OR (SELECT COUNT(*) FROM admins) > 1)",
            lock = self.lock_rows()
        );
        let done = with_pool!(self, |pool| sqlx::query(&sql)
            .bind(name)
            .bind(Role::Admin.as_str())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if done > 0 {
            self.revoke_share_links_by(name).await?;
            // Label ownership ends with the account (and its tokens): an
            // account made again under the name inherits none.
            for token in self.tokens(Some(name)).await? {
                self.drop_label_ownerships(&format!("token:{}", token.name))
                    .await?;
            }
            self.drop_label_ownerships(name).await?;
            self.revoke_tokens_of(name).await?;
        }
        self.account_change(name, done).await
    }

    /// What a change that touched `done` rows did to user `name`.
    async fn account_change(&self, name: &str, done: u64) -> Result<AccountChange> {
        Ok(if done > 0 {
            AccountChange::Done
        } else if self.user_by_name(name).await?.is_some() {
            AccountChange::LastAdmin
        } else {
            AccountChange::NoSuchUser
        })
    }

    /// `FOR UPDATE` where the backend locks rows (PostgreSQL); SQLite's
    /// writers take turns anyway.
    fn lock_rows(&self) -> &'static str {
        match self.backend() {
            super::Backend::Postgres => " FOR UPDATE",
            super::Backend::Sqlite => "",
        }
    }
}

/// What a change to an account did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountChange {
    Done,
    NoSuchUser,
    /// Refused: the user is the lab's last admin.
    LastAdmin,
}
