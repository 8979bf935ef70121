//! email-intake's errors and their one mapping to gRPC status codes.

use tonic::Status;

/// What can go wrong taking, threading or answering an email.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// The request is malformed; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// The message is larger than the configured limit.
    #[error("the message is {size} bytes; the limit is {limit} bytes")]
    TooBig { size: usize, limit: usize },
    /// The message could not be stored durably; the sender should retry.
    #[error("could not store the message durably (NATS JetStream): {0}; retry later")]
    NotDurable(String),
    /// The caller's tenant configuration is not loaded.
    #[error("tenant configuration is not available: {0}")]
    UnknownTenant(String),
    /// No email thread for this interaction (not an email, or past its retention).
    #[error(
        "no email thread for interaction {0}: it is not an email interaction or its retention has passed"
    )]
    NoThread(String),
    /// Redis failed.
    #[error("email store unavailable (Redis): {0}")]
    Store(String),
    /// The router refused or could not be reached.
    #[error("router call failed: {0}")]
    Router(Status),
    /// email-intake has no router API key for this tenant (`--router-api-keys`).
    #[error("no router API key for tenant {0}: add `{0}=<key>` to CARELINE_EMAIL_ROUTER_API_KEYS")]
    NoRouterKey(String),
    /// Publishing to the bus failed.
    #[error("publishing failed (NATS JetStream): {0}")]
    Bus(String),
}

impl EmailError {
    /// Whether trying again later may succeed (a peer was away).
    pub fn is_transient(&self) -> bool {
        match self {
            EmailError::NotDurable(_)
            | EmailError::Store(_)
            | EmailError::Bus(_)
            | EmailError::NoRouterKey(_) => true,
            EmailError::Router(status) => matches!(
                status.code(),
                tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::ResourceExhausted
                    | tonic::Code::Aborted
                    | tonic::Code::Internal
                    | tonic::Code::Unknown
                    | tonic::Code::Unauthenticated
                    | tonic::Code::PermissionDenied
            ),
            EmailError::Invalid(_)
            | EmailError::TooBig { .. }
            | EmailError::UnknownTenant(_)
            | EmailError::NoThread(_) => false,
        }
    }
}

impl From<redis::RedisError> for EmailError {
    fn from(error: redis::RedisError) -> Self {
        EmailError::Store(error.to_string())
    }
}

impl From<EmailError> for Status {
    fn from(error: EmailError) -> Status {
        let message = error.to_string();
        match error {
            EmailError::Invalid(_) => Status::invalid_argument(message),
            EmailError::TooBig { .. } => Status::out_of_range(message),
            EmailError::NotDurable(_) | EmailError::Store(_) | EmailError::Bus(_) => {
                Status::unavailable(message)
            }
            EmailError::UnknownTenant(_) => Status::permission_denied(message),
            EmailError::NoThread(_) => Status::not_found(message),
            EmailError::NoRouterKey(_) => Status::failed_precondition(message),
            EmailError::Router(status) => Status::new(status.code(), message),
        }
    }
}
