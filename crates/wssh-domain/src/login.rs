//! Logins: a session of the login API (seed 004), one family of rotating refresh tokens.

use std::fmt;

use crate::{Timestamp, UserId};

/// The public id of a login, carried in its access tokens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LoginId(pub String);

impl LoginId {
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LoginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// Its id.
    pub id: LoginId,
    /// Whose login it is.
    pub user_id: UserId,
    /// When it started.
    pub created_at: Timestamp,
    /// When its refresh tokens stop working.
    pub expires_at: Timestamp,
    /// Ended by logout or by a replayed refresh token.
    pub revoked: bool,
    /// The client the login was made from; its refresh token works only from there.
    pub client: LoginClient,
}

/// The client a login was made from: its address and the hash of its `User-Agent`. Empty
/// fields bind nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginClient {
    /// The client's IP address, as text.
    pub ip: String,
    /// Hex SHA-256 of the client's `User-Agent` header.
    pub user_agent_hash: String,
}

impl Login {
    /// Whether the login can still be used at `now`.
    pub fn is_active(&self, now: Timestamp) -> bool {
        !self.revoked && now < self.expires_at
    }
}
