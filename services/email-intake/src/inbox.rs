//! [`Inbox`]: makes a received message durable before anyone is told it was
//! taken. The raw message is published to JetStream as an `EmailReceived`
//! event on `careline.<tenant>.email.received` and the call returns once
//! JetStream stored it; the dedupe id is a digest of tenant and Message-ID, so
//! the same message sent twice (a retry after a lost 250, two MX hosts) is
//! stored once.

use careline_bus::{Publisher, Subject};
use careline_proto::v1;
use sha2::{Digest, Sha256};

use crate::error::EmailError;

/// Entity and event of the subject a received message is published on.
pub const RECEIVED_ENTITY: &str = "email";
/// See [`RECEIVED_ENTITY`].
pub const RECEIVED_EVENT: &str = "received";
/// Bytes of a NATS message beyond the raw mail (event envelope, headers):
/// the largest accepted mail is the server's max_payload less this.
pub const ENVELOPE_ALLOWANCE: usize = 16 * 1024;

/// How a message reached email-intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Smtp,
    Grpc,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Smtp => "smtp",
            Via::Grpc => "grpc",
        }
    }
}

/// How a message arrived: the SMTP envelope, or none for IngestEmail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub via: Via,
    /// Envelope recipients of the tenant.
    pub recipients: Vec<String>,
    /// Envelope sender; `Some("")` for a bounce (`MAIL FROM:<>`), `None` without SMTP.
    pub mail_from: Option<String>,
}

impl Arrival {
    /// A message given to IngestEmail.
    pub fn grpc() -> Arrival {
        Arrival {
            via: Via::Grpc,
            recipients: Vec::new(),
            mail_from: None,
        }
    }
}

/// A message made durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Its Message-ID without angle brackets (generated from the content if it had none).
    pub message_id: String,
    /// The bus event id (`email:<digest>`).
    pub event_id: String,
    /// Already stored within the stream's duplicate window.
    pub duplicate: bool,
}

impl Accepted {
    /// A short opaque id for the SMTP reply and logs.
    pub fn short_id(&self) -> &str {
        let digest = self.event_id.trim_start_matches("email:");
        &digest[..digest.len().min(16)]
    }
}

/// Publishes received messages; cheap to clone.
#[derive(Debug, Clone)]
pub struct Inbox {
    publisher: Publisher,
    max_message_bytes: usize,
}

impl Inbox {
    /// An inbox taking messages of at most `max_message_bytes`.
    pub fn new(publisher: Publisher, max_message_bytes: usize) -> Inbox {
        Inbox {
            publisher,
            max_message_bytes,
        }
    }

    /// The largest message taken, in bytes.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Stores `raw` for `tenant` and returns once JetStream acknowledged it.
    pub async fn accept(
        &self,
        tenant: &str,
        raw: Vec<u8>,
        arrival: Arrival,
    ) -> Result<Accepted, EmailError> {
        if raw.len() > self.max_message_bytes {
            return Err(EmailError::TooBig {
                size: raw.len(),
                limit: self.max_message_bytes,
            });
        }
        let message_id = message_id_of(&raw);
        let event_id = received_event_id(tenant, &message_id);
        let subject = Subject::new(tenant, RECEIVED_ENTITY, RECEIVED_EVENT)
            .map_err(|e| EmailError::Invalid(e.to_string()))?;
        let event = v1::Event {
            event_id: event_id.clone(),
            tenant_id: tenant.to_owned(),
            occurred_at_ms: chrono::Utc::now().timestamp_millis(),
            sequence: 0,
            payload: Some(v1::event::Payload::EmailReceived(v1::EmailReceived {
                raw,
                null_sender: arrival.mail_from.as_deref() == Some(""),
                mail_from: arrival.mail_from.unwrap_or_default(),
                recipients: arrival.recipients,
                received_via: arrival.via.as_str().to_owned(),
            })),
        };
        let ack = self
            .publisher
            .publish(&subject, &event)
            .await
            .map_err(|e| EmailError::NotDurable(e.to_string()))?;
        Ok(Accepted {
            message_id,
            event_id,
            duplicate: ack.duplicate,
        })
    }
}

/// The message's Message-ID without angle brackets; for a message without one,
/// an id derived from its bytes, so the same bytes always get the same id.
pub fn message_id_of(raw: &[u8]) -> String {
    mail_parser::MessageParser::new()
        .parse_headers(raw)
        .and_then(|message| message.message_id().map(str::to_owned))
        .filter(|id| !id.trim().is_empty())
        .unwrap_or_else(|| format!("{}@generated.careline.invalid", digest(&[raw])))
}

/// The dedupe id of a received message: `email:` + hex SHA-256 of tenant and Message-ID.
pub fn received_event_id(tenant: &str, message_id: &str) -> String {
    format!(
        "email:{}",
        digest(&[tenant.as_bytes(), message_id.as_bytes()])
    )
}

/// Hex SHA-256 of `parts`, each length-prefixed so that no two lists collide.
pub fn digest(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_is_read_without_brackets() {
        let raw = b"Message-ID: <abc@member.example>\r\nSubject: hi\r\n\r\nbody";
        assert_eq!(message_id_of(raw), "abc@member.example");
    }

    #[test]
    fn a_message_without_id_gets_one_from_its_bytes() {
        let first = message_id_of(b"Subject: hi\r\n\r\nbody");
        assert_eq!(first, message_id_of(b"Subject: hi\r\n\r\nbody"));
        assert_ne!(first, message_id_of(b"Subject: hi\r\n\r\nother body"));
        assert!(first.ends_with("@generated.careline.invalid"));
    }

    #[test]
    fn event_ids_differ_per_tenant_and_message() {
        let a = received_event_id("acme", "m1@x");
        assert_eq!(a, received_event_id("acme", "m1@x"));
        assert_ne!(a, received_event_id("other", "m1@x"));
        assert_ne!(a, received_event_id("acme", "m2@x"));
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
    }
}
