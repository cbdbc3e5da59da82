//! wssh's storage on SQLite: the traits of `wssh-store` implemented with rusqlite behind an r2d2
//! pool (WAL mode, a busy timeout, foreign keys on), one module per aggregate — [`users`],
//! [`roles`], [`ssh_keys`], [`tokens`], [`sessions`], [`logins`], [`throttle`], `audit`, `recording` — and the
//! migrations (SQL files in `migrations/`, embedded and applied in order, tracked in SQLite's
//! `user_version`).

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};
use wssh_domain::{
    AccessToken, Login, LoginClient, LoginId, NewAccessToken, NewRole, NewSshKey, NewUser, Permission, PermissionSet,
    Role, RoleId, Session, SessionName, SessionSpec, SshKey, Timestamp, TokenIdentifier, TokenSpec, User, UserId,
    UserProfile, Username,
};

mod audit;
mod dump;
mod logins;
mod migrations;
mod recording;
mod roles;
mod sessions;
mod shells;
mod ssh_keys;
mod throttle;
mod tokens;
mod users;

pub use migrations::{MIGRATIONS, Migration, MigrationStatus};
use wssh_store::{
    ChangeCounter, Conflict, LoginStore, PasswordChange, RoleStore, Rotation, SessionStore, SshKeyStore, StoreError,
    TokenStore, Transactional, UnitOfWork, UserChange, UserStore,
};

/// How long a writer waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A SQLite database file holding everything wssh stores.
#[derive(Clone)]
pub struct SqliteStore {
    pool: Pool<SqliteConnectionManager>,
    /// Advanced after every checkout that changed rows (see [`ChangeCounter`]).
    generation: Arc<AtomicU64>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// Prepared statements kept per connection: more than the store has, so none is parsed twice.
const STATEMENT_CACHE_CAPACITY: usize = 128;

fn configure(connection: &mut Connection) -> Result<(), rusqlite::Error> {
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let store = Self::open_without_migrating(path)?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens the database at `path` as it is, applying nothing.
    pub fn open_without_migrating(path: &Path) -> Result<Self, StoreError> {
        // WAL is a property of the file: set it once, before the pool opens its connections.
        let mut first = Connection::open(path).map_err(StoreError::backend)?;
        configure(&mut first).map_err(StoreError::backend)?;
        first.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(())).map_err(StoreError::backend)?;
        drop(first);

        let manager = SqliteConnectionManager::file(path).with_init(configure);
        let pool = Pool::builder()
            .max_size(16)
            // A SQLite file connection does not go stale; checking it on every checkout costs
            // a statement per request for nothing.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(StoreError::backend)?;
        Ok(SqliteStore { pool, generation: Arc::new(AtomicU64::new(0)) })
    }

    /// The connection pool now: connections open, and of those idle.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }

    /// Applies every pending migration; returns the versions applied.
    pub fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        migrations::apply_pending(&mut *self.connection()?)
    }

    /// The applied and the latest schema version.
    pub fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        Ok(MigrationStatus {
            applied: migrations::applied_version(&*self.connection()?)?,
            latest: MIGRATIONS.last().map_or(0, |migration| migration.version),
        })
    }

    fn connection(&self) -> Result<Checkout<'_>, StoreError> {
        let connection = self.pool.get().map_err(StoreError::backend)?;
        let changes_before = connection.total_changes();
        Ok(Checkout { connection, changes_before, generation: &self.generation })
    }
}

impl ChangeCounter for SqliteStore {
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// A pooled connection that, when handed back, advances the store's generation if rows were
/// changed through it. Every method has committed or rolled back by then, so a cache that reads
/// the new generation also reads the new rows.
struct Checkout<'a> {
    connection: PooledConnection<SqliteConnectionManager>,
    changes_before: u64,
    generation: &'a AtomicU64,
}

impl Deref for Checkout<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.connection
    }
}

impl DerefMut for Checkout<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.connection
    }
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if self.connection.total_changes() != self.changes_before {
            self.generation.fetch_add(1, Ordering::Release);
        }
    }
}

/// Maps a driver error, turning constraint violations into [`StoreError::Conflict`].
fn map_error(error: rusqlite::Error, conflict: Conflict) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(conflict),
        _ => StoreError::backend(error),
    }
}

fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::backend(error)
}

#[derive(Debug, thiserror::Error)]
#[error("corrupt row: {0}")]
struct CorruptRow(String);

fn corrupt(what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(CorruptRow(what)))
}
