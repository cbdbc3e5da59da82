//! Users: reading, creating, registering, changing, deleting, passwords and role bindings.

use wssh_auth::{AuthError, Principal};
use wssh_domain::audit::{AuditEvent, UserSnapshot};
use wssh_domain::{
    NewUser, Password, Permission, PermissionSet, Role, RoleId, RoleKey, User, UserId, UserProfile, Username,
};
use wssh_store::{Conflict, PasswordChange, UserChange, rules};

use crate::policy::{self, AccountManager, RoleGranter};
use crate::{CoreError, Entity, Services};

/// A user named by id or by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserRef<'a> {
    /// By database id.
    Id(UserId),
    /// By name.
    Name(&'a str),
}

impl UserRef<'_> {
    fn is(&self, principal: &Principal) -> bool {
        match self {
            UserRef::Id(id) => *id == principal.user_id,
            UserRef::Name(name) => *name == principal.username.as_str(),
        }
    }
}

/// A new account, made by an administrator.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Its name.
    pub username: Username,
    /// Its password.
    pub password: Password,
    /// The built-in role it is bound to.
    pub role: RoleKey,
    /// Created disabled.
    pub disabled: bool,
    /// Profile fields.
    pub profile: UserProfile,
}

/// Profile fields to change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ProfileChanges {
    /// alist's `base_path`.
    pub base_path: Option<String>,
    /// alist's permission bits.
    pub alist_permission: Option<i64>,
    /// alist's `sso_id`.
    pub sso_id: Option<String>,
    /// Display name.
    pub nickname: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Avatar URL.
    pub avatar: Option<String>,
    /// Sex.
    pub sex: Option<String>,
    /// Remark.
    pub remark: Option<String>,
}

impl ProfileChanges {
    /// Writes the changed fields into `profile`.
    pub fn apply(self, profile: &mut UserProfile) {
        let texts = [
            (self.base_path, &mut profile.base_path),
            (self.sso_id, &mut profile.sso_id),
            (self.nickname, &mut profile.nickname),
            (self.email, &mut profile.email),
            (self.phone, &mut profile.phone),
            (self.avatar, &mut profile.avatar),
            (self.sex, &mut profile.sex),
            (self.remark, &mut profile.remark),
        ];
        for (value, target) in texts {
            if let Some(value) = value {
                *target = value;
            }
        }
        if let Some(bits) = self.alist_permission {
            profile.alist_permission = bits;
        }
    }
}

/// Changes to a user, written together in one transaction; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// A new name.
    pub username: Option<Username>,
    /// Disable or enable.
    pub disabled: Option<bool>,
    /// Profile fields.
    pub profile: ProfileChanges,
    /// A new rank (see [`rank`]): its built-in role is replaced by this one, custom roles
    /// stay. Nothing changes when the user already ranks so.
    pub role: Option<RoleKey>,
    /// A new password; the user's other tokens and logins end (the caller's own survive when
    /// it changes its own).
    pub password: Option<Password>,
}

/// A user's rank among the built-in roles: `Admin` with the admin role, `Guest` when its roles
/// grant nothing, `User` otherwise.
pub fn rank(user: &User) -> RoleKey {
    if user.is_admin() {
        RoleKey::Admin
    } else if user.permissions == PermissionSet::EMPTY {
        RoleKey::Guest
    } else {
        RoleKey::User
    }
}

impl Services {
    /// The stored user behind `principal`; a user deleted meanwhile is invalid credentials.
    pub fn caller(&self, principal: &Principal) -> Result<User, CoreError> {
        self.store()
            .find_user_by_id(principal.user_id)
            .map_err(CoreError::store(Entity::User))?
            .ok_or(CoreError::Auth(AuthError::InvalidCredentials))
    }

    fn find_user(&self, target: UserRef<'_>) -> Result<User, CoreError> {
        let found = match target {
            UserRef::Id(id) => self.store().find_user_by_id(id),
            UserRef::Name(name) => self.store().find_user(name),
        };
        found.map_err(CoreError::store(Entity::User))?.ok_or(CoreError::NotFound(Entity::User))
    }

    /// A user: the caller's own, or anyone's with `users:read` (checked before the lookup, so
    /// that existence leaks nothing).
    pub fn user(&self, principal: &Principal, target: UserRef<'_>) -> Result<User, CoreError> {
        if !target.is(principal) {
            policy::require(principal, Permission::UsersRead)?;
        }
        self.find_user(target)
    }

    /// A user as an administrator reads it (alist's admin API): `users:read`, even for one's
    /// own.
    pub fn administered_user(&self, principal: &Principal, target: UserRef<'_>) -> Result<User, CoreError> {
        policy::require(principal, Permission::UsersRead)?;
        self.find_user(target)
    }

