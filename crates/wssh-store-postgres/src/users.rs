//! [`UserStore`] and [`SshKeyStore`] on PostgreSQL.

use postgres::GenericClient;
use postgres::types::ToSql;
use std::cell::RefCell;
use wssh_domain::{
    LoginId, NewSshKey, NewUser, Permission, PermissionSet, RoleId, SshKey, Timestamp, TokenIdentifier, User, UserId,
    UserProfile, Username,
};

use wssh_store::{Conflict, PasswordChange, SshKeyStore, StoreError, Transactional, UnitOfWork, UserChange, UserStore};

use crate::{PgStore, Tx, Write, backend, corrupt, get};

/// A user's row, with its role keys (space-separated, by role id) and the permissions of its
/// enabled roles (comma-separated) gathered by subqueries: one statement per user read.
const USER_COLUMNS: &str = "id, username, password_hash, disabled, created_at, updated_at, otp_secret, \
     base_path, alist_permission, sso_id, nickname, email, phone, avatar, sex, remark, \
     (SELECT string_agg(roles.key, ' ' ORDER BY roles.id) FROM user_roles \
      JOIN roles ON roles.id = user_roles.role_id WHERE user_roles.user_id = users.id), \
     (SELECT string_agg(DISTINCT role_permissions.permission, ',') FROM user_roles \
      JOIN role_permissions ON role_permissions.role_id = user_roles.role_id \
      JOIN roles ON roles.id = user_roles.role_id \
      WHERE user_roles.user_id = users.id AND NOT roles.disabled)";

fn load_user(row: &postgres::Row) -> Result<User, StoreError> {
    let name: String = get(row, 1)?;
    let username = Username::parse(&name).map_err(corrupt)?;
    let roles: Option<String> = get(row, 16)?;
    let roles = roles.map(|keys| keys.split(' ').map(str::to_owned).collect()).unwrap_or_default();
    let permissions: Option<String> = get(row, 17)?;
    // Names this version does not know (written by a newer one) grant nothing here.
    let permissions = permissions
        .iter()
        .flat_map(|names| names.split(','))
        .filter_map(|name| name.parse::<Permission>().ok())
        .collect::<PermissionSet>();
    Ok(User {
        id: UserId(get(row, 0)?),
        username,
        password_hash: get(row, 2)?,
        disabled: get(row, 3)?,
        roles,
        permissions,
        created_at: Timestamp(get(row, 4)?),
        updated_at: Timestamp(get(row, 5)?),
        otp_secret: get(row, 6)?,
        profile: UserProfile {
            base_path: get(row, 7)?,
            alist_permission: get(row, 8)?,
            sso_id: get(row, 9)?,
            nickname: get(row, 10)?,
            email: get(row, 11)?,
            phone: get(row, 12)?,
            avatar: get(row, 13)?,
            sex: get(row, 14)?,
            remark: get(row, 15)?,
        },
    })
}

pub(crate) fn query_user(
    client: &mut impl GenericClient,
    condition: &str,
    key: &(dyn ToSql + Sync),
) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {condition}");
    client.query_opt(&sql, &[key]).map_err(backend)?.as_ref().map(load_user).transpose()
}

