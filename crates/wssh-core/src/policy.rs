//! The grant rules, stated once. Every use case that gives or takes permissions goes through
//! the capability handles here: a [`RoleGranter`] exists only for a principal that holds
//! `roles:write`, and an [`AccountManager`] only for a principal allowed to manage a given
//! account, so no code can reach those changes unchecked.
//!
//! * Granting never gives more than the granter holds: a role bound or unbound, a role's
//!   permissions added or removed, a role created, enabled or deleted — each permission
//!   concerned must be one the granter holds (an administrator holds all).
//! * Binding any role other than the built-in `user` and `guest` (the roles new accounts
//!   get by default) needs `roles:write`.
//! * Managing another user's account (its name, state, password, roles, tokens, two-factor
//!   authentication) needs `users:write` and every permission that user holds: nobody takes
//!   over an account stronger than its own.
//! * A token never carries more than its owner holds, nor more than the token it was minted
//!   with.
//! * A shell on a template that names an OS account (`run_as`) needs `shells:run_as_any`
//!   (administrators hold it); so does creating or changing such a template. Templates without
//!   `run_as` run as the server's own account and need only `sessions:connect`.

use wssh_auth::Principal;
use wssh_domain::{Permission, PermissionSet, Role, RoleKey, SessionSpec, User};

use crate::CoreError;

/// Fails with the first permission of `wanted` that `held` lacks.
pub fn within(held: PermissionSet, wanted: PermissionSet) -> Result<(), CoreError> {
    match wanted.iter().find(|permission| !held.contains(*permission)) {
        Some(missing) => Err(CoreError::Exceeds(missing)),
        None => Ok(()),
    }
}

/// Fails unless `principal` holds `permission`.
pub fn require(principal: &Principal, permission: Permission) -> Result<(), CoreError> {
    if principal.can(permission) { Ok(()) } else { Err(CoreError::Forbidden(permission)) }
}

/// Fails unless `principal` may use `spec`'s OS account: any principal when the template names
/// none, a holder of `shells:run_as_any` when it does.
pub fn may_run_as(principal: &Principal, spec: &SessionSpec) -> Result<(), CoreError> {
    match spec.run_as {
        Some(_) => require(principal, Permission::ShellsRunAsAny),
        None => Ok(()),
    }
}

/// Whether a role is one any account creator may give: the built-in `user` or `guest`.
pub fn is_default_role(role: &Role) -> bool {
    role.built_in && (role.key == RoleKey::User.as_str() || role.key == RoleKey::Guest.as_str())
}

/// Proof that a principal may change what roles grant and who holds them: only
/// [`RoleGranter::new`] makes one, and only for a holder of `roles:write`.
#[derive(Debug, Clone, Copy)]
pub struct RoleGranter<'a> {
    principal: &'a Principal,
}

impl<'a> RoleGranter<'a> {
    /// The granter, when `principal` holds `roles:write`.
    pub fn new(principal: &'a Principal) -> Result<Self, CoreError> {
        require(principal, Permission::RolesWrite)?;
        Ok(RoleGranter { principal })
    }

    /// Succeeds when the granter holds every permission in `permissions`.
    pub fn may_give(&self, permissions: PermissionSet) -> Result<(), CoreError> {
        within(self.principal.permissions, permissions)
    }

    /// Succeeds when changing a set from `before` to `after` adds and removes only
    /// permissions the granter holds.
    pub fn may_change(&self, before: PermissionSet, after: PermissionSet) -> Result<(), CoreError> {
        let added = after.iter().filter(|permission| !before.contains(*permission)).collect();
        let removed = before.iter().filter(|permission| !after.contains(*permission)).collect();
        self.may_give(added)?;
        self.may_give(removed)
    }
}

/// Checks a change of the roles bound to a user: `added` and `removed` roles. Roles other than
/// the default ones need `roles:write`; every role concerned must grant only what `principal`
/// holds.
pub fn may_bind(principal: &Principal, added: &[&Role], removed: &[&Role]) -> Result<(), CoreError> {
    let concerned = || added.iter().chain(removed.iter());
    if concerned().any(|role| !is_default_role(role)) {
        RoleGranter::new(principal)?;
    }
    concerned().try_for_each(|role| within(principal.permissions, role.permissions))
}

/// Proof that a principal may manage one account: its own always, another's with `users:write`
/// and every permission that account holds. Only [`AccountManager::new`] makes one.
#[derive(Debug, Clone, Copy)]
pub struct AccountManager<'a> {
    principal: &'a Principal,
    target: &'a User,
}

impl<'a> AccountManager<'a> {
    /// The manager of `target`'s account, when `principal` may be one.
    pub fn new(principal: &'a Principal, target: &'a User) -> Result<Self, CoreError> {
        if target.id != principal.user_id {
            require(principal, Permission::UsersWrite)?;
            outranks(principal, target)?;
        }
        Ok(AccountManager { principal, target })
    }

    /// Whether the account is the principal's own.
    pub fn is_own(&self) -> bool {
        self.target.id == self.principal.user_id
    }

    /// The principal acting.
    pub fn principal(&self) -> &'a Principal {
        self.principal
    }

    /// The account managed.
    pub fn target(&self) -> &'a User {
        self.target
    }
}

/// Fails unless `principal` holds every permission `target` holds.
pub fn outranks(principal: &Principal, target: &User) -> Result<(), CoreError> {
    match target.permissions.iter().find(|permission| !principal.can(*permission)) {
        Some(missing) => Err(CoreError::Outranked(missing)),
        None => Ok(()),
    }
}

/// What a token minted or changed by `principal` for `owner` may carry, given what was asked
/// (`None`: all of its owner's): never more than the owner holds, and, when the principal came
/// with a token, never more than that token.
pub fn token_permissions(
    principal: &Principal,
    owner: &User,
    requested: Option<PermissionSet>,
) -> Option<PermissionSet> {
    let requested = match principal.token_identifier() {
        Some(_) => Some(requested.unwrap_or_else(PermissionSet::all).intersection(principal.permissions)),
        None => requested,
    };
    requested.map(|set| set.intersection(owner.permissions))
}
