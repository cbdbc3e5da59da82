//! Named permissions, sets of them, and the keys of the built-in roles.

use std::fmt;
use std::str::FromStr;

/// One thing a principal may be allowed to do. Every route checks one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// List and read shell sessions.
    SessionsRead,
    /// Create, update, copy, move and delete shell sessions.
    SessionsWrite,
    /// Open a shell on a session over WebSocket.
    SessionsConnect,
    /// List one's own access tokens.
    TokensRead,
    /// Mint, update and revoke one's own access tokens.
    TokensWrite,
    /// Read other users' accounts and tokens.
    UsersRead,
    /// Create, change and delete other users, and their tokens.
    UsersWrite,
    /// Read roles and their permissions.
    RolesRead,
    /// Create, change and delete roles, and bind them to users.
    RolesWrite,
    /// Watch other users' live shells (output only).
    ShellsObserve,
    /// Take part in other users' live shells (input and resizes).
    ShellsControl,
    /// Read the audit log.
    AuditRead,
    /// List, read and delete shell recordings.
    RecordingsRead,
    /// Open shells on templates that run as a named OS account (`run_as`).
    ShellsRunAsAny,
}

impl Permission {
    /// Every permission the server knows, in a stable order.
    pub const ALL: [Permission; 14] = [
        Permission::SessionsRead,
        Permission::SessionsWrite,
        Permission::SessionsConnect,
        Permission::TokensRead,
        Permission::TokensWrite,
        Permission::UsersRead,
        Permission::UsersWrite,
        Permission::RolesRead,
        Permission::RolesWrite,
        Permission::ShellsObserve,
        Permission::ShellsControl,
        Permission::AuditRead,
        Permission::RecordingsRead,
        Permission::ShellsRunAsAny,
    ];

    /// The permission's wire name, e.g. `sessions:read`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Permission::SessionsRead => "sessions:read",
            Permission::SessionsWrite => "sessions:write",
            Permission::SessionsConnect => "sessions:connect",
            Permission::TokensRead => "tokens:read",
            Permission::TokensWrite => "tokens:write",
            Permission::UsersRead => "users:read",
            Permission::UsersWrite => "users:write",
            Permission::RolesRead => "roles:read",
            Permission::RolesWrite => "roles:write",
            Permission::ShellsObserve => "shells:observe",
            Permission::ShellsControl => "shells:control",
            Permission::AuditRead => "audit:read",
            Permission::RecordingsRead => "recordings:read",
            Permission::ShellsRunAsAny => "shells:run_as_any",
        }
    }

    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A permission name that the server does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission {0:?}")]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|permission| permission.as_str() == name)
            .ok_or_else(|| UnknownPermission(name.to_owned()))
    }
}

/// A set of permissions, as small as a `u16`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PermissionSet(u16);

impl PermissionSet {
    /// No permission at all.
    pub const EMPTY: PermissionSet = PermissionSet(0);

    /// Every permission.
    pub const fn all() -> Self {
        let mut bits = 0;
        let mut index = 0;
        while index < Permission::ALL.len() {
            bits |= Permission::ALL[index].bit();
            index += 1;
        }
        PermissionSet(bits)
    }

    /// Whether `permission` is in the set.
    pub const fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    /// The set with `permission` added.
    #[must_use]
    pub const fn with(self, permission: Permission) -> Self {
        PermissionSet(self.0 | permission.bit())
    }

    /// Permissions in both sets.
    #[must_use]
    pub const fn intersection(self, other: PermissionSet) -> Self {
        PermissionSet(self.0 & other.0)
    }

    /// Permissions in either set.
    #[must_use]
    pub const fn union(self, other: PermissionSet) -> Self {
        PermissionSet(self.0 | other.0)
    }

    /// The permissions in the set, in [`Permission::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL.into_iter().filter(move |permission| self.contains(*permission))
    }

    /// The permissions of a built-in role.
    pub const fn of_role(role: RoleKey) -> Self {
        match role {
            RoleKey::Admin => PermissionSet::all(),
            RoleKey::User => PermissionSet::EMPTY
                .with(Permission::SessionsRead)
                .with(Permission::SessionsConnect)
                .with(Permission::TokensRead)
                .with(Permission::TokensWrite),
            RoleKey::Guest => PermissionSet::EMPTY,
        }
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        iter.into_iter().fold(PermissionSet::EMPTY, PermissionSet::with)
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(Permission::as_str)).finish()
    }
}

/// The built-in roles every server has from its first start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleKey {
    /// Every permission.
    Admin,
    /// Reads and connects to sessions, manages its own tokens.
    User,
    /// Nothing beyond signing in.
    Guest,
}

impl RoleKey {
    /// The role's key as stored and shown, e.g. `admin`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RoleKey::Admin => "admin",
            RoleKey::User => "user",
            RoleKey::Guest => "guest",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for permission in Permission::ALL {
            assert_eq!(permission.as_str().parse::<Permission>(), Ok(permission));
        }
        assert!("sessions:fly".parse::<Permission>().is_err());
    }

    #[test]
    fn built_in_roles() {
        let user = PermissionSet::of_role(RoleKey::User);
        assert!(user.contains(Permission::SessionsConnect));
        assert!(!user.contains(Permission::SessionsWrite));
        assert!(!user.contains(Permission::UsersRead));
        assert_eq!(PermissionSet::of_role(RoleKey::Admin).iter().count(), Permission::ALL.len());
        assert_eq!(PermissionSet::of_role(RoleKey::Guest).iter().count(), 0);
        assert_eq!(
            user.intersection(PermissionSet::EMPTY.with(Permission::SessionsRead).with(Permission::UsersWrite)),
            PermissionSet::EMPTY.with(Permission::SessionsRead)
        );
    }
}
