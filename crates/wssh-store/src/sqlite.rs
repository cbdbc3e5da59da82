//! The SQLite implementation of the storage traits: rusqlite behind an r2d2 pool, WAL mode,
//! a busy timeout, foreign keys on.

use std::path::Path;
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};
use wssh_domain::{
    AccessToken, Login, LoginId, NewAccessToken, NewUser, Permission, PermissionSet, Session, SessionName, SessionSpec,
    Timestamp, TokenIdentifier, User, UserId, Username,
};

use crate::migrations::{self, MIGRATIONS, MigrationStatus};
use crate::{LoginStore, Rotation, SessionStore, StoreError, TokenStore, UserStore};

/// How long a writer waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A SQLite database file holding everything wssh stores.
#[derive(Clone)]
pub struct SqliteStore {
    pool: Pool<SqliteConnectionManager>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn configure(connection: &mut Connection) -> Result<(), rusqlite::Error> {
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let store = Self::open_without_migrating(path)?;
        let mut connection = store.connection()?;
        migrations::apply_pending(&mut connection)?;
        Ok(store)
    }

    /// Opens the database at `path` as it is, applying nothing.
    pub fn open_without_migrating(path: &Path) -> Result<Self, StoreError> {
        // WAL is a property of the file: set it once, before the pool opens its connections.
        let mut first = Connection::open(path).map_err(StoreError::backend)?;
        configure(&mut first).map_err(StoreError::backend)?;
        first.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(())).map_err(StoreError::backend)?;
        drop(first);

        let manager = SqliteConnectionManager::file(path).with_init(configure);
        let pool = Pool::builder()
            .max_size(16)
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(StoreError::backend)?;
        Ok(SqliteStore { pool })
    }

    /// Applies every pending migration; returns the versions applied.
    pub fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        migrations::apply_pending(&mut *self.connection()?)
    }

    /// The applied and the latest schema version.
    pub fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        Ok(MigrationStatus {
            applied: migrations::applied_version(&*self.connection()?)?,
            latest: MIGRATIONS.last().map_or(0, |migration| migration.version),
        })
    }

    fn connection(&self) -> Result<PooledConnection<SqliteConnectionManager>, StoreError> {
        self.pool.get().map_err(StoreError::backend)
    }
}

/// Maps a driver error, turning constraint violations into [`StoreError::Conflict`].
fn map_error(error: rusqlite::Error, conflict: &'static str) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(conflict),
        _ => StoreError::backend(error),
    }
}

fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::backend(error)
}

#[derive(Debug, thiserror::Error)]
#[error("corrupt row: {0}")]
struct CorruptRow(String);

fn corrupt(what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(CorruptRow(what)))
}

const USER_COLUMNS: &str = "id, username, password_hash, disabled, created_at, updated_at";

fn load_user(connection: &Connection, row: &Row<'_>) -> Result<User, rusqlite::Error> {
    let id = UserId(row.get(0)?);
    let name: String = row.get(1)?;
    let username = Username::parse(&name).map_err(|error| corrupt(error.to_string()))?;
    let mut roles_query = connection.prepare_cached(
        "SELECT roles.key FROM user_roles JOIN roles ON roles.id = user_roles.role_id \
         WHERE user_roles.user_id = ?1 ORDER BY roles.id",
    )?;
    let roles = roles_query.query_map([id.0], |row| row.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    let mut permissions_query = connection.prepare_cached(
        "SELECT DISTINCT role_permissions.permission FROM user_roles \
         JOIN role_permissions ON role_permissions.role_id = user_roles.role_id \
         WHERE user_roles.user_id = ?1",
    )?;
    let permissions = permissions_query
        .query_map([id.0], |row| row.get::<_, String>(0))?
        .filter_map(|name| name.map(|name| name.parse::<Permission>().ok()).transpose())
        .collect::<Result<PermissionSet, _>>()?;
    Ok(User {
        id,
        username,
        password_hash: row.get(2)?,
        disabled: row.get(3)?,
        roles,
        permissions,
        created_at: Timestamp(row.get(4)?),
        updated_at: Timestamp(row.get(5)?),
    })
}

fn query_user(connection: &Connection, condition: &str, key: &dyn rusqlite::ToSql) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {condition}");
    let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
    statement.query_row([key], |row| load_user(connection, row)).optional().map_err(backend)
}

