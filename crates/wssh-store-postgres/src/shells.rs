//! [`ShellRegistryStore`] on PostgreSQL: every node's live shells, kept by its heartbeat. Its
//! writes announce nothing and move no generation: a heartbeat changes nothing a cache keeps.

use postgres::Row;
use wssh_domain::UserId;
use wssh_store::{Heartbeat, ShellClientRecord, ShellRecord, ShellRegistryStore, StoreError};

use crate::{PgStore, backend, get};

fn record(row: &Row) -> Result<(ShellRecord, String), StoreError> {
    let clients: String = get(row, 9)?;
    let cols: i32 = get(row, 6)?;
    let rows: i32 = get(row, 7)?;
    let output_bytes: i64 = get(row, 8)?;
    Ok((
        ShellRecord {
            id: get(row, 0)?,
            node: get(row, 1)?,
            owner: get(row, 2)?,
            owner_id: UserId(get(row, 3)?),
            session: get(row, 4)?,
            created_at: get(row, 5)?,
            cols: u16::try_from(cols).unwrap_or(0),
            rows: u16::try_from(rows).unwrap_or(0),
            output_bytes: output_bytes.unsigned_abs(),
            clients: ShellClientRecord::list_from_json(&clients),
            detached_since: get(row, 10)?,
        },
        get(row, 11)?,
    ))
}

impl ShellRegistryStore for PgStore {
    fn heartbeat(&self, beat: &Heartbeat<'_>) -> Result<Vec<String>, StoreError> {
        let mut connection = self.connection()?;
        let mut transaction = connection.transaction().map_err(backend)?;
        transaction
            .execute(
                "INSERT INTO cluster_nodes (id, url, last_seen) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET url = excluded.url, last_seen = excluded.last_seen",
                &[&beat.node, &beat.url, &beat.now_ms],
            )
            .map_err(backend)?;
        transaction
            .execute(
                "DELETE FROM live_shells WHERE node IN (SELECT id FROM cluster_nodes WHERE last_seen < $1)",
                &[&beat.expire_before_ms],
            )
            .map_err(backend)?;
        transaction
            .execute("DELETE FROM cluster_nodes WHERE last_seen < $1", &[&beat.expire_before_ms])
            .map_err(backend)?;
        let ids: Vec<&str> = beat.shells.iter().map(|shell| shell.id.as_str()).collect();
        transaction
            .execute("DELETE FROM live_shells WHERE node = $1 AND NOT (id = ANY($2))", &[&beat.node, &ids])
            .map_err(backend)?;
        for shell in beat.shells {
            let output_bytes = i64::try_from(shell.output_bytes).unwrap_or(i64::MAX);
            transaction
                .execute(
                    "INSERT INTO live_shells (id, node, owner, owner_id, session, created_at, cols, rows,
                         output_bytes, clients, detached_since)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                     ON CONFLICT (id) DO UPDATE SET node = excluded.node, cols = excluded.cols,
                         rows = excluded.rows, output_bytes = excluded.output_bytes,
                         clients = excluded.clients, detached_since = excluded.detached_since",
                    &[
                        &shell.id,
                        &beat.node,
                        &shell.owner,
                        &shell.owner_id.0,
                        &shell.session,
                        &shell.created_at,
                        &i32::from(shell.cols),
                        &i32::from(shell.rows),
                        &output_bytes,
                        &ShellClientRecord::list_to_json(&shell.clients),
                        &shell.detached_since,
                    ],
                )
                .map_err(backend)?;
        }
        let ending = transaction
            .query("SELECT id FROM live_shells WHERE node = $1 AND end_requested", &[&beat.node])
            .map_err(backend)?
            .iter()
            .map(|row| get::<String>(row, 0))
            .collect::<Result<Vec<_>, _>>()?;
        transaction.commit().map_err(backend)?;
        Ok(ending)
    }

    fn cluster_shells(&self, alive_since_ms: i64) -> Result<Vec<(ShellRecord, String)>, StoreError> {
        let rows = self
            .connection()?
            .query(
                "SELECT s.id, s.node, s.owner, s.owner_id, s.session, s.created_at, s.cols, s.rows,
                        s.output_bytes, s.clients, s.detached_since, n.url
                 FROM live_shells s JOIN cluster_nodes n ON n.id = s.node
                 WHERE n.last_seen >= $1 AND NOT s.end_requested ORDER BY s.created_at, s.id",
                &[&alive_since_ms],
            )
            .map_err(backend)?;
        rows.iter().map(record).collect()
    }

    fn request_shell_end(&self, id: &str) -> Result<bool, StoreError> {
        let changed = self
            .connection()?
            .execute("UPDATE live_shells SET end_requested = TRUE WHERE id = $1 AND NOT end_requested", &[&id])
            .map_err(backend)?;
        Ok(changed > 0)
    }

    fn leave_cluster(&self, node: &str) -> Result<(), StoreError> {
        let mut connection = self.connection()?;
        let mut transaction = connection.transaction().map_err(backend)?;
        transaction.execute("DELETE FROM live_shells WHERE node = $1", &[&node]).map_err(backend)?;
        transaction.execute("DELETE FROM cluster_nodes WHERE id = $1", &[&node]).map_err(backend)?;
        transaction.commit().map_err(backend)
    }
}
