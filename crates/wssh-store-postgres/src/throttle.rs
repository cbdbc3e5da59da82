//! [`ThrottleStore`] on PostgreSQL: one set of counts for every node, so N nodes give an
//! attacker no more guesses than one. Its writes announce nothing and move no generation: a
//! failed login changes nothing a cache keeps, and must not empty the caches during an attack.

use wssh_store::{FailureTimes, StoreError, ThrottleStore};

use crate::{PgStore, backend, get};

fn times(
    client: &mut postgres::Client,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Vec<i64>, StoreError> {
    let rows = client.query(sql, params).map_err(backend)?;
    let mut times = rows.iter().map(|row| get::<i64>(row, 0)).collect::<Result<Vec<_>, _>>()?;
    times.reverse();
    Ok(times)
}

impl ThrottleStore for PgStore {
    fn login_failures(
        &self,
        account: &str,
        address: &str,
        since_ms: i64,
        limit: usize,
    ) -> Result<FailureTimes, StoreError> {
        let mut client = self.connection()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(FailureTimes {
            pair: times(
                &mut client,
                "SELECT failed_at FROM login_failures WHERE account = $1 AND address = $2 AND failed_at >= $3
                 ORDER BY failed_at DESC LIMIT $4",
                &[&account, &address, &since_ms, &limit],
            )?,
            address: times(
                &mut client,
                "SELECT failed_at FROM login_failures WHERE address = $1 AND failed_at >= $2
                 ORDER BY failed_at DESC LIMIT $3",
                &[&address, &since_ms, &limit],
            )?,
            account: times(
                &mut client,
                "SELECT failed_at FROM login_failures WHERE account = $1 AND failed_at >= $2
                 ORDER BY failed_at DESC LIMIT $3",
                &[&account, &since_ms, &limit],
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
        let mut client = self.connection()?;
        client.execute("DELETE FROM login_failures WHERE failed_at < $1", &[&forget_before_ms]).map_err(backend)?;
        client
            .execute(
                "INSERT INTO login_failures (account, address, failed_at) VALUES ($1, $2, $3)",
                &[&account, &address, &at_ms],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn record_login_success(&self, account: &str, address: &str, at_ms: i64) -> Result<(), StoreError> {
        let mut client = self.connection()?;
        let mut transaction = client.transaction().map_err(backend)?;
        transaction
            .execute("DELETE FROM login_failures WHERE account = $1 AND address = $2", &[&account, &address])
            .map_err(backend)?;
        transaction
            .execute(
                "INSERT INTO login_known_addresses (account, address, succeeded_at) VALUES ($1, $2, $3)
                 ON CONFLICT (account, address) DO UPDATE SET succeeded_at = excluded.succeeded_at",
                &[&account, &address, &at_ms],
            )
            .map_err(backend)?;
        transaction.commit().map_err(backend)
    }

    fn is_known_address(&self, account: &str, address: &str, since_ms: i64) -> Result<bool, StoreError> {
        let row = self
            .connection()?
            .query_opt(
                "SELECT 1 FROM login_known_addresses WHERE account = $1 AND address = $2 AND succeeded_at >= $3",
                &[&account, &address, &since_ms],
            )
            .map_err(backend)?;
        Ok(row.is_some())
    }
}