impl UserStore for SqliteStore {
    fn create_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let mut connection = self.connection()?;
        let transaction = connection.transaction().map_err(backend)?;
        let now = Timestamp::now().0;
        transaction
            .execute(
                "INSERT INTO users (username, password_hash, disabled, created_at, updated_at) \
                 VALUES (?1, ?2, 0, ?3, ?3)",
                params![user.username.as_str(), user.password_hash, now],
            )
            .map_err(|error| map_error(error, "a user with that name already exists"))?;
        let id = transaction.last_insert_rowid();
        let bound = transaction
            .execute(
                "INSERT INTO user_roles (user_id, role_id) SELECT ?1, id FROM roles WHERE key = ?2",
                params![id, user.role.as_str()],
            )
            .map_err(backend)?;
        if bound != 1 {
            return Err(StoreError::Conflict("the role does not exist"));
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
        let mut statement =
            connection.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id")).map_err(backend)?;
        statement
            .query_map([], |row| load_user(&connection, row))
            .map_err(backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)
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
    ) -> Result<(), StoreError> {
        let mut connection = self.connection()?;
        let transaction = connection.transaction().map_err(backend)?;
        let changed = transaction
            .execute(
                "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
                params![id.0, password_hash, Timestamp::now().0],
            )
            .map_err(backend)?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        transaction
            .execute(
                "DELETE FROM access_tokens WHERE user_id = ?1 AND identifier IS NOT ?2",
                params![id.0, keep_token.map(TokenIdentifier::as_str)],
            )
            .map_err(backend)?;
        transaction.commit().map_err(backend)
    }

    fn delete_user(&self, id: UserId) -> Result<(), StoreError> {
        let mut connection = self.connection()?;
        let transaction = connection.transaction().map_err(backend)?;
        let admins_left: i64 = transaction
            .query_row(
                "SELECT COUNT(*) FROM user_roles JOIN roles ON roles.id = user_roles.role_id \
                 WHERE roles.key = 'admin' AND user_roles.user_id != ?1",
                [id.0],
                |row| row.get(0),
            )
            .map_err(backend)?;
        let is_admin: bool = transaction
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM user_roles JOIN roles ON roles.id = user_roles.role_id \
                 WHERE roles.key = 'admin' AND user_roles.user_id = ?1)",
                [id.0],
                |row| row.get(0),
            )
            .map_err(backend)?;
        if is_admin && admins_left == 0 {
            return Err(StoreError::Conflict("the last administrator cannot be deleted"));
        }
        // Tokens and role bindings go with the user: the foreign keys cascade, and deleting
        // tokens explicitly as well keeps this true on a backend without cascades.
        transaction.execute("DELETE FROM access_tokens WHERE user_id = ?1", [id.0]).map_err(backend)?;
        let deleted = transaction.execute("DELETE FROM users WHERE id = ?1", [id.0]).map_err(backend)?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        transaction.commit().map_err(backend)
    }
}

const TOKEN_COLUMNS: &str = "access_tokens.identifier, access_tokens.user_id, users.username, \
     access_tokens.description, access_tokens.secret_hash, access_tokens.permissions, \
     access_tokens.expires_at, access_tokens.created_at, access_tokens.updated_at";

fn load_token(row: &Row<'_>) -> Result<AccessToken, rusqlite::Error> {
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
    })
}

fn query_token(connection: &Connection, condition: &str, key: &str) -> Result<Option<AccessToken>, StoreError> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM access_tokens JOIN users ON users.id = access_tokens.user_id WHERE {condition}"
    );
    let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
    statement.query_row([key], load_token).optional().map_err(backend)
}

impl TokenStore for SqliteStore {
    fn insert_token(&self, token: &NewAccessToken) -> Result<AccessToken, StoreError> {
        let connection = self.connection()?;
        let permissions = token.permissions.map(|set| set.iter().map(Permission::as_str).collect::<Vec<_>>().join(" "));
        let now = Timestamp::now().0;
        connection
            .execute(
                "INSERT INTO access_tokens \
                 (identifier, user_id, description, secret_hash, permissions, expires_at, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                params![
                    token.identifier.as_str(),
                    token.user_id.0,
                    token.description,
                    token.secret_hash,
                    permissions,
                    token.expires_at.map(|expiry| expiry.0),
                    now
                ],
            )
            .map_err(|error| map_error(error, "a token with that identifier already exists"))?;
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

    fn delete_token(&self, identifier: &str) -> Result<(), StoreError> {
        let deleted = self
            .connection()?
            .execute("DELETE FROM access_tokens WHERE identifier = ?1", [identifier])
            .map_err(backend)?;
        if deleted == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }
}

const SESSION_COLUMNS: &str = "name, cmd, args, dir, created_at, updated_at";

fn load_session(row: &Row<'_>) -> Result<Session, rusqlite::Error> {
    let name: String = row.get(0)?;
    let args: String = row.get(2)?;
    let args: Vec<String> = serde_json::from_str(&args).map_err(|error| corrupt(error.to_string()))?;
    let name = SessionName::parse(&name).map_err(|error| corrupt(error.to_string()))?;
    let spec = SessionSpec::new(name, row.get(1)?, args, row.get(3)?).map_err(|error| corrupt(error.to_string()))?;
    Ok(Session { spec, created_at: Timestamp(row.get(4)?), updated_at: Timestamp(row.get(5)?) })
}

