//! The service's errors, their one mapping to gRPC status codes, and
//! [`Permanent`]: why an email can never be sent as requested (it goes to the
//! dead letters instead of being retried).

use tonic::Status;

/// What can go wrong in a notifications request or while setting up.
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// The request is malformed; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// No such dead letter for the caller's tenant.
    #[error("{0}")]
    NotFound(String),
    /// Redis or NATS could not be reached; try again.
    #[error("{0}")]
    Unavailable(String),
    /// The configuration cannot work; the message names the setting.
    #[error("{0}")]
    Config(String),
}

impl NotificationError {
    /// A Redis failure, said without the URL (it may carry a password).
    pub fn redis(action: &str, error: &redis::RedisError) -> Self {
        NotificationError::Unavailable(format!("Redis failed to {action}: {error}; try again"))
    }

    /// A NATS failure.
    pub fn nats(action: &str, error: impl std::fmt::Display) -> Self {
        NotificationError::Unavailable(format!("NATS failed to {action}: {error}; try again"))
    }
}

impl From<careline_bus::BusError> for NotificationError {
    fn from(error: careline_bus::BusError) -> Self {
        match error {
            careline_bus::BusError::InvalidSubjectPart { .. } => {
                NotificationError::Invalid(error.to_string())
            }
            error => NotificationError::Unavailable(format!("{error}; try again")),
        }
    }
}

impl From<NotificationError> for Status {
    fn from(error: NotificationError) -> Status {
        let message = error.to_string();
        match error {
            NotificationError::Invalid(_) => Status::invalid_argument(message),
            NotificationError::NotFound(_) => Status::not_found(message),
            NotificationError::Unavailable(_) => Status::unavailable(message),
            NotificationError::Config(_) => Status::failed_precondition(message),
        }
    }
}

/// Why an email cannot be sent as requested: retrying the same request would
/// fail the same way, so it is dead-lettered at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Permanent {
    /// `template` is not one of the known kinds.
    #[error(
        "unknown template {0:?}: use receipt, after_hours, urgent_guidance, agent_reply, survey or outreach"
    )]
    UnknownTemplate(String),
    /// A template failed to render.
    #[error("template failed to render: {0}")]
    Template(String),
    /// `to_address` is not one email address.
    #[error("to_address is not a valid email address")]
    InvalidRecipient,
    /// The tenant has no usable sender address.
    #[error("the tenant has no valid sender address (inbound_email_addresses or contact_email)")]
    InvalidSender,
    /// A Message-ID field is not `local@domain` without spaces or brackets.
    #[error("{0} is not a valid message id (local@domain, no spaces or angle brackets)")]
    InvalidMessageId(&'static str),
    /// The email could not be assembled.
    #[error("the email could not be built: {0}")]
    Build(String),
    /// The SMTP server refused it for good (5xx).
    #[error("the SMTP server refused the email for good ({code})")]
    Refused {
        /// The SMTP reply code.
        code: u16,
    },
    /// Temporary failures went on past the last attempt.
    #[error("gave up after {attempts} attempts (last: {last})")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last temporary failure.
        last: String,
    },
}

impl Permanent {
    /// A short machine-readable reason, safe to log and publish.
    pub fn reason(&self) -> &'static str {
        match self {
            Permanent::UnknownTemplate(_) => "unknown_template",
            Permanent::Template(_) => "template_error",
            Permanent::InvalidRecipient => "invalid_recipient",
            Permanent::InvalidSender => "invalid_sender",
            Permanent::InvalidMessageId(_) => "invalid_message_id",
            Permanent::Build(_) => "build_error",
            Permanent::Refused { .. } => "smtp_permanent",
            Permanent::RetriesExhausted { .. } => "retries_exhausted",
        }
    }

    /// The SMTP reply code behind it, 0 when none.
    pub fn smtp_code(&self) -> u16 {
        match self {
            Permanent::Refused { code } => *code,
            _ => 0,
        }
    }
}
