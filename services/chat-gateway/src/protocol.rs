//! The member WebSocket protocol v1 (`docs/chat-protocol.md`) as types: the
//! frames a member sends ([`ClientFrame`], checked by [`decode`]), the frames
//! the gateway sends ([`ServerFrame`]), error codes and close codes. Pure: no
//! sockets here, so the decoder is unit-tested and fuzzed (`fuzz/`).

use serde::{Deserialize, Serialize};

use crate::limits::{
    MAX_CLIENT_ID_BYTES, MAX_FIRST_NAME_CHARS, MAX_FRAME_BYTES, MAX_TEXT_CHARS, MAX_TOKEN_BYTES,
    MAX_TOPIC_BYTES,
};

/// The WebSocket path of protocol v1.
pub const WS_PATH: &str = "/v1/chat/ws";

/// A frame from the member, as decoded and checked by [`decode`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Start a chat with its first message.
    Start(Start),
    /// A message from the member.
    Message { client_id: String, text: String },
    /// The member is typing.
    Typing,
    /// The member has seen everything up to `up_to`.
    Read { up_to: String },
    /// The member closes the chat.
    End,
    /// Reattach to a chat after a dropped connection.
    Resume {
        token: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
}

/// The `start` frame.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Start {
    /// The widget key (`data-key`).
    pub key: String,
    /// `en` or `es`; absent: detected from the first message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// A topic of the tenant's routing rules (e.g. `billing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// The first message.
    pub text: String,
    /// Client id of the first message.
    pub client_id: String,
}

/// Who wrote a transcript entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Member,
    Agent,
    System,
}

/// A frame to the member.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The chat exists (or was resumed).
    Started {
        conversation_id: String,
        resume_token: String,
        resume_grace_secs: u64,
        resumed: bool,
    },
    /// Waiting for an agent; `None` where the router gives no number.
    Queued {
        position: Option<u32>,
        eta_seconds: Option<u32>,
    },
    /// An agent joined.
    Assigned { agent_first_name: String },
    /// A transcript message.
    Message {
        id: String,
        from: Party,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
        at_ms: i64,
    },
    /// The other side is typing.
    Typing { from: Party },
    /// The agent has seen the member's messages up to `up_to`.
    Read { up_to: String },
    /// The tenant is closed; the chat stays queued.
    AfterHours {
        message: String,
        contact_email: String,
        portal_url: String,
        /// The member may ask for a call-back (`POST /v1/callback`).
        #[serde(default)]
        callback: bool,
    },
    /// The first message looked urgent.
    Emergency {
        reason: String,
        language: String,
        message: String,
        call: String,
        crisis_line: String,
    },
    /// The chat is over.
    Closed { reason: String },
    /// A frame was refused.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
}

impl ServerFrame {
    /// The JSON text of the frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialize")
    }

    /// An `error` frame.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> ServerFrame {
        ServerFrame::Error {
            code,
            message: message.into(),
            client_id: None,
        }
    }
}

/// `error.code` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidJson,
    InvalidFrame,
    NotStarted,
    AlreadyStarted,
    TooLong,
    RateLimited,
    ChatClosed,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The code as sent, for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidFrame => "invalid_frame",
            ErrorCode::NotStarted => "not_started",
            ErrorCode::AlreadyStarted => "already_started",
            ErrorCode::TooLong => "too_long",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::ChatClosed => "chat_closed",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A refused frame: the code and a message a developer can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FrameError {
    pub code: ErrorCode,
    pub message: String,
}

impl FrameError {
    fn new(code: ErrorCode, message: impl Into<String>) -> FrameError {
        FrameError {
            code,
            message: message.into(),
        }
    }
}

/// A WebSocket close code and its reason text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: &'static str,
}

/// The close codes of the protocol.
pub mod close {
    use super::Close;

