//! The access audit on the bus: each read of a member contact's content is an
//! [`AuditEvent`] (proto/careline/v1/audit.proto) in its own JetStream stream,
//! `CARELINE_AUDIT`, on `careline-audit.<tenant>.<service>`, kept for six years
//! (HIPAA's retention for compliance records). It records who, what, when and
//! where, never the content. [`AuditLog::record`] returns once JetStream stored
//! the record, so a service answers with content only after it is audited.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::DeliverPolicy, stream};
use careline_proto::v1::{ActorKind, AuditEvent};
use futures::StreamExt as _;
use prost::Message as _;

use crate::BusError;
use crate::publish::publish_message;
use crate::streams::create_or_update;

/// The audit stream's name.
pub const AUDIT_STREAM: &str = "CARELINE_AUDIT";
/// First token of audit subjects (outside the events stream's `careline.>`).
pub const AUDIT_PREFIX: &str = "careline-audit";
/// How long audit records are kept: six years.
pub const AUDIT_MAX_AGE: Duration = Duration::from_secs(6 * 366 * 24 * 60 * 60);
/// How long a listing waits for the next stored record before it ends the page.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates or updates the audit stream on `replicas` servers (`None`: as it is).
pub async fn ensure_audit_stream(
    js: &jetstream::Context,
    replicas: Option<usize>,
) -> Result<stream::Stream, BusError> {
    let config = stream::Config {
        name: AUDIT_STREAM.to_owned(),
        description: Some("Reads of member contacts: who, what, when (never content)".into()),
        subjects: vec![format!("{AUDIT_PREFIX}.>")],
        storage: stream::StorageType::File,
        max_age: AUDIT_MAX_AGE,
        ..Default::default()
    };
    create_or_update(js, config, replicas).await
}

/// Who is reading, for [`AuditLog::record`].
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub kind: ActorKind,
    /// The API key id or agent id.
    pub id: &'a str,
}

/// Records and lists the access audit of a service.
#[derive(Debug, Clone)]
pub struct AuditLog {
    js: jetstream::Context,
    service: &'static str,
}

/// One page of a listing and the token of the next ("" at the end).
pub type AuditPage = (Vec<AuditEvent>, String);

impl AuditLog {
    /// The audit of `service` ("router", "email-intake", ...).
    pub fn new(js: jetstream::Context, service: &'static str) -> Self {
        Self { js, service }
    }

    /// Records that `actor` read `interaction_ids` of `tenant` through `method`;
    /// returns once JetStream stored the record.
    pub async fn record(
        &self,
        tenant: &str,
        method: &str,
        actor: Actor<'_>,
        interaction_ids: Vec<String>,
    ) -> Result<(), BusError> {
        let event = AuditEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            tenant_id: tenant.to_owned(),
            occurred_at_ms: now_ms(),
            service: self.service.to_owned(),
            method: method.to_owned(),
            actor_kind: actor.kind as i32,
            actor_id: actor.id.to_owned(),
            interaction_ids,
        };
        let subject = format!("{AUDIT_PREFIX}.{tenant}.{}", self.service);
        publish_message(&self.js, &subject, &event.event_id, event.encode_to_vec()).await
    }

    /// `tenant`'s records from `from_ms` (0: the oldest) to `to_ms` (0: the newest),
    /// at most `page_size`, oldest first, from stream sequence `after` on (the
    /// token of a previous page, parsed).
    pub async fn list(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        page_size: usize,
        after: Option<u64>,
    ) -> Result<AuditPage, BusError> {
        let action = || format!("read the access audit of tenant {tenant}");
        let deliver_policy = match after {
            Some(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
            None => match time::OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(from_ms) * 1_000_000,
            ) {
                Ok(start_time) if from_ms > 0 => DeliverPolicy::ByStartTime { start_time },
                _ => DeliverPolicy::All,
            },
        };
        let stream = self
            .js
            .get_stream(AUDIT_STREAM)
            .await
            .map_err(BusError::nats(action()))?;
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: format!("{AUDIT_PREFIX}.{tenant}.>"),
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(BusError::nats(action()))?;
        let mut events = Vec::new();
        if consumer.cached_info().num_pending == 0 {
            return Ok((events, String::new()));
        }
        let mut messages = consumer
            .messages()
            .await
            .map_err(BusError::nats(action()))?;
        loop {
            let message = match tokio::time::timeout(READ_TIMEOUT, messages.next()).await {
                Ok(Some(message)) => message.map_err(BusError::nats(action()))?,
                Ok(None) | Err(_) => return Ok((events, String::new())),
            };
            let info = message
                .info()
                .map_err(|e| BusError::nats_boxed(action())(e))?;
            let (sequence, pending) = (info.stream_sequence, info.pending);
            let Ok(event) = AuditEvent::decode(message.payload.clone()) else {
                tracing::warn!(sequence, "undecodable audit record skipped");
                continue;
            };
            if to_ms > 0 && event.occurred_at_ms > to_ms {
                return Ok((events, String::new()));
            }
            if event.occurred_at_ms >= from_ms {
                events.push(event);
            }
            if pending == 0 {
                return Ok((events, String::new()));
            }
            if events.len() == page_size {
                return Ok((events, (sequence + 1).to_string()));
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}
