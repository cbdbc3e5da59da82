//! The storage traits, one per aggregate.

use wssh_domain::{
    AccessToken, Login, LoginId, NewAccessToken, NewRole, NewSshKey, NewUser, Role, RoleId, Session, SessionName,
    SessionSpec, SshKey, TokenIdentifier, User, UserId,
};

use crate::{ChangeCounter, StoreError};

/// A new password for a user, and what survives the change.
#[derive(Debug, Clone, Copy)]
pub struct PasswordChange<'a> {
    /// The new argon2id hash.
    pub password_hash: &'a str,
    /// The one token of the user that stays valid.
    pub keep_token: Option<&'a TokenIdentifier>,
    /// The one login of the user that stays active.
    pub keep_login: Option<&'a LoginId>,
}

/// Changes to one user that are written together (see [`UserStore::change_user`]).
#[derive(Debug, Clone, Copy)]
pub struct UserChange<'a> {
    /// The user.
    pub id: UserId,
    /// Its new name, disabled flag and profile, if they change.
    pub fields: Option<&'a User>,
    /// Its new roles, if they change.
    pub roles: Option<&'a [RoleId]>,
    /// Its new password, if it changes.
    pub password: Option<PasswordChange<'a>>,
}

/// A unit of work: one transaction that holds the write lock from its first statement, so the
/// reads a rule makes inside it see exactly what its writes change, whoever else is writing.
/// Dropped without [`UnitOfWork::commit`], it rolls back.
pub trait UnitOfWork {
    /// The user with this id, if any.
    fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// Every user, by id.
    fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Writes the parts of one user that `change` names (no rule is checked here) and returns
    /// the user as it now is. [`StoreError::NotFound`] for no such user;
    /// [`StoreError::Conflict`] for a taken name or an unknown role.
    fn write_user(&self, change: &UserChange<'_>) -> Result<User, StoreError>;
    /// Deletes a user with its tokens and role bindings. [`StoreError::NotFound`] for no such
    /// user.
    fn remove_user(&self, id: UserId) -> Result<(), StoreError>;
    /// Makes the work durable.
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// A store that can run a [`UnitOfWork`].
pub trait Transactional: Send + Sync {
    /// Starts a unit of work, waiting for the write lock.
    fn begin(&self) -> Result<Box<dyn UnitOfWork + '_>, StoreError>;
}

/// Users, their password hashes and their roles.
///
/// The changes that could remove the last enabled administrator (`change_user`,
/// `update_user`, `set_user_roles`, `delete_user`) are provided here for every backend: each
/// runs in one [`UnitOfWork`] and checks [`crate::rules::keeps_an_administrator`] inside it.
pub trait UserStore: Transactional + Send + Sync {
    /// Creates a user bound to its role. [`StoreError::Conflict`] when the name is taken.
    fn create_user(&self, user: &NewUser) -> Result<User, StoreError>;
    /// The user with this name, if any.
    fn find_user(&self, username: &str) -> Result<Option<User>, StoreError>;
    /// The user with this id, if any.
    fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// Every user, by id.
    fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// How many users there are.
    fn count_users(&self) -> Result<u64, StoreError>;
    /// Replaces a user's password hash and, in the same transaction, revokes every token of the
    /// user except `keep_token`, ends every login of the user except `keep_login` (their access
    /// JWTs and refresh tokens stop working), and forgets its alist hash (which was of the old
    /// password).
    fn set_password(
        &self,
        id: UserId,
        password_hash: &str,
        keep_token: Option<&TokenIdentifier>,
        keep_login: Option<&LoginId>,
    ) -> Result<(), StoreError>;
    /// Deletes a user and, in the same transaction, its tokens and role bindings.
    /// [`StoreError::Conflict`] when it is the last administrator.
    fn delete_user(&self, id: UserId) -> Result<(), StoreError> {
        let work = self.begin()?;
        let before = work.find_user_by_id(id)?.ok_or(StoreError::NotFound)?;
        work.remove_user(id)?;
        crate::rules::keeps_an_administrator(&*work, &before, None)?;
        work.commit()
    }
    /// Writes a user's name, disabled flag and profile (not its password, roles or TOTP).
    /// [`StoreError::Conflict`] when the name is taken, or when it would disable the last
    /// enabled administrator.
    fn update_user(&self, user: &User) -> Result<User, StoreError> {
        self.change_user(&UserChange { id: user.id, fields: Some(user), roles: None, password: None })
    }
    /// Replaces the roles bound to a user, in one transaction. [`StoreError::Conflict`] when a
    /// role does not exist, or when it would leave no enabled administrator.
    fn set_user_roles(&self, id: UserId, roles: &[RoleId]) -> Result<User, StoreError> {
        self.change_user(&UserChange { id, fields: None, roles: Some(roles), password: None })
    }
    /// Writes several parts of one user in one transaction, under the write lock: its fields
    /// (name, disabled flag, profile), its roles, its password. [`StoreError::Conflict`] as
    /// [`UserStore::update_user`] and [`UserStore::set_user_roles`] say, and when the change
    /// would leave no enabled administrator.
    fn change_user(&self, change: &UserChange<'_>) -> Result<User, StoreError> {
        let work = self.begin()?;
        let before = work.find_user_by_id(change.id)?.ok_or(StoreError::NotFound)?;
        let after = work.write_user(change)?;
        crate::rules::keeps_an_administrator(&*work, &before, Some(&after))?;
        work.commit()?;
        Ok(after)
    }
    /// Turns two-factor authentication on with `secret` (base32), accepting codes from
    /// `accepted_step` on, or off with `None`.
    fn set_otp_secret(&self, id: UserId, secret: Option<&str>, accepted_step: i64) -> Result<(), StoreError>;
    /// Records that the TOTP code of time step `step` was used; `false` when that step or a
    /// later one was already used (a replay), atomically.
    fn accept_otp_step(&self, id: UserId, step: i64) -> Result<bool, StoreError>;
    /// The argon2id hash of alist's password digest (`sha256(password + suffix)` in hex) that
    /// `/api/auth/login/hash` checks, if one was stored since the password was last set.
    fn alist_password_hash(&self, id: UserId) -> Result<Option<String>, StoreError>;
    /// Stores the alist digest's hash, but only while the user's password hash is still
    /// `password_hash` (the one the digest was derived alongside), atomically; `false` when the
    /// password changed meanwhile or the user is gone.
    fn set_alist_password_hash(&self, id: UserId, password_hash: &str, alist_hash: &str) -> Result<bool, StoreError>;
}

/// Roles and the permissions they grant.
pub trait RoleStore: Send + Sync {
    /// Creates a role. [`StoreError::Conflict`] when the key is taken.
    fn create_role(&self, role: &NewRole) -> Result<Role, StoreError>;
    /// The role with this id, if any.
    fn find_role(&self, id: RoleId) -> Result<Option<Role>, StoreError>;
    /// Every role, by sort order then id.
    fn list_roles(&self) -> Result<Vec<Role>, StoreError>;
    /// Writes a role's key, name, sort, disabled flag, remark and permissions.
    /// [`StoreError::Conflict`] when the key is taken, when a built-in role's key would change,
    /// or when the `admin` role would be disabled or lose a permission.
    fn update_role(&self, role: &Role) -> Result<Role, StoreError>;
    /// Deletes a role and its bindings. [`StoreError::Conflict`] for a built-in role.
    fn delete_role(&self, id: RoleId) -> Result<(), StoreError>;
}

/// SSH public keys of users.
pub trait SshKeyStore: Send + Sync {
    /// Stores a key. [`StoreError::Conflict`] when the user already has a key with this
    /// fingerprint.
    fn add_ssh_key(&self, key: &NewSshKey) -> Result<SshKey, StoreError>;
    /// The keys of a user, oldest first.
    fn list_ssh_keys(&self, owner: UserId) -> Result<Vec<SshKey>, StoreError>;
    /// Deletes one of `owner`'s keys. [`StoreError::NotFound`] when `owner` has no such key.
    fn delete_ssh_key(&self, owner: UserId, id: i64) -> Result<(), StoreError>;
}

/// Access tokens, stored by the hash of their secret.
pub trait TokenStore: Send + Sync {
    /// Stores a newly minted token. [`StoreError::Conflict`] when the identifier is taken.
    fn insert_token(&self, token: &NewAccessToken) -> Result<AccessToken, StoreError>;
    /// The token with this identifier, if any.
    fn find_token(&self, identifier: &str) -> Result<Option<AccessToken>, StoreError>;
    /// The token whose secret hashes to `secret_hash`, if any.
    fn find_token_by_secret_hash(&self, secret_hash: &str) -> Result<Option<AccessToken>, StoreError>;
    /// The tokens of one user, or of everyone, oldest first.
    fn list_tokens(&self, owner: Option<UserId>) -> Result<Vec<AccessToken>, StoreError>;
    /// Replaces a token's description.
    fn update_token_description(&self, identifier: &str, description: &str) -> Result<AccessToken, StoreError>;
    /// Writes a token's description, title, tags, permissions and enabled flag.
    fn update_token(&self, token: &AccessToken) -> Result<AccessToken, StoreError>;
    /// One page of the tokens minted under `app_key`, of one user or of everyone, oldest
    /// first, and how many there are in all.
    fn list_app_tokens(
        &self,
        app_key: &str,
        owner: Option<UserId>,
        skip: u64,
        take: u64,
    ) -> Result<(u64, Vec<AccessToken>), StoreError>;
    /// Revokes a token.
    fn delete_token(&self, identifier: &str) -> Result<(), StoreError>;
}

/// Session templates.
pub trait SessionStore: Send + Sync {
    /// Stores a new session. [`StoreError::Conflict`] when the name is taken.
    fn create_session(&self, spec: &SessionSpec) -> Result<Session, StoreError>;
    /// The session with this name, if any.
    fn find_session(&self, name: &str) -> Result<Option<Session>, StoreError>;
    /// Every session, by name.
    fn list_sessions(&self) -> Result<Vec<Session>, StoreError>;
    /// Replaces the command, arguments and directory of an existing session.
    fn update_session(&self, spec: &SessionSpec) -> Result<Session, StoreError>;
    /// Deletes a session.
    fn delete_session(&self, name: &str) -> Result<(), StoreError>;
    /// Copies `from` to the new name `to`, which must be free.
    fn copy_session(&self, from: &SessionName, to: &SessionName) -> Result<Session, StoreError>;
    /// Renames `from` to `to`, which must be free, in one transaction.
    fn rename_session(&self, from: &SessionName, to: &SessionName) -> Result<Session, StoreError>;
}

/// What happened to a presented refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// It was the login's current one and has been replaced.
    Rotated(Login),
    /// It had already been rotated away: theft. The login has been revoked.
    Replayed(LoginId),
    /// It belongs to no login, or to one that ended or expired.
    Unknown,
}

/// Logins (refresh-token families) and the server's secret settings.
pub trait LoginStore: Send + Sync {
    /// The value of a setting, creating it with `create()` when missing, atomically: every
    /// server sharing the database ends up with the same value.
    fn setting_or_create(&self, key: &str, create: &dyn Fn() -> Vec<u8>) -> Result<Vec<u8>, StoreError>;
    /// Records a new login whose current refresh token hashes to `refresh_hash`.
    fn create_login(&self, login: &Login, refresh_hash: &str) -> Result<(), StoreError>;
    /// The login with this id, if any.
    fn find_login(&self, id: &LoginId) -> Result<Option<Login>, StoreError>;
    /// Replaces the refresh token hashing to `presented_hash` with one hashing to `new_hash`,
    /// in one transaction; detects replays of retired tokens and revokes their login.
    fn rotate_refresh(&self, presented_hash: &str, new_hash: &str) -> Result<Rotation, StoreError>;
    /// The active login whose current refresh token hashes to `refresh_hash`, if any.
    fn find_login_by_refresh(&self, refresh_hash: &str) -> Result<Option<Login>, StoreError>;
    /// Ends a login: its refresh tokens and access tokens stop working.
    fn revoke_login(&self, id: &LoginId) -> Result<(), StoreError>;
}

/// Everything wssh stores.
pub trait Store:
    UserStore
    + TokenStore
    + SessionStore
    + LoginStore
    + RoleStore
    + SshKeyStore
    + crate::ThrottleStore
    + crate::AuditStore
    + crate::RecordingStore
    + crate::ShellRegistryStore
    + ChangeCounter
{
}

impl<T> Store for T where
    T: UserStore
        + TokenStore
        + SessionStore
        + LoginStore
        + RoleStore
        + SshKeyStore
        + crate::ThrottleStore
        + crate::AuditStore
        + crate::RecordingStore
        + crate::ShellRegistryStore
        + ChangeCounter
{
}
