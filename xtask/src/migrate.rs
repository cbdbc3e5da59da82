//! `cargo xtask migrate`: shows which of wssh's database migrations ([`wssh_store_sqlite::MIGRATIONS`])
//! a data directory's `wssh.db` has applied, and applies the pending ones unless `--show` is
//! given. The server applies them itself at start; this is for inspecting a database, or
//! upgrading one without starting a server. `--database postgres://…` does the same for a
//! PostgreSQL database, with its own migrations.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use wssh_store_sqlite::{MIGRATIONS, Migration, MigrationStatus, SqliteStore};

/// The database file inside a data directory, as `wssh serve` names it.
const DATABASE_FILE: &str = "wssh.db";

/// The options of `cargo xtask migrate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The data directory holding wssh.db [default: $XDG_DATA_HOME/wssh or ~/.local/share/wssh].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A PostgreSQL database (postgres://…) to migrate instead of a data directory's wssh.db.
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    database: Option<String>,
    /// Only list the migrations, applied or pending; change nothing.
    #[arg(long)]
    show: bool,
}

/// Runs the task; failures are reported on standard error.
pub(crate) fn run(args: &Args) -> ExitCode {
    match migrate(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The default data directory, as `wssh serve` has it: `$XDG_DATA_HOME/wssh`, else
/// `~/.local/share/wssh`.
fn default_data_dir() -> Result<PathBuf, String> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty()).map(PathBuf::from);
    if let Some(data_home) = non_empty("XDG_DATA_HOME") {
        return Ok(data_home.join("wssh"));
    }
    non_empty("HOME")
        .map(|home| home.join(".local/share/wssh"))
        .ok_or_else(|| "neither XDG_DATA_HOME nor HOME is set: pass --data-dir".to_owned())
}

/// Lists the migrations, then (without `--show`) applies the pending ones.
fn migrate(args: &Args) -> Result<(), String> {
    if let Some(url) = &args.database {
        return migrate_postgres(url, args.show);
    }
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => default_data_dir()?,
    };
    let path = data_dir.join(DATABASE_FILE);
    if args.show && !path.exists() {
        // Showing must not create a database: a missing one has applied nothing.
        println!("{}: no database yet", path.display());
        print_migrations(0);
        return Ok(());
    }
    if !args.show {
        // Like `wssh serve`: the data directory is private to its owner.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&data_dir)
            .map_err(|error| format!("cannot create {}: {error}", data_dir.display()))?;
    }
    let store = open(&path)?;
    let status = store.migration_status().map_err(|error| format!("{}: {error}", path.display()))?;
    print_status(&path, &status);
    print_migrations(status.applied);
    if args.show {
        return Ok(());
    }
    let applied = store.migrate().map_err(|error| format!("{}: {error}", path.display()))?;
    if applied.is_empty() {
        println!("nothing to apply: the database is up to date");
    }
    for version in applied {
        let name = MIGRATIONS.iter().find(|migration| migration.version == version).map_or("?", |m| m.name);
        println!("applied {version:04} {name}");
    }
    Ok(())
}

/// Opens the database as it is, applying nothing.
fn open(path: &Path) -> Result<SqliteStore, String> {
    SqliteStore::open_without_migrating(path).map_err(|error| format!("cannot open {}: {error}", path.display()))
}

/// One line on where the database stands.
fn print_status(path: &Path, status: &MigrationStatus) {
    println!("{}: schema version {}, latest {}", path.display(), status.applied, status.latest);
    if status.applied > status.latest {
        println!("warning: the database is newer than this build of wssh");
    }
}

/// One line per known migration: applied when the database is at its version or later.
fn print_migrations(applied: u32) {
    for Migration { version, name, .. } in MIGRATIONS {
        let state = if *version <= applied { "applied" } else { "pending" };
        println!("  {version:04} {name:<24} {state}");
    }
}

/// `--database URL`: the same on PostgreSQL, with its own migrations
/// ([`wssh_store_postgres::MIGRATIONS`]).
fn migrate_postgres(url: &str, show: bool) -> Result<(), String> {
    if !wssh_store_postgres::is_postgres_url(url) {
        return Err("--database: expected a postgres:// or postgresql:// URL".to_owned());
    }
    let shown = wssh_store_postgres::redact_url(url);
    let store = wssh_store_postgres::PgStore::connect_without_migrating(url)
        .map_err(|error| format!("cannot open {shown}: {error}"))?;
    let status = store.migration_status().map_err(|error| format!("{shown}: {error}"))?;
    println!("{shown}: schema version {}, latest {}", status.applied, status.latest);
    if status.applied > status.latest {
        println!("warning: the database is newer than this build of wssh");
    }
    for wssh_store_postgres::Migration { version, name, .. } in wssh_store_postgres::MIGRATIONS {
        let state = if *version <= status.applied { "applied" } else { "pending" };
        println!("  {version:04} {name:<24} {state}");
    }
    if show {
        return Ok(());
    }
    let applied = store.migrate().map_err(|error| format!("{shown}: {error}"))?;
    if applied.is_empty() {
        println!("nothing to apply: the database is up to date");
    }
    for version in applied {
        let name = wssh_store_postgres::MIGRATIONS.iter().find(|m| m.version == version).map_or("?", |m| m.name);
        println!("applied {version:04} {name}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use wssh_store_postgres::PgStore;
    use wssh_store_postgres::scratch::ScratchDatabase;

    use super::migrate_postgres;

    #[test]
    fn a_postgresql_database_is_shown_then_migrated() {
        let Some(database) = ScratchDatabase::from_env("xtask_migrate") else {
            eprintln!("WSSH_TEST_DATABASE_URL is not set: not run");
            return;
        };
        let status = || PgStore::connect_without_migrating(database.url()).unwrap().migration_status().unwrap();
        migrate_postgres(database.url(), true).unwrap();
        assert_eq!(status().applied, 0, "--show changes nothing");
        migrate_postgres(database.url(), false).unwrap();
        assert_eq!(status().applied, status().latest);
        assert!(migrate_postgres("mysql://x", false).unwrap_err().contains("postgres://"));
    }
}
