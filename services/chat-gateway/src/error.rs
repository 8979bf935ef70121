//! [`ChatError`]: everything that can go wrong in chat-gateway, and its two
//! mappings, written once each: to a gRPC status (agents, integrations) and to
//! a member protocol error code (the WebSocket).

use tonic::Status;

use crate::protocol::{ErrorCode, FrameError};

/// What can go wrong in a chat request.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The request is malformed; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// A member frame was refused.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// No tenant has this chat widget key.
    #[error("unknown widget key: check the script tag's data-key")]
    UnknownWidget,
    /// The page's origin may not use this widget key.
    #[error("origin not allowed for this widget key: add it to the widget's allowed_origins")]
    OriginNotAllowed,
    /// The resume token is unknown, wrong or expired.
    #[error("resume token unknown or expired; start a new chat")]
    ResumeFailed,
    /// The agent's credentials are wrong.
    #[error("{0}")]
    Unauthenticated(String),
    /// No chat with this interaction id (or it is no longer retained).
    #[error("chat {0} not found (unknown id, or past the tenant's retention)")]
    NotFound(String),
    /// The chat is over.
    #[error("this chat is closed; start a new one")]
    Closed,
    /// The transcript holds the most entries allowed.
    #[error("this chat has reached its size limit; start a new chat")]
    TranscriptFull,
    /// The interaction exists but is not a chat.
    #[error("interaction {0} is not a chat")]
    NotChat(String),
    /// The agent does not (or no longer) hold the chat.
    #[error(
        "chat {0} is not assigned to you (accept its offer first; after a transfer the next agent has it)"
    )]
    NotHolder(String),
    /// The agent has not joined the chat on this stream.
    #[error("chat {0} is not joined on this stream; send `join` first")]
    NotJoined(String),
    /// The agent already holds as many chats as the tenant allows.
    #[error("you already have {0} chats open, your chat capacity; end one first")]
    AtCapacity(u32),
    /// No router API key is configured for the tenant.
    #[error(
        "chat is not available for tenant {0}: no router API key configured (--router-api-keys)"
    )]
    NoRouterKey(String),
    /// The router refused or failed a call.
    #[error("router: {}", .0.message())]
    Router(Status),
    /// Redis failed.
    #[error("chat store unavailable: {0}")]
    Redis(#[from] redis::RedisError),
    /// NATS failed.
    #[error("message relay unavailable: {0}")]
    Nats(String),
    /// The gateway is shutting down.
    #[error("the chat gateway is shutting down; reconnect")]
    ShuttingDown,
}

impl ChatError {
    /// The member protocol's error code for this error.
    pub fn frame_code(&self) -> ErrorCode {
        match self {
            ChatError::Frame(frame) => frame.code,
            ChatError::Invalid(_) | ChatError::NotChat(_) => ErrorCode::InvalidFrame,
            ChatError::Closed | ChatError::NotFound(_) => ErrorCode::ChatClosed,
            ChatError::TranscriptFull => ErrorCode::TooLong,
            ChatError::NoRouterKey(_)
            | ChatError::Redis(_)
            | ChatError::Nats(_)
            | ChatError::ShuttingDown => ErrorCode::Unavailable,
            ChatError::Router(status) if status.code() == tonic::Code::InvalidArgument => {
                ErrorCode::InvalidFrame
            }
            ChatError::Router(_) => ErrorCode::Unavailable,
            ChatError::UnknownWidget | ChatError::OriginNotAllowed | ChatError::ResumeFailed => {
                ErrorCode::InvalidFrame
            }
            ChatError::Unauthenticated(_)
            | ChatError::NotHolder(_)
            | ChatError::NotJoined(_)
            | ChatError::AtCapacity(_) => ErrorCode::Internal,
        }
    }
}

impl From<ChatError> for Status {
    fn from(error: ChatError) -> Status {
        let message = error.to_string();
        match error {
            ChatError::Invalid(_) | ChatError::Frame(_) | ChatError::NotChat(_) => {
                Status::invalid_argument(message)
            }
            ChatError::Unauthenticated(_) | ChatError::ResumeFailed => {
                Status::unauthenticated(message)
            }
            ChatError::UnknownWidget | ChatError::OriginNotAllowed => {
                Status::permission_denied(message)
            }
            ChatError::NotFound(_) => Status::not_found(message),
            ChatError::Closed | ChatError::NotHolder(_) | ChatError::NotJoined(_) => {
                Status::failed_precondition(message)
            }
            ChatError::TranscriptFull | ChatError::AtCapacity(_) => {
                Status::resource_exhausted(message)
            }
            ChatError::Router(status) => Status::new(status.code(), message),
            ChatError::NoRouterKey(_)
            | ChatError::Redis(_)
            | ChatError::Nats(_)
            | ChatError::ShuttingDown => Status::unavailable(message),
        }
    }
}
