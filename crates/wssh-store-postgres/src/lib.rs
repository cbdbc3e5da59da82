//! wssh's storage on PostgreSQL: the store traits of `wssh-store` implemented on the synchronous
//! `postgres` client behind an r2d2 pool, for many wssh nodes sharing one database.
//!
//! The methods block, like the SQLite store's: async callers run them on a blocking thread
//! (the synchronous client drives a runtime of its own and must never run on an async worker).
//! Every committed change to what a cache may keep sends a `NOTIFY` on [`CHANNEL`] inside its
//! transaction; each store LISTENs on a dedicated connection on a thread of its own and moves
//! its [`ChangeCounter`] generation on every notification, and on every reconnect of that
//! connection. While the listener is down, every read of the generation moves it, so no cache
//! serves anything until it is back.

mod audit;
mod dump;
mod listener;
mod migrations;
mod roles;
pub mod scratch;
mod sessions;
mod shells;
mod throttle;
mod tokens;
mod users;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use postgres::types::{FromSql, ToSql};
use postgres::{NoTls, Row};
use r2d2::{Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;
use wssh_store::{ChangeCounter, Conflict, StoreError};

pub use migrations::{MIGRATIONS, Migration, MigrationStatus};

/// The channel on which committed changes are announced to every node.
pub const CHANNEL: &str = "wssh_changes";

type Manager = PostgresConnectionManager<NoTls>;

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The store's view of the cluster: a counter of changes, and whether notifications arrive.
#[derive(Debug, Default)]
pub(crate) struct Generation {
    counter: AtomicU64,
    listening: AtomicBool,
    /// This store's name in its notifications' payload: its own come back and are skipped
    /// (its generation moved at commit already).
    node: String,
}

impl Generation {
    pub(crate) fn bump(&self) {
        self.counter.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::Release);
        // Whatever was cached before (or while) the listener was down may be stale.
        self.bump();
    }
}

/// A PostgreSQL database holding everything wssh stores, shared by any number of nodes.
#[derive(Clone)]
pub struct PgStore {
    pool: Arc<OwnPool>,
    generation: Arc<Generation>,
}

/// The pool, closed on a thread of its own: each connection owns a small runtime of the
/// synchronous client, which must not be dropped on an async worker (a server drops its store
/// when it shuts down, wherever the last reference happens to be).
struct OwnPool(Option<Pool<Manager>>);

impl Drop for OwnPool {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            let closing = std::thread::Builder::new().name("wssh-pg-close".into()).spawn(move || drop(pool));
            if let Ok(closing) = closing {
                let _ = closing.join();
            }
        }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

/// A refused URL or connection, with no password in its text.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The URL could not be read.
    #[error("invalid PostgreSQL URL: {0}")]
    Url(String),
    /// A copy's destination already holds users.
    #[error("the destination database already holds users: copy into a new, empty database")]
    NotEmpty,
    /// A stored row could not be turned back into a domain value.
    #[error("corrupt row: {0}")]
    CorruptRow(String),
}

fn config(url: &str) -> Result<postgres::Config, StoreError> {
    // The parser's message never repeats the URL, so no password leaks through it.
    url.parse::<postgres::Config>().map_err(|error| StoreError::Backend(Box::new(PgError::Url(error.to_string()))))
}

impl PgStore {
    /// Connects to the database at `url`, applies pending migrations and starts listening
    /// for other nodes' changes.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect_without_migrating(url)?;
        store.migrate()?;
        Ok(store)
    }

    /// Connects to the database at `url` as it is, applying nothing.
    pub fn connect_without_migrating(url: &str) -> Result<Self, StoreError> {
        let config = config(url)?;
        let manager = PostgresConnectionManager::new(config.clone(), NoTls);
        let pool = Pool::builder()
            .max_size(16)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(backend)?;
        let generation = Arc::new(Generation { node: node_name(), ..Generation::default() });
        listener::start(config, &generation);
        Ok(PgStore { pool: Arc::new(OwnPool(Some(pool))), generation })
    }

    /// Applies every pending migration; returns the versions applied. Nodes starting together
    /// take turns (an advisory lock), so each migration runs once.
    pub fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        migrations::apply_pending(&mut *self.connection()?)
    }

    /// The applied and the latest schema version.
    pub fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        migrations::status(&mut *self.connection()?)
    }

    /// How many connections the pool holds, and how many of them are idle.
    pub fn pool_state(&self) -> (u32, u32) {
        self.pool.0.as_ref().map_or((0, 0), |pool| {
            let state = pool.state();
            (state.connections, state.idle_connections)
        })
    }

    /// Whether this store currently receives the other nodes' change notifications.
    pub fn is_listening(&self) -> bool {
        self.generation.listening.load(Ordering::Acquire)
    }

    pub(crate) fn connection(&self) -> Result<PooledConnection<Manager>, StoreError> {
        let pool = self.pool.0.as_ref().ok_or(StoreError::NotFound)?;
        pool.get().map_err(backend)
    }

    /// Runs `change` in one transaction; when it changed rows, announces it to every node
    /// (the `NOTIFY` is delivered only on commit) and moves this node's generation.
    pub(crate) fn write<T>(
        &self,
        change: impl FnOnce(&mut Write<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut tx = Tx::begin(self.connection()?)?;
        let mut write = Write { client: &mut tx.connection, changed: 0 };
        let value = change(&mut write)?;
        let changed = write.changed;
        tx.commit(changed > 0, &self.generation)?;
        Ok(value)
    }
}

