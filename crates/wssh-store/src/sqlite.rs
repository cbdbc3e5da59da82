//! The SQLite implementation of the storage traits: rusqlite behind an r2d2 pool, WAL mode,
//! a busy timeout, foreign keys on.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};
use wssh_domain::{
    AccessToken, Login, LoginClient, LoginId, NewAccessToken, NewRole, NewSshKey, NewUser, Permission, PermissionSet,
    Role, RoleId, Session, SessionName, SessionSpec, SshKey, Timestamp, TokenIdentifier, TokenSpec, User, UserId,
    UserProfile, Username,
};

mod audit;
mod recording;
mod throttle;

use crate::migrations::{self, MIGRATIONS, MigrationStatus};
use crate::{
    ChangeCounter, Conflict, LoginStore, PasswordChange, RoleStore, Rotation, SessionStore, SshKeyStore, StoreError,
    TokenStore, UserChange, UserStore,
};

/// How long a writer waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A SQLite database file holding everything wssh stores.
#[derive(Clone)]
pub struct SqliteStore {
    pool: Pool<SqliteConnectionManager>,
    /// Advanced after every checkout that changed rows (see [`ChangeCounter`]).
    generation: Arc<AtomicU64>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// Prepared statements kept per connection: more than the store has, so none is parsed twice.
const STATEMENT_CACHE_CAPACITY: usize = 128;

fn configure(connection: &mut Connection) -> Result<(), rusqlite::Error> {
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let store = Self::open_without_migrating(path)?;
        store.migrate()?;
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
            // A SQLite file connection does not go stale; checking it on every checkout costs
            // a statement per request for nothing.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(StoreError::backend)?;
        Ok(SqliteStore { pool, generation: Arc::new(AtomicU64::new(0)) })
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

    fn connection(&self) -> Result<Checkout<'_>, StoreError> {
        let connection = self.pool.get().map_err(StoreError::backend)?;
        let changes_before = connection.total_changes();
        Ok(Checkout { connection, changes_before, generation: &self.generation })
    }
}

impl ChangeCounter for SqliteStore {
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// A pooled connection that, when handed back, advances the store's generation if rows were
/// changed through it. Every method has committed or rolled back by then, so a cache that reads
/// the new generation also reads the new rows.
struct Checkout<'a> {
    connection: PooledConnection<SqliteConnectionManager>,
    changes_before: u64,
    generation: &'a AtomicU64,
}

impl Deref for Checkout<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.connection
    }
}

impl DerefMut for Checkout<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.connection
    }
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if self.connection.total_changes() != self.changes_before {
            self.generation.fetch_add(1, Ordering::Release);
        }
    }
}

/// Maps a driver error, turning constraint violations into [`StoreError::Conflict`].
fn map_error(error: rusqlite::Error, conflict: Conflict) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(conflict),
        _ => StoreError::backend(error),
    }
}

/// A transaction that takes the write lock at once (`BEGIN IMMEDIATE`): a change whose reads
/// decide whether it may happen (the last administrator) sees no other writer between them.
fn immediate(connection: &mut Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)
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

/// A user's row, with its role keys (space-separated, by role id) and the permissions of its
/// enabled roles (comma-separated) gathered by subqueries: one statement per user read.
const USER_COLUMNS: &str = "id, username, password_hash, disabled, created_at, updated_at, otp_secret, \
     base_path, alist_permission, sso_id, nickname, email, phone, avatar, sex, remark, \
     (SELECT group_concat(roles.key, ' ' ORDER BY roles.id) FROM user_roles \
      JOIN roles ON roles.id = user_roles.role_id WHERE user_roles.user_id = users.id), \
     (SELECT group_concat(DISTINCT role_permissions.permission) FROM user_roles \
      JOIN role_permissions ON role_permissions.role_id = user_roles.role_id \
      JOIN roles ON roles.id = user_roles.role_id \
      WHERE user_roles.user_id = users.id AND roles.disabled = 0)";

fn load_user(row: &Row<'_>) -> Result<User, rusqlite::Error> {
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

/// How many users other than `except` hold the enabled `admin` role and are not disabled.
fn other_active_admins(connection: &Connection, except: UserId) -> Result<i64, StoreError> {
    connection
        .query_row(
            "SELECT COUNT(DISTINCT users.id) FROM users \
             JOIN user_roles ON user_roles.user_id = users.id \
             JOIN roles ON roles.id = user_roles.role_id \
             WHERE roles.key = 'admin' AND roles.built_in = 1 AND users.disabled = 0 AND users.id != ?1",
            [except.0],
            |row| row.get(0),
        )
        .map_err(backend)
}

fn query_user(connection: &Connection, condition: &str, key: &dyn rusqlite::ToSql) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {condition}");
    let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
    statement.query_row([key], load_user).optional().map_err(backend)
}

