//! `cargo xtask migrate`: shows which of wssh's database migrations ([`wssh_store_sqlite::MIGRATIONS`])
//! a data directory's `wssh.db` has applied, and applies the pending ones unless `--show` is
//! given. The server applies them itself at start; this is for inspecting a database, or
//! upgrading one without starting a server.

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