fn write_user_fields(write: &mut Write<'_>, id: UserId, user: &User) -> Result<(), StoreError> {
    let profile = &user.profile;
    let changed = write.execute_or(
        "UPDATE users SET username = $2, disabled = $3, updated_at = $4, base_path = $5, \
         alist_permission = $6, sso_id = $7, nickname = $8, email = $9, phone = $10, avatar = $11, \
         sex = $12, remark = $13 WHERE id = $1",
        &[
            &id.0,
            &user.username.as_str(),
            &user.disabled,
            &Timestamp::now().0,
            &profile.base_path,
            &profile.alist_permission,
            &profile.sso_id,
            &profile.nickname,
            &profile.email,
            &profile.phone,
            &profile.avatar,
            &profile.sex,
            &profile.remark,
        ],
        Conflict::UsernameTaken,
    )?;
    if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

fn write_user_roles(write: &mut Write<'_>, id: UserId, roles: &[RoleId]) -> Result<(), StoreError> {
    write.execute("DELETE FROM user_roles WHERE user_id = $1", &[&id.0])?;
    for role in roles {
        let exists: bool = write
            .client
            .query_one("SELECT EXISTS (SELECT 1 FROM roles WHERE id = $1)", &[&role.0])
            .map_err(backend)
            .and_then(|row| get(&row, 0))?;
        if !exists {
            return Err(StoreError::Conflict(Conflict::UnknownRole));
        }
        write.execute(
            "INSERT INTO user_roles (user_id, role_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&id.0, &role.0],
        )?;
    }
    Ok(())
}

fn write_password(write: &mut Write<'_>, id: UserId, change: &PasswordChange<'_>) -> Result<(), StoreError> {
    let changed = write.execute(
        "UPDATE users SET password_hash = $2, alist_hash = NULL, updated_at = $3 WHERE id = $1",
        &[&id.0, &change.password_hash, &Timestamp::now().0],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    write.execute(
        "DELETE FROM access_tokens WHERE user_id = $1 AND identifier IS DISTINCT FROM $2",
        &[&id.0, &change.keep_token.map(TokenIdentifier::as_str)],
    )?;
    write.execute(
        "UPDATE logins SET revoked = TRUE WHERE user_id = $1 AND NOT revoked AND id IS DISTINCT FROM $2",
        &[&id.0, &change.keep_login.map(LoginId::as_str)],
    )?;
    Ok(())
}

impl UserStore for PgStore {
    fn create_user(&self, user: &NewUser) -> Result<User, StoreError> {
        self.write(|write| {
            let now = Timestamp::now().0;
            let profile = &user.profile;
            let row = write.insert(
                "INSERT INTO users (username, password_hash, disabled, created_at, updated_at, \
                     base_path, alist_permission, sso_id, nickname, email, phone, avatar, sex, remark) \
                     VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
                &[
                    &user.username.as_str(),
                    &user.password_hash,
                    &user.disabled,
                    &now,
                    &profile.base_path,
                    &profile.alist_permission,
                    &profile.sso_id,
                    &profile.nickname,
                    &profile.email,
                    &profile.phone,
                    &profile.avatar,
                    &profile.sex,
                    &profile.remark,
                ],
                Conflict::UsernameTaken,
            )?;
            let id: i64 = get(&row, 0)?;
            let bound = write.execute(
                "INSERT INTO user_roles (user_id, role_id) SELECT $1, id FROM roles WHERE key = $2",
                &[&id, &user.role.as_str()],
            )?;
            if bound != 1 {
                return Err(StoreError::Conflict(Conflict::UnknownRole));
            }
            query_user(&mut *write.client, "id = $1", &id)?.ok_or(StoreError::NotFound)
        })
    }

    fn find_user(&self, username: &str) -> Result<Option<User>, StoreError> {
        query_user(&mut *self.connection()?, "username = $1", &username)
    }

    fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        query_user(&mut *self.connection()?, "id = $1", &id.0)
    }

    fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows =
            self.connection()?.query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"), &[]).map_err(backend)?;
        rows.iter().map(load_user).collect()
    }

    fn count_users(&self) -> Result<u64, StoreError> {
        let row = self.connection()?.query_one("SELECT COUNT(*) FROM users", &[]).map_err(backend)?;
        Ok(get::<i64>(&row, 0)?.unsigned_abs())
    }

    fn set_password(
        &self,
        id: UserId,
        password_hash: &str,
        keep_token: Option<&TokenIdentifier>,
        keep_login: Option<&LoginId>,
    ) -> Result<(), StoreError> {
        self.write(|write| write_password(write, id, &PasswordChange { password_hash, keep_token, keep_login }))
    }

    fn set_otp_secret(&self, id: UserId, secret: Option<&str>, accepted_step: i64) -> Result<(), StoreError> {
        self.write(|write| {
            let changed = write.execute(
                "UPDATE users SET otp_secret = $2, otp_last_step = $3, updated_at = $4 WHERE id = $1",
                &[&id.0, &secret, &accepted_step, &Timestamp::now().0],
            )?;
            if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        })
    }

    fn accept_otp_step(&self, id: UserId, step: i64) -> Result<bool, StoreError> {
        // Atomic on every node: only one of two concurrent uses of a step moves it.
        let changed = self
            .connection()?
            .execute("UPDATE users SET otp_last_step = $2 WHERE id = $1 AND otp_last_step < $2", &[&id.0, &step])
            .map_err(backend)?;
        Ok(changed == 1)
    }

    fn alist_password_hash(&self, id: UserId) -> Result<Option<String>, StoreError> {
        let row =
            self.connection()?.query_opt("SELECT alist_hash FROM users WHERE id = $1", &[&id.0]).map_err(backend)?;
        Ok(row.map(|row| get::<Option<String>>(&row, 0)).transpose()?.flatten())
    }

    fn set_alist_password_hash(&self, id: UserId, password_hash: &str, alist_hash: &str) -> Result<bool, StoreError> {
        let changed = self
            .connection()?
            .execute(
                "UPDATE users SET alist_hash = $3 WHERE id = $1 AND password_hash = $2",
                &[&id.0, &password_hash, &alist_hash],
            )
            .map_err(backend)?;
        Ok(changed == 1)
    }
}