    /// Every user, by id: `users:read`.
    pub fn users(&self, principal: &Principal) -> Result<Vec<User>, CoreError> {
        policy::require(principal, Permission::UsersRead)?;
        self.store().list_users().map_err(CoreError::store(Entity::User))
    }

    /// Every user with `users:read`; without it, only the caller.
    pub fn visible_users(&self, principal: &Principal) -> Result<Vec<User>, CoreError> {
        if principal.can(Permission::UsersRead) { self.users(principal) } else { Ok(vec![self.caller(principal)?]) }
    }

    /// Checks that `username` names a user: `users:write` (alist's `del_cache`; wssh caches no
    /// user).
    pub fn check_user_exists(&self, principal: &Principal, username: &str) -> Result<(), CoreError> {
        policy::require(principal, Permission::UsersWrite)?;
        self.find_user(UserRef::Name(username)).map(drop)
    }

    fn built_in_role(&self, key: RoleKey) -> Result<Role, CoreError> {
        self.store()
            .list_roles()
            .map_err(CoreError::store(Entity::Role))?
            .into_iter()
            .find(|role| role.built_in && role.key == key.as_str())
            .ok_or(CoreError::Conflict(Conflict::UnknownRole))
    }

    /// Creates an account: `users:write`, and binding its role follows the grant rules (the
    /// `admin` role needs `roles:write` and every permission).
    pub fn create_user(&self, principal: &Principal, account: NewAccount) -> Result<User, CoreError> {
        policy::require(principal, Permission::UsersWrite)?;
        let role = self.built_in_role(account.role)?;
        policy::may_bind(principal, &[&role], &[])?;
        self.insert_user(account, Some(principal))
    }

    /// Creates the account, and audits it as done by `actor` (`None`: self-registration).
    fn insert_user(&self, account: NewAccount, actor: Option<&Principal>) -> Result<User, CoreError> {
        if self.store().find_user(account.username.as_str()).map_err(CoreError::store(Entity::User))?.is_some() {
            return Err(CoreError::Conflict(Conflict::UsernameTaken));
        }
        self.auth.check_new_password(account.username.as_str(), &account.password)?;
        // Both hashes: argon2id of the password, and of alist's digest of it, so that every
        // login route works for the user at once.
        let mut new_user = NewUser::new(account.username, self.auth.hash_password(&account.password)?, account.role);
        new_user.disabled = account.disabled;
        new_user.profile = account.profile;
        let user = self.store().create_user(&new_user).map_err(CoreError::store(Entity::User))?;
        self.auth.remember_alist_hash(user.id, &user.password_hash, &account.password)?;
        let event = AuditEvent::UserCreated { new: Box::new(UserSnapshot::from(&user)) };
        match actor {
            Some(actor) => self.audit(actor, event),
            None => self.audit_server(event),
        }
        Ok(user)
    }

    /// Whether `principal` (or an anonymous caller) may register accounts at all: with
    /// registration open anyone may, otherwise only a holder of `users:write`. Checked before
    /// the request's fields are read; [`Services::register`] checks everything again.
    pub fn may_register(&self, principal: Option<&Principal>) -> Result<(), CoreError> {
        match principal {
            _ if self.config.allow_registration => Ok(()),
            Some(principal) => policy::require(principal, Permission::UsersWrite),
            None => Err(CoreError::Auth(AuthError::MissingCredentials)),
        }
    }

    /// Seed 004's registration: with registration open, anyone gets a `guest` account;
    /// otherwise (or when the caller holds `users:write`) it is [`Services::create_user`] with
    /// the `user` role.
    pub fn register(
        &self,
        principal: Option<&Principal>,
        username: Username,
        password: Password,
        profile: UserProfile,
    ) -> Result<User, CoreError> {
        let administrator = principal.filter(|principal| principal.can(Permission::UsersWrite));
        let account = |role| NewAccount { username, password, role, disabled: false, profile };
        match (administrator, principal) {
            (Some(principal), _) => self.create_user(principal, account(RoleKey::User)),
            (None, _) if self.config.allow_registration => self.insert_user(account(RoleKey::Guest), None),
            (None, Some(_)) => Err(CoreError::Forbidden(Permission::UsersWrite)),
            (None, None) => Err(CoreError::Auth(AuthError::MissingCredentials)),
        }
    }

    /// Changes a user as an administrator (alist's admin API): `users:write` always, then as
    /// [`Services::edit_user`].
    pub fn administer_user(&self, principal: &Principal, id: UserId, changes: UserChanges) -> Result<User, CoreError> {
        policy::require(principal, Permission::UsersWrite)?;
        self.edit_user(principal, id, changes)
    }