/// Writes a user's name, disabled flag and profile.
fn write_user_fields(connection: &Connection, id: UserId, user: &User) -> Result<(), StoreError> {
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
fn write_user_roles(connection: &Connection, id: UserId, roles: &[RoleId]) -> Result<(), StoreError> {
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
fn write_password(connection: &Connection, id: UserId, change: &PasswordChange<'_>) -> Result<(), StoreError> {
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
        let mut statement =
            connection.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id")).map_err(backend)?;
        statement.query_map([], load_user).map_err(backend)?.collect::<Result<Vec<_>, _>>().map_err(backend)
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

    fn delete_user(&self, id: UserId) -> Result<(), StoreError> {
        let mut connection = self.connection()?;
        let transaction = immediate(&mut connection)?;
        // The same rule as disabling and demoting: an enabled administrator may go only while
        // another enabled one stays (a disabled administrator cannot sign in to help).
        let Some(stored) = query_user(&transaction, "id = ?1", &id.0)? else {
            return Err(StoreError::NotFound);
        };
        if stored.is_admin() && !stored.disabled && other_active_admins(&transaction, id)? == 0 {
            return Err(StoreError::Conflict(Conflict::LastAdministratorDeleted));
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

    fn update_user(&self, user: &User) -> Result<User, StoreError> {
        self.change_user(&UserChange { id: user.id, fields: Some(user), roles: None, password: None })
    }

    fn set_user_roles(&self, id: UserId, roles: &[RoleId]) -> Result<User, StoreError> {
        self.change_user(&UserChange { id, fields: None, roles: Some(roles), password: None })
    }

    fn change_user(&self, change: &UserChange<'_>) -> Result<User, StoreError> {
        let mut connection = self.connection()?;
        let transaction = immediate(&mut connection)?;
        let id = change.id;
        let stored = query_user(&transaction, "id = ?1", &id.0)?.ok_or(StoreError::NotFound)?;
        if let Some(fields) = change.fields {
            write_user_fields(&transaction, id, fields)?;
        }
        if let Some(roles) = change.roles {
            write_user_roles(&transaction, id, roles)?;
        }
        if let Some(password) = &change.password {
            write_password(&transaction, id, password)?;
        }
        let updated = query_user(&transaction, "id = ?1", &id.0)?.ok_or(StoreError::NotFound)?;
        // An enabled administrator may stop being one only while another enabled one stays.
        let active_admin = |user: &User| user.is_admin() && !user.disabled;
        if active_admin(&stored) && !active_admin(&updated) && other_active_admins(&transaction, id)? == 0 {
            let conflict =
                if updated.disabled { Conflict::LastAdministratorDisabled } else { Conflict::LastAdministratorDemoted };
            return Err(StoreError::Conflict(conflict));
        }
        transaction.commit().map_err(backend)?;
        Ok(updated)
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

const ROLE_COLUMNS: &str = "id, key, name, sort, disabled, remark, built_in, created_at, updated_at";

fn load_role(connection: &Connection, row: &Row<'_>) -> Result<Role, rusqlite::Error> {
    let id = RoleId(row.get(0)?);
    let mut permissions_query =
        connection.prepare_cached("SELECT permission FROM role_permissions WHERE role_id = ?1")?;
    let permissions = permissions_query
        .query_map([id.0], |row| row.get::<_, String>(0))?
        .filter_map(|name| name.map(|name| name.parse::<Permission>().ok()).transpose())
        .collect::<Result<PermissionSet, _>>()?;
    Ok(Role {
        id,
        key: row.get(1)?,
        name: row.get(2)?,
        sort: row.get(3)?,
        disabled: row.get(4)?,
        remark: row.get(5)?,
        built_in: row.get(6)?,
        permissions,
        created_at: Timestamp(row.get(7)?),
        updated_at: Timestamp(row.get(8)?),
    })
}

fn query_role(connection: &Connection, id: RoleId) -> Result<Option<Role>, StoreError> {
    let mut statement =
        connection.prepare_cached(&format!("SELECT {ROLE_COLUMNS} FROM roles WHERE id = ?1")).map_err(backend)?;
    statement.query_row([id.0], |row| load_role(connection, row)).optional().map_err(backend)
}

fn write_role_permissions(connection: &Connection, id: RoleId, permissions: PermissionSet) -> Result<(), StoreError> {
    connection.execute("DELETE FROM role_permissions WHERE role_id = ?1", [id.0]).map_err(backend)?;
    for permission in permissions.iter() {
        connection
            .execute(
                "INSERT INTO role_permissions (role_id, permission) VALUES (?1, ?2)",
                params![id.0, permission.as_str()],
            )
            .map_err(backend)?;
    }
    Ok(())
}

impl RoleStore for SqliteStore {
    fn create_role(&self, role: &NewRole) -> Result<Role, StoreError> {
        let mut connection = self.connection()?;
        let transaction = connection.transaction().map_err(backend)?;
        let now = Timestamp::now().0;
        transaction
            .execute(
                "INSERT INTO roles (key, name, built_in, sort, disabled, remark, created_at, updated_at) \
                 VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?6)",
                params![role.key, role.name, role.sort, role.disabled, role.remark, now],
            )
            .map_err(|error| map_error(error, Conflict::RoleKeyTaken))?;
        let id = RoleId(transaction.last_insert_rowid());
        write_role_permissions(&transaction, id, role.permissions)?;
        let created = query_role(&transaction, id)?.ok_or(StoreError::NotFound)?;
        transaction.commit().map_err(backend)?;
        Ok(created)
    }

    fn find_role(&self, id: RoleId) -> Result<Option<Role>, StoreError> {
        query_role(&*self.connection()?, id)
    }

    fn list_roles(&self) -> Result<Vec<Role>, StoreError> {
        let connection = self.connection()?;
        let mut statement = connection
            .prepare_cached(&format!("SELECT {ROLE_COLUMNS} FROM roles ORDER BY sort, id"))
            .map_err(backend)?;
        statement
            .query_map([], |row| load_role(&connection, row))
            .map_err(backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)
    }

    fn update_role(&self, role: &Role) -> Result<Role, StoreError> {
        let mut connection = self.connection()?;
        let transaction = connection.transaction().map_err(backend)?;
        let stored = query_role(&transaction, role.id)?.ok_or(StoreError::NotFound)?;
        if stored.built_in && stored.key != role.key {
            return Err(StoreError::Conflict(Conflict::BuiltInRoleKey));
        }
        if stored.is_admin() && (role.disabled || role.permissions != PermissionSet::all()) {
            return Err(StoreError::Conflict(Conflict::AdminRoleFixed));
        }
        transaction
            .execute(
                "UPDATE roles SET key = ?2, name = ?3, sort = ?4, disabled = ?5, remark = ?6, updated_at = ?7 \
                 WHERE id = ?1",
                params![role.id.0, role.key, role.name, role.sort, role.disabled, role.remark, Timestamp::now().0],
            )
            .map_err(|error| map_error(error, Conflict::RoleKeyTaken))?;
        write_role_permissions(&transaction, role.id, role.permissions)?;
        let updated = query_role(&transaction, role.id)?.ok_or(StoreError::NotFound)?;
        transaction.commit().map_err(backend)?;
        Ok(updated)
    }

    fn delete_role(&self, id: RoleId) -> Result<(), StoreError> {
        let mut connection = self.connection()?;
        let transaction = connection.transaction().map_err(backend)?;
        let stored = query_role(&transaction, id)?.ok_or(StoreError::NotFound)?;
        if stored.built_in {
            return Err(StoreError::Conflict(Conflict::BuiltInRoleDeleted));
        }
        transaction.execute("DELETE FROM user_roles WHERE role_id = ?1", [id.0]).map_err(backend)?;
        transaction.execute("DELETE FROM roles WHERE id = ?1", [id.0]).map_err(backend)?;
        transaction.commit().map_err(backend)
    }
}

const SSH_KEY_COLUMNS: &str = "id, user_id, title, public_key, fingerprint, added_at, last_used_at";

fn load_ssh_key(row: &Row<'_>) -> Result<SshKey, rusqlite::Error> {
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

const TOKEN_COLUMNS: &str = "access_tokens.identifier, access_tokens.user_id, users.username, \
     access_tokens.description, access_tokens.secret_hash, access_tokens.permissions, \
     access_tokens.expires_at, access_tokens.created_at, access_tokens.updated_at, \
     access_tokens.app_key, access_tokens.title, access_tokens.tags, access_tokens.enabled";

fn permission_names(permissions: Option<PermissionSet>) -> Option<String> {
    permissions.map(|set| set.iter().map(Permission::as_str).collect::<Vec<_>>().join(" "))
}

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
        app_key: row.get(9)?,
        title: row.get(10)?,
        tags: row.get(11)?,
        enabled: row.get(12)?,
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

impl SessionStore for SqliteStore {
    fn create_session(&self, spec: &SessionSpec) -> Result<Session, StoreError> {
        let connection = self.connection()?;
        connection
            .execute(
                "INSERT INTO sessions (name, cmd, args, dir, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![spec.name.as_str(), spec.cmd, args_json(&spec.args), spec.dir, Timestamp::now().0],
            )
            .map_err(|error| map_error(error, Conflict::SessionNameTaken))?;
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
            .map_err(|error| map_error(error, Conflict::SessionNameTaken))?;
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
            return Err(StoreError::Conflict(Conflict::SessionNameTaken));
        }
        transaction
            .execute(
                "UPDATE sessions SET name = ?2, updated_at = ?3 WHERE name = ?1",
                params![from.as_str(), to.as_str(), Timestamp::now().0],
            )
            .map_err(|error| map_error(error, Conflict::SessionNameTaken))?;
        let moved = query_session(&transaction, to.as_str())?.ok_or(StoreError::NotFound)?;
        transaction.commit().map_err(backend)?;
        Ok(moved)
    }
}

const LOGIN_COLUMNS: &str = "id, user_id, created_at, expires_at, revoked, client_ip, client_agent_hash";

fn load_login(row: &Row<'_>) -> Result<Login, rusqlite::Error> {
    Ok(Login {
        id: LoginId(row.get(0)?),
        user_id: UserId(row.get(1)?),
        created_at: Timestamp(row.get(2)?),
        expires_at: Timestamp(row.get(3)?),
        revoked: row.get(4)?,
        client: LoginClient { ip: row.get(5)?, user_agent_hash: row.get(6)? },
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
