//! The authenticated principal and its permission checks.

use wssh_domain::{LoginId, Permission, PermissionSet, Timestamp, TokenIdentifier, UserId, Username};

use crate::AuthError;

/// How a principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// With a password.
    Password,
    /// With an access token.
    Token(TokenIdentifier),
    /// With an access JWT of a login.
    Login(LoginId),
}

/// An authenticated user, with the permissions this request may use: the user's, narrowed by
/// the token's own when a token was used.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user's id.
    pub user_id: UserId,
    /// The user's name.
    pub username: Username,
    /// The permissions in force for this request.
    pub permissions: PermissionSet,
    /// How it authenticated.
    pub method: AuthMethod,
    /// When the credential stops working by itself (a token's or a login's expiry); `None`
    /// for a password or a credential without one.
    pub expires_at: Option<Timestamp>,
}

impl Principal {
    /// Succeeds when the principal holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), AuthError> {
        if self.permissions.contains(permission) { Ok(()) } else { Err(AuthError::Forbidden(permission)) }
    }

    /// Succeeds when the principal may act on resources owned by `owner`: always for its own,
    /// and with `permission` (a `users:*` one) for anyone else's.
    pub fn require_owner_or(&self, owner: UserId, permission: Permission) -> Result<(), AuthError> {
        if owner == self.user_id || self.permissions.contains(permission) { Ok(()) } else { Err(AuthError::NotOwner) }
    }

    /// Whether the credential it came with ran out by itself by `now` (see `expires_at`).
    pub fn has_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|expiry| expiry <= now)
    }

    /// Whether the principal holds `permission`.
    pub fn can(&self, permission: Permission) -> bool {
        self.permissions.contains(permission)
    }

    /// The login whose access JWT this request came with, if any.
    pub fn login_id(&self) -> Option<&LoginId> {
        match &self.method {
            AuthMethod::Login(login) => Some(login),
            AuthMethod::Password | AuthMethod::Token(_) => None,
        }
    }

    /// The identifier of the token this request came with, if any.
    pub fn token_identifier(&self) -> Option<&TokenIdentifier> {
        match &self.method {
            AuthMethod::Token(identifier) => Some(identifier),
            AuthMethod::Password | AuthMethod::Login(_) => None,
        }
    }
}
