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
}

impl Login {
    /// Whether the login can still be used at `now`.
    pub fn is_active(&self, now: Timestamp) -> bool {
        !self.revoked && now < self.expires_at
    }
}
