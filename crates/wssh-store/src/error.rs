//! The storage error, free of driver types.

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row the operation acts on does not exist.
    #[error("not found")]
    NotFound,
    /// The change would break a uniqueness rule or another invariant; the reason says which.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The database could not be reached, or a stored value could not be read back.
    #[error("storage failure: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub(crate) fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(error))
    }
}
