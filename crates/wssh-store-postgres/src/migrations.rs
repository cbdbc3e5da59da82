//! Versioned SQL migrations in PostgreSQL's dialect, embedded and applied in order.
//!
//! The applied versions live in `wssh_schema_migrations`. All pending migrations run in one
//! transaction under an advisory lock, so nodes starting together apply each exactly once and a
//! failure leaves the database as it was.

use postgres::Client;
use wssh_store::{Conflict, StoreError};

use crate::{backend, get};

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its version, counting from 1.
    pub version: u32,
    /// A short name, from its file name.
    pub name: &'static str,
    /// The SQL it runs.
    pub sql: &'static str,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "initial", sql: include_str!("../migrations/0001_initial.sql") },
    Migration { version: 2, name: "audit_recordings", sql: include_str!("../migrations/0002_audit_recordings.sql") },
    Migration { version: 3, name: "run_as", sql: include_str!("../migrations/0003_run_as.sql") },
    Migration { version: 4, name: "recording_order", sql: include_str!("../migrations/0004_recording_order.sql") },
    Migration { version: 5, name: "detach_timeout", sql: include_str!("../migrations/0005_detach_timeout.sql") },
    Migration { version: 6, name: "session_record", sql: include_str!("../migrations/0006_session_record.sql") },
    Migration { version: 7, name: "live_shells", sql: include_str!("../migrations/0007_live_shells.sql") },
];

/// Where a database stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// The version the database is at.
    pub applied: u32,
    /// The newest version this build knows.
    pub latest: u32,
}

/// The advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x7773_7368_0000;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS wssh_schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at BIGINT  NOT NULL DEFAULT extract(epoch FROM now())::BIGINT
)";

fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |migration| migration.version)
}

fn applied_version(client: &mut impl postgres::GenericClient) -> Result<u32, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('wssh_schema_migrations') IS NOT NULL", &[])
        .map_err(backend)
        .and_then(|row| get(&row, 0))?;
    if !exists {
        return Ok(0);
    }
    let row = client.query_one("SELECT COALESCE(MAX(version), 0) FROM wssh_schema_migrations", &[]).map_err(backend)?;
    let version: i32 = get(&row, 0)?;
    Ok(version.unsigned_abs())
}

pub(crate) fn status(client: &mut Client) -> Result<MigrationStatus, StoreError> {
    Ok(MigrationStatus { applied: applied_version(client)?, latest: latest() })
}

pub(crate) fn apply_pending(client: &mut Client) -> Result<Vec<u32>, StoreError> {
    let mut transaction = client.transaction().map_err(backend)?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(backend)?;
    transaction.batch_execute(CREATE_TABLE).map_err(backend)?;
    let applied = applied_version(&mut transaction)?;
    if applied > latest() {
        return Err(StoreError::Conflict(Conflict::DatabaseNewer));
    }
    let mut done = Vec::new();
    for migration in MIGRATIONS.iter().filter(|migration| migration.version > applied) {
        transaction.batch_execute(migration.sql).map_err(backend)?;
        let version = i32::try_from(migration.version).map_err(backend)?;
        transaction
            .execute("INSERT INTO wssh_schema_migrations (version, name) VALUES ($1, $2)", &[&version, &migration.name])
            .map_err(backend)?;
        done.push(migration.version);
    }
    transaction.commit().map_err(backend)?;
    for version in &done {
        tracing::info!(version, "applied PostgreSQL migration");
    }
    Ok(done)
}