    /// Changes a user in one transaction. One's own profile and password are one's own to
    /// change; a name, the disabled flag and the rank need `users:write`; another user's
    /// account needs [`AccountManager`]'s rights; a rank change follows the grant rules.
    pub fn edit_user(&self, principal: &Principal, id: UserId, changes: UserChanges) -> Result<User, CoreError> {
        if id != principal.user_id {
            policy::require(principal, Permission::UsersWrite)?;
        }
        let stored = self.find_user(UserRef::Id(id))?;
        let manager = AccountManager::new(principal, &stored)?;
        let mut changed = stored.clone();
        if let Some(username) = changes.username.filter(|name| *name != stored.username) {
            policy::require(principal, Permission::UsersWrite)?;
            changed.username = username;
        }
        if let Some(disabled) = changes.disabled.filter(|disabled| *disabled != stored.disabled) {
            policy::require(principal, Permission::UsersWrite)?;
            changed.disabled = disabled;
        }
        changes.profile.apply(&mut changed.profile);
        let roles = match changes.role.filter(|role| *role != rank(&stored)) {
            Some(role) => {
                policy::require(principal, Permission::UsersWrite)?;
                Some(self.rebind_built_in(principal, &stored, role)?)
            }
            None => None,
        };
        if changed.username != stored.username
            && let Some(holder) =
                self.store().find_user(changed.username.as_str()).map_err(CoreError::store(Entity::User))?
            && holder.id != stored.id
        {
            return Err(CoreError::Conflict(Conflict::UsernameTaken));
        }
        if let Some(password) = &changes.password {
            self.auth.check_new_password(changed.username.as_str(), password)?;
        }
        let password_hash = changes.password.as_ref().map(|password| self.auth.hash_password(password)).transpose()?;
        let own = manager.is_own();
        let password = password_hash.as_deref().map(|password_hash| PasswordChange {
            password_hash,
            keep_token: if own { principal.token_identifier() } else { None },
            keep_login: if own { principal.login_id() } else { None },
        });
        let fields = (changed != stored).then_some(&changed);
        if fields.is_none() && roles.is_none() && password.is_none() {
            return Ok(stored);
        }
        let user_changed = fields.is_some() || roles.is_some();
        let change = UserChange { id, fields, roles: roles.as_deref(), password };
        let updated = self.write_user(principal, &change)?;
        if user_changed {
            let event = AuditEvent::UserChanged {
                old: Box::new(UserSnapshot::from(&stored)),
                new: Box::new(UserSnapshot::from(&updated)),
            };
            self.audit(principal, event);
        }
        if let (Some(password), Some(password_hash)) = (&changes.password, &password_hash) {
            self.audit(principal, AuditEvent::PasswordChanged { user: updated.username.as_str().to_owned() });
            self.auth.remember_alist_hash(id, password_hash, password).map_err(CoreError::auth(Entity::User))?;
        }
        Ok(updated)
    }

    /// The role ids `user` holds once its built-in role is `wanted`, checked by the grant rules.
    fn rebind_built_in(&self, principal: &Principal, user: &User, wanted: RoleKey) -> Result<Vec<RoleId>, CoreError> {
        let roles = self.store().list_roles().map_err(CoreError::store(Entity::Role))?;
        let is_built_in_rank = |role: &Role| {
            role.built_in && [RoleKey::Admin, RoleKey::User, RoleKey::Guest].iter().any(|key| role.key == key.as_str())
        };
        let held: Vec<&Role> = roles.iter().filter(|role| user.roles.contains(&role.key)).collect();
        let wanted_role = roles
            .iter()
            .find(|role| role.built_in && role.key == wanted.as_str())
            .ok_or(CoreError::Conflict(Conflict::UnknownRole))?;
        let removed: Vec<&Role> =
            held.iter().copied().filter(|role| is_built_in_rank(role) && role.id != wanted_role.id).collect();
        let added: Vec<&Role> =
            if held.iter().any(|role| role.id == wanted_role.id) { vec![] } else { vec![wanted_role] };
        policy::may_bind(principal, &added, &removed)?;
        let mut ids: Vec<RoleId> = held.iter().filter(|role| !is_built_in_rank(role)).map(|role| role.id).collect();
        ids.push(wanted_role.id);
        Ok(ids)
    }

