//! [`Feed`]: the live side of a chat across replicas. Every transcript entry,
//! typing and read notice of a conversation is published on the core NATS
//! subject `chat.v1.<tenant>.<interaction id>`; the replica holding the member's
//! socket and the one holding the agent's stream both subscribe to it. Core NATS
//! (no JetStream) is enough: the transcript in Redis is the durable record, and a
//! subscriber that may have missed something (a reconnect, a resume) reads it
//! from there. The subjects are outside `careline.>`, so the event stream never
//! stores chat text.

use async_nats::Subscriber;
use serde::{Deserialize, Serialize};

use crate::error::ChatError;
use crate::protocol::Party;
use crate::transcript::Entry;

/// Something said or done in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "item", rename_all = "snake_case")]
pub enum FeedItem {
    /// A new transcript entry.
    Entry(Entry),
    /// `from` is typing.
    Typing { from: Party },
    /// `from` has seen the other side's messages up to `up_to`.
    Read { from: Party, up_to: String },
}

/// Publishes and subscribes conversation feeds.
#[derive(Debug, Clone)]
pub struct Feed {
    nats: async_nats::Client,
}

/// The subject of conversation `ix` of `tenant`.
pub fn subject(tenant: &str, ix: &str) -> String {
    format!("chat.v1.{tenant}.{ix}")
}

impl Feed {
    /// A feed over `nats`.
    pub fn new(nats: async_nats::Client) -> Feed {
        Feed { nats }
    }

    /// Subscribes to conversation `ix`; returns once the server has the
    /// subscription, so nothing published after this returns is missed.
    pub async fn subscribe(&self, tenant: &str, ix: &str) -> Result<Subscriber, ChatError> {
        let subscriber = self
            .nats
            .subscribe(subject(tenant, ix))
            .await
            .map_err(|e| ChatError::Nats(e.to_string()))?;
        self.nats
            .flush()
            .await
            .map_err(|e| ChatError::Nats(e.to_string()))?;
        Ok(subscriber)
    }

    /// Publishes `item` to conversation `ix`. A failure is logged, not returned:
    /// entries are already durable, and subscribers catch up from the transcript.
    pub async fn publish(&self, tenant: &str, ix: &str, item: &FeedItem) {
        let payload = serde_json::to_vec(item).expect("feed items always serialize");
        if let Err(error) = self.nats.publish(subject(tenant, ix), payload.into()).await {
            tracing::warn!(tenant, interaction_id = ix, %error, "chat feed publish failed");
        }
    }
}

/// Decodes a feed message; `None` for one this version does not understand.
pub fn decode(message: &async_nats::Message) -> Option<FeedItem> {
    serde_json::from_slice(&message.payload).ok()
}
