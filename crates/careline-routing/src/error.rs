//! The routing crate's error type and its one mapping to gRPC status codes, which
//! every service (router, presence) uses at its edge.

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
    /// New work is refused for now (events wait in the outbox for NATS); retry shortly.
    #[error("{0}")]
    Unavailable(String),
    /// The queue already holds its configured maximum of waiting contacts.
    #[error(
        "the queue is full: {waiting} contacts wait, its limit is {max}; reach the plan another way (email, the member portal) or try again later"
    )]
    QueueFull { waiting: u64, max: u64 },
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

/// What a client is told when a backend (Redis, NATS) fails: the details go to the log.
const UNAVAILABLE_MESSAGE: &str = "routing state is unavailable right now; retry shortly (a create with the same idempotency key is safe to repeat)";

/// What a client is told when stored state is inconsistent: the details go to the log.
const INTERNAL_MESSAGE: &str = "internal routing error; it has been logged";

impl RoutingError {
    /// The gRPC code of this error: the one table every service uses.
    pub fn code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            RoutingError::NotFound(_) => Code::NotFound,
            RoutingError::FailedPrecondition(_) => Code::FailedPrecondition,
            RoutingError::AlreadyExists(_) => Code::AlreadyExists,
            RoutingError::InvalidArgument(_) => Code::InvalidArgument,
            RoutingError::Unavailable(_) => Code::Unavailable,
            RoutingError::QueueFull { .. } => Code::ResourceExhausted,
            RoutingError::Redis(_) | RoutingError::Bus(_) | RoutingError::Unreachable(_) => {
                Code::Unavailable
            }
            RoutingError::Reply(_) | RoutingError::Corrupt(_) => Code::Internal,
        }
    }

    /// The message a client sees. Errors about the caller's request are returned as they
    /// are; backend failures and inconsistent state are logged here with their details and
    /// the client gets a fixed message, so internals never leak into responses.
    pub fn client_message(&self) -> String {
        match self {
            RoutingError::Redis(_) | RoutingError::Bus(_) | RoutingError::Unreachable(_) => {
                tracing::warn!(error = %self, "routing backend unavailable");
                UNAVAILABLE_MESSAGE.to_string()
            }
            RoutingError::Reply(_) | RoutingError::Corrupt(_) => {
                tracing::error!(error = %self, "routing state is inconsistent");
                INTERNAL_MESSAGE.to_string()
            }
            // Including backpressure (`Unavailable`): the message says why and what to do.
            _ => self.to_string(),
        }
    }
}

impl From<RoutingError> for tonic::Status {
    fn from(error: RoutingError) -> tonic::Status {
        tonic::Status::new(error.code(), error.client_message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_errors_keep_their_message_and_backend_errors_hide_theirs() {
        let cases = [
            (
                RoutingError::NotFound("interaction x not found".into()),
                tonic::Code::NotFound,
                "interaction x not found",
            ),
            (
                RoutingError::FailedPrecondition("offer expired".into()),
                tonic::Code::FailedPrecondition,
                "offer expired",
            ),
            (
                RoutingError::AlreadyExists("key reused".into()),
                tonic::Code::AlreadyExists,
                "key reused",
            ),
            (
                RoutingError::InvalidArgument("no queue q".into()),
                tonic::Code::InvalidArgument,
                "no queue q",
            ),
            (
                RoutingError::Unavailable("events are not reaching NATS: retry shortly".into()),
                tonic::Code::Unavailable,
                "events are not reaching NATS: retry shortly",
            ),
            (
                RoutingError::Unreachable("redis at 10.0.0.7 refused".into()),
                tonic::Code::Unavailable,
                UNAVAILABLE_MESSAGE,
            ),
            (
                RoutingError::Bus("nats 10.0.0.8 timed out".into()),
                tonic::Code::Unavailable,
                UNAVAILABLE_MESSAGE,
            ),
            (
                RoutingError::Corrupt("cl:{acme}:i:1 has no state".into()),
                tonic::Code::Internal,
                INTERNAL_MESSAGE,
            ),
        ];
        for (error, code, message) in cases {
            let status = tonic::Status::from(error);
            assert_eq!(status.code(), code, "{status:?}");
            assert_eq!(status.message(), message, "{status:?}");
        }
    }
}
