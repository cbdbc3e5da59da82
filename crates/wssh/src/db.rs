//! `wssh db copy --from PATH_OR_URL --to URL`: moves an install (every row: users with their
//! hashes, roles, tokens, logins and their refresh-token history, sessions, settings such as
//! the JWT key, SSH keys, the login throttle's counts) from an embedded SQLite database (or
//! another PostgreSQL one) into a new PostgreSQL database, then checks that every table holds
//! as many rows as the source.

use std::process::ExitCode;

use wssh_store::dump::{Export, TABLES};
use wssh_store_postgres::PgStore;
use wssh_store_sqlite::SqliteStore;

use crate::database::Database;

/// `wssh db …`.
#[derive(Debug, clap::Args)]
pub(crate) struct DbArgs {
    #[command(subcommand)]
    command: DbCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DbCommand {
    /// Copy every row of a database into a new, empty PostgreSQL database and verify the counts.
    Copy {
        /// The source: a SQLite file (a data directory's wssh.db) or a postgres:// URL.
        #[arg(long, value_name = "PATH_OR_URL")]
        from: String,
        /// The destination: a postgres:// URL of an empty (or freshly migrated) database.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

/// Runs the command; failures are reported on standard error.
pub(crate) fn run(args: &DbArgs) -> ExitCode {
    let DbCommand::Copy { from, to } = &args.command;
    match copy(from, to) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("wssh db copy: {message}");
            ExitCode::FAILURE
        }
    }
}

fn copy(from: &str, to: &str) -> Result<(), String> {
    let source = Database::parse_location(from);
    let Database::Postgres(destination_url) = Database::parse_location(to) else {
        return Err("--to: expected a postgres:// or postgresql:// URL".to_owned());
    };
    let source: Box<dyn Export> = match &source {
        Database::Sqlite(path) => {
            if !path.is_file() {
                return Err(format!("--from: no database file at {}", path.display()));
            }
            // Opening migrates: an older file is brought to this build's schema first.
            Box::new(SqliteStore::open(path).map_err(|error| format!("{source}: {error}"))?)
        }
        Database::Postgres(url) => Box::new(PgStore::connect(url).map_err(|error| format!("{source}: {error}"))?),
    };
    let shown = Database::Postgres(destination_url.clone());
    let destination = PgStore::connect(&destination_url).map_err(|error| format!("{shown}: {error}"))?;

    let mut tables = Vec::new();
    for table in TABLES {
        tables.push(source.export_table(table).map_err(|error| format!("reading {table}: {error}"))?);
    }
    destination.import(&tables).map_err(|error| format!("{shown}: {error}"))?;

    let mut mismatches = Vec::new();
    for table in TABLES {
        let expected = source.count_rows(table).map_err(|error| format!("counting {table}: {error}"))?;
        let copied = destination.count_rows(table).map_err(|error| format!("counting {table}: {error}"))?;
        crate::serve::announce(&format!("{table}: {copied} of {expected} rows"));
        if copied != expected {
            mismatches.push(format!("{table} has {copied} rows, the source {expected}"));
        }
    }
    if !mismatches.is_empty() {
        return Err(format!("the copy is incomplete: {}", mismatches.join("; ")));
    }
    crate::serve::announce(&format!("copied every row into {shown}; counts verified"));
    Ok(())
}
