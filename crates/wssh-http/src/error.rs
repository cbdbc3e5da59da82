//! API errors and the one function that turns them into responses.

use http::StatusCode;
use wssh_auth::AuthError;
use wssh_core::{Conflict, CoreError, Entity};

/// An error on its way to the client: a status and a message. Internal causes are logged
/// here and replaced by a generic message, never echoed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The message, without go_ws_sh's `Error: ` prefix.
    pub message: String,
    /// Seconds to wait, for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), retry_after: None }
    }

    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 405.
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
    }

    /// 500 for an internal failure: logs `cause`, tells the client nothing about it.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::MissingCredentials => Self::new(StatusCode::UNAUTHORIZED, "Missing credentials"),
            AuthError::MalformedCredentials => Self::new(StatusCode::UNAUTHORIZED, "Invalid token"),
            AuthError::InvalidCredentials => Self::new(StatusCode::UNAUTHORIZED, "Invalid credentials"),
            AuthError::ClientMismatch => {
                Self::new(StatusCode::FORBIDDEN, "Refresh token used from another client; the login has been revoked")
            }
            AuthError::OtpRequired => Self::new(StatusCode::UNAUTHORIZED, "Two-factor code required"),
            AuthError::InvalidOtp => Self::new(StatusCode::UNAUTHORIZED, "Invalid two-factor code"),
            AuthError::TooManyAttempts { retry_after_seconds } => ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: "Too many failed login attempts, try again later".into(),
                retry_after: Some(retry_after_seconds),
            },
            AuthError::Busy { retry_after_seconds } => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "Too many logins at once, try again shortly".into(),
                retry_after: Some(retry_after_seconds),
            },
            AuthError::Forbidden(permission) => {
                Self::new(StatusCode::FORBIDDEN, format!("Permission denied: {permission} required"))
            }
            AuthError::NotOwner => Self::new(StatusCode::FORBIDDEN, "Permission denied: not your resource"),
            AuthError::Invalid(validation) => Self::bad_request(capitalise(&validation.to_string())),
            AuthError::WeakPassword(reason) => Self::bad_request(format!("Password {reason}")),
            AuthError::Hashing => Self::internal(&"password hashing failed"),
            AuthError::Store(store) => CoreError::from(store).into(),
        }
    }
}

impl From<wssh_domain::ValidationError> for ApiError {
    fn from(error: wssh_domain::ValidationError) -> Self {
        Self::bad_request(capitalise(&error.to_string()))
    }
}

impl From<CoreError> for ApiError {
    fn from(error: CoreError) -> Self {
        match error {
            CoreError::Forbidden(permission) => AuthError::Forbidden(permission).into(),
            CoreError::NotOwner => AuthError::NotOwner.into(),
            CoreError::Exceeds(permission) => Self::new(
                StatusCode::FORBIDDEN,
                format!("Permission denied: cannot grant {permission}, which you do not hold"),
            ),
            CoreError::Outranked(permission) => Self::new(
                StatusCode::FORBIDDEN,
                format!("Permission denied: the user holds {permission}, which you do not"),
            ),
            CoreError::NotFound(entity) => Self::not_found(format!("{} not found", entity.as_str())),
            CoreError::UnknownRole(id) => Self::bad_request(format!("Unknown role id {}", id.0)),
            CoreError::Conflict(conflict) => Self::new(StatusCode::CONFLICT, conflict_message(conflict)),
            CoreError::Refused(reason) => Self::bad_request(reason),
            CoreError::Invalid(validation) => validation.into(),
            CoreError::Auth(auth) => auth.into(),
            CoreError::Store(cause) => Self::internal(&cause),
        }
    }
}

/// What a conflict says to the client.
fn conflict_message(conflict: Conflict) -> String {
    let taken = |entity: Entity| format!("{} already exists", entity.as_str());
    match conflict {
        Conflict::UsernameTaken => taken(Entity::User),
        Conflict::RoleKeyTaken => taken(Entity::Role),
        Conflict::SessionNameTaken => taken(Entity::Session),
        Conflict::TokenIdentifierTaken => taken(Entity::Token),
        Conflict::SshKeyRegistered => "This SSH key is already registered".to_owned(),
        other => capitalise(&other.to_string()),
    }
}
