//! Users: their rows, role bindings, passwords and TOTP state.

use super::*;

/// A user's row, with its role keys (space-separated, by role id) and the permissions of its
/// enabled roles (comma-separated) gathered by subqueries: one statement per user read.
pub(crate) const USER_COLUMNS: &str = "id, username, password_hash, disabled, created_at, updated_at, otp_secret, \
     base_path, alist_permission, sso_id, nickname, email, phone, avatar, sex, remark, \
     (SELECT group_concat(roles.key, ' ' ORDER BY roles.id) FROM user_roles \
      JOIN roles ON roles.id = user_roles.role_id WHERE user_roles.user_id = users.id), \
     (SELECT group_concat(DISTINCT role_permissions.permission) FROM user_roles \
      JOIN role_permissions ON role_permissions.role_id = user_roles.role_id \
      JOIN roles ON roles.id = user_roles.role_id \
      WHERE user_roles.user_id = users.id AND roles.disabled = 0)";

pub(crate) fn load_user(row: &Row<'_>) -> Result<User, rusqlite::Error> {
    let id = UserId(row.get(0)?);
    let name: String = row.get(1)?;
    let username = Username::parse(&name).map_err(|error| corrupt(error.to_string()))?;
    let roles: Option<String> = row.get(16)?;
    let roles = roles.map(|keys| keys.split(' ').map(str::to_owned).collect()).unwrap_or_default();
    let permissions: Option<String> = row.get(17)?;
    // Names this version does not know (written by a newer one) grant nothing here.
    let permissions = permissions
        .iter()
        .flat_map(|names| names.split(','))
        .filter_map(|name| name.parse::<Permission>().ok())
        .collect::<PermissionSet>();
    Ok(User {
        id,
        username,
        password_hash: row.get(2)?,
        disabled: row.get(3)?,
        roles,
        permissions,
        created_at: Timestamp(row.get(4)?),
        updated_at: Timestamp(row.get(5)?),
        otp_secret: row.get(6)?,
        profile: UserProfile {
            base_path: row.get(7)?,
            alist_permission: row.get(8)?,
            sso_id: row.get(9)?,
            nickname: row.get(10)?,
            email: row.get(11)?,
            phone: row.get(12)?,
            avatar: row.get(13)?,
            sex: row.get(14)?,
            remark: row.get(15)?,
        },
    })
}

pub(crate) fn query_user(
    connection: &Connection,
    condition: &str,
    key: &dyn rusqlite::ToSql,
) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {condition}");
    let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
    statement.query_row([key], load_user).optional().map_err(backend)
}

