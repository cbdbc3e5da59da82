//! [`TokenStore`] and [`LoginStore`] on PostgreSQL.

use postgres::GenericClient;
use postgres::types::ToSql;
use wssh_domain::{
    AccessToken, Login, LoginClient, LoginId, NewAccessToken, Permission, PermissionSet, Timestamp, TokenIdentifier,
    UserId, Username,
};
use wssh_store::{Conflict, LoginStore, Rotation, StoreError, TokenStore};

use crate::{PgStore, backend, clamp, corrupt, get};

const TOKEN_COLUMNS: &str = "access_tokens.identifier, access_tokens.user_id, users.username, \
     access_tokens.description, access_tokens.secret_hash, access_tokens.permissions, \
     access_tokens.expires_at, access_tokens.created_at, access_tokens.updated_at, \
     access_tokens.app_key, access_tokens.title, access_tokens.tags, access_tokens.enabled";

fn permission_names(permissions: Option<PermissionSet>) -> Option<String> {
    permissions.map(|set| set.iter().map(Permission::as_str).collect::<Vec<_>>().join(" "))
}

fn load_token(row: &postgres::Row) -> Result<AccessToken, StoreError> {
    let name: String = get(row, 2)?;
    let permissions: Option<String> = get(row, 5)?;
    let permissions = permissions
        .map(|names| {
            names.split_whitespace().map(|name| name.parse::<Permission>().map_err(corrupt)).collect::<Result<_, _>>()
        })
        .transpose()?;
    Ok(AccessToken {
        identifier: TokenIdentifier(get(row, 0)?),
        user_id: UserId(get(row, 1)?),
        username: Username::parse(&name).map_err(corrupt)?,
        description: get(row, 3)?,
        secret_hash: get(row, 4)?,
        permissions,
        expires_at: get::<Option<i64>>(row, 6)?.map(Timestamp),
        created_at: Timestamp(get(row, 7)?),
        updated_at: Timestamp(get(row, 8)?),
        app_key: get(row, 9)?,
        title: get(row, 10)?,
        tags: get(row, 11)?,
        enabled: get(row, 12)?,
    })
}

fn query_token(
    client: &mut impl GenericClient,
    condition: &str,
    key: &(dyn ToSql + Sync),
) -> Result<Option<AccessToken>, StoreError> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM access_tokens JOIN users ON users.id = access_tokens.user_id WHERE {condition}"
    );
    client.query_opt(&sql, &[key]).map_err(backend)?.as_ref().map(load_token).transpose()
}

impl TokenStore for PgStore {
    fn insert_token(&self, token: &NewAccessToken) -> Result<AccessToken, StoreError> {
        self.write(|write| {
            let spec = &token.spec;
            write.execute_or(
                "INSERT INTO access_tokens (identifier, user_id, description, secret_hash, permissions, expires_at, \
                 created_at, updated_at, app_key, title, tags, enabled) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, TRUE)",
                &[
                    &token.identifier.as_str(),
                    &token.user_id.0,
                    &spec.description,
                    &token.secret_hash,
                    &permission_names(spec.permissions),
                    &spec.expires_at.map(|expiry| expiry.0),
                    &Timestamp::now().0,
                    &spec.app_key,
                    &spec.title,
                    &spec.tags,
                ],
                Conflict::TokenIdentifierTaken,
            )?;
            query_token(&mut *write.client, "access_tokens.identifier = $1", &token.identifier.as_str())?
                .ok_or(StoreError::NotFound)
        })
    }

    fn find_token(&self, identifier: &str) -> Result<Option<AccessToken>, StoreError> {
        query_token(&mut *self.connection()?, "access_tokens.identifier = $1", &identifier)
    }

    fn find_token_by_secret_hash(&self, secret_hash: &str) -> Result<Option<AccessToken>, StoreError> {
        query_token(&mut *self.connection()?, "access_tokens.secret_hash = $1", &secret_hash)
    }

    fn list_tokens(&self, owner: Option<UserId>) -> Result<Vec<AccessToken>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM access_tokens JOIN users ON users.id = access_tokens.user_id \
             WHERE $1::BIGINT IS NULL OR access_tokens.user_id = $1 \
             ORDER BY access_tokens.created_at, access_tokens.identifier"
        );
        let rows = self.connection()?.query(&sql, &[&owner.map(|id| id.0)]).map_err(backend)?;
        rows.iter().map(load_token).collect()
    }

    fn update_token_description(&self, identifier: &str, description: &str) -> Result<AccessToken, StoreError> {
        self.write(|write| {
            let changed = write.execute(
                "UPDATE access_tokens SET description = $2, updated_at = $3 WHERE identifier = $1",
                &[&identifier, &description, &Timestamp::now().0],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            query_token(&mut *write.client, "access_tokens.identifier = $1", &identifier)?.ok_or(StoreError::NotFound)
        })
    }

    fn update_token(&self, token: &AccessToken) -> Result<AccessToken, StoreError> {
        self.write(|write| {
            let changed = write.execute(
                "UPDATE access_tokens SET description = $2, title = $3, tags = $4, permissions = $5, enabled = $6, \
                 updated_at = $7 WHERE identifier = $1",
                &[
                    &token.identifier.as_str(),
                    &token.description,
                    &token.title,
                    &token.tags,
                    &permission_names(token.permissions),
                    &token.enabled,
                    &Timestamp::now().0,
                ],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            query_token(&mut *write.client, "access_tokens.identifier = $1", &token.identifier.as_str())?
                .ok_or(StoreError::NotFound)
        })
    }

    fn list_app_tokens(
        &self,
        app_key: &str,
        owner: Option<UserId>,
        skip: u64,
        take: u64,
    ) -> Result<(u64, Vec<AccessToken>), StoreError> {
        let mut connection = self.connection()?;
        let owner = owner.map(|id| id.0);
        let row = connection
            .query_one(
                "SELECT COUNT(*) FROM access_tokens WHERE app_key = $1 AND ($2::BIGINT IS NULL OR user_id = $2)",
                &[&app_key, &owner],
            )
            .map_err(backend)?;
        let total: i64 = get(&row, 0)?;
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM access_tokens JOIN users ON users.id = access_tokens.user_id \
             WHERE access_tokens.app_key = $1 AND ($2::BIGINT IS NULL OR access_tokens.user_id = $2) \
             ORDER BY access_tokens.created_at, access_tokens.identifier LIMIT $3 OFFSET $4"
        );
        let rows = connection.query(&sql, &[&app_key, &owner, &clamp(take), &clamp(skip)]).map_err(backend)?;
        Ok((total.unsigned_abs(), rows.iter().map(load_token).collect::<Result<_, _>>()?))
    }

    fn delete_token(&self, identifier: &str) -> Result<(), StoreError> {
        self.write(|write| {
            let deleted = write.execute("DELETE FROM access_tokens WHERE identifier = $1", &[&identifier])?;
            if deleted == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        })
    }
}