    /// The chat is over.
    pub const CHAT_CLOSED: Close = Close {
        code: 1000,
        reason: "chat closed",
    };
    /// The replica is shutting down; resume elsewhere.
    pub const GOING_AWAY: Close = Close {
        code: 1001,
        reason: "server going away",
    };
    /// A binary frame.
    pub const BINARY: Close = Close {
        code: 1003,
        reason: "binary frames are not supported",
    };
    /// A frame over [`crate::limits::MAX_FRAME_BYTES`].
    pub const TOO_LARGE: Close = Close {
        code: 1009,
        reason: "frame too large",
    };
    /// A bug or an outage on the gateway's side.
    pub const INTERNAL: Close = Close {
        code: 1011,
        reason: "internal error",
    };
    /// The widget key is not configured.
    pub const UNKNOWN_KEY: Close = Close {
        code: 4001,
        reason: "unknown widget key",
    };
    /// The page's origin is not in the widget's `allowed_origins`.
    pub const ORIGIN_NOT_ALLOWED: Close = Close {
        code: 4003,
        reason: "origin not allowed for this widget key",
    };
    /// The resume token is unknown, wrong or expired.
    pub const RESUME_FAILED: Close = Close {
        code: 4004,
        reason: "resume token unknown or expired",
    };
    /// No `start` or `resume` within the hello timeout.
    pub const HELLO_TIMEOUT: Close = Close {
        code: 4008,
        reason: "no start or resume frame in time",
    };
    /// The client does not read what it is sent.
    pub const TOO_SLOW: Close = Close {
        code: 4013,
        reason: "client too slow to read",
    };
    /// The client keeps sending over the rate limit.
    pub const RATE_LIMITED: Close = Close {
        code: 4029,
        reason: "rate limit exceeded",
    };
}

/// Decodes and checks one text frame from a member.
pub fn decode(text: &str) -> Result<ClientFrame, FrameError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(FrameError::new(
            ErrorCode::TooLong,
            format!("frame is over {MAX_FRAME_BYTES} bytes"),
        ));
    }
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| FrameError::new(ErrorCode::InvalidJson, format!("frame is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(FrameError::new(
            ErrorCode::InvalidJson,
            "frame must be a JSON object with a \"type\" field",
        ));
    }
    let frame = ClientFrame::deserialize(value)
        .map_err(|e| FrameError::new(ErrorCode::InvalidFrame, e.to_string()))?;
    check(&frame)?;
    Ok(frame)
}

fn check(frame: &ClientFrame) -> Result<(), FrameError> {
    match frame {
        ClientFrame::Start(start) => {
            if start.key.is_empty() || start.key.len() > MAX_TOKEN_BYTES {
                return Err(invalid("start.key must be the widget key (data-key)"));
            }
            if let Some(language) = &start.language
                && !matches!(language.as_str(), "en" | "es")
            {
                return Err(invalid(format!(
                    "start.language {language:?} is not supported: use \"en\" or \"es\""
                )));
            }
            if let Some(topic) = &start.topic
                && (topic.is_empty()
                    || topic.len() > MAX_TOPIC_BYTES
                    || !topic
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
            {
                return Err(invalid(format!(
                    "start.topic must be 1-{MAX_TOPIC_BYTES} of [a-z0-9_], e.g. \"billing\""
                )));
            }
            if let Some(name) = &start.first_name
                && name.chars().count() > MAX_FIRST_NAME_CHARS
            {
                return Err(FrameError::new(
                    ErrorCode::TooLong,
                    format!("start.first_name is over {MAX_FIRST_NAME_CHARS} characters"),
                ));
            }
            check_message("start", &start.client_id, &start.text)
        }
        ClientFrame::Message { client_id, text } => check_message("message", client_id, text),
        ClientFrame::Read { up_to } => check_entry_id("read.up_to", up_to),
        ClientFrame::Resume { token, after } => {
            if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
                return Err(invalid(
                    "resume.token must be the resume_token of `started`",
                ));
            }
            after
                .as_deref()
                .map_or(Ok(()), |after| check_entry_id("resume.after", after))
        }
        ClientFrame::Typing | ClientFrame::End => Ok(()),
    }
}

