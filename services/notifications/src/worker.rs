//! The work queue: every replica pulls notification requests from one durable
//! JetStream consumer, claims each id in the [`Ledger`], sends, and settles
//! the message: ack when sent or dead-lettered, nak with a backoff delay when
//! the failure may pass, terminate when the message is not a request at all.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use careline_bus::notification::ENTITY;
use careline_bus::publish::publish_message;
use careline_bus::{Subject, TenantDirectory};
use careline_proto::v1::{
    DeadLetter, NotificationRequested, NotificationStatus, NotificationStatusChanged,
};
use futures::StreamExt as _;
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::compose::compose;
use crate::error::Permanent;
use crate::ledger::{Claim, Ledger};
use crate::mailer::{Mailer, SendOutcome};
use crate::retry::RetryPolicy;
use crate::templates::Templates;
use crate::validate;

/// The durable consumer all replicas share.
pub const CONSUMER: &str = "notifications";
/// Time to settle a delivery before JetStream hands it to another replica;
/// longer than a send may take ([`crate::mailer::SEND_TIMEOUT`]).
pub const ACK_WAIT: Duration = Duration::from_secs(30);
/// Deliveries after which JetStream stops redelivering a request: a safety
/// net far above any configured attempt count, for a request that keeps
/// failing before it can be dead-lettered (e.g. Redis down for a long time).
pub const MAX_DELIVER: i64 = 500;
/// Shortest wait before looking again at a request another replica is sending.
pub const HELD_RECHECK: Duration = Duration::from_millis(500);
/// Pause before pulling again after the consumer's message stream failed.
pub const PULL_RETRY: Duration = Duration::from_secs(1);
/// Tries to record "sent" before giving up (the email is out either way).
pub const MARK_SENT_TRIES: u32 = 3;

/// Requests handled, by tenant and outcome (sent, duplicate, retried, dead_lettered, rejected).
pub const OUTCOMES: &str = "careline_notifications_total";
/// Requests dead-lettered, by tenant and reason (the chart's CarelineNotificationsDeadLettered alert).
pub const DEAD_LETTERED: &str = "careline_notifications_dead_lettered_total";
/// Duration of one send attempt.
pub const SEND_SECONDS: &str = "careline_notification_send_seconds";

/// What to tell JetStream about a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    /// Done (sent, dead-lettered, or a duplicate).
    Ack,
    /// Deliver again after this long.
    Retry(Duration),
    /// Not a request: never deliver again.
    Reject,
}

/// Everything one replica needs to send notifications.
pub struct Worker {
    pub(crate) ledger: Ledger,
    pub(crate) tenants: Arc<TenantDirectory>,
    pub(crate) mailer: Mailer,
    pub(crate) templates: Templates,
    pub(crate) js: jetstream::Context,
    pub(crate) retry: RetryPolicy,
}

/// Pulls and handles requests, `concurrency` at a time, until `shutdown`;
/// requests in hand when it fires are finished first.
pub async fn run(
    worker: Arc<Worker>,
    consumer: PullConsumer,
    concurrency: usize,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        // Pull no more than can be worked on: a pulled message's ack wait is running.
        let messages = consumer
            .stream()
            .max_messages_per_batch(concurrency)
            .messages()
            .await;
        match messages {
            Ok(messages) => {
                messages
                    .take_until(shutdown.cancelled())
                    .for_each_concurrent(concurrency, |message| {
                        let worker = worker.clone();
                        async move {
                            match message {
                                Ok(message) => worker.handle(message).await,
                                Err(error) => {
                                    tracing::warn!(%error, "pulling notification requests failed")
                                }
                            }
                        }
                    })
                    .await;
            }
            Err(error) => tracing::warn!(%error, "cannot pull notification requests; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(PULL_RETRY) => {}
        }
    }
}

impl Worker {
    async fn handle(&self, message: jetstream::Message) {
        let delivered = message.info().map_or(1, |info| info.delivered);
        let attempt = u32::try_from(delivered).unwrap_or(u32::MAX).max(1);
        let settle = match decode(&message) {
            Ok(request) => {
                let span = tracing::info_span!(
                    "notification.send",
                    tenant = %request.tenant_id,
                    notification_id = %request.notification_id,
                    attempt,
                );
                careline_bus::trace_context::set_parent_from(&span, message.headers.as_ref());
                self.process(&request, attempt).instrument(span).await
            }
            Err(reason) => {
                tracing::warn!(subject = %message.subject, reason, "rejecting a message that is not a valid notification request");
                metrics::counter!(OUTCOMES, "outcome" => "rejected").increment(1);
                Settle::Reject
            }
        };
        let result = match settle {
            Settle::Ack => message.double_ack().await,
            Settle::Retry(delay) => message.ack_with(AckKind::Nak(Some(delay))).await,
            Settle::Reject => message.ack_with(AckKind::Term).await,
        };
        match result {
            // JetStream redelivers it after the ack wait; the ledger keeps that from sending twice.
            Err(error) => {
                tracing::warn!(%error, ?settle, "could not settle a notification request")
            }
            Ok(()) if !matches!(settle, Settle::Retry(_)) => self.forget(&message).await,
            Ok(()) => {}
        }
    }