/// Writes a user's name, disabled flag and profile.
pub(crate) fn write_user_fields(connection: &Connection, id: UserId, user: &User) -> Result<(), StoreError> {
    let profile = &user.profile;
    let changed = connection
        .execute(
            "UPDATE users SET username = ?2, disabled = ?3, updated_at = ?4, base_path = ?5, \
             alist_permission = ?6, sso_id = ?7, nickname = ?8, email = ?9, phone = ?10, avatar = ?11, \
             sex = ?12, remark = ?13 WHERE id = ?1",
            params![
                id.0,
                user.username.as_str(),
                user.disabled,
                Timestamp::now().0,
                profile.base_path,
                profile.alist_permission,
                profile.sso_id,
                profile.nickname,
                profile.email,
                profile.phone,
                profile.avatar,
                profile.sex,
                profile.remark
            ],
        )
        .map_err(|error| map_error(error, Conflict::UsernameTaken))?;
    if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

/// Replaces the roles bound to a user.
pub(crate) fn write_user_roles(connection: &Connection, id: UserId, roles: &[RoleId]) -> Result<(), StoreError> {
    connection.execute("DELETE FROM user_roles WHERE user_id = ?1", [id.0]).map_err(backend)?;
    for role in roles {
        let bound = connection
            .execute(
                "INSERT OR IGNORE INTO user_roles (user_id, role_id) SELECT ?1, id FROM roles WHERE id = ?2",
                params![id.0, role.0],
            )
            .map_err(backend)?;
        let exists: bool = connection
            .query_row("SELECT EXISTS (SELECT 1 FROM roles WHERE id = ?1)", [role.0], |row| row.get(0))
            .map_err(backend)?;
        if bound == 0 && !exists {
            return Err(StoreError::Conflict(Conflict::UnknownRole));
        }
    }
    Ok(())
}

/// Replaces a user's password hash, revokes its other tokens and logins, forgets its alist hash.
pub(crate) fn write_password(
    connection: &Connection,
    id: UserId,
    change: &PasswordChange<'_>,
) -> Result<(), StoreError> {
    let changed = connection
        .execute(
            "UPDATE users SET password_hash = ?2, alist_hash = NULL, updated_at = ?3 WHERE id = ?1",
            params![id.0, change.password_hash, Timestamp::now().0],
        )
        .map_err(backend)?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    connection
        .execute(
            "DELETE FROM access_tokens WHERE user_id = ?1 AND identifier IS NOT ?2",
            params![id.0, change.keep_token.map(TokenIdentifier::as_str)],
        )
        .map_err(backend)?;
    connection
        .execute(
            "UPDATE logins SET revoked = 1 WHERE user_id = ?1 AND revoked = 0 AND id IS NOT ?2",
            params![id.0, change.keep_login.map(LoginId::as_str)],
        )
        .map_err(backend)?;
    Ok(())
}

impl UserStore for SqliteStore {
    fn create_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let mut connection = self.connection()?;
        let transaction = connection.transaction().map_err(backend)?;
        let now = Timestamp::now().0;
        transaction
            .execute(
                "INSERT INTO users (username, password_hash, disabled, created_at, updated_at, \
                 base_path, alist_permission, sso_id, nickname, email, phone, avatar, sex, remark) \
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    user.username.as_str(),
                    user.password_hash,
                    user.disabled,
                    now,
                    user.profile.base_path,
                    user.profile.alist_permission,
                    user.profile.sso_id,
                    user.profile.nickname,
                    user.profile.email,
                    user.profile.phone,
                    user.profile.avatar,
                    user.profile.sex,
                    user.profile.remark
                ],
            )
            .map_err(|error| map_error(error, Conflict::UsernameTaken))?;
        let id = transaction.last_insert_rowid();
        let bound = transaction
            .execute(
                "INSERT INTO user_roles (user_id, role_id) SELECT ?1, id FROM roles WHERE key = ?2",
                params![id, user.role.as_str()],
            )
            .map_err(backend)?;
        if bound != 1 {
            return Err(StoreError::Conflict(Conflict::UnknownRole));
        }
        let created = query_user(&transaction, "id = ?1", &id)?.ok_or(StoreError::NotFound)?;
        transaction.commit().map_err(backend)?;
        Ok(created)
    }

    fn find_user(&self, username: &str) -> Result<Option<User>, StoreError> {
        query_user(&*self.connection()?, "username = ?1", &username)
    }

    fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        query_user(&*self.connection()?, "id = ?1", &id.0)
    }

    fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let connection = self.connection()?;
        all_users(&connection)
    }

    fn count_users(&self) -> Result<u64, StoreError> {
        let count: i64 =
            self.connection()?.query_row("SELECT COUNT(*) FROM users", [], |row| row.get(0)).map_err(backend)?;
        Ok(count.unsigned_abs())
    }

    fn set_password(
        &self,
        id: UserId,
        password_hash: &str,
        keep_token: Option<&TokenIdentifier>,
        keep_login: Option<&LoginId>,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection()?;
        let transaction = connection.transaction().map_err(backend)?;
        write_password(&transaction, id, &PasswordChange { password_hash, keep_token, keep_login })?;
        transaction.commit().map_err(backend)
    }

    fn set_otp_secret(&self, id: UserId, secret: Option<&str>, accepted_step: i64) -> Result<(), StoreError> {
        let changed = self
            .connection()?
            .execute(
                "UPDATE users SET otp_secret = ?2, otp_last_step = ?3, updated_at = ?4 WHERE id = ?1",
                params![id.0, secret, accepted_step, Timestamp::now().0],
            )
            .map_err(backend)?;
        if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    fn accept_otp_step(&self, id: UserId, step: i64) -> Result<bool, StoreError> {
        let changed = self
            .connection()?
            .execute("UPDATE users SET otp_last_step = ?2 WHERE id = ?1 AND otp_last_step < ?2", params![id.0, step])
            .map_err(backend)?;
        Ok(changed == 1)
    }

    fn alist_password_hash(&self, id: UserId) -> Result<Option<String>, StoreError> {
        self.connection()?
            .query_row("SELECT alist_hash FROM users WHERE id = ?1", [id.0], |row| row.get::<_, Option<String>>(0))
            .optional()
            .map(Option::flatten)
            .map_err(backend)
    }

    fn set_alist_password_hash(&self, id: UserId, password_hash: &str, alist_hash: &str) -> Result<bool, StoreError> {
        let changed = self
            .connection()?
            .execute(
                "UPDATE users SET alist_hash = ?3 WHERE id = ?1 AND password_hash = ?2",
                params![id.0, password_hash, alist_hash],
            )
            .map_err(backend)?;
        Ok(changed == 1)
    }
}