/// Checks a message's client id and text (shared with the agent side).
pub fn check_message(frame: &str, client_id: &str, text: &str) -> Result<(), FrameError> {
    if !is_client_id(client_id) {
        return Err(invalid(format!(
            "{frame}.client_id must be 1-{MAX_CLIENT_ID_BYTES} of [A-Za-z0-9_-], unique per message"
        )));
    }
    if text.trim().is_empty() {
        return Err(invalid(format!("{frame}.text must not be empty")));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(FrameError::new(
            ErrorCode::TooLong,
            format!("{frame}.text is over {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Whether `id` is a valid client message id.
pub fn is_client_id(id: &str) -> bool {
    (1..=MAX_CLIENT_ID_BYTES).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `id` looks like a transcript entry id (`<ms>-<seq>`).
pub fn is_entry_id(id: &str) -> bool {
    id.split_once('-').is_some_and(|(ms, seq)| {
        !ms.is_empty()
            && !seq.is_empty()
            && ms.len() <= 20
            && seq.len() <= 20
            && ms.bytes().all(|b| b.is_ascii_digit())
            && seq.bytes().all(|b| b.is_ascii_digit())
    })
}

fn check_entry_id(field: &str, id: &str) -> Result<(), FrameError> {
    if is_entry_id(id) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field} must be the id of a message frame, e.g. \"1764230400000-0\""
        )))
    }
}

fn invalid(message: impl Into<String>) -> FrameError {
    FrameError::new(ErrorCode::InvalidFrame, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_client_frame_of_the_protocol_document() {
        let cases = [
            (
                r#"{"type":"start","key":"demo-widget-key","language":"es","topic":"billing","first_name":"Ana","text":"Hola","client_id":"m-1"}"#,
                ClientFrame::Start(Start {
                    key: "demo-widget-key".into(),
                    language: Some("es".into()),
                    topic: Some("billing".into()),
                    first_name: Some("Ana".into()),
                    text: "Hola".into(),
                    client_id: "m-1".into(),
                }),
            ),
            (
                r#"{"type":"message","client_id":"m-2","text":"hi"}"#,
                ClientFrame::Message {
                    client_id: "m-2".into(),
                    text: "hi".into(),
                },
            ),
            (r#"{"type":"typing"}"#, ClientFrame::Typing),
            (
                r#"{"type":"read","up_to":"1764230400000-0"}"#,
                ClientFrame::Read {
                    up_to: "1764230400000-0".into(),
                },
            ),
            (r#"{"type":"end","future_field":1}"#, ClientFrame::End),
            (
                r#"{"type":"resume","token":"rt1.a.b.c"}"#,
                ClientFrame::Resume {
                    token: "rt1.a.b.c".into(),
                    after: None,
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(decode(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn refuses_bad_frames_with_a_code_and_the_field() {
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        let too_long = format!(r#"{{"type":"message","client_id":"m","text":"{long}"}}"#);
        let cases: &[(&str, ErrorCode, &str)] = &[
            ("not json", ErrorCode::InvalidJson, "not JSON"),
            ("[1,2]", ErrorCode::InvalidJson, "JSON object"),
            (r#"{"no":"type"}"#, ErrorCode::InvalidFrame, "type"),
            (
                r#"{"type":"dance"}"#,
                ErrorCode::InvalidFrame,
                "unknown variant",
            ),
            (
                r#"{"type":"message","text":"hi"}"#,
                ErrorCode::InvalidFrame,
                "client_id",
            ),
            (
                r#"{"type":"message","client_id":"a b","text":"hi"}"#,
                ErrorCode::InvalidFrame,
                "message.client_id",
            ),
            (
                r#"{"type":"message","client_id":"m","text":"  "}"#,
                ErrorCode::InvalidFrame,
                "message.text must not be empty",
            ),
            (&too_long, ErrorCode::TooLong, "over 2000 characters"),
            (
                r#"{"type":"start","key":"k","language":"fr","text":"hi","client_id":"m"}"#,
                ErrorCode::InvalidFrame,
                "\"en\" or \"es\"",
            ),
            (
                r#"{"type":"start","key":"k","topic":"Billing!","text":"hi","client_id":"m"}"#,
                ErrorCode::InvalidFrame,
                "start.topic",
            ),
            (
                r#"{"type":"read","up_to":"latest"}"#,
                ErrorCode::InvalidFrame,
                "read.up_to",
            ),
            (
                r#"{"type":"resume","token":""}"#,
                ErrorCode::InvalidFrame,
                "resume.token",
            ),
        ];
        for (text, code, contains) in cases {
            let error = decode(text).expect_err(text);
            assert_eq!(error.code, *code, "{text}: {error}");
            assert!(error.message.contains(contains), "{text}: {error}");
        }
    }

    #[test]
    fn server_frames_serialize_as_documented() {
        let frame = ServerFrame::Queued {
            position: Some(3),
            eta_seconds: None,
        };
        assert_eq!(
            frame.to_json(),
            r#"{"type":"queued","position":3,"eta_seconds":null}"#
        );
        let frame = ServerFrame::Message {
            id: "1-0".into(),
            from: Party::Agent,
            text: "¡Hola!".into(),
            client_id: None,
            at_ms: 1,
        };
        assert_eq!(
            frame.to_json(),
            r#"{"type":"message","id":"1-0","from":"agent","text":"¡Hola!","at_ms":1}"#
        );
        assert_eq!(
            ServerFrame::error(ErrorCode::RateLimited, "slow down").to_json(),
            r#"{"type":"error","code":"rate_limited","message":"slow down"}"#
        );
    }
}