    /// Deletes a settled request from the event stream: it holds a member's
    /// address and text. A dead letter keeps its own copy until it is replayed.
    async fn forget(&self, message: &jetstream::Message) {
        let Ok(info) = message.info() else { return };
        if let Err(error) = careline_bus::forget_event(&self.js, info.stream_sequence).await {
            tracing::warn!(%error, "could not delete a settled notification request from the event stream");
        }
    }

    async fn process(&self, request: &NotificationRequested, attempt: u32) -> Settle {
        let tenant_id = &request.tenant_id;
        let id = &request.notification_id;
        let token = uuid::Uuid::new_v4().to_string();
        match self.ledger.claim(tenant_id, id, &token).await {
            Ok(Claim::Claimed) => {}
            Ok(Claim::AlreadySent | Claim::DeadLettered) => {
                tracing::debug!("duplicate request dropped");
                metrics::counter!(OUTCOMES, "tenant" => tenant_id.clone(), "outcome" => "duplicate")
                    .increment(1);
                return Settle::Ack;
            }
            Ok(Claim::Held(remaining)) => {
                tracing::debug!("another replica is sending it");
                // Usually done in milliseconds; the claim's end bounds the wait.
                let recheck = self.retry.delay_after(attempt).min(remaining);
                return Settle::Retry(recheck.max(HELD_RECHECK));
            }
            Err(error) => {
                tracing::warn!(%error, "cannot claim the notification; retrying");
                return Settle::Retry(self.retry.delay_after(attempt));
            }
        }
        let Some(tenant) = self.tenants.get(tenant_id) else {
            return self
                .temporary_failure(request, attempt, &token, 0, "unknown_tenant")
                .await;
        };
        let email = match compose(request, &tenant, &self.templates) {
            Ok(email) => email,
            Err(why) => return self.dead_letter(request, attempt, why).await,
        };
        let started = std::time::Instant::now();
        let outcome = self.mailer.send(&email).await;
        metrics::histogram!(SEND_SECONDS).record(started.elapsed().as_secs_f64());
        match outcome {
            SendOutcome::Sent => {
                self.record_sent(request).await;
                tracing::info!("notification sent");
                metrics::counter!(OUTCOMES, "tenant" => tenant_id.clone(), "outcome" => "sent")
                    .increment(1);
                self.publish_status(request, NotificationStatus::Sent, attempt, 250, "")
                    .await;
                Settle::Ack
            }
            SendOutcome::Transient { code, reason } => {
                self.temporary_failure(request, attempt, &token, code, &reason)
                    .await
            }
            SendOutcome::Refused { code } => {
                self.dead_letter(request, attempt, Permanent::Refused { code })
                    .await
            }
        }
    }

