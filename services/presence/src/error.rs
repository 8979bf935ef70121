//! The presence service's errors and their one mapping to gRPC status codes.

use careline_routing::RoutingError;
use tonic::{Code, Status};

/// What can go wrong in a presence request or an agent session.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    /// The request is malformed; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// Agent credentials were wrong (never saying which part).
    #[error("{0}")]
    Unauthenticated(String),
    /// The thing does not exist for the caller's tenant.
    #[error("{0}")]
    NotFound(String),
    /// The session no longer fits the routing state (ended, replaced, offline).
    #[error("{0}")]
    SessionEnded(String),
    /// The client reads its events too slowly and was cut off.
    #[error("{0}")]
    TooSlow(String),
    /// Too many login attempts for one agent id; retry later.
    #[error("{0}")]
    TooManyLogins(String),
    /// This replica holds as many agent sessions as it may.
    #[error(
        "this presence replica already holds its maximum of {0} agent sessions \
         (CARELINE_PRESENCE_MAX_SESSIONS); reconnect, to be balanced to another replica"
    )]
    TooManySessions(u32),
    /// The server is shutting down.
    #[error("the presence service is shutting down; reconnect to another replica")]
    ShuttingDown,
    /// The caller's tenant configuration is not loaded.
    #[error("tenant configuration is not available: {0}")]
    UnknownTenant(String),
    /// A routing operation failed; mapped by [`RoutingError::code`].
    #[error(transparent)]
    Routing(#[from] RoutingError),
}

impl PresenceError {
    /// The gRPC code of this error.
    pub fn code(&self) -> Code {
        match self {
            PresenceError::Invalid(_) => Code::InvalidArgument,
            PresenceError::Unauthenticated(_) => Code::Unauthenticated,
            PresenceError::NotFound(_) => Code::NotFound,
            PresenceError::SessionEnded(_) => Code::FailedPrecondition,
            PresenceError::TooSlow(_) | PresenceError::TooManyLogins(_) => Code::ResourceExhausted,
            PresenceError::ShuttingDown | PresenceError::TooManySessions(_) => Code::Unavailable,
            PresenceError::UnknownTenant(_) => Code::PermissionDenied,
            PresenceError::Routing(routing) => routing.code(),
        }
    }

    /// The message a client sees: backend details are logged, not returned
    /// (see [`RoutingError::client_message`]).
    pub fn client_message(&self) -> String {
        match self {
            PresenceError::Routing(routing) => routing.client_message(),
            other => other.to_string(),
        }
    }
}

impl From<PresenceError> for Status {
    fn from(error: PresenceError) -> Status {
        Status::new(error.code(), error.client_message())
    }
}
