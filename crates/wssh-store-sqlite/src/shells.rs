//! [`ShellRegistryStore`] on SQLite: one node, but the same registry as a cluster's. Its writes
//! do not move the change counter: a heartbeat changes nothing a cache keeps.

use rusqlite::params;
use wssh_domain::UserId;
use wssh_store::{Heartbeat, ShellClientRecord, ShellRecord, ShellRegistryStore, StoreError};

use crate::SqliteStore;

fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<(ShellRecord, String)> {
    let clients: String = row.get(9)?;
    Ok((
        ShellRecord {
            id: row.get(0)?,
            node: row.get(1)?,
            owner: row.get(2)?,
            owner_id: UserId(row.get(3)?),
            session: row.get(4)?,
            created_at: row.get(5)?,
            cols: row.get(6)?,
            rows: row.get(7)?,
            output_bytes: row.get::<_, i64>(8)?.unsigned_abs(),
            clients: ShellClientRecord::list_from_json(&clients),
            detached_since: row.get(10)?,
        },
        row.get(11)?,
    ))
}

impl ShellRegistryStore for SqliteStore {
    fn heartbeat(&self, beat: &Heartbeat<'_>) -> Result<Vec<String>, StoreError> {
        let mut connection = self.pool.get().map_err(StoreError::backend)?;
        let transaction = connection.transaction().map_err(StoreError::backend)?;
        transaction
            .execute(
                "INSERT INTO cluster_nodes (id, url, last_seen) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET url = excluded.url, last_seen = excluded.last_seen",
                params![beat.node, beat.url, beat.now_ms],
            )
            .map_err(StoreError::backend)?;
        transaction
            .execute(
                "DELETE FROM live_shells WHERE node IN (SELECT id FROM cluster_nodes WHERE last_seen < ?1)",
                [beat.expire_before_ms],
            )
            .map_err(StoreError::backend)?;
        transaction
            .execute("DELETE FROM cluster_nodes WHERE last_seen < ?1", [beat.expire_before_ms])
            .map_err(StoreError::backend)?;
        let ids: Vec<&str> = beat.shells.iter().map(|shell| shell.id.as_str()).collect();
        let ids_json = serde_json::to_string(&ids).map_err(StoreError::backend)?;
        transaction
            .execute(
                "DELETE FROM live_shells WHERE node = ?1 AND id NOT IN (SELECT value FROM json_each(?2))",
                params![beat.node, ids_json],
            )
            .map_err(StoreError::backend)?;
        for shell in beat.shells {
            transaction
                .execute(
                    "INSERT INTO live_shells (id, node, owner, owner_id, session, created_at, cols, rows,
                         output_bytes, clients, detached_since)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT (id) DO UPDATE SET node = excluded.node, cols = excluded.cols,
                         rows = excluded.rows, output_bytes = excluded.output_bytes,
                         clients = excluded.clients, detached_since = excluded.detached_since",
                    params![
                        shell.id,
                        beat.node,
                        shell.owner,
                        shell.owner_id.0,
                        shell.session,
                        shell.created_at,
                        shell.cols,
                        shell.rows,
                        i64::try_from(shell.output_bytes).unwrap_or(i64::MAX),
                        ShellClientRecord::list_to_json(&shell.clients),
                        shell.detached_since,
                    ],
                )
                .map_err(StoreError::backend)?;
        }
        let ending = {
            let mut statement = transaction
                .prepare("SELECT id FROM live_shells WHERE node = ?1 AND end_requested <> 0")
                .map_err(StoreError::backend)?;
            statement
                .query_map([beat.node], |row| row.get::<_, String>(0))
                .map_err(StoreError::backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::backend)?
        };
        transaction.commit().map_err(StoreError::backend)?;
        Ok(ending)
    }

    fn cluster_shells(&self, alive_since_ms: i64) -> Result<Vec<(ShellRecord, String)>, StoreError> {
        let connection = self.pool.get().map_err(StoreError::backend)?;
        let mut statement = connection
            .prepare_cached(
                "SELECT s.id, s.node, s.owner, s.owner_id, s.session, s.created_at, s.cols, s.rows,
                        s.output_bytes, s.clients, s.detached_since, n.url
                 FROM live_shells s JOIN cluster_nodes n ON n.id = s.node
                 WHERE n.last_seen >= ?1 AND s.end_requested = 0 ORDER BY s.created_at, s.id",
            )
            .map_err(StoreError::backend)?;
        statement
            .query_map([alive_since_ms], record)
            .map_err(StoreError::backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::backend)
    }

    fn request_shell_end(&self, id: &str) -> Result<bool, StoreError> {
        let connection = self.pool.get().map_err(StoreError::backend)?;
        let changed = connection
            .execute("UPDATE live_shells SET end_requested = 1 WHERE id = ?1 AND end_requested = 0", [id])
            .map_err(StoreError::backend)?;
        Ok(changed > 0)
    }

    fn leave_cluster(&self, node: &str) -> Result<(), StoreError> {
        let mut connection = self.pool.get().map_err(StoreError::backend)?;
        let transaction = connection.transaction().map_err(StoreError::backend)?;
        transaction.execute("DELETE FROM live_shells WHERE node = ?1", [node]).map_err(StoreError::backend)?;
        transaction.execute("DELETE FROM cluster_nodes WHERE id = ?1", [node]).map_err(StoreError::backend)?;
        transaction.commit().map_err(StoreError::backend)?;
        Ok(())
    }
}
