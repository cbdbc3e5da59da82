//! Roles and what they grant.

use wssh_auth::Principal;
use wssh_domain::audit::{AuditEvent, RoleSnapshot};
use wssh_domain::{NewRole, Permission, PermissionSet, Role, RoleId, validate_role_key, validate_role_name};

use crate::policy::{self, RoleGranter};
use crate::{CoreError, Entity, Services};

/// Changes to a role; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct RoleChanges {
    /// Display name.
    pub name: Option<String>,
    /// Key.
    pub key: Option<String>,
    /// Display order.
    pub sort: Option<i64>,
    /// Disable or enable.
    pub disabled: Option<bool>,
    /// Remark.
    pub remark: Option<String>,
    /// What it grants.
    pub permissions: Option<PermissionSet>,
}

impl Services {
    /// Every role, by sort order then id: `roles:read`.
    pub fn roles(&self, principal: &Principal) -> Result<Vec<Role>, CoreError> {
        policy::require(principal, Permission::RolesRead)?;
        self.store().list_roles().map_err(CoreError::store(Entity::Role))
    }

    /// One role: `roles:read`.
    pub fn role(&self, principal: &Principal, id: RoleId) -> Result<Role, CoreError> {
        policy::require(principal, Permission::RolesRead)?;
        self.find_role(id)
    }

    fn find_role(&self, id: RoleId) -> Result<Role, CoreError> {
        self.store().find_role(id).map_err(CoreError::store(Entity::Role))?.ok_or(CoreError::NotFound(Entity::Role))
    }

    /// Every permission the server knows: `roles:read`.
    pub fn permission_catalogue(&self, principal: &Principal) -> Result<PermissionSet, CoreError> {
        policy::require(principal, Permission::RolesRead)?;
        Ok(PermissionSet::all())
    }

    /// Creates a role: `roles:write`, granting only what the caller holds.
    pub fn create_role(&self, principal: &Principal, role: NewRole) -> Result<Role, CoreError> {
        let granter = RoleGranter::new(principal)?;
        validate_role_name(&role.name)?;
        validate_role_key(&role.key)?;
        granter.may_give(role.permissions)?;
        let created = self.store().create_role(&role).map_err(CoreError::store(Entity::Role))?;
        self.audit(principal, AuditEvent::RoleCreated { new: RoleSnapshot::from(&created) });
        Ok(created)
    }

    /// Changes a role: `roles:write`; the permissions added or removed, and all of them when
    /// the role is enabled or disabled, must be the caller's own.
    pub fn update_role(&self, principal: &Principal, id: RoleId, changes: RoleChanges) -> Result<Role, CoreError> {
        let granter = RoleGranter::new(principal)?;
        if let Some(name) = &changes.name {
            validate_role_name(name)?;
        }
        if let Some(key) = &changes.key {
            validate_role_key(key)?;
        }
        let stored = self.find_role(id)?;
        let mut role = stored.clone();
        if let Some(permissions) = changes.permissions {
            granter.may_change(stored.permissions, permissions)?;
            role.permissions = permissions;
        }
        if let Some(disabled) = changes.disabled.filter(|disabled| *disabled != stored.disabled) {
            granter.may_give(role.permissions)?;
            role.disabled = disabled;
        }
        role.name = changes.name.unwrap_or(role.name);
        role.key = changes.key.unwrap_or(role.key);
        role.sort = changes.sort.unwrap_or(role.sort);
        role.remark = changes.remark.unwrap_or(role.remark);
        let updated = self.store().update_role(&role).map_err(CoreError::store(Entity::Role))?;
        self.audit(
            principal,
            AuditEvent::RoleChanged { old: RoleSnapshot::from(&stored), new: RoleSnapshot::from(&updated) },
        );
        Ok(updated)
    }

    /// Deletes a role and its bindings: `roles:write`, and the role grants only what the caller
    /// holds (taking it away is a change of grants too).
    pub fn delete_role(&self, principal: &Principal, id: RoleId) -> Result<Role, CoreError> {
        let granter = RoleGranter::new(principal)?;
        let role = self.find_role(id)?;
        granter.may_give(role.permissions)?;
        self.store().delete_role(id).map_err(CoreError::store(Entity::Role))?;
        self.audit(principal, AuditEvent::RoleDeleted { old: RoleSnapshot::from(&role) });
        Ok(role)
    }
}