    /// Sets a user's password: one's own, or another's as its [`AccountManager`]. The user's
    /// other tokens and logins end; the caller's own survive when it changes its own.
    pub fn change_password(
        &self,
        principal: &Principal,
        target: UserRef<'_>,
        password: &Password,
    ) -> Result<User, CoreError> {
        if !target.is(principal) {
            policy::require(principal, Permission::UsersWrite)?;
        }
        let user = self.find_user(target)?;
        let manager = AccountManager::new(principal, &user)?;
        self.auth.check_new_password(user.username.as_str(), password)?;
        let password_hash = self.auth.hash_password(password)?;
        let own = manager.is_own();
        let keep_token = if own { principal.token_identifier() } else { None };
        let keep_login = if own { principal.login_id() } else { None };
        self.store()
            .set_password(user.id, &password_hash, keep_token, keep_login)
            .map_err(CoreError::store(Entity::User))?;
        self.auth.remember_alist_hash(user.id, &password_hash, password)?;
        self.audit(principal, AuditEvent::PasswordChanged { user: user.username.as_str().to_owned() });
        Ok(user)
    }

    /// Deletes a user, its tokens and bindings: `users:write` and [`AccountManager`]'s rights.
    /// The last enabled administrator stays.
    pub fn delete_user(&self, principal: &Principal, target: UserRef<'_>) -> Result<User, CoreError> {
        policy::require(principal, Permission::UsersWrite)?;
        let user = self.find_user(target)?;
        AccountManager::new(principal, &user)?;
        let work = self.store().begin()?;
        let before = work.find_user_by_id(user.id)?.ok_or(CoreError::NotFound(Entity::User))?;
        AccountManager::new(principal, &before)?;
        work.remove_user(user.id).map_err(CoreError::store(Entity::User))?;
        rules::keeps_an_administrator(&*work, &before, None)?;
        work.commit()?;
        self.audit(principal, AuditEvent::UserDeleted { old: Box::new(UserSnapshot::from(&before)) });
        Ok(user)
    }

    /// Replaces the roles bound to a user: `roles:write`, and every role added or removed
    /// grants only what the caller holds. The last enabled administrator keeps the admin role.
    pub fn bind_roles(&self, principal: &Principal, id: UserId, wanted: &[RoleId]) -> Result<User, CoreError> {
        RoleGranter::new(principal)?;
        let user = self.find_user(UserRef::Id(id))?;
        let roles = self.store().list_roles().map_err(CoreError::store(Entity::Role))?;
        if let Some(unknown) = wanted.iter().find(|id| !roles.iter().any(|role| role.id == **id)) {
            return Err(CoreError::UnknownRole(*unknown));
        }
        let added: Vec<&Role> =
            roles.iter().filter(|role| wanted.contains(&role.id) && !user.roles.contains(&role.key)).collect();
        let removed: Vec<&Role> =
            roles.iter().filter(|role| !wanted.contains(&role.id) && user.roles.contains(&role.key)).collect();
        policy::may_bind(principal, &added, &removed)?;
        let changed = !added.is_empty() || !removed.is_empty();
        let updated =
            self.write_user(principal, &UserChange { id, fields: None, roles: Some(wanted), password: None })?;
        if changed {
            let event = AuditEvent::UserChanged {
                old: Box::new(UserSnapshot::from(&user)),
                new: Box::new(UserSnapshot::from(&updated)),
            };
            self.audit(principal, event);
        }
        Ok(updated)
    }

    /// Writes `change` in one unit of work: inside it, the caller must still be allowed to
    /// manage the user as it now is, and an enabled administrator must remain after the write
    /// (the write lock is held from the first read, so concurrent requests cannot both pass).
    fn write_user(&self, principal: &Principal, change: &UserChange<'_>) -> Result<User, CoreError> {
        let work = self.store().begin()?;
        let before = work.find_user_by_id(change.id)?.ok_or(CoreError::NotFound(Entity::User))?;
        AccountManager::new(principal, &before)?;
        let after = work.write_user(change).map_err(CoreError::store(Entity::User))?;
        rules::keeps_an_administrator(&*work, &before, Some(&after))?;
        work.commit()?;
        Ok(after)
    }

    /// Turns a user's two-factor authentication off: `users:write` and [`AccountManager`]'s
    /// rights.
    pub fn cancel_two_factor(&self, principal: &Principal, id: UserId) -> Result<(), CoreError> {
        policy::require(principal, Permission::UsersWrite)?;
        let user = self.find_user(UserRef::Id(id))?;
        AccountManager::new(principal, &user)?;
        self.auth.disable_totp(user.id).map_err(CoreError::auth(Entity::User))?;
        self.audit(principal, AuditEvent::TwoFactorDisabled { user: user.username.as_str().to_owned() });
        Ok(())
    }
}
