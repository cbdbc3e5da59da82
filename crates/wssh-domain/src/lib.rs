//! The domain model of wssh: the nouns every other crate talks about.
//!
//! Users and their password hashes, access tokens, shell sessions (the go_ws_sh "session": a
//! named command template), roles and permissions. Constructors validate, so a value of one of
//! these types is always well formed. This crate does no I/O and knows nothing about HTTP,
//! SQL or PTYs.

pub mod audit;
mod login;
mod permission;
mod recording;
mod role;
mod session;
mod ssh_key;
mod time_format;
mod token;
mod user;

pub use login::{Login, LoginClient, LoginId};
pub use permission::{Permission, PermissionSet, RoleKey, UnknownPermission};
pub use recording::{Recording, RecordingQuery};
pub use role::{NewRole, Role, RoleId, validate_role_key, validate_role_name};
pub use session::{Session, SessionName, SessionSpec};
pub use ssh_key::{NewSshKey, SshKey};
pub use time_format::Timestamp;
pub use token::{AccessToken, NewAccessToken, TokenIdentifier, TokenSpec};
pub use user::{NewUser, Password, User, UserId, UserProfile, Username};

/// Why a value was refused by a domain constructor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct ValidationError {
    /// The field that was refused, as the API names it (`username`, `session.name`, …).
    pub field: &'static str,
    /// What is wrong with it, in lowercase words.
    pub reason: &'static str,
}

impl ValidationError {
    /// A refusal of `field` for `reason`.
    pub const fn new(field: &'static str, reason: &'static str) -> Self {
        Self { field, reason }
    }
}

/// Checks a short human-facing name: not empty, at most `max` characters, no control
/// characters and no white space at either end.
fn check_name(field: &'static str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(field, "is empty"));
    }
    if value.chars().count() > max {
        return Err(ValidationError::new(field, "is too long"));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(field, "contains a control character"));
    }
    if value.trim() != value {
        return Err(ValidationError::new(field, "starts or ends with white space"));
    }
    Ok(())
}