/// A unit of work on one pooled connection: `BEGIN IMMEDIATE` when it starts, `COMMIT` in
/// [`UnitOfWork::commit`], `ROLLBACK` when dropped without.
pub(crate) struct SqliteWork<'a> {
    connection: Checkout<'a>,
    open: bool,
}

impl Transactional for SqliteStore {
    fn begin(&self) -> Result<Box<dyn UnitOfWork + '_>, StoreError> {
        let connection = self.connection()?;
        connection.execute_batch("BEGIN IMMEDIATE").map_err(backend)?;
        Ok(Box::new(SqliteWork { connection, open: true }))
    }
}

impl UnitOfWork for SqliteWork<'_> {
    fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        query_user(&self.connection, "id = ?1", &id.0)
    }

    fn list_users(&self) -> Result<Vec<User>, StoreError> {
        all_users(&self.connection)
    }

    fn write_user(&self, change: &UserChange<'_>) -> Result<User, StoreError> {
        let id = change.id;
        if query_user(&self.connection, "id = ?1", &id.0)?.is_none() {
            return Err(StoreError::NotFound);
        }
        if let Some(fields) = change.fields {
            write_user_fields(&self.connection, id, fields)?;
        }
        if let Some(roles) = change.roles {
            write_user_roles(&self.connection, id, roles)?;
        }
        if let Some(password) = &change.password {
            write_password(&self.connection, id, password)?;
        }
        query_user(&self.connection, "id = ?1", &id.0)?.ok_or(StoreError::NotFound)
    }

    fn remove_user(&self, id: UserId) -> Result<(), StoreError> {
        // Tokens and role bindings go with the user: the foreign keys cascade, and deleting
        // tokens explicitly as well keeps this true on a backend without cascades.
        self.connection.execute("DELETE FROM access_tokens WHERE user_id = ?1", [id.0]).map_err(backend)?;
        let deleted = self.connection.execute("DELETE FROM users WHERE id = ?1", [id.0]).map_err(backend)?;
        if deleted == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.connection.execute_batch("COMMIT").map_err(backend)?;
        self.open = false;
        Ok(())
    }
}

impl Drop for SqliteWork<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.connection.execute_batch("ROLLBACK");
        }
    }
}

/// Every user, by id.
pub(crate) fn all_users(connection: &Connection) -> Result<Vec<User>, StoreError> {
    let mut statement =
        connection.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id")).map_err(backend)?;
    statement.query_map([], load_user).map_err(backend)?.collect::<Result<Vec<_>, _>>().map_err(backend)
}
