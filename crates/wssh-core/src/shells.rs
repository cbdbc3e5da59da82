//! Who may do what with a live shell. The shells themselves live in the transport (they are
//! connections and processes); the rules about them are stated here, once.
//!
//! * The owner may attach in either mode while they hold `sessions:connect`, and keeps their
//!   shells only while they do (and stay enabled).
//! * Anyone else needs `shells:control` to attach in control mode, and `shells:observe` or
//!   `shells:control` to watch.
//! * The owner, and whoever holds `users:write` (administrators), may end a shell and manage
//!   its share links; others see in listings only the shells they may attach to.

use wssh_auth::Principal;
use wssh_domain::{Permission, UserId};

/// How a client takes part in a shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellMode {
    /// Input and resizes.
    Control,
    /// Output only.
    Observe,
}

/// Whether `principal` may attach in `mode` to a shell owned by `owner`.
pub fn may_attach(principal: &Principal, owner: UserId, mode: ShellMode) -> bool {
    if principal.user_id == owner {
        return principal.can(Permission::SessionsConnect);
    }
    match mode {
        ShellMode::Control => principal.can(Permission::ShellsControl),
        ShellMode::Observe => principal.can(Permission::ShellsObserve) || principal.can(Permission::ShellsControl),
    }
}

/// Whether `principal` may end every user's shells and manage their share links.
pub fn oversees(principal: &Principal) -> bool {
    principal.can(Permission::UsersWrite)
}

/// Whether `principal` may end a shell owned by `owner` and manage its share links.
pub fn may_manage(principal: &Principal, owner: UserId) -> bool {
    principal.user_id == owner || oversees(principal)
}

/// Whether `principal` sees a shell owned by `owner` in listings.
pub fn may_see(principal: &Principal, owner: UserId) -> bool {
    may_manage(principal, owner) || may_attach(principal, owner, ShellMode::Observe)
}

/// Fails unless `principal` may use the shell API at all: `sessions:connect`.
pub fn require_shell_user(principal: &Principal) -> Result<(), crate::CoreError> {
    crate::policy::require(principal, Permission::SessionsConnect)
}

/// The permission an owner must keep to keep their shells.
pub const OWNER_KEEPS_WITH: Permission = Permission::SessionsConnect;

#[cfg(test)]
mod tests {
    use super::*;
    use wssh_auth::AuthMethod;
    use wssh_domain::{PermissionSet, Username};

    fn principal(id: i64, permissions: &[Permission]) -> Principal {
        Principal {
            user_id: UserId(id),
            username: Username::parse(&format!("user{id}")).unwrap(),
            permissions: permissions.iter().copied().collect::<PermissionSet>(),
            method: AuthMethod::Password,
            expires_at: None,
        }
    }

    #[test]
    fn attaching_follows_ownership_and_the_shell_permissions() {
        use Permission::*;
        use ShellMode::*;
        let owner = UserId(1);
        let cases: &[(i64, &[Permission], ShellMode, bool)] = &[
            (1, &[SessionsConnect], Control, true),
            (1, &[SessionsConnect], Observe, true),
            (1, &[], Observe, false),
            (2, &[SessionsConnect], Observe, false),
            (2, &[ShellsObserve], Observe, true),
            (2, &[ShellsObserve], Control, false),
            (2, &[ShellsControl], Control, true),
            (2, &[ShellsControl], Observe, true),
        ];
        for (id, permissions, mode, allowed) in cases {
            assert_eq!(
                may_attach(&principal(*id, permissions), owner, *mode),
                *allowed,
                "{id} {permissions:?} {mode:?}"
            );
        }
        assert!(may_manage(&principal(1, &[]), owner));
        assert!(may_manage(&principal(2, &[UsersWrite]), owner));
        assert!(!may_manage(&principal(2, &[ShellsControl]), owner));
        assert!(may_see(&principal(2, &[ShellsObserve]), owner));
        assert!(!may_see(&principal(2, &[SessionsConnect]), owner));
    }
}