fn query_session(connection: &Connection, name: &str) -> Result<Option<Session>, StoreError> {
    let mut statement = connection
        .prepare_cached(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE name = ?1"))
        .map_err(backend)?;
    statement.query_row([name], load_session).optional().map_err(backend)
}

fn args_json(args: &[String]) -> String {
    serde_json::to_string(args).unwrap_or_else(|_| "[]".to_owned())
}

const SESSION_TAKEN: &str = "a session with that name already exists";

impl SessionStore for SqliteStore {
    fn create_session(&self, spec: &SessionSpec) -> Result<Session, StoreError> {
        let connection = self.connection()?;
        connection
            .execute(
                "INSERT INTO sessions (name, cmd, args, dir, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![spec.name.as_str(), spec.cmd, args_json(&spec.args), spec.dir, Timestamp::now().0],
            )
            .map_err(|error| map_error(error, SESSION_TAKEN))?;
        query_session(&connection, spec.name.as_str())?.ok_or(StoreError::NotFound)
    }

    fn find_session(&self, name: &str) -> Result<Option<Session>, StoreError> {
        query_session(&*self.connection()?, name)
    }

    fn list_sessions(&self) -> Result<Vec<Session>, StoreError> {
        let connection = self.connection()?;
        let mut statement = connection
            .prepare_cached(&format!("SELECT {SESSION_COLUMNS} FROM sessions ORDER BY name"))
            .map_err(backend)?;
        statement.query_map([], load_session).map_err(backend)?.collect::<Result<Vec<_>, _>>().map_err(backend)
    }

    fn update_session(&self, spec: &SessionSpec) -> Result<Session, StoreError> {
        let connection = self.connection()?;
        let changed = connection
            .execute(
                "UPDATE sessions SET cmd = ?2, args = ?3, dir = ?4, updated_at = ?5 WHERE name = ?1",
                params![spec.name.as_str(), spec.cmd, args_json(&spec.args), spec.dir, Timestamp::now().0],
            )
            .map_err(backend)?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        query_session(&connection, spec.name.as_str())?.ok_or(StoreError::NotFound)
    }

    fn delete_session(&self, name: &str) -> Result<(), StoreError> {
        let deleted = self.connection()?.execute("DELETE FROM sessions WHERE name = ?1", [name]).map_err(backend)?;
        if deleted == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    fn copy_session(&self, from: &SessionName, to: &SessionName) -> Result<Session, StoreError> {
        let mut connection = self.connection()?;
        let transaction = connection.transaction().map_err(backend)?;
        if query_session(&transaction, from.as_str())?.is_none() {
            return Err(StoreError::NotFound);
        }
        transaction
            .execute(
                "INSERT INTO sessions (name, cmd, args, dir, created_at, updated_at) \
                 SELECT ?2, cmd, args, dir, ?3, ?3 FROM sessions WHERE name = ?1",
                params![from.as_str(), to.as_str(), Timestamp::now().0],
            )
            .map_err(|error| map_error(error, SESSION_TAKEN))?;
        let copied = query_session(&transaction, to.as_str())?.ok_or(StoreError::NotFound)?;
        transaction.commit().map_err(backend)?;
        Ok(copied)
    }

    fn rename_session(&self, from: &SessionName, to: &SessionName) -> Result<Session, StoreError> {
        let mut connection = self.connection()?;
        let transaction = connection.transaction().map_err(backend)?;
        if query_session(&transaction, from.as_str())?.is_none() {
            return Err(StoreError::NotFound);
        }
        if from != to && query_session(&transaction, to.as_str())?.is_some() {
            return Err(StoreError::Conflict(SESSION_TAKEN));
        }
        transaction
            .execute(
                "UPDATE sessions SET name = ?2, updated_at = ?3 WHERE name = ?1",
                params![from.as_str(), to.as_str(), Timestamp::now().0],
            )
            .map_err(|error| map_error(error, SESSION_TAKEN))?;
        let moved = query_session(&transaction, to.as_str())?.ok_or(StoreError::NotFound)?;
        transaction.commit().map_err(backend)?;
        Ok(moved)
    }
}

const LOGIN_COLUMNS: &str = "id, user_id, created_at, expires_at, revoked";

fn load_login(row: &Row<'_>) -> Result<Login, rusqlite::Error> {
    Ok(Login {
        id: LoginId(row.get(0)?),
        user_id: UserId(row.get(1)?),
        created_at: Timestamp(row.get(2)?),
        expires_at: Timestamp(row.get(3)?),
        revoked: row.get(4)?,
    })
}

fn query_login(connection: &Connection, condition: &str, key: &str) -> Result<Option<Login>, StoreError> {
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
                "INSERT INTO logins (id, user_id, refresh_hash, created_at, expires_at, revoked) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    login.id.as_str(),
                    login.user_id.0,
                    refresh_hash,
                    login.created_at.0,
                    login.expires_at.0,
                    login.revoked
                ],
            )
            .map_err(|error| map_error(error, "a login with that id already exists"))
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
