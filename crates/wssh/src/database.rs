//! Which database `wssh serve` (and `wssh db copy`) uses: the SQLite file in the data directory
//! by default, or a PostgreSQL database named by a URL (`--database`, the `database` key,
//! `WSSH_DATABASE`) for many nodes sharing one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wssh_store::{Store, StoreError};
use wssh_store_postgres::PgStore;
use wssh_store_sqlite::SqliteStore;

/// The pool's connections and idle connections, for the metrics.
pub(crate) type PoolProbe = Arc<dyn Fn() -> (u32, u32) + Send + Sync>;

/// The name of the database file in the data directory.
pub(crate) const DATABASE_FILE: &str = "wssh.db";

/// A database wssh can open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Database {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database, by URL.
    Postgres(String),
}

impl Database {
    /// The configured database: a PostgreSQL URL when one is given, else `wssh.db` in
    /// `data_dir`.
    pub(crate) fn choose(url: Option<&str>, data_dir: &Path) -> Result<Self, String> {
        match url.filter(|url| !url.is_empty()) {
            None => Ok(Database::Sqlite(data_dir.join(DATABASE_FILE))),
            Some(url) if wssh_store_postgres::is_postgres_url(url) => Ok(Database::Postgres(url.to_owned())),
            Some(_) => Err("database: expected a postgres:// or postgresql:// URL (leave it out for the SQLite \
                            file in the data directory)"
                .to_owned()),
        }
    }

    /// A path (a SQLite file) or a PostgreSQL URL, as `wssh db copy` takes them.
    pub(crate) fn parse_location(location: &str) -> Self {
        if wssh_store_postgres::is_postgres_url(location) {
            Database::Postgres(location.to_owned())
        } else {
            Database::Sqlite(PathBuf::from(location))
        }
    }

    /// Opens the database, applying pending migrations. Blocks: call it on a blocking thread
    /// (the PostgreSQL client must never run on an async worker).
    pub(crate) fn open(&self) -> Result<(Arc<dyn Store>, PoolProbe), StoreError> {
        Ok(match self {
            Database::Sqlite(path) => {
                let store = Arc::new(SqliteStore::open(path)?);
                let probe = store.clone();
                (store, Arc::new(move || probe.pool_state()))
            }
            Database::Postgres(url) => {
                let store = Arc::new(PgStore::connect(url)?);
                let probe = store.clone();
                (store, Arc::new(move || probe.pool_state()))
            }
        })
    }
}

impl std::fmt::Display for Database {
    /// The file, or the URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => f.write_str(&wssh_store_postgres::redact_url(url)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_by_default_postgres_by_url_and_nothing_else() {
        let dir = Path::new("/data");
        assert_eq!(Database::choose(None, dir), Ok(Database::Sqlite(dir.join("wssh.db"))));
        assert_eq!(Database::choose(Some(""), dir), Ok(Database::Sqlite(dir.join("wssh.db"))));
        let url = "postgres://wssh:secret@db:5432/wssh";
        assert_eq!(Database::choose(Some(url), dir), Ok(Database::Postgres(url.into())));
        assert!(Database::choose(Some("mysql://x"), dir).unwrap_err().contains("postgres://"));
        assert_eq!(Database::Postgres(url.into()).to_string(), "postgres://wssh:***@db:5432/wssh");
    }
}
