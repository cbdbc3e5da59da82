//! Throwaway databases for tests: each test (or each server a test starts) gets a fresh
//! database on a PostgreSQL server, dropped again when the value is.

use std::sync::atomic::{AtomicU32, Ordering};

use postgres::NoTls;

/// The variable naming the PostgreSQL server tests may create databases on.
pub const TEST_DATABASE_URL: &str = "WSSH_TEST_DATABASE_URL";

/// A database created for one test, dropped (with its connections ended) on drop.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

/// Runs `work` on a thread of its own: the synchronous client must not run inside an async
/// runtime, and a test may call this from one.
fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(work).join().expect("scratch database thread panicked"))
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(base, query)| (base, Some(query)));
    let authority_end = base.find("://").map_or(0, |scheme| scheme + 3);
    let root = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{name}?{query}"),
        None => format!("{root}/{name}"),
    }
}

impl ScratchDatabase {
    /// A fresh database on the server at `admin_url`, its name starting with `prefix`.
    pub fn create(admin_url: &str, prefix: &str) -> Result<Self, postgres::Error> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let name = format!(
            "{}_{}_{}_{nanos}",
            prefix.to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        off_runtime(|| {
            let mut client = postgres::Client::connect(admin_url, NoTls)?;
            client.batch_execute(&format!("CREATE DATABASE \"{name}\""))
        })?;
        let url = with_database(admin_url, &name);
        Ok(ScratchDatabase { admin_url: admin_url.to_owned(), name, url })
    }

    /// A fresh database on the server named by [`TEST_DATABASE_URL`], if the variable is set.
    pub fn from_env(prefix: &str) -> Option<Self> {
        let admin_url = std::env::var(TEST_DATABASE_URL).ok().filter(|url| !url.is_empty())?;
        Some(Self::create(&admin_url, prefix).expect("cannot create a scratch database on WSSH_TEST_DATABASE_URL"))
    }

    /// The URL of the database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (&self.admin_url, &self.name);
        let dropped = off_runtime(|| {
            let mut client = postgres::Client::connect(admin_url, NoTls)?;
            client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        });
        if let Err(error) = dropped {
            tracing::warn!(%error, database = name, "cannot drop a scratch database");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced_and_the_query_kept() {
        assert_eq!(with_database("postgres://u@h:1/postgres", "x"), "postgres://u@h:1/x");
        assert_eq!(
            with_database("postgres://u@h:1/postgres?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
        assert_eq!(with_database("postgresql://h", "x"), "postgresql://h/x");
    }
}