/// A transaction on a pooled connection, rolled back when dropped before [`Tx::commit`].
pub(crate) struct Tx {
    pub(crate) connection: PooledConnection<Manager>,
    open: bool,
}

impl Tx {
    pub(crate) fn begin(mut connection: PooledConnection<Manager>) -> Result<Self, StoreError> {
        connection.batch_execute("BEGIN").map_err(backend)?;
        Ok(Tx { connection, open: true })
    }

    /// Commits; when `announce`, with a `NOTIFY` to every node and this node's generation moved.
    pub(crate) fn commit(mut self, announce: bool, generation: &Generation) -> Result<(), StoreError> {
        let sql =
            if announce { format!("NOTIFY {CHANNEL}, '{}'; COMMIT", generation.node) } else { "COMMIT".to_owned() };
        let committed = self.connection.batch_execute(&sql).map_err(backend);
        self.open = committed.is_err();
        committed?;
        if announce {
            generation.bump();
        }
        Ok(())
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if self.open && self.connection.batch_execute("ROLLBACK").is_err() {
            tracing::warn!("a PostgreSQL transaction could not be rolled back");
        }
    }
}

impl ChangeCounter for PgStore {
    fn generation(&self) -> u64 {
        if self.generation.listening.load(Ordering::Acquire) {
            self.generation.counter.load(Ordering::Acquire)
        } else {
            // Deaf to the other nodes: nothing read now may be served later.
            self.generation.counter.fetch_add(1, Ordering::AcqRel) + 1
        }
    }
}

/// A client inside a transaction, counting the rows it changes.
pub(crate) struct Write<'a> {
    pub(crate) client: &'a mut postgres::Client,
    pub(crate) changed: u64,
}

type Params<'p> = [&'p (dyn ToSql + Sync)];

impl Write<'_> {
    /// Runs a statement; the rows it changed.
    pub(crate) fn execute(&mut self, sql: &str, params: &Params<'_>) -> Result<u64, StoreError> {
        let changed = self.client.execute(sql, params).map_err(backend)?;
        self.changed += changed;
        Ok(changed)
    }

    /// Runs a statement whose integrity violation is `conflict`.
    pub(crate) fn execute_or(&mut self, sql: &str, params: &Params<'_>, conflict: Conflict) -> Result<u64, StoreError> {
        let changed = self.client.execute(sql, params).map_err(|error| map_error(error, conflict))?;
        self.changed += changed;
        Ok(changed)
    }

    /// Inserts one row and returns what the statement's `RETURNING` clause names.
    pub(crate) fn insert(&mut self, sql: &str, params: &Params<'_>, conflict: Conflict) -> Result<Row, StoreError> {
        let row = self.client.query_one(sql, params).map_err(|error| map_error(error, conflict))?;
        self.changed += 1;
        Ok(row)
    }

    /// Takes the cluster-wide lock for changes whose reads decide them (the last administrator).
    pub(crate) fn lock_decisions(&mut self) -> Result<(), StoreError> {
        self.client.execute("SELECT pg_advisory_xact_lock($1)", &[&DECISION_LOCK]).map_err(backend).map(drop)
    }
}

/// The advisory lock serialising changes whose reads decide them, on every node.
const DECISION_LOCK: i64 = 0x7773_7368_0001;

/// A name for this store that no other store shares: process, time and a counter.
fn node_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_nanos());
    format!("{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

pub(crate) fn backend(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(error))
}

/// Maps a driver error, turning integrity violations (class 23) into [`StoreError::Conflict`].
pub(crate) fn map_error(error: postgres::Error, conflict: Conflict) -> StoreError {
    match error.code() {
        Some(state) if state.code().starts_with("23") => StoreError::Conflict(conflict),
        _ => backend(error),
    }
}

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(Box::new(PgError::CorruptRow(what.to_string())))
}

/// Column `index` of `row`.
pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, StoreError> {
    row.try_get(index).map_err(backend)
}

/// Clamps a count to PostgreSQL's BIGINT.
pub(crate) fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// `url` with its password (if any) replaced by `***`, for logs and messages.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|index| index + 3) else { return url.to_owned() };
    let authority_end = url[scheme_end..].find(['/', '?']).map_or(url.len(), |index| scheme_end + index);
    let authority = &url[scheme_end..authority_end];
    match authority.rfind('@') {
        Some(at) => match authority[..at].find(':') {
            Some(colon) => {
                format!("{}{}:***{}", &url[..scheme_end], &authority[..colon], &url[scheme_end + at..])
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn a_urls_password_is_hidden() {
        assert_eq!(redact_url("postgres://u:p%40ss@h:5/db?x=1"), "postgres://u:***@h:5/db?x=1");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("postgresql://h/db"), "postgresql://h/db");
    }
}
