//! Versioned SQL migrations, embedded in the crate and applied in order.
//!
//! The applied version lives in SQLite's `user_version`. Each migration runs in its own
//! transaction, so a failure leaves the database at the previous version.

use rusqlite::Connection;

use wssh_store::StoreError;

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
    Migration { version: 2, name: "logins", sql: include_str!("../migrations/0002_logins.sql") },
    Migration { version: 3, name: "identity", sql: include_str!("../migrations/0003_identity.sql") },
    Migration { version: 4, name: "login_client", sql: include_str!("../migrations/0004_login_client.sql") },
    Migration { version: 5, name: "alist_hash", sql: include_str!("../migrations/0005_alist_hash.sql") },
    Migration { version: 6, name: "login_failures", sql: include_str!("../migrations/0006_login_failures.sql") },
    Migration { version: 7, name: "shell_permissions", sql: include_str!("../migrations/0007_shell_permissions.sql") },
    Migration { version: 8, name: "audit", sql: include_str!("../migrations/0008_audit.sql") },
    Migration { version: 9, name: "recordings", sql: include_str!("../migrations/0009_recordings.sql") },
    Migration { version: 10, name: "run_as", sql: include_str!("../migrations/0010_run_as.sql") },
    Migration { version: 11, name: "detach_timeout", sql: include_str!("../migrations/0011_detach_timeout.sql") },
    Migration { version: 12, name: "session_record", sql: include_str!("../migrations/0012_session_record.sql") },
    Migration { version: 13, name: "live_shells", sql: include_str!("../migrations/0013_live_shells.sql") },
];

/// Where a database stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// The version the database is at.
    pub applied: u32,
    /// The newest version this build knows.
    pub latest: u32,
}

pub(crate) fn applied_version(connection: &Connection) -> Result<u32, StoreError> {
    connection.query_row("PRAGMA user_version", [], |row| row.get::<_, u32>(0)).map_err(StoreError::backend)
}

/// Applies every pending migration; returns the versions it applied.
pub(crate) fn apply_pending(connection: &mut Connection) -> Result<Vec<u32>, StoreError> {
    let applied = applied_version(connection)?;
    let latest = MIGRATIONS.last().map_or(0, |migration| migration.version);
    if applied > latest {
        return Err(StoreError::Conflict(wssh_store::Conflict::DatabaseNewer));
    }
    let mut done = Vec::new();
    for migration in MIGRATIONS.iter().filter(|migration| migration.version > applied) {
        let transaction = connection.transaction().map_err(StoreError::backend)?;
        transaction.execute_batch(migration.sql).map_err(StoreError::backend)?;
        transaction.pragma_update(None, "user_version", migration.version).map_err(StoreError::backend)?;
        transaction.commit().map_err(StoreError::backend)?;
        tracing::info!(version = migration.version, name = migration.name, "applied migration");
        done.push(migration.version);
    }
    Ok(done)
}
