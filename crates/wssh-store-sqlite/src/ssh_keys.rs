//! Users' SSH public keys.

use super::*;

pub(crate) const SSH_KEY_COLUMNS: &str = "id, user_id, title, public_key, fingerprint, added_at, last_used_at";

pub(crate) fn load_ssh_key(row: &Row<'_>) -> Result<SshKey, rusqlite::Error> {
    Ok(SshKey {
        id: row.get(0)?,
        user_id: UserId(row.get(1)?),
        title: row.get(2)?,
        public_key: row.get(3)?,
        fingerprint: row.get(4)?,
        added_at: Timestamp(row.get(5)?),
        last_used_at: row.get::<_, Option<i64>>(6)?.map(Timestamp),
    })
}

impl SshKeyStore for SqliteStore {
    fn add_ssh_key(&self, key: &NewSshKey) -> Result<SshKey, StoreError> {
        let connection = self.connection()?;
        connection
            .execute(
                "INSERT INTO ssh_keys (user_id, title, public_key, fingerprint, added_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key.user_id.0, key.title, key.public_key, key.fingerprint, Timestamp::now().0],
            )
            .map_err(|error| map_error(error, Conflict::SshKeyRegistered))?;
        let id = connection.last_insert_rowid();
        connection
            .query_row(&format!("SELECT {SSH_KEY_COLUMNS} FROM ssh_keys WHERE id = ?1"), [id], load_ssh_key)
            .map_err(backend)
    }

    fn list_ssh_keys(&self, owner: UserId) -> Result<Vec<SshKey>, StoreError> {
        let connection = self.connection()?;
        let mut statement = connection
            .prepare_cached(&format!("SELECT {SSH_KEY_COLUMNS} FROM ssh_keys WHERE user_id = ?1 ORDER BY id"))
            .map_err(backend)?;
        statement.query_map([owner.0], load_ssh_key).map_err(backend)?.collect::<Result<Vec<_>, _>>().map_err(backend)
    }

    fn delete_ssh_key(&self, owner: UserId, id: i64) -> Result<(), StoreError> {
        let deleted = self
            .connection()?
            .execute("DELETE FROM ssh_keys WHERE id = ?1 AND user_id = ?2", params![id, owner.0])
            .map_err(backend)?;
        if deleted == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }
}