/// A unit of work on PostgreSQL: one transaction that takes the cluster-wide decision lock
/// first, so the last-administrator rule holds across nodes as SQLite's `BEGIN IMMEDIATE`
/// makes it hold in one file. Committed with a `NOTIFY` when it changed rows.
struct PgWork<'a> {
    store: &'a PgStore,
    tx: RefCell<Option<Tx>>,
    changed: RefCell<u64>,
}

impl PgWork<'_> {
    fn run<T>(&self, work: impl FnOnce(&mut Write<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut tx = self.tx.borrow_mut();
        let tx = tx.as_mut().ok_or(StoreError::NotFound)?;
        let mut write = Write { client: &mut tx.connection, changed: 0 };
        let value = work(&mut write);
        *self.changed.borrow_mut() += write.changed;
        value
    }
}

impl Transactional for PgStore {
    fn begin(&self) -> Result<Box<dyn UnitOfWork + '_>, StoreError> {
        let mut tx = Tx::begin(self.connection()?)?;
        Write { client: &mut tx.connection, changed: 0 }.lock_decisions()?;
        Ok(Box::new(PgWork { store: self, tx: RefCell::new(Some(tx)), changed: RefCell::new(0) }))
    }
}

impl UnitOfWork for PgWork<'_> {
    fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.run(|write| query_user(&mut *write.client, "id = $1", &id.0))
    }

    fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.run(|write| {
            let rows =
                write.client.query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"), &[]).map_err(backend)?;
            rows.iter().map(load_user).collect()
        })
    }

    fn write_user(&self, change: &UserChange<'_>) -> Result<User, StoreError> {
        self.run(|write| {
            let id = change.id;
            if query_user(&mut *write.client, "id = $1", &id.0)?.is_none() {
                return Err(StoreError::NotFound);
            }
            if let Some(fields) = change.fields {
                write_user_fields(write, id, fields)?;
            }
            if let Some(roles) = change.roles {
                write_user_roles(write, id, roles)?;
            }
            if let Some(password) = &change.password {
                write_password(write, id, password)?;
            }
            query_user(&mut *write.client, "id = $1", &id.0)?.ok_or(StoreError::NotFound)
        })
    }

    fn remove_user(&self, id: UserId) -> Result<(), StoreError> {
        self.run(|write| {
            write.execute("DELETE FROM access_tokens WHERE user_id = $1", &[&id.0])?;
            if write.execute("DELETE FROM users WHERE id = $1", &[&id.0])? == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let tx = self.tx.borrow_mut().take().ok_or(StoreError::NotFound)?;
        let changed = *self.changed.borrow();
        tx.commit(changed > 0, &self.store.generation)
    }
}

const SSH_KEY_COLUMNS: &str = "id, user_id, title, public_key, fingerprint, added_at, last_used_at";

fn load_ssh_key(row: &postgres::Row) -> Result<SshKey, StoreError> {
    Ok(SshKey {
        id: get(row, 0)?,
        user_id: UserId(get(row, 1)?),
        title: get(row, 2)?,
        public_key: get(row, 3)?,
        fingerprint: get(row, 4)?,
        added_at: Timestamp(get(row, 5)?),
        last_used_at: get::<Option<i64>>(row, 6)?.map(Timestamp),
    })
}

impl SshKeyStore for PgStore {
    fn add_ssh_key(&self, key: &NewSshKey) -> Result<SshKey, StoreError> {
        self.write(|write| {
            let row = write.insert(
                &format!(
                    "INSERT INTO ssh_keys (user_id, title, public_key, fingerprint, added_at) \
                         VALUES ($1, $2, $3, $4, $5) RETURNING {SSH_KEY_COLUMNS}"
                ),
                &[&key.user_id.0, &key.title, &key.public_key, &key.fingerprint, &Timestamp::now().0],
                Conflict::SshKeyRegistered,
            )?;
            load_ssh_key(&row)
        })
    }

    fn list_ssh_keys(&self, owner: UserId) -> Result<Vec<SshKey>, StoreError> {
        let rows = self
            .connection()?
            .query(&format!("SELECT {SSH_KEY_COLUMNS} FROM ssh_keys WHERE user_id = $1 ORDER BY id"), &[&owner.0])
            .map_err(backend)?;
        rows.iter().map(load_ssh_key).collect()
    }

    fn delete_ssh_key(&self, owner: UserId, id: i64) -> Result<(), StoreError> {
        self.write(|write| {
            let deleted = write.execute("DELETE FROM ssh_keys WHERE id = $1 AND user_id = $2", &[&id, &owner.0])?;
            if deleted == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        })
    }
}
