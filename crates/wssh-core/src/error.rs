//! The service error: why a use case refused, precisely enough for every surface to answer in
//! its own words.

use wssh_auth::AuthError;
use wssh_domain::{Permission, RoleId, ValidationError};
use wssh_store::{Conflict, StoreError};

/// What a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// A user.
    User,
    /// A role.
    Role,
    /// An access token.
    Token,
    /// A session template.
    Session,
    /// An SSH key.
    SshKey,
    /// A shell recording.
    Recording,
    /// Anything else a store found missing.
    Resource,
}

impl Entity {
    /// The entity's name as messages start with it (`User`, `SSH key`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Entity::User => "User",
            Entity::Role => "Role",
            Entity::Token => "Token",
            Entity::Session => "Session",
            Entity::SshKey => "SSH key",
            Entity::Recording => "Recording",
            Entity::Resource => "Resource",
        }
    }
}

/// Why a use case refused.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The caller lacks this permission.
    #[error("permission {0} required")]
    Forbidden(Permission),
    /// The resource belongs to another user, and acting for others needs a permission the
    /// caller lacks.
    #[error("not allowed to act for another user")]
    NotOwner,
    /// The change would grant this permission, which the caller does not hold itself.
    #[error("cannot grant {0}, which you do not hold")]
    Exceeds(Permission),
    /// The target user holds this permission, which the caller does not: managing its account
    /// (its password, tokens, roles, state) would hand the caller more than it holds.
    #[error("the user holds {0}, which you do not")]
    Outranked(Permission),
    /// The thing acted on does not exist.
    #[error("{} not found", .0.as_str())]
    NotFound(Entity),
    /// A role named in a binding does not exist.
    #[error("unknown role id {}", .0.0)]
    UnknownRole(RoleId),
    /// The change breaks a uniqueness rule or an invariant; the kind says which.
    #[error(transparent)]
    Conflict(Conflict),
    /// The request is refused as it stands (for example, two-factor authentication that is
    /// already on, or an initial session that cannot move).
    #[error("{0}")]
    Refused(&'static str),
    /// A value was refused.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Authentication failed (credentials, two-factor codes, lockout) or hashing failed.
    #[error(transparent)]
    Auth(AuthError),
    /// Storage failed (the database could not be reached or read).
    #[error(transparent)]
    Store(StoreError),
}

impl From<AuthError> for CoreError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Forbidden(permission) => CoreError::Forbidden(permission),
            AuthError::NotOwner => CoreError::NotOwner,
            AuthError::Invalid(invalid) => CoreError::Invalid(invalid),
            AuthError::Store(store) => store.into(),
            other => CoreError::Auth(other),
        }
    }
}

impl From<StoreError> for CoreError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(conflict) => CoreError::Conflict(conflict),
            StoreError::NotFound => CoreError::NotFound(Entity::Resource),
            backend @ StoreError::Backend(_) => CoreError::Store(backend),
        }
    }
}

impl CoreError {
    /// Maps a store error of an operation on `entity`: a missing row is `NotFound(entity)`.
    pub(crate) fn store(entity: Entity) -> impl Fn(StoreError) -> CoreError {
        move |error| match error {
            StoreError::NotFound => CoreError::NotFound(entity),
            other => other.into(),
        }
    }

    /// As [`CoreError::store`], for an auth call whose storage failures concern `entity`.
    pub(crate) fn auth(entity: Entity) -> impl Fn(AuthError) -> CoreError {
        move |error| match error {
            AuthError::Store(store) => CoreError::store(entity)(store),
            other => other.into(),
        }
    }
}
