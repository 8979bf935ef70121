//! The routing crate's error type.

/// What can go wrong in a routing operation.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// The thing does not exist for this tenant (never revealing other tenants').
    #[error("{0}")]
    NotFound(String),
    /// The operation does not fit the current state (offer expired, not assigned, ...).
    #[error("{0}")]
    FailedPrecondition(String),
    /// An idempotency key was reused for a different request.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request names something the tenant's configuration does not have.
    #[error("{0}")]
    InvalidArgument(String),
    /// A backend could not be reached at start-up.
    #[error("{0}")]
    Unreachable(String),
    /// Redis failed or is unreachable.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A Redis reply had an unexpected shape.
    #[error("unexpected redis reply: {0}")]
    Reply(#[from] redis::ParsingError),
    /// Publishing events failed.
    #[error("event bus: {0}")]
    Bus(String),
    /// Stored data could not be read back (a bug or a foreign writer).
    #[error("corrupt routing state: {0}")]
    Corrupt(String),
}

/// Result alias of this crate.
pub type Result<T, E = RoutingError> = std::result::Result<T, E>;
