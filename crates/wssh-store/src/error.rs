//! The storage error, free of driver types.

/// Which rule a refused change would have broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// Another user has this name.
    #[error("a user with that name already exists")]
    UsernameTaken,
    /// Another role has this key.
    #[error("a role with that key already exists")]
    RoleKeyTaken,
    /// Another session has this name.
    #[error("a session with that name already exists")]
    SessionNameTaken,
    /// The user already has an SSH key with this fingerprint.
    #[error("this key is already registered")]
    SshKeyRegistered,
    /// Another token has this identifier.
    #[error("a token with that identifier already exists")]
    TokenIdentifierTaken,
    /// Another login has this id.
    #[error("a login with that id already exists")]
    LoginIdTaken,
    /// A role named in the change does not exist.
    #[error("the role does not exist")]
    UnknownRole,
    /// The change would delete the last enabled administrator.
    #[error("the last administrator cannot be deleted")]
    LastAdministratorDeleted,
    /// The change would disable the last enabled administrator.
    #[error("the last administrator cannot be disabled")]
    LastAdministratorDisabled,
    /// The change would take the admin role from the last enabled administrator.
    #[error("the last administrator cannot lose the admin role")]
    LastAdministratorDemoted,
    /// A built-in role's key cannot change.
    #[error("a built-in role's key cannot change")]
    BuiltInRoleKey,
    /// A built-in role cannot be deleted.
    #[error("a built-in role cannot be deleted")]
    BuiltInRoleDeleted,
    /// The `admin` role always holds every permission and stays enabled.
    #[error("the admin role always holds every permission")]
    AdminRoleFixed,
    /// The database was written by a newer build.
    #[error("the database is newer than this build of wssh")]
    DatabaseNewer,
}

impl Conflict {
    /// Whether the conflict is a name, key or identifier already taken.
    pub fn is_taken(self) -> bool {
        matches!(
            self,
            Conflict::UsernameTaken
                | Conflict::RoleKeyTaken
                | Conflict::SessionNameTaken
                | Conflict::SshKeyRegistered
                | Conflict::TokenIdentifierTaken
                | Conflict::LoginIdTaken
        )
    }
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row the operation acts on does not exist.
    #[error("not found")]
    NotFound,
    /// The change would break a uniqueness rule or another invariant; the kind says which.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// The database could not be reached, or a stored value could not be read back.
    #[error("storage failure: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// A backend failure wrapping the driver's `error`.
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(error))
    }
}
