//! Runs, scenarios, processes and samples in a database: SQLite by default,
//! PostgreSQL for a shared lab. Each table has its own file with its own
//! `impl Store` block; the schema lives in `migrations/sqlite` and
//! `migrations/postgres`. Rows are read by column name (`sqlx::FromRow`).
//!
//! Queries go to the concrete driver of the backend (no `Any` driver): the
//! same SQL serves both, written once and run through [`with_pool!`].

mod activity;
mod agents;
mod baselines;
mod bulk;
pub(crate) mod bus;
mod fence;
mod finished;
mod library;
mod processes;
mod profiles;
mod runs;
mod samples;
mod scenarios;
mod sessions;
mod share_links;
mod tokens;
mod trend_marks;
mod users;
mod wheels;

use std::path::Path;

use nix::fcntl::{Flock, FlockArg};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use activity::ActivityRecord;
pub use agents::AgentRecord;
pub use bulk::SampleRows;
pub use fence::Fence;
pub use finished::{FinishedScenario, TrendVersion};
pub use processes::NewProcess;
pub use processes::ProcessRecord;
pub use profiles::NewProfile;
pub use runs::{LeaseState, RunEnvironment, RunRecord};
pub use samples::{SampleBatch, SampleRow, SampleSource, SampleWriter};
pub use scenarios::ScenarioRecord;
pub use sessions::Sessions;
pub use share_links::ShareLinkRecord;
pub use tokens::{NewToken, TokenRecord};
pub use users::{AccountChange, UserRecord};
pub use wheels::UploadedWheel;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL `{0}` is not supported: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    #[error("database URL `{url}` is not valid: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot apply the schema migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Another process kept its turn at opening and migrating the SQLite file.
    #[error("cannot take the turn to open the database ({path}): {reason}")]
    OpeningTurn { path: String, reason: String },
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("stored run parameters are unreadable: {0}")]
    Params(#[from] serde_json::Error),
    #[error("stored value is invalid: {0}")]
    Invalid(String),
    #[error("cannot write: {0}")]
    Write(#[source] std::io::Error),
    #[error("cannot read the samples: {0}")]
    Read(#[from] rusqlite::Error),
    /// A name (of a user, a token) is already taken.
    #[error("{0}")]
    Conflict(String),
    /// A write for run N was refused: the agent no longer holds its lease
    /// (another agent marked the run interrupted, or it ended).
    #[error("run {0} is no longer this agent's (its lease was lost): nothing more is stored")]
    LeaseLost(i64),
}

impl StoreError {
    /// Whether the database could not be reached or was busy (as opposed to
    /// a query or a stored value being wrong): trying again later may work.
    pub fn is_unavailable(&self) -> bool {
        let sql = match self {
            StoreError::Connect(_) | StoreError::OpeningTurn { .. } => return true,
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => e,
            StoreError::Read(rusqlite::Error::SqliteFailure(e, _)) => {
                return matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy
                        | rusqlite::ErrorCode::DatabaseLocked
                        | rusqlite::ErrorCode::CannotOpen
                )
            }
            StoreError::Query(e) => e,
            _ => return false,
        };
        match sql {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_) => true,
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                // SQLite: BUSY, LOCKED (and their extended codes), FULL, IOERR.
                // PostgreSQL: connection exceptions (08…), shutting down (57P…).
                matches!(code.as_ref(), "5" | "6" | "13" | "10" | "517" | "262")
                    || code.starts_with("08")
                    || code.starts_with("57P")
                    || db.message().contains("database is locked")
            }
            _ => false,
        }
    }
}

/// A store error as the pages and downloads see it: the database being
/// unavailable is said so (503); anything else is the lab's fault (500),
/// logged here.
impl From<StoreError> for app::api::LabError {
    fn from(e: StoreError) -> Self {
        crate::metrics::metrics().database_error();
        if e.is_unavailable() {
            app::api::LabError::Unavailable(format!("the database is unavailable: {e}"))
        } else {
            tracing::error!("{e}");
            app::api::LabError::Internal(e.to_string())
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A pool of the backend's own driver.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool, whichever the
/// backend: the same SQL (with `$1` placeholders) works on both.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// The URL with its password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let redacted_tail = redact_query_password(tail);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{redacted_tail}"),
            None => format!("{scheme}://{userinfo}@{host}{redacted_tail}"),
        },
        None => format!("{scheme}://{authority}{redacted_tail}"),
    }
}

