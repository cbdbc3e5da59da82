//! Roles: a named set of permissions bound to users. Three are built in (`admin`, `user`,
//! `guest`); administrators may add their own.

use crate::{PermissionSet, RoleKey, Timestamp, ValidationError, check_name};

/// The database id of a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleId(pub i64);

/// A stored role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Database id.
    pub id: RoleId,
    /// Unique key, as users' `roles` list it (`admin`, `ops`, …).
    pub key: String,
    /// Display name.
    pub name: String,
    /// Display order.
    pub sort: i64,
    /// A disabled role grants nothing.
    pub disabled: bool,
    /// Free-text remark.
    pub remark: String,
    /// One of the three built-in roles, which cannot be deleted or renamed.
    pub built_in: bool,
    /// What the role grants.
    pub permissions: PermissionSet,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last changed.
    pub updated_at: Timestamp,
}

impl Role {
    /// Whether this is the built-in `admin` role, which always holds every permission.
    pub fn is_admin(&self) -> bool {
        self.built_in && self.key == RoleKey::Admin.as_str()
    }
}

/// What it takes to create a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRole {
    /// Unique key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Display order.
    pub sort: i64,
    /// Created disabled.
    pub disabled: bool,
    /// Free-text remark.
    pub remark: String,
    /// What it grants.
    pub permissions: PermissionSet,
}

/// Validates a role key: 1 to 64 characters of `a-z`, `A-Z`, `0-9`, `_`, `-`, `:` and `.`.
pub fn validate_role_key(key: &str) -> Result<(), ValidationError> {
    check_name("role_key", key, 64)?;
    if !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.')) {
        return Err(ValidationError::new("role_key", "may hold only letters, digits, '_', '-', ':' and '.'"));
    }
    Ok(())
}

/// Validates a role's display name: 1 to 64 characters, no control characters.
pub fn validate_role_name(name: &str) -> Result<(), ValidationError> {
    check_name("role_name", name, 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_keys() {
        assert!(validate_role_key("ops").is_ok());
        assert!(validate_role_key("team:ops-1").is_ok());
        assert!(validate_role_key("").is_err());
        assert!(validate_role_key("has space").is_err());
        assert!(validate_role_key(&"k".repeat(65)).is_err());
    }
}
