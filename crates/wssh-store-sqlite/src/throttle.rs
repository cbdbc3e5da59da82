//! [`ThrottleStore`] on SQLite. Its writes do not move the change counter: a failed login
//! changes nothing a cache keeps, and must not empty the caches during an attack.

use rusqlite::{OptionalExtension, params};

use wssh_store::{FailureTimes, StoreError, ThrottleStore};

use crate::SqliteStore;

fn times(connection: &rusqlite::Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<i64>, StoreError> {
    let mut statement = connection.prepare_cached(sql).map_err(StoreError::backend)?;
    let mut times = statement
        .query_map(params, |row| row.get::<_, i64>(0))
        .map_err(StoreError::backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::backend)?;
    times.reverse();
    Ok(times)
}

impl ThrottleStore for SqliteStore {
    fn login_failures(
        &self,
        account: &str,
        address: &str,
        since_ms: i64,
        limit: usize,
    ) -> Result<FailureTimes, StoreError> {
        let connection = self.pool.get().map_err(StoreError::backend)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(FailureTimes {
            pair: times(
                &connection,
                "SELECT failed_at FROM login_failures WHERE account = ?1 AND address = ?2 AND failed_at >= ?3
                 ORDER BY failed_at DESC LIMIT ?4",
                params![account, address, since_ms, limit],
            )?,
            address: times(
                &connection,
                "SELECT failed_at FROM login_failures WHERE address = ?1 AND failed_at >= ?2
                 ORDER BY failed_at DESC LIMIT ?3",
                params![address, since_ms, limit],
            )?,
            account: times(
                &connection,
                "SELECT failed_at FROM login_failures WHERE account = ?1 AND failed_at >= ?2
                 ORDER BY failed_at DESC LIMIT ?3",
                params![account, since_ms, limit],
            )?,
        })
    }

    fn record_login_failure(
        &self,
        account: &str,
        address: &str,
        at_ms: i64,
        forget_before_ms: i64,
    ) -> Result<(), StoreError> {
        let connection = self.pool.get().map_err(StoreError::backend)?;
        connection
            .prepare_cached("DELETE FROM login_failures WHERE failed_at < ?1")
            .and_then(|mut statement| statement.execute([forget_before_ms]))
            .map_err(StoreError::backend)?;
        connection
            .prepare_cached("INSERT INTO login_failures (account, address, failed_at) VALUES (?1, ?2, ?3)")
            .and_then(|mut statement| statement.execute(params![account, address, at_ms]))
            .map_err(StoreError::backend)?;
        Ok(())
    }

    fn record_login_success(&self, account: &str, address: &str, at_ms: i64) -> Result<(), StoreError> {
        let mut connection = self.pool.get().map_err(StoreError::backend)?;
        let transaction = connection.transaction().map_err(StoreError::backend)?;
        transaction
            .execute("DELETE FROM login_failures WHERE account = ?1 AND address = ?2", params![account, address])
            .map_err(StoreError::backend)?;
        transaction
            .execute(
                "INSERT INTO login_known_addresses (account, address, succeeded_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account, address) DO UPDATE SET succeeded_at = excluded.succeeded_at",
                params![account, address, at_ms],
            )
            .map_err(StoreError::backend)?;
        transaction.commit().map_err(StoreError::backend)
    }

    fn is_known_address(&self, account: &str, address: &str, since_ms: i64) -> Result<bool, StoreError> {
        let connection = self.pool.get().map_err(StoreError::backend)?;
        let found = connection
            .prepare_cached(
                "SELECT 1 FROM login_known_addresses WHERE account = ?1 AND address = ?2 AND succeeded_at >= ?3",
            )
            .and_then(|mut statement| {
                statement.query_row(params![account, address, since_ms], |row| row.get::<_, i64>(0)).optional()
            })
            .map_err(StoreError::backend)?;
        Ok(found.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_pair_address_and_account_and_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        store.record_login_failure("alice", "10.0.0.1", 1_000, 0).unwrap();
        store.record_login_failure("alice", "10.0.0.2", 2_000, 0).unwrap();
        store.record_login_failure("bob", "10.0.0.1", 3_000, 0).unwrap();
        let times = store.login_failures("alice", "10.0.0.1", 0, 100).unwrap();
        assert_eq!(times, FailureTimes { pair: vec![1_000], address: vec![1_000, 3_000], account: vec![1_000, 2_000] });
        assert_eq!(store.login_failures("alice", "10.0.0.1", 1_500, 100).unwrap().pair, Vec::<i64>::new());
        store.record_login_success("alice", "10.0.0.1", 4_000).unwrap();
        assert!(store.is_known_address("alice", "10.0.0.1", 3_000).unwrap());
        assert!(!store.is_known_address("alice", "10.0.0.1", 5_000).unwrap());
        assert!(!store.is_known_address("alice", "10.0.0.2", 0).unwrap());
        let times = store.login_failures("alice", "10.0.0.1", 0, 100).unwrap();
        assert!(times.pair.is_empty() && times.account == vec![2_000]);
        store.record_login_failure("carol", "10.0.0.3", 5_000, 2_500).unwrap();
        assert_eq!(store.login_failures("bob", "10.0.0.1", 0, 100).unwrap().pair, vec![3_000], "newer kept");
        assert!(store.login_failures("alice", "10.0.0.2", 0, 100).unwrap().pair.is_empty(), "older forgotten");
    }
}
