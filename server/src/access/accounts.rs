//! Accounts with passwords, as axum-login sees them: the lab's users table
//! is the backend; a session holds the user's id and is valid only while
//! the user's password hash is the one it was opened with (a new password,
//! or removing the user, ends their sessions).

use axum_login::{AuthUser, AuthnBackend};
use domain::access::Role;

use crate::store::{Store, StoreError, UserRecord};

/// A user signed in with a password.
#[derive(Clone)]
pub struct SignedIn {
    pub id: i64,
    pub name: String,
    pub role: Role,
    password_hash: String,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the hash.
        f.debug_struct("SignedIn")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl AuthUser for SignedIn {
    type Id = i64;

    fn id(&self) -> i64 {
        self.id
    }

    fn session_auth_hash(&self) -> &[u8] {
        self.password_hash.as_bytes()
    }
}

impl SignedIn {
    fn from_record(user: UserRecord) -> Option<Self> {
        Some(SignedIn {
            id: user.id,
            password_hash: user.password_hash?,
            name: user.name,
            role: user.role,
        })
    }
}

/// A name and a password, as typed.
#[derive(Clone, serde::Deserialize)]
pub struct Credentials {
    pub name: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The users table as axum-login's backend.
#[derive(Clone, Debug)]
pub struct Accounts {
    pub store: Store,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot check the password: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Checked against when no such user exists, so that a wrong name takes as
/// long to refuse as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| password_auth::generate_hash("no such user"))
}

/// Hashes a password (argon2, a fresh salt): slow on purpose, so off the
/// async threads.
pub async fn hash_password(password: String) -> Result<String, tokio::task::JoinError> {
    tokio::task::spawn_blocking(move || password_auth::generate_hash(password)).await
}

impl AuthnBackend for Accounts {
    type User = SignedIn;
    type Credentials = Credentials;
    type Error = AccountError;

    async fn authenticate(&self, creds: Credentials) -> Result<Option<SignedIn>, AccountError> {
        let user = self.store.user_by_name(creds.name.trim()).await?;
        let hash = user
            .as_ref()
            .and_then(|u| u.password_hash.clone())
            .unwrap_or_else(|| decoy_hash().to_string());
        let password = creds.password;
        let matches = tokio::task::spawn_blocking(move || {
            password_auth::verify_password(password, &hash).is_ok()
        })
        .await?;
        Ok(user.filter(|_| matches).and_then(SignedIn::from_record))
    }

    async fn get_user(&self, id: &i64) -> Result<Option<SignedIn>, AccountError> {
        Ok(self
            .store
            .user_by_id(*id)
            .await?
            .and_then(SignedIn::from_record))
    }
}