/// `?password=…` in a PostgreSQL URL's query is a password too.
fn redact_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_string();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// How long a query waits for a connection, and SQLite for a lock.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: Pool,
    /// Where to open more connections (the sample writer's own).
    target: Target,
    /// The lease every write of this handle carries ([`Store::fenced`]).
    fence: Option<std::sync::Arc<Fence>>,
}

#[derive(Clone, Debug)]
enum Target {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
}

impl Store {
    /// Opens (creating if needed) the database and brings its schema up to
    /// date. Accepts sqlx's URL forms: `sqlite://PATH`, `sqlite:PATH`, with a
    /// query (`?mode=rwc`), and `postgres://` / `postgresql://`.
    pub async fn connect(url: &str) -> Result<Self> {
        let bad_url = |e: sqlx::Error| StoreError::BadUrl {
            url: redact_url(url),
            reason: e.to_string(),
        };
        let target = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(bad_url)?
                .create_if_missing(true)
                // WAL lets the web pages read while a run writes samples.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(ACQUIRE_TIMEOUT)
                .foreign_keys(true);
            let file = options.get_filename();
            if file != Path::new(":memory:") {
                if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                        path: parent.display().to_string(),
                        source,
                    })?;
                }
            }
            Target::Sqlite(options)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Target::Postgres(PgConnectOptions::from_str(url).map_err(bad_url)?)
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        // A new SQLite file is made, put in WAL mode and migrated by one
        // process at a time (sqlx takes an advisory lock for the
        // migrations on PostgreSQL).
        let turn = match &target {
            Target::Sqlite(options) => opening_turn(options.get_filename()).await?,
            Target::Postgres(_) => None,
        };
        let pool = target.pool(8).await?;
        let store = Store {
            pool,
            target,
            fence: None,
        };
        store.migrate().await?;
        drop(turn);
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(pool) => sqlx::migrate!("../migrations/sqlite").run(pool).await?,
            Pool::Postgres(pool) => sqlx::migrate!("../migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes the connections; every later query fails as "unavailable".
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        with_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// A connection of its own for a run's samples, so that page views and
    /// downloads never make sampling wait for a connection. Fenced as this
    /// handle is.
    pub async fn sample_writer(&self) -> Result<SampleWriter> {
        Ok(SampleWriter::new(
            self.target.pool(1).await?,
            self.fence.as_deref().cloned(),
        ))
    }

    /// This handle (fenced as it is) on a connection of its own, for what
    /// must never wait behind the rest of the process's queries: a run's
    /// lease renewals, which a busy database would otherwise queue behind
    /// the run's bus and figure writes until another agent takes the run
    /// for abandoned.
    pub async fn own_connection(&self) -> Result<Store> {
        Ok(Store {
            pool: self.target.pool(1).await?,
            ..self.clone()
        })
    }

    /// This store, with every write carrying `fence`: made only while the
    /// fenced run still runs under that lease, else refused with
    /// [`StoreError::LeaseLost`] ([`fence`](self::fence)).
    pub fn fenced(&self, fence: Fence) -> Store {
        Store {
            fence: Some(std::sync::Arc::new(fence)),
            ..self.clone()
        }
    }

    /// The lease this handle's writes carry, if any.
    pub fn fence(&self) -> Option<&Fence> {
        self.fence.as_deref()
    }

    /// What a fenced write binds: the run and the lease id (both NULL
    /// without a fence, which lets every write through).
    pub(crate) fn fence_binds(&self) -> (Option<i64>, Option<String>) {
        match self.fence() {
            Some(f) => (Some(f.run_id), Some(f.lease_id.clone())),
            None => (None, None),
        }
    }

    /// `Err(LeaseLost)` when a fenced write touched nothing.
    pub(crate) fn fenced_rows(&self, rows: u64) -> Result<()> {
        match self.fence() {
            Some(f) if rows == 0 => Err(StoreError::LeaseLost(f.run_id)),
            _ => Ok(()),
        }
    }

    /// The database's clock in unix milliseconds, as SQL: leases and
    /// heartbeats are timed by it, never by each host's own clock.
    pub(crate) fn now_sql(&self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// The database's clock, in unix milliseconds.
    pub async fn database_now_ms(&self) -> Result<i64> {
        let sql = format!("SELECT {}", self.now_sql());
        Ok(with_pool!(self, |pool| sqlx::query_scalar(&sql)
            .fetch_one(pool)
            .await)?)
    }
}

impl Target {
    async fn pool(&self, size: u32) -> Result<Pool> {
        match self {
            Target::Sqlite(options) => Ok(Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(size.min(4))
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options.clone())
                    .await
                    .map_err(StoreError::Connect)?,
            )),
            Target::Postgres(options) => Ok(Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(size)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options.clone())
                    .await
                    .map_err(StoreError::Connect)?,
            )),
        }
    }
}

