//! The auth error.

use wssh_domain::{Permission, ValidationError};
use wssh_store::StoreError;

/// Why a request could not be authenticated or authorised.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Nothing that looks like credentials was presented.
    #[error("missing credentials")]
    MissingCredentials,
    /// The credentials could not be read (bad base64, bad JSON, unknown scheme).
    #[error("invalid token")]
    MalformedCredentials,
    /// Unknown user, wrong password, unknown, expired or revoked token, disabled user: one
    /// answer for all, so that a caller learns nothing about which.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The password was right, but the user has two-factor authentication on and sent no code.
    #[error("two-factor code required")]
    OtpRequired,
    /// The two-factor code was wrong, expired or already used.
    #[error("invalid two-factor code")]
    InvalidOtp,
    /// A refresh token was presented from another address or user agent than the login's;
    /// the login has been revoked.
    #[error("refresh token used from another client")]
    ClientMismatch,
    /// Too many failed logins for this user or address; try again after this many seconds.
    #[error("too many failed login attempts, try again later")]
    TooManyAttempts {
        /// Seconds until the oldest counted failure leaves the window.
        retry_after_seconds: u64,
    },
    /// Password hashing is saturated; try again after this many seconds.
    #[error("the server is busy, try again shortly")]
    Busy {
        /// Seconds to wait.
        retry_after_seconds: u64,
    },
    /// Authenticated, but the principal lacks this permission.
    #[error("permission {0} required")]
    Forbidden(Permission),
    /// Authenticated, but acting on another user's resources needs this permission.
    #[error("not allowed to act for another user")]
    NotOwner,
    /// A value was refused.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A new password breaks the password policy; the reason says which rule.
    #[error("password {0}")]
    WeakPassword(String),
    /// The password hasher failed.
    #[error("password hashing failed")]
    Hashing,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
