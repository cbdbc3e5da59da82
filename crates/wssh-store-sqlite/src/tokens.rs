//! Access tokens, by the hash of their secret.

use super::*;

pub(crate) const TOKEN_COLUMNS: &str = "access_tokens.identifier, access_tokens.user_id, users.username, \
     access_tokens.description, access_tokens.secret_hash, access_tokens.permissions, \
     access_tokens.expires_at, access_tokens.created_at, access_tokens.updated_at, \
     access_tokens.app_key, access_tokens.title, access_tokens.tags, access_tokens.enabled";

pub(crate) fn permission_names(permissions: Option<PermissionSet>) -> Option<String> {
    permissions.map(|set| set.iter().map(Permission::as_str).collect::<Vec<_>>().join(" "))
}

pub(crate) fn load_token(row: &Row<'_>) -> Result<AccessToken, rusqlite::Error> {
    let name: String = row.get(2)?;
    let permissions: Option<String> = row.get(5)?;
    let permissions = match permissions {
        None => None,
        Some(names) => Some(
            names
                .split_whitespace()
                .map(|name| name.parse::<Permission>().map_err(|error| corrupt(error.to_string())))
                .collect::<Result<PermissionSet, _>>()?,
        ),
    };
    Ok(AccessToken {
        identifier: TokenIdentifier(row.get(0)?),
        user_id: UserId(row.get(1)?),
        username: Username::parse(&name).map_err(|error| corrupt(error.to_string()))?,
        description: row.get(3)?,
        secret_hash: row.get(4)?,
        permissions,
        expires_at: row.get::<_, Option<i64>>(6)?.map(Timestamp),
        created_at: Timestamp(row.get(7)?),
        updated_at: Timestamp(row.get(8)?),
        app_key: row.get(9)?,
        title: row.get(10)?,
        tags: row.get(11)?,
        enabled: row.get(12)?,
    })
}

pub(crate) fn query_token(
    connection: &Connection,
    condition: &str,
    key: &str,
) -> Result<Option<AccessToken>, StoreError> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM access_tokens JOIN users ON users.id = access_tokens.user_id WHERE {condition}"
    );
    let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
    statement.query_row([key], load_token).optional().map_err(backend)
}

impl TokenStore for SqliteStore {
    fn insert_token(&self, token: &NewAccessToken) -> Result<AccessToken, StoreError> {
        let connection = self.connection()?;
        let spec: &TokenSpec = &token.spec;
        connection
            .execute(
                "INSERT INTO access_tokens (identifier, user_id, description, secret_hash, permissions, expires_at, \
                 created_at, updated_at, app_key, title, tags, enabled) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10, 1)",
                params![
                    token.identifier.as_str(),
                    token.user_id.0,
                    spec.description,
                    token.secret_hash,
                    permission_names(spec.permissions),
                    spec.expires_at.map(|expiry| expiry.0),
                    Timestamp::now().0,
                    spec.app_key,
                    spec.title,
                    spec.tags
                ],
            )
            .map_err(|error| map_error(error, Conflict::TokenIdentifierTaken))?;
        query_token(&connection, "access_tokens.identifier = ?1", token.identifier.as_str())?
            .ok_or(StoreError::NotFound)
    }

    fn find_token(&self, identifier: &str) -> Result<Option<AccessToken>, StoreError> {
        query_token(&*self.connection()?, "access_tokens.identifier = ?1", identifier)
    }

    fn find_token_by_secret_hash(&self, secret_hash: &str) -> Result<Option<AccessToken>, StoreError> {
        query_token(&*self.connection()?, "access_tokens.secret_hash = ?1", secret_hash)
    }

    fn list_tokens(&self, owner: Option<UserId>) -> Result<Vec<AccessToken>, StoreError> {
        let connection = self.connection()?;
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM access_tokens JOIN users ON users.id = access_tokens.user_id \
             WHERE ?1 IS NULL OR access_tokens.user_id = ?1 \
             ORDER BY access_tokens.created_at, access_tokens.identifier"
        );
        let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
        statement
            .query_map([owner.map(|id| id.0)], load_token)
            .map_err(backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)
    }

    fn update_token_description(&self, identifier: &str, description: &str) -> Result<AccessToken, StoreError> {
        let connection = self.connection()?;
        let changed = connection
            .execute(
                "UPDATE access_tokens SET description = ?2, updated_at = ?3 WHERE identifier = ?1",
                params![identifier, description, Timestamp::now().0],
            )
            .map_err(backend)?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        query_token(&connection, "access_tokens.identifier = ?1", identifier)?.ok_or(StoreError::NotFound)
    }

    fn update_token(&self, token: &AccessToken) -> Result<AccessToken, StoreError> {
        let connection = self.connection()?;
        let changed = connection
            .execute(
                "UPDATE access_tokens SET description = ?2, title = ?3, tags = ?4, permissions = ?5, enabled = ?6, \
                 updated_at = ?7 WHERE identifier = ?1",
                params![
                    token.identifier.as_str(),
                    token.description,
                    token.title,
                    token.tags,
                    permission_names(token.permissions),
                    token.enabled,
                    Timestamp::now().0
                ],
            )
            .map_err(backend)?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        query_token(&connection, "access_tokens.identifier = ?1", token.identifier.as_str())?
            .ok_or(StoreError::NotFound)
    }

    fn list_app_tokens(
        &self,
        app_key: &str,
        owner: Option<UserId>,
        skip: u64,
        take: u64,
    ) -> Result<(u64, Vec<AccessToken>), StoreError> {
        let connection = self.connection()?;
        let owner = owner.map(|id| id.0);
        let total: i64 = connection
            .query_row(
                "SELECT COUNT(*) FROM access_tokens WHERE app_key = ?1 AND (?2 IS NULL OR user_id = ?2)",
                params![app_key, owner],
                |row| row.get(0),
            )
            .map_err(backend)?;
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM access_tokens JOIN users ON users.id = access_tokens.user_id \
             WHERE access_tokens.app_key = ?1 AND (?2 IS NULL OR access_tokens.user_id = ?2) \
             ORDER BY access_tokens.created_at, access_tokens.identifier LIMIT ?3 OFFSET ?4"
        );
        let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
        let clamp = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        let rows = statement
            .query_map(params![app_key, owner, clamp(take), clamp(skip)], load_token)
            .map_err(backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        Ok((total.unsigned_abs(), rows))
    }

    fn delete_token(&self, identifier: &str) -> Result<(), StoreError> {
        let deleted = self
            .connection()?
            .execute("DELETE FROM access_tokens WHERE identifier = ?1", [identifier])
            .map_err(backend)?;
        if deleted == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }
}
