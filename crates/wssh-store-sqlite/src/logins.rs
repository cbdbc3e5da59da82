//! Logins (refresh-token families) and the server's secret settings.

use super::*;

pub(crate) const LOGIN_COLUMNS: &str = "id, user_id, created_at, expires_at, revoked, client_ip, client_agent_hash";

pub(crate) fn load_login(row: &Row<'_>) -> Result<Login, rusqlite::Error> {
    Ok(Login {
        id: LoginId(row.get(0)?),
        user_id: UserId(row.get(1)?),
        created_at: Timestamp(row.get(2)?),
        expires_at: Timestamp(row.get(3)?),
        revoked: row.get(4)?,
        client: LoginClient { ip: row.get(5)?, user_agent_hash: row.get(6)? },
    })
}

pub(crate) fn query_login(connection: &Connection, condition: &str, key: &str) -> Result<Option<Login>, StoreError> {
    let mut statement =
        connection.prepare_cached(&format!("SELECT {LOGIN_COLUMNS} FROM logins WHERE {condition}")).map_err(backend)?;
    statement.query_row([key], load_login).optional().map_err(backend)
}

impl LoginStore for SqliteStore {
    fn setting_or_create(&self, key: &str, create: &dyn Fn() -> Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let mut connection = self.connection()?;
        let transaction =
            connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
        let existing: Option<Vec<u8>> = transaction
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| row.get(0))
            .optional()
            .map_err(backend)?;
        let value = match existing {
            Some(value) => value,
            None => {
                let value = create();
                transaction
                    .execute("INSERT INTO settings (key, value) VALUES (?1, ?2)", params![key, value])
                    .map_err(backend)?;
                value
            }
        };
        transaction.commit().map_err(backend)?;
        Ok(value)
    }

    fn create_login(&self, login: &Login, refresh_hash: &str) -> Result<(), StoreError> {
        self.connection()?
            .execute(
                "INSERT INTO logins (id, user_id, refresh_hash, created_at, expires_at, revoked, client_ip, \
                 client_agent_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    login.id.as_str(),
                    login.user_id.0,
                    refresh_hash,
                    login.created_at.0,
                    login.expires_at.0,
                    login.revoked,
                    login.client.ip,
                    login.client.user_agent_hash
                ],
            )
            .map_err(|error| map_error(error, Conflict::LoginIdTaken))
            .map(drop)
    }

    fn find_login(&self, id: &LoginId) -> Result<Option<Login>, StoreError> {
        query_login(&*self.connection()?, "id = ?1", id.as_str())
    }

    fn find_login_by_refresh(&self, refresh_hash: &str) -> Result<Option<Login>, StoreError> {
        let login = query_login(&*self.connection()?, "refresh_hash = ?1", refresh_hash)?;
        Ok(login.filter(|login| login.is_active(Timestamp::now())))
    }

    fn rotate_refresh(&self, presented_hash: &str, new_hash: &str) -> Result<Rotation, StoreError> {
        let mut connection = self.connection()?;
        let transaction =
            connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
        let current = query_login(&transaction, "refresh_hash = ?1", presented_hash)?;
        let outcome = match current {
            Some(login) if login.is_active(Timestamp::now()) => {
                transaction
                    .execute(
                        "INSERT INTO retired_refresh_tokens (refresh_hash, login_id) VALUES (?1, ?2)",
                        params![presented_hash, login.id.as_str()],
                    )
                    .map_err(backend)?;
                transaction
                    .execute("UPDATE logins SET refresh_hash = ?2 WHERE id = ?1", params![login.id.as_str(), new_hash])
                    .map_err(backend)?;
                Rotation::Rotated(login)
            }
            Some(_) => Rotation::Unknown,
            None => {
                let retired: Option<String> = transaction
                    .query_row(
                        "SELECT login_id FROM retired_refresh_tokens WHERE refresh_hash = ?1",
                        [presented_hash],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(backend)?;
                match retired {
                    Some(login_id) => {
                        transaction
                            .execute("UPDATE logins SET revoked = 1 WHERE id = ?1", [&login_id])
                            .map_err(backend)?;
                        Rotation::Replayed(LoginId(login_id))
                    }
                    None => Rotation::Unknown,
                }
            }
        };
        transaction.commit().map_err(backend)?;
        Ok(outcome)
    }

    fn revoke_login(&self, id: &LoginId) -> Result<(), StoreError> {
        let changed = self
            .connection()?
            .execute("UPDATE logins SET revoked = 1 WHERE id = ?1", [id.as_str()])
            .map_err(backend)?;
        if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }
}
