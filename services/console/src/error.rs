//! The console's errors and their one mapping to gRPC status codes.

use tonic::Status;

/// What can go wrong in the console.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The request is malformed; the message names the field and what to send.
    #[error("{0}")]
    Invalid(String),
    /// The interaction is unknown to the caller's tenant (or another tenant's: same answer).
    #[error("{0}")]
    NotFound(String),
    /// The request is valid but cannot be done in the current state; the message says what to do.
    #[error("{0}")]
    FailedPrecondition(String),
    /// It was done already (one score, one coaching mark per interaction).
    #[error("{0}")]
    AlreadyExists(String),
    /// The event could not be published.
    #[error("the event log (NATS) failed: {0}; retry shortly")]
    Bus(#[from] careline_bus::BusError),
    /// The caller's tenant configuration is not loaded.
    #[error(
        "tenant configuration is not available for {0}; apply it with `careline config apply` and retry"
    )]
    UnknownTenant(String),
    /// Redis failed or is unreachable.
    #[error("the KPI store (Redis) failed: {0}; retry shortly")]
    Redis(#[from] redis::RedisError),
    /// The KPI script answered something it never answers.
    #[error("the KPI script answered unexpectedly: {0}")]
    Script(String),
    /// Replicas kept changing the agent's state at once; the event is retried.
    #[error("agent {0} changed state concurrently too often; the event will be retried")]
    Contended(String),
}

impl ConsoleError {
    /// Whether handling the event again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ConsoleError::Redis(_) | ConsoleError::Contended(_) | ConsoleError::UnknownTenant(_)
        )
    }
}

impl From<ConsoleError> for Status {
    fn from(error: ConsoleError) -> Status {
        let message = error.to_string();
        match error {
            ConsoleError::Invalid(_) => Status::invalid_argument(message),
            ConsoleError::NotFound(_) => Status::not_found(message),
            ConsoleError::FailedPrecondition(_) => Status::failed_precondition(message),
            ConsoleError::AlreadyExists(_) => Status::already_exists(message),
            ConsoleError::Bus(_) => Status::unavailable(message),
            ConsoleError::UnknownTenant(_) => Status::permission_denied(message),
            ConsoleError::Redis(_) | ConsoleError::Contended(_) => Status::unavailable(message),
            ConsoleError::Script(_) => Status::internal(message),
        }
    }
}