    /// Marks the id sent, trying a few times: once the server said 250, a
    /// lost mark could only cause a duplicate after the claim lapses.
    async fn record_sent(&self, request: &NotificationRequested) {
        for attempt in 1..=MARK_SENT_TRIES {
            match self
                .ledger
                .mark_sent(&request.tenant_id, &request.notification_id)
                .await
            {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, attempt, "sent, but recording it failed");
                    tokio::time::sleep(self.retry.delay_after(attempt)).await;
                }
            }
        }
    }

    /// A failure that may pass: retry later, or dead-letter after the last attempt.
    async fn temporary_failure(
        &self,
        request: &NotificationRequested,
        attempt: u32,
        token: &str,
        code: u16,
        reason: &str,
    ) -> Settle {
        if !self.retry.may_retry(attempt) {
            let why = Permanent::RetriesExhausted {
                attempts: attempt,
                last: reason.to_owned(),
            };
            return self.dead_letter(request, attempt, why).await;
        }
        if let Err(error) = self
            .ledger
            .release(&request.tenant_id, &request.notification_id, token)
            .await
        {
            // The claim then lapses by itself; the retry waits for it.
            tracing::warn!(%error, "could not release the claim");
        }
        let delay = self.retry.delay_after(attempt);
        tracing::info!(
            code,
            reason,
            retry_in_ms = delay.as_millis() as u64,
            "sending failed for now; will retry"
        );
        metrics::counter!(OUTCOMES, "tenant" => request.tenant_id.clone(), "outcome" => "retried")
            .increment(1);
        self.publish_status(request, NotificationStatus::Failed, attempt, code, reason)
            .await;
        Settle::Retry(delay)
    }

    /// Parks the request in the dead letters (and on the dead-letter subject).
    async fn dead_letter(
        &self,
        request: &NotificationRequested,
        attempt: u32,
        why: Permanent,
    ) -> Settle {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let detail = DeadLetter {
            notification_id: request.notification_id.clone(),
            interaction_id: request.interaction_id.clone(),
            template: request.template.clone(),
            smtp_code: u32::from(why.smtp_code()),
            reason: why.reason().to_owned(),
            dead_lettered_at_ms: now_ms,
        };
        if let Err(error) = self.ledger.dead_letter(request, &detail).await {
            tracing::warn!(%error, "cannot store the dead letter; retrying");
            return Settle::Retry(self.retry.delay_after(attempt));
        }
        tracing::warn!(
            reason = why.reason(),
            smtp_code = why.smtp_code(),
            "notification dead-lettered"
        );
        metrics::counter!(OUTCOMES, "tenant" => request.tenant_id.clone(), "outcome" => "dead_lettered")
            .increment(1);
        metrics::counter!(DEAD_LETTERED, "tenant" => request.tenant_id.clone(), "reason" => why.reason())
            .increment(1);
        match Subject::dead_letter(&request.tenant_id, crate::worker::CONSUMER) {
            Ok(subject) => {
                let msg_id = format!("dlq:{CONSUMER}:{}:{now_ms}", request.notification_id);
                if let Err(error) =
                    publish_message(&self.js, &subject, &msg_id, request.encode_to_vec()).await
                {
                    tracing::warn!(%error, "could not copy the dead letter to its subject");
                }
            }
            Err(error) => tracing::warn!(%error, "no dead-letter subject for this tenant"),
        }
        self.publish_status(
            request,
            NotificationStatus::DeadLettered,
            attempt,
            why.smtp_code(),
            why.reason(),
        )
        .await;
        Settle::Ack
    }

    /// Publishes a status event; a failure is logged, not retried (the
    /// ledger, not the event, is what prevents a second email).
    async fn publish_status(
        &self,
        request: &NotificationRequested,
        status: NotificationStatus,
        attempt: u32,
        code: u16,
        reason: &str,
    ) {
        let word = status_word(status);
        let event = NotificationStatusChanged {
            notification_id: request.notification_id.clone(),
            tenant_id: request.tenant_id.clone(),
            status: status as i32,
            interaction_id: request.interaction_id.clone(),
            attempt,
            smtp_code: u32::from(code),
            reason: reason.to_owned(),
            occurred_at_ms: chrono::Utc::now().timestamp_millis(),
        };
        let msg_id = format!("{}:{word}:{attempt}", request.notification_id);
        let published = match Subject::new(&request.tenant_id, ENTITY, word) {
            Ok(subject) => {
                publish_message(&self.js, &subject, &msg_id, event.encode_to_vec()).await
            }
            Err(error) => Err(error),
        };
        if let Err(error) = published {
            tracing::warn!(%error, status = word, "could not publish the delivery status");
        }
    }
}

/// The event token of a status: `careline.<tenant>.notification.<word>`.
pub fn status_word(status: NotificationStatus) -> &'static str {
    match status {
        NotificationStatus::Sent => "sent",
        NotificationStatus::Failed => "failed",
        NotificationStatus::DeadLettered => "dead_lettered",
        NotificationStatus::Unspecified => "unspecified",
    }
}

/// The request in `message`, if it is one: a `NotificationRequested` with a
/// valid id, of the tenant its subject names.
fn decode(message: &jetstream::Message) -> Result<NotificationRequested, &'static str> {
    let subject = Subject::parse(message.subject.as_str()).map_err(|_| "foreign_subject")?;
    let request =
        NotificationRequested::decode(message.payload.as_ref()).map_err(|_| "undecodable")?;
    if request.tenant_id != subject.tenant() {
        return Err("tenant_mismatch");
    }
    validate::notification_id(&request.notification_id).map_err(|_| "invalid_notification_id")?;
    Ok(request)
}
