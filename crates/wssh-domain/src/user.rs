//! Users: a unique name, an argon2id password hash, roles and a disabled flag.

use std::fmt;

use crate::{PermissionSet, RoleKey, Timestamp, ValidationError, check_name};

/// The database id of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

/// A valid user name: 1 to 64 characters, no control characters, no colon (it would break
/// `Authorization: Basic`), no white space at either end.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    /// Validates `value` as a user name.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        check_name("username", value, 64)?;
        if value.contains(':') {
            return Err(ValidationError::new("username", "contains a colon"));
        }
        Ok(Username(value.to_owned()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A plain-text password on its way to being hashed or checked. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The longest password accepted, in bytes; it bounds the work an attacker can ask for.
    pub const MAX_BYTES: usize = 1024;

    /// Validates `value` as a new password: not empty, at most [`Password::MAX_BYTES`].
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        if value.is_empty() {
            return Err(ValidationError::new("password", "is empty"));
        }
        if value.len() > Self::MAX_BYTES {
            return Err(ValidationError::new("password", "is too long"));
        }
        Ok(Password(value.to_owned()))
    }

    /// The secret itself. Call it only to hash or verify.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// What other APIs keep about a user besides its name and password: alist's `base_path`,
/// `permission` and `sso_id`, and seed 004's profile. wssh itself does not interpret them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserProfile {
    /// alist's root directory of the user (default `/`).
    pub base_path: String,
    /// alist's permission bit field, stored and returned as given.
    pub alist_permission: i64,
    /// alist's single-sign-on id.
    pub sso_id: String,
    /// Display name.
    pub nickname: String,
    /// E-mail address.
    pub email: String,
    /// Phone number.
    pub phone: String,
    /// Avatar URL.
    pub avatar: String,
    /// Sex, as free text.
    pub sex: String,
    /// Free-text remark.
    pub remark: String,
}

impl Default for UserProfile {
    fn default() -> Self {
        UserProfile {
            base_path: "/".to_owned(),
            alist_permission: 0,
            sso_id: String::new(),
            nickname: String::new(),
            email: String::new(),
            phone: String::new(),
            avatar: String::new(),
            sex: String::new(),
            remark: String::new(),
        }
    }
}

/// A stored user.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Database id.
    pub id: UserId,
    /// Unique name.
    pub username: Username,
    /// The argon2id PHC string of the password.
    pub password_hash: String,
    /// A disabled user cannot sign in, and its tokens stop working.
    pub disabled: bool,
    /// The keys of the roles bound to the user (`admin`, `user`, `guest` or a custom role).
    pub roles: Vec<String>,
    /// The union of the permissions of the user's enabled roles.
    pub permissions: PermissionSet,
    /// The base32 TOTP secret when two-factor authentication is on.
    pub otp_secret: Option<String>,
    /// Profile fields other APIs expose.
    pub profile: UserProfile,
    /// When the user was created.
    pub created_at: Timestamp,
    /// When the user was last changed.
    pub updated_at: Timestamp,
}

impl User {
    /// Whether the user holds the admin role.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|role| role == RoleKey::Admin.as_str())
    }

    /// Whether two-factor authentication is on.
    pub fn has_otp(&self) -> bool {
        self.otp_secret.is_some()
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("disabled", &self.disabled)
            .field("roles", &self.roles)
            .field("otp", &self.has_otp())
            .finish_non_exhaustive()
    }
}

/// What it takes to create a user.
#[derive(Clone)]
pub struct NewUser {
    /// Unique name.
    pub username: Username,
    /// The argon2id PHC string of the password.
    pub password_hash: String,
    /// The role bound at creation.
    pub role: RoleKey,
    /// Created disabled.
    pub disabled: bool,
    /// Profile fields.
    pub profile: UserProfile,
}

impl NewUser {
    /// An enabled user with an empty profile.
    pub fn new(username: Username, password_hash: String, role: RoleKey) -> Self {
        NewUser { username, password_hash, role, disabled: false, profile: UserProfile::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(Username::parse("admin").is_ok());
        assert!(Username::parse("通鹏").is_ok());
        assert!(Username::parse("").is_err());
        assert!(Username::parse(" admin").is_err());
        assert!(Username::parse("a:b").is_err());
        assert!(Username::parse("a\nb").is_err());
        assert!(Username::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn passwords_never_show_in_debug() {
        let password = Password::parse("hunter2").unwrap();
        assert!(!format!("{password:?}").contains("hunter2"));
        assert!(Password::parse("").is_err());
        assert!(Password::parse(&"x".repeat(Password::MAX_BYTES + 1)).is_err());
    }
}