const LOGIN_COLUMNS: &str = "id, user_id, created_at, expires_at, revoked, client_ip, client_agent_hash";

fn load_login(row: &postgres::Row) -> Result<Login, StoreError> {
    Ok(Login {
        id: LoginId(get(row, 0)?),
        user_id: UserId(get(row, 1)?),
        created_at: Timestamp(get(row, 2)?),
        expires_at: Timestamp(get(row, 3)?),
        revoked: get(row, 4)?,
        client: LoginClient { ip: get(row, 5)?, user_agent_hash: get(row, 6)? },
    })
}

fn query_login(client: &mut impl GenericClient, condition: &str, key: &str) -> Result<Option<Login>, StoreError> {
    let sql = format!("SELECT {LOGIN_COLUMNS} FROM logins WHERE {condition}");
    client.query_opt(&sql, &[&key]).map_err(backend)?.as_ref().map(load_login).transpose()
}

impl LoginStore for PgStore {
    fn setting_or_create(&self, key: &str, create: &dyn Fn() -> Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let mut connection = self.connection()?;
        let read = |connection: &mut postgres::Client| -> Result<Option<Vec<u8>>, StoreError> {
            let row = connection.query_opt("SELECT value FROM settings WHERE key = $1", &[&key]).map_err(backend)?;
            row.map(|row| get(&row, 0)).transpose()
        };
        if let Some(value) = read(&mut connection)? {
            return Ok(value);
        }
        // Nodes starting together each offer a value; the first one stored wins for all.
        connection
            .execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &create()],
            )
            .map_err(backend)?;
        read(&mut connection)?.ok_or(StoreError::NotFound)
    }

    fn create_login(&self, login: &Login, refresh_hash: &str) -> Result<(), StoreError> {
        self.write(|write| {
            write.execute_or(
                "INSERT INTO logins (id, user_id, refresh_hash, created_at, expires_at, revoked, client_ip, \
                 client_agent_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &login.id.as_str(),
                    &login.user_id.0,
                    &refresh_hash,
                    &login.created_at.0,
                    &login.expires_at.0,
                    &login.revoked,
                    &login.client.ip,
                    &login.client.user_agent_hash,
                ],
                Conflict::LoginIdTaken,
            )?;
            Ok(())
        })
    }

    fn find_login(&self, id: &LoginId) -> Result<Option<Login>, StoreError> {
        query_login(&mut *self.connection()?, "id = $1", id.as_str())
    }

    fn find_login_by_refresh(&self, refresh_hash: &str) -> Result<Option<Login>, StoreError> {
        let login = query_login(&mut *self.connection()?, "refresh_hash = $1", refresh_hash)?;
        Ok(login.filter(|login| login.is_active(Timestamp::now())))
    }

    fn rotate_refresh(&self, presented_hash: &str, new_hash: &str) -> Result<Rotation, StoreError> {
        self.write(|write| {
            // The row lock makes two nodes rotating one token take turns: the second finds it
            // retired, which is a replay.
            let current = query_login(&mut *write.client, "refresh_hash = $1 FOR UPDATE", presented_hash)?;
            Ok(match current {
                Some(login) if login.is_active(Timestamp::now()) => {
                    write.execute(
                        "INSERT INTO retired_refresh_tokens (refresh_hash, login_id) VALUES ($1, $2)",
                        &[&presented_hash, &login.id.as_str()],
                    )?;
                    write.execute(
                        "UPDATE logins SET refresh_hash = $2 WHERE id = $1",
                        &[&login.id.as_str(), &new_hash],
                    )?;
                    Rotation::Rotated(login)
                }
                Some(_) => Rotation::Unknown,
                None => {
                    let retired = write
                        .client
                        .query_opt(
                            "SELECT login_id FROM retired_refresh_tokens WHERE refresh_hash = $1",
                            &[&presented_hash],
                        )
                        .map_err(backend)?;
                    match retired {
                        Some(row) => {
                            let login_id: String = get(&row, 0)?;
                            write.execute("UPDATE logins SET revoked = TRUE WHERE id = $1", &[&login_id])?;
                            Rotation::Replayed(LoginId(login_id))
                        }
                        None => Rotation::Unknown,
                    }
                }
            })
        })
    }

    fn revoke_login(&self, id: &LoginId) -> Result<(), StoreError> {
        self.write(|write| {
            let changed = write.execute("UPDATE logins SET revoked = TRUE WHERE id = $1", &[&id.as_str()])?;
            if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        })
    }
}
