//! Access tokens: a public identifier, a secret shown once and stored only as a hash.

use std::fmt;

use crate::{PermissionSet, Timestamp, UserId, Username};

/// The public identifier of an access token, a decimal string as go_ws_sh uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenIdentifier(pub String);

impl TokenIdentifier {
    /// The identifier as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored access token. It holds the secret's hash, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// Public identifier.
    pub identifier: TokenIdentifier,
    /// The owner.
    pub user_id: UserId,
    /// The owner's name.
    pub username: Username,
    /// Free text chosen by the owner (go_ws_sh's front end puts the browser's user agent here).
    pub description: String,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    /// The token's own permissions; `None` means all of its owner's.
    pub permissions: Option<PermissionSet>,
    /// When it stops working; `None` means never.
    pub expires_at: Option<Timestamp>,
    /// The application it was minted under (seed 002's `appKey`); `None` for go_ws_sh's.
    pub app_key: Option<String>,
    /// A short title.
    pub title: String,
    /// Free-form tags.
    pub tags: String,
    /// A disabled token is refused until enabled again.
    pub enabled: bool,
    /// When it was minted.
    pub created_at: Timestamp,
    /// When it was last changed.
    pub updated_at: Timestamp,
}

impl AccessToken {
    /// Whether the token has expired at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|expiry| expiry <= now)
    }

    /// Whether the token may be used at `now`: enabled and not expired.
    pub fn is_usable(&self, now: Timestamp) -> bool {
        self.enabled && !self.is_expired(now)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("identifier", &self.identifier)
            .field("username", &self.username)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What it takes to store a newly minted token.
#[derive(Clone)]
pub struct NewAccessToken {
    /// Public identifier.
    pub identifier: TokenIdentifier,
    /// The owner.
    pub user_id: UserId,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    /// Everything else about it.
    pub spec: TokenSpec,
}

/// What a client chooses about a token it asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenSpec {
    /// Free text.
    pub description: String,
    /// The token's own permissions; `None` means all of its owner's.
    pub permissions: Option<PermissionSet>,
    /// When it stops working; `None` means never.
    pub expires_at: Option<Timestamp>,
    /// The application it is minted under; `None` for go_ws_sh's.
    pub app_key: Option<String>,
    /// A short title.
    pub title: String,
    /// Free-form tags.
    pub tags: String,
}