/// The SQLite file's turn at being opened and migrated, held until
/// dropped. sqlx locks nothing there (it takes an advisory lock on
/// PostgreSQL), so two processes opening a new lab file at once (a `serve`
/// and a `run`, a test and the lab it started) would each apply the first
/// migration, and one would fail; or one would find the file locked while
/// the other put it in WAL mode ("database is locked" at connect, which
/// SQLite's busy handler does not wait out). An exclusive `flock` on a file
/// beside the database
/// (`lab.db.migrate-lock`, kept) makes them take turns. Never on the
/// database file itself: closing any descriptor of that file drops every
/// POSIX lock this process holds on it, SQLite's included, and then another
/// process's `sqlite3` closing the file believes it is the last and removes
/// the write-ahead log under the lab (disk I/O errors on every later
/// write). The wait is bounded: a holder that hangs makes this unavailable.
async fn opening_turn(path: &Path) -> Result<Option<Flock<std::fs::File>>> {
    use nix::errno::Errno;
    use std::os::unix::fs::OpenOptionsExt;
    if path == Path::new(":memory:") {
        return Ok(None);
    }
    let lock_path = {
        let mut name = path.as_os_str().to_owned();
        name.push(".migrate-lock");
        std::path::PathBuf::from(name)
    };
    let failed = |reason: String| StoreError::OpeningTurn {
        path: lock_path.display().to_string(),
        reason,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| failed(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + ACQUIRE_TIMEOUT;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(turn) => return Ok(Some(turn)),
            Err((back, Errno::EWOULDBLOCK)) if tokio::time::Instant::now() < deadline => {
                file = back;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(failed(format!(
                    "another process kept its turn for {} s",
                    ACQUIRE_TIMEOUT.as_secs()
                )))
            }
            Err((_, errno)) => return Err(failed(errno.to_string())),
        }
    }
}

/// How long the stop path keeps trying writes while the database is unavailable.
pub const STOP_PATH_PATIENCE: Duration = Duration::from_secs(30);

/// Runs `op` until it succeeds, fails for a reason other than the database
/// being unavailable, or `patience` has passed: for the writes of the stop
/// path, which must not give up on a database that is back in a moment.
pub async fn persistently<T, F, Fut>(patience: Duration, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = std::time::Instant::now() + patience;
    loop {
        match op().await {
            Err(e) if e.is_unavailable() && std::time::Instant::now() < deadline => {
                tracing::warn!("the database is unavailable, trying again: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}

/// A unique-constraint violation as [`StoreError::Conflict`] with `message`;
/// any other error as it is.
pub(crate) fn conflict(e: sqlx::Error, message: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message()),
        _ => StoreError::Query(e),
    }
}

/// Reads a text column into one of the lab's text enums.
pub(crate) fn parse_text<T>(text: &str) -> Result<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e: T::Err| StoreError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://lab:s3cret@db.example:5432/lab"),
            "postgres://lab:***@db.example:5432/lab"
        );
        assert_eq!(
            redact_url("postgresql://lab@db/lab?sslmode=require&password=s3cret"),
            "postgresql://lab@db/lab?sslmode=require&password=***"
        );
        assert_eq!(
            redact_url("sqlite://output/lab.db?mode=rwc"),
            "sqlite://output/lab.db?mode=rwc"
        );
        assert_eq!(redact_url("postgres://h"), "postgres://h");
    }

    #[tokio::test]
    async fn rejects_unknown_database_urls_without_showing_passwords() {
        let err = Store::connect("mysql://root:s3cret@db/lab")
            .await
            .expect_err("must fail");
        let text = err.to_string();
        assert!(text.contains("not supported"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}
